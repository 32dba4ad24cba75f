package controller

import (
	"context"
	"net/netip"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
)

// RouterNamespaces is what the agent needs of the router-namespace plumbing
// ([namespace.Manager] in standalone mode).
type RouterNamespaces interface {
	Apply(ctx context.Context, routers []namespace.Router) error
}

// EnableRouterNamespaces makes the agent create, update and remove the DVR router
// namespaces of the topology on this host, as Neutron's L3 agent does on a DVR compute node.
// Call it before Reconcile when [Config.RouterNamespacesManaged].
func (a *Agent) EnableRouterNamespaces(rn RouterNamespaces) { a.routers = rn }

// routerInput converts the validated topology into the router-namespace input: every
// port of this host (bound or not: a router port only gets its ofport once it is plugged)
// and every remote port, for the neighbour entries.
func routerInput(t *Topology) namespace.Input {
	var in namespace.Input
	for _, s := range t.Subnets {
		in.Subnets = append(in.Subnets, subnetState(s))
	}
	for _, n := range t.Networks {
		in.Networks = append(in.Networks, state.Network{ID: n.ID, Type: n.NetworkType, Physnet: n.PhysicalNetwork, SegmentationID: n.SegmentationID, MTU: n.MTU})
	}
	for i := range t.Ports {
		in.LocalPorts = append(in.LocalPorts, portState(&t.Ports[i], ovsdb.VIF{}))
	}
	for _, rp := range t.RemotePorts {
		p := state.Port{ID: rp.ID, NetworkID: rp.NetworkID, MAC: mac(rp.MAC), DeviceOwner: rp.DeviceOwner, PortSecurity: true}
		for _, ip := range rp.FixedIPs {
			if a, err := netip.ParseAddr(ip.IPAddress); err == nil {
				p.FixedIPs = append(p.FixedIPs, state.FixedIP{SubnetID: ip.SubnetID, IP: a})
			}
		}
		in.RemotePorts = append(in.RemotePorts, p)
	}
	return in
}
