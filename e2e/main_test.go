// Package e2e holds the acceptance tests: the real dvrflow-agent binary against real
// ovsdb-server and ovs-vswitchd processes in sandbox hosts, and real packets between
// namespaces. They need root; they are skipped by `go test -short` (make test SHORT=1).
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// agentBinary and cliBinary are dvrflow-agent and the dvrflow CLI, built once for the
// whole package.
var agentBinary, cliBinary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "dvrflow-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	agentBinary = filepath.Join(dir, "dvrflow-agent")
	cliBinary = filepath.Join(dir, "dvrflow")
	for bin, pkg := range map[string]string{agentBinary: "cmd/dvrflow-agent", cliBinary: "cmd/dvrflow"} {
		build := exec.Command("go", "build", "-o", bin, "github.com/dvrflow/dvrflow/"+pkg)
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", pkg+":", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	closeNeutronCloud()
	os.RemoveAll(dir)
	os.Exit(code)
}

// needsSwitch skips acceptance tests under -short.
func needsSwitch(t *testing.T) {
	t.Helper()
	sandbox.SkipIfShort(t, "acceptance test with real Open vSwitch")
}

// scenarioDir returns where Neutron's reference scenarios are in the repository
// (testdata/neutron/README.md says where they come from), as an absolute path: the agent
// runs inside a host, from "/".
func scenarioDir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "testdata", "neutron", "scenarios"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// agentOnce runs `dvrflow-agent --once` inside the host against its own OVS and returns its
// output; it fails the test when the agent exits non-zero.
func agentOnce(t *testing.T, h *sandbox.Host, topology string, extra ...string) string {
	t.Helper()
	out, err := runAgentOnce(h, topology, extra...)
	if err != nil {
		t.Fatalf("dvrflow-agent --once on %s: %v\n%s", h.Name(), err, out)
	}
	return out
}

func runAgentOnce(h *sandbox.Host, topology string, extra ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append(agentArgs(h, topology), "--once")
	args = append(args, extra...)
	out, err := h.Command(ctx, agentBinary, args...).CombinedOutput()
	return string(out), err
}

// agentArgs are the flags that point an agent at a sandbox host's OVS, with its state (the
// floating IP allocations) in the host's run directory.
func agentArgs(h *sandbox.Host, topology string) []string {
	return []string{
		"--topology", topology,
		"--ovsdb-connection", h.DBEndpoint(),
		"--ovs-rundir", h.RunDir(),
		"--datapath-type", "netdev",
		"--state-path", filepath.Join(h.RunDir(), "agent-state"),
	}
}

// lines joins lines for failure messages.
func lines(ls []string) string {
	if len(ls) == 0 {
		return "  (none)"
	}
	return "  " + strings.Join(ls, "\n  ")
}

// fmtSscan parses one value (an alias keeping fmt out of the test bodies' imports).
var fmtSscan = fmt.Sscan
