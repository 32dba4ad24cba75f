package namespace

import (
	"bytes"
	"net"
	"net/netip"
	"reflect"
	"testing"

	"github.com/vishvananda/netlink"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func fip(subnet, ip string) state.FixedIP {
	return state.FixedIP{SubnetID: subnet, IP: netip.MustParseAddr(ip)}
}

func TestNames(t *testing.T) {
	if got := DeviceName("1f2e3d4c-5b6a-4789-8abc-def012345678"); got != "qr-1f2e3d4c-5b" {
		t.Errorf("DeviceName = %q, want qr-1f2e3d4c-5b (Neutron's qr- + 11)", got)
	}
	if got := DeviceName("abc"); got != "qr-abc" {
		t.Errorf("DeviceName(short) = %q", got)
	}
	if got := NamespaceName("r1"); got != "qrouter-r1" {
		t.Errorf("NamespaceName = %q", got)
	}
	r, p, ok := parseAlias(linkAlias("r-1", "p-1"))
	if !ok || r != "r-1" || p != "p-1" {
		t.Errorf("parseAlias(linkAlias) = %q %q %v", r, p, ok)
	}
	for _, bad := range []string{aliasPrefix, "", "dvrflow router-namespace router=x", "other router=x port=y",
		gatewayAlias("n", "p"), fipLinkAlias("r", "n")} {
		if _, _, ok := parseAlias(bad); ok {
			t.Errorf("parseAlias(%q) ok", bad)
		}
	}
	// The floating IP devices' aliases: fg- names its network and port, rfp-/fpr- their
	// router and the fip- namespace's network.
	for alias, want := range map[string]devAlias{
		linkAlias("r-1", "p-1"):    {router: "r-1", port: "p-1"},
		gatewayAlias("n-1", "p-2"): {network: "n-1", port: "p-2"},
		fipLinkAlias("r-1", "n-1"): {router: "r-1", fipNetwork: "n-1"},
	} {
		if got, ok := parseDevAlias(alias); !ok || got != want {
			t.Errorf("parseDevAlias(%q) = %+v %v, want %+v", alias, got, ok, want)
		}
	}
	for _, bad := range []string{"dvrflow router-namespace network=n fip-network=x", "dvrflow router-namespace router= port=p",
		"dvrflow router-namespace port=p router=r"} {
		if d, ok := parseDevAlias(bad); ok {
			t.Errorf("parseDevAlias(%q) = %+v, want not ours", bad, d)
		}
	}
}

// TestGratuitousARP checks the frame byte by byte: broadcast, ARP, Ethernet/IPv4, the
// operation, sender = target = the floating IP, the sender MAC the device's.
func TestGratuitousARP(t *testing.T) {
	got := gratuitousARP(mac("fa:16:3e:00:00:0f"), netip.MustParseAddr("203.0.113.50"), arpReply)
	want := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfa, 0x16, 0x3e, 0x00, 0x00, 0x0f, 0x08, 0x06, // Ethernet
		0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x02, // htype, ptype, hlen, plen, op
		0xfa, 0x16, 0x3e, 0x00, 0x00, 0x0f, 203, 0, 113, 50, // sender
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 203, 0, 113, 50, // target
	}
	if !bytes.Equal(got, want) {
		t.Errorf("gratuitousARP =\n% x\nwant\n% x", got, want)
	}
}

// TestRuleIIF checks the fip- namespace's rule shape: "from all iif fpr-X", its key and
// its read-back from what the kernel returns (no source for "from all").
func TestRuleIIF(t *testing.T) {
	r := Rule{From: netip.MustParsePrefix("0.0.0.0/0"), IIF: "fpr-5a5a5a5a-0", Table: 2852208641, Priority: 2852208641}
	if err := validRule(r); err != nil {
		t.Fatalf("validRule(%+v) = %v", r, err)
	}
	if got, want := ruleKey(r), "2852208641: from 0.0.0.0/0 iif fpr-5a5a5a5a-0 lookup 2852208641"; got != want {
		t.Errorf("ruleKey = %q, want %q", got, want)
	}
	back, ok := ruleFrom(netlink.Rule{IifName: r.IIF, Table: int(r.Table), Priority: int(r.Priority)}, netlink.FAMILY_V4)
	if !ok || ruleKey(back) != ruleKey(r) {
		t.Errorf("ruleFrom = %+v %v, want %+v", back, ok, r)
	}
	if err := validRule(Rule{From: netip.MustParsePrefix("10.0.0.0/8"), IIF: "fpr-x", Table: 5, Priority: 5}); err == nil {
		t.Error("a rule with both a source prefix and an input device passed validRule")
	}
}

