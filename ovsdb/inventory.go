package ovsdb

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
)

// Inventory is a read-only picture of a node's switch: every bridge with its ports and
// interfaces and its named flow tables. The CLI reads it once, from a live ovsdb-server
// (ReadInventory: one select transaction, no monitor, no write) or from a dump attached to
// a bug report (ParseInventoryDump: `ovsdb-client dump -f json`).
type Inventory struct {
	Bridges []InventoryBridge
}

// InventoryBridge is one bridge.
type InventoryBridge struct {
	Name string
	// Tables maps a table number to the name in its Flow_Table row.
	Tables map[uint8]string
	Ports  []InventoryPort
}

// InventoryPort is one port with its (first) interface.
type InventoryPort struct {
	Name string
	// Tag is the port's VLAN tag; 0 when untagged.
	Tag int
	// OtherConfig is the Port's other_config (Neutron's agent keeps net_uuid,
	// network_type, physical_network, segmentation_id and tag there).
	OtherConfig map[string]string
	// Interface columns.
	Type        string
	Ofport      int
	Options     map[string]string
	ExternalIDs map[string]string
}

// IfaceID is the Neutron port id the interface is bound to (external_ids:iface-id).
func (p InventoryPort) IfaceID() string { return p.ExternalIDs["iface-id"] }

// AttachedMAC is the VM's MAC (external_ids:attached-mac).
func (p InventoryPort) AttachedMAC() string { return p.ExternalIDs["attached-mac"] }

// Bridge returns the bridge of that name.
func (inv *Inventory) Bridge(name string) (*InventoryBridge, bool) {
	for i := range inv.Bridges {
		if inv.Bridges[i].Name == name {
			return &inv.Bridges[i], true
		}
	}
	return nil, false
}

// Port returns the bridge's port with that ofport.
func (b *InventoryBridge) PortByOfport(ofport int) (*InventoryPort, bool) {
	for i := range b.Ports {
		if b.Ports[i].Ofport == ofport {
			return &b.Ports[i], true
		}
	}
	return nil, false
}

// Port returns the bridge's port of that name.
func (b *InventoryBridge) Port(name string) (*InventoryPort, bool) {
	for i := range b.Ports {
		if b.Ports[i].Name == name {
			return &b.Ports[i], true
		}
	}
	return nil, false
}

// inventoryColumns are the columns read, per table.
var inventoryColumns = map[string][]string{
	"Bridge":     {"_uuid", "name", "ports", "flow_tables"},
	"Port":       {"_uuid", "name", "interfaces", "tag", "other_config"},
	"Interface":  {"_uuid", "name", "type", "ofport", "options", "external_ids"},
	"Flow_Table": {"_uuid", "name"},
}

// ReadInventory reads the inventory from the ovsdb-server at endpoint ("unix:PATH" or
// "tcp:HOST:PORT") in one read-only transaction.
func ReadInventory(ctx context.Context, endpoint string) (*Inventory, error) {
	conn, err := dialRPC(ctx, endpoint, nil)
	if err != nil {
		return nil, fmt.Errorf("ovsdb %s: %w", endpoint, err)
	}
	defer conn.close()
	tables := []string{"Bridge", "Port", "Interface", "Flow_Table"}
	params := []any{"Open_vSwitch"}
	for _, t := range tables {
		params = append(params, map[string]any{"op": "select", "table": t, "where": []any{}, "columns": inventoryColumns[t]})
	}
	var results []struct {
		Rows  []map[string]json.RawMessage `json:"rows"`
		Error string                       `json:"error"`
	}
	err = conn.call(ctx, "transact", params, func(raw json.RawMessage) error { return json.Unmarshal(raw, &results) })
	if err != nil {
		return nil, fmt.Errorf("ovsdb %s: read the inventory: %w", endpoint, err)
	}
	if len(results) != len(tables) {
		return nil, fmt.Errorf("ovsdb %s: %d results for %d selects", endpoint, len(results), len(tables))
	}
	byTable := map[string][]map[string]json.RawMessage{}
	for i, t := range tables {
		if results[i].Error != "" {
			return nil, fmt.Errorf("ovsdb %s: select %s: %s", endpoint, t, results[i].Error)
		}
		byTable[t] = results[i].Rows
	}
	return buildInventory(byTable)
}

