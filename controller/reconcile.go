package controller

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

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
	// Waiting are the agent's own ports (tunnel and patch ports) that had no ofport when
	// the state was read: no flow points at them yet. Their ofports arrive as OVSDB
	// changes, and the next reconcile adds their flows.
	Waiting []string
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
	Observe time.Duration // router namespaces, OVSDB read
	Build   time.Duration // bind, tunnel ports, flow generation: the whole plan
	Layout  time.Duration // bridges, patch and tunnel ports written to OVSDB (usually nothing)
	Sync    time.Duration // every bridge's flows, each committed in one confirmed bundle
	Tags    time.Duration // the tags committed and stale tunnel ports removed
}

// MarshalLogObject renders the phases in logs.
func (p Phases) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddDuration("observe", p.Observe)
	enc.AddDuration("build", p.Build)
	enc.AddDuration("layout", p.Layout)
	enc.AddDuration("sync", p.Sync)
	enc.AddDuration("tags", p.Tags)
	return nil
}

// FlowMods is the number of flow-mods the reconcile sent.
func (r Report) FlowMods() int {
	n := 0
	for _, s := range r.Results {
		n += s.FlowMods()
	}
	return n
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

// plan is everything one reconcile writes, computed before anything is written.
type plan struct {
	binding Binding
	desired map[string][]flows.Flow
	// tunnelPorts are br-tun's desired tunnel ports (set exactly); staleTunnels the
	// agent's tunnel ports to remove once no flow points at them.
	tunnelPorts  []ovsdb.PortSpec
	staleTunnels []string
	// retag maps port name → tag for the ports whose tag differs.
	retag map[string]int
	// waiting are the agent's ports without an ofport yet.
	waiting []string
}

// Reconcile makes everything equal to the desired state once. It reads OVSDB, computes the
// whole plan — binding, local VLANs, tunnel ports, every bridge's flows, tags — and then
// writes it in the order that keeps traffic safe: bridges, patch and tunnel ports first
// (one OVSDB transaction, none when all is there); then every bridge's flows, each in one
// bundle confirmed by a barrier; then the tags, so that a port never carries traffic on its
// VLAN before its protection and translation flows are in place; and last the removal of
// tunnel ports no flow points at any more. Nothing in it waits for an ofport: a port
// without one is left out of the flows and reported in Report.Waiting.
func (a *Agent) Reconcile(ctx context.Context) (Report, error) {
	start := time.Now()
	var rep Report
	if a.model == nil {
		return rep, errors.New("reconcile: no northbound state")
	}
	if a.routers != nil {
		// Router ports are plugged (dead, tag 4095) before the VIFs are read, so that
		// this reconcile already binds them when their ofport is known.
		in := routerInput(a.model, a.cfg.AgentMode)
		if err := a.routers.Apply(ctx, namespace.Desired(in), a.floatingIPs(in)); err != nil {
			a.log.Error("router namespaces", zap.Error(err))
			rep.RouterErr = err
		}
	}
	obs := a.observe()
	lap := start
	phase := func(d *time.Duration) {
		now := time.Now()
		*d, lap = now.Sub(lap), now
	}
	phase(&rep.Phases.Observe)

	p := a.plan(obs)
	a.binding, a.desired, a.sorted = p.binding, p.desired, false
	rep.Binding, rep.Waiting = p.binding, p.waiting
	phase(&rep.Phases.Build)

	if err := a.brs.EnsurePresent(ctx, p.tunnelPorts); err != nil {
		return rep, err
	}
	phase(&rep.Phases.Layout)
	for _, br := range a.brs.Names() {
		res, err := a.brs.syncWithRetry(ctx, br, p.desired[br])
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
	phase(&rep.Phases.Sync)

	// Tags after flows, committed without waiting for ovs-vswitchd (WaitTagsApplied).
	done, cfg, err := a.db.CommitPortTags(ctx, p.retag)
	if err != nil {
		return rep, err
	}
	rep.TagsCfg, rep.Retagged = cfg, done
	if len(p.staleTunnels) > 0 {
		if err := a.db.DeletePorts(ctx, a.cfg.TunnelBridge, p.staleTunnels); err != nil {
			return rep, err
		}
		a.log.Info("tunnel ports removed", zap.Strings("ports", p.staleTunnels))
	}
	phase(&rep.Phases.Tags)
	if a.routers != nil {
		a.announceFloatingIPs(ctx, rep)
	}
	a.logReconcile(p, done, cfg)
	rep.Took = time.Since(start)
	return rep, nil
}

// logReconcile logs what a reconcile changed in OVSDB: one line per port for the everyday
// plug, a summary for a node's worth of ports.
func (a *Agent) logReconcile(p plan, tagged []string, nextCfg int) {
	perPort := a.log.Info
	if len(tagged) > maxPortLogs {
		perPort = a.log.Debug
		a.log.Info("ports tagged", zap.Int("ports", len(tagged)), zap.Int("next_cfg", nextCfg))
	}
	for _, name := range tagged {
		perPort("port tagged", zap.String("port", name), zap.Int("tag", p.retag[name]))
	}
	// Each unknown VIF is logged once, when it becomes unknown (a VIF waits for its port
	// until the northbound source knows it: every reconcile meanwhile would repeat it).
	unknown := make(map[string]bool, len(p.binding.Unknown))
	for _, v := range p.binding.Unknown {
		unknown[v.IfaceID] = true
		if !a.unknownVIFs[v.IfaceID] {
			a.log.Warn("VIF not in the northbound state, kept dead until it is", zap.String("port", v.Name), zap.String("iface_id", v.IfaceID))
		}
	}
	a.unknownVIFs = unknown
	if len(p.waiting) > 0 {
		a.log.Info("ports without an ofport yet, no flows point at them", zap.Strings("ports", p.waiting))
	}
}

// observe reads what the desired state is keyed on from the OVSDB cache, without waiting.
func (a *Agent) observe() Observed {
	c := a.cfg
	obs := Observed{
		VIFs:     a.db.VIFs(),
		PortTags: a.db.PortTags(c.IntegrationBridge),
		IntPorts: map[string]uint32{},
		PhyPorts: map[string]uint32{},
	}
	var names []string
	for _, physnet := range c.Physnets() {
		br := c.BridgeMappings[physnet]
		names = append(names, IntPatchName(br), PhyPatchName(br))
	}
	if c.TunnelingEnabled() {
		names = append(names, c.IntPeerPatchPort, c.TunPeerPatchPort)
		obs.TunnelBridgePorts = a.db.BridgePorts(c.TunnelBridge)
		for _, p := range obs.TunnelBridgePorts {
			if isTunnelInterface(p.Type) {
				names = append(names, p.Name)
			}
		}
	}
	obs.Ofports = a.db.Ofports(names)
	valid := func(name string) uint32 { return uint32(max(obs.Ofports[name], 0)) }
	for _, physnet := range c.Physnets() {
		br := c.BridgeMappings[physnet]
		obs.IntPorts[physnet], obs.PhyPorts[physnet] = valid(IntPatchName(br)), valid(PhyPatchName(br))
	}
	if c.TunnelingEnabled() {
		obs.PatchTun, obs.PatchInt = valid(c.IntPeerPatchPort), valid(c.TunPeerPatchPort)
	}
	return obs
}

// plan computes everything a reconcile writes from what OVSDB showed.
func (a *Agent) plan(obs Observed) plan {
	p, problems := computePlan(a.cfg, a.model, a.groups, obs, a.vlans)
	for _, err := range problems {
		a.log.Error("tunnel port not created", zap.Error(err))
	}
	return p
}

// computePlan is the pure part of a reconcile: from the config, the validated model and
// what OVSDB showed, every bridge's flows, the tunnel ports, the tags to change and the
// ports still waiting for an ofport. It updates the local VLAN allocator. groups are the
// security groups in force (nil: the model's valid ones). Tunnel ports that cannot be made
// (a local and remote address of different families) are left out and returned as errors.
func computePlan(c *config.Config, model *northbound.Model, groups *groupsInForce, obs Observed, vlans *LocalVLANs) (plan, []error) {
	var problems []error
	b := bind(c, model, groups, obs, vlans)
	p := plan{binding: b, retag: map[string]int{}}
	for name, tag := range b.Tags {
		if obs.PortTags[name] != tag {
			p.retag[name] = tag
		}
	}
	for _, physnet := range c.Physnets() {
		br := c.BridgeMappings[physnet]
		p.waitFor(obs, IntPatchName(br), PhyPatchName(br))
	}
	if c.TunnelingEnabled() {
		p.waitFor(obs, c.IntPeerPatchPort, c.TunPeerPatchPort)
		fdb := model.L2popFDB()
		b.Node.FDB = fdb
		settings := tunnelSettings(c)
		for _, tp := range desiredTunnelPorts(c, b.Node, fdb, model.OtherHosts) {
			ifaceType, opts, err := tunnels.PortOptions(tp.tunnelType, tp.remote, settings)
			if err != nil {
				problems = append(problems, fmt.Errorf("tunnel port %s to %s: %w", tp.name, tp.remote, err))
				continue
			}
			p.tunnelPorts = append(p.tunnelPorts, ovsdb.PortSpec{Bridge: c.TunnelBridge, Name: tp.name, Type: ifaceType, Options: opts})
			switch ofport := obs.Ofports[tp.name]; {
			case ofport > 0:
				b.Node.TunnelPorts = append(b.Node.TunnelPorts, state.TunnelPort{Name: tp.name, Type: tp.tunnelType, RemoteIP: tp.remote, OFPort: uint32(ofport)})
			case ofport == 0:
				p.waiting = append(p.waiting, tp.name)
			}
		}
		slices.SortFunc(b.Node.TunnelPorts, func(x, y state.TunnelPort) int { return cmp.Compare(x.OFPort, y.OFPort) })
		p.staleTunnels = staleTunnelPorts(obs.TunnelBridgePorts, p.tunnelPorts)
	}
	p.desired = pipeline.Compose(b.Node)
	return p, problems
}

// waitFor adds the named ports to the waiting list when they have no ofport yet.
func (p *plan) waitFor(obs Observed, names ...string) {
	for _, name := range names {
		if obs.Ofports[name] == 0 {
			p.waiting = append(p.waiting, name)
		}
	}
}

// Converge reconciles until no port of the agent's waits for an ofport any more, or until
// timeout, waking on OVSDB's Interface changes between reconciles: a one-shot run
// (--once) and tests use it. It returns the last report; the ports still waiting at the
// timeout are in its Waiting, and are not an error.
func (a *Agent) Converge(ctx context.Context, timeout time.Duration) (Report, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	var tagsCfg int
	for {
		changed := a.db.InterfacesChanged()
		rep, err := a.Reconcile(ctx)
		if err != nil {
			return rep, err
		}
		tagsCfg = max(tagsCfg, rep.TagsCfg)
		rep.TagsCfg = tagsCfg
		if len(rep.Waiting) == 0 {
			return rep, nil
		}
		if a.ofportArrived(rep.Waiting) {
			continue
		}
		select {
		case <-ctx.Done():
			return rep, ctx.Err()
		case <-deadline.C:
			return rep, nil
		case <-changed:
		case <-time.After(recheckInterval): // a port's bridge link changes no Interface row
		}
	}
}

// ofportArrived reports whether one of the named ports has an ofport (or failed) now.
func (a *Agent) ofportArrived(names []string) bool {
	for _, n := range a.db.Ofports(names) {
		if n != 0 {
			return true
		}
	}
	return false
}
