package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// The cloud of TestFirewall (issue "security-groups": Neutron's openvswitch firewall
// driver): two DVR compute nodes joined by a fabric (the VXLAN underlay and physnet1's VLAN
// trunk); a VLAN network and a VXLAN network joined by a distributed router; VMs in three
// security groups on both nodes and networks, and one port without port security. Every
// VM runs echo servers on the same TCP and UDP ports, so that what decides whether a
// connection works is the firewall, never a missing listener.
const (
	fwRouter   = "e00000f1-0000-4000-8000-000000000001"
	fwNetVLAN  = "0a0000f1-0000-4000-8000-000000000001"
	fwNetVXLAN = "0a0000f1-0000-4000-8000-000000000002"
	fwSubVLAN  = "5b0000f1-0000-4000-8000-000000000001"
	fwSubVXLAN = "5b0000f1-0000-4000-8000-000000000002"

	// The security groups.
	fwWeb    = "5ec000f1-0000-4000-8000-000000000001" // TCP 80, ICMP, UDP 5000–5010 from anywhere; TCP 9000 from 10.20.0.0/16
	fwDB     = "5ec000f1-0000-4000-8000-000000000002" // TCP 5432 from members of web
	fwClient = "5ec000f1-0000-4000-8000-000000000003" // nothing in
	fwSink   = "5ec000f1-0000-4000-8000-000000000004" // TCP 80 in, TCP 81 from address group admins, no egress rule at all
	// fwAdmins is an address group: cli2's address and a range nobody of the cloud is in.
	fwAdmins = "adc000f1-0000-4000-8000-000000000001"
	// fwSessionRule is web's rule for TCP 9000, which the test removes.
	fwSessionRule = "7e1000f1-0000-4000-8000-000000000009"

	// The ports every VM listens on.
	fwHTTP     = 80   // allowed into web
	fwClosed   = 81   // allowed nowhere (but open everywhere)
	fwPG       = 5432 // allowed into db from web
	fwSession  = 9000 // allowed into web by fwSessionRule
	fwUDPLow   = 5000 // web's UDP range is 5000–5010
	fwUDPMid   = 5005
	fwUDPSpoof = 5007
	fwUDPHigh  = 5010
	fwUDPOut   = 5011 // just past the range

	// fwProbeTimeout bounds one probe: TCP retransmits its SYN after 1 s, so an allowed
	// connection survives one lost packet; a dropped one is silent for the whole time.
	fwProbeTimeout = 3 * time.Second
	// fwCutBound is how soon after the topology file changes a connection whose rule was
	// removed must stop getting through.
	fwCutBound = 5 * time.Second

	// Fabric switches and each node's uplink to them.
	fwUnderlaySwitch = "underlay"
	fwTrunkSwitch    = "physnet1"
	fwUnderlayIf     = "ul0"
	fwTrunkIf        = "vl0"
)

var (
	fwTCPPorts = []int{fwHTTP, fwClosed, fwPG, fwSession}
	fwUDPPorts = []int{fwUDPLow, fwUDPMid, fwUDPSpoof, fwUDPHigh, fwUDPOut}
)

// fwNode is a compute node of the cloud (the sandbox host gets a random suffix).
type fwNode struct{ name, ip, dvrMAC string }

var fwNodes = []fwNode{
	{name: "fw-c1", ip: "192.168.76.1", dvrMAC: "fa:16:3f:00:f1:01"},
	{name: "fw-c2", ip: "192.168.76.2", dvrMAC: "fa:16:3f:00:f1:02"},
}

// fwPort is a port of the cloud. host "" means on every node (a distributed router
// interface). The first 11 characters of the ids differ: they name the OVS ports.
type fwPort struct {
	name, host, id, network, subnet, mac, ip string
	owner                                    northbound.DeviceOwner
	groups                                   []string
	noPortSecurity                           bool
	addressPairs                             []string // allowed_address_pairs (the port's MAC)
}

// fwVM returns the port of VM name on node host, on the VLAN ("v", 10.20.1.0/24) or VXLAN
// ("x", 10.20.2.0/24) network, host part n, in groups.
func fwVM(name, host, net string, n int, groups ...string) fwPort {
	network, subnet, third := fwNetVLAN, fwSubVLAN, 1
	if net == "x" {
		network, subnet, third = fwNetVXLAN, fwSubVXLAN, 2
	}
	return fwPort{name: name, host: host, network: network, subnet: subnet, groups: groups,
		id:    fmt.Sprintf("c%d%02d00f1-0000-4000-8000-0000000000%02d", third, n, n),
		mac:   fmt.Sprintf("fa:16:3e:f1:%02x:%02x", third, n),
		ip:    fmt.Sprintf("10.20.%d.%d", third, n),
		owner: northbound.OwnerCompute}
}

// withAddressPairs returns p with allowed address pairs ips.
func (p fwPort) withAddressPairs(ips ...string) fwPort { p.addressPairs = ips; return p }

// withoutPortSecurity returns p with port_security_enabled false.
func (p fwPort) withoutPortSecurity() fwPort { p.noPortSecurity = true; return p }

// The router's interfaces and the VMs. On fw-c1: web1 (with an allowed address pair) and
// db1 (VLAN), webx1 and open1 (VXLAN, open1 without port security); on fw-c2: web2 and
// sink2 (VLAN) and cli2 (VXLAN).
var (
	fwQrVLAN  = fwPort{name: "qr-v", id: "d10000f1-0000-4000-8000-000000000001", network: fwNetVLAN, subnet: fwSubVLAN, mac: "fa:16:3e:f1:01:01", ip: "10.20.1.1", owner: northbound.OwnerRouterInterfaceDistributed}
	fwQrVXLAN = fwPort{name: "qr-x", id: "d20000f1-0000-4000-8000-000000000002", network: fwNetVXLAN, subnet: fwSubVXLAN, mac: "fa:16:3e:f1:02:01", ip: "10.20.2.1", owner: northbound.OwnerRouterInterfaceDistributed}
	fwVMs     = []fwPort{
		fwVM("web1", "fw-c1", "v", 11, fwWeb).withAddressPairs(fwPairIP),
		fwVM("db1", "fw-c1", "v", 12, fwDB),
		fwVM("webx1", "fw-c1", "x", 12, fwWeb),
		fwVM("open1", "fw-c1", "x", 31).withoutPortSecurity(),
		fwVM("web2", "fw-c2", "v", 21, fwWeb),
		fwVM("cli2", "fw-c2", "x", 21, fwClient),
		fwVM("sink2", "fw-c2", "v", 22, fwSink),
	}
)

