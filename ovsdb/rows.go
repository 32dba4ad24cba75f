package ovsdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// The monitored tables and columns: those dvrflow reads. Columns it only writes
// (Port.vlan_mode and trunks, Interface.ofport_request) are not monitored.
var monitored = map[string][]string{
	vswitchd.OpenvSwitchTable: {"bridges", "next_cfg", "cur_cfg"},
	vswitchd.BridgeTable:      {"name", "ports", "datapath_type", "fail_mode", "protocols", "other_config", "flow_tables"},
	vswitchd.PortTable:        {"name", "interfaces", "tag"},
	vswitchd.InterfaceTable:   {"name", "type", "ofport", "error", "external_ids", "options"},
	vswitchd.FlowTableTable:   {"name"},
}

// monitorRequests is the third parameter of the monitor request (RFC 7047 section 4.1.5):
// every monitored table's columns, with the initial contents and every change.
func monitorRequests() map[string]any {
	req := make(map[string]any, len(monitored))
	for table, cols := range monitored {
		req[table] = map[string]any{"columns": cols}
	}
	return req
}

// rows is the client's copy of the monitored tables, by row UUID, with the name indexes.
// Rows are never modified once stored (an update stores a new row), so a row read under
// the lock may be kept after it.
type rows struct {
	root       map[string]*vswitchd.OpenvSwitch
	bridges    map[string]*vswitchd.Bridge
	ports      map[string]*vswitchd.Port
	ifaces     map[string]*vswitchd.Interface
	flowTables map[string]*vswitchd.FlowTable

	bridgeByName map[string]string
	portByName   map[string]string
	ifaceByName  map[string]string
}

func newRows() *rows {
	return &rows{
		root:         map[string]*vswitchd.OpenvSwitch{},
		bridges:      map[string]*vswitchd.Bridge{},
		ports:        map[string]*vswitchd.Port{},
		ifaces:       map[string]*vswitchd.Interface{},
		flowTables:   map[string]*vswitchd.FlowTable{},
		bridgeByName: map[string]string{},
		portByName:   map[string]string{},
		ifaceByName:  map[string]string{},
	}
}

// bridge returns the bridge of that name, nil if none.
func (r *rows) bridge(name string) *vswitchd.Bridge { return r.bridges[r.bridgeByName[name]] }

// port returns the port of that name, nil if none.
func (r *rows) port(name string) *vswitchd.Port { return r.ports[r.portByName[name]] }

// iface returns the interface of that name, nil if none.
func (r *rows) iface(name string) *vswitchd.Interface { return r.ifaces[r.ifaceByName[name]] }

// portBridge returns the name of the bridge whose ports include portUUID, "" if none.
func (r *rows) portBridge(portUUID string) string {
	for _, b := range r.bridges {
		if slices.Contains(b.Ports, portUUID) {
			return b.Name
		}
	}
	return ""
}

// interfaceBridges maps Interface UUID → name of the bridge holding its port.
func (r *rows) interfaceBridges() map[string]string {
	portBridge := map[string]string{}
	for _, b := range r.bridges {
		for _, p := range b.Ports {
			portBridge[p] = b.Name
		}
	}
	ifaceBridge := make(map[string]string, len(r.ifaces))
	for uuid, p := range r.ports {
		for _, i := range p.Interfaces {
			ifaceBridge[i] = portBridge[uuid]
		}
	}
	return ifaceBridge
}

// tableUpdates is a monitor reply or update notification (RFC 7047 section 4.1.6) of the
// monitored tables: per row UUID, the row's new contents (every monitored column), or no
// "new" when the row was deleted. "old" is not needed and skipped.
type tableUpdates struct {
	Root       map[string]rowUpdate[rootRow]      `json:"Open_vSwitch"`
	Bridges    map[string]rowUpdate[bridgeRow]    `json:"Bridge"`
	Ports      map[string]rowUpdate[portRow]      `json:"Port"`
	Ifaces     map[string]rowUpdate[ifaceRow]     `json:"Interface"`
	FlowTables map[string]rowUpdate[flowTableRow] `json:"Flow_Table"`
}

type rowUpdate[T any] struct {
	New *T `json:"new"`
}

// The rows as ovsdb-server sends them, one field per monitored column.
type (
	rootRow struct {
		Bridges uuidSet `json:"bridges"`
		NextCfg int     `json:"next_cfg"`
		CurCfg  int     `json:"cur_cfg"`
	}
	bridgeRow struct {
		Name         string     `json:"name"`
		Ports        uuidSet    `json:"ports"`
		DatapathType string     `json:"datapath_type"`
		FailMode     optString  `json:"fail_mode"`
		Protocols    stringSet  `json:"protocols"`
		OtherConfig  stringMap  `json:"other_config"`
		FlowTables   intUUIDMap `json:"flow_tables"`
	}
	portRow struct {
		Name       string  `json:"name"`
		Interfaces uuidSet `json:"interfaces"`
		Tag        optInt  `json:"tag"`
	}
	ifaceRow struct {
		Name        string    `json:"name"`
		Type        string    `json:"type"`
		Ofport      optInt    `json:"ofport"`
		Error       optString `json:"error"`
		ExternalIDs stringMap `json:"external_ids"`
		Options     stringMap `json:"options"`
	}
	flowTableRow struct {
		Name optString `json:"name"`
	}
)

