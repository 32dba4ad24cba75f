package namespace

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/state"
)

// The floating IP topology: the north-south one (a dvr_snat host with router R, VM1 behind
// it, R's snat namespace and an external host 203.0.113.1) plus this host's floating IP
// agent gateway port on the external network (fg- 203.0.113.20), a second VM port (VM2,
// 10.0.1.12, no VM behind it: its floating IP is only announced), and the floating IPs
// 203.0.113.50 → VM1 and 203.0.113.51 → VM2 as the test asks.
const (
	fipTestHost = "host-1"
	nsFG        = "6c6c6c6c-0006-4000-8000-000000000006"
	nsFGMAC     = "fa:16:3e:dd:00:06"
	nsVM2       = "7d7d7d7d-0007-4000-8000-000000000007"
	nsVM2MAC    = "fa:16:3e:dd:00:07"
	fipA        = "f1f1f1f1-000a-4000-8000-00000000000a"
	fipB        = "f2f2f2f2-000b-4000-8000-00000000000b"
	fipAAddr    = "203.0.113.50"
	fipBAddr    = "203.0.113.51"
)

// fipTopology returns the routers' input and the floating IP input with the floating IPs
// named (fipA, fipB or none).
func fipTopology(fips ...string) (Input, FIPInput) {
	in := northSouthTopology(true)
	in.LocalPorts = append(in.LocalPorts,
		state.Port{ID: nsFG, NetworkID: "next", MAC: mac(nsFGMAC), DeviceOwner: northbound.OwnerFloatingIPAgentGateway,
			DeviceID: fipTestHost, FixedIPs: []state.FixedIP{fip("ext", "203.0.113.20")}},
		state.Port{ID: nsVM2, NetworkID: "n1", MAC: mac(nsVM2MAC), DeviceOwner: "compute:nova", DeviceID: "vm-2",
			FixedIPs: []state.FixedIP{fip("s1", "10.0.1.12")}})
	all := map[string]northbound.FloatingIP{
		fipA: {ID: fipA, Address: netip.MustParseAddr(fipAAddr), NetworkID: "next", RouterID: snatRouter, PortID: nsVM,
			FixedIP: netip.MustParseAddr("10.0.1.11"), Host: fipTestHost},
		fipB: {ID: fipB, Address: netip.MustParseAddr(fipBAddr), NetworkID: "next", RouterID: snatRouter, PortID: nsVM2,
			FixedIP: netip.MustParseAddr("10.0.1.12"), Host: fipTestHost},
	}
	fin := FIPInput{Host: fipTestHost, Routers: in.Routers, LocalPorts: in.LocalPorts, Subnets: in.Subnets, Networks: in.Networks}
	for _, id := range fips {
		fin.FloatingIPs = append(fin.FloatingIPs, all[id])
	}
	return in, fin
}

// applyFIP runs the helper as the agent runs a reconcile: a new Manager, the allocators
// reopened on dir, the held floating IPs read back, DesiredFIP, Apply. It returns the log.
func (r *rig) applyFIP(dir string, fips ...string) string {
	r.t.Helper()
	in, fin := fipTopology(fips...)
	out, err := r.applyRequest(helperRequest{Routers: Desired(in), FIP: &fin, StateDir: dir})
	if err != nil {
		r.t.Fatal(err)
	}
	return out
}

