package main

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/topology"
)

// routerID is the distributed router; its namespaces are qrouter-<routerID> (every host)
// and snat-<routerID> (the network node).
const routerID = "e0000001-0000-4000-8000-000000000001"

// The external network: flat, on the physical network extnet (br-ex on every host), where
// the external host lives. The external host is also the external subnet's gateway, and has
// no route to the tenant subnets: only NAT gets a VM's packet answered.
const (
	extNetworkID = "a0000003-0000-4000-8000-000000000003"
	extSubnetID  = "b0000003-0000-4000-8000-000000000003"
	extCIDR      = "203.0.113.0/24"
	externalIP   = "203.0.113.1"
	externalMAC  = "fa:16:3e:ee:00:01"
	// gatewayIP is r1's address on the external network (its qg- port on the network
	// node): the source of everything leaving through SNAT.
	gatewayIP = "203.0.113.10"
)

// subnet is one of the router's tenant subnets.
type subnet struct {
	Name, NetworkName, NetworkID, ID, CIDR, GatewayIP, GatewayMAC string
	VLAN                                                          int
}

// host is a node of the cloud: its name, DVR MAC and Neutron agent_mode.
type host struct{ Name, DVRMAC, Mode string }

// vm is a VM of the cloud (Host is the compute host it runs on).
type vm struct{ Name, Host, PortID, NetworkID, SubnetID, MAC, IP string }

// port is a Neutron port that is not a VM's: a router's or an agent gateway's. Host "" puts
// it on every host (a distributed router interface has the same MAC and IP everywhere).
type port struct {
	Host, ID, NetworkID, SubnetID, MAC, IP, DeviceID string
	Owner                                            northbound.DeviceOwner
}

// vmGroupID is the security group of every VM ("vms"): egress anything; ingress ICMP from
// anywhere, SSH (TCP 22) only from the group's members.
const vmGroupID = "5a000001-0000-4000-8000-000000000001"

// sshPort and httpPort are the two TCP ports the security groups section probes.
const (
	sshPort  = 22
	httpPort = 80
)

// vmGroup is the "vms" security group.
func vmGroup() topology.SecurityGroup {
	ssh := sshPort
	return topology.SecurityGroup{ID: vmGroupID, Name: "vms", Stateful: true, Rules: []topology.SecurityGroupRule{
		{Direction: "egress", EtherType: "IPv4"},
		{Direction: "egress", EtherType: "IPv6"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "icmp"},
		{Direction: "ingress", EtherType: "IPv4", Protocol: "tcp", PortRangeMin: &ssh, PortRangeMax: &ssh, RemoteGroupID: vmGroupID},
	}}
}

// floatingIP is a floating IP of the external network, associated with a VM's port.
type floatingIP struct{ ID, Address, VM string }

// cloud is the whole cloud; each host's agent gets its own view of it (topology).
type cloud struct {
	Hosts       []host
	VMs         []vm
	Ports       []port
	FloatingIPs []floatingIP
}

var (
	subnetA = subnet{Name: "subnet-a", NetworkName: "net-a", NetworkID: "a0000001-0000-4000-8000-000000000001",
		ID: "b0000001-0000-4000-8000-000000000001", CIDR: "10.0.1.0/24", GatewayIP: "10.0.1.1", GatewayMAC: "fa:16:3e:aa:01:01", VLAN: 101}
	subnetB = subnet{Name: "subnet-b", NetworkName: "net-b", NetworkID: "a0000002-0000-4000-8000-000000000002",
		ID: "b0000002-0000-4000-8000-000000000002", CIDR: "10.0.2.0/24", GatewayIP: "10.0.2.1", GatewayMAC: "fa:16:3e:aa:02:01", VLAN: 102}
	// routerPorts are the router's interfaces (port id → subnet).
	routerPorts = map[string]subnet{
		"d0000001-0000-4000-8000-000000000001": subnetA,
		"d0000002-0000-4000-8000-000000000002": subnetB,
	}
	// The network node's ports of r1: the gateway (qg-) and one centralized SNAT port
	// (sg-) per tenant subnet, where the compute nodes send what leaves without a
	// floating IP.
	gatewayPort = port{Host: "network", ID: "9e000001-0000-4000-8000-000000000001", NetworkID: extNetworkID, SubnetID: extSubnetID,
		MAC: "fa:16:3e:aa:ff:10", IP: gatewayIP, DeviceID: routerID, Owner: northbound.OwnerRouterGateway}
	snatPortA = port{Host: "network", ID: "5f000001-0000-4000-8000-000000000001", NetworkID: subnetA.NetworkID, SubnetID: subnetA.ID,
		MAC: "fa:16:3e:aa:01:05", IP: "10.0.1.5", DeviceID: routerID, Owner: northbound.OwnerRouterCentralizedSNAT}
	snatPortB = port{Host: "network", ID: "5f000002-0000-4000-8000-000000000002", NetworkID: subnetB.NetworkID, SubnetID: subnetB.ID,
		MAC: "fa:16:3e:aa:02:05", IP: "10.0.2.5", DeviceID: routerID, Owner: northbound.OwnerRouterCentralizedSNAT}
	// fipGatewayPort is compute2's floating IP agent gateway (fg-) on the external network:
	// where compute2 receives and sends the traffic of its VMs' floating IPs.
	fipGatewayPort = port{Host: "compute2", ID: "6f000002-0000-4000-8000-000000000002", NetworkID: extNetworkID, SubnetID: extSubnetID,
		MAC: "fa:16:3e:aa:ff:22", IP: "203.0.113.22", DeviceID: "compute2", Owner: northbound.OwnerFloatingIPAgentGateway}
	// b2FloatingIP is b2's floating IP.
	b2FloatingIP = floatingIP{ID: "f0000001-0000-4000-8000-000000000001", Address: "203.0.113.50", VM: "b2"}
)

