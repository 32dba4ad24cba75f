package rabbitmq

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// group is a process the node started in a process group of its own (setsid), identified by
// the leader's pid and start time so that a recycled pid is never mistaken for it. Stopping
// it signals the whole group: rabbitmq-server's script, the Erlang VM and its port programs.
type group struct {
	name  string
	pid   int
	start uint64        // leader's start time in clock ticks after boot (/proc/PID/stat field 22)
	done  chan struct{} // closed once the leader is reaped
}

// startGroup starts cmd as the leader of a new session and process group, and reaps it in
// the background.
func startGroup(name string, cmd *exec.Cmd) (*group, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	g := &group{name: name, pid: cmd.Process.Pid, done: make(chan struct{})}
	if _, _, start, err := procStat(g.pid); err == nil {
		g.start = start
	}
	go func() {
		_ = cmd.Wait()
		close(g.done)
	}()
	return g, nil
}

// leaderExited reports whether the group's leader has been reaped.
func (g *group) leaderExited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// alive reports whether any live (non-zombie) process is left in the group. While one is,
// the kernel does not reuse the group id, so the id still names our processes.
func (g *group) alive() bool {
	if !g.leaderExited() {
		if state, _, start, err := procStat(g.pid); err == nil && state != 'Z' && (g.start == 0 || start == g.start) {
			return true
		}
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if state, pgrp, _, err := procStat(pid); err == nil && pgrp == g.pid && state != 'Z' && state != 'X' {
			return true
		}
	}
	return false
}

// stop sends SIGTERM to the leader (RabbitMQ shuts down cleanly on it), waits up to grace
// for the whole group to go, then SIGTERM and SIGKILL to the group.
func (g *group) stop(ctx context.Context, grace time.Duration) error {
	if !g.alive() {
		return nil
	}
	if !g.leaderExited() {
		_ = syscall.Kill(g.pid, syscall.SIGTERM)
	}
	if g.waitGone(ctx, grace) {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		_ = syscall.Kill(-g.pid, sig)
		if g.waitGone(ctx, 3*time.Second) {
			return nil
		}
	}
	return fmt.Errorf("%s (process group %d) still running after SIGKILL", g.name, g.pid)
}

func (g *group) waitGone(ctx context.Context, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for g.alive() {
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(25 * time.Millisecond):
		}
	}
	return true
}

// procStat returns the state letter, process group and start time of pid.
func procStat(pid int) (state byte, pgrp int, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	pgrp, err = strconv.Atoi(f[2])
	if err != nil {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return f[0][0], pgrp, start, nil
}
