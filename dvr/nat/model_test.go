package nat

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/nftables/userdata"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func ip(s string) netip.Addr    { return netip.MustParseAddr(s) }

func specs(rules []Rule) []string {
	var out []string
	for _, r := range rules {
		out = append(out, r.String())
	}
	return out
}

func TestDesiredOrder(t *testing.T) {
	set := Set{
		SNAT: []SNAT{
			{Object: "router r1", Source: pfx("10.0.0.0/24"), OutDevice: "qg-1", To: ip("203.0.113.1")},
			{Object: "router r1", Source: pfx("10.0.0.0/16"), OutDevice: "qg-1", To: ip("203.0.113.1")},
			{Object: "floatingip f2", Source: pfx("10.0.0.7/32"), OutDevice: "rfp-1", To: ip("203.0.113.12")},
			{Object: "floatingip f1", Source: pfx("10.0.0.5/32"), OutDevice: "rfp-1", To: ip("203.0.113.11")},
			{Object: "router r1", Source: pfx("10.0.0.0/24"), To: ip("203.0.113.1")},
			{Object: "router r1", Source: pfx("10.0.0.0/24"), OutDevice: "qg-1", To: ip("203.0.113.1")}, // a duplicate
		},
		DNAT: []DNAT{
			{Object: "floatingip f2", Destination: ip("203.0.113.12"), To: ip("10.0.0.7")},
			{Object: "floatingip f2", Destination: ip("203.0.113.12"), InDevice: "rfp-1", To: ip("10.0.0.7")},
			{Object: "floatingip f1", Destination: ip("203.0.113.11"), InDevice: "rfp-1", To: ip("10.0.0.5")},
		},
	}
	rules, err := Desired(set)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		// prerouting: the longest match first, a device-bound rule before an unbound one.
		"floatingip f1: dnat dst=203.0.113.11 in=rfp-1 to=10.0.0.5",
		"floatingip f2: dnat dst=203.0.113.12 in=rfp-1 to=10.0.0.7",
		"floatingip f2: dnat dst=203.0.113.12 to=10.0.0.7",
		// postrouting: the floating IPs (/32) before the subnets, the /24 before the /16.
		"floatingip f1: snat src=10.0.0.5/32 out=rfp-1 to=203.0.113.11",
		"floatingip f2: snat src=10.0.0.7/32 out=rfp-1 to=203.0.113.12",
		"router r1: snat src=10.0.0.0/24 out=qg-1 to=203.0.113.1",
		"router r1: snat src=10.0.0.0/24 to=203.0.113.1",
		"router r1: snat src=10.0.0.0/16 out=qg-1 to=203.0.113.1",
	}
	if got := specs(rules); !slices.Equal(got, want) {
		t.Fatalf("Desired:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestDesiredRefuses(t *testing.T) {
	good := SNAT{Object: "router r1", Source: pfx("10.0.0.0/24"), OutDevice: "qg-1", To: ip("203.0.113.1")}
	for _, tc := range []struct {
		name string
		set  Set
		want string
	}{
		{"no object", Set{SNAT: []SNAT{{Source: pfx("10.0.0.0/24"), To: ip("1.2.3.4")}}}, "snat with no object [snat src=10.0.0.0/24 to=1.2.3.4]: Object: empty"},
		{"long object", Set{SNAT: []SNAT{{Object: strings.Repeat("x", 101), Source: pfx("10.0.0.0/24"), To: ip("1.2.3.4")}}}, "Object: longer than 100 bytes"},
		{"newline in object", Set{SNAT: []SNAT{{Object: "a\nb", Source: pfx("10.0.0.0/24"), To: ip("1.2.3.4")}}}, `snat "a\nb": Object: contains a control character`},
		{"no source", Set{SNAT: []SNAT{{Object: "o", To: ip("1.2.3.4")}}}, `snat "o": Source: missing or invalid`},
		{"host bits", Set{SNAT: []SNAT{{Object: "o", Source: pfx("10.0.0.1/24"), To: ip("1.2.3.4")}}}, `snat "o": Source: 10.0.0.1/24 has host bits set (want 10.0.0.0/24)`},
		{"IPv6 source", Set{SNAT: []SNAT{{Object: "o", Source: pfx("2001:db8::/64"), To: ip("1.2.3.4")}}}, `snat "o": Source: 2001:db8::/64 is not IPv4`},
		{"IPv6 target", Set{SNAT: []SNAT{{Object: "o", Source: pfx("10.0.0.0/24"), To: ip("2001:db8::1")}}}, `snat "o": To: 2001:db8::1 is not IPv4`},
		{"no target", Set{DNAT: []DNAT{{Object: "o", Destination: ip("1.2.3.4")}}}, `dnat "o": To: missing or invalid`},
		{"no destination", Set{DNAT: []DNAT{{Object: "o", To: ip("1.2.3.4")}}}, `dnat "o": Destination: missing or invalid`},
		{"mapped destination", Set{DNAT: []DNAT{{Object: "o", Destination: ip("::ffff:1.2.3.4"), To: ip("10.0.0.1")}}}, `dnat "o": Destination: ::ffff:1.2.3.4/128 is not IPv4`},
		{"long device", Set{DNAT: []DNAT{{Object: "o", Destination: ip("1.2.3.4"), InDevice: "rfp-0123456789ab", To: ip("10.0.0.1")}}}, `dnat "o": InDevice: "rfp-0123456789ab" is not a device name`},
		{"device with space", Set{SNAT: []SNAT{{Object: "o", Source: pfx("10.0.0.0/24"), OutDevice: "qg 1", To: ip("1.2.3.4")}}}, `snat "o": OutDevice: "qg 1" is not a device name`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := tc.set
			set.SNAT = append(set.SNAT, good)
			rules, err := Desired(set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if got := specs(rules); !slices.Equal(got, []string{"router r1: snat src=10.0.0.0/24 out=qg-1 to=203.0.113.1"}) {
				t.Fatalf("the valid rule is not kept: %q", got)
			}
		})
	}
}

func TestUserDataRoundTrip(t *testing.T) {
	rules := []Rule{
		{Kind: KindSNAT, Object: "router 9f0c2a52-5b0e-4f5c-9d64-3d1b1d8f6f11", Match: pfx("10.0.0.0/24"), Device: "qg-9f0c2a52-5b", To: ip("203.0.113.1")},
		{Kind: KindSNAT, Object: "any", Match: pfx("0.0.0.0/0"), To: ip("203.0.113.1")},
		{Kind: KindDNAT, Object: "floatingip 1", Match: pfx("203.0.113.10/32"), Device: "rfp-9f0c2a52-5", To: ip("10.0.0.5")},
		{Kind: KindDNAT, Object: "floatingip 2", Match: pfx("203.0.113.11/32"), To: ip("10.0.0.6")},
	}
	for _, r := range rules {
		ud := r.userData()
		if len(ud) > 256 {
			t.Errorf("%s: %d bytes of user data, over the kernel's 256", r, len(ud))
		}
		got, ok := parseUserData(ud)
		if !ok || got != r {
			t.Errorf("round trip of %s: %v, %v", r, got, ok)
		}
		if c, _ := userdata.GetString(ud, userdata.TypeComment); c != "dvrflow "+r.Object {
			t.Errorf("%s: comment %q", r, c)
		}
	}
	long := Rule{Kind: KindSNAT, Object: strings.Repeat("o", maxObjectLen), Match: pfx("100.100.100.0/24"), Device: "qg-0123456789a", To: ip("100.100.100.100")}
	if n := len(long.userData()); n > 256 {
		t.Errorf("the longest rule has %d bytes of user data, over the kernel's 256", n)
	}
	for _, ud := range [][]byte{
		nil,
		userdata.AppendString(nil, userdata.TypeComment, "dvrflow x"),                       // no spec
		userdata.AppendString(nil, udataSpec, specPrefix+"snat src=10.0.0.0/24 to=1.2.3.4"), // no comment
		append(userdata.AppendString(nil, userdata.TypeComment, "someone x"), userdata.AppendString(nil, udataSpec, specPrefix+"snat src=10.0.0.0/24 to=1.2.3.4")...),
		append(userdata.AppendString(nil, userdata.TypeComment, "dvrflow x"), userdata.AppendString(nil, udataSpec, "dvrflow-nat/2 snat src=10.0.0.0/24 to=1.2.3.4")...),
	} {
		if r, ok := parseUserData(ud); ok {
			t.Errorf("parseUserData(%q) = %v, want not ours", ud, r)
		}
	}
}

func TestParseSpecRefuses(t *testing.T) {
	for _, s := range []string{
		"", "snat", "masq src=10.0.0.0/24 to=1.2.3.4", "snat src=10.0.0.0/24", "snat to=1.2.3.4 src=10.0.0.0/24",
		"snat src=10.0.0.0/24 src=10.0.0.0/24 to=1.2.3.4", "snat src=10.0.0.0/24 in=x to=1.2.3.4",
		"dnat dst=1.2.3.4/32 to=10.0.0.1", "snat src=10.0.0.0/24 to=1.2.3.x", "snat  src=10.0.0.0/24 to=1.2.3.4",
	} {
		if r, err := parseSpec(s); err == nil {
			t.Errorf("parseSpec(%q) = %v, want an error", s, r)
		}
	}
}

// rule builds a Rule from its String form.
func rule(t *testing.T, s string) Rule {
	t.Helper()
	object, spec, _ := strings.Cut(s, ": ")
	r, err := parseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	r.Object = object
	return r
}

func TestDiff(t *testing.T) {
	const (
		dnat1  = "floatingip f1: dnat dst=203.0.113.11 in=rfp-1 to=10.0.0.5"
		dnat2  = "floatingip f2: dnat dst=203.0.113.12 in=rfp-1 to=10.0.0.7"
		snat1  = "floatingip f1: snat src=10.0.0.5/32 out=rfp-1 to=203.0.113.11"
		snat2  = "floatingip f2: snat src=10.0.0.7/32 out=rfp-1 to=203.0.113.12"
		subnet = "router r1: snat src=10.0.0.0/24 out=qg-1 to=203.0.113.1"
	)
	// An installed rule: "chain handle rule" or "chain handle foreign".
	type inst struct {
		chain  string
		handle uint64
		rule   string
	}
	for _, tc := range []struct {
		name      string
		desired   []string
		installed []inst
		// want: deleted handles, additions as "rule < before handle" ("0" = append), flushed.
		deleted []uint64
		added   []string
		flushed []string
	}{
		{
			name:    "empty table",
			desired: []string{dnat1, snat1, subnet},
			added:   []string{dnat1 + " < 0", snat1 + " < 0", subnet + " < 0"},
		},
		{
			name:      "nothing to do",
			desired:   []string{dnat1, snat1, subnet},
			installed: []inst{{PostroutingChain, 5, snat1}, {PostroutingChain, 6, subnet}, {PreroutingChain, 4, dnat1}},
		},
		{
			name:      "a floating IP added before the subnet rule",
			desired:   []string{dnat1, dnat2, snat1, snat2, subnet},
			installed: []inst{{PreroutingChain, 4, dnat1}, {PostroutingChain, 5, snat1}, {PostroutingChain, 6, subnet}},
			added:     []string{dnat2 + " < 0", snat2 + " < 6"},
		},
		{
			name:      "a floating IP removed: its translations are flushed",
			desired:   []string{dnat2, snat2, subnet},
			installed: []inst{{PreroutingChain, 4, dnat1}, {PreroutingChain, 7, dnat2}, {PostroutingChain, 5, snat1}, {PostroutingChain, 8, snat2}, {PostroutingChain, 6, subnet}},
			deleted:   []uint64{4, 5},
			flushed:   []string{dnat1, snat1},
		},
		{
			name:      "everything removed",
			installed: []inst{{PreroutingChain, 4, dnat1}, {PostroutingChain, 5, snat1}},
			deleted:   []uint64{4, 5},
			flushed:   []string{dnat1, snat1},
		},
		{
			name:      "out of order: the longest ordered run stays, the rest moves without a flush",
			desired:   []string{snat1, snat2, subnet},
			installed: []inst{{PostroutingChain, 6, subnet}, {PostroutingChain, 5, snat1}, {PostroutingChain, 8, snat2}},
			deleted:   []uint64{6},
			added:     []string{subnet + " < 0"},
		},
		{
			name:      "foreign rules, duplicates and rules in the wrong chain go",
			desired:   []string{dnat1, subnet},
			installed: []inst{{PreroutingChain, 4, dnat1}, {PreroutingChain, 9, "foreign"}, {PreroutingChain, 10, dnat1}, {PreroutingChain, 11, subnet}, {PostroutingChain, 6, subnet}},
			deleted:   []uint64{9, 10, 11},
		},
		{
			name:      "an object renamed: its translation stays in place, no flush",
			desired:   []string{"floatingip f9: snat src=10.0.0.5/32 out=rfp-1 to=203.0.113.11", subnet},
			installed: []inst{{PostroutingChain, 5, snat1}, {PostroutingChain, 6, subnet}},
			deleted:   []uint64{5},
			added:     []string{"floatingip f9: snat src=10.0.0.5/32 out=rfp-1 to=203.0.113.11 < 6"},
		},
		{
			name:      "a floating IP moved to another fixed IP: the old translation is flushed",
			desired:   []string{"floatingip f1: dnat dst=203.0.113.11 in=rfp-1 to=10.0.0.9"},
			installed: []inst{{PreroutingChain, 4, dnat1}},
			deleted:   []uint64{4},
			added:     []string{"floatingip f1: dnat dst=203.0.113.11 in=rfp-1 to=10.0.0.9 < 0"},
			flushed:   []string{dnat1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var desired []Rule
			for _, s := range tc.desired {
				desired = append(desired, rule(t, s))
			}
			slices.SortFunc(desired, Compare)
			var installed []Installed
			for _, in := range tc.installed {
				i := Installed{Chain: in.chain, Handle: in.handle}
				if in.rule != "foreign" {
					i.Ours, i.Rule = true, rule(t, in.rule)
				}
				installed = append(installed, i)
			}
			p := Diff(desired, installed)
			var deleted []uint64
			for _, d := range p.Delete {
				deleted = append(deleted, d.Handle)
			}
			slices.Sort(deleted)
			var added []string
			for _, a := range p.Add {
				added = append(added, a.Rule.String()+" < "+strconv.FormatUint(a.Before, 10))
			}
			if !slices.Equal(deleted, tc.deleted) {
				t.Errorf("deleted %v, want %v", deleted, tc.deleted)
			}
			if !slices.Equal(added, tc.added) {
				t.Errorf("added:\n%s\nwant:\n%s", strings.Join(added, "\n"), strings.Join(tc.added, "\n"))
			}
			if got := specs(p.Flush); !slices.Equal(got, tc.flushed) {
				t.Errorf("flushed %q, want %q", got, tc.flushed)
			}
		})
	}
}

func TestLongestIncreasing(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want []bool
	}{
		{nil, []bool{}},
		{[]int{0, 1, 2}, []bool{true, true, true}},
		{[]int{2, 0, 1}, []bool{false, true, true}},
		{[]int{1, 2, 0}, []bool{true, true, false}},
		{[]int{3, 2, 1, 0}, []bool{false, false, false, true}},
		{[]int{0, 4, 1, 2, 3}, []bool{true, false, true, true, true}},
	} {
		if got := longestIncreasing(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("longestIncreasing(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
