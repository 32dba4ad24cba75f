package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/testbed"
)

// snat shows a VM without a floating IP reaching the external host through the centralized
// SNAT on the network node, with the evidence on the wire: the VM's packets reach the network
// node over the tenant VLAN un-NATed, leave its external uplink from the gateway IP, and the
// external host sees nothing else.
func (d *demo) snat(ctx context.Context) error {
	snatNS, qrouter := namespace.SNATNamespaceName(routerID), namespace.NamespaceName(routerID)
	section("7. north-south without a floating IP: a1 goes out through SNAT on the network node")
	fmt.Println(wrap(`r1's gateway lives on the network node only (agent_mode dvr_snat, the host of r1's
network:router_gateway port): its agent built the namespace snat-<router id> with qg- (the
gateway IP on the external network) and one sg- per tenant subnet. A compute host's copy of
r1 sends what has no floating IP to the sg- address of its subnet (Neutron's policy routing
in qrouter-: a rule per subnet, a table with one default route); the network node rewrites
the source to the gateway IP and sends it out of qg-. The external host has no route to the
tenant subnets: it can answer only the gateway IP.`))
	fmt.Printf("\n   network$ ip -n %s -br -4 addr   (the devices the agent made)\n", snatNS)
	out, err := d.nsDevices(ctx, "network", snatNS, "qg-", "sg-")
	if err != nil {
		return err
	}
	fmt.Print(out)
	fmt.Printf("   compute1$ ip -n %s rule; ip route show table …   (the SNAT redirect)\n", qrouter)
	if out, err = d.nsPolicyRouting(ctx, "compute1", qrouter, "/24"); err != nil {
		return err
	}
	fmt.Print(out)

	a1, dvr1 := d.cloud.vmNamed("a1"), d.cloud.dvrMAC("compute1")
	caps := map[string]captureSpec{
		"ext":           {d.ext.Command, testbed.EndpointInterface, []string{"icmp"}},
		"network trunk": {d.hosts["network"].Command, trunkIf, []string{"icmp", "or", "(vlan", "and", "icmp)"}},
	}
	for _, name := range hostOrder {
		caps[name+" external"] = captureSpec{d.hosts[name].Command, externalIf, []string{"icmp"}}
	}
	stop, err := captureAll(ctx, caps)
	if err != nil {
		return err
	}
	r := ping(ctx, d.vms["a1"].Command, externalIP, 3)
	frames := stop()

	fmt.Printf("\n   a1 pings the external host 3 times while the network node's uplinks, both compute hosts'\n   external uplinks and the external host capture (tcpdump -e icmp); the first exchange on each:\n")
	var natted, leaked, redirected, returned, natReq, natRep int
	for _, f := range frames["ext"] {
		switch {
		case strings.HasPrefix(f.payload, gatewayIP+" > "+externalIP+": ICMP echo request"):
			natted++
		case strings.Contains(f.payload, a1.IP):
			leaked++
		}
	}
	for _, f := range frames["network trunk"] {
		switch {
		case strings.HasPrefix(f.payload, a1.IP+" > "+externalIP+": ICMP echo request") && f.src == dvr1 && f.dst == snatPortA.MAC && f.vlan == subnetA.VLAN:
			redirected++
		case strings.HasPrefix(f.payload, externalIP+" > "+a1.IP+": ICMP echo reply") && f.src == snatPortA.MAC && f.dst == a1.MAC && f.vlan == subnetA.VLAN:
			returned++
		}
	}
	for _, f := range frames["network external"] {
		switch {
		case strings.HasPrefix(f.payload, gatewayIP+" > "+externalIP+": ICMP echo request") && f.src == gatewayPort.MAC && f.dst == externalMAC:
			natReq++
		case strings.HasPrefix(f.payload, externalIP+" > "+gatewayIP+": ICMP echo reply") && f.src == externalMAC && f.dst == gatewayPort.MAC:
			natRep++
		}
	}
	names := d.macNames()
	fmt.Println("     on the network node's trunk (un-NATed, between compute1's copy of r1 and sg-):")
	printExchange(frames["network trunk"], names)
	fmt.Println("     on the network node's external uplink (NATed, from and to qg-):")
	printExchange(frames["network external"], names)

	d.check(r.sent == 3 && r.received == 3, "a1 (compute1, no floating IP) → the external host "+externalIP, "3/3 replies", r.String())
	d.check(natted >= 3 && leaked == 0, "the external host sees a1's requests from r1's gateway IP, never from a1's own address",
		fmt.Sprintf("3 from %s, 0 from %s", gatewayIP, a1.IP), fmt.Sprintf("%d from %s, %d from %s", natted, gatewayIP, leaked, a1.IP))
	d.check(redirected >= 3, "compute1's copy of r1 sends them over VLAN 101 to the network node's sg- port, un-NATed",
		fmt.Sprintf("3 frames %s -> %s (compute1 DVR MAC -> sg-), vlan %d, %s > %s", dvr1, snatPortA.MAC, subnetA.VLAN, a1.IP, externalIP),
		fmt.Sprintf("%d such frames on the network node's trunk", redirected))
	d.check(returned >= 3, "the network node sends the replies from sg- straight back to a1 (un-NATed again)",
		fmt.Sprintf("3 frames %s -> %s, vlan %d, %s > %s", snatPortA.MAC, a1.MAC, subnetA.VLAN, externalIP, a1.IP),
		fmt.Sprintf("%d such frames on the network node's trunk", returned))
	d.check(natReq >= 3 && natRep >= 3, "SNATed, they cross the network node's external uplink, from and to qg-'s MAC",
		fmt.Sprintf("3 requests %s -> %s, %s > %s, and 3 replies back", gatewayPort.MAC, externalMAC, gatewayIP, externalIP),
		fmt.Sprintf("%d requests, %d replies", natReq, natRep))
	c1, c2 := len(mentioning(frames["compute1 external"], externalIP)), len(mentioning(frames["compute2 external"], externalIP))
	d.check(c1+c2 == 0, "no compute host's external uplink carries them: SNAT is the network node's",
		"0 frames", fmt.Sprintf("compute1 %d, compute2 %d", c1, c2))
	return nil
}

