package flows

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"antrea.io/libOpenflow/util"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows/ofconn"
)

// Bridge is the one write path to one OpenFlow bridge: desired set → diff against what is
// installed → one bundle (every add checked before commit) → commit confirmed.
//
// What is installed is read from the switch on first use (and after every reconnect), then
// tracked from what this Bridge committed, so a Sync with an unchanged desired set sends
// nothing. Only flows whose cookie carries OwnerMark are ever deleted; a foreign flow is only
// touched when a desired flow has exactly its table, priority and match (it is replaced).
// Flows with a timeout (learned flows) are never deleted.
//
// The first read can be started early with Prefetch, so that it overlaps whatever the
// caller does before its first Sync.
//
// Sync calls are serialised; a Bridge is safe for concurrent use.
type Bridge struct {
	name       string
	socketPath string
	log        *zap.Logger
	reads      atomic.Int64 // complete reads of the installed flows (see Reads)

	mu        sync.Mutex
	conn      *ofconn.Conn
	installed *installedSet // nil: must be read from the switch
	pre       *prefetch     // a read started by Prefetch, not taken yet (only while conn is nil)
	// prefetchMaxAge is how old a prefetched read may be when the first Sync takes it.
	prefetchMaxAge time.Duration
	lost           chan struct{} // signalled when a connection ends
	scratch        []byte        // instruction encoding buffer of the diff
	// foreign holds the changes others made, reported by the connection's flow monitor.
	foreign *foreignChanges
	// current is conn, readable without the lock (Connected).
	current atomic.Pointer[ofconn.Conn]
	// probe is the echo interval of every connection (0: none); see SetInactivityProbe.
	probe   time.Duration
	changed chan struct{} // signalled when foreign changes are queued
}

// NewBridge returns the write path for bridge name, whose OpenFlow management socket is
// socketPath (RUNDIR/NAME.mgmt). It connects lazily, on the first Sync.
func NewBridge(name, socketPath string, log *zap.Logger) *Bridge {
	if log == nil {
		log = zap.NewNop()
	}
	return &Bridge{name: name, socketPath: socketPath, log: log.With(zap.String("bridge", name)),
		prefetchMaxAge: DefaultPrefetchMaxAge, lost: make(chan struct{}, 1), changed: make(chan struct{}, 1)}
}

// Lost is signalled (coalesced) whenever the OpenFlow connection ends, for example because
// ovs-vswitchd restarted and lost every flow; the next Sync reconnects and re-reads what is
// installed, so a caller reacts by syncing again.
func (b *Bridge) Lost() <-chan struct{} { return b.lost }

// SetInactivityProbe makes every later connection send an echo request each interval and
// give up on a switch that does not answer within it (ofconn.Conn.Probe): the next Sync
// then reconnects. Call it before the first Sync or Prefetch.
func (b *Bridge) SetInactivityProbe(interval time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probe = interval
}

// Connected reports whether the Bridge has a live OpenFlow connection to the switch. It
// does not block (a Sync in progress holds the Bridge).
func (b *Bridge) Connected() bool {
	c := b.current.Load()
	if c == nil {
		return false
	}
	select {
	case <-c.Done():
		return false
	default:
		return true
	}
}

// Name returns the bridge name.
func (b *Bridge) Name() string { return b.name }

// Change is one flow the Sync changed. For deletions Flow has no actions (they are not read
// back from the switch).
type Change struct {
	Flow      Flow
	OldCookie uint64 // for replaced flows: the cookie the switch had
}

// SyncResult reports exactly what a Sync changed.
type SyncResult struct {
	Bridge    string
	Added     []Change // new flows, and foreign flows replaced (OldCookie set)
	Modified  []Change // our flows whose actions changed, modified in place
	Deleted   []Change // our flows no longer desired
	Unchanged int
	Read      bool // the installed set was (re)read from the switch
	// Prefetched: that read was the one Prefetch started (Read is set too); this Sync did
	// not read the flows itself.
	Prefetched bool
	// Foreign is how many changes made by other clients (reported by the flow monitor)
	// this Sync took into account before the diff: the flow-mods then repair them.
	Foreign  int
	Duration time.Duration // from start to commit confirmed
}

// FlowMods is the number of flow-mods sent.
func (r SyncResult) FlowMods() int { return len(r.Added) + len(r.Modified) + len(r.Deleted) }

