package config

import (
	"bytes"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/dvrflow/dvrflow/northbound"
)

// Datapath types ([ovs] datapath_type).
const (
	DatapathSystem = "system"
	DatapathNetdev = "netdev"
)

// Config is the agent configuration: Neutron's openvswitch_agent.ini options (same names,
// same defaults) plus dvrflow's own [dvrflow] section. Each field's comment names its ini
// option. Build one with [DefaultConfig] or [LoadConfig]; see the package documentation
// for the precedence of flags, topology host section, ini files and defaults.
type Config struct {
	// Host is [DEFAULT] host: this node's name (default: the OS hostname). The topology's
	// host.name overrides it.
	Host string

	// IntegrationBridge is [ovs] integration_bridge (default br-int).
	IntegrationBridge string
	// TunnelBridge is [ovs] tunnel_bridge (default br-tun).
	TunnelBridge string
	// IntPeerPatchPort is [ovs] int_peer_patch_port (default patch-tun).
	IntPeerPatchPort string
	// TunPeerPatchPort is [ovs] tun_peer_patch_port (default patch-int).
	TunPeerPatchPort string
	// BridgeMappings is [ovs] bridge_mappings: physical network → bridge (default empty).
	// Iterate with [Config.Physnets] for a stable order.
	BridgeMappings map[string]string
	// LocalIP is [ovs] local_ip: the tunnel endpoint address (default unset).
	LocalIP netip.Addr
	// DatapathType is [ovs] datapath_type: system or netdev (default system).
	DatapathType string
	// OVSDBConnection is [ovs] ovsdb_connection (default tcp:127.0.0.1:6640).
	OVSDBConnection string
	// OVSDBTimeout is [ovs] ovsdb_timeout in seconds (default 10).
	OVSDBTimeout int
	// OFInactivityProbe is [ovs] of_inactivity_probe in seconds, 0 disables (default 10).
	OFInactivityProbe int
	// OFConnectTimeout is [ovs] of_connect_timeout in seconds (default 300).
	OFConnectTimeout int
	// OFRequestTimeout is [ovs] of_request_timeout in seconds (default 300).
	OFRequestTimeout int
	// BridgeMACTableSize is [ovs] bridge_mac_table_size (default 50000).
	BridgeMACTableSize int
	// IGMPSnoopingEnable is [ovs] igmp_snooping_enable (default false).
	IGMPSnoopingEnable bool

	// TunnelTypes is [agent] tunnel_types: vxlan, gre, geneve (default empty: no br-tun).
	TunnelTypes []northbound.NetworkType
	// VXLANUDPPort is [agent] vxlan_udp_port (default 4789).
	VXLANUDPPort int
	// L2Population is [agent] l2_population (default false).
	L2Population bool
	// ARPResponder is [agent] arp_responder as configured (default false); the effective
	// value is [Config.ArpResponderEnabled].
	ARPResponder bool
	// EnableDistributedRouting is [agent] enable_distributed_routing; nil when no source
	// set it, in which case agent_mode decides (see [Config.DistributedRoutingEnabled]).
	EnableDistributedRouting *bool
	// DropFlowsOnStart is [agent] drop_flows_on_start (default false).
	DropFlowsOnStart bool
	// DontFragment is [agent] dont_fragment: the tunnels' df_default (default true).
	DontFragment bool
	// TunnelCsum is [agent] tunnel_csum (default false).
	TunnelCsum bool
	// DSCP is [agent] dscp: the tunnels' DSCP value 0–63, nil when unset (default).
	DSCP *int
	// DSCPInherit is [agent] dscp_inherit (default false).
	DSCPInherit bool
	// PollingInterval is [agent] polling_interval in seconds (default 2).
	PollingInterval int
	// ReportInterval is [agent] report_interval in seconds (default 30).
	ReportInterval float64
	// ExplicitlyEgressDirect is [agent] explicitly_egress_direct (default false).
	ExplicitlyEgressDirect bool
	// Extensions is [agent] extensions (default empty).
	Extensions []string

	// FirewallDriver is [securitygroup] firewall_driver (default unset, which Neutron treats
	// as noop).
	FirewallDriver string
	// EnableSecurityGroup is [securitygroup] enable_security_group (default true).
	EnableSecurityGroup bool
	// PermittedEthertypes is [securitygroup] permitted_ethertypes: ethertypes other than
	// IPv4, ARP and IPv6 that the openvswitch firewall lets a filtered port send, sorted,
	// without duplicates (default empty). Written as Neutron's list of hexadecimal
	// strings ("0x4008").
	PermittedEthertypes []uint16

	// TopologyFile is [dvrflow] topology_file: the standalone northbound file. When it is
	// set the agent runs standalone (see [Config.Standalone]).
	TopologyFile string
	// Messaging holds the raw values of the [DEFAULT] options of oslo.messaging
	// (transport_url, control_exchange, rpc_response_timeout, rpc_response_max_timeout)
	// and Rabbit every [oslo_messaging_rabbit] option, as written: the Neutron mode's
	// transport parses them (package neutron/oslo) and refuses, by name, what it cannot
	// honour. A transport_url selects the Neutron mode (see [Config.NeutronMode]).
	Messaging map[string]string
	Rabbit    map[string]string
	// StatePath is [DEFAULT] state_path: the directory where the agent keeps its state
	// between runs, as Neutron's agents do (default /var/lib/neutron, Neutron's). Today
	// that is the floating IP allocations of the router namespaces, in Neutron's own files
	// (fip-linklocal-networks, fip-priorities), so that a host that moves from Neutron's
	// L3 agent keeps its link-local pairs and rule priorities.
	StatePath string
	// OVSRundir is [dvrflow] ovs_rundir: the OVS run directory holding db.sock and the
	// bridges' .mgmt sockets (default unset: OVS's own default).
	OVSRundir string
	// ManageRouterNamespaces is [dvrflow] manage_router_namespaces; nil when unset, in
	// which case it follows the mode (see [Config.RouterNamespacesManaged]).
	ManageRouterNamespaces *bool
	// MetricsAddress is [dvrflow] metrics_address: host:port of the metrics listener
	// (default unset: no listener).
	MetricsAddress string
	// APISocket is [dvrflow] api_socket: the unix socket of the agent's read-only API
	// (what `dvrflow status` reads); nil when unset, which means
	// RUNDIR/dvrflow-agent.sock (see [Config.APISocketPath]); "" when disabled ("" or
	// "none" in the ini).
	APISocket *string
	// AgentMode is [dvrflow] agent_mode: legacy, dvr or dvr_snat (default legacy);
	// dvr_no_external is refused as not supported yet.
	AgentMode northbound.AgentMode
	// DVRMAC is [dvrflow] dvr_mac: this host's DVR MAC (default unset; with Neutron it
	// comes from the server).
	DVRMAC net.HardwareAddr
	// PreventARPSpoofing is [dvrflow] prevent_arp_spoofing: install the ARP/MAC/ND
	// spoofing protection of br-int tables 24/25 (default true). Neutron removed this
	// option in 11.0.0; dvrflow keeps it as its own. The openvswitch firewall turns it off
	// (see [Config.ARPSpoofingProtection]).
	PreventARPSpoofing bool
	// VerifyInterval is [dvrflow] verify_interval: every so many seconds the agent reads
	// every bridge's flows back and repairs what differs, as a backstop to the switch's
	// flow monitor (default 0: off).
	VerifyInterval int
	// AllowUnfilteredPorts is [dvrflow] allow_unfiltered_ports: start although
	// firewall_driver asks for security-group filtering by a driver dvrflow does not
	// implement (iptables, iptables_hybrid: dvrflow implements only openvswitch), leaving
	// the ports unfiltered (default false: the agent refuses to start, see
	// [Config.Validate]).
	AllowUnfilteredPorts bool
}

