package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/inspect"
)

// cliResult is the dvrflow CLI measured on the converged node: `dvrflow flows -o json` and
// `dvrflow diff -o json` (the built binary, run inside the host) against the switch's own
// `ovs-ofctl dump-flows` of the same bridges.
type cliResult struct {
	Bridges []string // the bridges read (the CLI's every bridge; the baseline's too)
	Flows   int      // flow records `dvrflow flows` printed (= flows on those bridges)
	// Ruled is how many of them name a pipeline rule (the rest: "-", a flow of no known rule).
	Ruled int
	Runs  []cliRun
}

// cliRun is one repetition: the baseline, then flows, then diff, each on a quiet switch.
type cliRun struct {
	// Baseline is `ovs-ofctl -O OpenFlow13 --no-names dump-flows` of each bridge, one after
	// the other, each run inside the host: the very command the CLI runs per bridge.
	Baseline time.Duration
	Flows    cliProcess // dvrflow flows -o json
	Diff     cliProcess // dvrflow diff -o json --topology FILE (checked equal)
}

// cliProcess is one CLI process: its wall time, and from its rusage its CPU time and its
// peak RSS (the largest of the process and the ovs-ofctl children it waited for).
type cliProcess struct {
	Took   time.Duration
	CPU    time.Duration
	MaxRSS int64 // bytes
}

// measureCLI runs the CLI and its baseline b.reps times on the converged node (no agent
// connected: the flows and tags the last one left).
func (b *bench) measureCLI(ctx context.Context, n *node, wantFlows int) (*cliResult, error) {
	r := &cliResult{Bridges: agentBridges()}
	for i := 0; i < b.reps; i++ {
		var run cliRun
		if err := b.waitIdle(ctx, n); err != nil {
			return nil, err
		}
		bl, err := dumpFlowsBaseline(ctx, n, r.Bridges)
		if err != nil {
			return nil, err
		}
		run.Baseline = bl

		if err := b.waitIdle(ctx, n); err != nil {
			return nil, err
		}
		out, proc, err := b.runCLI(ctx, n, "flows", "-o", "json")
		if err != nil {
			return nil, err
		}
		run.Flows = proc
		var recs []inspect.FlowRecord
		if err := json.Unmarshal(out, &recs); err != nil {
			return nil, fmt.Errorf("dvrflow flows -o json: %w", err)
		}
		if err := checkFlowRecords(recs, r.Bridges, wantFlows); err != nil {
			return nil, fmt.Errorf("dvrflow flows -o json: %w", err)
		}
		r.Flows, r.Ruled = len(recs), 0
		for _, rec := range recs {
			if rec.Rule != "" {
				r.Ruled++
			}
		}

		if err := b.waitIdle(ctx, n); err != nil {
			return nil, err
		}
		out, proc, err = b.runCLI(ctx, n, "diff", "-o", "json")
		if err != nil {
			if len(out) > 0 { // exit 1: different; say how
				if derr := checkDiffEqual(out); derr != nil {
					err = fmt.Errorf("%w: %w", err, derr)
				}
			}
			return nil, err
		}
		run.Diff = proc
		if err := checkDiffEqual(out); err != nil {
			return nil, fmt.Errorf("dvrflow diff -o json: %w", err)
		}
		r.Runs = append(r.Runs, run)
		b.log.Info("cli", zap.Int("N", n.params.Ports), zap.Int("rep", i+1), zap.Int("flows", r.Flows),
			zap.Duration("ovs-ofctl dump-flows", run.Baseline), zap.Duration("dvrflow flows", run.Flows.Took),
			zap.Duration("dvrflow diff", run.Diff.Took), zap.Int64("flows_max_rss", run.Flows.MaxRSS),
			zap.Int64("diff_max_rss", run.Diff.MaxRSS))
	}
	return r, nil
}

