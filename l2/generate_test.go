package l2

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// Objects of the derived cases.
const (
	netVLAN  = "a1000001-0000-4000-8000-000000000001"
	netFlat  = "a1000002-0000-4000-8000-000000000002"
	netOther = "a1000003-0000-4000-8000-000000000003"
	subnet4  = "b1000001-0000-4000-8000-000000000001"
	subnet6  = "b1000002-0000-4000-8000-000000000002"
	portA    = "c1000001-0000-4000-8000-000000000001"
	portB    = "c1000002-0000-4000-8000-000000000002"
)

// baseNode is a legacy compute node with physnet1 on br-vlan (patch ofports 1/1), a vlan
// network (seg 100, local VLAN 1) and no ports.
func baseNode() *state.Node {
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "legacy", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:           []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
			PreventARPSpoofing: true,
		},
		Networks: []state.Network{{ID: netVLAN, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 100, LocalVLAN: 1}},
	}
}

// vmPort is a VM port with port security on the vlan network.
func vmPort(id, m string, ofport uint32, ips ...string) state.Port {
	return state.Port{ID: id, Name: "tap" + id[:11], NetworkID: netVLAN, MAC: mac(m), DeviceOwner: "compute:nova",
		FixedIPs: fixed(subnet4, ips...), PortSecurity: true, OFPort: ofport}
}

type derivedCase struct {
	name, doc string
	node      *state.Node
	// absent are objects (port or network ids, physnets) that must own no flow.
	absent []string
}

