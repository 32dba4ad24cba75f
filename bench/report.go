package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"time"
)

// results is everything one run measured.
type results struct {
	Date      time.Time
	Machine   string
	VIFType   string
	Reps      int
	Sizes     []*sizeResult
	WritePath *writePathResult
	// Neutron is section 7 (nil in results of runs without it).
	Neutron *neutronResult `json:",omitempty"`
	// Firewall is section 8 (nil in results of runs without it).
	Firewall *firewallResult `json:",omitempty"`
	Took     time.Duration
}

// target is one of the targets with what this run measured.
type target struct {
	What, Want, Got string
	Met, Measured   bool
	// Informational: the issue asks for the figure without a number to meet.
	Informational bool
}

func (r *results) size(n int) *sizeResult {
	for _, s := range r.Sizes {
		if s.Params.Ports == n {
			return s
		}
	}
	return nil
}

// coldAgent and coldBaseline are the medians over the repetitions.
func (s *sizeResult) coldAgent() time.Duration {
	return median(collect(s.Cold, func(c coldRun) time.Duration { return c.Agent }))
}

func (s *sizeResult) coldBaseline() time.Duration {
	return median(collect(s.Cold, func(c coldRun) time.Duration { return c.Baseline }))
}

func (s *sizeResult) coldCPU() time.Duration {
	return median(collect(s.Cold, func(c coldRun) time.Duration { return c.AgentCPU }))
}

func (s *sizeResult) lostCPU() time.Duration {
	return median(collect(s.FlowsLost, func(r restartResult) time.Duration { return r.Phases.CPU }))
}

// cpuCell renders a CPU time and its µs per installed flow; "–" for results of runs that
// did not measure it.
func (s *sizeResult) cpuCell(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%s (%.1f)", ms(d), float64(d.Microseconds())/float64(s.Flows))
}

func (s *sizeResult) coldReconcile() time.Duration {
	return median(collect(s.Cold, func(c coldRun) time.Duration { return c.Reconcile }))
}

func (s *sizeResult) coldTagsApplied() time.Duration {
	return median(collect(s.Cold, func(c coldRun) time.Duration { return c.TagsApplied }))
}

func (s *sizeResult) ratio() float64 { return float64(s.coldAgent()) / float64(s.coldBaseline()) }

// lostAgent is the median agent start after every flow was lost; lostRatio compares it with
// the cold sync's ovs-ofctl baseline (the same flows). Both are 0 for results without it.
func (s *sizeResult) lostAgent() time.Duration {
	return median(collect(s.FlowsLost, func(r restartResult) time.Duration { return r.Took }))
}

func (s *sizeResult) lostReconcile() time.Duration {
	return median(collect(s.FlowsLost, func(r restartResult) time.Duration { return r.Phases.Reconcile }))
}

func (s *sizeResult) lostRatio() float64 {
	if len(s.FlowsLost) == 0 {
		return 0
	}
	return float64(s.lostAgent()) / float64(s.coldBaseline())
}

// hasVsctl reports whether every repetition measured the ovs-vsctl baseline (results of
// earlier runs lack it).
func (s *sizeResult) hasVsctl() bool {
	return len(s.Cold) > 0 && !slices.ContainsFunc(s.Cold, func(c coldRun) bool { return c.Vsctl <= 0 })
}

func (s *sizeResult) coldVsctl() time.Duration {
	return median(collect(s.Cold, func(c coldRun) time.Duration { return c.Vsctl }))
}

// floor is what the switch's own tools need for the agent's work: the medians of the
// ovs-vsctl and the ovs-ofctl baselines added.
func (s *sizeResult) floor() time.Duration { return s.coldVsctl() + s.coldBaseline() }

// floorColumns are the cold sync table's ovs-vsctl, floor and agent / floor cells, "–"
// each for results that lack the ovs-vsctl baseline.
func (s *sizeResult) floorColumns() string {
	if !s.hasVsctl() {
		return "– | – | –"
	}
	return fmt.Sprintf("%s | %s | %.2f", ms(s.coldVsctl()), ms(s.floor()), float64(s.coldAgent())/float64(s.floor()))
}

func collect[T any](xs []T, f func(T) time.Duration) []time.Duration {
	out := make([]time.Duration, len(xs))
	for i, x := range xs {
		out[i] = f(x)
	}
	return out
}

