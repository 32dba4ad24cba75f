// Package ovsdb is dvrflow's view of Open vSwitch's configuration database: it owns the
// bridges and their patch and tunnel ports, sets VLAN tags on VIF ports, and discovers VIFs
// (interfaces with external_ids:iface-id) as a stream of typed events.
//
// It speaks OVSDB's JSON-RPC protocol (RFC 7047) to ovsdb-server itself, over one
// connection: a monitor of only the columns dvrflow reads, decoded straight into the narrow
// rows of package vswitchd, and transactions built from libovsdb's wire types. ovsdb-server
// sends a transaction's monitor updates before its reply on the same connection, and they
// are applied in that order, so when a transaction returns the client's copy of the tables
// already shows it. Every write is one transaction whose results are all checked and bumps
// Open_vSwitch.next_cfg; it returns only once ovs-vswitchd has applied it (cur_cfg >=
// next_cfg), so a caller that then reads an ofport or connects to a bridge's management
// socket sees the result. The exception is [Client.CommitPortTags], which leaves the wait to
// [Client.WaitApplied]. Waits wake up on the changes of the rows they look at, not on a
// timer.
package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

const (
	// txnTimeout bounds every transaction plus the wait for ovs-vswitchd, even when the
	// caller's context has no deadline: a transaction on a lost connection waits for the
	// reconnection.
	txnTimeout = 30 * time.Second
	// reconnectTimeout bounds one connection attempt (connect + monitor).
	reconnectTimeout = 5 * time.Second
	// inactivityTimeout is how long a silent connection may stay idle before an echo probe;
	// the probe must be answered within reconnectTimeout.
	inactivityTimeout = 10 * time.Second
	// backoffMin and backoffMax bound the wait between reconnection attempts.
	backoffMin, backoffMax = 100 * time.Millisecond, 2 * time.Second
	// eventBuffer is the capacity of the Events channel.
	eventBuffer = 1024
	// recheckInterval is how often a wait for the rows (cur_cfg, an ofport) looks again
	// without a change notification: a safety net. Waits normally wake up on the change.
	recheckInterval = 250 * time.Millisecond
	// monitorID names dvrflow's monitor in update notifications.
	monitorID = "dvrflow"
)

// errConflict marks a transaction aborted by one of its guards (a row that was expected to be
// absent exists, or the reverse): the cache was behind the database, and the operation is
// retried from a fresh look at the cache.
var errConflict = errors.New("database changed concurrently")

// Client is a connection to one ovsdb-server holding the Open_vSwitch database. It keeps a
// copy of the Open_vSwitch, Bridge, Port, Interface and Flow_Table rows (only the columns
// dvrflow reads), reconnects on its own, and is safe for concurrent use.
type Client struct {
	endpoint string
	log      *zap.Logger

	events chan Event
	wake   chan struct{} // capacity 1: "the rows changed", coalesced
	// changes signals the waiters on a table's rows (waitFor), by table name. The map is
	// filled by Connect and never changes afterwards.
	changes   map[string]*changeSignal
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu       sync.RWMutex
	rows     *rows         // guarded by mu; replaced whole on a reconnection
	conn     *rpcConn      // guarded by mu; nil while disconnected
	up       chan struct{} // guarded by mu; closed when conn is set
	reloaded bool          // guarded by mu; set by a reconnection, consumed by the event loop
	pending  eventQueue    // guarded by mu; the changes the event loop has not sent yet
}

// Connect connects to the ovsdb-server at endpoint ("unix:PATH" or "tcp:IP:PORT"), starts
// monitoring the tables dvrflow uses and waits for the initial copy of them. The returned
// client reconnects by itself (with backoff, and after an inactivity probe fails); the
// transactions of a disconnected client wait for the reconnection until their context ends.
// log receives the client's messages.
func Connect(ctx context.Context, endpoint string, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("ovsdb", endpoint))
	c := &Client{
		endpoint: endpoint,
		log:      log,
		events:   make(chan Event, eventBuffer),
		wake:     make(chan struct{}, 1),
		changes:  map[string]*changeSignal{},
		done:     make(chan struct{}),
		up:       make(chan struct{}),
	}
	for table := range monitored() {
		c.changes[table] = &changeSignal{}
	}
	conn, fresh, err := c.dial(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to ovsdb %s: %w", endpoint, err)
	}
	c.mu.Lock()
	c.rows = fresh
	c.mu.Unlock()
	c.setConn(conn) // events report changes from here on; VIFs() gives the start
	c.wg.Add(2)
	go c.run()
	go c.keepConnected(conn)
	log.Info("connected to ovsdb")
	return c, nil
}

