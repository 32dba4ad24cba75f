// Package firewall generates the br-int flows of Neutron's Open vSwitch firewall driver
// (neutron/agent/linux/openvswitch_firewall/firewall.py, firewall_driver = openvswitch):
// table 60's per-port hooks and tables 71, 72, 73, 81, 82, 91, 92, 93, 94. Every function is
// pure: inputs in, flows out, no I/O and no hidden state.
//
// First slice: the rule-independent flows that the flow types can already express. Not yet
// here (they need match fields and actions flows/ does not have): ct_state, ct_zone, ct_mark
// and conj_id matches, the ct(...), ct_clear and conjunction actions, and the reset_counts
// flag Neutron's ovs-ofctl writes carry; hence none of table 72/82's rule flows, nor the
// conntrack flows of 71, 73 and 81.
package firewall

import (
	"net"
	"net/netip"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// The registers the firewall uses (Neutron's agent_consts).
const (
	// RegPort (reg5) holds the ofport of the port whose firewall a packet is in.
	RegPort = 5
	// RegNet (reg6) holds the port's local VLAN, which is also its conntrack zone.
	RegNet = 6
	// RegRemoteGroup (reg7) records the conjunction a packet matched.
	RegRemoteGroup = 7
)

// ICMPv6 types (neutron_lib.constants).
const (
	icmpv6MLDQuery = 130
	icmpv6RS       = 133
	icmpv6RA       = 134
	icmpv6NS       = 135
	icmpv6NA       = 136
)

// DHCP ports.
const (
	dhcpv4Client, dhcpv4Server = 68, 67
	dhcpv6Client, dhcpv6Server = 546, 547
)

// icmpv6AllowedEgress are Neutron's ICMPV6_ALLOWED_EGRESS_TYPES (matched with the source
// MAC and address), icmpv6RestrictedEgress its ICMPV6_RESTRICTED_EGRESS_TYPES (matched with
// the ND target).
var (
	icmpv6AllowedEgress    = []uint8{icmpv6MLDQuery, icmpv6RS, icmpv6NS}
	icmpv6RestrictedEgress = []uint8{icmpv6NA}
	// icmpv6AllowedIngress is ICMPV6_ALLOWED_INGRESS_TYPES plus RA, as
	// _initialize_ingress_ipv6_icmp installs them.
	icmpv6AllowedIngress = []uint8{icmpv6MLDQuery, icmpv6NS, icmpv6NA, icmpv6RA}
)

// Bridge returns the firewall's per-bridge flows that do not depend on any port or rule
// (Neutron's _drop_all_unmatched_flows and _initialize_third_party_tables), those the flow
// types can express: the default drop of 71, 72, 73, 81, 82, 92 and 93, table 91's
// resubmit to 94 and 94's NORMAL. Neutron writes them with reset_counts, which flows.Flow
// does not carry. Table 71's priority-110 ct_clear flow (_initialize_common_flows) needs a
// ct_state match and is not here yet.
func Bridge(bridge string) []flows.IntFlow {
	c := flows.Cookie(flows.CategoryBaseline, bridge) // TODO: a firewall category in flows
	var out []flows.IntFlow
	for _, t := range []flows.IntTable{flows.IntBaseEgress, flows.IntRulesEgress, flows.IntAcceptOrIngress,
		flows.IntBaseIngress, flows.IntRulesIngress} {
		out = append(out, flows.IntFlow{Table: t, Priority: 0, Cookie: c})
	}
	out = append(out,
		flows.IntFlow{Table: flows.IntAcceptedEgressTrafficNormal, Priority: 1, Cookie: c, Actions: []flows.Action{flows.Normal()}},
		flows.IntFlow{Table: flows.IntAcceptedEgressTraffic, Priority: 1, Cookie: c,
			Actions: []flows.Action{flows.ResubmitTo(flows.IntAcceptedEgressTrafficNormal)}},
		flows.IntFlow{Table: flows.IntAcceptedIngressTraffic, Priority: 0, Cookie: c},
		flows.IntFlow{Table: flows.IntDroppedTraffic, Priority: 0, Cookie: c},
	)
	return out
}

// Port returns the rule-independent flows of one port with port security on network nw
// (Neutron's initialize_port_flows: table 60's hooks, _initialize_egress and
// _initialize_ingress), those the flow types can express. A port with ofport 0 or a
// network without a local VLAN gets none. Not yet: allowed address pairs (their MACs and
// addresses), permitted_ethertypes, the conntrack flows (71 priority 65 and 10, 73
// priority 90, 81 priority 90 and 80), install_physical_direct_flow (provider networks)
// and install_accepted_egress_direct_flow.
func Port(p *state.Port, nw *state.Network) []flows.IntFlow {
	if p.OFPort == 0 || nw == nil || nw.LocalVLAN == 0 {
		return nil
	}
	c := flows.Cookie(flows.CategoryPort, p.ID) // TODO: a firewall category in flows
	of, vlan := p.OFPort, nw.LocalVLAN
	reg := func(n int, v uint32) flows.Action { return flows.SetField{Field: flows.Reg(n), Value: be32(v)} }
	port := flows.Match{}.Reg(RegPort, of)
	fromPort := port.InPort(of)
	acts := func(a ...flows.Action) []flows.Action { return a }
	toNormal := acts(flows.ResubmitTo(flows.IntAcceptedEgressTrafficNormal))
	toDropped := acts(flows.ResubmitTo(flows.IntDroppedTraffic))
	toAccept := acts(flows.ResubmitTo(flows.IntAcceptOrIngress))
	output := acts(flows.Output{Port: of})

	out := []flows.IntFlow{
		// initialize_port_flows: identify egress and ingress.
		{Table: flows.IntTransient, Priority: 100, Cookie: c, Match: flows.Match{}.InPort(of),
			Actions: acts(reg(RegPort, of), reg(RegNet, uint32(vlan)), flows.ResubmitTo(flows.IntBaseEgress))},
		{Table: flows.IntTransient, Priority: 90, Cookie: c, Match: flows.Match{}.VLAN(vlan).EthDst(p.MAC),
			Actions: acts(reg(RegPort, of), reg(RegNet, uint32(vlan)), flows.PopVLAN{}, flows.ResubmitTo(flows.IntBaseIngress))},
	}

	// _initialize_egress: IPv4 ARP per (MAC, address).
	v4, v6 := addresses(p)
	for _, ip := range v4 {
		out = append(out, flows.IntFlow{Table: flows.IntBaseEgress, Priority: 95, Cookie: c,
			Match: fromPort.ARP().EthSrc(p.MAC).ARPSPA(host(ip)), Actions: toNormal})
	}
	// _initialize_egress_ipv6_icmp.
	for _, ip := range v6 {
		for _, t := range icmpv6AllowedEgress {
			out = append(out, flows.IntFlow{Table: flows.IntBaseEgress, Priority: 95, Cookie: c,
				Match: fromPort.ICMPv6().ICMPType(t).EthSrc(p.MAC).IPv6Src(host(ip)), Actions: toNormal})
		}
		for _, t := range icmpv6RestrictedEgress {
			out = append(out, flows.IntFlow{Table: flows.IntBaseEgress, Priority: 95, Cookie: c,
				Match: fromPort.ICMPv6().ICMPType(t).NDTarget(host(ip)), Actions: toNormal})
		}
	}
	// DHCP discovery, from each address and from 0.0.0.0.
	for _, ip := range append(v4, netip.IPv4Unspecified()) {
		out = append(out, flows.IntFlow{Table: flows.IntBaseEgress, Priority: 80, Cookie: c,
			Match: fromPort.UDPv4().EthSrc(p.MAC).IPv4Src(host(ip)).UDPSrc(dhcpv4Client).UDPDst(dhcpv4Server), Actions: toAccept})
	}
	for _, ip := range v6 {
		out = append(out, flows.IntFlow{Table: flows.IntBaseEgress, Priority: 80, Cookie: c,
			Match: fromPort.UDPv6().EthSrc(p.MAC).IPv6Src(host(ip)).UDPSrc(dhcpv6Client).UDPDst(dhcpv6Server), Actions: toAccept})
	}
	// No DHCP server nor router advertisements from the instance.
	out = append(out,
		flows.IntFlow{Table: flows.IntBaseEgress, Priority: 70, Cookie: c,
			Match: fromPort.UDPv4().UDPSrc(dhcpv4Server).UDPDst(dhcpv4Client), Actions: toDropped},
		flows.IntFlow{Table: flows.IntBaseEgress, Priority: 70, Cookie: c,
			Match: fromPort.UDPv6().UDPSrc(dhcpv6Server).UDPDst(dhcpv6Client), Actions: toDropped},
		flows.IntFlow{Table: flows.IntBaseEgress, Priority: 70, Cookie: c,
			Match: fromPort.ICMPv6().ICMPType(icmpv6RA), Actions: toDropped},
	)
	// Accept or ingress: traffic to the port's MAC on its network enters its ingress
	// firewall; the rest of its accepted egress goes to NORMAL.
	out = append(out,
		flows.IntFlow{Table: flows.IntAcceptOrIngress, Priority: 100, Cookie: c,
			Match: flows.Match{}.Reg(RegNet, uint32(vlan)).EthDst(p.MAC), Actions: acts(reg(RegPort, of), flows.ResubmitTo(flows.IntBaseIngress))},
		flows.IntFlow{Table: flows.IntAcceptOrIngress, Priority: 80, Cookie: c, Match: port, Actions: toNormal},
	)

	// _initialize_ingress: ARP, ICMPv6 and DHCP offers straight to the port.
	out = append(out, flows.IntFlow{Table: flows.IntBaseIngress, Priority: 100, Cookie: c, Match: port.ARP(), Actions: output})
	for _, t := range icmpv6AllowedIngress {
		out = append(out, flows.IntFlow{Table: flows.IntBaseIngress, Priority: 100, Cookie: c,
			Match: port.ICMPv6().ICMPType(t), Actions: output})
	}
	out = append(out,
		flows.IntFlow{Table: flows.IntBaseIngress, Priority: 95, Cookie: c,
			Match: port.UDPv4().UDPSrc(dhcpv4Server).UDPDst(dhcpv4Client), Actions: output},
		flows.IntFlow{Table: flows.IntBaseIngress, Priority: 95, Cookie: c,
			Match: port.UDPv6().UDPSrc(dhcpv6Server).UDPDst(dhcpv6Client), Actions: output},
	)
	return out
}

// addresses returns the port's IPv4 and IPv6 addresses as Neutron's OFPort sees them:
// its fixed IPs, and for IPv6 its link-local address (lla_address) first.
func addresses(p *state.Port) (v4, v6 []netip.Addr) {
	v6 = append(v6, LinkLocal(p.MAC))
	for _, f := range p.FixedIPs {
		if f.IP.Is4() {
			v4 = append(v4, f.IP)
		} else {
			v6 = append(v6, f.IP)
		}
	}
	return v4, v6
}

// LinkLocal is the EUI-64 IPv6 link-local address of mac (Neutron's
// ipv6_utils.get_ipv6_addr_by_EUI64(fe80::/64, mac)).
func LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
