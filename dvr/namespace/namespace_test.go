package namespace

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/state"
)

// The acceptance test runs the Manager in a child process started inside a sandbox host
// (nsenter into its mount and network namespaces), so that the namespaces it creates are
// bind-mounted in the host's private /run/netns and its devices live in the host's network
// namespace, never the machine's. The child is this test binary: TestMain runs helperMain
// instead of the tests when helperEnv is set.
const (
	helperEnv       = "DVRFLOW_NAMESPACE_TEST_HELPER" // "1" in the child
	helperDBEnv     = "DVRFLOW_NAMESPACE_TEST_DB"     // the host's OVSDB endpoint
	helperParentEnv = "DVRFLOW_NAMESPACE_TEST_PARENT" // the parent's mount and net namespaces
	sandboxHostEnv  = "DVRFLOW_SANDBOX_HOST"          // set by sandbox.Host.Command
	testBridge      = "br-int"
)

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helperMain())
	}
	os.Exit(m.Run())
}

// ownNamespaces identifies this process's mount and network namespaces and the file system
// on /run/netns ("none" when it does not exist).
func ownNamespaces() (string, error) {
	mnt, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		return "", err
	}
	net, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		return "", err
	}
	dev := "none"
	var st unix.Stat_t
	if err := unix.Stat(netnsDir, &st); err == nil {
		var fs unix.Statfs_t
		if err := unix.Statfs(netnsDir, &fs); err != nil {
			return "", err
		}
		dev = fmt.Sprintf("dev=%d,fs=%#x", st.Dev, fs.Type)
	}
	return mnt + " " + net + " " + dev, nil
}

// helperMain applies the routers read (as JSON) from stdin, against the OVSDB named in the
// environment, and returns the exit code. It refuses to run unless it is inside a sandbox
// host: other mount and network namespaces than its parent's, and a /run/netns of its own
// (the host's private tmpfs).
func helperMain() int {
	own, err := ownNamespaces()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	o, p := strings.Fields(own), strings.Fields(os.Getenv(helperParentEnv))
	if os.Getenv(sandboxHostEnv) == "" || len(p) != 3 || o[0] == p[0] || o[1] == p[1] || o[2] == p[2] ||
		!strings.HasSuffix(o[2], fmt.Sprintf(",fs=%#x", unix.TMPFS_MAGIC)) {
		fmt.Fprintf(os.Stderr, "helper: refusing to run outside a sandbox host (own %q, parent %q)\n", own, p)
		return 2
	}
	var req helperRequest
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "helper: decode request:", err)
		return 2
	}
	log, err := zap.NewDevelopment()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		return 2
	}
	defer log.Sync()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := ovsdb.Connect(ctx, os.Getenv(helperDBEnv), log)
	if err != nil {
		log.Error("connect", zap.Error(err))
		return 1
	}
	// No db.Close(): the process exits right after, and Close can panic (ovsdb.Client's
	// event loop may read the cache after libovsdb has dropped it).
	m := New(db, testBridge, log)
	defer m.Close()
	var fip FIPState
	if req.FIP != nil {
		// As the agent does on every reconcile: the allocators (opened once per process),
		// the floating IPs held now, then DesiredFIP.
		alloc, skipped, err := OpenFIPAllocators(req.StateDir)
		for _, s := range skipped {
			log.Warn("allocation file line skipped", zap.Error(s))
		}
		if err != nil {
			log.Error("open allocators", zap.Error(err))
			return 1
		}
		in := *req.FIP
		if in.Held, err = m.HeldFloatingIPs(); err != nil {
			log.Error("held floating IPs", zap.Error(err))
			return 1
		}
		if err := alloc.Allocate(&in); err != nil {
			log.Error("allocate", zap.Error(err))
		}
		fip = DesiredFIP(in)
		for _, p := range fip.Problems {
			log.Error("floating IP problem", zap.Error(p))
		}
		log.Info("floating IPs", zap.Int("held", len(in.Held)), zap.Int("announce", len(fip.Announce)))
	}
	if err := m.Apply(ctx, req.Routers, fip); err != nil {
		log.Error("apply", zap.Error(err))
		return 1
	}
	// The tests play the L2 side themselves: every fg- counts as wired.
	if err := m.Announce(func(string) bool { return true }); err != nil {
		log.Error("announce", zap.Error(err))
		return 1
	}
	return 0
}

