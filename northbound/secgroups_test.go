package northbound

import (
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParseProtocol(t *testing.T) {
	tests := []struct {
		in       string
		any      bool
		number   uint8
		name     string
		hasPorts bool
		icmp     bool
	}{
		{in: "", any: true, name: "any"},
		{in: "any", any: true, name: "any"},
		{in: "ANY", any: true, name: "any"},
		{in: "tcp", number: 6, name: "tcp", hasPorts: true},
		{in: "TCP", number: 6, name: "tcp", hasPorts: true},
		{in: " Udp ", number: 17, name: "udp", hasPorts: true},
		{in: "sctp", number: 132, name: "sctp", hasPorts: true},
		{in: "dccp", number: 33, name: "dccp", hasPorts: true},
		{in: "udplite", number: 136, name: "udplite", hasPorts: true},
		{in: "icmp", number: 1, name: "icmp", icmp: true},
		{in: "icmpv6", number: 58, name: "ipv6-icmp", icmp: true},
		{in: "ipv6-icmp", number: 58, name: "ipv6-icmp", icmp: true},
		{in: "IPv6-ICMP", number: 58, name: "ipv6-icmp", icmp: true},
		{in: "gre", number: 47, name: "gre"},
		{in: "vrrp", number: 112, name: "vrrp"},
		{in: "hopopt", number: 0, name: "ip"},
		{in: "ip", number: 0, name: "ip"},
		{in: "6", number: 6, name: "tcp", hasPorts: true},
		{in: "058", number: 58, name: "ipv6-icmp", icmp: true},
		{in: "1", number: 1, name: "icmp", icmp: true},
		{in: "0", number: 0, name: "ip"},
		{in: "253", number: 253, name: "253"},
		{in: "255", number: 255, name: "255"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			p, err := ParseProtocol(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			n, ok := p.Number()
			if p.Any() != tt.any || ok == tt.any || n != tt.number || p.Name() != tt.name ||
				p.HasPorts() != tt.hasPorts || p.IsICMP() != tt.icmp {
				t.Errorf("ParseProtocol(%q) = any %v, number %d/%v, name %q, ports %v, icmp %v", tt.in,
					p.Any(), n, ok, p.Name(), p.HasPorts(), p.IsICMP())
			}
			text, _ := p.MarshalText()
			var back Protocol
			if err := back.UnmarshalText(text); err != nil || back != p {
				t.Errorf("round trip via %q = %v, %v", text, back, err)
			}
		})
	}
	for _, bad := range []string{"256", "-1", "tcpp", "0x6", "icmp6", "6.0", "null"} {
		if p, err := ParseProtocol(bad); err == nil {
			t.Errorf("ParseProtocol(%q) = %v, want an error", bad, p)
		}
	}
	if p := (Protocol{}); !p.Any() || p.Name() != "any" {
		t.Errorf("zero Protocol = %v, want any", p)
	}
}

func TestParseSecurityGroupValues(t *testing.T) {
	if d, err := ParseDirection("egress"); err != nil || d != Egress {
		t.Errorf("ParseDirection(egress) = %q, %v", d, err)
	}
	if _, err := ParseDirection("Ingress"); err == nil {
		t.Error("ParseDirection(Ingress): want an error (Neutron takes the exact values)")
	}
	for in, want := range map[string]EtherType{"IPv4": IPv4, "ipv4": IPv4, "IPV6": IPv6, " ipv6": IPv6} {
		if e, err := ParseEtherType(in); err != nil || e != want {
			t.Errorf("ParseEtherType(%q) = %q, %v", in, e, err)
		}
	}
	if _, err := ParseEtherType("IPv5"); err == nil {
		t.Error("ParseEtherType(IPv5): want an error")
	}
	prefixes := map[string]string{
		"10.0.0.5": "10.0.0.5/32", "10.0.0.5/24": "10.0.0.0/24", "0.0.0.0/0": "0.0.0.0/0",
		"2001:db8::1/64": "2001:db8::/64", "2001:db8::1": "2001:db8::1/128",
	}
	for in, want := range prefixes {
		if p, err := ParseRemoteIPPrefix(in); err != nil || p.String() != want {
			t.Errorf("ParseRemoteIPPrefix(%q) = %v, %v; want %s", in, p, err, want)
		}
	}
	if _, err := ParseRemoteIPPrefix("10.0.0.0/33"); err == nil {
		t.Error("ParseRemoteIPPrefix(10.0.0.0/33): want an error")
	}
	if p, err := ParseAddressGroupAddress("10.1.2.3/16"); err != nil || p.String() != "10.1.0.0/16" {
		t.Errorf("ParseAddressGroupAddress = %v, %v", p, err)
	}
	if _, err := ParseAddressGroupAddress("10.1.2.3"); err == nil {
		t.Error("ParseAddressGroupAddress(10.1.2.3): want an error (Neutron wants a CIDR)")
	}
}

func port(n int) *int { return &n }

// sgSnapshot is a small valid snapshot: one network with a subnet, two local ports in
// group "web" (one also in "ssh"), a remote port in "web", a stateless group, an address
// group.
func sgSnapshot() Snapshot {
	fixed := func(ip string) []FixedIP {
		return []FixedIP{{SubnetID: "s1", IP: netip.MustParseAddr(ip)}}
	}
	tcp, icmp := ProtocolNumber(ProtoTCP), ProtocolNumber(ProtoICMP)
	return Snapshot{Model: Model{
		OtherHosts: []RemoteHost{{Name: "h2", IP: netip.MustParseAddr("192.0.2.2")}},
		Networks:   []Network{{ID: "n1", Type: VXLAN, SegmentationID: 100}},
		Subnets:    []Subnet{{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.0.0/24")}},
		Ports: []Port{
			{ID: "p1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:01"), FixedIPs: fixed("10.0.0.11"), PortSecurity: true,
				SecurityGroups:      []string{"web", "ssh", "web"},
				AllowedAddressPairs: []AddressPair{{Prefix: netip.MustParsePrefix("10.0.0.128/25")}}},
			{ID: "p2", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:02"), FixedIPs: fixed("10.0.0.12"), PortSecurity: true,
				SecurityGroups: []string{"web"}},
			{ID: "p3", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:03"), FixedIPs: fixed("10.0.0.13"), PortSecurity: true,
				SecurityGroups: []string{"raw"}},
		},
		RemotePorts: []RemotePort{{Host: "h2", ID: "r1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:21"),
			FixedIPs: fixed("10.0.0.21"), SecurityGroups: []string{"web"}}},
		AddressGroups: []AddressGroup{{ID: "ag1", Addresses: []netip.Prefix{
			netip.MustParsePrefix("192.0.2.0/24"), netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("192.0.2.7/24")}}},
		SecurityGroups: []SecurityGroup{
			{ID: "web", Name: "web", Stateful: true, Rules: []SecurityGroupRule{
				{ID: "w1", Direction: Ingress, EtherType: IPv4, Protocol: tcp, PortRangeMin: port(80), PortRangeMax: port(443)},
				{ID: "w2", Direction: Ingress, EtherType: IPv4, RemoteGroupID: "web"},
				{ID: "w3", Direction: Ingress, EtherType: IPv6, Protocol: icmp, PortRangeMin: port(128), PortRangeMax: port(0)},
				{ID: "w4", Direction: Egress, EtherType: IPv4, Protocol: tcp, PortRangeMin: port(1), PortRangeMax: port(65535),
					RemoteIPPrefix: netip.MustParsePrefix("10.0.0.77/8")},
				{ID: "w5", Direction: Ingress, EtherType: IPv4, RemoteAddressGroupID: "ag1"},
			}},
			{ID: "ssh", Stateful: true, Rules: []SecurityGroupRule{
				{Direction: Ingress, EtherType: IPv4, Protocol: tcp, PortRangeMin: port(22), PortRangeMax: port(22)},
			}},
			{ID: "raw", Stateful: false, Rules: []SecurityGroupRule{
				{Direction: Egress, EtherType: IPv6},
			}},
		},
	}}
}

var sgEnv = Env{Host: "h1", TunnelTypes: []NetworkType{VXLAN}, LocalIP: netip.MustParseAddr("192.0.2.1")}

func TestValidateSecurityGroups(t *testing.T) {
	m, problems := Validate(sgSnapshot(), sgEnv)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(m.SecurityGroups) != 3 || len(m.WithheldSecurityGroups) != 0 {
		t.Fatalf("groups = %+v, withheld %v", m.SecurityGroups, m.WithheldSecurityGroups)
	}
	web, ok := m.SecurityGroup("web")
	if !ok {
		t.Fatal("no group web")
	}
	if pr, ok := web.Rules[0].Ports(); !ok || pr != (PortRange{80, 443}) {
		t.Errorf("w1 ports = %v, %v", pr, ok)
	}
	if _, ok := web.Rules[0].ICMP(); ok {
		t.Error("w1 (tcp) has an ICMP match")
	}
	// icmp in an IPv6 rule is ipv6-icmp, as Neutron stores it.
	w3 := web.Rules[2]
	if n, _ := w3.Protocol.Number(); n != ProtoIPv6ICMP || w3.Protocol.Name() != "ipv6-icmp" {
		t.Errorf("w3 protocol = %v", w3.Protocol)
	}
	if ic, ok := w3.ICMP(); !ok || ic != (ICMPMatch{Type: 128, Code: 0, HasCode: true}) {
		t.Errorf("w3 ICMP = %+v, %v", ic, ok)
	}
	// 1–65535 is no range; the prefix loses its host bits.
	w4 := web.Rules[3]
	if _, ok := w4.Ports(); ok || w4.PortRangeMin != nil || w4.PortRangeMax != nil {
		t.Errorf("w4 port range = %v %v", w4.PortRangeMin, w4.PortRangeMax)
	}
	if w4.RemoteIPPrefix != netip.MustParsePrefix("10.0.0.0/8") {
		t.Errorf("w4 remote_ip_prefix = %v", w4.RemoteIPPrefix)
	}
	in := sgSnapshot()
	if *in.Model.SecurityGroups[0].Rules[3].PortRangeMin != 1 || in.Model.SecurityGroups[0].Rules[3].RemoteIPPrefix.Bits() != 8 {
		t.Error("validation modified its input")
	}
	ag, _ := m.AddressGroup("ag1")
	if want := []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16"), netip.MustParsePrefix("192.0.2.0/24")}; !reflect.DeepEqual(ag.Addresses, want) {
		t.Errorf("address group addresses = %v, want %v", ag.Addresses, want)
	}
	if p := m.Ports[0]; !reflect.DeepEqual(p.SecurityGroups, []string{"ssh", "web"}) || p.FirewallWithheld {
		t.Errorf("p1 groups = %v, withheld %v", p.SecurityGroups, p.FirewallWithheld)
	}
	wantMembers := []netip.Prefix{netip.MustParsePrefix("10.0.0.11/32"), netip.MustParsePrefix("10.0.0.12/32"),
		netip.MustParsePrefix("10.0.0.21/32"), netip.MustParsePrefix("10.0.0.128/25")}
	if got := m.SecurityGroupMembers("web"); !reflect.DeepEqual(got, wantMembers) {
		t.Errorf("members of web = %v, want %v", got, wantMembers)
	}
	if got := m.SecurityGroupMembers("nobody"); len(got) != 0 {
		t.Errorf("members of an unknown group = %v", got)
	}
	if _, err := json.Marshal(m); err != nil {
		t.Errorf("the model does not marshal: %v", err)
	}
}