// targets evaluates the targets; a target whose size was not run is not measured.
func (r *results) targets() []target {
	var ts []target
	ratio := func(n int, limit float64) {
		t := target{What: fmt.Sprintf("cold sync, bare bridges (first start), %d ports: agent / ovs-ofctl --bundle", n), Want: fmt.Sprintf("≤ %.1f", limit)}
		if s := r.size(n); s != nil {
			t.Measured, t.Got, t.Met = true, fmt.Sprintf("%.2f", s.ratio()), s.ratio() <= limit
		}
		ts = append(ts, t)
	}
	ratio(1000, 1.0)
	ratio(10000, 1.2)
	lost := func(n int, limit float64) {
		t := target{What: fmt.Sprintf("cold sync, bridges configured, every flow lost (host restart), %d ports: agent / ovs-ofctl --bundle", n), Want: fmt.Sprintf("≤ %.1f", limit)}
		if s := r.size(n); s != nil && len(s.FlowsLost) > 0 {
			t.Measured, t.Got, t.Met = true, fmt.Sprintf("%.2f", s.lostRatio()), s.lostRatio() <= limit
		}
		ts = append(ts, t)
	}
	lost(1000, 1.0)
	lost(10000, 1.2)
	zero := target{What: "no-op restart: flow-mods sent (every N)", Want: "0"}
	var got []string
	zero.Met = len(r.Sizes) > 0
	for _, s := range r.Sizes {
		zero.Measured = true
		got = append(got, fmt.Sprint(s.Restart.FlowMods))
		zero.Met = zero.Met && s.Restart.FlowMods == 0 && s.AfterDelete.FlowMods == 1
	}
	zero.Got = strings.Join(got, " / ") + " (one flow deleted by hand: 1 each)"
	ts = append(ts, zero)
	restart := target{What: "no-op restart, 1000 ports: converged", Want: "< 200 ms"}
	if s := r.size(1000); s != nil {
		restart.Measured, restart.Got, restart.Met = true, ms(s.Restart.Took), s.Restart.Took < 200*time.Millisecond
	}
	ts = append(ts, restart)
	plug := target{What: "incremental plug, 1000 ports: p99 to flows confirmed", Want: "< 50 ms"}
	if s := r.size(1000); s != nil && s.Incremental != nil {
		p99 := percentile(s.Incremental.Plug, 99)
		plug.Measured, plug.Got, plug.Met = true, ms(p99), p99 < 50*time.Millisecond
		if len(s.Incremental.Ofport) > 0 {
			plug.Got += fmt.Sprintf(" (ovs-vswitchd alone, to the ofport: %s)", ms(percentile(s.Incremental.Ofport, 99)))
		}
	}
	ts = append(ts, plug)
	mem := target{What: "agent memory, 10000 ports: RSS per installed flow", Want: "< 1 KB"}
	if s := r.size(10000); s != nil {
		bpf := s.bytesPerFlow()
		mem.Measured, mem.Got, mem.Met = true, fmt.Sprintf("%.0f B", bpf), bpf < 1024
	}
	ts = append(ts, mem)
	// The agent's cost is its CPU time; the wall time of a cold sync is mostly the switch's
	// (ovs-vswitchd's reconfiguration, ovsdb-server's dump), shown beside it.
	lin := target{What: "cost grows linearly with N (1000 → 10000 ports): the agent's CPU time per cold sync", Want: "CPU ratio ≤ 1.25 × flow ratio"}
	if a, b := r.size(1000), r.size(10000); a != nil && b != nil && a.coldCPU() > 0 && b.coldCPU() > 0 {
		flowRatio := float64(b.Flows) / float64(a.Flows)
		cpuRatio := float64(b.coldCPU()) / float64(a.coldCPU())
		lin.Measured, lin.Met = true, cpuRatio <= 1.25*flowRatio
		lin.Got = fmt.Sprintf("flows ×%.1f, agent CPU ×%.1f (wall time: bare bridges ×%.1f", flowRatio, cpuRatio,
			float64(b.coldAgent())/float64(a.coldAgent()))
		if len(a.FlowsLost) > 0 && len(b.FlowsLost) > 0 {
			lin.Got += fmt.Sprintf(", every flow lost ×%.1f", float64(b.lostAgent())/float64(a.lostAgent()))
		}
		lin.Got += ")"
	}
	ts = append(ts, lin)
	ts = append(ts, r.neutronTargets()...)
	return append(ts, r.firewallTarget())
}

func (s *sizeResult) bytesPerFlow() float64 { return float64(s.Memory.AgentRSS) / float64(s.Flows) }

