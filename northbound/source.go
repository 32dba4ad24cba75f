package northbound

import (
	"net"
	"net/netip"
)

// What a source hands the agent. A source (the topology file, later Neutron) parses its
// input into a Snapshot; the agent validates it against its own settings ([Validate]).

// Snapshot is a full northbound state as a source parsed it: every object it could read,
// in source order, and a Problem for each one it could not (those are absent from Model).
type Snapshot struct {
	// Host holds the node settings the source gives (nil: none); problems of kind host
	// name those it refused.
	Host     *HostSettings
	Model    Model
	Problems []Problem
}

// Update is one result of a source: a new snapshot, or why the source could not produce
// one (the state in force stays).
type Update struct {
	Snapshot *Snapshot
	Err      error
}

// HostProblems returns the snapshot's problems of kind host.
func (s *Snapshot) HostProblems() []Problem {
	var out []Problem
	for _, p := range s.Problems {
		if p.Kind == KindHost {
			out = append(out, p)
		}
	}
	return out
}

// HostSettings are node settings a northbound source carries besides the model: the
// topology file's host section, in Neutron's option names. A nil pointer, map or slice
// means "not given"; an empty map or slice is given and overrides (so an explicit
// bridge_mappings: {} or tunnel_types: [] does override the ini). The source has parsed and
// checked every value.
type HostSettings struct {
	// Name is this node's name ([DEFAULT] host).
	Name              *string
	AgentMode         *AgentMode
	IntegrationBridge *string
	TunnelBridge      *string
	// BridgeMappings maps physical network → bridge.
	BridgeMappings map[string]string
	// LocalIP points at the zero Addr when the source unsets it explicitly.
	LocalIP                  *netip.Addr
	TunnelTypes              []NetworkType
	L2Population             *bool
	ARPResponder             *bool
	EnableDistributedRouting *bool
	// DVRMAC points at nil when the source unsets it explicitly.
	DVRMAC             *net.HardwareAddr
	PreventARPSpoofing *bool
	// FirewallDriver is [securitygroup] firewall_driver, as given (the agent's config
	// checks it).
	FirewallDriver *string
}