// newVM returns VM name (say "a1") on host h in subnet s: address .10+n of the subnet, MAC
// fa:16:3e:00:0<1|2>:<10+n>, port id c00000<name>-….
func newVM(name, h string, s subnet, n int) vm {
	third := strings.Split(s.GatewayIP, ".")[2]
	octet := fmt.Sprint(10 + n)
	return vm{
		Name: name, Host: h, NetworkID: s.NetworkID, SubnetID: s.ID,
		MAC:    "fa:16:3e:00:0" + third + ":" + octet,
		IP:     "10.0." + third + "." + octet,
		PortID: "c00000" + name + "-0000-4000-8000-0000000000" + octet,
	}
}

// demoCloud: a network node (dvr_snat) with r1's gateway and SNAT ports, two compute hosts,
// a1 and b1 on compute1, a2 and b2 on compute2 (a: subnet A on VLAN 101, b: subnet B on
// VLAN 102), and b2 with a floating IP.
func demoCloud() cloud {
	c := cloud{
		Hosts: []host{
			{"network", "fa:16:3f:00:00:03", "dvr_snat"},
			{"compute1", "fa:16:3f:00:00:01", "dvr"},
			{"compute2", "fa:16:3f:00:00:02", "dvr"},
		},
		VMs: []vm{
			newVM("a1", "compute1", subnetA, 1), newVM("b1", "compute1", subnetB, 1),
			newVM("a2", "compute2", subnetA, 2), newVM("b2", "compute2", subnetB, 2),
		},
		Ports:       []port{gatewayPort, snatPortA, snatPortB, fipGatewayPort},
		FloatingIPs: []floatingIP{b2FloatingIP},
	}
	for _, id := range slices.Sorted(maps.Keys(routerPorts)) {
		s := routerPorts[id]
		c.Ports = append(c.Ports, port{ID: id, NetworkID: s.NetworkID, SubnetID: s.ID, MAC: s.GatewayMAC, IP: s.GatewayIP,
			DeviceID: routerID, Owner: northbound.OwnerRouterInterfaceDistributed})
	}
	return c
}

// subnetOf returns the subnet of a VM.
func subnetOf(v vm) subnet {
	if v.SubnetID == subnetB.ID {
		return subnetB
	}
	return subnetA
}

// vmNamed returns the VM called name.
func (c cloud) vmNamed(name string) vm {
	for _, v := range c.VMs {
		if v.Name == name {
			return v
		}
	}
	panic("no VM " + name)
}

// dvrMAC returns the DVR MAC of host name.
func (c cloud) dvrMAC(name string) string {
	for _, h := range c.Hosts {
		if h.Name == name {
			return h.DVRMAC
		}
	}
	return ""
}

