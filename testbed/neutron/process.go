package neutron

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// process is a daemon the test bed started in a process group of its own (its pid is the
// group id). It is identified by pid and start time, so a recycled pid is never signalled,
// and recorded as "PID STARTTIME" in RUNDIR/NAME.pid for post-mortems.
type process struct {
	name  string
	pid   int
	start uint64        // start time in clock ticks after boot (/proc/PID/stat field 22)
	done  chan struct{} // closed once reaped
	log   string        // where its stdout and stderr go
}

// startProcess starts cmd in a new process group with stdin from /dev/null and stdout and
// stderr appended to logPath, records it in runDir and reaps it in the background.
func startProcess(name string, cmd *exec.Cmd, runDir, logPath string) (*process, error) {
	out, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, pid: cmd.Process.Pid, done: make(chan struct{}), log: logPath}
	if _, start, _, err := procStat(p.pid); err == nil {
		p.start = start
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	rec := fmt.Sprintf("%d %d\n", p.pid, p.start)
	if err := os.WriteFile(filepath.Join(runDir, name+".pid"), []byte(rec), 0o644); err != nil {
		return p, fmt.Errorf("record %s: %w", name, err)
	}
	return p, nil
}

// procStat returns the state letter, start time and process group of pid.
func procStat(pid int) (state byte, start uint64, pgid int, err error) {
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
	if start, err = strconv.ParseUint(f[19], 10, 64); err != nil {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	if pgid, err = strconv.Atoi(f[2]); err != nil {
		return 0, 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return f[0][0], start, pgid, nil
}

// alive reports whether the leader itself still runs.
func (p *process) alive() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
	}
	state, start, _, err := procStat(p.pid)
	return err == nil && state != 'Z' && state != 'X' && (p.start == 0 || start == p.start)
}

// groupMembers returns the live (not zombie) processes of the process group pgid.
func groupMembers(pgid int) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, _, g, err := procStat(pid)
		if err == nil && g == pgid && state != 'Z' && state != 'X' {
			pids = append(pids, pid)
		}
	}
	return pids
}

// running reports whether the leader or any member of its group still runs. While a member
// remains, the kernel does not reuse the group id, so a group without its leader is still
// ours.
func (p *process) running() bool {
	return p != nil && (p.alive() || len(groupMembers(p.pid)) > 0)
}

// stop sends SIGTERM to the leader and waits up to grace for the whole group to exit; then
// it sends SIGTERM and, 2 s later, SIGKILL to the group. It only ever signals the group it
// started (checked by the leader's start time, or by the group still having members).
func (p *process) stop(ctx context.Context, grace time.Duration) error {
	if p == nil || !p.running() {
		return nil
	}
	if p.alive() {
		_ = syscall.Kill(p.pid, syscall.SIGTERM)
	} else {
		_ = syscall.Kill(-p.pid, syscall.SIGTERM)
	}
	for _, step := range []struct {
		wait time.Duration
		sig  syscall.Signal
	}{{grace, syscall.SIGTERM}, {2 * time.Second, syscall.SIGKILL}, {5 * time.Second, 0}} {
		if p.waitGone(ctx, step.wait) {
			return nil
		}
		if step.sig != 0 {
			_ = syscall.Kill(-p.pid, step.sig)
		}
	}
	if p.running() {
		return fmt.Errorf("stop %s: process group %d still runs after SIGKILL", p.name, p.pid)
	}
	return nil
}

func (p *process) waitGone(ctx context.Context, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !p.running() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// errExited says a process ended while the test bed waited for it to be ready.
var errExited = errors.New("exited")

// waitReady polls ready every 100–250 ms until it returns nil, p exits, ctx ends or timeout
// passes; the error then carries ready's last error and the end of p's log.
func waitReady(ctx context.Context, p *process, timeout time.Duration, what string, ready func(context.Context) error) error {
	deadline := time.Now().Add(timeout)
	delay := 100 * time.Millisecond
	for {
		err := ready(ctx)
		if err == nil {
			return nil
		}
		if p != nil && !p.alive() {
			return fmt.Errorf("%s: %s %w (last check: %v)%s", what, p.name, errExited, err, tailFile(p.log, 20))
		}
		if time.Now().After(deadline) {
			logTail := ""
			if p != nil {
				logTail = tailFile(p.log, 20)
			}
			return fmt.Errorf("%s: not ready after %s: %w%s", what, timeout, err, logTail)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last check: %v)", what, ctx.Err(), err)
		case <-time.After(delay):
		}
		delay = min(delay*3/2, 250*time.Millisecond)
	}
}

// tailFile returns the last n lines of path for an error message, or "".
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil || len(data) == 0 {
		return ""
	}
	return fmt.Sprintf("\n--- last lines of %s ---\n%s", path, lastLines(string(data), n))
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
