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
	out := map[string][]flows.Flow{n.Host.IntegrationBridge: nil}
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
// result in dump order.
func lastWins(fs []flows.Flow) []flows.Flow {
	index := make(map[flows.Key]int, len(fs))
	kept := fs[:0:0]
	for _, f := range fs {
		if i, ok := index[f.Key()]; ok {
			kept[i] = f
			continue
		}
		index[f.Key()] = len(kept)
		kept = append(kept, f)
	}
	flows.Sort(kept)
	return kept
}