func (r SyncResult) String() string {
	return fmt.Sprintf("%s: +%d ~%d -%d =%d in %s", r.Bridge, len(r.Added), len(r.Modified), len(r.Deleted), r.Unchanged, r.Duration.Round(time.Microsecond))
}

// FlowError is returned when the switch rejected flows of a Sync; nothing was installed.
type FlowError struct {
	Bridge string
	Flows  []RejectedFlow
	Err    error // the underlying *ofconn.BundleError
}

// RejectedFlow is one flow the switch refused, with its reason.
type RejectedFlow struct {
	Flow   Flow
	Reason string
}

func (e *FlowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bridge %s: switch rejected %d flow(s), nothing installed", e.Bridge, len(e.Flows))
	for _, f := range e.Flows {
		fmt.Fprintf(&b, "\n  %s: %s", f.Flow, f.Reason)
	}
	return b.String()
}

func (e *FlowError) Unwrap() error { return e.Err }

// Reset forgets what is installed, so the next Sync reads it from the switch again. Call it
// when the switch may have changed behind our back (bridge re-created, ovs-vswitchd restarted).
func (b *Bridge) Reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropConn()
}

// Close closes the OpenFlow connection.
func (b *Bridge) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dropConn()
	return nil
}

// dropConn forgets the connection, what is installed and a prefetch not taken yet.
func (b *Bridge) dropConn() {
	if b.conn != nil {
		_ = b.conn.Close()
	}
	b.conn = nil
	b.current.Store(nil)
	b.installed = nil
	b.foreign = nil
	b.discardPrefetch()
}

// connection is how connect came by the installed set.
type connection struct {
	read       bool // it was read from the switch (now or by the prefetch)
	prefetched bool // by the prefetch
}

// connect (re)dials when needed and (re)reads the installed flows; a prefetch, when there is
// one, supplies both.
func (b *Bridge) connect(ctx context.Context) (connection, error) {
	if b.conn != nil {
		select {
		case <-b.conn.Done():
			b.log.Info("openflow connection lost, reconnecting", zap.Error(b.conn.Err()))
			b.dropConn()
		default:
		}
	}
	if b.conn == nil && b.pre != nil {
		ok, err := b.takePrefetch(ctx)
		if err != nil {
			return connection{}, err
		}
		if ok {
			return connection{read: true, prefetched: true}, nil
		}
	}
	if b.conn == nil {
		c, err := ofconn.Dial(ctx, b.socketPath, b.log)
		if err != nil {
			return connection{}, fmt.Errorf("connect to bridge %s at %s: %w", b.name, b.socketPath, err)
		}
		c.Probe(b.probe)
		b.use(c, nil)
	}
	if b.installed != nil {
		return connection{}, nil
	}
	inst, err := b.readInstalled(ctx, b.conn)
	if err != nil {
		var pe *parseError
		if !errors.As(err, &pe) {
			b.dropConn()
		}
		return connection{}, err
	}
	b.installed = inst
	b.log.Debug("read installed flows", zap.Int("flows", inst.Len()))
	return connection{read: true}, nil
}

// monitorOnce starts the connection's flow monitor after its first Sync (see foreign.go).
// b.mu is held.
func (b *Bridge) monitorOnce() {
	if b.foreign == nil && b.conn != nil {
		b.foreign = b.startMonitor(b.conn)
	}
}

// use makes c the connection, whose end signals Lost, and q the queue of its flow monitor
// (nil: none started yet).
func (b *Bridge) use(c *ofconn.Conn, q *foreignChanges) {
	b.conn, b.foreign = c, q
	b.current.Store(c)
	go func() {
		<-c.Done()
		select {
		case b.lost <- struct{}{}:
		default:
		}
	}()
}

// parseError is a flow the switch holds that could not be read (the connection is fine).
type parseError struct{ err error }

func (e *parseError) Error() string { return e.err.Error() }
func (e *parseError) Unwrap() error { return e.err }