// apply stores the updates and reports which tables changed, and whether an Open_vSwitch
// row was added.
func (r *rows) apply(u *tableUpdates) (changed []string, rootAdded bool) {
	if len(u.Root) > 0 {
		changed = append(changed, vswitchd.OpenvSwitchTable)
		for uuid, up := range u.Root {
			if up.New == nil {
				delete(r.root, uuid)
				continue
			}
			if r.root[uuid] == nil {
				rootAdded = true
			}
			r.root[uuid] = &vswitchd.OpenvSwitch{UUID: uuid, Bridges: up.New.Bridges, NextCfg: up.New.NextCfg, CurCfg: up.New.CurCfg}
		}
	}
	if len(u.Bridges) > 0 {
		changed = append(changed, vswitchd.BridgeTable)
		for uuid, up := range u.Bridges {
			var row *vswitchd.Bridge
			if n := up.New; n != nil {
				row = &vswitchd.Bridge{UUID: uuid, Name: n.Name, Ports: n.Ports, DatapathType: n.DatapathType,
					Protocols: n.Protocols, OtherConfig: n.OtherConfig,
					FlowTables: n.FlowTables}
				if n.FailMode.p != nil {
					mode := vswitchd.BridgeFailMode(*n.FailMode.p)
					row.FailMode = &mode
				}
			}
			store(r.bridges, r.bridgeByName, uuid, row, func(b *vswitchd.Bridge) string { return b.Name })
		}
	}
	if len(u.Ports) > 0 {
		changed = append(changed, vswitchd.PortTable)
		for uuid, up := range u.Ports {
			var row *vswitchd.Port
			if n := up.New; n != nil {
				row = &vswitchd.Port{UUID: uuid, Name: n.Name, Interfaces: n.Interfaces, Tag: n.Tag.p}
			}
			store(r.ports, r.portByName, uuid, row, func(p *vswitchd.Port) string { return p.Name })
		}
	}
	if len(u.Ifaces) > 0 {
		changed = append(changed, vswitchd.InterfaceTable)
		for uuid, up := range u.Ifaces {
			var row *vswitchd.Interface
			if n := up.New; n != nil {
				row = &vswitchd.Interface{UUID: uuid, Name: n.Name, Type: n.Type, Ofport: n.Ofport.p, Error: n.Error.p,
					ExternalIDs: n.ExternalIDs, Options: n.Options}
			}
			store(r.ifaces, r.ifaceByName, uuid, row, func(i *vswitchd.Interface) string { return i.Name })
		}
	}
	if len(u.FlowTables) > 0 {
		changed = append(changed, vswitchd.FlowTableTable)
		for uuid, up := range u.FlowTables {
			if up.New == nil {
				delete(r.flowTables, uuid)
				continue
			}
			r.flowTables[uuid] = &vswitchd.FlowTable{UUID: uuid, Name: up.New.Name.p}
		}
	}
	return changed, rootAdded
}

// store puts row (nil: deletes the row) into a table and keeps its name index right.
func store[T any](table map[string]*T, byName map[string]string, uuid string, row *T, name func(*T) string) {
	if old := table[uuid]; old != nil {
		if n := name(old); byName[n] == uuid {
			delete(byName, n)
		}
	}
	if row == nil {
		delete(table, uuid)
		return
	}
	table[uuid] = row
	byName[name(row)] = uuid
}

// OVSDB's JSON notation for the column types dvrflow reads (RFC 7047 section 5.1): a set
// of one element may be sent as the bare atom, a set of none or several as
// ["set",[...]], a map as ["map",[[key,value],...]], a UUID as ["uuid","..."].

// tagged splits ["tag",value] and checks the tag.
func tagged(b []byte, want string) (json.RawMessage, error) {
	var pair [2]json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return nil, err
	}
	var tag string
	if err := json.Unmarshal(pair[0], &tag); err != nil || tag != want {
		return nil, fmt.Errorf("want [%q, ...], got %.40s", want, b)
	}
	return pair[1], nil
}

// isArray reports whether the JSON value b is an array (a set, map or UUID) rather than
// an atom.
func isArray(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '['
}

// atomUUID decodes ["uuid","..."].
func atomUUID(b []byte) (string, error) {
	v, err := tagged(b, "uuid")
	if err != nil {
		return "", err
	}
	var s string
	err = json.Unmarshal(v, &s)
	return s, err
}