func TestDesired(t *testing.T) {
	in := Input{
		Subnets: []state.Subnet{
			{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.1.0/24"), GatewayIP: netip.MustParseAddr("10.0.1.1"), IPVersion: 4},
			{ID: "s1v6", NetworkID: "n1", CIDR: netip.MustParsePrefix("fd00:1::/64"), GatewayIP: netip.MustParseAddr("fd00:1::1"), IPVersion: 6},
			{ID: "s2", NetworkID: "n2", CIDR: netip.MustParsePrefix("10.0.2.0/24"), GatewayIP: netip.MustParseAddr("10.0.2.1"), IPVersion: 4},
			{ID: "s3", NetworkID: "n3", CIDR: netip.MustParsePrefix("10.0.3.0/24"), IPVersion: 4},
		},
		Networks: []state.Network{{ID: "n1", MTU: 1450}, {ID: "n2"}},
		LocalPorts: []state.Port{
			{ID: "rp2-xxxxxxxxxxxxxxxx", NetworkID: "n2", MAC: mac("fa:16:3e:00:00:02"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
				DeviceID: "r1", FixedIPs: []state.FixedIP{fip("s2", "10.0.2.1")}},
			{ID: "rp1-xxxxxxxxxxxxxxxx", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:01"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
				DeviceID: "r1", FixedIPs: []state.FixedIP{fip("s1v6", "fd00:1::1"), fip("s1", "10.0.1.1"), fip("unknown", "10.9.9.9")}},
			{ID: "vm1", NetworkID: "n1", MAC: mac("fa:16:3e:00:01:01"), DeviceOwner: "compute:nova",
				FixedIPs: []state.FixedIP{fip("s1", "10.0.1.11"), fip("s1v6", "fd00:1::11")},
				AllowedAddressPairs: []state.AddressPair{
					{Prefix: netip.MustParsePrefix("10.0.1.100/32"), MAC: mac("fa:16:3e:00:01:99")},
					{Prefix: netip.MustParsePrefix("10.0.1.101/32")},   // the port's own MAC
					{Prefix: netip.MustParsePrefix("10.0.1.128/25")},   // not a single address
					{Prefix: netip.MustParsePrefix("fd00:1::100/128")}, // v6 pair on the v4 subnet: only via s1v6
				}},
			// Another router's interface on s3 only: a second router; no neighbours from it.
			{ID: "rp3", NetworkID: "n3", MAC: mac("fa:16:3e:00:00:03"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
				DeviceID: "r0", FixedIPs: []state.FixedIP{fip("s3", "10.0.3.1")}},
			// A port on no router subnet here.
			{ID: "vm9", NetworkID: "n9", MAC: mac("fa:16:3e:00:09:09"), DeviceOwner: "compute:nova",
				FixedIPs: []state.FixedIP{fip("s9", "10.0.9.9")}},
		},
		RemotePorts: []state.Port{
			{ID: "vm1", NetworkID: "n1", MAC: mac("fa:16:3e:ff:ff:ff"), DeviceOwner: "compute:nova", // local copy wins
				FixedIPs: []state.FixedIP{fip("s1", "10.0.1.11")}},
			{ID: "vm2", NetworkID: "n2", MAC: mac("fa:16:3e:00:02:02"), DeviceOwner: "compute:nova",
				FixedIPs: []state.FixedIP{fip("s2", "10.0.2.12")}},
			// A pair on vm2 for vm1's fixed IP: the fixed IP wins.
			{ID: "vm0", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:aa"), DeviceOwner: "compute:nova",
				FixedIPs:            []state.FixedIP{fip("s1", "10.0.1.10")},
				AllowedAddressPairs: []state.AddressPair{{Prefix: netip.MustParsePrefix("10.0.1.11/32")}}},
			// The same router's interface on another host, and an SNAT port: the former
			// never gets an entry, the latter does (not a router interface owner).
			{ID: "rp1-xxxxxxxxxxxxxxxx", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:01"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
				DeviceID: "r1", FixedIPs: []state.FixedIP{fip("s1", "10.0.1.1")}},
			{ID: "sg1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:5a"), DeviceOwner: northbound.OwnerRouterCentralizedSNAT,
				DeviceID: "r1", FixedIPs: []state.FixedIP{fip("s1", "10.0.1.5")}},
			{ID: "legacy", NetworkID: "n2", MAC: mac("fa:16:3e:00:00:ee"), DeviceOwner: "network:router_interface",
				FixedIPs: []state.FixedIP{fip("s2", "10.0.2.254")}},
		},
	}
	got := Desired(in)
	want := []Router{
		{ID: "r0", Interfaces: []Interface{{PortID: "rp3", MAC: mac("fa:16:3e:00:00:03"),
			Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.3.1/24")}}}},
		{ID: "r1",
			Interfaces: []Interface{
				{PortID: "rp1-xxxxxxxxxxxxxxxx", MAC: mac("fa:16:3e:00:00:01"), MTU: 1450,
					Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.1.1/24"), netip.MustParsePrefix("fd00:1::1/64")}},
				{PortID: "rp2-xxxxxxxxxxxxxxxx", MAC: mac("fa:16:3e:00:00:02"),
					Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.2.1/24")}},
			},
			Neighbors: []Neighbor{
				{IP: netip.MustParseAddr("10.0.1.5"), MAC: mac("fa:16:3e:00:00:5a"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("10.0.1.10"), MAC: mac("fa:16:3e:00:00:aa"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("10.0.1.11"), MAC: mac("fa:16:3e:00:01:01"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("10.0.1.100"), MAC: mac("fa:16:3e:00:01:99"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("10.0.1.101"), MAC: mac("fa:16:3e:00:01:01"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("fd00:1::11"), MAC: mac("fa:16:3e:00:01:01"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("fd00:1::100"), MAC: mac("fa:16:3e:00:01:01"), Interface: "rp1-xxxxxxxxxxxxxxxx"},
				{IP: netip.MustParseAddr("10.0.2.12"), MAC: mac("fa:16:3e:00:02:02"), Interface: "rp2-xxxxxxxxxxxxxxxx"},
			}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Desired:\n got %+v\nwant %+v", got, want)
	}
	// The result shares no memory with the input.
	got[1].Interfaces[0].MAC[5] = 0xff
	if in.LocalPorts[1].MAC[5] != 1 {
		t.Error("Desired's MAC aliases the input")
	}
	if r := Desired(Input{LocalPorts: in.LocalPorts[2:3]}); len(r) != 0 {
		t.Errorf("Desired without router interfaces = %+v, want none", r)
	}
}

func TestValidInterface(t *testing.T) {
	good := Interface{PortID: "p1", MAC: mac("fa:16:3e:00:00:01"), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")}}
	if err := validInterface(good); err != nil {
		t.Errorf("valid interface refused: %v", err)
	}
	for name, f := range map[string]func(*Interface){
		"no port id":    func(i *Interface) { i.PortID = "" },
		"slash in id":   func(i *Interface) { i.PortID = "a/b" },
		"no MAC":        func(i *Interface) { i.MAC = nil },
		"multicast MAC": func(i *Interface) { i.MAC = mac("01:00:5e:00:00:01") },
		"bad MTU":       func(i *Interface) { i.MTU = -1 },
		"bad address":   func(i *Interface) { i.Addrs = []netip.Prefix{{}} },
	} {
		i := good
		i.MAC = append(net.HardwareAddr(nil), good.MAC...)
		f(&i)
		if err := validInterface(i); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	for _, id := range []string{"", "../x", "a/b", "-x"} {
		if validID.MatchString(id) {
			t.Errorf("router id %q accepted", id)
		}
	}
}
