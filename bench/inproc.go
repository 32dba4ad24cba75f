package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/startup"
)

// inproc is dvrflow-agent run in the bench's own process, started exactly as
// cmd/dvrflow-agent starts it (config without ini files, the topology file's host section,
// the flags the bench would pass: this host's OVSDB and run dir, netdev, no router
// namespaces), logging at info level to a file as the daemon logs to its output.
type inproc struct {
	boot  *startup.Boot
	agent *controller.Agent
	log   *zap.Logger
}

// startResult is the outcome of an in-process agent start.
type startResult struct {
	// Took runs from before the config and topology are loaded until the first reconcile
	// returned: OVSDB connected, bridges and patch ports set up, flows committed in one
	// confirmed bundle per bridge, ports tagged.
	Took   time.Duration
	Report controller.Report `json:"-"`
	// Phases of Took: loading config and topology, connecting to OVSDB (initial monitor
	// dump; it runs alongside the load, so Connect is only the wait beyond it), Setup
	// (bridges and patch ports), SetSnapshot (validation), Converge.
	Load, Connect, Setup, Validate, Reconcile time.Duration
	// CPU is the CPU time the bench process (the in-process agent; the bench itself waits)
	// used during Took, user and system.
	CPU time.Duration
	// TagsApplied runs from the same start until ovs-vswitchd has applied the tags the
	// reconcile committed (outside Took: Neutron's agent does not wait for it either).
	TagsApplied time.Duration
}

// startInproc starts an agent for the node with the topology in topoFile and converges once.
func (b *bench) startInproc(ctx context.Context, n *node, topoFile string) (*inproc, startResult, error) {
	log, err := b.agentLogger()
	if err != nil {
		return nil, startResult{}, err
	}
	var r startResult
	cpu0 := processCPU()
	start := time.Now()
	lap := func(d *time.Duration) {
		*d = time.Since(start) - r.Load - r.Connect - r.Setup - r.Validate - r.Reconcile
	}
	// As the daemon starts (startup.Bootstrap): config of defaults (no ini file), the
	// bench's flags, OVSDB connected while the topology decodes, flows read meanwhile.
	base, _, err := config.LoadConfig()
	if err != nil {
		return nil, r, err
	}
	boot, err := startup.Bootstrap(ctx, base, func(cfg *config.Config) error {
		agentFlags(cfg, topoFile, n)
		return nil
	}, log)
	if err != nil {
		return nil, r, err
	}
	r.Load, r.Connect = boot.Load, boot.Connect
	p := &inproc{boot: boot, agent: controller.NewAgent(boot.Config, boot.DB, log), log: log}
	p.agent.UsePrefetch(boot.Prefetch)
	if err := p.agent.Setup(ctx); err != nil {
		p.close()
		return nil, r, err
	}
	lap(&r.Setup)
	if problems := p.agent.SetSnapshot(boot.TakeSnapshot()); len(problems) > 0 {
		p.close()
		return nil, r, fmt.Errorf("topology %s: %d problems, first: %v", topoFile, len(problems), problems[0])
	}
	lap(&r.Validate)
	if r.Report, err = p.agent.Converge(ctx, time.Minute); err != nil {
		p.close()
		return nil, r, err
	}
	lap(&r.Reconcile)
	r.Took = time.Since(start)
	r.CPU = processCPU() - cpu0
	if err := p.agent.WaitTagsApplied(ctx, r.Report); err != nil {
		p.close()
		return nil, r, err
	}
	r.TagsApplied = time.Since(start)
	return p, r, nil
}

// processCPU returns the user and system CPU time this process has used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// agentFlags sets what the flags the bench would give cmd/dvrflow-agent set: this host's
// OVSDB and run dir, netdev, no router namespaces (see agentArgs), on a config of defaults
// (no ini file) or of defaults and the topology's host section.
func agentFlags(cfg *config.Config, topoFile string, n *node) {
	cfg.TopologyFile = topoFile
	cfg.OVSDBConnection = n.host.DBEndpoint()
	cfg.OVSRundir = n.host.RunDir()
	cfg.DatapathType = config.DatapathNetdev
	noNS := false
	cfg.ManageRouterNamespaces = &noNS
}

// agentArgs are the flags that give the dvrflow-agent binary the same config.
func agentArgs(n *node, topoFile string) []string {
	return []string{"--topology", topoFile, "--ovsdb-connection", n.host.DBEndpoint(),
		"--ovs-rundir", n.host.RunDir(), "--datapath-type", config.DatapathNetdev,
		"--manage-router-namespaces=false"}
}

// close stops the agent as a process exit would: OpenFlow and OVSDB connections closed.
func (p *inproc) close() {
	p.agent.Close()
	p.boot.Close()
	_ = p.log.Sync()
}

// agentLogPath is where every agent of the run logs: agent.log in the work directory.
func (b *bench) agentLogPath() string { return filepath.Join(b.workDir, "agent.log") }

// agentLogger logs like the daemon (console encoding, info level) to agentLogPath.
func (b *bench) agentLogger() (*zap.Logger, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.agentLog == nil {
		f, err := os.OpenFile(b.agentLogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, err
		}
		b.agentLog = f
	}
	f := b.agentLog
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeLevel = zapcore.CapitalLevelEncoder
	core := zapcore.NewCore(zapcore.NewConsoleEncoder(enc), zapcore.AddSync(f), zapcore.InfoLevel)
	return zap.New(core), nil
}

// MarshalLogObject logs the phases of a start, and of its reconcile the flow syncs.
func (r startResult) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	enc.AddDuration("load", r.Load)
	enc.AddDuration("connect", r.Connect)
	enc.AddDuration("setup", r.Setup)
	enc.AddDuration("validate", r.Validate)
	enc.AddDuration("reconcile", r.Reconcile)
	enc.AddDuration("cpu", r.CPU)
	var sync time.Duration
	prefetched := 0
	for _, s := range r.Report.Results {
		sync += s.Duration
		if s.Prefetched {
			prefetched++
		}
	}
	enc.AddDuration("reconcile_flow_syncs", sync)
	enc.AddInt("bridges_prefetched", prefetched)
	return nil
}