// fwPairIP is web1's allowed address pair: it may send from it.
const fwPairIP = "10.20.1.98"

// fwSpoofIP returns the address a VM of the given network sends from when it spoofs: in
// its subnet, held by no port.
func fwSpoofIP(p fwPort) string {
	if p.network == fwNetVLAN {
		return "10.20.1.99"
	}
	return "10.20.2.99"
}

// fwGroups returns the cloud's security groups; withSession keeps web's TCP 9000 rule.
// Neutron gives every new group the egress rules "any IPv4" and "any IPv6"; a topology
// file lists them as the API shows them.
func fwGroups(withSession bool) []topology.SecurityGroup {
	port := func(n int) *int { return &n }
	egress := func(group string) []topology.SecurityGroupRule {
		return []topology.SecurityGroupRule{
			{ID: "7e1" + group[3:32] + group[34:] + "e4", Direction: "egress", EtherType: "IPv4"},
			{ID: "7e1" + group[3:32] + group[34:] + "e6", Direction: "egress", EtherType: "IPv6"},
		}
	}
	web := append(egress(fwWeb),
		topology.SecurityGroupRule{ID: "7e1000f1-0000-4000-8000-000000000001", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: port(fwHTTP), PortRangeMax: port(fwHTTP)},
		topology.SecurityGroupRule{ID: "7e1000f1-0000-4000-8000-000000000002", Direction: "ingress", EtherType: "IPv4", Protocol: "icmp"},
		topology.SecurityGroupRule{ID: "7e1000f1-0000-4000-8000-000000000003", Direction: "ingress", EtherType: "IPv4", Protocol: "udp", PortRangeMin: port(fwUDPLow), PortRangeMax: port(fwUDPHigh)},
	)
	if withSession {
		web = append(web, topology.SecurityGroupRule{ID: fwSessionRule, Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(fwSession), PortRangeMax: port(fwSession), RemoteIPPrefix: "10.20.0.0/16"})
	}
	db := append(egress(fwDB),
		topology.SecurityGroupRule{ID: "7e1000f1-0000-4000-8000-000000000004", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(fwPG), PortRangeMax: port(fwPG), RemoteGroupID: fwWeb})
	// sink has no egress rule (as after an operator deleted the default ones): its VMs
	// open no connection, and answer those it takes in.
	sink := []topology.SecurityGroupRule{
		{ID: "7e1000f1-0000-4000-8000-000000000005", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(fwHTTP), PortRangeMax: port(fwHTTP)},
		{ID: "7e1000f1-0000-4000-8000-000000000006", Direction: "ingress", EtherType: "IPv4", Protocol: "tcp",
			PortRangeMin: port(fwClosed), PortRangeMax: port(fwClosed), RemoteAddressGroupID: fwAdmins},
	}
	return []topology.SecurityGroup{
		{ID: fwWeb, Name: "web", Stateful: true, Rules: web},
		{ID: fwDB, Name: "db", Stateful: true, Rules: db},
		{ID: fwClient, Name: "client", Stateful: true, Rules: egress(fwClient)},
		{ID: fwSink, Name: "sink", Stateful: true, Rules: sink},
	}
}

// fwCloud is the cloud's desired state, rendered into one topology file per node, and what
// runs it.
type fwCloud struct {
	// driver is the agents' firewall_driver; filtering is driver == "openvswitch".
	driver    string
	filtering bool
	ports     []fwPort // router interfaces and VMs
	// withSession keeps web's TCP 9000 rule.
	withSession bool

	// top is the test the cloud belongs to: processes it starts live as long as it does.
	top    *testing.T
	dir    string
	topo   map[string]string // node → topology file
	hosts  map[string]*sandbox.Host
	agents map[string]*runningAgent
	vms    map[string]*sandbox.VM // by VM name
	ns     map[string]string      // VM name → its network namespace file
}

func newFWCloud(driver string) *fwCloud {
	c := &fwCloud{driver: driver, filtering: driver == "openvswitch", withSession: true,
		ports: []fwPort{fwQrVLAN, fwQrVXLAN}, topo: map[string]string{}, hosts: map[string]*sandbox.Host{},
		agents: map[string]*runningAgent{}, vms: map[string]*sandbox.VM{}, ns: map[string]string{}}
	for _, p := range fwVMs {
		p.groups = slices.Clone(p.groups)
		c.ports = append(c.ports, p)
	}
	return c
}

// port returns the port of VM name.
func (c *fwCloud) port(name string) *fwPort {
	for i := range c.ports {
		if c.ports[i].name == name {
			return &c.ports[i]
		}
	}
	panic("no VM " + name)
}

// addr returns "ip:port" of VM name.
func (c *fwCloud) addr(name string, port int) string {
	return c.port(name).ip + ":" + strconv.Itoa(port)
}

