package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/inspect"
)

// flowFilter selects flows; every filter given must hold.
type flowFilter struct {
	port, network, router, host, tunnel, table, rule string
}

func newFlowsCommand(g *globalOptions) *cobra.Command {
	var filter flowFilter
	cmd := &cobra.Command{
		Use:   "flows [BRIDGE...]",
		Short: "Every flow with its table name, counters, pipeline rule and owner",
		Long: `flows lists every flow of the node's bridges (no BRIDGE: all of them) with its table
name, priority, match, actions, packet and byte counters, the rule of Neutron's pipeline that
made it (I30, T21, ...; "-" when it matches no known rule, never hidden) and the object it
belongs to (port, network, router, host, tunnel or bridge). dvrflow's flows name their owner
in their cookie; the flows of Neutron's own agent are recognised by their shape and resolved
through OVSDB and, when given, the topology.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, _, err := g.loadNode(cmd.Context(), args, false)
			if err != nil {
				return err
			}
			var recs []inspect.FlowRecord
			for _, br := range n.Bridges {
				for _, r := range n.Records(br) {
					if filter.keep(r) {
						recs = append(recs, r)
					}
				}
			}
			w, closeOut, err := g.writer()
			if err != nil {
				return err
			}
			switch g.output {
			case "json":
				err = writeJSON(w, recs)
			case "text":
				err = writeFlowsText(w, recs)
			default:
				err = fmt.Errorf("-o %s: flows prints text or json", g.output)
			}
			if cerr := closeOut(); err == nil {
				err = cerr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&filter.port, "port", "", "only flows of a port: its id (or a prefix), device name, IP or MAC")
	f.StringVar(&filter.network, "network", "", "only flows of a network: its id or segmentation id")
	f.StringVar(&filter.router, "router", "", "only flows of a router: its id (or a prefix)")
	f.StringVar(&filter.host, "host", "", "only flows of another host: its name or DVR MAC")
	f.StringVar(&filter.tunnel, "tunnel", "", "only flows of a tunnel: its remote IP")
	f.StringVar(&filter.table, "table", "", "only flows of a table: its name or number")
	f.StringVar(&filter.rule, "rule", "", "only flows of a pipeline rule (I30, T21, ...)")
	return cmd
}

// keep reports whether the record passes every filter given.
func (ff flowFilter) keep(r inspect.FlowRecord) bool {
	o := r.Owner
	ownerIs := func(kind, v string) bool {
		return o != nil && o.Kind == kind && (o.ID == v || o.Name == v || (len(v) >= 4 && strings.HasPrefix(o.ID, v)))
	}
	if ff.port != "" && !ownerIs(explain.KindPort, ff.port) && !mentions(r, ff.port) {
		return false
	}
	if ff.network != "" && !ownerIs(explain.KindNetwork, ff.network) && !(o != nil && o.Kind == explain.KindNetwork && strings.HasSuffix(o.Name, " "+ff.network)) {
		return false
	}
	if ff.router != "" && !ownerIs(explain.KindRouter, ff.router) {
		return false
	}
	if ff.host != "" && !ownerIs(explain.KindHost, strings.ToLower(ff.host)) && !ownerIs(explain.KindHost, ff.host) {
		return false
	}
	if ff.tunnel != "" && !ownerIs(explain.KindTunnel, ff.tunnel) {
		return false
	}
	if ff.table != "" && strconv.Itoa(int(r.Table)) != ff.table && !strings.EqualFold(r.TableName, ff.table) {
		return false
	}
	if ff.rule != "" && !strings.EqualFold(r.Rule, ff.rule) {
		return false
	}
	return true
}

// mentions reports whether the flow's match or actions name v as a whole value (a MAC, an
// IP, a port name).
func mentions(r inspect.FlowRecord, v string) bool {
	v = strings.ToLower(v)
	for _, tok := range strings.FieldsFunc(strings.ToLower(r.Match+" "+r.Actions), func(c rune) bool {
		return strings.ContainsRune(` ,=()">/`, c)
	}) {
		tok = strings.TrimPrefix(strings.TrimPrefix(tok, "output:"), "set_field:")
		if tok == v {
			return true
		}
	}
	return false
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// ownerText renders an owner for people: "port tapc0000001-00 (c0000001-0000-...)".
func ownerText(o *explain.Owner) string {
	switch {
	case o == nil:
		return "-"
	case o.ID == "" || o.ID == o.Name:
		return o.Kind + " " + o.Name
	}
	return o.Kind + " " + o.Name + " (" + o.ID + ")"
}

func ruleText(r string) string {
	if r == "" {
		return "-"
	}
	return r
}

// writeFlowsText prints the records per bridge and table.
func writeFlowsText(w io.Writer, recs []inspect.FlowRecord) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	lastBridge, lastTable := "", -1
	for _, r := range recs {
		if r.Bridge != lastBridge {
			if lastBridge != "" {
				fmt.Fprintln(tw)
			}
			fmt.Fprintf(tw, "%s\n", r.Bridge)
			lastBridge, lastTable = r.Bridge, -1
		}
		if int(r.Table) != lastTable {
			name := r.TableName
			if name == "" {
				name = "(unnamed)"
			}
			fmt.Fprintf(tw, "  table %d %s\n", r.Table, name)
			lastTable = int(r.Table)
		}
		match := r.Match
		if match == "" {
			match = "*"
		}
		fmt.Fprintf(tw, "    %s\tprio %d\t%d pkts\t%s\t%s actions=%s\n", ruleText(r.Rule), r.Priority, r.Packets, ownerText(r.Owner), match, r.Actions)
	}
	if len(recs) == 0 {
		fmt.Fprintln(tw, "no flows")
	}
	return tw.Flush()
}
