package topology

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
)

func intp(n int) *int { return &n }

// TestDecodeSecurityGroups checks the security group keys: Neutron's names, the documented
// defaults (stateful, ethertype), unknown keys ignored, objects of the wrong shape reported.
func TestDecodeSecurityGroups(t *testing.T) {
	tests := []struct {
		name          string
		text          string
		groups        []SecurityGroup
		addressGroups []AddressGroup
		undecodable   []northbound.Problem
	}{
		{name: "defaults", text: `security_groups: [{id: g1, security_group_rules: [{direction: ingress}, {direction: egress, ethertype: null}]}, {id: g2}]`,
			groups: []SecurityGroup{{ID: "g1", Stateful: true, Rules: []SecurityGroupRule{
				{Direction: "ingress", EtherType: "IPv4"}, {Direction: "egress", EtherType: "IPv4"}}},
				{ID: "g2", Stateful: true}}},
		{name: "every key", text: `security_groups:
  - id: g1
    name: web
    stateful: false
    description: ignored
    project_id: demo
    security_group_rules:
      - {id: r1, direction: ingress, ethertype: ipv6, protocol: 6, port_range_min: 22, port_range_max: 23,
         remote_ip_prefix: "2001:db8::/32", remote_group_id: g2, remote_address_group_id: ag1, security_group_id: g1, normalized_cidr: x}
      - {id: r2, direction: egress, protocol: null, port_range_min: null, remote_ip_prefix: null}
address_groups: [{id: ag1, name: office, description: ignored, addresses: [10.0.0.0/8, "2001:db8::/32"]}, {id: ag2}]`,
			groups: []SecurityGroup{{ID: "g1", Name: "web", Rules: []SecurityGroupRule{
				{ID: "r1", Direction: "ingress", EtherType: "ipv6", Protocol: "6", PortRangeMin: intp(22), PortRangeMax: intp(23),
					RemoteIPPrefix: "2001:db8::/32", RemoteGroupID: "g2", RemoteAddressGroupID: "ag1"},
				{ID: "r2", Direction: "egress", EtherType: "IPv4"}}}},
			addressGroups: []AddressGroup{{ID: "ag1", Name: "office", Addresses: []string{"10.0.0.0/8", "2001:db8::/32"}}, {ID: "ag2"}}},
		{name: "wrong types", text: `security_groups:
  - {id: g1, stateful: maybe}
  - {id: g2, security_group_rules: {direction: ingress}}
  - {id: g3, security_group_rules: [{direction: ingress, protocol: tcp, port_range_min: "22"}]}
  - {id: g4, security_group_rules: [{direction: ingress, port_range_max: 1.5}]}
  - [g5]
  - {id: g6}
address_groups: [{id: ag1, addresses: 10.0.0.0/8}, {id: ag2, addresses: [[1]]}]`,
			groups:        []SecurityGroup{{ID: "g6", Stateful: true}},
			addressGroups: []AddressGroup{},
			undecodable: []northbound.Problem{
				{Kind: northbound.KindAddressGroup, ID: "ag1", Field: "addresses", Reason: "is a JSON string, want a list"},
				{Kind: northbound.KindAddressGroup, ID: "ag2", Field: "addresses", Reason: "is a JSON array, want a string"},
				{Kind: northbound.KindSecurityGroup, ID: "g1", Field: "stateful", Reason: "is a JSON string, want a boolean"},
				{Kind: northbound.KindSecurityGroup, ID: "g2", Field: "security_group_rules", Reason: "is a JSON object, want a list"},
				{Kind: northbound.KindSecurityGroup, ID: "g3", Field: "security_group_rules.port_range_min", Reason: "is a JSON string, want an integer"},
				{Kind: northbound.KindSecurityGroup, ID: "g4", Field: "security_group_rules.port_range_max", Reason: "is a JSON number 1.5, want an integer"},
				{Kind: northbound.KindSecurityGroup, ID: "security_groups[4]", Reason: "is a JSON array, want a mapping"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := Parse([]byte("networks: []\nports: []\n" + tt.text + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(topo.SecurityGroups, tt.groups) {
				t.Errorf("security_groups = %+v\nwant %+v", topo.SecurityGroups, tt.groups)
			}
			if !reflect.DeepEqual(topo.AddressGroups, tt.addressGroups) {
				t.Errorf("address_groups = %+v\nwant %+v", topo.AddressGroups, tt.addressGroups)
			}
			if got := topo.Snapshot().Problems; !reflect.DeepEqual(got, tt.undecodable) {
				t.Errorf("problems = %v\nwant %v", got, tt.undecodable)
			}
		})
	}
}

func TestDecodePortSecurityGroups(t *testing.T) {
	topo, err := Parse([]byte(`networks: []
ports: [{id: p1, network_id: n1, mac: "fa:16:3e:00:00:01", security_groups: [g1, g2]}, {id: p2, security_groups: null}]
remote_ports: [{host: h2, id: p3, network_id: n1, mac: "fa:16:3e:00:00:02", security_groups: [g1]}, {host: h2, id: p4, security_groups: g1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(topo.Ports[0].SecurityGroups, []string{"g1", "g2"}) || topo.Ports[1].SecurityGroups != nil ||
		len(topo.RemotePorts) != 1 || !slices.Equal(topo.RemotePorts[0].SecurityGroups, []string{"g1"}) {
		t.Errorf("ports = %+v\nremote ports = %+v", topo.Ports, topo.RemotePorts)
	}
	want := []northbound.Problem{{Kind: northbound.KindRemotePort, ID: "h2/p4", Field: "security_groups", Reason: "is a JSON string, want a list"}}
	if got := topo.Snapshot().Problems; !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v\nwant %v", got, want)
	}
}

// TestParseSecurityGroups checks the values the parser reads (protocol names and numbers,
// ethertype in any case, prefixes normalised) and the problems it reports: a rule that does
// not parse makes its group a problem, and Validate withholds that group.
func TestParseSecurityGroups(t *testing.T) {
	const base = `networks: [{id: n1, network_type: local}]
subnets: [{id: s1, network_id: n1, cidr: 10.0.0.0/24}]
ports:
  - {id: p1, network_id: n1, mac: "fa:16:3e:00:00:01", fixed_ips: [{ip_address: 10.0.0.11}], security_groups: [g1]}
  - {id: p2, network_id: n1, mac: "fa:16:3e:00:00:02", fixed_ips: [{ip_address: 10.0.0.12}], security_groups: [g2]}
address_groups: [{id: ag1, addresses: [10.1.2.3/16]}]
security_groups:
  - {id: g2, security_group_rules: [{direction: egress}]}
`
	tcp := northbound.ProtocolNumber(northbound.ProtoTCP)
	tests := []struct {
		name     string
		group    string // the g1 group
		rule     northbound.SecurityGroupRule
		problems []string // Problem.Error() texts
	}{
		{name: "names and numbers", group: `{id: g1, security_group_rules: [{id: r1, direction: ingress, ethertype: ipv4, protocol: TCP,
  port_range_min: 22, port_range_max: 22, remote_ip_prefix: 10.0.0.99/24}]}`,
			rule: northbound.SecurityGroupRule{ID: "r1", Direction: northbound.Ingress, EtherType: northbound.IPv4, Protocol: tcp,
				PortRangeMin: intp(22), PortRangeMax: intp(22), RemoteIPPrefix: netip.MustParsePrefix("10.0.0.0/24")}},
		{name: "icmpv6 alias, bare address", group: `{id: g1, security_group_rules: [{direction: egress, ethertype: IPv6, protocol: icmpv6, remote_ip_prefix: "2001:db8::5"}]}`,
			rule: northbound.SecurityGroupRule{Direction: northbound.Egress, EtherType: northbound.IPv6,
				Protocol: northbound.ProtocolNumber(northbound.ProtoIPv6ICMP), RemoteIPPrefix: netip.MustParsePrefix("2001:db8::5/128")}},
		{name: "bad protocol", group: `{id: g1, security_group_rules: [{id: r1, direction: ingress, protocol: tcpp}]}`,
			problems: []string{`security_group g1: field security_group_rules[r1].protocol: "tcpp" is not a protocol name`}},
		{name: "protocol number out of range", group: `{id: g1, security_group_rules: [{direction: ingress, protocol: 256}]}`,
			problems: []string{`security_group g1: field security_group_rules[0].protocol: "256" is not a protocol number 0–255`}},
		{name: "bad direction and ethertype", group: `{id: g1, security_group_rules: [{id: r1, direction: in, ethertype: IPv5}]}`,
			problems: []string{`security_group g1: field security_group_rules[r1].direction: "in" is not ingress or egress`,
				`security_group g1: field security_group_rules[r1].ethertype: "IPv5" is not IPv4 or IPv6`}},
		{name: "bad prefix", group: `{id: g1, security_group_rules: [{id: r1, direction: ingress, remote_ip_prefix: 10.0.0.0/40}]}`,
			problems: []string{`security_group g1: field security_group_rules[r1].remote_ip_prefix: "10.0.0.0/40" is not an IP address or CIDR`}},
		{name: "a validation problem", group: `{id: g1, security_group_rules: [{id: r1, direction: ingress, protocol: udp, port_range_min: 53}]}`,
			problems: []string{`security_group g1: field security_group_rules[r1].port_range_min: udp needs both port_range_min and port_range_max (or neither: every port)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := Parse([]byte(base + "  - " + tt.group + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			m, problems := topo.Validate(northbound.Env{Host: "h1"})
			var got []string
			for _, p := range problems {
				got = append(got, p.Error())
			}
			if len(got) != len(tt.problems) {
				t.Fatalf("problems = %q\nwant %q", got, tt.problems)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.problems[i]) {
					t.Errorf("problem %d = %q\nwant %q…", i, got[i], tt.problems[i])
				}
			}
			if ag, _ := m.AddressGroup("ag1"); ag == nil || ag.Addresses[0] != netip.MustParsePrefix("10.1.0.0/16") {
				t.Errorf("address group = %+v", ag)
			}
			if len(m.Ports) != 2 || m.Ports[1].FirewallWithheld {
				t.Fatalf("ports = %+v", m.Ports)
			}
			if tt.problems != nil {
				if !slices.Equal(m.WithheldSecurityGroups, []string{"g1"}) || !m.Ports[0].FirewallWithheld {
					t.Errorf("withheld = %v, p1 firewall withheld %v", m.WithheldSecurityGroups, m.Ports[0].FirewallWithheld)
				}
				return
			}
			g, ok := m.SecurityGroup("g1")
			if !ok || !g.Stateful || len(g.Rules) != 1 {
				t.Fatalf("g1 = %+v", g)
			}
			if !reflect.DeepEqual(g.Rules[0], tt.rule) {
				t.Errorf("rule = %+v\nwant %+v", g.Rules[0], tt.rule)
			}
		})
	}
}

// TestUndecodableSecurityGroupIsWithheld checks that a group the decoder could not read is
// withheld, not unknown: the ports naming it keep their firewall and report nothing more.
func TestUndecodableSecurityGroupIsWithheld(t *testing.T) {
	topo, err := Parse([]byte(`networks: [{id: n1, network_type: local}]
ports: [{id: p1, network_id: n1, mac: "fa:16:3e:00:00:01", security_groups: [g1]}]
security_groups: [{id: g1, security_group_rules: [{direction: ingress, port_range_min: x}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	m, problems := topo.Validate(northbound.Env{Host: "h1"})
	if len(problems) != 1 || problems[0].Kind != northbound.KindSecurityGroup || problems[0].ID != "g1" {
		t.Errorf("problems = %v", problems)
	}
	if !slices.Equal(m.WithheldSecurityGroups, []string{"g1"}) || len(m.Ports) != 1 || !m.Ports[0].FirewallWithheld {
		t.Errorf("withheld = %v, ports = %+v", m.WithheldSecurityGroups, m.Ports)
	}
}
