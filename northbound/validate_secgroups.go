package northbound

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// The security group part of validation: address groups, security groups with their rules
// (the checks Neutron's server applies when a rule is created), and ports' security_groups.

// addressGroupsList checks address groups: their addresses are normalised (host bits
// cleared, sorted, duplicates dropped, as Neutron stores them). An id given twice is
// refused on every occurrence: a rule naming it could mean either set.
func (v *validator) addressGroupsList(groups []AddressGroup) []AddressGroup {
	v.reportParsed(KindAddressGroup)
	count := idCounts(groups, func(g AddressGroup) string { return g.ID }, v.invalid[KindAddressGroup])
	out := []AddressGroup{}
	for i, g := range groups {
		o := v.begin(KindAddressGroup, "address_groups", i, g.ID)
		checkGroupID(o, g.ID, count)
		set := map[netip.Prefix]bool{}
		for j, a := range g.Addresses {
			if !a.IsValid() {
				o.fail(fmt.Sprintf("addresses[%d]", j), "missing")
				continue
			}
			set[a.Masked()] = true
		}
		g.Addresses = sortedPrefixes(set)
		if o.done() {
			out = append(out, g)
		}
	}
	for i := range out {
		v.addressGroups[out[i].ID] = &out[i]
	}
	return out
}

// securityGroupsList checks security groups and returns the valid ones and the ids of the
// withheld ones (see [SecurityGroup]): a group with an invalid rule or attribute, one the
// source could not parse, and every group whose id is given more than once (which
// definition holds is unknown).
func (v *validator) securityGroupsList(groups []SecurityGroup) ([]SecurityGroup, []string) {
	v.reportParsed(KindSecurityGroup)
	count := idCounts(groups, func(g SecurityGroup) string { return g.ID }, v.invalid[KindSecurityGroup])
	// Every group the source names exists for remote_group_id, valid or not.
	for id := range count {
		if !isPlaceholder(id, "security_groups") {
			v.sgExists[id] = true
		}
	}
	ruleGroups := map[string]string{} // rule id → the group it was first seen in
	out := []SecurityGroup{}
	for i, g := range groups {
		o := v.begin(KindSecurityGroup, "security_groups", i, g.ID)
		checkGroupID(o, g.ID, count)
		rules := make([]SecurityGroupRule, 0, len(g.Rules))
		for j, r := range g.Rules {
			field := fmt.Sprintf("security_group_rules[%d]", j)
			if r.ID != "" {
				field = "security_group_rules[" + r.ID + "]"
				if other, dup := ruleGroups[r.ID]; dup {
					o.fail(field+".id", "duplicate rule id (also in security group %s)", other)
				} else {
					ruleGroups[r.ID] = g.ID
				}
			}
			rules = append(rules, v.rule(o, field, r))
		}
		g.Rules = rules
		if o.done() {
			out = append(out, g)
		}
	}
	withheld := []string{}
	for id := range v.invalid[KindSecurityGroup] {
		if v.sgExists[id] {
			withheld = append(withheld, id)
			v.sgWithheld[id] = true
		}
	}
	slices.Sort(withheld)
	for i := range out {
		v.securityGroups[out[i].ID] = &out[i]
	}
	return out, withheld
}

