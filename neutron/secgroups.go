package neutron

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
)

// Security groups come the way Zed's Open vSwitch agent gets them (its remote resource
// cache, neutron/agent/resource_cache.py, read through SecurityGroupServerAPIShim): the
// server pushes every SecurityGroup, SecurityGroupRule, AddressGroup and Port object on
// neutron-vo-<Type>-<Version>_fanout as it changes, and the agent pulls (bulk_pull) what it
// lacks: the Port objects of its ports, the groups of its ports ({"id"}) with their rules
// ({"security_group_id"}), the members of the rules' remote groups (Ports,
// {"security_group_ids"}) and the rules' address groups ({"id"}). The legacy
// security_group_info_for_devices call and the security_groups_rule_updated /
// security_groups_member_updated casts are not used: the pushes carry everything they
// would, and address groups only come as objects.

// The OVO push topics of the security group objects, in the versions
// DefaultResourceVersions reports.
const (
	topicSecurityGroupPush     = "neutron-vo-SecurityGroup-1.5"
	topicSecurityGroupRulePush = "neutron-vo-SecurityGroupRule-1.2"
	topicAddressGroupPush      = "neutron-vo-AddressGroup-1.2"
)

// Object types and the versions pulled (reference §5).
const (
	typeSecurityGroup     = "SecurityGroup"
	typeSecurityGroupRule = "SecurityGroupRule"
	typeAddressGroup      = "AddressGroup"
	typePort              = "Port"
)

// ovoSecurityGroup is the part of a SecurityGroup 1.5 primitive the agent reads. Rules is
// nil when the primitive does not carry them.
type ovoSecurityGroup struct {
	ID             string            `json:"id"`
	Name           *string           `json:"name"`
	Stateful       *bool             `json:"stateful"`
	RevisionNumber *int64            `json:"revision_number"`
	Rules          *[]ovo[ovoSGRule] `json:"rules"`
}

// ovoSGRule is the part of a SecurityGroupRule 1.2 primitive the agent reads. A deleted
// rule is pushed with its id alone.
type ovoSGRule struct {
	ID                   string    `json:"id"`
	SecurityGroupID      string    `json:"security_group_id"`
	Direction            *string   `json:"direction"`
	EtherType            *string   `json:"ethertype"`
	Protocol             *textOrNo `json:"protocol"`
	PortRangeMin         *int      `json:"port_range_min"`
	PortRangeMax         *int      `json:"port_range_max"`
	RemoteIPPrefix       *string   `json:"remote_ip_prefix"`
	RemoteGroupID        *string   `json:"remote_group_id"`
	RemoteAddressGroupID *string   `json:"remote_address_group_id"`
	RevisionNumber       *int64    `json:"revision_number"`
}

// ovoAddressGroup is the part of an AddressGroup 1.2 primitive the agent reads.
type ovoAddressGroup struct {
	ID             string `json:"id"`
	Name           *string
	RevisionNumber *int64 `json:"revision_number"`
	Addresses      []ovo[struct {
		Address string `json:"address"`
	}] `json:"addresses"`
}

// textOrNo is a value the server sends as a string (a rule's protocol: "tcp", "6"); a
// number is taken as its decimal text.
type textOrNo string

func (t *textOrNo) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		var n json.Number
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		if err := d.Decode(&n); err != nil {
			return err
		}
		*t = textOrNo(n.String())
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	*t = textOrNo(s)
	return nil
}

// sgPort is what the cache keeps of a Port object, of any host: its groups and addresses.
type sgPort struct {
	groups   []string
	fixedIPs []string
	pairs    []string
	revision *int64
	seq      uint64
}

type sgGroup struct {
	obj ovoSecurityGroup
	seq uint64
}

type sgRule struct {
	obj ovoSGRule
	seq uint64
}

type sgAddressGroup struct {
	obj ovoAddressGroup
	seq uint64
}

