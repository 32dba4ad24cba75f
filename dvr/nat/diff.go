package nat

import (
	"slices"
	"sort"
	"strings"

	"github.com/google/nftables/userdata"
)

const (
	// commentPrefix starts the comment of every rule we write: "dvrflow <object>".
	commentPrefix = "dvrflow "
	// udataSpec is the private user-data type holding a rule's Spec, prefixed by specPrefix.
	// nft ignores user-data types it does not know (it knows comment, 0, and ebtables
	// policy, 1).
	udataSpec userdata.Type = 100
	// specPrefix versions the content format.
	specPrefix = "dvrflow-nat/1 "
)

// userData is what a rule of ours carries: its object as a comment and its content.
func (r Rule) userData() []byte {
	b := userdata.AppendString(nil, userdata.TypeComment, commentPrefix+r.Object)
	return userdata.AppendString(b, udataSpec, specPrefix+r.Spec())
}

// parseUserData reads back what userData wrote; ok is false for a rule that is not ours
// (no or unreadable user data).
func parseUserData(b []byte) (r Rule, ok bool) {
	comment, ok1 := userdata.GetString(b, userdata.TypeComment)
	spec, ok2 := userdata.GetString(b, udataSpec)
	object, ok3 := strings.CutPrefix(comment, commentPrefix)
	spec, ok4 := strings.CutPrefix(spec, specPrefix)
	if !ok1 || !ok2 || !ok3 || !ok4 || object == "" {
		return Rule{}, false
	}
	r, err := parseSpec(spec)
	if err != nil {
		return Rule{}, false
	}
	r.Object = object
	return r, true
}

// Installed is one rule found in a chain of our table.
type Installed struct {
	Chain  string
	Handle uint64
	// Ours is false for a rule without our user data (someone else's, in our table);
	// Rule is then empty.
	Ours bool
	Rule Rule
}

// Insert is one rule to add: before the installed rule with handle Before, or at the end
// of its chain when Before is 0.
type Insert struct {
	Rule   Rule
	Before uint64
}

// Plan is what makes a table hold the desired rules.
type Plan struct {
	// Delete are the installed rules to remove: not desired, duplicates, someone else's,
	// or out of order.
	Delete []Installed
	// Add are the rules to add, in the order they must be sent (each Before refers to a
	// rule that stays).
	Add []Insert
	// Flush are the removed rules whose translation no desired rule still makes: the
	// conntrack entries they made must go (see [Apply]).
	Flush []Rule
}

// Diff returns what turns installed into desired. desired is as Desired returns it (valid,
// sorted by Compare); installed lists each chain's rules in chain order (chains may come in
// any order, but a chain's rules together or not, their relative order is what counts). A
// desired rule that is installed once, in its chain and in order relative to the others that
// stay, stays; everything else installed goes and every desired rule missing is inserted at
// its place, so that the chains end up holding exactly desired, in order. Where installed
// rules are out of order, the longest run of them that is in order stays and the rest are
// moved (deleted and added again). Pure.
func Diff(desired []Rule, installed []Installed) Plan {
	var p Plan
	index := map[Rule]int{} // desired rule → its position in desired
	for i, r := range desired {
		index[r] = i
	}
	// kept[chain] are the candidates to stay, in chain order: (installed, desired index).
	type cand struct {
		in  Installed
		pos int
	}
	kept := map[string][]cand{}
	seen := map[int]bool{}
	for _, in := range installed {
		pos, ok := index[in.Rule]
		if !in.Ours || !ok || in.Rule.Kind.Chain() != in.Chain || seen[pos] {
			p.Delete = append(p.Delete, in)
			continue
		}
		seen[pos] = true
		kept[in.Chain] = append(kept[in.Chain], cand{in, pos})
	}
	// stays[desired index] is the handle of the installed rule that stays for it.
	stays := map[int]uint64{}
	for _, chain := range sortedKeys(kept) {
		cs := kept[chain]
		pos := make([]int, len(cs))
		for i, c := range cs {
			pos[i] = c.pos
		}
		inOrder := longestIncreasing(pos)
		for i, c := range cs {
			if inOrder[i] {
				stays[c.pos] = c.in.Handle
			} else {
				p.Delete = append(p.Delete, c.in)
			}
		}
	}
	for i, r := range desired {
		if _, ok := stays[i]; ok {
			continue
		}
		var before uint64
		for j := i + 1; j < len(desired) && desired[j].Kind.Chain() == r.Kind.Chain(); j++ {
			if h, ok := stays[j]; ok {
				before = h
				break
			}
		}
		p.Add = append(p.Add, Insert{Rule: r, Before: before})
	}
	p.Flush = flushes(desired, p.Delete)
	return p
}

// flushes returns the rules of ours among deleted whose translation no desired rule makes
// (under another object, or moved, a translation keeps its connections), once each.
func flushes(desired []Rule, deleted []Installed) []Rule {
	translations := map[translation]bool{}
	for _, r := range desired {
		translations[translationOf(r)] = true
	}
	var out []Rule
	for _, in := range deleted {
		t := translationOf(in.Rule)
		if !in.Ours || translations[t] {
			continue
		}
		translations[t] = true
		out = append(out, in.Rule)
	}
	return out
}

// translation is what conntrack remembers of a rule: which addresses it rewrote to what.
type translation struct {
	kind  Kind
	match string
	to    string
}

func translationOf(r Rule) translation {
	return translation{r.Kind, r.Match.String(), r.To.String()}
}

// longestIncreasing marks a longest strictly increasing subsequence of s (patience sorting,
// O(n log n)).
func longestIncreasing(s []int) []bool {
	var tails []int // tails[k]: index in s of the smallest tail of an increasing run of length k+1
	prev := make([]int, len(s))
	for i, v := range s {
		k := sort.Search(len(tails), func(k int) bool { return s[tails[k]] >= v })
		if k > 0 {
			prev[i] = tails[k-1]
		} else {
			prev[i] = -1
		}
		if k == len(tails) {
			tails = append(tails, i)
		} else {
			tails[k] = i
		}
	}
	in := make([]bool, len(s))
	if len(tails) == 0 {
		return in
	}
	for i := tails[len(tails)-1]; i >= 0; i = prev[i] {
		in[i] = true
	}
	return in
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
