package ovsdb

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// waitClient is a Client with only what waitFor uses: the change signals and done.
func waitClient() *Client {
	return &Client{changes: map[string]*changeSignal{"T": {}}, done: make(chan struct{})}
}

// Every change is seen: waiters woken by notifications return as soon as their condition
// holds, long before the safety re-check would have looked again.
func TestWaitForWakesOnChange(t *testing.T) {
	c := waitClient()
	const waiters, changes = 8, 200
	var n atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	start := time.Now()
	for w := 0; w < waiters; w++ {
		want := int64(changes * (w + 1) / waiters)
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			errs <- c.waitFor(ctx, "T", func() bool { return n.Load() >= want })
		}()
	}
	for i := 0; i < changes; i++ {
		n.Add(1)
		c.changed("T")
		if i%20 == 0 {
			time.Sleep(time.Millisecond) // let waiters look in between
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if took := time.Since(start); took >= recheckInterval {
		t.Errorf("waiters took %s: not woken by the notifications (re-check every %s)", took, recheckInterval)
	}
}

// A change whose notification was lost (libovsdb drops them when its queue is full) is
// still seen by the periodic re-check.
func TestWaitForRechecksWithoutNotification(t *testing.T) {
	c := waitClient()
	var ready atomic.Bool
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- c.waitFor(context.Background(), "T", ready.Load) }()
	time.Sleep(20 * time.Millisecond)
	ready.Store(true) // no c.changed
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < recheckInterval/2 {
			t.Errorf("returned after %s without a notification or a re-check", took)
		}
	case <-time.After(3 * recheckInterval):
		t.Fatal("a change without notification was never seen")
	}
}

func TestWaitForEnds(t *testing.T) {
	c := waitClient()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := c.waitFor(ctx, "T", func() bool { return false }); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("context end: err = %v", err)
	}
	close(c.done)
	if err := c.waitFor(context.Background(), "T", func() bool { return false }); !errors.Is(err, errClosed) {
		t.Errorf("closed client: err = %v", err)
	}
}
