package northbound

import (
	"net"
	"net/netip"
)

// Model is the desired state of the cloud as this node sees it. In a model that
// [Validate] returned every reference resolves (a port's network, a fixed IP's subnet, a
// remote port's host), ids are unique per list, and the documented defaults are filled in.
type Model struct {
	// OtherHosts are the other nodes of the cloud, by name.
	OtherHosts []RemoteHost
	Networks   []Network
	Subnets    []Subnet
	// Ports are the ports bound to this host.
	Ports []Port
	// RemotePorts are ports bound to other hosts; they become l2population FDB entries
	// ([Model.L2popFDB]) and the router namespaces' neighbour entries.
	RemotePorts []RemotePort
	// FDB holds explicit l2population entries (Neutron's fdb_add casts, or the topology
	// file's l2pop_fdb), merged into [Model.L2popFDB].
	FDB []FDB
}

// RemoteHost is another node of the cloud.
type RemoteHost struct {
	Name string
	// IP is its tunnel endpoint; invalid when it has none (VLAN only).
	IP netip.Addr
	// DVRMAC is nil when it has none.
	DVRMAC net.HardwareAddr
	// TunnelTypes it supports.
	TunnelTypes []NetworkType
}

// Network is a Neutron network with its provider attributes.
type Network struct {
	ID   string
	Name string
	Type NetworkType
	// Physnet is the physical_network of a flat or vlan network; empty otherwise.
	Physnet string
	// SegmentationID is the VLAN id, VNI or GRE key; 0 for flat and local networks.
	SegmentationID int64
	// MTU is 0 when unset.
	MTU int
	// External is router:external.
	External bool
}

// Subnet is a Neutron subnet.
type Subnet struct {
	ID        string
	Name      string
	NetworkID string
	CIDR      netip.Prefix
	// GatewayIP is invalid when the subnet has no gateway.
	GatewayIP netip.Addr
	// GatewayMAC is the MAC of the distributed router interface owning GatewayIP; nil
	// when unknown.
	GatewayMAC net.HardwareAddr
	// IPVersion is 4 or 6.
	IPVersion int
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

// Port is a Neutron port bound to this host.
type Port struct {
	ID   string
	Name string
	// NetworkID names a network of the model.
	NetworkID   string
	MAC         net.HardwareAddr
	DeviceOwner DeviceOwner
	// DeviceID is the VM's id, or for a router interface its router's id.
	DeviceID            string
	FixedIPs            []FixedIP
	AllowedAddressPairs []AddressPair
	PortSecurity        bool
	// AdminStateUp false makes the port dead (tag 4095, drop).
	AdminStateUp bool
	// OFPort is the OpenFlow port number a test bed should request; 0 when unset. The
	// agent itself reads ofports from OVSDB.
	OFPort int
}

// RemotePort is a port bound to another host.
type RemotePort struct {
	// Host names one of the model's OtherHosts.
	Host        string
	ID          string
	NetworkID   string
	MAC         net.HardwareAddr
	DeviceOwner DeviceOwner
	// DeviceID is the VM's id, or for a router's port (an interface, a centralized SNAT
	// port) its router's id; empty when unknown.
	DeviceID string
	FixedIPs []FixedIP
}

// Key is the remote port's identity, "host/id": a distributed router interface has the
// same id on every host.
func (p *RemotePort) Key() string { return p.Host + "/" + p.ID }

// FDB is the l2population state of one network towards one remote VTEP.
type FDB struct {
	NetworkID string
	RemoteIP  netip.Addr
	// Flood adds the VTEP to the network's flooding list.
	Flood   bool
	Entries []FDBEntry
}

// Key is the entry's identity, "network_id/remote_ip".
func (f *FDB) Key() string { return f.NetworkID + "/" + f.RemoteIP.String() }

// FDBEntry is one unicast entry; IP is invalid for a MAC-only entry.
type FDBEntry struct {
	MAC net.HardwareAddr
	IP  netip.Addr
}

// Network returns the network with the given id.
func (m *Model) Network(id string) (*Network, bool) {
	for i := range m.Networks {
		if m.Networks[i].ID == id {
			return &m.Networks[i], true
		}
	}
	return nil, false
}
