package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/trace"
	"github.com/dvrflow/dvrflow/unixctl"
)

// traceOptions are trace's own flags.
type traceOptions struct {
	port, dst, proto string
	bridge, flow     string
	timeout          time.Duration
}

func newTraceCommand(g *globalOptions) *cobra.Command {
	o := &traceOptions{}
	cmd := &cobra.Command{
		Use:   "trace (--port ID|TAP --dst IP|MAC [--proto icmp|tcp:PORT|udp:PORT|arp] | --bridge BR --flow SPEC)",
		Short: "Follow a packet through the bridges (ofproto/trace), every step explained",
		Long: `trace asks ovs-vswitchd where a packet goes (ofproto/trace over its control socket;
nothing is injected) and prints every table it passes on br-int and, across patch ports, on
br-vlan, br-ex or br-tun: the flow that matched, what it did, the pipeline rule and the
object it belongs to; then where the packet leaves (a VM port, an uplink with its VLAN, a
tunnel with its VNI and remote IP) or where it is dropped.

--dst IP is resolved to a MAC through the topology. When it is off the source port's
subnet, the packet goes to the subnet's gateway (the distributed router) and is followed
on from the router's interface on the destination's subnet.

Exit codes: 0 traced, 2 error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runTrace(cmd.Context(), g, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.port, "port", "", "source port: Neutron port `ID` or its device name on br-int (tapXXX)")
	f.StringVar(&o.dst, "dst", "", "destination `IP|MAC` (an IP is resolved through the topology)")
	f.StringVar(&o.proto, "proto", "icmp", "packet: icmp (echo request), tcp:PORT, udp:PORT or arp")
	f.StringVar(&o.bridge, "bridge", "", "with --flow: the `bridge` the packet enters")
	f.StringVar(&o.flow, "flow", "", "the packet in ofproto/trace's flow `syntax` (in_port=...,dl_src=...)")
	f.DurationVar(&o.timeout, "timeout", 30*time.Second, "give up after this long")
	return cmd
}

func runTrace(ctx context.Context, g *globalOptions, o *traceOptions) error {
	raw := o.bridge != "" || o.flow != ""
	switch {
	case raw && (o.port != "" || o.dst != ""):
		return errors.New("give either --port and --dst, or --bridge and --flow")
	case raw && (o.bridge == "" || o.flow == ""):
		return errors.New("--bridge and --flow go together")
	case !raw && (o.port == "" || o.dst == ""):
		return errors.New("give --port and --dst (or --bridge and --flow)")
	}
	switch g.output {
	case "text", "json":
	default:
		return fmt.Errorf("-o %s: trace prints text or json", g.output)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	node, err := loadTraceNode(ctx, g)
	if err != nil {
		return err
	}
	tracer := &trace.Tracer{Switch: node.vswitchd, Inventory: node.inventory, Explainer: node.explainer}
	var tr *trace.Trace
	if raw {
		tr, err = tracer.Flow(ctx, o.bridge, o.flow)
	} else {
		var plan *trace.Plan
		plan, err = trace.Resolve(trace.Request{Port: o.port, Dst: o.dst, Proto: o.proto},
			trace.Node{Inventory: node.inventory, Model: node.model, IntegrationBridge: node.cfg.IntegrationBridge})
		if err != nil {
			return err
		}
		tr, err = tracer.Packet(ctx, plan)
	}
	if err != nil {
		return err
	}
	w, closeOut, err := g.writer()
	if err != nil {
		return err
	}
	if g.output == "json" {
		err = writeJSON(w, tr)
	} else {
		err = writeTraceText(w, tr)
	}
	return errors.Join(err, closeOut())
}

// traceNode is what trace reads of the node: config, topology, OVSDB, ovs-vswitchd.
type traceNode struct {
	cfg       *config.Config
	model     *northbound.Model
	inventory *ovsdb.Inventory
	explainer *explain.Explainer
	vswitchd  *unixctl.Client
}

// loadTraceNode reads what trace needs of the node through the loader every command uses
// (the config, the validated topology, the OVSDB inventory; no flows), and finds
// ovs-vswitchd's unixctl socket (--unixctl, else OVS's own rule in the run directory).
func loadTraceNode(ctx context.Context, g *globalOptions) (*traceNode, error) {
	n, _, err := g.loadNode(ctx, nil, true)
	if err != nil {
		return nil, err
	}
	sock := g.unixctl
	if sock == "" {
		if sock, err = unixctl.Find(n.Config.SocketDir(), "ovs-vswitchd"); err != nil {
			return nil, err
		}
	}
	return &traceNode{cfg: n.Config, model: n.Model, inventory: n.Inventory, explainer: n.Explainer, vswitchd: unixctl.New(sock)}, nil
}

// writeTraceText prints one line per step, then the result.
func writeTraceText(out io.Writer, tr *trace.Trace) error {
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for i, leg := range tr.Legs {
		if leg.Router != nil {
			fmt.Fprintf(w, "\nrouted by router %s: %s → %s\n", leg.Router.ID, leg.Router.FromPort, leg.Router.ToPort)
		}
		fmt.Fprintf(w, "packet %d: %s %s\n", i+1, leg.Bridge, leg.Flow)
		end := len(tr.Steps)
		if i+1 < len(tr.Legs) {
			end = tr.Legs[i+1].FirstStep
		}
		for _, s := range tr.Steps[leg.FirstStep:end] {
			table := strconv.Itoa(s.Table)
			if s.TableName != "" {
				table += " " + s.TableName
			}
			if s.Priority == nil {
				fmt.Fprintf(w, "  %s\t%s\t-\tno flow matches: dropped\t\n", s.Bridge, table)
				continue
			}
			match := s.Match
			if match == "" {
				match = "*"
			}
			fmt.Fprintf(w, "  %s\t%s\tprio %d\t%s → %s\t%s\n", s.Bridge, table, *s.Priority, match, s.Actions, ruleText(s.Rule)+" "+ownerText(s.Owner))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for _, n := range tr.Notes {
		fmt.Fprintf(out, "note: %s\n", n)
	}
	res := tr.Result
	switch res.Kind {
	case trace.KindOutput:
		for _, o := range res.Outputs {
			fmt.Fprintf(out, "result: output on %s port %s", o.Bridge, o.Port)
			if o.VLAN != nil {
				fmt.Fprintf(out, " VLAN %d", *o.VLAN)
			}
			if t := o.Tunnel; t != nil {
				fmt.Fprintf(out, " %s VNI %d to %s", t.Type, t.VNI, t.RemoteIP)
			}
			fmt.Fprintln(out)
		}
	case trace.KindDrop:
		if res.Miss && len(tr.Steps) > 0 {
			last := tr.Steps[len(tr.Steps)-1]
			_, err := fmt.Fprintf(out, "result: dropped (no flow in %s table %d %s)\n", last.Bridge, last.Table, last.TableName)
			return err
		}
		_, err := fmt.Fprintln(out, "result: dropped")
		return err
	default:
		_, err := fmt.Fprintf(out, "result: %s\n", res.Kind)
		return err
	}
	return nil
}