// floatingIP shows a VM with a floating IP served by its own compute host: the external
// host reaches it through that host's fg- port only, and the VM's own traffic leaves with
// the floating IP as source.
func (d *demo) floatingIP(ctx context.Context) error {
	fip, b2 := b2FloatingIP.Address, d.cloud.vmNamed(b2FloatingIP.VM)
	fipNS, qrouter := namespace.FIPNamespaceName(extNetworkID), namespace.NamespaceName(routerID)
	section("8. north-south with a floating IP: b2 is " + fip + ", served by its own compute host")
	fmt.Println(wrap(`b2 (compute2, ` + b2.IP + `) has the floating IP ` + fip + `. As with Neutron's DVR, its
own compute host serves it, not the network node: compute2's agent built the namespace
fip-<external network id> with fg- (compute2's own port on the external network, proxy ARP
on: it answers ARP for the floating IP), an rfp-/fpr- veth pair (a /31 of 169.254.64.0/18)
between qrouter- and fip-, a rule that sends b2's traffic to fip-, and the NAT between
` + fip + ` and ` + b2.IP + ` in qrouter-.`))
	fmt.Printf("\n   compute2$ ip -n %s -br -4 addr\n", fipNS)
	out, err := d.nsDevices(ctx, "compute2", fipNS, "fg-", "fpr-")
	if err != nil {
		return err
	}
	fmt.Print(out)
	fmt.Printf("   compute2$ ip -n %s -br -4 addr; ip rule; ip route show table …   (rfp- and b2's rule)\n", qrouter)
	if out, err = d.nsDevices(ctx, "compute2", qrouter, "rfp-"); err != nil {
		return err
	}
	fmt.Print(out)
	if out, err = d.nsPolicyRouting(ctx, "compute2", qrouter, b2.IP+" "); err != nil {
		return err
	}
	fmt.Print(out)

	caps := map[string]captureSpec{"ext": {d.ext.Command, testbed.EndpointInterface, []string{"icmp"}}}
	for _, name := range hostOrder {
		caps[name+" external"] = captureSpec{d.hosts[name].Command, externalIf, []string{"icmp"}}
	}
	stop, err := captureAll(ctx, caps)
	if err != nil {
		return err
	}
	answered, err := arpingAll(ctx, d.ext.Command, testbed.EndpointInterface, fip, 2)
	if err != nil {
		stop()
		return err
	}
	in := ping(ctx, d.ext.Command, fip, 3)
	outbound := ping(ctx, d.vms["b2"].Command, externalIP, 3)
	frames := stop()

	fg := fipGatewayPort.MAC
	var inReq, inRep, outReq, outRep, otherMAC int
	for _, f := range mentioning(frames["compute2 external"], fip) {
		fromExt, toExt := f.src == externalMAC && f.dst == fg, f.src == fg && f.dst == externalMAC
		switch {
		case fromExt && strings.HasPrefix(f.payload, externalIP+" > "+fip+": ICMP echo request"):
			inReq++
		case toExt && strings.HasPrefix(f.payload, fip+" > "+externalIP+": ICMP echo reply"):
			inRep++
		case toExt && strings.HasPrefix(f.payload, fip+" > "+externalIP+": ICMP echo request"):
			outReq++
		case fromExt && strings.HasPrefix(f.payload, externalIP+" > "+fip+": ICMP echo reply"):
			outRep++
		case !fromExt && !toExt:
			otherMAC++
		}
	}
	var fromFIP, leaked int
	for _, f := range frames["ext"] {
		switch {
		case strings.HasPrefix(f.payload, fip+" > "+externalIP+": ICMP echo request"):
			fromFIP++
		case strings.Contains(f.payload, b2.IP) || strings.Contains(f.payload, gatewayIP):
			leaked++
		}
	}
	fmt.Printf("\n   the external host ARPs for %s and pings it 3 times, then b2 pings the external host 3 times,\n   while every host's external uplink and the external host capture; on compute2's external uplink, the first of each:\n", fip)
	printExchange(mentioning(frames["compute2 external"], fip), d.macNames())

	seen := "no answer"
	if len(answered) > 0 {
		seen = "answered by " + strings.Join(answered, ", ")
	}
	d.check(slices.Equal(answered, []string{fg}), "the external host ARPs for "+fip+" (arping, cache flushed): compute2's fg- answers, no other host",
		"answered by "+fg+" only", seen)
	d.check(in.sent == 3 && in.received == 3, "the external host → "+fip+" (b2's floating IP)", "3/3 replies", in.String())
	d.check(outbound.sent == 3 && outbound.received == 3, "b2 (compute2) → the external host "+externalIP, "3/3 replies", outbound.String())
	d.check(fromFIP >= 3 && leaked == 0, "the external host sees b2's requests from its floating IP, never from "+b2.IP+" nor the gateway IP",
		fmt.Sprintf("3 from %s, 0 from %s or %s", fip, b2.IP, gatewayIP), fmt.Sprintf("%d from %s, %d from %s or %s", fromFIP, fip, leaked, b2.IP, gatewayIP))
	d.check(inReq >= 3 && inRep >= 3 && outReq >= 3 && outRep >= 3 && otherMAC == 0,
		"all of it crosses compute2's own external uplink, between the external host and fg-'s MAC "+fg,
		"3 of each: requests to and replies from the floating IP, b2's requests from it and their replies; no other MAC",
		fmt.Sprintf("%d, %d, %d, %d; %d frames with another MAC", inReq, inRep, outReq, outRep, otherMAC))
	n, c1 := len(mentioning(frames["network external"], fip)), len(mentioning(frames["compute1 external"], fip))
	d.check(n+c1 == 0, "none of it crosses the network node's or compute1's external uplink", "0 frames",
		fmt.Sprintf("network %d, compute1 %d", n, c1))
	return nil
}

