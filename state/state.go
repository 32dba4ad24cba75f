// Package state is the resolved view of one node that flow generation works from: the
// host's settings, the networks provisioned here with their local VLANs, the ports bound
// here with their ofports, the subnets and routers they belong to, the other hosts' DVR
// MACs and tunnel endpoints, and the l2population FDB.
//
// The controller builds a Node from its sources (topology file or Neutron, the agent config,
// OVSDB) after validation; the generators in l2/, dvr/ and tunnels/ turn it into flows
// without any I/O. Every value here is already checked and parsed: generators never fail on
// their input, they only skip what is not ready (an ofport of 0, a network without a local
// VLAN).
package state

import (
	"net"
	"net/netip"
	"strings"
)

// Network types (Neutron's provider:network_type values).
const (
	TypeLocal  = "local"
	TypeFlat   = "flat"
	TypeVLAN   = "vlan"
	TypeVXLAN  = "vxlan"
	TypeGRE    = "gre"
	TypeGeneve = "geneve"
)

// Device owners that matter to the pipeline.
const (
	OwnerRouterInterfaceDistributed = "network:router_interface_distributed"
	OwnerRouterCentralizedSNAT      = "network:router_centralized_snat"
	OwnerDHCP                       = "network:dhcp"
	OwnerRouterGateway              = "network:router_gateway"
	OwnerComputePrefix              = "compute:"
	OwnerNetworkPrefix              = "network:"
)

// DeadVLAN is the tag of a port that must not carry traffic.
const DeadVLAN = 4095

// Node is everything the flow generators need to know about this host.
type Node struct {
	Host Host
	// Networks provisioned on this host: each has a local VLAN, sorted by LocalVLAN.
	Networks []Network
	// Subnets of the provisioned networks, sorted by ID.
	Subnets []Subnet
	// Ports bound on br-int (with a valid ofport), sorted by OFPort.
	Ports []Port
	// RemoteHosts are the other nodes (DVR MACs, tunnel endpoints), sorted by Name.
	RemoteHosts []RemoteHost
	// TunnelPorts are the tunnel ports on br-tun with their ofports, sorted by OFPort.
	TunnelPorts []TunnelPort
	// FDB is the l2population forwarding database, per network and remote VTEP, sorted by
	// (NetworkID, RemoteIP).
	FDB []FDB
}

// Host is this node's agent settings, as effective values (defaults, config, topology host
// section and flags already merged; derived switches already computed).
type Host struct {
	Name string
	// AgentMode is legacy, dvr, dvr_snat or dvr_no_external.
	AgentMode         string
	IntegrationBridge string
	TunnelBridge      string
	// Physical are the bridge_mappings with the ofports of each patch pair, sorted by
	// Physnet.
	Physical []PhysicalBridge
	// TunnelTypes is empty when tunnelling is off (then there is no br-tun).
	TunnelTypes []string
	LocalIP     netip.Addr
	// PatchTun is the ofport of patch-tun on br-int, PatchInt that of patch-int on
	// br-tun; 0 without tunnelling.
	PatchTun uint32
	PatchInt uint32
	// Distributed is enable_distributed_routing.
	Distributed  bool
	L2Population bool
	// ARPResponder is the effective value: arp_responder and l2_population, forced on
	// with DVR and tunnels.
	ARPResponder bool
	// DVRMAC is this host's DVR MAC; nil without DVR.
	DVRMAC net.HardwareAddr
	// PreventARPSpoofing installs tables 24/25 protection.
	PreventARPSpoofing bool
}

// Tunnelling reports whether br-tun is in use.
func (h *Host) Tunnelling() bool { return len(h.TunnelTypes) > 0 }

// DVR reports whether DVR flows are installed: distributed routing on and a DVR MAC known.
func (h *Host) DVR() bool { return h.Distributed && h.DVRMAC != nil }

// PhysicalFor returns the physical bridge of a physnet.
func (h *Host) PhysicalFor(physnet string) (PhysicalBridge, bool) {
	for _, p := range h.Physical {
		if p.Physnet == physnet {
			return p, true
		}
	}
	return PhysicalBridge{}, false
}

// PhysicalBridge is one bridge_mappings entry and its patch pair to br-int.
type PhysicalBridge struct {
	Physnet string
	Bridge  string
	// IntPort is the ofport of int-<bridge> on br-int; PhyPort of phy-<bridge> on Bridge.
	IntPort uint32
	PhyPort uint32
}

