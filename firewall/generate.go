package firewall

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// Generate adds the firewall's br-int flows for n to out (nothing unless n.Host.Firewall).
//
// Temporary (written for the pipeline by the controller's branch, to be replaced by the
// generator's own): the per-bridge flows, and the rule-independent flows of every port that
// is filtered (port security on, or its firewall blocked) and not dead.
func Generate(n *state.Node, out map[string][]flows.Flow) {
	if !n.Host.Firewall {
		return
	}
	br := n.Host.IntegrationBridge
	fs := out[br]
	integ := flows.IntTarget(&fs)
	integ.Add(Bridge(br)...)
	for i := range n.Ports {
		p := &n.Ports[i]
		if p.Dead || !(p.PortSecurity || p.FirewallBlocked) {
			continue
		}
		nw, _ := n.Network(p.NetworkID)
		integ.Add(Port(p, nw)...)
	}
	out[br] = fs
}
