// Command bench is `make bench`: it measures dvrflow-agent on one sandbox host for N = 100,
// 1000 and 10000 VM ports (M = N/20 VLAN networks, K = 50 other hosts' DVR MACs) and
// prints every figure next to a baseline measured in the same run, because the machines are
// shared and absolute times drift:
//
//  1. cold sync vs `ovs-ofctl --bundle add-flows` of the same flows into fresh bridges, and
//     vs one `ovs-vsctl` run adding the same patch pair and tags (the OVSDB part);
//  2. no-op restart (0 flow-mods, learned from the switch) and one flow deleted by hand;
//  3. incremental plug and unplug latency on the 1000-port node;
//  4. memory of the agent process and of ovs-vswitchd;
//  5. the write path alone: 100k flows through flows.Bridge.Sync vs ovs-ofctl --bundle;
//  6. the dvrflow CLI on the converged node: `flows` and `diff` vs ovs-ofctl dump-flows;
//  7. Neutron: dvrflow-agent and Neutron's Python agent on two hosts of one real
//     neutron-server: plug → update_device_list (up) and → ACTIVE, one port at a time, and
//     100 ports plugged at once → all ACTIVE (-neutron=false skips it);
//  8. firewall: the same two agents with firewall_driver = openvswitch, 200 ports each in
//     one security group of 50 rules: one rule added (deleted) → its flows on br-int for
//     every port, and the firewall's flow count (-neutron-fw=false skips it).
//
// The table is printed and written to bench/RESULTS.md (and into README.md's Benchmarks
// section with -readme). It needs root; it stops its sandbox hosts also on failure and
// Ctrl-C.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/sandbox"
)

