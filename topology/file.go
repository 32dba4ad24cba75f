// Package topology is the standalone northbound source: the topology file, a YAML (or JSON)
// document in Neutron's own attribute names (the format of testdata/neutron/scenarios and
// its README), decoded ([Load], [Parse]), parsed into the typed northbound model
// ([File.Snapshot]) and watched for changes ([Watch]). Unknown keys are accepted and
// ignored. Defaults that the format documents (admin_state_up, port_security_enabled,
// device_owner, flood, distributed, enable_snat, stateful, ethertype) are filled in by the decoder; code that builds these structs itself
// (test beds, generators of topologies) sets every field.
package topology

import "github.com/dvrflow/dvrflow/northbound"

// File is one node's view of the cloud, as the file spells it.
type File struct {
	// Name and Description are free text.
	Name        string `json:"name,omitempty"`
	Description string `json:"description,omitempty"`
	// Host holds the agent settings of this node; nil when the file has no host section.
	Host *Host `json:"host,omitempty"`
	// OtherHosts are the other nodes: tunnel endpoints and DVR MACs.
	OtherHosts []OtherHost `json:"other_hosts,omitempty"`
	// Networks and Ports are required keys (an empty list is fine).
	Networks    []Network    `json:"networks"`
	Subnets     []Subnet     `json:"subnets,omitempty"`
	Ports       []Port       `json:"ports"`
	RemotePorts []RemotePort `json:"remote_ports,omitempty"`
	L2popFDB    []FDB        `json:"l2pop_fdb,omitempty"`
	// Routers and FloatingIPs are the north-south DVR objects, in Neutron's API names.
	Routers     []Router     `json:"routers,omitempty"`
	FloatingIPs []FloatingIP `json:"floatingips,omitempty"`
	// SecurityGroups and AddressGroups are the firewall's objects, in Neutron's API names.
	SecurityGroups []SecurityGroup `json:"security_groups,omitempty"`
	AddressGroups  []AddressGroup  `json:"address_groups,omitempty"`

	// undecodable are objects the decoder could not read (a value of the wrong type);
	// Snapshot reports them.
	undecodable []northbound.Problem
}

// Host is the topology's host section: Neutron agent option names that override the ini
// config (see [northbound.HostSettings]). A nil pointer, map or slice means "not in the file";
// an empty map or slice is present and overrides. Keys that only matter to Neutron's agent
// (polling_interval, extra_config) are accepted and ignored.
type Host struct {
	// Name is this node's name ([DEFAULT] host).
	Name *string `json:"name,omitempty"`
	// AgentMode is legacy, dvr or dvr_snat (dvr_no_external is refused: not supported yet).
	AgentMode         *string `json:"agent_mode,omitempty"`
	IntegrationBridge *string `json:"integration_bridge,omitempty"`
	TunnelBridge      *string `json:"tunnel_bridge,omitempty"`
	// BridgeMappings maps physical network → bridge.
	BridgeMappings map[string]string `json:"bridge_mappings,omitempty"`
	// PhysicalBridgePorts maps bridge → the uplink ports the test bed adds to it; the agent
	// itself does not use it.
	PhysicalBridgePorts      map[string][]string `json:"physical_bridge_ports,omitempty"`
	LocalIP                  *string             `json:"local_ip,omitempty"`
	TunnelTypes              []string            `json:"tunnel_types,omitempty"`
	L2Population             *bool               `json:"l2_population,omitempty"`
	ARPResponder             *bool               `json:"arp_responder,omitempty"`
	EnableDistributedRouting *bool               `json:"enable_distributed_routing,omitempty"`
	// DVRMAC is this host's DVR MAC.
	DVRMAC             *string `json:"dvr_mac,omitempty"`
	PreventARPSpoofing *bool   `json:"prevent_arp_spoofing,omitempty"`
	// FirewallDriver is [securitygroup] firewall_driver: openvswitch (or its class path)
	// filters the ports by their security groups; noop does not.
	FirewallDriver *string `json:"firewall_driver,omitempty"`
}