// readInstalled reads every flow from the switch over c, streaming: only the compact record
// of each flow is kept, never the replies. A *parseError leaves c usable; after any other
// error the caller must close c. It touches no field of b but the read counter, so a
// prefetch runs it without the lock.
func (b *Bridge) readInstalled(ctx context.Context, c *ofconn.Conn) (*installedSet, error) {
	inst := newInstalledSet(0)
	var parseErr error
	err := c.EachFlowStat(ctx, ofconn.TableAll, 0, 0, func(s *ofconn.FlowStat) error {
		if s.IdleTimeout != 0 || s.HardTimeout != 0 {
			return nil // learned or expiring flows are not ours to manage
		}
		m, err := CanonicalMatch(s.Match)
		if err != nil {
			parseErr = fmt.Errorf("read flows of bridge %s: table %d priority %d: %w", b.name, s.TableID, s.Priority, err)
			return parseErr
		}
		inst.put(Key{Table: s.TableID, Priority: s.Priority, Match: m.Key()}, s.Cookie, internInstructions(s.Instructions))
		return nil
	})
	if parseErr != nil {
		return nil, &parseError{parseErr}
	}
	if err != nil {
		return nil, fmt.Errorf("read flows of bridge %s: %w", b.name, err)
	}
	inst.compact()
	b.reads.Add(1)
	return inst, nil
}

// Reads returns how many times this Bridge has read every installed flow from the switch
// (a Sync's or Verify's read, or a prefetch's), completely.
func (b *Bridge) Reads() int { return int(b.reads.Load()) }

// Installed returns how many flows are known to be installed (read or tracked), or -1 when
// the bridge has not been read yet.
func (b *Bridge) Installed() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.installed == nil {
		return -1
	}
	return b.installed.Len()
}

// Sync makes the bridge's flows equal to desired: it adds what is missing, modifies what
// differs, deletes our flows that are not desired, all in one bundle. desired must not hold
// two flows with the same table, priority and match. On error nothing was changed.
func (b *Bridge) Sync(ctx context.Context, desired []Flow) (SyncResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	start := time.Now()
	res := SyncResult{Bridge: b.name}

	res.Foreign = b.applyForeign()
	conn, err := b.connect(ctx)
	if err != nil {
		return res, err
	}
	res.Read, res.Prefetched = conn.read, conn.prefetched

	ops, unchanged, err := b.installed.plan(b.name, desired, &b.scratch)
	if err != nil {
		return res, err
	}
	res.Unchanged = unchanged
	if len(ops) == 0 {
		b.monitorOnce()
		res.Duration = time.Since(start)
		return res, nil
	}

	msgs := make([]util.Message, len(ops))
	for i, o := range ops {
		mask := uint64(0)
		if o.cmd != CommandAdd {
			mask = ^uint64(0) // modify/delete only our exact flow
		}
		var instr []byte
		if o.cmd != CommandDeleteStrict {
			instr = []byte(o.instr)
			if len(instr) == 0 {
				instr = []byte{} // drop: an empty instruction list, not "encode for me"
			}
		}
		fm, err := EncodeFlowMod(o.flow, o.cmd, instr, mask)
		if err != nil {
			return res, fmt.Errorf("bridge %s: encode flow %s: %w", b.name, o.flow, err)
		}
		msgs[i] = fm
	}
	if err := b.conn.Bundle(ctx, msgs); err != nil {
		var be *ofconn.BundleError
		if errors.As(err, &be) {
			fe := &FlowError{Bridge: b.name, Err: err}
			for _, me := range be.Errors {
				if me.Index >= 0 && me.Index < len(ops) {
					fe.Flows = append(fe.Flows, RejectedFlow{Flow: ops[me.Index].flow, Reason: me.Error()})
				}
			}
			if len(fe.Flows) == 0 {
				return res, fmt.Errorf("bridge %s: %w", b.name, err)
			}
			return res, fe
		}
		// The connection failed mid-bundle: we no longer know what is installed.
		b.dropConn()
		return res, fmt.Errorf("bridge %s: send bundle: %w", b.name, err)
	}
	b.installed.apply(ops)
	b.monitorOnce()
	for _, o := range ops {
		switch o.kind {
		case 0:
			res.Added = append(res.Added, Change{Flow: o.flow, OldCookie: o.oldCk})
		case 1:
			res.Modified = append(res.Modified, Change{Flow: o.flow})
		case 2:
			res.Deleted = append(res.Deleted, Change{Flow: o.flow})
		}
	}
	res.Duration = time.Since(start)
	b.log.Debug("synced", zap.Int("added", len(res.Added)), zap.Int("modified", len(res.Modified)),
		zap.Int("deleted", len(res.Deleted)), zap.Int("unchanged", res.Unchanged), zap.Duration("took", res.Duration))
	return res, nil
}

// Barrier waits until the switch has processed everything sent so far.
func (b *Bridge) Barrier(ctx context.Context) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, err := b.connect(ctx); err != nil {
		return err
	}
	return b.conn.Barrier(ctx)
}