// dial opens a session and monitors the tables; it returns the session and the initial
// copy of the rows. Until the caller installs the session, its updates go to those rows.
func (c *Client) dial(ctx context.Context) (*rpcConn, *rows, error) {
	fresh := newRows()
	var conn *rpcConn
	notify := func(method string, params json.RawMessage) {
		if method != "update" {
			return
		}
		var p [2]json.RawMessage // [monitor-id, table-updates]
		err := json.Unmarshal(params, &p)
		var u *tableUpdates
		if err == nil {
			u, err = decodeUpdates(p[1])
		}
		if err != nil {
			c.log.Error("undecodable update from ovsdb-server; reconnecting", zap.Error(err))
			go conn.close()
			return
		}
		c.applyTo(fresh, u)
	}
	conn, err := dialRPC(ctx, c.endpoint, notify)
	if err != nil {
		return nil, nil, err
	}
	params := []any{"Open_vSwitch", monitorID, monitorRequests()}
	err = conn.call(ctx, "monitor", params, func(result json.RawMessage) error {
		u, err := decodeUpdates(result)
		if err != nil {
			return fmt.Errorf("the initial rows: %w", err)
		}
		fresh.apply(u, nil)
		return nil
	})
	if err != nil {
		conn.close()
		return nil, nil, fmt.Errorf("monitor: %w", err)
	}
	return conn, fresh, nil
}

// applyTo applies an update to r, the rows of the session it came on, and, if r is the
// client's current rows, queues the update's events, wakes the event loop if there are
// any, and wakes whoever waits on the tables it changed.
func (c *Client) applyTo(r *rows, u *tableUpdates) {
	c.mu.Lock()
	current := c.rows == r
	var q *eventQueue
	if current {
		q = &c.pending
	}
	changed := r.apply(u, q)
	queued := current && !c.pending.empty()
	c.mu.Unlock()
	if !current {
		return // a session not installed yet: its rows are installed whole
	}
	for _, table := range changed {
		c.changed(table)
	}
	if queued {
		c.poke()
	}
}

// Connected reports whether the client has a session with ovsdb-server now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.conn != nil
}

// setConn installs a connected session.
func (c *Client) setConn(conn *rpcConn) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.conn = conn
	close(c.up)
}

// session returns the connected session, waiting for a reconnection while there is none.
func (c *Client) session(ctx context.Context) (*rpcConn, error) {
	for {
		c.mu.RLock()
		conn, up := c.conn, c.up
		c.mu.RUnlock()
		if conn != nil {
			return conn, nil
		}
		select {
		case <-up:
		case <-ctx.Done():
			return nil, fmt.Errorf("not connected to ovsdb: %w", ctx.Err())
		case <-c.done:
			return nil, errClosed
		}
	}
}

// keepConnected watches the session: it probes a silent one with an echo, and when the
// session ends (or the probe fails) it reconnects with backoff, replaces the rows with the
// reloaded ones and tells the event loop (Resynced), until Close.
func (c *Client) keepConnected(conn *rpcConn) {
	defer c.wg.Done()
	for {
		c.watch(conn)
		c.mu.Lock()
		c.conn = nil
		c.up = make(chan struct{})
		c.mu.Unlock()
		select {
		case <-c.done:
			return
		default:
		}
		c.log.Warn("ovsdb connection lost; reconnecting")
		var fresh *rows
		conn, fresh = c.redial()
		if conn == nil {
			return // closed
		}
		c.reload(fresh)
		c.setConn(conn)
		for table := range c.changes {
			c.changed(table)
		}
		c.poke()
		c.log.Info("reconnected to ovsdb")
	}
}

// reload installs the rows of a new session in place of the old ones, queues the changes
// between the two (a full comparison: reconnections are rare) and marks the reload for the
// event loop, which sends those changes and then Resynced.
func (c *Client) reload(fresh *rows) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pending.resync(c.rows, fresh)
	c.rows = fresh
	c.reloaded = true
}

// watch returns when the session ends (closing it on Close or a failed echo probe).
func (c *Client) watch(conn *rpcConn) {
	probe := time.NewTicker(inactivityTimeout / 2)
	defer probe.Stop()
	for {
		select {
		case <-c.done:
			conn.close()
			return
		case <-conn.done:
			return
		case <-probe.C:
			if conn.idle() < inactivityTimeout {
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), reconnectTimeout)
			err := conn.call(ctx, "echo", []any{"dvrflow"}, nil)
			cancel()
			if err != nil {
				c.log.Warn("ovsdb echo probe failed", zap.Error(err))
				conn.close()
				return
			}
		}
	}
}

// redial connects again with backoff; nil when the client is closed first.
func (c *Client) redial() (*rpcConn, *rows) {
	wait := backoffMin
	for {
		select {
		case <-c.done:
			return nil, nil
		case <-time.After(wait):
		}
		ctx, cancel := context.WithTimeout(context.Background(), reconnectTimeout)
		conn, fresh, err := c.dial(ctx)
		cancel()
		if err == nil {
			return conn, fresh
		}
		c.log.Debug("reconnect to ovsdb", zap.Error(err), zap.Duration("retry_in", wait))
		wait = min(2*wait, backoffMax)
	}
}

