package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/dvrflow/dvrflow/agentapi"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/inspect"
)

// agentView is the running agent, when the CLI found one to ask.
type agentView struct {
	client *agentapi.Client
	status *agentapi.Status
}

// runningAgent asks the agent's API socket for its status, when the CLI reads a live node
// and was given neither a config file nor a topology: the agent then says how the node is
// configured and which topology it runs. nil when there is no agent to ask.
func (g *globalOptions) runningAgent(ctx context.Context) *agentView {
	if g.fromDir != "" || len(g.configFiles) > 0 || g.topology != "" {
		return nil
	}
	socket, err := g.agentSocketPath()
	if err != nil {
		return nil
	}
	if _, err := os.Stat(socket); err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	client := agentapi.NewClient(socket)
	status, err := client.Status(ctx)
	if err != nil {
		if !errors.Is(err, agentapi.ErrNoAgent) {
			fmt.Fprintln(os.Stderr, "dvrflow: warning: the agent's API:", err)
		}
		return nil
	}
	return &agentView{client: client, status: status}
}

// loadNode reads the node the global flags point at (live, or --from-dir), limited to
// bridges (none: every bridge), and prints what did not stop the reading on stderr. It
// also returns the running agent it took the node's configuration from, if any.
func (g *globalOptions) loadNode(ctx context.Context, bridges []string, skipFlows bool) (*inspect.Node, *agentView, error) {
	opts := g.inspectOptions(bridges)
	opts.SkipFlows = skipFlows
	agent := g.runningAgent(ctx)
	if agent != nil {
		opts.Defaults = agent.configure
		opts.Topology = agent.status.Config.TopologyFile
	}
	n, err := inspect.Load(ctx, opts)
	if err != nil {
		return nil, nil, err
	}
	for _, w := range n.Warnings {
		fmt.Fprintln(os.Stderr, "dvrflow: warning:", w)
	}
	return n, agent, nil
}

// configure sets the agent's own view of the node's configuration.
func (a *agentView) configure(cfg *config.Config) {
	c := a.status.Config
	cfg.Host = a.status.Host
	cfg.IntegrationBridge, cfg.TunnelBridge = c.IntegrationBridge, c.TunnelBridge
	if c.BridgeMappings != nil {
		cfg.BridgeMappings = c.BridgeMappings
	}
	if mac, err := net.ParseMAC(c.DVRMAC); err == nil {
		cfg.DVRMAC = mac
	}
	if c.OVSDBConnection != "" {
		cfg.OVSDBConnection = c.OVSDBConnection
	}
	if c.OVSRundir != "" {
		cfg.OVSRundir = c.OVSRundir
	}
}

func (g *globalOptions) inspectOptions(bridges []string) inspect.Options {
	return inspect.Options{
		ConfigFiles: g.configFiles, Topology: g.topology, OVSDBConnection: g.ovsdbConnection,
		OVSRundir: g.ovsRundir, FromDir: g.fromDir, Bridges: bridges,
	}
}
