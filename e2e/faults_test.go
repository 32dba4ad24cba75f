package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// faultPings are the flows of traffic kept running through every fault: routed VXLAN →
// VLAN and back across hosts, routed VLAN → VXLAN, and switched on the VXLAN network.
var faultPings = []struct{ from, to string }{{"c", "b"}, {"b", "a"}, {"a", "c"}}

// TestFaultMatrix is the fault matrix of docs/fault-matrix.md on the three-host DVR cloud:
// each fault on a host while 100 ms pings run, then the packets lost, the time until the
// switch equals the desired state again, and the flow-mods when nothing changed.
func TestFaultMatrix(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	parent := t // the agents outlive the subtests
	cl := startRouterHostsCloud(t, ctx)
	waitFor(t, 30*time.Second, "c reaches b through the router", func() error { return cl.vms["c"].Ping(ctx, cl.ip["b"], 1) })
	for _, p := range faultPings {
		waitFor(t, 20*time.Second, p.from+" reaches "+p.to, func() error { return cl.vms[p.from].Ping(ctx, cl.ip[p.to], 1) })
	}
	// duringPings runs fault while the pings run (4 s of them at 100 ms) and returns how
	// many of them were lost in all.
	duringPings := func(t *testing.T, pings []struct{ from, to string }, fault func()) int {
		t.Helper()
		var ps []*pinger
		for _, p := range pings {
			ps = append(ps, startPinger(ctx, cl.vms[p.from], cl.ip[p.to], 40, 100*time.Millisecond))
		}
		fault()
		lost := 0
		for _, p := range ps {
			lost += p.lost(t)
		}
		return lost
	}
	during := func(t *testing.T, fault func()) int { return duringPings(t, faultPings, fault) }
	// Flows learned from traffic (with a timeout) come and go with the traffic: the agent
	// does not own them, and the comparisons leave them out.
	unlearned := func(set installed) installed {
		for l := range set {
			if strings.Contains(l, "hard_timeout=") || strings.Contains(l, "idle_timeout=") {
				delete(set, l)
			}
		}
		return set
	}
	// Flows are compared with port names: a re-created bridge gives its ports new numbers.
	flowsOf := func(host string) map[string]installed {
		out := map[string]installed{}
		for _, br := range []string{"br-int", "br-vlan", "br-tun"} {
			set, err := readInstalled(ctx, cl.hosts[host], br, true)
			if err != nil {
				t.Fatal(err)
			}
			out[br] = unlearned(set)
		}
		return out
	}
	same := func(host string, ref map[string]installed) error {
		for br, want := range ref {
			got, err := readInstalled(ctx, cl.hosts[host], br, true)
			if err != nil {
				return err
			}
			removed, added := changes(want, unlearned(got))
			if len(removed)+len(added) > 0 {
				return fmt.Errorf("%s %s: %d flows missing, %d unexpected", host, br, len(removed), len(added))
			}
		}
		return nil
	}
	report := func(t *testing.T, fault string, lost int, took time.Duration) {
		t.Logf("FAULT %-45s lost %d pings, converged %s after the fault", fault, lost, took.Round(time.Millisecond))
	}

	// The agent killed and restarted on a VXLAN host and on the VLAN host.
	for _, host := range []string{"rh-c", "rh-b"} {
		t.Run("agent SIGKILL and restart on "+host+": nothing lost, no flow-mod", func(t *testing.T) {
			ref := flowsOf(host)
			var took time.Duration
			lost := during(t, func() {
				old := cl.agents[host]
				_ = old.cmd.Process.Kill()
				<-old.done
				start := time.Now()
				cl.agents[host] = startAgent(parent, cl.hosts[host], cl.topo[host])
				waitFor(t, 20*time.Second, "the restarted agent's first sync", func() error {
					if !strings.Contains(cl.agents[host].Log(), "initial sync done") {
						return fmt.Errorf("not yet")
					}
					return nil
				})
				took = time.Since(start)
			})
			report(t, "agent SIGKILL + restart ("+host+")", lost, took)
			if lost != 0 {
				t.Errorf("%d pings lost across the agent's restart, want 0", lost)
			}
			if log := cl.agents[host].Log(); strings.Contains(log, "flows synced") {
				t.Errorf("the restarted agent sent flow-mods:\n%s", log)
			}
			if err := same(host, ref); err != nil {
				t.Error(err)
			}
		})
	}

	t.Run("topology replaced by invalid YAML on rh-c: state kept", func(t *testing.T) {
		ref := flowsOf("rh-c")
		good, err := os.ReadFile(cl.topo["rh-c"])
		if err != nil {
			t.Fatal(err)
		}
		lost := during(t, func() {
			writeFileAtomic(t, cl.topo["rh-c"], []byte("networks: [\n"))
			waitFor(t, 10*time.Second, "the agent refuses the broken file", func() error {
				if !strings.Contains(cl.agents["rh-c"].Log(), "keeping the previous one") {
					return fmt.Errorf("not logged yet")
				}
				return nil
			})
		})
		report(t, "topology replaced by invalid YAML (rh-c)", lost, 0)
		if lost != 0 {
			t.Errorf("%d pings lost, want 0", lost)
		}
		if err := same("rh-c", ref); err != nil {
			t.Error(err)
		}
		writeFileAtomic(t, cl.topo["rh-c"], good)
	})

	t.Run("topology file deleted on rh-a: state kept, recovers when it returns", func(t *testing.T) {
		ref := flowsOf("rh-a")
		good, err := os.ReadFile(cl.topo["rh-a"])
		if err != nil {
			t.Fatal(err)
		}
		lost := during(t, func() {
			if err := os.Remove(cl.topo["rh-a"]); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "the agent reports the missing file", func() error {
				if !strings.Contains(cl.agents["rh-a"].Log(), "no such file") {
					return fmt.Errorf("not logged yet")
				}
				return nil
			})
			writeFileAtomic(t, cl.topo["rh-a"], good)
		})
		report(t, "topology file deleted, then back (rh-a)", lost, 0)
		if lost != 0 {
			t.Errorf("%d pings lost, want 0", lost)
		}
		if err := same("rh-a", ref); err != nil {
			t.Error(err)
		}
	})

	t.Run("flows deleted, modified and a colliding foreign flow on rh-b: repaired < 1 s", func(t *testing.T) {
		ref := flowsOf("rh-b")
		h := cl.hosts["rh-b"]
		var took time.Duration
		lost := during(t, func() {
			start := time.Now()
			for _, args := range [][]string{
				{"del-flows", "br-int", "table=60"},
				{"mod-flows", "br-vlan", "table=3,actions=drop"},
				{"add-flow", "br-tun", "cookie=0x77,table=0,priority=1,in_port=1,actions=drop"},
			} {
				if _, err := h.Ofctl(ctx, append([]string{"-O", "OpenFlow13"}, args...)...); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, 10*time.Second, "rh-b's flows repaired", func() error { return same("rh-b", ref) })
			took = time.Since(start)
		})
		report(t, "flows deleted/modified/foreign (rh-b)", lost, took)
		if log := cl.agents["rh-b"].Log(); !strings.Contains(log, "flows changed by another client repaired") ||
			!strings.Contains(log, "table=60") {
			t.Errorf("the repair is not logged with the flows it changed:\n%s", log)
		}
		if took > time.Second {
			t.Errorf("repaired %s after the changes, want < 1 s", took.Round(time.Millisecond))
		}
		t.Logf("%d pings lost while rh-b's flows were broken by hand", lost)
	})

	t.Run("br-tun deleted by hand on rh-c: re-created with its tunnels and flows", func(t *testing.T) {
		ref := flowsOf("rh-c")
		var took time.Duration
		lost := during(t, func() {
			start := time.Now()
			if _, err := cl.hosts["rh-c"].Vsctl(ctx, "del-br", "br-tun"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "rh-c's bridges back", func() error { return same("rh-c", ref) })
			took = time.Since(start)
		})
		report(t, "br-tun deleted by hand (rh-c)", lost, took)
		if err := cl.vms["c"].Ping(ctx, cl.ip["b"], 3); err != nil {
			t.Errorf("c → b after br-tun came back: %v", err)
		}
	})

	t.Run("br-vlan deleted by hand on rh-b: re-created; traffic resumes once the trunks are back", func(t *testing.T) {
		ref := flowsOf("rh-b")
		var took time.Duration
		lost := during(t, func() {
			start := time.Now()
			if _, err := cl.hosts["rh-b"].Vsctl(ctx, "del-br", "br-vlan"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "rh-b's bridges back", func() error { return same("rh-b", ref) })
			took = time.Since(start)
			cl.addTrunks(t, ctx, "rh-b") // the uplinks belong to the test bed, not the agent
		})
		report(t, "br-vlan deleted by hand (rh-b)", lost, took)
		for _, p := range faultPings {
			waitFor(t, 20*time.Second, p.from+" reaches "+p.to+" after br-vlan came back", func() error {
				return cl.vms[p.from].Ping(ctx, cl.ip[p.to], 1)
			})
		}
	})

	t.Run("br-int deleted by hand on rh-a: re-created; traffic resumes once the VM is re-plugged", func(t *testing.T) {
		ref := flowsOf("rh-a")
		h := cl.hosts["rh-a"]
		var took time.Duration
		// VM a is re-plugged (a new namespace), so the pings that run are those not from a.
		lost := duringPings(t, faultPings[:2], func() {
			start := time.Now()
			if _, err := h.Vsctl(ctx, "del-br", "br-int"); err != nil {
				t.Fatal(err)
			}
			// The VM's port went with the bridge: the test bed, which owns it, plugs it again.
			if err := h.RemoveVM(ctx, "a"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 10*time.Second, "br-int back on rh-a", func() error { return bridgeExists(ctx, h, "br-int") })
			cl.vms["a"] = addOverlayVM(t, ctx, h, "a", rhVMA, "24", rhNets[0].gateway)
			waitFor(t, 20*time.Second, "rh-a's flows back", func() error { return same("rh-a", ref) })
			took = time.Since(start)
		})
		report(t, "br-int deleted by hand (rh-a)", lost, took)
		for _, p := range faultPings {
			waitFor(t, 20*time.Second, p.from+" reaches "+p.to+" after br-int came back", func() error {
				return cl.vms[p.from].Ping(ctx, cl.ip[p.to], 1)
			})
		}
	})

	t.Run("ovsdb-server restart on rh-a: no churn, then a new VM gets its flows", func(t *testing.T) {
		ref := flowsOf("rh-a")
		lost := during(t, func() {
			if err := cl.hosts["rh-a"].RestartOVSDB(ctx); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 20*time.Second, "the agent reconnected to ovsdb", func() error {
				if !strings.Contains(cl.agents["rh-a"].Log(), "reconnected to ovsdb") {
					return fmt.Errorf("not yet")
				}
				return nil
			})
		})
		report(t, "ovsdb-server restart (rh-a)", lost, 0)
		if lost != 0 {
			t.Errorf("%d pings lost across the ovsdb-server restart, want 0", lost)
		}
		if err := same("rh-a", ref); err != nil {
			t.Error(err)
		}
		d := addOverlayVM(t, ctx, cl.hosts["rh-a"], "d", rhVMD, "24", rhNets[0].gateway)
		waitFor(t, 20*time.Second, "the new VM d (rh-a) reaches b through the router", func() error { return d.Ping(ctx, cl.ip["b"], 1) })
	})

	// ovs-vswitchd restarts on the VLAN host and on a VXLAN host.
	for _, host := range []string{"rh-b", "rh-c"} {
		t.Run("ovs-vswitchd restart on "+host+": flows back < 1 s, traffic resumes", func(t *testing.T) {
			ref := flowsOf(host)
			var took time.Duration
			lost := during(t, func() {
				if err := cl.hosts[host].RestartVswitchd(ctx); err != nil {
					t.Fatal(err)
				}
				start := time.Now()
				waitFor(t, 10*time.Second, host+"'s flows back", func() error { return same(host, ref) })
				took = time.Since(start)
				// br-phy's internal port came back without its address: the test bed, which
				// owns the underlay, puts it back.
				cl.addUnderlay(t, ctx, host)
			})
			report(t, "ovs-vswitchd restart ("+host+")", lost, took)
			if took > time.Second {
				t.Errorf("flows back %s after ovs-vswitchd returned, want < 1 s", took.Round(time.Millisecond))
			}
			for _, p := range faultPings {
				waitFor(t, 20*time.Second, p.from+" reaches "+p.to+" after the restart", func() error {
					return cl.vms[p.from].Ping(ctx, cl.ip[p.to], 1)
				})
			}
		})
	}

}
