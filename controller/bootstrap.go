package controller

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb"
)

// Boot is what an agent starts from: the effective config, the topology, the OVSDB
// connection and the bridges' installed flows read meanwhile. Hand Prefetch to the agent
// (Agent.UsePrefetch) before Setup and the topology (TakeTopology) to Agent.SetTopology,
// and Close the Boot when the agent is done.
type Boot struct {
	Config   *Config
	topology *Topology
	DB       *ovsdb.Client
	Prefetch *FlowPrefetch
	// Effective returns the validated config for a topology: the base config, the
	// topology's host section, then the flags. The event loop takes it for topology reloads.
	Effective func(*Topology) (*Config, error)
	// Load is how long the topology took to decode; Connect how much longer OVSDB took.
	Load, Connect time.Duration
}

// Bootstrap is the agent's start, shared by dvrflow-agent and the bench: it connects to
// OVSDB while the topology file is decoded (the topology's host section never changes the
// OVSDB connection), and meanwhile starts reading the installed flows of the bridges it
// will manage: those base and the flags name at once, those the host section adds once it
// is decoded (bridges that exist already; on a restart, all of them). base holds the ini
// files and defaults; flags, which may be nil, applies the command line on top.
func Bootstrap(ctx context.Context, base *Config, flags func(*Config) error, log *zap.Logger) (*Boot, error) {
	if flags == nil {
		flags = func(*Config) error { return nil }
	}
	withHost := func(t *Topology) (*Config, error) {
		cfg := base.Clone()
		cfg.ApplyHost(t.Host)
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
	if probe.TopologyFile == "" {
		return nil, errors.New("no topology: give --topology FILE or [dvrflow] topology_file (the Neutron RPC mode is not available yet)")
	}
	b := &Boot{Prefetch: NewFlowPrefetch(log)}
	b.Effective = func(t *Topology) (*Config, error) {
		cfg, err := withHost(t)
		if err != nil {
			return nil, err
		}
		if err := cfg.Validate(); err != nil {
			return nil, err
		}
		return cfg, nil
	}
	start := time.Now()
	db, err := ovsdb.ConnectWhile(ctx, probe.OVSDBConnection, log, func() (err error) {
		b.Prefetch.Start(ctx, probe)
		if b.topology, err = LoadTopology(probe.TopologyFile); err != nil {
			return err
		}
		if cfg, err := withHost(b.topology); err == nil {
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
	if b.Config, err = b.Effective(b.topology); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// TakeTopology returns the decoded topology and forgets it: the agent keeps its validated
// copy, and a Boot kept for the daemon's life must not hold the file's whole contents.
func (b *Boot) TakeTopology() *Topology {
	t := b.topology
	b.topology = nil
	return t
}

// Close stops the reads the agent did not take and closes the OVSDB connection.
func (b *Boot) Close() {
	b.Prefetch.Close()
	if b.DB != nil {
		b.DB.Close()
	}
}
