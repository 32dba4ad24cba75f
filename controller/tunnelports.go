package controller

import (
	"maps"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

// tunnelPort is one desired tunnel port on br-tun.
type tunnelPort struct {
	name       string
	tunnelType northbound.NetworkType
	remote     netip.Addr
}

// desiredTunnelPorts returns the tunnel ports this host needs, as Neutron's agent creates
// them: without l2population one per other host and tunnel type both support (tunnel_sync's
// full mesh); with l2population one per VTEP that an FDB entry of a network provisioned
// here points at (ports are created when FDB entries arrive and cleaned up with the last
// network that uses them). Sorted by name.
func desiredTunnelPorts(cfg *config.Config, node *state.Node, fdb []northbound.FDB, hosts []northbound.RemoteHost) []tunnelPort {
	seen := map[string]tunnelPort{}
	add := func(tunnelType northbound.NetworkType, remote netip.Addr) {
		if !remote.IsValid() || remote == cfg.LocalIP || !cfg.HasTunnelType(tunnelType) {
			return
		}
		name := tunnels.PortName(tunnelType, remote)
		seen[name] = tunnelPort{name: name, tunnelType: tunnelType, remote: remote}
	}
	if cfg.L2Population {
		for _, e := range fdb {
			if n, ok := node.Network(e.NetworkID); ok && n.Tunnelled() {
				add(n.Type, e.RemoteIP)
			}
		}
	} else {
		for _, h := range hosts {
			for _, t := range h.TunnelTypes {
				add(t, h.IP)
			}
		}
	}
	out := make([]tunnelPort, 0, len(seen))
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		out = append(out, seen[name])
	}
	return out
}

// tunnelSettings are the options every tunnel port gets from the agent config.
func tunnelSettings(cfg *config.Config) tunnels.PortSettings {
	return tunnels.PortSettings{
		LocalIP: cfg.LocalIP, VXLANUDPPort: cfg.VXLANUDPPort, DontFragment: cfg.DontFragment,
		TunnelCsum: cfg.TunnelCsum, DSCP: cfg.DSCP, DSCPInherit: cfg.DSCPInherit,
	}
}

// isTunnelInterface reports whether an Interface type is one of the tunnel types the
// agent creates (so a port of that type on br-tun is the agent's to remove).
func isTunnelInterface(t string) bool {
	switch t {
	case "vxlan", "gre", "ip6gre", "geneve":
		return true
	}
	return false
}

// staleTunnelPorts returns the agent's tunnel ports on br-tun that are not wanted, sorted.
func staleTunnelPorts(existing []ovsdb.PortInfo, wanted []ovsdb.PortSpec) []string {
	want := map[string]bool{}
	for _, p := range wanted {
		want[p.Name] = true
	}
	var stale []string
	for _, p := range existing {
		if !want[p.Name] && isTunnelInterface(p.Type) {
			stale = append(stale, p.Name)
		}
	}
	slices.Sort(stale)
	return stale
}