// DefaultConfig returns the configuration with every option at its default. Host is the
// OS hostname (empty if it cannot be read; [Config.Validate] then complains).
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	return &Config{
		Host:                host,
		IntegrationBridge:   "br-int",
		TunnelBridge:        "br-tun",
		IntPeerPatchPort:    "patch-tun",
		TunPeerPatchPort:    "patch-int",
		BridgeMappings:      map[string]string{},
		DatapathType:        DatapathSystem,
		OVSDBConnection:     "tcp:127.0.0.1:6640",
		OVSDBTimeout:        10,
		OFInactivityProbe:   10,
		OFConnectTimeout:    300,
		OFRequestTimeout:    300,
		BridgeMACTableSize:  50000,
		TunnelTypes:         []northbound.NetworkType{},
		VXLANUDPPort:        4789,
		DontFragment:        true,
		PollingInterval:     2,
		ReportInterval:      30,
		Extensions:          []string{},
		PermittedEthertypes: []uint16{},
		Messaging:           map[string]string{},
		Rabbit:              map[string]string{},
		EnableSecurityGroup: true,
		AgentMode:           northbound.ModeLegacy,
		PreventARPSpoofing:  true,
		StatePath:           DefaultStatePath,
	}
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	d := *c
	d.BridgeMappings = maps.Clone(c.BridgeMappings)
	d.TunnelTypes = slices.Clone(c.TunnelTypes)
	d.DVRMAC = bytes.Clone(c.DVRMAC)
	d.Extensions = slices.Clone(c.Extensions)
	d.PermittedEthertypes = slices.Clone(c.PermittedEthertypes)
	d.EnableDistributedRouting = clonePtr(c.EnableDistributedRouting)
	d.DSCP = clonePtr(c.DSCP)
	d.ManageRouterNamespaces = clonePtr(c.ManageRouterNamespaces)
	d.APISocket = clonePtr(c.APISocket)
	d.Messaging = maps.Clone(c.Messaging)
	d.Rabbit = maps.Clone(c.Rabbit)
	return &d
}

