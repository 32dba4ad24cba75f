package explain

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// scenarioNode builds what a switch holding a scenario's reference dump would have in
// OVSDB: the dump's ports with their ofports, patch peers, tunnel remote IPs, and the VIFs'
// iface-id, attached-mac and local VLAN tag, as Neutron's agent leaves them.
func scenarioNode(t *testing.T, name string) (Node, *testbed.Reference) {
	t.Helper()
	dir := filepath.Join("..", "testdata", "neutron", "scenarios")
	topo, err := topology.Load(filepath.Join(dir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := testbed.ParseReference(filepath.Join(dir, name+".flows"))
	if err != nil {
		t.Fatal(err)
	}
	snap := topo.Snapshot()
	lvidOf := map[string]int{}
	for lvid, netID := range ref.LocalVLANs {
		lvidOf[netID] = lvid
	}
	vifs := map[string]topology.Port{}
	for _, p := range topo.Ports {
		vifs[testbed.PortName(p)] = p
	}
	inv := &ovsdb.Inventory{}
	for _, br := range ref.Order {
		b := ovsdb.InventoryBridge{Name: br, Tables: map[uint8]string{}}
		for ofport, port := range ref.Bridges[br].Ofports {
			p := ovsdb.InventoryPort{Name: port, Ofport: ofport}
			switch {
			case port == "patch-tun":
				p.Type, p.Options = "patch", map[string]string{"peer": "patch-int"}
			case port == "patch-int":
				p.Type, p.Options = "patch", map[string]string{"peer": "patch-tun"}
			case strings.HasPrefix(port, "int-"):
				p.Type, p.Options = "patch", map[string]string{"peer": "phy-" + strings.TrimPrefix(port, "int-")}
			case strings.HasPrefix(port, "phy-"):
				p.Type, p.Options = "patch", map[string]string{"peer": "int-" + strings.TrimPrefix(port, "phy-")}
			case strings.HasPrefix(port, "vxlan-"), strings.HasPrefix(port, "gre-"), strings.HasPrefix(port, "geneve-"):
				typ, hex, _ := strings.Cut(port, "-")
				n, err := strconv.ParseUint(hex, 16, 32)
				if err != nil {
					t.Fatalf("tunnel port %s: %v", port, err)
				}
				p.Type, p.Options = typ, map[string]string{"remote_ip": netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()}
			default:
				vif, ok := vifs[port]
				if !ok {
					t.Fatalf("port %s of %s is no port of the topology", port, br)
				}
				p.Type, p.Tag = "internal", lvidOf[vif.NetworkID]
				p.ExternalIDs = map[string]string{"iface-id": vif.ID, "attached-mac": vif.MAC}
			}
			b.Ports = append(b.Ports, p)
		}
		inv.Bridges = append(inv.Bridges, b)
	}
	n := Node{Inventory: inv, Model: &snap.Model}
	if h := snap.Host; h != nil {
		if h.Name != nil {
			n.Host = *h.Name
		}
		if h.DVRMAC != nil {
			n.DVRMAC = *h.DVRMAC
		}
		n.BridgeMappings = h.BridgeMappings
	}
	return n, ref
}

// TestScenarios explains every flow Neutron's own agent installed for each scenario (with
// cookies that mean nothing, as Neutron's): each must get a rule, and the rules that concern
// an object must name it.
func TestScenarios(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "neutron", "scenarios", "*.json"))
	if len(files) == 0 {
		t.Fatal("no scenarios")
	}
	seen := map[string]bool{}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			node, ref := scenarioNode(t, name)
			e := New(node)
			for _, br := range ref.Order {
				for i, line := range ref.Bridges[br].Lines {
					line = strings.Replace(line, "cookie=COOKIE", fmt.Sprintf("cookie=%#x", 0x5a5a0000+i), 1)
					fl, err := dumptext.ParseLine(line, nil)
					if err != nil {
						t.Fatal(err)
					}
					got := e.Explain(br, &fl)
					seen[got.Rule] = true
					switch {
					case got.Rule == "":
						t.Errorf("%s: no rule for %s", br, line)
					case got.Owner == nil:
						t.Errorf("%s: rule %s, no owner for %s", br, got.Rule, line)
					case Concerns(got.Rule) != "" && (got.Owner.Kind != Concerns(got.Rule) || got.Owner.ID == "") &&
						!(Concerns(got.Rule) == KindPort && got.Owner.Kind == KindTunnel && got.Owner.ID != ""): // an l2pop entry of no known port
						t.Errorf("%s: rule %s owner %+v, want a %s with an id: %s", br, got.Rule, *got.Owner, Concerns(got.Rule), line)
					}
					if got.TableName == "" {
						t.Errorf("%s: table %d unnamed", br, fl.Table)
					}
				}
			}
		})
	}
	// The scenarios exercise most of the catalogue; these must all have been recognised.
	for _, id := range []string{"I1", "I2", "I6", "I14", "I15", "I18", "I22", "I26", "I28", "I30", "I31", "I32", "I33", "T11", "T12", "T13", "T14", "T16", "T17", "T20", "T21", "T22", "T23", "P3-vlan", "P4", "P9", "P10", "P11"} {
		if !seen[id] {
			t.Errorf("no scenario flow was recognised as %s", id)
		}
	}
}

