package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// The north-south cloud of issue 15's acceptance test: a dvr_snat network node and two dvr
// compute nodes; tenant networks on VLAN (physnet1, br-vlan) and VXLAN; one distributed
// router with an interface on each and its gateway on a flat external network (extnet,
// br-ex on every node). A fabric joins the hosts with three switches: the tunnel underlay,
// the VLAN trunk of physnet1, and the external network, where the external host lives.
const (
	nsRouter   = "e0000015-0000-4000-8000-000000000001"
	nsNetVLAN  = "0a000015-0000-4000-8000-000000000001"
	nsNetVXLAN = "0a000015-0000-4000-8000-000000000002"
	nsNetExt   = "0a000015-0000-4000-8000-000000000003"
	nsSubVLAN  = "5b000015-0000-4000-8000-000000000001"
	nsSubVXLAN = "5b000015-0000-4000-8000-000000000002"
	nsSubExt   = "5b000015-0000-4000-8000-000000000003"

	// nsGatewayIP is the router's gateway address (its qg- port, the SNAT address);
	// nsExternalIP the external host's, which has no route to the tenant subnets.
	nsGatewayIP  = "203.0.113.10"
	nsExternalIP = "203.0.113.1"
	nsExtMAC     = "fa:16:3e:15:03:01"

	// Switches of the fabric, and each node's uplink to them.
	nsUnderlaySwitch = "underlay"
	nsTrunkSwitch    = "physnet1"
	nsExternalSwitch = "external"
	nsUnderlayIf     = "ul0"
	nsTrunkIf        = "vl0"
	nsExternalIf     = "ex0"

	// The node names in the topologies (the sandbox hosts get a random suffix).
	nsNetNode  = "ns-net"
	nsCompute1 = "ns-c1"
	nsCompute2 = "ns-c2"
)

// nsNode is a node of the north-south cloud.
type nsNode struct {
	name, mode, ip, dvrMAC string
}

var nsNodes = []nsNode{
	{name: nsNetNode, mode: "dvr_snat", ip: "192.168.75.1", dvrMAC: "fa:16:3f:00:15:01"},
	{name: nsCompute1, mode: "dvr", ip: "192.168.75.2", dvrMAC: "fa:16:3f:00:15:02"},
	{name: nsCompute2, mode: "dvr", ip: "192.168.75.3", dvrMAC: "fa:16:3f:00:15:03"},
}

// nsPort is a port of the cloud; host "" means on every node (a distributed router
// interface: the same MAC and IP everywhere).
type nsPort struct {
	host, id, network, subnet, mac, ip string
	owner                              northbound.DeviceOwner
	deviceID                           string
}

var (
	nsQrVLAN  = nsPort{id: "d1501000-0000-4000-8000-000000000001", network: nsNetVLAN, subnet: nsSubVLAN, mac: "fa:16:3e:15:01:01", ip: "10.15.1.1", owner: northbound.OwnerRouterInterfaceDistributed, deviceID: nsRouter}
	nsQrVXLAN = nsPort{id: "d1502000-0000-4000-8000-000000000002", network: nsNetVXLAN, subnet: nsSubVXLAN, mac: "fa:16:3e:15:02:01", ip: "10.15.2.1", owner: northbound.OwnerRouterInterfaceDistributed, deviceID: nsRouter}
	// The network node's centralized SNAT ports (one per internal subnet) and gateway port.
	nsSgVLAN  = nsPort{host: nsNetNode, id: "5f151000-0000-4000-8000-000000000001", network: nsNetVLAN, subnet: nsSubVLAN, mac: "fa:16:3e:15:01:05", ip: "10.15.1.5", owner: northbound.OwnerRouterCentralizedSNAT, deviceID: nsRouter}
	nsSgVXLAN = nsPort{host: nsNetNode, id: "5f152000-0000-4000-8000-000000000002", network: nsNetVXLAN, subnet: nsSubVXLAN, mac: "fa:16:3e:15:02:05", ip: "10.15.2.5", owner: northbound.OwnerRouterCentralizedSNAT, deviceID: nsRouter}
	nsQg      = nsPort{host: nsNetNode, id: "9e150000-0000-4000-8000-000000000001", network: nsNetExt, subnet: nsSubExt, mac: "fa:16:3e:15:03:0a", ip: nsGatewayIP, owner: northbound.OwnerRouterGateway, deviceID: nsRouter}
	// VMs without a floating IP: one on the VLAN network on compute 1, one on the VXLAN
	// network on compute 2.
	nsVMVLAN  = nsPort{host: nsCompute1, id: "c0151000-0000-4000-8000-000000000011", network: nsNetVLAN, subnet: nsSubVLAN, mac: "fa:16:3e:15:01:11", ip: "10.15.1.11", owner: northbound.OwnerCompute, deviceID: "a0151000-0000-4000-8000-000000000011"}
	nsVMVXLAN = nsPort{host: nsCompute2, id: "c0152000-0000-4000-8000-000000000022", network: nsNetVXLAN, subnet: nsSubVXLAN, mac: "fa:16:3e:15:02:22", ip: "10.15.2.22", owner: northbound.OwnerCompute, deviceID: "a0152000-0000-4000-8000-000000000022"}
)

