package agentapi

import (
	"maps"
	"net"
	"slices"
	"sync/atomic"
	"time"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
)

// Source is what the API reads of the agent, on the agent's event loop only
// (*controller.Agent is one). What Config, Binding, Model, DesiredFlows and ProblemList
// return must never change once handed out (the agent replaces them instead): the
// snapshot keeps them by reference and reads them on other goroutines.
type Source interface {
	// Config is the effective config in force.
	Config() *config.Config
	// Bridges are the managed bridges in setup order.
	Bridges() []string
	// Pipeline is a managed bridge's table catalogue.
	Pipeline(bridge string) flows.Pipeline
	// Binding is the resolved state of the last reconcile.
	Binding() controller.Binding
	// Model is the validated northbound model in force.
	Model() *northbound.Model
	// DesiredFlows are the last reconcile's flows by bridge (the map is copied, the
	// slices kept).
	DesiredFlows() map[string][]flows.Flow
	// ProblemList are the refused northbound objects.
	ProblemList() []northbound.Problem
	// Repairs counts the flow-mods that undid other clients' changes.
	Repairs() int
}

// Connections are the live connection states, read when a document is served: they must
// be safe to call on any goroutine.
type Connections interface {
	BridgeConnected(bridge string) bool
	OVSDBConnected() bool
}

// Publisher turns the agent's state into the API's documents: Publish and Reconciled run
// on the agent's event loop and publish a snapshot; the Handler serves the latest one.
type Publisher struct {
	source  Source
	started time.Time
	// current is the latest snapshot; nil before the first Publish.
	current atomic.Pointer[snapshot]

	// Owned by the event loop.
	reconciles int
	lastChange *Reconcile
}

// snapshot is one published state. Nothing in it is modified once it is published: the
// agent replaces its binding, model, problems and flows at every reconcile or snapshot and
// never modifies those it handed out, so the snapshot keeps them by reference and the
// documents are rendered from them on the request's goroutine.
type snapshot struct {
	// status holds the small parts, computed when published; Ports, LocalVLANs and
	// Problems are rendered from binding, model and problems when served.
	status   Status
	binding  controller.Binding
	model    *northbound.Model
	problems []northbound.Problem
	// desired are the flows by bridge, tableNames each bridge's table names.
	desired      map[string][]flows.Flow
	tableNames   map[string]map[uint8]string
	reconciledAt time.Time
}

// NewPublisher returns a publisher over the agent src, which started at started.
func NewPublisher(src Source, started time.Time) *Publisher {
	return &Publisher{source: src, started: started}
}

// Reconciled publishes the state after a successful reconcile; call it on the agent's
// event loop (the agent's OnConverged).
func (p *Publisher) Reconciled(rep controller.Report) { p.Publish(&rep) }

// Publish publishes the agent's state with the report of the reconcile that made it; rep
// is nil before the first reconcile. Call it on the agent's event loop. It costs the loop
// time in proportion to the bridges only: ports, problems and flows are kept by reference
// and rendered when asked for.
func (p *Publisher) Publish(rep *controller.Report) {
	now := time.Now()
	cfg := p.source.Config()
	s := &snapshot{
		problems:   p.source.ProblemList(),
		model:      p.source.Model(),
		desired:    maps.Clone(p.source.DesiredFlows()),
		tableNames: map[string]map[uint8]string{},
		status: Status{
			Host:             cfg.Host,
			AgentMode:        string(cfg.AgentMode),
			Northbound:       northboundKind(cfg),
			StartedAt:        p.started,
			Repairs:          p.source.Repairs(),
			Config:           configSummary(cfg),
			WaitingForOfport: []string{},
		},
	}
	for _, br := range p.source.Bridges() {
		s.tableNames[br] = p.source.Pipeline(br).Names()
		s.status.Bridges = append(s.status.Bridges, bridgeOf(cfg, br, len(s.desired[br])))
	}
	if rep != nil {
		p.reconciles++
		r := reconcileOf(*rep, now)
		if r.FlowMods > 0 || len(r.PortsTagged) > 0 || p.lastChange == nil {
			p.lastChange = r
		}
		s.binding, s.reconciledAt = p.source.Binding(), now
		s.status.Synced = true
		s.status.LastReconcile, s.status.LastChange = r, p.lastChange
		s.status.WaitingForOfport = nonNil(slices.Clone(rep.Waiting))
	}
	s.status.Reconciles = p.reconciles
	p.current.Store(s)
}

// statusDocument renders the snapshot's status (without the live connection states).
func (s *snapshot) statusDocument() Status {
	status := s.status
	status.Bridges = slices.Clone(status.Bridges)
	status.Ports, status.LocalVLANs = portsOf(s.binding, s.model)
	status.Ports, status.LocalVLANs = nonNil(status.Ports), nonNil(status.LocalVLANs)
	status.Problems = problems(s.problems)
	return status
}

// northboundKind says where the agent's state comes from.
func northboundKind(cfg *config.Config) string {
	if cfg.Standalone() {
		return "topology"
	}
	return "neutron"
}

// bridgeOf describes a managed bridge (without its live connection state).
func bridgeOf(cfg *config.Config, name string, desired int) Bridge {
	b := Bridge{Name: name, Role: RolePhysical, DesiredFlows: desired}
	switch {
	case name == cfg.IntegrationBridge:
		b.Role = RoleIntegration
	case name == cfg.TunnelBridge && cfg.TunnelingEnabled():
		b.Role = RoleTunnel
	default:
		for physnet, br := range cfg.BridgeMappings {
			if br == name {
				b.PhysicalNetwork = physnet
			}
		}
	}
	return b
}