// ParseInventoryDump reads `ovsdb-client dump -f json` output (every table of the
// Open_vSwitch database, or at least Bridge, Port and Interface).
func ParseInventoryDump(r io.Reader) (*Inventory, error) {
	// ovsdb-client prints one JSON object per table; accept an array of them too.
	type dumpedTable struct {
		Caption  string              `json:"caption"`
		Headings []string            `json:"headings"`
		Data     [][]json.RawMessage `json:"data"`
	}
	var dump []dumpedTable
	dec := json.NewDecoder(r)
	for {
		var raw json.RawMessage
		if err := dec.Decode(&raw); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("ovsdb-client dump: %w", err)
		}
		if trimmed := strings.TrimSpace(string(raw)); strings.HasPrefix(trimmed, "[") {
			var tables []dumpedTable
			if err := json.Unmarshal(raw, &tables); err != nil {
				return nil, fmt.Errorf("ovsdb-client dump: %w", err)
			}
			dump = append(dump, tables...)
			continue
		}
		var t dumpedTable
		if err := json.Unmarshal(raw, &t); err != nil {
			return nil, fmt.Errorf("ovsdb-client dump: %w", err)
		}
		dump = append(dump, t)
	}
	byTable := map[string][]map[string]json.RawMessage{}
	for _, t := range dump {
		name := strings.TrimSuffix(t.Caption, " table")
		for _, row := range t.Data {
			if len(row) != len(t.Headings) {
				return nil, fmt.Errorf("ovsdb-client dump: table %s: a row of %d values for %d headings", name, len(row), len(t.Headings))
			}
			m := make(map[string]json.RawMessage, len(row))
			for i, h := range t.Headings {
				m[h] = row[i]
			}
			byTable[name] = append(byTable[name], m)
		}
	}
	for _, t := range []string{"Bridge", "Port", "Interface"} {
		if _, ok := byTable[t]; !ok {
			return nil, fmt.Errorf("ovsdb-client dump: no %s table", t)
		}
	}
	return buildInventory(byTable)
}

// buildInventory links the rows of the four tables.
func buildInventory(rows map[string][]map[string]json.RawMessage) (*Inventory, error) {
	type ifaceRow struct {
		name, typ     string
		ofport        int
		options, extz map[string]string
	}
	ifaces := map[string]ifaceRow{}
	for _, r := range rows["Interface"] {
		var v ifaceRow
		var err error
		uuid, err := uuidValue(r["_uuid"])
		if err == nil {
			v.name, err = stringValue(r["name"])
		}
		if err == nil {
			v.typ, err = stringValue(r["type"])
		}
		if err == nil {
			v.ofport, err = optionalInt(r["ofport"])
		}
		if err == nil {
			v.options, err = mapValue(r["options"])
		}
		if err == nil {
			v.extz, err = mapValue(r["external_ids"])
		}
		if err != nil {
			return nil, fmt.Errorf("Interface %s: %w", v.name, err)
		}
		ifaces[uuid] = v
	}
	ports := map[string]InventoryPort{}
	for _, r := range rows["Port"] {
		var p InventoryPort
		uuid, err := uuidValue(r["_uuid"])
		if err == nil {
			p.Name, err = stringValue(r["name"])
		}
		if err == nil {
			p.Tag, err = optionalInt(r["tag"])
		}
		if err == nil {
			p.OtherConfig, err = mapValue(r["other_config"])
		}
		var ifs []string
		if err == nil {
			ifs, err = uuidSet(r["interfaces"])
		}
		if err != nil {
			return nil, fmt.Errorf("Port %s: %w", p.Name, err)
		}
		sort.Strings(ifs)
		for _, id := range ifs {
			if i, ok := ifaces[id]; ok {
				p.Type, p.Ofport, p.Options, p.ExternalIDs = i.typ, i.ofport, i.options, i.extz
				if i.name == p.Name {
					break
				}
			}
		}
		ports[uuid] = p
	}
	tableNames := map[string]string{}
	for _, r := range rows["Flow_Table"] {
		uuid, err := uuidValue(r["_uuid"])
		if err != nil {
			return nil, fmt.Errorf("Flow_Table: %w", err)
		}
		if name, err := optionalString(r["name"]); err == nil {
			tableNames[uuid] = name
		}
	}
	inv := &Inventory{}
	for _, r := range rows["Bridge"] {
		var b InventoryBridge
		var err error
		b.Name, err = stringValue(r["name"])
		var portIDs []string
		if err == nil {
			portIDs, err = uuidSet(r["ports"])
		}
		var tables map[string]string
		if err == nil && r["flow_tables"] != nil {
			tables, err = mapRefs(r["flow_tables"])
		}
		if err != nil {
			return nil, fmt.Errorf("Bridge %s: %w", b.Name, err)
		}
		b.Tables = map[uint8]string{}
		for k, ref := range tables {
			n, err := strconv.Atoi(k)
			if err != nil || n < 0 || n > 254 {
				return nil, fmt.Errorf("Bridge %s: flow_tables key %q", b.Name, k)
			}
			if name := tableNames[ref]; name != "" {
				b.Tables[uint8(n)] = name
			}
		}
		for _, id := range portIDs {
			if p, ok := ports[id]; ok {
				b.Ports = append(b.Ports, p)
			}
		}
		sort.Slice(b.Ports, func(i, j int) bool { return b.Ports[i].Name < b.Ports[j].Name })
		inv.Bridges = append(inv.Bridges, b)
	}
	sort.Slice(inv.Bridges, func(i, j int) bool { return inv.Bridges[i].Name < inv.Bridges[j].Name })
	return inv, nil
}