// nsCloudPorts are the ports the cloud starts with.
var nsCloudPorts = []nsPort{nsQrVLAN, nsQrVXLAN, nsSgVLAN, nsSgVXLAN, nsQg, nsVMVLAN, nsVMVXLAN}

// nsCloud is the model of the north-south cloud, rendered into one topology file per node
// (as neutron-server would hand each agent its view), and what runs it.
type nsCloud struct {
	ports []nsPort
	// snat is the router's enable_snat.
	snat bool
	// floatingIPs are the cloud's floating IPs (see northSouthFloatingIPs).
	floatingIPs []topology.FloatingIP
	// fip is the VM port of the floating IP (nil: not associated).
	fip *nsPort

	top    *testing.T // the test the cloud lives for (agents started later outlive subtests)
	dir    string
	topo   map[string]string // node → its topology file
	fabric *testbed.Fabric
	ext    *testbed.Endpoint
	hosts  map[string]*sandbox.Host
	agents map[string]*runningAgent
	vms    map[string]*sandbox.VM // by port id
}

// topology returns self's view of the cloud.
func (c *nsCloud) topology(self nsNode) topology.File {
	yes := true
	name, mode, ip, mac := self.name, self.mode, self.ip, self.dvrMAC
	f := topology.File{
		Name: "north-south " + self.name,
		Host: &topology.Host{Name: &name, AgentMode: &mode, LocalIP: &ip, DVRMAC: &mac,
			TunnelTypes: []string{"vxlan"}, L2Population: &yes, ARPResponder: &yes,
			BridgeMappings: map[string]string{"physnet1": "br-vlan", "extnet": "br-ex"}},
		Networks: []topology.Network{
			{ID: nsNetVLAN, Name: "tenant-vlan", NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 115},
			{ID: nsNetVXLAN, Name: "tenant-vxlan", NetworkType: "vxlan", SegmentationID: 1515},
			{ID: nsNetExt, Name: "public", NetworkType: "flat", PhysicalNetwork: "extnet", RouterExternal: true},
		},
		Subnets: []topology.Subnet{
			{ID: nsSubVLAN, NetworkID: nsNetVLAN, CIDR: "10.15.1.0/24", GatewayIP: nsQrVLAN.ip, IPVersion: 4},
			{ID: nsSubVXLAN, NetworkID: nsNetVXLAN, CIDR: "10.15.2.0/24", GatewayIP: nsQrVXLAN.ip, IPVersion: 4},
			{ID: nsSubExt, NetworkID: nsNetExt, CIDR: "203.0.113.0/24", GatewayIP: nsExternalIP, IPVersion: 4},
		},
		Ports: []topology.Port{},
		Routers: []topology.Router{{ID: nsRouter, Name: "r1", Distributed: true, ExternalGatewayInfo: &topology.GatewayInfo{
			NetworkID: nsNetExt, EnableSNAT: c.snat,
			ExternalFixedIPs: []topology.FixedIP{{SubnetID: nsSubExt, IPAddress: nsGatewayIP}},
		}}},
		FloatingIPs: c.floatingIPs,
	}
	for _, n := range nsNodes {
		if n.name != self.name {
			f.OtherHosts = append(f.OtherHosts, topology.OtherHost{Name: n.name, IP: n.ip, DVRMAC: n.dvrMAC, TunnelTypes: []string{"vxlan"}})
		}
	}
	for _, p := range c.ports {
		fixed := []topology.FixedIP{{SubnetID: p.subnet, IPAddress: p.ip}}
		switch p.host {
		case "", self.name:
			f.Ports = append(f.Ports, topology.Port{ID: p.id, NetworkID: p.network, MAC: p.mac, DeviceOwner: p.owner,
				DeviceID: p.deviceID, FixedIPs: fixed, PortSecurityEnabled: true, AdminStateUp: true})
		default:
			f.RemotePorts = append(f.RemotePorts, topology.RemotePort{Host: p.host, ID: p.id, NetworkID: p.network,
				MAC: p.mac, DeviceOwner: p.owner, DeviceID: p.deviceID, FixedIPs: fixed})
		}
	}
	return f
}