// captureSpec is a capture to run: where (run), on which interface, with which filter.
type captureSpec struct {
	run    commander
	iface  string
	filter []string
}

// captureAll starts every capture of specs and returns a function that stops them all and
// returns each one's frames by name. When one does not start, those started are stopped.
func captureAll(ctx context.Context, specs map[string]captureSpec) (func() map[string][]frame, error) {
	stops := map[string]func() []frame{}
	stopAll := func() map[string][]frame {
		var mu sync.Mutex
		var wg sync.WaitGroup
		frames := map[string][]frame{}
		for name, stop := range stops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				f := stop()
				mu.Lock()
				frames[name] = f
				mu.Unlock()
			}()
		}
		wg.Wait()
		return frames
	}
	for name, s := range specs {
		stop, err := startCapture(ctx, s.run, s.iface, s.filter...)
		if err != nil {
			stopAll()
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		stops[name] = stop
	}
	return stopAll, nil
}

// mentioning returns the frames whose payload names ip.
func mentioning(frames []frame, ip string) []frame {
	var out []frame
	for _, f := range frames {
		for _, tok := range strings.FieldsFunc(f.payload, func(r rune) bool { return r == ' ' || r == ',' }) {
			if strings.TrimSuffix(tok, ":") == ip {
				out = append(out, f)
				break
			}
		}
	}
	return out
}