// rule checks one rule of a group (its problems name field, the rule) and returns it
// normalised as Neutron's server stores it: icmp (1) in an IPv6 rule is ipv6-icmp (58),
// the port range 1–65535 is no range, the remote prefix has its host bits cleared.
func (v *validator) rule(o *object, field string, r SecurityGroupRule) SecurityGroupRule {
	switch r.Direction {
	case "":
		o.fail(field+".direction", "missing")
	case Ingress, Egress:
	default:
		o.fail(field+".direction", "%q is not ingress or egress", r.Direction)
	}
	etherOK := false
	switch r.EtherType {
	case "":
		o.fail(field+".ethertype", "missing")
	case IPv4, IPv6:
		etherOK = true
	default:
		o.fail(field+".ethertype", "%q is not IPv4 or IPv6", r.EtherType)
	}
	if n, ok := r.Protocol.Number(); ok && n == ProtoICMP && r.EtherType == IPv6 {
		r.Protocol = ProtocolNumber(ProtoIPv6ICMP)
	}
	if n, ok := r.Protocol.Number(); ok && r.EtherType == IPv4 && ipv6OnlyProtocols[n] {
		o.fail(field+".protocol", "%s is an IPv6 protocol; the rule's ethertype is IPv4", r.Protocol)
	}
	r.PortRangeMin, r.PortRangeMax = clonePort(r.PortRangeMin), clonePort(r.PortRangeMax)
	if portIs(r.PortRangeMin, 1) && portIs(r.PortRangeMax, 65535) {
		r.PortRangeMin, r.PortRangeMax = nil, nil
	}
	checkPortRange(o, field, &r)
	if r.RemoteIPPrefix.IsValid() {
		r.RemoteIPPrefix = r.RemoteIPPrefix.Masked()
		if e := EtherTypeOf(r.RemoteIPPrefix.Addr()); etherOK && e != r.EtherType {
			o.fail(field+".remote_ip_prefix", "%s is an %s prefix; the rule's ethertype is %s", r.RemoteIPPrefix, e, r.EtherType)
		}
	}
	var remotes []string
	for _, rm := range []struct {
		name string
		set  bool
	}{{"remote_ip_prefix", r.RemoteIPPrefix.IsValid()}, {"remote_group_id", r.RemoteGroupID != ""},
		{"remote_address_group_id", r.RemoteAddressGroupID != ""}} {
		if rm.set {
			remotes = append(remotes, rm.name)
		}
	}
	if len(remotes) > 1 {
		o.fail(field, "sets %s; only one of remote_ip_prefix, remote_group_id and remote_address_group_id may be given",
			strings.Join(remotes, " and "))
	}
	if id := r.RemoteGroupID; id != "" && !v.sgExists[id] {
		o.fail(field+".remote_group_id", "unknown security group %s", id)
	}
	if id := r.RemoteAddressGroupID; id != "" && v.addressGroups[id] == nil {
		if v.invalid[KindAddressGroup][id] {
			o.fail(field+".remote_address_group_id", "address group %s is invalid", id)
		} else {
			o.fail(field+".remote_address_group_id", "unknown address group %s", id)
		}
	}
	return r
}

// groupMembers normalises the ports known only as group members: their groups and
// addresses sorted without duplicates, invalid addresses and members without an id left
// out (the source reports what it could not parse), the first of two with one id kept.
func groupMembers(members []GroupMember) []GroupMember {
	out := []GroupMember{}
	seen := map[string]bool{}
	for _, g := range members {
		if g.PortID == "" || seen[g.PortID] {
			continue
		}
		seen[g.PortID] = true
		set := map[netip.Prefix]bool{}
		for _, a := range g.Addresses {
			if a.IsValid() {
				set[a.Masked()] = true
			}
		}
		out = append(out, GroupMember{PortID: g.PortID, SecurityGroups: sortedIDs(g.SecurityGroups), Addresses: sortedPrefixes(set)})
	}
	return out
}

// checkPortRange checks port_range_min and port_range_max against the protocol, as
// Neutron's server does (_validate_port_range).
func checkPortRange(o *object, field string, r *SecurityGroupRule) {
	lo, hi := r.PortRangeMin, r.PortRangeMax
	if lo == nil && hi == nil {
		return
	}
	inRange := true
	for _, p := range []struct {
		name string
		v    *int
	}{{"port_range_min", lo}, {"port_range_max", hi}} {
		if p.v != nil && (*p.v < 0 || *p.v > 65535) {
			o.fail(field+"."+p.name, "%d is not a port number (0–65535)", *p.v)
			inRange = false
		}
	}
	switch {
	case !inRange:
	case r.Protocol.Any():
		o.fail(field+".protocol", "missing: a port range needs a protocol")
	case r.Protocol.HasPorts():
		switch {
		case portIs(lo, 0) || portIs(hi, 0):
			o.fail(field+".port_range_min", "0 is not a valid %s port", r.Protocol)
		case lo == nil || hi == nil:
			o.fail(field+".port_range_min", "%s needs both port_range_min and port_range_max (or neither: every port)", r.Protocol)
		case *lo > *hi:
			o.fail(field+".port_range_min", "%d is greater than port_range_max %d", *lo, *hi)
		}
	case r.Protocol.IsICMP():
		if lo != nil && *lo > 255 {
			o.fail(field+".port_range_min", "%d is not an ICMP type (0–255)", *lo)
		}
		if hi != nil && *hi > 255 {
			o.fail(field+".port_range_max", "%d is not an ICMP code (0–255)", *hi)
		}
		if lo == nil {
			o.fail(field+".port_range_max", "ICMP code %d is given without an ICMP type (port_range_min)", *hi)
		}
	default:
		o.fail(field+".protocol", "%s has no ports; port_range_min/max are for tcp, udp, sctp, dccp and udplite (and ICMP type/code)", r.Protocol)
	}
}

