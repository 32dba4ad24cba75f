package controller

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
)

// TestRouterInputNorthSouth checks that the router-namespace input carries what the SNAT
// side needs from the model: the routers' gateways, this host's agent_mode and the remote
// centralized SNAT ports with their routers (device_id).
func TestRouterInputNorthSouth(t *testing.T) {
	mac := func(s string) net.HardwareAddr { return testMAC(t, s) }
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

func testMAC(t *testing.T, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fixed(subnet, ip string) []northbound.FixedIP {
	return []northbound.FixedIP{{SubnetID: subnet, IP: netip.MustParseAddr(ip)}}
}

// fakeRouterNamespaces records what the agent hands the router-namespace manager.
type fakeRouterNamespaces struct {
	held []netip.Addr
}

func (f *fakeRouterNamespaces) Apply(context.Context, []namespace.Router, namespace.FIPState) error {
	return nil
}
func (f *fakeRouterNamespaces) HeldFloatingIPs() ([]netip.Addr, error) { return f.held, nil }
func (f *fakeRouterNamespaces) Announce(func(string) bool) error       { return nil }

// TestFloatingIPsWiring checks the agent's floating IP step of a reconcile: the floating IPs
// of this host's ports are served with allocations from the state directory, one held
// already is not announced again, a floating IP on a network without this host's fg- port
// is a problem listed with the model's, and a floating IP gone releases its priority.
func TestFloatingIPsWiring(t *testing.T) {
	mac := func(s string) net.HardwareAddr { return testMAC(t, s) }
	ext := &northbound.RouterGateway{NetworkID: "ext", EnableSNAT: true}
	m := &northbound.Model{
		Networks: []northbound.Network{{ID: "n1", Type: "vxlan", SegmentationID: 10}, {ID: "ext", Type: "flat", Physnet: "public", External: true},
			{ID: "ext2", Type: "flat", Physnet: "public2", External: true}},
		Subnets: []northbound.Subnet{
			{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.1.0/24"), GatewayIP: netip.MustParseAddr("10.0.1.1"), IPVersion: 4},
			{ID: "sext", NetworkID: "ext", CIDR: netip.MustParsePrefix("203.0.113.0/24"), GatewayIP: netip.MustParseAddr("203.0.113.1"), IPVersion: 4},
			{ID: "sext2", NetworkID: "ext2", CIDR: netip.MustParsePrefix("198.51.100.0/24"), GatewayIP: netip.MustParseAddr("198.51.100.1"), IPVersion: 4},
		},
		Ports: []northbound.Port{
			{ID: "qr1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:01"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
				DeviceID: "r1", FixedIPs: fixed("s1", "10.0.1.1")},
			{ID: "fg1", NetworkID: "ext", MAC: mac("fa:16:3e:00:00:02"), DeviceOwner: northbound.OwnerFloatingIPAgentGateway,
				DeviceID: "host-a", FixedIPs: fixed("sext", "203.0.113.20")},
			{ID: "vm1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:03"), DeviceOwner: "compute:nova", FixedIPs: fixed("s1", "10.0.1.11")},
			{ID: "vm2", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:04"), DeviceOwner: "compute:nova", FixedIPs: fixed("s1", "10.0.1.12")},
		},
		Routers: []northbound.Router{{ID: "r1", Distributed: true, Gateway: ext},
			{ID: "r2", Distributed: true, Gateway: &northbound.RouterGateway{NetworkID: "ext2", EnableSNAT: true}}},
		FloatingIPs: []northbound.FloatingIP{
			{ID: "fa", Address: netip.MustParseAddr("203.0.113.50"), NetworkID: "ext", RouterID: "r1", PortID: "vm1",
				FixedIP: netip.MustParseAddr("10.0.1.11"), Host: "host-a"},
			{ID: "fb", Address: netip.MustParseAddr("203.0.113.51"), NetworkID: "ext", RouterID: "r1", PortID: "vm2",
				FixedIP: netip.MustParseAddr("10.0.1.12"), Host: "host-a"},
			// No fg- port of this host on ext2: a problem naming the floating IP.
			{ID: "fc", Address: netip.MustParseAddr("198.51.100.50"), NetworkID: "ext2", RouterID: "r2", PortID: "vm2",
				FixedIP: netip.MustParseAddr("10.0.1.12"), Host: "host-a"},
			// Another host's: not served here.
			{ID: "fd", Address: netip.MustParseAddr("203.0.113.52"), NetworkID: "ext", RouterID: "r1", PortID: "vm9",
				FixedIP: netip.MustParseAddr("10.0.1.19"), Host: "host-b"},
		},
	}
	alloc, skipped, err := namespace.OpenFIPAllocators(t.TempDir())
	if err != nil || len(skipped) > 0 {
		t.Fatal(err, skipped)
	}
	cfg := config.DefaultConfig()
	cfg.Host, cfg.AgentMode = "host-a", northbound.ModeDVR
	rn := &fakeRouterNamespaces{held: []netip.Addr{netip.MustParseAddr("203.0.113.50")}}
	a := &Agent{cfg: cfg, log: zap.NewNop(), model: m}
	a.EnableRouterNamespaces(rn, alloc)
	a.joinProblems()

	st := a.floatingIPs(routerInput(m, cfg.AgentMode))
	if len(st.Namespaces) != 1 || st.Namespaces[0].NetworkID != "ext" || len(st.Routers) != 1 || len(st.Routers[0].Rules) != 2 {
		t.Fatalf("FIPState = %+v, want fip-ext with r1's two floating IPs", st)
	}
	if got := st.Routers[0].Link.Pair.String(); got != "169.254.64.0/31" {
		t.Errorf("r1's pair %s, want the pool's first", got)
	}
	if len(st.Announce) != 1 || st.Announce[0].FloatingIPID != "fb" {
		t.Errorf("Announce = %+v, want fb only (fa is held)", st.Announce)
	}
	if ps := a.ProblemList(); len(ps) != 1 || ps[0].ID != "fc" || a.Problems() != 1 {
		t.Errorf("ProblemList = %v, want the floating IP fc (no fg- port on ext2)", ps)
	}
	if p, ok := alloc.Priorities.Lookup(netip.MustParseAddr("203.0.113.51")); !ok || p != 32769 {
		t.Errorf("fb's priority %d %v, want 32769", p, ok)
	}

	// fb disassociated: its priority is released; the problem stays listed.
	m.FloatingIPs[1].PortID, m.FloatingIPs[1].Host = "", ""
	st = a.floatingIPs(routerInput(m, cfg.AgentMode))
	if len(st.Routers) != 1 || len(st.Routers[0].Rules) != 1 {
		t.Errorf("FIPState after fb went: %+v, want r1 with fa only", st.Routers)
	}
	if _, ok := alloc.Priorities.Lookup(netip.MustParseAddr("203.0.113.51")); ok {
		t.Error("fb's priority not released after it went")
	}
	if a.Problems() != 1 {
		t.Errorf("Problems = %d, want 1", a.Problems())
	}
}
