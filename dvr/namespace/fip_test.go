package namespace

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/dvr/nat"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// The fixture: host compute-1 with the floating IP agent gateway port of the flat external
// network ext-net-1 (subnet 203.0.113.0/24, gateway .1; a second subnet 198.51.100.0/24
// without an address of fg-), two distributed routers with gateways there, one without a
// gateway and one centralized.
const (
	fipHost = "compute-1"
	extNet  = "ext-net-1"
	fgPort  = "fg000000-1111-4222-8333-444455556666"
	router1 = "a1b2c3d4-e5f6-4789-8abc-def012345678"
	router2 = "b2c3d4e5-f6a7-489b-9cde-f0123456789a"
	noGwRtr = "c3d4e5f6-a7b8-49ac-8def-0123456789ab"
	central = "d4e5f6a7-b8c9-4abd-8ef0-123456789abc"
	// The names Neutron gives them (prefix + id, cut at 14 characters).
	fipNS   = "fip-ext-net-1"
	fgDev   = "fg-fg000000-11"
	rfp1    = "rfp-a1b2c3d4-e"
	fpr1    = "fpr-a1b2c3d4-e"
	rfp2    = "rfp-b2c3d4e5-f"
	fpr2    = "fpr-b2c3d4e5-f"
	fgMAC   = "fa:16:3e:fe:00:01"
	extMTU  = 1500
	table1  = 2852012033 // 169.254.64.1, router1's fpr- address, as a number
	table2  = 2852012035 // 169.254.64.3, router2's
	fipMain = MainRouteTable
)

var (
	fipAddr = netip.MustParseAddr
	fipPfx  = netip.MustParsePrefix
)

func fipFixture() FIPInput {
	gw := func(net string) *northbound.RouterGateway {
		return &northbound.RouterGateway{NetworkID: net, EnableSNAT: true,
			FixedIPs: []northbound.FixedIP{{SubnetID: "ext-sub", IP: fipAddr("203.0.113.2")}}}
	}
	return FIPInput{
		Host: fipHost,
		Routers: []northbound.Router{
			{ID: router2, Distributed: true, Gateway: gw(extNet)},
			{ID: router1, Distributed: true, Gateway: gw(extNet)},
			{ID: noGwRtr, Distributed: true},
			{ID: central, Distributed: false, Gateway: gw(extNet)},
		},
		LocalPorts: []state.Port{
			{ID: "vm-1", NetworkID: "net-a", MAC: mac("fa:16:3e:00:00:05"), DeviceOwner: northbound.OwnerCompute,
				FixedIPs: []state.FixedIP{fip("sub-a", "10.0.0.5")}},
			{ID: fgPort, NetworkID: extNet, MAC: mac(fgMAC), DeviceOwner: northbound.OwnerFloatingIPAgentGateway,
				FixedIPs: []state.FixedIP{fip("ext-sub", "203.0.113.5")}},
		},
		Subnets: []state.Subnet{
			{ID: "ext-sub", NetworkID: extNet, CIDR: fipPfx("203.0.113.0/24"), GatewayIP: fipAddr("203.0.113.1"), IPVersion: 4},
			{ID: "ext-sub-2", NetworkID: extNet, CIDR: fipPfx("198.51.100.0/24"), GatewayIP: fipAddr("198.51.100.1"), IPVersion: 4},
			{ID: "sub-a", NetworkID: "net-a", CIDR: fipPfx("10.0.0.0/24"), GatewayIP: fipAddr("10.0.0.1"), IPVersion: 4},
		},
		Networks: []state.Network{{ID: extNet, MTU: extMTU}, {ID: "net-a", MTU: 1450}},
	}
}

