package flows

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"
)

// Changes made by another client are learnt from the flow monitor and repaired by the next
// Sync without reading every flow again: a flow of ours deleted is added back, one
// modified is restored, a foreign flow on one of our keys is replaced; a foreign flow that
// collides with nothing stays, and so does a learned flow (one with a timeout).
func TestForeignChangesAreRepairedWithoutARead(t *testing.T) {
	h, b := testBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs := manyFlows(100, Cookie(CategoryTest, "repair"))
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitMonitor(ctx); err != nil { // started after the first Sync
		t.Fatal(err)
	}
	reads := b.Reads()
	victim, modified, taken := fs[10], fs[20], fs[30]
	ofctl := func(args ...string) {
		t.Helper()
		if _, err := h.Ofctl(ctx, append([]string{"-O", "OpenFlow13"}, args...)...); err != nil {
			t.Fatal(err)
		}
	}
	strictKey := func(f Flow) string {
		s := f.String()
		s = s[:strings.Index(s, " actions=")]
		return strings.TrimPrefix(s, s[:strings.Index(s, "table=")])
	}
	ofctl("--strict", "del-flows", "br0", strictKey(victim))
	ofctl("--strict", "mod-flows", "br0", strictKey(modified)+",actions=output:3")
	ofctl("add-flow", "br0", "cookie=0x77,"+strictKey(taken)+",actions=output:2")
	foreign := "cookie=0x99, table=60, priority=77,in_port=3 actions=drop"
	ofctl("add-flow", "br0", foreign)
	ofctl("add-flow", "br0", "cookie=0x98,table=20,priority=1,hard_timeout=300,dl_dst=fa:16:3e:00:00:01,actions=output:1")

	// Four changes are reported; the learned flow is not. Wait until all are queued.
	for deadline := time.Now().Add(5 * time.Second); ; {
		b.foreign.mu.Lock()
		n := len(b.foreign.changes)
		b.foreign.mu.Unlock()
		if n == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d foreign changes queued, want 4", n)
		}
		select {
		case <-b.Changed():
		case <-time.After(100 * time.Millisecond):
		}
	}
	res, err := b.Sync(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if res.Read || b.Reads() != reads {
		t.Errorf("the repair read every flow again (%d reads, was %d)", b.Reads(), reads)
	}
	if res.Foreign != 4 {
		t.Errorf("Foreign = %d, want 4", res.Foreign)
	}
	var added, mods []string
	for _, c := range res.Added {
		added = append(added, c.Flow.String())
	}
	for _, c := range res.Modified {
		mods = append(mods, c.Flow.String())
	}
	sort.Strings(added)
	wantAdded := []string{victim.String(), taken.String()}
	sort.Strings(wantAdded)
	if strings.Join(added, "\n") != strings.Join(wantAdded, "\n") || len(mods) != 1 || mods[0] != modified.String() || len(res.Deleted) != 0 {
		t.Errorf("repair: added %q, modified %q, deleted %d; want added %q, modified [%s]", added, mods, len(res.Deleted), wantAdded, modified)
	}
	got := dump(t, h)
	want := append(rendered(fs), foreign)
	var learned []string
	kept := got[:0]
	for _, l := range got {
		if strings.Contains(l, "table=20, hard_timeout=300") {
			learned = append(learned, l)
			continue
		}
		kept = append(kept, l)
	}
	sort.Strings(want)
	sameLines(t, "after the repair", kept, want)
	if len(learned) != 1 {
		t.Errorf("the learned flow is gone or doubled: %q", learned)
	}
}

// When the switch paused the monitor (updates were lost), the next Sync reads every flow
// again instead of trusting what it tracked.
func TestLostUpdatesForceAFullRead(t *testing.T) {
	_, b := testBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	fs := manyFlows(10, Cookie(CategoryTest, "paused"))
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if err := b.WaitMonitor(ctx); err != nil {
		t.Fatal(err)
	}
	res, err := b.Sync(ctx, fs)
	if err != nil || res.Read {
		t.Fatalf("a Sync with nothing lost read every flow again (%v, %v)", res.Read, err)
	}
	reads := b.Reads()
	b.foreign.mu.Lock()
	b.foreign.lost = true // as the monitor's pause notice sets it
	b.foreign.mu.Unlock()
	if res, err = b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if !res.Read || b.Reads() != reads+1 {
		t.Errorf("after lost updates: Read %v, reads %d (was %d), want a full read", res.Read, b.Reads(), reads)
	}
}
