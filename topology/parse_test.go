package topology

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
)

// where names a problem without its reason.
type where struct {
	kind      northbound.Kind
	id, field string
}

func TestValidateInvalidTopologies(t *testing.T) {
	vlanNet := func(id string, seg int64) Network {
		return Network{ID: id, NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: seg}
	}
	tunnelNet := func(typ string, seg int64) Network {
		return Network{ID: "net-new", NetworkType: typ, SegmentationID: seg}
	}
	localPort := func(id, mac string) Port {
		return Port{ID: id, NetworkID: "net-local", MAC: mac, AdminStateUp: true, PortSecurityEnabled: true}
	}
	addNetwork := func(n Network) func(*File) {
		return func(t *File) { t.Networks = append(t.Networks, n) }
	}
	addSubnet := func(s Subnet) func(*File) {
		return func(t *File) { t.Subnets = append(t.Subnets, s) }
	}
	addPort := func(p Port) func(*File) {
		return func(t *File) { t.Ports = append(t.Ports, p) }
	}
	port := func(t *File, id string) *Port {
		for i := range t.Ports {
			if t.Ports[i].ID == id {
				return &t.Ports[i]
			}
		}
		panic("no port " + id)
	}
	router := func(t *File, id string) *Router {
		for i := range t.Routers {
			if t.Routers[i].ID == id {
				return &t.Routers[i]
			}
		}
		panic("no router " + id)
	}
	floatingIP := func(t *File, id string) *FloatingIP {
		for i := range t.FloatingIPs {
			if t.FloatingIPs[i].ID == id {
				return &t.FloatingIPs[i]
			}
		}
		panic("no floating IP " + id)
	}
	hostMode := func(mode string) func(*File) {
		return func(t *File) { t.Host.AgentMode = &mode }
	}
	then := func(edits ...func(*File)) func(*File) {
		return func(t *File) {
			for _, e := range edits {
				e(t)
			}
		}
	}
	snatPort := Port{ID: "sg-vxlan", NetworkID: "net-vxlan", MAC: "fa:16:3e:10:01:03", DeviceOwner: northbound.OwnerRouterCentralizedSNAT,
		DeviceID: "router1", FixedIPs: []FixedIP{{SubnetID: "sub-vxlan", IPAddress: "10.1.1.3"}}, AdminStateUp: true}
	gatewayPort := Port{ID: "qg-flat", NetworkID: "net-flat", MAC: "fa:16:3e:40:01:05", DeviceOwner: northbound.OwnerRouterGateway,
		DeviceID: "router1", FixedIPs: []FixedIP{{SubnetID: "sub-flat", IPAddress: "172.24.4.5"}}, AdminStateUp: true}
	tests := []struct {
		name   string
		ini    func(*config.Config) // before the host section is applied
		edit   func(*File)
		want   []where
		reason string // the first problem's reason
	}{
		// MACs
		{name: "port mac", edit: func(t *File) { port(t, "vm-vlan").MAC = "fa:16:3e:zz:01:01" },
			want: []where{{"port", "vm-vlan", "mac"}}, reason: `"fa:16:3e:zz:01:01" is not a MAC address`},
		{name: "port without mac", edit: func(t *File) { port(t, "vm-local").MAC = "" },
			want: []where{{"port", "vm-local", "mac"}}, reason: "missing"},
		{name: "remote port mac", edit: func(t *File) { t.RemotePorts[0].MAC = "fa:16:3e:20:01" },
			want:   []where{{"remote_port", "compute2/vm-remote", "mac"}, {"floatingip", "fip-remote", "port_id"}},
			reason: `"fa:16:3e:20:01" is not a MAC address`},
		{name: "other host dvr_mac", edit: func(t *File) { t.OtherHosts[2].DVRMAC = "fa:16:3f" },
			want: []where{{"other_host", "compute3", "dvr_mac"}}, reason: `"fa:16:3f" is not a MAC address`},
		{name: "other host has this host's dvr_mac", edit: func(t *File) { t.OtherHosts[2].DVRMAC = "FA:16:3F:00:00:01" },
			want: []where{{"other_host", "compute3", "dvr_mac"}}, reason: `"fa:16:3f:00:00:01" is this host's dvr_mac`},
		{name: "two other hosts share a dvr_mac", edit: func(t *File) { t.OtherHosts[2].DVRMAC = "fa:16:3f:00:00:02" },
			want: []where{{"other_host", "compute3", "dvr_mac"}}, reason: `"fa:16:3f:00:00:02" is also the dvr_mac of other host "compute2"`},
		{name: "gateway_mac", edit: addSubnet(Subnet{ID: "sub-new", NetworkID: "net-local", CIDR: "10.9.0.0/24", GatewayMAC: "ff:ff:ff:ff:ff:ff"}),
			want: []where{{"subnet", "sub-new", "gateway_mac"}}, reason: `"ff:ff:ff:ff:ff:ff" is a multicast MAC address`},
		{name: "allowed address pair mac", edit: func(t *File) { port(t, "vm-vlan").AllowedAddressPairs[1].MACAddress = "nope" },
			want: []where{{"port", "vm-vlan", "allowed_address_pairs[1].mac_address"}}, reason: `"nope" is not a MAC address`},
		{name: "duplicate mac on one network", edit: addPort(localPort("vm-local2", "FA:16:3E:30:01:11")),
			want: []where{{"port", "vm-local2", "mac"}}, reason: `"fa:16:3e:30:01:11" is also the MAC of port vm-local on the same network`},
		{name: "same mac on another network is fine", edit: func(t *File) { port(t, "vm-local").MAC = "fa:16:3e:00:01:11" }},

		// addresses
		{name: "other host ip", edit: func(t *File) { t.OtherHosts[2].IP = "192.168.100.512" },
			want: []where{{"other_host", "compute3", "ip"}}, reason: `"192.168.100.512" is not an IP address`},
		{name: "other host ip is local_ip", edit: func(t *File) { t.OtherHosts[2].IP = "192.168.100.11" },
			want: []where{{"other_host", "compute3", "ip"}}, reason: `"192.168.100.11" is this host's local_ip`},
		{name: "allowed address pair ip", edit: func(t *File) { port(t, "vm-vlan").AllowedAddressPairs[0].IPAddress = "10.0.1/24" },
			want: []where{{"port", "vm-vlan", "allowed_address_pairs[0].ip_address"}}, reason: `"10.0.1/24" is not an IP address or CIDR`},
		{name: "bad cidr", edit: addSubnet(Subnet{ID: "sub-new", NetworkID: "net-local", CIDR: "10.9.0.0/33"}),
			want: []where{{"subnet", "sub-new", "cidr"}}, reason: `"10.9.0.0/33" is not a CIDR (address/length)`},
		{name: "cidr with host bits", edit: addSubnet(Subnet{ID: "sub-new", NetworkID: "net-local", CIDR: "10.9.0.5/24"}),
			want: []where{{"subnet", "sub-new", "cidr"}}, reason: `"10.9.0.5/24" has host bits set (did you mean 10.9.0.0/24?)`},
		{name: "gateway outside the subnet", edit: addSubnet(Subnet{ID: "sub-new", NetworkID: "net-local", CIDR: "10.9.0.0/24", GatewayIP: "10.9.1.1"}),
			want: []where{{"subnet", "sub-new", "gateway_ip"}}, reason: "10.9.1.1 is outside the subnet's cidr 10.9.0.0/24"},
		{name: "ip_version against cidr", edit: addSubnet(Subnet{ID: "sub-new", NetworkID: "net-local", CIDR: "10.9.0.0/24", IPVersion: 6}),
			want: []where{{"subnet", "sub-new", "ip_version"}}, reason: "6 does not match cidr 10.9.0.0/24"},
		{name: "fixed ip not an address", edit: func(t *File) { port(t, "vm-gre").FixedIPs[0].IPAddress = "10.2.1.x" },
			want: []where{{"port", "vm-gre", "fixed_ips[0].ip_address"}}, reason: `"10.2.1.x" is not an IP address`},
		{name: "fixed ip outside its subnet", edit: func(t *File) { port(t, "vm-gre").FixedIPs[0].IPAddress = "10.2.2.11" },
			want: []where{{"port", "vm-gre", "fixed_ips[0].ip_address"}}, reason: "10.2.2.11 is outside subnet sub-gre (10.2.1.0/24)"},
		{name: "fixed ip in an unknown subnet", edit: func(t *File) { port(t, "vm-gre").FixedIPs[0].SubnetID = "sub-nope" },
			want: []where{{"port", "vm-gre", "fixed_ips[0].subnet_id"}}, reason: "unknown subnet sub-nope"},
		{name: "fixed ip in another network's subnet", edit: func(t *File) { port(t, "vm-gre").FixedIPs[0].SubnetID = "sub-vxlan" },
			want: []where{{"port", "vm-gre", "fixed_ips[0].subnet_id"}}, reason: "subnet sub-vxlan is on network net-vxlan, not net-gre"},
		{name: "fixed ip without subnet_id in no subnet", edit: func(t *File) { port(t, "vm-vxlan").FixedIPs[0].IPAddress = "10.7.0.1" },
			want:   []where{{"port", "vm-vxlan", "fixed_ips[0].subnet_id"}, {"floatingip", "fip-vxlan", "port_id"}},
			reason: "missing, and 10.7.0.1 is in no subnet of network net-vxlan"},

		// segments
		{name: "vlan id 4095", edit: addNetwork(vlanNet("net-new", 4095)),
			want: []where{{"network", "net-new", "segmentation_id"}}, reason: "4095 is outside 1–4094 for a vlan network"},
		{name: "vlan without id", edit: addNetwork(vlanNet("net-new", 0)),
			want: []where{{"network", "net-new", "segmentation_id"}}, reason: "0 is outside 1–4094 for a vlan network"},
		{name: "vni too big", edit: addNetwork(tunnelNet("vxlan", 1<<24)),
			want: []where{{"network", "net-new", "segmentation_id"}}, reason: "16777216 is outside 1–16777215 for a vxlan network"},
		{name: "geneve vni too big", ini: func(c *config.Config) {}, edit: func(t *File) {
			t.Host.TunnelTypes = []string{"vxlan", "gre", "geneve"}
			addNetwork(tunnelNet("geneve", 1<<24))(t)
		}, want: []where{{"network", "net-new", "segmentation_id"}}, reason: "16777216 is outside 1–16777215 for a geneve network"},
		{name: "gre key zero", edit: addNetwork(tunnelNet("gre", 0)),
			want: []where{{"network", "net-new", "segmentation_id"}}, reason: "0 is outside 1–4294967295 for a gre network"},
		{name: "gre key too big", edit: addNetwork(tunnelNet("gre", 1<<32)),
			want: []where{{"network", "net-new", "segmentation_id"}}, reason: "4294967296 is outside 1–4294967295 for a gre network"},
		{name: "unknown network type", edit: addNetwork(tunnelNet("stt", 5)),
			want: []where{{"network", "net-new", "network_type"}}, reason: `"stt" is not one of local, flat, vlan, vxlan, gre, geneve`},
		{name: "missing network type", edit: addNetwork(Network{ID: "net-new"}),
			want: []where{{"network", "net-new", "network_type"}}, reason: "missing"},
		{name: "tunnel type not in tunnel_types", edit: addNetwork(tunnelNet("geneve", 5)),
			want: []where{{"network", "net-new", "network_type"}}, reason: `"geneve" is not in tunnel_types (vxlan, gre)`},
		{name: "vlan without physical network", edit: addNetwork(Network{ID: "net-new", NetworkType: "vlan", SegmentationID: 5}),
			want: []where{{"network", "net-new", "physical_network"}}, reason: "missing (a vlan network needs one)"},
		{name: "flat on an unmapped physical network", edit: addNetwork(Network{ID: "net-new", NetworkType: "flat", PhysicalNetwork: "physnet9"}),
			want: []where{{"network", "net-new", "physical_network"}}, reason: `"physnet9" is not in bridge_mappings (extnet, physnet1)`},
		{name: "physnet from the ini replaced by the host's mappings",
			ini:  func(c *config.Config) { c.BridgeMappings = map[string]string{"physnet9": "br-9"} },
			edit: addNetwork(Network{ID: "net-new", NetworkType: "flat", PhysicalNetwork: "physnet9"}),
			want: []where{{"network", "net-new", "physical_network"}}, reason: `"physnet9" is not in bridge_mappings (extnet, physnet1)`},
		{name: "flat with a segmentation id", edit: addNetwork(Network{ID: "net-new", NetworkType: "flat", PhysicalNetwork: "physnet1", SegmentationID: 3}),
			want: []where{{"network", "net-new", "segmentation_id"}}, reason: "3 is set on a flat network"},
		{name: "vxlan with a physical network", edit: addNetwork(Network{ID: "net-new", NetworkType: "vxlan", PhysicalNetwork: "physnet1", SegmentationID: 3}),
			want: []where{{"network", "net-new", "physical_network"}}, reason: `"physnet1" is set on a vxlan network`},

		// references, ids
		{name: "port on an unknown network", edit: addPort(Port{ID: "p-new", NetworkID: "net-nope", MAC: "fa:16:3e:99:00:01"}),
			want: []where{{"port", "p-new", "network_id"}}, reason: "unknown network net-nope"},
		{name: "dropped network drops its dependents", edit: func(t *File) { t.Networks[3].SegmentationID = 0 },
			want: []where{{"network", "net-gre", "segmentation_id"}, {"subnet", "sub-gre", "network_id"},
				{"port", "vm-gre", "network_id"}, {"l2pop_fdb", "net-gre/192.168.100.12", "network_id"}},
			reason: "0 is outside 1–4294967295 for a gre network"},
		{name: "dropped subnet drops the ports using it", edit: func(t *File) { t.Subnets[4].CIDR = "10.2.1.0" },
			want:   []where{{"subnet", "sub-gre", "cidr"}, {"port", "vm-gre", "fixed_ips[0].subnet_id"}},
			reason: `"10.2.1.0" is not a CIDR (address/length)`},
		{name: "dropped external subnet drops the routers and floating IPs using it", edit: func(t *File) { t.Subnets[2].CIDR = "172.24.4.0" },
			want: []where{{"subnet", "sub-flat", "cidr"}, {"port", "fg-flat", "fixed_ips[0].subnet_id"},
				{"router", "router1", "external_gateway_info.external_fixed_ips[0].subnet_id"},
				{"router", "router2", "external_gateway_info.external_fixed_ips[0].subnet_id"},
				{"floatingip", "fip-vxlan", "floating_ip_address"}, {"floatingip", "fip-vxlan", "router_id"},
				{"floatingip", "fip-remote", "floating_ip_address"}, {"floatingip", "fip-remote", "router_id"},
				{"floatingip", "fip-free", "floating_ip_address"}},
			reason: `"172.24.4.0" is not a CIDR (address/length)`},
		{name: "duplicate network id", edit: addNetwork(Network{ID: "net-local", NetworkType: "local"}),
			want: []where{{"network", "net-local", "id"}}, reason: "duplicate id"},
		{name: "duplicate subnet id", edit: addSubnet(Subnet{ID: "sub-gre", NetworkID: "net-local", CIDR: "10.9.0.0/24"}),
			want: []where{{"subnet", "sub-gre", "id"}}, reason: "duplicate id"},
		{name: "duplicate port id", edit: addPort(localPort("vm-vlan", "fa:16:3e:99:00:01")),
			want: []where{{"port", "vm-vlan", "id"}}, reason: "duplicate id"},
		{name: "network without id", edit: addNetwork(Network{NetworkType: "local"}),
			want: []where{{"network", "networks[5]", "id"}}, reason: "missing"},
		{name: "subnet without id", edit: addSubnet(Subnet{NetworkID: "net-local", CIDR: "10.9.0.0/24"}),
			want: []where{{"subnet", "subnets[5]", "id"}}, reason: "missing"},
		{name: "port without id", edit: addPort(localPort("", "fa:16:3e:99:00:01")),
			want: []where{{"port", "ports[7]", "id"}}, reason: "missing"},
		{name: "port ofport", edit: func(t *File) { port(t, "vm-vlan").OFPort = 65280 },
			want: []where{{"port", "vm-vlan", "ofport"}}, reason: "65280 is outside 1–65279"},

		// other hosts, remote ports, FDB
		{name: "other host without name", edit: func(t *File) { t.OtherHosts = append(t.OtherHosts, OtherHost{IP: "192.168.100.20"}) },
			want: []where{{"other_host", "other_hosts[3]", "name"}}, reason: "missing"},
		{name: "two other hosts share an ip", edit: func(t *File) { t.OtherHosts[2].IP = "192.168.100.12" },
			want: []where{{"other_host", "compute3", "ip"}}, reason: `"192.168.100.12" is also the ip of other host "compute2"`},
		{name: "duplicate other host", edit: func(t *File) { t.OtherHosts = append(t.OtherHosts, OtherHost{Name: "compute2"}) },
			want: []where{{"other_host", "compute2", "name"}}, reason: "duplicate name"},
		{name: "other host named like this host", edit: func(t *File) { t.OtherHosts = append(t.OtherHosts, OtherHost{Name: "compute1"}) },
			want: []where{{"other_host", "compute1", "name"}}, reason: `"compute1" is this host's name`},
		{name: "other host tunnel type", edit: func(t *File) { t.OtherHosts[2].TunnelTypes = []string{"ipip"} },
			want: []where{{"other_host", "compute3", "tunnel_types"}}, reason: `has a tunnel type "ipip" that is not one of vxlan, gre, geneve`},
		{name: "remote port on an unknown host", edit: func(t *File) { t.RemotePorts[3].Host = "network9" },
			want: []where{{"remote_port", "network9/dhcp-vxlan", "host"}}, reason: `unknown host "network9" (not in other_hosts)`},
		{name: "remote port on a host without tunnel ip", edit: func(t *File) { t.OtherHosts[0].IP = "" },
			want: []where{{"remote_port", "compute2/vm-remote", "host"}, {"remote_port", "compute2/qr-vxlan", "host"},
				{"floatingip", "fip-remote", "port_id"}},
			reason: `other host "compute2" has no ip (tunnel endpoint) for vxlan network net-vxlan`},
		{name: "remote port of an invalid host", edit: func(t *File) { t.OtherHosts[1].IP = "x" },
			want:   []where{{"other_host", "network1", "ip"}, {"remote_port", "network1/qr-vxlan", "host"}, {"remote_port", "network1/dhcp-vxlan", "host"}},
			reason: `"x" is not an IP address`},
		{name: "fdb on a vlan network", edit: func(t *File) { t.L2popFDB[1].NetworkID = "net-vlan" },
			want: []where{{"l2pop_fdb", "net-vlan/192.168.100.12", "network_id"}}, reason: "network net-vlan is vlan; l2pop FDB entries apply to tunnel networks only"},
		{name: "fdb remote_ip", edit: func(t *File) { t.L2popFDB[0].RemoteIP = "192.168.100" },
			want: []where{{"l2pop_fdb", "net-vxlan/192.168.100", "remote_ip"}}, reason: `"192.168.100" is not an IP address`},
		{name: "fdb entry mac", edit: func(t *File) { t.L2popFDB[0].Entries[0].MAC = "00:00:00:00:00:00" },
			want: []where{{"l2pop_fdb", "net-vxlan/192.168.100.13", "entries[0].mac"}}, reason: `"00:00:00:00:00:00" is the all-zero MAC address`},

		// host section
		{name: "host dvr_mac", edit: func(t *File) { bad := "fa:16:3f:00:00"; t.Host.DVRMAC = &bad },
			want: []where{{"host", "compute1", "dvr_mac"}}, reason: `"fa:16:3f:00:00" is not a MAC address`},
		// An invalid host setting is left out: the ini's value stays in force.
		{name: "host bridge mappings", ini: func(c *config.Config) {
			c.BridgeMappings = map[string]string{"physnet1": "br-vlan", "extnet": "br-ex"}
		}, edit: func(t *File) {
			t.Host.BridgeMappings = map[string]string{"physnet1": "br-vlan", "extnet": "br-vlan"}
		}, want: []where{{"host", "compute1", "bridge_mappings"}}, reason: `maps bridge "br-vlan" twice (physical networks "extnet" and "physnet1")`},
		{name: "host agent_mode", edit: func(t *File) { m := "distributed"; t.Host.AgentMode = &m },
			want: []where{{"host", "compute1", "agent_mode"}}, reason: `"distributed" is not one of legacy, dvr, dvr_snat, dvr_no_external`},
		{name: "host agent_mode dvr_no_external", edit: hostMode("dvr_no_external"),
			want: []where{{"host", "compute1", "agent_mode"}}, reason: `"dvr_no_external" is not supported yet (use dvr or dvr_snat)`},

		// ports a host's agent_mode cannot hold
		{name: "centralized SNAT port on a dvr host", edit: addPort(snatPort),
			want: []where{{"port", "sg-vxlan", "device_owner"}}, reason: `"network:router_centralized_snat" needs agent_mode dvr_snat; this host (compute1) is dvr`},
		{name: "router gateway port on a dvr host", edit: addPort(gatewayPort),
			want: []where{{"port", "qg-flat", "device_owner"}}, reason: `"network:router_gateway" needs agent_mode dvr_snat or legacy; this host (compute1) is dvr`},
		{name: "centralized SNAT and gateway ports on a dvr_snat host", edit: then(hostMode("dvr_snat"), addPort(snatPort), addPort(gatewayPort))},
		{name: "router gateway port on a legacy host", edit: then(hostMode("legacy"), addPort(gatewayPort))},
		{name: "centralized SNAT port on a legacy host", edit: then(hostMode("legacy"), addPort(snatPort)),
			want: []where{{"port", "sg-vxlan", "device_owner"}}, reason: `"network:router_centralized_snat" needs agent_mode dvr_snat; this host (compute1) is legacy`},

		// routers
		{name: "router without id", edit: func(t *File) { t.Routers = append(t.Routers, Router{Distributed: true}) },
			want: []where{{"router", "routers[3]", "id"}}, reason: "missing"},
		{name: "duplicate router id", edit: func(t *File) { t.Routers = append(t.Routers, Router{ID: "router3"}) },
			want: []where{{"router", "router3", "id"}}, reason: "duplicate id"},
		{name: "router gateway without network", edit: func(t *File) { router(t, "router2").ExternalGatewayInfo.NetworkID = "" },
			want: []where{{"router", "router2", "external_gateway_info.network_id"}}, reason: "missing"},
		{name: "router gateway on an unknown network", edit: func(t *File) { router(t, "router2").ExternalGatewayInfo.NetworkID = "net-nope" },
			want: []where{{"router", "router2", "external_gateway_info.network_id"}}, reason: "unknown network net-nope"},
		{name: "router gateway on a network that is not external", edit: func(t *File) { router(t, "router2").ExternalGatewayInfo.NetworkID = "net-vlan" },
			want: []where{{"router", "router2", "external_gateway_info.network_id"},
				{"router", "router2", "external_gateway_info.external_fixed_ips[0].subnet_id"}},
			reason: "network net-vlan is not router:external"},
		{name: "router gateway address outside its subnet", edit: func(t *File) {
			router(t, "router2").ExternalGatewayInfo.ExternalFixedIPs[0] = FixedIP{SubnetID: "sub-flat", IPAddress: "172.24.5.6"}
		}, want: []where{{"router", "router2", "external_gateway_info.external_fixed_ips[0].ip_address"}},
			reason: "172.24.5.6 is outside subnet sub-flat (172.24.4.0/24)"},
		{name: "router gateway subnet on another network", edit: func(t *File) {
			router(t, "router2").ExternalGatewayInfo.ExternalFixedIPs[0] = FixedIP{SubnetID: "sub-vlan", IPAddress: "10.0.1.6"}
		}, want: []where{{"router", "router2", "external_gateway_info.external_fixed_ips[0].subnet_id"}},
			reason: "subnet sub-vlan is on network net-vlan, not net-flat"},
		{name: "router gateway address not an address", edit: func(t *File) {
			router(t, "router2").ExternalGatewayInfo.ExternalFixedIPs[0].IPAddress = "172.24.4"
		}, want: []where{{"router", "router2", "external_gateway_info.external_fixed_ips[0].ip_address"}},
			reason: `"172.24.4" is not an IP address`},
		{name: "dropped router drops its floating IPs", edit: func(t *File) { router(t, "router1").ExternalGatewayInfo.NetworkID = "net-nope" },
			want: []where{{"router", "router1", "external_gateway_info.network_id"},
				{"floatingip", "fip-vxlan", "router_id"}, {"floatingip", "fip-remote", "router_id"}},
			reason: "unknown network net-nope"},

		// floating IPs
		{name: "floating IP without id", edit: func(t *File) {
			t.FloatingIPs = append(t.FloatingIPs, FloatingIP{FloatingIPAddress: "172.24.4.103", FloatingNetworkID: "net-flat"})
		}, want: []where{{"floatingip", "floatingips[3]", "id"}}, reason: "missing"},
		{name: "duplicate floating IP id", edit: func(t *File) {
			t.FloatingIPs = append(t.FloatingIPs, FloatingIP{ID: "fip-free", FloatingIPAddress: "172.24.4.103", FloatingNetworkID: "net-flat"})
		}, want: []where{{"floatingip", "fip-free", "id"}}, reason: "duplicate id"},
		{name: "floating IP on an unknown network", edit: func(t *File) { floatingIP(t, "fip-free").FloatingNetworkID = "net-nope" },
			want: []where{{"floatingip", "fip-free", "floating_network_id"}}, reason: "unknown network net-nope"},
		{name: "floating IP on a network that is not external", edit: func(t *File) {
			f := floatingIP(t, "fip-free")
			f.FloatingNetworkID, f.FloatingIPAddress = "net-vlan", "10.0.1.200"
		}, want: []where{{"floatingip", "fip-free", "floating_network_id"}}, reason: "network net-vlan is not router:external"},
		{name: "floating IP address in no subnet of its network", edit: func(t *File) { floatingIP(t, "fip-free").FloatingIPAddress = "172.24.5.1" },
			want: []where{{"floatingip", "fip-free", "floating_ip_address"}}, reason: "172.24.5.1 is in no subnet of network net-flat"},
		{name: "floating IP address missing", edit: func(t *File) { floatingIP(t, "fip-free").FloatingIPAddress = "" },
			want: []where{{"floatingip", "fip-free", "floating_ip_address"}}, reason: "missing"},
		{name: "floating IP address not an address", edit: func(t *File) { floatingIP(t, "fip-free").FloatingIPAddress = "172.24.4.300" },
			want: []where{{"floatingip", "fip-free", "floating_ip_address"}}, reason: `"172.24.4.300" is not an IP address`},
		{name: "floating IP address IPv6", edit: func(t *File) { floatingIP(t, "fip-free").FloatingIPAddress = "2001:db8:1::99" },
			want: []where{{"floatingip", "fip-free", "floating_ip_address"}}, reason: "2001:db8:1::99 is not an IPv4 address (floating IPs are IPv4)"},
		{name: "two floating IPs share an address", edit: func(t *File) { floatingIP(t, "fip-free").FloatingIPAddress = "172.24.4.100" },
			want: []where{{"floatingip", "fip-free", "floating_ip_address"}}, reason: "172.24.4.100 is also the address of floating IP fip-vxlan"},
		{name: "floating IP with an unknown router", edit: func(t *File) { floatingIP(t, "fip-vxlan").RouterID = "router9" },
			want: []where{{"floatingip", "fip-vxlan", "router_id"}}, reason: "unknown router router9"},
		{name: "associated floating IP without router", edit: func(t *File) { floatingIP(t, "fip-vxlan").RouterID = "" },
			want: []where{{"floatingip", "fip-vxlan", "router_id"}}, reason: "missing"},
		{name: "floating IP's router without gateway", edit: func(t *File) { floatingIP(t, "fip-vxlan").RouterID = "router3" },
			want: []where{{"floatingip", "fip-vxlan", "router_id"}}, reason: "router router3 has no external gateway"},
		{name: "floating IP's router with its gateway on another network", edit: func(t *File) {
			t.Networks = append(t.Networks, Network{ID: "net-ext2", NetworkType: "flat", PhysicalNetwork: "extnet", RouterExternal: true})
			t.Subnets = append(t.Subnets, Subnet{ID: "sub-ext2", NetworkID: "net-ext2", CIDR: "198.51.100.0/24"})
			f := floatingIP(t, "fip-remote")
			f.FloatingNetworkID, f.FloatingIPAddress = "net-ext2", "198.51.100.7"
		}, want: []where{{"floatingip", "fip-remote", "router_id"}}, reason: "router router1 has its gateway on network net-flat, not net-ext2"},
		{name: "floating IP on an unknown port", edit: func(t *File) { floatingIP(t, "fip-vxlan").PortID = "vm-nope" },
			want: []where{{"floatingip", "fip-vxlan", "port_id"}}, reason: "unknown port vm-nope (in neither ports nor remote_ports)"},
		{name: "floating IP on a port bound to two other hosts", edit: func(t *File) { t.RemotePorts[3].ID = "vm-remote" },
			want: []where{{"floatingip", "fip-remote", "port_id"}}, reason: "port vm-remote is bound to more than one host (compute2, network1)"},
		{name: "floating IP fixed address not the port's", edit: func(t *File) { floatingIP(t, "fip-vxlan").FixedIPAddress = "10.1.1.99" },
			want: []where{{"floatingip", "fip-vxlan", "fixed_ip_address"}}, reason: "10.1.1.99 is not an address of port vm-vxlan (10.1.1.11)"},
		{name: "floating IP fixed address IPv6", edit: func(t *File) {
			f := floatingIP(t, "fip-vxlan")
			f.PortID, f.FixedIPAddress = "vm-vlan", "2001:db8:1::11"
		}, want: []where{{"floatingip", "fip-vxlan", "fixed_ip_address"}}, reason: "2001:db8:1::11 is not an IPv4 address (floating IPs are IPv4)"},
		{name: "floating IP fixed address missing on a port without IPv4", edit: func(t *File) {
			f := floatingIP(t, "fip-vxlan")
			f.PortID, f.FixedIPAddress = "vm-local", ""
		}, want: []where{{"floatingip", "fip-vxlan", "fixed_ip_address"}}, reason: "missing, and port vm-local has 0 IPv4 addresses (none)"},
		{name: "two floating IPs on one fixed address", edit: func(t *File) {
			f := floatingIP(t, "fip-free")
			f.RouterID, f.PortID = "router1", "vm-vxlan"
		}, want: []where{{"floatingip", "fip-free", "fixed_ip_address"}}, reason: "10.1.1.11 of port vm-vxlan already has floating IP fip-vxlan"},
		{name: "unassociated floating IP with a router", edit: func(t *File) { floatingIP(t, "fip-free").RouterID = "router1" },
			want: []where{{"floatingip", "fip-free", "router_id"}}, reason: "router1 is set on a floating IP without port_id"},
		{name: "unassociated floating IP with a fixed address", edit: func(t *File) { floatingIP(t, "fip-free").FixedIPAddress = "10.1.1.11" },
			want: []where{{"floatingip", "fip-free", "fixed_ip_address"}}, reason: "10.1.1.11 is set on a floating IP without port_id"},
		{name: "floating IP on a host without an fg- port", edit: func(t *File) { port(t, "fg-flat").DeviceOwner = northbound.OwnerCompute },
			want:   []where{{"floatingip", "fip-vxlan", "port_id"}},
			reason: "port vm-vxlan is on this host (compute1), which has no network:floatingip_agent_gateway (fg-) port on network net-flat"},
		{name: "floating IP of a centralized router needs no fg- port", edit: func(t *File) {
			port(t, "fg-flat").DeviceOwner = northbound.OwnerCompute
			router(t, "router1").Distributed = false
		}},
		{name: "floating IP on another host needs no fg- port here", edit: func(t *File) {
			port(t, "fg-flat").DeviceOwner = northbound.OwnerCompute
			floatingIP(t, "fip-vxlan").PortID = ""
			floatingIP(t, "fip-vxlan").RouterID = ""
			floatingIP(t, "fip-vxlan").FixedIPAddress = ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := Load(allKinds)
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(topo)
			cfg := config.DefaultConfig()
			if tt.ini != nil {
				tt.ini(cfg)
			}
			cfg.ApplyHost(topo.Snapshot().Host)
			valid, problems := topo.Validate(cfg.Env())
			var got []where
			for _, p := range problems {
				got = append(got, where{p.Kind, p.ID, p.Field})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("problems:\n%s\nwant %v", fmt.Sprint(problems), tt.want)
			}
			if len(problems) > 0 && problems[0].Reason != tt.reason {
				t.Errorf("reason = %q\nwant     %q", problems[0].Reason, tt.reason)
			}
			// Every object without a problem is kept.
			dropped := map[northbound.Kind]int{}
			seen := map[where]bool{}
			for _, w := range tt.want {
				if id := (where{kind: w.kind, id: w.id}); !seen[id] {
					seen[id] = true
					dropped[w.kind]++ // an object may have more than one problem
				}
			}
			in, out := fileCounts(topo), modelCounts(valid)
			for kind, n := range in {
				if out[kind] != n-dropped[kind] {
					t.Errorf("%s: %d valid of %d, want %d dropped", kind, out[kind], n, dropped[kind])
				}
			}
		})
	}
}

