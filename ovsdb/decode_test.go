package ovsdb

import (
	"encoding/json"
	"reflect"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// The notations ovsdb-server uses for each column type, including the forms a generic
// decoder gets wrong: a set of one sent as the bare atom, empty sets and maps, escapes.
func TestDecodeUpdates(t *testing.T) {
	const (
		u1 = "0b1f3a10-0000-4000-8000-000000000001"
		u2 = "0b1f3a10-0000-4000-8000-000000000002"
	)
	tests := []struct {
		name string
		in   string
		want tableUpdates
	}{
		{
			name: "interface with every column",
			in: `{"Interface":{"` + u1 + `":{"new":{"name":"tap\"1\\x\u00e9","type":"","ofport":7,"error":["set",[]],
				"external_ids":["map",[["iface-id","p1"],["attached-mac","fa:16:3e:00:00:01"]]],"options":["map",[]]}}}}`,
			want: tableUpdates{Ifaces: map[string]rowUpdate[ifaceRow]{u1: {New: &ifaceRow{
				Name: "tap\"1\\x\u00e9", Ofport: 7,
				ExternalIDs: pairs{"iface-id", "p1", "attached-mac", "fa:16:3e:00:00:01"}}}}},
		},
		{
			name: "optional values present, as sets and as atoms",
			in: `{"Interface":{"` + u1 + `":{"new":{"name":"a","ofport":["set",[-1]],"error":"could not open"}}},
				"Port":{"` + u2 + `":{"new":{"name":"a","interfaces":["uuid","` + u1 + `"],"tag":["set",[4095]]}}}}`,
			want: tableUpdates{
				Ifaces: map[string]rowUpdate[ifaceRow]{u1: {New: &ifaceRow{Name: "a", Ofport: -1, Error: "could not open"}}},
				Ports:  map[string]rowUpdate[portRow]{u2: {New: &portRow{Name: "a", Interfaces: []string{u1}, Tag: ptr(4095)}}},
			},
		},
		{
			name: "bridge: sets of several, a map to uuids, old rows and unknown columns skipped",
			in: `{"Bridge":{"` + u1 + `":{"old":{"ports":["set",[]],"x":{"a":[1,2.5e3,true,null]}},"new":{"name":"br-int",
				"ports":["set",[["uuid","` + u1 + `"],["uuid","` + u2 + `"]]],"datapath_type":"netdev","fail_mode":"secure",
				"protocols":["set",["OpenFlow10","OpenFlow13"]],"other_config":["map",[["disable-in-band","true"]]],
				"flow_tables":["map",[[0,["uuid","` + u2 + `"]],[60,["uuid","` + u1 + `"]]]],"unknown":["set",[1,2]]}}},
				"Open_vSwitch":{"` + u2 + `":{"new":{"bridges":["uuid","` + u1 + `"],"next_cfg":12,"cur_cfg":11}}},
				"Flow_Table":{"` + u2 + `":{"new":{"name":"LOCAL_SWITCHING"}},"` + u1 + `":{"new":{"name":["set",[]]}}},
				"SSL":{"` + u1 + `":{"new":{"key":"v"}}}}`,
			want: tableUpdates{
				Bridges: map[string]rowUpdate[bridgeRow]{u1: {New: &bridgeRow{Name: "br-int", Ports: []string{u1, u2},
					DatapathType: "netdev", FailMode: ptr("secure"), Protocols: []string{"OpenFlow10", "OpenFlow13"},
					OtherConfig: map[string]string{"disable-in-band": "true"}, FlowTables: map[int]string{0: u2, 60: u1}}}},
				Root: map[string]rowUpdate[rootRow]{u2: {New: &rootRow{Bridges: []string{u1}, NextCfg: 12, CurCfg: 11}}},
				FlowTables: map[string]rowUpdate[flowTableRow]{u2: {New: &flowTableRow{Name: ptr("LOCAL_SWITCHING")}},
					u1: {New: &flowTableRow{}}},
			},
		},
		{
			name: "a deletion has no new row",
			in:   `{"Port":{"` + u1 + `":{"old":{"name":"a","tag":5}}}}`,
			want: tableUpdates{Ports: map[string]rowUpdate[portRow]{u1: {}}},
		},
		{
			name: "a single protocol as a bare string",
			in:   `{"Bridge":{"` + u1 + `":{"new":{"protocols":"OpenFlow13","ports":["set",[]]}}}}`,
			want: tableUpdates{Bridges: map[string]rowUpdate[bridgeRow]{u1: {New: &bridgeRow{Protocols: []string{"OpenFlow13"}}}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeUpdates([]byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %s\nwant %s", dump(*got), dump(tt.want))
			}
		})
	}
}

// dump renders updates with the pointers followed, for failure messages.
func dump(u tableUpdates) string {
	b, err := json.Marshal(u)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func TestDecodeUpdatesRejects(t *testing.T) {
	const u1 = "0b1f3a10-0000-4000-8000-000000000001"
	for _, in := range []string{
		``,
		`{"Port":{"` + u1 + `":{"new":{"name":5}}}}`,                       // name not a string
		`{"Port":{"` + u1 + `":{"new":{"tag":["set",[1,2]]}}}}`,            // two tags
		`{"Port":{"` + u1 + `":{"new":{"interfaces":["set",["x"]]}}}}`,     // not a uuid
		`{"Interface":{"` + u1 + `":{"new":{"external_ids":["set",[]]}}}}`, // not a map
		`{"Port":{"` + u1 + `":{"new":{"name":"a"}}}`,                      // truncated
		`{"Port":{"` + u1 + `":{"new":{"name":"a"}}}} x`,                   // trailing data
		`{"Port":{"` + u1 + `":{"new":{"name":"a` + "\n" + `"}}}}`,         // raw control character
	} {
		if u, err := decodeUpdates([]byte(in)); err == nil {
			t.Errorf("decodeUpdates(%q) = %s, want an error", in, dump(*u))
		}
	}
}

func TestPairs(t *testing.T) {
	p := pairs{"iface-id", "p1", "attached-mac", "fa:16:3e:00:00:01"}
	if v, ok := p.get("attached-mac"); !ok || v != "fa:16:3e:00:00:01" {
		t.Errorf("get(attached-mac) = %q, %v", v, ok)
	}
	if v, ok := p.get("fa:16:3e:00:00:01"); ok {
		t.Errorf("get found a value used as a key: %q", v)
	}
	if p.value("vm-uuid") != "" {
		t.Error("value of a missing key is not empty")
	}
	m := map[string]string{"iface-id": "p1", "attached-mac": "fa:16:3e:00:00:01"}
	if got := p.toMap(); !reflect.DeepEqual(got, m) {
		t.Errorf("toMap = %v", got)
	}
	if !p.equal(m) || !p.containsAll(map[string]string{"iface-id": "p1"}) {
		t.Error("equal or containsAll false for the same pairs")
	}
	if p.equal(map[string]string{"iface-id": "p1"}) || p.containsAll(map[string]string{"iface-id": "p2"}) {
		t.Error("equal or containsAll true for different pairs")
	}
	if pairs(nil).toMap() != nil || !pairs(nil).equal(nil) {
		t.Error("empty pairs")
	}
}