// write renders every node's topology into its file, atomically (running agents reload it).
func (c *nsCloud) write(t *testing.T) {
	t.Helper()
	for _, n := range nsNodes {
		data, err := json.MarshalIndent(c.topology(n), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		writeFileAtomic(t, c.topo[n.name], data)
	}
}

// startNorthSouthCloud brings the cloud up: the fabric with the external host, the three
// nodes wired to it, their agents, the VMs; it returns once both VMs reach the external
// host.
func startNorthSouthCloud(t *testing.T, ctx context.Context) *nsCloud {
	t.Helper()
	c := &nsCloud{
		ports: slices.Clone(nsCloudPorts),
		snat:  true, top: t, dir: t.TempDir(), topo: map[string]string{},
		hosts: map[string]*sandbox.Host{}, agents: map[string]*runningAgent{}, vms: map[string]*sandbox.VM{},
	}
	c.fabric = testbed.StartFabricForTest(t, "ns-fab")
	ext, err := c.fabric.AddEndpoint(ctx, testbed.EndpointSpec{Name: "ext", Switch: nsExternalSwitch, MAC: nsExtMAC, CIDR: nsExternalIP + "/24"})
	if err != nil {
		t.Fatal(err)
	}
	c.ext = ext
	for _, n := range nsNodes {
		h := sandbox.StartForTest(t, n.name)
		c.hosts[n.name] = h
		c.topo[n.name] = filepath.Join(c.dir, n.name+".json")
		for sw, ifname := range map[string]string{nsUnderlaySwitch: nsUnderlayIf, nsTrunkSwitch: nsTrunkIf, nsExternalSwitch: nsExternalIf} {
			if _, err := c.fabric.Connect(ctx, sw, h, ifname); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.AddUnderlay(ctx, sandbox.UnderlaySpec{Bridge: "br-phy", Uplink: nsUnderlayIf, CIDR: n.ip + "/24"}); err != nil {
			t.Fatal(err)
		}
	}
	c.write(t)
	for _, n := range nsNodes {
		c.agents[n.name] = startAgent(t, c.hosts[n.name], c.topo[n.name])
	}
	for _, n := range nsNodes {
		h := c.hosts[n.name]
		waitFor(t, 20*time.Second, "agent creates br-vlan, br-ex and br-tun on "+n.name, func() error {
			return errors.Join(bridgeExists(ctx, h, "br-vlan"), bridgeExists(ctx, h, "br-ex"), bridgeExists(ctx, h, "br-tun"))
		})
		for br, uplink := range map[string]string{"br-vlan": nsTrunkIf, "br-ex": nsExternalIf} {
			if _, err := h.Vsctl(ctx, "--may-exist", "add-port", br, uplink); err != nil {
				t.Fatal(err)
			}
		}
	}
	snatNS := namespace.SNATNamespaceName(nsRouter)
	waitFor(t, 30*time.Second, "the network node's agent creates "+snatNS+" with the gateway address", func() error {
		out, err := c.hosts[nsNetNode].Run(ctx, "ip", "-n", snatNS, "-o", "addr", "show", "to", nsGatewayIP)
		if err == nil && !strings.Contains(out, nsGatewayIP) {
			err = fmt.Errorf("no %s in %s yet", nsGatewayIP, snatNS)
		}
		return err
	})
	for _, p := range []nsPort{nsVMVLAN, nsVMVXLAN} {
		gw := nsQrVLAN.ip
		if p.subnet == nsSubVXLAN {
			gw = nsQrVXLAN.ip
		}
		vm, err := c.hosts[p.host].AddVM(ctx, sandbox.VMSpec{Name: "vm" + p.id[4:8], Bridge: "br-int", PortName: "tap" + p.id[:11],
			IfaceID: p.id, VMUUID: p.deviceID, MAC: p.mac, CIDR: p.ip + "/24", Gateway: gw})
		if err != nil {
			t.Fatal(err)
		}
		c.vms[p.id] = vm
	}
	for _, p := range []nsPort{nsVMVLAN, nsVMVXLAN} {
		waitFor(t, 30*time.Second, "VM "+p.ip+" on "+p.host+" reaches the external host", func() error {
			return c.vms[p.id].Ping(ctx, nsExternalIP, 1)
		})
	}
	return c
}

// TestNorthSouthTopology checks, without a switch, that every node's topology of the
// north-south cloud is accepted without a single problem, with SNAT on and off: the
// router's gateway, this node's ports and the others' as remote ports.
func TestNorthSouthTopology(t *testing.T) {
	for _, snat := range []bool{true, false} {
		c := &nsCloud{ports: slices.Clone(nsCloudPorts), snat: snat}
		for _, n := range nsNodes {
			t.Run(fmt.Sprintf("%s enable_snat %v", n.name, snat), func(t *testing.T) {
				data, err := json.Marshal(c.topology(n))
				if err != nil {
					t.Fatal(err)
				}
				cfg, m, problems, err := testbed.AgentTopology(data)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range problems {
					t.Errorf("problem: %s", p)
				}
				if string(cfg.AgentMode) != n.mode || cfg.Host != n.name {
					t.Errorf("host %q in agent_mode %q, want %q in %q", cfg.Host, cfg.AgentMode, n.name, n.mode)
				}
				if len(m.Routers) != 1 || m.Routers[0].Gateway == nil || m.Routers[0].Gateway.EnableSNAT != snat ||
					len(m.Routers[0].Gateway.FixedIPs) != 1 || m.Routers[0].Gateway.FixedIPs[0].IP.String() != nsGatewayIP {
					t.Errorf("routers %+v, want %s with its gateway %s on the external network, enable_snat %v", m.Routers, nsRouter, nsGatewayIP, snat)
				}
				local := 0
				for _, p := range c.ports {
					if p.host == "" || p.host == n.name {
						local++
					}
				}
				if len(m.Ports) != local || len(m.RemotePorts) != len(c.ports)-local {
					t.Errorf("%d ports, %d remote ports; want %d, %d", len(m.Ports), len(m.RemotePorts), local, len(c.ports)-local)
				}
			})
		}
	}
}

// TestNorthSouth is issue 15's acceptance test (north-south DVR): real agents on a network
// node and two compute nodes, real packets between VMs and an external host. SNAT first,
// then the floating IPs (northSouthFloatingIPs).
func TestNorthSouth(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	start := time.Now()
	c := startNorthSouthCloud(t, ctx)
	t.Logf("cloud up in %s", time.Since(start).Round(time.Millisecond))

	for _, vm := range []nsPort{nsVMVLAN, nsVMVXLAN} {
		t.Run("SNAT: "+vm.ip+" on "+vm.host+" reaches the external host as the gateway IP through the network node", func(t *testing.T) {
			c.checkSNAT(t, ctx, vm)
		})
	}
	for _, n := range nsNodes {
		t.Run("agent SIGKILL and restart on "+n.name+" ("+n.mode+") during pings through SNAT: no loss, no change", func(t *testing.T) {
			c.checkAgentRestart(t, ctx, n.name, c.snatPings())
		})
	}
	t.Run("enable_snat false: no reply, nothing NATed", func(t *testing.T) {
		c.checkSNATDisabled(t, ctx)
	})
	northSouthFloatingIPs(t, ctx, c)
}

// inSNATNamespace returns a command that runs in the router's snat namespace on the
// network node.
func (c *nsCloud) inSNATNamespace(ctx context.Context, name string, args ...string) *exec.Cmd {
	return c.hosts[nsNetNode].Command(ctx, "ip", append([]string{"netns", "exec", namespace.SNATNamespaceName(nsRouter), name}, args...)...)
}

// vm returns the VM of port p.
func (c *nsCloud) vm(p nsPort) *sandbox.VM { return c.vms[p.id] }

// checkSNAT: vm pings the external host and gets every reply; the external host sees only
// the router's gateway IP as the source; the VM's packets reach the network node's sg-
// device un-NATed (routed there by the compute node's router) and the replies leave it for
// the VM; the NATed requests and their replies cross the network node's external uplink
// (with the qg- MAC), and neither compute node's.
func (c *nsCloud) checkSNAT(t *testing.T, ctx context.Context, vm nsPort) {
	extCap := startCapture(t, ctx, c.ext.Command, "-i", testbed.EndpointInterface, "-n", "-l", "icmp")
	// The network node's sg- device of the VM's subnet, in the snat namespace: where the
	// compute node's router sends the VM's packet (the SNAT redirect).
	sg, qr := nsSgVLAN, nsQrVLAN
	if vm.subnet == nsSubVXLAN {
		sg, qr = nsSgVXLAN, nsQrVXLAN
	}
	sgCap := startCapture(t, ctx, c.inSNATNamespace, "-i", namespace.SNATDeviceName(sg.id), "-e", "-n", "-l", "icmp")
	uplinks := map[string]func() string{}
	for _, n := range nsNodes {
		uplinks[n.name] = startCapture(t, ctx, c.hosts[n.name].Command, "-i", nsExternalIf, "-e", "-n", "-l", "icmp")
	}
	const count = 5
	sent, got, out := pingCount(ctx, c.vm(vm).Run, nsExternalIP, count, 200*time.Millisecond)
	if sent != count || got != count {
		t.Errorf("%s → external host %s: %d sent, %d replies; want %d of %d:\n%s", vm.ip, nsExternalIP, sent, got, count, count, out)
	}
	seen := extCap()
	natted := 0
	for _, l := range strings.Split(seen, "\n") {
		switch {
		case strings.Contains(l, nsGatewayIP+" > "+nsExternalIP+": ICMP echo request"):
			natted++
		case strings.Contains(l, vm.ip+" > "):
			t.Errorf("the external host saw the VM's own address %s: %s", vm.ip, l)
		}
	}
	if natted < count {
		t.Errorf("the external host saw %d echo requests from the gateway IP %s, want ≥ %d:\n%s", natted, nsGatewayIP, count, seen)
	}
	evidence := []string{fmt.Sprintf("%d/%d replies; the external host saw %d requests from %s", got, sent, natted, nsGatewayIP)}
	redirected, returned := 0, 0
	inside := sgCap()
	for _, f := range parseTrunk(inside) {
		switch {
		case strings.Contains(f.text, vm.ip+" > "+nsExternalIP+": ICMP echo request"):
			redirected++
			if f.src != qr.mac || f.dst != sg.mac {
				t.Errorf("the VM's request reached sg- from %s to %s, want from the router interface's MAC %s (the compute node's DVR MAC translated back) to sg-'s %s: %s", f.src, f.dst, qr.mac, sg.mac, f.text)
			}
		case strings.Contains(f.text, nsExternalIP+" > "+vm.ip+": ICMP echo reply"):
			returned++
			if f.src != sg.mac || f.dst != vm.mac {
				t.Errorf("the reply left sg- from %s to %s, want from sg-'s %s to the VM's %s: %s", f.src, f.dst, sg.mac, vm.mac, f.text)
			}
		}
	}
	if redirected < count || returned < count {
		t.Errorf("the network node's %s saw %d of the VM's requests (un-NATed) and sent %d replies to it, want ≥ %d each:\n%s", namespace.SNATDeviceName(sg.id), redirected, returned, count, inside)
	}
	evidence = append(evidence, fmt.Sprintf("the network node's sg- saw %d requests from %s, sent %d replies", redirected, vm.ip, returned))
	for _, n := range nsNodes {
		wire := uplinks[n.name]()
		requests, replies := 0, 0
		for _, l := range strings.Split(wire, "\n") {
			switch {
			case strings.Contains(l, nsGatewayIP+" > "+nsExternalIP+": ICMP echo request"):
				requests++
				if !strings.HasPrefix(strings.Fields(l)[1], nsQg.mac) {
					t.Errorf("%s's external uplink: a request from the gateway IP without the qg- MAC %s as source: %s", n.name, nsQg.mac, l)
				}
			case strings.Contains(l, nsExternalIP+" > "+nsGatewayIP+": ICMP echo reply"):
				replies++
			}
		}
		evidence = append(evidence, fmt.Sprintf("%s's external uplink: %d requests, %d replies", n.name, requests, replies))
		switch {
		case n.name == nsNetNode && (requests < count || replies < count):
			t.Errorf("the network node's external uplink carried %d requests and %d replies of %s through SNAT, want ≥ %d each:\n%s", requests, replies, vm.ip, count, wire)
		case n.name != nsNetNode && requests+replies > 0:
			t.Errorf("compute node %s's external uplink carried %d requests and %d replies through SNAT, want none (SNAT is on the network node):\n%s", n.name, requests, replies, wire)
		}
	}
	t.Logf("%s → %s: %s", vm.ip, nsExternalIP, strings.Join(evidence, "; "))
}

// nsPing is a ping of a restart check: from a namespace (run makes its commands) to an
// address.
type nsPing struct {
	from string
	run  func(context.Context, string, ...string) *exec.Cmd
	to   string
}

// snatPings are both VMs pinging the external host through SNAT.
func (c *nsCloud) snatPings() []nsPing {
	return []nsPing{{nsVMVLAN.ip, c.vm(nsVMVLAN).Command, nsExternalIP}, {nsVMVXLAN.ip, c.vm(nsVMVXLAN).Command, nsExternalIP}}
}

// checkAgentRestart SIGKILLs the agent of node while pings run every 100 ms, starts it
// again and checks that no ping was lost and that the new agent changed nothing: 0
// flow-mods, 0 changes to the router namespaces, the same flows on every bridge, and the
// same namespaces, devices, addresses, rules, routes, NAT and allocation files (the
// node's listing).
func (c *nsCloud) checkAgentRestart(t *testing.T, ctx context.Context, node string, through []nsPing) {
	h := c.hosts[node]
	bridges := []string{"br-int", "br-tun", "br-vlan", "br-ex"}
	before := map[string]installed{}
	for _, br := range bridges {
		if before[br] = installedByAgent(t, ctx, h, br); len(before[br]) == 0 {
			t.Fatalf("no flows on %s of %s to compare after the restart", br, node)
		}
	}
	listed := c.listing(t, ctx, node)
	var pings []*streamPing
	for _, s := range through {
		// 100 pings every 100 ms: a 10 s window, which the kill and restart must fall in.
		p := startStreamPing(t, ctx, s.run, s.to, 100, 100*time.Millisecond)
		p.from = s.from
		pings = append(pings, p)
	}
	for _, p := range pings {
		p.waitReply(t, 5*time.Second)
	}
	old := c.agents[node]
	if err := old.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-old.done
	restarted := time.Now()
	a := startAgent(c.top, h, c.topo[node])
	c.agents[node] = a
	var flowMods, nsChanges int
	waitFor(t, 30*time.Second, "the restarted agent's first reconcile of flows and router namespaces", func() error {
		var err1, err2 error
		flowMods, err1 = logField(a.Log(), "converged", "flow_mods")
		nsChanges, err2 = logField(a.Log(), "router namespaces applied", "changes")
		return errors.Join(err1, err2)
	})
	t.Logf("the agent on %s converged %s after the restart: %d flow-mods, %d router namespace changes",
		node, time.Since(restarted).Round(time.Millisecond), flowMods, nsChanges)
	for _, p := range pings {
		if p.ended() {
			t.Errorf("ping %s ended before the restarted agent converged: the window does not cover the restart", p.args)
		}
	}
	if flowMods != 0 || nsChanges != 0 {
		t.Errorf("the restarted agent made %d flow-mods and %d router namespace changes, want 0 and 0:\n%s", flowMods, nsChanges, a.Log())
	}
	for _, p := range pings {
		sent, got, out := p.result(t)
		if sent != 100 || got != sent {
			t.Errorf("ping %s across the agent's SIGKILL and restart: %d sent, %d replies; want 100 of 100:\n%s", p.args, sent, got, out)
		}
		t.Logf("ping %s (from %s) across the restart: %d/%d replies", p.args, p.from, got, sent)
	}
	for _, br := range bridges {
		if removed, added := changes(before[br], installedByAgent(t, ctx, h, br)); len(removed)+len(added) > 0 {
			t.Errorf("%s's flows on %s changed across the restart:\n removed:\n%s\n added:\n%s", br, node, lines(removed), lines(added))
		}
	}
	if gone, added := listingDiff(listed, c.listing(t, ctx, node)); len(gone)+len(added) > 0 {
		t.Errorf("%s's namespaces, devices, addresses, rules, routes, NAT or allocation files changed across the restart:\n gone:\n%s\n new:\n%s", node, lines(gone), lines(added))
	} else {
		var kept []string // the floating IPs' pair and priority, in the files and in qrouter-
		for _, l := range listed {
			if strings.HasPrefix(l, namespace.LinkLocalFile+": ") || strings.HasPrefix(l, namespace.FIPPriorityFile+": ") ||
				strings.Contains(l, " rule: ") && strings.Contains(l+" ", fmt.Sprintf(" lookup %d ", namespace.FIPRouteTable)) ||
				strings.Contains(l, " addr: ") && strings.Contains(l, namespace.RouterToFIPDevicePrefix) {
				kept = append(kept, l)
			}
		}
		t.Logf("%s's listing (%d lines: namespaces, devices, addresses, rules, routes, NAT, allocation files, flows) is the same after the restart; floating IP pair and priority: %q",
			node, len(listed), kept)
	}
	if strings.Contains(a.Log(), "gratuitous ARP sent") {
		t.Errorf("the restarted agent on %s sent a gratuitous ARP (a floating IP it already served):\n%s", node, a.Log())
	}
}

// installedByAgent is dumpInstalled less the flows the switch learnt from traffic (see
// agentFlows): the pings make those, not the agent.
func installedByAgent(t *testing.T, ctx context.Context, h *sandbox.Host, br string) installed {
	t.Helper()
	all := dumpInstalled(t, ctx, h, br)
	set := installed{}
	for _, l := range agentFlows(slices.Collect(maps.Keys(all))) {
		set[l] = all[l]
	}
	return set
}

// checkSNATDisabled turns enable_snat off: the network node's agent removes the SNAT rule,
// a VM's ping to the external host gets no reply, and the external host sees no packet from
// the gateway IP (it sees the VM's own address: the router still forwards, un-NATed). It
// turns SNAT back on and waits until the VM reaches the external host again.
func (c *nsCloud) checkSNATDisabled(t *testing.T, ctx context.Context) {
	snatNS := namespace.SNATNamespaceName(nsRouter)
	natRules := func() (string, error) {
		out, err := c.inSNATNamespace(ctx, "nft", "list", "ruleset").CombinedOutput()
		return string(out), err
	}
	if out, err := natRules(); err != nil || !snatRule.MatchString(out) {
		t.Fatalf("before: no SNAT rule in %s on the network node (%v):\n%s", snatNS, err, out)
	}
	c.snat = false
	c.write(t)
	waitFor(t, 15*time.Second, "the network node's agent removes the SNAT rule", func() error {
		out, err := natRules()
		if err != nil {
			return err
		}
		if snatRule.MatchString(out) {
			return fmt.Errorf("%s still has:\n%s", snatNS, out)
		}
		return nil
	})
	vm := nsVMVLAN
	extCap := startCapture(t, ctx, c.ext.Command, "-i", testbed.EndpointInterface, "-n", "-l", "icmp")
	sent, got, out := pingCount(ctx, c.vm(vm).Run, nsExternalIP, 3, 200*time.Millisecond)
	seen := extCap()
	if sent != 3 || got != 0 {
		t.Errorf("%s → external host with enable_snat false: %d sent, %d replies; want 3 sent, 0 replies:\n%s", vm.ip, sent, got, out)
	}
	own := 0
	for _, l := range strings.Split(seen, "\n") {
		switch {
		case strings.Contains(l, nsGatewayIP+" > "):
			t.Errorf("the external host saw a packet from the gateway IP with enable_snat false: %s", l)
		case strings.Contains(l, vm.ip+" > "+nsExternalIP+": ICMP echo request"):
			own++
		}
	}
	if own < 3 {
		t.Errorf("the external host saw %d echo requests from the VM's own address %s, want ≥ 3 (forwarded un-NATed; without them the capture proves nothing):\n%s", own, vm.ip, seen)
	}
	t.Logf("enable_snat false: %s → %s: %d/%d replies; the external host saw %d requests from the VM's own address, none from %s; no snat rule in %s",
		vm.ip, nsExternalIP, got, sent, own, nsGatewayIP, snatNS)
	c.snat = true
	c.write(t)
	waitFor(t, 15*time.Second, "the VM reaches the external host again with enable_snat true", func() error {
		return c.vm(vm).Ping(ctx, nsExternalIP, 1)
	})
}

// pingCount pings ip count times every interval through run (a VM's or endpoint's Run) and
// returns how many requests went out and how many replies came back, and ping's output.
func pingCount(ctx context.Context, run func(context.Context, string, ...string) (string, error), ip string, count int, interval time.Duration) (sent, got int, out string) {
	out, _ = run(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "1", ip)
	if m := pingSummary.FindStringSubmatch(out); m != nil {
		sent, _ = strconv.Atoi(m[1])
		got, _ = strconv.Atoi(m[2])
	}
	return sent, got, out
}

// streamPing is a ping running in the background whose first reply can be waited for.
type streamPing struct {
	from  string // the namespace it runs in
	args  string
	out   *lockedBuffer
	first chan struct{}
	done  chan struct{}
}

// startStreamPing starts `ping -c count -i interval ip` through run; the ping is stopped
// when the test ends.
func startStreamPing(t *testing.T, ctx context.Context, run func(context.Context, string, ...string) *exec.Cmd, ip string, count int, interval time.Duration) *streamPing {
	t.Helper()
	args := []string{"-n", "-c", strconv.Itoa(count), "-i", fmt.Sprintf("%.3f", interval.Seconds()), "-W", "1", ip}
	p := &streamPing{args: strings.Join(args, " "), first: make(chan struct{}), done: make(chan struct{})}
	p.out = &lockedBuffer{notify: func(s string) bool { return strings.Contains(s, " bytes from ") }, ready: p.first}
	pctx, cancel := context.WithCancel(ctx)
	cmd := run(pctx, "ping", args...)
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start ping %s: %v", p.args, err)
	}
	go func() { _ = cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { cancel(); <-p.done })
	return p
}

// waitReply waits for the ping's first reply.
func (p *streamPing) waitReply(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.first:
	case <-p.done:
		t.Fatalf("ping %s ended without a reply:\n%s", p.args, p.out.String())
	case <-time.After(timeout):
		t.Fatalf("ping %s: no reply within %s:\n%s", p.args, timeout, p.out.String())
	}
}

