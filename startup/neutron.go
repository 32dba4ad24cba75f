package startup

import (
	"context"
	"maps"
	"slices"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/neutron"
	"github.com/dvrflow/dvrflow/neutron/oslo"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
)

// neutronMode is the Neutron northbound: the RPC client and the source on it.
type neutronMode struct {
	client *oslo.Client
	source *neutron.Source
	// reconciles counts the reports given to the source (the first is no restart).
	reconciles int
}

// bootstrapNeutron starts the Neutron mode: it connects to OVSDB while it connects to the
// broker and registers with neutron-server (has_alive_neutron_server, the DVR MACs,
// report_state, tunnel_sync, the notification consumers), and returns once the server has
// answered. The transport options ([DEFAULT] transport_url..., [oslo_messaging_rabbit])
// are checked first: one dvrflow cannot honour stops the start, named.
func bootstrapNeutron(ctx context.Context, b *Boot, probe *config.Config, withHost func(*northbound.HostSettings) (*config.Config, error), log *zap.Logger) (*Boot, error) {
	if err := probe.Validate(); err != nil {
		return nil, err
	}
	transport, err := oslo.ParseTransport(probe.Messaging, probe.Rabbit)
	if err != nil {
		return nil, err
	}
	b.Effective = effective(withHost)
	var source atomic.Pointer[neutron.Source]
	client, err := oslo.New(oslo.Config{Transport: transport, Log: log.Named("rpc"), OnEvent: func(e oslo.Event) {
		switch e.Kind {
		case oslo.Connected:
			log.Info("connected to the broker", zap.String("broker", e.Broker), zap.Uint64("generation", e.Generation))
			if s := source.Load(); s != nil {
				s.Reconnected()
			}
		case oslo.Disconnected:
			log.Warn("lost the broker; reconnecting", zap.String("broker", e.Broker), zap.Error(e.Err))
		case oslo.ConnectFailed:
			log.Warn("no broker reachable", zap.Error(e.Err), zap.Duration("retry_in", e.Retry))
		}
	}})
	if err != nil {
		return nil, err
	}
	mode := &neutronMode{client: client}
	start := time.Now()
	var first *northbound.Snapshot
	db, err := ovsdb.ConnectWhile(ctx, probe.OVSDBConnection, log, func() error {
		b.Prefetch.Start(ctx, probe)
		mode.source = neutron.New(client, neutronSettings(probe), log)
		source.Store(mode.source)
		var err error
		_, err = mode.source.Start(ctx)
		b.Load = time.Since(start)
		return err
	})
	if err != nil {
		b.Prefetch.Close()
		_ = client.Close()
		return nil, err
	}
	b.Connect = time.Since(start) - b.Load
	b.DB = db
	// What a previous run wired stays as it is: the first snapshot has the VIFs plugged now.
	primed := time.Now()
	first = mode.source.Prime(ctx, pluggedVIFs(db, probe.IntegrationBridge))
	b.Load += time.Since(primed)
	b.neutron = mode
	b.first = first
	if b.Config, err = b.Effective(first.Host); err != nil {
		b.Close()
		return nil, err
	}
	return b, nil
}

// pluggedVIFs are the VIFs on the integration bridge, each Wired when it carries a local
// VLAN (a previous run of the agent confirmed its flows, then tagged it).
func pluggedVIFs(db *ovsdb.Client, integration string) []neutron.Plugged {
	tags := db.PortTags(integration)
	var out []neutron.Plugged
	for _, v := range db.VIFs() {
		if v.Bridge != integration || v.IfaceID == "" {
			continue
		}
		tag, tagged := tags[v.Name]
		out = append(out, neutron.Plugged{Device: v.IfaceID, Wired: v.Ready() && tagged && tag > 0 && tag != state.DeadVLAN})
	}
	return out
}

