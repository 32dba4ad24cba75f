package l2

import (
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
)

// The expected lines are copied from testdata/neutron/scenarios/legacy_vlan.flows (Neutron
// 21's own agent on OVS 3.1), with "cookie=COOKIE, " removed.
func TestBaselineMatchesNeutron(t *testing.T) {
	integ, phys := PhysicalBaseline(PhysicalBridge{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}, false)
	tests := []struct {
		name string
		got  []flows.Flow
		want []string
	}{
		{"br-int", flows.FlowsOf(append(IntegrationBaseline(), integ...)), []string{
			"priority=65535,dl_vlan=4095 actions=drop",
			"priority=2,in_port=1 actions=drop",
			"priority=0 actions=goto_table:59",
			"table=23, priority=0 actions=drop",
			"table=24, priority=0 actions=drop",
			"table=30, priority=0 actions=goto_table:59",
			"table=31, priority=0 actions=goto_table:59",
			"table=59, priority=0 actions=goto_table:60",
			"table=60, priority=3 actions=NORMAL",
			"table=62, priority=3 actions=NORMAL",
		}},
		{"br-vlan", flows.FlowsOf(phys), []string{
			"priority=2,in_port=1 actions=drop",
			"priority=0 actions=NORMAL",
		}},
	}
	for _, tt := range tests {
		flows.Sort(tt.got)
		var got []string
		for _, f := range tt.got {
			if !flows.IsOurs(f.Cookie) {
				t.Errorf("%s: flow without our cookie: %s", tt.name, f)
			}
			f.Cookie = 0
			got = append(got, f.String())
		}
		if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s:\ngot\n%s\nwant\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
}

func TestDistributedPhysicalBaselineHasNoOutboundDrop(t *testing.T) {
	_, phys := PhysicalBaseline(PhysicalBridge{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}, true)
	for _, f := range phys {
		if f.Match.Has(flows.FieldInPort) {
			t.Fatalf("DVR physical baseline must not drop from br-int (P2 is legacy only): %s", f)
		}
	}
}
