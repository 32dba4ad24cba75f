package ovsdb

import (
	"encoding/json"
	"testing"
)

// FuzzDecodeUpdates feeds arbitrary bytes to the table-updates decoder: it never panics,
// and a row it decodes is one of the tables it monitors. (Values it skips, in tables and
// columns dvrflow does not monitor, are scanned over, not validated: ovsdb-server sends
// JSON, and skipping is what keeps a 10,000-port dump cheap.)
func FuzzDecodeUpdates(f *testing.F) {
	const u1, u2 = "0b1f3a10-0000-4000-8000-000000000001", "0b1f3a10-0000-4000-8000-000000000002"
	for _, s := range []string{
		`{}`,
		`{"Interface":{"` + u1 + `":{"new":{"name":"tap\"1\\x\u00e9","type":"","ofport":7,"error":["set",[]],` +
			`"external_ids":["map",[["iface-id","p1"],["attached-mac","fa:16:3e:00:00:01"]]],"options":["map",[]]}}}}`,
		`{"Interface":{"` + u1 + `":{"new":{"name":"a","ofport":["set",[-1]],"error":"could not open"}}},` +
			`"Port":{"` + u2 + `":{"new":{"name":"a","interfaces":["uuid","` + u1 + `"],"tag":["set",[4095]]}}}}`,
		`{"Bridge":{"` + u1 + `":{"old":{"ports":["set",[]],"x":{"a":[1,2.5e3,true,null]}},"new":{"name":"br-int",` +
			`"ports":["set",[["uuid","` + u1 + `"],["uuid","` + u2 + `"]]],"datapath_type":"netdev","fail_mode":"secure",` +
			`"protocols":["set",["OpenFlow10","OpenFlow13"]],"other_config":["map",[["disable-in-band","true"]]],` +
			`"flow_tables":["map",[[0,["uuid","` + u2 + `"]],[60,["uuid","` + u1 + `"]]]]}}},` +
			`"Open_vSwitch":{"` + u2 + `":{"new":{"bridges":["uuid","` + u1 + `"],"next_cfg":12,"cur_cfg":11}}}}`,
		`{"Port":{"` + u1 + `":{"old":{"name":"a","tag":5}}}}`,
		`{"Bridge":{"` + u1 + `":{"new":{"protocols":"OpenFlow13","ports":["set",[]]}}}}`,
		`{"Interface":{"x":{"new":{"ofport":1e400}}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		u, err := decodeUpdates(b)
		if err != nil {
			return
		}
		if !json.Valid(b) {
			return // garbage in a skipped value
		}
		var tables map[string]json.RawMessage
		if json.Unmarshal(b, &tables) != nil {
			t.Fatalf("accepted %q, which is not an object", b)
		}
		for table, n := range map[string]int{"Interface": len(u.Ifaces), "Port": len(u.Ports), "Bridge": len(u.Bridges),
			"Open_vSwitch": len(u.Root), "Flow_Table": len(u.FlowTables)} {
			if _, ok := tables[table]; n > 0 && !ok {
				t.Fatalf("decoded %d %s rows from %q, which has none", n, table, b)
			}
		}
	})
}