// floating IPs of the fixture.
var (
	fipOne   = northbound.FloatingIP{ID: "fip-1", Address: fipAddr("203.0.113.10"), NetworkID: extNet, RouterID: router1, PortID: "vm-1", FixedIP: fipAddr("10.0.0.5"), Host: fipHost}
	fipTwo   = northbound.FloatingIP{ID: "fip-2", Address: fipAddr("203.0.113.11"), NetworkID: extNet, RouterID: router1, PortID: "vm-2", FixedIP: fipAddr("10.0.0.6"), Host: fipHost}
	fipThree = northbound.FloatingIP{ID: "fip-3", Address: fipAddr("203.0.113.20"), NetworkID: extNet, RouterID: router2, PortID: "vm-3", FixedIP: fipAddr("10.1.0.7"), Host: fipHost}
	fipAway  = northbound.FloatingIP{ID: "fip-9", Address: fipAddr("203.0.113.99"), NetworkID: extNet, RouterID: router1, PortID: "vm-9", FixedIP: fipAddr("10.0.0.9"), Host: "compute-2"}
	fipFree  = northbound.FloatingIP{ID: "fip-0", Address: fipAddr("203.0.113.98"), NetworkID: extNet}
)

// withAllocations fills in what the allocators would give a fresh host: pairs in router id
// order from 169.254.64.0/31, priorities in address order from 32768.
func withAllocations(in FIPInput) FIPInput {
	routers, fips := FIPAllocationKeys(in)
	in.LinkLocal = map[string]LinkLocalPair{}
	for i, r := range routers {
		in.LinkLocal[r] = linkLocalAt(i)
	}
	in.Priorities = map[netip.Addr]uint32{}
	for i, a := range fips {
		in.Priorities[a] = uint32(FIPRulePriorityStart + i)
	}
	return in
}

func fgGateway() FIPGateway {
	return FIPGateway{PortID: fgPort, Device: fgDev, MAC: mac(fgMAC), Addrs: []netip.Prefix{fipPfx("203.0.113.5/24")},
		MTU: extMTU, ProxyARP: true, ProxyDelay: 1}
}

// router1Link is router1's veth pair with the first /31: rfp- gets 169.254.64.0 (the
// network address, Neutron's rtr_2_fip), fpr- 169.254.64.1 (fip_2_rtr).
func router1Link() RouterFIPLink {
	return RouterFIPLink{Pair: llPair("169.254.64.0/31"), RouterDevice: rfp1, RouterAddr: fipPfx("169.254.64.0/31"),
		FIPNamespace: fipNS, FIPDevice: fpr1, FIPAddr: fipPfx("169.254.64.1/31"), MTU: extMTU}
}

func TestFIPNames(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{FIPNamespaceName(extNet), "fip-ext-net-1"},
		{FIPGatewayDeviceName(fgPort), "fg-fg000000-11"}, // fg- + 11
		{RouterToFIPDeviceName(router1), "rfp-a1b2c3d4-e"},
		{FIPToRouterDeviceName(router1), "fpr-a1b2c3d4-e"}, // fpr- + 10: 14 in all
		{RouterToFIPDeviceName("r1"), "rfp-r1"},
	} {
		if c.got != c.want {
			t.Errorf("%q, want %q", c.got, c.want)
		}
	}
}

