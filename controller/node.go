package controller

import (
	"cmp"
	"net"
	"net/netip"
	"slices"

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
	// TunnelPorts are br-tun's tunnel ports with known ofports.
	TunnelPorts []state.TunnelPort
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
}

// Bind resolves a validated topology against what OVSDB reports and returns the node
// state that flow generation takes, allocating or recovering local VLANs in vlans and
// releasing those of networks that no longer have a port here. A network is provisioned
// on this host exactly while at least one of its ports is bound here, as in Neutron.
func Bind(cfg *Config, topo *Topology, obs Observed, vlans *LocalVLANs) Binding {
	b := Binding{Node: &state.Node{Host: hostState(cfg, obs)}, Tags: make(map[string]int, len(obs.VIFs))}

	vifs := make(map[string]ovsdb.VIF, len(obs.VIFs))
	for _, v := range obs.VIFs {
		if v.Bridge != cfg.IntegrationBridge || !v.Ready() {
			continue
		}
		// Two interfaces claiming one port: keep the first by name, as a stable choice.
		if old, dup := vifs[v.IfaceID]; !dup || v.Name < old.Name {
			vifs[v.IfaceID] = v
		}
	}
	networks := make(map[string]*Network, len(topo.Networks))
	for i := range topo.Networks {
		networks[topo.Networks[i].ID] = &topo.Networks[i]
	}

	// Bound ports, in topology order (the order Neutron allocates local VLANs in).
	type bound struct {
		port *Port
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
		b.Node.Ports = append(b.Node.Ports, state.Port{ID: v.IfaceID, Name: v.Name, MAC: mac(v.MAC), Dead: true, OFPort: uint32(v.Ofport)})
	}
	slices.SortFunc(b.Unknown, func(x, y ovsdb.VIF) int { return cmp.Compare(x.Name, y.Name) })
	slices.SortFunc(b.Node.Ports, func(x, y state.Port) int { return cmp.Compare(x.OFPort, y.OFPort) })

	for _, id := range vlans.Networks() {
		n := networks[id]
		vlan, _ := vlans.Get(id)
		b.Node.Networks = append(b.Node.Networks, state.Network{
			ID: n.ID, Type: n.NetworkType, Physnet: n.PhysicalNetwork,
			SegmentationID: n.SegmentationID, LocalVLAN: vlan, MTU: n.MTU,
		})
	}
	slices.SortFunc(b.Node.Networks, func(x, y state.Network) int { return cmp.Compare(x.LocalVLAN, y.LocalVLAN) })

	for _, s := range topo.Subnets {
		if _, ok := vlans.Get(s.NetworkID); !ok {
			continue
		}
		b.Node.Subnets = append(b.Node.Subnets, subnetState(s))
	}
	slices.SortFunc(b.Node.Subnets, func(x, y state.Subnet) int { return cmp.Compare(x.ID, y.ID) })

	for _, h := range topo.OtherHosts {
		rh := state.RemoteHost{Name: h.Name, DVRMAC: mac(h.DVRMAC), TunnelTypes: slices.Clone(h.TunnelTypes)}
		if ip, err := netip.ParseAddr(h.IP); err == nil {
			rh.IP = ip
		}
		b.Node.RemoteHosts = append(b.Node.RemoteHosts, rh)
	}
	slices.SortFunc(b.Node.RemoteHosts, func(x, y state.RemoteHost) int { return cmp.Compare(x.Name, y.Name) })

	b.Node.TunnelPorts = slices.Clone(obs.TunnelPorts)
	slices.SortFunc(b.Node.TunnelPorts, func(x, y state.TunnelPort) int { return cmp.Compare(x.OFPort, y.OFPort) })
	return b
}

// hostState is the host part of the node: effective settings and patch ofports.
func hostState(cfg *Config, obs Observed) state.Host {
	h := state.Host{
		Name:               cfg.Host,
		AgentMode:          cfg.AgentMode,
		IntegrationBridge:  cfg.IntegrationBridge,
		TunnelBridge:       cfg.TunnelBridge,
		TunnelTypes:        slices.Clone(cfg.TunnelTypes),
		Distributed:        cfg.DistributedRoutingEnabled(),
		L2Population:       cfg.L2Population,
		ARPResponder:       cfg.ArpResponderEnabled(),
		DVRMAC:             mac(cfg.DVRMAC),
		PreventARPSpoofing: cfg.PreventARPSpoofing,
	}
	if ip, err := netip.ParseAddr(cfg.LocalIP); err == nil {
		h.LocalIP = ip
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

// portState converts a validated topology port bound to vif.
func portState(p *Port, vif ovsdb.VIF) state.Port {
	sp := state.Port{
		ID: p.ID, Name: vif.Name, NetworkID: p.NetworkID, MAC: mac(p.MAC),
		DeviceOwner: p.DeviceOwner, DeviceID: p.DeviceID,
		PortSecurity: p.PortSecurityEnabled, OFPort: uint32(vif.Ofport),
	}
	for _, ip := range p.FixedIPs {
		if a, err := netip.ParseAddr(ip.IPAddress); err == nil {
			sp.FixedIPs = append(sp.FixedIPs, state.FixedIP{SubnetID: ip.SubnetID, IP: a})
		}
	}
	for _, ap := range p.AllowedAddressPairs {
		pfx, err := netip.ParsePrefix(ap.IPAddress)
		if err != nil {
			a, err := netip.ParseAddr(ap.IPAddress)
			if err != nil {
				continue
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		sp.AllowedAddressPairs = append(sp.AllowedAddressPairs, state.AddressPair{Prefix: pfx, MAC: mac(ap.MACAddress)})
	}
	return sp
}

// subnetState converts a validated topology subnet.
func subnetState(s Subnet) state.Subnet {
	ss := state.Subnet{ID: s.ID, NetworkID: s.NetworkID, GatewayMAC: mac(s.GatewayMAC), IPVersion: s.IPVersion}
	if p, err := netip.ParsePrefix(s.CIDR); err == nil {
		ss.CIDR = p
	}
	if a, err := netip.ParseAddr(s.GatewayIP); err == nil {
		ss.GatewayIP = a
	}
	return ss
}

// mac parses a validated MAC; nil when empty or malformed.
func mac(s string) net.HardwareAddr {
	if s == "" {
		return nil
	}
	hw, err := net.ParseMAC(s)
	if err != nil {
		return nil
	}
	return hw
}
