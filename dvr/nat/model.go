// Package nat keeps the NAT of one router namespace, as Neutron's L3 agent does with
// iptables, in nftables over netlink: in snat-<router>, the source NAT of the router's
// internal subnets to its gateway IP on qg-; in qrouter-<router>, for each floating IP, the
// destination NAT floating IP → fixed IP for what arrives from rfp- and the source NAT fixed
// IP → floating IP for what leaves through rfp-.
//
// [Desired] turns a [Set] (the SNAT and DNAT rules one namespace must hold, each naming the
// Neutron object it serves) into validated, ordered [Rule]s without any I/O; [Diff] compares
// them with what a namespace holds and says what to delete and where to insert; [Apply] reads
// the namespace's table back, applies the difference in one nftables batch (atomic: a packet
// sees the old rules or the new ones, never half) and flushes the conntrack entries of the
// NAT that went away.
//
// # Ownership and markers
//
// dvrflow owns one table per namespace, family ip, named [TableName], holding a base chain
// "prerouting" (type nat, hook prerouting, priority dstnat) for the DNAT rules and a base
// chain "postrouting" (type nat, hook postrouting, priority srcnat) for the SNAT rules, and
// an empty set named [MarkerSet] whose only purpose is to say that dvrflow made the table
// (the nftables library cannot put user data on a table or chain). A table of that name
// without the marker set is someone else's: Apply returns an error naming it and leaves it
// alone. Other tables are never changed. Inside our table everything is ours: a rule
// or chain dvrflow does not want there (one someone added by hand included) is removed.
//
// Every rule carries user data with two entries: the comment "dvrflow <object>" (what
// `nft list ruleset` prints: which router or floating IP the rule serves) and a private
// entry holding the rule's content in canonical form (e.g. "snat src=10.0.0.0/24
// out=qg-1a2b3c4d-5e to=203.0.113.10"). Apply identifies a rule by chain, object and content
// read from that user data, never by parsing expressions back, so that a restart with
// unchanged desired state finds every rule in place and changes nothing. A desired set with
// no rules deletes the table.
//
// # Order
//
// NAT statements are terminal and the kernel takes the first NAT rule that matches a new
// connection, so the order inside a chain decides between overlapping rules. It is explicit:
// the most specific match first — the longer source (SNAT) or destination (DNAT) prefix, then
// a rule bound to a device before one that is not. A floating IP's SNAT (its fixed IP, /32)
// therefore always wins over the SNAT of its subnet, as Neutron's float-snat chain, jumped to
// before the router's snat rules, makes it win. Apply keeps that order when it inserts.
//
// # No output chain
//
// Neutron's DVR router (DvrLocalRouter.floating_forward_rules) installs no OUTPUT DNAT for a
// floating IP, only PREROUTING from rfp-: nothing in a qrouter- namespace opens connections
// to its own floating IPs (the floating IP is not even an address there; it lives behind the
// fip- namespace). A legacy router's OUTPUT rule exists because there the floating IP is on
// qg- in the same namespace. So there is no output chain; a DNAT rule with no InDevice still
// only sees forwarded and incoming traffic.
package nat

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

const (
	// TableName is the table dvrflow owns in each namespace (family ip).
	TableName = "dvrflow-nat"
	// MarkerSet names the set whose presence marks TableName as made by dvrflow.
	MarkerSet = "dvrflow-owner"
	// PreroutingChain holds the DNAT rules (hook prerouting, priority dstnat).
	PreroutingChain = "prerouting"
	// PostroutingChain holds the SNAT rules (hook postrouting, priority srcnat).
	PostroutingChain = "postrouting"

	// maxObjectLen bounds an object name, so that a rule's user data stays below the
	// kernel's 256 bytes.
	maxObjectLen = 100
	// ifNameSize is the kernel's IFNAMSIZ: a device name has at most 15 bytes.
	ifNameSize = 16
)

// Set is the NAT one namespace must hold.
type Set struct {
	SNAT []SNAT
	DNAT []DNAT
}

