package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// neutronAgent is dvrflow-agent in Neutron mode on an agent host of the test bed, which a
// test can stop (SIGTERM), start again, pause and resume. Its log file spans every start.
type neutronAgent struct {
	host    *neutron.AgentHost
	conf    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// newNeutronAgent writes the host's openvswitch_agent.ini (the one Neutron's agent would
// get) and starts dvrflow-agent with it; it is stopped when the test ends.
func newNeutronAgent(t *testing.T, h *neutron.AgentHost, opts neutron.AgentOptions) *neutronAgent {
	t.Helper()
	dir := t.TempDir()
	a := &neutronAgent{host: h, conf: filepath.Join(dir, "openvswitch_agent.ini"), logPath: filepath.Join(dir, "dvrflow-agent.log")}
	if err := os.WriteFile(a.conf, []byte(h.AgentConfig(opts).INI()), 0o644); err != nil {
		t.Fatal(err)
	}
	a.start(t)
	t.Cleanup(func() {
		if _, err := a.stop(); err != nil {
			t.Errorf("dvrflow-agent on %s: %v", h.Name(), err)
		}
		if t.Failed() {
			t.Logf("dvrflow-agent log on %s:\n%s", h.Name(), tailLines(a.log(), 120))
		}
	})
	return a
}

// start starts the agent (again), appending to its log.
func (a *neutronAgent) start(t *testing.T) {
	t.Helper()
	logFile, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	sb := a.host.Sandbox()
	cmd := sb.Command(context.Background(), agentBinary, "--config-file", a.conf, "--ovs-rundir", sb.RunDir(),
		"--datapath-type", "netdev", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		t.Fatalf("start dvrflow-agent on %s: %v", a.host.Name(), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(done) }()
	a.mu.Lock()
	a.cmd, a.done = cmd, done
	a.mu.Unlock()
}

// stop sends SIGTERM (after SIGCONT, should it be paused) and waits; it returns how long
// the agent took to exit, and an error if it did not exit cleanly within 15 s.
func (a *neutronAgent) stop() (time.Duration, error) {
	a.mu.Lock()
	cmd, done := a.cmd, a.done
	a.mu.Unlock()
	if cmd == nil {
		return 0, nil
	}
	select {
	case <-done:
		return 0, fmt.Errorf("exited by itself: %v", cmd.ProcessState)
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGCONT)
	t := time.Now()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		took := time.Since(t)
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			return took, fmt.Errorf("exited with %d after SIGTERM", code)
		}
		return took, nil
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return time.Since(t), fmt.Errorf("did not stop within 15 s of SIGTERM")
	}
}

// signal sends sig to the agent process.
func (a *neutronAgent) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to dvrflow-agent on %s: %v", sig, a.host.Name(), err)
	}
}

// log is everything the agent logged, over all its starts.
func (a *neutronAgent) log() string {
	data, _ := os.ReadFile(a.logPath)
	return string(data)
}

// logSize marks the log's current end, for logSince.
func (a *neutronAgent) logSize() int {
	return len(a.log())
}

// logSince is what the agent logged after mark.
func (a *neutronAgent) logSince(mark int) string {
	l := a.log()
	if mark > len(l) {
		return ""
	}
	return l[mark:]
}