// markdown renders the results: summary of targets, then one table per measurement.
func (r *results) markdown(notes string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmark results\n\n")
	p("`make bench`, %s, on %s. Took %s.\n\n", r.Date.UTC().Format("2006-01-02 15:04 MST"), r.Machine, r.Took.Round(time.Second))
	p("%s\n", r.summary())
	p("\n## Method\n\n")
	p("One sandbox host per size (own ovsdb-server and ovs-vswitchd, userspace datapath), N VM ports over M = N/20 VLAN networks with one subnet each, a distributed router interface (qr-) on every subnet, K = 50 other hosts' DVR MACs (`dvrflow-topogen`). All N + M ports are inserted into br-int in one OVSDB transaction, as Interface type `%s` with iface-id, attached-mac, iface-status and vm-uuid, before the agent starts; the agent adopts the bare br-int and br-vlan.\n\n", r.VIFType)
	p("The agent runs **in-process** (the `controller` package, started exactly as `cmd/dvrflow-agent` starts it: no ini file, the topology file's host section, the bench's flags, info logging to a file). Its timer runs from before the config and the topology file are loaded to the return of the first reconcile: OVSDB connected, bridges and patch ports set up, flows committed in one ONF bundle per bridge whose commit reply confirms them, every port's tag committed to OVSDB. It excludes the start of a process; the memory table shows the `dvrflow-agent` binary's own cold sync, process start included. After each cold sync `Agent.Verify` reads every bridge back and the tags are checked (outside the timer).\n\n")
	p("The baseline loads the very flow set the agent wanted (rendered as `--print-desired` writes it) with `ovs-ofctl -O OpenFlow13 --bundle add-flows` into freshly created bridges of the same settings on the same switch, one bridge after the other; `dump-aggregate` must show as many flows on each baseline bridge as on the agent's. Cold sync is repeated %d times per size (the node reset to cold in between: patch ports, bridge settings, flows and tags removed) and the medians are compared.\n\nEvery timed start (agent, ovs-ofctl, ovs-vsctl) begins on a quiet switch: next_cfg bumped and applied by ovs-vswitchd, then ovs-vswitchd and ovsdb-server together under 2 CPU ticks in 250 ms. After applying a change ovs-vswitchd goes on working beyond `cur_cfg` (at 10000 ports for up to a second), and a start must not be charged with the tail of the step before it.\n\n", r.Reps)
	p("A second baseline, **ovs-vsctl**, is the OVSDB part of the agent's work done by the switch's own CLI: with each repetition's agent stopped, the node is reset to cold and one `ovs-vsctl` invocation sets what the agent set on the bridges it adopted (fail_mode, protocols, other_config, a named Flow_Table row per table), adds the same patch pair between br-int and br-vlan (`%s`, type patch, options:peer) and sets the same tag on every VIF port, as read back from OVSDB after the agent's run; as by default, it waits until ovs-vswitchd has applied the change (the agent waits for that for the bridge settings and the patch pair, not for the tags). Its result must equal the agent's; then the node is reset to cold again. The floor, ovs-vsctl + ovs-ofctl (medians added), is what the switch's own tools need for the same OVSDB and OpenFlow work one after the other (ovs-vsctl's own time grows faster than N with thousands of commands, so at 10000 ports it is no lower bound); the issue's target stays agent / ovs-ofctl.\n", strings.Join(agentPatchNames(), "` / `"))
	p("\n## 1. Cold sync\n\n")
	p("| N | M | ports | flows (br-int + br-vlan) | agent start → converged | of which reconcile | ovs-ofctl --bundle | ratio | ovs-vsctl: bridge settings, patch pair, tags | floor (ovs-vsctl + ovs-ofctl) | agent / floor | agent CPU (µs/flow) | tags applied by ovs-vswitchd |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sizes {
		p("| %d | %d | %d | %d (%d + %d) | %s | %s | %s | **%.2f** | %s | %s | %s |\n", s.Params.Ports, s.Params.Networks, s.Ports, s.Flows,
			s.FlowsByBr["br-int"], s.FlowsByBr["br-vlan"], ms(s.coldAgent()), ms(s.coldReconcile()), ms(s.coldBaseline()), s.ratio(),
			s.floorColumns(), s.cpuCell(s.coldCPU()), ms(s.coldTagsApplied()))
	}
	p("\n*Converged* is the issue's definition: every flow confirmed (each bridge's bundle committed, which the switch replies to only once the flows are in its tables) and every port's tag committed to OVSDB. The agent, like Neutron's, does not wait for ovs-vswitchd to act on the tags; the last column shows, from the same start, when ovs-vswitchd had applied them (`cur_cfg`), for reference. *Agent CPU* is the CPU time the bench process (the in-process agent; the bench itself only waits) used from the start to converged, and per installed flow.\n")
	p("\nEvery run (agent / ovs-ofctl / ovs-vsctl): ")
	var runs []string
	for _, s := range r.Sizes {
		var rs []string
		for _, c := range s.Cold {
			vsctl := "–"
			if c.Vsctl > 0 {
				vsctl = ms(c.Vsctl)
			}
			rs = append(rs, ms(c.Agent)+" / "+ms(c.Baseline)+" / "+vsctl)
		}
		runs = append(runs, fmt.Sprintf("N=%d: %s", s.Params.Ports, strings.Join(rs, ", ")))
	}
	p("%s.\n", strings.Join(runs, "; "))
	if slices.ContainsFunc(r.Sizes, func(s *sizeResult) bool { return len(s.FlowsLost) > 0 }) {
		p("\n### Cold sync on configured bridges: every flow lost\n\nWhat a host restart (or an ovs-vswitchd restart) leaves: the bridges, patch ports and tags are in OVSDB, the secure bridges' flow tables are empty. On the converged node the agent is stopped, every flow of br-int and br-vlan deleted (`ovs-ofctl del-flows`), the switch left to become quiet, and a new agent started; it reads the empty bridges and must send every flow again (checked: flow-mods = flows), then `Agent.Verify` reads them back. The baseline is the cold sync's ovs-ofctl median above (the same flows). %d repetitions, medians.\n\n", r.Reps)
		p("| N | flows | agent start → converged | of which reconcile | agent CPU (µs/flow) | flow-mods | ovs-ofctl --bundle | ratio |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Sizes {
			if len(s.FlowsLost) == 0 {
				continue
			}
			p("| %d | %d | %s | %s | %s | %d | %s | **%.2f** |\n", s.Params.Ports, s.Flows, ms(s.lostAgent()), ms(s.lostReconcile()),
				s.cpuCell(s.lostCPU()), s.FlowsLost[0].FlowMods, ms(s.coldBaseline()), s.lostRatio())
		}
	}
	p("\n## 2. Restart\n\nThe agent is stopped (connections closed) and started again on the converged node; it reads every bridge's flows from the switch (no state file exists).\n\n")
	p("| N | no-op restart → converged | flow-mods | after deleting one flow by hand: flow-mods | → converged |\n|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sizes {
		p("| %d | %s | %d | %d | %s |\n", s.Params.Ports, ms(s.Restart.Took), s.Restart.FlowMods, s.AfterDelete.FlowMods, ms(s.AfterDelete.Took))
	}
	if len(r.Sizes) > 0 {
		p("\nThe flow deleted by hand (`ovs-ofctl --strict del-flows`) and the one flow-mod the restarted agent sent were the same: `%s`.\n", r.Sizes[0].Deleted)
	}
	for _, s := range r.Sizes {
		if in := s.Incremental; in != nil {
			p("\n## 3. Incremental (N = %d)\n\n", s.Params.Ports)
			p("The agent's event loop (`Agent.Run`) runs in-process with a topology holding %d more VM ports; they are plugged one by one, each in its own OVSDB transaction, then unplugged one by one (each once the agent has been idle for 50 ms, ovs-vswitchd has applied every committed change and the switch is idle: ovs-vswitchd and ovsdb-server together under 2 CPU ticks in 250 ms). Each is timed from just before its OVSDB transaction to\n\n", len(in.Plug))
			p("- **flows confirmed**: the switch itself reports the port's table-25 flow added (removed) on an OpenFlow flow monitor (`ovs-ofctl monitor br-int watch:`), which it does once the agent's bundle is committed;\n")
			p("- **ofport assigned**: ovs-vswitchd has added the port and its ofport is committed to OVSDB (a `wait` operation that ovsdb-server holds until then): the switch's own part, which no agent can go below, since flows name the port by its ofport;\n")
			p("- **reconcile done**: the end of the agent's reconcile that bound (unbound) the port (`Agent.OnConverged`): flows confirmed, then the port's tag committed to OVSDB.\n\n")
			p("| | VIFs | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n")
			row := func(what string, ds []time.Duration) {
				p("| %s | %d | %s | %s | %s |\n", what, len(ds), ms(percentile(ds, 50)), ms(percentile(ds, 99)), ms(percentile(ds, 100)))
			}
			row("plug → ofport assigned by ovs-vswitchd (the switch alone)", in.Ofport)
			row("plug → flows confirmed", in.Plug)
			row("plug → reconcile done (tag committed)", in.PlugDone)
			row("unplug → flows removed", in.Unplug)
			row("unplug → reconcile done", in.UnplugDone)
		}
	}
	p("\n## 4. Memory\n\nThe `dvrflow-agent` binary started as a daemon on the node reset to cold; read from /proc right after its first `converged` log line.\n\n")
	p("| N | flows | binary: exec → converged | agent RSS | agent peak RSS | RSS / flow | ovs-vswitchd RSS |\n|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sizes {
		p("| %d | %d | %s | %s | %s | %.0f B | %s |\n", s.Params.Ports, s.Flows, ms(s.Memory.Took), mib(s.Memory.AgentRSS), mib(s.Memory.AgentHWM),
			s.bytesPerFlow(), mib(s.Memory.VswitchdRSS))
	}
	for i := 1; i < len(r.Sizes); i++ {
		a, c := r.Sizes[i-1], r.Sizes[i]
		p("\nMarginal RSS from %d to %d ports: %.0f B per added flow.", a.Params.Ports, c.Params.Ports,
			float64(c.Memory.AgentRSS-a.Memory.AgentRSS)/float64(c.Flows-a.Flows))
	}
	p("\n")
	if w := r.WritePath; w != nil {
		p("\n## 5. Write path alone\n\n%d distinct flows into an empty bridge: a new `flows.Bridge` each time (connect, read the empty bridge, diff, encode, one checked bundle, commit confirmed) vs `ovs-ofctl --bundle add-flows` of the same flows from a file; %d runs each, alternating, medians.\n\n", w.Flows, len(w.Sync))
		p("| flows | flows.Sync | ovs-ofctl --bundle | ratio |\n|---:|---:|---:|---:|\n")
		p("| %d | %s | %s | **%.2f** |\n", w.Flows, ms(median(w.Sync)), ms(median(w.Ofctl)), float64(median(w.Sync))/float64(median(w.Ofctl)))
	}
	r.cliSection(p)
	r.neutronSection(p)
	r.firewallSection(p)
	p("\n## Node setup (not part of any figure above)\n\nTime for ovs-vswitchd to give every port an ofport after the one-transaction insert:\n\n| N | ports | ovs-vswitchd |\n|---:|---:|---:|\n")
	for _, s := range r.Sizes {
		p("| %d | %d | %s |\n", s.Params.Ports, s.Ports, ms(s.PlugTook))
	}
	if notes != "" {
		p("\n%s", notes)
	}
	return b.String()
}

