// Package topogen generates the benchmark topologies: one DVR compute node with N VM ports
// spread over M VLAN networks, one subnet per network, a distributed router interface on
// every subnet, and K other hosts' DVR MACs. Everything is derived from the indices, so the
// same parameters always give the same topology (ids, MACs, addresses, port names).
package topogen

import (
	"fmt"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/topology"
)

// Params sizes a topology.
type Params struct {
	// Ports is N, the number of VM ports (device_owner compute:nova) bound to this host.
	Ports int
	// Networks is M, the number of VLAN networks (each with one subnet and one distributed
	// router interface on this host). VM ports are spread round-robin over them.
	Networks int
	// OtherHosts is K, the number of other hosts (each with a DVR MAC).
	OtherHosts int
}

// Limits of the address plan.
const (
	// MaxNetworks: networks take VLANs FirstSegment.. and subnets 10.x.y.0/24.
	MaxNetworks = 3000
	// MaxPortsPerNetwork: VM addresses are .10 to .254 of the subnet.
	MaxPortsPerNetwork = 245
	// MaxOtherHosts: DVR MACs are fa:16:3f:01:xx:xx.
	MaxOtherHosts = 65535
	// MaxPorts: VM MACs are fa:16:3e:0x:xx:xx.
	MaxPorts = 1 << 20
	// FirstSegment is the segmentation id of network 0.
	FirstSegment = 100
)

// Host names and bridges of the generated node.
const (
	HostName      = "bench-compute"
	Physnet       = "physnet1"
	PhysBridge    = "br-vlan"
	IntBridge     = "br-int"
	HostDVRMAC    = "fa:16:3f:00:00:01"
	routerSubnets = 10 // subnets per distributed router
)

// Validate checks the parameters against the address plan.
func (p Params) Validate() error {
	switch {
	case p.Ports < 0 || p.Networks < 1 || p.OtherHosts < 0:
		return fmt.Errorf("topology %+v: want ports >= 0, networks >= 1, other hosts >= 0", p)
	case p.Ports > MaxPorts:
		return fmt.Errorf("topology %+v: at most %d ports", p, MaxPorts)
	case p.Networks > MaxNetworks:
		return fmt.Errorf("topology %+v: at most %d networks", p, MaxNetworks)
	case (p.Ports+p.Networks-1)/p.Networks > MaxPortsPerNetwork:
		return fmt.Errorf("topology %+v: at most %d ports per network", p, MaxPortsPerNetwork)
	case p.OtherHosts > MaxOtherHosts:
		return fmt.Errorf("topology %+v: at most %d other hosts", p, MaxOtherHosts)
	}
	return nil
}

// Generate returns the topology for p: the host section (agent_mode dvr, physnet1 on
// br-vlan, no tunnels), K other hosts, M networks with their subnets, then the M router
// interfaces (qr-) followed by the N VM ports (tap), in that order.
func Generate(p Params) (*topology.File, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	t := &topology.File{
		Name:        fmt.Sprintf("bench-%d-ports", p.Ports),
		Description: fmt.Sprintf("benchmark node: %d VM ports on %d VLAN networks, a distributed router interface per subnet, %d other hosts' DVR MACs", p.Ports, p.Networks, p.OtherHosts),
		Host:        host(),
		Networks:    make([]topology.Network, 0, p.Networks),
		Subnets:     make([]topology.Subnet, 0, p.Networks),
		Ports:       make([]topology.Port, 0, p.Networks+p.Ports),
	}
	for i := 0; i < p.OtherHosts; i++ {
		t.OtherHosts = append(t.OtherHosts, topology.OtherHost{
			Name:   fmt.Sprintf("compute-%05d", i+2),
			DVRMAC: fmt.Sprintf("fa:16:3f:01:%02x:%02x", (i+1)>>8, (i+1)&0xff),
		})
	}
	for i := 0; i < p.Networks; i++ {
		t.Networks = append(t.Networks, topology.Network{
			ID: NetworkID(i), Name: fmt.Sprintf("net-%d", i), NetworkType: string(northbound.VLAN),
			PhysicalNetwork: Physnet, SegmentationID: int64(FirstSegment + i),
		})
		t.Subnets = append(t.Subnets, topology.Subnet{
			ID: subnetID(i), NetworkID: NetworkID(i), CIDR: subnetPrefix(i) + ".0/24",
			GatewayIP: subnetPrefix(i) + ".1", GatewayMAC: gatewayMAC(i), IPVersion: 4,
		})
		t.Ports = append(t.Ports, topology.Port{
			ID: routerPortID(i), NetworkID: NetworkID(i), MAC: gatewayMAC(i),
			DeviceOwner: northbound.OwnerRouterInterfaceDistributed, DeviceID: routerID(i / routerSubnets),
			FixedIPs:            []topology.FixedIP{{SubnetID: subnetID(i), IPAddress: subnetPrefix(i) + ".1"}},
			PortSecurityEnabled: false, AdminStateUp: true,
		})
	}
	for j := 0; j < p.Ports; j++ {
		t.Ports = append(t.Ports, VMPort(p, j))
	}
	return t, nil
}

// VMPort returns VM port j of a topology sized by p. j may exceed p.Ports (the ports a
// benchmark plugs later, on the same networks) as long as Params{Ports: j + 1} is valid.
func VMPort(p Params, j int) topology.Port {
	net := j % p.Networks
	slot := j / p.Networks
	return topology.Port{
		ID: vmPortID(j), NetworkID: NetworkID(net), MAC: vmMAC(j),
		DeviceOwner: northbound.OwnerCompute, DeviceID: fmt.Sprintf("f%07x-0000-4000-8000-000000000000", j),
		FixedIPs: []topology.FixedIP{{SubnetID: subnetID(net),
			IPAddress: fmt.Sprintf("%s.%d", subnetPrefix(net), 10+slot)}},
		PortSecurityEnabled: true, AdminStateUp: true,
	}
}

func host() *topology.Host {
	s := func(v string) *string { return &v }
	b := func(v bool) *bool { return &v }
	return &topology.Host{
		Name: s(HostName), AgentMode: s(string(northbound.ModeDVR)), IntegrationBridge: s(IntBridge),
		BridgeMappings: map[string]string{Physnet: PhysBridge}, TunnelTypes: []string{},
		L2Population: b(false), ARPResponder: b(false), EnableDistributedRouting: b(true),
		DVRMAC: s(HostDVRMAC), PreventARPSpoofing: b(true),
	}
}

// NetworkID returns the id of network i. Ids are UUID-shaped, with the index in the first
// group so that Neutron's port names (prefix + 11 characters of the id) stay distinct.
func NetworkID(i int) string { return fmt.Sprintf("a%07x-0000-4000-8000-000000000000", i) }

func subnetID(i int) string     { return fmt.Sprintf("b%07x-0000-4000-8000-000000000000", i) }
func routerID(i int) string     { return fmt.Sprintf("e%07x-0000-4000-8000-000000000000", i) }
func routerPortID(i int) string { return fmt.Sprintf("d%07x-0000-4000-8000-000000000000", i) }
func vmPortID(j int) string     { return fmt.Sprintf("c%07x-0000-4000-8000-000000000000", j) }

// subnetPrefix returns the first three octets of network i's /24.
func subnetPrefix(i int) string { return fmt.Sprintf("10.%d.%d", i>>8, i&0xff) }

func gatewayMAC(i int) string { return fmt.Sprintf("fa:16:3e:f0:%02x:%02x", i>>8, i&0xff) }
func vmMAC(j int) string {
	return fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", (j>>16)&0x0f, (j>>8)&0xff, j&0xff)
}
