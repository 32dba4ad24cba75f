package firewall

import (
	"cmp"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// conjKey is what Neutron allocates a block of eight conjunction ids for: a security
// group's rules with one remote group or address group, in one direction and ethertype.
// Within the block, id%8/2 is the rules' priority offset and id%2 the connection state
// (0: established, 1: new).
type conjKey struct {
	group, remote string
	dir           northbound.Direction
	ethertype     northbound.EtherType
}

const (
	conjBlock = 8
	// conjBlocks is how many blocks fit below Neutron's MAX_CONJ_ID (2^32 - 8); block 0
	// is not used.
	conjBlocks = 1<<29 - 2
)

// conjunctionIDs assigns each key its block: a hash of the key alone, so the number does
// not depend on which other groups exist or on the order things happened; a key whose
// block is taken by a key sorting before it takes the next free one (two keys of one node
// share a block with probability about k²/2^30).
func conjunctionIDs(keys []conjKey) map[conjKey]uint32 {
	slices.SortFunc(keys, compareConjKeys)
	keys = slices.Compact(keys)
	ids := make(map[conjKey]uint32, len(keys))
	used := make(map[uint32]bool, len(keys))
	for _, k := range keys {
		b := uint32(conjHash(k)%conjBlocks) + 1
		for used[b] {
			b = b%conjBlocks + 1
		}
		used[b] = true
		ids[k] = b * conjBlock
	}
	return ids
}

func compareConjKeys(a, b conjKey) int {
	return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.remote, b.remote),
		cmp.Compare(a.dir, b.dir), cmp.Compare(a.ethertype, b.ethertype))
}

// conjHash is FNV-1a over the key's fields.
func conjHash(k conjKey) uint64 {
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for _, s := range []string{k.group, k.remote, string(k.dir), string(k.ethertype)} {
		for i := 0; i < len(s); i++ {
			h ^= uint64(s[i])
			h *= prime64
		}
		h ^= 0xff // separator
		h *= prime64
	}
	return h
}

// remoteID is a rule's remote group or address group, and which of the two it is.
func remoteID(r *northbound.SecurityGroupRule) (id string, addressGroup bool) {
	if r.RemoteGroupID != "" {
		return r.RemoteGroupID, false
	}
	return r.RemoteAddressGroupID, true
}

// conjunctions holds the node's conjunction ids and, per network, the remote groups its
// ports' rules use, from which addressFlows makes the address clauses.
type conjunctions struct {
	ids map[conjKey]uint32
	// uses: local VLAN → (direction, ethertype) → remote id → conjunction ids (base plus
	// twice the priority offset).
	uses map[uint16]map[dirEther]map[remote][]uint32
	// networks maps local VLANs to network ids, for cookies.
	networks map[uint16]string
}

type dirEther struct {
	dir       northbound.Direction
	ethertype northbound.EtherType
}

type remote struct {
	id           string
	addressGroup bool
}

// newConjunctions allocates the conjunction ids of the remote rules of the filtered ports.
func newConjunctions(n *state.Node, filtered []portFlows) *conjunctions {
	var keys []conjKey
	for _, pf := range filtered {
		for _, gid := range pf.p.SecurityGroups {
			g, ok := n.SecurityGroup(gid)
			if !ok {
				continue
			}
			for i := range g.Rules {
				if r := &g.Rules[i]; isRemote(r) {
					id, _ := remoteID(r)
					keys = append(keys, conjKey{g.ID, id, r.Direction, r.EtherType})
				}
			}
		}
	}
	return &conjunctions{ids: conjunctionIDs(keys), uses: map[uint16]map[dirEther]map[remote][]uint32{},
		networks: map[uint16]string{}}
}

// add records that a port on the network with local VLAN vlan has remote rule r of group
// and returns the rule's conjunction id (the established-state one; +1 is the new-state one).
func (c *conjunctions) add(vlan uint16, networkID, group string, r *northbound.SecurityGroupRule) uint32 {
	id, ag := remoteID(r)
	conjID := c.ids[conjKey{group, id, r.Direction, r.EtherType}] + 2*uint32(priorityOffset(r))
	de := dirEther{r.Direction, r.EtherType}
	if c.uses[vlan] == nil {
		c.uses[vlan] = map[dirEther]map[remote][]uint32{}
	}
	if c.uses[vlan][de] == nil {
		c.uses[vlan][de] = map[remote][]uint32{}
	}
	rm := remote{id, ag}
	if !slices.Contains(c.uses[vlan][de][rm], conjID) {
		c.uses[vlan][de][rm] = append(c.uses[vlan][de][rm], conjID)
	}
	c.networks[vlan] = networkID
	return conjID
}

// remoteRuleKey groups a port's remote rules whose port clauses Neutron merges.
type remoteRuleKey struct {
	dir       northbound.Direction
	ethertype northbound.EtherType
	protocol  northbound.Protocol
}

