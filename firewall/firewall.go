// Package firewall generates the br-int flows of Neutron's Open vSwitch firewall driver
// (neutron/agent/linux/openvswitch_firewall, firewall_driver = openvswitch): table 60's
// per-port hooks and tables 71, 72, 73, 81, 82, 91, 92, 93, 94, with the same registers
// (reg5 the port's ofport, reg6 its local VLAN, which is also its conntrack zone, reg7 the
// conjunction matched), conntrack states and marks, and flow shapes. Every function is pure:
// a node's state in, flows out, no I/O and no hidden state.
//
// # The pipeline, per packet
//
// A filtered port's packets enter table 60's priority-100 hook (egress) and go to 71, which
// lets ARP, neighbour discovery and DHCP of the port's own MACs and addresses pass, drops
// the rest of what it does not own (spoofing) and sends IP to conntrack and table 72. Table
// 72 holds the egress rules: an allowed new connection goes on to 73, which commits it in
// the port's zone and, when it is for another filtered port, hands it to that port's
// ingress (81); otherwise to 91/94 and NORMAL. Packets for a port (table 60's priority-90
// hooks, or 73) enter 81, which passes ARP/ND/DHCP and sends IP through conntrack to the
// ingress rules of 82. Replies and related packets of committed connections pass 72/82 at
// priority 50 unless their ct_mark says a rule change invalidated them; a connection no rule
// allows any more is marked (priority 40) and its packets are dropped from then on.
//
// # Remote groups: conjunctions
//
// A rule whose remote side is a security group or an address group becomes an OpenFlow
// conjunction with two clauses: "the source (ingress) or destination (egress) is one of the
// group's addresses on this network" (clause 1, shared by the ports of a network, cookie
// category firewall-remote) and "the rule's protocol and ports, for this port" (clause 2).
// Neutron numbers conjunctions in blocks of eight per (security group, remote group,
// direction, ethertype) in the order it meets them, so its numbers depend on history. Ours
// are a function of that key alone (see conjunctionIDs), so an agent restart with the same
// state computes the same flows and sends none, and a change elsewhere renumbers nothing.
//
// # What differs from Neutron 21 on purpose
//
// Neutron writes its per-bridge firewall defaults with ovs-ofctl, whose writes carry the
// reset_counts flag; ours do not (a flag about counters, invisible to packets).
// Stateless groups get the same conntrack flows as stateful ones, as in Neutron 21, whose
// openvswitch driver ignores the flag (docs/neutron-differences.md).
package firewall

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
