package ovsdb

import (
	"encoding/json"
	"reflect"
	"sort"
	"testing"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// The hand-written encoder writes what json.Marshal of libovsdb's wire types writes, for
// every kind of operation and value dvrflow builds.
func TestAppendTransactMatchesLibovsdb(t *testing.T) {
	const uuid = "0b1f3a10-0000-4000-8000-00000000000a"
	tag := 7
	ft := "LOCAL_SWITCHING"
	ops := []ovsdb.Operation{
		guard(vswitchd.BridgeTable, "br-int", true),
		guardRow(vswitchd.PortTable, uuid, `odd "name" \ with é and a tab	here`),
		insertInterface(&vswitchd.Interface{UUID: "new_iface_1", Name: "tap1", Type: "patch",
			Options: map[string]string{"peer": "x"}, ExternalIDs: map[string]string{"iface-id": "p1", "attached-mac": "m"}}),
		insertPort(&vswitchd.Port{UUID: "new_port_2", Name: "tap1", Interfaces: []string{"new_iface_1"}, Tag: &tag}),
		insertFlowTable(&vswitchd.FlowTable{UUID: "new_table_3", Name: &ft}),
		insertBridge(&vswitchd.Bridge{UUID: "new_bridge_4", Name: "br-int", Ports: []string{"new_port_2", uuid},
			Protocols: []string{"OpenFlow10", "OpenFlow13"}, OtherConfig: map[string]string{"disable-in-band": "true"},
			FlowTables: map[int]string{0: "new_table_3", 60: uuid}}),
		updateOp(vswitchd.PortTable, whereUUID(uuid), portTagRow(5)),
		updateOp(vswitchd.PortTable, whereName("tap1"), portTagRow(0)),
		mutateOp(vswitchd.BridgeTable, whereName("br-int"), "ports", ovsdb.MutateOperationInsert, uuids("new_port_2")),
		mutateOp(vswitchd.BridgeTable, whereName("br-int"), "other_config", ovsdb.MutateOperationDelete, stringsSet([]string{"a", "b"})),
		mutateOp(vswitchd.OpenvSwitchTable, whereUUID(uuid), "next_cfg", ovsdb.MutateOperationAdd, 1),
		deleteOp(vswitchd.PortTable, whereUUID(uuid)),
		{Op: ovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Columns: []string{"next_cfg"}},
	}
	got, err := appendTransact(nil, ops)
	if err != nil {
		t.Fatal(err)
	}
	params := []any{"Open_vSwitch"}
	for _, op := range ops {
		params = append(params, op)
	}
	want, err := json.Marshal(params)
	if err != nil {
		t.Fatal(err)
	}
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, got)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(normalize(g), normalize(w)) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

// normalize sorts the pairs of every ["map", pairs], which libovsdb writes in Go's random
// map order.
func normalize(v any) any {
	switch v := v.(type) {
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		if len(out) == 2 && out[0] == "map" {
			if pairs, ok := out[1].([]any); ok {
				sort.Slice(pairs, func(i, j int) bool {
					a, _ := json.Marshal(pairs[i])
					b, _ := json.Marshal(pairs[j])
					return string(a) < string(b)
				})
			}
		}
		return out
	case map[string]any:
		out := map[string]any{}
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}

func TestIsUUID(t *testing.T) {
	for s, want := range map[string]bool{
		"0b1f3a10-0000-4000-8000-00000000000a": true,
		"0B1F3A10-0000-4000-8000-00000000000A": true,
		"new_port_2":                           false,
		"0b1f3a10-0000-4000-8000-00000000000g": false,
		"0b1f3a10x0000-4000-8000-00000000000a": false,
		"0b1f3a10-0000-4000-8000-00000000000":  false,
	} {
		if got := isUUID(s); got != want {
			t.Errorf("isUUID(%q) = %v", s, got)
		}
	}
}
