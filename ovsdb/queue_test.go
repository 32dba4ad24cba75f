package ovsdb

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/zap"
)

// These tests feed table updates to a client's rows, as the connection does, and check the
// events the event loop would send; no switch is needed.

// upd builds a tableUpdates: each call adds one row's new contents or its deletion.
type upd struct{ u tableUpdates }

func update() *upd {
	return &upd{tableUpdates{Bridges: map[string]rowUpdate[bridgeRow]{}, Ports: map[string]rowUpdate[portRow]{},
		Ifaces: map[string]rowUpdate[ifaceRow]{}}}
}

func (b *upd) bridge(uuid, name string, ports ...string) *upd {
	b.u.Bridges[uuid] = rowUpdate[bridgeRow]{New: &bridgeRow{Name: name, Ports: ports}}
	return b
}

func (b *upd) delBridge(uuid string) *upd {
	b.u.Bridges[uuid] = rowUpdate[bridgeRow]{}
	return b
}

func (b *upd) port(uuid, name string, ifaces ...string) *upd {
	b.u.Ports[uuid] = rowUpdate[portRow]{New: &portRow{Name: name, Interfaces: ifaces}}
	return b
}

func (b *upd) portTag(uuid, name string, tag int, ifaces ...string) *upd {
	b.u.Ports[uuid] = rowUpdate[portRow]{New: &portRow{Name: name, Interfaces: ifaces, Tag: &tag}}
	return b
}

func (b *upd) delPort(uuid string) *upd {
	b.u.Ports[uuid] = rowUpdate[portRow]{}
	return b
}

// iface adds an Interface row; ids are external_ids keys and values.
func (b *upd) iface(uuid, name string, ofport int, ids ...string) *upd {
	b.u.Ifaces[uuid] = rowUpdate[ifaceRow]{New: &ifaceRow{Name: name, Ofport: ofport, ExternalIDs: pairs(ids)}}
	return b
}

// vif adds the Interface row of a VIF with iface-id id and attached-mac mac.
func (b *upd) vif(uuid, name string, ofport int, id, mac string) *upd {
	return b.iface(uuid, name, ofport, "iface-id", id, "attached-mac", mac)
}

func (b *upd) delIface(uuid string) *upd {
	b.u.Ifaces[uuid] = rowUpdate[ifaceRow]{}
	return b
}

// harness is a client with rows and an event queue, without a connection.
type harness struct {
	t *testing.T
	c *Client
}

func newHarness(t *testing.T, load *upd) *harness {
	r := newRows()
	r.apply(&load.u, nil)
	return &harness{t: t, c: &Client{rows: r, log: zap.NewNop(), wake: make(chan struct{}, 1)}}
}

// apply applies updates as the connection does.
func (h *harness) apply(us ...*upd) {
	for _, u := range us {
		h.c.applyTo(h.c.rows, &u.u)
	}
}

// take returns the queued events as the event loop would send them, rendered, and whether
// the event loop was woken.
func (h *harness) take() (evs []string, woken bool) {
	select {
	case <-h.c.wake:
		woken = true
	default:
	}
	got, reloaded := h.c.takeEvents()
	for _, ev := range got {
		evs = append(evs, render(ev))
	}
	if reloaded {
		evs = append(evs, Resynced.String())
	}
	return evs, woken
}

// render shows an event in one line.
func render(ev Event) string {
	switch ev.Kind {
	case BridgeAdded, BridgeDeleted:
		return ev.Kind.String() + " " + ev.Bridge
	case Resynced:
		return ev.Kind.String()
	}
	v := ev.VIF
	return fmt.Sprintf("%s %s id=%s mac=%s br=%s ofport=%d", ev.Kind, v.Name, v.IfaceID, v.MAC, v.Bridge, v.Ofport)
}

// base is br-int holding tap1 (a VIF with ofport 5) and an empty br-ex.
func base() *upd {
	return update().
		bridge("b-int", "br-int", "p-tap1").port("p-tap1", "tap1", "i-tap1").vif("i-tap1", "tap1", 5, "n1", "m1").
		bridge("b-ex", "br-ex")
}

// plugTap2 adds tap2 to br-int, without an ofport yet.
func plugTap2() *upd {
	return update().bridge("b-int", "br-int", "p-tap1", "p-tap2").port("p-tap2", "tap2", "i-tap2").
		vif("i-tap2", "tap2", 0, "n2", "m2")
}

