package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// The floating IP of the north-south cloud, and the floating IP agent gateway ports
// (network:floatingip_agent_gateway, fg-) Neutron binds to each compute node on the
// external network, device_id the node's L3 agent.
const (
	nsFIPID = "f1150000-0000-4000-8000-000000000050"
	nsFIP   = "203.0.113.50"
	// nsGARPRounds is how many gratuitous ARPs an agent sends for a floating IP that is new
	// on its host, 2 s apart (Neutron's send_arp_for_ha).
	nsGARPRounds = 3
)

var (
	nsFG1 = nsPort{host: nsCompute1, id: "f9151000-0000-4000-8000-000000000021", network: nsNetExt, subnet: nsSubExt, mac: "fa:16:3e:15:03:21", ip: "203.0.113.21", owner: northbound.OwnerFloatingIPAgentGateway, deviceID: "a9e15000-0000-4000-8000-000000000002"}
	nsFG2 = nsPort{host: nsCompute2, id: "f9152000-0000-4000-8000-000000000022", network: nsNetExt, subnet: nsSubExt, mac: "fa:16:3e:15:03:22", ip: "203.0.113.22", owner: northbound.OwnerFloatingIPAgentGateway, deviceID: "a9e15000-0000-4000-8000-000000000003"}
)

// nsFGOf returns the fg- port of a compute node.
func nsFGOf(node string) nsPort {
	if node == nsCompute2 {
		return nsFG2
	}
	return nsFG1
}

// northSouthFloatingIPs is issue 15's floating-IP acceptance, on the running cloud with
// SNAT on: each compute node gets its fg- port and the VM on ns-c1 the floating IP. The
// external host reaches the VM at its floating IP, and the VM the external host from it,
// through ns-c1 only (its uplink, its fg- MAC), whose fg- alone answers the floating IP's
// ARP; an agent restart there during pings through the floating IP loses nothing and
// changes nothing. The floating IP moves to the VM on ns-c2: a gratuitous ARP from ns-c2's
// fg-, then the ARP answer and the traffic through ns-c2, and nothing of it left on ns-c1.
// Removed, the VM falls back to SNAT through the network node and nothing is left on
// ns-c2; re-added, it goes direct again, and a restart of ns-c2's agent changes nothing.
// "Nothing left" compares a node's listing (namespaces, devices, addresses, rules, routes,
// NAT, allocation files, br-int's ports and the agent's flows) with the one taken before
// the floating IP existed.
func northSouthFloatingIPs(t *testing.T, ctx context.Context, c *nsCloud) {
	baseline := map[string][]string{}
	for _, n := range nsNodes {
		baseline[n.name] = c.listing(t, ctx, n.name)
	}
	c.ports = append(c.ports, nsFG1, nsFG2)
	c.setFloatingIP(&nsVMVLAN)
	c.write(t)
	c.waitFloatingIP(t, ctx)

	t.Run("floating IP on ns-c1: the external host reaches the VM and the VM the outside through ns-c1 only, its fg- alone answers ARP", func(t *testing.T) {
		c.checkFloatingIP(t, ctx, nsVMVLAN)
	})
	t.Run("agent SIGKILL and restart on ns-c1 (dvr) during pings through the floating IP: no loss, no change", func(t *testing.T) {
		c.checkAgentRestart(t, ctx, nsCompute1, c.fipPings(nsVMVLAN))
	})
	t.Run("floating IP moved to the VM on ns-c2: gratuitous ARP from ns-c2's fg-, the ARP answer and traffic move, nothing left on ns-c1", func(t *testing.T) {
		c.checkFloatingIPMove(t, ctx, nsVMVXLAN, baseline)
		c.checkFloatingIP(t, ctx, nsVMVXLAN)
	})
	t.Run("floating IP removed: the VM falls back to SNAT through the network node, nothing left on ns-c2; re-added: direct again", func(t *testing.T) {
		c.setFloatingIP(nil)
		c.write(t)
		for _, n := range nsNodes {
			c.checkNothingLeft(t, ctx, n.name, baseline[n.name])
		}
		c.checkSNAT(t, ctx, nsVMVXLAN)
		c.setFloatingIP(&nsVMVXLAN)
		c.write(t)
		c.waitFloatingIP(t, ctx)
		c.checkFloatingIP(t, ctx, nsVMVXLAN)
	})
	t.Run("agent SIGKILL and restart on ns-c2 (dvr) during pings through the floating IP: no loss, no change", func(t *testing.T) {
		c.checkAgentRestart(t, ctx, nsCompute2, c.fipPings(nsVMVXLAN))
	})
}

