package controller

import (
	"net"
	"net/netip"
	"testing"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
)

// TestRouterInputNorthSouth checks that the router-namespace input carries what the SNAT
// side needs from the model: the routers' gateways, this host's agent_mode and the remote
// centralized SNAT ports with their routers (device_id).
func TestRouterInputNorthSouth(t *testing.T) {
	mac := func(s string) net.HardwareAddr {
		m, err := net.ParseMAC(s)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	fixed := func(subnet, ip string) []northbound.FixedIP {
		return []northbound.FixedIP{{SubnetID: subnet, IP: netip.MustParseAddr(ip)}}
	}
	m := &northbound.Model{
		Networks: []northbound.Network{{ID: "n1", Type: "vxlan", SegmentationID: 10}, {ID: "ext", Type: "flat", Physnet: "public", External: true}},
		Subnets: []northbound.Subnet{
			{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.1.0/24"), GatewayIP: netip.MustParseAddr("10.0.1.1"), IPVersion: 4},
			{ID: "sext", NetworkID: "ext", CIDR: netip.MustParsePrefix("203.0.113.0/24"), GatewayIP: netip.MustParseAddr("203.0.113.1"), IPVersion: 4},
		},
		Ports: []northbound.Port{
			{ID: "qr1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:01"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
				DeviceID: "r1", FixedIPs: fixed("s1", "10.0.1.1")},
			{ID: "qg1", NetworkID: "ext", MAC: mac("fa:16:3e:00:00:02"), DeviceOwner: northbound.OwnerRouterGateway,
				DeviceID: "r1", FixedIPs: fixed("sext", "203.0.113.10")},
		},
		RemotePorts: []northbound.RemotePort{
			{Host: "net1", ID: "sg1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:03"), DeviceOwner: northbound.OwnerRouterCentralizedSNAT,
				DeviceID: "r1", FixedIPs: fixed("s1", "10.0.1.5")},
		},
		Routers: []northbound.Router{{ID: "r1", Distributed: true, Gateway: &northbound.RouterGateway{NetworkID: "ext", EnableSNAT: true}}},
	}

	// A compute node: the redirect points at the network node's sg- port; no snat namespace.
	routers := namespace.Desired(routerInput(m, northbound.ModeDVR))
	if len(routers) != 1 || routers[0].SNAT != nil {
		t.Fatalf("dvr: Desired = %+v, want one router without a snat namespace", routers)
	}
	want := namespace.Route{Table: 167772417, Dst: netip.MustParsePrefix("0.0.0.0/0"), Via: netip.MustParseAddr("10.0.1.5"),
		Device: namespace.DeviceName("qr1")}
	if r := routers[0]; len(r.Routes) != 1 || r.Routes[0] != want || len(r.Rules) != 1 {
		t.Errorf("dvr: redirect rules %+v routes %+v, want one rule and the route %+v", r.Rules, r.Routes, want)
	}

	// The same ports on a dvr_snat node: its snat namespace, with the gateway port.
	routers = namespace.Desired(routerInput(m, northbound.ModeDVRSNAT))
	if len(routers) != 1 || routers[0].SNAT == nil || routers[0].SNAT.Gateway.PortID != "qg1" || len(routers[0].SNAT.NAT.SNAT) != 0 {
		// No local sg- port: no sg- device, hence no subnet to SNAT.
		t.Fatalf("dvr_snat: Desired = %+v, want the snat namespace with qg1 and no NAT", routers)
	}
}
