package northbound

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Security groups as Neutron's API defines them (neutron/extensions/securitygroup.py), with
// the checks its server applies when a rule is created (neutron/db/securitygroups_db.py);
// address groups as its address-group extension defines them.

// SecurityGroup is a Neutron security group: the union of its rules says what may enter
// (ingress) and leave (egress) each port that names it.
//
// A group is all or nothing. When one of its rules, or the group itself, is invalid,
// [Validate] reports a Problem naming the group and the rule and withholds the group: it is
// left out of [Model.SecurityGroups] and its id is listed in
// [Model.WithheldSecurityGroups]. It is never kept with the bad rule left out, which would
// make it allow less than its author meant (rules only allow), nor with the rule read some
// other way, which could make it allow more. A withheld group still exists:
// ports may name it and other groups' rules may use it as their remote group (membership
// does not depend on rules). Every port that names it has [Port.FirewallWithheld] set, and
// the agent keeps, for such a port, the firewall it has installed (the rules of the last
// valid version of its groups); a port it has not filtered yet passes no traffic until its
// groups are valid. Nothing opens up because of a bad rule.
type SecurityGroup struct {
	ID   string
	Name string
	// Stateful is true (Neutron's default) for a group whose rules allow connections
	// (conntrack: replies pass); false for a stateless group, whose rules match packets.
	Stateful bool
	Rules    []SecurityGroupRule
}

// SecurityGroupRule is one rule of a security group, in Neutron's attributes. In a
// validated model at most one of RemoteIPPrefix, RemoteGroupID and RemoteAddressGroupID is
// set (none: any address), the ethertype agrees with the protocol and the prefix, and the
// port range is consistent with the protocol: read it through [SecurityGroupRule.Ports] or
// [SecurityGroupRule.ICMP].
type SecurityGroupRule struct {
	// ID is the rule's id; empty when the source gives none (Neutron's
	// security_group_info_for_devices does not).
	ID        string
	Direction Direction
	EtherType EtherType
	Protocol  Protocol
	// PortRangeMin and PortRangeMax are Neutron's port_range_min and port_range_max as
	// given; nil when absent. For a protocol with ports (tcp, udp, sctp, dccp, udplite)
	// they are the destination port range, both set or both nil (every port; Validate
	// turns 1–65535 into nil as Neutron does); for icmp and ipv6-icmp they are the ICMP
	// type and code, a code only with a type; for other protocols, and for any protocol,
	// both are nil.
	PortRangeMin, PortRangeMax *int
	// RemoteIPPrefix is the remote address range, host bits cleared; invalid when unset.
	RemoteIPPrefix netip.Prefix
	// RemoteGroupID names a security group (valid or withheld) whose members' addresses
	// are the remote addresses.
	RemoteGroupID string
	// RemoteAddressGroupID names an address group of the model.
	RemoteAddressGroupID string
}

// PortRange is an inclusive range of transport ports.
type PortRange struct {
	Min, Max uint16
}

// ICMPMatch is the ICMP type and, when HasCode, code a rule matches.
type ICMPMatch struct {
	Type    uint8
	Code    uint8
	HasCode bool
}

// Ports returns the destination port range of a validated rule whose protocol has ports;
// ok is false when the rule matches every port or its protocol has none.
func (r *SecurityGroupRule) Ports() (PortRange, bool) {
	if !r.Protocol.HasPorts() || r.PortRangeMin == nil || r.PortRangeMax == nil {
		return PortRange{}, false
	}
	return PortRange{Min: uint16(*r.PortRangeMin), Max: uint16(*r.PortRangeMax)}, true
}

// ICMP returns the ICMP type (and code) of a validated icmp or ipv6-icmp rule; ok is false
// when the rule matches every type or is not an ICMP rule.
func (r *SecurityGroupRule) ICMP() (ICMPMatch, bool) {
	if !r.Protocol.IsICMP() || r.PortRangeMin == nil {
		return ICMPMatch{}, false
	}
	m := ICMPMatch{Type: uint8(*r.PortRangeMin)}
	if r.PortRangeMax != nil {
		m.Code, m.HasCode = uint8(*r.PortRangeMax), true
	}
	return m, true
}

// AddressGroup is a Neutron address group: a named set of prefixes that rules use as their
// remote side (remote_address_group_id).
type AddressGroup struct {
	ID   string
	Name string
	// Addresses have their host bits cleared; Validate sorts them and drops duplicates.
	Addresses []netip.Prefix
}