// setFloatingIP associates the floating IP with vm's port, or disassociates it (nil); the
// caller writes the topology.
func (c *nsCloud) setFloatingIP(vm *nsPort) {
	f := topology.FloatingIP{ID: nsFIPID, FloatingIPAddress: nsFIP, FloatingNetworkID: nsNetExt}
	if vm != nil {
		f.RouterID, f.PortID, f.FixedIPAddress = nsRouter, vm.id, vm.ip
	}
	c.floatingIPs = []topology.FloatingIP{f}
	c.fip = vm
}

// waitFloatingIP waits until the external host reaches the floating IP.
func (c *nsCloud) waitFloatingIP(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, 30*time.Second, "the external host reaches the floating IP "+nsFIP+" of "+c.fip.ip+" on "+c.fip.host, func() error {
		_, err := c.ext.Run(ctx, "ping", "-n", "-c", "1", "-W", "1", nsFIP)
		return err
	})
}

// fipPings are the external host pinging the floating IP of vm, and vm pinging the external
// host (from its floating IP).
func (c *nsCloud) fipPings(vm nsPort) []nsPing {
	return []nsPing{{"the external host", c.ext.Command, nsFIP}, {vm.ip, c.vm(vm).Command, nsExternalIP}}
}

// fipFrames counts, in a `tcpdump -e -n` capture, the frames of the floating IP: the
// external host's pings of it (in) and the VM's pings of the external host (out), the
// unicast ARP replies for it (answers to a request) and the broadcast ones (gratuitous);
// wrong lists those whose MAC is not fg's where it must be.
type fipFrames struct {
	inRequests, inReplies, outRequests, outReplies, arpReplies, garps int
	wrong                                                             []string
}

func countFIPFrames(capture string, fg nsPort) fipFrames {
	var n fipFrames
	for _, f := range parseTrunk(capture) {
		var fgEnd string // the frame's end that must be fg-'s MAC
		switch {
		case strings.Contains(f.text, nsExternalIP+" > "+nsFIP+": ICMP echo request"):
			n.inRequests++
			fgEnd = f.dst
		case strings.Contains(f.text, nsFIP+" > "+nsExternalIP+": ICMP echo reply"):
			n.inReplies++
			fgEnd = f.src
		case strings.Contains(f.text, nsFIP+" > "+nsExternalIP+": ICMP echo request"):
			n.outRequests++
			fgEnd = f.src
		case strings.Contains(f.text, nsExternalIP+" > "+nsFIP+": ICMP echo reply"):
			n.outReplies++
			fgEnd = f.dst
		case strings.Contains(f.text, "Reply "+nsFIP+" is-at "):
			if f.dst == "ff:ff:ff:ff:ff:ff" {
				n.garps++
			} else {
				n.arpReplies++
			}
			fgEnd = f.src
			if !strings.Contains(f.text, "is-at "+fg.mac) {
				fgEnd = "is-at another MAC"
			}
		default:
			continue
		}
		if fgEnd != fg.mac {
			n.wrong = append(n.wrong, f.text)
		}
	}
	return n
}

// answered counts the frames that only the node of the floating IP may send or receive:
// its pings and the answers to ARP requests for it (gratuitous ARPs are flooded).
func (n fipFrames) answered() int {
	return n.inRequests + n.inReplies + n.outRequests + n.outReplies + n.arpReplies
}

func (n fipFrames) String() string {
	return fmt.Sprintf("%d/%d echo requests/replies to/from the floating IP, %d/%d from/to it, %d ARP replies for it (%d gratuitous)",
		n.inRequests, n.inReplies, n.outRequests, n.outReplies, n.arpReplies, n.garps)
}

// arpingReply is a reply line of iputils' arping.
var arpingReply = regexp.MustCompile(`reply from (\S+) \[([0-9A-Fa-f:]{17})\]`)