// remoteRule is a remote rule of a port with its conjunction id.
type remoteRule struct {
	rule *northbound.SecurityGroupRule
	id   uint32
}

// portClause is one port-side clause: a rule's protocol part (and a destination port range
// when ports is set) for the conjunctions ids.
type portClause struct {
	rule  *northbound.SecurityGroupRule
	ports *northbound.PortRange
	ids   []uint32
}

// conjunctionFlows returns the port's side of its remote rules with one direction,
// ethertype and protocol (Neutron's _add_non_ip_conj_flows): the clause-2 flows, merged
// so that port ranges do not overlap, and per conjunction id the accept flows that record
// the id in reg7.
func (pf portFlows) conjunctionFlows(k remoteRuleKey, rules []remoteRule) []flows.IntFlow {
	var clauses []portClause
	proto, _ := k.protocol.Number()
	if proto == northbound.ProtoTCP || proto == northbound.ProtoUDP || proto == northbound.ProtoSCTP {
		clauses = mergePortRanges(rules)
	} else {
		clauses = mergeCommonRules(rules)
	}
	table := rulesTable(k.dir)
	var out []flows.IntFlow
	for _, cl := range clauses {
		prio := rulePriorityBase + priorityOffset(cl.rule)
		for _, m := range ruleMatches(pf.port, cl.rule, cl.ports) {
			for i, st := range [][2]flows.CTState{ctEstablishedNotReply, ctNewNotEstablished} {
				var acts []flows.Action
				for _, id := range cl.ids {
					acts = append(acts, flows.Conjunction{ID: id + uint32(i), Clause: 2, NClauses: 2})
				}
				out = append(out, pf.flow(table, prio, m.CTState(st[0], st[1]), acts...))
			}
		}
	}
	var all []uint32
	for _, r := range rules {
		all = append(all, r.id)
	}
	slices.Sort(all)
	for _, id := range slices.Compact(all) {
		prio := rulePriorityBase + uint16(id%conjBlock/2)
		m := pf.port
		if k.ethertype == northbound.IPv6 {
			m = m.IPv6()
		} else {
			m = m.IPv4()
		}
		for i, st := range [][2]flows.CTState{ctEstablishedNotReply, ctNewNotEstablished} {
			cid := id + uint32(i)
			acts := append([]flows.Action{setReg(RegRemoteGroup, cid)}, pf.accept(k.dir, i == 1)...)
			out = append(out, pf.flow(table, prio, m.ConjID(cid).CTState(st[0], st[1]), acts...))
		}
	}
	return out
}

// mergeCommonRules groups rules that differ only in their ICMP type and code (Neutron's
// merge_common_rules): one clause per distinct (type, code) with the ids of its rules.
func mergeCommonRules(rules []remoteRule) []portClause {
	var out []portClause
	for _, r := range rules {
		i := slices.IndexFunc(out, func(c portClause) bool { return sameRange(c.rule, r.rule) })
		if i < 0 {
			out = append(out, portClause{rule: r.rule})
			i = len(out) - 1
		}
		if !slices.Contains(out[i].ids, r.id) {
			out[i].ids = append(out[i].ids, r.id)
			slices.Sort(out[i].ids)
		}
	}
	return out
}

func sameRange(a, b *northbound.SecurityGroupRule) bool {
	eq := func(x, y *int) bool { return (x == nil && y == nil) || (x != nil && y != nil && *x == *y) }
	return eq(a.PortRangeMin, b.PortRangeMin) && eq(a.PortRangeMax, b.PortRangeMax)
}

