package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// memoryResult is measured on the dvrflow-agent binary, a process of its own.
type memoryResult struct {
	// Took runs from exec until the daemon logged its first "converged" (flows committed,
	// ports tagged): the cold sync including process start.
	Took        time.Duration
	FlowMods    int
	AgentRSS    int64 // bytes, VmRSS right after that line
	AgentHWM    int64 // bytes, VmHWM (peak RSS) at the same moment
	VswitchdRSS int64 // bytes, VmRSS of the host's ovs-vswitchd
}

var flowModsRE = regexp.MustCompile(`"flow_mods": (\d+)`)

// memory starts the dvrflow-agent binary as a daemon on the cold node, waits for its
// "converged" log line, reads its memory and ovs-vswitchd's from /proc, and stops it.
func (b *bench) memory(ctx context.Context, n *node) (memoryResult, error) {
	var r memoryResult
	cmd := exec.Command(b.agent, agentArgs(n, n.topoFile)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return r, err
	}
	cmd.Stdout = io.Discard
	logFile, err := os.OpenFile(b.agentLogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("start dvrflow-agent: %w", err)
	}
	exited := make(chan error, 1)
	converged := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logFile, line)
			if strings.Contains(line, "\tconverged\t") {
				select {
				case converged <- line:
				default:
				}
			}
		}
		exited <- cmd.Wait()
	}()
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			b.log.Error("dvrflow-agent did not stop within 15 s of SIGTERM, killing it", zap.Int("pid", cmd.Process.Pid))
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	select {
	case line := <-converged:
		r.Took = time.Since(start)
		if m := flowModsRE.FindStringSubmatch(line); m != nil {
			r.FlowMods, _ = strconv.Atoi(m[1])
		}
	case err := <-exited:
		exited <- err
		return r, fmt.Errorf("dvrflow-agent exited before converging: %v (log: %s)", err, b.agentLogPath())
	case <-time.After(5 * time.Minute):
		return r, fmt.Errorf("dvrflow-agent did not converge within 5 minutes (log: %s)", b.agentLogPath())
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.AgentRSS, err = procStatus(cmd.Process.Pid, "VmRSS"); err != nil {
		return r, err
	}
	if r.AgentHWM, err = procStatus(cmd.Process.Pid, "VmHWM"); err != nil {
		return r, err
	}
	if r.VswitchdRSS, err = procStatus(n.host.VswitchdPid(), "VmRSS"); err != nil {
		return r, err
	}
	return r, nil
}

// procStatus reads a "kB" field of /proc/PID/status, in bytes.
func procStatus(pid int, field string) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("/proc/%d/status %s: %w", pid, field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, field)
}