// TestValidateSecurityGroupProblems breaks one thing per case: the problems (kind, id,
// field, a word of the reason), which groups are withheld and which ports' firewalls.
func TestValidateSecurityGroupProblems(t *testing.T) {
	type want struct {
		kind   Kind
		id     string
		field  string
		reason string
	}
	rule := func(g, r int) func(*Snapshot) *SecurityGroupRule {
		return func(s *Snapshot) *SecurityGroupRule { return &s.Model.SecurityGroups[g].Rules[r] }
	}
	w1, w2, w3, w4, ssh := rule(0, 0), rule(0, 1), rule(0, 2), rule(0, 3), rule(1, 0)
	tests := []struct {
		name     string
		edit     func(*Snapshot)
		problems []want
		withheld []string
		// firewallWithheld are the ports whose firewall is withheld.
		firewallWithheld []string
	}{
		{name: "min greater than max", edit: func(s *Snapshot) { w1(s).PortRangeMin = port(500) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w1].port_range_min", "greater than port_range_max 443"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "only min", edit: func(s *Snapshot) { w1(s).PortRangeMax = nil },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w1].port_range_min", "needs both"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "port 0", edit: func(s *Snapshot) { w1(s).PortRangeMin = port(0) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w1].port_range_min", "0 is not a valid tcp port"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "port out of range", edit: func(s *Snapshot) { w1(s).PortRangeMax = port(70000) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w1].port_range_max", "70000 is not a port number"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "ports without protocol", edit: func(s *Snapshot) { w2(s).PortRangeMin, w2(s).PortRangeMax = port(1), port(2) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w2].protocol", "needs a protocol"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "ports with a protocol without ports", edit: func(s *Snapshot) {
			w2(s).Protocol, w2(s).PortRangeMin, w2(s).PortRangeMax = ProtocolNumber(47), port(1), port(2)
		}, problems: []want{{KindSecurityGroup, "web", "security_group_rules[w2].protocol", "gre has no ports"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "icmp type out of range", edit: func(s *Snapshot) { w3(s).PortRangeMin = port(256) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w3].port_range_min", "256 is not an ICMP type"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "icmp code out of range", edit: func(s *Snapshot) { w3(s).PortRangeMax = port(300) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w3].port_range_max", "300 is not an ICMP code"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "icmp code without type", edit: func(s *Snapshot) { w3(s).PortRangeMin = nil },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w3].port_range_max", "without an ICMP type"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "prefix of the other ethertype", edit: func(s *Snapshot) { w4(s).EtherType = IPv6 },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w4].remote_ip_prefix", "is an IPv4 prefix; the rule's ethertype is IPv6"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "two remotes", edit: func(s *Snapshot) { w4(s).RemoteGroupID = "ssh" },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w4]", "sets remote_ip_prefix and remote_group_id"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "unknown remote group", edit: func(s *Snapshot) { w2(s).RemoteGroupID = "nope" },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w2].remote_group_id", "unknown security group nope"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "unknown address group", edit: func(s *Snapshot) { rule(0, 4)(s).RemoteAddressGroupID = "ag9" },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w5].remote_address_group_id", "unknown address group ag9"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "invalid address group", edit: func(s *Snapshot) { s.Model.AddressGroups[0].Addresses[1] = netip.Prefix{} },
			problems: []want{{KindAddressGroup, "ag1", "addresses[1]", "missing"},
				{KindSecurityGroup, "web", "security_group_rules[w5].remote_address_group_id", "address group ag1 is invalid"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "ipv6 protocol in an IPv4 rule", edit: func(s *Snapshot) { w2(s).Protocol = ProtocolNumber(ProtoIPv6ICMP) },
			problems: []want{{KindSecurityGroup, "web", "security_group_rules[w2].protocol", "ipv6-icmp is an IPv6 protocol"}},
			withheld: []string{"web"}, firewallWithheld: []string{"p1", "p2"}},
		{name: "direction missing and wrong ethertype", edit: func(s *Snapshot) { ssh(s).Direction, ssh(s).EtherType = "", "IPv5" },
			problems: []want{{KindSecurityGroup, "ssh", "security_group_rules[0].direction", "missing"},
				{KindSecurityGroup, "ssh", "security_group_rules[0].ethertype", `"IPv5" is not IPv4 or IPv6`}},
			withheld: []string{"ssh"}, firewallWithheld: []string{"p1"}},
		{name: "duplicate rule id", edit: func(s *Snapshot) { ssh(s).ID = "w1" },
			problems: []want{{KindSecurityGroup, "ssh", "security_group_rules[w1].id", "also in security group web"}},
			withheld: []string{"ssh"}, firewallWithheld: []string{"p1"}},
		{name: "duplicate group id withholds both", edit: func(s *Snapshot) { s.Model.SecurityGroups[2].ID = "ssh" },
			problems: []want{{KindSecurityGroup, "ssh", "id", "duplicate id"}, {KindSecurityGroup, "ssh", "id", "duplicate id"},
				{KindPort, "p3", "security_groups[0]", "unknown security group raw"}},
			withheld: []string{"ssh"}, firewallWithheld: []string{"p1", "p3"}},
		{name: "group without id", edit: func(s *Snapshot) { s.Model.SecurityGroups[2].ID = "" },
			problems: []want{{KindSecurityGroup, "security_groups[2]", "id", "missing"},
				{KindPort, "p3", "security_groups[0]", "unknown security group raw"}},
			firewallWithheld: []string{"p3"}},
		{name: "a parse problem withholds the group", edit: func(s *Snapshot) {
			s.Model.SecurityGroups = s.Model.SecurityGroups[:2]
			s.Problems = append(s.Problems, Problem{Kind: KindSecurityGroup, ID: "raw", Field: "security_group_rules[0].protocol", Reason: `"x" is not a protocol`})
		}, problems: []want{{KindSecurityGroup, "raw", "security_group_rules[0].protocol", "not a protocol"}},
			withheld: []string{"raw"}, firewallWithheld: []string{"p3"}},
		{name: "port names an unknown group", edit: func(s *Snapshot) { s.Model.Ports[1].SecurityGroups = []string{"web", "nope"} },
			problems: []want{{KindPort, "p2", "security_groups[1]", "unknown security group nope"}}, firewallWithheld: []string{"p2"}},
		{name: "port names an empty id", edit: func(s *Snapshot) { s.Model.Ports[1].SecurityGroups = []string{""} },
			problems: []want{{KindPort, "p2", "security_groups[0]", "missing"}}, firewallWithheld: []string{"p2"}},
		{name: "groups without port security", edit: func(s *Snapshot) { s.Model.Ports[1].PortSecurity = false },
			problems: []want{{KindPort, "p2", "security_groups", "port_security_enabled false"}}, firewallWithheld: []string{"p2"}},
		{name: "stateful and stateless mixed", edit: func(s *Snapshot) { s.Model.Ports[1].SecurityGroups = []string{"web", "raw"} },
			problems: []want{{KindPort, "p2", "security_groups", "mixes stateful (web) and stateless (raw)"}}, firewallWithheld: []string{"p2"}},
		{name: "remote port names an unknown group", edit: func(s *Snapshot) { s.Model.RemotePorts[0].SecurityGroups = []string{"nope"} },
			problems: []want{{KindRemotePort, "h2/r1", "security_groups[0]", "unknown security group nope"}}},
		{name: "remote group withheld is still a remote group", edit: func(s *Snapshot) {
			ssh(s).PortRangeMin = port(99999)
			w2(s).RemoteGroupID = "ssh"
		}, problems: []want{{KindSecurityGroup, "ssh", "security_group_rules[0].port_range_min", "99999 is not a port number"}},
			withheld: []string{"ssh"}, firewallWithheld: []string{"p1"}},
		{name: "port on a dropped network keeps its problems", edit: func(s *Snapshot) {
			s.Model.Ports[1].NetworkID = "n9"
			s.Model.Ports[1].SecurityGroups = []string{"nope"}
		}, problems: []want{{KindPort, "p2", "network_id", "unknown network n9"}, {KindPort, "p2", "security_groups[0]", "unknown security group nope"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sgSnapshot()
			tt.edit(&s)
			m, problems := Validate(s, sgEnv)
			var got []want
			for _, p := range problems {
				got = append(got, want{p.Kind, p.ID, p.Field, p.Reason})
			}
			if len(got) != len(tt.problems) {
				t.Fatalf("problems = %v\nwant %v", problems, tt.problems)
			}
			for i, w := range tt.problems {
				g := got[i]
				if g.kind != w.kind || g.id != w.id || g.field != w.field || !strings.Contains(g.reason, w.reason) {
					t.Errorf("problem %d = %q\nwant %v", i, problems[i].Error(), w)
				}
			}
			if !slices.Equal(m.WithheldSecurityGroups, tt.withheld) {
				t.Errorf("withheld = %v, want %v", m.WithheldSecurityGroups, tt.withheld)
			}
			for _, id := range tt.withheld {
				if _, ok := m.SecurityGroup(id); ok {
					t.Errorf("withheld group %s is among the valid ones", id)
				}
			}
			var fw []string
			for _, p := range m.Ports {
				if p.FirewallWithheld {
					fw = append(fw, p.ID)
				}
			}
			if !slices.Equal(fw, tt.firewallWithheld) {
				t.Errorf("ports with their firewall withheld = %v, want %v", fw, tt.firewallWithheld)
			}
			if len(m.Ports)+len(m.RemotePorts) != 4 && tt.name != "port on a dropped network keeps its problems" {
				t.Errorf("a security group problem dropped a port: %d ports, %d remote", len(m.Ports), len(m.RemotePorts))
			}
		})
	}
}

// TestGroupMembers: ports known only as group members count in SecurityGroupMembers,
// normalised by Validate (sorted, duplicates and invalid addresses dropped), and changes to
// them show in Compare.
func TestGroupMembers(t *testing.T) {
	pfx := netip.MustParsePrefix
	s := Snapshot{Model: Model{GroupMembers: []GroupMember{
		{PortID: "p2", SecurityGroups: []string{"sg-b", "sg-a", "sg-a"}, Addresses: []netip.Prefix{pfx("10.0.2.5/32"), {}, pfx("10.0.9.0/24"), pfx("10.0.2.5/32")}},
		{PortID: "p3", SecurityGroups: []string{"sg-b"}, Addresses: []netip.Prefix{pfx("2001:db8::7/128")}},
		{PortID: "p2", SecurityGroups: []string{"sg-c"}},
		{SecurityGroups: []string{"sg-a"}, Addresses: []netip.Prefix{pfx("10.9.9.9/32")}},
	}}}
	m, problems := Validate(s, Env{Host: "h"})
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(m.GroupMembers) != 2 || !reflect.DeepEqual(m.GroupMembers[0].SecurityGroups, []string{"sg-a", "sg-b"}) {
		t.Fatalf("members: %+v", m.GroupMembers)
	}
	if got := m.SecurityGroupMembers("sg-a"); !reflect.DeepEqual(got, []netip.Prefix{pfx("10.0.2.5/32"), pfx("10.0.9.0/24")}) {
		t.Errorf("sg-a members: %v", got)
	}
	if got := m.SecurityGroupMembers("sg-b"); len(got) != 3 {
		t.Errorf("sg-b members: %v", got)
	}
	old := *m
	old.GroupMembers = old.GroupMembers[:1]
	if d := Compare(&old, m); !reflect.DeepEqual(d.GroupMembers.Added, []string{"p3"}) || d.Empty() {
		t.Errorf("diff: %+v", d.GroupMembers)
	}
}

// TestSecurityGroupMembersClearHostBits: an address pair or a member address given with
// host bits (10.0.1.5/28) counts as the range a switch matches (10.0.1.0/28), once.
func TestSecurityGroupMembersClearHostBits(t *testing.T) {
	m := &Model{
		Ports: []Port{{ID: "p1", SecurityGroups: []string{"sg"}, AllowedAddressPairs: []AddressPair{
			{Prefix: netip.MustParsePrefix("10.0.1.5/28")}, {Prefix: netip.MustParsePrefix("10.0.1.0/28")}}}},
		GroupMembers: []GroupMember{{PortID: "m1", SecurityGroups: []string{"sg"},
			Addresses: []netip.Prefix{netip.MustParsePrefix("2001:db8::5/64")}}},
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.1.0/28"), netip.MustParsePrefix("2001:db8::/64")}
	if got := m.SecurityGroupMembers("sg"); !reflect.DeepEqual(got, want) {
		t.Errorf("members %v, want %v", got, want)
	}
}
