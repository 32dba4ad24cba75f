package flows

import (
	"math/rand/v2"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
)

// referenceSort is the definition Sort must equal: table, priority (highest first), then
// the rendered text; equal texts keep their order.
func referenceSort(fs []Flow) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if a.Table != b.Table {
			return a.Table < b.Table
		}
		if a.Priority != b.Priority {
			return a.Priority > b.Priority
		}
		return a.String() < b.String()
	})
}

// sortCases are flow sets whose dump order hinges on every part of the text: cookies of
// different lengths, zero and equal cookies, matches that are prefixes of each other, an
// empty match at the default priority, equal matches with different actions, and flows
// whose whole text is equal.
func sortCases() [][]Flow {
	rng := rand.New(rand.NewPCG(1, 2))
	cookies := []uint64{0, 0x1, 0x10, 0x1a, 0xf, 0x100, OwnerMark | 5, OwnerMark | 0x50, Cookie(CategoryPort, "a"), Cookie(CategorySpoofing, "a")}
	matches := []Match{
		{},
		Match{}.InPort(1),
		Match{}.InPort(10),
		Match{}.InPort(1).ARP(),
		Match{}.InPort(1).ICMPv6().ICMPType(136),
		Match{}.InPort(1).ICMPv6().ICMPType(136).NDTarget(netip.MustParsePrefix("fe80::1/128")),
		Match{}.InPort(1).ARP().ARPSPA(netip.MustParsePrefix("10.0.0.1/32")),
		Match{}.InPort(1).ARP().ARPSPA(netip.MustParsePrefix("10.0.0.10/32")),
		Match{}.ARP(),
		Match{}.IPv4(),
		Match{}.IPv6(),
		Match{}.VLAN(1),
		Match{}.VLAN(10).EthDst(mac("fa:16:3e:00:00:01")),
		Match{}.Untagged(),
		// Printed before the protocol keyword: the keyword alone does not order these.
		Match{}.CTState(CTTrk, 0),
		Match{}.CTState(CTEst, CTRel).IPv4(),
		Match{}.CTState(CTEst, CTRel).ICMPv4(),
		Match{}.ConjID(3).IPv4(),
		Match{}.CTMark(1).ARP(),
		Match{}.IPv6().CTZone(2),
	}
	actions := [][]Action{nil, {GotoTable{Table: 25}}, {Normal()}, {Output{Port: 2}}, {PopVLAN{}, Output{Port: 10}}}
	var cases [][]Flow
	cases = append(cases, everyKind(0), everyKind(OwnerMark|0xabc))
	for n := range 40 {
		var fs []Flow
		for range 60 + n*5 {
			fs = append(fs, Flow{
				Table:    uint8(rng.IntN(3)),
				Priority: []uint16{0x8000, 2, 10, 65535}[rng.IntN(4)],
				Cookie:   cookies[rng.IntN(len(cookies))],
				Match:    matches[rng.IntN(len(matches))],
				Actions:  actions[rng.IntN(len(actions))],
			})
		}
		cases = append(cases, fs)
	}
	return cases
}

func TestSortEqualsTextOrder(t *testing.T) {
	for i, fs := range sortCases() {
		want := slices.Clone(fs)
		referenceSort(want)
		got := slices.Clone(fs)
		Sort(got)
		for j := range want {
			// Compare identity, not just text: equal texts must keep their order.
			if got[j].String() != want[j].String() || got[j].Match != want[j].Match || len(got[j].Actions) != len(want[j].Actions) {
				t.Fatalf("case %d: position %d is\n  %s\nwant\n  %s\nwhole order:\n%s", i, j, got[j], want[j], texts(got))
			}
		}
	}
}

// Sort keeps the order of flows whose text is equal (here: the same flow twice, and an
// NXM and an OXM in_port match, which render alike).
func TestSortIsStable(t *testing.T) {
	a := Flow{Table: 0, Priority: 5, Cookie: 7, Match: Match{}.InPort(3), Actions: []Action{Output{Port: 1}}}
	b := a
	b.Match = Match{}.with(FieldNXMInPort, []byte{0, 3}, nil)
	if a.String() != b.String() {
		t.Fatalf("the NXM and OXM in_port matches render differently: %s / %s", a, b)
	}
	for _, in := range [][]Flow{{a, b}, {b, a}} {
		got := slices.Clone(in)
		Sort(got)
		if got[0].Match != in[0].Match || got[1].Match != in[1].Match {
			t.Errorf("equal texts were reordered")
		}
	}
}

func texts(fs []Flow) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString("  " + f.String() + "\n")
	}
	return b.String()
}