// Close disconnects from the server, stops the event loop and closes the Events channel.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		close(c.done)
		c.wg.Wait()
		close(c.events)
	})
}

// poke wakes the event loop without ever blocking the connection's read goroutine.
func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// root returns the UUID of the Open_vSwitch row.
func (c *Client) root() (uuid string, err error) {
	c.read(func(r *rows) {
		for u := range r.root {
			uuid = u
		}
	})
	if uuid == "" {
		return "", errors.New("no Open_vSwitch row (is the database initialised?)")
	}
	return uuid, nil
}

// read calls f with the current rows, read-locked: f must not call anything that locks
// the client. The rows it returns may be kept (rows are never modified).
func (c *Client) read(f func(r *rows)) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	f(c.rows)
}

// commit runs ops in one transaction together with a next_cfg bump, checks every result, and
// waits until ovs-vswitchd has applied the change (cur_cfg >= next_cfg) or ctx ends.
func (c *Client) commit(ctx context.Context, ops []ovsdb.Operation) error {
	ctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	next, err := c.transact(ctx, ops)
	if err != nil {
		return err
	}
	return c.WaitApplied(ctx, next)
}

// transact runs ops in one transaction together with a next_cfg bump, checks every result,
// and returns the new next_cfg without waiting for ovs-vswitchd.
func (c *Client) transact(ctx context.Context, ops []ovsdb.Operation) (int, error) {
	root, err := c.root()
	if err != nil {
		return 0, err
	}
	where := []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: root}}}
	ops = append(ops,
		ovsdb.Operation{Op: ovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: where,
			Mutations: []ovsdb.Mutation{{Column: "next_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
		ovsdb.Operation{Op: ovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Where: where,
			Columns: []string{"next_cfg"}})
	res, err := c.call(ctx, ops)
	if err != nil {
		return 0, fmt.Errorf("transact: %w", err)
	}
	if err := checkResults(res, ops); err != nil {
		return 0, err
	}
	rows := res[len(ops)-1].Rows
	if len(rows) != 1 {
		return 0, fmt.Errorf("Open_vSwitch row %s vanished: %w", root, errConflict)
	}
	next, err := intValue(rows[0]["next_cfg"])
	if err != nil {
		return 0, fmt.Errorf("next_cfg: %w", err)
	}
	return next, nil
}

// call sends one transaction (waiting for a connection if there is none) and returns its
// results. The monitor updates the server sent before the reply are applied by then.
func (c *Client) call(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	conn, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	params, err := appendTransact(nil, ops)
	if err != nil {
		return nil, fmt.Errorf("encode transaction: %w", err)
	}
	var res []ovsdb.OperationResult
	err = conn.call(ctx, "transact", json.RawMessage(params), func(result json.RawMessage) error {
		return json.Unmarshal(result, &res)
	})
	return res, err
}

// WaitApplied waits until ovs-vswitchd has applied the configuration numbered cfg
// (Open_vSwitch.cur_cfg >= cfg), as returned by [Client.CommitPortTags], or until ctx ends.
// cfg 0 (nothing was written) returns at once. It wakes up when the cache sees cur_cfg
// change. If ovsdb-server is replaced by one with a fresh database meanwhile, cur_cfg starts
// again from 0 and the wait lasts until ctx ends: give ctx a deadline.
func (c *Client) WaitApplied(ctx context.Context, cfg int) error {
	if cfg <= 0 {
		return nil
	}
	seen := 0
	err := c.waitFor(ctx, vswitchd.OpenvSwitchTable, func() (applied bool) {
		c.read(func(r *rows) {
			for _, root := range r.root {
				seen = root.CurCfg
				applied = applied || root.CurCfg >= cfg
			}
		})
		return applied
	})
	if err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to apply next_cfg %d (cur_cfg %d, %s): %w",
			cfg, seen, c.serverCfg(), err)
	}
	return nil
}

// serverCfg asks ovsdb-server for cur_cfg and next_cfg directly, for an error message: it
// tells an ovs-vswitchd that is behind from a client whose rows are.
func (c *Client) serverCfg() string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	res, err := c.call(ctx, []ovsdb.Operation{{Op: ovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable,
		Columns: []string{"cur_cfg", "next_cfg"}}})
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 {
		return fmt.Sprintf("ovsdb-server not asked: %v", err)
	}
	row := res[0].Rows[0]
	return fmt.Sprintf("ovsdb-server has cur_cfg %v next_cfg %v", row["cur_cfg"], row["next_cfg"])
}

