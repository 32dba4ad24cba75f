// Package sandbox simulates the hosts of a cloud on one machine, for tests,
// the demo and benchmarks.
//
// A Host is a holder process in its own mount and network namespace (with a
// private tmpfs on /run/netns, so `ip netns` names never collide between
// hosts) running its own ovsdb-server and ovs-vswitchd with a private run
// directory. Bridges must use datapath_type=netdev: there is no openvswitch
// kernel module. A VM is a network namespace inside a host joined to an OVS
// bridge by a veth pair; Link joins two hosts with a veth pair.
//
// Every process is started, and stopped, by pid; hosts are recorded in a
// state dir (DefaultStateDir, or $DVRFLOW_SANDBOX_DIR) so that a later run
// can stop what a crashed one left behind.
package sandbox

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// readyTimeout bounds how long Start waits for each daemon to answer.
const readyTimeout = 20 * time.Second

// maxRunDirLen keeps RUNDIR/<15-char bridge>.mgmt within the 107 bytes of a
// unix socket path.
const maxRunDirLen = 107 - len("/123456789012345.mgmt")

// hostEnvKey marks every process started inside a host (its environment
// holds hostEnvKey=<name>), so recorded pids can be verified before a kill.
const hostEnvKey = "DVRFLOW_SANDBOX_HOST"

// holderPrefix starts argv[0] of a holder process.
const holderPrefix = "dvrflow-sandbox-holder:"

var validName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$`)

// Options configures Start.
type Options struct {
	// Log receives structured progress; nil means no logging.
	Log *zap.Logger
	// KeepRunDir keeps the run directory (db, logs) when the host stops or
	// fails to start, for post-mortems.
	KeepRunDir bool
}

func (o Options) logger() *zap.Logger {
	if o.Log == nil {
		return zap.NewNop()
	}
	return o.Log
}

// Host is one simulated hypervisor: namespaces plus its own Open vSwitch.
// Its methods are safe for concurrent use.
type Host struct {
	name   string
	rundir string
	opts   Options
	log    *zap.Logger
	env    []string
	holder *proc // set before the Host is handed out, never changed

	mu       sync.Mutex
	ovsdb    *proc
	vswitchd *proc
	vms      map[string]*VM

	stopped atomic.Bool // set once Stop has succeeded; read without mu
}

func newHost(name, rundir string, opts Options) *Host {
	env := append(os.Environ(),
		"OVS_RUNDIR="+rundir,
		"OVS_DBDIR="+rundir,
		"OVS_LOGDIR="+rundir,
		"OVS_SYSCONFDIR="+rundir,
		"OVS_PKGDATADIR=/usr/share/openvswitch",
		hostEnvKey+"="+name,
	)
	return &Host{
		name:   name,
		rundir: rundir,
		opts:   opts,
		log:    opts.logger().With(zap.String("host", name)),
		env:    env,
		vms:    map[string]*VM{},
	}
}

func hostFromState(st *state, opts Options) *Host {
	h := newHost(st.Name, st.RunDir, opts)
	h.holder = procFromRecord(st.Holder)
	h.ovsdb = procFromRecord(st.OVSDB)
	h.vswitchd = procFromRecord(st.Vswitchd)
	return h
}

// Start brings up a host called name (letters, digits, '.', '_', '-'; at
// most 40). A host of the same name left behind by an earlier run is
// stopped first. If Start fails it undoes what it did.
func Start(ctx context.Context, name string, opts Options) (_ *Host, err error) {
	if !validName.MatchString(name) {
		return nil, fmt.Errorf("start host %q: invalid name (want %s)", name, validName)
	}
	log := opts.logger().With(zap.String("host", name))
	if _, err := readState(name); err == nil || !errors.Is(err, os.ErrNotExist) {
		log.Warn("stopping leftover sandbox host of the same name", zap.String("state", statePath(name)))
		if err := StopRecorded(ctx, name, Options{Log: opts.Log}); err != nil {
			return nil, fmt.Errorf("start host %s: stop leftover: %w", name, err)
		}
	}
	rundir, err := os.MkdirTemp("", "dvrflow-"+name+"-")
	if err != nil {
		return nil, fmt.Errorf("start host %s: %w", name, err)
	}
	if len(rundir) > maxRunDirLen {
		os.RemoveAll(rundir)
		return nil, fmt.Errorf("start host %s: run dir %s is too long for unix sockets (max %d bytes); use a shorter name or TMPDIR",
			name, rundir, maxRunDirLen)
	}
	h := newHost(name, rundir, opts)
	defer func() {
		if err != nil {
			if serr := h.Stop(context.WithoutCancel(ctx)); serr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", serr))
			}
		}
	}()

	if err := h.startHolder(ctx); err != nil {
		return nil, err
	}
	if err := h.saveState(); err != nil {
		return nil, err
	}
	db := filepath.Join(rundir, "conf.db")
	if _, err := h.Run(ctx, "ovsdb-tool", "create", db, "/usr/share/openvswitch/vswitch.ovsschema"); err != nil {
		return nil, fmt.Errorf("create ovsdb database on host %s: %w", name, err)
	}
	h.mu.Lock()
	err = h.startOVSDB(ctx)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if _, err := h.Run(ctx, "ovs-vsctl", "--db="+h.DBEndpoint(), "--no-wait", "init"); err != nil {
		return nil, fmt.Errorf("initialise ovsdb on host %s: %w", name, err)
	}
	h.mu.Lock()
	err = h.startVswitchd(ctx)
	h.mu.Unlock()
	if err != nil {
		return nil, err
	}
	h.log.Info("sandbox host started", zap.String("rundir", rundir), zap.Int("pid", h.Pid()),
		zap.Int("ovsdb_pid", h.ovsdb.pid), zap.Int("vswitchd_pid", h.vswitchd.pid))
	return h, nil
}

// startHolder starts the process that owns the host's namespaces: it mounts
// a tmpfs on /run/netns, brings lo up and then sleeps with argv[0] set to
// the holder marker, which is what readiness and ownership checks look for.
func (h *Host) startHolder(ctx context.Context) error {
	const script = `set -e
