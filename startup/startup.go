// Package startup is the agent's start sequence, shared by dvrflow-agent and the bench:
// the effective config, the northbound source read once, the OVSDB connection, and the
// bridges' installed flows read meanwhile. It wires the parts; the agent itself
// (controller) does not know which northbound source it has.
package startup

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/topology"
)

// Boot is what an agent starts from: the effective config, the northbound source with its
// first snapshot, the OVSDB connection and the bridges' installed flows read meanwhile.
// Hand Prefetch to the agent (Agent.UsePrefetch) before Setup and the snapshot
// (TakeSnapshot) to Agent.SetSnapshot, start Watch after the first reconcile, and Close the
// Boot when the agent is done.
type Boot struct {
	Config *config.Config
	// source is the topology file (standalone), neutron the Neutron mode; first is the
	// first snapshot of either until TakeSnapshot.
	source  *topology.Loaded
	neutron *neutronMode
	first   *northbound.Snapshot
	// base is the ini files' config (defaults < ini), replaced by Reload.
	base atomic.Pointer[config.Config]
	DB   *ovsdb.Client
	// Prefetch holds the bridges' installed flows read while OVSDB connected.
	Prefetch *controller.FlowPrefetch
	// Effective returns the validated config for a snapshot's host settings: the base
	// config, the host settings, then the flags. The event loop takes it for updates.
	Effective controller.Reconfigure
	// Load is how long the topology took to read and parse; Connect how much longer OVSDB
	// took.
	Load, Connect time.Duration
}

