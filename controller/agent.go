package controller

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Agent keeps one host's bridges equal to the desired state: it owns the bridges, patch
// and tunnel ports, binds VIF ports found in OVSDB to the model's ports (local VLAN tags),
// builds the flows with the pure generators and writes them through the one write path.
// Every change — a northbound update, a VIF plugged or unplugged or given its ofport, a
// bridge deleted, ovs-vswitchd restarted — leads to the same reconcile: compute
// everything, then send the difference. The agent does not know which northbound source
// feeds it: it takes [northbound.Snapshot]s.
type Agent struct {
	cfg *config.Config
	db  *ovsdb.Client
	log *zap.Logger
	brs *Bridges
	// model is the validated model in force; nil until SetSnapshot.
	model *northbound.Model
	vlans *LocalVLANs
	// routers, when set, plumbs the DVR router namespaces (standalone mode), with the
	// floating IP allocations of fipAlloc.
	routers  RouterNamespaces
	fipAlloc *namespace.FIPAllocators
	// fipProblems are the floating IPs (routers, ports) the last reconcile could not serve
	// here; allProblems is problems followed by them (ProblemList), replaced when either
	// changes.
	fipProblems, allProblems []northbound.Problem
	// onConverged, when set, is called by Run after every successful reconcile.
	onConverged func(Report)
	// repairs counts the flow-mods that undid other clients' changes.
	repairs int
	// unknownVIFs are the iface-ids of the VIFs the last reconcile found no port for (each
	// is logged once).
	unknownVIFs map[string]bool
	// problems are the objects the northbound state in force lacks (invalid ones).
	problems []northbound.Problem
	// groupHistory remembers the last valid version of the security groups this host's
	// ports name; groups are those in force for model (SetSnapshot makes both; nil
	// without the firewall).
	groupHistory *groupHistory
	groups       *groupsInForce

	// Results of the last reconcile.
	binding Binding
	desired map[string][]flows.Flow
	sorted  bool // desired is in dump order (Desired sorts it when asked)
}

// NewAgent returns an agent for the effective config cfg (validated, flags applied) on an
// OVSDB connection. Call Setup, SetSnapshot, then Reconcile, Converge or Run.
func NewAgent(cfg *config.Config, db *ovsdb.Client, log *zap.Logger) *Agent {
	return &Agent{cfg: cfg, db: db, log: log, vlans: NewLocalVLANs(), groupHistory: newGroupHistory(),
		brs: NewBridges(db, cfg.SocketDir(), cfg.InactivityProbe(), log)}
}

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

// SetSnapshot replaces the northbound state: the snapshot is validated against the config
// and every problem is logged with the object and field when it appears (error) and when
// it is gone (info), not again with every snapshot that still has it (a source sends a
// snapshot per change: a cloud of bad ports would fill the disk); the valid objects are
// kept. The security groups in force are resolved once here: a group the snapshot
// withholds keeps the last valid version the agent saw (see groupHistory).
func (a *Agent) SetSnapshot(s *northbound.Snapshot) []northbound.Problem {
	valid, problems := northbound.Validate(*s, a.cfg.Env())
	a.logProblemChanges(problems)
	if a.model != nil {
		if d := northbound.Compare(a.model, valid); !d.Empty() {
			a.log.Info("northbound state changed", zap.Object("diff", d))
		}
	}
	a.model, a.problems = valid, problems
	a.groups = nil // without the firewall nothing uses them
	if a.cfg.Firewall() {
		a.groups = resolveGroups(valid, a.groupHistory)
		a.groupHistory.logWithheld(a.log, valid, a.groups)
	}
	a.joinProblems()
	return problems
}

// logProblemChanges logs the problems that are new since the last snapshot, and those
// that are gone.
func (a *Agent) logProblemChanges(problems []northbound.Problem) {
	fields := func(p northbound.Problem) []zap.Field {
		return []zap.Field{zap.String("kind", string(p.Kind)), zap.String("id", p.ID),
			zap.String("field", p.Field), zap.String("reason", p.Reason)}
	}
	current := make(map[northbound.Problem]bool, len(problems))
	for _, p := range problems {
		current[p] = true
	}
	previous := make(map[northbound.Problem]bool, len(a.problems))
	for _, p := range a.problems {
		previous[p] = true
		if !current[p] {
			a.log.Info("topology object problem resolved", fields(p)...)
		}
	}
	for _, p := range problems {
		if !previous[p] {
			a.log.Error("topology object skipped", fields(p)...)
		}
	}
}

