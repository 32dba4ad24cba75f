package firewall

import (
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
)

// TestPortRangeMasks checks that the masks of a range match exactly its ports, each one
// once, and that there are as few as the aligned-block cover needs (Neutron's
// port_rule_masking), on Neutron's edge cases, the example and random ranges.
func TestPortRangeMasks(t *testing.T) {
	ranges := [][2]uint16{{1, 1}, {1, 65535}, {0, 65535}, {8000, 8080}, {1, 2}, {2, 3}, {5, 18}, {20, 130},
		{4501, 33057}, {65534, 65535}, {65535, 65535}, {32767, 32768}, {1, 32767}, {32768, 65535}}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		a, b := uint16(r.IntN(65536)), uint16(r.IntN(65536))
		ranges = append(ranges, [2]uint16{min(a, b), max(a, b)})
	}
	for _, rg := range ranges {
		masks := portRangeMasks(rg[0], rg[1])
		for p := 0; p < 65536; p++ {
			n := 0
			for _, m := range masks {
				if uint16(p)&m.Mask == m.Value {
					n++
				}
			}
			in := p >= int(rg[0]) && p <= int(rg[1])
			if (in && n != 1) || (!in && n != 0) {
				t.Fatalf("[%d, %d]: port %d matched by %d of %v", rg[0], rg[1], p, n, masks)
			}
		}
		if want := minimalCover(rg[0], rg[1]); len(masks) != want {
			t.Errorf("[%d, %d]: %d masks, the minimal cover has %d", rg[0], rg[1], len(masks), want)
		}
	}
	got := portRangeMasks(8000, 8080)
	want := []portMask{{0x1f40, 0xffc0}, {0x1f80, 0xfff0}, {8080, 0xffff}}
	if !slices.Equal(got, want) {
		t.Errorf("[8000, 8080] = %v, want Neutron's %v", got, want)
	}
}

// minimalCover counts the blocks of the greedy aligned cover computed independently: per
// bit level, from both ends of the range inwards.
func minimalCover(lo, hi uint16) int {
	l, h := uint32(lo), uint32(hi)+1 // [l, h)
	n := 0
	for l < h {
		bit := uint32(1)
		for l&(bit<<1-1) == 0 && l+bit<<1 <= h && bit < 1<<16 {
			bit <<= 1
		}
		l += bit
		n++
	}
	return n
}

func rule(lo, hi int) *northbound.SecurityGroupRule {
	r := &northbound.SecurityGroupRule{Direction: northbound.Ingress, EtherType: northbound.IPv4,
		Protocol: northbound.ProtocolNumber(northbound.ProtoTCP)}
	if lo != 0 {
		r.PortRangeMin, r.PortRangeMax = &lo, &hi
	}
	return r
}

// TestMergePortRanges runs Neutron's own test vectors for merge_port_ranges
// (neutron/tests/unit/agent/linux/openvswitch_firewall/test_rules.py).
func TestMergePortRanges(t *testing.T) {
	type want struct {
		lo, hi int // 0, 0: no port range
		ids    []uint32
	}
	for _, tc := range []struct {
		name  string
		rules []remoteRule
		want  []want
	}{
		{"overlapping", []remoteRule{{rule(20, 30), 6}, {rule(30, 40), 14}, {rule(35, 40), 22}, {rule(20, 20), 30}},
			[]want{{20, 20, []uint32{6, 30}}, {21, 29, []uint32{6}}, {30, 30, []uint32{6, 14}}, {31, 34, []uint32{14}}, {35, 40, []uint32{14, 22}}}},
		{"no port ranges", []remoteRule{{rule(0, 0), 10}, {rule(0, 0), 12}, {rule(30, 40), 4}},
			[]want{{1, 29, []uint32{10, 12}}, {30, 40, []uint32{4, 10, 12}}, {41, 65535, []uint32{10, 12}}}},
		{"no port ranges, same id", []remoteRule{{rule(0, 0), 10}, {rule(0, 0), 12}, {rule(30, 30), 10}},
			[]want{{0, 0, []uint32{10, 12}}}},
		{"non-overlapping", []remoteRule{{rule(30, 40), 32}, {rule(100, 140), 40}},
			[]want{{30, 40, []uint32{32}}, {100, 140, []uint32{40}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := mergePortRanges(tc.rules)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d clauses, want %d", len(got), len(tc.want))
			}
			for i, w := range tc.want {
				g := got[i]
				switch {
				case w.lo == 0 && g.ports != nil:
					t.Errorf("clause %d has ports %v, want none", i, *g.ports)
				case w.lo != 0 && (g.ports == nil || int(g.ports.Min) != w.lo || int(g.ports.Max) != w.hi):
					t.Errorf("clause %d ports %v, want %d-%d", i, g.ports, w.lo, w.hi)
				}
				if !slices.Equal(g.ids, w.ids) {
					t.Errorf("clause %d ids %v, want %v", i, g.ids, w.ids)
				}
			}
		})
	}
}