// unplugTap2 removes tap2 again.
func unplugTap2() *upd {
	return update().bridge("b-int", "br-int", "p-tap1").delPort("p-tap2").delIface("i-tap2")
}

func TestEventsFromUpdates(t *testing.T) {
	type step struct {
		apply []*upd   // applied one after the other before the event loop looks
		want  []string // the events it then sends, in order
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"plug: added without ofport, then updated with it", []step{
			{[]*upd{plugTap2()}, []string{"VIFAdded tap2 id=n2 mac=m2 br=br-int ofport=0"}},
			{[]*upd{update().vif("i-tap2", "tap2", 7, "n2", "m2")}, []string{"VIFUpdated tap2 id=n2 mac=m2 br=br-int ofport=7"}},
		}},
		{"unplug: the VIF is deleted with its last state", []step{
			{[]*upd{update().bridge("b-int", "br-int").delPort("p-tap1").delIface("i-tap1")},
				[]string{"VIFDeleted tap1 id=n1 mac=m1 br=br-int ofport=5"}},
		}},
		{"an interface without iface-id is not a VIF until it gets one, and stops being one when it loses it", []step{
			{[]*upd{update().bridge("b-int", "br-int", "p-tap1", "p-x").port("p-x", "x", "i-x").iface("i-x", "x", 0)}, nil},
			{[]*upd{update().iface("i-x", "x", 9)}, nil},
			{[]*upd{update().vif("i-x", "x", 9, "nx", "mx")}, []string{"VIFAdded x id=nx mac=mx br=br-int ofport=9"}},
			{[]*upd{update().iface("i-x", "x", 9, "attached-mac", "mx")}, []string{"VIFDeleted x id=nx mac=mx br=br-int ofport=9"}},
		}},
		{"MAC change", []step{
			{[]*upd{update().vif("i-tap1", "tap1", 5, "n1", "m9")}, []string{"VIFUpdated tap1 id=n1 mac=m9 br=br-int ofport=5"}},
		}},
		{"iface-id change", []step{
			{[]*upd{update().vif("i-tap1", "tap1", 5, "n9", "m1")}, []string{"VIFUpdated tap1 id=n9 mac=m1 br=br-int ofport=5"}},
		}},
		{"port moved between bridges in one update", []step{
			{[]*upd{update().bridge("b-int", "br-int").bridge("b-ex", "br-ex", "p-tap1")},
				[]string{"VIFUpdated tap1 id=n1 mac=m1 br=br-ex ofport=5"}},
		}},
		{"port moved between bridges in two updates", []step{
			{[]*upd{update().bridge("b-int", "br-int")}, []string{"VIFUpdated tap1 id=n1 mac=m1 br= ofport=5"}},
			{[]*upd{update().bridge("b-ex", "br-ex", "p-tap1")}, []string{"VIFUpdated tap1 id=n1 mac=m1 br=br-ex ofport=5"}},
		}},
		{"bridge deleted with its ports", []step{
			{[]*upd{update().delBridge("b-int").delPort("p-tap1").delIface("i-tap1")},
				[]string{"BridgeDeleted br-int", "VIFDeleted tap1 id=n1 mac=m1 br=br-int ofport=5"}},
		}},
		{"bridge added with ports", []step{
			{[]*upd{update().bridge("b-new", "br-new", "p-a", "p-b").port("p-a", "a", "i-a").port("p-b", "b", "i-b").
				vif("i-b", "b", 2, "nb", "mb").vif("i-a", "a", 1, "na", "ma")},
				[]string{"BridgeAdded br-new", "VIFAdded a id=na mac=ma br=br-new ofport=1", "VIFAdded b id=nb mac=mb br=br-new ofport=2"}},
		}},
		{"bridge renamed: no bridge event, its VIFs updated", []step{
			{[]*upd{update().bridge("b-int", "br-int2", "p-tap1")}, []string{"VIFUpdated tap1 id=n1 mac=m1 br=br-int2 ofport=5"}},
		}},
		{"bridge deleted and re-created under the same name: told apart by UUID", []step{
			{[]*upd{update().delBridge("b-ex"), update().bridge("b-ex2", "br-ex")},
				[]string{"BridgeDeleted br-ex", "BridgeAdded br-ex"}},
		}},
		{"bridge added then deleted before the event loop looks: nothing", []step{
			{[]*upd{update().bridge("b-new", "br-new"), update().delBridge("b-new")}, nil},
		}},
		{"a burst of add and update is coalesced into one add with the last state", []step{
			{[]*upd{plugTap2(), update().vif("i-tap2", "tap2", 7, "n2", "m2"), update().vif("i-tap2", "tap2", 7, "n2", "m3")},
				[]string{"VIFAdded tap2 id=n2 mac=m3 br=br-int ofport=7"}},
		}},
		{"a VIF that appears and vanishes in one batch gives nothing", []step{
			{[]*upd{plugTap2(), update().vif("i-tap2", "tap2", 7, "n2", "m2"), unplugTap2()}, nil},
		}},
		{"a VIF updated then deleted in one batch is deleted with the state last reported", []step{
			{[]*upd{update().vif("i-tap1", "tap1", 6, "n1", "m1"), update().bridge("b-int", "br-int").delPort("p-tap1").delIface("i-tap1")},
				[]string{"VIFDeleted tap1 id=n1 mac=m1 br=br-int ofport=5"}},
		}},
		{"a VIF changed and changed back in one batch gives nothing", []step{
			{[]*upd{update().vif("i-tap1", "tap1", 5, "n1", "m2"), update().vif("i-tap1", "tap1", 5, "n1", "m1")}, nil},
		}},
		{"deleted and re-created under a new UUID: deleted, then added", []step{
			{[]*upd{update().bridge("b-int", "br-int", "p-tap1b").delPort("p-tap1").delIface("i-tap1").
				port("p-tap1b", "tap1", "i-tap1b").vif("i-tap1b", "tap1", 0, "n1", "m1")},
				[]string{"VIFDeleted tap1 id=n1 mac=m1 br=br-int ofport=5", "VIFAdded tap1 id=n1 mac=m1 br=br-int ofport=0"}},
		}},
		{"a port whose interface set changes", []step{
			{[]*upd{update().port("p-tap1", "tap1", "i-tap1", "i-bond").vif("i-bond", "bond", 8, "nb", "mb")},
				[]string{"VIFAdded bond id=nb mac=mb br=br-int ofport=8"}},
			// The interface stays, on no port (ovsdb-server would collect it).
			{[]*upd{update().port("p-tap1", "tap1", "i-tap1")}, []string{"VIFUpdated bond id=nb mac=mb br= ofport=8"}},
			{[]*upd{update().port("p-tap1", "tap1", "i-bond")},
				[]string{"VIFUpdated bond id=nb mac=mb br=br-int ofport=8", "VIFUpdated tap1 id=n1 mac=m1 br= ofport=5"}},
			{[]*upd{update().port("p-tap1", "tap1").delIface("i-bond").delIface("i-tap1")},
				[]string{"VIFDeleted bond id=nb mac=mb br=br-int ofport=8", "VIFDeleted tap1 id=n1 mac=m1 br= ofport=5"}},
		}},
		{"an update of Port.tag only gives nothing", []step{
			{[]*upd{update().portTag("p-tap1", "tap1", 4095, "i-tap1")}, nil},
			{[]*upd{update().portTag("p-tap1", "tap1", 3, "i-tap1")}, nil},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, base())
			for i, s := range tt.steps {
				h.apply(s.apply...)
				got, woken := h.take()
				if strings.Join(got, "\n") != strings.Join(s.want, "\n") {
					t.Errorf("step %d: events\n%s\nwant\n%s", i, strings.Join(got, "\n"), strings.Join(s.want, "\n"))
				}
				// Changes that cancel out within a batch may wake it for nothing; others not.
				if len(s.want) > 0 && !woken || len(s.apply) == 1 && len(s.want) == 0 && woken {
					t.Errorf("step %d: event loop woken = %v, events %v", i, woken, got)
				}
			}
		})
	}
}