// ended reports whether the ping has exited.
func (p *streamPing) ended() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// result waits for the ping to end and returns its counts of requests and replies.
func (p *streamPing) result(t *testing.T) (sent, got int, out string) {
	t.Helper()
	<-p.done
	out = p.out.String()
	m := pingSummary.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping %s: no summary:\n%s", p.args, out)
	}
	sent, _ = strconv.Atoi(m[1])
	got, _ = strconv.Atoi(m[2])
	return sent, got, out
}

// logField returns the integer field of the first line of the agent's log whose message
// is msg (zap's console encoding: time, level, caller, message, then the fields as JSON).
func logField(log, msg, field string) (int, error) {
	for _, l := range strings.Split(log, "\n") {
		_, fields, ok := strings.Cut(l, "\t"+msg+"\t{")
		if !ok {
			continue
		}
		var entry map[string]any
		if err := json.Unmarshal([]byte("{"+fields), &entry); err != nil {
			return 0, fmt.Errorf("log line %q: %w", l, err)
		}
		v, ok := entry[field].(float64)
		if !ok {
			return 0, fmt.Errorf("log line %q has no number %s", l, field)
		}
		return int(v), nil
	}
	return 0, fmt.Errorf("no %q in the log yet", msg)
}

// snatRule finds a source NAT statement in `nft list ruleset`.
var snatRule = regexp.MustCompile(`\bsnat (ip )?to `)
