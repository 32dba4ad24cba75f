// Package ovsdb is dvrflow's view of Open vSwitch's configuration database: it owns the
// bridges and their patch and tunnel ports, sets VLAN tags on VIF ports, and discovers VIFs
// (interfaces with external_ids:iface-id) as a stream of typed events.
//
// It talks to ovsdb-server through libovsdb with the generated models in package vswitchd,
// which hold only the columns dvrflow uses (see that package). Every write is one
// transaction whose results are all checked and bumps Open_vSwitch.next_cfg; it returns
// only once ovs-vswitchd has applied it (cur_cfg >= next_cfg), so a caller that then reads
// an ofport or connects to a bridge's management socket sees the result. The exception is
// [Client.CommitPortTags], which leaves the wait to [Client.WaitApplied]. Waits wake up on
// the cache's change notifications, not on a timer.
package ovsdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-logr/zapr"
	"github.com/ovn-kubernetes/libovsdb/cache"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

const (
	// txnTimeout bounds every transaction plus the wait for ovs-vswitchd, even when the
	// caller's context has no deadline: with reconnect enabled libovsdb blocks a
	// transaction until the server is back.
	txnTimeout = 30 * time.Second
	// reconnectTimeout bounds one connection attempt (connect + monitor replay).
	reconnectTimeout = 5 * time.Second
	// inactivityTimeout is how long a silent connection may stay idle before an echo probe.
	inactivityTimeout = 10 * time.Second
	// eventBuffer is the capacity of the Events channel.
	eventBuffer = 1024
	// recheckInterval is how often a wait for the cache (cur_cfg, an ofport) looks again
	// without a change notification: a safety net, since libovsdb drops notifications when
	// its event queue is full. Waits normally wake up on the notification itself.
	recheckInterval = 250 * time.Millisecond
)

// errConflict marks a transaction aborted by one of its guards (a row that was expected to be
// absent exists, or the reverse): the cache was behind the database, and the operation is
// retried from a fresh look at the cache.
var errConflict = errors.New("database changed concurrently")

// Client is a connection to one ovsdb-server holding the Open_vSwitch database. It keeps a
// cache of the Open_vSwitch, Bridge, Port, Interface and Flow_Table rows (only the columns
// dvrflow reads), reconnects on its own, and is safe for concurrent use.
type Client struct {
	ovs client.Client
	log *zap.Logger
	bo  *closableBackOff

	events chan Event
	wake   chan struct{} // capacity 1: "the cache changed", coalesced
	// changes signals the waiters on a table's rows (waitFor), by table name. The map is
	// filled before the cache handlers are added and never changes afterwards.
	changes   map[string]*changeSignal
	done      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex
	rootUUID string // the first Open_vSwitch row seen; a later add means a full reload
	reloaded bool   // set by the cache handler, consumed by the event loop

	// Owned by the event loop goroutine (and by Connect before it starts).
	known knownState
}

// Connect connects to the ovsdb-server at endpoint ("unix:PATH" or "tcp:IP:PORT"), starts
// monitoring the tables dvrflow uses and waits for the initial copy of them. The returned
// client reconnects by itself (with backoff, and after an inactivity probe fails); the
// transactions of a disconnected client wait for the reconnection until their context ends.
// log receives the client's and libovsdb's messages.
func Connect(ctx context.Context, endpoint string, log *zap.Logger) (*Client, error) {
	if log == nil {
		log = zap.NewNop()
	}
	log = log.With(zap.String("ovsdb", endpoint))
	dbModel, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, fmt.Errorf("ovsdb model: %w", err)
	}
	logr := zapr.NewLogger(log.Named("libovsdb"))
	bo := newBackOff()
	ovs, err := client.NewOVSDBClient(dbModel,
		client.WithEndpoint(endpoint),
		client.WithReconnect(reconnectTimeout, bo),
		client.WithInactivityCheck(inactivityTimeout, reconnectTimeout, bo),
		client.WithLogger(&logr))
	if err != nil {
		return nil, fmt.Errorf("ovsdb client for %s: %w", endpoint, err)
	}
	c := &Client{
		ovs:     ovs,
		log:     log,
		bo:      bo,
		events:  make(chan Event, eventBuffer),
		wake:    make(chan struct{}, 1),
		changes: map[string]*changeSignal{},
		done:    make(chan struct{}),
	}
	for table := range dbModel.Types() {
		c.changes[table] = &changeSignal{}
	}
	if err := ovs.Connect(ctx); err != nil {
		return nil, fmt.Errorf("connect to ovsdb %s: %w", endpoint, err)
	}
	// Handlers before Monitor, or the initial dump is missed. libovsdb calls them after
	// the cache holds the change, so a woken waiter sees it.
	ovs.Cache().AddEventHandler(&cache.EventHandlerFuncs{
		AddFunc: func(table string, m model.Model) {
			if root, ok := m.(*vswitchd.OpenvSwitch); ok {
				c.noteRoot(root.UUID)
			}
			c.changed(table)
			c.poke()
		},
		UpdateFunc: func(table string, _, _ model.Model) {
			c.changed(table)
			if table != vswitchd.OpenvSwitchTable { // cur_cfg moves on every write
				c.poke()
			}
		},
		DeleteFunc: func(table string, _ model.Model) {
			c.changed(table)
			c.poke()
		},
	})
	// The monitored columns are the models' columns except those dvrflow only writes
	// (Port.vlan_mode and trunks, Interface.ofport_request): they need no cache.
	root := &vswitchd.OpenvSwitch{}
	br := &vswitchd.Bridge{}
	port := &vswitchd.Port{}
	iface := &vswitchd.Interface{}
	ft := &vswitchd.FlowTable{}
	mon := ovs.NewMonitor(
		client.WithTable(root, &root.Bridges, &root.NextCfg, &root.CurCfg),
		client.WithTable(br, &br.Name, &br.Ports, &br.DatapathType, &br.FailMode, &br.Protocols,
			&br.OtherConfig, &br.FlowTables),
		client.WithTable(port, &port.Name, &port.Interfaces, &port.Tag),
		client.WithTable(iface, &iface.Name, &iface.Type, &iface.Ofport, &iface.Error,
			&iface.ExternalIDs, &iface.Options),
		client.WithTable(ft, &ft.Name),
	)
	if _, err := ovs.Monitor(ctx, mon); err != nil {
		c.bo.stop()
		ovs.Close()
		return nil, fmt.Errorf("monitor ovsdb %s: %w", endpoint, err)
	}
	// The JSON-RPC codec keeps the last reply it read, here the initial dump (megabytes at
	// 10,000 ports), until the next reply: an echo's small reply replaces it now. Not
	// worth failing Connect over.
	if err := ovs.Echo(ctx); err != nil {
		log.Debug("echo after the initial dump", zap.Error(err))
	}
	c.known = c.current() // events report changes from here on; VIFs() gives the start
	c.wg.Add(1)
	go c.run()
	log.Info("connected to ovsdb")
	return c, nil
}

