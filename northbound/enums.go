package northbound

import (
	"errors"
	"fmt"
	"strings"
)

// NetworkType is a network's provider:network_type.
type NetworkType string

// Network types. The last three are also tunnel types ([agent] tunnel_types).
const (
	Local  NetworkType = "local"
	Flat   NetworkType = "flat"
	VLAN   NetworkType = "vlan"
	VXLAN  NetworkType = "vxlan"
	GRE    NetworkType = "gre"
	Geneve NetworkType = "geneve"
)

// NetworkTypes returns every network type, in Neutron's documentation order.
func NetworkTypes() []NetworkType { return []NetworkType{Local, Flat, VLAN, VXLAN, GRE, Geneve} }

// TunnelTypes returns the tunnel types in Neutron's order (gre, vxlan, geneve: the order of
// its tunnel_types choices and of br-tun's flooding flows).
func TunnelTypes() []NetworkType { return []NetworkType{GRE, VXLAN, Geneve} }

// ParseNetworkType returns the network type named s.
func ParseNetworkType(s string) (NetworkType, error) {
	for _, t := range NetworkTypes() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("is not one of %s", joinTypes(NetworkTypes()))
}

// ParseTunnelType returns the tunnel type named s.
func ParseTunnelType(s string) (NetworkType, error) {
	for _, t := range TunnelTypes() {
		if string(t) == s {
			return t, nil
		}
	}
	return "", fmt.Errorf("is not one of %s", joinTypes(TunnelTypes()))
}

// Tunnelled reports whether networks of this type are carried over br-tun.
func (t NetworkType) Tunnelled() bool { return t == VXLAN || t == GRE || t == Geneve }

// Physical reports whether networks of this type are carried on a physical bridge (and
// need a physical_network).
func (t NetworkType) Physical() bool { return t == VLAN || t == Flat }

// SegmentRange returns the valid segmentation ids of the type; ok is false for types
// without one (flat, local).
func (t NetworkType) SegmentRange() (lo, hi int64, ok bool) {
	switch t {
	case VLAN:
		return 1, 4094, true
	case VXLAN, Geneve:
		return 1, 1<<24 - 1, true
	case GRE:
		return 1, 1<<32 - 1, true
	}
	return 0, 0, false
}

func joinTypes(types []NetworkType) string {
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

// DeviceOwner is a port's device_owner. Any string is a valid owner (Neutron does not
// restrict it); the constants are those the pipeline treats specially.
type DeviceOwner string

// Device owners that matter to the pipeline.
const (
	OwnerCompute                    DeviceOwner = "compute:nova"
	OwnerRouterInterfaceDistributed DeviceOwner = "network:router_interface_distributed"
	OwnerRouterCentralizedSNAT      DeviceOwner = "network:router_centralized_snat"
	OwnerDHCP                       DeviceOwner = "network:dhcp"
	OwnerRouterGateway              DeviceOwner = "network:router_gateway"
	OwnerRouterInterface            DeviceOwner = "network:router_interface"
	OwnerRouterHAInterface          DeviceOwner = "network:router_ha_interface"
	OwnerHARouterReplicatedIface    DeviceOwner = "network:ha_router_replicated_interface"
	OwnerFloatingIPAgentGateway     DeviceOwner = "network:floatingip_agent_gateway"
	OwnerLoadBalancer               DeviceOwner = "neutron:LOADBALANCER"
	OwnerLoadBalancerV2             DeviceOwner = "neutron:LOADBALANCERV2"
	OwnerTrunkSubport               DeviceOwner = "trunk:subport"
)

// IsCompute reports whether the owner is a VM (compute:*).
func (o DeviceOwner) IsCompute() bool { return strings.HasPrefix(string(o), "compute:") }

// IsNetworkOwned reports whether a network:* service owns the port (Neutron applies no
// spoofing protection to those).
func (o DeviceOwner) IsNetworkOwned() bool { return strings.HasPrefix(string(o), "network:") }

// IsDVRServiced reports whether DVR delivers routed traffic straight to a port of this
// owner (Neutron's is_dvr_serviced: compute:*, DHCP, load balancers, trunk subports).
func (o DeviceOwner) IsDVRServiced() bool {
	switch {
	case o.IsCompute(), o == OwnerDHCP, o == OwnerLoadBalancer, o == OwnerLoadBalancerV2, o == OwnerTrunkSubport:
		return true
	}
	return false
}

// AgentMode is the node's role, as Neutron's L3 agent names it ([DEFAULT] agent_mode of
// l3_agent.ini; dvrflow's [dvrflow] agent_mode).
type AgentMode string

// Agent modes.
const (
	ModeLegacy        AgentMode = "legacy"
	ModeDVR           AgentMode = "dvr"
	ModeDVRSNAT       AgentMode = "dvr_snat"
	ModeDVRNoExternal AgentMode = "dvr_no_external"
)

// AgentModes returns every agent mode.
func AgentModes() []AgentMode {
	return []AgentMode{ModeLegacy, ModeDVR, ModeDVRSNAT, ModeDVRNoExternal}
}

// ParseAgentMode returns the agent mode named s.
func ParseAgentMode(s string) (AgentMode, error) {
	for _, m := range AgentModes() {
		if string(m) == s {
			return m, nil
		}
	}
	return "", fmt.Errorf("is not one of legacy, dvr, dvr_snat, dvr_no_external")
}

// CheckSupported returns an error, completing "agent_mode <mode>: ...", for a mode
// dvrflow does not implement yet: dvr_no_external (a compute node whose floating IPs are
// served centrally) is refused rather than run without the north-south path it asks for.
func (m AgentMode) CheckSupported() error {
	if m == ModeDVRNoExternal {
		return errors.New("is not supported yet (use dvr or dvr_snat)")
	}
	return nil
}

// Distributed reports whether the mode is a DVR mode (the default of
// enable_distributed_routing follows it).
func (m AgentMode) Distributed() bool {
	return m == ModeDVR || m == ModeDVRSNAT || m == ModeDVRNoExternal
}