// A reconnection replaces the rows whole: the changes between the old rows and the new are
// sent, rows told apart by UUID, then Resynced.
func TestReloadTellsRowsApartByUUID(t *testing.T) {
	h := newHarness(t, update().
		bridge("b-int", "br-int", "p-tap1", "p-tap2").bridge("b-tun", "br-tun").
		port("p-tap1", "tap1", "i-tap1").vif("i-tap1", "tap1", 3, "n1", "m1").
		port("p-tap2", "tap2", "i-tap2").vif("i-tap2", "tap2", 0, "n2", "m2"))
	h.apply(update().vif("i-tap2", "tap2", 4, "n2", "m2")) // queued before the reconnection
	fresh := newRows()
	fresh.apply(&update().
		bridge("b-int", "br-int", "p-tap1b").bridge("b-tun2", "br-tun").              // br-tun re-created
		port("p-tap1b", "tap1", "i-tap1b").vif("i-tap1b", "tap1", 4, "n1", "m1").     // tap1 re-created
		port("p-tap2", "tap2", "i-tap2").vif("i-tap2", "tap2", 4, "n2", "m2").u, nil) // tap2 on no bridge
	h.c.reload(fresh)
	got, woken := h.take()
	want := []string{"BridgeDeleted br-tun", "VIFDeleted tap1 id=n1 mac=m1 br=br-int ofport=3", "BridgeAdded br-tun",
		"VIFAdded tap1 id=n1 mac=m1 br=br-int ofport=4", "VIFUpdated tap2 id=n2 mac=m2 br= ofport=4", "Resynced"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("events\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !woken {
		t.Error("the update before the reload did not wake the event loop")
	}
	// Reloading the same contents again gives Resynced alone.
	same := newRows()
	same.apply(&update().
		bridge("b-int", "br-int", "p-tap1b").bridge("b-tun2", "br-tun").
		port("p-tap1b", "tap1", "i-tap1b").vif("i-tap1b", "tap1", 4, "n1", "m1").
		port("p-tap2", "tap2", "i-tap2").vif("i-tap2", "tap2", 4, "n2", "m2").u, nil)
	h.c.reload(same)
	if got, _ := h.take(); strings.Join(got, " ") != "Resynced" {
		t.Errorf("reload of equal rows: %v", got)
	}
}

// VIFs and Interface find each interface's bridge through the links apply keeps.
func TestVIFsAndInterfaceBridge(t *testing.T) {
	h := newHarness(t, base())
	h.apply(plugTap2(), update().bridge("b-int", "br-int", "p-tap1").bridge("b-ex", "br-ex", "p-tap2"))
	want := []VIF{{Name: "tap1", IfaceID: "n1", MAC: "m1", Bridge: "br-int", Ofport: 5},
		{Name: "tap2", IfaceID: "n2", MAC: "m2", Bridge: "br-ex"}}
	if got := h.c.VIFs(); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("VIFs() = %+v\nwant %+v", got, want)
	}
	if info, ok := h.c.Interface("tap2"); !ok || info.Bridge != "br-ex" {
		t.Errorf("Interface(tap2) = %+v, %v", info, ok)
	}
	h.apply(update().delBridge("b-ex"))
	if info, _ := h.c.Interface("tap2"); info.Bridge != "" {
		t.Errorf("Interface(tap2).Bridge = %q after its bridge was deleted", info.Bridge)
	}
	var links int
	h.c.read(func(r *rows) { links = len(r.bridgeOfPort) })
	if links != 1 {
		t.Errorf("%d port→bridge links, want 1 (p-tap1)", links)
	}
}