// GroupMember is a port that is in neither Ports nor RemotePorts and counts only as a
// member of security groups: its addresses are remote addresses of the rules whose remote
// group it is in. Neutron's source gives the ports of any host and network it pulls for
// remote-group rules, as Neutron's agent does; they are no RemotePorts (no FDB entry, no
// neighbour entry, no network of the model needed).
type GroupMember struct {
	PortID string
	// SecurityGroups are the ids of the port's security groups, sorted, without
	// duplicates.
	SecurityGroups []string
	// Addresses are the port's fixed IPs as host prefixes and its allowed address pairs,
	// sorted, without duplicates.
	Addresses []netip.Prefix
}

// Direction is a rule's direction, seen from the port.
type Direction string

// Directions.
const (
	Ingress Direction = "ingress"
	Egress  Direction = "egress"
)

// ParseDirection returns the direction named s (exactly, as Neutron's API takes it).
func ParseDirection(s string) (Direction, error) {
	switch d := Direction(s); d {
	case Ingress, Egress:
		return d, nil
	}
	return "", errors.New("is not ingress or egress")
}

// EtherType is a rule's ethertype.
type EtherType string

// Ethertypes.
const (
	IPv4 EtherType = "IPv4"
	IPv6 EtherType = "IPv6"
)

// ParseEtherType returns the ethertype named s, in any case ("ipv6" is IPv6), as Neutron's
// API converts it.
func ParseEtherType(s string) (EtherType, error) {
	for _, e := range []EtherType{IPv4, IPv6} {
		if strings.EqualFold(strings.TrimSpace(s), string(e)) {
			return e, nil
		}
	}
	return "", errors.New("is not IPv4 or IPv6")
}

// EtherTypeOf returns the ethertype of an address.
func EtherTypeOf(a netip.Addr) EtherType {
	if a.Is4() {
		return IPv4
	}
	return IPv6
}

// IP protocol numbers the firewall treats specially.
const (
	ProtoICMP     uint8 = 1
	ProtoTCP      uint8 = 6
	ProtoUDP      uint8 = 17
	ProtoDCCP     uint8 = 33
	ProtoIPv6ICMP uint8 = 58
	ProtoSCTP     uint8 = 132
	ProtoUDPLite  uint8 = 136
)

// protocolNames are the protocol names Neutron's API accepts (neutron-lib's
// IP_PROTOCOL_MAP, aliases included), with their numbers.
var protocolNames = map[string]uint8{
	"ah": 51, "dccp": 33, "egp": 8, "esp": 50, "gre": 47, "hopopt": 0, "icmp": 1, "igmp": 2,
	"ip": 0, "ipip": 4, "ipv6-encap": 41, "ipv6-frag": 44, "ipv6-icmp": 58, "icmpv6": 58,
	"ipv6-nonxt": 59, "ipv6-opts": 60, "ipv6-route": 43, "ospf": 89, "pgm": 113, "rsvp": 46,
	"sctp": 132, "tcp": 6, "udp": 17, "udplite": 136, "vrrp": 112,
}

// canonicalNames name each number of protocolNames once, as Neutron reports it
// (IP_PROTOCOL_NUM_TO_NAME_MAP: 58 is ipv6-icmp, not the legacy icmpv6; 0 is ip).
var canonicalNames = func() map[uint8]string {
	m := map[uint8]string{}
	for name, n := range protocolNames {
		if name != "icmpv6" && name != "hopopt" {
			m[n] = name
		}
	}
	return m
}()

// ipv6OnlyProtocols are the protocols Neutron refuses in an IPv4 rule.
var ipv6OnlyProtocols = map[uint8]bool{41: true, 43: true, 44: true, 58: true, 59: true, 60: true}

// Protocol is a rule's IP protocol: any protocol (the zero value: Neutron's null or "any"),
// or one protocol number 0–255 (0 is the protocol numbered 0, not "any"). It marshals as
// its canonical name.
type Protocol struct {
	number uint8
	set    bool
}

// ProtocolNumber returns the protocol numbered n.
func ProtocolNumber(n uint8) Protocol { return Protocol{number: n, set: true} }

// ParseProtocol parses a protocol as Neutron's API takes it: empty or "any" (in any case)
// for any protocol; a name of neutron-lib's IP_PROTOCOL_MAP in any case (tcp, udp, icmp,
// icmpv6 and ipv6-icmp, sctp, …); or a number 0–255.
func ParseProtocol(s string) (Protocol, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" || s == "any" {
		return Protocol{}, nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 255 {
			return Protocol{}, errors.New("is not a protocol number 0–255")
		}
		return ProtocolNumber(uint8(n)), nil
	}
	if n, ok := protocolNames[s]; ok {
		return ProtocolNumber(n), nil
	}
	return Protocol{}, errors.New("is not a protocol name Neutron knows (tcp, udp, icmp, ipv6-icmp, sctp, …), a number 0–255 or any")
}

