package flows

import (
	"context"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows/ofconn"
)

// DefaultPrefetchMaxAge is how old a prefetched read may be when the first Sync takes it;
// an older one is dropped and the flows read again. A start takes a fraction of a second:
// a read that waited longer than this was overtaken by something (an OVSDB server slow to
// answer), and reading again is cheaper than widening the window in which the switch is
// assumed to be written by this agent alone.
const DefaultPrefetchMaxAge = 5 * time.Second

// prefetch is a connection to the switch and a read of its installed flows, started by
// Prefetch ahead of the first Sync. The goroutine that runs it sets conn, installed,
// readAt and err, then closes done; nothing reads them before done is closed.
type prefetch struct {
	cancel context.CancelFunc
	done   chan struct{}

	conn      *ofconn.Conn
	installed *installedSet
	readAt    time.Time // when the read was requested: the view is at least this recent
	took      time.Duration
	err       error
}

// Prefetch starts connecting to the switch and reading its installed flows in the
// background, and returns at once; the first Sync (or Barrier) takes the result instead of
// reading again, waiting for it if it is still under way. Call it while doing other work
// before the first Sync, for example while connecting to OVSDB at start. ctx bounds the
// connect and the read.
//
// It is a no-op when the Bridge is connected or a prefetch is pending. When the prefetch
// fails (no management socket: the bridge does not exist yet), Sync connects and reads as
// without it. A prefetched read is what a Sync's own read would be, taken earlier: the
// switch as it was then, after which only this Bridge is assumed to write it. So it is
// only taken together with the connection it was read on, and only when that connection
// is still up once the Sync starts (a round trip to the switch proves it: a restarted
// ovs-vswitchd or a re-created bridge closes it); it is dropped by Reset, Close, Verify,
// and when older than DefaultPrefetchMaxAge.
func (b *Bridge) Prefetch(ctx context.Context) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.conn != nil || b.pre != nil {
		return
	}
	pctx, cancel := context.WithCancel(ctx)
	p := &prefetch{cancel: cancel, done: make(chan struct{})}
	b.pre = p
	go b.runPrefetch(pctx, p)
}

// runPrefetch connects and reads for p. It touches no field of b under b.mu.
func (b *Bridge) runPrefetch(ctx context.Context, p *prefetch) {
	defer close(p.done)
	c, err := ofconn.Dial(ctx, b.socketPath, b.log)
	if err != nil {
		p.err = fmt.Errorf("connect to bridge %s at %s: %w", b.name, b.socketPath, err)
		return
	}
	c.Probe(b.probe) // set before Prefetch, never changed while it runs
	p.readAt = time.Now()
	inst, err := b.readInstalled(ctx, c)
	if err != nil {
		_ = c.Close()
		p.err = err
		return
	}
	p.conn, p.installed, p.took = c, inst, time.Since(p.readAt)
}

// takePrefetch waits for the pending prefetch and adopts its connection and read when they
// are still valid (see Prefetch); it reports whether it did. The prefetch is consumed
// either way. b.mu is held and b.conn is nil.
func (b *Bridge) takePrefetch(ctx context.Context) (bool, error) {
	p := b.pre
	select {
	case <-p.done:
	case <-ctx.Done():
		return false, fmt.Errorf("bridge %s: wait for the prefetched flows: %w", b.name, ctx.Err())
	}
	b.pre = nil
	p.cancel() // the connection outlives its dial context
	reject := func(why string, err error) (bool, error) {
		if p.conn != nil {
			_ = p.conn.Close()
		}
		b.log.Debug("prefetched flows not used, reading them now", zap.String("reason", why), zap.Error(err))
		return false, nil
	}
	if p.err != nil {
		return reject("prefetch failed", p.err)
	}
	if age := time.Since(p.readAt); age > b.prefetchMaxAge {
		return reject(fmt.Sprintf("read %s ago, more than %s", age.Round(time.Millisecond), b.prefetchMaxAge), nil)
	}
	// The connection must still be the one to the switch that was read: a barrier is
	// answered only if it is (ovs-vswitchd closes it when it restarts or re-creates the
	// bridge, and that may not have reached our reader yet).
	if err := p.conn.Barrier(ctx); err != nil {
		if ctx.Err() != nil {
			_ = p.conn.Close()
			return false, fmt.Errorf("bridge %s: check the prefetched connection: %w", b.name, ctx.Err())
		}
		return reject("connection lost since the prefetch", err)
	}
	b.use(p.conn, nil)
	b.installed = p.installed
	b.log.Debug("using prefetched flows", zap.Int("flows", p.installed.Len()),
		zap.Duration("read_took", p.took), zap.Duration("age", time.Since(p.readAt)))
	return true, nil
}

// discardPrefetch cancels a pending prefetch and closes its connection. b.mu is held.
func (b *Bridge) discardPrefetch() {
	p := b.pre
	if p == nil {
		return
	}
	b.pre = nil
	p.cancel()
	<-p.done // prompt: the dial and the read end with their context
	if p.conn != nil {
		_ = p.conn.Close()
	}
}