// checkFloatingIP checks the floating IP on vm (on vm's compute node): the external host,
// its ARP entry for the floating IP flushed, arpings it (3 requests) and pings it (5) and
// gets every reply, only from the node's fg- MAC; the VM pings the external host (5) and
// the external host sees the floating IP as the source, never the VM's own address nor the
// gateway IP. On the wire: the node's external uplink carries all of it with its fg- MAC,
// the other nodes' uplinks (the network node's too) carry none of it and no ARP reply for
// the floating IP.
func (c *nsCloud) checkFloatingIP(t *testing.T, ctx context.Context, vm nsPort) {
	fg := nsFGOf(vm.host)
	if _, err := c.ext.Run(ctx, "ip", "neigh", "flush", "to", nsFIP); err != nil {
		t.Fatal(err)
	}
	extCap := startCapture(t, ctx, c.ext.Command, "-i", testbed.EndpointInterface, "-e", "-n", "-l", "icmp or arp")
	uplinks := map[string]func() string{}
	for _, n := range nsNodes {
		uplinks[n.name] = startCapture(t, ctx, c.hosts[n.name].Command, "-i", nsExternalIf, "-e", "-n", "-l", "icmp or arp")
	}
	const count = 5
	// Three broadcast requests, one a second (this arping takes whole seconds); it exits on
	// the third reply.
	arping, _ := c.ext.Run(ctx, "arping", "-b", "-c", "3", "-w", "4", "-I", testbed.EndpointInterface, nsFIP)
	inSent, inGot, inOut := pingCount(ctx, c.ext.Run, nsFIP, count, 200*time.Millisecond)
	outSent, outGot, outOut := pingCount(ctx, c.vm(vm).Run, nsExternalIP, count, 200*time.Millisecond)
	neigh, _ := c.ext.Run(ctx, "ip", "neigh", "show", nsFIP)
	seen := extCap()

	answers := arpingReply.FindAllStringSubmatch(arping, -1)
	for _, a := range answers {
		if a[1] != nsFIP || !strings.EqualFold(a[2], fg.mac) {
			t.Errorf("arping %s: a reply from %s [%s], want only %s's fg- MAC %s", nsFIP, a[1], a[2], vm.host, fg.mac)
		}
	}
	if len(answers) != 3 {
		t.Errorf("arping %s from the external host: %d replies to 3 requests, want 3 (from %s's fg- %s):\n%s", nsFIP, len(answers), vm.host, fg.mac, arping)
	}
	if inSent != count || inGot != count {
		t.Errorf("external host → floating IP %s: %d sent, %d replies; want %d of %d:\n%s", nsFIP, inSent, inGot, count, count, inOut)
	}
	if outSent != count || outGot != count {
		t.Errorf("%s → external host %s: %d sent, %d replies; want %d of %d:\n%s", vm.ip, nsExternalIP, outSent, outGot, count, count, outOut)
	}
	if !strings.Contains(neigh, "lladdr "+fg.mac) {
		t.Errorf("the external host's neighbour entry for %s is %q, want %s's fg- MAC %s", nsFIP, neigh, vm.host, fg.mac)
	}
	ext := countFIPFrames(seen, fg)
	for _, l := range strings.Split(seen, "\n") {
		if strings.Contains(l, vm.ip+" > ") || strings.Contains(l, nsGatewayIP+" > ") {
			t.Errorf("the external host saw a packet from the VM's own address or the gateway IP (want the floating IP %s): %s", nsFIP, l)
		}
	}
	if ext.inReplies < count || ext.outRequests < count || ext.arpReplies < 4 || len(ext.wrong) > 0 {
		t.Errorf("the external host saw %s; want ≥ %d replies from the floating IP, ≥ %d requests from it (the VM's), ≥ 4 ARP replies (arping's and the ping's), all from %s's fg- MAC %s; not so: %q\n%s",
			ext, count, count, vm.host, fg.mac, ext.wrong, seen)
	}
	evidence := []string{fmt.Sprintf("arping %d/3 from %s; external → %s %d/%d; %s → external %d/%d; the external host saw %s",
		len(answers), fg.mac, nsFIP, inGot, inSent, vm.ip, outGot, outSent, ext)}
	for _, n := range nsNodes {
		wire := uplinks[n.name]()
		got := countFIPFrames(wire, fg)
		evidence = append(evidence, fmt.Sprintf("%s's uplink: %s", n.name, got))
		switch {
		case n.name == vm.host && (got.inRequests < count || got.inReplies < count || got.outRequests < count ||
			got.outReplies < count || got.arpReplies < 4 || len(got.wrong) > 0):
			t.Errorf("%s's external uplink (the VM's node) carried %s; want ≥ %d of each ping's requests and replies and ≥ 4 ARP replies, all with its fg- MAC %s; not so: %q\n%s",
				n.name, got, count, fg.mac, got.wrong, wire)
		case n.name != vm.host && (got.answered() > 0 || len(got.wrong) > 0):
			t.Errorf("%s's external uplink carried %s; want none but gratuitous ARPs from %s's fg- MAC %s (the floating IP is on %s); not so: %q\n%s",
				n.name, got, vm.host, fg.mac, vm.host, got.wrong, wire)
		}
	}
	t.Logf("floating IP %s on %s (%s): %s", nsFIP, vm.ip, vm.host, strings.Join(evidence, "; "))
}