// summary is the targets table, also shown in the README, and the CLI's ratios when the
// run measured them.
func (r *results) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "| target | want | measured | met |\n|---|---|---|---|\n")
	for _, t := range r.targets() {
		met := "no"
		switch {
		case !t.Measured:
			met, t.Got = "not measured", "–"
		case t.Informational:
			met = "(reported)"
		case t.Met:
			met = "**yes**"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", t.What, t.Want, t.Got, met)
	}
	if slices.ContainsFunc(r.Sizes, func(s *sizeResult) bool { return s.CLI != nil }) {
		fmt.Fprintf(&b, "\nThe `dvrflow` CLI on the converged node (read, explain every flow; diff against what the agent would install):\n\n")
		fmt.Fprintf(&b, "| N | flows | `dvrflow flows -o json` | `dvrflow diff -o json` | flows explained / s | CLI peak RSS |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, s := range r.Sizes {
			c := s.CLI
			if c == nil {
				fmt.Fprintf(&b, "| %d | %d | – | – | – | – |\n", s.Params.Ports, s.Flows)
				continue
			}
			fmt.Fprintf(&b, "| %d | %d | %s (%s× ovs-ofctl dump-flows) | %s (%s× ovs-ofctl dump-flows) | %s | %s |\n", s.Params.Ports, c.Flows,
				ms(c.flowsTook()), c.ratioCell(c.flowsTook()), ms(c.diffTook()), c.ratioCell(c.diffTook()), c.rateCell(), c.rssCell())
		}
	}
	r.neutronSummary(&b)
	r.firewallSummary(&b)
	return b.String()
}

