package northbound

import (
	"net"
	"net/netip"
)

// Model is the desired state of the cloud as this node sees it. In a model that
// [Validate] returned every reference resolves (a port's network, a fixed IP's subnet, a
// remote port's host, a rule's remote group or address group), ids are unique per list,
// and the documented defaults are filled in. The one exception is ports' security_groups,
// which may name a withheld or an unknown group: the port's [Port.FirewallWithheld] says so.
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
	// GroupMembers are ports known only as members of security groups (see
	// [GroupMember]); [Model.SecurityGroupMembers] counts them.
	GroupMembers []GroupMember
	// FDB holds explicit l2population entries (Neutron's fdb_add casts, or the topology
	// file's l2pop_fdb), merged into [Model.L2popFDB].
	FDB []FDB
	// Routers are the cloud's routers, with their external gateways (north-south DVR).
	Routers []Router
	// FloatingIPs are the cloud's floating IPs, each resolved to the host of its port.
	FloatingIPs []FloatingIP
	// SecurityGroups are the valid security groups; AddressGroups the valid address
	// groups their rules may use.
	SecurityGroups []SecurityGroup
	AddressGroups  []AddressGroup
	// WithheldSecurityGroups are the ids, sorted, of the security groups the source gives
	// but Validate withheld (an invalid rule or attribute, or a duplicated id): their
	// rules are unknown, see [SecurityGroup] for what the agent does.
	WithheldSecurityGroups []string
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
	// SecurityGroups are the ids of the port's security groups, sorted, without
	// duplicates; nil when none.
	SecurityGroups []string
	// FirewallWithheld is set by Validate when the port's filtering cannot be computed:
	// it names a withheld or unknown security group, or its security_groups are refused
	// (groups on a port without port security, stateful and stateless groups mixed). The
	// agent keeps the firewall installed for the port (none yet: no traffic passes); the
	// port is otherwise programmed as usual.
	FirewallWithheld bool
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
	// SecurityGroups are the ids of the port's security groups (for remote-group
	// membership), sorted, without duplicates; nil when none.
	SecurityGroups []string
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

// Router is a Neutron router.
type Router struct {
	ID   string
	Name string
	// Distributed is true for a DVR router (the topology file's default), false for a
	// centralized one.
	Distributed bool
	// Gateway is the external gateway; nil when the router has none.
	Gateway *RouterGateway
}

// RouterGateway is a router's external_gateway_info.
type RouterGateway struct {
	// NetworkID names a router:external network of the model.
	NetworkID string
	// EnableSNAT makes the router's internal subnets leave through the gateway address
	// (the topology file's default).
	EnableSNAT bool
	// FixedIPs are the gateway's addresses on the external network's subnets (the qg-
	// port's); empty when the source gives none.
	FixedIPs []FixedIP
}

// FloatingIP is a Neutron floating IP. One without a PortID is not associated: its
// RouterID, FixedIP and Host are empty, and nothing is programmed for it.
type FloatingIP struct {
	ID string
	// Address is the floating_ip_address, an IPv4 address in a subnet of NetworkID.
	Address netip.Addr
	// NetworkID is the floating_network_id, a router:external network of the model.
	NetworkID string
	// RouterID names the router whose gateway is on NetworkID.
	RouterID string
	// PortID names a port of Ports or RemotePorts.
	PortID string
	// FixedIP is the port's IPv4 address the floating IP translates to.
	FixedIP netip.Addr
	// Host is the host the port is bound to: this host when the port is in Ports, else the
	// remote port's host. Validate fills it in.
	Host string
}

// Associated reports whether the floating IP is associated with a port.
func (f *FloatingIP) Associated() bool { return f.PortID != "" }

// Router returns the router with the given id.
func (m *Model) Router(id string) (*Router, bool) {
	for i := range m.Routers {
		if m.Routers[i].ID == id {
			return &m.Routers[i], true
		}
	}
	return nil, false
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
