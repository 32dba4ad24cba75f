package controller_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/topology"
)

// eventsTopology is one host with a VLAN network on br-vlan and, with tunnels, a VXLAN
// network to two other hosts (no l2population: a full mesh of tunnel ports).
func eventsTopology(tunnels bool) string {
	doc := `
host: {name: h1, bridge_mappings: {physnet1: br-vlan}, tunnel_types: [], prevent_arp_spoofing: true}
networks: [{id: net-vlan, network_type: vlan, physical_network: physnet1, segmentation_id: 100}]
ports:
  - {id: p1000000-0000-4000-8000-000000000001, network_id: net-vlan, mac: "fa:16:3e:00:00:01"}
`
	if tunnels {
		doc = `
host: {name: h1, bridge_mappings: {physnet1: br-vlan}, tunnel_types: [vxlan], local_ip: 192.0.2.1}
other_hosts: [{name: h2, ip: 192.0.2.2}, {name: h3, ip: 192.0.2.3}]
networks: [{id: net-vx, network_type: vxlan, segmentation_id: 1001}]
ports:
  - {id: p1000000-0000-4000-8000-000000000001, network_id: net-vx, mac: "fa:16:3e:00:00:01"}
`
	}
	return doc
}

// eventsAgent starts a sandbox host and an agent for the topology doc on it.
func eventsAgent(t *testing.T, name, doc string, tune ...func(*config.Config)) (context.Context, *controller.Agent, *sandbox.Host, *ovsdb.Client, *topology.File) {
	t.Helper()
	sandbox.SkipIfShort(t, "real Open vSwitch")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	topo, err := topology.Parse([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	a, h, db := startAgent(t, ctx, name, topo, tune...)
	return ctx, a, h, db, topo
}

// startAgent starts a sandbox host and an in-process agent on it (netdev bridges set up,
// the topology in force), stopped when the test ends; tune adjusts the config first.
func startAgent(t *testing.T, ctx context.Context, name string, topo *topology.File, tune ...func(*config.Config)) (*controller.Agent, *sandbox.Host, *ovsdb.Client) {
	t.Helper()
	h := sandbox.StartForTest(t, name)
	cfg := config.DefaultConfig()
	cfg.ApplyHost(topo.Snapshot().Host)
	cfg.DatapathType, cfg.OVSRundir = config.DatapathNetdev, h.RunDir()
	for _, f := range tune {
		f(cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	log := zaptest.NewLogger(t)
	db, err := ovsdb.Connect(ctx, h.DBEndpoint(), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	a := controller.NewAgent(cfg, db, log)
	t.Cleanup(a.Close)
	if err := a.Setup(ctx); err != nil {
		t.Fatal(err)
	}
	if problems := a.SetSnapshot(topo.Snapshot()); len(problems) > 0 {
		t.Fatal(problems)
	}
	return a, h, db
}

// reports collects the reports of a running agent's reconciles.
type reports struct {
	mu   sync.Mutex
	all  []controller.Report
	more chan struct{}
}

func (r *reports) add(rep controller.Report) {
	r.mu.Lock()
	r.all = append(r.all, rep)
	r.mu.Unlock()
	select {
	case r.more <- struct{}{}:
	default:
	}
}

// await waits for a report (from index from on) that satisfies ok, and returns its index.
func (r *reports) await(t *testing.T, ctx context.Context, from int, what string, ok func(controller.Report) bool) int {
	t.Helper()
	for {
		r.mu.Lock()
		for i := from; i < len(r.all); i++ {
			if ok(r.all[i]) {
				r.mu.Unlock()
				return i
			}
		}
		from = len(r.all)
		r.mu.Unlock()
		select {
		case <-r.more:
		case <-ctx.Done():
			t.Fatalf("no reconcile %s before the deadline", what)
		}
	}
}

// runAgent runs the agent's event loop until the test ends and returns its reports.
func runAgent(t *testing.T, ctx context.Context, a *controller.Agent) (*reports, func()) {
	t.Helper()
	r := &reports{more: make(chan struct{}, 1)}
	a.OnConverged(r.add)
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- a.Run(runCtx, nil, nil) }()
	var once sync.Once
	stopRun := func() {
		once.Do(func() {
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stopRun)
	return r, stopRun
}

// bound reports whether the port is bound in the report, with a valid ofport.
func bound(rep controller.Report, id string) bool {
	for _, p := range rep.Binding.Node.Ports {
		if p.ID == id && p.OFPort > 0 && !p.Dead {
			return true
		}
	}
	return false
}

// A VIF whose ofport arrives after it was plugged (its device appears later, as when a
// hypervisor adds the port before creating the tap) is bound, tagged and given its flows
// through the event path: the loop reconciles when OVSDB reports the ofport, and no
// reconcile waits for it.
func TestOfportArrivingLaterInstallsFlowsThroughEvents(t *testing.T) {
	const id = "p1000000-0000-4000-8000-000000000001"
	ctx, a, h, db, _ := eventsAgent(t, "lateofport", eventsTopology(false))
	r, stop := runAgent(t, ctx, a)
	first := r.await(t, ctx, 0, "at start", func(controller.Report) bool { return true })

	// The port is added for a device that does not exist yet: ovs-vswitchd gives it ofport -1.
	tap := "tap" + id[:11]
	if _, err := h.Vsctl(ctx, "add-port", "br-int", tap, "--", "set", "Interface", tap,
		"external_ids:iface-id="+id, "external_ids:attached-mac=fa:16:3e:00:00:01"); err != nil {
		t.Fatal(err)
	}
	if n, err := db.Ofport(ctx, tap); err == nil || n != -1 {
		t.Fatalf("ofport of %s before its device exists: %d, %v; want -1 and ovs-vswitchd's error", tap, n, err)
	}
	// Then the device appears: ovs-vswitchd adds it and OVSDB reports its ofport.
	if _, err := h.Run(ctx, "ip", "link", "add", tap, "type", "veth", "peer", "name", tap+"p"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, "ip", "link", "set", tap, "up"); err != nil {
		t.Fatal(err)
	}
	got := r.await(t, ctx, first+1, "binding the port", func(rep controller.Report) bool { return bound(rep, id) })
	stop()
	rep := r.all[got]
	if rep.Binding.Tags[tap] != 1 {
		t.Errorf("tag of %s in the reconcile = %d, want local VLAN 1", tap, rep.Binding.Tags[tap])
	}
	if err := a.WaitTagsApplied(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(ctx); err != nil {
		t.Fatalf("switch after the event: %v", err)
	}
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--names", "dump-flows", "br-int", "table=25")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "dl_src=fa:16:3e:00:00:01") {
		t.Errorf("br-int table 25 lacks the port's MAC protection:\n%s", out)
	}
}

// New tunnel ports are created in the reconcile that needs them, which does not wait for
// their ofports: every other flow is programmed at once, the new ports are reported as
// waiting, and their flows follow when OVSDB reports the ofports. A tunnel peer whose port
// has no ofport yet delays no other peer.
func TestTunnelPortsDoNotDelayOthers(t *testing.T) {
	const id = "p1000000-0000-4000-8000-000000000001"
	ctx, a, h, db, topo := eventsAgent(t, "tunnelwait", eventsTopology(true))
	plug(t, ctx, h, db, topo.Ports...)

	// h2's tunnel port exists already (as after an earlier run); h3's does not.
	h2, h3 := "vxlan-c0000202", "vxlan-c0000203"
	if _, err := h.Vsctl(ctx, "add-port", "br-tun", h2, "--", "set", "Interface", h2, "type=vxlan",
		"options:remote_ip=192.0.2.2", "options:local_ip=192.0.2.1", "options:key=flow", "options:df_default=true",
		"options:in_key=flow", "options:out_key=flow"); err != nil {
		t.Fatal(err)
	}
	ofport2, err := db.Ofport(ctx, h2)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := a.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(rep.Waiting) != fmt.Sprint([]string{h3}) {
		t.Errorf("waiting = %v, want only %s (created by this reconcile)", rep.Waiting, h3)
	}
	if !bound(rep, id) || rep.Binding.Tags["tap"+id[:11]] != 1 {
		t.Errorf("the VM port was not bound and tagged while a tunnel port waited: %+v", rep.Binding.Tags)
	}
	flood := floodFlow(t, a)
	if want := fmt.Sprintf("output:%d", ofport2); !strings.HasSuffix(flood, want) {
		t.Errorf("flooding flow while %s waits: %s, want it to end with %s (h2 only)", h3, flood, want)
	}

	// The ofport arrives as an OVSDB change; Converge wakes on it and adds h3's flows.
	rep, err = a.Converge(ctx, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Waiting) != 0 {
		t.Fatalf("still waiting for %v", rep.Waiting)
	}
	ofport3 := db.Ofports([]string{h3})[h3]
	if want := fmt.Sprintf("output:%d,output:%d", ofport2, ofport3); !strings.HasSuffix(floodFlow(t, a), want) {
		t.Errorf("flooding flow after the ofport arrived: %s, want it to end with %s", floodFlow(t, a), want)
	}
	if err := a.Verify(ctx); err != nil {
		t.Fatal(err)
	}
}

// floodFlow returns br-tun's one desired flooding flow (table 22, priority 1).
func floodFlow(t *testing.T, a *controller.Agent) string {
	t.Helper()
	var found []string
	for _, f := range a.Desired()["br-tun"] {
		if f.Table == 22 && f.Priority == 1 {
			found = append(found, f.String())
		}
	}
	if len(found) != 1 {
		t.Fatalf("br-tun has %d flooding flows, want 1: %v", len(found), found)
	}
	return found[0]
}

// A managed bridge deleted by hand is noticed through the OVSDB monitor and re-created
// with its patch ports and options by the agent's event loop, and its flows re-synced.
func TestDeletedBridgeIsRecreatedAndResynced(t *testing.T) {
	ctx, a, h, db, topo := eventsAgent(t, "delbridge", eventsTopology(false))
	plug(t, ctx, h, db, topo.Ports...)
	r, stop := runAgent(t, ctx, a)
	first := r.await(t, ctx, 0, "at start", func(rep controller.Report) bool { return len(rep.Waiting) == 0 })

	if _, err := h.Vsctl(ctx, "del-br", "br-vlan"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	r.await(t, ctx, first+1, "re-creating br-vlan", func(rep controller.Report) bool {
		for _, res := range rep.Results {
			if res.Bridge == "br-vlan" && len(res.Added) > 0 {
				return len(rep.Waiting) == 0
			}
		}
		return false
	})
	stop()
	t.Logf("br-vlan re-created and re-synced %s after deletion", time.Since(deleted).Round(time.Millisecond))
	if err := a.Verify(ctx); err != nil {
		t.Fatalf("after re-creation: %v", err)
	}
	if out, _ := h.Vsctl(ctx, "get", "bridge", "br-vlan", "fail_mode", "datapath_type"); !strings.Contains(out, "secure") || !strings.Contains(out, "netdev") {
		t.Fatalf("re-created bridge lacks its options: %s", out)
	}
	if out, _ := h.Vsctl(ctx, "get", "interface", "phy-br-vlan", "options:peer"); strings.Trim(strings.TrimSpace(out), `"`) != "int-br-vlan" {
		t.Fatalf("patch port not restored: peer=%s", out)
	}
}

// A flow of the agent's deleted by hand, and a foreign flow put on one of its keys, are
// repaired by the running agent within a second, through the flow monitor and the one
// write path; the switch then equals the desired state again.
func TestFlowsChangedByOthersAreRepaired(t *testing.T) {
	ctx, a, h, db, topo := eventsAgent(t, "repair", eventsTopology(false))
	plug(t, ctx, h, db, topo.Ports...)
	r, stop := runAgent(t, ctx, a)
	first := r.await(t, ctx, 0, "at start", func(rep controller.Report) bool { return len(rep.Waiting) == 0 })
	for _, br := range a.Bridges() {
		if err := a.Writer(br).WaitMonitor(ctx); err != nil { // started after each first sync
			t.Fatal(err)
		}
	}

	// The port's MAC protection (table 25) and the NORMAL of table 60, as dumped.
	mac := dumpLines(t, ctx, h, "br-int", "table=25", "dl_src=fa:16:3e:00:00:01")
	if len(mac) != 1 {
		t.Fatalf("table 25 flows of the port: %q", mac)
	}
	changedAt := time.Now()
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "del-flows", "br-int", "table=25,dl_src=fa:16:3e:00:00:01"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "add-flow", "br-int", "cookie=0x1234,table=60,priority=3,actions=drop"); err != nil {
		t.Fatal(err)
	}
	foreign, mods := 0, 0 // over the reconciles since the changes (one or two)
	got := r.await(t, ctx, first+1, "repairing", func(rep controller.Report) bool {
		for _, res := range rep.Results {
			foreign += res.Foreign
			mods += res.FlowMods()
		}
		return foreign >= 2 && mods >= 2
	})
	took := time.Since(changedAt)
	stop()
	t.Logf("repaired %s after the changes (reconcile %d)", took.Round(time.Millisecond), got)
	if took > time.Second {
		t.Errorf("repair took %s, want < 1 s", took)
	}
	if a.Repairs() < 2 {
		t.Errorf("Repairs() = %d, want ≥ 2", a.Repairs())
	}
	if err := a.Verify(ctx); err != nil {
		t.Fatalf("after the repair: %v", err)
	}
	if got := dumpLines(t, ctx, h, "br-int", "table=25", "dl_src=fa:16:3e:00:00:01"); len(got) != 1 {
		t.Errorf("the MAC protection flow is not back: %q", got)
	}
}

// With verify_interval the running agent reads every bridge back periodically.
func TestVerifyIntervalReadsBack(t *testing.T) {
	ctx, a, _, _, _ := eventsAgent(t, "verify", eventsTopology(false), func(c *config.Config) { c.VerifyInterval = 1 })
	r, stop := runAgent(t, ctx, a)
	first := r.await(t, ctx, 0, "at start", func(controller.Report) bool { return true })
	r.await(t, ctx, first+1, "a periodic read-back", func(rep controller.Report) bool {
		for _, res := range rep.Results {
			if !res.Read {
				return false
			}
		}
		return len(rep.Results) > 0
	})
	stop()
}

// dumpLines returns the bridge's flows (ovs-ofctl dump-flows with the filter) that contain
// every substring.
func dumpLines(t *testing.T, ctx context.Context, h *sandbox.Host, bridge, filter string, subs ...string) []string {
	t.Helper()
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", "dump-flows", bridge, filter)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		ok := strings.Contains(l, "actions=")
		for _, s := range subs {
			ok = ok && strings.Contains(l, s)
		}
		if ok {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}
