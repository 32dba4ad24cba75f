package flowgraph

import (
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/inspect"
)

func record(bridge string, table uint8, name, actions string, packets uint64) inspect.FlowRecord {
	return inspect.FlowRecord{Bridge: bridge, Table: table, TableName: name, Actions: actions, Packets: packets}
}

func TestBuild(t *testing.T) {
	in := Input{
		Flows: map[string][]inspect.FlowRecord{
			"br-int": {
				record("br-int", 0, "LOCAL_SWITCHING", "goto_table:60", 5),
				record("br-int", 0, "LOCAL_SWITCHING", "goto_table:TRANSIENT", 7),
				record("br-int", 0, "LOCAL_SWITCHING", "resubmit(,25)", 1),
				record("br-int", 60, "TRANSIENT", "NORMAL", 12),
				record("br-int", 60, "TRANSIENT", "pop_vlan,output:tapc0000001-00", 3),
				record("br-int", 60, "TRANSIENT", "output:patch-tun", 2),
				record("br-int", 60, "TRANSIENT", "goto_table:NO_SUCH_TABLE", 0),
			},
			"br-tun": {
				record("br-tun", 0, "LOCAL_SWITCHING", "goto_table:22", 2),
				record("br-tun", 22, "FLOOD_TO_TUN", "output:vxlan-c0a8640c,output:vxlan-c0a8640d", 2),
				record("br-tun", 22, "FLOOD_TO_TUN", "output:patch-int", 0),
			},
		},
		Patches: []Patch{
			{Bridge: "br-int", Port: "patch-tun", PeerBridge: "br-tun", PeerPort: "patch-int"},
			{Bridge: "br-tun", Port: "patch-int", PeerBridge: "br-int", PeerPort: "patch-tun"},
		},
	}
	g := Build(in)
	if len(g.Bridges) != 2 || g.Bridges[0].Name != "br-int" || g.Bridges[1].Name != "br-tun" {
		t.Fatalf("bridges = %+v", g.Bridges)
	}
	brInt := g.Bridges[0]
	if brInt.Flows != 7 || brInt.Packets != 30 {
		t.Errorf("br-int: %d flows, %d packets; want 7, 30", brInt.Flows, brInt.Packets)
	}
	tables := map[string]Table{}
	for _, b := range g.Bridges {
		for _, tb := range b.Tables {
			tables[tb.ID] = tb
		}
	}
	// Table 25 holds no flow but is jumped to; its name comes from the catalogue.
	if tb, ok := tables[TableID("br-int", 25)]; !ok || tb.Flows != 0 || tb.Name != "MAC_SPOOF" {
		t.Errorf("br-int table 25 = %+v, %v; want an empty MAC_SPOOF", tb, ok)
	}
	if tb := tables[TableID("br-tun", 22)]; tb.Flows != 2 || tb.Packets != 2 || tb.Name != "FLOOD_TO_TUN" {
		t.Errorf("br-tun table 22 = %+v", tb)
	}

	edges := map[string]Edge{}
	for _, e := range g.Edges {
		edges[e.From+" -> "+e.To+" "+string(e.Kind)] = e
	}
	want := []struct {
		key     string
		flows   int
		packets uint64
	}{
		// goto_table:60 and goto_table:TRANSIENT are the same edge.
		{"br-int/table/0 -> br-int/table/60 goto_table", 2, 12},
		{"br-int/table/0 -> br-int/table/25 resubmit", 1, 1},
		{"br-int/table/60 -> br-int/exit/NORMAL output", 1, 12},
		{"br-int/table/60 -> br-int/exit/VM ports output", 1, 3},
		{"br-int/table/60 -> br-tun/table/0 patch", 1, 2},
		{"br-int/table/60 -> br-int/exit/table NO_SUCH_TABLE (unknown) goto_table", 1, 0},
		// Both vxlan outputs of one flow count that flow once per port.
		{"br-tun/table/0 -> br-tun/table/22 goto_table", 1, 2},
		{"br-tun/table/22 -> br-tun/exit/tunnels output", 2, 4},
		{"br-tun/table/22 -> br-int/table/0 patch", 1, 0},
		// NORMAL reaches the bridge behind each patch port.
		{"br-int/exit/NORMAL -> br-tun/table/0 patch", 0, 0},
	}
	for _, w := range want {
		e, ok := edges[w.key]
		if !ok {
			t.Errorf("missing edge %s", w.key)
			continue
		}
		if e.Flows != w.flows || e.Packets != w.packets {
			t.Errorf("edge %s: %d flows, %d packets; want %d, %d", w.key, e.Flows, e.Packets, w.flows, w.packets)
		}
	}
	if len(g.Edges) != len(want) {
		t.Errorf("%d edges, want %d: %+v", len(g.Edges), len(want), g.Edges)
	}
}

func TestBuildOneBridge(t *testing.T) {
	// Only br-int is drawn: its patch port becomes an exit naming the bridge behind it.
	in := Input{
		Flows: map[string][]inspect.FlowRecord{
			"br-int": {record("br-int", 60, "TRANSIENT", "output:int-br-vlan", 0)},
		},
		Patches: []Patch{{Bridge: "br-int", Port: "int-br-vlan", PeerBridge: "br-vlan", PeerPort: "phy-br-vlan"}},
	}
	g := Build(in)
	if len(g.Bridges) != 1 || len(g.Bridges[0].Exits) != 1 || g.Bridges[0].Exits[0].Label != "br-vlan via int-br-vlan" {
		t.Fatalf("graph = %+v", g)
	}
}

func TestDOTEscapes(t *testing.T) {
	in := Input{Flows: map[string][]inspect.FlowRecord{
		`br-"x"`: {record(`br-"x"`, 0, `A"B\C`, "output:eth1", 0)},
	}}
	dot := Build(in).DOT()
	for _, want := range []string{`"br-\"x\"/table/0"`, `label="0 A\"B\\C\n1 flow"`} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %s:\n%s", want, dot)
		}
	}
}