func TestFloatingIPNamespaces(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch, namespaces, nftables and packets")
	h := sandbox.StartForTest(t, "rfip")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r := &rig{t: t, h: h, ctx: ctx}
	dir := t.TempDir() // the agent's state_path
	qrNS, fipNS := NamespaceName(snatRouter), FIPNamespaceName("next")
	qr, sg, qg, fg := DeviceName(nsQR), SNATDeviceName(nsSG), GatewayDeviceName(nsQG), FIPGatewayDeviceName(nsFG)
	rfp, fpr := RouterToFIPDeviceName(snatRouter), FIPToRouterDeviceName(snatRouter)
	// The host comes from Neutron's L3 agent: its state_path holds a pair for R and a
	// priority for A that are not the pools' first (Neutron hands out arbitrary ones), and
	// a line it cannot read. They are kept; B gets the lowest free priority.
	const rtrEnd, fipEnd, prioA, prioB = "169.254.64.6", "169.254.64.7", "32770", "32768"
	pair := LinkLocalPair{Net: netip.MustParsePrefix(rtrEnd + "/31")}
	table := fmt.Sprint(pair.FIPTable())
	llFile, prioFile := snatRouter+","+rtrEnd+"/31\n", fipAAddr+","+prioA+"\n"
	if err := os.WriteFile(filepath.Join(dir, LinkLocalFile), []byte(llFile+"garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, FIPPriorityFile), []byte(prioFile), 0o644); err != nil {
		t.Fatal(err)
	}

	vm, ext := r.northSouthHosts()

	// Floating IP A on VM1.
	if out := r.applyFIP(dir, fipA); !strings.Contains(out, LinkLocalFile+`:2: \"garbage\" skipped`) {
		t.Errorf("the helper did not log the skipped line of %s by file and line:\n%s", LinkLocalFile, out)
	}
	if got := r.namespaces(); !slices.Contains(got, fipNS) || !slices.Contains(got, qrNS) {
		t.Fatalf("namespaces %v lack %s or %s", got, fipNS, qrNS)
	}
	// fip-: fg- plugged like qr-, proxy ARP on; the pair's ends with their /31.
	if l, ok := r.link(fipNS, fg); !ok || l.Address != nsFGMAC || !slices.Equal(l.globalAddrs(), []string{"203.0.113.20/24"}) ||
		!slices.Contains(l.Flags, "UP") {
		t.Errorf("%s in %s: %+v (present %v); want MAC %s, 203.0.113.20/24, UP", fg, fipNS, l, ok, nsFGMAC)
	}
	for col, want := range map[string]string{
		"external_ids:iface-id":            `"` + nsFG + `"`,
		"external_ids:attached-mac":        `"` + nsFGMAC + `"`,
		"external_ids:dvrflow-owner":       OwnerValue,
		"external_ids:dvrflow-fip-network": "next",
	} {
		if got := r.vsctl("get", "Interface", fg, col); got != want {
			t.Errorf("Interface %s %s = %s, want %s", fg, col, got, want)
		}
	}
	for f, want := range map[string]string{
		"/proc/sys/net/ipv4/conf/" + fg + "/proxy_arp": "1",
		"/proc/sys/net/ipv4/ip_forward":                "1",
		"/proc/sys/net/ipv4/ip_nonlocal_bind":          "1",
	} {
		if got := r.run("ip", "netns", "exec", fipNS, "cat", f); got != want {
			t.Errorf("%s in %s = %s, want %s", f, fipNS, got, want)
		}
	}
	// 10 ms: 1 in USER_HZ ticks, read back as 0 when the kernel's HZ rounds it down.
	if got := r.run("ip", "netns", "exec", fipNS, "cat", "/proc/sys/net/ipv4/neigh/"+fg+"/proxy_delay"); got != "1" && got != "0" {
		t.Errorf("proxy_delay of %s = %s, want 1 (or 0: 10 ms rounded down)", fg, got)
	}
	rl, ok1 := r.link(qrNS, rfp)
	fl, ok2 := r.link(fipNS, fpr)
	if !ok1 || !ok2 || !slices.Equal(rl.globalAddrs(), []string{rtrEnd + "/31"}) || !slices.Equal(fl.globalAddrs(), []string{fipEnd + "/31"}) ||
		rl.MTU != 1500 || fl.MTU != 1500 {
		t.Errorf("the pair: %s %+v (present %v), %s %+v (present %v); want %s/31 and %s/31 (from the file), MTU 1500",
			rfp, rl, ok1, fpr, fl, ok2, rtrEnd, fipEnd)
	}
	if got, want := r.permanentNeighbours(qrNS), rfp+" "+fipEnd+" "+fl.Address; !slices.Contains(got, want) {
		t.Errorf("permanent neighbours in %s: %q, want %q among them", qrNS, got, want)
	}
	if got, want := r.permanentNeighbours(fipNS), []string{fpr + " " + rtrEnd + " " + rl.Address}; !slices.Equal(got, want) {
		t.Errorf("permanent neighbours in %s: %q, want %q", fipNS, got, want)
	}
	// Rules and routes: qrouter- has the floating IP's rule and table 16 beside the SNAT
	// redirect; fip- routes the floating IP to rfp- and what comes from fpr- out of fg-.
	wantQRRules := []string{prioA + " from 10.0.1.11 table 16", snatIdx + " from 10.0.1.1/24 table " + snatIdx}
	if got := r.ourRules(qrNS); !slices.Equal(got, wantQRRules) {
		t.Errorf("our rules in %s: %q, want %q", qrNS, got, wantQRRules)
	}
	wantQRRoutes := []string{"default via 10.0.1.5 dev " + qr + " table " + snatIdx, "default via " + fipEnd + " dev " + rfp + " table 16"}
	if got := r.ourRoutes(qrNS); !slices.Equal(got, wantQRRoutes) {
		t.Errorf("our routes in %s: %q, want %q", qrNS, got, wantQRRoutes)
	}
	if got := r.run("ip", "-n", fipNS, "rule", "show", "iif", fpr); !strings.Contains(got, table+":\tfrom all iif "+fpr+" lookup "+table) {
		t.Errorf("rules of %s in %s: %q, want priority and table %s", fpr, fipNS, got, table)
	}
	wantFIPRoutes := []string{fipAAddr + " via " + rtrEnd + " dev " + fpr, "default via 203.0.113.1 dev " + fg + " table " + table}
	slices.Sort(wantFIPRoutes)
	if got := r.ourRoutes(fipNS); !slices.Equal(got, wantFIPRoutes) {
		t.Errorf("our routes in %s: %q, want %q", fipNS, got, wantFIPRoutes)
	}
	natRules := r.nat(qrNS)
	for _, want := range []string{`iifname "` + rfp + `" ip daddr ` + fipAAddr + ` dnat to 10.0.1.11`,
		`oifname "` + rfp + `" ip saddr 10.0.1.11 snat to ` + fipAAddr} {
		if !strings.Contains(natRules, want) {
			t.Errorf("nft ruleset in %s lacks %q:\n%s", qrNS, want, natRules)
		}
	}
	// The allocations are in Neutron's files.
	if got := readFile(t, filepath.Join(dir, LinkLocalFile)); got != llFile {
		t.Errorf("%s = %q, want %q (the bad line dropped)", LinkLocalFile, got, llFile)
	}
	if got := readFile(t, filepath.Join(dir, FIPPriorityFile)); got != prioFile {
		t.Errorf("%s = %q, want %q", FIPPriorityFile, got, prioFile)
	}

	// Packets. Play the L2 agent: s1 on VLAN 1, the external network on 3.
	r.vsctl("set", "Port", "tapvm1", "tag=1", "--", "set", "Port", qr, "tag=1", "--", "set", "Port", sg, "tag=1",
		"--", "set", "Port", qg, "tag=3", "--", "set", "Port", "tapext", "tag=3", "--", "set", "Port", fg, "tag=3")
	// The external host pings the floating IP: fg- answers its ARP (proxy ARP), fip-
	// routes it to qrouter-, the DNAT hands it to VM1, and the reply goes back the same way.
	if err := ext.Ping(ctx, fipAAddr, 3); err != nil {
		t.Errorf("external host → floating IP %s: %v", fipAAddr, err)
	}
	if out, err := ext.Run(ctx, "ip", "neigh", "show", fipAAddr); err != nil || !strings.Contains(out, nsFGMAC) {
		t.Errorf("the external host's ARP entry for %s is not fg-'s MAC %s: %q %v", fipAAddr, nsFGMAC, out, err)
	}
	// VM1's own traffic leaves with the floating IP as its source (not the gateway IP of
	// the SNAT namespace).
	var pingErr error
	if src := r.firstEchoSource(ext, func() { pingErr = vm.Ping(ctx, "203.0.113.1", 2) }); src != fipAAddr {
		t.Errorf("the external host sees %s as the source of VM1's ping, want its floating IP %s", src, fipAAddr)
	}
	if pingErr != nil {
		t.Errorf("VM1 → external host through its floating IP: %v", pingErr)
	}

	// A restart with the same state (a new Manager, the allocators reopened): nothing
	// changes, nothing is announced, the pair and the priority are the same.
	snapshot := func() string {
		var b strings.Builder
		for _, d := range []struct{ ns, dev string }{{fipNS, fg}, {fipNS, fpr}, {qrNS, rfp}, {qrNS, qr}} {
			l, _ := r.link(d.ns, d.dev)
			fmt.Fprintf(&b, "%s ifindex=%d addrs=%v\n", d.dev, l.Ifindex, l.globalAddrs())
		}
		fmt.Fprintf(&b, "%q %q %q %q\n%s", r.ourRules(qrNS), r.ourRoutes(qrNS), r.ourRoutes(fipNS),
			r.run("ip", "-n", fipNS, "rule", "show"), r.run("ip", "netns", "exec", qrNS, "nft", "-a", "list", "ruleset"))
		return b.String()
	}
	before := snapshot()
	out := r.applyFIP(dir, fipA)
	if !strings.Contains(out, `"changes": 0`) || !strings.Contains(out, `"announce": 0`) || strings.Contains(out, "gratuitous ARP sent") {
		t.Errorf("a restart with the same state changed or announced something (want \"changes\": 0, \"announce\": 0):\n%s", out)
	}
	if after := snapshot(); after != before {
		t.Errorf("a restart changed the host:\n%s\nwas\n%s", after, before)
	}

	// Floating IP B added (on VM2): a gratuitous ARP for it from fg-, seen on the external
	// network; A is held and not announced again.
	garp := r.capture(ext, []string{"-e"}, "arp src host "+fipBAddr, 2, func() { out = r.applyFIP(dir, fipA, fipB) })
	if !strings.Contains(garp, nsFGMAC+" > ff:ff:ff:ff:ff:ff") || !strings.Contains(garp, "Request who-has "+fipBAddr+" (ff:ff:ff:ff:ff:ff) tell "+fipBAddr) ||
		!strings.Contains(garp, "Reply "+fipBAddr+" is-at "+nsFGMAC) {
		t.Errorf("no gratuitous ARP request and reply for %s from %s on the external network:\n%s", fipBAddr, nsFGMAC, garp)
	}
	if strings.Contains(out, fipAAddr+`", "namespace"`) || strings.Count(out, "gratuitous ARP sent") != 1 {
		t.Errorf("want exactly one gratuitous ARP (for %s), log:\n%s", fipBAddr, out)
	}
	if got := r.ourRules(qrNS); !slices.Contains(got, prioB+" from 10.0.1.12 table 16") {
		t.Errorf("our rules in %s with B: %q, want B's at %s", qrNS, got, prioB)
	}

	// B removed: its rule, route and NAT go; A and the namespace stay.
	r.applyFIP(dir, fipA)
	if got := r.ourRules(qrNS); !slices.Equal(got, wantQRRules) {
		t.Errorf("our rules in %s after removing B: %q, want %q", qrNS, got, wantQRRules)
	}
	if got := r.ourRoutes(fipNS); !slices.Equal(got, wantFIPRoutes) {
		t.Errorf("our routes in %s after removing B: %q, want %q", fipNS, got, wantFIPRoutes)
	}
	if got := r.nat(qrNS); strings.Contains(got, fipBAddr) || !strings.Contains(got, fipAAddr) {
		t.Errorf("nft ruleset in %s after removing B (want A's NAT only):\n%s", qrNS, got)
	}
	if got := readFile(t, filepath.Join(dir, FIPPriorityFile)); got != prioFile {
		t.Errorf("%s after removing B = %q", FIPPriorityFile, got)
	}

	// A removed too, the last floating IP: the fip- namespace, fg-'s br-int port, the pair,
	// the rules, routes and NAT of A go; VM1 falls back to the SNAT namespace.
	r.applyFIP(dir)
	if got := r.namespaces(); slices.Contains(got, fipNS) || !slices.Contains(got, qrNS) {
		t.Errorf("namespaces without floating IPs: %v; want %s and not %s", got, qrNS, fipNS)
	}
	if got := r.ports(); slices.Contains(got, fg) {
		t.Errorf("br-int still has %s without floating IPs: %v", fg, got)
	}
	if _, ok := r.link("", fg); ok {
		t.Errorf("host end %s still exists without floating IPs", fg)
	}
	if _, ok := r.link(qrNS, rfp); ok {
		t.Errorf("%s still in %s without floating IPs", rfp, qrNS)
	}
	if got, want := r.ourRules(qrNS), wantQRRules[1:]; !slices.Equal(got, want) {
		t.Errorf("our rules in %s without floating IPs: %q, want %q", qrNS, got, want)
	}
	if got, want := r.ourRoutes(qrNS), wantQRRoutes[:1]; !slices.Equal(got, want) {
		t.Errorf("our routes in %s without floating IPs: %q, want %q", qrNS, got, want)
	}
	if got := r.nat(qrNS); strings.Contains(got, "dvrflow") || strings.Contains(got, "nat") {
		t.Errorf("nft ruleset in %s without floating IPs:\n%s", qrNS, got)
	}
	for _, f := range []string{LinkLocalFile, FIPPriorityFile} {
		if got := readFile(t, filepath.Join(dir, f)); got != "" {
			t.Errorf("%s without floating IPs = %q, want empty (released)", f, got)
		}
	}
	if src := r.firstEchoSource(ext, func() { pingErr = vm.Ping(ctx, "203.0.113.1", 2) }); src != "203.0.113.10" {
		t.Errorf("without its floating IP the external host sees %s as VM1's source, want the SNAT gateway IP 203.0.113.10", src)
	}
	if pingErr != nil {
		t.Errorf("VM1 → external host through the SNAT after its floating IP went: %v", pingErr)
	}

	r.mustApply(nil)
	if got := r.ports(); !slices.Equal(got, []string{"tapext", "tapvm1"}) {
		t.Errorf("br-int ports with nothing wanted: %v", got)
	}
}
