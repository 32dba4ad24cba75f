package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Grace periods when stopping a process: SIGTERM, wait termGrace, SIGKILL,
// wait killGrace.
const (
	termGrace = 5 * time.Second
	killGrace = 5 * time.Second
	pollEvery = 20 * time.Millisecond
)

// proc is a process the sandbox started (or found recorded in a state file).
// It is identified by pid and start time, so a recycled pid is never
// mistaken for it.
type proc struct {
	pid   int
	start uint64        // start time in clock ticks after boot (/proc/PID/stat field 22)
	done  chan struct{} // closed once reaped; nil when the process is not our child
}

// record is the JSON form of a proc in the state file.
type record struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"`
}

func (p *proc) record() record {
	if p == nil {
		return record{}
	}
	return record{Pid: p.pid, Start: p.start}
}

func procFromRecord(r record) *proc {
	if r.Pid <= 0 {
		return nil
	}
	return &proc{pid: r.Pid, start: r.Start}
}

// startProc starts cmd and reaps it in the background.
func startProc(cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{pid: cmd.Process.Pid, done: make(chan struct{})}
	// nsenter and unshare exec their target, so the pid and start time stay
	// the same from here on.
	if _, start, err := procStat(p.pid); err == nil {
		p.start = start
	}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// procStat returns the state letter and start time of pid.
func procStat(pid int) (state byte, start uint64, err error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	start, err = strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("parse /proc/%d/stat: %w", pid, err)
	}
	return f[0][0], start, nil
}

// alive reports whether p is still running (a zombie counts as gone: the
// machine's init may not reap orphans promptly).
func (p *proc) alive() bool {
	if p == nil || p.pid <= 0 {
		return false
	}
	if p.done != nil {
		select {
		case <-p.done:
			return false
		default:
		}
	}
	state, start, err := procStat(p.pid)
	if err != nil || state == 'Z' || state == 'X' {
		return false
	}
	return p.start == 0 || start == p.start
}

// cmdline returns the NUL-separated argv of pid.
func cmdline(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return nil
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
}

// hasEnv reports whether the environment of pid contains kv ("KEY=VALUE").
func hasEnv(pid int, kv string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return false
	}
	for _, e := range strings.Split(string(b), "\x00") {
		if e == kv {
			return true
		}
	}
	return false
}

// stopProcs stops all given processes: SIGTERM, wait, SIGKILL, wait. It
// returns an error naming the processes that survived.
func stopProcs(ctx context.Context, ps []*proc) error {
	var live []*proc
	for _, p := range ps {
		if p.alive() {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return nil
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		for _, p := range live {
			if p.alive() {
				_ = syscall.Kill(p.pid, sig)
			}
		}
		grace := termGrace
		if sig == syscall.SIGKILL {
			grace = killGrace
		}
		if waitGone(ctx, live, grace) {
			return nil
		}
	}
	var still []string
	for _, p := range live {
		if p.alive() {
			still = append(still, strconv.Itoa(p.pid))
		}
	}
	if len(still) == 0 {
		return nil
	}
	return fmt.Errorf("processes %s did not exit after SIGKILL", strings.Join(still, ", "))
}

// stopGroup stops a process that leads its own process group, and the rest of the group
// with it (the holder's shell may still have a child running when it is stopped early):
// SIGTERM, then SIGKILL, each followed by a wait until no process of the group is left.
func stopGroup(ctx context.Context, leader *proc) error {
	if err := stopProcs(ctx, []*proc{leader}); err != nil {
		return err
	}
	groupGone := func() bool { return errors.Is(syscall.Kill(-leader.pid, 0), syscall.ESRCH) }
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		if groupGone() {
			return nil
		}
		_ = syscall.Kill(-leader.pid, sig)
		deadline := time.Now().Add(killGrace)
		for !groupGone() && time.Now().Before(deadline) && ctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if !groupGone() {
		return fmt.Errorf("process group %d did not exit after SIGKILL", leader.pid)
	}
	return nil
}

// waitGone waits up to grace for all processes to be gone.
func waitGone(ctx context.Context, ps []*proc, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for {
		gone := true
		for _, p := range ps {
			if p.alive() {
				gone = false
				break
			}
		}
		if gone {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(pollEvery):
		}
	}
}

// nsID identifies a namespace by the device and inode of its nsfs file.
type nsID struct{ dev, ino uint64 }

func nsOf(path string) (nsID, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return nsID{}, false
	}
	return nsID{dev: uint64(st.Dev), ino: st.Ino}, true
}

// hostNamespaces returns the mount and network namespace of the holder and,
// if withVMs, the network namespaces created with `ip netns add` inside the
// host (on its private /run/netns; any that also appear on our own
// /run/netns are left out, as a safety net).
func hostNamespaces(holder int, withVMs bool) (mnt nsID, nets []nsID, err error) {
	base := "/proc/" + strconv.Itoa(holder)
	mnt, ok := nsOf(base + "/ns/mnt")
	if !ok {
		return nsID{}, nil, fmt.Errorf("holder %d: no mount namespace", holder)
	}
	net, ok := nsOf(base + "/ns/net")
	if !ok {
		return nsID{}, nil, fmt.Errorf("holder %d: no network namespace", holder)
	}
	// thread-self, not self: threads that run inNetns are locked to it, so
	// whatever thread reads this is in our own namespaces.
	if own, ok := nsOf("/proc/thread-self/ns/mnt"); ok && own == mnt {
		return nsID{}, nil, fmt.Errorf("holder %d shares our mount namespace", holder)
	}
	if own, ok := nsOf("/proc/thread-self/ns/net"); ok && own == net {
		return nsID{}, nil, fmt.Errorf("holder %d shares our network namespace", holder)
	}
	nets = append(nets, net)
	if !withVMs {
		return mnt, nets, nil
	}
	ours := map[nsID]bool{}
	if entries, err := os.ReadDir("/run/netns"); err == nil {
		for _, e := range entries {
			if id, ok := nsOf(filepath.Join("/run/netns", e.Name())); ok {
				ours[id] = true
			}
		}
	}
	entries, _ := os.ReadDir(base + "/root/run/netns")
	for _, e := range entries {
		if id, ok := nsOf(filepath.Join(base, "root/run/netns", e.Name())); ok && !ours[id] {
			nets = append(nets, id)
		}
	}
	return mnt, nets, nil
}

// nsMembers returns every process but ours and those in skip that lives in
// mount namespace mnt (if non-nil) or in one of the network namespaces nets.
func nsMembers(mnt *nsID, nets []nsID, skip ...int) []*proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var out []*proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self || contains(skip, pid) {
			continue
		}
		base := "/proc/" + e.Name()
		match := false
		if id, ok := nsOf(base + "/ns/mnt"); ok && mnt != nil && id == *mnt {
			match = true
		} else if id, ok := nsOf(base + "/ns/net"); ok && containsNS(nets, id) {
			match = true
		}
		if !match {
			continue
		}
		state, start, err := procStat(pid)
		if err != nil || state == 'Z' {
			continue
		}
		out = append(out, &proc{pid: pid, start: start})
	}
	return out
}

func contains(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func containsNS(s []nsID, v nsID) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// tail returns the last n lines of the named files, for error messages.
func tail(n int, files ...string) string {
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil || len(data) == 0 {
			continue
		}
		lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
		if len(lines) > n {
			lines = lines[len(lines)-n:]
		}
		fmt.Fprintf(&b, "\n--- last lines of %s ---\n%s", f, strings.Join(lines, "\n"))
	}
	return b.String()
}