// reconcileOf summarises a reconcile's report.
func reconcileOf(rep controller.Report, finished time.Time) *Reconcile {
	r := &Reconcile{
		FinishedAt:      finished,
		DurationSeconds: rep.Took.Seconds(),
		PhasesSeconds: Phases{Observe: rep.Phases.Observe.Seconds(), Build: rep.Phases.Build.Seconds(),
			Layout: rep.Phases.Layout.Seconds(), Sync: rep.Phases.Sync.Seconds(), Tags: rep.Phases.Tags.Seconds()},
		FlowMods:    rep.FlowMods(),
		Bridges:     []BridgeSync{},
		PortsTagged: nonNil(slices.Clone(rep.Retagged)),
	}
	for _, res := range rep.Results {
		r.Bridges = append(r.Bridges, BridgeSync{Bridge: res.Bridge, Added: len(res.Added), Modified: len(res.Modified),
			Deleted: len(res.Deleted), Unchanged: res.Unchanged, ForeignChanges: res.Foreign})
	}
	if rep.RouterErr != nil {
		r.RouterError = rep.RouterErr.Error()
	}
	return r
}

// portsOf lists the host's ports and local VLANs from a binding: bound and dead ports by
// ofport, then the model's ports still waiting for their VIF.
func portsOf(b controller.Binding, model *northbound.Model) ([]Port, []LocalVLAN) {
	if b.Node == nil {
		return nil, nil
	}
	modelPorts := map[string]*northbound.Port{}
	if model != nil {
		for i := range model.Ports {
			modelPorts[model.Ports[i].ID] = &model.Ports[i]
		}
	}
	unknown := map[string]bool{}
	for _, v := range b.Unknown {
		unknown[v.Name] = true
	}
	bound := map[string]int{}
	ports := make([]Port, 0, len(b.Node.Ports)+len(b.Unbound))
	for _, sp := range b.Node.Ports {
		p := Port{ID: sp.ID, Device: sp.Name, NetworkID: sp.NetworkID, DeviceOwner: string(sp.DeviceOwner),
			MAC: macText(sp.MAC), FixedIPs: fixedIPs(sp.FixedIPs), LocalVLAN: b.Tags[sp.Name], OFPort: int(sp.OFPort),
			Status: PortBound}
		switch mp := modelPorts[sp.ID]; {
		case unknown[sp.Name]:
			p.Status, p.Reason = PortDead, "its iface-id names no valid port of the northbound state"
		case !sp.Dead:
			bound[sp.NetworkID]++
		case mp != nil && !mp.AdminStateUp:
			p.Status, p.Reason = PortDead, "admin_state_up is false"
		default:
			p.Status, p.Reason = PortDead, "no local VLAN left for its network"
		}
		ports = append(ports, p)
	}
	for _, id := range b.Unbound {
		p := Port{ID: id, Status: PortWaiting, Reason: "no VIF with an ofport on the integration bridge yet"}
		if mp := modelPorts[id]; mp != nil {
			p.NetworkID, p.DeviceOwner, p.MAC, p.FixedIPs = mp.NetworkID, string(mp.DeviceOwner), macText(mp.MAC), fixedIPs(mp.FixedIPs)
		}
		ports = append(ports, p)
	}
	vlans := make([]LocalVLAN, 0, len(b.Node.Networks))
	for _, n := range b.Node.Networks {
		vlans = append(vlans, LocalVLAN{NetworkID: n.ID, NetworkType: string(n.Type), PhysicalNetwork: n.Physnet,
			SegmentationID: n.SegmentationID, LocalVLAN: int(n.LocalVLAN), Ports: bound[n.ID]})
	}
	return ports, vlans
}

// problems converts the refused objects.
func problems(ps []northbound.Problem) []Problem {
	out := make([]Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, Problem{Kind: string(p.Kind), Object: p.ID, Field: p.Field, Message: p.Reason})
	}
	return out
}

// configSummary is the part of the config a status shows.
func configSummary(c *config.Config) ConfigSummary {
	s := ConfigSummary{
		TopologyFile: c.TopologyFile, IntegrationBridge: c.IntegrationBridge,
		BridgeMappings: maps.Clone(c.BridgeMappings), TunnelTypes: []string{},
		DatapathType: c.DatapathType, OVSDBConnection: c.OVSDBConnection, OVSRundir: c.SocketDir(),
		DistributedRouting: c.DistributedRoutingEnabled(), DVRMAC: macText(c.DVRMAC),
		L2Population: c.L2Population, ARPResponder: c.ArpResponderEnabled(), PreventARPSpoofing: c.ARPSpoofingProtection(),
		ManageRouterNamespaces: c.RouterNamespacesManaged(), VerifyIntervalSeconds: c.VerifyInterval,
		MetricsAddress: c.MetricsAddress, APISocket: c.APISocketPath(),
	}
	if s.BridgeMappings == nil {
		s.BridgeMappings = map[string]string{}
	}
	if c.TunnelingEnabled() {
		s.TunnelBridge = c.TunnelBridge
	}
	for _, t := range c.TunnelTypes {
		s.TunnelTypes = append(s.TunnelTypes, string(t))
	}
	if c.LocalIP.IsValid() {
		s.LocalIP = c.LocalIP.String()
	}
	return s
}

// macText renders a MAC, "" for none.
func macText(mac []byte) string {
	if len(mac) == 0 {
		return ""
	}
	return net.HardwareAddr(mac).String()
}

// fixedIPs renders a port's addresses.
func fixedIPs(ips []northbound.FixedIP) []string {
	if len(ips) == 0 {
		return nil
	}
	out := make([]string, len(ips))
	for i, ip := range ips {
		out[i] = ip.IP.String()
	}
	return out
}

// nonNil makes a nil slice an empty one, so that JSON shows [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