// checkFloatingIPMove moves the floating IP to vm (on the other compute node): the
// external network sees a gratuitous ARP for it from vm's node's fg- MAC (and from no other
// MAC), and the node that lost it goes back to its listing from before the floating IP.
func (c *nsCloud) checkFloatingIPMove(t *testing.T, ctx context.Context, vm nsPort, baseline map[string][]string) {
	from, fg := c.fip.host, nsFGOf(vm.host)
	soFar, stop := startLiveCapture(t, ctx, c.ext.Command, "-i", testbed.EndpointInterface, "-e", "-n", "-l", "arp")
	uplinks := map[string]func() string{}
	for _, n := range nsNodes {
		uplinks[n.name] = startCapture(t, ctx, c.hosts[n.name].Command, "-i", nsExternalIf, "-e", "-n", "-l", "arp")
	}
	c.setFloatingIP(&vm)
	c.write(t)
	moved := time.Now()
	// A gratuitous ARP: a broadcast request for the floating IP from itself, or a broadcast
	// reply.
	isGARP := func(f trunkFrame) bool {
		return f.dst == "ff:ff:ff:ff:ff:ff" && (strings.Contains(f.text, "Request who-has "+nsFIP+" (ff:ff:ff:ff:ff:ff) tell "+nsFIP) ||
			strings.Contains(f.text, "Reply "+nsFIP+" is-at "))
	}
	// Every round the agent sends must reach the wire: a round sent before fg- carries its
	// VLAN is lost, and the move then waits 2 s for the next round.
	requests := func() (n int) {
		for _, f := range parseTrunk(soFar()) {
			if isGARP(f) && f.src == fg.mac && strings.Contains(f.text, "Request who-has") {
				n++
			}
		}
		return n
	}
	var first time.Duration
	waitFor(t, 10*time.Second, fmt.Sprintf("%d rounds of gratuitous ARPs for %s from %s's fg- %s on the external network", nsGARPRounds, nsFIP, vm.host, fg.mac), func() error {
		n := requests()
		if n > 0 && first == 0 {
			first = time.Since(moved)
		}
		if n < nsGARPRounds {
			return fmt.Errorf("%d seen", n)
		}
		return nil
	})
	t.Logf("the first gratuitous ARP for %s from %s's fg- %s reached the external host %s after the move, all %d rounds by %s",
		nsFIP, vm.host, fg.mac, first.Round(time.Millisecond), nsGARPRounds, time.Since(moved).Round(time.Millisecond))
	c.checkNothingLeft(t, ctx, from, baseline[from])
	seen := stop()
	garps := 0
	for _, f := range parseTrunk(seen) {
		if !isGARP(f) {
			continue
		}
		garps++
		if f.src != fg.mac || (strings.Contains(f.text, " is-at ") && !strings.Contains(f.text, "is-at "+fg.mac)) {
			t.Errorf("the external host saw a gratuitous ARP for %s not from %s's fg- %s: %s", nsFIP, vm.host, fg.mac, f.text)
		}
	}
	for _, n := range nsNodes {
		sent := 0
		wire := uplinks[n.name]()
		for _, f := range parseTrunk(wire) {
			switch {
			case isGARP(f) && f.src == fg.mac:
				sent++
			case isGARP(f):
				t.Errorf("%s's external uplink carried a gratuitous ARP for %s not from %s's fg- %s: %s", n.name, nsFIP, vm.host, fg.mac, f.text)
			}
		}
		if n.name == vm.host && sent == 0 {
			t.Errorf("%s's external uplink carried no gratuitous ARP for %s from its fg- %s:\n%s", n.name, nsFIP, fg.mac, wire)
		}
		t.Logf("%s's external uplink: %d gratuitous ARPs for %s from %s", n.name, sent, nsFIP, fg.mac)
	}
	t.Logf("the external host saw %d gratuitous ARPs for %s, all from %s", garps, nsFIP, fg.mac)
}

