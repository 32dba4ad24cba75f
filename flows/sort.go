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
// It gets there without rendering most flows. The text starts with the cookie, so flows
// with different non-zero cookies are ordered by the cookies' hex digits, which numbers
// give: a first sort uses table, priority and cookie only. Only runs of flows with the
// same table, priority and cookie (a port's ARP and ND protection, say) are then told
// apart by text: by their protocol keyword ("arp" < "icmp6") when that suffices, else by
// their rendered match, else by their whole text.
func Sort(fs []Flow) {
	if len(fs) < 2 {
		return
	}
	keys := make([]sortKey, len(fs))
	for i := range fs {
		keys[i] = newSortKey(&fs[i], i)
	}
	sortKeys(keys)
	var items []sortItem // scratch for sortRun
	for start := 0; start < len(keys); {
		end := start + 1
		mixed := false // zero and non-zero cookies in one table and priority
		for end < len(keys) && keys[end].group == keys[start].group {
			mixed = mixed || (keys[end].digits == 0) != (keys[start].digits == 0)
			end++
		}
		if mixed {
			// "cookie=..." against a text without one: only the texts can tell.
			items = sortRun(fs, keys[start:end], items, byFullText)
			start = end
			continue
		}
		for start < end {
			run := start + 1
			for run < end && keys[run].cookie == keys[start].cookie && keys[run].digits == keys[start].digits {
				run++
			}
			if run-start > 1 {
				items = sortRun(fs, keys[start:run], items, byKeyword)
			}
			start = run
		}
	}
	permute(fs, keys)
}

// sortKey is what the first sort knows of a flow without rendering it: table and
// priority (group), the cookie's hex digits as a left-aligned number and a digit count (0
// for no cookie), and the flow's index.
type sortKey struct {
	group  uint32 // table, then priority descending
	digits uint32
	cookie uint64
	idx    int
}

func newSortKey(f *Flow, i int) sortKey {
	k := sortKey{group: uint32(f.Table)<<16 | uint32(^f.Priority), idx: i}
	if f.Cookie != 0 {
		// "cookie=0x<hex>, ...": the first difference is in the hex digits, or one runs
		// out first and its "," sorts before any digit. Comparing (left-aligned digits,
		// digit count) compares the digit strings.
		k.digits = uint32((bits.Len64(f.Cookie) + 3) / 4)
		k.cookie = f.Cookie << (64 - 4*k.digits)
	}
	return k
}

// sortKeys orders keys by group, cookie digits and digit count; equal keys keep their
// index order.
func sortKeys(keys []sortKey) {
	slices.SortFunc(keys, func(a, b sortKey) int {
		return cmp.Or(cmp.Compare(a.group, b.group), cmp.Compare(a.cookie, b.cookie),
			cmp.Compare(a.digits, b.digits), cmp.Compare(a.idx, b.idx))
	})
}

// sortItem is a flow of a run being ordered by text, with the text it is ordered by.
type sortItem struct {
	key  sortKey
	text string
}

// Ways to order a run of flows by text, from the cheapest.
const (
	byKeyword = iota // same table, priority and cookie: the protocol keyword, if enough
	byMatchText
	byFullText
)

// sortRun orders keys (a run of flows with the same table and priority, and unless how
// is byFullText the same cookie) by text. It tries the cheapest text that tells every
// flow of the run apart, and falls back to the whole text. items is scratch space,
// returned for reuse.
func sortRun(fs []Flow, keys []sortKey, items []sortItem, how int) []sortItem {
	items = items[:0]
	for _, k := range keys {
		items = append(items, sortItem{key: k})
	}
	for ; how <= byFullText; how++ {
		for i := range items {
			f := &fs[items[i].key.idx]
			switch how {
			case byKeyword:
				// The text after the cookie: "priority=N," (equal), then the keyword.
				// A keyword that is a prefix of another ("ip", "ipv6") is followed by
				// "," or " ", which sort before any character of a keyword.
				items[i].text = f.Match.keyword()
			case byMatchText:
				// "<match> actions=...": a match that is a prefix of another is followed
				// by a space, which sorts before any character a match text holds.
				var w textWriter
				f.Match.appendText(&w, f.Priority, nil)
				items[i].text = w.String()
			default:
				items[i].text = f.String()
			}
		}
		slices.SortFunc(items, func(a, b sortItem) int {
			return cmp.Or(strings.Compare(a.text, b.text), cmp.Compare(a.key.idx, b.key.idx))
		})
		if how == byFullText || distinctNonEmpty(items) {
			break
		}
	}
	for i := range items {
		keys[i] = items[i].key
	}
	return items
}

// distinctNonEmpty reports whether every item of a run sorted by text has a text and no
// two are equal.
func distinctNonEmpty(items []sortItem) bool {
	for i := range items {
		if items[i].text == "" || i > 0 && items[i].text == items[i-1].text {
			return false
		}
	}
	return true
}

// permute reorders fs so that fs[i] is the flow keys[i] names.
func permute(fs []Flow, keys []sortKey) {
	sorted := make([]Flow, len(fs))
	for i, k := range keys {
		sorted[i] = fs[k.idx]
	}
	copy(fs, sorted)
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
