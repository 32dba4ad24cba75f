package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

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
// other_config:disable-in-band=true, mac-table-size and the table names. It never deletes
// ports. It reports whether it created the bridge, and returns once ovs-vswitchd has applied
// the change.
func (c *Client) EnsureBridge(ctx context.Context, spec BridgeSpec) (created bool, err error) {
	if spec.Name == "" {
		return false, errors.New("ensure bridge: empty name")
	}
	if len(spec.Protocols) == 0 {
		spec.Protocols = DefaultProtocols
	}
	err = retry(ctx, func() error {
		br := &vswitchd.Bridge{Name: spec.Name}
		switch err := c.ovs.Get(ctx, br); {
		case errors.Is(err, client.ErrNotFound):
			created = true
			return c.createBridge(ctx, spec)
		case err != nil:
			return err
		}
		created = false
		return c.adoptBridge(ctx, spec, br)
	})
	if err != nil {
		return false, fmt.Errorf("ensure bridge %s: %w", spec.Name, err)
	}
	if created {
		c.log.Info("created bridge", zap.String("bridge", spec.Name), zap.String("datapath_type", spec.DatapathType))
	}
	return created, nil
}

// BridgeExists reports whether the cache holds a bridge with this name.
func (c *Client) BridgeExists(name string) bool {
	return c.ovs.Get(context.Background(), &vswitchd.Bridge{Name: name}) == nil
}

// otherConfig is the Bridge.other_config dvrflow owns.
func (spec BridgeSpec) otherConfig() map[string]string {
	oc := map[string]string{"disable-in-band": "true"}
	if spec.MACTableSize > 0 {
		oc["mac-table-size"] = strconv.Itoa(spec.MACTableSize)
	}
	return oc
}

// createBridge adds the bridge, its internal port and its named tables in one transaction,
// guarded against a bridge of that name having appeared meanwhile.
func (c *Client) createBridge(ctx context.Context, spec BridgeSpec) error {
	root, err := c.root()
	if err != nil {
		return err
	}
	l := &opList{ops: []ovsdb.Operation{guard(vswitchd.BridgeTable, spec.Name, false)}}
	iface := &vswitchd.Interface{UUID: "new_iface", Name: spec.Name, Type: "internal"}
	port := &vswitchd.Port{UUID: "new_port", Name: spec.Name, Interfaces: []string{iface.UUID}}
	fmode := vswitchd.BridgeFailModeSecure
	br := &vswitchd.Bridge{
		UUID:         "new_bridge",
		Name:         spec.Name,
		DatapathType: spec.DatapathType,
		FailMode:     &fmode,
		Protocols:    spec.Protocols,
		OtherConfig:  spec.otherConfig(),
		Ports:        []string{port.UUID},
	}
	tables, flowTables := newFlowTables(spec.TableNames, nil)
	if len(tables) > 0 {
		br.FlowTables = flowTables
		l.add(c.ovs.Create(tables...))
	}
	l.add(c.ovs.Create(iface))
	l.add(c.ovs.Create(port))
	l.add(c.ovs.Create(br))
	ovsRow := &vswitchd.OpenvSwitch{UUID: root}
	l.add(c.ovs.Where(ovsRow).Mutate(ovsRow, model.Mutation{
		Field: &ovsRow.Bridges, Mutator: ovsdb.MutateOperationInsert, Value: []string{br.UUID}}))
	return l.commit(ctx, c)
}

// adoptBridge re-applies the spec to an existing bridge, in one transaction guarded by the
// bridge still existing.
func (c *Client) adoptBridge(ctx context.Context, spec BridgeSpec, cur *vswitchd.Bridge) error {
	if c.configured(spec, cur) {
		return nil // nothing to write: no transaction, no wait for ovs-vswitchd
	}
	l := &opList{ops: []ovsdb.Operation{guard(vswitchd.BridgeTable, spec.Name, true)}}
	b := &vswitchd.Bridge{}
	where := c.ovs.WhereAll(b, model.Condition{Field: &b.Name, Function: ovsdb.ConditionEqual, Value: spec.Name})
	fmode := vswitchd.BridgeFailModeSecure
	b.FailMode = &fmode
	fields := []any{&b.FailMode}
	if spec.DatapathType != "" {
		b.DatapathType = spec.DatapathType
		fields = append(fields, &b.DatapathType)
	}
	l.add(where.Update(b, fields...))
	l.add(where.Mutate(b,
		model.Mutation{Field: &b.Protocols, Mutator: ovsdb.MutateOperationInsert, Value: spec.Protocols}))
	// Map "insert" keeps an existing key's value, so delete our keys first.
	oc := spec.otherConfig()
	l.add(where.Mutate(b,
		model.Mutation{Field: &b.OtherConfig, Mutator: ovsdb.MutateOperationDelete, Value: slices.Sorted(maps.Keys(oc))}))
	l.add(where.Mutate(b,
		model.Mutation{Field: &b.OtherConfig, Mutator: ovsdb.MutateOperationInsert, Value: oc}))
	// Existing Flow_Table rows are renamed in place; missing ones are created and linked.
	renames := map[int]string{}
	for n, name := range spec.TableNames {
		if uuid, ok := cur.FlowTables[n]; ok && name != "" {
			renames[n] = uuid
		}
	}
	for _, n := range slices.Sorted(maps.Keys(renames)) {
		name := spec.TableNames[n]
		ft := &vswitchd.FlowTable{UUID: renames[n], Name: &name}
		l.add(c.ovs.Where(ft).Update(ft, &ft.Name))
	}
	tables, flowTables := newFlowTables(spec.TableNames, cur.FlowTables)
	if len(tables) > 0 {
		l.add(c.ovs.Create(tables...))
		l.add(where.Mutate(b,
			model.Mutation{Field: &b.FlowTables, Mutator: ovsdb.MutateOperationInsert, Value: flowTables}))
	}
	return l.commit(ctx, c)
}

// newFlowTables returns new Flow_Table rows (with named UUIDs) for the named tables that
// existing does not reference yet, and the flow_tables map entries linking them.
func newFlowTables(names map[int]string, existing map[int]string) ([]model.Model, map[int]string) {
	var rows []model.Model
	refs := map[int]string{}
	for _, n := range slices.Sorted(maps.Keys(names)) {
		if _, ok := existing[n]; ok || names[n] == "" {
			continue
		}
		name := names[n]
		uuid := "new_table_" + strconv.Itoa(n)
		rows = append(rows, &vswitchd.FlowTable{UUID: uuid, Name: &name})
		refs[n] = uuid
	}
	return rows, refs
}

// configured reports whether an existing bridge already has everything adoptBridge would
// set (from the cache).
func (c *Client) configured(spec BridgeSpec, cur *vswitchd.Bridge) bool {
	if cur.FailMode == nil || *cur.FailMode != vswitchd.BridgeFailModeSecure {
		return false
	}
	if spec.DatapathType != "" && cur.DatapathType != spec.DatapathType {
		return false
	}
	for _, p := range spec.Protocols {
		if !slices.Contains(cur.Protocols, p) {
			return false
		}
	}
	for k, v := range spec.otherConfig() {
		if cur.OtherConfig[k] != v {
			return false
		}
	}
	tables := c.table(vswitchd.FlowTableTable)
	for n, name := range spec.TableNames {
		if name == "" {
			continue
		}
		ft, ok := tables[cur.FlowTables[n]].(*vswitchd.FlowTable)
		if !ok || ft.Name == nil || *ft.Name != name {
			return false
		}
	}
	return true
}
