package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/dvrflow/dvrflow/agentapi"
	"github.com/dvrflow/dvrflow/controller/config"
)

func newStatusCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "status",
		Short: "Show the running agent's view: bound ports, local VLANs, last reconcile, problems",
		Long: `status asks the running dvrflow-agent, over its read-only API socket ([dvrflow] api_socket,
default dvrflow-agent.sock in the OVS run directory), for its view of the node: the bridges,
every VIF port with its local VLAN and status (bound, dead, waiting), the local VLAN of
every network, the last reconcile and its phases, ports waiting for an ofport, and the
northbound objects it refused (Problems). -o json prints the API's status document as is.

Exit codes: 0 success, 2 error (no agent serving the socket included).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runStatus(cmd.Context(), g)
		},
	}
}

func runStatus(ctx context.Context, g *globalOptions) error {
	if g.output != "text" && g.output != "json" {
		return fmt.Errorf("-o %s: status prints text or json", g.output)
	}
	socket, err := g.agentSocketPath()
	if err != nil {
		return err
	}
	if ctx == nil {
		ctx = context.Background()
	}
	status, err := agentapi.NewClient(socket).Status(ctx)
	if err != nil {
		return err
	}
	w, closeOut, err := g.writer()
	if err != nil {
		return err
	}
	if g.output == "json" {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		err = enc.Encode(status)
	} else {
		err = writeStatusText(w, status, time.Now())
	}
	if cerr := closeOut(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	return nil
}

// agentSocketPath is where the running agent's API is: --agent-socket; else the
// api_socket of the --config-file(s); else dvrflow-agent.sock in the run directory
// (--ovs-rundir, the config's ovs_rundir, or /var/run/openvswitch), as the agent itself
// decides.
func (g *globalOptions) agentSocketPath() (string, error) {
	if g.agentSocket != "" {
		return g.agentSocket, nil
	}
	cfg := config.DefaultConfig()
	if len(g.configFiles) > 0 {
		loaded, _, err := config.LoadConfig(g.configFiles...)
		if err != nil {
			return "", err
		}
		cfg = loaded
	}
	if g.ovsRundir != "" {
		cfg.OVSRundir = g.ovsRundir
	}
	path := cfg.APISocketPath()
	if path == "" {
		return "", fmt.Errorf("the agent's API is off (api_socket = none in %s); nothing to ask", strings.Join(g.configFiles, ", "))
	}
	return path, nil
}

// writeStatusText prints the status for people.
func writeStatusText(out io.Writer, s *agentapi.Status, now time.Time) error {
	w := &errWriter{w: out}
	source := s.Northbound
	if s.Config.TopologyFile != "" {
		source += " " + s.Config.TopologyFile
	}
	synced := "synced"
	if !s.Synced {
		synced = "not synced yet"
	}
	w.printf("%s: dvrflow-agent, agent_mode %s, northbound %s; up %s, %s\n", s.Host, s.AgentMode, source,
		roundDuration(now.Sub(s.StartedAt)), synced)
	w.printf("OVSDB %s (%s); OpenFlow run directory %s\n", connectedText(s.OVSDBConnected), s.Config.OVSDBConnection, s.Config.OVSRundir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, b := range s.Bridges {
		role := b.Role
		if b.PhysicalNetwork != "" {
			role += " (" + b.PhysicalNetwork + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%d flows\tOpenFlow %s\n", b.Name, role, b.DesiredFlows, connectedText(b.OpenFlowConnected))
	}
	w.check(tw.Flush())

	w.printf("\n")
	if s.LastReconcile == nil {
		w.printf("No reconcile yet.\n")
	} else {
		w.printf("Last reconcile: %s\n", reconcileText(s.LastReconcile, now))
		if s.LastChange != nil && s.LastChange.FinishedAt != s.LastReconcile.FinishedAt {
			w.printf("Last change:    %s\n", reconcileText(s.LastChange, now))
		}
	}
	w.printf("Reconciles: %d, repairs (flow-mods undoing other clients' changes): %d\n", s.Reconciles, s.Repairs)

	w.printf("\n%s:\n", portsHeading(s.Ports))
	if len(s.Ports) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  PORT\tDEVICE\tNETWORK\tVLAN\tOFPORT\tMAC\tSTATUS")
		for _, p := range s.Ports {
			status := string(p.Status)
			if p.Reason != "" && p.Status != agentapi.PortBound {
				status += " (" + p.Reason + ")"
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\n", p.ID, orDash(p.Device), orDash(p.NetworkID),
				numberOrDash(p.LocalVLAN), numberOrDash(p.OFPort), orDash(p.MAC), status)
		}
		w.check(tw.Flush())
	}

	w.printf("\nLocal VLANs (%d):\n", len(s.LocalVLANs))
	if len(s.LocalVLANs) > 0 {
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  NETWORK\tTYPE\tPHYSNET\tSEGMENTATION ID\tLOCAL VLAN\tPORTS")
		for _, v := range s.LocalVLANs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%d\t%d\t%d\n", v.NetworkID, v.NetworkType, orDash(v.PhysicalNetwork),
				v.SegmentationID, v.LocalVLAN, v.Ports)
		}
		w.check(tw.Flush())
	}

	if len(s.WaitingForOfport) > 0 {
		w.printf("\nAgent ports waiting for an ofport (no flow points at them yet): %s\n", strings.Join(s.WaitingForOfport, ", "))
	}
	w.printf("\nProblems (%d)", len(s.Problems))
	if len(s.Problems) == 0 {
		w.printf(": none\n")
	} else {
		w.printf(", objects refused as invalid (everything else is programmed):\n")
		for _, p := range s.Problems {
			field := ""
			if p.Field != "" {
				field = " field " + p.Field + ":"
			}
			w.printf("  %s %s:%s %s\n", p.Kind, p.Object, field, p.Message)
		}
	}
	return w.err
}

// reconcileText is one line about a reconcile.
func reconcileText(r *agentapi.Reconcile, now time.Time) string {
	var phases []string
	for _, p := range r.PhaseDurations() {
		phases = append(phases, p.Name+" "+roundDuration(p.Duration))
	}
	var changes []string
	for _, b := range r.Bridges {
		if b.Added+b.Modified+b.Deleted > 0 {
			changes = append(changes, fmt.Sprintf("%s +%d ~%d -%d", b.Bridge, b.Added, b.Modified, b.Deleted))
		}
	}
	mods := fmt.Sprintf("%d flow-mods", r.FlowMods)
	if len(changes) > 0 {
		mods += " (" + strings.Join(changes, ", ") + ")"
	}
	text := fmt.Sprintf("%s ago, took %s (%s); %s, %d ports tagged", roundDuration(now.Sub(r.FinishedAt)),
		roundDuration(r.Duration()), strings.Join(phases, ", "), mods, len(r.PortsTagged))
	if r.RouterError != "" {
		text += "; router namespaces: " + r.RouterError
	}
	return text
}

// portsHeading counts the ports by status.
func portsHeading(ports []agentapi.Port) string {
	count := map[agentapi.PortStatus]int{}
	for _, p := range ports {
		count[p.Status]++
	}
	var parts []string
	for _, st := range []agentapi.PortStatus{agentapi.PortBound, agentapi.PortDead, agentapi.PortWaiting} {
		if count[st] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", count[st], st))
		}
	}
	if len(parts) == 0 {
		return "Ports: none"
	}
	return "Ports (" + strings.Join(parts, ", ") + ")"
}

// roundDuration keeps a duration readable: milliseconds with one decimal below a second,
// then whole seconds.
func roundDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	}
	return d.Round(time.Second).String()
}

func connectedText(up bool) string {
	if up {
		return "connected"
	}
	return "NOT connected"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func numberOrDash(n int) string {
	if n == 0 {
		return "-"
	}
	return fmt.Sprint(n)
}

// errWriter keeps the first write error.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func (e *errWriter) printf(format string, args ...any) { fmt.Fprintf(e, format, args...) }

func (e *errWriter) check(err error) {
	if e.err == nil {
		e.err = err
	}
}
