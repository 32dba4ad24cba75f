package controller

import (
	"context"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
)

// RouterNamespaces is what the agent needs of the router-namespace plumbing
// ([namespace.Manager] in standalone mode): a separate applier, fed from the same model.
type RouterNamespaces interface {
	Apply(ctx context.Context, routers []namespace.Router) error
}

// EnableRouterNamespaces makes the agent create, update and remove the DVR router
// namespaces of the model on this host, as Neutron's L3 agent does on a DVR node: qrouter-
// with the SNAT redirect of routers with a gateway, and on a dvr_snat node the snat-
// namespaces.
// Call it before Reconcile when [config.Config.RouterNamespacesManaged].
func (a *Agent) EnableRouterNamespaces(rn RouterNamespaces) { a.routers = rn }

// routerInput is the router-namespace input of a validated model: every port of this host
// (bound or not: a router port only gets its ofport once it is plugged), every remote port
// (for the neighbour entries, and the centralized SNAT ports the SNAT redirect points at),
// the routers with their gateways, and this host's agent_mode (a dvr_snat host holds the
// snat namespaces of the routers whose gateway port it has).
func routerInput(m *northbound.Model, mode northbound.AgentMode) namespace.Input {
	in := namespace.Input{Subnets: m.Subnets, Routers: m.Routers, AgentMode: mode}
	for i := range m.Networks {
		in.Networks = append(in.Networks, networkState(&m.Networks[i], 0))
	}
	for i := range m.Ports {
		in.LocalPorts = append(in.LocalPorts, portState(&m.Ports[i], ovsdb.VIF{}))
	}
	for _, rp := range m.RemotePorts {
		in.RemotePorts = append(in.RemotePorts, state.Port{
			ID: rp.ID, NetworkID: rp.NetworkID, MAC: rp.MAC, DeviceOwner: rp.DeviceOwner, DeviceID: rp.DeviceID,
			FixedIPs: rp.FixedIPs, PortSecurity: true,
		})
	}
	return in
}
