package controller

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// groupHistory remembers, across snapshots, the last valid version of every security group
// this host's ports name, and of the address groups those versions' rules name, so that a
// group the source withholds (a bad rule) or does not know yet (Neutron's source before its
// pull) keeps filtering as it did: the firewall a port has stays as it was, and nothing
// opens up because of a bad rule (see [northbound.SecurityGroup]). A group no port of this
// host names any more is forgotten. The agent owns one (no global state); not safe for
// concurrent use.
type groupHistory struct {
	groups        map[string]northbound.SecurityGroup
	addressGroups map[string]northbound.AddressGroup
	// withheld is what was last logged about each group in force only from history or
	// missing: kept (a previous version filters) or blocked (none: its ports pass nothing).
	withheld map[string]groupFate
}

type groupFate int

const (
	groupKept groupFate = iota + 1
	groupBlocked
)

func newGroupHistory() *groupHistory {
	return &groupHistory{groups: map[string]northbound.SecurityGroup{}, addressGroups: map[string]northbound.AddressGroup{},
		withheld: map[string]groupFate{}}
}

// groupsInForce are the security groups a model's local ports are filtered by: each
// group's valid version in the model, or else the last valid version the agent saw; the
// address groups their rules name (likewise); and the member addresses of the groups their
// rules name as remote groups. Made once per snapshot, never modified afterwards.
type groupsInForce struct {
	groups map[string]*northbound.SecurityGroup
	// remembered are the groups whose version in force is a previous one (the model has
	// no valid version of them).
	remembered    map[string]bool
	addressGroups map[string]*northbound.AddressGroup
	// members are, per remote group id, Neutron's sg_member_ips of the group
	// ([northbound.Model.SecurityGroupMembers]).
	members map[string][]netip.Prefix
}

// resolveGroups returns the groups in force for m. With h, m's valid groups (and address
// groups) are remembered first and h's versions stand in for the groups m lacks; without
// (nil), only m's valid groups are in force.
func resolveGroups(m *northbound.Model, h *groupHistory) *groupsInForce {
	valid := make(map[string]*northbound.SecurityGroup, len(m.SecurityGroups))
	for i := range m.SecurityGroups {
		valid[m.SecurityGroups[i].ID] = &m.SecurityGroups[i]
	}
	validAG := make(map[string]*northbound.AddressGroup, len(m.AddressGroups))
	for i := range m.AddressGroups {
		validAG[m.AddressGroups[i].ID] = &m.AddressGroups[i]
	}
	g := &groupsInForce{groups: map[string]*northbound.SecurityGroup{}, remembered: map[string]bool{},
		addressGroups: map[string]*northbound.AddressGroup{}, members: map[string][]netip.Prefix{}}
	named := map[string]bool{}
	for i := range m.Ports {
		for _, id := range m.Ports[i].SecurityGroups {
			named[id] = true
		}
	}
	for id := range named {
		if sg, ok := valid[id]; ok {
			g.groups[id] = sg
			if h != nil {
				h.groups[id] = *sg
			}
			continue
		}
		if h == nil {
			continue
		}
		if old, ok := h.groups[id]; ok {
			g.groups[id], g.remembered[id] = &old, true
		}
	}
	for _, sg := range g.groups {
		for _, r := range sg.Rules {
			if id := r.RemoteAddressGroupID; id != "" && g.addressGroups[id] == nil {
				if ag, ok := validAG[id]; ok {
					g.addressGroups[id] = ag
					if h != nil {
						h.addressGroups[id] = *ag
					}
				} else if h != nil {
					if old, ok := h.addressGroups[id]; ok {
						g.addressGroups[id] = &old
					}
				}
			}
			if id := r.RemoteGroupID; id != "" {
				if _, done := g.members[id]; !done {
					g.members[id] = m.SecurityGroupMembers(id)
				}
			}
		}
	}
	if h != nil {
		// Forget what no local port's group needs any more.
		for id := range h.groups {
			if !named[id] {
				delete(h.groups, id)
			}
		}
		for id := range h.addressGroups {
			if g.addressGroups[id] == nil {
				delete(h.addressGroups, id)
			}
		}
	}
	return g
}