func TestFIPDesired(t *testing.T) {
	one := FIPState{
		Namespaces: []FIPNamespace{{
			NetworkID: extNet, Name: fipNS, Gateway: fgGateway(), Links: []string{router1},
			Routes: []FIPRoute{
				{Table: fipMain, Dst: fipPfx("198.51.100.0/24"), Device: fgDev}, // the other subnet, on-link
				{Table: fipMain, Dst: fipPfx("203.0.113.10/32"), Via: fipAddr("169.254.64.0"), Device: fpr1},
				{Table: table1, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("203.0.113.1"), Device: fgDev},
			},
			Rules: []FIPRouterRule{{RouterID: router1, IIF: fpr1, Table: table1, Priority: table1}},
		}},
		Routers: []RouterFIP{{
			RouterID: router1, Namespace: "qrouter-" + router1, NetworkID: extNet, Link: router1Link(),
			Routes: []FIPRoute{{Table: 16, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("169.254.64.1"), Device: rfp1}},
			Rules:  []FloatingIPRule{{FloatingIPID: "fip-1", FloatingIP: fipAddr("203.0.113.10"), FixedIP: fipAddr("10.0.0.5"), Priority: 32768, Table: 16}},
			NAT: nat.Set{
				SNAT: []nat.SNAT{{Object: "floatingip fip-1", Source: fipPfx("10.0.0.5/32"), OutDevice: rfp1, To: fipAddr("203.0.113.10")}},
				DNAT: []nat.DNAT{{Object: "floatingip fip-1", Destination: fipAddr("203.0.113.10"), InDevice: rfp1, To: fipAddr("10.0.0.5")}},
			},
		}},
		Announce: []GratuitousARP{{FloatingIPID: "fip-1", Address: fipAddr("203.0.113.10"), Namespace: fipNS, Device: fgDev}},
	}

	two := FIPState{
		Namespaces: []FIPNamespace{{
			NetworkID: extNet, Name: fipNS, Gateway: fgGateway(), Links: []string{router1},
			Routes: []FIPRoute{
				{Table: fipMain, Dst: fipPfx("198.51.100.0/24"), Device: fgDev},
				{Table: fipMain, Dst: fipPfx("203.0.113.10/32"), Via: fipAddr("169.254.64.0"), Device: fpr1},
				{Table: fipMain, Dst: fipPfx("203.0.113.11/32"), Via: fipAddr("169.254.64.0"), Device: fpr1},
				{Table: table1, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("203.0.113.1"), Device: fgDev},
			},
			Rules: []FIPRouterRule{{RouterID: router1, IIF: fpr1, Table: table1, Priority: table1}},
		}},
		Routers: []RouterFIP{{
			RouterID: router1, Namespace: "qrouter-" + router1, NetworkID: extNet, Link: router1Link(),
			Routes: []FIPRoute{{Table: 16, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("169.254.64.1"), Device: rfp1}},
			Rules: []FloatingIPRule{
				{FloatingIPID: "fip-1", FloatingIP: fipAddr("203.0.113.10"), FixedIP: fipAddr("10.0.0.5"), Priority: 32768, Table: 16},
				{FloatingIPID: "fip-2", FloatingIP: fipAddr("203.0.113.11"), FixedIP: fipAddr("10.0.0.6"), Priority: 32769, Table: 16},
			},
			NAT: nat.Set{
				SNAT: []nat.SNAT{
					{Object: "floatingip fip-1", Source: fipPfx("10.0.0.5/32"), OutDevice: rfp1, To: fipAddr("203.0.113.10")},
					{Object: "floatingip fip-2", Source: fipPfx("10.0.0.6/32"), OutDevice: rfp1, To: fipAddr("203.0.113.11")},
				},
				DNAT: []nat.DNAT{
					{Object: "floatingip fip-1", Destination: fipAddr("203.0.113.10"), InDevice: rfp1, To: fipAddr("10.0.0.5")},
					{Object: "floatingip fip-2", Destination: fipAddr("203.0.113.11"), InDevice: rfp1, To: fipAddr("10.0.0.6")},
				},
			},
		}},
		Announce: []GratuitousARP{
			{FloatingIPID: "fip-1", Address: fipAddr("203.0.113.10"), Namespace: fipNS, Device: fgDev},
			{FloatingIPID: "fip-2", Address: fipAddr("203.0.113.11"), Namespace: fipNS, Device: fgDev},
		},
	}

	// Two routers: router1 (first in id order) gets 169.254.64.0/31, router2 169.254.64.2/31;
	// 203.0.113.10 gets 32768, 203.0.113.20 32769.
	twoRouters := FIPState{
		Namespaces: []FIPNamespace{{
			NetworkID: extNet, Name: fipNS, Gateway: fgGateway(), Links: []string{router1, router2},
			Routes: []FIPRoute{
				{Table: fipMain, Dst: fipPfx("198.51.100.0/24"), Device: fgDev},
				{Table: fipMain, Dst: fipPfx("203.0.113.10/32"), Via: fipAddr("169.254.64.0"), Device: fpr1},
				{Table: fipMain, Dst: fipPfx("203.0.113.20/32"), Via: fipAddr("169.254.64.2"), Device: fpr2},
				{Table: table1, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("203.0.113.1"), Device: fgDev},
				{Table: table2, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("203.0.113.1"), Device: fgDev},
			},
			Rules: []FIPRouterRule{
				{RouterID: router1, IIF: fpr1, Table: table1, Priority: table1},
				{RouterID: router2, IIF: fpr2, Table: table2, Priority: table2},
			},
		}},
		Routers: []RouterFIP{
			one.Routers[0],
			{
				RouterID: router2, Namespace: "qrouter-" + router2, NetworkID: extNet,
				Link: RouterFIPLink{Pair: llPair("169.254.64.2/31"), RouterDevice: rfp2, RouterAddr: fipPfx("169.254.64.2/31"),
					FIPNamespace: fipNS, FIPDevice: fpr2, FIPAddr: fipPfx("169.254.64.3/31"), MTU: extMTU},
				Routes: []FIPRoute{{Table: 16, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("169.254.64.3"), Device: rfp2}},
				Rules:  []FloatingIPRule{{FloatingIPID: "fip-3", FloatingIP: fipAddr("203.0.113.20"), FixedIP: fipAddr("10.1.0.7"), Priority: 32769, Table: 16}},
				NAT: nat.Set{
					SNAT: []nat.SNAT{{Object: "floatingip fip-3", Source: fipPfx("10.1.0.7/32"), OutDevice: rfp2, To: fipAddr("203.0.113.20")}},
					DNAT: []nat.DNAT{{Object: "floatingip fip-3", Destination: fipAddr("203.0.113.20"), InDevice: rfp2, To: fipAddr("10.1.0.7")}},
				},
			},
		},
		Announce: []GratuitousARP{
			{FloatingIPID: "fip-1", Address: fipAddr("203.0.113.10"), Namespace: fipNS, Device: fgDev},
			{FloatingIPID: "fip-3", Address: fipAddr("203.0.113.20"), Namespace: fipNS, Device: fgDev},
		},
	}

	for _, c := range []struct {
		name string
		fips []northbound.FloatingIP
		edit func(*FIPInput)
		want FIPState
	}{
		{name: "one floating IP", fips: []northbound.FloatingIP{fipOne, fipAway, fipFree}, want: one},
		{name: "two floating IPs on one router", fips: []northbound.FloatingIP{fipTwo, fipOne}, want: two},
		{name: "floating IPs of two routers", fips: []northbound.FloatingIP{fipThree, fipOne}, want: twoRouters},
		{name: "floating IP on another host", fips: []northbound.FloatingIP{fipAway, fipFree}},
		{name: "no host name", fips: []northbound.FloatingIP{fipOne}, edit: func(in *FIPInput) { in.Host = "" }},
		{
			// Validation refuses a floating IP whose router has no gateway; should one come
			// through, there is nothing to build and nothing to report: the router has no
			// way out here.
			name: "router without gateway",
			fips: []northbound.FloatingIP{func() northbound.FloatingIP { f := fipOne; f.RouterID = noGwRtr; return f }()},
		},
		{
			// A centralized router's floating IPs are its namespace's on the network node.
			name: "centralized router",
			fips: []northbound.FloatingIP{func() northbound.FloatingIP { f := fipOne; f.RouterID = central; return f }()},
		},
		{
			name: "router with its gateway on another network",
			fips: []northbound.FloatingIP{func() northbound.FloatingIP { f := fipOne; f.RouterID = router1; f.NetworkID = "ext-net-2"; return f }()},
		},
		{
			name: "unknown router",
			fips: []northbound.FloatingIP{func() northbound.FloatingIP { f := fipOne; f.RouterID = "nope"; return f }()},
		},
		{
			name: "already held here: no gratuitous ARP",
			fips: []northbound.FloatingIP{fipOne},
			edit: func(in *FIPInput) { in.Held = []netip.Addr{fipAddr("203.0.113.10"), fipAddr("203.0.113.99")} },
			want: func() FIPState { s := one; s.Announce = nil; return s }(),
		},
		{
			// fip-2 moves here (it was on compute-2, so this host did not hold it); fip-1
			// moved to another fixed IP here: same address, no announcement.
			name: "moved here",
			fips: []northbound.FloatingIP{fipOne, fipTwo},
			edit: func(in *FIPInput) { in.Held = []netip.Addr{fipAddr("203.0.113.10")} },
			want: func() FIPState { s := two; s.Announce = two.Announce[1:]; return s }(),
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := fipFixture()
			in.FloatingIPs = c.fips
			if c.edit != nil {
				c.edit(&in)
			}
			got := DesiredFIP(withAllocations(in))
			if !reflect.DeepEqual(got, c.want) {
				t.Errorf("DesiredFIP:\n got %+v\nwant %+v", got, c.want)
			}
			for _, r := range got.Routers {
				rules, err := nat.Desired(r.NAT)
				if err != nil || len(rules) != 2*len(r.Rules) {
					t.Errorf("router %s: nat.Desired = %v, %v", r.RouterID, rules, err)
				}
			}
		})
	}
}

