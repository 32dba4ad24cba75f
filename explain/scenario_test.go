package explain_test

import (
	"fmt"
	"github.com/dvrflow/dvrflow/explain"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// scenarioNode is the explainer's view of a switch Neutron's agent programmed for a
// scenario (testbed.ScenarioInventory) with the scenario's topology.
func scenarioNode(t *testing.T, name string) (explain.Node, *testbed.Reference) {
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
	inv, err := testbed.ScenarioInventory(ref, topo)
	if err != nil {
		t.Fatal(err)
	}
	snap := topo.Snapshot()
	n := explain.Node{Inventory: inv, Model: &snap.Model}
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
			e := explain.New(node)
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
					case explain.Concerns(got.Rule) != "" && (got.Owner.Kind != explain.Concerns(got.Rule) || got.Owner.ID == "") &&
						!(explain.Concerns(got.Rule) == explain.KindPort && got.Owner.Kind == explain.KindTunnel && got.Owner.ID != ""): // an l2pop entry of no known port
						t.Errorf("%s: rule %s owner %+v, want a %s with an id: %s", br, got.Rule, *got.Owner, explain.Concerns(got.Rule), line)
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
		owner                  explain.Owner
	}{
		{"dvr_vlan", "br-int", "cookie=0x1, table=2, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:11 actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:59",
			"I30", explain.Owner{explain.KindPort, "c0000001-0000-4000-8000-000000000001", "tapc0000001-00"}},
		{"dvr_vlan", "br-int", "cookie=0x1, priority=4,in_port=1,dl_src=fa:16:3f:00:00:02 actions=goto_table:2",
			"I26", explain.Owner{explain.KindHost, "compute2", "fa:16:3f:00:00:02"}},
		{"dvr_vlan", "br-int", "cookie=0x1, priority=3,in_port=1,dl_vlan=197 actions=set_field:4098->vlan_vid,goto_table:59",
			"I15", explain.Owner{explain.KindNetwork, "a0000002-0000-4000-8000-000000000002", "vlan 197"}},
		{"dvr_vlan", "br-int", "cookie=0x1, priority=2,in_port=1 actions=drop",
			"I14", explain.Owner{explain.KindBridge, "br-vlan", "physnet1"}},
		{"dvr_vxlan_l2pop", "br-tun", "cookie=0x1, priority=1,in_port=2 actions=goto_table:4",
			"T11", explain.Owner{explain.KindTunnel, "192.168.100.12", "vxlan-c0a8640c"}},
	} {
		t.Run(tc.rule, func(t *testing.T) {
			node, _ := scenarioNode(t, tc.scenario)
			fl, err := dumptext.ParseLine(tc.line, nil)
			if err != nil {
				t.Fatal(err)
			}
			got := explain.New(node).Explain(tc.bridge, &fl)
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
	e := explain.New(node)
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
	e := explain.New(node)
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
	for _, id := range explain.RuleIDs() {
		if !regexp.MustCompile(`(^|[ |,])` + regexp.QuoteMeta(id) + `([ |,]|$)`).Match(doc) {
			t.Errorf("rule %s is not in docs/cli/rules.md", id)
		}
	}
}

// TestFirewallFlows: the OVS firewall's flows (shapes of Neutron's openvswitch driver) get
// their table's rule id and the port they concern, by reg5 (the port's ofport), in_port or
// destination MAC; flows of no port belong to the bridge.
func TestFirewallFlows(t *testing.T) {
	node, _ := scenarioNode(t, "dvr_vlan") // tapc0000001-00 has ofport 4, MAC fa:16:3e:00:01:11
	e := explain.New(node)
	port := explain.Owner{Kind: explain.KindPort, ID: "c0000001-0000-4000-8000-000000000001", Name: "tapc0000001-00"}
	bridge := explain.Owner{Kind: explain.KindBridge, ID: "br-int", Name: "br-int"}
	for _, tc := range []struct {
		line  string
		rule  string
		owner explain.Owner
	}{
		{"table=60, priority=100,in_port=4 actions=load:0x4->NXM_NX_REG5[],load:0x1->NXM_NX_REG6[],resubmit(,71)", "F60-egress", port},
		{"table=60, priority=90,dl_vlan=1,dl_dst=fa:16:3e:00:01:11 actions=load:0x4->NXM_NX_REG5[],load:0x1->NXM_NX_REG6[],strip_vlan,resubmit(,81)", "F60-ingress", port},
		{"table=71, priority=65,ip,reg5=0x4,in_port=4,dl_src=fa:16:3e:00:01:11,nw_src=10.0.1.11 actions=ct(table=72,zone=NXM_NX_REG6[0..15])", "F71", port},
		{"table=72, priority=77,ct_state=+est-rel-rpl,ip,reg5=0x4 actions=resubmit(,73)", "F72", port},
		{"table=73, priority=100,reg6=0x1,dl_dst=fa:16:3e:00:01:11 actions=load:0x4->NXM_NX_REG5[],resubmit(,81)", "F73", port},
		{"table=81, priority=100,arp,reg5=0x4 actions=output:4", "F81", port},
		{"table=82, priority=77,ct_state=+est-rel-rpl,ip,reg5=0x4 actions=output:4", "F82", port},
		{"table=91, priority=1 actions=resubmit(,94)", "F91", bridge},
		{"table=94, priority=12,reg6=0x1,dl_dst=fa:16:3e:00:01:11 actions=output:4", "F94", port},
		{"table=94, priority=1 actions=NORMAL", "F94", bridge},
	} {
		fl, err := dumptext.ParseLine("cookie=0x77, "+tc.line, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Explain("br-int", &fl)
		if got.Rule != tc.rule || got.Owner == nil || *got.Owner != tc.owner {
			t.Errorf("%s:\n got %s %+v, want %s %+v", tc.line, got.Rule, got.Owner, tc.rule, tc.owner)
		}
	}
}
