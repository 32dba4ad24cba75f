package ovsdb

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nextCfg reads Open_vSwitch.next_cfg from the database: every transaction of the client
// bumps it by one, so its difference counts the client's transactions.
func (e *env) nextCfg() int {
	e.t.Helper()
	n, err := strconv.Atoi(e.vsctl("get", "Open_vSwitch", ".", "next_cfg"))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// eventually waits until cond holds (the client's cache caught up with a hand edit).
func (e *env) eventually(what string, cond func() bool) {
	e.t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			e.t.Fatalf("cache never showed %s", what)
		}
	}
}

// plan returns the operations EnsureLayout would commit now, as "op table" strings.
func (e *env) plan(l Layout) []string {
	e.t.Helper()
	bridges, err := checkLayout(l.Bridges, l.ports())
	if err != nil {
		e.t.Fatal(err)
	}
	_, ops, err := e.c.planLayout(bridges, l.ports())
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, op := range ops {
		out = append(out, op.Op+" "+op.Table)
	}
	return out
}

// nodeLayout is an agent's layout: br-int, br-tun and br-vlan with their patch pairs.
func nodeLayout() Layout {
	intSpec := netdev("br-int")
	intSpec.TableNames = map[int]string{0: "LOCAL_SWITCHING", 60: "TRANSIENT"}
	return Layout{
		Bridges: []BridgeSpec{intSpec, netdev("br-tun"), netdev("br-vlan")},
		Patches: []PatchPair{
			{BridgeA: "br-int", PortA: "patch-tun", BridgeB: "br-tun", PortB: "patch-int"},
			{BridgeA: "br-int", PortA: "int-br-vlan", BridgeB: "br-vlan", PortB: "phy-br-vlan"},
		},
	}
}

