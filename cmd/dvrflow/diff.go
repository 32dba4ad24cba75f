package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"slices"

	"github.com/spf13/cobra"

	"github.com/dvrflow/dvrflow/inspect"
)

func newDiffCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "diff [BRIDGE...]",
		Short: "What dvrflow would install against what the switch holds (never writes)",
		Long: `diff computes what dvrflow would install on this node — read-only, by the agent's own
code, from the config and the topology, local VLANs recovered from the ports' tags as the
agent does when it restarts — and compares it with what the switch holds, per object:
missing flows, extra flows, and flows installed with other actions. Cookies of flows that
are not dvrflow's are ignored, so it also answers, on a node Neutron's own agent programmed,
"is this what Neutron should have programmed for this topology" (modulo the differences
documented in docs/neutron-differences.md). Exit 0 when equal, 1 when different, 2 on error.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, agent, err := g.loadNode(cmd.Context(), args, false)
			if err != nil {
				return err
			}
			res, err := diffNode(cmd.Context(), n, agent, args)
			if err != nil {
				return err
			}
			w, closeOut, err := g.writer()
			if err != nil {
				return err
			}
			switch g.output {
			case "json":
				err = writeJSON(w, res)
			case "text":
				err = writeDiffText(w, res)
			default:
				err = fmt.Errorf("-o %s: diff prints text or json", g.output)
			}
			if cerr := closeOut(); err == nil {
				err = cerr
			}
			if err == nil && !res.Equal {
				return errDifferent
			}
			return err
		},
	}
}

// diffNode compares the switch with what dvrflow would install: the running agent's own
// desired flows when the CLI asked the agent (given no config file and no topology), else
// the flows computed from the config and the topology.
func diffNode(ctx context.Context, n *inspect.Node, agent *agentView, bridges []string) (*inspect.DiffResult, error) {
	if agent == nil {
		res, _, err := n.Diff(bridges)
		return res, err
	}
	doc, err := agent.client.DesiredFlows(ctx, bridges...)
	if err != nil {
		return nil, fmt.Errorf("the agent's desired flows: %w", err)
	}
	desired := map[string][]string{}
	for _, b := range doc.Bridges {
		texts := make([]string, len(b.Flows))
		for i, f := range b.Flows {
			texts[i] = f.Text
		}
		desired[b.Bridge] = texts
	}
	res, err := n.DiffDesired(desired, bridges)
	if err != nil {
		return nil, err
	}
	res.Source = "agent"
	return res, nil
}

// diffLine is one reported difference, for grouping by object.
type diffLine struct {
	mark   string
	rec    inspect.FlowRecord
	detail string
}

// writeDiffText prints the differences grouped by bridge and owner.
func writeDiffText(w io.Writer, res *inspect.DiffResult) error {
	source := "what dvrflow would install for the topology"
	if res.Source == "agent" {
		source = "the running agent's desired flows"
	}
	if res.Equal {
		_, err := fmt.Fprintf(w, "equal: the switch holds exactly %s\n", source)
		return err
	}
	fmt.Fprintf(w, "compared with %s\n", source)
	var lines []diffLine
	for _, r := range res.Missing {
		lines = append(lines, diffLine{"- missing", r, ""})
	}
	for _, r := range res.Extra {
		lines = append(lines, diffLine{"+ extra  ", r, ""})
	}
	for _, c := range res.Changed {
		lines = append(lines, diffLine{"~ changed", c.Installed, "want actions=" + c.Desired.Actions + " cookie=" + c.Desired.Cookie})
	}
	slices.SortStableFunc(lines, func(a, b diffLine) int {
		return cmp.Or(cmp.Compare(a.rec.Bridge, b.rec.Bridge), cmp.Compare(ownerText(a.rec.Owner), ownerText(b.rec.Owner)),
			cmp.Compare(a.rec.Table, b.rec.Table), cmp.Compare(b.rec.Priority, a.rec.Priority))
	})
	fmt.Fprintf(w, "different: %d missing, %d extra, %d changed\n", len(res.Missing), len(res.Extra), len(res.Changed))
	lastBridge, lastOwner := "", ""
	for _, l := range lines {
		if l.rec.Bridge != lastBridge {
			fmt.Fprintf(w, "%s\n", l.rec.Bridge)
			lastBridge, lastOwner = l.rec.Bridge, "\x00"
		}
		if o := ownerText(l.rec.Owner); o != lastOwner {
			fmt.Fprintf(w, "  %s\n", o)
			lastOwner = o
		}
		fmt.Fprintf(w, "    %s %s table=%d(%s) priority=%d %s actions=%s\n", l.mark, ruleText(l.rec.Rule), l.rec.Table, l.rec.TableName, l.rec.Priority, l.rec.Match, l.rec.Actions)
		if l.detail != "" {
			fmt.Fprintf(w, "              %s\n", l.detail)
		}
	}
	return nil
}
