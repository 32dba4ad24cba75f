package ovsdb

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// benchPorts is the size of the node the benchmarks model: br-int with that many VIFs.
const benchPorts = 10000

// benchUUID returns the UUID of the i-th row of a kind (a letter), in ovsdb-server's form;
// the rows of one kind sort in their order.
func benchUUID(kind byte, i int) string {
	return fmt.Sprintf("%08x-0000-4000-8000-%c%011d", i, kind, i)
}

// loadVIFs returns the initial rows of a node with n VIFs on br-int, each plugged (an
// ofport) and with its own port.
func loadVIFs(n int) *tableUpdates {
	u := &tableUpdates{Bridges: map[string]rowUpdate[bridgeRow]{}, Ports: map[string]rowUpdate[portRow]{},
		Ifaces: map[string]rowUpdate[ifaceRow]{}}
	ports := make([]string, 0, n)
	for i := range n {
		p, f := benchUUID('a', i), benchUUID('b', i)
		ports = append(ports, p)
		name := fmt.Sprintf("tap%08d", i)
		u.Ports[p] = rowUpdate[portRow]{New: &portRow{Name: name, Interfaces: []string{f}}}
		u.Ifaces[f] = rowUpdate[ifaceRow]{New: &ifaceRow{Name: name, Ofport: i + 1,
			ExternalIDs: pairs{"iface-id", fmt.Sprintf("port-%d", i), "attached-mac", "fa:16:3e:00:00:01"}}}
	}
	u.Bridges[benchUUID('c', 0)] = rowUpdate[bridgeRow]{New: &bridgeRow{Name: "br-int", Ports: ports}}
	return u
}

// benchClient is a client with the rows of loadVIFs(n) and an event queue.
func benchClient(n int) *Client {
	r := newRows()
	r.apply(loadVIFs(n), nil)
	return &Client{rows: r, wake: make(chan struct{}, 1)}
}

// ofportUpdate is ovs-vswitchd assigning an ofport to the k-th interface.
func ofportUpdate(k, ofport int) *tableUpdates {
	return &tableUpdates{Ifaces: map[string]rowUpdate[ifaceRow]{benchUUID('b', k): {New: &ifaceRow{
		Name: fmt.Sprintf("tap%08d", k), Ofport: ofport,
		ExternalIDs: pairs{"iface-id", fmt.Sprintf("port-%d", k), "attached-mac", "fa:16:3e:00:00:01"}}}}}
}

// plugCycle returns the updates of plugging a new VIF onto br-int (whose ports are base),
// its ofport being assigned, and unplugging it. Their UUIDs are new strings, as decoded.
func plugCycle(base []string) []*tableUpdates {
	p, f := benchUUID('d', 1), benchUUID('e', 1)
	plugged := decoded(base)
	at, _ := slices.BinarySearch(plugged, p)
	plugged = slices.Insert(plugged, at, p) // ovsdb-server sends a set sorted
	unplugged := decoded(base)
	ext := pairs{"iface-id", "port-new", "attached-mac", "fa:16:3e:00:00:02"}
	br := benchUUID('c', 0)
	return []*tableUpdates{
		{Bridges: map[string]rowUpdate[bridgeRow]{br: {New: &bridgeRow{Name: "br-int", Ports: plugged}}},
			Ports:  map[string]rowUpdate[portRow]{p: {New: &portRow{Name: "tapnew", Interfaces: []string{f}}}},
			Ifaces: map[string]rowUpdate[ifaceRow]{f: {New: &ifaceRow{Name: "tapnew", ExternalIDs: ext}}}},
		{Ifaces: map[string]rowUpdate[ifaceRow]{f: {New: &ifaceRow{Name: "tapnew", Ofport: 30000, ExternalIDs: ext}}}},
		{Bridges: map[string]rowUpdate[bridgeRow]{br: {New: &bridgeRow{Name: "br-int", Ports: unplugged}}},
			Ports:  map[string]rowUpdate[portRow]{p: {}},
			Ifaces: map[string]rowUpdate[ifaceRow]{f: {}}},
	}
}

// decoded returns a copy of the UUIDs in new strings.
func decoded(uuids []string) []string {
	out := make([]string, len(uuids), len(uuids)+1)
	for i, u := range uuids {
		out[i] = strings.Clone(u)
	}
	return out
}