// topology returns self's view of the cloud.
func (c *fwCloud) topology(self fwNode) topology.File {
	yes := true
	name, mode, ip, mac := self.name, "dvr", self.ip, self.dvrMAC
	f := topology.File{
		Name:        "firewall " + self.name,
		Description: "TestFirewall: security groups on a DVR cloud, firewall_driver " + c.driver,
		Host: &topology.Host{Name: &name, AgentMode: &mode, LocalIP: &ip, DVRMAC: &mac,
			TunnelTypes: []string{"vxlan"}, L2Population: &yes, ARPResponder: &yes,
			BridgeMappings: map[string]string{"physnet1": "br-vlan"}},
		Networks: []topology.Network{
			{ID: fwNetVLAN, Name: "fw-vlan", NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 120},
			{ID: fwNetVXLAN, Name: "fw-vxlan", NetworkType: "vxlan", SegmentationID: 1020},
		},
		Subnets: []topology.Subnet{
			{ID: fwSubVLAN, NetworkID: fwNetVLAN, CIDR: "10.20.1.0/24", GatewayIP: fwQrVLAN.ip, IPVersion: 4},
			{ID: fwSubVXLAN, NetworkID: fwNetVXLAN, CIDR: "10.20.2.0/24", GatewayIP: fwQrVXLAN.ip, IPVersion: 4},
		},
		Ports:          []topology.Port{},
		Routers:        []topology.Router{{ID: fwRouter, Name: "fw-r1", Distributed: true}},
		SecurityGroups: fwGroups(c.withSession),
		AddressGroups:  []topology.AddressGroup{{ID: fwAdmins, Name: "admins", Addresses: []string{c.port("cli2").ip + "/32", "198.51.100.0/28"}}},
	}
	for _, n := range fwNodes {
		if n.name != self.name {
			f.OtherHosts = append(f.OtherHosts, topology.OtherHost{Name: n.name, IP: n.ip, DVRMAC: n.dvrMAC, TunnelTypes: []string{"vxlan"}})
		}
	}
	for _, p := range c.ports {
		fixed := []topology.FixedIP{{SubnetID: p.subnet, IPAddress: p.ip}}
		deviceID := fwRouter
		if p.owner == northbound.OwnerCompute {
			deviceID = "vm-" + p.name
		}
		var pairs []topology.AddressPair
		for _, a := range p.addressPairs {
			pairs = append(pairs, topology.AddressPair{IPAddress: a})
		}
		switch p.host {
		case "", self.name:
			f.Ports = append(f.Ports, topology.Port{ID: p.id, NetworkID: p.network, MAC: p.mac, DeviceOwner: p.owner,
				DeviceID: deviceID, FixedIPs: fixed, PortSecurityEnabled: !p.noPortSecurity, AdminStateUp: true,
				SecurityGroups: slices.Clone(p.groups), AllowedAddressPairs: pairs})
		default:
			f.RemotePorts = append(f.RemotePorts, topology.RemotePort{Host: p.host, ID: p.id, NetworkID: p.network,
				MAC: p.mac, DeviceOwner: p.owner, DeviceID: deviceID, FixedIPs: fixed, SecurityGroups: slices.Clone(p.groups)})
		}
	}
	return f
}

