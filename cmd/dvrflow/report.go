package main

import (
	"bytes"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/report"
)

func newReportCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "report --out FILE.html",
		Short: "One self-contained HTML page about the node, to attach to a ticket",
		Long: `report writes one HTML page that needs nothing else to open (no network, no other
files): the pipeline graph, a summary of the bridges and of the diff, every flow of every
bridge with its table, counters, rule and owner in a table that filters as you type, and
the diff against what dvrflow would install (when a topology is given).`,
		Example: `  dvrflow report --out compute1.html
  dvrflow report --from-dir ./dump --topology topology.yaml --out ticket-1234.html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			node, err := loadRecords(cmd.Context(), g)
			if err != nil {
				return err
			}
			graph := flowgraph.Build(node.graph)
			var svg bytes.Buffer
			if err := graph.Render(cmd.Context(), flowgraph.FormatSVG, &svg); err != nil {
				return fmt.Errorf("draw the graph: %w", err)
			}
			w, closeOut, err := g.writer()
			if err != nil {
				return err
			}
			err = report.Write(w, report.Input{
				Title:     node.name,
				Generated: node.readAt,
				Flows:     node.graph.Flows,
				GraphSVG:  svg.Bytes(),
				Diff:      node.diff,
			})
			if err != nil {
				_ = closeOut()
				return err
			}
			return closeOut()
		},
	}
}
