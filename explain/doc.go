// Package explain says what a flow is for: the rule of Neutron's pipeline that made it (the
// flow ids of Neutron's pipeline reference, e.g. I30, T21, and the firewall ids documented
// in docs/cli.md) and the object it belongs to (a port, network, router, host, tunnel or
// bridge). It works on dvrflow's flows, whose cookies name their owner, and on the flows of
// Neutron's own agent, whose random cookies name nothing: each flow's shape is recognised
// against the pipeline, and its ports, local VLANs and MACs are resolved through the node's
// OVSDB inventory and, when given, the topology. Pure: no I/O.
package explain

// Owner is the object a flow belongs to.
type Owner struct {
	// Kind is "port", "network", "router", "host", "tunnel", "bridge", "security-group" or
	// "address-group".
	Kind string `json:"kind"`
	// ID is the Neutron id (port, network, router, security group or address group UUID),
	// the host name, the tunnel's remote IP or the bridge name.
	ID string `json:"id"`
	// Name is what people call it: the device name (tapXXX), the segmentation id, the
	// router's gateway, the DVR MAC, ...
	Name string `json:"name"`
}

// Owner kinds.
const (
	KindPort    = "port"
	KindNetwork = "network"
	KindRouter  = "router"
	KindHost    = "host"
	KindTunnel  = "tunnel"
	KindBridge  = "bridge"
	// A remote group's flows on one network (flows.CategoryFirewallRemote): the owner's ID
	// is the group's, its Name says which group on which network.
	KindSecurityGroup = "security-group"
	KindAddressGroup  = "address-group"
)

// Explanation is what Explain says about one flow.
type Explanation struct {
	// TableName is the table's name in the pipeline ("" for a table it does not name).
	TableName string
	// Rule is the pipeline rule id ("I30"), "" when the flow matches no known rule.
	Rule string
	// Owner is the object, nil when the flow concerns none (a bridge default has the bridge).
	Owner *Owner
}
