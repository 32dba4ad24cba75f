package ovsdb

import (
	"reflect"
	"strings"
	"testing"
)

// TestInventoryLiveAndDump reads a real switch's inventory twice, live and from
// `ovsdb-client dump -f json`, and checks both against what ovs-vsctl set.
func TestInventoryLiveAndDump(t *testing.T) {
	e := setup(t)
	spec := netdev("br-int")
	spec.TableNames = map[int]string{0: "LOCAL_SWITCHING", 60: "TRANSIENT"}
	e.ensureBridge(spec)
	e.ensureBridge(netdev("br-tun"))
	e.vsctl("add-port", "br-int", "tapd1", "tag=5", "other_config:net_uuid=n1", "other_config:segmentation_id=196",
		"--", "set", "Interface", "tapd1", "type=internal", "external_ids:iface-id=p1", "external_ids:attached-mac=fa:16:3e:00:00:01")
	e.vsctl("add-port", "br-tun", "vxlan-0a000002", "--", "set", "Interface", "vxlan-0a000002", "type=vxlan",
		"options:remote_ip=10.0.0.2", "options:local_ip=10.0.0.1", "options:key=flow")
	tapOfport := e.ofport("tapd1")

	live, err := ReadInventory(e.ctx, e.h.DBEndpoint())
	if err != nil {
		t.Fatal(err)
	}
	out, err := e.h.Run(e.ctx, "ovsdb-client", "dump", "-f", "json", e.h.DBEndpoint(), "Open_vSwitch")
	if err != nil {
		t.Fatal(err)
	}
	dumped, err := ParseInventoryDump(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	for name, inv := range map[string]*Inventory{"live": live, "dump": dumped} {
		brInt, ok := inv.Bridge("br-int")
		if !ok {
			t.Fatalf("%s: no br-int in %+v", name, inv)
		}
		if want := map[uint8]string{0: "LOCAL_SWITCHING", 60: "TRANSIENT"}; !reflect.DeepEqual(brInt.Tables, want) {
			t.Errorf("%s: br-int tables %v, want %v", name, brInt.Tables, want)
		}
		tap, ok := brInt.Port("tapd1")
		if !ok {
			t.Fatalf("%s: no tapd1 on br-int", name)
		}
		if tap.Tag != 5 || tap.OtherConfig["net_uuid"] != "n1" || tap.IfaceID() != "p1" || tap.AttachedMAC() != "fa:16:3e:00:00:01" || tap.Ofport != tapOfport || tap.Type != "internal" {
			t.Errorf("%s: tapd1 = %+v", name, tap)
		}
		if p, ok := brInt.PortByOfport(tapOfport); !ok || p.Name != "tapd1" {
			t.Errorf("%s: PortByOfport(%d) = %v %v", name, tapOfport, p, ok)
		}
		brTun, _ := inv.Bridge("br-tun")
		if brTun == nil {
			t.Fatalf("%s: no br-tun", name)
		}
		vx, ok := brTun.Port("vxlan-0a000002")
		if !ok || vx.Type != "vxlan" || vx.Options["remote_ip"] != "10.0.0.2" || vx.Tag != 0 {
			t.Errorf("%s: vxlan port = %+v", name, vx)
		}
	}
	if !reflect.DeepEqual(live, dumped) {
		t.Errorf("live and dumped inventories differ:\n%+v\n%+v", live, dumped)
	}
}

func TestParseInventoryDumpErrors(t *testing.T) {
	for _, in := range []string{`{}`, `[]`, `[{"caption":"Bridge table","headings":["name"],"data":[["a","b"]]}]`} {
		if _, err := ParseInventoryDump(strings.NewReader(in)); err == nil {
			t.Errorf("ParseInventoryDump(%s) accepted it", in)
		}
	}
}