// bench holds what every phase shares: the log, the work directory and the hosts to stop.
type bench struct {
	log        *zap.Logger
	workDir    string
	agent      string   // the dvrflow-agent binary
	cli        string   // the dvrflow CLI binary
	vifType    string   // Interface.type of the VIFs
	reps       int      // cold sync repetitions
	memprofile string   // heap profile file, or ""
	agentLog   *os.File // the in-process agents' log, opened on first use

	mu    sync.Mutex
	hosts map[*sandbox.Host]bool
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run() error {
	sizes := flag.String("sizes", "100,1000,10000", "comma-separated `N`s (VM ports per node)")
	vifType := flag.String("vif-type", "patch", "Interface.type of the plugged VIFs: patch (no datapath port) or internal (a tap device each; ovs-vswitchd's userspace datapath takes minutes for 10000)")
	reps := flag.Int("reps", 3, "cold sync repetitions per size")
	incAt := flag.Int("incremental-at", 1000, "the `N` whose node runs the incremental plug/unplug test (0: none)")
	incCount := flag.Int("incremental", 100, "VIFs plugged and unplugged one by one")
	wpFlows := flag.Int("writepath", 100000, "distinct flows for the write-path comparison (0: skip)")
	wpReps := flag.Int("writepath-reps", 3, "write-path repetitions")
	resultsFile := flag.String("results", "bench/RESULTS.md", "write the results here (empty: don't)")
	notesFile := flag.String("notes", "bench/NOTES.md", "append this hand-written analysis to the results (if it exists)")
	readme := flag.String("readme", "", "replace the table between the bench markers of this README")
	jsonFile := flag.String("json", "", "also write the raw results as JSON to `file`")
	render := flag.String("render", "", "measure nothing: render the results of an earlier run from its -json `file`")
	agentLog := flag.String("agent-log", "", "copy the agents' log to `file` at the end")
	memprofile := flag.String("memprofile", "", "write a heap profile of the bench process to `file` after each size's cold sync (the in-process agent holds its state then; the last size's stays)")
	neutronOn := flag.Bool("neutron", true, "run section 7: dvrflow-agent and Neutron's Python agent under a real neutron-server (testbed/neutron)")
	neutronPlugs := flag.Int("neutron-plugs", 100, "single plugs per agent in the Neutron section")
	neutronBatch := flag.Int("neutron-batch", 100, "ports plugged at once per agent in the Neutron section (0: none)")
	fwOn := flag.Bool("neutron-fw", true, "run section 8: the firewall scale test, dvrflow-agent and Neutron's agent with firewall_driver = openvswitch under a real neutron-server")
	fwPorts := flag.Int("fw-ports", 200, "ports in the security group per agent in the firewall section")
	fwRules := flag.Int("fw-rules", 50, "rules of the security group in the firewall section, Neutron's two default egress rules included (4 … 500)")
	fwReps := flag.Int("fw-reps", 5, "rules added and deleted by dvrflow-agent in the firewall section")
	fwPyReps := flag.Int("fw-python-reps", 2, "rules added and deleted by Neutron's agent in the firewall section (each takes it most of a minute at 200 ports)")
	fwVMs := flag.Bool("fw-vms", false, "plug the firewall section's ports as VMs (a namespace and a veth pair each, one OVSDB transaction per port) instead of -vif-type VIFs in one transaction")
	merge := flag.String("merge", "", "keep the sections of an earlier run's -json `file` that this run does not measure (the results written are that file's with this run's sections in place)")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the bench process (the in-process agent) to `file`")
	flag.Parse()
	ns, err := parseSizes(*sizes)
	if err != nil {
		return err
	}
	if *reps < 1 || *wpReps < 1 {
		return errors.New("-reps and -writepath-reps must be at least 1")
	}
	if *fwOn && (*fwPorts < 1 || *fwRules < 4 || *fwRules > 500 || *fwReps < 1 || *fwPyReps < 1) {
		return errors.New("-fw-ports, -fw-reps and -fw-python-reps must be at least 1, -fw-rules 4 … 500")
	}
	if *render != "" {
		res, err := loadResults(*render)
		if err != nil {
			return err
		}
		return publish(res, *notesFile, *resultsFile, *readme)
	}
	log, err := newLogger()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{log: log, hosts: map[*sandbox.Host]bool{}, vifType: *vifType, reps: *reps, memprofile: *memprofile}
	defer b.stopAll()
	if b.workDir, err = os.MkdirTemp("", "dvrflow-bench-"); err != nil {
		return err
	}
	defer os.RemoveAll(b.workDir)
	if err := sandbox.EnsurePackages(ctx, log); err != nil {
		return err
	}
	b.agent = filepath.Join(b.workDir, "dvrflow-agent")
	if out, err := exec.CommandContext(ctx, goTool(), "build", "-o", b.agent, "./cmd/dvrflow-agent").CombinedOutput(); err != nil {
		return fmt.Errorf("build dvrflow-agent: %w: %s", err, out)
	}
	if err := b.buildCLI(ctx); err != nil {
		return err
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	res := &results{Date: time.Now(), Machine: machine(), VIFType: *vifType, Reps: *reps}
	start := time.Now()
	for _, n := range ns {
		inc := 0
		if n == *incAt {
			inc = *incCount
		}
		s, err := b.measureSize(ctx, params(n), inc)
		if err != nil {
			return fmt.Errorf("N=%d: %w (agent log: %s)", n, err, b.keepAgentLog())
		}
		res.Sizes = append(res.Sizes, s)
	}
	if *neutronOn {
		if res.Neutron, err = b.measureNeutron(ctx, *neutronPlugs, *neutronBatch); err != nil {
			return fmt.Errorf("neutron: %w (dvrflow-agent log: %s)", err, keepFile(b.neutronAgentLogPath()))
		}
		log.Info("Neutron section done", zap.String("dvrflow_agent_log", keepFile(b.neutronAgentLogPath())))
	}
	if *fwOn {
		if res.Firewall, err = b.measureFirewall(ctx, *fwPorts, *fwRules, *fwReps, *fwPyReps, *fwVMs); err != nil {
			return fmt.Errorf("firewall: %w (dvrflow-agent log: %s)", err, keepFile(b.firewallAgentLogPath()))
		}
		log.Info("firewall section done", zap.Duration("took", res.Firewall.Took.Round(time.Second)),
			zap.String("dvrflow_agent_log", keepFile(b.firewallAgentLogPath())))
	}
	if *wpFlows > 0 {
		if res.WritePath, err = b.writePath(ctx, *wpFlows, *wpReps); err != nil {
			return err
		}
	}
	res.Took = time.Since(start)
	if *agentLog != "" {
		if data, err := os.ReadFile(b.agentLogPath()); err == nil {
			_ = os.WriteFile(*agentLog, data, 0o644)
		}
	}

	if *merge != "" {
		old, err := loadResults(*merge)
		if err != nil {
			return err
		}
		res = mergeResults(old, res)
	}
	if *jsonFile != "" {
		data, err := json.MarshalIndent(res, "", " ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(*jsonFile, data, 0o644); err != nil {
			return err
		}
	}
	return publish(res, *notesFile, *resultsFile, *readme)
}

// loadResults reads the -json results of an earlier run (for -render); results of runs
// that did not measure a phase lack its fields.
func loadResults(path string) (*results, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var res results
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &res, nil
}

// mergeResults returns the earlier results with the sections this run measured in place
// (the run's date, machine and duration stay the earlier run's; section 8 carries its own).
func mergeResults(old, run *results) *results {
	out := *old
	if len(run.Sizes) > 0 {
		out.Sizes, out.Reps, out.VIFType = run.Sizes, run.Reps, run.VIFType
	}
	if run.WritePath != nil {
		out.WritePath = run.WritePath
	}
	if run.Neutron != nil {
		out.Neutron = run.Neutron
	}
	if run.Firewall != nil {
		out.Firewall = run.Firewall
	}
	return &out
}

// publish prints the results with the notes, and writes them to resultsFile and into the
// README's summary (each when named).
func publish(res *results, notesFile, resultsFile, readme string) error {
	notes := ""
	if data, err := os.ReadFile(notesFile); err == nil {
		notes = string(data)
	}
	md := res.markdown(notes)
	fmt.Println()
	fmt.Print(md)
	if resultsFile != "" {
		if err := os.WriteFile(resultsFile, []byte(md), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(os.Stderr, "\nwritten to %s\n", resultsFile)
	}
	if readme != "" {
		if err := updateReadme(readme, res); err != nil {
			return err
		}
	}
	return nil
}

// goTool is the go command (make passes $(GO) as GO).
func goTool() string {
	if g := os.Getenv("GO"); g != "" {
		return g
	}
	return "go"
}

// keepAgentLog copies the agents' log out of the work directory (removed at exit) and
// returns where it is.
func (b *bench) keepAgentLog() string {
	data, err := os.ReadFile(b.agentLogPath())
	if err != nil {
		return "none"
	}
	dst := filepath.Join(os.TempDir(), "dvrflow-bench-agent.log")
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return b.agentLogPath()
	}
	return dst
}

// keepFile copies a file of the work directory (removed at exit) to the temporary
// directory and returns where it is.
func keepFile(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "none"
	}
	dst := filepath.Join(os.TempDir(), "dvrflow-bench-"+filepath.Base(path))
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		return path
	}
	return dst
}

