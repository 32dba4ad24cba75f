package controller

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

// tunnelPort is one desired tunnel port on br-tun.
type tunnelPort struct {
	name, tunnelType string
	remote           netip.Addr
}

// desiredTunnelPorts returns the tunnel ports this host needs, as Neutron's agent creates
// them: without l2population one per other host and tunnel type both support (tunnel_sync's
// full mesh); with l2population one per VTEP that an FDB entry of a network provisioned
// here points at (ports are created when FDB entries arrive and cleaned up with the last
// network that uses them).
func desiredTunnelPorts(cfg *Config, node *state.Node, fdb []state.FDB, topo *Topology) []tunnelPort {
	local, _ := netip.ParseAddr(cfg.LocalIP)
	seen := map[string]tunnelPort{}
	add := func(tunnelType string, remote netip.Addr) {
		if !remote.IsValid() || remote == local || !cfg.HasTunnelType(tunnelType) {
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
		for _, h := range topo.OtherHosts {
			ip, err := netip.ParseAddr(h.IP)
			if err != nil {
				continue
			}
			for _, t := range h.TunnelTypes {
				add(t, ip)
			}
		}
	}
	out := make([]tunnelPort, 0, len(seen))
	for _, name := range slices.Sorted(maps.Keys(seen)) {
		out = append(out, seen[name])
	}
	return out
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

// syncTunnelPorts creates the wanted tunnel ports on br-tun (or updates their options) and
// returns those with a known ofport, and the agent's tunnel ports that are no longer wanted:
// the caller removes those after the flows that point at them are gone. A new port's
// ofport is waited for briefly; no flow points at a port before it has one.
func (a *Agent) syncTunnelPorts(ctx context.Context, want []tunnelPort) (ready []state.TunnelPort, stale []string, err error) {
	c := a.cfg
	local, _ := netip.ParseAddr(c.LocalIP)
	settings := tunnels.PortSettings{
		LocalIP: local, VXLANUDPPort: c.VXLANUDPPort, DontFragment: c.DontFragment,
		TunnelCsum: c.TunnelCsum, DSCP: c.DSCP, DSCPInherit: c.DSCPInherit,
	}
	existing := map[string]ovsdb.PortInfo{}
	for _, p := range a.db.BridgePorts(c.TunnelBridge) {
		existing[p.Name] = p
	}
	wanted := map[string]bool{}
	for _, tp := range want {
		wanted[tp.name] = true
		ifaceType, opts, err := tunnels.PortOptions(tp.tunnelType, tp.remote, settings)
		if err != nil {
			a.log.Error("tunnel port not created", zap.String("port", tp.name), zap.String("remote_ip", tp.remote.String()), zap.Error(err))
			continue
		}
		cur, ok := existing[tp.name]
		if !ok || cur.Type != ifaceType || !maps.Equal(cur.Options, opts) {
			if err := a.db.EnsurePort(ctx, ovsdb.PortSpec{Bridge: c.TunnelBridge, Name: tp.name, Type: ifaceType, Options: opts}); err != nil {
				return nil, nil, fmt.Errorf("tunnel port %s to %s: %w", tp.name, tp.remote, err)
			}
			a.log.Info("tunnel port set up", zap.String("port", tp.name), zap.String("type", tp.tunnelType), zap.String("remote_ip", tp.remote.String()))
		}
		ofport := cur.Ofport
		if ofport <= 0 {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, err := a.db.Ofport(wctx, tp.name)
			cancel()
			if err != nil {
				a.log.Warn("tunnel port has no ofport yet, no flows point at it", zap.String("port", tp.name), zap.Error(err))
				continue
			}
			ofport = n
		}
		ready = append(ready, state.TunnelPort{Name: tp.name, Type: tp.tunnelType, RemoteIP: tp.remote, OFPort: uint32(ofport)})
	}
	for _, name := range slices.Sorted(maps.Keys(existing)) {
		if !wanted[name] && isTunnelInterface(existing[name].Type) {
			stale = append(stale, name)
		}
	}
	return ready, stale, nil
}

// removeTunnelPorts deletes tunnel ports from br-tun.
func (a *Agent) removeTunnelPorts(ctx context.Context, names []string) error {
	for _, name := range names {
		if err := a.db.DeletePort(ctx, a.cfg.TunnelBridge, name); err != nil {
			return fmt.Errorf("remove tunnel port %s: %w", name, err)
		}
		a.log.Info("tunnel port removed", zap.String("port", name))
	}
	return nil
}
