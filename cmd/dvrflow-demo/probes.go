package main

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// pingResult is what `ping` reported.
type pingResult struct {
	sent, received int
	ttl            int    // TTL of the first reply; 0 without replies
	avg            string // average round trip, e.g. "0.412 ms"
	output         string
}

var (
	pingCounts = regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`)
	pingTTL    = regexp.MustCompile(`ttl=(\d+)`)
	pingRTT    = regexp.MustCompile(`= [\d.]+/([\d.]+)/`)
)

// commander makes a command that runs inside a host, a VM or the external host (their
// Command methods).
type commander func(ctx context.Context, name string, args ...string) *exec.Cmd

// ping sends count pings to ip from where run runs them and parses the result; a ping
// without replies is a result, not an error.
func ping(ctx context.Context, run commander, ip string, count int) pingResult {
	out, _ := run(ctx, "ping", "-n", "-c", strconv.Itoa(count), "-W", "1", "-i", "0.2", ip).CombinedOutput()
	r := pingResult{output: string(out)}
	if m := pingCounts.FindStringSubmatch(r.output); m != nil {
		r.sent, _ = strconv.Atoi(m[1])
		r.received, _ = strconv.Atoi(m[2])
	}
	if m := pingTTL.FindStringSubmatch(r.output); m != nil {
		r.ttl, _ = strconv.Atoi(m[1])
	}
	if m := pingRTT.FindStringSubmatch(r.output); m != nil {
		r.avg = m[1] + " ms"
	}
	return r
}

func (r pingResult) String() string {
	if r.received == 0 {
		return fmt.Sprintf("%d/%d replies", r.received, r.sent)
	}
	return fmt.Sprintf("%d/%d replies, ttl=%d, avg %s", r.received, r.sent, r.ttl, r.avg)
}

// lockedBuffer collects a process's output while it runs.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startCapture runs `tcpdump -e -n` on iface where run runs it (inside a host, or the
// external host), with an optional filter expression, and returns a function that stops it
// and returns the frames it printed. It returns once tcpdump listens.
func startCapture(ctx context.Context, run commander, iface string, filter ...string) (func() []frame, error) {
	cctx, cancel := context.WithCancel(ctx)
	cmd := run(cctx, "tcpdump", append([]string{"-U", "-i", iface, "-e", "-n", "-l"}, filter...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out, errOut lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("capture on %s: %w", iface, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(errOut.String(), "listening on"); {
		if time.Now().After(deadline) {
			cancel()
			<-done
			return nil, fmt.Errorf("capture on %s: tcpdump did not start: %s", iface, errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return func() []frame {
		time.Sleep(300 * time.Millisecond) // let the last frames through
		_ = cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			cancel()
			<-done
		}
		cancel()
		return parseFrames(out.String())
	}, nil
}

// frame is one line of a `tcpdump -e -n` capture.
type frame struct {
	src, dst string
	vlan     int    // 0 when untagged
	payload  string // what follows the Ethernet (and VLAN) header
}

var (
	frameMACs = regexp.MustCompile(`^\S+ ([0-9a-f:]{17}) > ([0-9a-f:]{17}),`)
	frameVLAN = regexp.MustCompile(`vlan (\d+), p \d+, `)
	// framePayload is the text after the last "ethertype X (0x....), length N: " or "ethertype X (0x....), ".
	framePayload = regexp.MustCompile(`ethertype [^,]+, (?:length \d+: )?(.*)$`)
)

// parseFrames parses the frame lines of a `tcpdump -e -n` capture.
func parseFrames(out string) []frame {
	var frames []frame
	for _, l := range strings.Split(out, "\n") {
		m := frameMACs.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := frame{src: m[1], dst: m[2], payload: l}
		rest := l
		if v := frameVLAN.FindStringSubmatchIndex(l); v != nil {
			f.vlan, _ = strconv.Atoi(l[v[2]:v[3]])
			rest = l[v[1]:]
		}
		if p := framePayload.FindStringSubmatch(rest); p != nil {
			f.payload = p[1]
		}
		frames = append(frames, f)
	}
	return frames
}

// isARPFor reports whether f is an ARP frame that names ip (as target or sender address).
func (f frame) isARPFor(ip string) bool {
	if !strings.HasPrefix(f.payload, "Request") && !strings.HasPrefix(f.payload, "Reply") {
		return false
	}
	for _, tok := range strings.FieldsFunc(f.payload, func(r rune) bool { return r == ' ' || r == ',' }) {
		if tok == ip {
			return true
		}
	}
	return false
}

// arping sends count ARP requests for ip from v (its neighbour cache flushed first) and
// returns the MAC that answered, lower case, or "" when nobody did.
func arping(ctx context.Context, v *sandbox.VM, ip string, count int) (string, error) {
	macs, err := arpingAll(ctx, v.Command, sandbox.VMInterface, ip, count)
	if err != nil || len(macs) == 0 {
		return "", err
	}
	return macs[0], nil
}

// arpingAll sends count ARP requests for ip out of iface where run runs them (the neighbour
// cache of iface flushed first) and returns every MAC that answered, lower case, in the order
// of the replies, each once.
func arpingAll(ctx context.Context, run commander, iface, ip string, count int) ([]string, error) {
	if out, err := run(ctx, "ip", "neigh", "flush", "dev", iface).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ip neigh flush dev %s: %w: %s", iface, err, out)
	}
	out, _ := run(ctx, "arping", "-c", strconv.Itoa(count), "-w", "3", "-I", iface, ip).CombinedOutput()
	var macs []string
	for _, m := range arpingReply.FindAllStringSubmatch(string(out), -1) {
		if mac := strings.ToLower(m[1]); !slices.Contains(macs, mac) {
			macs = append(macs, mac)
		}
	}
	return macs, nil
}

var arpingReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)

// commandOutput runs a command inside h and returns its trimmed output.
func commandOutput(ctx context.Context, h *sandbox.Host, name string, args ...string) (string, error) {
	out, err := h.Run(ctx, name, args...)
	return strings.TrimRight(out, "\n"), err
}

// nsDevices returns, one line each, the devices of namespace ns on host whose names start
// with one of prefixes: name, state, IPv4 addresses (ip -br addr) and MAC (ip -br link).
func (d *demo) nsDevices(ctx context.Context, host, ns string, prefixes ...string) (string, error) {
	h := d.hosts[host]
	addrs, err := commandOutput(ctx, h, "ip", "-n", ns, "-br", "-4", "addr", "show")
	if err != nil {
		return "", err
	}
	links, err := commandOutput(ctx, h, "ip", "-n", ns, "-br", "link", "show")
	if err != nil {
		return "", err
	}
	macs := map[string]string{}
	for _, l := range strings.Split(links, "\n") {
		if f := strings.Fields(l); len(f) >= 3 {
			macs[strings.SplitN(f[0], "@", 2)[0]] = f[2]
		}
	}
	var b strings.Builder
	for _, l := range strings.Split(addrs, "\n") {
		f := strings.Fields(l)
		if len(f) < 3 {
			continue
		}
		dev := strings.SplitN(f[0], "@", 2)[0]
		for _, p := range prefixes {
			if strings.HasPrefix(dev, p) {
				fmt.Fprintf(&b, "     %-15s %-4s %-18s %s\n", dev, f[1], strings.Join(f[2:], " "), macs[dev])
				break
			}
		}
	}
	return b.String(), nil
}
