package explain_test

import (
	"fmt"
	"testing"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// bigBridge is a br-int of n VIF ports with ofports 10, 11, ..., as the bench's nodes.
func bigBridge(n int) *ovsdb.Inventory {
	b := ovsdb.InventoryBridge{Name: "br-int"}
	for i := range n {
		b.Ports = append(b.Ports, ovsdb.InventoryPort{Name: fmt.Sprintf("tap%08d-00", i), Type: "patch", Ofport: 10 + i,
			ExternalIDs: map[string]string{"iface-id": fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)}})
	}
	return &ovsdb.Inventory{Bridges: []ovsdb.InventoryBridge{b}}
}

// A flow's in_port resolves to its port by number or by name on a bridge of 10,000 ports;
// of two ports claiming one ofport (an inventory read mid-change) the first wins, as
// before.
func TestInPortOnABigBridge(t *testing.T) {
	inv := bigBridge(10000)
	br := &inv.Bridges[0]
	br.Ports = append(br.Ports, ovsdb.InventoryPort{Name: "late", Ofport: 10 + 4321, ExternalIDs: map[string]string{"iface-id": "late"}})
	e := explain.New(explain.Node{Inventory: inv})
	for _, tc := range []struct{ inPort, wantID string }{
		{"10", "00000000-0000-4000-8000-000000000000"},
		{"10009", "00009999-0000-4000-8000-000000000000"},
		{"4331", "00004321-0000-4000-8000-000000000000"},
		{`"tap00000042-00"`, "00000042-0000-4000-8000-000000000000"},
		{"late", "late"},
	} {
		fl, err := dumptext.ParseLine("table=25, priority=2,in_port="+tc.inPort+",dl_src=fa:16:3e:00:00:01 actions=goto_table:60", nil)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Explain("br-int", &fl)
		if got.Rule != "I18" || got.Owner == nil || got.Owner.Kind != explain.KindPort || got.Owner.ID != tc.wantID {
			t.Errorf("in_port=%s: rule %q owner %+v, want I18 of port %s", tc.inPort, got.Rule, got.Owner, tc.wantID)
		}
	}
	fl, _ := dumptext.ParseLine("table=25, priority=2,in_port=9,dl_src=fa:16:3e:00:00:01 actions=goto_table:60", nil)
	if got := e.Explain("br-int", &fl); got.Owner != nil && got.Owner.Kind == explain.KindPort {
		t.Errorf("in_port=9 (no such port) owned by %+v", got.Owner)
	}
}

// BenchmarkExplainPortFlows explains one table-25 flow per port of a bridge of 10,000 ports
// (the CLI's work on the bench's biggest node, per bridge scan formerly quadratic).
func BenchmarkExplainPortFlows(b *testing.B) {
	const n = 10000
	e := explain.New(explain.Node{Inventory: bigBridge(n)})
	fls := make([]dumptext.Flow, n)
	for i := range fls {
		var err error
		if fls[i], err = dumptext.ParseLine(fmt.Sprintf("table=25, priority=2,in_port=%d,dl_src=fa:16:3e:00:00:01 actions=goto_table:60", 10+i), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for range b.N {
		for i := range fls {
			e.Explain("br-int", &fls[i])
		}
	}
}
