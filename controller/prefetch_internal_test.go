package controller

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/controller/config"
)

// fakeSwitch listens on dir/NAME.mgmt and hands over every connection it accepts (it never
// answers: a prefetch from it stays pending until cancelled).
func fakeSwitch(t *testing.T, dir, name string) <-chan net.Conn {
	t.Helper()
	l, err := net.Listen("unix", filepath.Join(dir, name+".mgmt"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	conns := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { _ = c.Close() })
			conns <- c
		}
	}()
	return conns
}

// waitClosed waits until the peer closed c (after what it sent, our HELLO, is drained).
func waitClosed(t *testing.T, what string, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.Copy(io.Discard, c); err != nil {
		t.Fatalf("%s: connection not closed: %v", what, err)
	}
}

// Start prefetches the bridges a config names whose socket exists, once per bridge;
// UsePrefetch gives the agent the write paths of the bridges it manages (the very ones
// prefetched) and closes the others.
func TestUsePrefetchTakesManagedBridges(t *testing.T) {
	dir, err := os.MkdirTemp("", "pf") // short: a unix socket path has ~100 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	intConns := fakeSwitch(t, dir, "br-int")
	oldConns := fakeSwitch(t, dir, "br-old")
	ctx := context.Background()
	log := zaptest.NewLogger(t)

	probe := config.DefaultConfig()
	probe.IntegrationBridge, probe.OVSRundir = "br-old", dir
	cfg := config.DefaultConfig()
	cfg.OVSRundir = dir
	cfg.BridgeMappings = map[string]string{"physnet1": "br-phys"} // no socket: not prefetched

	p := NewFlowPrefetch(log)
	p.Start(ctx, probe)
	p.Start(ctx, cfg)
	p.Start(ctx, cfg) // again: nothing new
	if got := len(p.writers); got != 2 {
		t.Fatalf("%d bridges prefetched, want br-old and br-int", got)
	}
	prefetchedInt := p.writers["br-int"].w
	intConn := <-intConns
	oldConn := <-oldConns
	select {
	case c := <-intConns:
		t.Fatalf("br-int prefetched twice (%v)", c.LocalAddr())
	case <-time.After(50 * time.Millisecond):
	}

	a := NewAgent(cfg, nil, log)
	a.UsePrefetch(p)
	if w := a.brs.Writer("br-int"); w != prefetchedInt {
		t.Errorf("the agent's br-int write path is %p, want the prefetched %p", w, prefetchedInt)
	}
	if w := a.brs.Writer("br-old"); w != nil {
		t.Errorf("the agent took the write path of br-old, which it does not manage")
	}
	if w := a.brs.Writer("br-phys"); w != nil {
		t.Errorf("the agent has a br-phys write path before Setup")
	}
	if len(p.writers) != 0 {
		t.Errorf("%d write paths left in the prefetch after UsePrefetch", len(p.writers))
	}
	waitClosed(t, "br-old, not managed", oldConn)
	a.Close()
	waitClosed(t, "br-int, after the agent closed", intConn)
}
