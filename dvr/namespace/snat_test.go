package namespace

import (
	"net/netip"
	"reflect"
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/dvr/nat"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// TestSNATIndex checks SNATIndex against Neutron's _get_snat_idx: the first three examples
// are Neutron's own unit tests (test__get_snat_idx_*); the others are worked by hand from
// the formula (IPv4: the address's value, host bits kept as netaddr's IPNetwork.value keeps
// them; IPv6: crc32 of the text, xor-folded to 30 bits).
func TestSNATIndex(t *testing.T) {
	for _, tt := range []struct {
		cidr string
		want uint32
	}{
		{"101.12.13.0/24", 0x650C0D00},       // Neutron: the numerical value of 101.12.13.0
		{"2620:0:a03:e100::/64", 0x3D345705}, // Neutron: crc32 0x7d345704 → (1) ^ 0x3d345704
		{"d488::/30", 0x40001BD6},            // Neutron: crc32 0x1bd7 < 32768 → + 0x3fffffff
		// A router port's ip_cidr: the gateway address with the subnet's prefix length.
		// 10.0.1.1 = 10·2²⁴ + 0·2¹⁶ + 1·2⁸ + 1 = 167772417, not 10.0.1.0's 167772416.
		{"10.0.1.1/24", 167772417},
		{"10.0.2.1/24", 167772673},
		{"192.168.0.1/16", 0xC0A80001},
		// crc32("fd00:1::1/64") = 0x9d3236b1: (0x9d3236b1 >> 30) = 2, 0x9d3236b1 & 0x3fffffff
		// = 0x1d3236b1, 2 ^ 0x1d3236b1 = 0x1d3236b3.
		{"fd00:1::1/64", 0x1D3236B3},
	} {
		if got := SNATIndex(netip.MustParsePrefix(tt.cidr)); got != tt.want {
			t.Errorf("SNATIndex(%s) = %#x (%d), want %#x (%d)", tt.cidr, got, got, tt.want, tt.want)
		}
	}
}

func TestSNATNames(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{SNATNamespaceName("r1"), "snat-r1"},
		{GatewayDeviceName("1f2e3d4c-5b6a-4789-8abc-def012345678"), "qg-1f2e3d4c-5b"},
		{SNATDeviceName("1f2e3d4c-5b6a-4789-8abc-def012345678"), "sg-1f2e3d4c-5b"},
		{SNATDeviceName("abc"), "sg-abc"},
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

// The north-south test topology: router r1 with interfaces on s1 (dual stack) and s2, its
// centralized SNAT ports on both, and its gateway on the external network ext.
const (
	nsRouter = "r1"
	qrPort1  = "qr1-aaaaaaaaaaaaaaaa"
	qrPort2  = "qr2-bbbbbbbbbbbbbbbb"
	sgPort1  = "sg1-cccccccccccccccc"
	sgPort2  = "sg2-dddddddddddddddd"
	qgPort   = "qg1-eeeeeeeeeeeeeeee"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr  { return netip.MustParseAddr(s) }

func northSouth(mode northbound.AgentMode) Input {
	subnet := func(id, network, cidr, gw string) state.Subnet {
		s := state.Subnet{ID: id, NetworkID: network, CIDR: pfx(cidr), IPVersion: 4}
		if s.CIDR.Addr().Is6() {
			s.IPVersion = 6
		}
		if gw != "" {
			s.GatewayIP = addr(gw)
		}
		return s
	}
	port := func(id, network, m string, owner northbound.DeviceOwner, ips ...state.FixedIP) state.Port {
		return state.Port{ID: id, NetworkID: network, MAC: mac(m), DeviceOwner: owner, DeviceID: nsRouter, FixedIPs: ips}
	}
	return Input{
		Subnets: []state.Subnet{
			subnet("s1", "n1", "10.0.1.0/24", "10.0.1.1"),
			subnet("s1v6", "n1", "fd00:1::/64", "fd00:1::1"),
			subnet("s2", "n2", "10.0.2.0/24", "10.0.2.1"),
			subnet("ext", "next", "203.0.113.0/24", "203.0.113.1"),
			subnet("ext6", "next", "2001:db8::/64", "2001:db8::1"),
		},
		Networks: []state.Network{{ID: "n1", MTU: 1450}, {ID: "n2", MTU: 1450}, {ID: "next", MTU: 1500}},
		LocalPorts: []state.Port{
			port(qrPort2, "n2", "fa:16:3e:00:00:02", northbound.OwnerRouterInterfaceDistributed, fip("s2", "10.0.2.1")),
			port(qrPort1, "n1", "fa:16:3e:00:00:01", northbound.OwnerRouterInterfaceDistributed,
				fip("s1v6", "fd00:1::1"), fip("s1", "10.0.1.1")),
			port(sgPort1, "n1", "fa:16:3e:00:00:51", northbound.OwnerRouterCentralizedSNAT,
				fip("s1", "10.0.1.5"), fip("s1v6", "fd00:1::5")),
			port(sgPort2, "n2", "fa:16:3e:00:00:52", northbound.OwnerRouterCentralizedSNAT, fip("s2", "10.0.2.5")),
			port(qgPort, "next", "fa:16:3e:00:00:99", northbound.OwnerRouterGateway,
				fip("ext6", "2001:db8::10"), fip("ext", "203.0.113.10")),
		},
		Routers: []northbound.Router{{ID: nsRouter, Distributed: true, Gateway: &northbound.RouterGateway{
			NetworkID: "next", EnableSNAT: true,
			FixedIPs: []northbound.FixedIP{{SubnetID: "ext", IP: addr("203.0.113.10")}},
		}}},
		AgentMode: mode,
	}
}

// The expected pieces of the north-south router.
var (
	wantQR = []Interface{
		{PortID: qrPort1, MAC: mac("fa:16:3e:00:00:01"), MTU: 1450, Addrs: []netip.Prefix{pfx("10.0.1.1/24"), pfx("fd00:1::1/64")}},
		{PortID: qrPort2, MAC: mac("fa:16:3e:00:00:02"), MTU: 1450, Addrs: []netip.Prefix{pfx("10.0.2.1/24")}},
	}
	// The redirect: IPv4 only, from the router port's ip_cidr (host bits kept), table and
	// priority its snat_idx, default via the sg- address on the same subnet.
	wantRules = []Rule{
		{From: pfx("10.0.1.1/24"), Table: 167772417, Priority: 167772417},
		{From: pfx("10.0.2.1/24"), Table: 167772673, Priority: 167772673},
	}
	wantRoutes = []Route{
		{Table: 167772417, Dst: pfx("0.0.0.0/0"), Via: addr("10.0.1.5"), Device: "qr-qr1-aaaaaaa"},
		{Table: 167772673, Dst: pfx("0.0.0.0/0"), Via: addr("10.0.2.5"), Device: "qr-qr2-bbbbbbb"},
	}
	wantSNATNAT = nat.Set{SNAT: []nat.SNAT{
		{Object: "router r1", Source: pfx("10.0.1.0/24"), OutDevice: "qg-qg1-eeeeeee", To: addr("203.0.113.10")},
		{Object: "router r1", Source: pfx("10.0.2.0/24"), OutDevice: "qg-qg1-eeeeeee", To: addr("203.0.113.10")},
	}}
)

func wantSNAT(n nat.Set) *SNAT {
	return &SNAT{
		Gateway: Interface{PortID: qgPort, MAC: mac("fa:16:3e:00:00:99"), MTU: 1500,
			Addrs: []netip.Prefix{pfx("203.0.113.10/24"), pfx("2001:db8::10/64")}},
		Interfaces: []Interface{
			{PortID: sgPort1, MAC: mac("fa:16:3e:00:00:51"), MTU: 1450, Addrs: []netip.Prefix{pfx("10.0.1.5/24"), pfx("fd00:1::5/64")}},
			{PortID: sgPort2, MAC: mac("fa:16:3e:00:00:52"), MTU: 1450, Addrs: []netip.Prefix{pfx("10.0.2.5/24")}},
		},
		Routes: []Route{
			{Dst: pfx("0.0.0.0/0"), Via: addr("203.0.113.1"), Device: "qg-qg1-eeeeeee"},
			{Dst: pfx("::/0"), Via: addr("2001:db8::1"), Device: "qg-qg1-eeeeeee"},
		},
		NAT: n,
	}
}

// withoutPorts drops the local ports with the given ids.
func withoutPorts(in Input, ids ...string) Input {
	in.LocalPorts = slices.DeleteFunc(slices.Clone(in.LocalPorts), func(p state.Port) bool { return slices.Contains(ids, p.ID) })
	return in
}

// remote moves the local ports with the given ids to RemotePorts.
func remote(in Input, ids ...string) Input {
	for _, p := range in.LocalPorts {
		if slices.Contains(ids, p.ID) {
			in.RemotePorts = append(in.RemotePorts, p)
		}
	}
	return withoutPorts(in, ids...)
}

func TestDesiredNorthSouth(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   func() Input
		// want: the router's rules, routes and snat namespace (interfaces as wantQR
		// unless noQR).
		rules  []Rule
		routes []Route
		snat   *SNAT
		noQR   bool
	}{
		{
			name:  "dvr_snat host: qrouter with the redirect to the local sg- ports, and the snat namespace",
			in:    func() Input { return northSouth(northbound.ModeDVRSNAT) },
			rules: wantRules, routes: wantRoutes, snat: wantSNAT(wantSNATNAT),
		},
		{
			name: "enable_snat false: no NAT, the rest stays",
			in: func() Input {
				in := northSouth(northbound.ModeDVRSNAT)
				in.Routers[0].Gateway.EnableSNAT = false
				return in
			},
			rules: wantRules, routes: wantRoutes, snat: wantSNAT(nat.Set{}),
		},
		{
			name: "compute host (dvr): the redirect points at the remote sg- ports; no snat namespace",
			in: func() Input {
				return withoutPorts(remote(northSouth(northbound.ModeDVR), sgPort1, sgPort2), qgPort)
			},
			rules: wantRules, routes: wantRoutes,
		},
		{
			name: "a gateway port on a dvr host is no reason for a snat namespace",
			in: func() Input {
				return remote(northSouth(northbound.ModeDVR), sgPort1, sgPort2)
			},
			rules: wantRules, routes: wantRoutes,
		},
		{
			name: "dvr_snat host without the gateway port: the snat namespace is elsewhere",
			in: func() Input {
				return withoutPorts(northSouth(northbound.ModeDVRSNAT), qgPort)
			},
			rules: wantRules, routes: wantRoutes,
		},
		{
			name: "no gateway: no redirect, no snat namespace",
			in: func() Input {
				in := northSouth(northbound.ModeDVRSNAT)
				in.Routers[0].Gateway = nil
				return in
			},
		},
		{
			name: "router unknown to the model: no gateway",
			in: func() Input {
				in := northSouth(northbound.ModeDVRSNAT)
				in.Routers = nil
				return in
			},
		},
		{
			name: "a centralized router gets neither",
			in: func() Input {
				in := northSouth(northbound.ModeDVRSNAT)
				in.Routers[0].Distributed = false
				return in
			},
		},
		{
			name: "no sg- port on s2: no redirect for that subnet",
			in: func() Input {
				return remote(withoutPorts(northSouth(northbound.ModeDVR), sgPort2, qgPort), sgPort1)
			},
			rules: wantRules[:1], routes: wantRoutes[:1],
		},
		{
			name: "dvr_snat host with only the snat ports: an empty qrouter namespace and the snat one",
			in: func() Input {
				return withoutPorts(northSouth(northbound.ModeDVRSNAT), qrPort1, qrPort2)
			},
			snat: wantSNAT(wantSNATNAT), noQR: true,
		},
		{
			name: "external gateway outside the subnet: an on-link route to it first",
			in: func() Input {
				in := northSouth(northbound.ModeDVRSNAT)
				in.Subnets[3].GatewayIP = addr("198.51.100.1")
				return in
			},
			rules: wantRules, routes: wantRoutes,
			snat: func() *SNAT {
				s := wantSNAT(wantSNATNAT)
				s.Routes = []Route{
					{Dst: pfx("0.0.0.0/0"), Via: addr("198.51.100.1"), Device: "qg-qg1-eeeeeee"},
					{Dst: pfx("198.51.100.1/32"), Device: "qg-qg1-eeeeeee"},
					{Dst: pfx("::/0"), Via: addr("2001:db8::1"), Device: "qg-qg1-eeeeeee"},
				}
				return s
			}(),
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			got := Desired(in)
			want := Router{ID: nsRouter, Interfaces: wantQR, Rules: tt.rules, Routes: tt.routes, SNAT: tt.snat}
			if tt.noQR {
				want.Interfaces = nil
			}
			// Neighbours are TestDesired's business; here only the sg- ports' entries
			// matter (the qrouter resolves the redirect's next hop without ARP).
			if len(got) != 1 {
				t.Fatalf("Desired = %+v, want one router", got)
			}
			neigh := got[0].Neighbors
			got[0].Neighbors = nil
			if !reflect.DeepEqual(got[0], want) {
				t.Errorf("Desired:\n got %+v\nwant %+v", got[0], want)
				if got[0].SNAT != nil && want.SNAT != nil {
					t.Errorf("SNAT:\n got %+v\nwant %+v", *got[0].SNAT, *want.SNAT)
				}
			}
			for _, r := range tt.routes {
				if !slices.ContainsFunc(neigh, func(n Neighbor) bool { return n.IP == r.Via }) {
					t.Errorf("no neighbour entry for the redirect's next hop %s: %+v", r.Via, neigh)
				}
			}
			// Pure: the same input gives the same result.
			if again := Desired(tt.in()); !reflect.DeepEqual(again[0].SNAT, got[0].SNAT) || !reflect.DeepEqual(again[0].Rules, got[0].Rules) {
				t.Error("Desired is not deterministic")
			}
		})
	}
}
