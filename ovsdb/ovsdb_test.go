package ovsdb

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/sandbox"
)

// These tests run against a real ovsdb-server and ovs-vswitchd (one sandbox host each).

type env struct {
	t   *testing.T
	h   *sandbox.Host
	c   *Client
	ctx context.Context
}

func setup(t *testing.T) *env {
	t.Helper()
	h := sandbox.StartForTest(t, "ovsdb")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	c, err := Connect(ctx, h.DBEndpoint(), zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close) // runs before the host stops
	return &env{t: t, h: h, c: c, ctx: ctx}
}

// vsctl runs ovs-vsctl and returns its trimmed output, failing the test on error.
func (e *env) vsctl(args ...string) string {
	e.t.Helper()
	out, err := e.h.Vsctl(e.ctx, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

func (e *env) ofctl(args ...string) string {
	e.t.Helper()
	out, err := e.h.Ofctl(e.ctx, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) ensureBridge(spec BridgeSpec) bool {
	e.t.Helper()
	created, err := e.c.EnsureBridge(e.ctx, spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return created
}

func (e *env) ofport(iface string) int {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 10*time.Second)
	defer cancel()
	n, err := e.c.Ofport(ctx, iface)
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// waitEvent returns the first event that satisfies match, failing after timeout.
func (e *env) waitEvent(timeout time.Duration, what string, match func(Event) bool) Event {
	e.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case ev := <-e.c.Events():
			e.t.Logf("event %s bridge=%q vif=%+v", ev.Kind, ev.Bridge, ev.VIF)
			if match(ev) {
				return ev
			}
		case <-deadline:
			e.t.Fatalf("no %s within %s", what, timeout)
		}
	}
}

// drain discards queued events.
func (e *env) drain() {
	for {
		select {
		case <-e.c.Events():
		case <-time.After(200 * time.Millisecond):
			return
		}
	}
}

// ifaceIs reports whether the client's rows show the interface as spec has it.
func (e *env) ifaceIs(spec PortSpec) (is bool) {
	e.c.read(func(r *rows) { is = r.ifaceIs(spec) })
	return is
}

func netdev(name string) BridgeSpec {
	return BridgeSpec{Name: name, DatapathType: "netdev", MACTableSize: 50000}
}

func TestEnsureBridgeCreatesThenAdopts(t *testing.T) {
	e := setup(t)
	if e.c.BridgeExists("br-int") {
		t.Fatal("br-int exists before EnsureBridge")
	}
	if !e.ensureBridge(netdev("br-int")) {
		t.Fatal("first EnsureBridge: created = false")
	}
	if !e.c.BridgeExists("br-int") {
		t.Error("BridgeExists(br-int) = false after EnsureBridge returned")
	}
	for col, want := range map[string]string{
		"datapath_type":                "netdev",
		"fail_mode":                    "secure",
		"other_config:disable-in-band": `"true"`,
		"other_config:mac-table-size":  `"50000"`,
		`protocols`:                    "[OpenFlow10, OpenFlow13]",
		"ports":                        "[" + e.vsctl("get", "port", "br-int", "_uuid") + "]",
	} {
		if got := e.vsctl("get", "bridge", "br-int", col); got != want {
			t.Errorf("br-int %s = %s, want %s", col, got, want)
		}
	}
	if got := e.vsctl("get", "interface", "br-int", "type"); got != "internal" {
		t.Errorf("interface br-int type = %s, want internal", got)
	}
	// The bridge is live in ovs-vswitchd: its management socket answers.
	e.ofctl("-O", "OpenFlow13", "show", "br-int")

	uuid := e.vsctl("get", "bridge", "br-int", "_uuid")
	if e.ensureBridge(netdev("br-int")) {
		t.Error("second EnsureBridge: created = true")
	}
	if got := e.vsctl("get", "bridge", "br-int", "_uuid"); got != uuid {
		t.Errorf("second EnsureBridge replaced the bridge: uuid %s, was %s", got, uuid)
	}
	if got := e.vsctl("get", "bridge", "br-int", "protocols"); got != "[OpenFlow10, OpenFlow13]" {
		t.Errorf("after second EnsureBridge protocols = %s", got)
	}

	// A bridge made by hand, with a port and contrary settings, is adopted.
	e.vsctl("add-br", "br-ex", "--", "set", "bridge", "br-ex", "datapath_type=netdev",
		"protocols=OpenFlow14", "fail_mode=standalone", "other_config:disable-in-band=false",
		"other_config:foo=bar",
		"--", "add-port", "br-ex", "eth9", "--", "set", "interface", "eth9", "type=internal")
	eth9 := e.ofport("eth9")
	if e.ensureBridge(netdev("br-ex")) {
		t.Error("EnsureBridge on a hand-made bridge: created = true")
	}
	if got := e.vsctl("list-ports", "br-ex"); got != "eth9" {
		t.Errorf("ports of adopted br-ex = %q, want eth9", got)
	}
	if got := e.ofport("eth9"); got != eth9 {
		t.Errorf("eth9 ofport %d after adoption, was %d", got, eth9)
	}
	for col, want := range map[string]string{
		"fail_mode":                    "secure",
		"other_config:disable-in-band": `"true"`,
		"other_config:foo":             `bar`, // keys we do not own are kept
		"protocols":                    "[OpenFlow10, OpenFlow13, OpenFlow14]",
	} {
		if got := e.vsctl("get", "bridge", "br-ex", col); got != want {
			t.Errorf("adopted br-ex %s = %s, want %s", col, got, want)
		}
	}
}

func TestTableNames(t *testing.T) {
	e := setup(t)
	spec := netdev("br-int")
	spec.TableNames = map[int]string{0: "LOCAL_SWITCHING", 23: "CANARY"}
	e.ensureBridge(spec)
	e.ofctl("-O", "OpenFlow13", "add-flow", "br-int", "table=23,priority=0,actions=drop")
	flows := e.ofctl("-O", "OpenFlow13", "dump-flows", "br-int", "--names")
	if !strings.Contains(flows, "table=CANARY") {
		t.Errorf("dump-flows --names does not name table 23 CANARY:\n%s", flows)
	}
	tables := e.ofctl("-O", "OpenFlow10", "dump-tables", "br-int")
	for _, want := range []string{`table 0 ("LOCAL_SWITCHING")`, `table 23 ("CANARY")`} {
		if !strings.Contains(tables, want) {
			t.Errorf("dump-tables lacks %s:\n%s", want, tables)
		}
	}

	// Re-ensuring with a changed name renames the row in place and adds a new one.
	before := e.vsctl("get", "bridge", "br-int", "flow_tables:23")
	spec.TableNames = map[int]string{0: "LOCAL_SWITCHING", 23: "CANARY_2", 60: "TRANSIENT"}
	if e.ensureBridge(spec) {
		t.Error("created = true on re-ensure")
	}
	if got := e.vsctl("get", "bridge", "br-int", "flow_tables:23"); got != before {
		t.Errorf("table 23 row replaced (%s, was %s); want renamed in place", got, before)
	}
	tables = e.ofctl("-O", "OpenFlow10", "dump-tables", "br-int")
	for _, want := range []string{`table 0 ("LOCAL_SWITCHING")`, `table 23 ("CANARY_2")`, `table 60 ("TRANSIENT")`} {
		if !strings.Contains(tables, want) {
			t.Errorf("after rename, dump-tables lacks %s", want)
		}
	}
	if n := strings.Count(e.vsctl("--columns=name", "list", "Flow_Table"), "name"); n != 3 {
		t.Errorf("%d Flow_Table rows, want 3 (no orphans)", n)
	}
}

func TestPatchPair(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.ensureBridge(netdev("br-tun"))
	if err := e.c.EnsurePatchPair(e.ctx, "br-int", "patch-tun", "br-tun", "patch-int"); err != nil {
		t.Fatal(err)
	}
	tun, intp := e.ofport("patch-tun"), e.ofport("patch-int")
	for iface, peer := range map[string]string{"patch-tun": "patch-int", "patch-int": "patch-tun"} {
		if got := e.vsctl("get", "interface", iface, "type"); got != "patch" {
			t.Errorf("%s type = %s", iface, got)
		}
		if got := e.vsctl("get", "interface", iface, "options:peer"); got != peer {
			t.Errorf("%s options:peer = %s, want %s", iface, got, peer)
		}
	}
	if got := e.vsctl("port-to-br", "patch-tun"); got != "br-int" {
		t.Errorf("patch-tun on %s", got)
	}
	if got := e.vsctl("port-to-br", "patch-int"); got != "br-tun" {
		t.Errorf("patch-int on %s", got)
	}
	uuid := e.vsctl("get", "port", "patch-tun", "_uuid")

	if err := e.c.EnsurePatchPair(e.ctx, "br-int", "patch-tun", "br-tun", "patch-int"); err != nil {
		t.Fatal(err)
	}
	if a, b := e.ofport("patch-tun"), e.ofport("patch-int"); a != tun || b != intp {
		t.Errorf("ofports changed on re-run: %d/%d, were %d/%d", a, b, tun, intp)
	}
	if got := e.vsctl("get", "port", "patch-tun", "_uuid"); got != uuid {
		t.Error("re-run replaced port patch-tun")
	}

	// A wrong peer set by hand is repaired, keeping the port.
	e.vsctl("set", "interface", "patch-tun", "options:peer=nonexistent-peer")
	// The client decides from its cache (an intact pair costs no transaction): let the
	// monitor deliver the hand edit first.
	for deadline := time.Now().Add(5 * time.Second); e.ifaceIs(PortSpec{Name: "patch-tun", Type: "patch", Options: map[string]string{"peer": "patch-int"}}) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if err := e.c.EnsurePatchPair(e.ctx, "br-int", "patch-tun", "br-tun", "patch-int"); err != nil {
		t.Fatal(err)
	}
	if got := e.vsctl("get", "interface", "patch-tun", "options:peer"); got != "patch-int" {
		t.Errorf("peer not repaired: %s", got)
	}
	if e.ofport("patch-tun") != tun {
		t.Error("repair changed patch-tun's ofport")
	}

	if err := e.c.EnsurePatchPair(e.ctx, "br-int", "int-br-nope", "br-nope", "phy-br-nope"); err == nil {
		t.Error("EnsurePatchPair to a missing bridge succeeded")
	} else if e.c.BridgeExists("br-nope") || strings.Contains(e.vsctl("list-ports", "br-int"), "int-br-nope") {
		t.Errorf("failed EnsurePatchPair left something behind (%v)", err)
	}
	if err := e.c.EnsurePatchPair(e.ctx, "br-tun", "patch-tun", "br-int", "x"); err == nil ||
		!strings.Contains(err.Error(), "exists on bridge br-int") {
		t.Errorf("moving patch-tun to br-tun: err = %v, want 'exists on bridge br-int'", err)
	}
}

func TestEnsurePortAndDeletePort(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-tun"))
	spec := PortSpec{Bridge: "br-tun", Name: "vxlan-c0a8010a", Type: "vxlan",
		Options: map[string]string{"remote_ip": "192.168.1.10", "local_ip": "192.168.1.1", "in_key": "flow", "out_key": "flow"}}
	if err := e.c.EnsurePort(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	ofp := e.ofport("vxlan-c0a8010a")
	spec.Options = map[string]string{"remote_ip": "192.168.1.10", "local_ip": "192.168.1.2", "in_key": "flow", "out_key": "flow"}
	if err := e.c.EnsurePort(e.ctx, spec); err != nil {
		t.Fatal(err)
	}
	want := `{in_key=flow, local_ip="192.168.1.2", out_key=flow, remote_ip="192.168.1.10"}`
	if got := e.vsctl("get", "interface", "vxlan-c0a8010a", "options"); got != want {
		t.Errorf("options = %s, want %s", got, want)
	}
	if got := e.ofport("vxlan-c0a8010a"); got != ofp {
		t.Errorf("ofport %d after options change, was %d", got, ofp)
	}
	if err := e.c.DeletePort(e.ctx, "br-tun", "vxlan-c0a8010a"); err != nil {
		t.Fatal(err)
	}
	if got := e.vsctl("list-ports", "br-tun"); got != "" {
		t.Errorf("ports left on br-tun: %q", got)
	}
	if got := e.vsctl("--columns=name", "find", "interface", "name=vxlan-c0a8010a"); got != "" {
		t.Errorf("interface row left behind: %s", got)
	}
	if err := e.c.DeletePort(e.ctx, "br-tun", "vxlan-c0a8010a"); err != nil {
		t.Errorf("deleting a missing port: %v", err)
	}
}

func TestOfportFailure(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.vsctl("add-port", "br-int", "nosuchdev0") // a system interface that does not exist
	_, err := e.c.Ofport(e.ctx, "nosuchdev0")
	if err == nil || !strings.Contains(err.Error(), "No such device") {
		t.Errorf("Ofport of a missing device: err = %v, want one quoting Interface.error", err)
	}
	ctx, cancel := context.WithTimeout(e.ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := e.c.Ofport(ctx, "never-there"); err == nil || !strings.Contains(err.Error(), "no such interface") {
		t.Errorf("Ofport of a missing interface: err = %v", err)
	}
}

const (
	portID = "6a4e26a0-7b2e-4e55-a1b5-0d7c1e2f3a4b"
	mac1   = "fa:16:3e:00:00:01"
)

func (e *env) addVIF(name string) {
	e.t.Helper()
	e.vsctl("add-port", "br-int", name, "--", "set", "interface", name, "type=internal",
		"external_ids:iface-id="+portID, "external_ids:attached-mac="+mac1)
}

func TestVIFEvents(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.drain()

	e.addVIF("tap1")
	added := e.waitEvent(5*time.Second, "VIFAdded", func(ev Event) bool { return ev.Kind == VIFAdded })
	if added.VIF.Name != "tap1" || added.VIF.IfaceID != portID || added.VIF.MAC != mac1 {
		t.Errorf("VIFAdded %+v", added.VIF)
	}
	vif := added.VIF
	if !vif.Ready() {
		vif = e.waitEvent(5*time.Second, "VIFUpdated with ofport", func(ev Event) bool {
			return ev.Kind == VIFUpdated && ev.VIF.Ready()
		}).VIF
	}
	want := VIF{Name: "tap1", IfaceID: portID, MAC: mac1, Bridge: "br-int", Ofport: e.ofport("tap1")}
	if vif != want {
		t.Errorf("ready VIF = %+v, want %+v", vif, want)
	}
	if got := e.c.VIFs(); len(got) != 1 || got[0] != want {
		t.Errorf("VIFs() = %+v, want [%+v]", got, want)
	}

	e.vsctl("set", "interface", "tap1", "external_ids:attached-mac=fa:16:3e:00:00:02")
	upd := e.waitEvent(5*time.Second, "VIFUpdated for the MAC", func(ev Event) bool { return ev.Kind == VIFUpdated })
	if upd.VIF.MAC != "fa:16:3e:00:00:02" || upd.VIF.Ofport != want.Ofport {
		t.Errorf("VIFUpdated after MAC change: %+v", upd.VIF)
	}

	// A port without iface-id is not a VIF.
	e.vsctl("add-port", "br-int", "plain0", "--", "set", "interface", "plain0", "type=internal")
	e.vsctl("del-port", "br-int", "tap1")
	del := e.waitEvent(5*time.Second, "VIFDeleted", func(ev Event) bool {
		if ev.VIF.Name == "plain0" {
			t.Errorf("event for a non-VIF port: %s %+v", ev.Kind, ev.VIF)
		}
		return ev.Kind == VIFDeleted
	})
	if del.VIF.Name != "tap1" || del.VIF.IfaceID != portID {
		t.Errorf("VIFDeleted %+v", del.VIF)
	}
	if got := e.c.VIFs(); len(got) != 0 {
		t.Errorf("VIFs() after delete = %+v", got)
	}
}

func TestBridgeEvents(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.ensureBridge(netdev("br-tun"))
	e.drain()

	start := time.Now()
	e.vsctl("del-br", "br-tun")
	e.waitEvent(time.Second, "BridgeDeleted br-tun", func(ev Event) bool {
		return ev.Kind == BridgeDeleted && ev.Bridge == "br-tun"
	})
	t.Logf("BridgeDeleted after %s", time.Since(start))
	if e.c.BridgeExists("br-tun") {
		t.Error("BridgeExists(br-tun) after BridgeDeleted")
	}
	if !e.ensureBridge(netdev("br-tun")) {
		t.Error("re-creating br-tun: created = false")
	}
	e.waitEvent(time.Second, "BridgeAdded br-tun", func(ev Event) bool {
		return ev.Kind == BridgeAdded && ev.Bridge == "br-tun"
	})
}

func TestSetPortTag(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.addVIF("tap1")
	// Neutron's dead port: tag 4095, trunk mode, trunks [4095].
	e.vsctl("set", "port", "tap1", "tag=4095", "vlan_mode=trunk", "trunks=4095")

	if err := e.c.SetPortTag(e.ctx, "tap1", 5); err != nil {
		t.Fatal(err)
	}
	for col, want := range map[string]string{"tag": "5", "vlan_mode": "[]", "trunks": "[]"} {
		if got := e.vsctl("get", "port", "tap1", col); got != want {
			t.Errorf("after SetPortTag 5: %s = %s, want %s", col, got, want)
		}
	}
	// The cache has the tag once SetPortTag returns.
	if got := e.c.PortTags("br-int"); len(got) != 1 || got["tap1"] != 5 {
		t.Errorf("PortTags = %v, want map[tap1:5]", got)
	}
	if err := e.c.SetPortTag(e.ctx, "tap1", 0); err != nil {
		t.Fatal(err)
	}
	if got := e.vsctl("get", "port", "tap1", "tag"); got != "[]" {
		t.Errorf("after SetPortTag 0: tag = %s", got)
	}
	if got := e.c.PortTags("br-int"); len(got) != 0 {
		t.Errorf("PortTags after clearing = %v", got)
	}
	if err := e.c.SetPortTag(e.ctx, "nope", 3); err == nil {
		t.Error("SetPortTag on a missing port succeeded")
	}
}

func TestReconnect(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.addVIF("tap1")
	e.ofport("tap1")
	e.drain()

	if err := e.h.RestartOVSDB(e.ctx); err != nil {
		t.Fatal(err)
	}
	e.waitEvent(30*time.Second, "Resynced", func(ev Event) bool {
		if ev.Kind != Resynced {
			t.Errorf("spurious %s %+v after a reload that changed nothing", ev.Kind, ev)
		}
		return ev.Kind == Resynced
	})
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	if created, err := e.c.EnsureBridge(ctx, netdev("br-int")); err != nil || created {
		t.Fatalf("EnsureBridge after restart: created=%v err=%v", created, err)
	}
	if err := e.c.SetPortTag(ctx, "tap1", 7); err != nil {
		t.Fatal(err)
	}
	if got := e.vsctl("get", "port", "tap1", "tag"); got != "7" {
		t.Errorf("tag after restart = %s", got)
	}
	e.vsctl("del-port", "br-int", "tap1")
	e.waitEvent(5*time.Second, "VIFDeleted after reconnect", func(ev Event) bool { return ev.Kind == VIFDeleted })
	if got := e.c.PortTags("br-int"); len(got) != 0 {
		t.Errorf("PortTags = %v", got)
	}
}

func TestChangesWhileDisconnected(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.addVIF("tap1")
	e.ofport("tap1")
	e.drain()

	// Cut the client off by moving ovsdb-server to another socket, change the database
	// there, then open the usual socket again.
	main := "punix:" + e.h.RunDir() + "/db.sock"
	alt := "unix:" + e.h.RunDir() + "/alt.sock"
	appctl := func(args ...string) {
		t.Helper()
		if out, err := e.h.Appctl(e.ctx, "ovsdb-server", args...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	appctl("ovsdb-server/add-remote", "p"+alt)
	appctl("ovsdb-server/remove-remote", main)
	if out, err := e.h.Run(e.ctx, "ovs-vsctl", "--db="+alt, "--no-wait", "del-port", "br-int", "tap1",
		"--", "add-br", "br-new", "--", "set", "bridge", "br-new", "datapath_type=netdev"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	appctl("ovsdb-server/add-remote", main)

	deleted, added := false, false
	e.waitEvent(30*time.Second, "VIFDeleted and BridgeAdded after reconnect", func(ev Event) bool {
		deleted = deleted || ev.Kind == VIFDeleted && ev.VIF.Name == "tap1" && ev.VIF.IfaceID == portID
		added = added || ev.Kind == BridgeAdded && ev.Bridge == "br-new"
		return deleted && added
	})
	if got := e.c.VIFs(); len(got) != 0 {
		t.Errorf("VIFs() = %+v after the VIF was deleted", got)
	}
}

func TestConnectFailsAndCloseClosesEvents(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if c, err := Connect(ctx, "unix:"+t.TempDir()+"/none.sock", zaptest.NewLogger(t)); err == nil {
		c.Close()
		t.Fatal("Connect to a missing socket succeeded")
	}
	e := setup(t)
	e.c.Close()
	select {
	case _, ok := <-e.c.Events():
		if ok {
			t.Error("event after Close")
		}
	case <-time.After(5 * time.Second):
		t.Error("Events not closed by Close")
	}
	e.c.Close() // idempotent
}
