package tunnels

import (
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// T13 lists its tunnel ports by the peer's address, not by ofport: ovs-vswitchd numbers the
// ports of one transaction in no set order, and the flow must not depend on it
// (docs/neutron-differences.md, "Flooding lists its ports by peer address").
func TestFloodOrderFollowsPeerAddress(t *testing.T) {
	for _, tt := range []struct {
		name  string
		l2pop bool
	}{{"full mesh", false}, {"l2population", true}} {
		t.Run(tt.name, func(t *testing.T) {
			n := &state.Node{
				Host:     host([]northbound.NetworkType{northbound.VXLAN}, tt.l2pop, false),
				Networks: []state.Network{{ID: "net-a", Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 1}},
				// ip14 got the lowest ofport, ip12 the highest.
				TunnelPorts: []state.TunnelPort{tport(northbound.VXLAN, ip14, 2), tport(northbound.VXLAN, ip13, 3), tport(northbound.VXLAN, ip12, 4)},
				FDB: []state.FDB{
					{NetworkID: "net-a", RemoteIP: ip14, Flood: true},
					{NetworkID: "net-a", RemoteIP: ip12, Flood: true},
					{NetworkID: "net-a", RemoteIP: ip13, Flood: true},
				},
			}
			out := map[string][]flows.Flow{}
			Generate(n, out)
			var flood []string
			for _, f := range out["br-tun"] {
				if f.Table == uint8(flows.TunFloodToTun) && f.Priority == 1 {
					flood = append(flood, f.String())
				}
			}
			if len(flood) != 1 || !strings.HasSuffix(flood[0], "output:4,output:3,output:2") {
				t.Errorf("flooding flows %q, want one ending output:4,output:3,output:2 (192.168.100.12, .13, .14)", flood)
			}
		})
	}
}