// cliSection renders section 6, the dvrflow CLI, with "–" for sizes of runs that did not
// measure it.
func (r *results) cliSection(p func(string, ...any)) {
	if len(r.Sizes) == 0 {
		return
	}
	p("\n## 6. The dvrflow CLI\n\n")
	p("On the converged node of each size (the last agent stopped, its flows and tags in place), the `dvrflow` binary (built once per run) runs inside the host with `--ovs-rundir`, `--ovsdb-connection` and `--topology` pointed at the node: `dvrflow flows -o json` reads every bridge's flows (`ovs-ofctl -O OpenFlow13 --no-names dump-flows` on each management socket), the OVSDB inventory in one select and the topology, and explains every flow (rule and owner); it must print as many flows as the switch holds. `dvrflow diff -o json` reads the same and compares the switch with what the agent would install (`controller.PreviewFlows`); it must exit 0 with `\"equal\": true`. The baseline is the switch's own `ovs-ofctl -O OpenFlow13 --no-names dump-flows` of the same bridges, one after the other, each run inside the host the same way: the reading alone. Each repetition runs the baseline, then flows, then diff, each on a quiet switch; %d repetitions, medians. *CPU* and *peak RSS* come from the process's rusage, which counts the ovs-ofctl children it waited for (CPU added, RSS the larger); peak RSS is the largest over the repetitions.\n\n", r.Reps)
	p("| N | flows (with a rule) | ovs-ofctl dump-flows | `dvrflow flows -o json` | ratio | flows explained / s | CPU of flows (with its ovs-ofctl) | `dvrflow diff -o json` | ratio | peak RSS: flows / diff |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Sizes {
		c := s.CLI
		if c == nil || len(c.Runs) == 0 {
			p("| %d | – | – | – | – | – | – | – | – | – |\n", s.Params.Ports)
			continue
		}
		flowsRSS, diffRSS := c.maxRSS()
		p("| %d | %d (%d) | %s | %s | **%s** | %s | %s | %s | **%s** | %s / %s |\n", s.Params.Ports, c.Flows, c.Ruled,
			ms(c.baseline()), ms(c.flowsTook()), c.ratioCell(c.flowsTook()), c.rateCell(), ms(c.flowsCPU()),
			ms(c.diffTook()), c.ratioCell(c.diffTook()), mib(flowsRSS), mib(diffRSS))
	}
	var runs []string
	for _, s := range r.Sizes {
		if s.CLI == nil {
			continue
		}
		var rs []string
		for _, run := range s.CLI.Runs {
			rs = append(rs, ms(run.Baseline)+" / "+ms(run.Flows.Took)+" / "+ms(run.Diff.Took))
		}
		runs = append(runs, fmt.Sprintf("N=%d: %s", s.Params.Ports, strings.Join(rs, ", ")))
	}
	if len(runs) > 0 {
		p("\nEvery run (ovs-ofctl dump-flows / dvrflow flows / dvrflow diff): %s.\n", strings.Join(runs, "; "))
	}
}

