package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// build builds the command cmd/NAME (dvrflow-agent, dvrflow) from the repository at root
// into dir and returns its path.
func build(ctx context.Context, root, dir, name string) (string, error) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		return "", fmt.Errorf("build %s: the go command is not on PATH: %w", name, err)
	}
	bin := filepath.Join(dir, name)
	cmd := exec.CommandContext(ctx, gobin, "build", "-o", bin, "./cmd/"+name)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: %w\n%s", name, err, out)
	}
	return bin, nil
}

// agent is a dvrflow-agent daemon running inside a sandbox host, logging to a file.
type agent struct {
	host    string
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
}

// startAgent runs the agent binary inside h against h's own Open vSwitch, with its output in
// logPath. The agent gets its own process group, so that Ctrl-C in the terminal reaches only
// the demo, which then stops the agent with SIGTERM (by pid) like an init system would.
func startAgent(h *sandbox.Host, name, bin, topology, logPath string) (*agent, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start the agent on %s: %w", name, err)
	}
	defer logFile.Close()
	cmd := h.Command(context.Background(), bin,
		"--topology", topology,
		"--ovsdb-connection", h.DBEndpoint(),
		"--ovs-rundir", h.RunDir(),
		"--datapath-type", "netdev",
		"--state-path", filepath.Join(h.RunDir(), "agent-state"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the agent on %s: %w", name, err)
	}
	a := &agent{host: name, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(a.done) }()
	return a, nil
}

// running reports an error if the agent has exited.
func (a *agent) running() error {
	select {
	case <-a.done:
		return fmt.Errorf("the agent on %s exited (%s); its log:\n%s", a.host, a.cmd.ProcessState, a.tail(20))
	default:
		return nil
	}
}

// stop sends SIGTERM and waits up to 15 s, then kills the agent.
func (a *agent) stop() error {
	select {
	case <-a.done:
		return nil
	default:
	}
	_ = a.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-a.done:
		if code := a.cmd.ProcessState.ExitCode(); code != 0 {
			return fmt.Errorf("the agent on %s exited with %d after SIGTERM", a.host, code)
		}
		return nil
	case <-time.After(15 * time.Second):
		_ = a.cmd.Process.Kill()
		<-a.done
		return fmt.Errorf("the agent on %s did not stop within 15 s of SIGTERM; killed", a.host)
	}
}

// tail returns the last n lines of the agent's log, indented.
func (a *agent) tail(n int) string {
	data, err := os.ReadFile(a.logPath)
	if err != nil {
		return "     (" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return indent(strings.Join(lines, "\n"))
}

// lineCount returns the number of lines in the agent's log.
func (a *agent) lineCount() int {
	data, err := os.ReadFile(a.logPath)
	if err != nil {
		return 0
	}
	return strings.Count(string(data), "\n")
}