// OVSDB's JSON notation (RFC 7047 section 5.1): atoms, ["uuid", U], ["set", [...]],
// ["map", [[k, v], ...]]; an optional value is an empty set when absent.

func stringValue(raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", fmt.Errorf("want a string, have %s", raw)
	}
	return s, nil
}

func optionalString(raw json.RawMessage) (string, error) {
	if s, err := stringValue(raw); err == nil {
		return s, nil
	}
	if isEmptySet(raw) {
		return "", nil
	}
	return "", fmt.Errorf("want an optional string, have %s", raw)
}

func optionalInt(raw json.RawMessage) (int, error) {
	if raw == nil {
		return 0, nil
	}
	var n int
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	if isEmptySet(raw) {
		return 0, nil
	}
	return 0, fmt.Errorf("want an optional integer, have %s", raw)
}

func isEmptySet(raw json.RawMessage) bool {
	var tagged []json.RawMessage
	if json.Unmarshal(raw, &tagged) != nil || len(tagged) != 2 {
		return false
	}
	var tag string
	var elems []json.RawMessage
	return json.Unmarshal(tagged[0], &tag) == nil && tag == "set" && json.Unmarshal(tagged[1], &elems) == nil && len(elems) == 0
}

func uuidValue(raw json.RawMessage) (string, error) {
	var pair [2]string
	if err := json.Unmarshal(raw, &pair); err != nil || (pair[0] != "uuid" && pair[0] != "named-uuid") {
		return "", fmt.Errorf("want [\"uuid\", U], have %s", raw)
	}
	return pair[1], nil
}

// uuidSet reads a set of UUIDs (a single ["uuid", U] is a set of one).
func uuidSet(raw json.RawMessage) ([]string, error) {
	if u, err := uuidValue(raw); err == nil {
		return []string{u}, nil
	}
	var tagged []json.RawMessage
	var tag string
	if json.Unmarshal(raw, &tagged) != nil || len(tagged) != 2 || json.Unmarshal(tagged[0], &tag) != nil || tag != "set" {
		return nil, fmt.Errorf("want a set of UUIDs, have %s", raw)
	}
	var elems []json.RawMessage
	if err := json.Unmarshal(tagged[1], &elems); err != nil {
		return nil, fmt.Errorf("want a set of UUIDs, have %s", raw)
	}
	out := make([]string, 0, len(elems))
	for _, e := range elems {
		u, err := uuidValue(e)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// mapPairs reads ["map", [[k, v], ...]] into its raw pairs.
func mapPairs(raw json.RawMessage) ([][2]json.RawMessage, error) {
	if raw == nil {
		return nil, nil
	}
	var tagged []json.RawMessage
	var tag string
	if json.Unmarshal(raw, &tagged) != nil || len(tagged) != 2 || json.Unmarshal(tagged[0], &tag) != nil || tag != "map" {
		return nil, fmt.Errorf("want a map, have %s", raw)
	}
	var pairs [][2]json.RawMessage
	if err := json.Unmarshal(tagged[1], &pairs); err != nil {
		return nil, fmt.Errorf("want a map, have %s", raw)
	}
	return pairs, nil
}

func mapValue(raw json.RawMessage) (map[string]string, error) {
	pairs, err := mapPairs(raw)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, err := stringValue(p[0])
		if err != nil {
			return nil, err
		}
		v, err := stringValue(p[1])
		if err != nil {
			return nil, err
		}
		m[k] = v
	}
	return m, nil
}

// mapRefs reads a map from integers to UUIDs (Bridge.flow_tables), keys as decimal text.
func mapRefs(raw json.RawMessage) (map[string]string, error) {
	pairs, err := mapPairs(raw)
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(pairs))
	for _, p := range pairs {
		var k int
		if err := json.Unmarshal(p[0], &k); err != nil {
			return nil, fmt.Errorf("want an integer key, have %s", p[0])
		}
		v, err := uuidValue(p[1])
		if err != nil {
			return nil, err
		}
		m[strconv.Itoa(k)] = v
	}
	return m, nil
}