// Problems is how many northbound objects of the state in force were refused as invalid,
// or (floating IPs) cannot be served on this host.
func (a *Agent) Problems() int { return len(a.problems) + len(a.fipProblems) }

// ProblemList returns the northbound objects of the state in force that were refused as
// invalid, then the floating IPs (or their routers and gateway ports) the last reconcile
// could not serve here, each naming object and field. The slice is replaced, never
// modified, by the next snapshot or reconcile.
func (a *Agent) ProblemList() []northbound.Problem { return a.allProblems }

// joinProblems makes allProblems anew from problems and fipProblems.
func (a *Agent) joinProblems() {
	a.allProblems = a.problems
	if len(a.fipProblems) > 0 {
		a.allProblems = append(slices.Clip(a.problems), a.fipProblems...)
	}
}

// Config returns the effective config in force (replaced, never modified, when a reload
// changes it).
func (a *Agent) Config() *config.Config { return a.cfg }

// Pipeline returns the table catalogue of a managed bridge (by its role in the config).
func (a *Agent) Pipeline(bridge string) flows.Pipeline {
	switch {
	case bridge == a.cfg.IntegrationBridge:
		return flows.IntegrationPipeline
	case bridge == a.cfg.TunnelBridge && a.cfg.TunnelingEnabled():
		return flows.TunnelPipeline
	}
	return flows.PhysicalPipeline
}

// Writer returns the write path of a managed bridge (nil for another name).
func (a *Agent) Writer(bridge string) *flows.Bridge { return a.brs.Writer(bridge) }

// Model returns the validated model in force (replaced, never modified, by the next
// snapshot).
func (a *Agent) Model() *northbound.Model { return a.model }

// Desired returns the desired flows of the last reconcile, by bridge, each bridge's in
// dump order (sorted copies, made on the first call after a reconcile: syncing needs no
// order, and the slices DesiredFlows handed out stay as they were). Like Reconcile, it
// must not run concurrently with Reconcile or Run.
func (a *Agent) Desired() map[string][]flows.Flow {
	if !a.sorted {
		sorted := make(map[string][]flows.Flow, len(a.desired))
		for br, fs := range a.desired {
			fs = slices.Clone(fs)
			flows.Sort(fs)
			sorted[br] = fs
		}
		a.desired, a.sorted = sorted, true
	}
	return a.desired
}

// DesiredFlows returns the desired flows of the last reconcile, by bridge, in no particular
// order and without sorting them (Desired sorts): for counting, on Run's goroutine. Neither
// the map nor its slices are modified afterwards (the next reconcile makes new ones), so a
// reader on another goroutine may keep them once they are handed over.
func (a *Agent) DesiredFlows() map[string][]flows.Flow { return a.desired }

// Binding returns the resolved state of the last reconcile (replaced, never modified, by
// the next reconcile: a reader on another goroutine may keep it once it is handed over).
func (a *Agent) Binding() Binding { return a.binding }

// Bridges returns the managed bridges' names in setup order.
func (a *Agent) Bridges() []string { return a.brs.Names() }

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

// WaitForPorts waits until every port of the model that has an interface on the
// integration bridge has a valid ofport, or until timeout: the VIFs plugged just before a
// one-shot run are then bound in that run. It returns the ports still waiting. It wakes on
// the changes of OVSDB's Interface rows.
func (a *Agent) WaitForPorts(ctx context.Context, timeout time.Duration) []string {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	want := map[string]bool{}
	for _, p := range a.model.Ports {
		want[p.ID] = true
	}
	for {
		changed := a.db.InterfacesChanged()
		var waiting []string
		for _, v := range a.db.VIFs() {
			if want[v.IfaceID] && !v.Ready() && v.Ofport != -1 {
				waiting = append(waiting, v.Name)
			}
		}
		if len(waiting) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return waiting
		case <-changed:
		case <-time.After(recheckInterval): // a VIF's bridge link changes no Interface row
		}
	}
}

// recheckInterval is how often a wait on OVSDB looks again without a change signal.
const recheckInterval = 100 * time.Millisecond

// Close closes the OpenFlow connections.
func (a *Agent) Close() { a.brs.Close() }
