package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/pipeline"
)

// Agent keeps one host's bridges equal to the desired state: it owns the bridges and patch
// ports, binds VIF ports found in OVSDB to the topology's ports (local VLAN tags), builds
// the flows with the pure generators and writes them through the one write path. Every
// change — a topology reload, a VIF plugged or unplugged, a bridge deleted, ovs-vswitchd
// restarted — leads to the same reconcile: compute everything, send the difference.
type Agent struct {
	cfg  *Config
	db   *ovsdb.Client
	log  *zap.Logger
	brs  *Bridges
	topo *Topology // validated; nil until SetTopology
	// problems of the topology in force, reported once per load.
	problems []Problem
	vlans    *LocalVLANs
	// routers, when set, plumbs the DVR router namespaces (standalone mode).
	routers RouterNamespaces
	// onConverged, when set, is called by Run after every successful reconcile.
	onConverged func(Report)

	// Results of the last reconcile.
	binding Binding
	desired map[string][]flows.Flow
	sorted  bool // desired is in dump order (Desired sorts it when asked)
}

// maxPortLogs is how many ports a reconcile logs one by one at info level.
const maxPortLogs = 20

// Report is the outcome of one reconcile.
type Report struct {
	// Results are the flow syncs, one per bridge, in setup order.
	Results []flows.SyncResult
	// Retagged are the ports whose tag was changed.
	Retagged []string
	// Binding is the resolved state the flows were built from.
	Binding Binding
	// RouterErr is why some router namespaces could not be set up (nil when all were, or
	// when the agent does not manage them); the flows were programmed regardless.
	RouterErr error
	// TagsCfg is the Open_vSwitch next_cfg of the transaction that wrote the tags (0: none
	// written). The reconcile returns once ovsdb-server has committed them, as Neutron's
	// agent does; WaitTagsApplied waits for ovs-vswitchd to have applied them.
	TagsCfg int
	Took    time.Duration
	// Phases of Took.
	Phases Phases
}

// Phases is where a reconcile spent its time.
type Phases struct {
	Observe time.Duration // bridges present, router namespaces, OVSDB read
	Build   time.Duration // bind, tunnel ports, flow generation
	Sync    time.Duration // every bridge's flows, each committed in one confirmed bundle
	Tags    time.Duration // the tags committed to OVSDB
}

// MarshalLogObject renders the phases in logs.
func (p Phases) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddDuration("observe", p.Observe)
	enc.AddDuration("build", p.Build)
	enc.AddDuration("sync", p.Sync)
	enc.AddDuration("tags", p.Tags)
	return nil
}

// WaitTagsApplied waits, up to a minute, until ovs-vswitchd has applied the tags the
// reconcile wrote.
func (a *Agent) WaitTagsApplied(ctx context.Context, rep Report) error {
	if rep.TagsCfg == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return a.db.WaitApplied(ctx, rep.TagsCfg)
}

// FlowMods is the number of flow-mods the reconcile sent.
func (r Report) FlowMods() int {
	n := 0
	for _, s := range r.Results {
		n += s.FlowMods()
	}
	return n
}

// NewAgent returns an agent for the effective config cfg (validated, flags applied) on an
// OVSDB connection. Call Setup, SetTopology, then Reconcile or Run.
func NewAgent(cfg *Config, db *ovsdb.Client, log *zap.Logger) *Agent {
	a := &Agent{cfg: cfg, db: db, log: log, vlans: NewLocalVLANs()}
	a.brs = NewBridges(db, cfg.ovsRundir(), log, func(ctx context.Context, bridge string) ([]flows.Flow, error) {
		return a.desired[bridge], nil
	})
	return a
}

// DefaultOVSRundir is where ovs-vswitchd puts the bridges' management sockets by default.
const DefaultOVSRundir = "/var/run/openvswitch"