// secGroups is the resource cache of security groups (Neutron's resource_cache rules: an
// object older than the cached revision is ignored, a deletion is final). It keeps every
// object pushed or pulled; the snapshot takes the groups of this host's ports, their rules'
// remote groups, address groups and remote-group members. Not safe for concurrent use: the
// Source guards it.
type secGroups struct {
	// enabled says the agent filters ports (Settings.SecurityGroups): the groups are
	// pulled, and a port of this host is held back until its groups are known.
	enabled bool
	// seq counts the objects recorded; each object keeps the seq it was recorded at, so
	// that a pull replaces only what was recorded before it started.
	seq           uint64
	groups        map[string]*sgGroup
	rules         map[string]*sgRule
	addressGroups map[string]*sgAddressGroup
	ports         map[string]*sgPort
	// deleted are the ids pushed as deleted, by type.
	deleted map[string]map[string]bool
	// complete are the groups whose rules were pulled (or came with the group's object);
	// membersPulled the remote groups whose members were pulled; addressGroupsPulled the
	// address groups pulled; portsPulled the ports of this host whose object was pulled.
	complete, membersPulled, addressGroupsPulled, portsPulled map[string]bool
	// known are the groups that were complete once: while a resync pulls them again (and
	// the server may be slow to answer), their cached rules are given, so that nothing
	// changes for the ports until the pull says otherwise.
	known map[string]bool
	// repullPorts asks for the Port objects of every port of this host again (a resync).
	repullPorts bool
	// shown are the ports of this host given in a snapshot once: they are never held back
	// again (a port whose groups are unknown then keeps its firewall).
	shown map[string]bool
}

func newSecGroups(enabled bool) *secGroups {
	return &secGroups{enabled: enabled, groups: map[string]*sgGroup{}, rules: map[string]*sgRule{},
		addressGroups: map[string]*sgAddressGroup{}, ports: map[string]*sgPort{},
		deleted:  map[string]map[string]bool{typeSecurityGroup: {}, typeSecurityGroupRule: {}, typeAddressGroup: {}, typePort: {}},
		complete: map[string]bool{}, membersPulled: map[string]bool{}, addressGroupsPulled: map[string]bool{},
		portsPulled: map[string]bool{}, shown: map[string]bool{}, known: map[string]bool{}}
}

// olderThan reports whether revision next is older than the cached prev (either unknown:
// not older, as Neutron's cache tolerates a revision that did not move).
func olderThan(next, prev *int64) bool { return next != nil && prev != nil && *next < *prev }

// applyPush applies the security group objects of a push, and the groups and addresses of
// its ports; nothing is kept when security groups are off.
func (g *secGroups) applyPush(b *pushBatch) {
	if !g.enabled {
		return
	}
	for i := range b.groups {
		g.applyGroup(b.event, &b.groups[i])
	}
	for i := range b.rules {
		g.applyRule(b.event, &b.rules[i])
	}
	for i := range b.addressGroups {
		g.applyAddressGroup(b.event, &b.addressGroups[i])
	}
	for i := range b.ports {
		g.applyPort(b.event, &b.ports[i])
	}
}

// applyGroup records a group. A group object that carries its rules records them too (the
// server pushes no rule of a new group on its own); a deleted group takes its rules with it,
// and the rules of other groups that name it as their remote group (the server deletes
// those too, without a push).
func (g *secGroups) applyGroup(event string, o *ovoSecurityGroup) {
	if g.deleted[typeSecurityGroup][o.ID] {
		return
	}
	if event == pushDeleted {
		g.deleted[typeSecurityGroup][o.ID] = true
		delete(g.groups, o.ID)
		delete(g.complete, o.ID)
		delete(g.known, o.ID)
		for id, r := range g.rules {
			if r.obj.SecurityGroupID == o.ID || (r.obj.RemoteGroupID != nil && *r.obj.RemoteGroupID == o.ID) {
				delete(g.rules, id)
			}
		}
		return
	}
	if old := g.groups[o.ID]; old != nil && olderThan(o.RevisionNumber, old.obj.RevisionNumber) {
		return
	}
	g.seq++
	cp := *o
	cp.Rules = nil
	g.groups[o.ID] = &sgGroup{obj: cp, seq: g.seq}
	if o.Rules != nil {
		for _, r := range *o.Rules {
			if r.Data.ID != "" {
				if r.Data.SecurityGroupID == "" {
					r.Data.SecurityGroupID = o.ID
				}
				g.applyRule(pushUpdated, &r.Data)
			}
		}
		g.complete[o.ID] = true
		g.known[o.ID] = true
	}
}

