package ovsdb

import (
	"cmp"
	"net"
	"slices"

	"go.uber.org/zap"
)

// EventKind says what an Event reports.
type EventKind int

const (
	// VIFAdded: an interface with external_ids:iface-id appeared (or gained that key).
	VIFAdded EventKind = iota + 1
	// VIFUpdated: a VIF's ofport, MAC, iface-id or bridge changed. The ofport is assigned by
	// ovs-vswitchd after the row is created, so a VIFAdded with Ofport 0 is normally followed
	// by a VIFUpdated with the real one.
	VIFUpdated
	// VIFDeleted: the interface is gone (or lost its iface-id); VIF holds its last state.
	VIFDeleted
	// BridgeAdded: a Bridge row appeared (any bridge, managed or not).
	BridgeAdded
	// BridgeDeleted: a Bridge row disappeared. A bridge deleted and re-created between two
	// looks at the cache still gives BridgeDeleted then BridgeAdded (rows are told apart by
	// UUID, not name).
	BridgeDeleted
	// Resynced: the client reconnected and reloaded the whole database. The VIF and bridge
	// events for whatever changed while it was disconnected come before it; it tells the
	// controller that ovsdb-server may have been restarted or replaced (and a fresh database
	// may lack its bridges).
	Resynced
)

func (k EventKind) String() string {
	switch k {
	case VIFAdded:
		return "VIFAdded"
	case VIFUpdated:
		return "VIFUpdated"
	case VIFDeleted:
		return "VIFDeleted"
	case BridgeAdded:
		return "BridgeAdded"
	case BridgeDeleted:
		return "BridgeDeleted"
	case Resynced:
		return "Resynced"
	}
	return "EventKind(?)"
}

// VIF is an interface that carries a Neutron port: one with external_ids:iface-id.
type VIF struct {
	Name    string // interface (and port) name, e.g. tapXXXXXXXX-XX
	IfaceID string // external_ids:iface-id, the Neutron port UUID
	MAC     string // external_ids:attached-mac; "" if not set
	Bridge  string // bridge holding its port; "" while the Bridge→Port→Interface link is unknown
	Ofport  int    // 0 = not yet assigned, -1 = ovs-vswitchd failed to add it
}

// HardwareAddr returns the VIF's attached-mac; nil when it is absent or not a MAC.
func (v VIF) HardwareAddr() net.HardwareAddr {
	hw, err := net.ParseMAC(v.MAC)
	if err != nil {
		return nil
	}
	return hw
}

// Ready reports whether flows can be keyed on the VIF: it has a valid ofport and a bridge.
func (v VIF) Ready() bool { return v.Ofport > 0 && v.Bridge != "" }

// Event is one change seen in OVSDB.
type Event struct {
	Kind   EventKind
	VIF    VIF    // for VIF events
	Bridge string // for bridge events: the bridge name
}

// Events returns the channel of changes. Events are level-triggered: every VIF event carries
// the VIF's full current state, so VIFAdded and VIFUpdated can both be handled as "upsert".
// Events report changes after Connect; use VIFs for the state at start-up (a change racing
// with that call may be reported by both). The channel is buffered; while it is full, later
// changes are coalesced, not lost. It is closed by Close.
func (c *Client) Events() <-chan Event { return c.events }

// VIFs returns the current VIFs from the cache, sorted by name.
func (c *Client) VIFs() []VIF {
	var vifs []VIF
	c.read(func(r *rows) {
		vifs = make([]VIF, 0, len(r.ifaces))
		for _, i := range r.ifaces {
			if v, ok := r.vif(i); ok {
				vifs = append(vifs, v)
			}
		}
	})
	slices.SortFunc(vifs, func(a, b VIF) int { return cmp.Compare(a.Name, b.Name) })
	return vifs
}

// run is the event loop: woken when changes are queued, it takes them and sends their
// events. Sending may block on a full channel; that only delays this goroutine, never the
// connection's, whose changes meanwhile coalesce in the queue.
func (c *Client) run() {
	defer c.wg.Done()
	for {
		select {
		case <-c.done:
			return
		case <-c.wake:
		}
		evs, reloaded := c.takeEvents()
		if reloaded {
			c.log.Info("ovsdb reloaded after reconnect")
			evs = append(evs, Event{Kind: Resynced})
		}
		for _, ev := range evs {
			c.log.Debug("ovsdb event", zap.Stringer("kind", ev.Kind), zap.String("bridge", ev.Bridge),
				zap.String("vif", ev.VIF.Name), zap.String("iface-id", ev.VIF.IfaceID),
				zap.Int("ofport", ev.VIF.Ofport), zap.String("vif-bridge", ev.VIF.Bridge))
			select {
			case c.events <- ev:
			case <-c.done:
				return
			}
		}
	}
}

// takeEvents empties the queue: it returns the queued events and whether the rows were
// reloaded since the last call. The events are built after the lock is released.
func (c *Client) takeEvents() (evs []Event, reloaded bool) {
	c.mu.Lock()
	q := c.pending
	c.pending, reloaded, c.reloaded = eventQueue{}, c.reloaded, false
	c.mu.Unlock()
	return q.events(), reloaded
}