// waitLog waits until the agent logged a line matching re after mark and returns its
// submatches.
func (a *neutronAgent) waitLog(t *testing.T, mark int, timeout time.Duration, re *regexp.Regexp) []string {
	t.Helper()
	var m []string
	waitFor(t, timeout, "dvrflow-agent on "+a.host.Name()+" logs "+re.String(), func() error {
		if m = re.FindStringSubmatch(a.logSince(mark)); m == nil {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	return m
}

var (
	convergedFlowMods = regexp.MustCompile(`\tconverged\t.*"flow_mods": (\d+)`)
	consumedQueues    = regexp.MustCompile(`registered with neutron-server\t.*"queues": \[([^\]]*)\]`)
	brokerConnected   = regexp.MustCompile(`connected to the broker\t.*"generation": (\d+)`)
	revivedResync     = regexp.MustCompile(`neutron-server had counted the agent dead: full resync`)
)

// faultsBed is the test's part of the shared Neutron test bed: two hosts running
// dvrflow-agent, a VXLAN network with a subnet, and helpers on them.
type faultsBed struct {
	t       *testing.T
	ctx     context.Context
	cloud   *neutron.Cloud
	api     *neutron.Client
	network *neutron.Network
	subnet  *neutron.Subnet
	vms     int
}

// port creates a compute port bound to h.
func (b *faultsBed) port(h *neutron.AgentHost, name string) *neutron.Port {
	b.t.Helper()
	b.vms++
	p, err := b.api.CreatePort(b.ctx, neutron.PortRequest{Name: name, NetworkID: b.network.ID, DeviceOwner: "compute:nova",
		DeviceID: fmt.Sprintf("f0000000-0000-4000-8000-%012d", b.vms), HostID: h.Name()})
	if err != nil {
		b.t.Fatal(err)
	}
	if p.VIFType != "ovs" {
		b.t.Fatalf("port %s bound to %q with vif_type %q: no live Open vSwitch agent there for the server", name, p.HostID, p.VIFType)
	}
	return p
}

// plug plugs a VM for the port on h.
func (b *faultsBed) plug(h *neutron.AgentHost, p *neutron.Port) *sandbox.VM {
	b.t.Helper()
	vm, err := h.PlugVM(b.ctx, p, b.subnet, b.network.MTU)
	if err != nil {
		b.t.Fatal(err)
	}
	return vm
}

// waitStatus waits until the port has status want and returns how long that took.
func (b *faultsBed) waitStatus(p *neutron.Port, want string, timeout time.Duration) time.Duration {
	b.t.Helper()
	t0 := time.Now()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if _, err := b.api.WaitPortStatus(ctx, p.ID, want); err != nil {
		b.t.Fatalf("port %s: %v", p.Name, err)
	}
	return time.Since(t0)
}

// within fails the test when took exceeds limit.
func within(t *testing.T, what string, took, limit time.Duration) {
	t.Helper()
	t.Logf("%s: %s", what, took.Round(time.Millisecond))
	if took > limit {
		t.Errorf("%s took %s, want at most %s", what, took.Round(time.Millisecond), limit)
	}
}

// tagOf is the OVS tag of the VIF port of p on h ("[]" when untagged).
func tagOf(ctx context.Context, h *neutron.AgentHost, p *neutron.Port) (string, error) {
	out, err := h.Sandbox().Vsctl(ctx, "get", "Port", "tap"+p.ID[:11], "tag")
	return strings.TrimSpace(out), err
}

// statusWatch records every status a port shows while it runs (polled every 50 ms).
type statusWatch struct {
	mu     sync.Mutex
	seen   []string
	cancel context.CancelFunc
	done   chan struct{}
}

func watchStatus(ctx context.Context, api *neutron.Client, id string) *statusWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &statusWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			if p, err := api.GetPort(ctx, id); err == nil {
				w.mu.Lock()
				if len(w.seen) == 0 || w.seen[len(w.seen)-1] != p.Status {
					w.seen = append(w.seen, p.Status)
				}
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	return w
}

// stop ends the watch and returns the statuses seen, in order, repeats folded.
func (w *statusWatch) stop() []string {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.seen
}

// allFlows is every bridge's flows on h that dvrflow manages, without counters.
func allFlows(t *testing.T, ctx context.Context, h *neutron.AgentHost) map[string]installed {
	t.Helper()
	out := map[string]installed{}
	for _, br := range []string{"br-int", "br-tun"} {
		out[br] = dumpInstalled(t, ctx, h.Sandbox(), br)
	}
	return out
}

// sameFlows fails the test when two dumps of allFlows differ.
func sameFlows(t *testing.T, what string, before, after map[string]installed) {
	t.Helper()
	for br := range before {
		removed, added := changes(before[br], after[br])
		if len(removed)+len(added) > 0 {
			t.Errorf("%s: %s changed:\n removed:\n%s\n added:\n%s", what, br, lines(removed), lines(added))
		}
	}
}

// TestNeutronFaults: dvrflow-agent as the Open vSwitch agent of a real neutron-server,
// through the life of a port and the faults of a cloud: create + plug → ACTIVE, admin-down
// → DOWN on the dead VLAN, admin-up → ACTIVE, delete while plugged → dead with no flow
// left for it, each within 2 s; an agent restart with nothing changed (SIGTERM within 5 s,
// every flow kept, 0 flow-mods, the port never DOWN, no ping lost across hosts); RabbitMQ
// stopped for 20 s; neutron-server restarted; a garbage message on every queue the agent
// consumes; and the server counting the agent dead then alive (revived: one full resync).
func TestNeutronFaults(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cloud := neutronCloud(t)
	b := &faultsBed{t: t, ctx: ctx, cloud: cloud, api: cloud.Client}

	h1, err := cloud.AddHost(ctx, neutron.HostOptions{Name: "faults-1", LocalIP: netip.MustParsePrefix("10.255.0.31/24")})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := cloud.AddHost(ctx, neutron.HostOptions{Name: "faults-2", LocalIP: netip.MustParsePrefix("10.255.0.32/24")})
	if err != nil {
		t.Fatal(err)
	}
	opts := neutron.AgentOptions{FirewallDriver: "noop"}
	started := time.Now()
	a1 := newNeutronAgent(t, h1, opts)
	newNeutronAgent(t, h2, opts)
	for _, h := range []string{"faults-1", "faults-2"} {
		if _, err := b.api.WaitAgentAlive(ctx, h, neutron.AgentTypeOVS, started); err != nil {
			t.Fatal(err)
		}
	}
	if b.network, err = b.api.CreateNetwork(ctx, neutron.NetworkRequest{Name: "faults"}); err != nil {
		t.Fatal(err)
	}
	if b.subnet, err = b.api.CreateSubnet(ctx, neutron.SubnetRequest{Name: "faults", NetworkID: b.network.ID, CIDR: "10.31.0.0/24"}); err != nil {
		t.Fatal(err)
	}
	// A VM on faults-2: the peer of the pings across hosts.
	peer := b.port(h2, "peer")
	b.plug(h2, peer)
	b.waitStatus(peer, "ACTIVE", 10*time.Second)

	var vm1 *sandbox.VM
	var port1 *neutron.Port
	t.Run("lifecycle", func(t *testing.T) {
		b.t = t
		port1 = b.port(h1, "vm1")
		vm1 = b.plug(h1, port1)
		within(t, "create + plug → ACTIVE", b.waitStatus(port1, "ACTIVE", 10*time.Second), 2*time.Second)
		if err := pingUntil(ctx, vm1, peer.FixedIPs[0].IPAddress); err != nil {
			t.Fatal(err)
		}

		down, up := false, true
		t0 := time.Now()
		if _, err := b.api.UpdatePort(ctx, port1.ID, neutron.PortUpdate{AdminStateUp: &down}); err != nil {
			t.Fatal(err)
		}
		b.waitStatus(port1, "DOWN", 10*time.Second)
		waitFor(t, 10*time.Second, "admin-down port on the dead VLAN", func() error {
			if tag, err := tagOf(ctx, h1, port1); err != nil || tag != "4095" {
				return fmt.Errorf("tag %s (%v)", tag, err)
			}
			return nil
		})
		within(t, "admin-down → DOWN and tag 4095", time.Since(t0), 2*time.Second)

		t0 = time.Now()
		if _, err := b.api.UpdatePort(ctx, port1.ID, neutron.PortUpdate{AdminStateUp: &up}); err != nil {
			t.Fatal(err)
		}
		b.waitStatus(port1, "ACTIVE", 10*time.Second)
		within(t, "admin-up → ACTIVE", time.Since(t0), 2*time.Second)
		if err := pingUntil(ctx, vm1, peer.FixedIPs[0].IPAddress); err != nil {
			t.Fatalf("after admin-up: %v", err)
		}

		// Deleted while still plugged: dead as in Neutron.
		doomed := b.port(h1, "doomed")
		b.plug(h1, doomed)
		b.waitStatus(doomed, "ACTIVE", 10*time.Second)
		ofport := ofport(t, ctx, h1.Sandbox(), "tap"+doomed.ID[:11])
		t0 = time.Now()
		if err := b.api.DeletePort(ctx, doomed.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "deleted port dead, no flow for it", func() error {
			if tag, err := tagOf(ctx, h1, doomed); err != nil || tag != "4095" {
				return fmt.Errorf("tag %s (%v)", tag, err)
			}
			return deadPortFlows(ctx, h1, doomed.MACAddress, ofport)
		})
		within(t, "delete while plugged → dead (tag 4095, ingress dropped, no flow for its MAC or to it)", time.Since(t0), 2*time.Second)
	})
	if vm1 == nil || port1 == nil || !portActive(ctx, b.api, port1) {
		return // the subtests below need vm1 working
	}

	t.Run("agent restart", func(t *testing.T) {
		b.t = t
		before := allFlows(t, ctx, h1)
		status := watchStatus(ctx, b.api, port1.ID)
		// 200 pings every 100 ms: 20 s, longer than the restart takes.
		ping := startPinger(ctx, vm1, peer.FixedIPs[0].IPAddress, 200, 100*time.Millisecond)
		pingStarted := time.Now()
		took, err := a1.stop()
		if err != nil {
			t.Fatal(err)
		}
		within(t, "SIGTERM → agent exited", took, 5*time.Second)
		sameFlows(t, "after the agent stopped", before, allFlows(t, ctx, h1))
		mark := a1.logSize()
		t0 := time.Now()
		a1.start(t)
		m := a1.waitLog(t, mark, 30*time.Second, convergedFlowMods)
		t.Logf("restarted agent converged after %s with %s flow-mods", time.Since(t0).Round(time.Millisecond), m[1])
		if m[1] != "0" {
			t.Errorf("the restarted agent sent %s flow-mods, want 0", m[1])
		}
		sameFlows(t, "after the agent restarted", before, allFlows(t, ctx, h1))
		restarted := time.Since(pingStarted)
		lost := ping.lost(t)
		if restarted > 18*time.Second {
			t.Errorf("the restart took %s: the pings (20 s) did not cover it with margin", restarted.Round(time.Millisecond))
		}
		if lost > 0 {
			t.Errorf("%d of 200 pings lost across the agent restart", lost)
		}
		seen := status.stop()
		t.Logf("port status over the restart: %s", strings.Join(seen, " → "))
		for _, s := range seen {
			if s != "ACTIVE" && s != "BUILD" {
				t.Errorf("port went %s during the restart (seen %v)", s, seen)
			}
		}
		if p, err := b.api.GetPort(ctx, port1.ID); err != nil || p.Status != "ACTIVE" {
			t.Errorf("after the restart the port is %v (%v), want ACTIVE", p, err)
		}
	})

	t.Run("RabbitMQ stopped for 20 s", func(t *testing.T) {
		b.t = t
		mark := a1.logSize()
		if err := cloud.StopRabbitMQ(ctx); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		brokerUp := false
		defer func() {
			if !brokerUp { // the later subtests need it
				if err := cloud.StartRabbitMQ(ctx); err != nil {
					t.Error(err)
				}
			}
		}()
		// Created while the broker is down and plugged then. The server commits the port,
		// then waits for the broker (it casts the notifications before it binds the port
		// and answers): the port is read back from the API meanwhile, still unbound.
		slow := &neutron.Client{BaseURL: cloud.APIURL(), HTTP: &http.Client{Timeout: 3 * time.Minute}}
		created := make(chan error, 1)
		go func() {
			_, err := slow.CreatePort(ctx, neutron.PortRequest{Name: "while-broker-down", NetworkID: b.network.ID,
				DeviceOwner: "compute:nova", DeviceID: "f0000000-0000-4000-8000-00000000b0b0", HostID: h1.Name()})
			created <- err
		}()
		var late *neutron.Port
		waitFor(t, 15*time.Second, "port created while the broker is down", func() error {
			ps, err := b.api.ListPorts(ctx, url.Values{"name": {"while-broker-down"}})
			if err != nil || len(ps) != 1 {
				return fmt.Errorf("ports %+v (%v)", ps, err)
			}
			late = &ps[0]
			return nil
		})
		b.plug(h1, late)
		t.Logf("port created and plugged %s after the broker stopped", time.Since(stopped).Round(time.Millisecond))
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20*time.Second - time.Since(stopped)): // the outage itself
		}
		t0 := time.Now()
		if err := cloud.StartRabbitMQ(ctx); err != nil {
			t.Fatal(err)
		}
		brokerUp = true
		t.Logf("RabbitMQ back (neutron-server reconnected) after %s", time.Since(t0).Round(time.Millisecond))
		m := a1.waitLog(t, mark, 60*time.Second, brokerConnected)
		t.Logf("agent reconnected (generation %s) by %s after the broker start", m[1], time.Since(t0).Round(time.Millisecond))
		if _, err := h1.WaitAgentReport(ctx, neutron.AgentTypeOVS, t0); err != nil {
			t.Fatal(err)
		}
		t.Logf("agent reported alive %s after the broker start", time.Since(t0).Round(time.Millisecond))
		b.waitStatus(late, "ACTIVE", 30*time.Second)
		t.Logf("port plugged while the broker was down ACTIVE %s after the broker start", time.Since(t0).Round(time.Millisecond))
		if err := <-created; err != nil {
			t.Errorf("create port while the broker was down: %v", err)
		}
		if p, err := b.api.GetPort(ctx, late.ID); err != nil || p.VIFType != "ovs" || p.HostID != h1.Name() {
			t.Errorf("port made while the broker was down: %+v (%v), want bound to %s", p, err, h1.Name())
		}
		if p, err := b.api.GetPort(ctx, port1.ID); err != nil || p.Status != "ACTIVE" {
			t.Errorf("after the broker restart port vm1 is %v (%v), want ACTIVE", p, err)
		}
	})

	t.Run("neutron-server restarted", func(t *testing.T) {
		b.t = t
		if err := cloud.StopServer(ctx); err != nil {
			t.Fatal(err)
		}
		t0 := time.Now()
		if err := cloud.StartServer(ctx); err != nil {
			t.Fatal(err)
		}
		t.Logf("neutron-server serves again %s after its start", time.Since(t0).Round(time.Millisecond))
		if _, err := h1.WaitAgentReport(ctx, neutron.AgentTypeOVS, time.Now()); err != nil {
			t.Fatal(err)
		}
		t.Logf("agent reported alive %s after the server start", time.Since(t0).Round(time.Millisecond))
		after := b.port(h1, "after-server-restart")
		b.plug(h1, after)
		within(t, "plug after the server restart → ACTIVE", b.waitStatus(after, "ACTIVE", 10*time.Second), 2*time.Second)
	})

	t.Run("garbage on every consumed queue", func(t *testing.T) {
		b.t = t
		m := consumedQueues.FindAllStringSubmatch(a1.log(), -1)
		if m == nil {
			t.Fatal("the agent did not log the queues it consumes")
		}
		var queues []string
		for _, q := range strings.Split(m[len(m)-1][1], ",") {
			q = strings.Trim(strings.TrimSpace(q), `"`)
			if strings.HasSuffix(q, ".faults-1") || strings.Contains(q, "_fanout_") {
				queues = append(queues, q)
			}
		}
		if len(queues) < 24 {
			t.Fatalf("queues of faults-1's agent: %v, want a host and a fanout queue for each of its 12 topics", queues)
		}
		mark := a1.logSize()
		conn, err := amqp.Dial(cloud.AMQPURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		ch, err := conn.Channel()
		if err != nil {
			t.Fatal(err)
		}
		garbage := []string{
			`not json at all`,
			`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"add_fdb_entries\", \"args\": {\"fdb_entries\": [1, 2]}, \"_unique_id\": \"%s\"}"}`,
			`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"no_such_method\", \"args\": {}, \"_unique_id\": \"%s\"}"}`,
			`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"port_update\", \"args\": {\"port\": 7}, \"_unique_id\": \"%s\"}"}`,
		}
		for i, q := range queues {
			body := garbage[i%len(garbage)]
			if strings.Contains(body, "%s") {
				body = fmt.Sprintf(body, fmt.Sprintf("%032x", i+1))
			}
			if err := ch.PublishWithContext(ctx, "", q, false, false, amqp.Publishing{ContentType: "application/json", Body: []byte(body)}); err != nil {
				t.Fatalf("publish to %s: %v", q, err)
			}
		}
		waitFor(t, 10*time.Second, "every garbage message logged", func() error {
			logged := a1.logSince(mark)
			for _, q := range queues {
				if !strings.Contains(logged, `"queue": "`+q+`"`) {
					return fmt.Errorf("nothing logged for %s", q)
				}
			}
			return nil
		})
		// Nothing else lost: a new port becomes ACTIVE, and an l2pop change (a new port on
		// faults-2) reaches faults-1's br-tun.
		fresh := b.port(h1, "after-garbage")
		b.plug(h1, fresh)
		within(t, "plug after the garbage → ACTIVE", b.waitStatus(fresh, "ACTIVE", 10*time.Second), 2*time.Second)
		remote := b.port(h2, "remote-after-garbage")
		b.plug(h2, remote)
		b.waitStatus(remote, "ACTIVE", 10*time.Second)
		t0 := time.Now()
		waitFor(t, 10*time.Second, "l2pop unicast flow for the new remote port on faults-1", func() error {
			hits, err := flowsWith(ctx, h1.Sandbox(), "br-tun", "dl_dst="+remote.MACAddress)
			if err != nil || len(hits) == 0 {
				return fmt.Errorf("none (%v)", err)
			}
			return nil
		})
		t.Logf("l2pop flow on faults-1 %s after the remote port went ACTIVE", time.Since(t0).Round(time.Millisecond))
		if err := pingUntil(ctx, vm1, peer.FixedIPs[0].IPAddress); err != nil {
			t.Errorf("after the garbage: %v", err)
		}
	})

	t.Run("revived", func(t *testing.T) {
		b.t = t
		downTime := cloud.AgentDownTime()
		if downTime > 40*time.Second {
			t.Fatalf("agent_down_time is %s: the shared test bed (e2e/neutron_cloud_test.go) must set it short enough to wait for here", downTime)
		}
		if _, err := b.api.WaitAgentAlive(ctx, "faults-1", neutron.AgentTypeOVS, time.Time{}); err != nil {
			t.Fatal(err)
		}
		mark := a1.logSize()
		a1.signal(t, syscall.SIGSTOP)
		paused := time.Now()
		waitFor(t, downTime+30*time.Second, "neutron-server counts the paused agent dead", func() error {
			agents, err := b.api.ListAgents(ctx, "faults-1", neutron.AgentTypeOVS)
			if err != nil || len(agents) != 1 || agents[0].Alive {
				return fmt.Errorf("agents %+v (%v)", agents, err)
			}
			return nil
		})
		t.Logf("server counted the agent dead %s after SIGSTOP", time.Since(paused).Round(time.Millisecond))
		a1.signal(t, syscall.SIGCONT)
		t0 := time.Now()
		a1.waitLog(t, mark, 30*time.Second, revivedResync)
		t.Logf("revived → full resync %s after SIGCONT", time.Since(t0).Round(time.Millisecond))
		if _, err := b.api.WaitAgentAlive(ctx, "faults-1", neutron.AgentTypeOVS, time.Time{}); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*neutron.Port{port1} {
			b.waitStatus(p, "ACTIVE", 10*time.Second)
		}
		// One more report after the resync: it is alive, not revived again.
		if _, err := h1.WaitAgentReport(ctx, neutron.AgentTypeOVS, time.Now()); err != nil {
			t.Fatal(err)
		}
		if n := len(revivedResync.FindAllString(a1.logSince(mark), -1)); n != 1 {
			t.Errorf("%d full resyncs after revived, want exactly 1", n)
		}
		if err := pingUntil(ctx, vm1, peer.FixedIPs[0].IPAddress); err != nil {
			t.Errorf("after revived: %v", err)
		}
	})
}

// portActive reports whether the port is ACTIVE.
func portActive(ctx context.Context, api *neutron.Client, p *neutron.Port) bool {
	got, err := api.GetPort(ctx, p.ID)
	return err == nil && got.Status == "ACTIVE"
}

// deadPortFlows is nil when no flow of h's br-int or br-tun matches the MAC or outputs to
// the ofport, and br-int drops what comes in from the ofport.
func deadPortFlows(ctx context.Context, h *neutron.AgentHost, mac, ofport string) error {
	var drop bool
	for _, br := range []string{"br-int", "br-tun"} {
		out, err := h.Sandbox().Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", br)
		if err != nil {
			return err
		}
		for _, l := range strings.Split(out, "\n") {
			l = strings.TrimSpace(l)
			if strings.Contains(l, mac) {
				return fmt.Errorf("%s still has a flow for %s: %s", br, mac, l)
			}
			if br == "br-int" && regexp.MustCompile(`output:`+ofport+`\b`).MatchString(l) {
				return fmt.Errorf("%s still outputs to %s: %s", br, ofport, l)
			}
			if br == "br-int" && strings.Contains(l, "in_port="+ofport+" ") && strings.HasSuffix(l, "actions=drop") {
				drop = true
			}
		}
	}
	if !drop {
		return fmt.Errorf("br-int has no drop for in_port=%s", ofport)
	}
	return nil
}
