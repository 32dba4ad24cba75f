package flows

import (
	"context"
	"fmt"
)

// Difference is what a bridge holds that differs from its desired flows.
type Difference struct {
	Bridge string
	// Missing are desired flows that are not installed (or installed with another cookie).
	Missing []Flow
	// Differing are desired flows installed with other actions.
	Differing []Flow
	// Extra are flows with our cookie that are installed but not desired.
	Extra []Flow
}

// Empty reports whether the bridge equals the desired set.
func (d Difference) Empty() bool {
	return len(d.Missing) == 0 && len(d.Differing) == 0 && len(d.Extra) == 0
}

// Error describes the difference, one flow per line.
func (d Difference) Error() string {
	s := fmt.Sprintf("bridge %s differs from the desired state: %d missing, %d with other actions, %d stale",
		d.Bridge, len(d.Missing), len(d.Differing), len(d.Extra))
	for _, f := range d.Missing {
		s += "\n  missing: " + f.String()
	}
	for _, f := range d.Differing {
		s += "\n  other actions installed: " + f.String()
	}
	for _, f := range d.Extra {
		s += "\n  stale: " + f.String()
	}
	return s
}

// Verify reads the bridge's flows from the switch itself (not from what this Bridge
// tracked) and compares them with desired, without changing anything. Learned flows and
// foreign flows that no desired flow collides with are ignored.
func (b *Bridge) Verify(ctx context.Context, desired []Flow) (Difference, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d := Difference{Bridge: b.name}
	b.discardPrefetch() // its read is not fresh
	b.installed = nil   // force a fresh read
	if _, err := b.connect(ctx); err != nil {
		return d, err
	}
	inst := b.installed
	want := make(map[Key]bool, len(desired))
	buf := b.scratch[:0]
	defer func() { b.scratch = buf[:0] }()
	for _, f := range desired {
		k := f.Key()
		want[k] = true
		var err error
		if buf, err = f.AppendInstructions(buf[:0]); err != nil {
			return d, fmt.Errorf("bridge %s: encode flow %s: %w", b.name, f, err)
		}
		cur, ok := inst.get(k)
		switch {
		case !ok || cur.cookie != f.Cookie:
			d.Missing = append(d.Missing, f)
		case cur.instructions.Value() != string(buf):
			d.Differing = append(d.Differing, f)
		}
	}
	for k, i := range inst.index {
		if cookie := inst.entries[i].cookie; !want[k] && IsOurs(cookie) {
			d.Extra = append(d.Extra, Flow{Table: k.Table, Priority: k.Priority, Cookie: cookie, Match: Match{oxm: k.Match}})
		}
	}
	Sort(d.Extra)
	return d, nil
}
