package ovsdb

import (
	"strings"
	"testing"
)

// FuzzParseInventoryDump feeds arbitrary text to the `ovsdb-client dump -f json` reader (a
// dump attached to a bug report is outside input): it never panics.
func FuzzParseInventoryDump(f *testing.F) {
	f.Add(`{"caption":"Bridge table","data":[[["uuid","b1"],"br-int",["set",[["uuid","p1"]]],["map",[[0,["uuid","t1"]]]]]],"headings":["_uuid","name","ports","flow_tables"]}
{"caption":"Port table","data":[[["uuid","p1"],"tap1",["uuid","i1"],5,["map",[["net_uuid","n1"]]]]],"headings":["_uuid","name","interfaces","tag","other_config"]}
{"caption":"Interface table","data":[[["uuid","i1"],"tap1","internal",4,["map",[]],["map",[["iface-id","p1"]]]]],"headings":["_uuid","name","type","ofport","options","external_ids"]}
{"caption":"Flow_Table table","data":[[["uuid","t1"],"LOCAL_SWITCHING"]],"headings":["_uuid","name"]}`)
	f.Add(`[]`)
	f.Fuzz(func(t *testing.T, dump string) {
		inv, err := ParseInventoryDump(strings.NewReader(dump))
		if err == nil && inv == nil {
			t.Fatal("no inventory and no error")
		}
	})
}