// TestPriorityOffset checks Neutron's flow_priority_offset vectors (without the 4 of a plain
// rule, which rules() adds).
func TestPriorityOffset(t *testing.T) {
	zero := 0
	icmp := northbound.ProtocolNumber(northbound.ProtoICMP)
	for _, tc := range []struct {
		r    northbound.SecurityGroupRule
		want uint16
	}{
		{northbound.SecurityGroupRule{}, 0},
		{northbound.SecurityGroupRule{Protocol: icmp}, 1},
		{northbound.SecurityGroupRule{Protocol: icmp, PortRangeMin: &zero}, 2},
		{northbound.SecurityGroupRule{Protocol: northbound.ProtocolNumber(northbound.ProtoIPv6ICMP), PortRangeMin: &zero, PortRangeMax: &zero}, 3},
		{northbound.SecurityGroupRule{Protocol: northbound.ProtocolNumber(northbound.ProtoTCP)}, 3},
		{northbound.SecurityGroupRule{Protocol: northbound.ProtocolNumber(47)}, 3},
	} {
		if got := priorityOffset(&tc.r); got != tc.want {
			t.Errorf("%+v: offset %d, want %d", tc.r, got, tc.want)
		}
	}
}

// TestConjunctionIDs checks the allocation: blocks of eight, never 0, below Neutron's
// MAX_CONJ_ID, distinct, the same whatever the order of the keys, and unchanged for every
// other key when one is added or removed.
func TestConjunctionIDs(t *testing.T) {
	var keys []conjKey
	for i := range 500 {
		keys = append(keys, conjKey{group: string(rune('a' + i%26)), remote: string(rune('A' + i/26)),
			dir: northbound.Ingress, ethertype: northbound.IPv4})
	}
	ids := conjunctionIDs(slices.Clone(keys))
	seen := map[uint32]bool{}
	for k, id := range ids {
		if id == 0 || id%conjBlock != 0 || uint64(id)+7 >= 1<<32-8 || seen[id] {
			t.Fatalf("%v: id %d (zero, unaligned, too large or repeated)", k, id)
		}
		seen[id] = true
	}
	rev := slices.Clone(keys)
	slices.Reverse(rev)
	if again := conjunctionIDs(rev); !maps.Equal(again, ids) {
		t.Error("the ids depend on the order of the keys")
	}
	extra := conjKey{group: "new", remote: "group", dir: northbound.Egress, ethertype: northbound.IPv6}
	more := conjunctionIDs(append(slices.Clone(keys), extra))
	for k, id := range ids {
		if more[k] != id {
			t.Errorf("adding %v renumbered %v: %d → %d", extra, k, id, more[k])
		}
	}
	fewer := conjunctionIDs(slices.Clone(keys[1:]))
	for _, k := range keys[1:] {
		if fewer[k] != ids[k] {
			t.Errorf("removing %v renumbered %v", keys[0], k)
		}
	}
}
