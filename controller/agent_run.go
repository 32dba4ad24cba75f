package controller

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"runtime/debug"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Reconfigure derives the effective config for the host settings of a new snapshot: ini
// and defaults, then the host settings, then the flags. The agent applies the result
// unless it changes the bridge layout, which needs a restart.
type Reconfigure func(*northbound.HostSettings) (*config.Config, error)

// Retry backoff after a failed reconcile (switch not reachable yet, OVSDB busy...). The
// cap keeps the flows' return after an ovs-vswitchd restart within half a second of the
// switch accepting connections again; a retry that fails costs one dial.
const (
	minRetry = 50 * time.Millisecond
	maxRetry = 500 * time.Millisecond
	// failureLogEvery is how often the same reconcile failure is logged again at error
	// level while it lasts (at debug level in between).
	failureLogEvery = 30 * time.Second
)

// Run keeps the bridges converged until ctx ends. It reacts to OVSDB events (VIFs plugged,
// unplugged or given their ofport, bridges deleted, a database reconnect), to the ofports
// of its own tunnel and patch ports arriving, to northbound updates, and to lost OpenFlow
// connections (ovs-vswitchd restarted), without polling: each wakes the loop, pending
// events are coalesced, and one reconcile computes and sends the whole difference. A
// failed reconcile is retried with backoff. reconfigure may be nil (no host re-apply).
func (a *Agent) Run(ctx context.Context, updates <-chan *northbound.Update, reconfigure Reconfigure) error {
	dirty := true
	backoff := minRetry
	var retry <-chan time.Time
	lost := a.bridgeSignals(ctx, (*flows.Bridge).Lost)
	changed := a.bridgeSignals(ctx, (*flows.Bridge).Changed)
	var verify <-chan time.Time
	if a.cfg.VerifyInterval > 0 {
		t := time.NewTicker(time.Duration(a.cfg.VerifyInterval) * time.Second)
		defer t.Stop()
		verify = t.C
	}
	first := true
	var failures failureLog
	// ofports is closed at the next Interface change while some of the agent's ports wait
	// for an ofport; nil otherwise.
	var ofports <-chan struct{}
	var waiting []string
	for {
		if dirty && retry == nil {
			ifaces := a.db.InterfacesChanged()
			rep, err := a.Reconcile(ctx)
			switch {
			case ctx.Err() != nil:
				return nil
			case err != nil:
				failures.log(a.log, err, backoff)
				retry = time.After(backoff)
				backoff = min(2*backoff, maxRetry)
			default:
				failures.recovered(a.log)
				dirty, backoff = false, minRetry
				// The first reconcile is always logged: after a restart with nothing
				// changed it says "converged" with flow_mods 0.
				initial := first
				if first {
					// The first sync read every flow from the switch and the whole
					// database; that memory is garbage now. Hand it back to the OS
					// instead of keeping it as a heap reserve for the daemon's life.
					debug.FreeOSMemory()
					first = false
					var m runtime.MemStats
					runtime.ReadMemStats(&m)
					a.log.Info("initial sync done", zap.Uint64("heap_in_use_bytes", m.HeapInuse),
						zap.Uint64("heap_released_bytes", m.HeapReleased), zap.Uint64("go_runtime_bytes", m.Sys))
				}
				if initial || rep.FlowMods() > 0 || len(rep.Retagged) > 0 {
					a.log.Info("converged", zap.Int("flow_mods", rep.FlowMods()), zap.Int("ports_tagged", len(rep.Retagged)),
						zap.Int("ports_bound", len(rep.Binding.Node.Ports)), zap.Int("networks", len(rep.Binding.Node.Networks)),
						zap.Duration("took", rep.Took), zap.Object("phases", rep.Phases))
				}
				if a.onConverged != nil {
					a.onConverged(rep)
				}
				a.logRepairs(rep)
				waiting, ofports = rep.Waiting, nil
				if len(waiting) > 0 {
					ofports = ifaces
					if a.ofportArrived(waiting) {
						dirty = true
						continue
					}
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-retry:
			retry = nil
		case <-ofports:
			ofports = a.db.InterfacesChanged()
			if a.ofportArrived(waiting) {
				a.log.Debug("ofports arrived", zap.Strings("ports", waiting))
				dirty = true
			}
		case br := <-lost:
			a.log.Warn("openflow connection lost (ovs-vswitchd restarted?), re-syncing", zap.String("bridge", br))
			dirty = true
		case br := <-changed:
			a.log.Debug("flows changed by another client", zap.String("bridge", br))
			dirty = true
		case <-verify:
			for _, br := range a.brs.Names() {
				a.brs.Writer(br).Invalidate()
			}
			a.log.Debug("periodic verify: reading every bridge's flows again")
			dirty = true
		case ev, ok := <-a.db.Events():
			if !ok {
				return errors.New("ovsdb event stream closed")
			}
			if a.handleEvent(ev) {
				dirty = true
			}
		case u, ok := <-updates:
			if !ok {
				updates = nil
				continue
			}
			if a.applyUpdate(u, reconfigure) {
				dirty = true
			}
		}
		if a.drainEvents() {
			dirty = true
		}
	}
}

// failureLog logs a lasting reconcile failure once at error level, again when it changes
// and every failureLogEvery, and at debug level in between, so that an agent retrying twice
// a second while the switch is down does not flood its log.
type failureLog struct {
	last     string
	loggedAt time.Time
	count    int
}

func (f *failureLog) log(log *zap.Logger, err error, retryIn time.Duration) {
	f.count++
	if msg := err.Error(); msg != f.last || time.Since(f.loggedAt) >= failureLogEvery {
		log.Error("reconcile failed, retrying", zap.Error(err), zap.Duration("in", retryIn), zap.Int("failures", f.count))
		f.last, f.loggedAt = msg, time.Now()
		return
	}
	log.Debug("reconcile failed, retrying", zap.Error(err), zap.Duration("in", retryIn))
}

// recovered logs the end of a run of failures.
func (f *failureLog) recovered(log *zap.Logger) {
	if f.count > 0 {
		log.Info("reconcile succeeded again", zap.Int("failures", f.count))
	}
	*f = failureLog{}
}

// OnConverged sets f to be called by Run, on Run's goroutine, with the report of every
// successful reconcile (also those that changed nothing): benchmarks and tests observe
// convergence through it. Set it before Run; nil removes it. f must not block for long, as
// the event loop waits for it.
func (a *Agent) OnConverged(f func(Report)) { a.onConverged = f }

// drainEvents handles the OVSDB events already queued, so that a burst of plugs leads to
// one reconcile; it reports whether any of them needs one.
func (a *Agent) drainEvents() bool {
	relevant := false
	for {
		select {
		case ev, ok := <-a.db.Events():
			if !ok {
				return relevant
			}
			if a.handleEvent(ev) {
				relevant = true
			}
		default:
			return relevant
		}
	}
}

// handleEvent logs an OVSDB event and reports whether it can change the desired state. A
// VIF that appears without an ofport cannot be bound yet: its update with the ofport is
// the one that matters (so a plug costs one reconcile, not two).
func (a *Agent) handleEvent(ev ovsdb.Event) bool {
	switch ev.Kind {
	case ovsdb.VIFAdded, ovsdb.VIFUpdated:
		if !ev.VIF.Ready() {
			_, bound := a.binding.Tags[ev.VIF.Name]
			a.log.Debug("vif without ofport", zap.String("port", ev.VIF.Name), zap.String("iface_id", ev.VIF.IfaceID))
			return bound
		}
	}
	switch ev.Kind {
	case ovsdb.BridgeDeleted:
		if w := a.brs.Writer(ev.Bridge); w != nil {
			a.log.Warn("managed bridge deleted, re-creating", zap.String("bridge", ev.Bridge))
			w.Reset()
		}
	case ovsdb.Resynced:
		a.log.Info("ovsdb reconnected, re-checking bridges")
	case ovsdb.VIFAdded, ovsdb.VIFUpdated, ovsdb.VIFDeleted:
		a.log.Debug("vif event", zap.Stringer("kind", ev.Kind), zap.String("port", ev.VIF.Name),
			zap.String("iface_id", ev.VIF.IfaceID), zap.Int("ofport", ev.VIF.Ofport))
	}
	return true
}

// applyUpdate takes a northbound update; it reports whether anything changed.
func (a *Agent) applyUpdate(u *northbound.Update, reconfigure Reconfigure) bool {
	if u.Err != nil {
		a.log.Error("northbound state not updated, keeping the previous one", zap.Error(u.Err))
		return false
	}
	if u.Snapshot == nil {
		return false
	}
	if reconfigure != nil {
		if bad := u.Snapshot.HostProblems(); len(bad) > 0 {
			a.log.Error("host settings refused, keeping the previous settings", zap.Error(errors.Join(problemErrors(bad)...)))
		} else if cfg, err := reconfigure(u.Snapshot.Host); err != nil {
			a.log.Error("host settings refused, keeping the previous settings", zap.Error(err))
		} else if layoutChanged(a.cfg, cfg) {
			a.log.Error("host settings change the bridges (bridge names, bridge_mappings, tunnel_types or datapath_type); restart the agent to apply that part")
		} else {
			a.cfg = cfg
		}
	}
	a.SetSnapshot(u.Snapshot)
	return true
}

// problemErrors returns the problems as errors.
func problemErrors(ps []northbound.Problem) []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// layoutChanged reports whether two configs differ in what Setup built.
func layoutChanged(old, cur *config.Config) bool {
	return old.IntegrationBridge != cur.IntegrationBridge || old.TunnelBridge != cur.TunnelBridge ||
		!reflect.DeepEqual(old.BridgeMappings, cur.BridgeMappings) ||
		!reflect.DeepEqual(old.TunnelTypes, cur.TunnelTypes) || old.DatapathType != cur.DatapathType
}

// bridgeSignals merges one signal of every managed bridge (its Lost or its Changed) into
// one channel of bridge names.
func (a *Agent) bridgeSignals(ctx context.Context, signal func(*flows.Bridge) <-chan struct{}) <-chan string {
	out := make(chan string, len(a.brs.Names()))
	for _, br := range a.brs.Names() {
		sig := signal(a.brs.Writer(br))
		go func() {
			for {
				select {
				case <-ctx.Done():
					return
				case <-sig:
					select {
					case out <- br:
					case <-ctx.Done():
						return
					}
				}
			}
		}()
	}
	return out
}

// logRepairs logs, per bridge, the flows a reconcile changed because another client had
// changed them, and counts them.
func (a *Agent) logRepairs(rep Report) {
	for _, res := range rep.Results {
		if res.Foreign == 0 {
			continue
		}
		a.repairs += res.FlowMods()
		if res.FlowMods() == 0 {
			a.log.Info("flows changed by another client need no repair (no collision with ours)",
				zap.String("bridge", res.Bridge), zap.Int("changes", res.Foreign))
			continue
		}
		fields := []zap.Field{zap.String("bridge", res.Bridge), zap.Int("changes", res.Foreign),
			zap.Int("added", len(res.Added)), zap.Int("modified", len(res.Modified)), zap.Int("deleted", len(res.Deleted)),
			zap.Duration("took", res.Duration)}
		for i, c := range slices.Concat(res.Added, res.Modified, res.Deleted) {
			if i == maxPortLogs {
				break
			}
			fields = append(fields, zap.String(fmt.Sprintf("flow%d", i), c.Flow.String()))
		}
		a.log.Warn("flows changed by another client repaired", fields...)
	}
}

// Repairs is how many flow-mods the agent has sent to undo changes other clients made to
// its flows since it started.
func (a *Agent) Repairs() int { return a.repairs }
