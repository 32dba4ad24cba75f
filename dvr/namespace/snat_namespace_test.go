package namespace

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/state"
)

// The north-south acceptance topology, one sandbox host playing a dvr_snat node: VM1 on s1
// (10.0.1.0/24) behind router R (qr- 10.0.1.1), R's centralized SNAT port on s1 (sg-
// 10.0.1.5) and gateway port on the external network (qg- 203.0.113.10/24), and an external
// host at 203.0.113.1, the external subnet's gateway, with no route back to 10.0.1.0/24. All
// on one br-int switching NORMAL; the test plays the L2 agent and tags s1's ports 1 and the
// external network's 3.
const (
	snatRouter = "5a5a5a5a-0000-4000-8000-00000000000b"
	nsQR       = "1e1e1e1e-0001-4000-8000-000000000001"
	nsSG       = "2f2f2f2f-0002-4000-8000-000000000002"
	nsQG       = "3a3a3a3a-0003-4000-8000-000000000003"
	nsVM       = "4b4b4b4b-0004-4000-8000-000000000004"
	nsQRMAC    = "fa:16:3e:dd:00:01"
	nsSGMAC    = "fa:16:3e:dd:00:02"
	nsQGMAC    = "fa:16:3e:dd:00:03"
	nsVMMAC    = "fa:16:3e:dd:00:04"
	nsExtMAC   = "fa:16:3e:dd:00:05"
	// snatIdx is Neutron's snat_idx of qr-'s ip_cidr 10.0.1.1/24: 0x0a000101.
	snatIdx = "167772417"
)