// Physnets returns the physical networks of BridgeMappings in ascending order, the order in
// which physical bridges are set up.
func (c *Config) Physnets() []string {
	return sortedKeys(c.BridgeMappings)
}

// TunnelingEnabled reports whether any tunnel type is configured (Neutron's
// enable_tunneling): br-tun exists only then.
func (c *Config) TunnelingEnabled() bool {
	return len(c.TunnelTypes) > 0
}

// HasTunnelType reports whether t is one of the configured tunnel types.
func (c *Config) HasTunnelType(t northbound.NetworkType) bool {
	return slices.Contains(c.TunnelTypes, t)
}

// DistributedRoutingEnabled is the effective enable_distributed_routing: its value when a
// source set it, otherwise true exactly when agent_mode is a DVR mode.
func (c *Config) DistributedRoutingEnabled() bool {
	if c.EnableDistributedRouting != nil {
		return *c.EnableDistributedRouting
	}
	return c.AgentMode.Distributed()
}

// ArpResponderEnabled is the effective ARP responder setting, as Neutron's agent computes
// it: arp_responder only counts with l2_population, and DVR with tunnels forces it on.
func (c *Config) ArpResponderEnabled() bool {
	if c.DistributedRoutingEnabled() && c.TunnelingEnabled() {
		return true
	}
	return c.ARPResponder && c.L2Population
}

// NeutronMode reports whether the agent takes its state from neutron-server ([DEFAULT]
// transport_url set).
func (c *Config) NeutronMode() bool { return c.Messaging["transport_url"] != "" }

// Standalone reports whether the agent runs from a topology file (topology_file set)
// rather than from Neutron.
func (c *Config) Standalone() bool {
	return c.TopologyFile != ""
}

// RouterNamespacesManaged is the effective manage_router_namespaces: its value when set,
// otherwise true in standalone mode (there is no Neutron L3 agent to do it) and false
// with Neutron.
func (c *Config) RouterNamespacesManaged() bool {
	if c.ManageRouterNamespaces != nil {
		return *c.ManageRouterNamespaces
	}
	return c.Standalone()
}