// TestFIPDesiredNeutronAllocations: pairs and priorities read back from the files of a host
// that ran Neutron's L3 agent go where Neutron put them.
func TestFIPDesiredNeutronAllocations(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir+"/"+LinkLocalFile, router1+",169.254.93.146/31\n")
	writeFile(t, dir+"/"+FIPPriorityFile, "203.0.113.10,40001\n")
	ll := openLinkLocal(t, dir)
	prio := openPriorities(t, dir)

	in := fipFixture()
	in.FloatingIPs = []northbound.FloatingIP{fipOne, fipTwo}
	routers, fips := FIPAllocationKeys(in)
	if !reflect.DeepEqual(routers, []string{router1}) || !reflect.DeepEqual(fips, []netip.Addr{fipAddr("203.0.113.10"), fipAddr("203.0.113.11")}) {
		t.Fatalf("FIPAllocationKeys = %v, %v", routers, fips)
	}
	var err error
	if in.LinkLocal, err = ll.Sync(routers); err != nil {
		t.Fatal(err)
	}
	if in.Priorities, err = prio.Sync(fips); err != nil {
		t.Fatal(err)
	}
	got := DesiredFIP(in)
	if len(got.Routers) != 1 || len(got.Namespaces) != 1 {
		t.Fatalf("DesiredFIP = %+v", got)
	}
	r, ns := got.Routers[0], got.Namespaces[0]
	// 169.254.93.147 = 169<<24 + 254<<16 + 93<<8 + 147 = 2852019603.
	wantLink := RouterFIPLink{Pair: llPair("169.254.93.146/31"), RouterDevice: rfp1, RouterAddr: fipPfx("169.254.93.146/31"),
		FIPNamespace: fipNS, FIPDevice: fpr1, FIPAddr: fipPfx("169.254.93.147/31"), MTU: extMTU}
	if r.Link != wantLink {
		t.Errorf("link %+v, want %+v", r.Link, wantLink)
	}
	if want := []FIPRouterRule{{RouterID: router1, IIF: fpr1, Table: 2852019603, Priority: 2852019603}}; !reflect.DeepEqual(ns.Rules, want) {
		t.Errorf("fip- rules %+v, want %+v", ns.Rules, want)
	}
	if !slices.Contains(ns.Routes, FIPRoute{Table: 2852019603, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("203.0.113.1"), Device: fgDev}) ||
		!slices.Contains(ns.Routes, FIPRoute{Table: fipMain, Dst: fipPfx("203.0.113.11/32"), Via: fipAddr("169.254.93.146"), Device: fpr1}) {
		t.Errorf("fip- routes %v", ns.Routes)
	}
	if r.Routes[0] != (FIPRoute{Table: 16, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("169.254.93.147"), Device: rfp1}) {
		t.Errorf("qrouter- route %v", r.Routes[0])
	}
	// 203.0.113.10 keeps Neutron's 40001; 203.0.113.11 gets the lowest free, 32768.
	wantRules := []FloatingIPRule{
		{FloatingIPID: "fip-2", FloatingIP: fipAddr("203.0.113.11"), FixedIP: fipAddr("10.0.0.6"), Priority: 32768, Table: 16},
		{FloatingIPID: "fip-1", FloatingIP: fipAddr("203.0.113.10"), FixedIP: fipAddr("10.0.0.5"), Priority: 40001, Table: 16},
	}
	if !reflect.DeepEqual(r.Rules, wantRules) {
		t.Errorf("rules %+v, want %+v", r.Rules, wantRules)
	}

	// Restart: the allocators read their files back, the same model gives the same state,
	// and with the served floating IPs held nothing is announced again.
	ll2, prio2 := openLinkLocal(t, dir), openPriorities(t, dir)
	in2 := fipFixture()
	in2.FloatingIPs = []northbound.FloatingIP{fipTwo, fipOne}
	if in2.LinkLocal, err = ll2.Sync(routers); err != nil {
		t.Fatal(err)
	}
	if in2.Priorities, err = prio2.Sync(fips); err != nil {
		t.Fatal(err)
	}
	in2.Held = fips
	again := DesiredFIP(in2)
	got.Announce = nil
	if !reflect.DeepEqual(again, got) {
		t.Errorf("after restart:\n got %+v\nwant %+v", again, got)
	}

	// The floating IPs go: their pair and priorities are released.
	if _, err := ll2.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if _, err := prio2.Sync(nil); err != nil {
		t.Fatal(err)
	}
	if s := readFile(t, ll2.Path()) + readFile(t, prio2.Path()); s != "" {
		t.Errorf("files not emptied: %q", s)
	}
}

