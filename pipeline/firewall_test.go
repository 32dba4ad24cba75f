package pipeline

import (
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/firewall"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/l2"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

// firewallNode is a DVR node with every generator's flows and the firewall on: a VLAN and
// a VXLAN network joined by a distributed router, a filtered VM on each, a VM without port
// security, the router's qr- ports, a remote VTEP with a DVR MAC.
func firewallNode() *state.Node {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			panic(err)
		}
		return m
	}
	const vlanNet, vxlanNet = "net-vlan", "net-vxlan"
	gw1, gw2 := mac("fa:16:3e:aa:00:01"), mac("fa:16:3e:aa:00:02")
	vm := func(id, network, m, ip string, ofport uint32, security bool) state.Port {
		return state.Port{ID: id, Name: "tap" + id, NetworkID: network, MAC: mac(m), DeviceOwner: "compute:nova",
			FixedIPs: []state.FixedIP{{SubnetID: "sub-" + network, IP: netip.MustParseAddr(ip)}}, PortSecurity: security,
			SecurityGroups: []string{"sg"}, OFPort: ofport}
	}
	qr := func(id, network string, m net.HardwareAddr, ip string, ofport uint32) state.Port {
		return state.Port{ID: id, Name: "qr-" + id, NetworkID: network, MAC: m, DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
			DeviceID: "router", FixedIPs: []state.FixedIP{{SubnetID: "sub-" + network, IP: netip.MustParseAddr(ip)}}, OFPort: ofport}
	}
	return &state.Node{
		Host: state.Host{
			Name: "h1", AgentMode: northbound.ModeDVR, IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:    []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
			TunnelTypes: []northbound.NetworkType{northbound.VXLAN}, LocalIP: netip.MustParseAddr("192.0.2.1"),
			PatchTun: 2, PatchInt: 1, Distributed: true, L2Population: true, ARPResponder: true,
			DVRMAC: mac("fa:16:3f:00:00:01"), Firewall: true, PermittedEthertypes: []uint16{0x4008},
		},
		Networks: []state.Network{
			{ID: vlanNet, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 107, LocalVLAN: 1},
			{ID: vxlanNet, Type: northbound.VXLAN, SegmentationID: 1007, LocalVLAN: 2},
		},
		Subnets: []state.Subnet{
			{ID: "sub-" + vlanNet, NetworkID: vlanNet, CIDR: netip.MustParsePrefix("10.1.0.0/24"), GatewayIP: netip.MustParseAddr("10.1.0.1"), GatewayMAC: gw1, IPVersion: 4},
			{ID: "sub-" + vxlanNet, NetworkID: vxlanNet, CIDR: netip.MustParsePrefix("10.2.0.0/24"), GatewayIP: netip.MustParseAddr("10.2.0.1"), GatewayMAC: gw2, IPVersion: 4},
		},
		Ports: []state.Port{
			vm("vm1", vlanNet, "fa:16:3e:00:00:01", "10.1.0.11", 3, true),
			vm("vm2", vxlanNet, "fa:16:3e:00:00:02", "10.2.0.11", 4, true),
			qr("qr1", vlanNet, gw1, "10.1.0.1", 5),
			qr("qr2", vxlanNet, gw2, "10.2.0.1", 6),
			vm("vm3", vxlanNet, "fa:16:3e:00:00:03", "10.2.0.12", 7, false),
		},
		RemoteHosts:    []state.RemoteHost{{Name: "h2", IP: netip.MustParseAddr("192.0.2.2"), DVRMAC: mac("fa:16:3f:00:00:02"), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}}},
		TunnelPorts:    []state.TunnelPort{{Name: "vxlan-c0000202", Type: northbound.VXLAN, RemoteIP: netip.MustParseAddr("192.0.2.2"), OFPort: 2}},
		SecurityGroups: []state.SecurityGroup{{ID: "sg", Stateful: true}},
	}
}

// isFirewallTable reports whether t is one of the tables the firewall owns alone (71–94).
func isFirewallTable(t uint8) bool {
	return t >= uint8(flows.IntBaseEgress) && t <= uint8(flows.IntAcceptedEgressTrafficNormal)
}

// TestFirewallCollidesWithNothing backs the firewall's place in Compose (package doc): on a
// node with every generator's flows, the firewall writes only br-int, only in its own
// tables and table 60, shares no (table, priority, match) with l2, tunnels or DVR, and
// every one of its flows is installed as it made it. With the firewall on, l2 leaves
// tables 24/25 to it (only table 24's default drop, nothing in 25, no table-0 flow to
// either); with it off, nothing of the firewall's is there.
func TestFirewallCollidesWithNothing(t *testing.T) {
	n := firewallNode()
	n.Host.PreventARPSpoofing = false // as the controller sets it with the firewall on
	fw := map[string][]flows.Flow{}
	firewall.Generate(n, fw)
	if len(fw["br-int"]) == 0 {
		t.Fatal("the firewall generates nothing for br-int")
	}
	for br, fs := range fw {
		if br != "br-int" && len(fs) > 0 {
			t.Errorf("the firewall writes %d flows on %s", len(fs), br)
		}
	}
	fwKeys := map[flows.Key]bool{}
	for _, f := range fw["br-int"] {
		if !isFirewallTable(f.Table) && f.Table != uint8(flows.IntTransient) {
			t.Errorf("a firewall flow outside tables 60 and 71–94: %s", f)
		}
		fwKeys[f.Key()] = true
	}

	others := map[string]func(*state.Node, map[string][]flows.Flow){"l2": l2.Generate, "tunnels": tunnels.Generate, "dvr": dvr.Generate}
	for name, generate := range others {
		out := map[string][]flows.Flow{}
		generate(n, out)
		for _, f := range out["br-int"] {
			if fwKeys[f.Key()] {
				t.Errorf("%s's flow has the key of a firewall flow: %s", name, f)
			}
			if isFirewallTable(f.Table) {
				t.Errorf("%s writes in the firewall's table %d: %s", name, f.Table, f)
			}
		}
	}

	built := Build(n)["br-int"]
	var lines []string
	for _, f := range built {
		lines = append(lines, f.String())
	}
	for _, f := range fw["br-int"] {
		if !slices.Contains(lines, f.String()) {
			t.Errorf("a firewall flow is not installed as made: %s", f)
		}
	}
	for _, f := range built {
		switch {
		case f.Table == uint8(flows.IntMACSpoof):
			t.Errorf("table 25 with the firewall on: %s", f)
		case f.Table == uint8(flows.IntARPSpoof) && f.Priority != 0:
			t.Errorf("table 24 holds more than its default drop: %s", f)
		case f.Table == uint8(flows.IntLocalSwitching) && slices.ContainsFunc(f.Actions, func(a flows.Action) bool {
			return a == flows.Goto(flows.IntARPSpoof) || a == flows.Goto(flows.IntMACSpoof)
		}):
			t.Errorf("table 0 sends traffic to the spoofing tables: %s", f)
		}
	}

	n.Host.Firewall, n.Host.PreventARPSpoofing = false, true
	for _, f := range Build(n)["br-int"] {
		if isFirewallTable(f.Table) || (f.Table == uint8(flows.IntTransient) && f.Priority >= 90) {
			t.Errorf("a firewall flow with the firewall off: %s", f)
		}
	}
}
