package e2e

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// The hosts of TestNeutronParity: dvrflow-agent on one, Neutron's agent on an identical
// other, and a third host (Neutron's agent) whose VMs make both of them l2pop peers. Their
// names and underlay addresses are this test's alone in the shared test bed.
var (
	parityOurs   = neutron.HostOptions{Name: "parity-dvrflow", LocalIP: netip.MustParsePrefix("10.255.0.41/24")}
	parityTheirs = neutron.HostOptions{Name: "parity-python", LocalIP: netip.MustParsePrefix("10.255.0.42/24")}
	parityThird  = neutron.HostOptions{Name: "parity-peer", LocalIP: netip.MustParsePrefix("10.255.0.43/24")}
)

// parityBridges are the bridges compared: br-int, br-tun and the physical bridge.
var parityBridges = []string{"br-int", "br-tun", "br-vlan"}

// parityMustHave are pieces of flows Neutron's agent must have installed for the comparison
// to mean anything: the DVR flows of the VMs on both networks (I30/I31), the router
// interfaces' rewrites (T22/P11), the l2pop tunnels to both peers, the ARP responder.
var parityMustHave = map[string][]string{
	"br-int":  {"table=1, priority=20,dl_vlan=LV(vxlan-net),dl_dst=MAC(vm-vxlan)", ",dl_dst=MAC(vm-vlan) actions=set_field:", "table=60, priority=20,dl_vlan=LV(vxlan-net),dl_dst=MAC(vm-vxlan)"},
	"br-tun":  {"output:tun-peer", "output:tun-third", "actions=set_field:DVRMAC(self)->eth_src", "table=21, priority=1,arp,dl_vlan=LV(vxlan-net),arp_tpa=IP(peer-vm-vxlan)"},
	"br-vlan": {"actions=set_field:DVRMAC(self)->eth_src", "dl_src=DVRMAC(peer) actions=output:", "table=2, priority=4,in_port="},
}

// parityKinds are the two networks of the test, by role.
var parityKinds = []string{"vlan", "vxlan"}

// parityHost is one of the two compared hosts, with its ports by role.
type parityHost struct {
	name string
	h    *neutron.AgentHost
	vms  map[string]*neutron.Port // by network kind
	vmns map[string]*sandbox.VM
}

