package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// DefaultProtocols are the OpenFlow versions enabled on a bridge when BridgeSpec.Protocols is
// empty (what Neutron's setup_controllers adds).
var DefaultProtocols = []string{"OpenFlow10", "OpenFlow13"}

// BridgeSpec is how dvrflow wants a bridge configured.
type BridgeSpec struct {
	Name string
	// DatapathType is "system" (Neutron's default) or "netdev"; "" leaves it as it is (OVS's
	// default, system, for a new bridge).
	DatapathType string
	// Protocols are the OpenFlow versions to enable, DefaultProtocols if empty. They are
	// added to a bridge's existing protocols, never removed from them, like Neutron.
	Protocols []string
	// MACTableSize is other_config:mac-table-size (Neutron's default is 50000); 0 leaves
	// it unset.
	MACTableSize int
	// TableNames are written into Flow_Table rows referenced by Bridge.flow_tables, so that
	// `ovs-ofctl dump-flows --names` and ofproto/trace show them. Tables not listed are left
	// alone.
	TableNames map[int]string
}

// EnsureBridge creates the bridge (with its internal port) if it does not exist, otherwise
// adopts it: it re-applies datapath_type, fail_mode=secure, the protocols,
// other_config:disable-in-band=true, mac-table-size and the table names, writing only what
// differs (nothing, and no wait, when all is right). It never deletes ports. It reports
// whether it created the bridge, and returns once ovs-vswitchd has applied the change. It is
// [Client.EnsureLayout] for one bridge.
func (c *Client) EnsureBridge(ctx context.Context, spec BridgeSpec) (created bool, err error) {
	if spec.Name == "" {
		return false, errors.New("ensure bridge: empty name")
	}
	names, err := c.ensureLayout(ctx, []BridgeSpec{spec}, nil)
	if err != nil {
		return false, fmt.Errorf("ensure bridge %s: %w", spec.Name, err)
	}
	return len(names) > 0, nil
}

// BridgeExists reports whether the cache holds a bridge with this name.
func (c *Client) BridgeExists(name string) (exists bool) {
	c.read(func(r *rows) { exists = r.bridge(name) != nil })
	return exists
}

// otherConfig is the Bridge.other_config dvrflow owns.
func (spec BridgeSpec) otherConfig() map[string]string {
	oc := map[string]string{"disable-in-band": "true"}
	if spec.MACTableSize > 0 {
		oc["mac-table-size"] = strconv.Itoa(spec.MACTableSize)
	}
	return oc
}

// newFlowTables returns new Flow_Table rows (with named UUIDs from named) for the named
// tables that existing does not reference yet, and the flow_tables map entries linking them.
func newFlowTables(names map[int]string, existing map[int]string, named func(kind string) string) ([]*vswitchd.FlowTable, map[int]string) {
	var rows []*vswitchd.FlowTable
	refs := map[int]string{}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if _, ok := existing[n]; ok || names[n] == "" {
			continue
		}
		name := names[n]
		uuid := named("table")
		rows = append(rows, &vswitchd.FlowTable{UUID: uuid, Name: &name})
		refs[n] = uuid
	}
	return rows, refs
}
