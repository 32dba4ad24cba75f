// Package pipeline composes the pure flow generators (l2, the firewall, tunnels, dvr) into
// the desired flow set of every bridge of a node.
//
// # One flow per (table, priority, match): the later generator wins
//
// A bridge holds one flow per (table, priority, match), and the generators overlap: DVR
// re-emits l2's I1 (canary) and I14 (drop from the physical patch port) under its own
// cookie, and replaces tunnels' T1 with T17. Compose alone decides such collisions, with
// one rule: the flow added last wins, in the place the first had. Generators run in
// Neutron's order — L2, then tunnels, then DVR — so the later generator's flow (its cookie
// and actions) is the one installed, as Neutron's later OpenFlow ADD replaces the earlier
// flow. The same rule settles the one overlap inside a generator that the state can cause
// (an l2population MAC or IP listed under two VTEPs: the later entry wins, as in Neutron).
// Generators do not dedup against each other; where the state offers a generator several
// candidates for one flow, it chooses one itself (dvr.Generate says which).
//
// # The firewall's place
//
// The firewall (Neutron's openvswitch driver, firewall.Generate, only with
// state.Host.Firewall) runs after L2 and before tunnels and DVR, where Neutron's agent sets
// up a port's filter: after binding it, before its DVR flows. Its place is safe because it
// shares no (table, priority, match) with any other generator, so the collision rule never
// has to choose: it owns br-int tables 71–94 alone (BASE_EGRESS to
// ACCEPTED_EGRESS_TRAFFIC_NORMAL, which no other generator writes), and in table 60
// (TRANSIENT), which it shares, its hooks have priorities 100 (in_port) and 90 (dl_vlan,
// dl_dst) where L2 has only its priority-3 NORMAL and DVR its priority-20 delivery to
// serviced ports (the firewall's 90 takes precedence over the latter by priority, not by
// collision: routed traffic to a filtered port enters its ingress firewall). It writes
// nothing on br-tun or the physical bridges. With the firewall on, L2 installs no spoofing
// protection (tables 24/25: state.Host.PreventARPSpoofing is off), so nothing of table 0
// diverts a port's traffic away from table 60's hooks. TestFirewallCollidesWithNothing
// checks all this on a node that has every generator's flows.
package pipeline

import (
	"hash/maphash"

	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/firewall"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/l2"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

// Build returns the desired flows of every bridge of the node, keyed by bridge name, each
// bridge's in dump order (flows.Sort). Every bridge the node uses has an entry (possibly
// empty), so a caller can sync each of them.
//
// Generators run in Neutron's order — L2, the firewall, then tunnels, then DVR — and a
// later generator's flow replaces an earlier one with the same (table, priority, match), as
// a later OpenFlow ADD does in Neutron (T17 replaces T1 on br-tun, for example; see the
// package doc).
func Build(n *state.Node) map[string][]flows.Flow {
	out := Compose(n)
	for _, fs := range out {
		flows.Sort(fs)
	}
	return out
}

// Compose is Build without the sort: each bridge's flows in the order the generators made
// them (the first place a replaced flow had). Syncing needs no order, and sorting is about
// half of the whole computation; the agent sorts only when the flows are shown.
func Compose(n *state.Node) map[string][]flows.Flow {
	// br-int gets most flows: about eight per port (binding, spoofing protection, DVR
	// delivery); room for them up front saves growing the slice while generating.
	out := map[string][]flows.Flow{n.Host.IntegrationBridge: make([]flows.Flow, 0, 32+8*len(n.Ports))}
	for _, p := range n.Host.Physical {
		out[p.Bridge] = nil
	}
	if n.Host.Tunnelling() {
		out[n.Host.TunnelBridge] = nil
	}
	// The order is the collision rule's (package doc): do not reorder.
	l2.Generate(n, out)
	firewall.Generate(n, out) // nothing unless n.Host.Firewall
	if n.Host.Tunnelling() {
		tunnels.Generate(n, out)
	}
	if n.Host.DVR() {
		dvr.Generate(n, out)
	}
	for br, fs := range out {
		out[br] = lastWins(fs)
	}
	return out
}

// lastWins keeps, for every (table, priority, match), the flow added last, in the place the
// first one had. It works in place: the result shares fs's array.
func lastWins(fs []flows.Flow) []flows.Flow {
	// An open-addressing table of indices into kept, keyed by the flows' keys: a tenth of
	// the memory of a map[flows.Key]int and no per-insert bookkeeping.
	size := 1
	for size < 2*len(fs) {
		size <<= 1
	}
	slots := make([]int32, size) // index into kept + 1; 0 is empty
	seed := maphash.MakeSeed()
	kept := fs[:0]
	for _, f := range fs {
		h := keyHash(seed, &f)
		for i := h & uint64(size-1); ; i = (i + 1) & uint64(size-1) {
			j := slots[i]
			if j == 0 {
				slots[i] = int32(len(kept) + 1)
				kept = append(kept, f) // never past f: len(kept) <= its index
				break
			}
			if k := &kept[j-1]; k.Table == f.Table && k.Priority == f.Priority && k.Match == f.Match {
				*k = f
				break
			}
		}
	}
	clear(fs[len(kept):]) // no stale references beyond the result
	return kept
}

// keyHash hashes a flow's (table, priority, match).
func keyHash(seed maphash.Seed, f *flows.Flow) uint64 {
	return maphash.String(seed, f.Match.Key()) ^ (uint64(f.Table)<<16|uint64(f.Priority))*0x9e3779b97f4a7c15
}