// errClosed is returned by a wait interrupted by Close.
var errClosed = errors.New("ovsdb client closed")

// waitFor returns once done reports true, calling it first and then after every change of
// table's rows in the cache (and every recheckInterval, in case a notification was lost). It
// fails when ctx ends or the client is closed.
func (c *Client) waitFor(ctx context.Context, table string, done func() bool) error {
	sig := c.changes[table]
	var recheck *time.Ticker
	for {
		// Take the signal before looking: a change after the look then closes this very
		// channel, so no wake-up is missed.
		changed := sig.next()
		if done() {
			return nil
		}
		if recheck == nil {
			recheck = time.NewTicker(recheckInterval)
			defer recheck.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-c.done:
			return errClosed
		case <-changed:
		case <-recheck.C:
		}
	}
}

// changed wakes the waiters on table's rows.
func (c *Client) changed(table string) {
	if sig := c.changes[table]; sig != nil {
		sig.notify()
	}
}

// changeSignal is a broadcast "something changed": every channel handed out by next is
// closed by the following notify. A notify without waiters costs a lock and nothing else.
type changeSignal struct {
	mu sync.Mutex
	ch chan struct{} // nil while nobody waits
}

// next returns a channel closed at the next notify.
func (s *changeSignal) next() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// notify wakes everyone waiting on a channel from next.
func (s *changeSignal) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
}

// retry runs f again (up to three times in all) while it fails with errConflict, giving the
// cache a moment to catch up with the database in between.
func retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(); err == nil || !errors.Is(err, errConflict) || attempt == 3 {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// checkResults reports every failed operation of a transaction. Transact returns a nil error
// even when an operation failed; the failure is only in the results. A failed wait (a guard)
// is reported as errConflict.
func checkResults(res []ovsdb.OperationResult, ops []ovsdb.Operation) error {
	var errs []error
	conflict := false
	for i, r := range res {
		if r.Error == "" {
			continue
		}
		if i >= len(ops) { // RFC 7047: an extra result means the commit itself failed
			errs = append(errs, fmt.Errorf("commit: %s: %s", r.Error, r.Details))
			continue
		}
		if ops[i].Op == ovsdb.OperationWait {
			conflict = true
		}
		errs = append(errs, fmt.Errorf("op %d (%s %s): %s: %s", i, ops[i].Op, ops[i].Table, r.Error, r.Details))
	}
	if len(errs) == 0 && len(res) < len(ops) {
		errs = append(errs, fmt.Errorf("%d operations sent, %d results received", len(ops), len(res)))
	}
	if len(errs) == 0 {
		return nil
	}
	err := errors.Join(errs...)
	if conflict {
		return fmt.Errorf("%w: %w", errConflict, err)
	}
	return err
}

// intValue converts a JSON number decoded into an interface to int.
func intValue(v any) (int, error) {
	switch n := v.(type) {
	case float64:
		return int(n), nil
	case int:
		return n, nil
	case json.Number:
		i, err := n.Int64()
		return int(i), err
	}
	return 0, fmt.Errorf("unexpected value %v (%T)", v, v)
}

// guard returns a wait operation that aborts the transaction unless a row named name exists
// in table (exists) or unless none does (!exists). OVSDB's wait compares the selected rows
// with the given ones: "==" [{name}] holds only if the row exists, "!=" only if it does not.
func guard(table, name string, exists bool) ovsdb.Operation {
	zero := 0
	until := ovsdb.WaitConditionNotEqual
	if exists {
		until = ovsdb.WaitConditionEqual
	}
	return ovsdb.Operation{
		Op:      ovsdb.OperationWait,
		Table:   table,
		Timeout: &zero,
		Where:   []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}},
		Columns: []string{"name"},
		Until:   string(until),
		Rows:    []ovsdb.Row{{"name": name}},
	}
}

// guardRow returns a wait operation that aborts the transaction unless the row uuid still
// exists in table with this name.
func guardRow(table, uuid, name string) ovsdb.Operation {
	op := guard(table, name, true)
	op.Where = []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}}
	return op
}

// ConnectWhile connects as [Connect] does while work runs on the calling goroutine (a
// daemon decodes its topology meanwhile: the initial copy of the database and the decoding
// then take the time of the longer one). When work fails, the connection attempt is
// cancelled and work's error returned.
func ConnectWhile(ctx context.Context, endpoint string, log *zap.Logger, work func() error) (*Client, error) {
	type connected struct {
		c   *Client
		err error
	}
	done := make(chan connected, 1)
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		c, err := Connect(cctx, endpoint, log)
		done <- connected{c, err}
	}()
	if err := work(); err != nil {
		cancel()
		if r := <-done; r.c != nil {
			r.c.Close()
		}
		return nil, err
	}
	r := <-done
	return r.c, r.err
}
