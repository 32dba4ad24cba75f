package controller

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Bridges keeps the agent's bridges in existence and their flows equal to the desired sets.
// It is the piece that notices, through the OVSDB monitor, a managed bridge deleted by hand
// (or a fresh ovsdb-server that lacks it), re-creates it with its patch ports, and re-syncs
// its flows through the one write path. What the flows are is decided elsewhere: Desired is
// called after every re-creation, because ofports may have changed.
type Bridges struct {
	db     *ovsdb.Client
	rundir string
	log    *zap.Logger

	mu      sync.Mutex
	specs   map[string]ovsdb.BridgeSpec
	order   []string
	patches []PatchPair
	writers map[string]*flows.Bridge
	// Desired returns the desired flows of a bridge. It is called with the current ofports
	// known to OVSDB.
	desired func(ctx context.Context, bridge string) ([]flows.Flow, error)
}

// PatchPair is a pair of patch ports joining two managed bridges (patch-int/patch-tun,
// int-br-vlan/phy-br-vlan).
type PatchPair struct {
	BridgeA, PortA, BridgeB, PortB string
}

// NewBridges returns the keeper of the bridges; rundir is where ovs-vswitchd puts the
// BRIDGE.mgmt sockets. desired computes a bridge's flows.
func NewBridges(db *ovsdb.Client, rundir string, log *zap.Logger, desired func(ctx context.Context, bridge string) ([]flows.Flow, error)) *Bridges {
	return &Bridges{db: db, rundir: rundir, log: log, specs: map[string]ovsdb.BridgeSpec{}, writers: map[string]*flows.Bridge{}, desired: desired}
}

// Manage adds a bridge (with its patch pairs, which must join managed bridges) and makes
// every managed bridge exist; call Reconcile afterwards to program flows.
func (b *Bridges) Manage(ctx context.Context, spec ovsdb.BridgeSpec, patches ...PatchPair) error {
	b.Add(spec, patches...)
	return b.ensure(ctx)
}

// Add adds a bridge (with its patch pairs, which must join managed bridges) without touching
// OVSDB: add them all, then one Ensure creates or adopts them in one transaction.
func (b *Bridges) Add(spec ovsdb.BridgeSpec, patches ...PatchPair) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.specs[spec.Name]; !ok {
		b.order = append(b.order, spec.Name)
	}
	b.specs[spec.Name] = spec
	for _, p := range patches {
		if !slices.Contains(b.patches, p) {
			b.patches = append(b.patches, p)
		}
	}
	if b.writers[spec.Name] == nil {
		b.writers[spec.Name] = flows.NewBridge(spec.Name, filepath.Join(b.rundir, spec.Name+".mgmt"), b.log)
	}
}

// use makes w the write path of bridge name, unless it has one (w is closed then). A later
// Add of the bridge keeps it.
func (b *Bridges) use(name string, w *flows.Bridge) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.writers[name] != nil {
		_ = w.Close()
		return
	}
	b.writers[name] = w
}

// Writer returns the write path of a managed bridge.
func (b *Bridges) Writer(name string) *flows.Bridge {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.writers[name]
}

// Names returns the managed bridges in the order they were added.
func (b *Bridges) Names() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.order...)
}

// Ensure makes every managed bridge and patch pair exist (idempotent).
func (b *Bridges) Ensure(ctx context.Context) error { return b.ensure(ctx) }

// EnsurePresent re-creates what is missing — a managed bridge or a patch port, as the OVSDB
// cache shows them — and writes nothing when all is there: a reconcile then costs no OVSDB
// transaction (each one waits for ovs-vswitchd to reconfigure).
func (b *Bridges) EnsurePresent(ctx context.Context) error {
	if b.missing() {
		return b.ensure(ctx)
	}
	return nil
}

// missing reports whether a managed bridge or patch port is absent from the cache.
func (b *Bridges) missing() bool {
	return !b.db.LayoutPresent(b.layout())
}

// layout returns the managed bridges and patch pairs.
func (b *Bridges) layout() ovsdb.Layout {
	b.mu.Lock()
	defer b.mu.Unlock()
	var l ovsdb.Layout
	for _, n := range b.order {
		l.Bridges = append(l.Bridges, b.specs[n])
	}
	for _, p := range b.patches {
		l.Patches = append(l.Patches, ovsdb.PatchPair(p))
	}
	return l
}

// ensure makes every managed bridge and patch pair exist and be configured (idempotent): one
// OVSDB transaction holding only what differs, none when all is right. The flow writers of
// the bridges it created are reset (their flows are gone).
func (b *Bridges) ensure(ctx context.Context) error {
	created, err := b.db.EnsureLayout(ctx, b.layout())
	if err != nil {
		return err
	}
	for _, name := range created {
		b.Writer(name).Reset()
	}
	return nil
}

// Reconcile makes every managed bridge exist and syncs its flows.
func (b *Bridges) Reconcile(ctx context.Context) ([]flows.SyncResult, error) {
	if err := b.ensure(ctx); err != nil {
		return nil, err
	}
	b.mu.Lock()
	names := append([]string(nil), b.order...)
	b.mu.Unlock()
	var results []flows.SyncResult
	for _, n := range names {
		fs, err := b.desired(ctx, n)
		if err != nil {
			return results, fmt.Errorf("desired flows of %s: %w", n, err)
		}
		res, err := b.syncWithRetry(ctx, n, fs)
		if err != nil {
			return results, err
		}
		results = append(results, res)
	}
	return results, nil
}

// syncWithRetry retries while a just-created bridge's management socket is not there yet.
func (b *Bridges) syncWithRetry(ctx context.Context, name string, fs []flows.Flow) (flows.SyncResult, error) {
	w := b.Writer(name)
	var lastErr error
	for attempt := 0; attempt < 50; attempt++ {
		res, err := w.Sync(ctx, fs)
		if err == nil {
			return res, nil
		}
		if _, ok := err.(*flows.FlowError); ok {
			return res, err // the switch refused flows: retrying will not help
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return flows.SyncResult{}, lastErr
}

// Run consumes OVSDB events until ctx ends: when a managed bridge disappears, or the
// database was reloaded after a reconnect, it re-creates what is missing and re-syncs.
// VIF events are passed to onVIF (may be nil).
func (b *Bridges) Run(ctx context.Context, onVIF func(ovsdb.Event)) error {
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-b.db.Events():
			if !ok {
				return fmt.Errorf("ovsdb event stream closed")
			}
			switch ev.Kind {
			case ovsdb.BridgeDeleted, ovsdb.Resynced:
				if ev.Kind == ovsdb.BridgeDeleted && !b.manages(ev.Bridge) {
					continue
				}
				b.log.Warn("managed bridge missing, re-creating", zap.String("bridge", ev.Bridge), zap.Stringer("event", ev.Kind))
				if ev.Bridge != "" {
					b.Writer(ev.Bridge).Reset()
				}
				start := time.Now()
				res, err := b.Reconcile(ctx)
				if err != nil {
					b.log.Error("re-create bridges", zap.Error(err))
					continue
				}
				for _, r := range res {
					if r.FlowMods() > 0 {
						b.log.Info("re-synced bridge", zap.String("result", r.String()))
					}
				}
				b.log.Info("bridges restored", zap.Duration("took", time.Since(start)))
			default:
				if onVIF != nil {
					onVIF(ev)
				}
			}
		}
	}
}

func (b *Bridges) manages(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.specs[name]
	return ok
}

// Close closes the OpenFlow connections.
func (b *Bridges) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.writers {
		_ = w.Close()
	}
}
