package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/topology"
)

// startPrefetchedAgent starts an agent as cmd/dvrflow-agent does: the installed flows
// prefetched with the config known before the topology (no host section) and with the
// effective one, then NewAgent, UsePrefetch, Setup, SetSnapshot.
func startPrefetchedAgent(t *testing.T, ctx context.Context, cfg *config.Config, db *ovsdb.Client, topo *topology.File) *controller.Agent {
	t.Helper()
	log := zaptest.NewLogger(t)
	pre := controller.NewFlowPrefetch(log)
	defer pre.Close()
	probe := config.DefaultConfig()
	probe.OVSRundir = cfg.OVSRundir
	pre.Start(ctx, probe)
	pre.Start(ctx, cfg)
	a := controller.NewAgent(cfg, db, log)
	t.Cleanup(a.Close)
	a.UsePrefetch(pre)
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	a.SetSnapshot(topo.Snapshot())
	return a
}

// checkResults checks every bridge's first sync: read from the switch, by the prefetch or
// not, and the flow-mods sent in all.
func checkResults(t *testing.T, what string, rep controller.Report, bridges int, prefetched bool, flowMods int) {
	t.Helper()
	if len(rep.Results) != bridges {
		t.Fatalf("%s: %d bridges synced, want %d", what, len(rep.Results), bridges)
	}
	for _, r := range rep.Results {
		if !r.Read || r.Prefetched != prefetched {
			t.Errorf("%s: bridge %s read %v, prefetched %v; want read, prefetched %v", what, r.Bridge, r.Read, r.Prefetched, prefetched)
		}
	}
	if n := rep.FlowMods(); n != flowMods {
		t.Errorf("%s: %d flow-mods, want %d", what, n, flowMods)
	}
}

// An agent started as the daemon starts: on a cold node there is nothing to prefetch and the
// first reconcile installs everything; restarted on the converged node, it takes every
// bridge's prefetched flows and sends only the flow deleted by hand before the restart; after
// ovs-vswitchd restarts, it reads and re-installs everything as before.
func TestStartWithPrefetch(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path := filepath.Join("..", "testdata", "neutron", "scenarios", "dvr_vlan.json")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Neutron scenarios missing from testdata/neutron: %v", err)
	}
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	h := sandbox.StartForTest(t, "prefetch")
	cfg := config.DefaultConfig()
	cfg.ApplyHost(topo.Snapshot().Host)
	cfg.DatapathType, cfg.OVSRundir = "netdev", h.RunDir()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := ovsdb.Connect(ctx, h.DBEndpoint(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	cold := startPrefetchedAgent(t, ctx, cfg, db, topo)
	plug(t, ctx, h, db, topo.Ports...)
	rep := reconcile(t, ctx, cold)
	total := 0
	for _, fs := range cold.Desired() {
		total += len(fs)
	}
	checkResults(t, "cold start", rep, 2, false, total)
	cold.Close()

	// One of the agent's flows deleted by hand while no agent runs.
	var gone flows.Flow
	for _, f := range cold.Desired()["br-vlan"] {
		if flows.IsOurs(f.Cookie) {
			gone = f
			break
		}
	}
	spec := gone
	spec.Cookie = 0
	match, _, _ := strings.Cut(spec.String(), " actions=")
	if gone.Table == 0 {
		match = "table=0," + match // rendered without it, and without it del-flows spans every table
	}
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "del-flows", "br-vlan", match); err != nil {
		t.Fatal(err)
	}

	restarted := startPrefetchedAgent(t, ctx, cfg, db, topo)
	rep = reconcile(t, ctx, restarted)
	checkResults(t, "restart", rep, 2, true, 1)
	if added, _, _ := changed(rep); len(added) != 1 || added[0].String() != gone.String() {
		t.Errorf("restart re-added %v, want exactly %s", added, gone)
	}

	if err := h.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		if rep, err = restarted.Reconcile(ctx); err == nil {
			break
		}
		if attempt == 50 {
			t.Fatalf("reconcile after ovs-vswitchd restarted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	checkResults(t, "after ovs-vswitchd restarted", rep, 2, false, total)
	if err := restarted.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}