// A cold node's bridges and patch pairs are one transaction; a second call writes nothing.
func TestEnsureLayoutOneTransaction(t *testing.T) {
	e := setup(t)
	l := nodeLayout()
	before := e.nextCfg()
	created, err := e.c.EnsureLayout(e.ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"br-int", "br-tun", "br-vlan"}; !slices.Equal(created, want) {
		t.Errorf("created = %v, want %v", created, want)
	}
	if got := e.nextCfg(); got != before+1 {
		t.Errorf("next_cfg %d → %d: want one transaction", before, got)
	}
	// Applied by ovs-vswitchd when EnsureLayout returns: the ofports are there.
	for _, p := range []string{"patch-tun", "patch-int", "int-br-vlan", "phy-br-vlan"} {
		if port, ok := e.c.Interface(p); !ok || port.Ofport <= 0 {
			t.Errorf("interface %s in the cache: %+v, want an ofport", p, port)
		}
	}
	for br, ports := range map[string]string{"br-int": "int-br-vlan\npatch-tun", "br-tun": "patch-int", "br-vlan": "phy-br-vlan"} {
		if got := e.vsctl("list-ports", br); got != ports {
			t.Errorf("ports of %s = %q, want %q", br, got, ports)
		}
		for col, want := range map[string]string{"fail_mode": "secure", "datapath_type": "netdev",
			"protocols": "[OpenFlow10, OpenFlow13]", "other_config:disable-in-band": `"true"`} {
			if got := e.vsctl("get", "bridge", br, col); got != want {
				t.Errorf("%s %s = %s, want %s", br, col, got, want)
			}
		}
	}
	for iface, peer := range map[string]string{"patch-tun": "patch-int", "patch-int": "patch-tun",
		"int-br-vlan": "phy-br-vlan", "phy-br-vlan": "int-br-vlan"} {
		if got := e.vsctl("get", "interface", iface, "options:peer"); got != peer {
			t.Errorf("%s options:peer = %s, want %s", iface, got, peer)
		}
	}
	e.ofctl("-O", "OpenFlow13", "show", "br-vlan") // live in ovs-vswitchd
	if got := e.vsctl("get", "bridge", "br-int", "flow_tables"); !strings.Contains(got, "0=") || !strings.Contains(got, "60=") {
		t.Errorf("br-int flow_tables = %s, want tables 0 and 60", got)
	}

	if ops := e.plan(l); len(ops) != 0 {
		t.Errorf("plan after EnsureLayout: %v, want nothing", ops)
	}
	before = e.nextCfg()
	created, err = e.c.EnsureLayout(e.ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 0 {
		t.Errorf("second EnsureLayout created %v", created)
	}
	if got := e.nextCfg(); got != before {
		t.Errorf("second EnsureLayout: next_cfg %d → %d, want no transaction", before, got)
	}
}

// Only what differs from the cache is written: an adopted bridge keeps its UUID and ports, a
// repaired patch port its ofport.
func TestEnsureLayoutWritesOnlyTheDifference(t *testing.T) {
	e := setup(t)
	l := nodeLayout()
	if _, err := e.c.EnsureLayout(e.ctx, l); err != nil {
		t.Fatal(err)
	}
	if !e.c.LayoutPresent(l) {
		t.Error("LayoutPresent = false after EnsureLayout")
	}
	tunUUID := e.vsctl("get", "bridge", "br-tun", "_uuid")
	patchInt := e.ofport("patch-int")
	// Hand edits: br-tun loses fail_mode secure and one protocol, patch-int's peer is wrong,
	// br-vlan's patch port is gone and br-vlan has a port of its own.
	e.vsctl("set", "bridge", "br-tun", "fail_mode=standalone", "protocols=OpenFlow13",
		"--", "set", "interface", "patch-int", "options:peer=elsewhere",
		"--", "del-port", "br-vlan", "phy-br-vlan",
		"--", "add-port", "br-vlan", "eth1", "--", "set", "interface", "eth1", "type=internal")
	e.eventually("the hand edits", func() bool {
		_, phy := e.c.Interface("phy-br-vlan")
		_, eth1 := e.c.Interface("eth1")
		return !phy && eth1 && !e.ifaceIs(PortSpec{Name: "patch-int", Type: "patch", Options: map[string]string{"peer": "patch-tun"}})
	})

	if e.c.LayoutPresent(l) {
		t.Error("LayoutPresent = true without phy-br-vlan")
	}
	want := []string{
		"wait Bridge", "update Bridge", "mutate Bridge", // br-tun: fail_mode, the missing protocol
		"wait Port", "update Interface", // patch-int: its options
		"wait Port", "wait Bridge", // phy-br-vlan absent, br-vlan present
		"insert Interface", "insert Port", "mutate Bridge", // phy-br-vlan created and linked
	}
	if got := e.plan(l); !slices.Equal(got, want) {
		t.Errorf("plan:\n%v\nwant\n%v", got, want)
	}
	before := e.nextCfg()
	created, err := e.c.EnsureLayout(e.ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if len(created) != 0 {
		t.Errorf("created %v, want none", created)
	}
	if got := e.nextCfg(); got != before+1 {
		t.Errorf("next_cfg %d → %d: want one transaction", before, got)
	}
	if got := e.vsctl("get", "bridge", "br-tun", "_uuid"); got != tunUUID {
		t.Errorf("br-tun replaced: uuid %s, was %s", got, tunUUID)
	}
	for col, want := range map[string]string{"fail_mode": "secure", "protocols": "[OpenFlow10, OpenFlow13]"} {
		if got := e.vsctl("get", "bridge", "br-tun", col); got != want {
			t.Errorf("br-tun %s = %s, want %s", col, got, want)
		}
	}
	if got := e.vsctl("get", "interface", "patch-int", "options:peer"); got != "patch-tun" {
		t.Errorf("patch-int peer = %s, want patch-tun", got)
	}
	if got := e.ofport("patch-int"); got != patchInt {
		t.Errorf("patch-int ofport %d after repair, was %d", got, patchInt)
	}
	if got := e.vsctl("list-ports", "br-vlan"); got != "eth1\nphy-br-vlan" {
		t.Errorf("ports of br-vlan = %q, want eth1 and phy-br-vlan", got)
	}
	if ops := e.plan(l); len(ops) != 0 {
		t.Errorf("plan after repair: %v, want nothing", ops)
	}
	if !e.c.LayoutPresent(l) {
		t.Error("LayoutPresent = false after the repair")
	}
	// A patch port turned into another type is missing too.
	e.vsctl("set", "interface", "patch-int", "type=internal")
	e.eventually("patch-int internal", func() bool { i, _ := e.c.Interface("patch-int"); return i.Type == "internal" })
	if e.c.LayoutPresent(l) {
		t.Error("LayoutPresent = true with patch-int of type internal")
	}
}

// A deleted bridge is re-created together with its end of the patch pair; the other bridges
// are not touched.
func TestEnsureLayoutRecreatesDeletedBridge(t *testing.T) {
	e := setup(t)
	l := nodeLayout()
	if _, err := e.c.EnsureLayout(e.ctx, l); err != nil {
		t.Fatal(err)
	}
	intUUID := e.vsctl("get", "bridge", "br-int", "_uuid")
	e.vsctl("del-br", "br-tun")
	e.eventually("br-tun deleted", func() bool { return !e.c.BridgeExists("br-tun") })
	if e.c.LayoutPresent(l) {
		t.Error("LayoutPresent = true without br-tun")
	}
	want := []string{"wait Bridge", "wait Port", "insert Interface", "insert Port", "insert Interface", "insert Port",
		"insert Bridge", "mutate Open_vSwitch"}
	if got := e.plan(l); !slices.Equal(got, want) {
		t.Errorf("plan:\n%v\nwant\n%v", got, want)
	}
	before := e.nextCfg()
	created, err := e.c.EnsureLayout(e.ctx, l)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(created, []string{"br-tun"}) {
		t.Errorf("created = %v, want [br-tun]", created)
	}
	if got := e.nextCfg(); got != before+1 {
		t.Errorf("next_cfg %d → %d: want one transaction", before, got)
	}
	if got := e.vsctl("list-ports", "br-tun"); got != "patch-int" {
		t.Errorf("ports of re-created br-tun = %q", got)
	}
	if got := e.vsctl("get", "bridge", "br-int", "_uuid"); got != intUUID {
		t.Error("br-int replaced")
	}
}

func TestEnsureLayoutRejects(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.vsctl("add-port", "br-int", "taken", "--", "set", "interface", "taken", "type=internal")
	e.eventually("port taken", func() bool { _, ok := e.c.Interface("taken"); return ok })
	for name, l := range map[string]Layout{
		"empty bridge name":      {Bridges: []BridgeSpec{{}}},
		"bridge named twice":     {Bridges: []BridgeSpec{netdev("br-x"), netdev("br-x")}},
		"port named twice":       {Patches: []PatchPair{{"br-int", "p", "br-int", "p"}}},
		"bridge outside, absent": {Patches: []PatchPair{{"br-int", "a", "br-nope", "b"}}},
		"port on another bridge": {Bridges: []BridgeSpec{netdev("br-new")}, Patches: []PatchPair{{"br-new", "taken", "br-int", "other"}}},
	} {
		before := e.nextCfg()
		if _, err := e.c.EnsureLayout(e.ctx, l); err == nil {
			t.Errorf("%s: no error", name)
		}
		if got := e.nextCfg(); got != before {
			t.Errorf("%s: a transaction was committed", name)
		}
	}
	if e.c.BridgeExists("br-new") || e.c.BridgeExists("br-x") {
		t.Error("a rejected layout created a bridge")
	}
}

// CommitPortTags returns before ovs-vswitchd applied the tags; WaitApplied waits for that.
func TestCommitPortTagsAndWaitApplied(t *testing.T) {
	e := setup(t)
	e.ensureBridge(netdev("br-int"))
	e.addVIF("tap1")
	e.eventually("tap1", func() bool { _, ok := e.c.Interface("tap1"); return ok })

	before := e.nextCfg()
	updated, cfg, err := e.c.CommitPortTags(e.ctx, map[string]int{"tap1": 7, "gone": 3})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(updated, []string{"tap1"}) {
		t.Errorf("updated = %v, want [tap1]", updated)
	}
	if cfg != before+1 {
		t.Errorf("cfg = %d, want next_cfg %d+1", cfg, before)
	}
	if got := e.vsctl("get", "port", "tap1", "tag"); got != "7" {
		t.Errorf("tag = %s after the commit, want 7", got)
	}
	if err := e.c.WaitApplied(e.ctx, cfg); err != nil {
		t.Fatal(err)
	}
	if cur, _ := strconv.Atoi(e.vsctl("get", "Open_vSwitch", ".", "cur_cfg")); cur < cfg {
		t.Errorf("WaitApplied returned with cur_cfg %d < %d", cur, cfg)
	}

	// Nothing to write: no transaction, cfg 0, and WaitApplied(0) returns at once.
	before = e.nextCfg()
	updated, cfg, err = e.c.CommitPortTags(e.ctx, map[string]int{"gone": 3})
	if err != nil || len(updated) != 0 || cfg != 0 {
		t.Errorf("tags of missing ports only: %v, %d, %v; want nothing", updated, cfg, err)
	}
	if got := e.nextCfg(); got != before {
		t.Error("a transaction was committed for missing ports")
	}
	if err := e.c.WaitApplied(e.ctx, 0); err != nil {
		t.Errorf("WaitApplied(0): %v", err)
	}
	if _, _, err := e.c.CommitPortTags(e.ctx, map[string]int{"tap1": 4096}); err == nil {
		t.Error("tag 4096 accepted")
	}

	// A configuration never reached: WaitApplied ends with its context.
	ctx, cancel := context.WithTimeout(e.ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := e.c.WaitApplied(ctx, e.nextCfg()+1000); err == nil {
		t.Error("WaitApplied of a future cfg returned nil")
	} else if took := time.Since(start); took < 250*time.Millisecond {
		t.Errorf("WaitApplied of a future cfg failed after %s, before its context ended: %v", took, err)
	}
}
