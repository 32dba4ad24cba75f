package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
)

// demo holds what the run sets up, so that teardown can undo it.
type demo struct {
	dir   string // logs and topologies, kept after the run
	log   *zap.Logger
	start time.Time

	cloud  cloud
	fabric *testbed.Fabric          // the switches between the hosts, and the external host
	ext    *testbed.Endpoint        // the external host
	hosts  map[string]*sandbox.Host // by cloud host name
	topos  map[string]string        // each host's topology file
	cli    string                   // the dvrflow CLI binary
	agents map[string]*agent
	vms    map[string]*sandbox.VM
	failed []string // checks that did not hold
}

// hostOrder is the order hosts are shown in.
var hostOrder = []string{"compute1", "compute2", "network"}

// The fabric's switches, and each host's uplink to them (a port of br-vlan and of br-ex).
const (
	trunkSwitch    = "physnet1"
	externalSwitch = "external"
	trunkIf        = "trunk"
	externalIf     = "external"
	// extHostName is the external host's namespace in the fabric.
	extHostName = "outside"
)

func (d *demo) run(ctx context.Context) (err error) {
	d.cloud = demoCloud()
	d.hosts, d.agents, d.vms, d.topos = map[string]*sandbox.Host{}, map[string]*agent{}, map[string]*sandbox.VM{}, map[string]string{}
	fmt.Println("dvrflow demo: distributed virtual routing (Neutron DVR) on two compute hosts and a network node, with real packets")
	fmt.Println(wrap(`Three simulated hosts, each with its own Open vSwitch, are joined by a VLAN trunk (the provider
network physnet1, on br-vlan) and a flat external network (extnet, on br-ex) where an external
host lives. A distributed router r1 joins subnet-a (10.0.1.0/24, provider VLAN 101) and subnet-b
(10.0.2.0/24, VLAN 102), and has its gateway on the external network.
East-west, every compute host holds a copy of the router, with the same gateway IPs and MACs
everywhere, and routes its own VMs' traffic; a routed frame leaves the host with that host's
DVR MAC as source, so the gateway MAC is never seen twice on the wire. North-south, a VM
without a floating IP goes out through SNAT on the network node (agent_mode dvr_snat), a VM with
one straight out of its own compute host. One dvrflow-agent per host programs Open vSwitch and
builds the router's namespaces as Neutron's L3 agent does.`))

	defer func() {
		if err != nil && ctx.Err() == nil {
			d.showAgentLogs(15)
		}
		if terr := d.teardown(); terr != nil {
			err = errors.Join(err, terr)
		}
	}()
	if err := d.setup(ctx); err != nil {
		return err
	}
	d.showCloud()
	if err := d.showRouterNamespace(ctx, "compute1"); err != nil {
		return err
	}
	d.pings(ctx)
	if err := d.trunkCapture(ctx); err != nil {
		return err
	}
	if err := d.gatewayARP(ctx); err != nil {
		return err
	}
	if err := d.snat(ctx); err != nil {
		return err
	}
	if err := d.floatingIP(ctx); err != nil {
		return err
	}
	if err := d.securityGroups(ctx); err != nil {
		return err
	}
	if err := d.showFlows(ctx, "compute1"); err != nil {
		return err
	}
	for _, a := range d.agents {
		if err := a.running(); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if len(d.failed) > 0 {
		return fmt.Errorf("%d checks did not hold: %s", len(d.failed), strings.Join(d.failed, "; "))
	}
	return nil
}

// setup starts the fabric with the external host, the hosts and their agents, wires the
// hosts' uplinks, plugs the VMs and waits until routing, SNAT and the floating IP work.
func (d *demo) setup(ctx context.Context) error {
	section("1. setting up")
	if err := sandbox.EnsurePackages(ctx, d.log); err != nil {
		return err
	}
	root, err := repoRoot()
	if err != nil {
		return err
	}
	t0 := time.Now()
	bin, err := build(ctx, root, d.dir, "dvrflow-agent")
	if err != nil {
		return err
	}
	if d.cli, err = build(ctx, root, d.dir, "dvrflow"); err != nil {
		return err
	}
	fmt.Printf("   dvrflow-agent and the dvrflow CLI built (%s)\n", since(t0))

	if d.fabric, err = testbed.StartFabric(ctx, "demo-fabric", sandbox.Options{Log: d.log}); err != nil {
		return err
	}
	if d.ext, err = d.fabric.AddEndpoint(ctx, testbed.EndpointSpec{Name: extHostName, Switch: externalSwitch,
		MAC: externalMAC, CIDR: externalIP + "/24"}); err != nil {
		return err
	}
	fmt.Printf("   fabric: switches %s (the VLAN trunk) and %s (the external network), with the external host %s (%s, no route to the tenant subnets)\n",
		trunkSwitch, externalSwitch, externalIP, externalMAC)
	for _, hc := range d.hostsInOrder() {
		name := hc.Name
		h, err := sandbox.Start(ctx, "demo-"+name, sandbox.Options{Log: d.log})
		if err != nil {
			return err
		}
		d.hosts[name] = h
		for sw, ifname := range map[string]string{trunkSwitch: trunkIf, externalSwitch: externalIf} {
			if _, err := d.fabric.Connect(ctx, sw, h, ifname); err != nil {
				return err
			}
		}
		topo, err := d.cloud.writeTopology(d.dir, hc)
		if err != nil {
			return err
		}
		d.topos[name] = topo
		a, err := startAgent(h, name, bin, topo, filepath.Join(d.dir, name+"-agent.log"))
		if err != nil {
			return err
		}
		d.agents[name] = a
		fmt.Printf("   %s (%s): sandbox host up (ovsdb-server pid %d, ovs-vswitchd pid %d); dvrflow-agent pid %d, topology %s\n",
			name, hc.Mode, h.OVSDBPid(), h.VswitchdPid(), a.cmd.Process.Pid, filepath.Base(topo))
	}
	for _, name := range hostOrder {
		h := d.hosts[name]
		if err := d.waitUntil(ctx, 20*time.Second, "the agent on "+name+" creates br-int, br-vlan and br-ex", func() error {
			if _, err := h.Vsctl(ctx, "br-exists", "br-vlan"); err != nil {
				return err
			}
			_, err := h.Vsctl(ctx, "br-exists", "br-ex")
			return err
		}); err != nil {
			return err
		}
		for br, uplink := range map[string]string{"br-vlan": trunkIf, "br-ex": externalIf} {
			if _, err := h.Vsctl(ctx, "--may-exist", "add-port", br, uplink); err != nil {
				return err
			}
		}
	}
	fmt.Printf("   uplinks: every host's %s is a port of its br-vlan (on switch %s), its %s a port of its br-ex (on switch %s)\n",
		trunkIf, trunkSwitch, externalIf, externalSwitch)
	qrouter, snatNS := namespace.NamespaceName(routerID), namespace.SNATNamespaceName(routerID)
	for _, name := range hostOrder {
		if err := d.waitForAddress(ctx, name, qrouter, subnetB.GatewayIP); err != nil {
			return err
		}
	}
	if err := d.waitForAddress(ctx, "network", snatNS, gatewayIP); err != nil {
		return err
	}
	fmt.Printf("   the agents created bridges br-int, br-vlan and br-ex and the router namespace %s on every host,\n   and %s on the network node\n", qrouter, snatNS)
	for _, v := range d.cloud.VMs {
		vm, err := d.hosts[v.Host].AddVM(ctx, sandbox.VMSpec{Name: v.Name, Bridge: "br-int", PortName: "tap" + v.PortID[:11],
			IfaceID: v.PortID, MAC: v.MAC, CIDR: v.IP + "/24", Gateway: subnetOf(v).GatewayIP})
		if err != nil {
			return err
		}
		d.vms[v.Name] = vm
	}
	fmt.Println("   VMs plugged into br-int (a veth per VM, external_ids iface-id = its Neutron port, as Nova does)")
	t0 = time.Now()
	a1, b2 := d.cloud.vmNamed("a1"), d.cloud.vmNamed("b2")
	if err := d.waitUntil(ctx, 20*time.Second, "a1 reaches b2 through the router", func() error {
		if r := ping(ctx, d.vms["a1"].Command, b2.IP, 1); r.received == 0 {
			return errors.New("no reply")
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("   the agents bound the VMs as they appeared: %s (compute1) reaches %s (compute2) through the router %s after plugging\n",
		a1.Name, b2.Name, since(t0))
	if err := d.waitUntil(ctx, 30*time.Second, "a1 reaches the external host through SNAT", func() error {
		if r := ping(ctx, d.vms["a1"].Command, externalIP, 1); r.received == 0 {
			return errors.New("no reply")
		}
		return nil
	}); err != nil {
		return err
	}
	if err := d.waitUntil(ctx, 30*time.Second, "the external host reaches b2's floating IP "+b2FloatingIP.Address, func() error {
		if r := ping(ctx, d.ext.Command, b2FloatingIP.Address, 1); r.received == 0 {
			return errors.New("no reply")
		}
		return nil
	}); err != nil {
		return err
	}
	fmt.Printf("   a1 reaches the external host (SNAT), the external host reaches b2's floating IP %s: %s after plugging\n",
		b2FloatingIP.Address, since(t0))
	return nil
}

// hostsInOrder returns the cloud's hosts in hostOrder.
func (d *demo) hostsInOrder() []host {
	var hs []host
	for _, name := range hostOrder {
		for _, h := range d.cloud.Hosts {
			if h.Name == name {
				hs = append(hs, h)
			}
		}
	}
	return hs
}

// waitForAddress waits until the agent on host has put addr into the namespace ns.
func (d *demo) waitForAddress(ctx context.Context, host, ns, addr string) error {
	h := d.hosts[host]
	return d.waitUntil(ctx, 30*time.Second, "the agent on "+host+" creates "+ns+" with "+addr, func() error {
		out, err := h.Run(ctx, "ip", "-n", ns, "-o", "addr", "show", "to", addr)
		if err == nil && !strings.Contains(out, addr) {
			err = fmt.Errorf("no %s in %s yet", addr, ns)
		}
		return err
	})
}

// waitUntil polls cond every 100 ms until it holds; it gives up after timeout, on ctx, or
// when an agent has exited.
func (d *demo) waitUntil(ctx context.Context, timeout time.Duration, what string, cond func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		for _, a := range d.agents {
			if aerr := a.running(); aerr != nil {
				return fmt.Errorf("%s: %w", what, aerr)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: not within %s: %w", what, timeout, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w", what, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// showCloud prints the cloud's objects.
func (d *demo) showCloud() {
	section("2. the cloud (each agent gets its own view of it: " + filepath.Join(d.dir, "<host>.yaml") + ")")
	fmt.Println("   router r1, distributed: the same interfaces (gateway IP and MAC) on every host")
	for _, s := range []subnet{subnetA, subnetB} {
		fmt.Printf("     %-9s %-12s on %s (provider VLAN %d)   gateway %-9s %s\n", s.Name, s.CIDR, s.NetworkName, s.VLAN, s.GatewayIP, s.GatewayMAC)
	}
	fmt.Printf("   its gateway on the external network public (%s, flat, physical network extnet on br-ex): %s, SNAT on\n", extCIDR, gatewayIP)
	fmt.Println("   hosts     agent_mode  DVR MAC (source of the routed frames a host sends)   VMs and ports")
	for _, hc := range d.hostsInOrder() {
		var what []string
		for _, v := range d.cloud.VMs {
			if v.Host == hc.Name {
				what = append(what, fmt.Sprintf("%s %s (%s)", v.Name, v.IP, v.MAC))
			}
		}
		for _, p := range d.cloud.Ports {
			if p.Host == hc.Name {
				what = append(what, fmt.Sprintf("%s %s (%s)", portRole(p), p.IP, p.MAC))
			}
		}
		fmt.Printf("     %-9s %-11s %-52s %s\n", hc.Name, hc.Mode, hc.DVRMAC, strings.Join(what, ", "))
	}
	for _, f := range d.cloud.FloatingIPs {
		v := d.cloud.vmNamed(f.VM)
		fmt.Printf("   floating IP %s → %s %s (%s)\n", f.Address, v.Name, v.IP, v.Host)
	}
	fmt.Printf("   the external host: %s (%s), on the external network, outside the cloud\n", externalIP, externalMAC)
}

// portRole names a port by the device the agents make of it.
func portRole(p port) string {
	switch p.Owner {
	case northbound.OwnerRouterGateway:
		return "qg- (r1's gateway)"
	case northbound.OwnerRouterCentralizedSNAT:
		return "sg- (r1's SNAT on " + map[string]string{subnetA.ID: subnetA.Name, subnetB.ID: subnetB.Name}[p.SubnetID] + ")"
	case northbound.OwnerFloatingIPAgentGateway:
		return "fg- (floating IP gateway)"
	}
	return string(p.Owner)
}

// showRouterNamespace prints the router copy the agent created on a host.
func (d *demo) showRouterNamespace(ctx context.Context, name string) error {
	ns := "qrouter-" + routerID
	section("3. router r1 on " + name + ": the namespace " + ns + " (created by the agent)")
	qr, err := d.nsDevices(ctx, name, ns, "qr-")
	if err != nil {
		return err
	}
	neigh, err := commandOutput(ctx, d.hosts[name], "ip", "-n", ns, "-4", "neigh", "show", "nud", "permanent")
	if err != nil {
		return err
	}
	fmt.Println("   interfaces (the other end of each veth is a br-int port carrying the router port's iface-id):")
	fmt.Print(qr)
	fmt.Println("   permanent neighbours: every port of the router's subnets, on this host or another")
	fmt.Println("   (a copy of r1 never ARPs across hosts; the agent writes what the topology says):")
	fmt.Print(indent(neigh))
	return nil
}

// pings runs the VM-to-VM pings.
func (d *demo) pings(ctx context.Context) {
	section("4. pings between VMs (3 each)")
	fmt.Println(wrap(`A switched ping keeps its TTL (64); a routed one crosses exactly one router (TTL 63): with
DVR the sender's host routes, and the receiving host delivers straight to the VM.`))
	for _, c := range []struct{ from, to, what string }{
		{"a1", "a2", "same subnet, across hosts: switched on VLAN 101, no router"},
		{"a1", "b1", "subnet-a → subnet-b on compute1: routed by compute1's copy of r1"},
		{"a1", "b2", "subnet-a → subnet-b, compute1 → compute2: routed on compute1, over VLAN 102"},
		{"b2", "a1", "subnet-b → subnet-a, compute2 → compute1: routed on compute2, over VLAN 101"},
		{"a2", "b1", "subnet-a → subnet-b, compute2 → compute1: routed on compute2, over VLAN 102"},
	} {
		from, to := d.cloud.vmNamed(c.from), d.cloud.vmNamed(c.to)
		wantTTL := 64
		if from.SubnetID != to.SubnetID {
			wantTTL = 63
		}
		r := ping(ctx, d.vms[c.from].Command, to.IP, 3)
		d.check(r.received > 0 && r.ttl == wantTTL,
			fmt.Sprintf("%s (%s) → %s (%s): %s", from.Name, from.Host, to.Name, to.IP, c.what),
			fmt.Sprintf("replies with ttl=%d", wantTTL), r.String())
	}
}

// trunkCapture captures the trunk during a routed and a switched ping and checks the frames'
// source MACs and VLANs.
func (d *demo) trunkCapture(ctx context.Context) error {
	section("5. on the wire: tcpdump -e on compute1's uplink to the trunk")
	a1, a2, b2 := d.cloud.vmNamed("a1"), d.cloud.vmNamed("a2"), d.cloud.vmNamed("b2")
	mac1, mac2 := d.cloud.dvrMAC("compute1"), d.cloud.dvrMAC("compute2")
	stop, err := startCapture(ctx, d.hosts["compute1"].Command, trunkIf)
	if err != nil {
		return err
	}
	ping(ctx, d.vms["a1"].Command, b2.IP, 2)
	ping(ctx, d.vms["a1"].Command, a2.IP, 2)
	frames := stop()

	names := map[string]string{mac1: "compute1 DVR MAC", mac2: "compute2 DVR MAC", subnetA.GatewayMAC: "GATEWAY MAC", subnetB.GatewayMAC: "GATEWAY MAC"}
	for _, v := range d.cloud.VMs {
		names[v.MAC] = v.Name
	}
	fmt.Printf("   a1 pings b2 (routed) and a2 (switched), 2 each; the ICMP frames seen (%d frames in all):\n", len(frames))
	fmt.Printf("     %-17s    %-17s  %-8s  %s\n", "source MAC", "destination MAC", "VLAN", "payload")
	var routedReq, routedRep, switched, gwSource int
	for _, f := range frames {
		if f.src == subnetA.GatewayMAC || f.src == subnetB.GatewayMAC {
			gwSource++
		}
		if !strings.Contains(f.payload, "ICMP echo") {
			continue
		}
		fmt.Printf("     %-17s -> %-17s  vlan %-3d  %s   [%s -> %s]\n", f.src, f.dst, f.vlan, strings.SplitN(f.payload, ", id", 2)[0], names[f.src], names[f.dst])
		switch {
		case strings.HasPrefix(f.payload, a1.IP+" > "+b2.IP+": ICMP echo request") && f.src == mac1 && f.dst == b2.MAC && f.vlan == subnetB.VLAN:
			routedReq++
		case strings.HasPrefix(f.payload, b2.IP+" > "+a1.IP+": ICMP echo reply") && f.src == mac2 && f.dst == a1.MAC && f.vlan == subnetA.VLAN:
			routedRep++
		case strings.HasPrefix(f.payload, a1.IP+" > "+a2.IP+": ICMP echo request") && f.src == a1.MAC && f.vlan == subnetA.VLAN:
			switched++
		}
	}
	d.check(routedReq >= 2, "routed a1 → b2 leaves compute1 with compute1's DVR MAC, on subnet-b's VLAN",
		fmt.Sprintf("2 frames %s -> %s, vlan %d", mac1, b2.MAC, subnetB.VLAN), fmt.Sprintf("%d such frames", routedReq))
	d.check(routedRep >= 2, "the reply b2 → a1 is routed on compute2: compute2's DVR MAC, subnet-a's VLAN",
		fmt.Sprintf("2 frames %s -> %s, vlan %d", mac2, a1.MAC, subnetA.VLAN), fmt.Sprintf("%d such frames", routedRep))
	d.check(switched >= 2, "switched a1 → a2 keeps a1's own MAC, on VLAN 101",
		fmt.Sprintf("2 frames %s -> %s, vlan %d", a1.MAC, a2.MAC, subnetA.VLAN), fmt.Sprintf("%d such frames", switched))
	d.check(gwSource == 0, "no frame on the trunk has a gateway MAC as source (each host's copy of r1 uses it)",
		"0 frames", fmt.Sprintf("%d of %d frames", gwSource, len(frames)))
	return nil
}

// gatewayARP shows that VMs' ARP requests for their gateway are answered on their host and
// never reach the trunk.
func (d *demo) gatewayARP(ctx context.Context) error {
	section("6. ARP for a gateway stays on its host")
	fmt.Println(wrap(`Every host answers for the gateway IPs. A VM's broadcast "who-has 10.0.1.1" must be answered
by its own host's copy of r1 and go no further, or every host would answer it. Below, VMs
flush their ARP cache and arping their gateway while the trunk is captured; as a control, a1
also ARPs for a2 on the other host, which must cross the trunk.`))
	drops := func() (uint64, error) {
		var total uint64
		for _, name := range []string{"compute1", "compute2"} {
			out, err := d.dvrflow(ctx, name, "flows", "-o", "json", "--rule", "P12-v4", "br-vlan")
			if err != nil {
				return 0, err
			}
			var recs []struct{ Packets uint64 }
			if err := json.Unmarshal([]byte(out), &recs); err != nil {
				return 0, fmt.Errorf("dvrflow flows -o json on %s: %w", name, err)
			}
			for _, r := range recs {
				total += r.Packets
			}
		}
		return total, nil
	}
	before, err := drops()
	if err != nil {
		return err
	}
	stop, err := startCapture(ctx, d.hosts["compute1"].Command, trunkIf)
	if err != nil {
		return err
	}
	for _, name := range []string{"a1", "b1", "a2", "b2"} {
		v := d.cloud.vmNamed(name)
		s := subnetOf(v)
		mac, err := arping(ctx, d.vms[name], s.GatewayIP, 2)
		if err != nil {
			return err
		}
		seen := "no answer"
		if mac != "" {
			seen = "answered by " + mac
		}
		d.check(mac == s.GatewayMAC, fmt.Sprintf("%s (%s) ARPs for its gateway %s", name, v.Host, s.GatewayIP),
			"answered by "+s.GatewayMAC+" (r1 on "+v.Host+")", seen)
	}
	a2 := d.cloud.vmNamed("a2")
	if _, err := arping(ctx, d.vms["a1"], a2.IP, 1); err != nil {
		return err
	}
	frames := stop()
	after, err := drops()
	if err != nil {
		return err
	}
	var gw, control int
	for _, f := range frames {
		if f.isARPFor(subnetA.GatewayIP) || f.isARPFor(subnetB.GatewayIP) {
			gw++
			fmt.Printf("     leaked: %s -> %s vlan %d %s\n", f.src, f.dst, f.vlan, f.payload)
		}
		if f.isARPFor(a2.IP) {
			control++
			if control == 1 {
				fmt.Printf("   control frame on the trunk: %s -> %s vlan %d  %s\n", f.src, f.dst, f.vlan, f.payload)
			}
		}
	}
	d.check(control > 0, "control: a1's ARP for a2 (compute2) crosses the trunk", "≥ 1 frame", fmt.Sprintf("%d frames", control))
	d.check(gw == 0, "ARP frames for 10.0.1.1 or 10.0.2.1 on the trunk", "none", fmt.Sprintf("%d of %d frames", gw, len(frames)))
	d.check(after-before >= 4, "br-vlan table 1 (DVR_PROCESS_PHYSICAL) drops the gateway ARP on the compute hosts",
		"≥ 4 more packets on its priority-3 arp flows", fmt.Sprintf("%d more", after-before))
	return nil
}

// showFlows prints a host's br-int and br-vlan.
func (d *demo) showFlows(ctx context.Context, name string) error {
	section("10. the pipeline on " + name + ", as the switch reports it (counters include the traffic above)")
	fmt.Println(wrap(`Every flow's cookie says which part of dvrflow made it and for which object (flows.Cookie:
owner mark, category, object hash), so each line below names its owner; table names are the
ones the agent wrote into OVSDB (ovs-ofctl --names prints them too).
Follow a1 → b2: a1's frame to its gateway MAC is switched (NORMAL) to qr-d0000001-00, r1 routes
it out of qr-d0000002-00 with subnet-b's gateway MAC as source, br-vlan table 1 (priority 1)
swaps that for compute1's DVR MAC and table 2 tags provider VLAN 102. The reply arrives from
compute2's DVR MAC: br-vlan table 3 hands it to br-int without MAC learning, br-int table 0
(priority 4) sends it to table 2, which gives it subnet-a's gateway MAC as source, and table
60 hands it to a1's firewall (tables 81 and 82: it belongs to the connection a1 opened), which
outputs it to a1's port.`))
	var local []string
	for id, s := range routerPorts {
		tag, err := d.hosts[name].Vsctl(ctx, "get", "Port", "qr-"+id[:11], "tag")
		if err != nil {
			return err
		}
		local = append(local, fmt.Sprintf("%s (provider VLAN %d) is local VLAN %s", s.NetworkName, s.VLAN, strings.TrimSpace(tag)))
	}
	slices.Sort(local)
	fmt.Println(wrap("Inside the host each network has a local VLAN the agent chose (its br-int ports' tag, dl_vlan\n" +
		"in the flows): " + strings.Join(local, ", ") + ";\nonly the wire carries the provider VLANs (br-vlan table 2 translates)."))
	fmt.Println(wrap(`The listing is the dvrflow CLI's, run on the host as an operator would:
each flow with its rule of Neutron's pipeline (I30, P11, ...) and the object it belongs to.`))
	if err := d.showCLI(ctx, name, "flows", "br-int", "br-vlan"); err != nil {
		return err
	}
	a1, b2 := d.cloud.vmNamed("a1"), d.cloud.vmNamed("b2")
	fmt.Println(wrap(`
The same CLI traces a packet without sending it (ofproto/trace): a1's ping to b2 is routed by
compute1's copy of r1 and leaves on the trunk with compute1's DVR MAC on subnet-b's VLAN.`))
	if err := d.showCLI(ctx, name, "trace", "--port", "tap"+a1.PortID[:11], "--dst", b2.IP,
		"--unixctl", d.hosts[name].VswitchdCtl()); err != nil {
		return err
	}
	fmt.Println(wrap(`
And it compares the switch with what dvrflow would install for the topology (read-only):`))
	if err := d.showCLI(ctx, name, "diff"); err != nil {
		return err
	}
	fmt.Println(wrap(`
The running agent's own view, from its read-only API socket:`))
	if err := d.showCLI(ctx, name, "status"); err != nil {
		return err
	}
	report := filepath.Join(d.dir, name+"-report.html")
	if _, err := d.dvrflow(ctx, name, "report", "--out", report); err != nil {
		return err
	}
	fmt.Printf("\n   %s$ dvrflow report --out %s\n   (one page: the pipeline graph, every flow filterable, the diff; open it in a browser)\n", name, report)
	return nil
}

// showCLI prints a dvrflow command as an operator types it and its output.
func (d *demo) showCLI(ctx context.Context, host string, args ...string) error {
	shown := slices.Clone(args)
	if i := slices.Index(shown, "--unixctl"); i >= 0 {
		shown = slices.Delete(shown, i, i+2)
	}
	fmt.Printf("\n   %s$ dvrflow %s\n", host, strings.Join(shown, " "))
	out, err := d.dvrflow(ctx, host, args...)
	if err != nil {
		return err
	}
	for _, l := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		fmt.Println("   " + l)
	}
	return nil
}

// dvrflow runs the dvrflow CLI on a host, pointed at its switch and topology.
func (d *demo) dvrflow(ctx context.Context, host string, args ...string) (string, error) {
	h := d.hosts[host]
	args = append(args, "--ovs-rundir", h.RunDir(), "--ovsdb-connection", h.DBEndpoint(), "--topology", d.topos[host])
	cmd := h.Command(ctx, d.cli, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("dvrflow %s on %s: %w: %s", strings.Join(args, " "), host, err, strings.TrimSpace(stderr.String()))
	}
	return string(out), nil
}

// check records and prints one expectation.
func (d *demo) check(ok bool, what, expected, seen string) {
	mark := "ok  "
	if !ok {
		mark = "FAIL"
		d.failed = append(d.failed, what)
	}
	fmt.Printf("   [%s] %s\n          expected: %s\n          seen:     %s\n", mark, what, expected, seen)
}

// showAgentLogs prints the end of every agent's log.
func (d *demo) showAgentLogs(n int) {
	for _, name := range hostOrder {
		if a := d.agents[name]; a != nil {
			fmt.Printf("\n   last lines of the agent log on %s (%s):\n%s", name, a.logPath, a.tail(n))
		}
	}
}

// teardown stops the agents (SIGTERM), the VMs and the hosts (by pid), also after Ctrl-C;
// the logs stay.
func (d *demo) teardown() error {
	section("11. teardown")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var errs []error
	for _, name := range hostOrder {
		if a := d.agents[name]; a != nil {
			if err := a.stop(); err != nil {
				errs = append(errs, err)
			}
			fmt.Printf("   %s: dvrflow-agent stopped (SIGTERM); its log: %s (%d lines)\n", name, a.logPath, a.lineCount())
		}
	}
	for _, name := range hostOrder {
		if h := d.hosts[name]; h != nil {
			if err := h.Stop(ctx); err != nil {
				errs = append(errs, err)
				continue
			}
			fmt.Printf("   %s: VMs, router namespaces, ovs-vswitchd, ovsdb-server and namespaces removed\n", name)
		}
	}
	if d.fabric != nil {
		if d.ext != nil {
			if err := d.ext.Remove(ctx); err != nil {
				errs = append(errs, err)
			}
		}
		if err := d.fabric.Close(ctx); err != nil {
			errs = append(errs, err)
		} else {
			fmt.Println("   fabric: the external host, the switches and their namespaces removed")
		}
	}
	_ = os.Remove(filepath.Join(d.dir, "dvrflow-agent"))
	return errors.Join(errs...)
}

func since(t time.Time) string { return time.Since(t).Round(10 * time.Millisecond).String() }