// OtherHost is another node of the cloud.
type OtherHost struct {
	// Name identifies the host (remote_ports[].host refers to it).
	Name string `json:"name"`
	// IP is its tunnel endpoint (empty when it has none, e.g. VLAN only).
	IP string `json:"ip,omitempty"`
	// DVRMAC is its DVR MAC (empty when it has none).
	DVRMAC string `json:"dvr_mac,omitempty"`
	// TunnelTypes it supports; nil means "the same as this host" (Validate fills them in).
	TunnelTypes []string `json:"tunnel_types,omitempty"`
}

// Network is a Neutron network (provider attributes without their "provider:" prefix; the
// prefixed names are accepted too).
type Network struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// NetworkType is local, flat, vlan, vxlan, gre or geneve.
	NetworkType string `json:"network_type"`
	// PhysicalNetwork is set for flat and vlan networks.
	PhysicalNetwork string `json:"physical_network,omitempty"`
	// SegmentationID is the VLAN id, VNI or GRE key; 0 when unset (flat, local).
	SegmentationID int64 `json:"segmentation_id,omitempty"`
	// MTU is 0 when unset.
	MTU            int  `json:"mtu,omitempty"`
	RouterExternal bool `json:"router:external,omitempty"`
}

// Subnet is a Neutron subnet.
type Subnet struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	NetworkID string `json:"network_id"`
	CIDR      string `json:"cidr"`
	// GatewayIP is empty when the subnet has no gateway (null in the file).
	GatewayIP string `json:"gateway_ip,omitempty"`
	// GatewayMAC is the MAC of the distributed router interface owning GatewayIP; when the
	// file leaves it out, Validate fills in the MAC of the port (in ports, then
	// remote_ports) holding GatewayIP, if any.
	GatewayMAC string `json:"gateway_mac,omitempty"`
	// IPVersion is 4 or 6; 0 in the file means "from the CIDR" (Validate fills it in).
	IPVersion int `json:"ip_version,omitempty"`
}

// FixedIP is one address of a port.
type FixedIP struct {
	// SubnetID may be left out when the address is in exactly one subnet of the port's
	// network (Validate fills it in).
	SubnetID  string `json:"subnet_id,omitempty"`
	IPAddress string `json:"ip_address"`
}

// AddressPair is one of a port's allowed_address_pairs.
type AddressPair struct {
	// IPAddress is an address or a CIDR.
	IPAddress string `json:"ip_address"`
	// MACAddress is empty for the port's own MAC.
	MACAddress string `json:"mac_address,omitempty"`
}

// Port is a Neutron port bound to this host.
type Port struct {
	ID        string `json:"id"`
	Name      string `json:"name,omitempty"`
	NetworkID string `json:"network_id"`
	// MAC is the port's MAC ("mac_address" is accepted too).
	MAC string `json:"mac"`
	// DeviceOwner defaults to compute:nova.
	DeviceOwner northbound.DeviceOwner `json:"device_owner"`
	// DeviceID is the VM's id, or for a router interface its router's id.
	DeviceID            string        `json:"device_id,omitempty"`
	FixedIPs            []FixedIP     `json:"fixed_ips,omitempty"`
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
	// PortSecurityEnabled defaults to true.
	PortSecurityEnabled bool `json:"port_security_enabled"`
	// AdminStateUp defaults to true; false makes the port dead (tag 4095, drop).
	AdminStateUp bool `json:"admin_state_up"`
	// OFPort is the requested OpenFlow port number (test beds); 0 when unset.
	OFPort int `json:"ofport,omitempty"`
	// SecurityGroups are the ids of the port's security groups.
	SecurityGroups []string `json:"security_groups,omitempty"`
}

// RemotePort is a port bound to another host; it becomes l2population FDB entries.
type RemotePort struct {
	// Host is the name of an entry of other_hosts.
	Host      string `json:"host"`
	ID        string `json:"id"`
	NetworkID string `json:"network_id"`
	MAC       string `json:"mac"`
	// DeviceOwner defaults to compute:nova.
	DeviceOwner northbound.DeviceOwner `json:"device_owner"`
	// DeviceID is the VM's id, or for a router's port its router's id (optional).
	DeviceID string    `json:"device_id,omitempty"`
	FixedIPs []FixedIP `json:"fixed_ips,omitempty"`
	// SecurityGroups are the ids of the port's security groups (it is a member of them
	// for rules with a remote_group_id).
	SecurityGroups []string `json:"security_groups,omitempty"`
}