// printExchange prints the first frame of each kind of ICMP echo in frames (a kind: source,
// destination, request or reply).
func printExchange(frames []frame, names map[string]string) {
	seen := map[string]bool{}
	for _, f := range frames {
		kind := strings.SplitN(f.payload, ",", 2)[0]
		if !strings.Contains(kind, ": ICMP echo ") || seen[kind] {
			continue
		}
		seen[kind] = true
		printFrame(f, names)
	}
	if len(seen) == 0 {
		fmt.Println("       (no ICMP echo frames)")
	}
}

// printFrame prints a captured frame with the names of its MACs.
func printFrame(f frame, names map[string]string) {
	vlan := "untagged"
	if f.vlan != 0 {
		vlan = fmt.Sprintf("vlan %d", f.vlan)
	}
	src, dst := names[f.src], names[f.dst]
	if src == "" {
		src = "?"
	}
	if dst == "" {
		dst = "?"
	}
	fmt.Printf("       %-17s -> %-17s  %-8s  %s   [%s -> %s]\n", f.src, f.dst, vlan, strings.SplitN(f.payload, ", id", 2)[0], src, dst)
}

// macNames names the MACs of the cloud as the captures show them.
func (d *demo) macNames() map[string]string {
	names := map[string]string{
		subnetA.GatewayMAC: "GATEWAY MAC", subnetB.GatewayMAC: "GATEWAY MAC",
		externalMAC:     "external host",
		gatewayPort.MAC: "qg- (network)", snatPortA.MAC: "sg- (network)", snatPortB.MAC: "sg- (network)",
		fipGatewayPort.MAC: "fg- (compute2)",
	}
	for _, h := range d.cloud.Hosts {
		names[h.DVRMAC] = h.Name + " DVR MAC"
	}
	for _, v := range d.cloud.VMs {
		names[v.MAC] = v.Name
	}
	return names
}

// nsPolicyRouting returns the IPv4 rules of namespace ns on host whose text contains match,
// each followed by the routes of the table it looks up.
func (d *demo) nsPolicyRouting(ctx context.Context, host, ns, match string) (string, error) {
	h := d.hosts[host]
	rules, err := commandOutput(ctx, h, "ip", "-n", ns, "-4", "rule", "show")
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, l := range strings.Split(rules, "\n") {
		if !strings.Contains(l+" ", match) {
			continue
		}
		fmt.Fprintf(&b, "     rule %s\n", strings.Join(strings.Fields(l), " "))
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] != "lookup" {
				continue
			}
			routes, err := commandOutput(ctx, h, "ip", "-n", ns, "-4", "route", "show", "table", f[i+1])
			if err != nil {
				return "", err
			}
			for _, r := range strings.Split(routes, "\n") {
				if r = strings.TrimSpace(r); r != "" && !strings.Contains(r, "proto kernel") {
					fmt.Fprintf(&b, "       table %s: %s\n", f[i+1], r)
				}
			}
		}
	}
	if b.Len() == 0 {
		return "", fmt.Errorf("%s on %s: no rule with %q:\n%s", ns, host, match, rules)
	}
	return b.String(), nil
}
