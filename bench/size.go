package main

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/bench/topogen"
)

// sizeResult is everything measured on the node of one size.
type sizeResult struct {
	Params      topogen.Params
	Ports       int           // VIF ports plugged (VMs and router interfaces)
	PlugTook    time.Duration // ovs-vswitchd: one-transaction insert → every ofport assigned
	Flows       int           // flows installed on the agent's bridges
	FlowsByBr   map[string]int
	Cold        []coldRun
	Restart     restartResult
	Deleted     string // the flow deleted by hand before the second restart
	AfterDelete restartResult
	// FlowsLost are the agent starts on the converged node after every flow was deleted.
	FlowsLost   []restartResult
	Memory      memoryResult
	Incremental *incrementalResult // on the node that runs it, else nil
	// CLI is the dvrflow CLI on the converged node (nil in results of runs without it).
	CLI *cliResult `json:",omitempty"`
}

// measureSize runs phases 1–4 and 6 on a node of size p.
func (b *bench) measureSize(ctx context.Context, p topogen.Params, incremental int) (*sizeResult, error) {
	n, err := b.nodeFor(ctx, p)
	if err != nil {
		return nil, err
	}
	defer n.close(b)
	r := &sizeResult{Params: p, Ports: len(n.ports), PlugTook: n.plugTook, FlowsByBr: map[string]int{}}

	// 1. Cold sync against the baselines, repeated; the node is reset to cold in between.
	// Each repetition's ovs-vsctl baseline runs once its agent is stopped, between two
	// resets to cold: before the next repetition, and for the last one before the memory
	// test's cold start, so that the restart tests run on the node the last agent converged.
	var (
		agent   *inproc
		pending ovsdbState // the OVSDB state of the last repetition's agent
	)
	for i := 0; i < b.reps; i++ {
		if i > 0 {
			agent.close()
			if r.Cold[i-1].Vsctl, err = b.vsctlBaseline(ctx, n, pending); err != nil {
				return nil, err
			}
		}
		var res startResult
		agent, res, err = b.coldSync(ctx, n)
		if err != nil {
			return nil, err
		}
		if pending, err = n.agentState(ctx); err != nil {
			agent.close()
			return nil, err
		}
		bl, err := b.baseline(ctx, n, agent.agent.Desired())
		if err != nil {
			agent.close()
			return nil, err
		}
		run := coldRun{Agent: res.Took, AgentCPU: res.CPU, Reconcile: res.Report.Took, TagsApplied: res.TagsApplied, Baseline: bl, FlowMods: res.Report.FlowMods()}
		r.Cold = append(r.Cold, run)
		b.log.Info("cold sync", zap.Int("N", p.Ports), zap.Int("rep", i+1), zap.Duration("agent", run.Agent),
			zap.Duration("ovs-ofctl", run.Baseline), zap.Int("flow_mods", run.FlowMods), zap.Object("phases", res))
	}
	if b.memprofile != "" {
		if err := writeHeapProfile(b.memprofile); err != nil {
			agent.close()
			return nil, err
		}
	}
	for br, fs := range agent.agent.Desired() {
		r.FlowsByBr[br] = len(fs)
	}
	if r.Flows, err = totalFlows(ctx, n); err != nil {
		agent.close()
		return nil, err
	}

	// 2. No-op restart, then a restart after one flow was deleted by hand.
	agent, r.Restart, err = b.restart(ctx, n, agent)
	if err != nil {
		return nil, err
	}
	b.log.Info("no-op restart", zap.Int("N", p.Ports), zap.Duration("took", r.Restart.Took), zap.Int("flow_mods", r.Restart.FlowMods),
		zap.Object("phases", r.Restart.Phases))
	if r.Deleted, err = b.deleteOneFlow(ctx, n, agent); err != nil {
		agent.close()
		return nil, err
	}
	agent, r.AfterDelete, err = b.restart(ctx, n, agent)
	if err != nil {
		return nil, err
	}
	b.log.Info("restart after deleting one flow", zap.Int("N", p.Ports), zap.Duration("took", r.AfterDelete.Took),
		zap.Int("flow_mods", r.AfterDelete.FlowMods), zap.Strings("sent", r.AfterDelete.Sent))
	if r.AfterDelete.FlowMods != 1 || r.AfterDelete.Sent[0] != r.Deleted {
		agent.close()
		return nil, fmt.Errorf("restart after deleting %s by hand sent %d flow-mods: %q", r.Deleted, r.AfterDelete.FlowMods, r.AfterDelete.Sent)
	}

	// 1b. Cold sync on configured bridges: every flow lost, as after a host restart.
	for i := 0; i < b.reps; i++ {
		var res restartResult
		if agent, res, err = b.flowsLost(ctx, n, agent); err != nil {
			return nil, err
		}
		r.FlowsLost = append(r.FlowsLost, res)
		b.log.Info("cold sync, flow tables lost", zap.Int("N", p.Ports), zap.Int("rep", i+1), zap.Duration("took", res.Took),
			zap.Int("flow_mods", res.FlowMods), zap.Object("phases", res.Phases))
		if res.FlowMods != r.Flows {
			agent.close()
			return nil, fmt.Errorf("after every flow was deleted the agent sent %d flow-mods for %d flows", res.FlowMods, r.Flows)
		}
	}
	agent.close()

	// 6. The dvrflow CLI on the node the last agent converged (flows and tags in place).
	if r.CLI, err = b.measureCLI(ctx, n, r.Flows); err != nil {
		return nil, fmt.Errorf("dvrflow CLI: %w", err)
	}

	// 3. Incremental plug/unplug.
	if incremental > 0 {
		if r.Incremental, err = b.incremental(ctx, n, incremental); err != nil {
			return nil, err
		}
	}

	// The last repetition's ovs-vsctl baseline, which leaves the node cold for 4.
	if r.Cold[b.reps-1].Vsctl, err = b.vsctlBaseline(ctx, n, pending); err != nil {
		return nil, err
	}

	// 4. Memory of the agent process after a cold sync.
	if r.Memory, err = b.memory(ctx, n); err != nil {
		return nil, err
	}
	return r, nil
}

// writeHeapProfile writes the live heap after a garbage collection.
func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	runtime.GC()
	return pprof.WriteHeapProfile(f)
}
