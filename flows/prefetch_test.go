package flows

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/sandbox"
)

// waitPrefetched waits until b's pending prefetch has finished (successfully or not).
func waitPrefetched(t *testing.T, b *Bridge) {
	t.Helper()
	b.mu.Lock()
	p := b.pre
	b.mu.Unlock()
	if p == nil {
		t.Fatal("no prefetch pending")
	}
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatal("prefetch did not finish")
	}
}

// flowSpec is a flow's table, priority and match as ovs-ofctl --strict takes them.
func flowSpec(f Flow) string {
	f.Cookie = 0
	s := f.String()
	s = s[:len(s)-len(" actions="+f.ActionsString(nil))]
	if f.Table == 0 {
		s = "table=0," + s // rendered without it, and without it del-flows spans every table
	}
	return s
}

// delFlow deletes one flow by hand, as an operator would.
func delFlow(t *testing.T, h *sandbox.Host, f Flow) {
	t.Helper()
	if _, err := h.Ofctl(context.Background(), "-O", "OpenFlow13", "--strict", "del-flows", "br0", flowSpec(f)); err != nil {
		t.Fatal(err)
	}
}

// A Sync after a Prefetch sends exactly the flow-mods a Sync with its own read would (the
// switch then holds the desired set), and reads nothing itself: the write path read the
// switch once, in the prefetch, and a change made behind its back after the prefetch is
// not seen by the Sync (see TestFlowChangedAfterPrefetch for what that means).
func TestPrefetchedSync(t *testing.T) {
	h, old := testBridge(t)
	ctx := context.Background()
	cookie := Cookie(CategoryTest, "prefetch")
	fs := manyFlows(400, cookie)
	if _, err := old.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	_ = old.Close()
	// The next desired set: 10 flows gone, 3 with other actions, 20 new ones.
	next := append([]Flow(nil), fs[:390]...)
	modified := map[Key]bool{}
	for _, i := range []int{4, 77, 201} {
		next[i].Actions = []Action{Output{Port: 2}}
		modified[next[i].Key()] = true
	}
	next = append(next, manyFlows(420, cookie)[400:]...)

	b := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
	defer b.Close()
	b.Prefetch(ctx)
	b.Prefetch(ctx) // a second call while one is pending changes nothing
	waitPrefetched(t, b)
	if n := b.Reads(); n != 1 {
		t.Fatalf("after the prefetch: %d reads of the switch, want 1", n)
	}
	res, err := b.Sync(ctx, next)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Read || !res.Prefetched {
		t.Fatalf("sync after a prefetch: read %v, prefetched %v; want both", res.Read, res.Prefetched)
	}
	if len(res.Added) != 20 || len(res.Modified) != 3 || len(res.Deleted) != 10 || res.Unchanged != 387 {
		t.Fatalf("sync after a prefetch: %s, want +20 ~3 -10 =387", res)
	}
	for _, c := range res.Modified {
		if !modified[c.Flow.Key()] {
			t.Errorf("modified a flow whose actions did not change: %s", c.Flow)
		}
	}
	sameLines(t, "after the prefetched sync", dump(t, h), rendered(next))
	if n := b.Reads(); n != 1 {
		t.Fatalf("the prefetched sync read the switch again: %d reads, want 1", n)
	}
	b.Prefetch(ctx) // connected: a no-op
	again, err := b.Sync(ctx, next)
	if err != nil || again.FlowMods() != 0 || again.Read || again.Prefetched || b.Reads() != 1 {
		t.Fatalf("re-sync: %s (read %v, prefetched %v, %d reads), %v; want nothing sent or read", again, again.Read, again.Prefetched, b.Reads(), err)
	}
}

// A prefetch that cannot be used leaves the first Sync to connect and read as it would
// without one, quietly: no management socket yet (the bridge is created afterwards), a
// connection closed since (the bridge re-created, so its flows are gone), a read older than
// the limit, a Reset in between.
func TestPrefetchFallsBack(t *testing.T) {
	ctx := context.Background()
	cookie := Cookie(CategoryTest, "fallback")
	fs := manyFlows(100, cookie)
	h, installer := testBridge(t)
	if _, err := installer.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	_ = installer.Close()
	addBr0 := func(t *testing.T) {
		t.Helper()
		if _, err := h.Vsctl(ctx, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev",
			"fail_mode=secure", "protocols=OpenFlow10,OpenFlow13"); err != nil {
			t.Fatal(err)
		}
	}
	delBr0 := func(t *testing.T) {
		t.Helper()
		if _, err := h.Vsctl(ctx, "del-br", "br0"); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		// between runs between the prefetch and the Sync.
		between func(t *testing.T, b *Bridge)
		// before runs before the prefetch.
		before func(t *testing.T)
		// wantAdded is what the Sync must add: the whole set when the switch lost it.
		wantAdded int
		// wantReads is how many complete reads the write path made (-1: not checked).
		wantReads int
	}{
		{
			name:   "no socket",
			before: func(t *testing.T) { delBr0(t) },
			between: func(t *testing.T, b *Bridge) {
				waitPrefetched(t, b)
				addBr0(t)
			},
			wantAdded: len(fs), wantReads: 1,
		},
		{
			name: "bridge re-created",
			between: func(t *testing.T, b *Bridge) {
				waitPrefetched(t, b)
				delBr0(t)
				addBr0(t)
			},
			wantAdded: len(fs), wantReads: 2,
		},
		{
			name: "too old",
			between: func(t *testing.T, b *Bridge) {
				waitPrefetched(t, b)
				b.mu.Lock()
				b.prefetchMaxAge = time.Millisecond
				b.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			},
			wantAdded: 0, wantReads: 2,
		},
		{
			name:      "reset",
			between:   func(t *testing.T, b *Bridge) { b.Reset() },
			wantAdded: 0, wantReads: -1, // the reset may have cut the read short
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.before != nil {
				tt.before(t)
			}
			b := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
			defer b.Close()
			b.Prefetch(ctx)
			tt.between(t, b)
			var res SyncResult
			var err error
			for range 50 { // a bridge just added: its socket may not be there yet
				if res, err = b.Sync(ctx, fs); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatal(err)
			}
			if !res.Read || res.Prefetched || len(res.Added) != tt.wantAdded || res.FlowMods() != tt.wantAdded {
				t.Fatalf("sync: %s (read %v, prefetched %v); want read, not prefetched, %d added", res, res.Read, res.Prefetched, tt.wantAdded)
			}
			if tt.wantReads >= 0 && b.Reads() != tt.wantReads {
				t.Fatalf("%d complete reads of the switch, want %d", b.Reads(), tt.wantReads)
			}
			sameLines(t, "after the sync", dump(t, h), rendered(fs))
		})
	}
}