// FDB is an explicit l2population FDB entry for one network and one remote VTEP.
type FDB struct {
	NetworkID string `json:"network_id"`
	RemoteIP  string `json:"remote_ip"`
	// Flood adds the VTEP to the network's flooding list; defaults to true.
	Flood   bool       `json:"flood"`
	Entries []FDBEntry `json:"entries,omitempty"`
}

// FDBEntry is one unicast [mac, ip] entry.
type FDBEntry struct {
	MAC string `json:"mac"`
	IP  string `json:"ip,omitempty"`
}

// Router is a Neutron router.
type Router struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Distributed defaults to true (a DVR router).
	Distributed bool `json:"distributed"`
	// ExternalGatewayInfo is nil when the router has no external gateway.
	ExternalGatewayInfo *GatewayInfo `json:"external_gateway_info,omitempty"`
}

// GatewayInfo is a router's external_gateway_info.
type GatewayInfo struct {
	// NetworkID names a router:external network.
	NetworkID string `json:"network_id"`
	// EnableSNAT defaults to true.
	EnableSNAT bool `json:"enable_snat"`
	// ExternalFixedIPs are the gateway's (qg- port's) addresses; subnet_id may be left out
	// as in a port's fixed_ips.
	ExternalFixedIPs []FixedIP `json:"external_fixed_ips,omitempty"`
}

// FloatingIP is a Neutron floating IP; without port_id it is not associated (and has no
// router_id nor fixed_ip_address).
type FloatingIP struct {
	ID                string `json:"id"`
	FloatingIPAddress string `json:"floating_ip_address"`
	FloatingNetworkID string `json:"floating_network_id"`
	RouterID          string `json:"router_id,omitempty"`
	// PortID names a port of ports or remote_ports; the floating IP lives on its host.
	PortID string `json:"port_id,omitempty"`
	// FixedIPAddress may be left out when the port has one IPv4 address (Validate fills
	// it in).
	FixedIPAddress string `json:"fixed_ip_address,omitempty"`
}

// SecurityGroup is a Neutron security group with its rules.
type SecurityGroup struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Stateful defaults to true.
	Stateful bool                `json:"stateful"`
	Rules    []SecurityGroupRule `json:"security_group_rules,omitempty"`
}

// SecurityGroupRule is one rule of a security group, in Neutron's attribute names and
// values; each is parsed and checked as Neutron's API does (see
// [northbound.SecurityGroupRule]).
type SecurityGroupRule struct {
	// ID is optional.
	ID string `json:"id,omitempty"`
	// Direction is ingress or egress.
	Direction string `json:"direction"`
	// EtherType is IPv4 (the default) or IPv6, in any case.
	EtherType string `json:"ethertype"`
	// Protocol is a name (tcp, udp, icmp, icmpv6/ipv6-icmp, sctp, …), a number 0–255 (a
	// YAML number is fine), or empty, null or "any" for every protocol.
	Protocol string `json:"protocol,omitempty"`
	// PortRangeMin and PortRangeMax are the destination port range, or for icmp the ICMP
	// type and code; nil when absent.
	PortRangeMin *int `json:"port_range_min,omitempty"`
	PortRangeMax *int `json:"port_range_max,omitempty"`
	// At most one of the three remotes is set.
	RemoteIPPrefix       string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID        string `json:"remote_group_id,omitempty"`
	RemoteAddressGroupID string `json:"remote_address_group_id,omitempty"`
}

// AddressGroup is a Neutron address group.
type AddressGroup struct {
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Addresses are CIDRs.
	Addresses []string `json:"addresses,omitempty"`
}

// Key returns the remote port's identity: "host/id" (a distributed router interface has the
// same id on every host).
func (p *RemotePort) Key() string { return p.Host + "/" + p.ID }

// Key returns the FDB entry's identity: "network_id/remote_ip".
func (f *FDB) Key() string { return f.NetworkID + "/" + f.RemoteIP }