func (g *secGroups) applyRule(event string, o *ovoSGRule) {
	if g.deleted[typeSecurityGroupRule][o.ID] {
		return
	}
	if event == pushDeleted {
		g.deleted[typeSecurityGroupRule][o.ID] = true
		delete(g.rules, o.ID)
		return
	}
	if o.SecurityGroupID == "" {
		return
	}
	if old := g.rules[o.ID]; old != nil && olderThan(o.RevisionNumber, old.obj.RevisionNumber) {
		return
	}
	g.seq++
	g.rules[o.ID] = &sgRule{obj: *o, seq: g.seq}
}

func (g *secGroups) applyAddressGroup(event string, o *ovoAddressGroup) {
	if g.deleted[typeAddressGroup][o.ID] {
		return
	}
	if event == pushDeleted {
		g.deleted[typeAddressGroup][o.ID] = true
		delete(g.addressGroups, o.ID)
		return
	}
	if old := g.addressGroups[o.ID]; old != nil && olderThan(o.RevisionNumber, old.obj.RevisionNumber) {
		return
	}
	g.seq++
	g.addressGroups[o.ID] = &sgAddressGroup{obj: *o, seq: g.seq}
}

func (g *secGroups) applyPort(event string, o *ovoPort) {
	if g.deleted[typePort][o.ID] {
		return
	}
	if event == pushDeleted {
		g.deleted[typePort][o.ID] = true
		delete(g.ports, o.ID)
		return
	}
	if old := g.ports[o.ID]; old != nil && olderThan(o.RevisionNumber, old.revision) {
		return
	}
	g.seq++
	p := &sgPort{groups: slices.Clone(o.SecurityGroupIDs), revision: o.RevisionNumber, seq: g.seq}
	for _, f := range o.FixedIPs {
		p.fixedIPs = append(p.fixedIPs, f.Data.IPAddress)
	}
	for _, a := range o.AllowedAddressPairs {
		p.pairs = append(p.pairs, a.Data.IPAddress)
	}
	g.ports[o.ID] = p
}

// resync makes everything be pulled again (pushes may have been lost); what is cached stays
// in force until the pulls replace it.
func (g *secGroups) resync() {
	clear(g.complete)
	clear(g.membersPulled)
	clear(g.addressGroupsPulled)
	clear(g.portsPulled)
	g.repullPorts = true
}

// forget drops what is kept of a port of this host that left.
func (g *secGroups) forget(port string) {
	delete(g.shown, port)
	delete(g.portsPulled, port)
}

// trusted reports whether a port is one Neutron's firewall leaves alone (a network:* device
// owner: router interfaces, DHCP ports; neutron_lib's is_port_trusted): it has no groups to
// wait for.
func trusted(deviceOwner string) bool { return strings.HasPrefix(deviceOwner, "network:") }

// portsToPull are this host's ports whose Port object (their groups) is to be pulled.
func (g *secGroups) portsToPull(local map[string]*DeviceDetails) []string {
	var out []string
	for id, d := range local {
		if trusted(d.DeviceOwner) || g.portsPulled[id] || g.deleted[typePort][id] {
			continue
		}
		if g.ports[id] == nil || g.repullPorts {
			out = append(out, id)
		}
	}
	g.repullPorts = false
	slices.Sort(out)
	return out
}

// localGroups are the groups of this host's ports.
func (g *secGroups) localGroups(local map[string]*DeviceDetails) map[string]bool {
	out := map[string]bool{}
	for id, d := range local {
		if p := g.ports[id]; p != nil && !trusted(d.DeviceOwner) {
			for _, sg := range p.groups {
				out[sg] = true
			}
		}
	}
	return out
}