// setElems returns a set's elements: the atom itself, or the members of ["set",[...]].
func setElems(b []byte) ([]json.RawMessage, error) {
	if isArray(b) {
		var first [1]json.RawMessage
		if err := json.Unmarshal(b, &first); err == nil && bytes.Equal(bytes.TrimSpace(first[0]), []byte(`"set"`)) {
			v, err := tagged(b, "set")
			if err != nil {
				return nil, err
			}
			var elems []json.RawMessage
			err = json.Unmarshal(v, &elems)
			return elems, err
		}
	}
	return []json.RawMessage{b}, nil // a bare atom (a UUID is an array too)
}

// uuidSet is a set of UUIDs (references).
type uuidSet []string

func (s *uuidSet) UnmarshalJSON(b []byte) error {
	elems, err := setElems(b)
	if err != nil {
		return fmt.Errorf("uuid set: %w", err)
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		u, err := atomUUID(e)
		if err != nil {
			return fmt.Errorf("uuid set: %w", err)
		}
		out = append(out, u)
	}
	*s = out
	return nil
}

// stringSet is a set of strings.
type stringSet []string

func (s *stringSet) UnmarshalJSON(b []byte) error {
	if !isArray(b) {
		var one string
		if err := json.Unmarshal(b, &one); err != nil {
			return fmt.Errorf("string set: %w", err)
		}
		*s = []string{one}
		return nil
	}
	v, err := tagged(b, "set")
	if err != nil {
		return fmt.Errorf("string set: %w", err)
	}
	var out []string
	if err := json.Unmarshal(v, &out); err != nil {
		return fmt.Errorf("string set: %w", err)
	}
	*s = out
	return nil
}

// optString is an optional string (a set of at most one); p is nil when empty.
type optString struct{ p *string }

func (o *optString) UnmarshalJSON(b []byte) (err error) {
	o.p, err = decodeOptString(b)
	if err != nil {
		return fmt.Errorf("optional string: %w", err)
	}
	return nil
}

// optInt is an optional integer (a set of at most one); p is nil when empty.
type optInt struct{ p *int }

func (o *optInt) UnmarshalJSON(b []byte) (err error) {
	o.p, err = decodeOptInt(b)
	if err != nil {
		return fmt.Errorf("optional integer: %w", err)
	}
	return nil
}

func decodeOptString(b []byte) (*string, error) {
	if !isArray(b) {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return nil, err
		}
		return &s, nil
	}
	v, err := tagged(b, "set")
	if err != nil {
		return nil, err
	}
	var out []string
	if err := json.Unmarshal(v, &out); err != nil || len(out) > 1 {
		return nil, fmt.Errorf("optional string: %.40s", b)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &out[0], nil
}

func decodeOptInt(b []byte) (*int, error) {
	if !isArray(b) {
		var n int
		if err := json.Unmarshal(b, &n); err != nil {
			return nil, err
		}
		return &n, nil
	}
	v, err := tagged(b, "set")
	if err != nil {
		return nil, err
	}
	var out []int
	if err := json.Unmarshal(v, &out); err != nil || len(out) > 1 {
		return nil, fmt.Errorf("optional integer: %.40s", b)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &out[0], nil
}

// stringMap is a map of strings to strings.
type stringMap map[string]string

func (m *stringMap) UnmarshalJSON(b []byte) error {
	v, err := tagged(b, "map")
	if err != nil {
		return fmt.Errorf("string map: %w", err)
	}
	var pairs [][2]string
	if err := json.Unmarshal(v, &pairs); err != nil {
		return fmt.Errorf("string map: %w", err)
	}
	if len(pairs) == 0 {
		*m = nil
		return nil
	}
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		out[p[0]] = p[1]
	}
	*m = out
	return nil
}

// intUUIDMap is a map of integers to UUIDs (Bridge.flow_tables).
type intUUIDMap map[int]string

func (m *intUUIDMap) UnmarshalJSON(b []byte) error {
	v, err := tagged(b, "map")
	if err != nil {
		return fmt.Errorf("integer-uuid map: %w", err)
	}
	var pairs [][2]json.RawMessage
	if err := json.Unmarshal(v, &pairs); err != nil {
		return fmt.Errorf("integer-uuid map: %w", err)
	}
	if len(pairs) == 0 {
		*m = nil
		return nil
	}
	out := make(map[int]string, len(pairs))
	for _, p := range pairs {
		var k int
		if err := json.Unmarshal(p[0], &k); err != nil {
			return fmt.Errorf("integer-uuid map key: %w", err)
		}
		u, err := atomUUID(p[1])
		if err != nil {
			return fmt.Errorf("integer-uuid map value: %w", err)
		}
		out[k] = u
	}
	*m = out
	return nil
}