// write renders every node's topology into its file, atomically (the agents reload it).
func (c *fwCloud) write(t *testing.T) {
	t.Helper()
	for _, n := range fwNodes {
		data, err := json.MarshalIndent(c.topology(n), "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		writeFileAtomic(t, c.topo[n.name], data)
	}
}

// TestFirewallTopology checks, without a switch, that every node's topology of the firewall
// cloud, in each of the states the acceptance test puts it in, is accepted without a
// single problem, with the groups, members and port security the test relies on.
func TestFirewallTopology(t *testing.T) {
	c := newFWCloud("openvswitch")
	states := []struct {
		name  string
		apply func()
	}{
		{"initial", func() {}},
		{"cli2 joins web", func() { c.port("cli2").groups = []string{fwClient, fwWeb} }},
		{"web's TCP 9000 rule removed", func() { c.withSession = false }},
	}
	for _, s := range states {
		s.apply()
		for _, n := range fwNodes {
			t.Run(s.name+" on "+n.name, func(t *testing.T) {
				data, err := json.Marshal(c.topology(n))
				if err != nil {
					t.Fatal(err)
				}
				_, m, problems, err := testbed.AgentTopology(data)
				if err != nil {
					t.Fatal(err)
				}
				for _, p := range problems {
					t.Errorf("problem: %s", p)
				}
				if len(m.AddressGroups) != 1 {
					t.Errorf("%d address groups, want 1", len(m.AddressGroups))
				}
				if len(m.SecurityGroups) != 4 || len(m.WithheldSecurityGroups) != 0 {
					t.Fatalf("%d valid security groups, %d withheld; want 4, 0", len(m.SecurityGroups), len(m.WithheldSecurityGroups))
				}
				web, _ := m.SecurityGroup(fwWeb)
				if want := 5 + btoi(c.withSession); len(web.Rules) != want {
					t.Errorf("web has %d rules, want %d", len(web.Rules), want)
				}
				for _, p := range c.ports {
					if p.owner != northbound.OwnerCompute {
						continue
					}
					var got []string
					var security bool
					if mp := localPort(m, p.id); mp != nil && p.host == n.name {
						got, security = mp.SecurityGroups, mp.PortSecurity
					} else if rp := remotePort(m, p.id); rp != nil && p.host != n.name {
						got, security = rp.SecurityGroups, !p.noPortSecurity
					} else {
						t.Errorf("VM %s is neither a port nor a remote port of %s", p.name, n.name)
						continue
					}
					want := slices.Sorted(slices.Values(p.groups))
					if !slices.Equal(got, want) || security == p.noPortSecurity {
						t.Errorf("VM %s: groups %v, port security %v; want %v, %v", p.name, got, security, want, !p.noPortSecurity)
					}
				}
				members := fmt.Sprint(m.SecurityGroupMembers(fwWeb))
				for _, p := range c.ports {
					if isIn := slices.Contains(p.groups, fwWeb); strings.Contains(members, p.ip+"/32") != isIn {
						t.Errorf("web's members %s: %s (%s) member: %v, want %v", members, p.name, p.ip, !isIn, isIn)
					}
				}
				// web1's address pair is a member address where web1 is a port (Neutron's
				// servers send other hosts' pairs, the topology file has none).
				if n.name == "fw-c1" && !strings.Contains(members, fwPairIP+"/32") {
					t.Errorf("web's members %s lack web1's allowed address pair %s", members, fwPairIP)
				}
			})
		}
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// localPort returns the model's port with the given id, nil if there is none.
func localPort(m *northbound.Model, id string) *northbound.Port {
	for i := range m.Ports {
		if m.Ports[i].ID == id {
			return &m.Ports[i]
		}
	}
	return nil
}

// remotePort returns the model's remote port with the given id, nil if there is none.
func remotePort(m *northbound.Model, id string) *northbound.RemotePort {
	for i := range m.RemotePorts {
		if m.RemotePorts[i].ID == id {
			return &m.RemotePorts[i]
		}
	}
	return nil
}

// TestFirewall is the acceptance test of issue "security-groups" (Neutron's openvswitch
// firewall driver): real agents on two DVR compute nodes, real TCP, UDP and ICMP between
// VMs on one node, across nodes on a VLAN and a VXLAN network, and routed by the
// distributed router. It runs twice, in parallel: with firewall_driver = openvswitch, and
// with noop as the negative control, where every connection the firewall must drop has to
// get through — which proves that each check can see filtering, and that it is the
// firewall, not a broken path, that stops a connection.
func TestFirewall(t *testing.T) {
	needsSwitch(t)
	for _, driver := range []string{"openvswitch", "noop"} {
		t.Run("firewall_driver="+driver, func(t *testing.T) {
			t.Parallel()
			firewallAcceptance(t, driver)
		})
	}
}

func firewallAcceptance(t *testing.T, driver string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	c := startFirewallCloud(t, ctx, driver)
	t.Logf("cloud up in %s", time.Since(start).Round(time.Millisecond))

	t.Run("connections: allowed ones pass, others are dropped; replies pass (stateful)", func(t *testing.T) {
		c.checkProbes(t, ctx, fwConnectivity)
	})
	t.Run("a spoofed source address is dropped; a port without port security passes it", func(t *testing.T) {
		c.checkSpoofing(t, ctx)
	})
	t.Run("ARP from a spoofed address is dropped; a port without port security passes it", func(t *testing.T) {
		c.checkARPSpoofing(t, ctx)
	})
	t.Run("a VM added to a remote group gets what the rule allows", func(t *testing.T) {
		c.checkJoinRemoteGroup(t, ctx)
	})
	t.Run("an agent SIGKILLed and restarted changes nothing and keeps a connection going", func(t *testing.T) {
		c.checkAgentRestart(t, ctx)
	})
	t.Run("removing a rule cuts the running connection it allowed", func(t *testing.T) {
		c.checkRuleRemoval(t, ctx)
	})
	t.Logf("%s done in %s", driver, time.Since(start).Round(time.Millisecond))
}

// startFirewallCloud brings the cloud up with the given firewall driver: the fabric, the
// two nodes wired to it, their agents, the VMs with their echo servers; it returns once the
// paths the checks use carry an allowed connection.
func startFirewallCloud(t *testing.T, ctx context.Context, driver string) *fwCloud {
	t.Helper()
	c := newFWCloud(driver)
	c.top = t
	c.dir = t.TempDir()
	ini := filepath.Join(c.dir, "agent.ini")
	// Without the firewall, the negative control also turns off the ARP spoofing protection
	// dvrflow installs for the noop driver (tables 24/25): every mechanism that stops a
	// spoofed packet is off.
	text := "[securitygroup]\nfirewall_driver = " + driver + "\n"
	if !c.filtering {
		text += "[dvrflow]\nprevent_arp_spoofing = false\n"
	}
	if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	fabric := testbed.StartFabricForTest(t, "fw-fab")
	for _, n := range fwNodes {
		h := sandbox.StartForTest(t, n.name)
		c.hosts[n.name] = h
		c.topo[n.name] = filepath.Join(c.dir, n.name+".json")
		for sw, ifname := range map[string]string{fwUnderlaySwitch: fwUnderlayIf, fwTrunkSwitch: fwTrunkIf} {
			if _, err := fabric.Connect(ctx, sw, h, ifname); err != nil {
				t.Fatal(err)
			}
		}
		if err := h.AddUnderlay(ctx, sandbox.UnderlaySpec{Bridge: "br-phy", Uplink: fwUnderlayIf, CIDR: n.ip + "/24"}); err != nil {
			t.Fatal(err)
		}
	}
	c.write(t)
	for _, n := range fwNodes {
		c.agents[n.name] = startAgent(t, c.hosts[n.name], c.topo[n.name], "--config-file", ini)
	}
	for _, n := range fwNodes {
		h, a := c.hosts[n.name], c.agents[n.name]
		waitFor(t, 20*time.Second, "agent creates br-vlan and br-tun on "+n.name, func() error {
			select {
			case <-a.done:
				t.Fatalf("dvrflow-agent on %s exited at start (firewall_driver = %s):\n%s", n.name, driver, a.Log())
			default:
			}
			return errors.Join(bridgeExists(ctx, h, "br-vlan"), bridgeExists(ctx, h, "br-tun"))
		})
		if _, err := h.Vsctl(ctx, "--may-exist", "add-port", "br-vlan", fwTrunkIf); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range fwNodes {
		waitRouterGateways(t, ctx, c.hosts[n.name], fwRouter, fwQrVLAN.ip, fwQrVXLAN.ip)
	}
	for _, p := range c.ports {
		if p.owner != northbound.OwnerCompute {
			continue
		}
		gw := fwQrVLAN.ip
		if p.network == fwNetVXLAN {
			gw = fwQrVXLAN.ip
		}
		h := c.hosts[p.host]
		vm, err := h.AddVM(ctx, sandbox.VMSpec{Name: p.name, Bridge: "br-int", PortName: "tap" + p.id[:11],
			IfaceID: p.id, VMUUID: "vm-" + p.name, MAC: p.mac, CIDR: p.ip + "/24", Gateway: gw})
		if err != nil {
			t.Fatal(err)
		}
		c.vms[p.name] = vm
		c.ns[p.name] = testbed.VMNetns(h, vm)
		srv, err := testbed.ServeEcho(c.ns[p.name], fwTCPPorts, fwUDPPorts)
		if err != nil {
			t.Fatal(err)
		}
		// Registered after the host's cleanup, so it runs before: the sockets go before
		// their namespace.
		t.Cleanup(func() { _ = srv.Close() })
	}
	// The paths of the checks, each with a connection its groups allow: within a node,
	// across nodes on VLAN and on VXLAN, routed across nodes both ways.
	for _, p := range []fwProbe{
		{from: "db1", to: "web1", proto: "tcp", port: fwHTTP},
		{from: "web2", to: "web1", proto: "tcp", port: fwHTTP},
		{from: "cli2", to: "webx1", proto: "tcp", port: fwHTTP},
		{from: "cli2", to: "web1", proto: "tcp", port: fwHTTP},
		{from: "open1", to: "web2", proto: "tcp", port: fwHTTP},
	} {
		waitFor(t, 30*time.Second, p.String()+" (allowed) once the agents have programmed the cloud", func() error {
			_, err := c.probe(ctx, p, time.Second)
			return err
		})
	}
	return c
}

// fwProbe is one connection attempt between two VMs of the cloud.
type fwProbe struct {
	from, to string // VM names
	proto    string // tcp, udp or icmp
	port     int    // tcp, udp: the destination port
	// allowed: the security groups allow it (and the reply), so it passes with the
	// firewall; why says by which rule, or why not.
	allowed bool
	why     string
}

func (p fwProbe) String() string {
	if p.proto == "icmp" {
		return fmt.Sprintf("ping %s → %s", p.from, p.to)
	}
	return fmt.Sprintf("%s %s → %s:%d", p.proto, p.from, p.to, p.port)
}

// fwConnectivity are the connections of the first check: each allowed one beside one that
// is not, on the same path (within a node, across nodes on VLAN and VXLAN, routed by DVR).
var fwConnectivity = []fwProbe{
	// TCP: web takes port 80 from anywhere, not 81 (every VM listens on both).
	{from: "db1", to: "web1", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in (one node, VLAN)"},
	{from: "db1", to: "web1", proto: "tcp", port: fwClosed, why: "no rule for TCP 81 (one node, VLAN)"},
	{from: "web2", to: "web1", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in (across nodes, VLAN)"},
	{from: "web2", to: "web1", proto: "tcp", port: fwClosed, why: "no rule for TCP 81 (across nodes, VLAN)"},
	{from: "cli2", to: "webx1", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in (across nodes, VXLAN)"},
	{from: "cli2", to: "webx1", proto: "tcp", port: fwClosed, why: "no rule for TCP 81 (across nodes, VXLAN)"},
	{from: "cli2", to: "web1", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in (routed VXLAN → VLAN across nodes)"},
	{from: "cli2", to: "web1", proto: "tcp", port: fwClosed, why: "no rule for TCP 81 (routed VXLAN → VLAN across nodes)"},
	{from: "webx1", to: "web1", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in (routed on one node)"},
	{from: "webx1", to: "web1", proto: "tcp", port: fwClosed, why: "no rule for TCP 81 (routed on one node)"},
	{from: "open1", to: "web2", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in (routed from a port without port security)"},
	{from: "open1", to: "web2", proto: "tcp", port: fwClosed, why: "no rule for TCP 81 (routed from a port without port security)"},
	// Stateful: db takes 5432 from web's members, whose own groups do not take 5432 in,
	// so the replies pass only as replies; the other way round nothing opens.
	{from: "web1", to: "db1", proto: "tcp", port: fwPG, allowed: true, why: "db: TCP 5432 from web (one node); the replies are not allowed in by web's rules"},
	{from: "web2", to: "db1", proto: "tcp", port: fwPG, allowed: true, why: "db: TCP 5432 from web (across nodes, VLAN); the replies are not allowed in by web's rules"},
	{from: "db1", to: "web1", proto: "tcp", port: fwPG, why: "web takes no TCP 5432: the reverse of an allowed connection opens nothing"},
	{from: "db1", to: "web2", proto: "tcp", port: fwPG, why: "web takes no TCP 5432 (across nodes)"},
	{from: "cli2", to: "db1", proto: "tcp", port: fwPG, why: "db takes 5432 only from web's members, cli2 is not one (routed)"},
	{from: "webx1", to: "db1", proto: "tcp", port: fwPG, allowed: true, why: "db: TCP 5432 from web (routed on one node)"},
	// UDP: web takes 5000–5010; the client group takes nothing in, so the echo reaches
	// cli2 only as a reply.
	{from: "cli2", to: "web1", proto: "udp", port: fwUDPLow, allowed: true, why: "web: UDP 5000–5010 in, low end (routed); the echo enters cli2 as a reply"},
	{from: "web2", to: "webx1", proto: "udp", port: fwUDPHigh, allowed: true, why: "web: UDP 5000–5010 in, high end (routed across nodes)"},
	{from: "db1", to: "web1", proto: "udp", port: fwUDPMid, allowed: true, why: "web: UDP 5000–5010 in (one node)"},
	{from: "cli2", to: "web1", proto: "udp", port: fwUDPOut, why: "UDP 5011 is past web's range (routed)"},
	{from: "db1", to: "web1", proto: "udp", port: fwUDPOut, why: "UDP 5011 is past web's range (one node)"},
	{from: "web1", to: "db1", proto: "udp", port: fwUDPMid, why: "db takes no UDP"},
	// ICMP: web takes it, db and client do not.
	{from: "cli2", to: "web1", proto: "icmp", allowed: true, why: "web: ICMP in (routed)"},
	{from: "web2", to: "webx1", proto: "icmp", allowed: true, why: "web: ICMP in (routed across nodes)"},
	{from: "cli2", to: "db1", proto: "icmp", why: "db takes no ICMP (routed)"},
	{from: "web1", to: "cli2", proto: "icmp", why: "client takes nothing in (routed)"},
	{from: "web2", to: "cli2", proto: "tcp", port: fwHTTP, why: "client takes nothing in, not even TCP 80 (same node, routed)"},
	// Egress: sink has no egress rule, so sink2 opens nothing, not even towards a port
	// without port security; what it takes in is answered (the replies leave as replies).
	{from: "sink2", to: "web1", proto: "tcp", port: fwHTTP, why: "sink has no egress rule (across nodes, VLAN)"},
	{from: "sink2", to: "open1", proto: "tcp", port: fwClosed, why: "sink has no egress rule, and open1 takes everything (routed across nodes)"},
	{from: "web2", to: "sink2", proto: "tcp", port: fwHTTP, allowed: true, why: "sink: TCP 80 in (one node, VLAN); the replies leave sink2 without an egress rule"},
	{from: "cli2", to: "sink2", proto: "tcp", port: fwHTTP, allowed: true, why: "sink: TCP 80 in (routed on one node)"},
	// Address group: sink takes TCP 81 from admins, which holds cli2's address.
	{from: "cli2", to: "sink2", proto: "tcp", port: fwClosed, allowed: true, why: "sink: TCP 81 from address group admins, cli2's address is in it (routed on one node)"},
	{from: "web2", to: "sink2", proto: "tcp", port: fwClosed, why: "sink: TCP 81 only from address group admins, web2's address is not in it"},
	// A port without port security takes everything.
	{from: "cli2", to: "open1", proto: "tcp", port: fwClosed, allowed: true, why: "open1 has no port security (across nodes, VXLAN)"},
	{from: "db1", to: "open1", proto: "tcp", port: fwPG, allowed: true, why: "open1 has no port security (routed on one node)"},
	{from: "web2", to: "open1", proto: "udp", port: fwUDPOut, allowed: true, why: "open1 has no port security (routed across nodes)"},
	{from: "web2", to: "open1", proto: "icmp", allowed: true, why: "open1 has no port security (routed across nodes)"},
}

// probe runs p once, within timeout.
func (c *fwCloud) probe(ctx context.Context, p fwProbe, timeout time.Duration) (testbed.Outcome, error) {
	to := c.port(p.to)
	switch p.proto {
	case "tcp":
		return testbed.ProbeTCP(ctx, c.ns[p.from], "", c.addr(p.to, p.port), timeout)
	case "udp":
		return testbed.ProbeUDP(ctx, c.ns[p.from], "", c.addr(p.to, p.port), timeout)
	}
	count := int(timeout / time.Second)
	if err := c.vms[p.from].Ping(ctx, to.ip, max(count, 1)); err != nil {
		return testbed.Silent, err
	}
	return testbed.Answered, nil
}

// want returns the outcome p must have in this cloud: answered, unless the firewall is on
// and the groups do not allow it (silent: a firewall drops, it does not refuse).
func (c *fwCloud) want(p fwProbe) testbed.Outcome {
	if c.filtering && !p.allowed {
		return testbed.Silent
	}
	return testbed.Answered
}

// expect fails the test unless p ended as it must.
func (c *fwCloud) expect(t *testing.T, p fwProbe, got testbed.Outcome, err error) {
	t.Helper()
	want := c.want(p)
	if got == want {
		return
	}
	switch {
	case !c.filtering && !p.allowed:
		t.Errorf("negative control: %s was %s (%v) with firewall_driver = noop, so that it fails with the firewall proves nothing (%s)", p, got, err, p.why)
	case want == testbed.Silent && got == testbed.Answered:
		t.Errorf("%s got through, but %s's groups %s do not allow it: %s", p, p.to, c.groupNames(p.to), p.why)
	case want == testbed.Silent:
		t.Errorf("%s was %s (%v), want silent (dropped by the firewall): %s", p, got, err, p.why)
	default:
		t.Errorf("%s was %s (%v), want answered: %s", p, got, err, p.why)
	}
}

// groupNames returns the names of VM name's groups, or "(no port security)".
func (c *fwCloud) groupNames(name string) string {
	p := c.port(name)
	if p.noPortSecurity {
		return "(no port security)"
	}
	names := map[string]string{fwWeb: "web", fwDB: "db", fwClient: "client", fwSink: "sink"}
	var out []string
	for _, g := range p.groups {
		out = append(out, names[g])
	}
	return "[" + strings.Join(out, " ") + "]"
}

// checkProbes runs the probes at once and checks each.
func (c *fwCloud) checkProbes(t *testing.T, ctx context.Context, probes []fwProbe) {
	t.Helper()
	type result struct {
		got testbed.Outcome
		err error
	}
	results := make([]result, len(probes))
	var wg sync.WaitGroup
	for i, p := range probes {
		wg.Go(func() {
			got, err := c.probe(ctx, p, fwProbeTimeout)
			results[i] = result{got, err}
		})
	}
	wg.Wait()
	for i, p := range probes {
		c.expect(t, p, results[i].got, results[i].err)
	}
}

// checkSpoofing: web1 sends UDP to web2 (across nodes, VLAN; web takes UDP 5000–5010 from
// anywhere) from its own address, from its allowed address pair and from an address it
// does not hold, both added in its namespace; a capture in web2 sees the first two and,
// with the firewall, nothing from the third. open1 (no port security) does the same
// towards webx1 (one node, VXLAN), and its spoofed datagrams arrive: the capture does see
// spoofed datagrams when they pass.
func (c *fwCloud) checkSpoofing(t *testing.T, ctx context.Context) {
	type source struct {
		ip, what string
		dropped  bool // with the firewall
	}
	for _, s := range []struct {
		from, to string
		sources  []source
	}{
		{"web1", "web2", []source{
			{fwPairIP, "web1's allowed address pair", false},
			{fwSpoofIP(*c.port("web1")), "an address web1 does not hold", true},
		}},
		{"open1", "webx1", []source{
			{fwSpoofIP(*c.port("open1")), "an address open1 does not hold (no port security)", false},
		}},
	} {
		from, to := c.port(s.from), c.port(s.to)
		vm := c.vms[s.from]
		// The extra addresses on the VM's interface, so that its sockets can send from
		// them, and a permanent neighbour entry for the destination, so that no ARP request
		// goes out from them (ARP spoofing protection is not what this checks).
		cmds := [][]string{{"ip", "neigh", "replace", to.ip, "lladdr", to.mac, "dev", sandbox.VMInterface, "nud", "permanent"}}
		for _, src := range s.sources {
			cmds = append(cmds, []string{"ip", "addr", "add", src.ip + "/32", "dev", sandbox.VMInterface})
		}
		for _, cmd := range cmds {
			if _, err := vm.Run(ctx, cmd[0], cmd[1:]...); err != nil {
				t.Fatal(err)
			}
		}
		dst := c.addr(s.to, fwUDPSpoof)
		capture := startCapture(t, ctx, c.vms[s.to].Command, "-i", sandbox.VMInterface, "-n", "-l", "udp dst port "+strconv.Itoa(fwUDPSpoof))
		if got, err := testbed.ProbeUDP(ctx, c.ns[s.from], from.ip, dst, fwProbeTimeout); got != testbed.Answered {
			t.Errorf("udp %s → %s from %s's own address %s: %s (%v), want answered (web: UDP 5000–5010 from anywhere)", s.from, dst, s.from, from.ip, got, err)
		}
		for _, src := range s.sources {
			for i := range 3 {
				if err := testbed.SendUDP(c.ns[s.from], src.ip, dst, []byte("from "+src.ip+" "+strconv.Itoa(i))); err != nil {
					t.Fatalf("send from %s in %s: %v", src.ip, s.from, err)
				}
			}
		}
		// A genuine datagram after the others, on the same path: once its echo is back,
		// the others have had their chance to arrive.
		if got, err := testbed.ProbeUDP(ctx, c.ns[s.from], from.ip, dst, fwProbeTimeout); got != testbed.Answered {
			t.Errorf("udp %s → %s from %s's own address after the others: %s (%v), want answered", s.from, dst, s.from, got, err)
		}
		out := capture()
		// tcpdump -n prints "IP 10.20.1.11.40000 > 10.20.1.21.5007: UDP, length 21".
		toText := "> " + to.ip + "." + strconv.Itoa(fwUDPSpoof) + ":"
		arrived := func(ip string) int {
			n := 0
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, " "+ip+".") && strings.Contains(l, toText) {
					n++
				}
			}
			return n
		}
		if n := arrived(from.ip); n < 2 {
			t.Errorf("the capture in %s saw %d datagrams from %s's own address %s, want ≥ 2: the capture proves nothing:\n%s", s.to, n, s.from, from.ip, out)
			continue
		}
		for _, src := range s.sources {
			n := arrived(src.ip)
			switch {
			case c.filtering && src.dropped && n > 0:
				t.Errorf("%d of 3 datagrams %s sent from %s (%s) reached %s: the firewall lets a VM spoof its source:\n%s", n, s.from, src.ip, src.what, s.to, out)
			case !c.filtering && src.dropped && n < 3:
				t.Errorf("negative control: %d of 3 datagrams %s sent from %s (%s) reached %s with firewall_driver = noop, so that none does with the firewall proves nothing:\n%s",
					n, s.from, src.ip, src.what, s.to, out)
			case !src.dropped && n < 3:
				t.Errorf("%d of 3 datagrams %s sent from %s (%s) reached %s, want 3:\n%s", n, s.from, src.ip, src.what, s.to, out)
			}
		}
	}
}

// checkARPSpoofing: web1 broadcasts ARP requests for web2 (across nodes, VLAN) telling its
// own address, its allowed address pair and an address it does not hold (all three on its
// interface, see checkSpoofing); a capture in web2 sees the first two and none of the third.
// open1 (no port security) does the same towards webx1, and its spoofed requests arrive.
// Without the firewall, ARP spoofing protection is off too (see startFirewallCloud): the
// spoofed requests arrive.
func (c *fwCloud) checkARPSpoofing(t *testing.T, ctx context.Context) {
	for _, s := range []struct {
		from, to string
		senders  []string // sender addresses of the requests
		dropped  string   // the one the firewall drops, "" for none
	}{
		{"web1", "web2", []string{c.port("web1").ip, fwPairIP, fwSpoofIP(*c.port("web1"))}, fwSpoofIP(*c.port("web1"))},
		{"open1", "webx1", []string{c.port("open1").ip, fwSpoofIP(*c.port("open1"))}, ""},
	} {
		to := c.port(s.to)
		capture := startCapture(t, ctx, c.vms[s.to].Command, "-i", sandbox.VMInterface, "-n", "-l", "arp and arp[6:2] == 1")
		var wg sync.WaitGroup
		for _, sender := range s.senders {
			// Two broadcast requests, one a second. Replies do not matter (the spoofed
			// sender gets none, arping then exits 1); that both were sent does.
			wg.Go(func() {
				out, _ := c.vms[s.from].Command(ctx, "arping", "-b", "-c", "2", "-w", "2", "-I", sandbox.VMInterface, "-s", sender, to.ip).CombinedOutput()
				if !strings.Contains(string(out), "Sent 2 probes") {
					t.Errorf("arping in %s telling %s did not send its two requests:\n%s", s.from, sender, out)
				}
			})
		}
		wg.Wait()
		out := capture()
		// tcpdump -n prints "ARP, Request who-has 10.20.1.21 (ff:ff:ff:ff:ff:ff) tell
		// 10.20.1.11, length 28".
		arrived := func(sender string) int {
			n := 0
			for _, l := range strings.Split(out, "\n") {
				if strings.Contains(l, "who-has "+to.ip+" ") && strings.Contains(l, " tell "+sender+",") {
					n++
				}
			}
			return n
		}
		if n := arrived(s.senders[0]); n < 2 {
			t.Errorf("the capture in %s saw %d ARP requests from %s telling its own address %s, want ≥ 2: the capture proves nothing:\n%s", s.to, n, s.from, s.senders[0], out)
			continue
		}
		for _, sender := range s.senders[1:] {
			n := arrived(sender)
			switch {
			case c.filtering && sender == s.dropped && n > 0:
				t.Errorf("%d ARP requests from %s telling %s, an address it does not hold, reached %s: the firewall lets a VM spoof ARP:\n%s", n, s.from, sender, s.to, out)
			case !c.filtering && sender == s.dropped && n < 2:
				t.Errorf("negative control: %d ARP requests from %s telling %s reached %s without the firewall and ARP spoofing protection, want ≥ 2: that none does with the firewall proves nothing:\n%s",
					n, s.from, sender, s.to, out)
			case sender != s.dropped && n < 2:
				t.Errorf("%d ARP requests from %s telling %s reached %s, want ≥ 2 (an allowed address pair, or a port without port security):\n%s", n, s.from, sender, s.to, out)
			}
		}
	}
}

// checkJoinRemoteGroup: db takes 5432 from web's members; cli2 (not one: dropped) joins web
// by a rewrite of the topology files, and its connections to db1 (routed across nodes)
// open within seconds, as does web's TCP 80 into cli2.
func (c *fwCloud) checkJoinRemoteGroup(t *testing.T, ctx context.Context) {
	toDB := fwProbe{from: "cli2", to: "db1", proto: "tcp", port: fwPG, why: "db takes 5432 only from web's members, cli2 is not one yet"}
	got, err := c.probe(ctx, toDB, fwProbeTimeout)
	c.expect(t, toDB, got, err)

	c.port("cli2").groups = []string{fwClient, fwWeb}
	start := time.Now()
	c.write(t)
	// Short probes (a dropped SYN is not retried within one), so that the time measured
	// is close to when the flows changed.
	waitFor(t, 15*time.Second, "cli2 reaches db1:5432 once it is a member of web (db: TCP 5432 from web)", func() error {
		_, err := c.probe(ctx, toDB, 300*time.Millisecond)
		return err
	})
	if c.filtering {
		t.Logf("cli2 reached db1:%d %s after the topology files changed", fwPG, time.Since(start).Round(time.Millisecond))
	}
	c.checkProbes(t, ctx, []fwProbe{
		{from: "web2", to: "cli2", proto: "tcp", port: fwHTTP, allowed: true, why: "cli2 is in web now: TCP 80 in"},
		{from: "web2", to: "cli2", proto: "tcp", port: fwClosed, why: "cli2 is in web and client, neither takes TCP 81"},
		{from: "db1", to: "web1", proto: "tcp", port: fwPG, why: "web takes no TCP 5432, whoever joined it"},
	})
}

// checkRuleRemoval: a long-lived connection cli2 → web1:9000 (web: TCP 9000 from
// 10.20.0.0/16; routed across nodes) exchanges a message every 100 ms; the rule is removed
// from the topology files; within fwCutBound the connection stops getting through, and
// nothing gets through afterwards, while a new connection to web1:80 works and a new one to
// 9000 does not.
func (c *fwCloud) checkRuleRemoval(t *testing.T, ctx context.Context) {
	conn, err := testbed.DialTCP(ctx, c.ns["cli2"], "", c.addr("web1", fwSession))
	if err != nil {
		t.Fatalf("tcp cli2 → web1:%d (web: TCP 9000 from 10.20.0.0/16): %v", fwSession, err)
	}
	defer conn.Close()
	n := 0
	exchange := func(timeout time.Duration) error {
		n++
		return testbed.RoundTrip(conn, []byte(fmt.Sprintf("message %d\n", n)), time.Now().Add(timeout))
	}
	for range 3 {
		if err := exchange(fwProbeTimeout); err != nil {
			t.Fatalf("the long-lived connection cli2 → web1:%d before the rule is removed: %v", fwSession, err)
		}
	}
	logMarks := map[string]int{}
	for name, a := range c.agents {
		logMarks[name] = len(a.Log())
	}
	c.withSession = false
	start := time.Now()
	c.write(t)
	if c.filtering {
		// The connection keeps exchanging while the agents take the change in.
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			sent := time.Now()
			if err := exchange(time.Second); err != nil {
				t.Logf("the connection stopped getting through: the first message left unanswered was sent %s after the topology files changed (%v)",
					sent.Sub(start).Round(time.Millisecond), err)
				break
			}
			if time.Since(start) > fwCutBound {
				t.Fatalf("the connection cli2 → web1:%d still gets through %s after web's TCP 9000 rule was removed (bound %s)", fwSession, time.Since(start).Round(time.Millisecond), fwCutBound)
			}
			<-tick.C
		}
		// Nothing at all afterwards: the unanswered message is retransmitted, and dropped.
		if err := conn.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
			t.Fatal(err)
		}
		if k, err := conn.Read(make([]byte, 256)); k > 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Errorf("the cut connection delivered %d bytes (%v) after it had stopped: it is not cut", k, err)
		}
	} else {
		// Once every agent has read the new files (both log the change of group web), the
		// connection still works without filtering.
		for name, a := range c.agents {
			waitFor(t, 10*time.Second, "agent on "+name+" reads the topology without web's TCP 9000 rule", func() error {
				if !strings.Contains(a.Log()[logMarks[name]:], "northbound state changed") {
					return errors.New("no \"northbound state changed\" logged since the rewrite")
				}
				return nil
			})
		}
		for range 5 {
			if err := exchange(time.Second); err != nil {
				t.Errorf("negative control: the connection cli2 → web1:%d broke with firewall_driver = noop (%v), so that it is cut with the firewall proves nothing", fwSession, err)
				break
			}
		}
	}
	c.checkProbes(t, ctx, []fwProbe{
		{from: "cli2", to: "web1", proto: "tcp", port: fwSession, why: "web's TCP 9000 rule was removed"},
		{from: "cli2", to: "web1", proto: "tcp", port: fwHTTP, allowed: true, why: "web: TCP 80 in, untouched by the removal"},
	})
}

// checkAgentRestart SIGKILLs each node's agent in turn while a routed TCP connection across
// the nodes (cli2 → web1:80) exchanges a message every 100 ms, and starts it again: the new
// agent must send 0 flow-mods (the firewall's flows, conjunction ids included, are a
// function of the state), leave br-int's flows as they were, and the connection must not
// miss a message.
func (c *fwCloud) checkAgentRestart(t *testing.T, ctx context.Context) {
	conn, err := testbed.DialTCP(ctx, c.ns["cli2"], "", c.addr("web1", fwHTTP))
	if err != nil {
		t.Fatalf("tcp cli2 → web1:%d (web: TCP 80 in): %v", fwHTTP, err)
	}
	defer conn.Close()
	n := 0
	exchange := func() error {
		n++
		return testbed.RoundTrip(conn, []byte(fmt.Sprintf("message %d\n", n)), time.Now().Add(time.Second))
	}
	if err := exchange(); err != nil {
		t.Fatalf("the connection cli2 → web1:%d before the restarts: %v", fwHTTP, err)
	}
	ini := filepath.Join(c.dir, "agent.ini")
	for _, node := range fwNodes {
		h := c.hosts[node.name]
		before := installedByAgent(t, ctx, h, "br-int")
		if len(before) == 0 {
			t.Fatalf("no flows of ours on br-int of %s", node.name)
		}
		old := c.agents[node.name]
		if err := old.cmd.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-old.done
		killed := time.Now()
		a := startAgent(c.top, h, c.topo[node.name], "--config-file", ini)
		c.agents[node.name] = a
		var flowMods int
		tick := time.NewTicker(100 * time.Millisecond)
		for {
			if err := exchange(); err != nil {
				tick.Stop()
				t.Fatalf("the connection cli2 → web1:%d missed message %d %s after the agent on %s was killed: %v",
					fwHTTP, n, time.Since(killed).Round(time.Millisecond), node.name, err)
			}
			if flowMods, err = logField(a.Log(), "converged", "flow_mods"); err == nil {
				break
			}
			if time.Since(killed) > 30*time.Second {
				tick.Stop()
				t.Fatalf("the restarted agent on %s did not converge in 30 s:\n%s", node.name, a.Log())
			}
			<-tick.C
		}
		tick.Stop()
		t.Logf("the agent on %s converged %s after its SIGKILL with %d flow-mods; the connection exchanged %d messages meanwhile",
			node.name, time.Since(killed).Round(time.Millisecond), flowMods, n)
		if flowMods != 0 {
			t.Errorf("the restarted agent on %s sent %d flow-mods, want 0", node.name, flowMods)
		}
		if removed, added := changes(before, installedByAgent(t, ctx, h, "br-int")); len(removed)+len(added) > 0 {
			t.Errorf("br-int's flows on %s changed across the restart:\n removed:\n%s\n added:\n%s", node.name, lines(removed), lines(added))
		}
	}
	for range 3 {
		if err := exchange(); err != nil {
			t.Errorf("the connection cli2 → web1:%d after both restarts: %v", fwHTTP, err)
		}
	}
}
