package firewall

import (
	"net/netip"
	"regexp"
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// flowSet renders a node's firewall flows (with cookies) as a set.
func flowSet(n *state.Node) map[string]bool {
	set := map[string]bool{}
	for _, f := range generate(n) {
		set[f.String()] = true
	}
	return set
}

// difference returns the lines of a not in b, sorted.
func difference(a, b map[string]bool) []string {
	var out []string
	for l := range a {
		if !b[l] {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

func cloneGroups(n *state.Node) *state.Node {
	c := *n
	c.SecurityGroups = slices.Clone(n.SecurityGroups)
	for i := range c.SecurityGroups {
		c.SecurityGroups[i].Rules = slices.Clone(c.SecurityGroups[i].Rules)
	}
	return &c
}

// TestChangeTouchesOnlyItsFlows checks that a change rewrites only the flows it affects, so
// that the write path's diff is small and connections elsewhere are untouched: a plain rule
// added to one group adds exactly its two flows per port of the group and removes none; a
// remote rule adds its conjunction and leaves every other conjunction's numbers alone; a
// member leaving a remote group changes only the address flows.
func TestChangeTouchesOnlyItsFlows(t *testing.T) {
	const name = "remote_group"
	ref := readReference(t, name)
	base := node(t, name, ref)
	before := flowSet(base)
	const db = "7b3eb526-6aa9-4628-bcbe-ca3b67485382"

	t.Run("plain rule", func(t *testing.T) {
		n := cloneGroups(base)
		g, _ := n.SecurityGroup(db)
		p := 443
		g.Rules = append(g.Rules, northbound.SecurityGroupRule{Direction: northbound.Ingress, EtherType: northbound.IPv4,
			Protocol: northbound.ProtocolNumber(northbound.ProtoTCP), PortRangeMin: &p, PortRangeMax: &p})
		after := flowSet(n)
		added, removed := difference(after, before), difference(before, after)
		if len(added) != 2 || len(removed) != 0 {
			t.Fatalf("added %d flows, removed %d; want 2 and 0:\n+%v\n-%v", len(added), len(removed), added, removed)
		}
		for _, l := range added {
			if !regexpMatch(`table=82, priority=77,ct_state=\+(est-rel-rpl|new-est),tcp,reg5=0x4,tp_dst=443 `, l) {
				t.Errorf("unexpected flow added: %s", l)
			}
		}
	})
	t.Run("remote rule", func(t *testing.T) {
		n := cloneGroups(base)
		g, _ := n.SecurityGroup(db)
		g.Rules = append(g.Rules, northbound.SecurityGroupRule{Direction: northbound.Ingress, EtherType: northbound.IPv4,
			Protocol: northbound.ProtocolNumber(northbound.ProtoUDP), RemoteGroupID: db})
		after := flowSet(n)
		if removed := difference(before, after); len(removed) != 0 {
			t.Errorf("a new remote rule removed or renumbered %d flows: %v", len(removed), removed)
		}
		if added := difference(after, before); len(added) == 0 {
			t.Error("a new remote rule added no flow")
		}
	})
	t.Run("member leaves", func(t *testing.T) {
		n := cloneGroups(base)
		const members = "fea9159c-ccfb-4f70-a7d5-7e78b9588e08"
		n.GroupMembers = map[string][]netip.Prefix{members: {netip.MustParsePrefix("10.103.0.11/32")}}
		after := flowSet(n)
		added, removed := difference(after, before), difference(before, after)
		if len(added) != 0 || len(removed) != 4 {
			t.Fatalf("added %d, removed %d; want 0 and the 4 address flows of 10.103.0.101:\n+%v\n-%v", len(added), len(removed), added, removed)
		}
		for _, l := range removed {
			if !regexpMatch(`nw_src=10\.103\.0\.101 actions=conjunction`, l) {
				t.Errorf("unexpected flow removed: %s", l)
			}
		}
	})
	t.Run("same state, same flows", func(t *testing.T) {
		if again := flowSet(node(t, name, ref)); len(difference(again, before))+len(difference(before, again)) != 0 {
			t.Error("the same state generated different flows")
		}
	})
}

func regexpMatch(re, s string) bool { return regexp.MustCompile(re).MatchString(s) }

// TestPermittedEthertypes: [securitygroup] permitted_ethertypes lets a filtered port send
// those ethertypes to NORMAL from table 71, one flow per port and ethertype, in Neutron's
// shape (_initialize_egress); without it there is none.
func TestPermittedEthertypes(t *testing.T) {
	ref := readReference(t, "default_group")
	n := node(t, "default_group", ref)
	const want = "table=71, priority=95,reg5=0x3,dl_type=0x4008 actions=resubmit(,94)"
	find := func() bool {
		for _, f := range generate(n) {
			f.Cookie = 0
			if f.String() == want {
				return true
			}
		}
		return false
	}
	if find() {
		t.Fatalf("%s without permitted_ethertypes", want)
	}
	n.Host.PermittedEthertypes = []uint16{0x4008}
	if !find() {
		t.Errorf("no %s with permitted_ethertypes 0x4008", want)
	}
}
