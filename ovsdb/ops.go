package ovsdb

import (
	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// Operations of a transaction (RFC 7047 section 5.2), in libovsdb's wire types, built from
// dvrflow's narrow rows. A reference to a row inserted by the same transaction is its
// named UUID (an identifier such as new_port_2), anything else a real UUID.

// whereName selects the row of that name.
func whereName(name string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}}
}

// whereUUID selects the row with that UUID (found directly, no scan).
func whereUUID(uuid string) []ovsdb.Condition {
	return []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionEqual, Value: ovsdb.UUID{GoUUID: uuid}}}
}

// insertOp inserts row into table under the named UUID uuidName.
func insertOp(table, uuidName string, row ovsdb.Row) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationInsert, Table: table, UUIDName: uuidName, Row: row}
}

// updateOp sets the row's columns in the rows where selects.
func updateOp(table string, where []ovsdb.Condition, row ovsdb.Row) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationUpdate, Table: table, Where: where, Row: row}
}

// mutateOp applies one mutation to a column of the rows where selects.
func mutateOp(table string, where []ovsdb.Condition, column string, mutator ovsdb.Mutator, value any) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationMutate, Table: table, Where: where,
		Mutations: []ovsdb.Mutation{{Column: column, Mutator: mutator, Value: value}}}
}

// deleteOp deletes the rows where selects.
func deleteOp(table string, where []ovsdb.Condition) ovsdb.Operation {
	return ovsdb.Operation{Op: ovsdb.OperationDelete, Table: table, Where: where}
}

// uuids is a set of row references.
func uuids(refs ...string) ovsdb.OvsSet {
	set := make([]any, len(refs))
	for i, r := range refs {
		set[i] = ovsdb.UUID{GoUUID: r}
	}
	return ovsdb.OvsSet{GoSet: set}
}

// stringsSet is a set of strings.
func stringsSet(values []string) ovsdb.OvsSet {
	set := make([]any, len(values))
	for i, v := range values {
		set[i] = v
	}
	return ovsdb.OvsSet{GoSet: set}
}

// optional is a set of at most one value: empty for nil.
func optional[T any](v *T) ovsdb.OvsSet {
	if v == nil {
		return ovsdb.OvsSet{GoSet: []any{}}
	}
	return ovsdb.OvsSet{GoSet: []any{*v}}
}

// stringMapValue is a map of strings (appendTransact writes its keys sorted).
func stringMapValue(m map[string]string) ovsdb.OvsMap {
	out := ovsdb.OvsMap{GoMap: make(map[any]any, len(m))}
	for k, v := range m {
		out.GoMap[k] = v
	}
	return out
}

// tableRefs is Bridge.flow_tables: table number → Flow_Table reference.
func tableRefs(m map[int]string) ovsdb.OvsMap {
	out := ovsdb.OvsMap{GoMap: make(map[any]any, len(m))}
	for k, v := range m {
		out.GoMap[k] = ovsdb.UUID{GoUUID: v}
	}
	return out
}

// insertBridge inserts a new bridge under its named UUID.
func insertBridge(b *vswitchd.Bridge) ovsdb.Operation {
	row := ovsdb.Row{
		"name":         b.Name,
		"ports":        uuids(b.Ports...),
		"protocols":    stringsSet(b.Protocols),
		"other_config": stringMapValue(b.OtherConfig),
	}
	if b.DatapathType != "" {
		row["datapath_type"] = b.DatapathType
	}
	if b.FailMode != nil {
		row["fail_mode"] = string(*b.FailMode)
	}
	if len(b.FlowTables) > 0 {
		row["flow_tables"] = tableRefs(b.FlowTables)
	}
	return insertOp(vswitchd.BridgeTable, b.UUID, row)
}

// insertPort inserts a new port under its named UUID.
func insertPort(p *vswitchd.Port) ovsdb.Operation {
	row := ovsdb.Row{"name": p.Name, "interfaces": uuids(p.Interfaces...)}
	if p.Tag != nil {
		row["tag"] = *p.Tag
	}
	return insertOp(vswitchd.PortTable, p.UUID, row)
}

// insertInterface inserts a new interface under its named UUID.
func insertInterface(i *vswitchd.Interface) ovsdb.Operation {
	row := ovsdb.Row{"name": i.Name}
	if i.Type != "" {
		row["type"] = i.Type
	}
	if len(i.Options) > 0 {
		row["options"] = stringMapValue(i.Options)
	}
	if len(i.ExternalIDs) > 0 {
		row["external_ids"] = stringMapValue(i.ExternalIDs)
	}
	if i.OfportRequest != nil {
		row["ofport_request"] = *i.OfportRequest
	}
	return insertOp(vswitchd.InterfaceTable, i.UUID, row)
}

// insertFlowTable inserts a new Flow_Table row under its named UUID.
func insertFlowTable(ft *vswitchd.FlowTable) ovsdb.Operation {
	row := ovsdb.Row{}
	if ft.Name != nil {
		row["name"] = *ft.Name
	}
	return insertOp(vswitchd.FlowTableTable, ft.UUID, row)
}

// portTagRow is the update of a port's VLAN settings Neutron makes: the tag (none for 0),
// and vlan_mode and trunks cleared.
func portTagRow(tag int) ovsdb.Row {
	var t *int
	if tag > 0 {
		t = &tag
	}
	return ovsdb.Row{"tag": optional(t), "vlan_mode": optional[string](nil), "trunks": ovsdb.OvsSet{GoSet: []any{}}}
}
