package controller

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Bridges is the agent's set of managed bridges: their OVSDB layout (bridges, patch pairs,
// and the tunnel ports a reconcile asks for) and one flow write path per bridge. What the
// flows and tunnel ports are is decided by the reconcile; Bridges makes OVSDB match.
type Bridges struct {
	db     *ovsdb.Client
	rundir string
	probe  time.Duration // of_inactivity_probe of every OpenFlow connection
	log    *zap.Logger

	mu      sync.Mutex
	specs   map[string]ovsdb.BridgeSpec
	order   []string
	patches []PatchPair
	writers map[string]*flows.Bridge
}

// PatchPair is a pair of patch ports joining two managed bridges (patch-int/patch-tun,
// int-br-vlan/phy-br-vlan).
type PatchPair struct {
	BridgeA, PortA, BridgeB, PortB string
}

// NewBridges returns an empty set of managed bridges; rundir is where ovs-vswitchd puts
// the BRIDGE.mgmt sockets, probe the echo interval of their OpenFlow connections (0: none).
func NewBridges(db *ovsdb.Client, rundir string, probe time.Duration, log *zap.Logger) *Bridges {
	return &Bridges{db: db, rundir: rundir, probe: probe, log: log, specs: map[string]ovsdb.BridgeSpec{}, writers: map[string]*flows.Bridge{}}
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
		w := flows.NewBridge(spec.Name, filepath.Join(b.rundir, spec.Name+".mgmt"), b.log)
		w.SetInactivityProbe(b.probe)
		b.writers[spec.Name] = w
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

// Ensure makes every managed bridge and patch pair exist and be configured (idempotent).
func (b *Bridges) Ensure(ctx context.Context) error { return b.ensure(ctx, b.layout(nil)) }

// EnsurePresent makes OVSDB hold the managed bridges, their patch pairs and the given
// ports (br-tun's tunnel ports, set exactly), as one transaction of what is missing or
// differs; it writes nothing when the cache shows all of it: a reconcile then costs no
// OVSDB transaction (each one waits for ovs-vswitchd to reconfigure).
func (b *Bridges) EnsurePresent(ctx context.Context, ports []ovsdb.PortSpec) error {
	l := b.layout(ports)
	if b.db.LayoutPresent(l) {
		return nil
	}
	return b.ensure(ctx, l)
}

// layout returns the managed bridges and patch pairs, and the given ports.
func (b *Bridges) layout(ports []ovsdb.PortSpec) ovsdb.Layout {
	b.mu.Lock()
	defer b.mu.Unlock()
	var l ovsdb.Layout
	for _, n := range b.order {
		l.Bridges = append(l.Bridges, b.specs[n])
	}
	for _, p := range b.patches {
		l.Patches = append(l.Patches, ovsdb.PatchPair(p))
	}
	l.Ports = ports
	return l
}

// ensure makes the layout exist and be configured (idempotent): one OVSDB transaction
// holding only what differs, none when all is right. The flow writers of the bridges it
// created are reset (their flows are gone).
func (b *Bridges) ensure(ctx context.Context, l ovsdb.Layout) error {
	created, err := b.db.EnsureLayout(ctx, l)
	if err != nil {
		return err
	}
	for _, name := range created {
		b.Writer(name).Reset()
	}
	return nil
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

// Close closes the OpenFlow connections.
func (b *Bridges) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, w := range b.writers {
		_ = w.Close()
	}
}