// TestSpotChecks pins the owner of particular flows of the scenarios.
func TestSpotChecks(t *testing.T) {
	for _, tc := range []struct {
		scenario, bridge, line string
		rule                   string
		owner                  Owner
	}{
		{"dvr_vlan", "br-int", "cookie=0x1, table=2, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:11 actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:59",
			"I30", Owner{KindPort, "c0000001-0000-4000-8000-000000000001", "tapc0000001-00"}},
		{"dvr_vlan", "br-int", "cookie=0x1, priority=4,in_port=1,dl_src=fa:16:3f:00:00:02 actions=goto_table:2",
			"I26", Owner{KindHost, "compute2", "fa:16:3f:00:00:02"}},
		{"dvr_vlan", "br-int", "cookie=0x1, priority=3,in_port=1,dl_vlan=197 actions=set_field:4098->vlan_vid,goto_table:59",
			"I15", Owner{KindNetwork, "a0000002-0000-4000-8000-000000000002", "vlan 197"}},
		{"dvr_vlan", "br-int", "cookie=0x1, priority=2,in_port=1 actions=drop",
			"I14", Owner{KindBridge, "br-vlan", "physnet1"}},
		{"dvr_vxlan_l2pop", "br-tun", "cookie=0x1, priority=1,in_port=2 actions=goto_table:4",
			"T11", Owner{KindTunnel, "192.168.100.12", "vxlan-c0a8640c"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			node, _ := scenarioNode(t, tc.scenario)
			fl, err := dumptext.ParseLine(tc.line, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := New(node).Explain(tc.bridge, &fl)
			if got.Rule != tc.rule || got.Owner == nil || *got.Owner != tc.owner {
				t.Errorf("Explain = %s %+v, want %s %+v", got.Rule, got.Owner, tc.rule, tc.owner)
			}
		})
	}
}

// TestOwnerFromOurCookie: a dvrflow flow's owner comes from its cookie, even where the
// flow's fields name nothing this node knows.
func TestOwnerFromOurCookie(t *testing.T) {
	node, _ := scenarioNode(t, "dvr_vlan")
	e := New(node)
	id := "c0000002-0000-4000-8000-000000000002"
	line := fmt.Sprintf("cookie=%#x, table=2, priority=20,dl_vlan=196,dl_dst=fa:16:3e:99:99:99 actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:59", flows.Cookie(flows.CategoryDVRServicedPort, id))
	fl, err := dumptext.ParseLine(line, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := e.Explain("br-int", &fl)
	if got.Rule != "I30" || got.Owner == nil || got.Owner.ID != id {
		t.Errorf("Explain = %s %+v, want I30 owned by port %s", got.Rule, got.Owner, id)
	}
	// The same flow with a foreign cookie: the unknown MAC names no port.
	fl.Cookie = 0x1234
	if got := e.Explain("br-int", &fl); got.Owner != nil && got.Owner.ID == id {
		t.Errorf("foreign cookie: owner %+v taken from nowhere", got.Owner)
	}
}

// TestUnknownFlowsAreListedUnrecognised: a flow of no rule gets no rule (and is not hidden).
func TestUnknownFlowsAreListedUnrecognised(t *testing.T) {
	node, _ := scenarioNode(t, "dvr_vlan")
	e := New(node)
	for _, line := range []string{
		"cookie=0x1, table=40, priority=7,ip actions=drop",
		"cookie=0x1, table=0, priority=123,udp actions=NORMAL",
	} {
		fl, err := dumptext.ParseLine(line, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := e.Explain("br-int", &fl); got.Rule != "" {
			t.Errorf("%s: rule %s, want none", line, got.Rule)
		}
	}
}

// TestRulesDocumented: every rule id the explainer can answer is in docs/cli/rules.md.
func TestRulesDocumented(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "docs", "cli", "rules.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range RuleIDs() {
		if !regexp.MustCompile(`(^|[ |,])` + regexp.QuoteMeta(id) + `([ |,]|$)`).Match(doc) {
			t.Errorf("rule %s is not in docs/cli/rules.md", id)
		}
	}
}