// neutronSettings are the source's settings from the config.
func neutronSettings(c *config.Config) neutron.Settings {
	types := make([]string, len(c.TunnelTypes))
	for i, t := range c.TunnelTypes {
		types[i] = string(t)
	}
	return neutron.Settings{
		Host: c.Host, LocalIP: c.LocalIP, TunnelTypes: types,
		DistributedRouting: c.EnableDistributedRouting != nil && *c.EnableDistributedRouting,
		ReportInterval:     time.Duration(c.ReportInterval * float64(time.Second)),
		Configurations:     func(devices int) map[string]any { return agentConfigurations(c, devices) },
		// The groups are fed when the agent filters (the openvswitch firewall): a port
		// is then held back until its groups are known.
		SecurityGroups: c.Firewall(),
	}
}

// agentConfigurations is report_state's configurations, with the keys Neutron's Python
// agent reports (reference §3.3): the ML2 driver binds ports, l2pop picks the VTEP and
// DVR decides from them.
func agentConfigurations(c *config.Config, devices int) map[string]any {
	types := make([]string, len(c.TunnelTypes))
	for i, t := range c.TunnelTypes {
		types[i] = string(t)
	}
	mappings := map[string]string{}
	for _, physnet := range slices.Sorted(maps.Keys(c.BridgeMappings)) {
		mappings[physnet] = c.BridgeMappings[physnet]
	}
	distributed := c.EnableDistributedRouting != nil && *c.EnableDistributedRouting
	conf := map[string]any{
		"bridge_mappings":            mappings,
		"integration_bridge":         c.IntegrationBridge,
		"tunnel_types":               types,
		"l2_population":              c.L2Population,
		"arp_responder_enabled":      c.ArpResponderEnabled(),
		"enable_distributed_routing": distributed,
		"datapath_type":              c.DatapathType,
		"ovs_capabilities": map[string]any{
			"datapath_types": []string{"netdev", "system"},
			"iface_types":    []string{"geneve", "gre", "internal", "patch", "system", "tap", "vxlan"},
		},
		"ovs_hybrid_plug":               false,
		"vhostuser_socket_dir":          "/var/run/openvswitch",
		"extensions":                    c.Extensions,
		"devices":                       devices,
		"log_agent_heartbeats":          false,
		"baremetal_smartnic":            false,
		"resource_provider_bandwidths":  map[string]any{},
		"resource_provider_hypervisors": map[string]any{},
		"resource_provider_inventory_defaults": map[string]any{
			"allocation_ratio": 1.0, "min_unit": 1, "step_size": 1, "reserved": 0,
		},
	}
	if c.LocalIP.IsValid() {
		conf["tunneling_ip"] = c.LocalIP.String()
	}
	if c.AllowUnfilteredPorts && c.Unfiltered() {
		conf["allow_unfiltered_ports"] = true
	}
	return conf
}

// reconciled tells the source what the agent did: the VIFs plugged, those it has no port
// for, the ports whose flows a barrier confirmed, the dead ones, and whether the switch had
// lost its flows (ovs-vswitchd restarted) so that l2pop sends the full FDB again.
func (m *neutronMode) reconciled(rep controller.Report, integration string) {
	r := neutron.Report{Plugged: rep.Binding.Plugged}
	for _, v := range rep.Binding.Unknown {
		r.Unknown = append(r.Unknown, v.IfaceID)
	}
	if n := rep.Binding.Node; n != nil {
		for _, p := range n.Ports {
			if p.Dead {
				r.Dead = append(r.Dead, p.ID)
			} else {
				r.Up = append(r.Up, p.ID)
			}
		}
	}
	m.reconciles++
	if m.reconciles > 1 {
		for _, res := range rep.Results {
			if res.Bridge == integration && switchLostFlows(res) {
				r.SwitchRestarted = true
			}
		}
	}
	m.source.Reconciled(r)
}

// switchLostFlows reports whether a sync found the bridge without flows it had: read from
// the switch again (a reconnection) and added back.
func switchLostFlows(r flows.SyncResult) bool { return r.Read && !r.Prefetched && len(r.Added) > 0 }

// close stops the RPC client.
func (m *neutronMode) close() { _ = m.client.Close() }
