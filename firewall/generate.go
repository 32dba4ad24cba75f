package firewall

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// Generate adds the firewall's br-int flows for n to out (nothing unless n.Host.Firewall):
// the per-bridge defaults, each port's flows, and the remote-group address flows of every
// network.
//
// Which ports are filtered is Neutron's choice (state.Host.Filters): a port with port
// security on whose owner is not a network:* service (router interfaces, DHCP, gateways are
// trusted) gets the whole firewall; a trusted port or one with port security off gets only
// the hooks that let its egress through (Neutron's _initialize_egress_no_port_security); a
// port whose groups are not known (Port.FirewallBlocked, unless trusted) gets only the
// hooks that send its traffic into the firewall, where nothing accepts it. Dead ports and
// ports without an ofport or a local VLAN get nothing: their traffic never reaches table 60.
func Generate(n *state.Node, out map[string][]flows.Flow) {
	if !n.Host.Firewall {
		return
	}
	br := n.Host.IntegrationBridge
	fs := out[br]
	integ := flows.IntTarget(&fs)
	integ.Add(Bridge(br)...)
	var filtered []portFlows
	for i := range n.Ports {
		p := &n.Ports[i]
		nw, ok := n.Network(p.NetworkID)
		if !ok || nw.LocalVLAN == 0 || p.OFPort == 0 || p.Dead {
			continue
		}
		pf := newPortFlows(p, nw)
		switch {
		case !n.Host.Filters(p):
			integ.Add(pf.unfiltered()...)
		case p.FirewallBlocked:
			integ.Add(pf.hooks()...)
		default:
			filtered = append(filtered, pf)
		}
	}
	conj := newConjunctions(n, filtered)
	for _, pf := range filtered {
		integ.Add(pf.base(n.Host.PermittedEthertypes)...)
		integ.Add(pf.rules(n, conj)...)
	}
	if len(filtered) > 0 {
		integ.Add(invalidDrops(br)...)
	}
	integ.Add(conj.addressFlows(n)...)
	out[br] = fs
}

// Bridge returns the firewall's per-bridge flows that do not depend on any port or rule
// (Neutron's _drop_all_unmatched_flows, _initialize_common_flows and
// _initialize_third_party_tables): the default drop of 71, 72, 73, 81, 82, 92 and 93,
// 71's clearing of conntrack state a packet carries in, 91's resubmit to 94 and 94's
// NORMAL.
func Bridge(bridge string) []flows.IntFlow {
	c := flows.Cookie(flows.CategoryBaseline, bridge)
	var out []flows.IntFlow
	for _, t := range []flows.IntTable{flows.IntBaseEgress, flows.IntRulesEgress, flows.IntAcceptOrIngress,
		flows.IntBaseIngress, flows.IntRulesIngress} {
		out = append(out, flows.IntFlow{Table: t, Priority: 0, Cookie: c})
	}
	out = append(out,
		flows.IntFlow{Table: flows.IntBaseEgress, Priority: 110, Cookie: c, Match: flows.Match{}.CTState(flows.CTTrk, 0),
			Actions: []flows.Action{flows.CTClear{}, flows.ResubmitTo(flows.IntBaseEgress)}},
		flows.IntFlow{Table: flows.IntAcceptedEgressTrafficNormal, Priority: 1, Cookie: c, Actions: []flows.Action{flows.Normal()}},
		flows.IntFlow{Table: flows.IntAcceptedEgressTraffic, Priority: 1, Cookie: c,
			Actions: []flows.Action{flows.ResubmitTo(flows.IntAcceptedEgressTrafficNormal)}},
		flows.IntFlow{Table: flows.IntAcceptedIngressTraffic, Priority: 0, Cookie: c},
		flows.IntFlow{Table: flows.IntDroppedTraffic, Priority: 0, Cookie: c},
	)
	return out
}

// invalidDrops are the drops of packets conntrack found invalid, in both rule tables.
// Neutron adds them with every filtered port, without a port match, so they are one flow
// each on the bridge; they exist while some port is filtered.
func invalidDrops(bridge string) []flows.IntFlow {
	c := flows.Cookie(flows.CategoryBaseline, bridge)
	m := flows.Match{}.CTState(flows.CTInv|flows.CTTrk, 0)
	toDropped := []flows.Action{flows.ResubmitTo(flows.IntDroppedTraffic)}
	return []flows.IntFlow{
		{Table: flows.IntRulesEgress, Priority: 50, Cookie: c, Match: m, Actions: toDropped},
		{Table: flows.IntRulesIngress, Priority: 50, Cookie: c, Match: m, Actions: toDropped},
	}
}
