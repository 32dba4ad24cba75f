package controller

import (
	"bytes"
	"cmp"
	"slices"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
)

// Observed is what OVSDB reports about this host's bridges: the facts the desired state
// is keyed on (ofports) and the tags that carry local VLAN allocations across restarts.
type Observed struct {
	// VIFs are the interfaces with an iface-id on the integration bridge.
	VIFs []ovsdb.VIF
	// PortTags maps an integration-bridge port name to its tag (absent: untagged).
	PortTags map[string]int
	// IntPorts and PhyPorts map a physnet to the ofports of its patch pair
	// (int-<bridge> on br-int, phy-<bridge> on the physical bridge); 0 or absent: unknown.
	IntPorts map[string]uint32
	PhyPorts map[string]uint32
	// PatchTun and PatchInt are the ofports of the br-int/br-tun patch pair; 0: unknown.
	PatchTun uint32
	PatchInt uint32
	// Ofports are the ofports of the agent's own ports (patch and tunnel ports), by name:
	// 0 when not assigned yet, -1 when ovs-vswitchd failed to add one.
	Ofports map[string]int
	// TunnelBridgePorts are the ports on the tunnel bridge (the agent's tunnel ports among
	// them); empty without tunnelling.
	TunnelBridgePorts []ovsdb.PortInfo
}

// Binding is the result of resolving the topology against OVSDB.
type Binding struct {
	Node *state.Node
	// Tags maps every VIF port on the integration bridge to the tag it must carry: the
	// local VLAN of its network, or the dead VLAN 4095 for admin-down ports and for VIFs
	// whose iface-id names no valid port of the topology.
	Tags map[string]int
	// Unbound are topology ports with no ready VIF on the integration bridge yet.
	Unbound []string
	// Unknown are VIFs whose iface-id is not a (valid) port of the topology.
	Unknown []ovsdb.VIF
	// Plugged are the iface-ids of every VIF on the integration bridge, with an ofport or
	// not yet (a northbound source learns from it which devices are plugged here).
	Plugged []string
}

// Bind resolves a validated model against what OVSDB reports and returns the node state
// that flow generation takes (without tunnel ports and FDB: see plan), allocating or
// recovering local VLANs in vlans and releasing those of networks that no longer have a
// port here. A network is provisioned on this host exactly while at least one of its ports
// is bound here, as in Neutron. With the firewall on, the node's ports are filtered by the
// model's valid security groups only (the agent also remembers previous versions of
// withheld ones, see groupHistory).
func Bind(cfg *config.Config, topo *northbound.Model, obs Observed, vlans *LocalVLANs) Binding {
	return bind(cfg, topo, nil, obs, vlans)
}

