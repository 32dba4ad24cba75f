package dvr_test

import (
	"regexp"
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/dvr"
)

func TestDifferencePatternsCompile(t *testing.T) {
	roles := []string{dvr.RoleIntegration, dvr.RoleTunnel, dvr.RolePhysical}
	for _, d := range dvr.NeutronDifferences {
		if _, err := regexp.Compile(d.Neutron); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
		if !slices.Contains(roles, d.Bridge) {
			t.Errorf("%s: unknown bridge role %q", d.Name, d.Bridge)
		}
		if d.Ours == "" && !d.AfterRemoval {
			t.Errorf("%s: a difference in a fresh dump must name our line", d.Name)
		}
	}
}

func TestExplain(t *testing.T) {
	const (
		neutronARP = "cookie=COOKIE, table=22, priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1 actions=drop"
		oursARP    = "cookie=COOKIE, table=1, priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1 actions=drop"
		neutronRA  = "table=22, priority=3,icmp6,dl_vlan=2,dl_src=fa:16:3e:dd:02:01,icmp_type=134 actions=drop"
		oursRA     = "table=1, priority=3,icmp6,dl_vlan=2,dl_src=fa:16:3e:dd:02:01,icmp_type=134 actions=drop"
		leaked     = "table=4, priority=5,dl_vlan=1,dl_dst=fa:16:3f:00:00:01 actions=set_field:fa:16:3e:aa:01:01->eth_dst,pop_vlan,output:2"
	)
	tests := []struct {
		name                 string
		role                 string
		neutron, ours        []string
		afterRemoval         bool
		wantNeutron, wantOur []string
	}{
		{"gateway ARP and RA drops move to table 1", dvr.RolePhysical,
			[]string{neutronARP, neutronRA}, []string{oursRA, oursARP}, false, nil, nil},
		{"our line must carry Neutron's values", dvr.RolePhysical,
			[]string{neutronARP}, []string{"cookie=COOKIE, table=1, priority=3,arp,dl_vlan=2,arp_tpa=10.0.1.1 actions=drop"}, false,
			[]string{neutronARP}, []string{"cookie=COOKIE, table=1, priority=3,arp,dl_vlan=2,arp_tpa=10.0.1.1 actions=drop"}},
		{"a missing drop is not explained", dvr.RolePhysical,
			[]string{neutronARP}, nil, false, []string{neutronARP}, nil},
		{"one of our lines explains one Neutron line", dvr.RolePhysical,
			[]string{neutronARP, neutronARP}, []string{oursARP}, false, []string{neutronARP}, nil},
		{"differences are per bridge role", dvr.RoleTunnel,
			[]string{neutronARP}, []string{oursARP}, false, []string{neutronARP}, []string{oursARP}},
		{"a leaked table-4 flow is no difference in a fresh dump", dvr.RoleIntegration,
			[]string{leaked}, nil, false, []string{leaked}, nil},
		{"a leaked table-4 flow is one after a removal", dvr.RoleIntegration,
			[]string{leaked}, nil, true, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, o := dvr.Explain(tt.role, tt.neutron, tt.ours, tt.afterRemoval)
			if !slices.Equal(n, tt.wantNeutron) || !slices.Equal(o, tt.wantOur) {
				t.Errorf("unexplained: Neutron %q, ours %q; want %q, %q", n, o, tt.wantNeutron, tt.wantOur)
			}
		})
	}
}