// derivedCases are the situations no shipped Neutron dump covers. Their output is pinned in
// testdata/NAME.golden (go test ./l2 -run Derived -update rewrites them), each line reviewed
// against neutron-pipeline.md §2.1–2.6.
func derivedCases() []derivedCase {
	var cases []derivedCase
	add := func(name, doc string, edit func(n *state.Node), absent ...string) {
		n := baseNode()
		edit(n)
		cases = append(cases, derivedCase{name, doc, n, absent})
	}

	add("flat_network", "flat network on physnet2 (br-ex): I16 push_vlan on br-int, P3 strip_vlan in br-ex table 0, P2", func(n *state.Node) {
		n.Host.Physical = append(n.Host.Physical, state.PhysicalBridge{Physnet: "physnet2", Bridge: "br-ex", IntPort: 2, PhyPort: 1})
		n.Networks = append(n.Networks, state.Network{ID: netFlat, Type: northbound.Flat, Physnet: "physnet2", LocalVLAN: 2})
	})
	add("flat_network_dvr", "same with enable_distributed_routing: P3 in table 2 of both bridges, no P2", func(n *state.Node) {
		n.Host.Distributed = true
		n.Host.Physical = append(n.Host.Physical, state.PhysicalBridge{Physnet: "physnet2", Bridge: "br-ex", IntPort: 2, PhyPort: 1})
		n.Networks = append(n.Networks, state.Network{ID: netFlat, Type: northbound.Flat, Physnet: "physnet2", LocalVLAN: 2})
	})
	add("aap_cidr_and_mac", "AAPs: a /24, a host address with its own MAC, an IPv6 /64, and one repeating the port's own IP and MAC", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		p.AllowedAddressPairs = []state.AddressPair{
			{Prefix: pfx("10.0.2.0/24")},
			{Prefix: pfx("192.168.7.7"), MAC: mac("fa:16:3e:99:00:01")},
			{Prefix: pfx("2001:db8:1::/64")},
			{Prefix: pfx("10.0.1.10/32"), MAC: mac("fa:16:3e:00:00:0a")},
		}
		n.Ports = []state.Port{p}
	})
	add("aap_any_ipv4", "AAP 0.0.0.0/0 (and an IPv6 one): Neutron deletes the whole ARP and ND protection, only the MAC check stays", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		p.AllowedAddressPairs = []state.AddressPair{{Prefix: pfx("0.0.0.0/0")}, {Prefix: pfx("2001:db8:1::5")}}
		n.Ports = []state.Port{p}
	})
	add("aap_any_ipv6", "AAP ::/0: no ND protection, ARP protection as usual", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		p.AllowedAddressPairs = []state.AddressPair{{Prefix: pfx("::/0")}, {Prefix: pfx("10.0.1.128/25")}}
		n.Ports = []state.Port{p}
	})
	add("aap_prefix_lengths", "AAP prefixes of many lengths, one with host bits set, one IPv4-mapped: masked matches as OVS prints them", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		for _, a := range []string{"10.0.0.0/8", "128.0.0.0/1", "10.1.2.2/31", "10.9.9.9/24", "::ffff:10.7.0.0/112",
			"2001:db8::/32", "8000::/1", "2001:db8::2/127", "2001:db8:0:0:1::/80"} {
			p.AllowedAddressPairs = append(p.AllowedAddressPairs, state.AddressPair{Prefix: pfx(a)})
		}
		n.Ports = []state.Port{p}
	})
	add("port_security_disabled", "port_security_enabled false: no spoofing flows", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		p.PortSecurity = false
		n.Ports = []state.Port{p}
	}, portA)
	add("network_owned_ports", "network:dhcp and network:router_interface_distributed ports: no spoofing flows", func(n *state.Node) {
		dhcp := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.2")
		dhcp.DeviceOwner = northbound.OwnerDHCP
		qr := vmPort(portB, "fa:16:3e:00:00:0b", 6, "10.0.1.1")
		qr.DeviceOwner = northbound.OwnerRouterInterfaceDistributed
		n.Ports = []state.Port{dhcp, qr}
	}, portA, portB)
	add("dead_port", "admin-down port (with port security and an AAP): I17 only", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		p.AllowedAddressPairs = []state.AddressPair{{Prefix: pfx("10.0.1.100")}}
		p.Dead = true
		n.Ports = []state.Port{p}
	})
	add("ipv6_fixed_ip", "dual-stack port: its IPv6 fixed IP and EUI-64 link-local in ND, its IPv4 one in ARP", func(n *state.Node) {
		p := vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10")
		p.FixedIPs = append(p.FixedIPs, fixed(subnet6, "2001:db8::a")...)
		n.Ports = []state.Port{p}
	})
	add("local_network", "local network and a vxlan one (tunnels/'s): no flows for either; the vlan network keeps its own", func(n *state.Node) {
		n.Networks = append(n.Networks,
			state.Network{ID: netFlat, Type: northbound.Local, LocalVLAN: 2},
			state.Network{ID: netOther, Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 3})
	}, netFlat, netOther)
	add("unmapped_physnet", "vlan network on a physnet without bridge mapping: no flows", func(n *state.Node) {
		n.Networks = append(n.Networks, state.Network{ID: netOther, Type: northbound.VLAN, Physnet: "physnet9", SegmentationID: 200, LocalVLAN: 2})
	}, netOther)
	add("no_spoofing_protection", "prevent_arp_spoofing false: no spoofing flows; a dead port still gets I17", func(n *state.Node) {
		n.Host.PreventARPSpoofing = false
		dead := vmPort(portB, "fa:16:3e:00:00:0b", 6, "10.0.1.11")
		dead.Dead = true
		n.Ports = []state.Port{vmPort(portA, "fa:16:3e:00:00:0a", 5, "10.0.1.10"), dead}
	}, portA)
	add("not_ready", "network without local VLAN, port with ofport 0, physnet2 whose patch ports have no ofport yet: only P1 for physnet2", func(n *state.Node) {
		n.Host.Physical = append(n.Host.Physical, state.PhysicalBridge{Physnet: "physnet2", Bridge: "br-ex"})
		n.Networks = []state.Network{
			{ID: netVLAN, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 100},
			{ID: netFlat, Type: northbound.Flat, Physnet: "physnet2", LocalVLAN: 2},
		}
		p := vmPort(portA, "fa:16:3e:00:00:0a", 0, "10.0.1.10")
		d := vmPort(portB, "fa:16:3e:00:00:0b", 0, "10.0.1.11")
		d.Dead = true
		n.Ports = []state.Port{p, d}
	}, netVLAN, netFlat, portA, portB)
	return cases
}

// goldenText renders a node's flows per bridge, cookies replaced by a comment naming their
// category and object.
func goldenText(c derivedCase, out map[string][]flows.Flow) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s: %s\n", c.name, c.doc)
	names := objectNames(c.node)
	bridges := make([]string, 0, len(out))
	for br := range out {
		bridges = append(bridges, br)
	}
	sort.Strings(bridges)
	for _, br := range bridges {
		fs := append([]flows.Flow(nil), out[br]...)
		flows.Sort(fs)
		fmt.Fprintf(&b, "\n## %s: %d flows\n", br, len(fs))
		for _, f := range fs {
			cookie := flows.DescribeCookie(f.Cookie)
			f.Cookie = 0
			fmt.Fprintf(&b, "%s  # %s\n", f, cookie.Text(names))
		}
	}
	return b.String()
}

func TestGenerateDerivedGolden(t *testing.T) {
	for _, c := range derivedCases() {
		t.Run(c.name, func(t *testing.T) {
			out := generate(c.node)
			got := goldenText(c, out)
			golden := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("output changed (review, then rerun with -update):\n%s",
					lineDiff(strings.Split(string(want), "\n"), strings.Split(got, "\n")))
			}
			names := objectNames(c.node)
			for br, fs := range out {
				for _, f := range fs {
					if obj := names[flows.CookieObject(f.Cookie)]; slices.Contains(c.absent, obj) {
						t.Errorf("%s: %s must own no flow: %s", br, obj, f)
					}
				}
			}
		})
	}
}