// helperRequest is what the helper applies: the routers and, when FIP is set, the floating
// IPs computed in the helper from FIP with allocators on StateDir.
type helperRequest struct {
	Routers  []Router
	FIP      *FIPInput
	StateDir string
}

// rig is the acceptance test's sandbox host.
type rig struct {
	t   *testing.T
	h   *sandbox.Host
	ctx context.Context
}

// apply runs Manager.Apply(routers) in a helper process inside the host; a non-nil error
// is the helper's failure (with its output).
func (r *rig) apply(routers []Router) error {
	r.t.Helper()
	_, err := r.applyLogged(routers)
	return err
}

// applyLogged is apply that also returns the helper's output (its log).
func (r *rig) applyLogged(routers []Router) (string, error) {
	r.t.Helper()
	return r.applyRequest(helperRequest{Routers: routers})
}

// applyRequest runs the helper on req and returns its output.
func (r *rig) applyRequest(req helperRequest) (string, error) {
	r.t.Helper()
	routers := req.Routers
	data, err := json.Marshal(req)
	if err != nil {
		r.t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		r.t.Fatal(err)
	}
	own, err := ownNamespaces()
	if err != nil {
		r.t.Fatal(err)
	}
	cmd := r.h.Command(r.ctx, exe)
	cmd.Env = append(slices.Clone(cmd.Env), helperEnv+"=1", helperDBEnv+"="+r.h.DBEndpoint(), helperParentEnv+"="+own)
	cmd.Stdin = bytes.NewReader(data)
	out, err := cmd.CombinedOutput()
	r.t.Logf("apply %d routers:\n%s", len(routers), out)
	if err != nil {
		return string(out), fmt.Errorf("helper: %w", err)
	}
	return string(out), nil
}