func TestFIPDesiredProblems(t *testing.T) {
	t.Run("no fg- port", func(t *testing.T) {
		in := fipFixture()
		in.LocalPorts = in.LocalPorts[:1]
		in.FloatingIPs = []northbound.FloatingIP{fipOne}
		got := DesiredFIP(withAllocations(in))
		if len(got.Namespaces)+len(got.Routers)+len(got.Announce) != 0 || len(got.Problems) != 1 {
			t.Fatalf("DesiredFIP = %+v", got)
		}
		p := got.Problems[0]
		if p.Kind != northbound.KindFloatingIP || p.ID != "fip-1" || p.Field != "port_id" ||
			!strings.Contains(p.Reason, "no network:floatingip_agent_gateway (fg-) port on network ext-net-1") {
			t.Errorf("problem %v", p)
		}
	})
	t.Run("fg- port without IPv4 address", func(t *testing.T) {
		in := fipFixture()
		in.LocalPorts[1].FixedIPs = []state.FixedIP{fip("unknown", "203.0.113.5")}
		in.FloatingIPs = []northbound.FloatingIP{fipOne, fipTwo}
		got := DesiredFIP(withAllocations(in))
		if len(got.Namespaces)+len(got.Routers) != 0 || len(got.Problems) != 1 {
			t.Fatalf("DesiredFIP = %+v", got)
		}
		if p := got.Problems[0]; p.Kind != northbound.KindPort || p.ID != fgPort || !strings.Contains(p.Reason, "no IPv4 address") {
			t.Errorf("problem %v", p)
		}
	})
	t.Run("no allocations", func(t *testing.T) {
		in := fipFixture()
		in.FloatingIPs = []northbound.FloatingIP{fipOne, fipTwo, fipThree}
		in = withAllocations(in)
		delete(in.LinkLocal, router2)                  // router2 out: fip-3 not served
		delete(in.Priorities, fipAddr("203.0.113.11")) // fip-2 out
		in.Priorities[fipAddr("203.0.113.10")] = 100   // not a priority of the pool: fip-1 out
		in.LinkLocal[router1] = llPair("10.0.0.0/31")  // and router1's pair is not one either
		got := DesiredFIP(in)
		if len(got.Namespaces)+len(got.Routers)+len(got.Announce) != 0 {
			t.Errorf("DesiredFIP served %+v", got)
		}
		var ids []string
		for _, p := range got.Problems {
			ids = append(ids, string(p.Kind)+" "+p.ID)
		}
		if want := []string{"router " + router1, "router " + router2}; !reflect.DeepEqual(ids, want) {
			t.Errorf("problems %v, want %v", got.Problems, want)
		}
		in.LinkLocal[router1] = linkLocalAt(0)
		got = DesiredFIP(in)
		ids = nil
		for _, p := range got.Problems {
			ids = append(ids, string(p.Kind)+" "+p.ID)
		}
		if want := []string{"floatingip fip-1", "floatingip fip-2", "router " + router2}; !reflect.DeepEqual(ids, want) {
			t.Errorf("problems %v, want %v", got.Problems, want)
		}
		if len(got.Routers)+len(got.Namespaces) != 0 {
			t.Errorf("a router with no floating IP served: %+v", got)
		}
	})
}