// portGroups checks a port's security_groups and returns them sorted without duplicates
// (nil when none), and whether the port's firewall is withheld. A problem here does not
// drop the port: for this host's ports (local) it withholds the firewall, for a remote
// port it is only reported (it has no firewall here, and an unknown group has no rules
// that could use it as a remote group).
func (v *validator) portGroups(o *object, ids []string, local, portSecurity bool) ([]string, bool) {
	withheld := false
	var stateful, stateless []string
	for i, id := range ids {
		field := fmt.Sprintf("security_groups[%d]", i)
		switch g := v.securityGroups[id]; {
		case id == "":
			o.note(field, "missing")
			withheld = true
		case g != nil && g.Stateful:
			stateful = append(stateful, id)
		case g != nil:
			stateless = append(stateless, id)
		case v.sgWithheld[id]:
			withheld = true
		default:
			o.note(field, "unknown security group %s", id)
			withheld = true
		}
	}
	out := sortedIDs(ids)
	if !local {
		return out, false
	}
	if !portSecurity && len(out) > 0 {
		o.note("security_groups", "set on a port with port_security_enabled false (Neutron refuses this)")
		withheld = true
	}
	if len(stateful) > 0 && len(stateless) > 0 {
		o.note("security_groups", "mixes stateful (%s) and stateless (%s) security groups (Neutron refuses this)",
			strings.Join(stateful, ", "), strings.Join(stateless, ", "))
		withheld = true
	}
	return out, withheld
}

// note records a problem on field that does not make the object invalid.
func (o *object) note(field, format string, args ...any) {
	o.v.problems = append(o.v.problems, Problem{Kind: o.kind, ID: o.id, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// idCounts counts each id of a list, and once more each id the source could not parse.
func idCounts[T any](items []T, id func(T) string, unparsed map[string]bool) map[string]int {
	out := map[string]int{}
	for k := range unparsed {
		out[k] = 1
	}
	for _, it := range items {
		if k := id(it); k != "" {
			out[k]++
		}
	}
	return out
}

// checkGroupID reports a missing id, or one given more than once.
func checkGroupID(o *object, id string, count map[string]int) {
	switch {
	case id == "":
		o.fail("id", "missing")
	case count[id] > 1:
		o.fail("id", "duplicate id (every definition is refused: which one holds is unknown)")
	}
}

// isPlaceholder reports whether id is the "key[i]" name of an object without an id.
func isPlaceholder(id, key string) bool {
	rest, ok := strings.CutPrefix(id, key+"[")
	if !ok {
		return false
	}
	n, ok := strings.CutSuffix(rest, "]")
	if !ok {
		return false
	}
	_, err := strconv.Atoi(n)
	return err == nil
}

// sortedIDs returns ids sorted without duplicates and empty ids; nil when none.
func sortedIDs(ids []string) []string {
	var out []string
	for _, id := range ids {
		if id != "" {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// sortedPrefixes returns a set of prefixes sorted (IPv4 first, then by address and
// length); an empty list when none.
func sortedPrefixes(set map[netip.Prefix]bool) []netip.Prefix {
	out := slices.Collect(maps.Keys(set))
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
	})
	if out == nil {
		out = []netip.Prefix{}
	}
	return out
}

func clonePort(p *int) *int {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func portIs(p *int, v int) bool { return p != nil && *p == v }
