package explain

import (
	"slices"
	"strings"
)

// rule is one flow rule of the pipeline: where it lives (bridge role, tables, priority),
// which fields it matches (the set of names, as ovs-ofctl prints them), what else tells it
// apart from a rule of the same shape, and how to find its owner.
type rule struct {
	id string
	// concerns is the kind of object the rule exists for ("" for a bridge's own flows,
	// whose owner is the bridge).
	concerns string
	role     Role
	tables   []uint8
	priority int // -1: any
	fields   string
	check    func(x *index, c *flowCtx) bool
	owner    func(x *index, c *flowCtx) *Owner
}

// fieldSet is the canonical form of a set of match field names: sorted, comma-separated.
func fieldSet(names ...string) string {
	s := slices.Clone(names)
	slices.Sort(s)
	return strings.Join(s, ",")
}

func t(n ...uint8) []uint8 { return n }

// f builds a rule's field set from "a,b,c".
func f(names string) string {
	if names == "" {
		return ""
	}
	return fieldSet(strings.Split(names, ",")...)
}

// anyFields marks a rule that matches whatever the fields (firewall tables).
const anyFields = "*"

// rules is the catalogue: Neutron's pipeline reference (§2), in its ids, then the OVS
// firewall's tables with ids of our own (docs/cli.md). Several rules may share a shape; the
// first whose check passes wins, so the more specific come first.
var rules = []rule{
	// br-int baseline (§2.1).
	{id: "I1", role: RoleIntegration, tables: t(23), priority: 0, owner: bridgeOwner},
	{id: "I2", role: RoleIntegration, tables: t(0), priority: 0, owner: bridgeOwner},
	{id: "I3", role: RoleIntegration, tables: t(59), priority: 0, owner: bridgeOwner},
	{id: "I4", role: RoleIntegration, tables: t(60), priority: 3, owner: bridgeOwner},
	{id: "I5", role: RoleIntegration, tables: t(24), priority: 0, owner: bridgeOwner},
	{id: "I6", role: RoleIntegration, tables: t(0), priority: 65535, fields: f("dl_vlan"), owner: bridgeOwner},
	{id: "I7", role: RoleIntegration, tables: t(62), priority: 3, owner: bridgeOwner},
	{id: "I8", role: RoleIntegration, tables: t(30), priority: 0, owner: bridgeOwner},
	{id: "I9", role: RoleIntegration, tables: t(31), priority: 0, owner: bridgeOwner},
	{id: "I10", role: RoleIntegration, tables: t(60), priority: 101, fields: f("udp,nw_dst,tp_src,tp_dst"), owner: bridgeOwner},
	{id: "I11", role: RoleIntegration, tables: t(77), priority: 0, owner: bridgeOwner},
	{id: "I12", role: RoleIntegration, tables: t(60), priority: 101, fields: f("udp6,ipv6_dst,tp_src,tp_dst"), owner: bridgeOwner},
	{id: "I13", role: RoleIntegration, tables: t(78), priority: 0, owner: bridgeOwner},
	{id: "DHCP", concerns: KindPort, role: RoleIntegration, tables: t(77, 78), priority: 100, fields: anyFields, owner: portOwnerByInPort},
	// Physical bridges and patch ports (§2.2), DVR baselines (§2.9.1).
	{id: "P1", role: RolePhysical, tables: t(0), priority: 0, check: actionsAre("NORMAL"), owner: physicalBridgeOwner},
	{id: "I14", role: RoleIntegration, tables: t(0), priority: 2, fields: f("in_port"), check: inPortPeerRole(RolePhysical), owner: peerBridgeOwner},
	{id: "P2", role: RolePhysical, tables: t(0), priority: 2, fields: f("in_port"), check: actionsAre("drop"), owner: physicalBridgeOwner},
	{id: "P4", role: RolePhysical, tables: t(0), priority: 2, fields: f("in_port"), check: gotoTable("1"), owner: physicalBridgeOwner},
	{id: "P5", role: RolePhysical, tables: t(0), priority: 1, owner: physicalBridgeOwner},
	{id: "P6", role: RolePhysical, tables: t(1), priority: 0, owner: physicalBridgeOwner},
	{id: "P7", role: RolePhysical, tables: t(2), priority: 2, fields: f("in_port"), owner: physicalBridgeOwner},
	{id: "P8", role: RolePhysical, tables: t(3), priority: 1, owner: physicalBridgeOwner},
	{id: "I24", role: RoleIntegration, tables: t(1), priority: 1, owner: bridgeOwner},
	{id: "I25", role: RoleIntegration, tables: t(2), priority: 1, owner: bridgeOwner},
	// br-tun baseline (§2.3, §2.9.1).
	{id: "T1", role: RoleTunnel, tables: t(0), priority: 1, fields: f("in_port"), check: both(inPortPeerRole(RoleIntegration), gotoTable("2")), owner: bridgeOwner},
	{id: "T17", role: RoleTunnel, tables: t(0), priority: 1, fields: f("in_port"), check: both(inPortPeerRole(RoleIntegration), gotoTable("1")), owner: bridgeOwner},
	{id: "T11", concerns: KindTunnel, role: RoleTunnel, tables: t(0), priority: 1, fields: f("in_port"), owner: tunnelOwnerByInPort},
	{id: "T2", role: RoleTunnel, tables: t(0), priority: 0, owner: bridgeOwner},
	{id: "T3", role: RoleTunnel, tables: t(2), priority: 1, fields: f("arp,dl_dst"), owner: bridgeOwner},
	{id: "T4", role: RoleTunnel, tables: t(2), priority: 0, fields: f("dl_dst"), check: fieldIs("dl_dst", "00:00:00:00:00:00/01:00:00:00:00:00"), owner: bridgeOwner},
	{id: "T5", role: RoleTunnel, tables: t(2), priority: 0, fields: f("dl_dst"), owner: bridgeOwner},
	{id: "T6", role: RoleTunnel, tables: t(3, 4, 6), priority: 0, owner: bridgeOwner},
	{id: "T7", role: RoleTunnel, tables: t(10), priority: 1, owner: bridgeOwner},
	{id: "T8", role: RoleTunnel, tables: t(20), priority: 0, owner: bridgeOwner},
	{id: "T9", role: RoleTunnel, tables: t(21), priority: 0, owner: bridgeOwner},
	{id: "T10", role: RoleTunnel, tables: t(22), priority: 0, owner: bridgeOwner},
	{id: "T18", role: RoleTunnel, tables: t(9), priority: 0, owner: bridgeOwner},
	{id: "T19", role: RoleTunnel, tables: t(1), priority: 0, owner: bridgeOwner},
	// Local VLANs (§2.4).
	{id: "I15", concerns: KindNetwork, role: RoleIntegration, tables: t(0), priority: 3, fields: f("in_port,dl_vlan"), owner: networkByProviderVLAN},
	{id: "I16", concerns: KindNetwork, role: RoleIntegration, tables: t(0), priority: 3, fields: f("in_port,vlan_tci"), owner: networkByProviderVLAN},
	{id: "P3-flat", concerns: KindNetwork, role: RolePhysical, tables: t(0, 2), priority: 4, fields: f("in_port,dl_vlan"), check: actionsHave("strip_vlan", "pop_vlan"), owner: networkByLVID("dl_vlan")},
	{id: "P3-vlan", concerns: KindNetwork, role: RolePhysical, tables: t(0, 2), priority: 4, fields: f("in_port,dl_vlan"), owner: networkByLVID("dl_vlan")},
	{id: "T12", concerns: KindNetwork, role: RoleTunnel, tables: t(3, 4, 6), priority: 1, fields: f("tun_id"), owner: networkBySegment},
	{id: "T13", concerns: KindNetwork, role: RoleTunnel, tables: t(22), priority: 1, fields: f("dl_vlan"), owner: networkByLVID("dl_vlan")},
	// Ports (§2.5, §2.6).
	{id: "I17", concerns: KindPort, role: RoleIntegration, tables: t(0), priority: 2, fields: f("in_port"), owner: portOwnerByInPort},
	{id: "I18", concerns: KindPort, role: RoleIntegration, tables: t(25), priority: 2, fields: f("in_port,dl_src"), owner: portOwnerByInPort},
	{id: "I19", concerns: KindPort, role: RoleIntegration, tables: t(0), priority: 9, fields: f("in_port"), owner: portOwnerByInPort},
	{id: "I20", concerns: KindPort, role: RoleIntegration, tables: t(24), priority: 2, fields: f("icmp6,icmp_type,in_port,nd_target"), owner: portOwnerByInPort},
	{id: "I21", concerns: KindPort, role: RoleIntegration, tables: t(0), priority: 10, fields: f("icmp6,in_port,icmp_type"), owner: portOwnerByInPort},
	{id: "I22", concerns: KindPort, role: RoleIntegration, tables: t(24), priority: 2, fields: f("arp,in_port,arp_spa"), owner: portOwnerByInPort},
	{id: "I23", concerns: KindPort, role: RoleIntegration, tables: t(0), priority: 10, fields: f("arp,in_port"), owner: portOwnerByInPort},
	// l2population (§2.8).
	{id: "T14", concerns: KindPort, role: RoleTunnel, tables: t(20), priority: 2, fields: f("dl_vlan,dl_dst"), owner: portByMACOrNetwork("dl_dst", "dl_vlan")},
	{id: "T15", concerns: KindPort, role: RoleTunnel, tables: t(20), priority: 1, fields: anyFields, owner: portByMACOrNetwork("dl_dst", "vlan_tci")},
	{id: "T16", concerns: KindPort, role: RoleTunnel, tables: t(21), priority: 1, fields: f("arp,dl_vlan,arp_tpa"), owner: portByIPOrNetwork},
	// DVR MACs (§2.9.2).
	{id: "I26", concerns: KindHost, role: RoleIntegration, tables: t(0), priority: 4, fields: f("in_port,dl_src"), owner: hostByMAC("dl_src")},
	{id: "P9", concerns: KindHost, role: RolePhysical, tables: t(3), priority: 2, fields: f("dl_src"), owner: hostByMAC("dl_src")},
	{id: "I27", concerns: KindHost, role: RoleIntegration, tables: t(0), priority: 2, fields: f("in_port,dl_src"), owner: hostByMAC("dl_src")},
	{id: "T20", concerns: KindHost, role: RoleTunnel, tables: t(9), priority: 1, fields: f("dl_src"), owner: hostByMAC("dl_src")},
	{id: "I29", concerns: KindHost, role: RoleIntegration, tables: t(0), priority: 5, fields: f("in_port,dl_dst"), check: inPortPeerRole(RoleTunnel), owner: hostByMAC("dl_dst")},
	{id: "I28", concerns: KindHost, role: RoleIntegration, tables: t(0), priority: 5, fields: f("in_port,dl_dst"), owner: hostByMAC("dl_dst")},
	// DVR per port (§2.9.3). On physical bridges dvrflow puts P12 in table 1, where it
	// works (docs/neutron-differences.md); both placements are P12.
	{id: "I30", concerns: KindPort, role: RoleIntegration, tables: t(1, 2), priority: 20, fields: anyFields, owner: portByMACOrNetwork("dl_dst", "")},
	{id: "I31", concerns: KindPort, role: RoleIntegration, tables: t(60), priority: 20, fields: anyFields, owner: portByMACOrNetwork("dl_dst", "")},
	{id: "I32", concerns: KindRouter, role: RoleIntegration, tables: t(3, 4), priority: 5, fields: f("dl_vlan,dl_dst"), owner: routerBySetEthDst},
	{id: "I33", concerns: KindRouter, role: RoleIntegration, tables: t(0), priority: 99, fields: f("arp,dl_dst,arp_op,arp_tha"), owner: routerByMAC("arp_tha")},
	{id: "T21", concerns: KindRouter, role: RoleTunnel, tables: t(1), priority: 2, fields: f("dl_vlan,dl_dst"), owner: routerByMAC("dl_dst")},
	{id: "P10", concerns: KindRouter, role: RolePhysical, tables: t(1), priority: 2, fields: f("dl_vlan,dl_dst"), owner: routerByMAC("dl_dst")},
	{id: "T22", concerns: KindRouter, role: RoleTunnel, tables: t(1), priority: 1, fields: f("dl_vlan,dl_src"), owner: routerByMAC("dl_src")},
	{id: "P11", concerns: KindRouter, role: RolePhysical, tables: t(1), priority: 1, fields: f("dl_vlan,dl_src"), owner: routerByMAC("dl_src")},
	{id: "T23", concerns: KindRouter, role: RoleTunnel, tables: t(22), priority: 3, fields: f("arp,dl_vlan,arp_tpa"), owner: routerByIP},
	{id: "P12-v4", concerns: KindRouter, role: RolePhysical, tables: t(1, 22), priority: 3, fields: f("arp,dl_vlan,arp_tpa"), owner: routerByIP},
	{id: "T24", concerns: KindRouter, role: RoleTunnel, tables: t(22), priority: 3, fields: f("icmp6,dl_vlan,dl_src,icmp_type"), owner: routerByMAC("dl_src")},
	{id: "P12-v6", concerns: KindRouter, role: RolePhysical, tables: t(1, 22), priority: 3, fields: f("icmp6,dl_vlan,dl_src,icmp_type"), owner: routerByMAC("dl_src")},
	// Explicit egress direct output (§2.10).
	{id: "I34", role: RoleIntegration, tables: t(60), priority: 4, fields: f("in_port"), check: inPortPeerRole(RolePhysical), owner: peerBridgeOwner},
	{id: "I35", role: RoleIntegration, tables: t(60), priority: 4, fields: f("in_port"), owner: peerBridgeOwner},
	{id: "I36", role: RoleIntegration, tables: t(61), priority: 0, owner: bridgeOwner},
	{id: "I37", concerns: KindPort, role: RoleIntegration, tables: t(60), priority: 9, fields: f("in_port,dl_src"), owner: portOwnerByInPort},
	{id: "I38", concerns: KindPort, role: RoleIntegration, tables: t(61), priority: 12, fields: f("dl_vlan,dl_dst"), owner: portByMACOrNetwork("dl_dst", "dl_vlan")},
	{id: "I39", concerns: KindPort, role: RoleIntegration, tables: t(61), priority: 12, fields: f("reg6,dl_dst"), owner: portByMACOrNetwork("dl_dst", "")},
	{id: "I40", concerns: KindPort, role: RoleIntegration, tables: t(62), priority: 10, fields: f("in_port,dl_src,dl_dst"), owner: portOwnerByInPort},
	// The OVS firewall (§2.11), table by table; ids of our own (docs/cli.md).
	{id: "F60-egress", role: RoleIntegration, tables: t(60), priority: 100, fields: anyFields, owner: firewallPortOwner},
	{id: "F60-ingress", role: RoleIntegration, tables: t(60), priority: 90, fields: anyFields, owner: firewallPortOwner},
	{id: "F60", role: RoleIntegration, tables: t(60), priority: -1, fields: anyFields, check: firewallHook, owner: firewallPortOwner},
	{id: "F71", role: RoleIntegration, tables: t(71), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F72", role: RoleIntegration, tables: t(72), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F73", role: RoleIntegration, tables: t(73), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F81", role: RoleIntegration, tables: t(81), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F82", role: RoleIntegration, tables: t(82), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F91", role: RoleIntegration, tables: t(91), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F92", role: RoleIntegration, tables: t(92), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F93", role: RoleIntegration, tables: t(93), priority: -1, fields: anyFields, owner: firewallPortOwner},
	{id: "F94", role: RoleIntegration, tables: t(94), priority: -1, fields: anyFields, owner: firewallPortOwner},
}

// Concerns returns the kind of object a rule exists for (KindPort, KindNetwork, ...), ""
// for a bridge's own flows and for an unknown rule id. An owner of that kind with an id is
// what Explain names for such a flow when the node knows the object.
func Concerns(ruleID string) string {
	for _, r := range rules {
		if r.id == ruleID {
			return r.concerns
		}
	}
	return ""
}

// RuleIDs lists every rule id the explainer knows, in catalogue order.
func RuleIDs() []string {
	ids := make([]string, len(rules))
	for i, r := range rules {
		ids[i] = r.id
	}
	return ids
}

func both(a, b func(*index, *flowCtx) bool) func(*index, *flowCtx) bool {
	return func(x *index, c *flowCtx) bool { return a(x, c) && b(x, c) }
}

func actionsAre(actions ...string) func(*index, *flowCtx) bool {
	return func(_ *index, c *flowCtx) bool { return slices.Equal(c.flow.Actions, actions) }
}

// actionsHave reports whether any of the actions is one of those named.
func actionsHave(names ...string) func(*index, *flowCtx) bool {
	return func(_ *index, c *flowCtx) bool {
		for _, a := range c.flow.Actions {
			if slices.Contains(names, a) {
				return true
			}
		}
		return false
	}
}

// gotoTable reports whether the flow's last action goes to table n (by number or name).
func gotoTable(n string) func(*index, *flowCtx) bool {
	return func(x *index, c *flowCtx) bool {
		if len(c.flow.Actions) == 0 {
			return false
		}
		target, ok := strings.CutPrefix(c.flow.Actions[len(c.flow.Actions)-1], "goto_table:")
		return ok && c.tableNumber(target) == n
	}
}

func fieldIs(name, value string) func(*index, *flowCtx) bool {
	return func(_ *index, c *flowCtx) bool {
		v, ok := c.flow.Get(name)
		return ok && v == value
	}
}

// inPortPeerRole reports whether the flow's in_port is a patch port to a bridge of role r.
func inPortPeerRole(r Role) func(*index, *flowCtx) bool {
	return func(x *index, c *flowCtx) bool {
		p := c.inPort(x)
		if p == nil || p.Type != "patch" {
			return false
		}
		return x.roles[x.peerBridge[c.bridge+"/"+p.Name]] == r
	}
}

// firewallHook recognises the firewall's other table-60 flows: those that resubmit to its
// tables or work on its registers.
func firewallHook(_ *index, c *flowCtx) bool {
	if c.flow.Has("reg5") || c.flow.Has("reg6") {
		return true
	}
	for _, a := range c.flow.Actions {
		for _, t := range []string{"(,71)", "(,72)", "(,73)", "(,81)", "(,82)", "(,91)", "(,92)", "(,93)", "(,94)", "goto_table:71", "goto_table:81", "goto_table:94"} {
			if strings.Contains(a, t) {
				return true
			}
		}
	}
	return false
}
