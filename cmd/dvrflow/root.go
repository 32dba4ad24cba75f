package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares: where the node's switch is (the
// agent's flags, same meaning and defaults), where an offline dump is, and the output.
type globalOptions struct {
	configFiles     []string
	topology        string
	ovsdbConnection string
	ovsRundir       string
	unixctl         string
	fromDir         string
	agentSocket     string
	output          string
	outFile         string
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	root := &cobra.Command{
		Use:   "dvrflow",
		Short: "Show, explain, trace and diff the OpenFlow pipeline of a DVR node",
		Long: `dvrflow reads a node's Open vSwitch bridges (live, or a dump with --from-dir) and
explains every flow in Neutron's terms: the pipeline rule that made it and the port,
network, router, host or tunnel it belongs to. It never writes to the switch.

Exit codes: 0 success (diff: equal), 1 diff found differences, 2 error.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	f := root.PersistentFlags()
	f.StringArrayVar(&g.configFiles, "config-file", nil, "Neutron `ini` file (openvswitch_agent.ini format); repeatable, later files override earlier ones")
	f.StringVar(&g.topology, "topology", "", "standalone topology `file` (YAML or JSON): names the objects behind the flows, and is what diff compares with")
	f.StringVar(&g.ovsdbConnection, "ovsdb-connection", "", "OVSDB endpoint, unix:PATH or tcp:IP:PORT (Neutron's [ovs] ovsdb_connection)")
	f.StringVar(&g.ovsRundir, "ovs-rundir", "", "`directory` holding the bridges' BRIDGE.mgmt sockets and ovs-vswitchd's pid file ([dvrflow] ovs_rundir; default /var/run/openvswitch)")
	f.StringVar(&g.unixctl, "unixctl", "", "ovs-vswitchd's unixctl socket `path` (default: found from ovs-vswitchd.pid in the run directory)")
	f.StringVar(&g.fromDir, "from-dir", "", "read an offline dump from `DIR`: BRIDGE.flows (ovs-ofctl dump-flows output), optional ovsdb.json (ovsdb-client dump -f json) and topology.yaml|json")
	f.StringVar(&g.agentSocket, "agent-socket", "", "the running agent's API socket `path` (default: dvrflow-agent.sock in the run directory)")
	f.StringVarP(&g.output, "output", "o", "text", "output `format` (text, json; graph: dot, svg, png)")
	f.StringVar(&g.outFile, "out", "", "write the output to `FILE` instead of standard output")
	root.AddCommand(commands(g)...)
	return root
}

// commands are the subcommands, each built in its own file.
func commands(g *globalOptions) []*cobra.Command {
	return []*cobra.Command{
		newFlowsCommand(g),
		newDiffCommand(g),
		newTraceCommand(g),
		newGraphCommand(g),
		newReportCommand(g),
		newStatusCommand(g),
	}
}

// writer opens the command's output: --out FILE or standard output. close must be called.
func (g *globalOptions) writer() (w io.Writer, closeFn func() error, err error) {
	if g.outFile == "" {
		return os.Stdout, func() error { return nil }, nil
	}
	f, err := os.Create(g.outFile)
	if err != nil {
		return nil, nil, fmt.Errorf("--out: %w", err)
	}
	return f, f.Close, nil
}