// groupsToPull are the groups of this host's ports whose rules are not complete.
func (g *secGroups) groupsToPull(local map[string]*DeviceDetails) []string {
	var out []string
	for sg := range g.localGroups(local) {
		if !g.complete[sg] && !g.deleted[typeSecurityGroup][sg] {
			out = append(out, sg)
		}
	}
	slices.Sort(out)
	return out
}

// rulesOf returns a group's rules, by id.
func (g *secGroups) rulesOf(sg string) []*ovoSGRule {
	var out []*ovoSGRule
	for _, r := range g.rules {
		if r.obj.SecurityGroupID == sg {
			out = append(out, &r.obj)
		}
	}
	slices.SortFunc(out, func(a, b *ovoSGRule) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// remotes are the remote groups and address groups of the rules of groups.
func (g *secGroups) remotes(groups map[string]bool) (remoteGroups, addressGroups map[string]bool) {
	remoteGroups, addressGroups = map[string]bool{}, map[string]bool{}
	for _, r := range g.rules {
		if !groups[r.obj.SecurityGroupID] {
			continue
		}
		if r.obj.RemoteGroupID != nil && *r.obj.RemoteGroupID != "" {
			remoteGroups[*r.obj.RemoteGroupID] = true
		}
		if r.obj.RemoteAddressGroupID != nil && *r.obj.RemoteAddressGroupID != "" {
			addressGroups[*r.obj.RemoteAddressGroupID] = true
		}
	}
	return remoteGroups, addressGroups
}

// membersAndAddressGroupsToPull are the remote groups whose members, and the address
// groups, that the complete groups of this host's ports need and that were not pulled.
func (g *secGroups) membersAndAddressGroupsToPull(local map[string]*DeviceDetails) (members, addressGroups []string) {
	complete := map[string]bool{}
	for sg := range g.localGroups(local) {
		if g.complete[sg] {
			complete[sg] = true
		}
	}
	rg, ag := g.remotes(complete)
	for id := range rg {
		if !g.membersPulled[id] && !g.deleted[typeSecurityGroup][id] {
			members = append(members, id)
		}
	}
	for id := range ag {
		if !g.addressGroupsPulled[id] && !g.deleted[typeAddressGroup][id] {
			addressGroups = append(addressGroups, id)
		}
	}
	slices.Sort(members)
	slices.Sort(addressGroups)
	return members, addressGroups
}

// pulledRules records the groups and rules pulled for groups (asked when seq was since):
// the pull is their whole rule set, so a rule of theirs recorded before it that it lacks is
// gone.
func (g *secGroups) pulledRules(groups []string, since uint64, objects []ovoSecurityGroup, rules []ovoSGRule) {
	for i := range objects {
		g.applyGroup(pushUpdated, &objects[i])
	}
	got := map[string]bool{}
	for i := range rules {
		got[rules[i].ID] = true
		g.applyRule(pushUpdated, &rules[i])
	}
	asked := map[string]bool{}
	for _, sg := range groups {
		asked[sg] = true
		g.complete[sg] = true
		g.known[sg] = true
	}
	for id, r := range g.rules {
		if asked[r.obj.SecurityGroupID] && r.seq <= since && !got[id] {
			delete(g.rules, id)
		}
	}
}

// pulledMembers records the ports pulled as members of groups (asked when seq was since): a
// port recorded before that the pull lacks is in none of them any more.
func (g *secGroups) pulledMembers(groups []string, since uint64, ports []ovoPort) {
	got := map[string]bool{}
	for i := range ports {
		got[ports[i].ID] = true
		g.applyPort(pushUpdated, &ports[i])
	}
	asked := map[string]bool{}
	for _, sg := range groups {
		asked[sg] = true
		g.membersPulled[sg] = true
	}
	for id, p := range g.ports {
		if !got[id] && p.seq <= since {
			p.groups = slices.DeleteFunc(p.groups, func(sg string) bool { return asked[sg] })
		}
	}
}

// groupsUnknown stands, in a snapshot, for the groups of a port given before that are not
// known now (its Port object could not be pulled after a restart): it names no group, so
// the port's firewall is withheld (kept as installed) rather than emptied.
const groupsUnknown = "(not yet received from neutron-server)"

// portGroups returns the groups a port of this host is given with, and whether it is held
// back from the snapshot (its groups, or their rules, are not known yet, and it was never
// given). s.mu is held.
func (g *secGroups) portGroups(id string, d *DeviceDetails) (groups []string, hold bool) {
	if !g.enabled || trusted(d.DeviceOwner) {
		if p := g.ports[id]; g.enabled && p != nil {
			return p.groups, false
		}
		return nil, false
	}
	p := g.ports[id]
	ready := p != nil
	if p != nil {
		for _, sg := range p.groups {
			if !g.complete[sg] && !g.known[sg] {
				ready = false
			}
		}
	}
	switch {
	case ready:
		g.shown[id] = true
		return p.groups, false
	case !g.shown[id]:
		return nil, true
	case p == nil:
		return []string{groupsUnknown}, false
	}
	return p.groups, false
}

// snapshot adds the security groups of this host's ports (ports, already in m) to m: their
// groups with their rules, their rules' remote groups (by id alone when no port here is in
// them: only their members count here, and Neutron's agent does not fetch them either),
// address groups and remote-group members. An object the server sent that does not parse is
// a Problem and is left out (a group is then withheld by Validate).
func (g *secGroups) snapshot(m *northbound.Model) []northbound.Problem {
	if !g.enabled {
		return nil
	}
	var problems []northbound.Problem
	used := map[string]bool{}
	local := map[string]bool{}
	for _, p := range m.Ports {
		local[p.ID] = true
		for _, sg := range p.SecurityGroups {
			used[sg] = true
		}
	}
	given := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(used)) {
		o := g.groups[id]
		if o == nil || !(g.complete[id] || g.known[id]) {
			continue // unknown: the ports' firewall is withheld until it is
		}
		sg := northbound.SecurityGroup{ID: id, Stateful: o.obj.Stateful == nil || *o.obj.Stateful}
		if o.obj.Name != nil {
			sg.Name = *o.obj.Name
		}
		var bad []northbound.Problem
		for _, r := range g.rulesOf(id) {
			rule, ps := modelRule(r)
			bad = append(bad, ps...)
			sg.Rules = append(sg.Rules, rule)
		}
		given[id] = true
		if len(bad) > 0 {
			problems = append(problems, bad...)
			continue
		}
		m.SecurityGroups = append(m.SecurityGroups, sg)
	}
	remoteGroups, addressGroups := g.remotes(given)
	for _, id := range slices.Sorted(maps.Keys(remoteGroups)) {
		if used[id] {
			continue
		}
		sg := northbound.SecurityGroup{ID: id, Stateful: true}
		if o := g.groups[id]; o != nil {
			sg.Stateful = o.obj.Stateful == nil || *o.obj.Stateful
			if o.obj.Name != nil {
				sg.Name = *o.obj.Name
			}
		}
		m.SecurityGroups = append(m.SecurityGroups, sg)
	}
	for _, id := range slices.Sorted(maps.Keys(addressGroups)) {
		o := g.addressGroups[id]
		if o == nil {
			continue
		}
		ag, ps := modelAddressGroup(&o.obj)
		if len(ps) > 0 {
			problems = append(problems, ps...)
			continue
		}
		m.AddressGroups = append(m.AddressGroups, ag)
	}
	for _, id := range slices.Sorted(maps.Keys(g.ports)) {
		p := g.ports[id]
		if local[id] || !slices.ContainsFunc(p.groups, func(sg string) bool { return remoteGroups[sg] }) {
			continue
		}
		member, ps := modelMember(id, p)
		problems = append(problems, ps...)
		m.GroupMembers = append(m.GroupMembers, member)
	}
	return problems
}

// modelRule turns a rule into the model's; values that do not parse are Problems naming the
// rule's group and the rule.
func modelRule(r *ovoSGRule) (northbound.SecurityGroupRule, []northbound.Problem) {
	var problems []northbound.Problem
	bad := func(field, value string, err error) {
		problems = append(problems, northbound.Problem{Kind: northbound.KindSecurityGroup, ID: r.SecurityGroupID,
			Field: "security_group_rules[" + r.ID + "]." + field, Reason: fmt.Sprintf("%q from neutron-server %v", value, err)})
	}
	out := northbound.SecurityGroupRule{ID: r.ID, PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax}
	var err error
	if r.Direction != nil {
		if out.Direction, err = northbound.ParseDirection(*r.Direction); err != nil {
			bad("direction", *r.Direction, err)
		}
	}
	if r.EtherType != nil {
		if out.EtherType, err = northbound.ParseEtherType(*r.EtherType); err != nil {
			bad("ethertype", *r.EtherType, err)
		}
	}
	if r.Protocol != nil {
		if out.Protocol, err = northbound.ParseProtocol(string(*r.Protocol)); err != nil {
			bad("protocol", string(*r.Protocol), err)
		}
	}
	if r.RemoteIPPrefix != nil && *r.RemoteIPPrefix != "" {
		if out.RemoteIPPrefix, err = northbound.ParseRemoteIPPrefix(*r.RemoteIPPrefix); err != nil {
			bad("remote_ip_prefix", *r.RemoteIPPrefix, err)
		}
	}
	if r.RemoteGroupID != nil {
		out.RemoteGroupID = *r.RemoteGroupID
	}
	if r.RemoteAddressGroupID != nil {
		out.RemoteAddressGroupID = *r.RemoteAddressGroupID
	}
	return out, problems
}

func modelAddressGroup(o *ovoAddressGroup) (northbound.AddressGroup, []northbound.Problem) {
	ag := northbound.AddressGroup{ID: o.ID, Addresses: []netip.Prefix{}}
	if o.Name != nil {
		ag.Name = *o.Name
	}
	var problems []northbound.Problem
	for i, a := range o.Addresses {
		p, err := northbound.ParseAddressGroupAddress(a.Data.Address)
		if err != nil {
			problems = append(problems, northbound.Problem{Kind: northbound.KindAddressGroup, ID: o.ID,
				Field: fmt.Sprintf("addresses[%d]", i), Reason: fmt.Sprintf("%q from neutron-server %v", a.Data.Address, err)})
			continue
		}
		ag.Addresses = append(ag.Addresses, p)
	}
	return ag, problems
}

// modelMember is a port of another host (or one of this host not given) as a group member.
// An address that does not parse is a Problem (of kind remote_port) and is left out: the
// rules allow less.
func modelMember(id string, p *sgPort) (northbound.GroupMember, []northbound.Problem) {
	m := northbound.GroupMember{PortID: id, SecurityGroups: slices.Clone(p.groups)}
	var problems []northbound.Problem
	for i, s := range p.fixedIPs {
		a, err := netip.ParseAddr(s)
		if err != nil {
			problems = append(problems, northbound.Problem{Kind: northbound.KindRemotePort, ID: id,
				Field: fmt.Sprintf("fixed_ips[%d].ip_address", i), Reason: fmt.Sprintf("%q from neutron-server: %v", s, err)})
			continue
		}
		m.Addresses = append(m.Addresses, netip.PrefixFrom(a, a.BitLen()))
	}
	for i, s := range p.pairs {
		pfx, err := northbound.ParseIPOrCIDR(s)
		if err != nil {
			problems = append(problems, northbound.Problem{Kind: northbound.KindRemotePort, ID: id,
				Field: fmt.Sprintf("allowed_address_pairs[%d].ip_address", i), Reason: fmt.Sprintf("%q from neutron-server: %v", s, err)})
			continue
		}
		m.Addresses = append(m.Addresses, pfx)
	}
	return m, problems
}
