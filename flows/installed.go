package flows

import (
	"fmt"
	"slices"
	"sort"
	"unique"
)

// installedSet is what a Bridge knows to be installed on its switch: per (table, priority,
// match) the cookie and the encoded instructions. It is built for 100,000 flows: a map from
// the key to a dense entry, instruction lists interned (a switch holds many identical ones,
// and a handle compares as one word), and no per-flow pointers but the match.
type installedSet struct {
	index   map[Key]int32
	entries []installedFlow
	free    []int32 // indices of entries removed, reused first
	ours    int     // entries whose cookie carries OwnerMark
	// epoch numbers the diffs: an entry matched by a desired flow in the current diff has
	// seen == epoch.
	epoch uint32
}

type installedFlow struct {
	cookie       uint64
	instructions unique.Handle[string]
	seen         uint32 // the epoch of the last diff that desired this flow
	desired      int32  // that diff's index of the desired flow
}

func newInstalledSet(capacity int) *installedSet {
	return &installedSet{index: make(map[Key]int32, capacity), entries: make([]installedFlow, 0, capacity)}
}

// Len is the number of flows installed.
func (s *installedSet) Len() int { return len(s.index) }

func (s *installedSet) get(k Key) (*installedFlow, bool) {
	i, ok := s.index[k]
	if !ok {
		return nil, false
	}
	return &s.entries[i], true
}

// put records that k is installed with cookie and instructions.
func (s *installedSet) put(k Key, cookie uint64, instructions unique.Handle[string]) {
	if e, ok := s.get(k); ok {
		if IsOurs(e.cookie) {
			s.ours--
		}
		e.cookie, e.instructions = cookie, instructions
	} else {
		var i int32
		if n := len(s.free); n > 0 {
			i, s.free = s.free[n-1], s.free[:n-1]
		} else {
			i = int32(len(s.entries))
			s.entries = append(s.entries, installedFlow{})
		}
		s.entries[i] = installedFlow{cookie: cookie, instructions: instructions}
		s.index[k] = i
	}
	if IsOurs(cookie) {
		s.ours++
	}
}

// remove records that k is no longer installed.
func (s *installedSet) remove(k Key) {
	i, ok := s.index[k]
	if !ok {
		return
	}
	if IsOurs(s.entries[i].cookie) {
		s.ours--
	}
	s.entries[i] = installedFlow{}
	s.free = append(s.free, i)
	delete(s.index, k)
}

// compact drops the spare capacity the entries grew with while a read appended 100,000
// of them one by one.
func (s *installedSet) compact() {
	if cap(s.entries) > len(s.entries)+len(s.entries)/8 {
		s.entries = slices.Clone(s.entries)
	}
}

// internInstructions returns the handle of an encoded instruction list.
func internInstructions(b []byte) unique.Handle[string] { return unique.Make(string(b)) }

// op is one flow-mod a Sync sends.
type op struct {
	flow   Flow
	cmd    uint8
	instr  string // encoded instructions (not for deletes)
	kind   int    // 0 add, 1 modify, 2 delete
	oldCk  uint64
	hasOld bool
}

// plan compares desired with what is installed and returns the flow-mods that make the
// switch equal to desired — adds (of missing flows, and of flows installed with another
// cookie, which they replace), strict modifies (of our flows whose instructions differ)
// in desired order, then strict deletes of our flows that are not desired, by key — and
// the number of desired flows already installed as they are. It fails when desired holds
// two flows with the same key or a flow that cannot be encoded. scratch is a reusable
// encoding buffer.
//
// Every desired flow's instructions are encoded (into scratch: no allocation) and
// compared with the installed bytes; installed flows are only walked when some of ours
// were not desired.
func (s *installedSet) plan(bridge string, desired []Flow, scratch *[]byte) (ops []op, unchanged int, err error) {
	s.epoch++
	if s.epoch == 0 { // wrapped: forget every old mark
		for i := range s.entries {
			s.entries[i].seen = 0
		}
		s.epoch = 1
	}
	var missing map[Key]int // desired flows not installed, to find duplicates among them
	desiredOurs := 0
	buf := (*scratch)[:0]
	defer func() { *scratch = buf[:0] }()
	for i := range desired {
		f := &desired[i]
		k := f.Key()
		buf, err = f.AppendInstructions(buf[:0])
		if err != nil {
			return nil, 0, fmt.Errorf("bridge %s: encode flow %s: %w", bridge, f, err)
		}
		cur, ok := s.get(k)
		if !ok {
			if missing == nil {
				missing = map[Key]int{}
			}
			if j, dup := missing[k]; dup {
				return nil, 0, duplicateError(bridge, desired[j], *f)
			}
			missing[k] = i
			ops = append(ops, op{flow: *f, cmd: CommandAdd, instr: string(buf), kind: 0})
			continue
		}
		if cur.seen == s.epoch {
			return nil, 0, duplicateError(bridge, desired[cur.desired], *f)
		}
		cur.seen, cur.desired = s.epoch, int32(i)
		if IsOurs(cur.cookie) {
			desiredOurs++
		}
		switch {
		case cur.cookie != f.Cookie:
			ops = append(ops, op{flow: *f, cmd: CommandAdd, instr: string(buf), kind: 0, oldCk: cur.cookie, hasOld: true})
		case cur.instructions.Value() != string(buf):
			ops = append(ops, op{flow: *f, cmd: CommandModifyStrict, instr: string(buf), kind: 1})
		default:
			unchanged++
		}
	}
	if desiredOurs == s.ours {
		return ops, unchanged, nil
	}
	var stale []Key
	for k, i := range s.index {
		if e := &s.entries[i]; e.seen != s.epoch && IsOurs(e.cookie) {
			stale = append(stale, k)
		}
	}
	sort.Slice(stale, func(i, j int) bool { return keyLess(stale[i], stale[j]) })
	for _, k := range stale {
		f := Flow{Table: k.Table, Priority: k.Priority, Cookie: s.entries[s.index[k]].cookie, Match: Match{oxm: k.Match}}
		ops = append(ops, op{flow: f, cmd: CommandDeleteStrict, kind: 2})
	}
	return ops, unchanged, nil
}

func duplicateError(bridge string, a, b Flow) error {
	return fmt.Errorf("bridge %s: two desired flows with the same table, priority and match:\n  %s\n  %s", bridge, a, b)
}

// apply records that the switch committed ops.
func (s *installedSet) apply(ops []op) {
	for _, o := range ops {
		k := o.flow.Key()
		if o.kind == 2 {
			s.remove(k)
			continue
		}
		s.put(k, o.flow.Cookie, unique.Make(o.instr))
	}
}