// runCLI runs the dvrflow binary inside the node's host, pointed at its switch and the
// topology the agent ran, and returns its standard output and its process figures. Exit
// code 0 is required (for diff: equal); the output is returned with that error too.
func (b *bench) runCLI(ctx context.Context, n *node, args ...string) ([]byte, cliProcess, error) {
	args = append(args, "--topology", n.topoFile, "--ovs-rundir", n.host.RunDir(), "--ovsdb-connection", n.host.DBEndpoint())
	cmd := n.host.Command(ctx, b.cli, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	took := time.Since(start)
	line := "dvrflow " + strings.Join(args, " ")
	if err != nil {
		return stdout.Bytes(), cliProcess{}, fmt.Errorf("%s: %w: %s", line, err, lastLine(stderr.String()))
	}
	if stderr.Len() > 0 {
		b.log.Warn("dvrflow CLI wrote to stderr", zap.String("command", line), zap.String("stderr", lastLine(stderr.String())))
	}
	return stdout.Bytes(), processFigures(cmd.ProcessState, took), nil
}

// processFigures takes a finished process's CPU time and peak RSS from its rusage.
func processFigures(st interface{ SysUsage() any }, took time.Duration) cliProcess {
	p := cliProcess{Took: took}
	if ru, ok := st.SysUsage().(*syscall.Rusage); ok && ru != nil {
		p.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		p.MaxRSS = ru.Maxrss * 1024 // Linux reports kilobytes
	}
	return p
}

// dumpFlowsBaseline runs the command the CLI runs to read a bridge, `ovs-ofctl -O
// OpenFlow13 --no-names dump-flows` on its management socket, for each bridge one after the
// other, inside the host as the CLI runs, and returns the total wall time. The output is
// read as the CLI reads it (into memory) and must hold a flow.
func dumpFlowsBaseline(ctx context.Context, n *node, bridges []string) (time.Duration, error) {
	var total time.Duration
	for _, br := range bridges {
		cmd := n.host.Command(ctx, "ovs-ofctl", "-O", "OpenFlow13", "--no-names", "dump-flows", "unix:"+n.host.MgmtSocket(br))
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		start := time.Now()
		err := cmd.Run()
		total += time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("baseline: ovs-ofctl dump-flows %s: %w: %s", br, err, lastLine(stderr.String()))
		}
		if !bytes.Contains(stdout.Bytes(), []byte("actions=")) {
			return 0, fmt.Errorf("baseline: ovs-ofctl dump-flows %s printed no flow", br)
		}
	}
	return total, nil
}

// checkFlowRecords checks that `dvrflow flows` printed every flow of the node: as many as
// the switch holds, on exactly the given bridges.
func checkFlowRecords(recs []inspect.FlowRecord, bridges []string, want int) error {
	seen := map[string]int{}
	for _, r := range recs {
		seen[r.Bridge]++
	}
	if got := slices.Sorted(maps.Keys(seen)); !slices.Equal(got, slices.Sorted(slices.Values(bridges))) {
		return fmt.Errorf("flows of bridges %v, want %v", got, bridges)
	}
	if len(recs) != want {
		return fmt.Errorf("%d flows, the switch holds %d", len(recs), want)
	}
	return nil
}

// checkDiffEqual checks diff's JSON: equal, nothing missing, extra or changed.
func checkDiffEqual(out []byte) error {
	var res inspect.DiffResult
	if err := json.Unmarshal(out, &res); err != nil {
		return err
	}
	if !res.Equal || len(res.Missing)+len(res.Extra)+len(res.Changed) > 0 {
		first := ""
		switch {
		case len(res.Missing) > 0:
			first = "; first missing: " + recordText(res.Missing[0])
		case len(res.Extra) > 0:
			first = "; first extra: " + recordText(res.Extra[0])
		case len(res.Changed) > 0:
			first = "; first changed: " + recordText(res.Changed[0].Installed)
		}
		return fmt.Errorf("not equal on the converged node (equal %v): %d missing, %d extra, %d changed%s",
			res.Equal, len(res.Missing), len(res.Extra), len(res.Changed), first)
	}
	return nil
}

func recordText(r inspect.FlowRecord) string {
	return fmt.Sprintf("%s table=%d priority=%d,%s actions=%s", r.Bridge, r.Table, r.Priority, r.Match, r.Actions)
}

// lastLine is the last non-empty line of a command's stderr.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

// buildCLI builds the dvrflow CLI binary into the work directory.
func (b *bench) buildCLI(ctx context.Context) error {
	b.cli = b.workDir + "/dvrflow"
	if out, err := exec.CommandContext(ctx, goTool(), "build", "-o", b.cli, "./cmd/dvrflow").CombinedOutput(); err != nil {
		return fmt.Errorf("build dvrflow: %w: %s", err, out)
	}
	return nil
}

// Medians over the repetitions; 0 without runs.

func (c *cliResult) baseline() time.Duration {
	return medianOr0(collect(c.Runs, func(r cliRun) time.Duration { return r.Baseline }))
}

func (c *cliResult) flowsTook() time.Duration {
	return medianOr0(collect(c.Runs, func(r cliRun) time.Duration { return r.Flows.Took }))
}

func (c *cliResult) diffTook() time.Duration {
	return medianOr0(collect(c.Runs, func(r cliRun) time.Duration { return r.Diff.Took }))
}

func (c *cliResult) flowsCPU() time.Duration {
	return medianOr0(collect(c.Runs, func(r cliRun) time.Duration { return r.Flows.CPU }))
}

// maxRSS is the largest peak RSS of any CLI process of the runs (flows and diff).
func (c *cliResult) maxRSS() (flowsRSS, diffRSS int64) {
	for _, r := range c.Runs {
		flowsRSS, diffRSS = max(flowsRSS, r.Flows.MaxRSS), max(diffRSS, r.Diff.MaxRSS)
	}
	return flowsRSS, diffRSS
}

// flowsPerSecond is the flows `dvrflow flows` read and explained per second of its wall time.
func (c *cliResult) flowsPerSecond() float64 {
	if d := c.flowsTook(); d > 0 {
		return float64(c.Flows) / d.Seconds()
	}
	return 0
}

func medianOr0(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return median(ds)
}