// Any reports whether the rule matches every protocol.
func (p Protocol) Any() bool { return !p.set }

// Number returns the protocol number; ok is false for any protocol.
func (p Protocol) Number() (n uint8, ok bool) { return p.number, p.set }

// Name returns the canonical name ("tcp", "ipv6-icmp"), the number for a protocol without a
// name ("253"), or "any".
func (p Protocol) Name() string {
	if !p.set {
		return "any"
	}
	if name, ok := canonicalNames[p.number]; ok {
		return name
	}
	return strconv.Itoa(int(p.number))
}

func (p Protocol) String() string { return p.Name() }

// HasPorts reports whether the protocol has transport ports (tcp, udp, sctp, dccp,
// udplite: Neutron's SG_PORT_PROTO_NUMS).
func (p Protocol) HasPorts() bool {
	switch {
	case !p.set:
		return false
	case p.number == ProtoTCP, p.number == ProtoUDP, p.number == ProtoSCTP, p.number == ProtoDCCP, p.number == ProtoUDPLite:
		return true
	}
	return false
}

// IsICMP reports whether the protocol is icmp or ipv6-icmp.
func (p Protocol) IsICMP() bool { return p.set && (p.number == ProtoICMP || p.number == ProtoIPv6ICMP) }

// MarshalText renders the canonical name.
func (p Protocol) MarshalText() ([]byte, error) { return []byte(p.Name()), nil }

// UnmarshalText parses as [ParseProtocol].
func (p *Protocol) UnmarshalText(b []byte) error {
	q, err := ParseProtocol(string(b))
	if err != nil {
		return fmt.Errorf("protocol %q %v", b, err)
	}
	*p = q
	return nil
}

// ParseRemoteIPPrefix parses a rule's remote_ip_prefix as Neutron stores it: an address is
// a host prefix, and a prefix's host bits are cleared ("10.0.0.5/24" is 10.0.0.0/24).
func ParseRemoteIPPrefix(s string) (netip.Prefix, error) {
	p, err := ParseIPOrCIDR(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return p.Masked(), nil
}

// ParseAddressGroupAddress parses one of an address group's addresses as Neutron takes
// them: a CIDR (an address alone is refused), host bits cleared.
func ParseAddressGroupAddress(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, errors.New("is not a CIDR (address/length)")
	}
	return p.Masked(), nil
}

// SecurityGroup returns the valid security group with the given id.
func (m *Model) SecurityGroup(id string) (*SecurityGroup, bool) {
	for i := range m.SecurityGroups {
		if m.SecurityGroups[i].ID == id {
			return &m.SecurityGroups[i], true
		}
	}
	return nil, false
}

// AddressGroup returns the address group with the given id.
func (m *Model) AddressGroup(id string) (*AddressGroup, bool) {
	for i := range m.AddressGroups {
		if m.AddressGroups[i].ID == id {
			return &m.AddressGroups[i], true
		}
	}
	return nil, false
}

// SecurityGroupMembers returns the addresses of the members of security group id (valid or
// withheld) as Neutron's sg_member_ips has them: the fixed IPs of every port (this host's
// and other hosts') that names the group, as host prefixes, and the allowed address pairs
// of this host's such ports (other hosts' address pairs are not in the model), with the
// addresses of the group's GroupMembers; host bits cleared (an address pair's 10.0.1.5/28
// is 10.0.1.0/28, as a switch matches it), sorted, IPv4 first, without duplicates.
func (m *Model) SecurityGroupMembers(id string) []netip.Prefix {
	set := map[netip.Prefix]bool{}
	host := func(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }
	for _, p := range m.Ports {
		if slices.Contains(p.SecurityGroups, id) {
			for _, f := range p.FixedIPs {
				set[host(f.IP)] = true
			}
			for _, pair := range p.AllowedAddressPairs {
				set[pair.Prefix.Masked()] = true
			}
		}
	}
	for _, p := range m.RemotePorts {
		if slices.Contains(p.SecurityGroups, id) {
			for _, f := range p.FixedIPs {
				set[host(f.IP)] = true
			}
		}
	}
	for _, g := range m.GroupMembers {
		if slices.Contains(g.SecurityGroups, id) {
			for _, a := range g.Addresses {
				set[a.Masked()] = true
			}
		}
	}
	return sortedPrefixes(set)
}
