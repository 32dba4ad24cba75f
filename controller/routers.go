package controller

import (
	"context"
	"net/netip"
	"slices"
	"sync"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
)

// RouterNamespaces is what the agent needs of the router-namespace plumbing
// ([namespace.Manager] in standalone mode): a separate applier, fed from the same model.
type RouterNamespaces interface {
	Apply(ctx context.Context, routers []namespace.Router, fip namespace.FIPState) error
	// Announce sends the gratuitous ARPs Apply left due, from the fg- devices wired
	// reports as carrying traffic.
	Announce(wired func(device string) bool) error
	// HeldFloatingIPs are the floating IPs the host routes now (FIPInput.Held).
	HeldFloatingIPs() ([]netip.Addr, error)
}

// EnableRouterNamespaces makes the agent create, update and remove the DVR router
// namespaces of the model on this host, as Neutron's L3 agent does on a DVR node: qrouter-
// with the SNAT redirect of routers with a gateway, on a dvr_snat node the snat-
// namespaces, and the fip- namespaces of the floating IPs of this host's ports, with their
// link-local pairs and rule priorities from alloc (opened once per agent on its
// state_path).
// Call it before Reconcile when [config.Config.RouterNamespacesManaged].
func (a *Agent) EnableRouterNamespaces(rn RouterNamespaces, alloc *namespace.FIPAllocators) {
	a.routers, a.fipAlloc = rn, alloc
}

// floatingIPs computes what this host must hold for its floating IPs, as the L3 agent of
// a DVR host does on every router update: the floating IPs of the model served here
// (FIPAllocationKeys), their allocations synced (a router or floating IP no longer served
// here releases its own), the floating IPs the host already routes (no gratuitous ARP for
// them), then DesiredFIP. Its problems are logged (each once) and listed with the model's.
func (a *Agent) floatingIPs(in namespace.Input) namespace.FIPState {
	fin := namespace.FIPInput{Host: a.cfg.Host, Routers: a.model.Routers, FloatingIPs: a.model.FloatingIPs,
		LocalPorts: in.LocalPorts, Subnets: in.Subnets, Networks: in.Networks}
	held, err := a.routers.HeldFloatingIPs()
	if err != nil {
		// Every floating IP is then announced again: harmless.
		a.log.Warn("floating IPs held by this host not read", zap.Error(err))
	}
	fin.Held = held
	if a.fipAlloc != nil {
		if err := a.fipAlloc.Allocate(&fin); err != nil {
			a.log.Error("floating IP allocations", zap.Error(err))
		}
	}
	st := namespace.DesiredFIP(fin)
	a.setFIPProblems(st.Problems)
	return st
}

// setFIPProblems keeps the floating IP problems of the last reconcile, logging the new
// ones.
func (a *Agent) setFIPProblems(ps []northbound.Problem) {
	for _, p := range ps {
		if !slices.Contains(a.fipProblems, p) {
			a.log.Error("floating IP not served here", zap.String("kind", string(p.Kind)), zap.String("id", p.ID),
				zap.String("field", p.Field), zap.String("reason", p.Reason))
		}
	}
	if !slices.Equal(a.fipProblems, ps) {
		a.fipProblems = ps
		a.joinProblems()
	}
}

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

// announceFloatingIPs has the router-namespace manager send the gratuitous ARPs of the
// floating IPs new on this host, from the fg- ports that carry traffic now: bound, on
// their network's VLAN (their flows are in: the reconcile synced them before the tags),
// and, when this reconcile tagged them, once ovs-vswitchd has applied the tag. A port the
// reconcile could not bind yet (no ofport) keeps its announcements for a later reconcile.
func (a *Agent) announceFloatingIPs(ctx context.Context, rep Report) {
	applied := sync.OnceValue(func() error { return a.WaitTagsApplied(ctx, rep) })
	wired := func(device string) bool {
		tag, ok := rep.Binding.Tags[device]
		if !ok || tag == state.DeadVLAN {
			return false
		}
		if slices.Contains(rep.Retagged, device) {
			if err := applied(); err != nil {
				a.log.Warn("port tags not applied by ovs-vswitchd: gratuitous ARPs wait", zap.Error(err))
				return false
			}
		}
		return true
	}
	if err := a.routers.Announce(wired); err != nil {
		a.log.Error("floating IP announcements", zap.Error(err))
	}
}