// bind is Bind with the security groups in force (nil: the model's valid ones).
func bind(cfg *config.Config, topo *northbound.Model, groups *groupsInForce, obs Observed, vlans *LocalVLANs) Binding {
	b := Binding{Node: &state.Node{Host: hostState(cfg, obs)}, Tags: make(map[string]int, len(obs.VIFs))}
	firewall := b.Node.Host.Firewall
	if firewall && groups == nil {
		groups = resolveGroups(topo, nil)
	}

	vifs := make(map[string]ovsdb.VIF, len(obs.VIFs))
	for _, v := range obs.VIFs {
		if v.Bridge == cfg.IntegrationBridge && v.IfaceID != "" {
			b.Plugged = append(b.Plugged, v.IfaceID)
		}
		if v.Bridge != cfg.IntegrationBridge || !v.Ready() {
			continue
		}
		// Two interfaces claiming one port: keep the first by name, as a stable choice.
		if old, dup := vifs[v.IfaceID]; !dup || v.Name < old.Name {
			vifs[v.IfaceID] = v
		}
	}
	networks := make(map[string]*northbound.Network, len(topo.Networks))
	for i := range topo.Networks {
		networks[topo.Networks[i].ID] = &topo.Networks[i]
	}

	// Bound ports, in topology order (the order Neutron allocates local VLANs in).
	type bound struct {
		port *northbound.Port
		vif  ovsdb.VIF
	}
	ports := make([]bound, 0, len(vifs))
	needed := make(map[string]bool, len(topo.Networks))
	known := make(map[string]bool, len(topo.Ports))
	for i := range topo.Ports {
		p := &topo.Ports[i]
		known[p.ID] = true
		v, ok := vifs[p.ID]
		if !ok {
			b.Unbound = append(b.Unbound, p.ID)
			continue
		}
		ports = append(ports, bound{p, v})
		if p.AdminStateUp {
			needed[p.NetworkID] = true
		}
	}
	for _, n := range vlans.Networks() {
		if !needed[n] {
			vlans.Release(n)
		}
	}
	for _, bp := range ports {
		if tag, ok := obs.PortTags[bp.vif.Name]; ok && needed[bp.port.NetworkID] {
			vlans.Recover(bp.port.NetworkID, uint16(tag))
		}
	}
	b.Node.Ports = make([]state.Port, 0, len(vifs))
	for _, bp := range ports {
		p := bp.port
		sp := portState(p, bp.vif)
		sp.FirewallBlocked = firewall && groups.blocked(p)
		if p.AdminStateUp {
			if vlan, err := vlans.Allocate(p.NetworkID); err == nil {
				b.Tags[bp.vif.Name] = int(vlan)
			} else {
				sp.Dead = true
			}
		} else {
			sp.Dead = true
		}
		if sp.Dead {
			b.Tags[bp.vif.Name] = state.DeadVLAN
		}
		b.Node.Ports = append(b.Node.Ports, sp)
	}
	for _, v := range vifs {
		if known[v.IfaceID] {
			continue
		}
		b.Unknown = append(b.Unknown, v)
		b.Tags[v.Name] = state.DeadVLAN
		b.Node.Ports = append(b.Node.Ports, state.Port{ID: v.IfaceID, Name: v.Name, MAC: v.HardwareAddr(), Dead: true, OFPort: uint32(v.Ofport)})
	}
	slices.SortFunc(b.Unknown, func(x, y ovsdb.VIF) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortFunc(b.Node.Ports, func(x, y state.Port) int { return cmp.Compare(x.OFPort, y.OFPort) })

	for _, id := range vlans.Networks() {
		n := networks[id]
		vlan, _ := vlans.Get(id)
		b.Node.Networks = append(b.Node.Networks, networkState(n, vlan))
	}
	slices.SortFunc(b.Node.Networks, func(x, y state.Network) int { return cmp.Compare(x.LocalVLAN, y.LocalVLAN) })

	for _, s := range topo.Subnets {
		if _, ok := vlans.Get(s.NetworkID); !ok {
			continue
		}
		b.Node.Subnets = append(b.Node.Subnets, s)
	}
	slices.SortFunc(b.Node.Subnets, func(x, y state.Subnet) int { return cmp.Compare(x.ID, y.ID) })

	if firewall {
		groups.fill(b.Node)
	}

	b.Node.RemoteHosts = slices.Clone(topo.OtherHosts)
	slices.SortFunc(b.Node.RemoteHosts, func(x, y state.RemoteHost) int { return cmp.Compare(x.Name, y.Name) })
	return b
}

// hostState is the host part of the node: effective settings and patch ofports.
func hostState(cfg *config.Config, obs Observed) state.Host {
	h := state.Host{
		Name:               cfg.Host,
		AgentMode:          cfg.AgentMode,
		IntegrationBridge:  cfg.IntegrationBridge,
		TunnelBridge:       cfg.TunnelBridge,
		TunnelTypes:        slices.Clone(cfg.TunnelTypes),
		LocalIP:            cfg.LocalIP,
		Distributed:        cfg.DistributedRoutingEnabled(),
		L2Population:       cfg.L2Population,
		ARPResponder:       cfg.ArpResponderEnabled(),
		DVRMAC:             bytes.Clone(cfg.DVRMAC),
		PreventARPSpoofing: cfg.ARPSpoofingProtection(),
		Firewall:           cfg.Firewall(),
	}
	if h.Firewall {
		h.PermittedEthertypes = slices.Clone(cfg.PermittedEthertypes)
	}
	if len(h.DVRMAC) == 0 {
		h.DVRMAC = nil
	}
	if h.Tunnelling() {
		h.PatchTun, h.PatchInt = obs.PatchTun, obs.PatchInt
	}
	for _, physnet := range cfg.Physnets() {
		h.Physical = append(h.Physical, state.PhysicalBridge{
			Physnet: physnet, Bridge: cfg.BridgeMappings[physnet],
			IntPort: obs.IntPorts[physnet], PhyPort: obs.PhyPorts[physnet],
		})
	}
	return h
}

// networkState is a provisioned network with its local VLAN.
func networkState(n *northbound.Network, vlan uint16) state.Network {
	return state.Network{ID: n.ID, Type: n.Type, Physnet: n.Physnet, SegmentationID: n.SegmentationID, LocalVLAN: vlan, MTU: n.MTU}
}

// portState is a model port bound to vif (the zero VIF for a port not bound yet).
func portState(p *northbound.Port, vif ovsdb.VIF) state.Port {
	return state.Port{
		ID: p.ID, Name: vif.Name, NetworkID: p.NetworkID, MAC: p.MAC,
		DeviceOwner: p.DeviceOwner, DeviceID: p.DeviceID,
		FixedIPs: p.FixedIPs, AllowedAddressPairs: p.AllowedAddressPairs,
		PortSecurity: p.PortSecurity, SecurityGroups: p.SecurityGroups, OFPort: uint32(vif.Ofport),
	}
}