// blocked reports whether a local port's filtering cannot be computed even with the
// remembered groups (state.Port.FirewallBlocked): the source withheld it and one of its
// groups has no version in force, or the reason lies in the port itself (groups on a port
// without port security, stateful and stateless groups mixed, a group id missing), which
// no previous group version can make right.
func (g *groupsInForce) blocked(p *northbound.Port) bool {
	if !p.FirewallWithheld {
		return false
	}
	if !p.PortSecurity || len(p.SecurityGroups) == 0 {
		return true
	}
	substituted, stateful, stateless := false, false, false
	for _, id := range p.SecurityGroups {
		sg, ok := g.groups[id]
		if !ok {
			return true
		}
		substituted = substituted || g.remembered[id]
		stateful, stateless = stateful || sg.Stateful, stateless || !sg.Stateful
	}
	return !substituted || (stateful && stateless)
}

// fill sets the node's security groups, address groups and remote groups' members from the
// groups of its ports with port security (Ports must be set).
func (g *groupsInForce) fill(n *state.Node) {
	ids := map[string]bool{}
	for i := range n.Ports {
		if p := &n.Ports[i]; p.PortSecurity {
			for _, id := range p.SecurityGroups {
				ids[id] = true
			}
		}
	}
	for id := range ids {
		if sg, ok := g.groups[id]; ok {
			n.SecurityGroups = append(n.SecurityGroups, *sg)
		}
	}
	slices.SortFunc(n.SecurityGroups, func(x, y state.SecurityGroup) int { return cmp.Compare(x.ID, y.ID) })
	for _, sg := range n.SecurityGroups {
		for _, r := range sg.Rules {
			if id := r.RemoteAddressGroupID; id != "" {
				if ag, ok := g.addressGroups[id]; ok && !slices.ContainsFunc(n.AddressGroups, func(a state.AddressGroup) bool { return a.ID == id }) {
					n.AddressGroups = append(n.AddressGroups, *ag)
				}
			}
			if id := r.RemoteGroupID; id != "" {
				if n.GroupMembers == nil {
					n.GroupMembers = map[string][]netip.Prefix{}
				}
				n.GroupMembers[id] = g.members[id]
			}
		}
	}
	slices.SortFunc(n.AddressGroups, func(x, y state.AddressGroup) int { return cmp.Compare(x.ID, y.ID) })
}

// logWithheld logs, once per group and whenever its fate changes, each security group a
// local port names that the model has no valid version of: withheld (a bad rule) or
// unknown. Either its last valid version stays in force, or (never seen valid) the ports
// naming it pass no traffic. A group that is valid again is logged too.
func (h *groupHistory) logWithheld(log *zap.Logger, m *northbound.Model, g *groupsInForce) {
	withheld := make(map[string]bool, len(m.WithheldSecurityGroups))
	for _, id := range m.WithheldSecurityGroups {
		withheld[id] = true
	}
	now := map[string]groupFate{}
	for i := range m.Ports {
		p := &m.Ports[i]
		if !p.FirewallWithheld {
			continue
		}
		for _, id := range p.SecurityGroups {
			switch {
			case g.remembered[id]:
				now[id] = groupKept
			case g.groups[id] == nil:
				now[id] = groupBlocked
			}
		}
	}
	for _, id := range slices.Sorted(maps.Keys(now)) {
		fate := now[id]
		if h.withheld[id] == fate {
			continue
		}
		reason := "unknown"
		if withheld[id] {
			reason = "withheld (invalid)"
		}
		if fate == groupKept {
			log.Warn("security group "+reason+": its last valid version stays in force",
				zap.String("security_group", id))
		} else {
			log.Error("security group "+reason+" and never seen valid: the ports naming it pass no traffic until it is valid",
				zap.String("security_group", id))
		}
	}
	for id := range h.withheld {
		if now[id] == 0 && g.groups[id] != nil {
			log.Info("security group valid again", zap.String("security_group", id))
		}
	}
	h.withheld = now
}
