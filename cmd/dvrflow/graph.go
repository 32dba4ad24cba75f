package main

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/inspect"
)

func newGraphCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "graph [BRIDGE]",
		Short: "The pipeline as a picture: tables, the jumps between them and the patch ports between bridges",
		Long: `graph draws the node's OpenFlow pipeline: one box per table (its Neutron name, how many
flows it holds and their packet counters), an arrow wherever flows send packets on
(goto_table, resubmit, ct(table=); the label counts the flows), bold arrows through patch
ports into the next bridge, and ovals for where packets leave (NORMAL, VM ports, router
ports, tunnels, the uplink). With BRIDGE, only that bridge is drawn.

Formats (-o): dot (the default; Graphviz's language, for dot -Tpdf or an editor), svg and
png (laid out in-process, no Graphviz installation needed).`,
		Example: `  dvrflow graph -o svg --out pipeline.svg
  dvrflow graph br-int --from-dir ./dump -o png --out br-int.png`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, err := graphFormat(g.output)
			if err != nil {
				return err
			}
			node, err := loadRecords(cmd.Context(), g)
			if err != nil {
				return err
			}
			in := node.graph
			if len(args) == 1 {
				if in.Flows, err = onlyBridge(in.Flows, args[0]); err != nil {
					return err
				}
			}
			graph := flowgraph.Build(in)
			w, closeOut, err := g.writer()
			if err != nil {
				return err
			}
			if err := graph.Render(cmd.Context(), format, w); err != nil {
				_ = closeOut()
				return err
			}
			return closeOut()
		},
	}
}

// graphFormat is -o for graph: the shared default "text" means DOT.
func graphFormat(output string) (flowgraph.Format, error) {
	if output == "" || output == "text" {
		return flowgraph.FormatDOT, nil
	}
	return flowgraph.ParseFormat(output)
}

// onlyBridge keeps one bridge's flows.
func onlyBridge(flows map[string][]inspect.FlowRecord, bridge string) (map[string][]inspect.FlowRecord, error) {
	records, ok := flows[bridge]
	if !ok {
		return nil, fmt.Errorf("no bridge %q (the node has %s)", bridge, strings.Join(slices.Sorted(maps.Keys(flows)), ", "))
	}
	return map[string][]inspect.FlowRecord{bridge: records}, nil
}
