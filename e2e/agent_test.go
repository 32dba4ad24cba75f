package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// runningAgent is a dvrflow-agent daemon inside a sandbox host.
type runningAgent struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

func (a *runningAgent) Write(p []byte) (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.Write(p)
}

// Log returns what the agent logged so far.
func (a *runningAgent) Log() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.log.String()
}

// startAgent starts the agent daemon in the host and stops it (SIGTERM, by pid) when the
// test ends, printing its log if the test failed.
func startAgent(t *testing.T, h *sandbox.Host, topology string, extra ...string) *runningAgent {
	t.Helper()
	a := &runningAgent{done: make(chan struct{})}
	a.cmd = h.Command(context.Background(), agentBinary, append(agentArgs(h, topology), extra...)...)
	a.cmd.Stdout, a.cmd.Stderr = a, a
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start dvrflow-agent on %s: %v", h.Name(), err)
	}
	go func() { _ = a.cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		a.stop(t)
		if t.Failed() {
			t.Logf("dvrflow-agent log on %s:\n%s", h.Name(), a.Log())
		}
	})
	return a
}

// stop sends SIGTERM and waits; it fails the test if the agent does not exit cleanly.
func (a *runningAgent) stop(t *testing.T) {
	select {
	case <-a.done:
		return
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		if code := a.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("dvrflow-agent exited with %d after SIGTERM", code)
		}
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		t.Errorf("dvrflow-agent did not stop within 15 s of SIGTERM")
	}
}

// waitFor polls cond every 50 ms until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = cond(); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}

// writeFileAtomic writes data to path through a temporary file and a rename, as editors
// and configuration management do.
func writeFileAtomic(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitRouterGateways waits until the host's DVR router namespace qrouter-<router> holds
// every one of the gateway addresses (the agent has made the router).
func waitRouterGateways(t *testing.T, ctx context.Context, h *sandbox.Host, router string, gateways ...string) {
	t.Helper()
	ns := "qrouter-" + router
	waitFor(t, 30*time.Second, "the router namespace "+ns+" with its gateways on "+h.Name(), func() error {
		for _, gw := range gateways {
			out, err := h.Run(ctx, "ip", "-n", ns, "-o", "addr", "show", "to", gw)
			if err != nil {
				return err
			}
			if !strings.Contains(out, gw) {
				return fmt.Errorf("no %s in %s yet", gw, ns)
			}
		}
		return nil
	})
}

// bridgeExists reports whether the host's OVSDB has the bridge.
func bridgeExists(ctx context.Context, h *sandbox.Host, br string) error {
	_, err := h.Vsctl(ctx, "br-exists", br)
	return err
}

// flowsWith returns the bridge's flows containing every one of the substrings.
func flowsWith(ctx context.Context, h *sandbox.Host, br string, subs ...string) ([]string, error) {
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-names", "dump-flows", br)
	if err != nil {
		return nil, err
	}
	var hits []string
next:
	for _, l := range strings.Split(out, "\n") {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		hits = append(hits, strings.TrimSpace(l))
	}
	return hits, nil
}

// interruptSignal stops tcpdump so that it flushes its output.
var interruptSignal = syscall.SIGINT