// Setup creates or adopts the bridges the config names and their patch ports: the
// integration bridge, one physical bridge per bridge_mappings entry (int-BR/phy-BR patch
// pair), and with tunnelling the tunnel bridge (patch-tun/patch-int). All of it is one OVSDB
// transaction (none when everything is already right).
func (a *Agent) Setup(ctx context.Context) error {
	c := a.cfg
	spec := func(name string, p flows.Pipeline) ovsdb.BridgeSpec {
		names := map[int]string{}
		for n, s := range p.Names() {
			names[int(n)] = s
		}
		return ovsdb.BridgeSpec{Name: name, DatapathType: c.DatapathType, MACTableSize: c.BridgeMACTableSize, TableNames: names}
	}
	a.brs.Add(spec(c.IntegrationBridge, flows.IntegrationPipeline))
	for _, physnet := range c.Physnets() {
		br := c.BridgeMappings[physnet]
		a.brs.Add(spec(br, flows.PhysicalPipeline), PatchPair{
			BridgeA: c.IntegrationBridge, PortA: IntPatchName(br), BridgeB: br, PortB: PhyPatchName(br),
		})
	}
	if c.TunnelingEnabled() {
		a.brs.Add(spec(c.TunnelBridge, flows.TunnelPipeline), PatchPair{
			BridgeA: c.IntegrationBridge, PortA: c.IntPeerPatchPort, BridgeB: c.TunnelBridge, PortB: c.TunPeerPatchPort,
		})
	}
	if err := a.brs.Ensure(ctx); err != nil {
		return fmt.Errorf("set up bridges: %w", err)
	}
	return nil
}

// IntPatchName and PhyPatchName are Neutron's names of the patch pair between br-int and a
// physical bridge.
func IntPatchName(bridge string) string { return "int-" + bridge }

// PhyPatchName: see IntPatchName.
func PhyPatchName(bridge string) string { return "phy-" + bridge }

// SetTopology replaces the topology: it is validated against the config and every
// problem is logged with the object and field; the valid objects are kept.
func (a *Agent) SetTopology(t *Topology) []Problem {
	valid, problems := Validate(t, a.cfg)
	for _, p := range problems {
		a.log.Error("topology object skipped", zap.String("kind", p.Kind), zap.String("id", p.ID),
			zap.String("field", p.Field), zap.String("reason", p.Reason))
	}
	if a.topo != nil {
		if d := DiffTopology(a.topo, valid); !d.Empty() {
			a.log.Info("topology changed", zap.Object("diff", d))
		}
	}
	a.topo, a.problems = valid, problems
	return problems
}

// Topology returns the validated topology in force.
func (a *Agent) Topology() *Topology { return a.topo }

// Desired returns the desired flows of the last reconcile, by bridge, each bridge's in
// dump order (sorted on the first call after a reconcile: syncing needs no order). Like
// Reconcile, it must not run concurrently with Reconcile or Run.
func (a *Agent) Desired() map[string][]flows.Flow {
	if !a.sorted {
		for _, fs := range a.desired {
			flows.Sort(fs)
		}
		a.sorted = true
	}
	return a.desired
}

// Binding returns the resolved state of the last reconcile.
func (a *Agent) Binding() Binding { return a.binding }

// Bridges returns the managed bridges' names in setup order.
func (a *Agent) Bridges() []string { return a.brs.Names() }

// Reconcile makes everything equal to the desired state once: bridges and patch ports
// exist, flows are synced (each bridge in one bundle, confirmed), then ports are tagged.
// Flows go first so that a port never carries traffic on its VLAN before its protection
// and translation flows are in place.
func (a *Agent) Reconcile(ctx context.Context) (Report, error) {
	start := time.Now()
	var rep Report
	if a.topo == nil {
		return rep, errors.New("reconcile: no topology")
	}
	if err := a.brs.EnsurePresent(ctx); err != nil {
		return rep, err
	}
	if a.routers != nil {
		// Router ports are plugged (dead, tag 4095) before the VIFs are read, so that
		// this reconcile already binds them when their ofport is known.
		if err := a.routers.Apply(ctx, namespace.Desired(routerInput(a.topo))); err != nil {
			a.log.Error("router namespaces", zap.Error(err))
			rep.RouterErr = err
		}
	}
	obs, err := a.observe(ctx)
	if err != nil {
		return rep, err
	}
	lap := start
	phase := func(d *time.Duration) {
		now := time.Now()
		*d, lap = now.Sub(lap), now
	}
	phase(&rep.Phases.Observe)
	b := Bind(a.cfg, a.topo, obs, a.vlans)
	var staleTunnels []string
	if a.cfg.TunnelingEnabled() {
		fdb := DeriveFDB(a.topo)
		b.Node.FDB = fdb
		ports, stale, err := a.syncTunnelPorts(ctx, desiredTunnelPorts(a.cfg, b.Node, fdb, a.topo))
		if err != nil {
			return rep, err
		}
		b.Node.TunnelPorts, staleTunnels = ports, stale
	}
	desired := pipeline.Compose(b.Node)
	a.binding, a.desired, a.sorted = b, desired, false
	phase(&rep.Phases.Build)
	for _, br := range a.brs.Names() {
		res, err := a.brs.syncWithRetry(ctx, br, desired[br])
		if err != nil {
			return rep, err
		}
		rep.Results = append(rep.Results, res)
		if res.FlowMods() > 0 {
			a.log.Info("flows synced", zap.String("bridge", br), zap.Int("added", len(res.Added)),
				zap.Int("modified", len(res.Modified)), zap.Int("deleted", len(res.Deleted)),
				zap.Int("unchanged", res.Unchanged), zap.Duration("took", res.Duration))
		}
	}
	if err := a.removeTunnelPorts(ctx, staleTunnels); err != nil {
		return rep, err
	}
	retag := map[string]int{}
	for name, tag := range b.Tags {
		if obs.PortTags[name] != tag {
			retag[name] = tag
		}
	}
	phase(&rep.Phases.Sync)
	// Tags after flows, committed without waiting for ovs-vswitchd (WaitTagsApplied).
	done, cfg, err := a.db.CommitPortTags(ctx, retag)
	if err != nil {
		return rep, err
	}
	rep.TagsCfg = cfg
	phase(&rep.Phases.Tags)
	// One line per port for the everyday plug; a summary for a node's worth of ports.
	perPort := a.log.Info
	if len(done) > maxPortLogs {
		perPort = a.log.Debug
		a.log.Info("ports tagged", zap.Int("ports", len(done)), zap.Int("next_cfg", cfg))
	}
	for _, name := range done {
		perPort("port tagged", zap.String("port", name), zap.Int("tag", retag[name]))
	}
	for _, v := range b.Unknown {
		a.log.Warn("VIF not in the topology, marked dead", zap.String("port", v.Name), zap.String("iface_id", v.IfaceID))
	}
	rep.Retagged, rep.Binding = done, b
	rep.Took = time.Since(start)
	return rep, nil
}