// Network is a network provisioned on this host.
type Network struct {
	ID string
	// Type is one of the Type* constants.
	Type    string
	Physnet string
	// SegmentationID is the provider VLAN, VNI or GRE key; 0 for flat and local.
	SegmentationID int64
	// LocalVLAN is the tag of the network's ports on br-int (1–4094).
	LocalVLAN uint16
	MTU       int
}

// Tunnelled reports whether the network is carried over br-tun.
func (n *Network) Tunnelled() bool {
	return n.Type == TypeVXLAN || n.Type == TypeGRE || n.Type == TypeGeneve
}

// Subnet is a subnet of a provisioned network.
type Subnet struct {
	ID        string
	NetworkID string
	CIDR      netip.Prefix
	// GatewayIP is invalid when the subnet has no gateway.
	GatewayIP netip.Addr
	// GatewayMAC is the MAC of the distributed router interface owning GatewayIP; nil when
	// unknown.
	GatewayMAC net.HardwareAddr
	IPVersion  int
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID string
	IP       netip.Addr
}

// AddressPair is one allowed address pair; MAC is nil for the port's own MAC.
type AddressPair struct {
	Prefix netip.Prefix
	MAC    net.HardwareAddr
}

// Port is a port bound on br-int.
type Port struct {
	ID string
	// Name is the OVS port name (tapXXXXXXXX-XX, qr-…, or the topology's name).
	Name        string
	NetworkID   string
	MAC         net.HardwareAddr
	DeviceOwner string
	// DeviceID is the VM id, or a router interface's router id.
	DeviceID            string
	FixedIPs            []FixedIP
	AllowedAddressPairs []AddressPair
	PortSecurity        bool
	// Dead ports (admin_state_up false) carry DeadVLAN and a drop flow.
	Dead   bool
	OFPort uint32
}

// IsCompute reports whether the port belongs to a VM.
func (p *Port) IsCompute() bool { return strings.HasPrefix(p.DeviceOwner, OwnerComputePrefix) }

// IsNetworkOwned reports whether a network:* service owns the port (no spoofing protection).
func (p *Port) IsNetworkOwned() bool { return strings.HasPrefix(p.DeviceOwner, OwnerNetworkPrefix) }

// IsDistributedRouterInterface reports whether the port is a DVR router interface (qr-).
func (p *Port) IsDistributedRouterInterface() bool {
	return p.DeviceOwner == OwnerRouterInterfaceDistributed
}

// IsCentralizedSNAT reports whether the port is a centralized SNAT port (sg-).
func (p *Port) IsCentralizedSNAT() bool { return p.DeviceOwner == OwnerRouterCentralizedSNAT }

// IsDVRServiced reports whether DVR delivers routed traffic straight to the port
// (Neutron's is_dvr_serviced: compute:*, DHCP, load balancers, trunk subports).
func (p *Port) IsDVRServiced() bool {
	switch {
	case p.IsCompute(), p.DeviceOwner == OwnerDHCP,
		p.DeviceOwner == "neutron:LOADBALANCER", p.DeviceOwner == "neutron:LOADBALANCERV2",
		p.DeviceOwner == "trunk:subport":
		return true
	}
	return false
}

// RemoteHost is another node of the cloud.
type RemoteHost struct {
	Name string
	// IP is its tunnel endpoint; invalid when it has none.
	IP netip.Addr
	// DVRMAC is nil when it has none.
	DVRMAC      net.HardwareAddr
	TunnelTypes []string
}

// TunnelPort is a tunnel port on br-tun.
type TunnelPort struct {
	Name     string
	Type     string
	RemoteIP netip.Addr
	OFPort   uint32
}

// FDB is the l2population state of one network towards one remote VTEP.
type FDB struct {
	NetworkID string
	RemoteIP  netip.Addr
	// Flood adds the VTEP to the network's flooding list.
	Flood   bool
	Entries []FDBEntry
}

// FDBEntry is one unicast entry; IP is invalid for a MAC-only entry.
type FDBEntry struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

// Network returns the provisioned network with the given id.
func (n *Node) Network(id string) (*Network, bool) {
	for i := range n.Networks {
		if n.Networks[i].ID == id {
			return &n.Networks[i], true
		}
	}
	return nil, false
}

// Subnet returns the subnet with the given id.
func (n *Node) Subnet(id string) (*Subnet, bool) {
	for i := range n.Subnets {
		if n.Subnets[i].ID == id {
			return &n.Subnets[i], true
		}
	}
	return nil, false
}