// topology returns self's view of the cloud, as neutron-server would hand it to self's
// agent: its host section, the other hosts' DVR MACs, the ports bound to self under ports
// and the others' under remote_ports, and everything cloud-wide (networks, subnets, the
// router with its gateway, the floating IPs).
func (c cloud) topology(self host) topology.File {
	name, mode, mac, firewall := self.Name, self.Mode, self.DVRMAC, "openvswitch"
	f := topology.File{
		Name:        "dvr-demo-" + self.Name,
		Description: "host " + self.Name + " (agent_mode " + self.Mode + "); router r1 routes 10.0.1.0/24 (VLAN 101) and 10.0.2.0/24 (VLAN 102), its gateway on the flat external network " + extCIDR,
		Host: &topology.Host{Name: &name, AgentMode: &mode, DVRMAC: &mac, FirewallDriver: &firewall,
			BridgeMappings: map[string]string{"physnet1": "br-vlan", "extnet": "br-ex"}},
		SecurityGroups: []topology.SecurityGroup{vmGroup()},
		Ports:          []topology.Port{},
		Routers: []topology.Router{{ID: routerID, Name: "r1", Distributed: true, ExternalGatewayInfo: &topology.GatewayInfo{
			NetworkID: extNetworkID, EnableSNAT: true,
			ExternalFixedIPs: []topology.FixedIP{{SubnetID: extSubnetID, IPAddress: gatewayIP}},
		}}},
	}
	for _, h := range c.Hosts {
		if h.Name != self.Name {
			f.OtherHosts = append(f.OtherHosts, topology.OtherHost{Name: h.Name, DVRMAC: h.DVRMAC})
		}
	}
	for _, s := range []subnet{subnetA, subnetB} {
		f.Networks = append(f.Networks, topology.Network{ID: s.NetworkID, Name: s.NetworkName, NetworkType: "vlan",
			PhysicalNetwork: "physnet1", SegmentationID: int64(s.VLAN)})
		f.Subnets = append(f.Subnets, topology.Subnet{ID: s.ID, Name: s.Name, NetworkID: s.NetworkID, CIDR: s.CIDR,
			GatewayIP: s.GatewayIP, GatewayMAC: s.GatewayMAC, IPVersion: 4})
	}
	f.Networks = append(f.Networks, topology.Network{ID: extNetworkID, Name: "public", NetworkType: "flat",
		PhysicalNetwork: "extnet", RouterExternal: true})
	f.Subnets = append(f.Subnets, topology.Subnet{ID: extSubnetID, Name: "public-subnet", NetworkID: extNetworkID,
		CIDR: extCIDR, GatewayIP: externalIP, IPVersion: 4})

	add := func(p port) {
		fixed := []topology.FixedIP{{SubnetID: p.SubnetID, IPAddress: p.IP}}
		var groups []string
		if p.Owner == northbound.OwnerCompute {
			groups = []string{vmGroupID}
		}
		if p.Host == "" || p.Host == self.Name {
			f.Ports = append(f.Ports, topology.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: p.MAC, DeviceOwner: p.Owner,
				DeviceID: p.DeviceID, FixedIPs: fixed, PortSecurityEnabled: true, AdminStateUp: true, SecurityGroups: groups})
			return
		}
		f.RemotePorts = append(f.RemotePorts, topology.RemotePort{Host: p.Host, ID: p.ID, NetworkID: p.NetworkID,
			MAC: p.MAC, DeviceOwner: p.Owner, DeviceID: p.DeviceID, FixedIPs: fixed, SecurityGroups: groups})
	}
	for _, p := range c.Ports {
		add(p)
	}
	for _, v := range c.VMs {
		add(port{Host: v.Host, ID: v.PortID, NetworkID: v.NetworkID, SubnetID: v.SubnetID, MAC: v.MAC, IP: v.IP,
			DeviceID: "vm-" + v.Name, Owner: northbound.OwnerCompute})
	}
	for _, fip := range c.FloatingIPs {
		v := c.vmNamed(fip.VM)
		f.FloatingIPs = append(f.FloatingIPs, topology.FloatingIP{ID: fip.ID, FloatingIPAddress: fip.Address,
			FloatingNetworkID: extNetworkID, RouterID: routerID, PortID: v.PortID, FixedIPAddress: v.IP})
	}
	return f
}

// writeTopology writes the topology of host h into dir/<name>.yaml and returns its path.
func (c cloud) writeTopology(dir string, h host) (string, error) {
	data, err := yaml.Marshal(c.topology(h))
	if err != nil {
		return "", fmt.Errorf("the topology of %s: %w", h.Name, err)
	}
	path := filepath.Join(dir, h.Name+".yaml")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return "", fmt.Errorf("write the topology of %s: %w", h.Name, err)
	}
	return path, nil
}

// repoRoot returns the repository root: the working directory or the closest parent holding
// go.mod and this command (make demo runs in the root).
func repoRoot() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "cmd", "dvrflow-demo")); err == nil {
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
				return d, nil
			}
		}
		if d == filepath.Dir(d) {
			return "", errors.New("run the demo inside the dvrflow repository (make demo): cmd/dvrflow-demo not found")
		}
	}
}