// SNAT rewrites the source of new connections from Source (leaving through OutDevice, when
// set) to To.
type SNAT struct {
	// Object names what the rule serves, e.g. "router <id>" or "floatingip <id>".
	Object    string
	Source    netip.Prefix
	OutDevice string
	To        netip.Addr
}

// DNAT rewrites the destination of new connections to Destination (arriving on InDevice,
// when set) to To.
type DNAT struct {
	Object      string
	Destination netip.Addr
	InDevice    string
	To          netip.Addr
}

// Kind is what a rule rewrites.
type Kind uint8

const (
	// KindSNAT rewrites the source address (chain postrouting).
	KindSNAT Kind = iota + 1
	// KindDNAT rewrites the destination address (chain prerouting).
	KindDNAT
)

func (k Kind) String() string {
	switch k {
	case KindSNAT:
		return "snat"
	case KindDNAT:
		return "dnat"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Chain is the chain of our table that holds rules of this kind.
func (k Kind) Chain() string {
	if k == KindDNAT {
		return PreroutingChain
	}
	return PostroutingChain
}

// Rule is one validated rule of our table: an SNAT or a DNAT in one form.
type Rule struct {
	Kind   Kind
	Object string
	// Match is the source (SNAT) or destination (DNAT) prefix; a DNAT's is a /32.
	Match netip.Prefix
	// Device is the output (SNAT) or input (DNAT) device; empty matches any.
	Device string
	To     netip.Addr
}

// Spec is the rule's content in canonical form, without its object: what the rule does,
// e.g. "snat src=10.0.0.0/24 out=qg-1 to=203.0.113.1" or "dnat dst=203.0.113.10 in=rfp-1
// to=10.0.0.5". Two rules with the same Spec translate the same packets the same way.
func (r Rule) Spec() string {
	var b strings.Builder
	b.WriteString(r.Kind.String())
	if r.Kind == KindSNAT {
		b.WriteString(" src=" + r.Match.String())
		if r.Device != "" {
			b.WriteString(" out=" + r.Device)
		}
	} else {
		b.WriteString(" dst=" + r.Match.Addr().String())
		if r.Device != "" {
			b.WriteString(" in=" + r.Device)
		}
	}
	b.WriteString(" to=" + r.To.String())
	return b.String()
}

func (r Rule) String() string { return r.Object + ": " + r.Spec() }

// parseSpec reads what Spec wrote (the object is not part of it).
func parseSpec(s string) (Rule, error) {
	f := strings.Fields(s)
	if len(f) < 3 {
		return Rule{}, fmt.Errorf("rule spec %q: too short", s)
	}
	var r Rule
	switch f[0] {
	case "snat":
		r.Kind = KindSNAT
	case "dnat":
		r.Kind = KindDNAT
	default:
		return Rule{}, fmt.Errorf("rule spec %q: unknown kind", s)
	}
	matchKey, devKey := "src", "out"
	if r.Kind == KindDNAT {
		matchKey, devKey = "dst", "in"
	}
	seen := map[string]bool{}
	for _, kv := range f[1:] {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || seen[k] {
			return Rule{}, fmt.Errorf("rule spec %q: bad field %q", s, kv)
		}
		seen[k] = true
		var err error
		switch k {
		case matchKey:
			if r.Kind == KindSNAT {
				r.Match, err = netip.ParsePrefix(v)
			} else {
				var a netip.Addr
				a, err = netip.ParseAddr(v)
				r.Match = netip.PrefixFrom(a, a.BitLen())
			}
		case devKey:
			r.Device = v
		case "to":
			r.To, err = netip.ParseAddr(v)
		default:
			err = errors.New("unknown field")
		}
		if err != nil {
			return Rule{}, fmt.Errorf("rule spec %q: field %q: %w", s, k, err)
		}
	}
	if !seen[matchKey] || !seen["to"] {
		return Rule{}, fmt.Errorf("rule spec %q: missing %s or to", s, matchKey)
	}
	if r.Spec() != s {
		return Rule{}, fmt.Errorf("rule spec %q: not canonical", s)
	}
	return r, nil
}

// Desired returns the rules of set, validated, without duplicates and in the order they
// must have: the DNAT rules (chain prerouting), then the SNAT rules (chain postrouting), each
// sorted by [Compare]. A rule that is not valid is left out and reported in the returned
// error, which names its object and field; every other rule is still returned. Pure.
func Desired(set Set) ([]Rule, error) {
	var rules []Rule
	var errs []error
	for _, s := range set.SNAT {
		r := Rule{Kind: KindSNAT, Object: s.Object, Match: s.Source, Device: s.OutDevice, To: s.To}
		if err := validate(r, "Source", "OutDevice"); err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	for _, d := range set.DNAT {
		match := netip.Prefix{}
		if d.Destination.IsValid() {
			match = netip.PrefixFrom(d.Destination, d.Destination.BitLen())
		}
		r := Rule{Kind: KindDNAT, Object: d.Object, Match: match, Device: d.InDevice, To: d.To}
		if err := validate(r, "Destination", "InDevice"); err != nil {
			errs = append(errs, err)
			continue
		}
		rules = append(rules, r)
	}
	slices.SortFunc(rules, Compare)
	rules = slices.CompactFunc(rules, func(a, b Rule) bool { return Compare(a, b) == 0 })
	return rules, errors.Join(errs...)
}

// validate checks one rule; matchField and devField name its fields in the input types.
func validate(r Rule, matchField, devField string) error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%s %q: %s: %s", r.Kind, r.Object, field, fmt.Sprintf(format, args...))
	}
	switch {
	case r.Object == "":
		return fmt.Errorf("%s with no object [%s]: Object: empty", r.Kind, r.Spec())
	case len(r.Object) > maxObjectLen:
		return bad("Object", "longer than %d bytes", maxObjectLen)
	case strings.ContainsFunc(r.Object, func(c rune) bool { return c < ' ' || c == 0x7f }):
		return bad("Object", "contains a control character")
	case !r.Match.IsValid():
		return bad(matchField, "missing or invalid")
	case !r.Match.Addr().Is4():
		return bad(matchField, "%s is not IPv4 (the table is family ip; Neutron NATs only IPv4)", r.Match)
	case r.Match != r.Match.Masked():
		return bad(matchField, "%s has host bits set (want %s)", r.Match, r.Match.Masked())
	case !r.To.IsValid():
		return bad("To", "missing or invalid")
	case !r.To.Is4():
		return bad("To", "%s is not IPv4", r.To)
	}
	if r.Device != "" {
		if len(r.Device) >= ifNameSize || strings.ContainsFunc(r.Device, func(c rune) bool { return c <= ' ' || c == '/' || c == 0x7f }) {
			return bad(devField, "%q is not a device name", r.Device)
		}
	}
	return nil
}

// Compare orders rules as their chains must hold them: DNAT (prerouting) before SNAT
// (postrouting); within a chain the most specific match first — the longer prefix, then a
// rule bound to a device before one that is not — and then by match, device, target and
// object, so that the order is total.
func Compare(a, b Rule) int {
	if c := cmp.Compare(chainRank(a.Kind), chainRank(b.Kind)); c != 0 {
		return c
	}
	if c := cmp.Compare(b.Match.Bits(), a.Match.Bits()); c != 0 {
		return c
	}
	if c := cmp.Compare(unbound(a), unbound(b)); c != 0 {
		return c
	}
	if c := a.Match.Addr().Compare(b.Match.Addr()); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Device, b.Device); c != 0 {
		return c
	}
	if c := a.To.Compare(b.To); c != 0 {
		return c
	}
	return cmp.Compare(a.Object, b.Object)
}

func chainRank(k Kind) int {
	if k == KindDNAT {
		return 0
	}
	return 1
}

// unbound is 1 for a rule bound to no device, 0 for one bound to a device.
func unbound(r Rule) int {
	if r.Device == "" {
		return 1
	}
	return 0
}
