package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/inspect"
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
	n, _, err := g.loadNode(ctx, nil, false)
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
	node.patches = patches(n)
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

// patches are the node's patch ports, for the graph.
func patches(n *inspect.Node) []flowgraph.Patch {
	var out []flowgraph.Patch
	for _, p := range n.PatchPorts() {
		out = append(out, flowgraph.Patch{Bridge: p.Bridge, Port: p.Port, PeerBridge: p.PeerBridge, PeerPort: p.PeerPort})
	}
	return out
}