// A flow deleted by hand before the prefetch is restored by the first Sync (the bench's
// "one flow deleted before the restart → exactly 1 flow-mod"). One deleted after the
// prefetch is not: the prefetched read is the switch as it was when read, as a Sync's own
// read is the switch as it was just before its bundle, and from that moment on only the
// write path is assumed to write the switch. Verify, which always reads afresh, reports the
// flow missing, and the next read (after a Reset, as after a reconnect) restores it.
func TestFlowChangedAfterPrefetch(t *testing.T) {
	h, installer := testBridge(t)
	ctx := context.Background()
	fs := manyFlows(100, Cookie(CategoryTest, "by-hand"))
	if _, err := installer.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	_ = installer.Close()

	delFlow(t, h, fs[10]) // before the prefetch
	b := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
	defer b.Close()
	b.Prefetch(ctx)
	waitPrefetched(t, b)
	delFlow(t, h, fs[20]) // after it

	res, err := b.Sync(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Prefetched || len(res.Added) != 1 || res.FlowMods() != 1 || res.Added[0].Flow.Key() != fs[10].Key() {
		t.Fatalf("sync after the prefetch: %s (prefetched %v); want exactly the flow deleted before the prefetch re-added", res, res.Prefetched)
	}
	d, err := b.Verify(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Missing) != 1 || d.Missing[0].Key() != fs[20].Key() || len(d.Differing) != 0 || len(d.Extra) != 0 {
		t.Fatalf("Verify: %v; want exactly the flow deleted after the prefetch missing", d)
	}
	// Verify's fresh read is now what the write path knows: the next Sync restores it.
	res, err = b.Sync(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if res.FlowMods() != 1 || len(res.Added) != 1 || res.Added[0].Flow.Key() != fs[20].Key() {
		t.Fatalf("sync after Verify: %s; want the flow deleted after the prefetch re-added", res)
	}
	sameLines(t, "after restoring", dump(t, h), rendered(fs))
}

// Prefetch, Sync, Reset, Installed and Close from many goroutines at once (run with -race):
// every Sync succeeds and the switch ends up with the desired set.
func TestPrefetchConcurrent(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	fs := manyFlows(200, Cookie(CategoryTest, "concurrent"))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 6 {
				switch (i + j) % 4 {
				case 0:
					b.Prefetch(ctx)
				case 1:
					if _, err := b.Sync(ctx, fs); err != nil {
						errs <- err
					}
				case 2:
					b.Reset()
					b.Prefetch(ctx)
				case 3:
					_ = b.Installed()
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	got := dump(t, h)
	want := rendered(fs)
	sort.Strings(want)
	sameLines(t, "after concurrent use", got, want)
	// A prefetch pending at Close is cancelled and its connection closed.
	b.Reset()
	b.Prefetch(ctx)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b.mu.Lock()
	pending := b.pre
	b.mu.Unlock()
	if pending != nil {
		t.Fatal("Close left a prefetch pending")
	}
}

// Verify reads the switch afresh even when a prefetch is pending: a flow deleted after the
// prefetch is reported missing.
func TestVerifyIgnoresPrefetch(t *testing.T) {
	h, installer := testBridge(t)
	ctx := context.Background()
	fs := manyFlows(50, Cookie(CategoryTest, "verify-prefetch"))
	if _, err := installer.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	_ = installer.Close()
	b := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
	defer b.Close()
	b.Prefetch(ctx)
	waitPrefetched(t, b)
	delFlow(t, h, fs[30])
	d, err := b.Verify(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Missing) != 1 || d.Missing[0].Key() != fs[30].Key() || b.Reads() != 2 {
		t.Fatalf("Verify with a prefetch pending: %v, %d reads; want fs[30] missing from a second read", d, b.Reads())
	}
}