// TestFIPGatewayRoutes: a gateway outside its subnet gets an on-link route (Neutron's
// _update_gateway_route), and an IPv6 subnet of fg- adds its address and a second default
// route to each router's table.
func TestFIPGatewayRoutes(t *testing.T) {
	in := fipFixture()
	in.Subnets = []state.Subnet{
		{ID: "ext-v4", NetworkID: extNet, CIDR: fipPfx("203.0.113.0/24"), GatewayIP: fipAddr("192.0.2.100"), IPVersion: 4},
		{ID: "ext-v6", NetworkID: extNet, CIDR: fipPfx("2001:db8::/64"), GatewayIP: fipAddr("2001:db8::1"), IPVersion: 6},
		{ID: "other", NetworkID: "elsewhere", CIDR: fipPfx("192.0.2.0/24"), IPVersion: 4},
	}
	in.LocalPorts[1].FixedIPs = []state.FixedIP{fip("ext-v6", "2001:db8::5"), fip("ext-v4", "203.0.113.5")}
	in.Networks = nil
	in.FloatingIPs = []northbound.FloatingIP{fipOne}
	got := DesiredFIP(withAllocations(in))
	if len(got.Namespaces) != 1 || len(got.Problems) != 0 {
		t.Fatalf("DesiredFIP = %+v", got)
	}
	ns := got.Namespaces[0]
	if want := []netip.Prefix{fipPfx("203.0.113.5/24"), fipPfx("2001:db8::5/64")}; !reflect.DeepEqual(ns.Gateway.Addrs, want) || ns.Gateway.MTU != 0 {
		t.Errorf("fg- addresses %v (MTU %d), want %v", ns.Gateway.Addrs, ns.Gateway.MTU, want)
	}
	want := []FIPRoute{
		{Table: fipMain, Dst: fipPfx("192.0.2.100/32"), Device: fgDev},
		{Table: fipMain, Dst: fipPfx("203.0.113.10/32"), Via: fipAddr("169.254.64.0"), Device: fpr1},
		{Table: table1, Dst: fipPfx("0.0.0.0/0"), Via: fipAddr("192.0.2.100"), Device: fgDev},
		{Table: table1, Dst: fipPfx("::/0"), Via: fipAddr("2001:db8::1"), Device: fgDev},
	}
	if !reflect.DeepEqual(ns.Routes, want) {
		t.Errorf("routes:\n got %v\nwant %v", ns.Routes, want)
	}
	if got.Routers[0].Link.MTU != 0 {
		t.Errorf("veth MTU %d without a network MTU", got.Routers[0].Link.MTU)
	}
}

