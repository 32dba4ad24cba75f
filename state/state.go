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
	"cmp"
	"net"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/northbound"
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
	// SecurityGroups are the security groups the firewall filters with (Host.Firewall): those
	// of this node's ports, sorted by ID (a remote group's members are in GroupMembers). A group
	// the source withheld (a bad rule) is here in the last valid version the agent saw, or
	// absent when it never saw one (see Port.FirewallBlocked).
	SecurityGroups []SecurityGroup
	// AddressGroups are the address groups the rules of SecurityGroups name, sorted by ID.
	AddressGroups []AddressGroup
	// GroupMembers are, per security group id, the addresses of its member ports on every
	// host (fixed IPs as host prefixes and allowed address pairs, host bits cleared),
	// sorted, without duplicates: the remote addresses of rules whose remote group it is. Only groups some
	// rule of SecurityGroups names as its remote group are here.
	GroupMembers map[string][]netip.Prefix
}

// Host is this node's agent settings, as effective values (defaults, config, topology host
// section and flags already merged; derived switches already computed).
type Host struct {
	Name              string
	AgentMode         northbound.AgentMode
	IntegrationBridge string
	TunnelBridge      string
	// Physical are the bridge_mappings with the ofports of each patch pair, sorted by
	// Physnet.
	Physical []PhysicalBridge
	// TunnelTypes is empty when tunnelling is off (then there is no br-tun).
	TunnelTypes []northbound.NetworkType
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
	// PreventARPSpoofing installs tables 24/25 protection. It is off when Firewall is on:
	// the firewall's table 71 does that job, as with Neutron's openvswitch driver.
	PreventARPSpoofing bool
	// Firewall is Neutron's openvswitch firewall driver with enable_security_group on:
	// ports with port security are filtered by their security groups (tables 60, 71–94).
	Firewall bool
	// PermittedEthertypes are [securitygroup] permitted_ethertypes: ethertypes other than
	// IPv4, IPv6 and ARP that a filtered port may send (table 71 passes them to table 73).
	PermittedEthertypes []uint16
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
	ID      string
	Type    northbound.NetworkType
	Physnet string
	// SegmentationID is the provider VLAN, VNI or GRE key; 0 for flat and local.
	SegmentationID int64
	// LocalVLAN is the tag of the network's ports on br-int (1–4094).
	LocalVLAN uint16
	MTU       int
}

// Tunnelled reports whether the network is carried over br-tun.
func (n *Network) Tunnelled() bool { return n.Type.Tunnelled() }

// Subnet, FixedIP, AddressPair, RemoteHost, FDB and FDBEntry are the northbound model's:
// the generators take them as the model holds them.
type (
	Subnet      = northbound.Subnet
	FixedIP     = northbound.FixedIP
	AddressPair = northbound.AddressPair
	RemoteHost  = northbound.RemoteHost
	FDB         = northbound.FDB
	FDBEntry    = northbound.FDBEntry
	// SecurityGroup and AddressGroup are validated groups of the model.
	SecurityGroup = northbound.SecurityGroup
	AddressGroup  = northbound.AddressGroup
)

// Port is a port bound on br-int.
type Port struct {
	ID string
	// Name is the OVS port name (tapXXXXXXXX-XX, qr-…, or the topology's name).
	Name        string
	NetworkID   string
	MAC         net.HardwareAddr
	DeviceOwner northbound.DeviceOwner
	// DeviceID is the VM id, or a router interface's router id.
	DeviceID            string
	FixedIPs            []FixedIP
	AllowedAddressPairs []AddressPair
	PortSecurity        bool
	// SecurityGroups are the ids of the port's security groups, sorted.
	SecurityGroups []string
	// FirewallBlocked is set when the firewall is on and one of the port's groups is
	// neither valid nor known in a previous valid version (Node.SecurityGroups lacks it):
	// the port's traffic enters its firewall and matches no rule, so nothing passes until
	// the group is valid. Nothing opens up because of a bad rule.
	FirewallBlocked bool
	// Dead ports (admin_state_up false) carry DeadVLAN and a drop flow.
	Dead   bool
	OFPort uint32
}

// IsCompute reports whether the port belongs to a VM.
func (p *Port) IsCompute() bool { return p.DeviceOwner.IsCompute() }

// IsNetworkOwned reports whether a network:* service owns the port (no spoofing protection).
func (p *Port) IsNetworkOwned() bool { return p.DeviceOwner.IsNetworkOwned() }

// IsDistributedRouterInterface reports whether the port is a DVR router interface (qr-).
func (p *Port) IsDistributedRouterInterface() bool {
	return p.DeviceOwner == northbound.OwnerRouterInterfaceDistributed
}

// IsCentralizedSNAT reports whether the port is a centralized SNAT port (sg-).
func (p *Port) IsCentralizedSNAT() bool {
	return p.DeviceOwner == northbound.OwnerRouterCentralizedSNAT
}

// IsDVRServiced reports whether DVR delivers routed traffic straight to the port
// (Neutron's is_dvr_serviced: compute:*, DHCP, load balancers, trunk subports).
func (p *Port) IsDVRServiced() bool { return p.DeviceOwner.IsDVRServiced() }

// TunnelPort is a tunnel port on br-tun.
type TunnelPort struct {
	Name     string
	Type     northbound.NetworkType
	RemoteIP netip.Addr
	OFPort   uint32
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

// SecurityGroup returns the security group with the given id (SecurityGroups is sorted).
func (n *Node) SecurityGroup(id string) (*SecurityGroup, bool) {
	i, ok := slices.BinarySearchFunc(n.SecurityGroups, id, func(g SecurityGroup, id string) int { return cmp.Compare(g.ID, id) })
	if !ok {
		return nil, false
	}
	return &n.SecurityGroups[i], true
}

// AddressGroup returns the address group with the given id (AddressGroups is sorted).
func (n *Node) AddressGroup(id string) (*AddressGroup, bool) {
	i, ok := slices.BinarySearchFunc(n.AddressGroups, id, func(g AddressGroup, id string) int { return cmp.Compare(g.ID, id) })
	if !ok {
		return nil, false
	}
	return &n.AddressGroups[i], true
}

// Filters reports whether the firewall takes the port's traffic into its tables (hooks at
// table 60's priorities 90 and 100): the firewall is on, the port is not a trusted
// network:* port (router interfaces, DHCP, gateways), and it has port security or is held
// blocked until its groups are known.
func (h *Host) Filters(p *Port) bool {
	return h.Firewall && !p.IsNetworkOwned() && (p.PortSecurity || p.FirewallBlocked)
}
