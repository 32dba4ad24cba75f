package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// pinger runs a long ping between two VMs in the background and reports the loss.
type pinger struct {
	done chan struct{}
	out  string
	err  error
}

func startPinger(ctx context.Context, vm *sandbox.VM, ip string, count int, interval time.Duration) *pinger {
	p := &pinger{done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.out, p.err = vm.Run(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "1", ip)
	}()
	return p
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)

// lost waits for the ping to end and returns how many replies were missing.
func (p *pinger) lost(t *testing.T) int {
	t.Helper()
	<-p.done
	m := pingSummary.FindStringSubmatch(p.out)
	if m == nil {
		t.Fatalf("ping summary not found (%v):\n%s", p.err, p.out)
	}
	sent, _ := strconv.Atoi(m[1])
	got, _ := strconv.Atoi(m[2])
	return sent - got
}

var onceFlowMods = regexp.MustCompile(`converged and verified.*"flow_mods": (\d+)`)

// TestRestartsLoseNothing: restarting the agent or ovsdb-server drops no packet and changes
// no flow; after an ovs-vswitchd restart (which loses every flow) the running agent puts the
// identical flow set back by itself.
func TestRestartsLoseNothing(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1", "p2")))
	h := sandbox.StartForTest(t, "restarts")
	parent := t
	agent := startAgent(t, h, topo)
	waitFor(t, 20*time.Second, "br-int created", func() error { return bridgeExists(ctx, h, "br-int") })
	vm1, err := h.AddVM(ctx, sandbox.VMSpec{Name: "vm1", Bridge: "br-int", PortName: "tap" + portIDs["p1"][:11], IfaceID: portIDs["p1"], MAC: "fa:16:3e:00:00:01", CIDR: "10.0.0.1/24"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddVM(ctx, sandbox.VMSpec{Name: "vm2", Bridge: "br-int", PortName: "tap" + portIDs["p2"][:11], IfaceID: portIDs["p2"], MAC: "fa:16:3e:00:00:02", CIDR: "10.0.0.2/24"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "vm1 reaches vm2", func() error { return vm1.Ping(ctx, "10.0.0.2", 1) })
	// The agent tags a port after the bundle that confirmed its flows: once both ports are
	// tagged, the flows the reference is taken from are complete.
	waitFor(t, 20*time.Second, "both ports tagged", func() error {
		for _, p := range []string{"p1", "p2"} {
			if got := portTag(t, ctx, h, "tap"+portIDs[p][:11]); got != "1" {
				return fmt.Errorf("port %s tag %s", p, got)
			}
		}
		return nil
	})
	reference := dumpInstalled(t, ctx, h, "br-int")

	t.Run("agent restart: zero flow-mods, zero loss", func(t *testing.T) {
		ping := startPinger(ctx, vm1, "10.0.0.2", 100, 20*time.Millisecond)
		agent.stop(t)
		out := agentOnce(t, h, topo) // a fresh process learns the installed state from the switch
		m := onceFlowMods.FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("no convergence report:\n%s", out)
		}
		if m[1] != "0" {
			t.Errorf("restarted agent sent %s flow-mods, want 0:\n%s", m[1], out)
		}
		agent = startAgent(parent, h, topo) // runs on after this subtest
		if n := ping.lost(t); n > 0 {
			t.Errorf("%d pings lost across the agent restart", n)
		}
	})

	t.Run("ovsdb-server restart: zero loss, flows untouched", func(t *testing.T) {
		ping := startPinger(ctx, vm1, "10.0.0.2", 100, 20*time.Millisecond)
		if err := h.RestartOVSDB(ctx); err != nil {
			t.Fatal(err)
		}
		if n := ping.lost(t); n > 0 {
			t.Errorf("%d pings lost across the ovsdb-server restart", n)
		}
		removed, added := changes(reference, dumpInstalled(t, ctx, h, "br-int"))
		if len(removed)+len(added) > 0 {
			t.Errorf("flows changed across the ovsdb-server restart:\n removed:\n%s\n added:\n%s", lines(removed), lines(added))
		}
	})

	t.Run("ovs-vswitchd restart: the agent restores the identical flows", func(t *testing.T) {
		if err := h.RestartVswitchd(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		waitFor(t, 15*time.Second, "flows restored after the ovs-vswitchd restart", func() error {
			removed, added := changes(reference, dumpInstalled(t, ctx, h, "br-int"))
			if len(removed)+len(added) > 0 {
				return fmt.Errorf("%d flows missing, %d unexpected", len(removed), len(added))
			}
			return nil
		})
		took := time.Since(start)
		t.Logf("flows restored %s after ovs-vswitchd came back", took.Round(time.Millisecond))
		if took > time.Second {
			t.Errorf("flows restored %s after ovs-vswitchd accepted connections again, want < 1 s", took.Round(time.Millisecond))
		}
		waitFor(t, 10*time.Second, "vm1 reaches vm2 again", func() error { return vm1.Ping(ctx, "10.0.0.2", 1) })
	})
}