func (r *rig) mustApply(routers []Router) {
	r.t.Helper()
	if err := r.apply(routers); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) run(name string, args ...string) string {
	r.t.Helper()
	out, err := r.h.Run(r.ctx, name, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (r *rig) vsctl(args ...string) string {
	r.t.Helper()
	out, err := r.h.Vsctl(r.ctx, args...)
	if err != nil {
		r.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// ipJSON runs `ip -j ARGS` in the host and decodes the result.
func (r *rig) ipJSON(v any, args ...string) {
	r.t.Helper()
	out := r.run("ip", append([]string{"-j"}, args...)...)
	if out == "" {
		out = "[]"
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.t.Fatalf("ip -j %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

type ipLink struct {
	Ifname   string   `json:"ifname"`
	Ifindex  int      `json:"ifindex"`
	Address  string   `json:"address"`
	MTU      int      `json:"mtu"`
	Flags    []string `json:"flags"`
	Alias    string   `json:"ifalias"`
	Operstat string   `json:"operstate"`
	Linkinfo struct {
		Kind string `json:"info_kind"`
	} `json:"linkinfo"`
	AddrInfo []struct {
		Family    string `json:"family"`
		Local     string `json:"local"`
		Prefixlen int    `json:"prefixlen"`
		Scope     string `json:"scope"`
	} `json:"addr_info"`
}

// link returns the link called dev in namespace ns ("" for the host's), with its addresses;
// ok is false when there is none.
func (r *rig) link(ns, dev string) (ipLink, bool) {
	r.t.Helper()
	args := []string{"-d", "addr", "show"}
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	var links []ipLink
	r.ipJSON(&links, args...)
	for _, l := range links {
		if l.Ifname == dev {
			return l, true
		}
	}
	return ipLink{}, false
}

func (l ipLink) globalAddrs() []string {
	var out []string
	for _, a := range l.AddrInfo {
		if a.Scope == "global" {
			out = append(out, fmt.Sprintf("%s/%d", a.Local, a.Prefixlen))
		}
	}
	slices.Sort(out)
	return out
}

// permanentNeighbours returns "dev ip lladdr" for each permanent neighbour in ns.
func (r *rig) permanentNeighbours(ns string) []string {
	r.t.Helper()
	var ns_ []struct {
		Dst    string   `json:"dst"`
		Dev    string   `json:"dev"`
		Lladdr string   `json:"lladdr"`
		State  []string `json:"state"`
	}
	r.ipJSON(&ns_, "-n", ns, "neigh", "show", "nud", "permanent")
	var out []string
	for _, n := range ns_ {
		out = append(out, n.Dev+" "+n.Dst+" "+n.Lladdr)
	}
	slices.Sort(out)
	return out
}

func (r *rig) namespaces() []string {
	r.t.Helper()
	var list []struct {
		Name string `json:"name"`
	}
	r.ipJSON(&list, "netns", "list")
	var names []string
	for _, n := range list {
		names = append(names, n.Name)
	}
	slices.Sort(names)
	return names
}

// ports returns the ports of br-int.
func (r *rig) ports() []string {
	r.t.Helper()
	out := r.vsctl("list-ports", testBridge)
	return strings.Fields(out)
}

// The topology of the test: router R with interfaces on s1 (VM1) and s2 (VM2), and a third
// interface on s3 whose port is already plugged by someone else.
const (
	routerID = "7e7e7e7e-0000-4000-8000-00000000000a"
	rp1      = "1a1a1a1a-0001-4000-8000-000000000001"
	rp2      = "2b2b2b2b-0002-4000-8000-000000000002"
	rp3      = "3c3c3c3c-0003-4000-8000-000000000003"
	vm1ID    = "d1d1d1d1-0001-4000-8000-0000000000d1"
	vm2ID    = "d2d2d2d2-0002-4000-8000-0000000000d2"
	rp1MAC   = "fa:16:3e:aa:00:01"
	rp2MAC   = "fa:16:3e:aa:00:02"
	rp3MAC   = "fa:16:3e:aa:00:03"
	vm1MAC   = "fa:16:3e:bb:00:01"
	vm2MAC   = "fa:16:3e:bb:00:02"
	remMAC   = "fa:16:3e:cc:00:01"
)

func topology() Input {
	router := func(id, network, m, subnet, ip string) state.Port {
		return state.Port{ID: id, NetworkID: network, MAC: mac(m), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
			DeviceID: routerID, FixedIPs: []state.FixedIP{fip(subnet, ip)}}
	}
	vm := func(id, network, m, subnet, ip string) state.Port {
		return state.Port{ID: id, NetworkID: network, MAC: mac(m), DeviceOwner: "compute:nova",
			FixedIPs: []state.FixedIP{fip(subnet, ip)}}
	}
	return Input{
		Subnets: []state.Subnet{
			{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.1.0/24"), GatewayIP: netip.MustParseAddr("10.0.1.1"), IPVersion: 4},
			{ID: "s2", NetworkID: "n2", CIDR: netip.MustParsePrefix("10.0.2.0/24"), GatewayIP: netip.MustParseAddr("10.0.2.1"), IPVersion: 4},
			{ID: "s3", NetworkID: "n3", CIDR: netip.MustParsePrefix("10.0.3.0/24"), GatewayIP: netip.MustParseAddr("10.0.3.1"), IPVersion: 4},
		},
		Networks: []state.Network{{ID: "n1", MTU: 1500}, {ID: "n2", MTU: 1500}, {ID: "n3", MTU: 1500}},
		LocalPorts: []state.Port{
			router(rp1, "n1", rp1MAC, "s1", "10.0.1.1"),
			router(rp2, "n2", rp2MAC, "s2", "10.0.2.1"),
			router(rp3, "n3", rp3MAC, "s3", "10.0.3.1"),
			vm(vm1ID, "n1", vm1MAC, "s1", "10.0.1.11"),
			vm(vm2ID, "n2", vm2MAC, "s2", "10.0.2.12"),
		},
		RemotePorts: []state.Port{vm("e1e1e1e1-0001-4000-8000-0000000000e1", "n1", remMAC, "s1", "10.0.1.21")},
	}
}

func TestRouterNamespaces(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch, namespaces and packets")
	h := sandbox.StartForTest(t, "rns")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &rig{t: t, h: h, ctx: ctx}
	ns := NamespaceName(routerID)
	qr1, qr2, qr3 := DeviceName(rp1), DeviceName(rp2), DeviceName(rp3)

	r.vsctl("add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev", "fail_mode=secure")
	if _, err := h.Ofctl(ctx, "add-flow", testBridge, "priority=0,actions=NORMAL"); err != nil {
		t.Fatal(err)
	}
	vm1, err := h.AddVM(ctx, sandbox.VMSpec{Name: "vm1", Bridge: testBridge, IfaceID: vm1ID, MAC: vm1MAC,
		CIDR: "10.0.1.11/24", Gateway: "10.0.1.1"})
	if err != nil {
		t.Fatal(err)
	}
	vm2, err := h.AddVM(ctx, sandbox.VMSpec{Name: "vm2", Bridge: testBridge, IfaceID: vm2ID, MAC: vm2MAC,
		CIDR: "10.0.2.12/24", Gateway: "10.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	// Someone else (an L3 agent, a test bed) has plugged rp3 already, and owns a router
	// namespace of its own.
	r.vsctl("add-port", testBridge, "fgn3", "--", "set", "Interface", "fgn3", "type=internal",
		"external_ids:iface-id="+rp3, "external_ids:attached-mac=\""+rp3MAC+"\"", "external_ids:iface-status=active")
	r.run("ip", "netns", "add", "qrouter-not-ours")
	foreignRow := func() string {
		return r.vsctl("--columns=_uuid,name,type,external_ids,ofport_request,options", "list", "Interface", "fgn3") + "\n" +
			r.vsctl("--columns=_uuid,name,tag,interfaces,external_ids", "list", "Port", "fgn3")
	}
	foreignBefore := foreignRow()
	checkForeign := func(when string) {
		t.Helper()
		if got := foreignRow(); got != foreignBefore {
			t.Errorf("%s: the foreign interface changed:\n%s\nwas\n%s", when, got, foreignBefore)
		}
		if got := r.vsctl("--bare", "--columns=name", "find", "Interface", "external_ids:iface-id="+rp3); got != "fgn3" {
			t.Errorf("%s: interfaces with iface-id %s: %q, want only fgn3", when, rp3, got)
		}
		if !slices.Contains(r.namespaces(), "qrouter-not-ours") {
			t.Errorf("%s: namespace qrouter-not-ours is gone", when)
		}
	}

	routers := Desired(topology())
	if len(routers) != 1 || len(routers[0].Interfaces) != 3 {
		t.Fatalf("Desired = %+v, want one router with three interfaces", routers)
	}
	r.mustApply(routers)

	// The namespace, forwarding, lo.
	if !slices.Contains(r.namespaces(), ns) {
		t.Fatalf("namespaces %v lack %s", r.namespaces(), ns)
	}
	for f, want := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":              "1",
		"/proc/sys/net/ipv6/conf/all/forwarding":     "1",
		"/proc/sys/net/ipv4/conf/all/arp_ignore":     "1",
		"/proc/sys/net/ipv4/conf/all/arp_announce":   "2",
		"/proc/sys/net/ipv6/conf/default/forwarding": "1",
	} {
		if got := r.run("ip", "netns", "exec", ns, "cat", f); got != want {
			t.Errorf("%s in %s = %s, want %s", f, ns, got, want)
		}
	}
	if lo, _ := r.link(ns, "lo"); !slices.Contains(lo.Flags, "UP") || lo.Alias != aliasPrefix {
		t.Errorf("lo in %s: flags %v alias %q, want UP and our marker", ns, lo.Flags, lo.Alias)
	}
	// The devices: MAC, gateway address, up, veth; the host ends plugged with iface-id.
	type ifcWant struct{ dev, port, mac, addr string }
	for _, w := range []ifcWant{{qr1, rp1, rp1MAC, "10.0.1.1/24"}, {qr2, rp2, rp2MAC, "10.0.2.1/24"}} {
		l, ok := r.link(ns, w.dev)
		if !ok {
			t.Fatalf("no %s in %s", w.dev, ns)
		}
		if l.Address != w.mac || !slices.Equal(l.globalAddrs(), []string{w.addr}) || !slices.Contains(l.Flags, "UP") ||
			l.Linkinfo.Kind != "veth" || l.MTU != 1500 {
			t.Errorf("%s in %s: %+v; want MAC %s, address %s, UP, veth, MTU 1500", w.dev, ns, l, w.mac, w.addr)
		}
		hl, ok := r.link("", w.dev)
		if !ok || hl.Linkinfo.Kind != "veth" || !slices.Contains(hl.Flags, "UP") {
			t.Errorf("host end %s: %+v (present %v); want an UP veth", w.dev, hl, ok)
		}
		for col, want := range map[string]string{
			"external_ids:iface-id":      `"` + w.port + `"`,
			"external_ids:attached-mac":  `"` + w.mac + `"`,
			"external_ids:iface-status":  "active",
			"external_ids:dvrflow-owner": OwnerValue,
			"type":                       `""`,
		} {
			if got := r.vsctl("get", "Interface", w.dev, col); got != want {
				t.Errorf("Interface %s %s = %s, want %s", w.dev, col, got, want)
			}
		}
		if got := r.vsctl("get", "Port", w.dev, "tag"); got != "4095" {
			t.Errorf("new port %s tag = %s, want the dead VLAN 4095", w.dev, got)
		}
		if got := r.vsctl("get", "Interface", w.dev, "ofport"); got == "-1" || got == "[]" {
			t.Errorf("%s ofport = %s; ovs-vswitchd did not open it: %s", w.dev, got, r.vsctl("get", "Interface", w.dev, "error"))
		}
	}
	// The foreign port: no device of ours, not re-plugged.
	if _, ok := r.link(ns, qr3); ok {
		t.Errorf("%s exists in %s, but %s is plugged by someone else", qr3, ns, rp3)
	}
	if slices.Contains(r.ports(), qr3) {
		t.Errorf("br-int has %s, but %s is plugged by someone else", qr3, rp3)
	}
	checkForeign("after the first Apply")
	// Permanent neighbours: every port of the subnets, local and remote.
	wantNeigh := []string{qr1 + " 10.0.1.11 " + vm1MAC, qr1 + " 10.0.1.21 " + remMAC, qr2 + " 10.0.2.12 " + vm2MAC}
	slices.Sort(wantNeigh)
	if got := r.permanentNeighbours(ns); !slices.Equal(got, wantNeigh) {
		t.Errorf("permanent neighbours in %s:\n got %q\nwant %q", ns, got, wantNeigh)
	}

	// Play the L2 agent: tag the VMs and the router ports by network. Then real packets go
	// VM1 → qr1 → routed → qr2 → VM2 and back.
	r.vsctl("set", "Port", "tapvm1", "tag=1", "--", "set", "Port", qr1, "tag=1",
		"--", "set", "Port", "tapvm2", "tag=2", "--", "set", "Port", qr2, "tag=2")
	if err := vm1.Ping(ctx, "10.0.2.12", 5); err != nil {
		t.Errorf("VM1 → VM2 through the router: %v", err)
	}
	if err := vm2.Ping(ctx, "10.0.1.11", 5); err != nil {
		t.Errorf("VM2 → VM1 through the router: %v", err)
	}
	if out, err := vm1.Run(ctx, "ip", "neigh", "show", "10.0.1.1"); err != nil || !strings.Contains(out, rp1MAC) {
		t.Errorf("VM1's gateway 10.0.1.1 is not at the router port's MAC %s: %s %v", rp1MAC, out, err)
	}

	// Apply again: nothing changes (same devices, ofports, tags).
	before := map[string]string{}
	for _, dev := range []string{qr1, qr2} {
		l, _ := r.link(ns, dev)
		before[dev] = fmt.Sprintf("ifindex=%d ofport=%s tag=%s", l.Ifindex,
			r.vsctl("get", "Interface", dev, "ofport"), r.vsctl("get", "Port", dev, "tag"))
	}
	r.mustApply(routers)
	for _, dev := range []string{qr1, qr2} {
		l, _ := r.link(ns, dev)
		got := fmt.Sprintf("ifindex=%d ofport=%s tag=%s", l.Ifindex,
			r.vsctl("get", "Interface", dev, "ofport"), r.vsctl("get", "Port", dev, "tag"))
		if got != before[dev] {
			t.Errorf("second Apply changed %s: %s, was %s", dev, got, before[dev])
		}
	}
	if err := vm1.Ping(ctx, "10.0.2.12", 3); err != nil {
		t.Errorf("after the second Apply: %v", err)
	}
	checkForeign("after the second Apply")

	// Remove rp2, change rp1's MTU and its neighbours: qr2 goes (both ends, the br-int
	// port), qr1 is updated in place.
	in := topology()
	in.LocalPorts = slices.DeleteFunc(in.LocalPorts, func(p state.Port) bool { return p.ID == rp2 })
	in.Networks[0].MTU = 1400
	in.RemotePorts[0].FixedIPs[0].IP = netip.MustParseAddr("10.0.1.22")
	routers = Desired(in)
	r.mustApply(routers)
	if _, ok := r.link(ns, qr2); ok {
		t.Errorf("%s still in %s after its interface was removed", qr2, ns)
	}
	if _, ok := r.link("", qr2); ok {
		t.Errorf("host end %s still exists after its interface was removed", qr2)
	}
	if slices.Contains(r.ports(), qr2) {
		t.Errorf("br-int still has %s after its interface was removed", qr2)
	}
	l, ok := r.link(ns, qr1)
	if !ok || l.MTU != 1400 || l.Ifindex == 0 || fmt.Sprintf("ifindex=%d", l.Ifindex) != strings.Fields(before[qr1])[0] {
		t.Errorf("%s after the update: %+v; want the same device with MTU 1400", qr1, l)
	}
	if hl, _ := r.link("", qr1); hl.MTU != 1400 {
		t.Errorf("host end %s MTU %d, want 1400", qr1, hl.MTU)
	}
	wantNeigh = []string{qr1 + " 10.0.1.11 " + vm1MAC, qr1 + " 10.0.1.22 " + remMAC}
	if got := r.permanentNeighbours(ns); !slices.Equal(got, wantNeigh) {
		t.Errorf("permanent neighbours after the update:\n got %q\nwant %q", got, wantNeigh)
	}
	if got := r.vsctl("get", "Port", qr1, "tag"); got != "1" {
		t.Errorf("Apply changed the tag of %s to %s; the L2 side owns it", qr1, got)
	}
	checkForeign("after removing an interface")

	// No routers: the namespace goes, with its devices and br-int ports; what is not ours
	// stays.
	r.mustApply(nil)
	if slices.Contains(r.namespaces(), ns) {
		t.Errorf("%s still exists with no routers", ns)
	}
	for _, dev := range []string{qr1, qr2} {
		if _, ok := r.link("", dev); ok {
			t.Errorf("host end %s still exists with no routers", dev)
		}
		if slices.Contains(r.ports(), dev) {
			t.Errorf("br-int still has %s with no routers", dev)
		}
	}
	if got := r.ports(); !slices.Equal(got, []string{"fgn3", "tapvm1", "tapvm2"}) {
		t.Errorf("br-int ports with no routers: %v, want fgn3 tapvm1 tapvm2", got)
	}
	checkForeign("after removing the router")
	r.mustApply(nil) // and again: nothing to do
}

// TestApplyRecreatesBrokenPairs checks the repairs: a namespace deleted by hand leaves a
// stale br-int port (removed, and the router rebuilt), a device deleted by hand is
// recreated, an address and a neighbour added by hand are removed.
func TestApplyRepairs(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch and namespaces")
	h := sandbox.StartForTest(t, "rnsfix")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &rig{t: t, h: h, ctx: ctx}
	ns := NamespaceName(routerID)
	qr1, qr2 := DeviceName(rp1), DeviceName(rp2)
	r.vsctl("add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev", "fail_mode=secure")
	routers := Desired(topology()) // rp3 is not plugged by anyone here: three devices
	r.mustApply(routers)
	if got := len(r.ports()); got != 3 {
		t.Fatalf("br-int has %d ports, want 3: %v", got, r.ports())
	}

	// Damage: delete qr2 (both ends go), add an address and a permanent neighbour to qr1.
	r.run("ip", "-n", ns, "link", "delete", qr2)
	r.run("ip", "-n", ns, "addr", "add", "192.0.2.1/24", "dev", qr1)
	r.run("ip", "-n", ns, "neigh", "replace", "10.0.1.99", "lladdr", "fa:16:3e:00:99:99", "dev", qr1, "nud", "permanent")
	r.run("ip", "netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward")
	r.mustApply(routers)
	l, ok := r.link(ns, qr2)
	if !ok || l.Address != rp2MAC || !slices.Equal(l.globalAddrs(), []string{"10.0.2.1/24"}) {
		t.Errorf("%s not recreated: %+v (present %v)", qr2, l, ok)
	}
	if got := r.vsctl("get", "Interface", qr2, "ofport"); got == "-1" || got == "[]" {
		t.Errorf("%s not re-plugged: ofport %s", qr2, got)
	}
	if l, _ := r.link(ns, qr1); !slices.Equal(l.globalAddrs(), []string{"10.0.1.1/24"}) {
		t.Errorf("%s addresses %v, want only 10.0.1.1/24", qr1, l.globalAddrs())
	}
	for _, n := range r.permanentNeighbours(ns) {
		if strings.Contains(n, "10.0.1.99") {
			t.Errorf("stray permanent neighbour %q not removed", n)
		}
	}
	if got := r.run("ip", "netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"); got != "1" {
		t.Errorf("ip_forward = %s after repair, want 1", got)
	}

	// A changed MAC is applied in place (same device) and to attached-mac; external_ids
	// keys we do not own are kept, ours restored.
	r.vsctl("set", "Interface", qr1, "external_ids:other=kept", "external_ids:iface-status=inactive")
	before, _ := r.link(ns, qr1)
	in := topology()
	const newMAC = "fa:16:3e:aa:01:01"
	in.LocalPorts[0].MAC = mac(newMAC)
	r.mustApply(Desired(in))
	after, _ := r.link(ns, qr1)
	if after.Address != newMAC || after.Ifindex != before.Ifindex || !slices.Contains(after.Flags, "UP") {
		t.Errorf("%s after a MAC change: %+v; want MAC %s on the same device (ifindex %d), UP", qr1, after, newMAC, before.Ifindex)
	}
	for col, want := range map[string]string{
		"external_ids:attached-mac": `"` + newMAC + `"`,
		"external_ids:iface-status": "active",
		"external_ids:other":        "kept",
	} {
		if got := r.vsctl("get", "Interface", qr1, col); got != want {
			t.Errorf("Interface %s %s = %s, want %s", qr1, col, got, want)
		}
	}

	// The namespace deleted by hand: its devices die with it, the br-int ports stay behind
	// (failing). Apply rebuilds everything.
	r.run("ip", "netns", "delete", ns)
	r.mustApply(routers)
	for _, dev := range []string{qr1, qr2} {
		if _, ok := r.link(ns, dev); !ok {
			t.Errorf("%s not rebuilt in %s", dev, ns)
		}
		if got := r.vsctl("get", "Interface", dev, "ofport"); got == "-1" || got == "[]" {
			t.Errorf("%s not re-plugged: ofport %s", dev, got)
		}
	}

	// Apply with no routers after the namespace was deleted by hand: the stale br-int ports
	// and host ends go.
	r.run("ip", "netns", "delete", ns)
	r.mustApply(nil)
	if got := r.ports(); len(got) != 0 {
		t.Errorf("br-int ports left: %v", got)
	}
}
