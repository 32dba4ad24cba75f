package flows

import (
	"cmp"
	"math/bits"
	"slices"
	"strings"
)

// Sort orders flows like the scenario dumps: by table, priority (highest first), then
// text (as Flow.String renders it); flows with equal text keep their order.
//
// It gets there without rendering most flows: the text of a flow starts with its cookie,
// so two flows with different non-zero cookies are ordered by the cookies' hex digits.
// Only flows of one table, priority and cookie (a port's ARP and ND protection, say) are
// told apart by text, and then by their match's text first, rendered once per flow.
func Sort(fs []Flow) {
	if len(fs) < 2 {
		return
	}
	s := flowSorter{fs: fs, match: make([]string, len(fs)), full: make([]string, len(fs))}
	order := make([]sortKey, len(fs))
	for i := range fs {
		f := &fs[i]
		k := sortKey{idx: int32(i), table: f.Table, prio: f.Priority}
		if f.Cookie != 0 {
			// Left-align the hex digits: comparing (aligned, digits) compares the digit
			// strings.
			k.digits = uint8((bits.Len64(f.Cookie) + 3) / 4)
			k.cookie = f.Cookie << (64 - 4*uint(k.digits))
		}
		order[i] = k
	}
	slices.SortFunc(order, s.compare)
	sorted := make([]Flow, len(fs))
	for i, k := range order {
		sorted[i] = fs[k.idx]
	}
	copy(fs, sorted)
}

// sortKey is what the sort knows of a flow without rendering it: table, priority, and the
// cookie's hex digits as a left-aligned number and a digit count (0 for no cookie).
type sortKey struct {
	cookie uint64
	idx    int32
	prio   uint16
	table  uint8
	digits uint8
}

// flowSorter renders the flows' texts lazily, for flows the keys do not tell apart.
type flowSorter struct {
	fs []Flow
	// match and full cache the rendered match (with priority) and the whole flow, "" when
	// not rendered yet (a rendered match can be empty: then full is consulted).
	match, full []string
	arena       textWriter
}

func (s *flowSorter) compare(a, b sortKey) int {
	if c := cmp.Compare(a.table, b.table); c != 0 {
		return c
	}
	if c := cmp.Compare(b.prio, a.prio); c != 0 {
		return c
	}
	if c := s.compareText(a, b); c != 0 {
		return c
	}
	return cmp.Compare(a.idx, b.idx) // equal texts keep their order
}

// compareText compares the rendered texts of two flows with the same table and priority.
func (s *flowSorter) compareText(a, b sortKey) int {
	if a.cookie != b.cookie || a.digits != b.digits {
		if a.digits != 0 && b.digits != 0 {
			// "cookie=0x<hex>, ...": the first difference is in the hex digits, or one
			// runs out first and its "," sorts before any digit.
			return cmp.Or(cmp.Compare(a.cookie, b.cookie), cmp.Compare(a.digits, b.digits))
		}
		return strings.Compare(s.fullText(a.idx), s.fullText(b.idx))
	}
	// Same cookie, table and priority: the texts share everything before the match.
	ma, mb := s.matchText(a.idx), s.matchText(b.idx)
	if ma != mb && ma != "" && mb != "" {
		// "<match> actions=...": a match that is a prefix of the other is followed by a
		// space, which sorts before any character a match text holds.
		return strings.Compare(ma, mb)
	}
	return strings.Compare(s.fullText(a.idx), s.fullText(b.idx))
}

func (s *flowSorter) matchText(i int32) string {
	if s.match[i] == "" {
		start := len(s.arena.buf)
		s.fs[i].Match.appendText(&s.arena, s.fs[i].Priority, nil)
		s.match[i] = s.arenaString(start)
	}
	return s.match[i]
}

func (s *flowSorter) fullText(i int32) string {
	if s.full[i] == "" {
		s.full[i] = s.fs[i].String()
	}
	return s.full[i]
}

// arenaString returns the arena's bytes from start as a string. The arena grows by
// reallocation, so the bytes are copied out of it once they are complete.
func (s *flowSorter) arenaString(start int) string {
	str := string(s.arena.buf[start:])
	s.arena.buf = s.arena.buf[:start]
	return str
}

func keyLess(a, b Key) bool {
	if a.Table != b.Table {
		return a.Table < b.Table
	}
	if a.Priority != b.Priority {
		return a.Priority > b.Priority
	}
	return a.Match < b.Match
}