// ApplyHost overrides c with the settings present in h (see [northbound.HostSettings]). A
// nil h changes nothing.
func (c *Config) ApplyHost(h *northbound.HostSettings) {
	if h == nil {
		return
	}
	setIf(&c.Host, h.Name)
	setIf(&c.AgentMode, h.AgentMode)
	setIf(&c.IntegrationBridge, h.IntegrationBridge)
	setIf(&c.TunnelBridge, h.TunnelBridge)
	if h.BridgeMappings != nil {
		c.BridgeMappings = maps.Clone(h.BridgeMappings)
	}
	setIf(&c.LocalIP, h.LocalIP)
	if h.TunnelTypes != nil {
		c.TunnelTypes = slices.Clone(h.TunnelTypes)
	}
	setIf(&c.L2Population, h.L2Population)
	setIf(&c.ARPResponder, h.ARPResponder)
	if h.EnableDistributedRouting != nil {
		c.EnableDistributedRouting = clonePtr(h.EnableDistributedRouting)
	}
	if h.DVRMAC != nil {
		c.DVRMAC = bytes.Clone(*h.DVRMAC)
	}
	setIf(&c.PreventARPSpoofing, h.PreventARPSpoofing)
	setIf(&c.FirewallDriver, h.FirewallDriver)
}

// Env is what northbound validation needs of this node's settings.
func (c *Config) Env() northbound.Env {
	return northbound.Env{
		Host: c.Host, TunnelTypes: slices.Clone(c.TunnelTypes), BridgeMappings: maps.Clone(c.BridgeMappings),
		LocalIP: c.LocalIP, DVRMAC: bytes.Clone(c.DVRMAC), AgentMode: c.AgentMode,
	}
}

// setIf sets *dst to *src when src is not nil.
func setIf[T any](dst *T, src *T) {
	if src != nil {
		*dst = *src
	}
}

// clonePtr returns a pointer to a copy of *p, or nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// DefaultStatePath is Neutron's default [DEFAULT] state_path.
const DefaultStatePath = "/var/lib/neutron"

// DefaultOVSRundir is where ovs-vswitchd puts the bridges' management sockets by default.
const DefaultOVSRundir = "/var/run/openvswitch"

// SocketDir is where ovs-vswitchd puts the bridges' BRIDGE.mgmt sockets: ovs_rundir, or
// [DefaultOVSRundir].
func (c *Config) SocketDir() string {
	if c.OVSRundir == "" {
		return DefaultOVSRundir
	}
	return c.OVSRundir
}

// DefaultAPISocketName is the file name of the agent's API socket in the OVS run
// directory when api_socket is unset.
const DefaultAPISocketName = "dvrflow-agent.sock"

// maxSocketPathLen is the longest path a unix socket can be bound to (sun_path holds 108
// bytes with the terminating NUL).
const maxSocketPathLen = 107

// APISocketPath is the effective api_socket: the path of the agent's API socket, or "" when
// the API is disabled. Unset, it is [DefaultAPISocketName] in [Config.SocketDir].
func (c *Config) APISocketPath() string {
	if c.APISocket == nil {
		return filepath.Join(c.SocketDir(), DefaultAPISocketName)
	}
	return *c.APISocket
}

// ManagedBridges returns the bridges the agent creates or adopts, in setup order: the
// integration bridge, the physical bridges by physnet, then the tunnel bridge.
func (c *Config) ManagedBridges() []string {
	names := []string{c.IntegrationBridge}
	for _, physnet := range c.Physnets() {
		names = append(names, c.BridgeMappings[physnet])
	}
	if c.TunnelingEnabled() {
		names = append(names, c.TunnelBridge)
	}
	return names
}

// InactivityProbe is of_inactivity_probe as a duration: the echo interval of the agent's
// OpenFlow connections (0: no probes).
func (c *Config) InactivityProbe() time.Duration {
	return time.Duration(c.OFInactivityProbe) * time.Second
}
