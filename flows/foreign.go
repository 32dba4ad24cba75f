package flows

import (
	"bytes"
	"context"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows/ofconn"
)

// Changes made to a bridge's flows by anyone else are learnt from the switch's flow
// monitor (ofconn.MonitorFlows), started on every connection once its first Sync is done:
// that Sync has just made the switch equal to the desired set, and ovs-vswitchd, which
// checks every monitor for every flow-mod of a bundle, has none to consult for the biggest
// bundle, a cold start's (bench/NOTES.md: within the noise either way). A change made by
// someone else between that Sync's read and the monitor's start is not seen by the monitor
// (the periodic verify, [dvrflow] verify_interval, is the backstop). Changes are queued as they
// arrive and applied to the installed set at the start of the next Sync, which therefore
// repairs them through the one write path: a flow of ours deleted or modified is put back,
// a foreign flow that took one of our keys is replaced, and a foreign flow that collides
// with nothing stays. Flows with a timeout (learned or expiring flows) are ignored, as
// when reading. When the switch paused the monitor (updates were lost), the next Sync reads
// every flow again.

// maxForeignLogs is how many foreign changes one Sync logs one by one.
const maxForeignLogs = 20

// foreignChange is one change of a flow by another client.
type foreignChange struct {
	event        ofconn.FlowEvent
	table        uint8
	priority     uint16
	cookie       uint64
	match        []byte
	instructions []byte
}

// foreignChanges is the queue of one connection's flow monitor.
type foreignChanges struct {
	mu      sync.Mutex
	changes []foreignChange
	// lost: the switch paused the monitor or sent an unreadable update.
	lost bool
	// ready is closed once the switch has accepted (or refused) the monitor.
	ready chan struct{}
}

// monitorTimeout bounds the start of a flow monitor (one request and a barrier).
const monitorTimeout = 10 * time.Second

// startMonitor starts the flow monitor on c in the background; its changes go to the
// returned queue and signal b.changed. A switch that refuses the monitor leaves the queue
// empty (logged): changes by others are then only noticed by a full read.
func (b *Bridge) startMonitor(c *ofconn.Conn) *foreignChanges {
	q := &foreignChanges{ready: make(chan struct{})}
	go func() {
		defer close(q.ready)
		ctx, cancel := context.WithTimeout(context.Background(), monitorTimeout)
		defer cancel()
		b.monitor(ctx, c, q)
	}()
	return q
}

// WaitMonitor waits until the flow monitor of the current connection runs (or was
// refused); it returns at once when there is none yet (before the first Sync).
func (b *Bridge) WaitMonitor(ctx context.Context) error {
	b.mu.Lock()
	q := b.foreign
	b.mu.Unlock()
	if q == nil {
		return nil
	}
	select {
	case <-q.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// monitor asks the switch over c for the changes of others, for q.
func (b *Bridge) monitor(ctx context.Context, c *ofconn.Conn, q *foreignChanges) {
	err := c.MonitorFlows(ctx, func(u *ofconn.FlowUpdate) {
		if u.IdleTimeout != 0 || u.HardTimeout != 0 {
			return // learned or expiring flows are not ours to manage
		}
		q.mu.Lock()
		q.changes = append(q.changes, foreignChange{event: u.Event, table: u.TableID, priority: u.Priority,
			cookie: u.Cookie, match: bytes.Clone(u.Match), instructions: bytes.Clone(u.Instructions)})
		q.mu.Unlock()
		b.signalChanged()
	}, func(paused bool) {
		if paused {
			q.mu.Lock()
			q.lost = true
			q.mu.Unlock()
			b.log.Warn("the switch paused the flow monitor (too many changes at once); every flow will be read again")
		}
		b.signalChanged()
	})
	if err != nil && c.Err() == nil {
		b.log.Warn("flow monitor not available: changes made by others are only noticed by a full read", zap.Error(err))
	}
}

// signalChanged wakes whoever waits on Changed.
func (b *Bridge) signalChanged() {
	select {
	case b.changed <- struct{}{}:
	default:
	}
}

// Changed is signalled (coalesced) when another client changed the bridge's flows, or the
// switch paused the flow monitor: a Sync then repairs what differs from the desired set.
func (b *Bridge) Changed() <-chan struct{} { return b.changed }

// Invalidate forgets what is installed, keeping the connection: the next Sync reads every
// flow from the switch again (a full verify, as a backstop to the flow monitor).
func (b *Bridge) Invalidate() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.installed = nil
}

// applyForeign applies the queued foreign changes to the installed set, or forgets the set
// when changes were lost or cannot be read. b.mu is held. It returns how many it applied.
func (b *Bridge) applyForeign() int {
	q := b.foreign
	if q == nil {
		return 0
	}
	q.mu.Lock()
	changes, lost := q.changes, q.lost
	q.changes, q.lost = nil, false
	q.mu.Unlock()
	if b.installed == nil {
		return 0 // the next read sees the switch as it is
	}
	if lost {
		b.installed = nil
		return 0
	}
	for i, c := range changes {
		m, err := CanonicalMatch(c.match)
		if err != nil {
			b.log.Warn("a flow changed by another client could not be read; every flow will be read again",
				zap.Uint8("table", c.table), zap.Uint16("priority", c.priority), zap.Error(err))
			b.installed = nil
			return i
		}
		k := Key{Table: c.table, Priority: c.priority, Match: m.Key()}
		if c.event == ofconn.FlowDeleted {
			b.installed.remove(k)
		} else {
			b.installed.put(k, c.cookie, internInstructions(c.instructions))
		}
		if i < maxForeignLogs {
			b.log.Info("flow changed by another client", zap.Stringer("event", c.event),
				zap.String("flow", keyText(c.table, c.priority, m)), zap.String("cookie", DescribeCookie(c.cookie).String()))
		}
	}
	if len(changes) > maxForeignLogs {
		b.log.Info("flows changed by another client", zap.Int("changes", len(changes)))
	}
	return len(changes)
}

// keyText renders a flow's key like ovs-ofctl: "table=3, priority=7,in_port=1".
func keyText(table uint8, priority uint16, m Match) string {
	b := textWriter{buf: make([]byte, 0, 96)}
	b.WriteString("table=")
	writeTable(&b, table, nil)
	b.WriteString(", ")
	m.appendText(&b, priority, nil)
	return b.String()
}
