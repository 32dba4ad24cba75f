package agentapi

import "time"

// The API's paths. The version is in the path: a change that breaks a client gets a new
// one.
const (
	StatusPath       = "/v1/status"
	DesiredFlowsPath = "/v1/desired-flows"
)

// Status is the document of /v1/status: the agent's view of its node.
type Status struct {
	Host string `json:"host"`
	// AgentMode is legacy, dvr, dvr_snat or dvr_no_external.
	AgentMode string `json:"agent_mode"`
	// Northbound says where the agent's state comes from: "topology" (a file) or "neutron".
	Northbound string    `json:"northbound"`
	StartedAt  time.Time `json:"started_at"`
	// Synced is true once the first reconcile succeeded.
	Synced bool `json:"synced"`
	// OVSDBConnected is read when the document is served.
	OVSDBConnected bool     `json:"ovsdb_connected"`
	Bridges        []Bridge `json:"bridges"`
	// Ports are the VIF ports of this host: bound ones by ofport, then those waiting for a
	// VIF with an ofport in northbound order.
	Ports []Port `json:"ports"`
	// LocalVLANs are the networks provisioned here, by local VLAN.
	LocalVLANs []LocalVLAN `json:"local_vlans"`
	// LastReconcile is the latest successful reconcile (nil before the first);
	// LastChange the latest one that sent flow-mods or tagged ports.
	LastReconcile *Reconcile `json:"last_reconcile"`
	LastChange    *Reconcile `json:"last_change"`
	// Reconciles counts the successful reconciles since the agent started.
	Reconciles int `json:"reconciles"`
	// WaitingForOfport are the agent's own ports (patch and tunnel ports) that had no
	// ofport at the last reconcile: no flow points at them yet.
	WaitingForOfport []string `json:"waiting_for_ofport"`
	// Problems are the northbound objects refused as invalid; everything else is
	// programmed.
	Problems []Problem `json:"problems"`
	// Repairs counts the flow-mods that undid other OpenFlow clients' changes since start.
	Repairs int           `json:"repairs"`
	Config  ConfigSummary `json:"config"`
}

// Bridge is a bridge the agent manages.
type Bridge struct {
	Name string `json:"name"`
	// Role is integration, physical or tunnel.
	Role string `json:"role"`
	// PhysicalNetwork is the physnet of a physical bridge.
	PhysicalNetwork string `json:"physical_network,omitempty"`
	// DesiredFlows counts the bridge's flows in the last reconcile.
	DesiredFlows int `json:"desired_flows"`
	// OpenFlowConnected is read when the document is served.
	OpenFlowConnected bool `json:"openflow_connected"`
}

// Bridge roles.
const (
	RoleIntegration = "integration"
	RolePhysical    = "physical"
	RoleTunnel      = "tunnel"
)

// PortStatus is where a port stands on this host.
type PortStatus string

const (
	// PortBound: the port's VIF is on the integration bridge with an ofport, tagged with
	// its network's local VLAN, and its flows are installed.
	PortBound PortStatus = "bound"
	// PortDead: the VIF carries the dead VLAN 4095 and drops everything (admin down, an
	// iface-id that names no valid port, or no local VLAN left); Reason says which.
	PortDead PortStatus = "dead"
	// PortWaiting: a port of the northbound state whose VIF is not on the integration
	// bridge with an ofport yet.
	PortWaiting PortStatus = "waiting"
)

// Port is a VIF port of this host.
type Port struct {
	ID string `json:"id"`
	// Device is the OVS port name (tap..., qr-...); empty while waiting.
	Device      string `json:"device"`
	NetworkID   string `json:"network_id"`
	DeviceOwner string `json:"device_owner,omitempty"`
	MAC         string `json:"mac"`
	// FixedIPs are the port's addresses.
	FixedIPs []string `json:"fixed_ips,omitempty"`
	// LocalVLAN is the port's tag: its network's local VLAN, 4095 when dead, 0 while
	// waiting.
	LocalVLAN int `json:"local_vlan"`
	// OFPort is 0 while waiting.
	OFPort int        `json:"ofport"`
	Status PortStatus `json:"status"`
	Reason string     `json:"reason,omitempty"`
}

// LocalVLAN is a network provisioned on this host.
type LocalVLAN struct {
	NetworkID       string `json:"network_id"`
	NetworkType     string `json:"network_type"`
	PhysicalNetwork string `json:"physical_network,omitempty"`
	// SegmentationID is the provider VLAN, VNI or GRE key; 0 for flat and local.
	SegmentationID int64 `json:"segmentation_id"`
	LocalVLAN      int   `json:"local_vlan"`
	// Ports counts the network's ports bound here.
	Ports int `json:"ports"`
}