// Close disconnects from the server, stops the event loop and closes the Events channel.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		c.bo.stop()
		// Stop the event loop before the client: it reads the client's cache.
		close(c.done)
		c.wg.Wait()
		c.ovs.Close()
		close(c.events)
	})
}

// noteRoot records the Open_vSwitch row. Seeing it added again means libovsdb reconnected
// and reloaded the whole database (it drops its cache without delete events), so the event
// loop reports Resynced after diffing the reloaded cache.
func (c *Client) noteRoot(uuid string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rootUUID != "" {
		c.reloaded = true
	}
	c.rootUUID = uuid
}

// poke wakes the event loop without ever blocking libovsdb's event goroutine.
func (c *Client) poke() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// root returns the UUID of the Open_vSwitch row from the cache.
func (c *Client) root() (string, error) {
	for uuid := range c.table(vswitchd.OpenvSwitchTable) {
		return uuid, nil
	}
	return "", errors.New("no Open_vSwitch row (is the database initialised?)")
}

// table returns the cached rows of one table by UUID. The models are shared with the cache
// and must not be modified.
func (c *Client) table(name string) map[string]model.Model {
	cache := c.ovs.Cache()
	if cache == nil {
		return nil // closed
	}
	rc := cache.Table(name)
	if rc == nil {
		return nil
	}
	return rc.RowsShallow()
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
	res, err := c.ovs.Transact(ctx, ops...)
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

// WaitApplied waits until ovs-vswitchd has applied the configuration numbered cfg
// (Open_vSwitch.cur_cfg >= cfg), as returned by [Client.CommitPortTags], or until ctx ends.
// cfg 0 (nothing was written) returns at once. It wakes up when the cache sees cur_cfg
// change. If ovsdb-server is replaced by one with a fresh database meanwhile, cur_cfg starts
// again from 0 and the wait lasts until ctx ends: give ctx a deadline.
func (c *Client) WaitApplied(ctx context.Context, cfg int) error {
	if cfg <= 0 {
		return nil
	}
	err := c.waitFor(ctx, vswitchd.OpenvSwitchTable, func() bool {
		for _, m := range c.table(vswitchd.OpenvSwitchTable) {
			if m.(*vswitchd.OpenvSwitch).CurCfg >= cfg {
				return true
			}
		}
		return false
	})
	if err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to apply next_cfg %d: %w", cfg, err)
	}
	return nil
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

// changed wakes the waiters on table's rows; libovsdb's event goroutine calls it.
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

// closableBackOff is libovsdb's reconnect backoff. It never gives up: libovsdb panics when
// the backoff returns Stop (ExponentialBackOff does after MaxElapsedTime, 15 minutes by
// default). After stop (Close) it waits a day between attempts, because libovsdb's Close
// does not end a reconnection loop that is already running.
type closableBackOff struct {
	backoff.BackOff
	stopped atomic.Bool
}

func newBackOff() *closableBackOff {
	e := backoff.NewExponentialBackOff()
	e.InitialInterval = 100 * time.Millisecond
	e.MaxInterval = 2 * time.Second
	e.MaxElapsedTime = 0
	return &closableBackOff{BackOff: e}
}

func (b *closableBackOff) NextBackOff() time.Duration {
	if b.stopped.Load() {
		return 24 * time.Hour
	}
	return b.BackOff.NextBackOff()
}

func (b *closableBackOff) stop() { b.stopped.Store(true) }

// opList collects the operations of one transaction and the first error met building them.
type opList struct {
	ops []ovsdb.Operation
	err error
}

func (l *opList) add(ops []ovsdb.Operation, err error) {
	l.ops = append(l.ops, ops...)
	if l.err == nil && err != nil {
		l.err = fmt.Errorf("build transaction: %w", err)
	}
}

// commit commits the operations unless building them failed.
func (l *opList) commit(ctx context.Context, c *Client) error {
	if l.err != nil {
		return l.err
	}
	return c.commit(ctx, l.ops)
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