// An update that touches one interface of 10,000 looks at that interface only, whatever
// else it carries (br-int's 10,000 ports when a port is plugged); renaming the bridge looks
// at all of them.
func TestOneChangeLooksAtOneInterface(t *testing.T) {
	c := benchClient(benchPorts)
	base := c.rows.bridges[benchUUID('c', 0)].Ports
	tag := 5
	tests := []struct {
		name string
		u    *tableUpdates
		want int // interfaces looked at
	}{
		{"ofport assigned", ofportUpdate(42, 7), 1},
		{"plug", plugCycle(base)[0], 1},
		{"Port.tag", &tableUpdates{Ports: map[string]rowUpdate[portRow]{benchUUID('a', 42): {New: &portRow{
			Name: "tap00000042", Interfaces: []string{benchUUID('b', 42)}, Tag: &tag}}}}, 1},
		{"bridge renamed", &tableUpdates{Bridges: map[string]rowUpdate[bridgeRow]{benchUUID('c', 0): {New: &bridgeRow{
			Name: "br-int2", Ports: base}}}}, benchPorts},
	}
	for _, tt := range tests {
		if got := len(c.rows.snapshot(tt.u).vifs); got != tt.want {
			t.Errorf("%s: %d interfaces looked at, want %d", tt.name, got, tt.want)
		}
	}
	// The whole plug cycle, applied, gives its three events and leaves nothing queued.
	var kinds []EventKind
	for _, u := range plugCycle(base) {
		c.applyTo(c.rows, u)
		evs, _ := c.takeEvents()
		for _, ev := range evs {
			kinds = append(kinds, ev.Kind)
		}
	}
	if fmt.Sprint(kinds) != "[VIFAdded VIFUpdated VIFDeleted]" || !c.pending.empty() {
		t.Errorf("plug cycle: %v, queue empty %v", kinds, c.pending.empty())
	}
}

// BenchmarkApplyOnePlug is ovs-vswitchd assigning the ofport of one VIF of 10,000 (the
// second half of a plug): the update applied, its event queued and taken.
func BenchmarkApplyOnePlug(b *testing.B) {
	c := benchClient(benchPorts)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		c.applyTo(c.rows, ofportUpdate(i%benchPorts, 20000+i))
		if evs, _ := c.takeEvents(); len(evs) != 1 {
			b.Fatal(evs)
		}
	}
}

// BenchmarkPlugUnplugCycle is a VIF plugged onto a br-int of 10,000 (br-int's ports, a Port
// and an Interface in one update), given its ofport and unplugged: three updates, each
// followed by the event loop taking its event.
func BenchmarkPlugUnplugCycle(b *testing.B) {
	c := benchClient(benchPorts)
	base := c.rows.bridges[benchUUID('c', 0)].Ports
	b.ReportAllocs()
	plugged, unplugged := plugCycle(base), plugCycle(base)
	for b.Loop() {
		// Fresh rows around the same decoded UUIDs; the bridge's ports alternate between
		// two copies, so no comparison meets the same string twice.
		for _, u := range rebuilt(plugged[0], plugged[1], unplugged[2]) {
			c.applyTo(c.rows, u)
			if evs, _ := c.takeEvents(); len(evs) != 1 {
				b.Fatal(evs)
			}
		}
	}
}

// rebuilt returns copies of the updates with new rows (apply keeps the rows it is given).
func rebuilt(us ...*tableUpdates) []*tableUpdates {
	out := make([]*tableUpdates, len(us))
	for i, u := range us {
		c := &tableUpdates{Bridges: map[string]rowUpdate[bridgeRow]{}, Ports: map[string]rowUpdate[portRow]{},
			Ifaces: map[string]rowUpdate[ifaceRow]{}}
		for k, up := range u.Bridges {
			c.Bridges[k] = rowUpdate[bridgeRow]{New: clonePtr(up.New)}
		}
		for k, up := range u.Ports {
			c.Ports[k] = rowUpdate[portRow]{New: clonePtr(up.New)}
		}
		for k, up := range u.Ifaces {
			c.Ifaces[k] = rowUpdate[ifaceRow]{New: clonePtr(up.New)}
		}
		out[i] = c
	}
	return out
}

// clonePtr returns a pointer to a copy of *p, nil for nil.
func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// BenchmarkLinksHeap reports the heap held by the interface → port → bridge links of
// 10,000 VIFs (links-B), measured by dropping them.
func BenchmarkLinksHeap(b *testing.B) {
	var held int64
	for b.Loop() {
		r := newRows()
		r.apply(loadVIFs(benchPorts), nil)
		with := heapAlloc()
		r.portOfIface, r.bridgeOfPort = nil, nil
		held = with - heapAlloc()
		runtime.KeepAlive(r)
	}
	b.ReportMetric(float64(held), "links-B")
}

// heapAlloc returns the bytes of live heap objects after a full collection.
func heapAlloc() int64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapAlloc)
}