mkdir -p /run/netns
mount -t tmpfs -o mode=0755,size=4m dvrflow-netns /run/netns
ip link set lo up
exec -a "$0" sleep infinity`
	out, err := os.OpenFile(filepath.Join(h.rundir, "holder.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start holder of host %s: %w", h.name, err)
	}
	defer out.Close()
	cmd := exec.Command("unshare", "--mount", "--net", "--propagation", "private", "--",
		"bash", "-c", script, holderPrefix+h.name)
	cmd.Env = h.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = ownProcessGroup()
	p, err := startProc(cmd)
	if err != nil {
		return fmt.Errorf("start holder of host %s: %w", h.name, err)
	}
	h.holder = p
	if err := waitFor(ctx, readyTimeout, p, h.holderReady); err != nil {
		return fmt.Errorf("start holder of host %s: %w%s", h.name, err, tail(20, out.Name()))
	}
	return nil
}

// daemonCmd returns a command that runs a daemon inside the host, with its
// output going to RUNDIR/<name>.out.
func (h *Host) daemonCmd(name string, args ...string) (*exec.Cmd, error) {
	out, err := os.OpenFile(filepath.Join(h.rundir, name+".out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("nsenter", append([]string{"-t", strconv.Itoa(h.holder.pid), "-m", "-n", "--", name}, args...)...)
	cmd.Env = h.env
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = ownProcessGroup()
	return cmd, nil
}

// ownProcessGroup keeps a host's long-lived processes out of the caller's process group, so
// that a Ctrl-C in the terminal reaches the demo or test (which then stops the host in
// order) and not the switch underneath it.
func ownProcessGroup() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

func (h *Host) startDaemon(ctx context.Context, name string, ready func() bool, args ...string) (*proc, error) {
	cmd, err := h.daemonCmd(name, args...)
	if err != nil {
		return nil, fmt.Errorf("start %s on host %s: %w", name, h.name, err)
	}
	p, err := startProc(cmd)
	cmd.Stdout.(*os.File).Close()
	if err != nil {
		return nil, fmt.Errorf("start %s on host %s: %w", name, h.name, err)
	}
	if err := waitFor(ctx, readyTimeout, p, ready); err != nil {
		_ = stopProcs(context.WithoutCancel(ctx), []*proc{p})
		logName := strings.TrimPrefix(name, "ovs-")
		return nil, fmt.Errorf("start %s on host %s: %w%s", name, h.name, err,
			tail(20, filepath.Join(h.rundir, logName+".log"), filepath.Join(h.rundir, name+".out")))
	}
	return p, nil
}

// startOVSDB starts ovsdb-server on RUNDIR/conf.db. h.mu must be held.
func (h *Host) startOVSDB(ctx context.Context) error {
	sock := filepath.Join(h.rundir, "db.sock")
	p, err := h.startDaemon(ctx, "ovsdb-server", func() bool {
		c, err := net.DialTimeout("unix", sock, time.Second)
		if err != nil {
			return false
		}
		c.Close()
		return true
	},
		filepath.Join(h.rundir, "conf.db"),
		"--remote=punix:"+sock,
		"--unixctl="+h.ctl("ovsdb-server"),
		"--pidfile="+filepath.Join(h.rundir, "ovsdb-server.pid"),
		"--log-file="+filepath.Join(h.rundir, "ovsdb-server.log"),
	)
	if err != nil {
		return err
	}
	h.ovsdb = p
	return h.saveStateLocked()
}

// startVswitchd starts ovs-vswitchd. h.mu must be held.
func (h *Host) startVswitchd(ctx context.Context) error {
	ctl := h.ctl("vswitchd")
	p, err := h.startDaemon(ctx, "ovs-vswitchd", func() bool {
		return exec.CommandContext(ctx, "ovs-appctl", "-t", ctl, "--timeout=2", "version").Run() == nil
	},
		h.DBEndpoint(),
		"--unixctl="+ctl,
		"--pidfile="+filepath.Join(h.rundir, "vswitchd.pid"),
		"--log-file="+filepath.Join(h.rundir, "vswitchd.log"),
	)
	if err != nil {
		return err
	}
	h.vswitchd = p
	if err := h.saveStateLocked(); err != nil {
		return err
	}
	if err := h.syncVswitchd(ctx); err != nil {
		return fmt.Errorf("start ovs-vswitchd on host %s: %w%s", h.name, err, tail(20, filepath.Join(h.rundir, "vswitchd.log")))
	}
	return nil
}

// syncVswitchd waits until ovs-vswitchd has applied the current database
// contents (bridges, ports, mgmt sockets), the way ovs-vsctl waits after a
// change: bump next_cfg, wait for cur_cfg to reach it. Answering unixctl
// alone does not mean a freshly started vswitchd has read the database.
func (h *Host) syncVswitchd(ctx context.Context) error {
	db := "--db=" + h.DBEndpoint()
	timeout := "--timeout=" + strconv.Itoa(int(readyTimeout/time.Second))
	out, err := h.Run(ctx, "ovs-vsctl", db, timeout, "get", "Open_vSwitch", ".", "next_cfg")
	if err != nil {
		return err
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return fmt.Errorf("parse next_cfg %q: %w", out, err)
	}
	next := strconv.Itoa(n + 1)
	if _, err := h.Run(ctx, "ovs-vsctl", db, timeout, "--no-wait", "set", "Open_vSwitch", ".", "next_cfg="+next); err != nil {
		return err
	}
	if _, err := h.Run(ctx, "ovs-vsctl", db, timeout, "--no-wait", "wait-until", "Open_vSwitch", ".", "cur_cfg>="+next); err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to apply the database: %w", err)
	}
	return nil
}

// waitFor polls ready until it holds, p exits, ctx ends or timeout passes.
func waitFor(ctx context.Context, timeout time.Duration, p *proc, ready func() bool) error {
	deadline := time.Now().Add(timeout)
	for delay := 10 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		if ready() {
			return nil
		}
		if !p.alive() {
			return fmt.Errorf("process %d exited", p.pid)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
	}
}

func (h *Host) saveState() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.saveStateLocked()
}

func (h *Host) saveStateLocked() error {
	return writeState(&state{
		Name:     h.name,
		RunDir:   h.rundir,
		Holder:   h.holder.record(),
		OVSDB:    h.ovsdb.record(),
		Vswitchd: h.vswitchd.record(),
	})
}

// holderReady reports whether the holder is alive and has finished its
// setup (it then runs with the marker as argv[0]).
func (h *Host) holderReady() bool {
	if !h.holder.alive() {
		return false
	}
	argv := cmdline(h.holder.pid)
	return len(argv) > 0 && argv[0] == holderPrefix+h.name
}

// holderOwned reports whether the holder pid is alive and still ours: our
// own child, or a ready holder of this name.
func (h *Host) holderOwned() bool {
	return h.holder.alive() && (h.holder.done != nil || h.holderReady())
}

// ownedDaemon reports whether p is alive and was started inside this host.
func (h *Host) ownedDaemon(p *proc) bool {
	return p.alive() && (p.done != nil || hasEnv(p.pid, hostEnvKey+"="+h.name))
}

// Name returns the host name.
func (h *Host) Name() string { return h.name }

// KeepRunDir makes Stop keep the run directory (db, logs), e.g. after a failed test.
func (h *Host) KeepRunDir() {
	h.mu.Lock()
	h.opts.KeepRunDir = true
	h.mu.Unlock()
}

// RunDir returns the host's OVS run directory (db, sockets, logs).
func (h *Host) RunDir() string { return h.rundir }

// Pid returns the holder pid, e.g. for `ip link set DEV netns PID`.
func (h *Host) Pid() int { return h.holder.pid }

// DBEndpoint returns the OVSDB endpoint, "unix:RUNDIR/db.sock".
func (h *Host) DBEndpoint() string { return "unix:" + filepath.Join(h.rundir, "db.sock") }

// MgmtSocket returns the path of the OpenFlow management socket of bridge.
func (h *Host) MgmtSocket(bridge string) string { return filepath.Join(h.rundir, bridge+".mgmt") }

// netnsPath is the host's network namespace file.
func (h *Host) netnsPath() string { return "/proc/" + strconv.Itoa(h.holder.pid) + "/ns/net" }

func (h *Host) ctl(target string) string { return filepath.Join(h.rundir, target+".ctl") }

// VswitchdCtl returns the path of ovs-vswitchd's unixctl socket (the sandbox names it
// rather than letting OVS derive it from the pid).
func (h *Host) VswitchdCtl() string { return h.ctl("vswitchd") }

// VswitchdPid returns the pid of the host's ovs-vswitchd.
func (h *Host) VswitchdPid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.vswitchd == nil {
		return 0
	}
	return h.vswitchd.pid
}

// OVSDBPid returns the pid of the host's ovsdb-server.
func (h *Host) OVSDBPid() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ovsdb == nil {
		return 0
	}
	return h.ovsdb.pid
}

// Command returns a command that runs inside the host (nsenter into the
// holder's mount and network namespaces) with OVS_RUNDIR and friends set.
// nsenter starts it in "/", so cmd.Dir has no effect. After Stop, the
// command fails to start.
func (h *Host) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(h.holder.pid), "-m", "-n", "--", name}, args...)...)
	cmd.Env = h.env
	if h.stopped.Load() {
		// The holder pid may belong to someone else by now.
		cmd.Err = fmt.Errorf("host %s is stopped", h.name)
	}
	return cmd
}

// Run runs a command inside the host and returns its combined output. The
// error names the host and command line and carries the output.
func (h *Host) Run(ctx context.Context, name string, args ...string) (string, error) {
	out, err := h.Command(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("host %s: %s: %w: %s", h.name, strings.Join(append([]string{name}, args...), " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// Vsctl runs ovs-vsctl against the host's OVSDB (with --timeout=10).
func (h *Host) Vsctl(ctx context.Context, args ...string) (string, error) {
	return h.Run(ctx, "ovs-vsctl", append([]string{"--db=" + h.DBEndpoint(), "--timeout=10"}, args...)...)
}

// Ofctl runs ovs-ofctl inside the host; a bare bridge name such as "br-int"
// finds RUNDIR/br-int.mgmt through OVS_RUNDIR.
func (h *Host) Ofctl(ctx context.Context, args ...string) (string, error) {
	return h.Run(ctx, "ovs-ofctl", args...)
}

// Appctl runs ovs-appctl against target "vswitchd" or "ovsdb-server"
// (RUNDIR/<target>.ctl).
func (h *Host) Appctl(ctx context.Context, target string, args ...string) (string, error) {
	return h.Run(ctx, "ovs-appctl", append([]string{"-t", h.ctl(target), "--timeout=10"}, args...)...)
}

// RestartVswitchd stops ovs-vswitchd by pid and starts it again, and
// returns once the new one has applied the database: bridges, ports and
// mgmt sockets are back (from OVSDB), flows are not.
func (h *Host) RestartVswitchd(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped.Load() {
		return fmt.Errorf("restart ovs-vswitchd on host %s: host is stopped", h.name)
	}
	if err := stopProcs(ctx, []*proc{h.vswitchd}); err != nil {
		return fmt.Errorf("restart ovs-vswitchd on host %s: %w", h.name, err)
	}
	old := h.vswitchd.pid
	h.vswitchd = nil
	if err := h.startVswitchd(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	h.log.Info("ovs-vswitchd restarted", zap.Int("old_pid", old), zap.Int("pid", h.vswitchd.pid))
	return nil
}

// RestartOVSDB stops ovsdb-server by pid and starts it again on the same
// database file, and returns once ovs-vswitchd has reconnected to it.
func (h *Host) RestartOVSDB(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped.Load() {
		return fmt.Errorf("restart ovsdb-server on host %s: host is stopped", h.name)
	}
	if err := stopProcs(ctx, []*proc{h.ovsdb}); err != nil {
		return fmt.Errorf("restart ovsdb-server on host %s: %w", h.name, err)
	}
	old := h.ovsdb.pid
	h.ovsdb = nil
	if err := h.startOVSDB(ctx); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	if h.vswitchd != nil {
		if err := h.syncVswitchd(ctx); err != nil {
			return fmt.Errorf("restart ovsdb-server on host %s: ovs-vswitchd did not reconnect: %w", h.name, err)
		}
	}
	h.log.Info("ovsdb-server restarted", zap.Int("old_pid", old), zap.Int("pid", h.ovsdb.pid))
	return nil
}

// Stop stops the OVS daemons, then every other process inside the host's
// namespaces (VMs included), then the holder, which takes the namespaces
// with it; then it removes the run directory (unless KeepRunDir) and the
// state file. Every pid is verified to still be ours before it is
// signalled. Stop is idempotent.
func (h *Host) Stop(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped.Load() {
		return nil
	}
	var errs []error
	holderOK := h.holderOwned()
	var mnt nsID
	var nets []nsID
	haveNS := false
	if holderOK {
		// Before the holder is ready, /run/netns is not yet private: only
		// its own namespaces count then (and right after fork it has none
		// of its own yet, which hostNamespaces reports as an error).
		var err error
		mnt, nets, err = hostNamespaces(h.holder.pid, h.holderReady())
		if haveNS = err == nil; !haveNS {
			h.log.Warn("cannot read the namespaces of the holder", zap.Error(err))
		}
	}

	var daemons []*proc
	for _, p := range []*proc{h.vswitchd, h.ovsdb} {
		if h.ownedDaemon(p) {
			daemons = append(daemons, p)
		}
	}
	if err := stopProcs(ctx, daemons); err != nil {
		errs = append(errs, fmt.Errorf("stop OVS: %w", err))
	}
	if haveNS {
		if err := stopProcs(ctx, nsMembers(&mnt, nets, h.holder.pid)); err != nil {
			errs = append(errs, fmt.Errorf("stop processes inside host: %w", err))
		}
	}
	if holderOK {
		if err := stopProcs(ctx, []*proc{h.holder}); err != nil {
			errs = append(errs, fmt.Errorf("stop holder: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop host %s: %w", h.name, err)
	}

	if h.rundir != "" {
		if h.opts.KeepRunDir {
			h.log.Info("sandbox run dir kept", zap.String("rundir", h.rundir))
		} else if strings.HasPrefix(filepath.Base(h.rundir), "dvrflow-"+h.name+"-") {
			if err := os.RemoveAll(h.rundir); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if st, err := readState(h.name); err == nil && st.Holder == h.holder.record() {
		if err := os.Remove(statePath(h.name)); err != nil {
			errs = append(errs, err)
		}
	}
	h.vms = map[string]*VM{}
	h.stopped.Store(true)
	h.log.Info("sandbox host stopped", zap.String("rundir", h.rundir))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop host %s: %w", h.name, err)
	}
	return nil
}