// observe reads what the desired state is keyed on from OVSDB.
func (a *Agent) observe(ctx context.Context) (Observed, error) {
	c := a.cfg
	obs := Observed{
		VIFs:     a.db.VIFs(),
		PortTags: a.db.PortTags(c.IntegrationBridge),
		IntPorts: map[string]uint32{},
		PhyPorts: map[string]uint32{},
	}
	ofport := func(name string) (uint32, error) {
		octx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		n, err := a.db.Ofport(octx, name)
		if err != nil {
			return 0, fmt.Errorf("patch port: %w", err)
		}
		return uint32(n), nil
	}
	var err error
	for _, physnet := range c.Physnets() {
		br := c.BridgeMappings[physnet]
		if obs.IntPorts[physnet], err = ofport(IntPatchName(br)); err != nil {
			return obs, err
		}
		if obs.PhyPorts[physnet], err = ofport(PhyPatchName(br)); err != nil {
			return obs, err
		}
	}
	if c.TunnelingEnabled() {
		if obs.PatchTun, err = ofport(c.IntPeerPatchPort); err != nil {
			return obs, err
		}
		if obs.PatchInt, err = ofport(c.TunPeerPatchPort); err != nil {
			return obs, err
		}
	}
	return obs, nil
}

// Verify reads every managed bridge back from the switch and the ports' tags from OVSDB
// and compares them with the last reconcile's desired state, changing nothing.
func (a *Agent) Verify(ctx context.Context) error {
	var errs []error
	for _, br := range a.brs.Names() {
		d, err := a.brs.Writer(br).Verify(ctx, a.Desired()[br])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !d.Empty() {
			errs = append(errs, d)
		}
	}
	tags := a.db.PortTags(a.cfg.IntegrationBridge)
	for _, name := range slices.Sorted(maps.Keys(a.binding.Tags)) {
		if want := a.binding.Tags[name]; tags[name] != want {
			errs = append(errs, fmt.Errorf("port %s: tag %d in OVSDB, want %d", name, tags[name], want))
		}
	}
	return errors.Join(errs...)
}

// WaitForPorts waits until every port of the topology that has an interface on the
// integration bridge has a valid ofport, or until timeout: the VIFs plugged just before a
// one-shot run are then bound in that run. It returns the ports still waiting.
func (a *Agent) WaitForPorts(ctx context.Context, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	for {
		var waiting []string
		want := map[string]bool{}
		for _, p := range a.topo.Ports {
			want[p.ID] = true
		}
		for _, v := range a.db.VIFs() {
			if want[v.IfaceID] && !v.Ready() && v.Ofport != -1 {
				waiting = append(waiting, v.Name)
			}
		}
		if len(waiting) == 0 || time.Now().After(deadline) {
			return waiting
		}
		select {
		case <-ctx.Done():
			return waiting
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Close closes the OpenFlow connections.
func (a *Agent) Close() { a.brs.Close() }
