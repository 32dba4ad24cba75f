// Package pipeline composes the pure flow generators (l2, tunnels, dvr) into the desired
// flow set of every bridge of a node.
package pipeline

import (
	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/l2"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

// Build returns the desired flows of every bridge of the node, keyed by bridge name. Every
// bridge the node uses has an entry (possibly empty), so a caller can sync each of them.
//
// Generators run in Neutron's order — L2, then tunnels, then DVR — and a later generator's
// flow replaces an earlier one with the same (table, priority, match), as a later OpenFlow
// ADD does in Neutron (T17 replaces T1 on br-tun, for example).
func Build(n *state.Node) map[string][]flows.Flow {
	// br-int gets most flows: about eight per port (binding, spoofing protection, DVR
	// delivery); room for them up front saves growing the slice while generating.
	out := map[string][]flows.Flow{n.Host.IntegrationBridge: make([]flows.Flow, 0, 32+8*len(n.Ports))}
	for _, p := range n.Host.Physical {
		out[p.Bridge] = nil
	}
	if n.Host.Tunnelling() {
		out[n.Host.TunnelBridge] = nil
	}
	l2.Generate(n, out)
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

// lastWins keeps, for every (table, priority, match), the flow added last, and sorts the
// result in dump order. It works in place: the result shares fs's array.
func lastWins(fs []flows.Flow) []flows.Flow {
	index := make(map[flows.Key]int, len(fs))
	kept := fs[:0]
	for _, f := range fs {
		k := f.Key()
		if i, ok := index[k]; ok {
			kept[i] = f
			continue
		}
		index[k] = len(kept)
		kept = append(kept, f) // never past f: len(kept) <= its index
	}
	clear(fs[len(kept):]) // no stale references beyond the result
	flows.Sort(kept)
	return kept
}