// Every flow carries our cookie, with the category and object of the rule it implements
// (worked out here from the flow's shape, independently of the generator), and no bridge
// gets two flows with the same table, priority and match.
func TestGenerateCookiesAndUniqueness(t *testing.T) {
	nodes := map[string]*state.Node{"legacy_vlan": legacyVLANNode(), "dvr_vlan": dvrVLANNode()}
	for _, c := range derivedCases() {
		nodes[c.name] = c.node
	}
	for name, n := range nodes {
		out := generate(n)
		for br, fs := range out {
			seen := map[flows.Key]bool{}
			for _, f := range fs {
				if seen[f.Key()] {
					t.Errorf("%s %s: duplicate flow %s", name, br, f)
				}
				seen[f.Key()] = true
				if !flows.IsOurs(f.Cookie) {
					t.Errorf("%s %s: flow without our cookie: %s", name, br, f)
					continue
				}
				cat, obj := expectedCookie(t, n, br, f)
				if got := flows.CookieCategory(f.Cookie); got != cat || flows.CookieObject(f.Cookie) != flows.ObjectHash(obj) {
					t.Errorf("%s %s: %s has cookie %s/%#x, want %s/%s", name, br, f, got, flows.CookieObject(f.Cookie), cat, obj)
				}
			}
		}
	}
}

// expectedCookie classifies a flow of Generate by its bridge, table, priority and match.
func expectedCookie(t *testing.T, n *state.Node, bridge string, f flows.Flow) (flows.Category, string) {
	t.Helper()
	in := f.Match.InPortValue()
	if bridge != n.Host.IntegrationBridge {
		for _, p := range n.Host.Physical {
			if p.Bridge != bridge {
				continue
			}
			switch f.Priority {
			case 0, 2: // P1, P2
				return flows.CategoryPhysicalPatch, p.Physnet
			case 4: // P3
				for _, nw := range n.Networks {
					if nw.Physnet == p.Physnet && f.Match.Key() == (flows.Match{}).InPort(p.PhyPort).VLAN(nw.LocalVLAN).Key() {
						return flows.CategoryLocalVLAN, nw.ID
					}
				}
			}
		}
		t.Errorf("unexpected flow on %s: %s", bridge, f)
		return 0, ""
	}
	port := func() string {
		for _, p := range n.Ports {
			if p.OFPort == in && in != 0 {
				return p.ID
			}
		}
		t.Errorf("flow for no port: %s", f)
		return ""
	}
	table := flows.IntTable(f.Table) // a br-int flow
	switch {
	case table != flows.IntLocalSwitching && f.Priority == 0, table == flows.IntTransient, table == flows.IntTransientEgress,
		table == flows.IntLocalSwitching && (f.Priority == 0 || f.Priority == 65535):
		return flows.CategoryBaseline, "br-int"
	case table == flows.IntLocalSwitching && f.Priority == 3: // I15, I16
		for _, nw := range n.Networks {
			p, _ := n.Host.PhysicalFor(nw.Physnet)
			if p.IntPort == in && (f.Match.Key() == (flows.Match{}).InPort(in).VLAN(uint16(nw.SegmentationID)).Key() ||
				nw.Type == northbound.Flat && f.Match.Key() == (flows.Match{}).InPort(in).Untagged().Key()) {
				return flows.CategoryLocalVLAN, nw.ID
			}
		}
	case table == flows.IntLocalSwitching && f.Priority == 2: // I14 or I17
		for _, p := range n.Host.Physical {
			if p.IntPort == in {
				return flows.CategoryPhysicalPatch, p.Physnet
			}
		}
		return flows.CategoryPort, port()
	case table == flows.IntLocalSwitching && (f.Priority == 9 || f.Priority == 10),
		(table == flows.IntARPSpoof || table == flows.IntMACSpoof) && f.Priority == 2:
		return flows.CategorySpoofing, port()
	}
	t.Errorf("unexpected flow on br-int: %s", f)
	return 0, ""
}

func TestLinkLocal(t *testing.T) {
	for m, want := range map[string]string{
		"fa:16:3e:00:01:01": "fe80::f816:3eff:fe00:101",
		"00:00:00:00:00:00": "fe80::200:ff:fe00:0",
		"02:ff:ff:ff:ff:ff": "fe80::ff:ffff:feff:ffff",
	} {
		if got := LinkLocal(mac(m)).String(); got != want {
			t.Errorf("LinkLocal(%s) = %s, want %s", m, got, want)
		}
	}
}
