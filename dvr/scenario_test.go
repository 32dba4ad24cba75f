package dvr_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/state"
)

// Ids of testdata/neutron/scenarios/dvr_vlan.json.
const (
	vlanNet1    = "a0000001-0000-4000-8000-000000000001"
	vlanNet2    = "a0000002-0000-4000-8000-000000000002"
	vlanSubnet1 = "b0000001-0000-4000-8000-000000000001"
	vlanSubnet2 = "b0000002-0000-4000-8000-000000000002"
	vlanQR1     = "d0000001-0000-4000-8000-000000000001"
	vlanQR2     = "d0000002-0000-4000-8000-000000000002"
	vlanVM1     = "c0000001-0000-4000-8000-000000000001"
	vlanVM2     = "c0000002-0000-4000-8000-000000000002"
	vlanVM3     = "c0000003-0000-4000-8000-000000000003"
)

// dvrVLANNode is testdata/neutron/scenarios/dvr_vlan.json resolved for compute1, with the ofports
// and local VLANs of the header of dvr_vlan.flows.
func dvrVLANNode() *state.Node {
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "dvr", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:    []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
			Distributed: true, DVRMAC: mac("fa:16:3f:00:00:01"), PreventARPSpoofing: true,
		},
		Networks: []state.Network{
			{ID: vlanNet1, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 196, LocalVLAN: 1, MTU: 1500},
			{ID: vlanNet2, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 197, LocalVLAN: 2, MTU: 1500},
		},
		Subnets: []state.Subnet{
			subnet(vlanSubnet1, vlanNet1, "10.0.1.0/24", "fa:16:3e:aa:01:01"),
			subnet(vlanSubnet2, vlanNet2, "10.0.2.0/24", "fa:16:3e:aa:02:01"),
		},
		Ports: []state.Port{
			port(2, vlanQR1, vlanNet1, "fa:16:3e:aa:01:01", northbound.OwnerRouterInterfaceDistributed, vlanSubnet1, "10.0.1.1"),
			port(3, vlanQR2, vlanNet2, "fa:16:3e:aa:02:01", northbound.OwnerRouterInterfaceDistributed, vlanSubnet2, "10.0.2.1"),
			port(4, vlanVM1, vlanNet1, "fa:16:3e:00:01:11", "compute:nova", vlanSubnet1, "10.0.1.11"),
			port(5, vlanVM2, vlanNet1, "fa:16:3e:00:01:12", "compute:nova", vlanSubnet1, "10.0.1.12"),
			port(6, vlanVM3, vlanNet2, "fa:16:3e:00:02:11", "compute:nova", vlanSubnet2, "10.0.2.11"),
		},
		RemoteHosts: []state.RemoteHost{
			{Name: "compute2", DVRMAC: mac("fa:16:3f:00:00:02")},
			{Name: "compute3", DVRMAC: mac("fa:16:3f:00:00:03")},
		},
	}
}

// dvrVXLANNode is testdata/neutron/scenarios/dvr_vxlan_l2pop.json resolved for compute1 (ofports
// and local VLANs from dvr_vxlan_l2pop.flows). The subnets' gateway MACs default to the MAC
// of the port holding the gateway IP, the local qr ports. The FDB is what l2population
// derives from remote_ports and l2pop_fdb: per remote VTEP a flooding entry and every port
// but a distributed router interface.
func dvrVXLANNode() *state.Node {
	const (
		net1, net2 = "a0000011-0000-4000-8000-000000000011", "a0000012-0000-4000-8000-000000000012"
		sub1, sub2 = "b0000011-0000-4000-8000-000000000011", "b0000012-0000-4000-8000-000000000012"
	)
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "dvr", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			TunnelTypes: []northbound.NetworkType{northbound.VXLAN}, LocalIP: addr("192.168.100.11"), PatchTun: 1, PatchInt: 1,
			Distributed: true, L2Population: true, ARPResponder: true, DVRMAC: mac("fa:16:3f:00:00:01"),
			PreventARPSpoofing: true,
		},
		Networks: []state.Network{
			{ID: net1, Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 1, MTU: 1450},
			{ID: net2, Type: northbound.VXLAN, SegmentationID: 1002, LocalVLAN: 2, MTU: 1450},
		},
		Subnets: []state.Subnet{
			subnet(sub1, net1, "10.1.1.0/24", "fa:16:3e:bb:01:01"),
			subnet(sub2, net2, "10.1.2.0/24", "fa:16:3e:bb:02:01"),
		},
		Ports: []state.Port{
			port(2, "d0000011-0000-4000-8000-000000000011", net1, "fa:16:3e:bb:01:01", northbound.OwnerRouterInterfaceDistributed, sub1, "10.1.1.1"),
			port(3, "d0000012-0000-4000-8000-000000000012", net2, "fa:16:3e:bb:02:01", northbound.OwnerRouterInterfaceDistributed, sub2, "10.1.2.1"),
			port(4, "c0000011-0000-4000-8000-000000000011", net1, "fa:16:3e:10:01:11", "compute:nova", sub1, "10.1.1.11"),
			port(5, "c0000012-0000-4000-8000-000000000012", net2, "fa:16:3e:10:02:11", "compute:nova", sub2, "10.1.2.11"),
		},
		RemoteHosts: []state.RemoteHost{
			{Name: "compute2", IP: addr("192.168.100.12"), DVRMAC: mac("fa:16:3f:00:00:02"), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}},
			{Name: "network1", IP: addr("192.168.100.13"), DVRMAC: mac("fa:16:3f:00:00:03"), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}},
		},
		TunnelPorts: []state.TunnelPort{
			{Name: "vxlan-c0a8640c", Type: northbound.VXLAN, RemoteIP: addr("192.168.100.12"), OFPort: 2},
			{Name: "vxlan-c0a8640d", Type: northbound.VXLAN, RemoteIP: addr("192.168.100.13"), OFPort: 3},
		},
		FDB: []state.FDB{
			{NetworkID: net1, RemoteIP: addr("192.168.100.12"), Flood: true, Entries: []state.FDBEntry{
				{MAC: mac("fa:16:3e:20:01:21"), IP: addr("10.1.1.21")}}},
			{NetworkID: net1, RemoteIP: addr("192.168.100.13"), Flood: true, Entries: []state.FDBEntry{
				{MAC: mac("fa:16:3e:30:01:02"), IP: addr("10.1.1.2")}, {MAC: mac("fa:16:3e:30:01:03"), IP: addr("10.1.1.3")}}},
			{NetworkID: net2, RemoteIP: addr("192.168.100.12"), Flood: true, Entries: []state.FDBEntry{
				{MAC: mac("fa:16:3e:20:02:21"), IP: addr("10.1.2.21")}}},
			{NetworkID: net2, RemoteIP: addr("192.168.100.13"), Flood: true, Entries: []state.FDBEntry{
				{MAC: mac("fa:16:3e:30:02:02"), IP: addr("10.1.2.2")}}},
		},
	}
}

