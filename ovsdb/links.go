package ovsdb

import (
	"slices"
	"strings"
)

// relink keeps a child → owner index (Port → Bridge, Interface → Port) right when one
// owner's list of children changes from old to new (nil: the owner is created or deleted):
// children added to the list are linked to it, children dropped from it lose their link
// unless another owner has taken them meanwhile (a port moved between two bridges in one
// update). Only the difference is touched, so a bridge of 10,000 ports gaining one costs
// one map write.
func relink(index map[string]string, owner string, old, new []string) {
	symmetricDiff(old, new, func(child string, inNew bool) {
		switch {
		case inNew:
			index[child] = owner
		case index[child] == owner:
			delete(index, child)
		}
	})
}

// symmetricDiff calls f for every element of exactly one of the sets a and b, inB telling
// which. A row comes whole in every update, so a set that gained or lost an element is
// mostly the same sequence as before: the common prefix and suffix are skipped first (a set
// has no duplicates, so nothing in them can be in the other set's rest). ovsdb-server sends
// a set's UUIDs sorted (its order is their text's), and the rest is then merged; other sets
// go through a map.
func symmetricDiff(a, b []string, f func(s string, inB bool)) {
	for len(a) > 0 && len(b) > 0 && a[0] == b[0] {
		a, b = a[1:], b[1:]
	}
	for len(a) > 0 && len(b) > 0 && a[len(a)-1] == b[len(b)-1] {
		a, b = a[:len(a)-1], b[:len(b)-1]
	}
	if slices.IsSorted(a) && slices.IsSorted(b) {
		mergeDiff(a, b, f)
		return
	}
	setA, setB := setOf(a), setOf(b)
	for _, s := range a {
		if _, ok := setB[s]; !ok {
			f(s, false)
		}
	}
	for _, s := range b {
		if _, ok := setA[s]; !ok {
			f(s, true)
		}
	}
}

// mergeDiff is symmetricDiff of two sorted sets.
func mergeDiff(a, b []string, f func(s string, inB bool)) {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := strings.Compare(a[i], b[j]); {
		case c < 0:
			f(a[i], false)
			i++
		case c > 0:
			f(b[j], true)
			j++
		default:
			i++
			j++
		}
	}
	for ; i < len(a); i++ {
		f(a[i], false)
	}
	for ; j < len(b); j++ {
		f(b[j], true)
	}
}

// setOf returns the elements of s as a set.
func setOf(s []string) map[string]struct{} {
	set := make(map[string]struct{}, len(s))
	for _, e := range s {
		set[e] = struct{}{}
	}
	return set
}

// vifState is an interface as the events see it: its VIF, or ok false when it is not one
// (absent, or without iface-id; vif is then zero, so that two such states are equal).
type vifState struct {
	vif VIF
	ok  bool
}

// bridgeState is a Bridge row as the events see it: its name, or ok false when absent.
type bridgeState struct {
	name string
	ok   bool
}

// vif returns the interface's VIF; false if i is nil or has no iface-id.
func (r *rows) vif(i *ifaceRow) (VIF, bool) {
	if i == nil {
		return VIF{}, false
	}
	id := i.ExternalIDs.value("iface-id")
	if id == "" {
		return VIF{}, false
	}
	return VIF{Name: i.Name, IfaceID: id, MAC: i.ExternalIDs.value("attached-mac"),
		Bridge: r.ifaceBridge(i.UUID), Ofport: i.Ofport}, true
}

// vifState returns the state of the interface ifaceUUID.
func (r *rows) vifState(ifaceUUID string) vifState {
	v, ok := r.vif(r.ifaces[ifaceUUID])
	return vifState{vif: v, ok: ok}
}

// bridgeState returns the state of the bridge bridgeUUID.
func (r *rows) bridgeState(bridgeUUID string) bridgeState {
	if b := r.bridges[bridgeUUID]; b != nil {
		return bridgeState{name: b.Name, ok: true}
	}
	return bridgeState{}
}

// snapshot is the state, before an update, of everything whose events the update may
// change: the interfaces it affects and the bridges it touches.
type snapshot struct {
	vifs    map[string]vifState    // by Interface UUID
	bridges map[string]bridgeState // by Bridge UUID
}

// snapshot returns the state of what u affects, before u is applied: the interfaces u
// updates; the old and new interfaces of the ports it updates; for the bridges it updates,
// the interfaces of the ports added to or removed from them, or of all their ports when
// the bridge is added, deleted or renamed (its name is every VIF's Bridge). Its cost is
// that of u, not of the rows.
func (r *rows) snapshot(u *tableUpdates) *snapshot {
	s := &snapshot{vifs: map[string]vifState{}, bridges: map[string]bridgeState{}}
	for uuid := range u.Ifaces {
		s.addIface(r, uuid)
	}
	for uuid, up := range u.Ports {
		if old := r.ports[uuid]; old != nil {
			s.addIfaces(r, old.Interfaces)
		}
		if up.New != nil {
			s.addIfaces(r, up.New.Interfaces)
		}
	}
	for uuid, up := range u.Bridges {
		s.bridges[uuid] = r.bridgeState(uuid)
		r.changedBridgePorts(uuid, up.New, func(port string) {
			if p := r.ports[port]; p != nil {
				s.addIfaces(r, p.Interfaces)
			}
		})
	}
	return s
}

// changedBridgePorts calls f for the ports whose bridge (or bridge name) changes when the
// bridge bridgeUUID becomes n (nil: deleted); a port may be reported twice.
func (r *rows) changedBridgePorts(bridgeUUID string, n *bridgeRow, f func(port string)) {
	old := r.bridges[bridgeUUID]
	if old != nil && n != nil && old.Name == n.Name {
		symmetricDiff(old.Ports, n.Ports, func(port string, _ bool) { f(port) })
		return
	}
	// Added, deleted or renamed: every port's VIFs change.
	if old != nil {
		for _, p := range old.Ports {
			f(p)
		}
	}
	if n != nil {
		for _, p := range n.Ports {
			f(p)
		}
	}
}

// addIface records the state of the interface, unless it is recorded already.
func (s *snapshot) addIface(r *rows, uuid string) {
	if _, ok := s.vifs[uuid]; !ok {
		s.vifs[uuid] = r.vifState(uuid)
	}
}

// addIfaces records the state of the interfaces.
func (s *snapshot) addIfaces(r *rows, uuids []string) {
	for _, uuid := range uuids {
		s.addIface(r, uuid)
	}
}
