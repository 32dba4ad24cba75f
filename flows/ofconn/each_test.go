package ofconn

import (
	"bytes"
	"errors"
	"testing"
)

// EachFlowStat hands over exactly the entries FlowStats returns, in the same order, across
// many reply messages; an error of fn stops the calls and is returned, and the connection
// stays usable.
func TestEachFlowStatMatchesFlowStats(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	const n = 5000 // several multipart reply messages
	if err := c.Bundle(ctx, ipFlows(n, 0x30)); err != nil {
		t.Fatal(err)
	}
	want, err := c.FlowStats(ctx, TableAll, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []FlowStat
	err = c.EachFlowStat(ctx, TableAll, 0, 0, func(fs *FlowStat) error {
		cp := *fs
		cp.Match = bytes.Clone(fs.Match)
		cp.Instructions = bytes.Clone(fs.Instructions)
		got = append(got, cp)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n || len(want) != n {
		t.Fatalf("EachFlowStat gave %d flows, FlowStats %d, want %d", len(got), len(want), n)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.TableID != w.TableID || g.Priority != w.Priority || g.Cookie != w.Cookie ||
			!bytes.Equal(g.Match, w.Match) || !bytes.Equal(g.Instructions, w.Instructions) {
			t.Fatalf("entry %d: EachFlowStat %+v, FlowStats %+v", i, g, w)
		}
	}

	stop := errors.New("enough")
	calls := 0
	err = c.EachFlowStat(ctx, TableAll, 0, 0, func(*FlowStat) error {
		calls++
		if calls == 10 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || calls != 10 {
		t.Errorf("EachFlowStat with fn failing at the 10th entry: %v after %d calls", err, calls)
	}
	if err := c.Barrier(ctx); err != nil {
		t.Errorf("connection after a stopped dump: %v", err)
	}
}

// A finished call leaves nothing reachable from the connection: the flow dump's replies
// (every flow read, megabytes on a large bridge) must be garbage once FlowStats returned.
func TestFinishedCallsAreNotRetained(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	if err := c.Bundle(ctx, ipFlows(100, 0x31)); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := c.FlowStats(ctx, TableAll, 0, 0); err != nil {
			t.Fatal(err)
		}
		if err := c.Barrier(ctx); err != nil {
			t.Fatal(err)
		}
	}
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	for i, p := range c.pending[:cap(c.pending)] {
		if p != nil {
			t.Errorf("pending slot %d of %d (len %d) still holds a finished call", i, cap(c.pending), len(c.pending))
		}
	}
}
