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
	name   string
	readAt time.Time
	graph  flowgraph.Input
	diff   *inspect.DiffResult
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
	node := &graphNode{name: nodeName(g, n), readAt: time.Now().UTC(), graph: flowgraph.InputOf(n)}
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
