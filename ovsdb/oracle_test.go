package ovsdb

import (
	"cmp"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// The incremental events are checked against a reference: the full comparison of every VIF
// and bridge before and after, computed from a model of the database by scanning it (the
// event loop's former algorithm), over random sequences of changes.

// world is a model of the database: rows by UUID, every slice replaced, never modified.
type world struct {
	bridges map[string]bridgeRow
	ports   map[string]portRow
	ifaces  map[string]ifaceRow
	next    int // the next fresh UUID's number
}

func (w *world) uuid(kind string) string {
	w.next++
	return fmt.Sprintf("%s%04d", kind, w.next)
}

func (w *world) clone() *world {
	return &world{bridges: maps.Clone(w.bridges), ports: maps.Clone(w.ports), ifaces: maps.Clone(w.ifaces), next: w.next}
}

// pick returns a random key of m, "" if it is empty.
func pick[V any](rnd *rand.Rand, m map[string]V) string {
	keys := slices.Sorted(maps.Keys(m))
	if len(keys) == 0 {
		return ""
	}
	return keys[rnd.IntN(len(keys))]
}

// without returns s without e, as a new slice.
func without(s []string, e string) []string {
	return slices.DeleteFunc(slices.Clone(s), func(x string) bool { return x == e })
}

// with returns s with e added, as a new slice, sorted as ovsdb-server sends sets or not.
func with(rnd *rand.Rand, s []string, e string) []string {
	out := append(slices.Clone(s), e)
	if rnd.IntN(4) > 0 {
		slices.Sort(out)
	} else {
		rnd.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return out
}

// newIface adds an interface, a VIF or not, and returns its UUID.
func (w *world) newIface(rnd *rand.Rand) string {
	u := w.uuid("i")
	row := ifaceRow{Name: "tap-" + u, Ofport: rnd.IntN(3)}
	if rnd.IntN(3) > 0 {
		row.ExternalIDs = pairs{"iface-id", "n-" + u, "attached-mac", "m0"}
	}
	w.ifaces[u] = row
	return u
}

// ownerOf returns the key of the row of m whose list holds child (there is at most one),
// "" if none.
func ownerOf[V any](m map[string]V, list func(V) []string, child string) string {
	for k, v := range m {
		if slices.Contains(list(v), child) {
			return k
		}
	}
	return ""
}

func bridgePorts(b bridgeRow) []string { return b.Ports }
func portIfaces(p portRow) []string    { return p.Interfaces }

// deletePort deletes a port with its interfaces.
func (w *world) deletePort(p string) {
	for _, i := range w.ports[p].Interfaces {
		delete(w.ifaces, i)
	}
	delete(w.ports, p)
}

// mutate makes one random change, keeping the model consistent except that a port may be
// left on no bridge and an interface on no port.
func (w *world) mutate(rnd *rand.Rand) {
	switch rnd.IntN(11) {
	case 0: // a new bridge, with a port or not
		b := bridgeRow{Name: "br-" + w.uuid("n")}
		if rnd.IntN(2) == 0 {
			p := w.uuid("p")
			w.ports[p] = portRow{Name: p, Interfaces: []string{w.newIface(rnd)}}
			b.Ports = []string{p}
		}
		w.bridges[w.uuid("b")] = b
	case 1: // a bridge deleted with its ports
		if b := pick(rnd, w.bridges); b != "" && rnd.IntN(3) == 0 {
			for _, p := range w.bridges[b].Ports {
				w.deletePort(p)
			}
			delete(w.bridges, b)
		}
	case 2: // a bridge renamed
		if b := pick(rnd, w.bridges); b != "" {
			row := w.bridges[b]
			row.Name = "br-" + w.uuid("n")
			w.bridges[b] = row
		}
	case 3: // a port plugged
		if b := pick(rnd, w.bridges); b != "" {
			p := w.uuid("p")
			w.ports[p] = portRow{Name: p, Interfaces: []string{w.newIface(rnd)}}
			row := w.bridges[b]
			row.Ports = with(rnd, row.Ports, p)
			w.bridges[b] = row
		}
	case 4: // a port unplugged, or only dropped from its bridge
		if p := pick(rnd, w.ports); p != "" {
			if b := ownerOf(w.bridges, bridgePorts, p); b != "" {
				row := w.bridges[b]
				row.Ports = without(row.Ports, p)
				w.bridges[b] = row
			}
			if rnd.IntN(4) > 0 {
				w.deletePort(p)
			}
		}
	case 5: // a port moved to another bridge (or onto one)
		p, to := pick(rnd, w.ports), pick(rnd, w.bridges)
		if from := ownerOf(w.bridges, bridgePorts, p); p != "" && to != "" && from != to {
			if from != "" {
				row := w.bridges[from]
				row.Ports = without(row.Ports, p)
				w.bridges[from] = row
			}
			row := w.bridges[to]
			row.Ports = with(rnd, row.Ports, p)
			w.bridges[to] = row
		}
	case 6, 7: // an interface's ofport, MAC or iface-id changed
		if i := pick(rnd, w.ifaces); i != "" {
			row := w.ifaces[i]
			switch rnd.IntN(3) {
			case 0:
				row.Ofport = rnd.IntN(4) - 1
			case 1:
				row.ExternalIDs = pairs{"iface-id", "n-" + i, "attached-mac", fmt.Sprint("m", rnd.IntN(3))}
			case 2:
				row.ExternalIDs = nil
			}
			w.ifaces[i] = row
		}
	case 8: // a port's tag
		if p := pick(rnd, w.ports); p != "" {
			row := w.ports[p]
			tag := rnd.IntN(4095)
			row.Tag = &tag
			w.ports[p] = row
		}
	case 9: // an interface added to a port, or one dropped from it (deleted or not)
		if p := pick(rnd, w.ports); p != "" {
			row := w.ports[p]
			if i := pick(rnd, w.ifaces); rnd.IntN(2) == 0 && i != "" {
				row.Interfaces = without(row.Interfaces, i)
				if rnd.IntN(2) == 0 {
					delete(w.ifaces, i)
				}
			} else {
				row.Interfaces = with(rnd, row.Interfaces, w.newIface(rnd))
			}
			w.ports[p] = row
		}
	case 10: // an interface moved to another port
		i, to := pick(rnd, w.ifaces), pick(rnd, w.ports)
		if from := ownerOf(w.ports, portIfaces, i); i != "" && to != "" && from != to {
			if from != "" {
				row := w.ports[from]
				row.Interfaces = without(row.Interfaces, i)
				w.ports[from] = row
			}
			row := w.ports[to]
			row.Interfaces = with(rnd, row.Interfaces, i)
			w.ports[to] = row
		}
	}
}

// changes returns the update that turns the rows of old into those of w, as ovsdb-server
// sends it: every changed row whole, deleted rows without New.
func (w *world) changes(old *world) *tableUpdates {
	return &tableUpdates{Bridges: changedRows(old.bridges, w.bridges), Ports: changedRows(old.ports, w.ports),
		Ifaces: changedRows(old.ifaces, w.ifaces)}
}

func changedRows[T any](old, cur map[string]T) map[string]rowUpdate[T] {
	ups := map[string]rowUpdate[T]{}
	for k, v := range cur {
		if o, ok := old[k]; !ok || !reflect.DeepEqual(o, v) {
			row := v // a copy: apply keeps (and may fill in) the row it is given
			ups[k] = rowUpdate[T]{New: &row}
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			ups[k] = rowUpdate[T]{}
		}
	}
	return ups
}

// refState is what the reference computes: every VIF by Interface UUID, every bridge's name
// by UUID.
type refState struct {
	vifs    map[string]VIF
	bridges map[string]string
}

// reference computes the state by scanning the model.
func (w *world) reference() refState {
	st := refState{vifs: map[string]VIF{}, bridges: map[string]string{}}
	for u, b := range w.bridges {
		st.bridges[u] = b.Name
	}
	for u, i := range w.ifaces {
		if id := i.ExternalIDs.value("iface-id"); id != "" {
			br := ""
			if p := ownerOf(w.ports, portIfaces, u); p != "" {
				if b := ownerOf(w.bridges, bridgePorts, p); b != "" {
					br = w.bridges[b].Name
				}
			}
			st.vifs[u] = VIF{Name: i.Name, IfaceID: id, MAC: i.ExternalIDs.value("attached-mac"), Bridge: br, Ofport: i.Ofport}
		}
	}
	return st
}

// referenceEvents are the events that turn old into cur: bridge deletions, VIF deletions,
// bridge additions, VIF additions and updates, each group sorted by name, rendered.
func referenceEvents(old, cur refState) []string {
	var brDel, vifDel, brAdd, vifAdd []Event
	for u, name := range old.bridges {
		if _, ok := cur.bridges[u]; !ok {
			brDel = append(brDel, Event{Kind: BridgeDeleted, Bridge: name})
		}
	}
	for u, name := range cur.bridges {
		if _, ok := old.bridges[u]; !ok {
			brAdd = append(brAdd, Event{Kind: BridgeAdded, Bridge: name})
		}
	}
	for u, v := range old.vifs {
		if _, ok := cur.vifs[u]; !ok {
			vifDel = append(vifDel, Event{Kind: VIFDeleted, VIF: v})
		}
	}
	for u, v := range cur.vifs {
		if prev, ok := old.vifs[u]; !ok {
			vifAdd = append(vifAdd, Event{Kind: VIFAdded, VIF: v})
		} else if prev != v {
			vifAdd = append(vifAdd, Event{Kind: VIFUpdated, VIF: v})
		}
	}
	var evs []string
	for _, g := range [][]Event{brDel, vifDel, brAdd, vifAdd} {
		slices.SortFunc(g, func(a, b Event) int {
			return cmp.Or(cmp.Compare(a.Bridge, b.Bridge), cmp.Compare(a.VIF.Name, b.VIF.Name))
		})
		for _, ev := range g {
			evs = append(evs, render(ev))
		}
	}
	return evs
}

func TestEventsMatchFullComparison(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 0))
			w := &world{bridges: map[string]bridgeRow{}, ports: map[string]portRow{}, ifaces: map[string]ifaceRow{}}
			for range 6 {
				w.mutate(rnd)
			}
			h := newHarness(t, &upd{*w.changes(&world{})})
			reported := w.reference()
			for step := range 300 {
				reload := rnd.IntN(40) == 0
				for range 1 + rnd.IntN(3) { // a batch of transactions before the event loop looks
					old := w.clone()
					for range 1 + rnd.IntN(2) {
						w.mutate(rnd)
					}
					if !reload {
						h.c.applyTo(h.c.rows, w.changes(old))
					}
				}
				want := referenceEvents(reported, w.reference())
				if reload { // the changes were made while disconnected
					fresh := newRows()
					fresh.apply(w.changes(&world{}), nil)
					h.c.reload(fresh)
					want = append(want, Resynced.String())
				}
				got, _ := h.take()
				if strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("step %d: events\n%s\nwant\n%s", step, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				reported = w.reference()
				wantVIFs := slices.SortedFunc(maps.Values(reported.vifs), func(a, b VIF) int { return cmp.Compare(a.Name, b.Name) })
				if got := h.c.VIFs(); !slices.Equal(got, wantVIFs) {
					t.Fatalf("step %d: VIFs() = %+v\nwant %+v", step, got, wantVIFs)
				}
			}
		})
	}
}
