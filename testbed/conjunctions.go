package testbed

import (
	"fmt"
	"hash/fnv"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var (
	conjActionRe = regexp.MustCompile(`conjunction\((\d+),(\d)/2\)`)
	conjIDRe     = regexp.MustCompile(`conj_id=(\d+)`)
	reg7Re       = regexp.MustCompile(`set_field:0x([0-9a-f]+)->reg7`)
)

// NormaliseConjunctions replaces the conjunction ids of firewall flows (ovs-ofctl text:
// conjunction(ID,k/2), conj_id=ID, and set_field:0xID->reg7, which records the
// conjunction), which Neutron and dvrflow allocate differently (docs/neutron-differences.md),
// by what they stand for. A block of eight ids (id &^ 7: one security group, remote group,
// direction and ethertype) is named by its signature, a hash of the sorted texts (ids
// blanked) of every flow that uses an id of the block, each with the id's place in the
// block; a flow's conjunction actions are then sorted. Two dumps whose firewalls are the
// same normalise to the same lines, whatever their numbers.
func NormaliseConjunctions(lines []string) []string {
	ids := func(l string) []uint64 {
		var out []uint64
		for _, m := range conjActionRe.FindAllStringSubmatch(l, -1) {
			v, _ := strconv.ParseUint(m[1], 10, 32)
			out = append(out, v)
		}
		if m := conjIDRe.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 32)
			out = append(out, v)
		}
		return out
	}
	blank := func(l string) string {
		l = conjActionRe.ReplaceAllString(l, "conjunction(X,$2/2)")
		l = conjIDRe.ReplaceAllString(l, "conj_id=X")
		return reg7Re.ReplaceAllString(l, "set_field:X->reg7")
	}
	sig := map[uint64][]string{}
	for _, l := range lines {
		for _, id := range ids(l) {
			sig[id&^7] = append(sig[id&^7], strconv.FormatUint(id&7, 10)+"|"+blank(l))
		}
	}
	names := map[uint64]string{}
	for _, block := range slices.Sorted(maps.Keys(sig)) {
		s := sig[block]
		slices.Sort(s)
		h := fnv.New32a()
		h.Write([]byte(strings.Join(slices.Compact(s), "\n")))
		names[block] = fmt.Sprintf("C%08x", h.Sum32())
	}
	name := func(id uint64) string { return names[id&^7] + "+" + strconv.FormatUint(id&7, 10) }
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		l = conjIDRe.ReplaceAllStringFunc(l, func(s string) string {
			v, _ := strconv.ParseUint(strings.TrimPrefix(s, "conj_id="), 10, 32)
			return "conj_id=" + name(v)
		})
		l = reg7Re.ReplaceAllStringFunc(l, func(s string) string {
			v, _ := strconv.ParseUint(reg7Re.FindStringSubmatch(s)[1], 16, 32)
			return "set_field:" + name(v) + "->reg7"
		})
		if acts := conjActionRe.FindAllStringSubmatch(l, -1); len(acts) > 0 {
			var named []string
			for _, m := range acts {
				v, _ := strconv.ParseUint(m[1], 10, 32)
				named = append(named, "conjunction("+name(v)+","+m[2]+"/2)")
			}
			slices.Sort(named)
			i := strings.Index(l, "actions=")
			l = l[:i] + "actions=" + strings.Join(named, ",")
		}
		out = append(out, l)
	}
	return out
}