func TestSymmetricDiff(t *testing.T) {
	tests := []struct {
		a, b []string
		want string
	}{
		{nil, nil, ""},
		{[]string{"a", "b"}, nil, "-a -b"},
		{nil, []string{"a", "b"}, "+a +b"},
		{[]string{"a", "c", "e"}, []string{"b", "c", "d", "e", "f"}, "-a +b +d +f"},
		{[]string{"e", "a", "c"}, []string{"c", "f", "b", "d", "e"}, "-a +f +b +d"}, // unsorted: a's order, then b's
		{[]string{"a", "b"}, []string{"a", "b"}, ""},
		{[]string{"z", "y", "x", "w"}, []string{"z", "v", "x", "u", "w"}, "-y +v +u"}, // common prefix and suffix
		{[]string{"b", "a"}, []string{"a", "b"}, ""},                                  // the same set, reordered
	}
	for _, tt := range tests {
		var got []string
		symmetricDiff(tt.a, tt.b, func(s string, inB bool) {
			if inB {
				got = append(got, "+"+s)
			} else {
				got = append(got, "-"+s)
			}
		})
		if strings.Join(got, " ") != tt.want {
			t.Errorf("symmetricDiff(%v, %v) = %v, want %s", tt.a, tt.b, got, tt.want)
		}
	}
}