// isDVRLine reports whether a dump line of a bridge is one of the DVR flows of §2.9 (the
// ones dvr.Generate owns), by table and priority; patch ofports tell I14/T17 from port flows
// of the same priority.
func isDVRLine(n *state.Node, role, line string) bool {
	table, prio := 0, 0
	rest := line
	if strings.HasPrefix(rest, "table=") {
		fmt.Sscanf(rest, "table=%d, ", &table)
		_, rest, _ = strings.Cut(rest, ", ")
	}
	fmt.Sscanf(rest, "priority=%d", &prio)
	inPort := func(p uint32) bool {
		return p != 0 && (strings.Contains(rest, fmt.Sprintf(",in_port=%d,", p)) || strings.Contains(rest, fmt.Sprintf(",in_port=%d ", p)))
	}
	switch role {
	case dvr.RoleIntegration:
		switch table {
		case 0:
			if prio == 99 || prio == 5 || prio == 4 {
				return true
			}
			if prio == 2 {
				for _, p := range n.Host.Physical {
					if inPort(p.IntPort) {
						return true
					}
				}
				return inPort(n.Host.PatchTun)
			}
		case 1, 2, 3, 4, 23:
			return true
		case 60:
			return prio == 20
		}
	case dvr.RolePhysical:
		switch table {
		case 0:
			return prio == 2 || prio == 1
		case 1, 3, 22:
			return true
		case 2:
			return prio == 2
		}
	case dvr.RoleTunnel:
		switch table {
		case 0:
			return prio == 1 && inPort(n.Host.PatchInt)
		case 1, 9:
			return true
		case 22:
			return prio == 3
		}
	}
	return false
}

// roles maps the node's bridges to their roles.
func roles(n *state.Node) map[string]string {
	m := map[string]string{n.Host.IntegrationBridge: dvr.RoleIntegration}
	if n.Host.Tunnelling() {
		m[n.Host.TunnelBridge] = dvr.RoleTunnel
	}
	for _, p := range n.Host.Physical {
		m[p.Bridge] = dvr.RolePhysical
	}
	return m
}

// compareDVRPart requires dvr.Generate's flows to equal the DVR lines of Neutron's dump on
// every bridge, except for the documented differences.
func compareDVRPart(t *testing.T, n *state.Node, dump map[string][]string) {
	t.Helper()
	got := generate(n)
	for br, role := range roles(n) {
		var want []string
		for _, l := range dump[br] {
			if isDVRLine(n, role, l) {
				want = append(want, l)
			}
		}
		ours := lines(got[br])
		for _, l := range ours {
			if !isDVRLine(n, role, l) {
				t.Errorf("%s: dvr.Generate made a flow outside the DVR tables: %s", br, l)
			}
		}
		compareWithNeutron(t, br, role, want, ours)
	}
}

// TestDVRFlowsMatchNeutronVLAN: dvr.Generate's flows for dvr_vlan are exactly the DVR
// lines of Neutron's dump (br-int, br-vlan), but for the documented differences.
func TestDVRFlowsMatchNeutronVLAN(t *testing.T) {
	compareDVRPart(t, dvrVLANNode(), readDump(t, "dvr_vlan.flows"))
}

// TestDVRFlowsMatchNeutronVXLAN: the same for dvr_vxlan_l2pop: br-int tables 0/1/2/3/23/60
// and br-tun tables 0/1/9/22.
func TestDVRFlowsMatchNeutronVXLAN(t *testing.T) {
	compareDVRPart(t, dvrVXLANNode(), readDump(t, "dvr_vxlan_l2pop.flows"))
}

// TestPipelineMatchesNeutron: the whole pipeline (l2, tunnels and dvr) equals Neutron's
// dump line for line on every bridge, but for the documented differences.
func TestPipelineMatchesNeutron(t *testing.T) {
	for _, tt := range []struct {
		dump string
		node *state.Node
	}{
		{"dvr_vlan.flows", dvrVLANNode()},
		{"dvr_vxlan_l2pop.flows", dvrVXLANNode()},
	} {
		t.Run(tt.dump, func(t *testing.T) {
			dump := readDump(t, tt.dump)
			got := pipeline.Build(tt.node)
			for br, role := range roles(tt.node) {
				compareWithNeutron(t, br, role, dump[br], lines(got[br]))
			}
		})
	}
}