// TestNeutronParity is issue 18's live parity: two identical hosts under one
// neutron-server, one running Neutron's Open vSwitch agent and one dvrflow-agent (both with
// firewall_driver = noop, vxlan + l2population + DVR + ARP responder, physnet1:br-vlan),
// each given the same kinds of ports over the REST API: a VM on a VLAN network and one on a
// VXLAN network, the interfaces of a distributed router on both (qr- ports plugged after the
// L3 agent's sync_routers, as the L3 agent does), and VMs on a third host so that both have
// l2pop peers. Once the ports are ACTIVE and the flows settle, br-int, br-tun and br-vlan of
// the two hosts must hold the same flows after normalisation (cookies blanked, ofports and
// port names, local VLANs, MACs and IPs mapped by role), except the differences documented
// in docs/neutron-differences.md (dvr.Explain). Then a VM on the VLAN network behind one
// agent pings a VM on the VXLAN network behind the other, routed by DVR on both. The flows are
// compared again once the third host's last VXLAN port is deleted (l2pop removal), and once
// the router's VXLAN interface is removed (Neutron then keeps a stale flow, documented).
func TestNeutronParity(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	cloud := neutronCloud(t)
	api := cloud.Client
	begin := time.Now()
	mark := begin
	step := func(what string) {
		t.Logf("%-52s %6.1fs (total %.1fs)", what, time.Since(mark).Seconds(), time.Since(begin).Seconds())
		mark = time.Now()
	}

	mappings := map[string]string{"physnet1": "br-vlan"}
	hosts := map[string]*neutron.AgentHost{}
	for _, o := range []neutron.HostOptions{parityOurs, parityTheirs, parityThird} {
		o.BridgeMappings = mappings
		h, err := cloud.AddHost(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		hosts[o.Name] = h
	}
	// dvrflow-agent and the third host's agent start together (dvrflow consumes the
	// notifications before it asks for the DVR MACs, so it learns the third host's whenever
	// that registers); Neutron's agent on the compared host starts last: it only listens
	// after it has fetched the DVR MACs, and would never learn of a host registering in
	// between (docs/neutron-differences.md, "DVR hosts that register while the agent
	// starts").
	opts := neutron.AgentOptions{FirewallDriver: "noop"}
	// Neutron's agents stop with the test (the test bed runs on for the package's other
	// tests); dvrflow-agent's cleanup stops it.
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		for _, name := range []string{parityTheirs.Name, parityThird.Name} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				if err := hosts[name].StopNeutronAgent(ctx); err != nil {
					t.Errorf("stop Neutron's agent on %s: %v", name, err)
				}
				t.Logf("Neutron's agent on %s stopped in %s", name, time.Since(t0).Round(time.Millisecond))
			}()
		}
		wg.Wait()
	})
	thirdUp := make(chan error, 1)
	go func() {
		_, err := hosts[parityThird.Name].StartNeutronAgent(ctx, opts)
		thirdUp <- err
	}()
	agentLog := startNeutronModeAgent(t, hosts[parityOurs.Name], opts)
	if _, err := api.WaitAgentAlive(ctx, parityOurs.Name, neutron.AgentTypeOVS, begin); err != nil {
		t.Fatal(err)
	}
	errs := []error{<-thirdUp, nil}
	if errs[0] == nil {
		_, errs[1] = hosts[parityTheirs.Name].StartNeutronAgent(ctx, opts)
	}
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	step("hosts added, agents alive")

	// A VLAN provider network (Neutron picks the VLAN from physnet1's range) and a VXLAN
	// tenant network, a subnet on each, a distributed router with an interface on both.
	vlanNet, err := api.CreateNetwork(ctx, neutron.NetworkRequest{Name: "parity-vlan", NetworkType: "vlan", PhysicalNetwork: "physnet1"})
	if err != nil {
		t.Fatal(err)
	}
	vxlanNet, err := api.CreateNetwork(ctx, neutron.NetworkRequest{Name: "parity-vxlan"})
	if err != nil {
		t.Fatal(err)
	}
	networks := map[string]*neutron.Network{"vlan": vlanNet, "vxlan": vxlanNet}
	subnets := map[string]*neutron.Subnet{}
	for i, kind := range parityKinds {
		s, err := api.CreateSubnet(ctx, neutron.SubnetRequest{Name: "parity-" + kind, NetworkID: networks[kind].ID,
			CIDR: fmt.Sprintf("10.%d.0.0/24", 141+i)})
		if err != nil {
			t.Fatal(err)
		}
		subnets[kind] = s
	}
	router, err := api.CreateRouter(ctx, neutron.RouterRequest{Name: "parity-router", Distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	qr := map[string]*neutron.Port{}
	for _, kind := range parityKinds {
		ifc, err := api.AddRouterInterface(ctx, router.ID, subnets[kind].ID)
		if err != nil {
			t.Fatal(err)
		}
		if qr[kind], err = api.GetPort(ctx, ifc.PortID); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("VLAN network %s (segment %v), VXLAN network %s (VNI %v), router %s",
		vlanNet.ID, deref(vlanNet.SegmentationID), vxlanNet.ID, deref(vxlanNet.SegmentationID), router.ID)

	// A VM port on each network on each host, bound at creation (as Nova does).
	compared := []*parityHost{{name: parityOurs.Name}, {name: parityTheirs.Name}}
	all := append(slices.Clone(compared), &parityHost{name: parityThird.Name})
	for hi, ph := range all {
		ph.h, ph.vms, ph.vmns = hosts[ph.name], map[string]*neutron.Port{}, map[string]*sandbox.VM{}
		for ki, kind := range parityKinds {
			p, err := api.CreatePort(ctx, neutron.PortRequest{Name: ph.name + "-" + kind, NetworkID: networks[kind].ID,
				DeviceOwner: "compute:nova", DeviceID: fmt.Sprintf("00000000-0000-4000-8000-0000000041%d%d", hi, ki), HostID: ph.name})
			if err != nil {
				t.Fatal(err)
			}
			if p.VIFType != "ovs" {
				t.Fatalf("port %s on %s bound with vif_type %q", p.Name, ph.name, p.VIFType)
			}
			ph.vms[kind] = p
		}
	}
	// The L3 agent's part on the two compared hosts: sync_routers binds the router's
	// interfaces there (the hosts have VMs on its subnets).
	for _, ph := range compared {
		if err := ph.h.RegisterDVRL3Agent(ctx); err != nil {
			t.Fatal(err)
		}
	}
	step("networks, router, ports, L3 agents")

	// Plug: the VMs everywhere, the router's qr- ports on the compared hosts.
	for _, ph := range all {
		for _, kind := range parityKinds {
			vm, err := ph.h.PlugVM(ctx, ph.vms[kind], subnets[kind], networks[kind].MTU)
			if err != nil {
				t.Fatal(err)
			}
			ph.vmns[kind] = vm
		}
	}
	for _, ph := range compared {
		for _, kind := range parityKinds {
			if err := ph.h.PlugInternal(ctx, qrName(qr[kind]), qr[kind]); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, ph := range all {
		for _, kind := range parityKinds {
			if _, err := api.WaitPortStatus(ctx, ph.vms[kind].ID, "ACTIVE"); err != nil {
				t.Fatalf("VM port on %s (%s network): %v", ph.name, kind, err)
			}
		}
	}
	step("plugged, every VM port ACTIVE")

	// Converged: each compared host has the DVR rewrite of both router interfaces, and no
	// bridge of either changes for a few seconds.
	for _, ph := range compared {
		waitFor(t, 60*time.Second, "DVR flows of both router interfaces on "+ph.name, func() error {
			for _, c := range []struct{ br, mac string }{{"br-tun", qr["vxlan"].MACAddress}, {"br-vlan", qr["vlan"].MACAddress}} {
				if fl, err := flowsWith(ctx, ph.h.Sandbox(), c.br, "table=1,", "dl_src="+c.mac, "actions=set_field:"); err != nil || len(fl) == 0 {
					return fmt.Errorf("no DVR MAC rewrite for %s on %s (%v)", c.mac, c.br, err)
				}
			}
			return nil
		})
	}
	settled := waitFlowsSettled(t, ctx, compared, 4*time.Second, 90*time.Second)
	step(fmt.Sprintf("flows settled (%d dumps)", settled))

	// Compare, Neutron's host as the reference.
	ours, theirs := compared[0], compared[1]
	compareParity(t, ctx, compared, qr, parityMustHave, false)
	step("compared br-int, br-tun, br-vlan")

	// The device details lack device_id: dvrflow learned the router ports' routers either
	// from the server's Port pushes (which carry device_id) or, for a port it had no push
	// for, by pulling its Port object from the real server.
	if data, err := os.ReadFile(agentLog); err != nil {
		t.Error(err)
	} else if log := string(data); strings.Contains(log, "bulk_pull Port failed") ||
		!(regexp.MustCompile(`routers of the router ports.*"found": [1-9]`).MatchString(log) ||
			pushedAll(log, qr["vlan"].ID, qr["vxlan"].ID)) {
		t.Errorf("dvrflow-agent learned its router ports' routers neither from the Port pushes nor by bulk_pull Port: see its log")
	}

	// Routed across the two agents: each host's router copy (the qr- ports, in the host's
	// namespace: the netdev datapath cannot move them into a qrouter namespace) routes
	// between the subnets, as the L3 agent's would, with its permanent neighbour entries.
	for _, ph := range compared {
		setupRouter(t, ctx, ph.h, qr, subnets, all)
	}
	// The request is routed by the sender's host (its router's frames leave br-tun with its
	// DVR MAC, T22), the reply by the receiver's (out of br-vlan with its DVR MAC, P11): the
	// counters of both rewrites move.
	rewrites := func(ph *parityHost) (tun, vlan int) {
		return bridgePackets(t, ctx, ph.h.Sandbox(), "br-tun", "table=1,", "dl_src="+qr["vxlan"].MACAddress, "actions=set_field:"),
			bridgePackets(t, ctx, ph.h.Sandbox(), "br-vlan", "table=1,", "dl_src="+qr["vlan"].MACAddress, "actions=set_field:")
	}
	for _, c := range []struct{ from, to *parityHost }{{ours, theirs}, {theirs, ours}} {
		fromTun, _ := rewrites(c.from)
		_, toVLAN := rewrites(c.to)
		to := c.to.vms["vxlan"].FixedIPs[0].IPAddress
		if err := pingUntil(ctx, c.from.vmns["vlan"], to); err != nil {
			t.Errorf("routed ping from the VLAN VM on %s to the VXLAN VM on %s (%s): %v", c.from.name, c.to.name, to, err)
			continue
		}
		if err := c.from.vmns["vlan"].Ping(ctx, to, 3); err != nil {
			t.Errorf("routed ping from the VLAN VM on %s to the VXLAN VM on %s (%s): %v", c.from.name, c.to.name, to, err)
		}
		// The userspace datapath hands its counters to the flows within a second or two.
		waitFor(t, 10*time.Second, "DVR rewrite counters of "+c.from.name+" → "+c.to.name, func() error {
			fromTunAfter, _ := rewrites(c.from)
			_, toVLANAfter := rewrites(c.to)
			if fromTunAfter-fromTun < 3 || toVLANAfter-toVLAN < 3 {
				return fmt.Errorf("%d requests left %s's br-tun with its DVR MAC and %d replies left %s's br-vlan with its DVR MAC; want ≥ 3 each (routed by DVR on both hosts)",
					fromTunAfter-fromTun, c.from.name, toVLANAfter-toVLAN, c.to.name)
			}
			return nil
		})
	}
	step("routed pings VLAN → VXLAN across the two agents")

	// l2pop removal: the third host's VXLAN VM is deleted (its last port on the network):
	// both hosts drop its unicast, ARP responder and flooding flows and the tunnel port to
	// it, and still hold the same flows.
	third := all[2]
	gone := third.vms["vxlan"]
	if err := api.DeletePort(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	for _, ph := range compared {
		waitFor(t, 30*time.Second, "the third host's VXLAN VM and tunnel gone from "+ph.name, func() error {
			if fl, err := flowsWith(ctx, ph.h.Sandbox(), "br-tun", gone.MACAddress); err != nil || len(agentFlows(fl)) > 0 {
				return fmt.Errorf("flows for %s: %v (%v)", gone.MACAddress, fl, err)
			}
			ifaces, err := ph.h.Sandbox().Vsctl(ctx, "list-ifaces", "br-tun")
			if err != nil || len(strings.Fields(ifaces)) != 2 {
				return fmt.Errorf("br-tun ports %q (%v), want patch-int and the tunnel to the other compared host", ifaces, err)
			}
			return nil
		})
	}
	waitFlowsSettled(t, ctx, compared, 4*time.Second, 60*time.Second)
	compareParity(t, ctx, compared, qr, map[string][]string{"br-tun": {"output:tun-peer", "!tun-third"}}, true)
	step("third host's VXLAN VM deleted, compared again")

	// Not compared (yet): the router leaving the VXLAN subnet. On a loaded machine
	// Neutron's agent was seen deleting its tunnel port to the other compared host while a
	// unicast flow still pointed at it (the flood entry of the removed DVR port withdrawn
	// before the VM's entry): a race of its own that makes that comparison flaky.
}

// compareParity dumps br-int, br-tun and br-vlan of the two compared hosts (dvrflow's
// first, Neutron's second), normalises them by role and fails the test on any difference
// dvr.Explain does not account for (afterRemoval: a dump taken after objects went away).
// mustHave are pieces of flows Neutron's dumps must hold (or, prefixed with "!", not hold).
func compareParity(t *testing.T, ctx context.Context, compared []*parityHost, qr map[string]*neutron.Port, mustHave map[string][]string, afterRemoval bool) {
	t.Helper()
	roles := parityRoles(t, ctx, compared, qr)
	ours, theirs := compared[0], compared[1]
	var problems []string
	for _, br := range parityBridges {
		want := roles[theirs.name].dump(t, ctx, theirs.h.Sandbox(), br)
		got := roles[ours.name].dump(t, ctx, ours.h.Sandbox(), br)
		if len(want) == 0 {
			t.Fatalf("Neutron's agent left %s on %s without flows", br, theirs.name)
		}
		missing, extra := testbed.Diff(want, got)
		role := dvr.RolePhysical
		switch br {
		case "br-int":
			role = dvr.RoleIntegration
		case "br-tun":
			role = dvr.RoleTunnel
		}
		m, e := len(missing), len(extra)
		missing, extra = explainByRole(role, roles[theirs.name], roles[ours.name], missing, extra, afterRemoval)
		t.Logf("%s: %d flows on Neutron's host, %d on ours after normalisation; %d of Neutron's and %d of ours differ as docs/neutron-differences.md says",
			br, len(want), len(got), m-len(missing), e-len(extra))
		for _, must := range mustHave[br] {
			piece, absent := strings.CutPrefix(must, "!")
			if slices.ContainsFunc(want, func(l string) bool { return strings.Contains(l, piece) }) == absent {
				t.Errorf("Neutron's %s: a flow with %q is %s: the test does not set up what it means to compare",
					br, piece, map[bool]string{true: "there", false: "missing"}[absent])
			}
		}
		if len(missing)+len(extra) > 0 {
			problems = append(problems, fmt.Sprintf("bridge %s (%d flows on Neutron's host, %d on ours):\n missing (Neutron has, we do not):\n%s\n extra (we have, Neutron does not):\n%s",
				br, len(want), len(got), lines(missing), lines(extra)))
		}
	}
	if len(problems) > 0 {
		t.Errorf("flows differ from Neutron's agent after normalisation (%s):\n%s\n%s", roles[ours.name].legend(),
			strings.Join(problems, "\n"), roles[theirs.name].legend())
	}
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

// pushedAll reports whether the agent's log shows each port's details taken from the
// server's Port pushes.
func pushedAll(log string, ports ...string) bool {
	for _, p := range ports {
		if !regexp.MustCompile(`device details from the server's pushes.*` + regexp.QuoteMeta(p)).MatchString(log) {
			return false
		}
	}
	return true
}

// qrName is the br-int port of a router interface, as the L3 agent names it.
func qrName(p *neutron.Port) string { return "qr-" + p.ID[:11] }

// waitFlowsSettled dumps the compared bridges of every host until nothing changed for
// quiet, and returns how many rounds of dumps it took.
func waitFlowsSettled(t *testing.T, ctx context.Context, hosts []*parityHost, quiet, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last string
	since := time.Now()
	for n := 1; ; n++ {
		var b strings.Builder
		for _, ph := range hosts {
			for _, br := range parityBridges {
				fl, err := testbed.DumpFlows(ctx, ph.h.Sandbox(), br)
				if err != nil {
					t.Fatalf("dump %s on %s: %v", br, ph.name, err)
				}
				fmt.Fprintf(&b, "%s %s\n%s\n", ph.name, br, strings.Join(agentFlows(fl), "\n"))
			}
		}
		if cur := b.String(); cur != last {
			last, since = cur, time.Now()
		} else if time.Since(since) >= quiet {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("flows still changing after %s", limit)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// agentFlows leaves out the flows the switch learned from traffic (br-tun table 20's
// hard_timeout entries made by table 10's learn action): they are the data path's, not the
// agent's, and come and go with the packets the VMs happen to send.
func agentFlows(fl []string) []string {
	return slices.DeleteFunc(slices.Clone(fl), func(l string) bool { return strings.Contains(l, "hard_timeout=") })
}

// roleMap normalises one host's dumps: port names, local VLANs, MACs and IPs become the
// role they play, so that two hosts' dumps compare line by line.
type roleMap struct {
	host  string
	ports map[string]string // port name → role
	vlans map[int]string    // local VLAN → network role
	addrs map[string]string // MAC or IP → role
	// withAddrs maps a normalised line to the same line with its MACs and IPs as they were.
	withAddrs map[string]string
}

var (
	macRe  = regexp.MustCompile(`\b[0-9a-f]{2}(?::[0-9a-f]{2}){5}\b`)
	ipv4Re = regexp.MustCompile(`\b\d{1,3}(?:\.\d{1,3}){3}\b`)
	// linkLocalRe is an IPv6 link-local address as OVS prints it (ND spoofing flows).
	linkLocalRe = regexp.MustCompile(`\bfe80::[0-9a-f:]+[0-9a-f]\b`)
	// outputsRe is a run of two or more outputs at the end of an action list (flooding).
	outputsRe = regexp.MustCompile(`(?:output:[^,\s]+,)+output:[^,\s]+$`)
)

// sortOutputs sorts the outputs that end a flooding flow's actions: Neutron lists them by
// ofport (the order it created the tunnel ports in), dvrflow by peer address; each output
// gets its copy either way (docs/neutron-differences.md, "The order of a flooding flow's
// outputs").
func sortOutputs(line string) string {
	return outputsRe.ReplaceAllStringFunc(line, func(m string) string {
		outs := strings.Split(m, ",")
		slices.Sort(outs)
		return strings.Join(outs, ",")
	})
}

// linkLocal is the EUI-64 IPv6 link-local address of a MAC, as a VM configures it.
func linkLocal(mac string) string {
	hw, err := net.ParseMAC(mac)
	if err != nil || len(hw) != 6 {
		return ""
	}
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10], a[11], a[12], a[13], a[14], a[15] = hw[0]^2, hw[1], hw[2], 0xff, 0xfe, hw[3], hw[4], hw[5]
	return netip.AddrFrom16(a).String()
}

// dump is the bridge's flows, normalised.
func (r *roleMap) dump(t *testing.T, ctx context.Context, h *sandbox.Host, br string) []string {
	t.Helper()
	fl, err := testbed.DumpFlows(ctx, h, br)
	if err != nil {
		t.Fatal(err)
	}
	ofports, err := testbed.BridgeOfports(ctx, h, br)
	if err != nil {
		t.Fatal(err)
	}
	named := map[int]string{}
	for n, name := range ofports {
		if role, ok := r.ports[name]; ok {
			name = role
		}
		named[n] = name
	}
	out := make([]string, 0, len(fl))
	for _, l := range agentFlows(fl) {
		l = sortOutputs(testbed.Normalize(l, named, r.vlans))
		addrs := l
		l = macRe.ReplaceAllStringFunc(l, func(m string) string { return r.role(m) })
		l = linkLocalRe.ReplaceAllStringFunc(l, func(m string) string { return r.role(m) })
		l = ipv4Re.ReplaceAllStringFunc(l, func(m string) string { return r.role(m) })
		out = append(out, l)
		if _, ok := r.withAddrs[l]; !ok {
			r.withAddrs[l] = addrs
		}
	}
	return out
}

// explainByRole is dvr.Explain on lines normalised by role: dvr's patterns expect MACs and IPs, so
// they see each line with its addresses as the switch has them (ports and local VLANs
// normalised), and what they leave unexplained is returned in the role form again.
func explainByRole(role string, theirs, ours *roleMap, missing, extra []string, afterRemoval bool) (neutronLeft, oursLeft []string) {
	raw := func(r *roleMap, lines []string) ([]string, map[string]string) {
		out, back := make([]string, len(lines)), map[string]string{}
		for i, l := range lines {
			out[i] = r.withAddrs[l]
			back[out[i]] = l
		}
		return out, back
	}
	rawMissing, backMissing := raw(theirs, missing)
	rawExtra, backExtra := raw(ours, extra)
	nl, ol := dvr.Explain(role, rawMissing, rawExtra, afterRemoval)
	for _, l := range nl {
		neutronLeft = append(neutronLeft, backMissing[l])
	}
	for _, l := range ol {
		oursLeft = append(oursLeft, backExtra[l])
	}
	return neutronLeft, oursLeft
}

func (r *roleMap) role(addr string) string {
	if role, ok := r.addrs[addr]; ok {
		return role
	}
	return addr
}

// legend says what the roles of a host stand for, for a failure message.
func (r *roleMap) legend() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(r.ports)) {
		parts = append(parts, k+"="+r.ports[k])
	}
	for _, k := range slices.Sorted(maps.Keys(r.addrs)) {
		parts = append(parts, k+"="+r.addrs[k])
	}
	for _, v := range slices.Sorted(maps.Keys(r.vlans)) {
		parts = append(parts, "local VLAN "+strconv.Itoa(v)+"="+r.vlans[v])
	}
	return r.host + ": " + strings.Join(parts, ", ")
}

// parityRoles maps each compared host's ports, VLANs, MACs and IPs to roles: its own VMs
// ("vm-vlan"), the other compared host's ("peer-vm-vlan"), its tunnel ports by the peer
// they lead to, its own DVR MAC and the other compared host's. What is the same on both
// hosts (router interfaces, the third host's VMs, patch ports) keeps its name.
func parityRoles(t *testing.T, ctx context.Context, compared []*parityHost, qr map[string]*neutron.Port) map[string]*roleMap {
	t.Helper()
	dvrMACs := map[string]string{}
	for _, ph := range compared {
		mac, err := dvrMACOf(ctx, ph.h)
		if err != nil {
			t.Fatal(err)
		}
		dvrMACs[ph.name] = mac
	}
	vteps := map[netip.Addr]string{parityOurs.LocalIP.Addr(): "", parityTheirs.LocalIP.Addr(): "", parityThird.LocalIP.Addr(): "tun-third"}
	out := map[string]*roleMap{}
	for i, ph := range compared {
		peer := compared[1-i]
		r := &roleMap{host: ph.name, ports: map[string]string{}, vlans: map[int]string{}, addrs: map[string]string{}, withAddrs: map[string]string{}}
		for _, kind := range parityKinds {
			vm := ph.vms[kind]
			r.ports["tap"+vm.ID[:11]] = "vm-" + kind
			r.addrs[vm.MACAddress] = "MAC(vm-" + kind + ")"
			r.addrs[linkLocal(vm.MACAddress)] = "LL(vm-" + kind + ")"
			r.addrs[vm.FixedIPs[0].IPAddress] = "IP(vm-" + kind + ")"
			pv := peer.vms[kind]
			r.addrs[pv.MACAddress] = "MAC(peer-vm-" + kind + ")"
			r.addrs[linkLocal(pv.MACAddress)] = "LL(peer-vm-" + kind + ")"
			r.addrs[pv.FixedIPs[0].IPAddress] = "IP(peer-vm-" + kind + ")"
			for _, name := range []string{"tap" + vm.ID[:11]} {
				out, err := ph.h.Sandbox().Vsctl(ctx, "get", "Port", name, "tag")
				if err != nil {
					t.Fatal(err)
				}
				tag, err := strconv.Atoi(strings.TrimSpace(out))
				if err != nil {
					t.Fatalf("%s on %s has no local VLAN tag: %q", name, ph.name, out)
				}
				if prev, ok := r.vlans[tag]; ok && prev != kind+"-net" {
					t.Fatalf("%s: local VLAN %d used by %s and %s", ph.name, tag, prev, kind)
				}
				r.vlans[tag] = kind + "-net"
			}
		}
		r.addrs[dvrMACs[ph.name]] = "DVRMAC(self)"
		r.addrs[dvrMACs[peer.name]] = "DVRMAC(peer)"
		vteps[peer.h.LocalIP()] = "tun-peer"
		vteps[ph.h.LocalIP()] = "tun-self"
		ifaces, err := ph.h.Sandbox().Vsctl(ctx, "list-ifaces", "br-tun")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range strings.Fields(ifaces) {
			remote, err := ph.h.Sandbox().Vsctl(ctx, "--if-exists", "get", "Interface", name, "options:remote_ip")
			if err != nil || strings.TrimSpace(remote) == "" {
				continue
			}
			addr, err := netip.ParseAddr(strings.Trim(strings.TrimSpace(remote), `"`))
			if err != nil {
				continue
			}
			if role := vteps[addr]; role != "" {
				r.ports[name] = role
			}
		}
		out[ph.name] = r
	}
	return out
}

// dvrMACOf is the host's DVR MAC as neutron-server allocated it (from the agent's
// br-int: the destination of I28/I29 is the host's own DVR MAC).
func dvrMACOf(ctx context.Context, h *neutron.AgentHost) (string, error) {
	fl, err := flowsWith(ctx, h.Sandbox(), "br-int", "priority=5,in_port=", "dl_dst=")
	if err != nil {
		return "", err
	}
	for _, l := range fl {
		if m := regexp.MustCompile(`dl_dst=([0-9a-f:]{17})`).FindStringSubmatch(l); m != nil {
			return m[1], nil
		}
	}
	return "", fmt.Errorf("no flow to the own DVR MAC on %s's br-int", h.Name())
}

// setupRouter makes the host's namespace the router's copy on this host, as the L3 agent
// makes qrouter-<id>: each qr- port gets the interface's MAC and gateway address, IP
// forwarding is on, and every VM of the router's subnets a permanent neighbour entry.
func setupRouter(t *testing.T, ctx context.Context, h *neutron.AgentHost, qr map[string]*neutron.Port, subnets map[string]*neutron.Subnet, vms []*parityHost) {
	t.Helper()
	sb := h.Sandbox()
	run := func(args ...string) {
		t.Helper()
		if out, err := sb.Run(ctx, args[0], args[1:]...); err != nil {
			t.Fatalf("%s on %s: %v\n%s", strings.Join(args, " "), h.Name(), err, out)
		}
	}
	run("sysctl", "-w", "net.ipv4.ip_forward=1")
	for _, kind := range parityKinds {
		p, s := qr[kind], subnets[kind]
		dev := qrName(p)
		bits := netip.MustParsePrefix(s.CIDR).Bits()
		run("ip", "link", "set", "dev", dev, "address", p.MACAddress)
		run("ip", "addr", "replace", p.FixedIPs[0].IPAddress+"/"+strconv.Itoa(bits), "dev", dev)
		run("ip", "link", "set", "dev", dev, "up")
		for _, ph := range vms {
			vm := ph.vms[kind]
			run("ip", "neigh", "replace", vm.FixedIPs[0].IPAddress, "lladdr", vm.MACAddress, "dev", dev, "nud", "permanent")
		}
	}
}