// mergePortRanges splits the destination port ranges of rules of one protocol into ranges
// that do not overlap, each with the ids of the rules covering it (Neutron's
// merge_port_ranges): a packet then matches one clause flow, which names every conjunction
// its port belongs to. A rule without a range covers 1–65535; a single clause covering
// 1–65535 matches no port.
func mergePortRanges(rules []remoteRule) []portClause {
	type edge struct {
		port uint32
		max  bool
		id   uint32
	}
	var edges []edge
	for _, r := range rules {
		rng, ok := r.rule.Ports()
		if !ok {
			rng = northbound.PortRange{Min: 1, Max: 65535}
		}
		edges = append(edges, edge{uint32(rng.Min), false, r.id}, edge{uint32(rng.Max), true, r.id})
	}
	rank := func(e edge) uint32 {
		if e.max {
			return e.port*2 + 1
		}
		return e.port * 2
	}
	slices.SortStableFunc(edges, func(a, b edge) int { return cmp.Compare(rank(a), rank(b)) })

	var out []portClause
	emit := func(lo, hi uint32, active map[uint32]int) {
		ids := make([]uint32, 0, len(active))
		for id := range active {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		out = append(out, portClause{rule: rules[0].rule, ports: &northbound.PortRange{Min: uint16(lo), Max: uint16(hi)}, ids: ids})
	}
	active := map[uint32]int{}
	var lo uint32
	for _, e := range edges {
		if !e.max {
			if active[e.id] > 0 {
				active[e.id]++
				continue
			}
			if len(active) > 0 && lo != e.port {
				emit(lo, e.port-1, active)
			}
			lo = e.port
			active[e.id] = 1
			continue
		}
		if active[e.id] > 1 {
			active[e.id]--
			continue
		}
		if lo <= e.port {
			emit(lo, e.port, active)
			lo = e.port + 1
		}
		delete(active, e.id)
	}
	if len(out) == 1 && out[0].ports.Min == 1 && out[0].ports.Max == 65535 {
		out[0].ports = nil
	}
	return out
}

// addressFlows returns, per network and per (direction, ethertype), the address clauses of
// the conjunctions its ports use (Neutron's ConjIPFlowManager): for each address of a
// remote group's members or of an address group, one flow per priority and connection
// state naming every conjunction that address belongs to.
func (c *conjunctions) addressFlows(n *state.Node) []flows.IntFlow {
	var out []flows.IntFlow
	for _, vlan := range sortedKeys(c.uses) {
		byDE := c.uses[vlan]
		des := make([]dirEther, 0, len(byDE))
		for de := range byDE {
			des = append(des, de)
		}
		slices.SortFunc(des, func(a, b dirEther) int {
			return cmp.Or(cmp.Compare(a.dir, b.dir), cmp.Compare(a.ethertype, b.ethertype))
		})
		for _, de := range des {
			type addrIDs struct {
				ids    []uint32
				remote string // the first remote (sorted) that has the address, for the cookie
			}
			byAddr := map[netip.Prefix]*addrIDs{}
			remotes := make([]remote, 0, len(byDE[de]))
			for rm := range byDE[de] {
				remotes = append(remotes, rm)
			}
			slices.SortFunc(remotes, func(a, b remote) int { return cmp.Compare(a.id, b.id) })
			for _, rm := range remotes {
				for _, a := range remoteAddresses(n, rm, de.ethertype) {
					e := byAddr[a]
					if e == nil {
						e = &addrIDs{remote: rm.id}
						byAddr[a] = e
					}
					e.ids = append(e.ids, byDE[de][rm]...)
				}
			}
			addrs := make([]netip.Prefix, 0, len(byAddr))
			for a := range byAddr {
				addrs = append(addrs, a)
			}
			slices.SortFunc(addrs, func(a, b netip.Prefix) int {
				return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
			})
			table := rulesTable(de.dir)
			for _, a := range addrs {
				e := byAddr[a]
				slices.Sort(e.ids)
				ids := slices.Compact(e.ids)
				cookie := flows.Cookie(flows.CategoryFirewallRemote, c.networks[vlan]+"/"+e.remote)
				m := flows.Match{}.Reg(RegNet, uint32(vlan))
				switch {
				case de.ethertype == northbound.IPv6 && de.dir == northbound.Ingress:
					m = m.IPv6().IPv6Src(a)
				case de.ethertype == northbound.IPv6:
					m = m.IPv6().IPv6Dst(a)
				case de.dir == northbound.Ingress:
					m = m.IPv4().IPv4Src(a)
				default:
					m = m.IPv4().IPv4Dst(a)
				}
				for offset := uint32(0); offset < conjBlock/2; offset++ {
					var group []uint32
					for _, id := range ids {
						if id%conjBlock/2 == offset {
							group = append(group, id)
						}
					}
					if len(group) == 0 {
						continue
					}
					for i, st := range [][2]flows.CTState{ctEstablishedNotReply, ctNewNotEstablished} {
						acts := make([]flows.Action, 0, len(group))
						for _, id := range group {
							acts = append(acts, flows.Conjunction{ID: id + uint32(i), Clause: 1, NClauses: 2})
						}
						out = append(out, flows.IntFlow{Table: table, Priority: rulePriorityBase + uint16(offset), Cookie: cookie,
							Match: m.CTState(st[0], st[1]), Actions: acts})
					}
				}
			}
		}
	}
	return out
}

// remoteAddresses are the addresses of one family of a remote security group's members or
// of an address group (host bits cleared in both, state.Node says).
func remoteAddresses(n *state.Node, rm remote, et northbound.EtherType) []netip.Prefix {
	var all []netip.Prefix
	if rm.addressGroup {
		if ag, ok := n.AddressGroup(rm.id); ok {
			all = ag.Addresses
		}
	} else {
		all = n.GroupMembers[rm.id]
	}
	var out []netip.Prefix
	for _, a := range all {
		if (et == northbound.IPv6) == a.Addr().Is6() {
			out = append(out, a)
		}
	}
	return out
}

func sortedKeys[V any](m map[uint16]V) []uint16 {
	ks := make([]uint16, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
