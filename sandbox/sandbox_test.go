package sandbox

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// mustRun returns a function that fails the test if a command failed and
// otherwise returns its output: mustRun(t, "what")(h.Vsctl(...)).
func mustRun(t *testing.T, what string) func(string, error) string {
	return func(out string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return out
	}
}

func addBridge(t *testing.T, ctx context.Context, h *Host, br string) {
	t.Helper()
	mustRun(t, "add-br")(h.Vsctl(ctx, "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev", "fail-mode=standalone"))
}

// leftovers returns the live processes started inside host name (they carry
// its marker in their environment) or living in one of the namespaces.
func leftovers(name string, mnt nsID, nets []nsID) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := &proc{pid: pid}
		if !p.alive() {
			continue
		}
		if hasEnv(pid, hostEnvKey+"="+name) {
			pids = append(pids, pid)
		}
	}
	for _, p := range nsMembers(&mnt, nets) {
		if !contains(pids, p.pid) {
			pids = append(pids, p.pid)
		}
	}
	return pids
}

// tcpEcho connects from VM from to a listener on ip in VM to, sends a line
// and expects it echoed back.
func tcpEcho(t *testing.T, ctx context.Context, from, to *VM, ip string) {
	t.Helper()
	var ln net.Listener
	if err := inNetns(to.nsPath(), func() (err error) {
		ln, err = net.Listen("tcp", net.JoinHostPort(ip, "0"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		line, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = c.Write([]byte("re:" + line))
	}()
	script := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d && echo hello >&3 && read -t 3 line <&3 && echo $line", ip, ln.Addr().(*net.TCPAddr).Port)
	out, err := from.Run(ctx, "timeout", "5", "bash", "-c", script)
	if err != nil || strings.TrimSpace(out) != "re:hello" {
		t.Errorf("tcp echo from %s to %s: %q, %v", from.Name(), ip, out, err)
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	h := StartForTest(t, "t")

	if out := mustRun(t, "vswitchd version")(h.Appctl(ctx, "vswitchd", "version")); !strings.Contains(out, "ovs-vswitchd") {
		t.Errorf("vswitchd version: %q", out)
	}
	if out := mustRun(t, "ovsdb-server version")(h.Appctl(ctx, "ovsdb-server", "version")); !strings.Contains(out, "ovsdb-server") {
		t.Errorf("ovsdb-server version: %q", out)
	}
	if got, want := h.DBEndpoint(), "unix:"+filepath.Join(h.RunDir(), "db.sock"); got != want {
		t.Errorf("DBEndpoint = %s, want %s", got, want)
	}

	addBridge(t, ctx, h, "br0")
	if fi, err := os.Stat(h.MgmtSocket("br0")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("management socket %s: %v %v", h.MgmtSocket("br0"), fi, err)
	}
	if out := mustRun(t, "dump-flows")(h.Ofctl(ctx, "-O", "OpenFlow13", "dump-flows", "br0")); !strings.Contains(out, "actions=NORMAL") {
		t.Errorf("standalone br0 should have the NORMAL flow:\n%s", out)
	}
	if _, err := h.Ofctl(ctx, "dump-flows", "br-nope"); err == nil {
		t.Error("dump-flows on a missing bridge succeeded")
	}

	vm1, err := h.AddVM(ctx, VMSpec{Name: "vm1", Bridge: "br0", IfaceID: "11111111-2222-3333-4444-555555555555",
		MAC: "fa:16:3e:00:00:01", CIDR: "10.0.0.1/24", MTU: 1450, OfportRequest: 7})
	if err != nil {
		t.Fatal(err)
	}
	vm2, err := h.AddVM(ctx, VMSpec{Name: "vm2", Bridge: "br0", CIDR: "10.0.0.2/24"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.AddVM(ctx, VMSpec{Name: "vm2", Bridge: "br0"}); err == nil {
		t.Error("second VM called vm2 was accepted")
	}
	ext := mustRun(t, "get external_ids")(h.Vsctl(ctx, "get", "Interface", "tapvm1", "external_ids"))
	for _, want := range []string{`iface-id="11111111-2222-3333-4444-555555555555"`, `attached-mac="fa:16:3e:00:00:01"`, `iface-status=active`} {
		if !strings.Contains(ext, want) {
			t.Errorf("external_ids of tapvm1 = %s, want %s in it", ext, want)
		}
	}
	if of := strings.TrimSpace(mustRun(t, "get ofport")(h.Vsctl(ctx, "get", "Interface", "tapvm1", "ofport"))); of != "7" {
		t.Errorf("ofport of tapvm1 = %s, want 7", of)
	}
	if out := mustRun(t, "vm1 link")(vm1.Run(ctx, "ip", "-o", "link", "show", VMInterface)); !strings.Contains(out, "fa:16:3e:00:00:01") || !strings.Contains(out, "mtu 1450") {
		t.Errorf("vm1 %s: %s", VMInterface, out)
	}
	if mac := vm2.Spec().MAC; !strings.HasPrefix(mac, "fa:16:3e:") {
		t.Errorf("default MAC %q", mac)
	}

	if err := vm1.Ping(ctx, "10.0.0.2", 3); err != nil {
		t.Fatal(err)
	}
	// TCP, too, crosses the userspace datapath (checksums filled in).
	tcpEcho(t, ctx, vm1, vm2, "10.0.0.2")

	if err := vm2.Ping(ctx, "10.0.0.3", 1); err == nil {
		t.Error("ping to an address nobody has succeeded")
	}

	// Restarting vswitchd keeps the bridge (OVSDB has it) and forwarding.
	oldPid := h.VswitchdPid()
	oldProc := &proc{pid: oldPid}
	if err := h.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	if h.VswitchdPid() == oldPid || oldProc.alive() {
		t.Errorf("vswitchd pid %d → %d, old alive %v", oldPid, h.VswitchdPid(), oldProc.alive())
	}
	mustRun(t, "br-exists")(h.Vsctl(ctx, "br-exists", "br0"))
	if _, err := os.Stat(h.MgmtSocket("br0")); err != nil {
		t.Errorf("RestartVswitchd returned before br0 is back: %v", err)
	}
	mustRun(t, "dump-flows after restart")(h.Ofctl(ctx, "dump-flows", "br0"))
	if err := vm1.Ping(ctx, "10.0.0.2", 3); err != nil {
		t.Fatalf("after vswitchd restart: %v", err)
	}

	// Restarting ovsdb-server keeps the database.
	oldDB := h.OVSDBPid()
	if err := h.RestartOVSDB(ctx); err != nil {
		t.Fatal(err)
	}
	if h.OVSDBPid() == oldDB {
		t.Error("ovsdb-server pid did not change")
	}
	if out := mustRun(t, "list-ports")(h.Vsctl(ctx, "list-ports", "br0")); !strings.Contains(out, "tapvm1") || !strings.Contains(out, "tapvm2") {
		t.Errorf("ports after ovsdb restart: %q", out)
	}
	// A change without --no-wait needs vswitchd to be connected again.
	mustRun(t, "set after ovsdb restart")(h.Vsctl(ctx, "set", "bridge", "br0", "other_config:foo=bar"))
	if err := vm1.Ping(ctx, "10.0.0.2", 1); err != nil {
		t.Fatalf("after ovsdb-server restart: %v", err)
	}

	if err := h.RemoveVM(ctx, "vm2"); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, "list-ports")(h.Vsctl(ctx, "list-ports", "br0")); strings.Contains(out, "tapvm2") {
		t.Errorf("tapvm2 still on br0: %q", out)
	}
	if out := mustRun(t, "netns list")(h.Run(ctx, "ip", "netns", "list")); strings.Contains(out, "vm2") || !strings.Contains(out, "vm1") {
		t.Errorf("ip netns list after RemoveVM: %q", out)
	}
	if err := vm1.Ping(ctx, "10.0.0.2", 1); err == nil {
		t.Error("removed VM still answers")
	}

	// Stop takes everything down, including processes left running in the
	// host and in a VM.
	inVM := vm1.Command(ctx, "sleep", "300")
	inHost := h.Command(ctx, "sleep", "300")
	for _, c := range []interface{ Start() error }{inVM, inHost} {
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	mnt, nets, err := hostNamespaces(h.Pid(), true)
	if err != nil {
		t.Fatal(err)
	}
	if len(nets) != 2 {
		t.Errorf("host should have its own and vm1's network namespace, got %d", len(nets))
	}
	pids := []int{h.Pid(), h.OVSDBPid(), h.VswitchdPid(), inVM.Process.Pid, inHost.Process.Pid}
	if left := leftovers(h.Name(), mnt, nets); len(left) < len(pids) {
		t.Fatalf("expected at least %v inside the host, found %v", pids, left)
	}
	if err := h.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_ = inVM.Wait()
	_ = inHost.Wait()
	for _, pid := range pids {
		if p := (&proc{pid: pid}); p.alive() {
			t.Errorf("pid %d still alive after Stop", pid)
		}
	}
	// A killed grandchild (reparented) may take a moment to finish exiting on a loaded
	// machine; anything still there after a few seconds was left behind.
	left := leftovers(h.Name(), mnt, nets)
	for deadline := time.Now().Add(3 * time.Second); len(left) > 0 && time.Now().Before(deadline); left = leftovers(h.Name(), mnt, nets) {
		time.Sleep(50 * time.Millisecond)
	}
	if len(left) > 0 {
		t.Errorf("processes left in the host after Stop: %v", left)
	}
	// Nor may one of our own threads still sit in a namespace of the host
	// (that would keep it alive).
	tasks, _ := filepath.Glob("/proc/self/task/*/ns/net")
	for _, task := range tasks {
		if id, ok := nsOf(task); ok && containsNS(nets, id) {
			t.Errorf("%s is in a namespace of the stopped host", task)
		}
	}
	if _, err := os.Stat(h.RunDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("run dir after Stop: %v", err)
	}
	if _, err := os.Stat(statePath(h.Name())); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after Stop: %v", err)
	}
	if err := h.Stop(ctx); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := h.Run(ctx, "true"); err == nil {
		t.Error("Run on a stopped host succeeded")
	}
}

func TestTwoHostsLinked(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	a := StartForTest(t, "a")
	b := StartForTest(t, "b")
	var vms []*VM
	for i, h := range []*Host{a, b} {
		addBridge(t, ctx, h, "br0")
		// Same VM name on both hosts: each has its own /run/netns.
		vm, err := h.AddVM(ctx, VMSpec{Name: "vm1", Bridge: "br0", CIDR: "10.0.1." + strconv.Itoa(i+1) + "/24"})
		if err != nil {
			t.Fatal(err)
		}
		vms = append(vms, vm)
	}
	nsA, okA := nsOf(filepath.Join("/proc", strconv.Itoa(a.Pid()), "root/run/netns/vm1"))
	nsB, okB := nsOf(filepath.Join("/proc", strconv.Itoa(b.Pid()), "root/run/netns/vm1"))
	if !okA || !okB || nsA == nsB {
		t.Fatalf("vm1 namespaces: a %v %v, b %v %v", nsA, okA, nsB, okB)
	}
	if err := vms[0].Ping(ctx, "10.0.1.2", 1); err == nil {
		t.Fatal("ping across unlinked hosts succeeded")
	}

	if err := Link(ctx, a, "to-b", b, "to-a"); err != nil {
		t.Fatal(err)
	}
	mustRun(t, "add-port a")(a.Vsctl(ctx, "add-port", "br0", "to-b"))
	mustRun(t, "add-port b")(b.Vsctl(ctx, "add-port", "br0", "to-a"))
	if err := vms[0].Ping(ctx, "10.0.1.2", 3); err != nil {
		t.Fatal(err)
	}
	if err := vms[1].Ping(ctx, "10.0.1.1", 3); err != nil {
		t.Fatal(err)
	}
	tcpEcho(t, ctx, vms[1], vms[0], "10.0.1.1")
}

func TestStartSameNameRecovers(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	opts := Options{Log: zaptest.NewLogger(t)}
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := "again-" + hex.EncodeToString(b[:])

	h1, err := Start(ctx, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h1.Stop(context.Background()) })
	old := []int{h1.Pid(), h1.OVSDBPid(), h1.VswitchdPid()}

	h2, err := Start(ctx, name, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h2.Stop(context.Background()) })
	for _, pid := range old {
		if (&proc{pid: pid}).alive() {
			t.Errorf("leftover pid %d of the first host still alive", pid)
		}
	}
	if _, err := os.Stat(h1.RunDir()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("first host's run dir: %v", err)
	}
	mustRun(t, "version")(h2.Appctl(ctx, "vswitchd", "version"))

	// Stopping the stale handle must not touch the new host.
	if err := h1.Stop(ctx); err != nil {
		t.Errorf("stop stale handle: %v", err)
	}
	mustRun(t, "version after stale stop")(h2.Appctl(ctx, "vswitchd", "version"))
	if _, err := os.Stat(statePath(name)); err != nil {
		t.Errorf("state file of the new host: %v", err)
	}
	got, err := Open(name, opts)
	if err != nil || got.Pid() != h2.Pid() || got.VswitchdPid() != h2.VswitchdPid() {
		t.Fatalf("Open = %v, %v; want holder %d", got, err, h2.Pid())
	}
	if err := StopRecorded(ctx, name, opts); err != nil {
		t.Fatal(err)
	}
	if (&proc{pid: h2.Pid()}).alive() {
		t.Error("StopRecorded left the holder running")
	}
	if _, err := Open(name, opts); !errors.Is(err, ErrNotFound) {
		t.Errorf("Open after stop: %v, want ErrNotFound", err)
	}
	if err := StopRecorded(ctx, name, opts); err != nil {
		t.Errorf("StopRecorded of a gone host: %v", err)
	}
}

func TestStartFailureUndoes(t *testing.T) {
	t.Parallel()
	if _, err := Start(context.Background(), "bad/name", Options{}); err == nil {
		t.Error("Start accepted a name with a slash")
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	name := "cancel-" + hex.EncodeToString(b[:])
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if h, err := Start(ctx, name, Options{Log: zaptest.NewLogger(t)}); err == nil {
		_ = h.Stop(context.Background())
		t.Fatal("Start with a cancelled context succeeded")
	}
	if _, err := os.Stat(statePath(name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file after failed Start: %v", err)
	}
	if left := leftovers(name, nsID{}, nil); len(left) > 0 {
		t.Errorf("processes left after failed Start: %v", left)
	}
	if m, _ := filepath.Glob(filepath.Join(os.TempDir(), "dvrflow-"+name+"-*")); len(m) > 0 {
		t.Errorf("run dirs left after failed Start: %v", m)
	}
}
