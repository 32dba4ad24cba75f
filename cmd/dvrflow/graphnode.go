package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// graphNode is what graph and report draw: the node's flow records per bridge, the patch
// ports between its bridges and, when a topology was given, the diff.
type graphNode struct {
	name              string
	readAt            time.Time
	flows             map[string][]inspect.FlowRecord
	patches           []flowgraph.Patch
	integrationBridge string
	diff              *inspect.DiffResult
}

// loadRecords reads the node the global flags point at (live, or --from-dir) with every
// bridge: the flows with their rules and owners, the patch ports from the OVSDB inventory
// (a dump without ovsdb.json has none, so its bridges are drawn unjoined), and the diff
// when there is a topology to compare with.
func loadRecords(ctx context.Context, g *globalOptions) (*graphNode, error) {
	n, err := g.loadNode(ctx, nil)
	if err != nil {
		return nil, err
	}
	node := &graphNode{
		name:              nodeName(g, n),
		readAt:            time.Now().UTC(),
		flows:             map[string][]inspect.FlowRecord{},
		integrationBridge: n.Config.IntegrationBridge,
	}
	for _, br := range n.Bridges {
		node.flows[br] = n.Records(br)
	}
	if n.Inventory != nil {
		node.patches = patchesFromInventory(n.Inventory)
	}
	switch diff, _, err := n.Diff(nil); {
	case errors.Is(err, inspect.ErrNoTopology):
	case err != nil:
		return nil, fmt.Errorf("diff: %w", err)
	default:
		node.diff = diff
	}
	return node, nil
}

// nodeName names the node in the report: the agent's host name, else the dump's directory
// or this machine's name.
func nodeName(g *globalOptions, n *inspect.Node) string {
	if n.Config.Host != "" {
		return n.Config.Host
	}
	if g.fromDir != "" {
		return filepath.Base(filepath.Clean(g.fromDir))
	}
	host, _ := os.Hostname()
	return host
}

// patchesFromInventory lists the patch ports of the switch: interfaces of type patch and
// their options:peer, on the bridge that holds the peer.
func patchesFromInventory(inv *ovsdb.Inventory) []flowgraph.Patch {
	bridgeOf := map[string]string{} // port name → bridge
	for _, b := range inv.Bridges {
		for _, p := range b.Ports {
			bridgeOf[p.Name] = b.Name
		}
	}
	var out []flowgraph.Patch
	for _, b := range inv.Bridges {
		for _, p := range b.Ports {
			peer := p.Options["peer"]
			if p.Type != "patch" || peer == "" || bridgeOf[peer] == "" {
				continue
			}
			out = append(out, flowgraph.Patch{Bridge: b.Name, Port: p.Name, PeerBridge: bridgeOf[peer], PeerPort: peer})
		}
	}
	slices.SortFunc(out, func(a, b flowgraph.Patch) int {
		return cmp.Or(strings.Compare(a.Bridge, b.Bridge), strings.Compare(a.Port, b.Port))
	})
	return out
}
