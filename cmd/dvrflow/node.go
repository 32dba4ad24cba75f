package main

import (
	"context"
	"fmt"
	"os"

	"github.com/dvrflow/dvrflow/inspect"
)

// loadNode reads the node the global flags point at (live, or --from-dir), limited to
// bridges (none: every bridge), and prints what did not stop the reading on stderr.
func (g *globalOptions) loadNode(ctx context.Context, bridges []string) (*inspect.Node, error) {
	n, err := inspect.Load(ctx, g.inspectOptions(bridges))
	if err != nil {
		return nil, err
	}
	for _, w := range n.Warnings {
		fmt.Fprintln(os.Stderr, "dvrflow: warning:", w)
	}
	return n, nil
}

func (g *globalOptions) inspectOptions(bridges []string) inspect.Options {
	return inspect.Options{
		ConfigFiles: g.configFiles, Topology: g.topology, OVSDBConnection: g.ovsdbConnection,
		OVSRundir: g.ovsRundir, FromDir: g.fromDir, Bridges: bridges,
	}
}
