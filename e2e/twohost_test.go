package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// twoHostTopology: one VLAN and one flat network on physnet1, deliberately with the same
// IP range so that isolation cannot come from routing; five ports over two hosts. Both
// agents read the same file: a port is bound where its VIF is plugged.
const twoHostTopology = `
host:
  agent_mode: legacy
  bridge_mappings: {physnet1: br-vlan}
  prevent_arp_spoofing: true
networks:
  - {id: 11111111-0000-4000-8000-000000000001, network_type: vlan, physical_network: physnet1, segmentation_id: 100}
  - {id: 11111111-0000-4000-8000-000000000002, network_type: flat, physical_network: physnet1}
subnets:
  - {id: 22222222-0000-4000-8000-000000000001, network_id: 11111111-0000-4000-8000-000000000001, cidr: 10.0.0.0/24, gateway_ip: 10.0.0.1}
  - {id: 22222222-0000-4000-8000-000000000002, network_id: 11111111-0000-4000-8000-000000000002, cidr: 10.0.0.0/24, gateway_ip: 10.0.0.1}
ports:
  - {id: a1000000-0000-4000-8000-000000000001, network_id: 11111111-0000-4000-8000-000000000001, mac: "fa:16:3e:00:00:11", fixed_ips: [{ip_address: 10.0.0.11}]}
  - {id: a1b00000-0000-4000-8000-000000000002, network_id: 11111111-0000-4000-8000-000000000001, mac: "fa:16:3e:00:00:12", fixed_ips: [{ip_address: 10.0.0.12}]}
  - {id: a2000000-0000-4000-8000-000000000003, network_id: 11111111-0000-4000-8000-000000000001, mac: "fa:16:3e:00:00:13", fixed_ips: [{ip_address: 10.0.0.13}]}
  - {id: b1000000-0000-4000-8000-000000000004, network_id: 11111111-0000-4000-8000-000000000002, mac: "fa:16:3e:00:00:21", fixed_ips: [{ip_address: 10.0.0.21}]}
  - {id: b2000000-0000-4000-8000-000000000005, network_id: 11111111-0000-4000-8000-000000000002, mac: "fa:16:3e:00:00:22", fixed_ips: [{ip_address: 10.0.0.22}]}
`