// Reconcile is one successful reconcile.
type Reconcile struct {
	FinishedAt      time.Time `json:"finished_at"`
	DurationSeconds float64   `json:"duration_seconds"`
	PhasesSeconds   Phases    `json:"phases_seconds"`
	// FlowMods counts the flow-mods sent, over every bridge.
	FlowMods int          `json:"flow_mods"`
	Bridges  []BridgeSync `json:"bridges"`
	// PortsTagged are the ports whose tag the reconcile changed.
	PortsTagged []string `json:"ports_tagged"`
	// RouterError is why some router namespaces could not be set up (the flows were
	// programmed regardless).
	RouterError string `json:"router_error,omitempty"`
}

// Duration is the reconcile's duration.
func (r *Reconcile) Duration() time.Duration { return seconds(r.DurationSeconds) }

// PhaseDuration is one phase of a reconcile.
type PhaseDuration struct {
	Name     string
	Duration time.Duration
}

// PhaseDurations returns the reconcile's phases in the order they run.
func (r *Reconcile) PhaseDurations() []PhaseDuration {
	p := r.PhasesSeconds
	return []PhaseDuration{{"observe", seconds(p.Observe)}, {"build", seconds(p.Build)}, {"layout", seconds(p.Layout)},
		{"sync", seconds(p.Sync)}, {"tags", seconds(p.Tags)}}
}

// Phases is where a reconcile spent its time, in seconds.
type Phases struct {
	Observe float64 `json:"observe"` // router namespaces, OVSDB read
	Build   float64 `json:"build"`   // bind, tunnel ports, flow generation
	Layout  float64 `json:"layout"`  // bridges, patch and tunnel ports written to OVSDB
	Sync    float64 `json:"sync"`    // every bridge's flows, each in one confirmed bundle
	Tags    float64 `json:"tags"`    // tags committed, stale tunnel ports removed
}

// BridgeSync is what a reconcile did to one bridge's flows.
type BridgeSync struct {
	Bridge    string `json:"bridge"`
	Added     int    `json:"added"`
	Modified  int    `json:"modified"`
	Deleted   int    `json:"deleted"`
	Unchanged int    `json:"unchanged"`
	// ForeignChanges counts the changes other clients had made that the reconcile found.
	ForeignChanges int `json:"foreign_changes"`
}

// Problem is a northbound object refused as invalid.
type Problem struct {
	// Kind is the object's kind: network, subnet, port, ...
	Kind string `json:"kind"`
	// Object names it: its id, "host/id" for a remote port, "LIST[i]" without an id.
	Object string `json:"object"`
	// Field is the attribute at fault; empty when the whole object is.
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// ConfigSummary is the effective config that shapes the pipeline, as the agent runs it.
type ConfigSummary struct {
	TopologyFile           string            `json:"topology_file,omitempty"`
	IntegrationBridge      string            `json:"integration_bridge"`
	TunnelBridge           string            `json:"tunnel_bridge,omitempty"`
	BridgeMappings         map[string]string `json:"bridge_mappings"`
	TunnelTypes            []string          `json:"tunnel_types"`
	LocalIP                string            `json:"local_ip,omitempty"`
	DatapathType           string            `json:"datapath_type"`
	OVSDBConnection        string            `json:"ovsdb_connection"`
	OVSRundir              string            `json:"ovs_rundir"`
	DistributedRouting     bool              `json:"enable_distributed_routing"`
	DVRMAC                 string            `json:"dvr_mac,omitempty"`
	L2Population           bool              `json:"l2_population"`
	ARPResponder           bool              `json:"arp_responder"`
	PreventARPSpoofing     bool              `json:"prevent_arp_spoofing"`
	ManageRouterNamespaces bool              `json:"manage_router_namespaces"`
	VerifyIntervalSeconds  int               `json:"verify_interval"`
	MetricsAddress         string            `json:"metrics_address,omitempty"`
	APISocket              string            `json:"api_socket"`
}

// DesiredFlows is the document of /v1/desired-flows: what the agent keeps installed.
type DesiredFlows struct {
	// ReconciledAt is when the reconcile that computed the flows finished.
	ReconciledAt time.Time     `json:"reconciled_at"`
	Bridges      []BridgeFlows `json:"bridges"`
}

// BridgeFlows are one bridge's desired flows, in dump order.
type BridgeFlows struct {
	Bridge string        `json:"bridge"`
	Flows  []DesiredFlow `json:"flows"`
}

// DesiredFlow is one desired flow.
type DesiredFlow struct {
	Table     uint8  `json:"table"`
	TableName string `json:"table_name"`
	Priority  uint16 `json:"priority"`
	// Cookie is in hex ("0xd7f1040000000001"); Category is the generator its cookie names
	// ("port", "dvr-mac", ...).
	Cookie   string `json:"cookie"`
	Category string `json:"category"`
	// Text is the flow as `ovs-ofctl -O OpenFlow13 --no-stats --no-names dump-flows`
	// prints it, cookie included.
	Text string `json:"flow"`
}

// errorDocument is the body of every error response.
type errorDocument struct {
	Error string `json:"error"`
}

// seconds converts a document's seconds to a duration.
func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