// TestFIPDesiredPure: the input order does not matter, the result shares no memory with the
// input, and the sysctls are Neutron's.
func TestFIPDesiredPure(t *testing.T) {
	in := fipFixture()
	in.FloatingIPs = []northbound.FloatingIP{fipOne, fipTwo, fipThree, fipAway}
	in = withAllocations(in)
	a := DesiredFIP(in)
	rev := in
	rev.FloatingIPs = slices.Clone(in.FloatingIPs)
	slices.Reverse(rev.FloatingIPs)
	rev.Routers = slices.Clone(in.Routers)
	slices.Reverse(rev.Routers)
	rev.Subnets = slices.Clone(in.Subnets)
	slices.Reverse(rev.Subnets)
	if b := DesiredFIP(rev); !reflect.DeepEqual(a, b) {
		t.Errorf("input order changed the result:\n%+v\n%+v", a, b)
	}
	a.Namespaces[0].Gateway.MAC[5] = 0xff
	if in.LocalPorts[1].MAC[5] != 1 {
		t.Error("the fg- MAC aliases the input")
	}

	var got []string
	for _, s := range append(slices.Clone(fipNamespaceSysctls), fipGatewaySysctls(fgGateway())...) {
		got = append(got, s.path+"="+s.value)
	}
	for _, want := range []string{"net/ipv4/ip_forward=1", "net/ipv4/ip_nonlocal_bind=1",
		"net/ipv4/neigh/fg-fg000000-11/proxy_delay=1", "net/ipv4/conf/fg-fg000000-11/proxy_arp=1"} {
		if !slices.Contains(got, want) {
			t.Errorf("sysctls %v lack %s", got, want)
		}
	}
	if len(routerSysctls) >= len(fipNamespaceSysctls) {
		t.Error("fipNamespaceSysctls changed routerSysctls")
	}
}
