package ovsdb

import (
	"cmp"
	"slices"
)

// eventQueue holds the VIF and bridge changes not yet sent on the Events channel, coalesced
// per Interface or Bridge UUID: the state last reported (from, the first "before" since)
// and the current one (to, the last "after"). The events are derived from those two only,
// so a burst of changes gives what a diff of the two states would. A change back to the
// reported state leaves nothing queued.
type eventQueue struct {
	vifs    map[string]vifChange    // by Interface UUID
	bridges map[string]bridgeChange // by Bridge UUID
}

type vifChange struct{ from, to vifState }

type bridgeChange struct{ from, to bridgeState }

// vif queues the change of the interface uuid from one state to another.
func (q *eventQueue) vif(uuid string, from, to vifState) {
	if queued, ok := q.vifs[uuid]; ok {
		from = queued.from
	}
	if from == to {
		delete(q.vifs, uuid)
		return
	}
	if q.vifs == nil {
		q.vifs = map[string]vifChange{}
	}
	q.vifs[uuid] = vifChange{from: from, to: to}
}

// bridge queues the change of the bridge uuid from one state to another.
func (q *eventQueue) bridge(uuid string, from, to bridgeState) {
	if queued, ok := q.bridges[uuid]; ok {
		from = queued.from
	}
	if from == to {
		delete(q.bridges, uuid)
		return
	}
	if q.bridges == nil {
		q.bridges = map[string]bridgeChange{}
	}
	q.bridges[uuid] = bridgeChange{from: from, to: to}
}

// queue queues the changes from the state before an update to the rows after it.
func (q *eventQueue) queue(before *snapshot, r *rows) {
	for uuid, from := range before.vifs {
		q.vif(uuid, from, r.vifState(uuid))
	}
	for uuid, from := range before.bridges {
		q.bridge(uuid, from, r.bridgeState(uuid))
	}
}

// resync queues the changes from the rows old to the rows cur, which replace them whole
// (a reconnection). It looks at every row of both.
func (q *eventQueue) resync(old, cur *rows) {
	for uuid := range old.ifaces {
		q.vif(uuid, old.vifState(uuid), cur.vifState(uuid))
	}
	for uuid := range cur.ifaces {
		if _, seen := old.ifaces[uuid]; !seen {
			q.vif(uuid, vifState{}, cur.vifState(uuid))
		}
	}
	for uuid := range old.bridges {
		q.bridge(uuid, old.bridgeState(uuid), cur.bridgeState(uuid))
	}
	for uuid := range cur.bridges {
		if _, seen := old.bridges[uuid]; !seen {
			q.bridge(uuid, bridgeState{}, cur.bridgeState(uuid))
		}
	}
}

// empty reports whether nothing is queued.
func (q *eventQueue) empty() bool { return len(q.vifs) == 0 && len(q.bridges) == 0 }

// events returns the queued changes as events: bridge deletions, VIF deletions, bridge
// additions, VIF additions and updates, each group sorted by name. A deleted VIF carries
// the state last reported; an added or updated one its current state. A bridge renamed
// in place gives no event.
func (q *eventQueue) events() []Event {
	var brDel, vifDel, brAdd, vifAdd []Event
	for _, c := range q.bridges {
		switch {
		case c.from.ok && !c.to.ok:
			brDel = append(brDel, Event{Kind: BridgeDeleted, Bridge: c.from.name})
		case !c.from.ok && c.to.ok:
			brAdd = append(brAdd, Event{Kind: BridgeAdded, Bridge: c.to.name})
		}
	}
	for _, c := range q.vifs {
		switch {
		case c.from.ok && !c.to.ok:
			vifDel = append(vifDel, Event{Kind: VIFDeleted, VIF: c.from.vif})
		case !c.from.ok && c.to.ok:
			vifAdd = append(vifAdd, Event{Kind: VIFAdded, VIF: c.to.vif})
		case c.from.ok && c.to.ok: // they differ: equal ones are not queued
			vifAdd = append(vifAdd, Event{Kind: VIFUpdated, VIF: c.to.vif})
		}
	}
	byName := func(a, b Event) int {
		return cmp.Or(cmp.Compare(a.Bridge, b.Bridge), cmp.Compare(a.VIF.Name, b.VIF.Name))
	}
	var evs []Event
	for _, g := range [][]Event{brDel, vifDel, brAdd, vifAdd} {
		slices.SortFunc(g, byName)
		evs = append(evs, g...)
	}
	return evs
}