func TestProblemError(t *testing.T) {
	p := northbound.Problem{Kind: northbound.KindPort, ID: "c0000001-0000-4000-8000-000000000001", Field: "mac", Reason: `"fa:16:3e:zz:01:01" is not a MAC address`}
	if got, want := p.Error(), `port c0000001-0000-4000-8000-000000000001: field mac: "fa:16:3e:zz:01:01" is not a MAC address`; got != want {
		t.Errorf("Error() = %s, want %s", got, want)
	}
	p.Field = ""
	if got := p.Error(); !strings.HasPrefix(got, "port c0000001-0000-4000-8000-000000000001: \"fa") {
		t.Errorf("Error() without field = %s", got)
	}
}

// TestValidateNormalises checks the normal forms and filled-in defaults of the valid copy,
// and that the input is left alone.
func TestValidateNormalises(t *testing.T) {
	topo, err := Parse([]byte(`
host: {name: h1, tunnel_types: [vxlan], local_ip: 192.0.2.1}
other_hosts: [{name: h2, ip: 192.0.2.2, dvr_mac: FA-16-3F-00-00-02}]
networks: [{id: n1, network_type: vxlan, segmentation_id: 7}]
subnets: [{id: s1, network_id: n1, cidr: "2001:DB8::/64", gateway_ip: "2001:DB8::1"}]
ports: [{id: p1, network_id: n1, mac: FA:16:3E:00:00:01, fixed_ips: [{ip_address: "2001:db8:0::5"}]}]
remote_ports: [{host: h2, id: r1, network_id: n1, mac: fa:16:3e:00:00:02, device_owner: "network:router_interface_distributed", fixed_ips: [{subnet_id: s1, ip_address: "2001:db8::1"}]}]
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.ApplyHost(topo.Snapshot().Host)
	valid, problems := topo.Validate(cfg.Env())
	if len(problems) != 0 {
		t.Fatal(problems)
	}
	if h := valid.OtherHosts[0]; h.DVRMAC.String() != "fa:16:3f:00:00:02" || !reflect.DeepEqual(h.TunnelTypes, []northbound.NetworkType{"vxlan"}) {
		t.Errorf("other host = %+v", h)
	}
	if s := valid.Subnets[0]; s.CIDR.String() != "2001:db8::/64" || s.GatewayIP.String() != "2001:db8::1" || s.IPVersion != 6 || s.GatewayMAC.String() != "fa:16:3e:00:00:02" {
		t.Errorf("subnet = %+v", s)
	}
	if p := valid.Ports[0]; p.MAC.String() != "fa:16:3e:00:00:01" || p.FixedIPs[0] != (northbound.FixedIP{SubnetID: "s1", IP: netip.MustParseAddr("2001:db8::5")}) {
		t.Errorf("port = %+v", p)
	}
	if topo.Ports[0].MAC != "FA:16:3E:00:00:01" || topo.Ports[0].FixedIPs[0].SubnetID != "" || topo.Subnets[0].GatewayMAC != "" {
		t.Errorf("validation modified the file: %+v", topo.Ports[0])
	}
}
