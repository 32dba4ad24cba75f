package main

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/flows"
)

// restartResult is one agent restart on a converged node.
type restartResult struct {
	Took     time.Duration
	FlowMods int
	// Sent are the flows the restarted agent added or modified, as text.
	Sent []string
	// Phases is the start's breakdown.
	Phases startResult
}

// restart stops the running agent and starts a new one with the same state. The new agent
// must have learned what is installed from the switch (every bridge read), not from
// anything the old one left behind.
func (b *bench) restart(ctx context.Context, n *node, old *inproc) (*inproc, restartResult, error) {
	return b.restartAfter(ctx, n, old, nil)
}

// flowsLost stops the running agent, deletes every flow of its bridges and starts a new
// agent, which must install every flow again: what a host or an ovs-vswitchd restart leaves
// (bridges, patch ports and tags in OVSDB, the flow tables of secure bridges empty).
func (b *bench) flowsLost(ctx context.Context, n *node, old *inproc) (*inproc, restartResult, error) {
	p, r, err := b.restartAfter(ctx, n, old, func() error {
		for _, br := range agentBridges() {
			if _, err := n.host.Ofctl(ctx, "del-flows", br); err != nil {
				return fmt.Errorf("flows lost: %w", err)
			}
		}
		return nil
	})
	r.Sent = nil // every flow: the count says it
	return p, r, err
}

// restartAfter stops the running agent, runs between (if any) while no agent runs, waits
// for a quiet switch and starts a new agent.
func (b *bench) restartAfter(ctx context.Context, n *node, old *inproc, between func() error) (*inproc, restartResult, error) {
	old.close()
	if between != nil {
		if err := between(); err != nil {
			return nil, restartResult{}, err
		}
	}
	if err := b.waitQuiet(ctx, n); err != nil {
		return nil, restartResult{}, fmt.Errorf("restart: %w", err)
	}
	p, res, err := b.startInproc(ctx, n, n.topoFile)
	if err != nil {
		return nil, restartResult{}, fmt.Errorf("restart: %w", err)
	}
	r := restartResult{Took: res.Took, FlowMods: res.Report.FlowMods(), Phases: res}
	for _, s := range res.Report.Results {
		if !s.Read {
			p.close()
			return nil, r, fmt.Errorf("restart: bridge %s was not read from the switch", s.Bridge)
		}
		for _, c := range append(append([]flows.Change(nil), s.Added...), s.Modified...) {
			r.Sent = append(r.Sent, c.Flow.String())
		}
		for _, c := range s.Deleted {
			r.Sent = append(r.Sent, "delete "+c.Flow.String())
		}
	}
	if err := p.agent.Verify(ctx); err != nil {
		p.close()
		return nil, r, fmt.Errorf("restart: not converged: %w", err)
	}
	return p, r, nil
}

// deleteOneFlow deletes, by hand with ovs-ofctl, one flow the agent installed: the MAC
// spoofing protection (table 25) of the first VM port. It returns the flow as the agent
// renders it.
func (b *bench) deleteOneFlow(ctx context.Context, n *node, p *inproc) (string, error) {
	for _, f := range p.agent.Desired()[topogen.IntBridge] {
		if f.Table != 25 {
			continue
		}
		text := f.String()
		f.Cookie = 0
		spec, _, _ := strings.Cut(f.String(), " actions=")
		if _, err := n.host.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "del-flows", topogen.IntBridge, spec); err != nil {
			return "", err
		}
		return text, nil
	}
	return "", fmt.Errorf("no table 25 flow on %s to delete", topogen.IntBridge)
}