// TestTwoHostsRealPackets is issue 3's acceptance test: two hosts joined by a VLAN trunk,
// a running agent on each, VMs on a VLAN and a flat network.
func TestTwoHostsRealPackets(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	writeFileAtomic(t, topo, []byte(twoHostTopology))

	h1 := sandbox.StartForTest(t, "l2-h1")
	h2 := sandbox.StartForTest(t, "l2-h2")
	startAgent(t, h1, topo)
	startAgent(t, h2, topo)
	for _, h := range []*sandbox.Host{h1, h2} {
		waitFor(t, 20*time.Second, "agent creates br-vlan on "+h.Name(), func() error { return bridgeExists(ctx, h, "br-vlan") })
	}
	if err := sandbox.Link(ctx, h1, "trunk1", h2, "trunk2"); err != nil {
		t.Fatal(err)
	}
	for h, port := range map[*sandbox.Host]string{h1: "trunk1", h2: "trunk2"} {
		if _, err := h.Vsctl(ctx, "add-port", "br-vlan", port); err != nil {
			t.Fatal(err)
		}
	}
	vm := func(h *sandbox.Host, name, id, mac, ip string) *sandbox.VM {
		v, err := h.AddVM(ctx, sandbox.VMSpec{Name: name, Bridge: "br-int", PortName: "tap" + id[:11], IfaceID: id, MAC: mac, CIDR: ip + "/24"})
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	a1 := vm(h1, "a1", "a1000000-0000-4000-8000-000000000001", "fa:16:3e:00:00:11", "10.0.0.11")
	a1b := vm(h1, "a1b", "a1b00000-0000-4000-8000-000000000002", "fa:16:3e:00:00:12", "10.0.0.12")
	b1 := vm(h1, "b1", "b1000000-0000-4000-8000-000000000004", "fa:16:3e:00:00:21", "10.0.0.21")
	a2 := vm(h2, "a2", "a2000000-0000-4000-8000-000000000003", "fa:16:3e:00:00:13", "10.0.0.13")
	b2 := vm(h2, "b2", "b2000000-0000-4000-8000-000000000005", "fa:16:3e:00:00:22", "10.0.0.22")

	// The agents bind the VIFs as they appear (no restart, no polling).
	waitFor(t, 20*time.Second, "VM a1 reaches a2 across hosts", func() error { return a1.Ping(ctx, "10.0.0.13", 1) })

	t.Run("same network pings within and across hosts", func(t *testing.T) {
		for _, c := range []struct {
			from *sandbox.VM
			to   string
		}{{a1, "10.0.0.12"}, {a1b, "10.0.0.11"}, {a1, "10.0.0.13"}, {a2, "10.0.0.12"}, {b1, "10.0.0.22"}, {b2, "10.0.0.21"}} {
			if err := c.from.Ping(ctx, c.to, 3); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("trunk carries the provider VLAN, never the local one; flat is untagged", func(t *testing.T) {
		capture := startCapture(t, ctx, h1.Command, "-i", "trunk1", "-e", "-n", "-l", "ether src fa:16:3e:00:00:11 or ether src fa:16:3e:00:00:21")
		_ = a1.Ping(ctx, "10.0.0.13", 3)
		_ = b1.Ping(ctx, "10.0.0.22", 3)
		out := capture()
		a1Frames, b1Frames := 0, 0
		for _, l := range strings.Split(out, "\n") {
			switch {
			case strings.Contains(l, "fa:16:3e:00:00:11 >"):
				a1Frames++
				if !strings.Contains(l, "vlan 100,") {
					t.Errorf("frame of the VLAN network without provider VLAN 100 on the trunk: %s", l)
				}
			case strings.Contains(l, "fa:16:3e:00:00:21 >"):
				b1Frames++
				if strings.Contains(l, "vlan ") {
					t.Errorf("frame of the flat network tagged on the trunk: %s", l)
				}
			}
		}
		if a1Frames == 0 || b1Frames == 0 {
			t.Fatalf("capture on the trunk saw %d frames of a1 and %d of b1; want both > 0:\n%s", a1Frames, b1Frames, out)
		}
	})

	t.Run("different networks are isolated at L2", func(t *testing.T) {
		capture := startCapture(t, ctx, b1.Command, "-i", "eth0", "-e", "-n", "-l", "ether src fa:16:3e:00:00:11")
		capture2 := startCapture(t, ctx, b2.Command, "-i", "eth0", "-e", "-n", "-l", "ether src fa:16:3e:00:00:11")
		if err := a1.Ping(ctx, "10.0.0.21", 2); err == nil {
			t.Error("a1 (VLAN network) reached b1 (flat network)")
		}
		if err := a1.Ping(ctx, "10.0.0.22", 2); err == nil {
			t.Error("a1 (VLAN network) reached b2 (flat network) across hosts")
		}
		for name, out := range map[string]string{"b1": capture(), "b2": capture2()} {
			if n := countFrames(out); n > 0 {
				t.Errorf("%s received %d frames from a1 of another network:\n%s", name, n, out)
			}
		}
	})

	t.Run("ARP with a spoofed source address is dropped", func(t *testing.T) {
		if _, err := a1.Run(ctx, "ip", "addr", "add", "10.0.0.99/32", "dev", "eth0"); err != nil {
			t.Fatal(err)
		}
		before := flowPackets(t, ctx, h1, "table=24,", "priority=0 ")
		capture := startCapture(t, ctx, a1b.Command, "-i", "eth0", "-n", "-l", "arp and host 10.0.0.99")
		out, _ := a1.Run(ctx, "arping", "-c", "3", "-w", "5", "-I", "eth0", "-s", "10.0.0.99", "10.0.0.12")
		seen := capture()
		if strings.Contains(out, "Unicast reply") {
			t.Errorf("the spoofed ARP was answered:\n%s", out)
		}
		if n := countFrames(seen); n > 0 {
			t.Errorf("a1b received %d spoofed ARP frames:\n%s", n, seen)
		}
		if after := flowPackets(t, ctx, h1, "table=24,", "priority=0 "); after-before < 3 {
			t.Errorf("table 24's drop flow counted %d packets, want ≥ 3 (the spoofed requests)", after-before)
		}
		// The port's own address still works.
		if err := a1.Ping(ctx, "10.0.0.12", 2); err != nil {
			t.Error(err)
		}
	})

	t.Run("IP with a spoofed source MAC is dropped", func(t *testing.T) {
		ofport, err := h1.Vsctl(ctx, "get", "Interface", "tapa1000000-00", "ofport")
		if err != nil {
			t.Fatal(err)
		}
		inPort := "in_port=" + strings.TrimSpace(ofport)
		// Packets of a1's port that entered table 25 minus those a table-25 flow matched:
		// the ones table 25 dropped for want of an allowed source MAC.
		dropped := func() int {
			return flowPackets(t, ctx, h1, "table=0,", "priority=9,"+inPort+" ") - flowPackets(t, ctx, h1, "table=25,", inPort+",")
		}
		missedBefore := dropped()
		capture := startCapture(t, ctx, a1b.Command, "-i", "eth0", "-e", "-n", "-l", "ether src fa:16:3e:00:00:99")
		if _, err := a1.Run(ctx, "ip", "link", "set", "eth0", "address", "fa:16:3e:00:00:99"); err != nil {
			t.Fatal(err)
		}
		if _, err := a1.Run(ctx, "ip", "neigh", "replace", "10.0.0.12", "lladdr", "fa:16:3e:00:00:12", "dev", "eth0", "nud", "permanent"); err != nil {
			t.Fatal(err)
		}
		if err := a1.Ping(ctx, "10.0.0.12", 3); err == nil {
			t.Error("a1 with a spoofed MAC reached a1b")
		}
		seen := capture()
		if n := countFrames(seen); n > 0 {
			t.Errorf("a1b received %d frames with the spoofed MAC:\n%s", n, seen)
		}
		if missed := dropped() - missedBefore; missed < 3 {
			t.Errorf("table 25 missed (dropped) %d packets, want ≥ 3 (the spoofed pings)", missed)
		}
	})
}

// startCapture starts tcpdump (through run: a host's or a VM's Command) and returns a
// function that stops it and returns what it printed. It waits until tcpdump listens, and
// fails the test when it does not (a capture that never started proves nothing).
func startCapture(t *testing.T, ctx context.Context, run func(context.Context, string, ...string) *exec.Cmd, args ...string) func() string {
	t.Helper()
	_, stop := startLiveCapture(t, ctx, run, args...)
	return stop
}

// startLiveCapture is startCapture that also returns a function giving what tcpdump printed
// so far, for a test that waits for a frame to appear.
func startLiveCapture(t *testing.T, ctx context.Context, run func(context.Context, string, ...string) *exec.Cmd, args ...string) (soFar, stop func() string) {
	t.Helper()
	cctx, cancel := context.WithCancel(ctx)
	cmd := run(cctx, "tcpdump", append([]string{"-U"}, args...)...)
	out := &lockedBuffer{}
	listening := make(chan struct{})
	errOut := &lockedBuffer{notify: func(s string) bool { return strings.Contains(s, "listening on") }, ready: listening}
	cmd.Stdout, cmd.Stderr = out, errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start tcpdump: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-listening:
	case <-done:
		cancel()
		t.Fatalf("tcpdump %s exited before it listened: %s", strings.Join(args, " "), errOut.String())
	case <-time.After(10 * time.Second):
		cancel()
		<-done
		t.Fatalf("tcpdump %s did not start listening within 10 s: %s", strings.Join(args, " "), errOut.String())
	}
	return out.String, func() string {
		// Frames a test waited for have crossed the interface when its ping returned; the
		// pause lets the kernel hand the last of them to tcpdump's socket, and gives a frame
		// that must not appear (an isolation check) time to show.
		time.Sleep(300 * time.Millisecond)
		_ = cmd.Process.Signal(interruptSignal)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
		return out.String()
	}
}

// lockedBuffer is an output buffer a command's copying goroutine writes while the test
// reads it. When notify matches the output so far, ready is closed (once).
type lockedBuffer struct {
	mu     sync.Mutex
	b      strings.Builder
	notify func(string) bool
	ready  chan struct{}
	fired  bool
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n, err := l.b.Write(p)
	if l.notify != nil && !l.fired && l.notify(l.b.String()) {
		l.fired = true
		close(l.ready)
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// countFrames counts the frame lines of a tcpdump output.
func countFrames(out string) int {
	n := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) != "" {
			n++
		}
	}
	return n
}

var nPackets = regexp.MustCompile(`n_packets=(\d+)`)

// flowPackets returns the summed packet counters of the br-int flows whose text contains
// every one of subs; it fails the test when there is none.
func flowPackets(t *testing.T, ctx context.Context, h *sandbox.Host, subs ...string) int {
	t.Helper()
	hits, err := flowsWith(ctx, h, "br-int", subs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 {
		t.Fatalf("no flow with %q on br-int", subs)
	}
	total := 0
	for _, l := range hits {
		if m := nPackets.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}