// Bootstrap is the agent's start: it connects to OVSDB while the topology file is read and
// parsed (the host settings never change the OVSDB connection), and meanwhile starts
// reading the installed flows of the bridges it will manage: those base and the flags name
// at once, those the host settings add once they are known (bridges that exist already; on
// a restart, all of them). base holds the ini files and defaults; flags, which may be nil,
// applies the command line on top. Invalid host settings stop the start, naming them.
func Bootstrap(ctx context.Context, base *config.Config, flags func(*config.Config) error, log *zap.Logger) (*Boot, error) {
	if flags == nil {
		flags = func(*config.Config) error { return nil }
	}
	b := &Boot{Prefetch: controller.NewFlowPrefetch(log)}
	b.base.Store(base)
	withHost := func(h *northbound.HostSettings) (*config.Config, error) {
		cfg := b.base.Load().Clone()
		cfg.ApplyHost(h)
		if err := flags(cfg); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	// Flags can name the topology file and the OVSDB connection; apply them once to find both.
	probe := base.Clone()
	if err := flags(probe); err != nil {
		return nil, err
	}
	switch {
	case probe.TopologyFile != "" && probe.NeutronMode():
		return nil, fmt.Errorf("both a topology file (%s) and [DEFAULT] transport_url are set: the agent takes its state from one of them", probe.TopologyFile)
	case probe.NeutronMode():
		return bootstrapNeutron(ctx, b, probe, withHost, log)
	case probe.TopologyFile == "":
		return nil, errors.New("no northbound source: give --topology FILE or [dvrflow] topology_file (standalone), or [DEFAULT] transport_url in a --config-file (Neutron)")
	}
	b.Effective = effective(withHost)
	start := time.Now()
	db, err := ovsdb.ConnectWhile(ctx, probe.OVSDBConnection, log, func() (err error) {
		b.Prefetch.Start(ctx, probe)
		if b.source, err = topology.LoadSnapshot(probe.TopologyFile); err != nil {
			return err
		}
		if cfg, err := withHost(b.source.Snapshot.Host); err == nil {
			b.Prefetch.Start(ctx, cfg)
		}
		b.Load = time.Since(start)
		return nil
	})
	if err != nil {
		b.Prefetch.Close()
		return nil, err
	}
	b.Connect = time.Since(start) - b.Load
	b.DB = db
	if bad := b.source.Snapshot.HostProblems(); len(bad) > 0 {
		b.Close()
		errs := make([]error, len(bad))
		for i, p := range bad {
			errs[i] = p
		}
		return nil, fmt.Errorf("topology %s: %w", probe.TopologyFile, errors.Join(errs...))
	}
	if b.Config, err = b.Effective(b.source.Snapshot.Host); err != nil {
		b.Close()
		return nil, err
	}
	b.first = b.source.Snapshot
	b.source.Snapshot = nil
	return b, nil
}

// effective is Boot.Effective over withHost: the config for a snapshot's host settings,
// validated.
func effective(withHost func(*northbound.HostSettings) (*config.Config, error)) controller.Reconfigure {
	return func(h *northbound.HostSettings) (*config.Config, error) {
		cfg, err := withHost(h)
		if err != nil {
			return nil, err
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return cfg, nil
	}
}

// TakeSnapshot returns the first snapshot and forgets it: the agent keeps its validated
// model, and a Boot kept for the daemon's life must not hold the whole state twice.
func (b *Boot) TakeSnapshot() *northbound.Snapshot {
	s := b.first
	b.first = nil
	return s
}

// Reconciled is told of every reconcile the agent made: the Neutron mode reports devices
// up and down from it; the topology file needs nothing.
func (b *Boot) Reconciled(rep controller.Report) {
	if b.neutron != nil {
		b.neutron.reconciled(rep, b.Config.IntegrationBridge)
	}
}

// Watch starts watching the northbound source for changes since the first snapshot.
func (b *Boot) Watch(ctx context.Context, log *zap.Logger) (<-chan *northbound.Update, error) {
	if b.neutron != nil {
		go func() {
			if err := b.neutron.source.Run(ctx); err != nil {
				log.Error("the neutron source stopped", zap.Error(err))
			}
		}()
		return b.neutron.source.Updates(), nil
	}
	return b.source.Watch(ctx, log)
}

// Updates returns the northbound updates for the agent's loop: the topology file's changes
// (Watch), and on every signal of reload (SIGHUP) the config files read again — later
// snapshots are judged against them, see Effective — followed by the topology file read
// again, sent even when unchanged. A config file that no longer loads is reported as the
// update's error and changes nothing.
func (b *Boot) Updates(ctx context.Context, files []string, reload <-chan os.Signal, log *zap.Logger) (<-chan *northbound.Update, error) {
	watched, err := b.Watch(ctx, log)
	if err != nil {
		return nil, err
	}
	out := make(chan *northbound.Update)
	go func() {
		defer close(out)
		for {
			var u *northbound.Update
			select {
			case <-ctx.Done():
				return
			case w, ok := <-watched:
				if !ok {
					return
				}
				u = w
			case <-reload:
				log.Info("reload requested: reading the config files and the topology again", zap.Strings("config_files", files))
				u = b.reload(files, log)
			}
			select {
			case out <- u:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

// reload reads the config files and the topology file again.
func (b *Boot) reload(files []string, log *zap.Logger) *northbound.Update {
	base, warnings, err := config.LoadConfig(files...)
	for _, w := range warnings {
		log.Warn("config", zap.String("warning", w.String()))
	}
	if err != nil {
		return &northbound.Update{Err: fmt.Errorf("reload: config not changed: %w", err)}
	}
	var snap *northbound.Snapshot
	if b.neutron != nil {
		snap = b.neutron.source.Snapshot()
	} else {
		loaded, err := topology.LoadSnapshot(b.source.Path)
		if err != nil {
			return &northbound.Update{Err: fmt.Errorf("reload: %w", err)}
		}
		snap = loaded.Snapshot
	}
	old := b.base.Swap(base)
	cfg, err := b.Effective(snap.Host)
	if err != nil {
		b.base.Store(old)
		return &northbound.Update{Err: fmt.Errorf("reload: config refused, not changed: %w", err)}
	}
	for _, u := range cfg.Unhonoured() {
		log.Warn("option not honoured", zap.String("section", u.Section), zap.String("option", u.Option),
			zap.String("value", u.Value), zap.String("reason", u.Reason))
	}
	return &northbound.Update{Snapshot: snap}
}

// Close stops the reads the agent did not take and closes the OVSDB connection.
func (b *Boot) Close() {
	if b.neutron != nil {
		b.neutron.close()
	}
	b.Prefetch.Close()
	if b.DB != nil {
		b.DB.Close()
	}
}