// parseSizes parses -sizes; empty means no size (other sections only).
func parseSizes(s string) ([]int, error) {
	var ns []int
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 20 {
			return nil, fmt.Errorf("-sizes: %q is not a number of ports >= 20", f)
		}
		ns = append(ns, n)
	}
	return ns, nil
}

func newLogger() (*zap.Logger, error) {
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
	cfg.DisableStacktrace = true
	return cfg.Build()
}

// startHost starts a sandbox host that stopAll stops.
func (b *bench) startHost(ctx context.Context, name string) (*sandbox.Host, error) {
	h, err := sandbox.Start(ctx, name, sandbox.Options{Log: b.log.Named("sandbox").WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))})
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.hosts[h] = true
	b.mu.Unlock()
	return h, nil
}

// stopHost stops a host (also when the bench's context was cancelled).
func (b *bench) stopHost(h *sandbox.Host) {
	if h == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.Stop(ctx); err != nil {
		b.log.Error("stop sandbox host", zap.String("host", h.Name()), zap.Error(err))
	}
	b.mu.Lock()
	delete(b.hosts, h)
	b.mu.Unlock()
}

// stopAll stops every host still running.
func (b *bench) stopAll() {
	b.mu.Lock()
	var hs []*sandbox.Host
	for h := range b.hosts {
		hs = append(hs, h)
	}
	b.mu.Unlock()
	for _, h := range hs {
		b.stopHost(h)
	}
}

// params are the sizes: M = N/20 networks, K = 50 other hosts.
func params(n int) topogen.Params {
	return topogen.Params{Ports: n, Networks: max(1, n/20), OtherHosts: 50}
}