func northSouthTopology(enableSNAT bool) Input {
	port := func(id, network, m string, owner northbound.DeviceOwner, subnet, ip string) state.Port {
		return state.Port{ID: id, NetworkID: network, MAC: mac(m), DeviceOwner: owner, DeviceID: snatRouter,
			FixedIPs: []state.FixedIP{fip(subnet, ip)}}
	}
	vm := port(nsVM, "n1", nsVMMAC, "compute:nova", "s1", "10.0.1.11")
	vm.DeviceID = "vm-1"
	return Input{
		Subnets: []state.Subnet{
			{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.1.0/24"), GatewayIP: netip.MustParseAddr("10.0.1.1"), IPVersion: 4},
			{ID: "ext", NetworkID: "next", CIDR: netip.MustParsePrefix("203.0.113.0/24"), GatewayIP: netip.MustParseAddr("203.0.113.1"), IPVersion: 4},
		},
		Networks: []state.Network{{ID: "n1", MTU: 1500}, {ID: "next", MTU: 1500}},
		LocalPorts: []state.Port{
			port(nsQR, "n1", nsQRMAC, northbound.OwnerRouterInterfaceDistributed, "s1", "10.0.1.1"),
			port(nsSG, "n1", nsSGMAC, northbound.OwnerRouterCentralizedSNAT, "s1", "10.0.1.5"),
			port(nsQG, "next", nsQGMAC, northbound.OwnerRouterGateway, "ext", "203.0.113.10"),
			vm,
		},
		Routers: []northbound.Router{{ID: snatRouter, Distributed: true,
			Gateway: &northbound.RouterGateway{NetworkID: "next", EnableSNAT: enableSNAT}}},
		AgentMode: northbound.ModeDVRSNAT,
	}
}

// applyOutput runs Manager.Apply(routers) in the helper and returns its log.
func (r *rig) applyOutput(routers []Router) string {
	r.t.Helper()
	out, err := r.applyLogged(routers)
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

// ourRules returns the rules with our protocol in ns, as "priority from/len table".
func (r *rig) ourRules(ns string) []string {
	r.t.Helper()
	var rules []struct {
		Priority int    `json:"priority"`
		Src      string `json:"src"`
		SrcLen   *int   `json:"srclen"` // absent for a host (/32, /128)
		Table    string `json:"table"`
		Protocol string `json:"protocol"`
	}
	r.ipJSON(&rules, "-n", ns, "rule", "show")
	var out []string
	for _, x := range rules {
		if x.Protocol == fmt.Sprint(RouteProtocol) {
			src := x.Src
			if x.SrcLen != nil {
				src += fmt.Sprintf("/%d", *x.SrcLen)
			}
			out = append(out, fmt.Sprintf("%d from %s table %s", x.Priority, src, x.Table))
		}
	}
	return out
}

// ourRoutes returns the routes with our protocol in ns, in every table.
func (r *rig) ourRoutes(ns string) []string {
	r.t.Helper()
	var routes []struct {
		Dst     string `json:"dst"`
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
		Table   string `json:"table"`
	}
	r.ipJSON(&routes, "-n", ns, "route", "show", "table", "all", "proto", fmt.Sprint(RouteProtocol))
	var out []string
	for _, x := range routes {
		s := x.Dst + " via " + x.Gateway + " dev " + x.Dev
		if x.Table != "" {
			s += " table " + x.Table
		}
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// nat returns `nft list ruleset` in ns.
func (r *rig) nat(ns string) string {
	r.t.Helper()
	return r.run("ip", "netns", "exec", ns, "nft", "list", "ruleset")
}

// firstEchoSource captures, in vm, the first ICMP echo request and returns its source
// address; send makes the traffic once the capture is listening.
func (r *rig) firstEchoSource(vm *sandbox.VM, send func()) string {
	r.t.Helper()
	out := r.capture(vm, nil, "icmp[icmptype] == icmp-echo", 1, send)
	// "12:00:00.000000 IP 203.0.113.10 > 203.0.113.1: ICMP echo request, ..."
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "IP" && i+1 < len(f) {
			return f[i+1]
		}
	}
	r.t.Fatalf("tcpdump in %s: no packet line in %q", vm.Name(), out)
	return ""
}

// capture runs tcpdump (with flags) in vm with filter until it has count packets, calling
// send once the capture is listening, and returns its lines.
func (r *rig) capture(vm *sandbox.VM, flags []string, filter string, count int, send func()) string {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 20*time.Second)
	defer cancel()
	args := append([]string{"-n", "-l", "-c", fmt.Sprint(count), "-i", sandbox.VMInterface}, flags...)
	cmd := vm.Command(ctx, "tcpdump", append(args, filter)...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	// tcpdump says "listening on" once its capture is open: from then on nothing is missed.
	sc := bufio.NewScanner(stderr)
	for sc.Scan() && !strings.Contains(sc.Text(), "listening on") {
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	send()
	out, _ := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil {
		r.t.Errorf("tcpdump %q in %s: %v (output %q)", filter, vm.Name(), err, out)
	}
	return string(out)
}

// northSouthHosts makes br-int (switching NORMAL) with VM1 on s1 and the external host on
// the external network plugged into it.
func (r *rig) northSouthHosts() (vm, ext *sandbox.VM) {
	r.t.Helper()
	r.vsctl("add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev", "fail_mode=secure")
	if _, err := r.h.Ofctl(r.ctx, "add-flow", testBridge, "priority=0,actions=NORMAL"); err != nil {
		r.t.Fatal(err)
	}
	vm, err := r.h.AddVM(r.ctx, sandbox.VMSpec{Name: "vm1", Bridge: testBridge, IfaceID: nsVM, MAC: nsVMMAC,
		CIDR: "10.0.1.11/24", Gateway: "10.0.1.1"})
	if err != nil {
		r.t.Fatal(err)
	}
	ext, err = r.h.AddVM(r.ctx, sandbox.VMSpec{Name: "ext", Bridge: testBridge, MAC: nsExtMAC, CIDR: "203.0.113.1/24"})
	if err != nil {
		r.t.Fatal(err)
	}
	return vm, ext
}

func TestSNATNamespace(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch, namespaces, nftables and packets")
	h := sandbox.StartForTest(t, "rsnat")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &rig{t: t, h: h, ctx: ctx}
	qrNS, snatNS := NamespaceName(snatRouter), SNATNamespaceName(snatRouter)
	qr, sg, qg := DeviceName(nsQR), SNATDeviceName(nsSG), GatewayDeviceName(nsQG)

	vm, ext := r.northSouthHosts()

	routers := Desired(northSouthTopology(true))
	if len(routers) != 1 || routers[0].SNAT == nil || len(routers[0].Rules) != 1 {
		t.Fatalf("Desired = %+v, want one router with a snat namespace and one redirect rule", routers)
	}
	r.mustApply(routers)

	// The namespaces; forwarding in snat-.
	if got := r.namespaces(); !slices.Contains(got, qrNS) || !slices.Contains(got, snatNS) {
		t.Fatalf("namespaces %v lack %s or %s", got, qrNS, snatNS)
	}
	for f, want := range map[string]string{
		"/proc/sys/net/ipv4/ip_forward":       "1",
		"/proc/sys/net/ipv4/ip_nonlocal_bind": "1",
	} {
		if got := r.run("ip", "netns", "exec", snatNS, "cat", f); got != want {
			t.Errorf("%s in %s = %s, want %s", f, snatNS, got, want)
		}
	}
	if got := r.run("ip", "netns", "exec", qrNS, "cat", "/proc/sys/net/ipv4/conf/"+qr+"/send_redirects"); got != "0" {
		t.Errorf("send_redirects of %s = %s, want 0 (it routes back out where it came in)", qr, got)
	}
	// The devices: in snat-, plugged into br-int like qr-.
	for _, w := range []struct{ ns, dev, port, mac, addr string }{
		{snatNS, qg, nsQG, nsQGMAC, "203.0.113.10/24"},
		{snatNS, sg, nsSG, nsSGMAC, "10.0.1.5/24"},
		{qrNS, qr, nsQR, nsQRMAC, "10.0.1.1/24"},
	} {
		l, ok := r.link(w.ns, w.dev)
		if !ok {
			t.Fatalf("no %s in %s", w.dev, w.ns)
		}
		if l.Address != w.mac || !slices.Equal(l.globalAddrs(), []string{w.addr}) || !slices.Contains(l.Flags, "UP") ||
			l.Linkinfo.Kind != "veth" {
			t.Errorf("%s in %s: %+v; want MAC %s, address %s, UP, veth", w.dev, w.ns, l, w.mac, w.addr)
		}
		for col, want := range map[string]string{
			"external_ids:iface-id":       `"` + w.port + `"`,
			"external_ids:attached-mac":   `"` + w.mac + `"`,
			"external_ids:dvrflow-owner":  OwnerValue,
			"external_ids:dvrflow-router": `"` + snatRouter + `"`,
		} {
			if got := r.vsctl("get", "Interface", w.dev, col); got != want {
				t.Errorf("Interface %s %s = %s, want %s", w.dev, col, got, want)
			}
		}
	}
	// The routes and rules: snat- has the default route via the external gateway;
	// qrouter- the redirect.
	if got, want := r.ourRoutes(snatNS), []string{"default via 203.0.113.1 dev " + qg}; !slices.Equal(got, want) {
		t.Errorf("our routes in %s: %q, want %q", snatNS, got, want)
	}
	if got, want := r.ourRules(qrNS), []string{snatIdx + " from 10.0.1.1/24 table " + snatIdx}; !slices.Equal(got, want) {
		t.Errorf("our rules in %s: %q, want %q", qrNS, got, want)
	}
	if got, want := r.ourRoutes(qrNS), []string{"default via 10.0.1.5 dev " + qr + " table " + snatIdx}; !slices.Equal(got, want) {
		t.Errorf("our routes in %s: %q, want %q", qrNS, got, want)
	}
	if got := r.ourRules(snatNS); len(got) != 0 {
		t.Errorf("rules in %s: %q, want none", snatNS, got)
	}
	// The NAT, in snat- only.
	natRules := r.nat(snatNS)
	if !strings.Contains(natRules, `oifname "`+qg+`" ip saddr 10.0.1.0/24 snat to 203.0.113.10`) {
		t.Errorf("nft ruleset in %s lacks the SNAT of 10.0.1.0/24 to 203.0.113.10 out of %s:\n%s", snatNS, qg, natRules)
	}
	if got := r.nat(qrNS); strings.Contains(got, "snat") {
		t.Errorf("nft ruleset in %s has NAT:\n%s", qrNS, got)
	}

	// Packets: VM1 → qr- (main table: no default) → the redirect rule → sg- → SNAT → qg- →
	// the external host, which sees the gateway IP as the source and, having no route
	// to 10.0.1.0/24, can only answer because of it.
	r.vsctl("set", "Port", "tapvm1", "tag=1", "--", "set", "Port", qr, "tag=1", "--", "set", "Port", sg, "tag=1",
		"--", "set", "Port", qg, "tag=3", "--", "set", "Port", "tapext", "tag=3")
	var pingErr error
	src := r.firstEchoSource(ext, func() { pingErr = vm.Ping(ctx, "203.0.113.1", 3) })
	if src != "203.0.113.10" {
		t.Errorf("the external host sees %s as the source of VM1's ping, want the gateway IP 203.0.113.10", src)
	}
	if pingErr != nil {
		t.Errorf("VM1 → external host through the SNAT: %v", pingErr)
	}

	// Apply again: nothing changes.
	snapshot := func() string {
		var b strings.Builder
		for _, d := range []struct{ ns, dev string }{{snatNS, qg}, {snatNS, sg}, {qrNS, qr}} {
			l, _ := r.link(d.ns, d.dev)
			fmt.Fprintf(&b, "%s ifindex=%d ofport=%s\n", d.dev, l.Ifindex, r.vsctl("get", "Interface", d.dev, "ofport"))
		}
		fmt.Fprintf(&b, "%q %q %q\n%s", r.ourRules(qrNS), r.ourRoutes(qrNS), r.ourRoutes(snatNS), r.run("ip", "netns", "exec", snatNS, "nft", "-a", "list", "ruleset"))
		return b.String()
	}
	before := snapshot()
	if out := r.applyOutput(routers); !strings.Contains(out, `"changes": 0`) {
		t.Errorf("second Apply changed something (want \"changes\": 0 in its log):\n%s", out)
	}
	if after := snapshot(); after != before {
		t.Errorf("second Apply changed the host:\n%s\nwas\n%s", after, before)
	}

	// enable_snat false: the NAT goes, the rest stays; the external host now sees the VM's
	// own address and cannot answer.
	r.mustApply(Desired(northSouthTopology(false)))
	if got := r.nat(snatNS); strings.Contains(got, "snat") || strings.Contains(got, "dvrflow-nat") {
		t.Errorf("nft ruleset in %s with enable_snat false:\n%s", snatNS, got)
	}
	if _, ok := r.link(snatNS, qg); !ok {
		t.Errorf("%s gone from %s with enable_snat false", qg, snatNS)
	}
	if got := r.ourRules(qrNS); len(got) != 1 {
		t.Errorf("redirect rules with enable_snat false: %q, want the one", got)
	}
	src = r.firstEchoSource(ext, func() { pingErr = vm.Ping(ctx, "203.0.113.1", 1) })
	if src != "10.0.1.11" {
		t.Errorf("with enable_snat false the external host sees %s as the source, want VM1's own 10.0.1.11", src)
	}
	if pingErr == nil {
		t.Error("with enable_snat false VM1's ping was answered; the external host has no route back")
	}

	// The gateway removed: snat- goes with its devices and br-int ports, the redirect's
	// rule and route go; qrouter- and qr- stay.
	in := northSouthTopology(true)
	in.Routers[0].Gateway = nil
	routers = Desired(in)
	r.mustApply(routers)
	if got := r.namespaces(); slices.Contains(got, snatNS) || !slices.Contains(got, qrNS) {
		t.Errorf("namespaces without a gateway: %v; want %s and not %s", got, qrNS, snatNS)
	}
	for _, dev := range []string{qg, sg} {
		if _, ok := r.link("", dev); ok {
			t.Errorf("host end %s still exists without a gateway", dev)
		}
		if slices.Contains(r.ports(), dev) {
			t.Errorf("br-int still has %s without a gateway", dev)
		}
	}
	if got := r.ourRules(qrNS); len(got) != 0 {
		t.Errorf("rules left in %s without a gateway: %q", qrNS, got)
	}
	if got := r.ourRoutes(qrNS); len(got) != 0 {
		t.Errorf("routes left in %s without a gateway: %q", qrNS, got)
	}
	if _, ok := r.link(qrNS, qr); !ok {
		t.Errorf("%s gone from %s with the gateway", qr, qrNS)
	}
	if got := r.ports(); !slices.Equal(got, []string{qr, "tapext", "tapvm1"}) {
		t.Errorf("br-int ports without a gateway: %v, want %s tapext tapvm1", got, qr)
	}

	// Nothing at all: everything of ours goes, the VMs' ports stay.
	r.mustApply(nil)
	if got := r.namespaces(); slices.Contains(got, qrNS) || slices.Contains(got, snatNS) {
		t.Errorf("namespaces with no routers: %v", got)
	}
	if got := r.ports(); !slices.Equal(got, []string{"tapext", "tapvm1"}) {
		t.Errorf("br-int ports with no routers: %v, want tapext tapvm1", got)
	}
}

// TestSNATNamespaceRepairs checks that what is changed by hand in a snat namespace is put
// back (a deleted device, a deleted route, a rule of ours that is not wanted), that a rule
// and route of someone else are left alone, and that a snat namespace of ours whose router
// has gone is removed even when the qrouter namespace stays.
func TestSNATNamespaceRepairs(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch and namespaces")
	h := sandbox.StartForTest(t, "rsnatfix")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &rig{t: t, h: h, ctx: ctx}
	qrNS, snatNS := NamespaceName(snatRouter), SNATNamespaceName(snatRouter)
	qr, sg, qg := DeviceName(nsQR), SNATDeviceName(nsSG), GatewayDeviceName(nsQG)
	r.vsctl("add-br", testBridge, "--", "set", "bridge", testBridge, "datapath_type=netdev", "fail_mode=secure")
	routers := Desired(northSouthTopology(true))
	r.mustApply(routers)
	wantQRRoutes, wantSNATRoutes, wantRules := r.ourRoutes(qrNS), r.ourRoutes(snatNS), r.ourRules(qrNS)

	// Damage: sg- deleted, the default route in snat- deleted, a stray rule and route of
	// ours, and someone else's rule and route in qrouter-.
	r.run("ip", "-n", snatNS, "link", "delete", sg)
	r.run("ip", "-n", snatNS, "route", "del", "default")
	r.run("ip", "-n", qrNS, "rule", "add", "from", "10.0.9.0/24", "table", "99", "priority", "40000", "protocol", fmt.Sprint(RouteProtocol))
	r.run("ip", "-n", qrNS, "route", "add", "10.0.9.0/24", "via", "10.0.1.9", "dev", qr, "table", "99", "proto", fmt.Sprint(RouteProtocol))
	r.run("ip", "-n", qrNS, "rule", "add", "from", "10.0.8.0/24", "table", "98", "priority", "40001")
	r.run("ip", "-n", qrNS, "route", "add", "10.0.8.0/24", "via", "10.0.1.8", "dev", qr, "table", "98")
	r.mustApply(routers)
	if l, ok := r.link(snatNS, sg); !ok || !slices.Equal(l.globalAddrs(), []string{"10.0.1.5/24"}) {
		t.Errorf("%s not recreated: %+v (present %v)", sg, l, ok)
	}
	if got := r.vsctl("get", "Interface", sg, "ofport"); got == "-1" || got == "[]" {
		t.Errorf("%s not re-plugged: ofport %s", sg, got)
	}
	if got := r.ourRoutes(snatNS); !slices.Equal(got, wantSNATRoutes) {
		t.Errorf("routes in %s after repair: %q, want %q", snatNS, got, wantSNATRoutes)
	}
	if got := r.ourRoutes(qrNS); !slices.Equal(got, wantQRRoutes) {
		t.Errorf("our routes in %s after repair: %q, want %q", qrNS, got, wantQRRoutes)
	}
	if got := r.ourRules(qrNS); !slices.Equal(got, wantRules) {
		t.Errorf("our rules in %s after repair: %q, want %q", qrNS, got, wantRules)
	}
	if got := r.run("ip", "-n", qrNS, "rule", "show", "priority", "40001"); !strings.Contains(got, "from 10.0.8.0/24 lookup 98") {
		t.Errorf("someone else's rule was touched: %q", got)
	}
	if got := r.run("ip", "-n", qrNS, "route", "show", "table", "98"); !strings.Contains(got, "10.0.8.0/24 via 10.0.1.8") {
		t.Errorf("someone else's route was touched: %q", got)
	}
	if _, ok := r.link(snatNS, qg); !ok {
		t.Errorf("%s missing in %s", qg, snatNS)
	}

	// The snat namespace deleted by hand: rebuilt, NAT included.
	r.run("ip", "netns", "delete", snatNS)
	r.mustApply(routers)
	if got := r.nat(snatNS); !strings.Contains(got, "snat to 203.0.113.10") {
		t.Errorf("NAT not rebuilt in %s:\n%s", snatNS, got)
	}
	if got := r.ourRoutes(snatNS); !slices.Equal(got, wantSNATRoutes) {
		t.Errorf("routes in the rebuilt %s: %q, want %q", snatNS, got, wantSNATRoutes)
	}

	// The host becomes a dvr node: snat- goes, qrouter- stays.
	in := northSouthTopology(true)
	in.AgentMode = northbound.ModeDVR
	r.mustApply(Desired(in))
	if got := r.namespaces(); slices.Contains(got, snatNS) || !slices.Contains(got, qrNS) {
		t.Errorf("namespaces on a dvr node: %v; want %s and not %s", got, qrNS, snatNS)
	}
	if got := r.ourRules(qrNS); !slices.Equal(got, wantRules) {
		t.Errorf("the redirect on a dvr node: %q, want %q (the sg- port is still the router's)", got, wantRules)
	}
	r.mustApply(nil)
	if got := r.ports(); len(got) != 0 {
		t.Errorf("br-int ports left: %v", got)
	}
}
