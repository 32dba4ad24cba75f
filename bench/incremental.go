package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/topology"
)

// incrementalResult holds, per VIF, the time from its OVSDB insert (or delete) to
//   - Plug/Unplug: its flows confirmed: the switch's flow monitor reports its MAC spoofing
//     flow (table 25) added (deleted), which it does once the agent's bundle is committed;
//   - PlugDone/UnplugDone: the end of the agent's reconcile that installed (removed) its
//     flows, which also includes setting its tag and waiting for ovs-vswitchd to apply it.
//   - Ofport: ovs-vswitchd's own part of a plug, from the insert to the ofport it assigned
//     committed to OVSDB (the agent cannot program a port before it knows its ofport).
type incrementalResult struct {
	Plug, Unplug         []time.Duration
	PlugDone, UnplugDone []time.Duration
	Ofport               []time.Duration
}

// stamped is a reconcile report with the time the agent's event loop produced it.
type stamped struct {
	rep controller.Report
	at  time.Time
}

// incremental runs the agent daemon loop (Agent.Run) in-process on the converged node, with
// a topology that also holds count more VM ports, then plugs those ports one by one, each
// in its own OVSDB transaction, waiting for the agent to have bound it, and then unplugs
// them one by one.
func (b *bench) incremental(ctx context.Context, n *node, count int) (*incrementalResult, error) {
	ext := n.params
	ext.Ports += count
	topo, err := topogen.Generate(ext)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(b.workDir, fmt.Sprintf("topology-%d+%d.json", n.params.Ports, count))
	if err := writeJSON(file, topo); err != nil {
		return nil, err
	}
	p, start, err := b.startInproc(ctx, n, file)
	if err != nil {
		return nil, fmt.Errorf("incremental: %w", err)
	}
	defer p.close()
	if start.Report.FlowMods() != 0 {
		return nil, fmt.Errorf("incremental: the agent sent %d flow-mods for ports not plugged yet", start.Report.FlowMods())
	}
	reports := make(chan stamped, 4096)
	p.agent.OnConverged(func(r controller.Report) { reports <- stamped{r, time.Now()} })
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- p.agent.Run(runCtx, nil, nil) }()
	defer func() { stop(); <-done }()
	if _, err := waitReport(ctx, reports, done, func(controller.Report) bool { return true }); err != nil {
		return nil, err
	}

	mon, err := startFlowMonitor(ctx, n.host.MgmtSocket(topogen.IntBridge), b.workDir)
	if err != nil {
		return nil, err
	}
	defer mon.stop()
	if err := b.settle(ctx, n, reports); err != nil {
		return nil, err
	}
	res := &incrementalResult{}
	macs := map[string]string{}
	var names []string
	next := firstVIFOfport + len(n.ports)
	for i := 0; i < count; i++ {
		port := topogen.VMPort(n.params, n.params.Ports+i)
		t0 := time.Now()
		plugged, err := n.hv.plug(ctx, topogen.IntBridge, next+i, []topology.Port{port})
		if err != nil {
			return nil, err
		}
		name := plugged[0]
		assigned := make(chan time.Time, 1)
		go func() {
			at, err := n.hv.ofportAssigned(ctx, name)
			if err != nil {
				b.log.Warn("ofport wait", zap.Error(err))
			}
			assigned <- at
		}()
		s, err := waitReport(ctx, reports, done, func(r controller.Report) bool { return bound(r, name) })
		if err != nil {
			return nil, fmt.Errorf("plug %s: %w", name, err)
		}
		if s.rep.FlowMods() == 0 || !slices.Contains(s.rep.Retagged, name) {
			return nil, fmt.Errorf("plug %s: bound by a reconcile that sent %d flow-mods and tagged %v", name, s.rep.FlowMods(), s.rep.Retagged)
		}
		added, err := mon.when("ADDED", port.MAC)
		if err != nil {
			return nil, fmt.Errorf("plug %s: %w", name, err)
		}
		if at := <-assigned; !at.IsZero() {
			res.Ofport = append(res.Ofport, at.Sub(t0))
		}
		res.Plug = append(res.Plug, added.Sub(t0))
		res.PlugDone = append(res.PlugDone, s.at.Sub(t0))
		names = append(names, name)
		macs[name] = port.MAC
		if err := b.settle(ctx, n, reports); err != nil {
			return nil, err
		}
	}
	for _, name := range names {
		t0 := time.Now()
		if err := n.hv.unplug(ctx, topogen.IntBridge, name); err != nil {
			return nil, err
		}
		s, err := waitReport(ctx, reports, done, func(r controller.Report) bool { return !bound(r, name) })
		if err != nil {
			return nil, fmt.Errorf("unplug %s: %w", name, err)
		}
		if s.rep.FlowMods() == 0 {
			return nil, fmt.Errorf("unplug %s: unbound by a reconcile that sent no flow-mods", name)
		}
		deleted, err := mon.when("DELETED", macs[name])
		if err != nil {
			return nil, fmt.Errorf("unplug %s: %w", name, err)
		}
		res.Unplug = append(res.Unplug, deleted.Sub(t0))
		res.UnplugDone = append(res.UnplugDone, s.at.Sub(t0))
		if err := b.settle(ctx, n, reports); err != nil {
			return nil, err
		}
	}
	b.log.Info("incremental", zap.Int("N", n.params.Ports), zap.Int("vifs", count),
		zap.Duration("plug_p50", percentile(res.Plug, 50)), zap.Duration("plug_p99", percentile(res.Plug, 99)),
		zap.Duration("unplug_p50", percentile(res.Unplug, 50)), zap.Duration("unplug_p99", percentile(res.Unplug, 99)),
		zap.Duration("plug_done_p50", percentile(res.PlugDone, 50)), zap.Duration("plug_done_p99", percentile(res.PlugDone, 99)))
	return res, nil
}

// bound reports whether the port is bound (has an ofport) in the reconcile's node state.
func bound(r controller.Report, name string) bool {
	if r.Binding.Node == nil {
		return false
	}
	for _, p := range r.Binding.Node.Ports {
		if p.Name == name && p.OFPort > 0 {
			return true
		}
	}
	return false
}

// waitReport returns the first report that satisfies ok.
func waitReport(ctx context.Context, reports <-chan stamped, done <-chan error, ok func(controller.Report) bool) (stamped, error) {
	timeout := time.After(30 * time.Second)
	for {
		select {
		case s := <-reports:
			if ok(s.rep) {
				return s, nil
			}
		case err := <-done:
			return stamped{}, fmt.Errorf("agent stopped: %v", err)
		case <-timeout:
			return stamped{}, fmt.Errorf("no matching reconcile within 30 s")
		case <-ctx.Done():
			return stamped{}, ctx.Err()
		}
	}
}

// settle waits until the agent has been quiet for 50 ms, ovs-vswitchd has applied every
// committed change and the switch is idle, so that the next change finds all of them idle
// (after a port is added or tagged, ovs-vswitchd and ovsdb-server go on working for up to
// ~100 ms at 1000 ports beyond cur_cfg).
func (b *bench) settle(ctx context.Context, n *node, reports <-chan stamped) error {
	for {
		select {
		case <-reports:
		case <-time.After(50 * time.Millisecond):
			if err := n.hv.vswitchdIdle(ctx, 30*time.Second); err != nil {
				return err
			}
			return b.waitIdle(ctx, n)
		}
	}
}

// percentile is the nearest-rank percentile of ds.
func percentile(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}