// ratioCell is a CLI time over the ovs-ofctl dump-flows median, "–" without a baseline.
func (c *cliResult) ratioCell(d time.Duration) string {
	bl := c.baseline()
	if bl <= 0 || d <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", float64(d)/float64(bl))
}

func (c *cliResult) rateCell() string {
	fps := c.flowsPerSecond()
	if fps <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", fps)
}

func (c *cliResult) rssCell() string {
	flowsRSS, diffRSS := c.maxRSS()
	if max(flowsRSS, diffRSS) <= 0 {
		return "–"
	}
	return mib(max(flowsRSS, diffRSS))
}

func ms(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// machine describes where the run happened: CPU model and cores, Open vSwitch and Go
// versions, kernel.
func machine() string {
	cpu := "unknown CPU"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	ovs := "Open vSwitch (version unknown)"
	if out, err := exec.Command("ovs-vswitchd", "--version").Output(); err == nil {
		ovs = strings.NewReplacer("ovs-vswitchd ", "", "(", "", ")", "").Replace(strings.SplitN(string(out), "\n", 2)[0])
	}
	kernel := ""
	if out, err := exec.Command("uname", "-r").Output(); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(out))
	}
	return fmt.Sprintf("%d cores (%s), %s, %s%s", runtime.NumCPU(), cpu, ovs, runtime.Version(), kernel)
}