// checkNothingLeft waits until node's listing is again the one from before the floating
// IP (baseline), and fails the test with the difference when it is not within 15 s; it
// also fails when the listing names a fip- namespace, an fg-, rfp- or fpr- device, or the
// floating IP.
func (c *nsCloud) checkNothingLeft(t *testing.T, ctx context.Context, node string, baseline []string) {
	t.Helper()
	var gone, added []string
	deadline := time.Now().Add(15 * time.Second)
	for {
		now := c.listing(t, ctx, node)
		if gone, added = listingDiff(baseline, now); len(gone)+len(added) == 0 {
			for _, l := range now {
				for _, s := range []string{namespace.FIPNamespacePrefix, namespace.FIPGatewayDevicePrefix,
					namespace.RouterToFIPDevicePrefix, namespace.FIPToRouterDevicePrefix, nsFIP} {
					if strings.Contains(l, s) {
						t.Errorf("%s's listing names %q, and so did it before the floating IP: %s", node, s, l)
					}
				}
			}
			t.Logf("%s holds nothing of the floating IP: its listing (%d lines) is the one from before it", node, len(now))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's listing is not back to before the floating IP within 15 s:\n gone:\n%s\n left behind:\n%s", node, lines(gone), lines(added))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// listing lists what node holds outside its flow tables' learnt entries: the namespaces of
// its private /run/netns, and in each its devices (name and MAC), addresses, rules, IPv4
// and IPv6 routes of every table, permanent neighbours and nftables ruleset; the host's
// devices and br-int's ports; the agent's flows on br-int and br-ex; and the allocation
// files of its state_path. Each line starts with where it comes from.
func (c *nsCloud) listing(t *testing.T, ctx context.Context, node string) []string {
	t.Helper()
	h := c.hosts[node]
	var out []string
	run := func(where string, args ...string) string {
		s, err := h.Run(ctx, args[0], args[1:]...)
		if err != nil {
			t.Fatalf("list %s on %s: %v", where, node, err)
		}
		return s
	}
	add := func(where, text string, each func(string) string) {
		for _, l := range strings.Split(text, "\n") {
			if l = strings.TrimSpace(l); l != "" {
				if l = each(l); l != "" {
					out = append(out, where+": "+l)
				}
			}
		}
	}
	vsctl := func(where string, args ...string) string {
		s, err := h.Vsctl(ctx, args...)
		if err != nil {
			t.Fatalf("list %s on %s: %v", where, node, err)
		}
		return s
	}
	same := func(l string) string { return l }
	var namespaces []string
	add("netns", run("netns", "ip", "netns", "list"), func(l string) string {
		namespaces = append(namespaces, strings.Fields(l)[0])
		return strings.Fields(l)[0]
	})
	add("host link", run("host links", "ip", "-o", "link"), linkNameMAC)
	add("br-int port", vsctl("br-int ports", "list-ports", "br-int"), same)
	for _, ns := range namespaces {
		add(ns+" link", run(ns, "ip", "-n", ns, "-o", "link"), linkNameMAC)
		add(ns+" addr", run(ns, "ip", "-n", ns, "-o", "addr"), func(l string) string { return addrLifetimes.ReplaceAllString(noLinkLocal(l), "") })
		add(ns+" rule", run(ns, "ip", "-n", ns, "rule"), same)
		add(ns+" route", run(ns, "ip", "-n", ns, "-4", "route", "show", "table", "all"), same)
		add(ns+" route6", run(ns, "ip", "-n", ns, "-6", "route", "show", "table", "all"), noLinkLocal)
		add(ns+" neigh", run(ns, "ip", "-n", ns, "neigh", "show", "nud", "permanent"), same)
		add(ns+" nft", run(ns, "ip", "netns", "exec", ns, "nft", "list", "ruleset"), same)
	}
	for _, br := range []string{"br-int", "br-ex"} {
		for l := range installedByAgent(t, ctx, h, br) {
			out = append(out, br+" flow: "+l)
		}
	}
	dir := filepath.Join(h.RunDir(), "agent-state")
	for _, f := range []string{namespace.LinkLocalFile, namespace.FIPPriorityFile} {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		add(f, string(data), same)
	}
	slices.Sort(out)
	return out
}

// linkNameMAC reduces a line of `ip -o link` to the device's name and MAC.
func linkNameMAC(l string) string {
	f := strings.Fields(l)
	if len(f) < 2 {
		return l
	}
	name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
	if i := slices.Index(f, "link/ether"); i >= 0 && i+1 < len(f) {
		return name + " " + f[i+1]
	}
	return name
}

// noLinkLocal drops a line about an IPv6 link-local address (or its routes): the kernel
// makes one for every device (the device's own line says it is there) and its state and
// routes change as duplicate address detection ends, whenever that is.
func noLinkLocal(l string) string {
	if strings.Contains(l, "fe80:") {
		return ""
	}
	return l
}

// addrLifetimes are the lifetimes of an `ip -o addr` line, which count down.
var addrLifetimes = regexp.MustCompile(`\s*valid_lft \S+ preferred_lft \S+`)

// listingDiff returns the lines of before missing from after, and those of after that were
// not in before.
func listingDiff(before, after []string) (gone, added []string) {
	for _, l := range before {
		if !slices.Contains(after, l) {
			gone = append(gone, l)
		}
	}
	for _, l := range after {
		if !slices.Contains(before, l) {
			added = append(added, l)
		}
	}
	return gone, added
}
