// Package l2 generates the flows of Neutron's Open vSwitch L2 agent that do not depend on
// routing: the br-int and physical-bridge baselines, local VLAN translation, port binding and
// spoofing protection (neutron-pipeline.md §2.1–2.6). Every function is pure: inputs in,
// flows out, no I/O and no hidden state.
package l2

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// DeadVLAN is the VLAN tag Neutron gives ports that must not carry traffic.
const DeadVLAN = state.DeadVLAN

// Generate appends the node's L2 flows to out (bridge name → flows): br-int's baseline, the
// baseline of every mapped physical bridge, the local VLAN translation of every flat and
// vlan network, and per port either the dead-port drop or the spoofing protection.
//
// Like every generator it never fails: what is not ready is skipped (a patch port or VIF
// with ofport 0, a network without a local VLAN or whose physnet has no bridge). Tunnelled
// networks are tunnels/'s, DVR flows dvr/'s. For a valid node (distinct ofports, local
// VLANs and provider VLANs) each (table, priority, match) appears at most once per bridge.
func Generate(n *state.Node, out map[string][]flows.Flow) {
	h := &n.Host
	intFlows := out[h.IntegrationBridge]
	integ := flows.IntTarget(&intFlows)
	integ.Add(IntegrationBaseline()...)
	for _, p := range h.Physical {
		i, ph := PhysicalBaseline(p, h.Distributed)
		integ.Add(i...)
		addPhysical(out, p.Bridge, ph)
	}
	for _, nw := range n.Networks {
		if nw.Type != northbound.VLAN && nw.Type != northbound.Flat {
			continue // local: the port tag is all; tunnels: br-tun's T12/T13
		}
		p, ok := h.PhysicalFor(nw.Physnet)
		if !ok {
			continue // unmapped physnet: the controller reports it
		}
		i, ph := LocalVLAN(nw, p, h.Distributed)
		integ.Add(i...)
		addPhysical(out, p.Bridge, ph)
	}
	var spoofing []flows.IntFlow // one port's, the buffer reused
	for i := range n.Ports {
		p := &n.Ports[i]
		switch {
		case p.OFPort == 0:
		case p.Dead:
			integ.Add(DeadPort(p))
		case h.PreventARPSpoofing:
			spoofing = appendSpoofingProtection(spoofing[:0], p)
			integ.Add(spoofing...)
		}
	}
	out[h.IntegrationBridge] = intFlows
}

// addPhysical adds fs to the physical bridge br of out.
func addPhysical(out map[string][]flows.Flow, br string, fs []flows.PhysFlow) {
	list := out[br]
	flows.PhysTarget(&list).Add(fs...)
	out[br] = list
}

// IntegrationBaseline returns br-int's default flows (Neutron's setup_default_table and
// setup_canary_table, I1–I9): the canary, the table defaults that lead every packet to
// table 60's NORMAL, and the dead-VLAN drop.
func IntegrationBaseline() []flows.IntFlow {
	c := flows.Cookie(flows.CategoryBaseline, "br-int")
	return []flows.IntFlow{
		{Table: flows.IntCanary, Priority: 0, Cookie: c},
		{Table: flows.IntLocalSwitching, Priority: 0, Cookie: c, Actions: []flows.Action{flows.Goto(flows.IntPacketRateLimit)}},
		{Table: flows.IntPacketRateLimit, Priority: 0, Cookie: c, Actions: []flows.Action{flows.Goto(flows.IntTransient)}},
		{Table: flows.IntTransient, Priority: 3, Cookie: c, Actions: []flows.Action{flows.Normal()}},
		{Table: flows.IntARPSpoof, Priority: 0, Cookie: c},
		{Table: flows.IntLocalSwitching, Priority: 65535, Cookie: c, Match: flows.Match{}.VLAN(DeadVLAN)},
		{Table: flows.IntTransientEgress, Priority: 3, Cookie: c, Actions: []flows.Action{flows.Normal()}},
		{Table: flows.IntLocalEgress, Priority: 0, Cookie: c, Actions: []flows.Action{flows.Goto(flows.IntPacketRateLimit)}},
		{Table: flows.IntLocalIP, Priority: 0, Cookie: c, Actions: []flows.Action{flows.Goto(flows.IntPacketRateLimit)}},
	}
}

// PhysicalBridge is one bridge_mappings entry with the ofports of its patch pair (IntPort:
// int-<bridge> on br-int, PhyPort: phy-<bridge> on the physical bridge).
type PhysicalBridge = state.PhysicalBridge

// PhysicalBaseline returns the flows Neutron's setup_physical_bridges installs for one
// physnet (§2.2): NORMAL on the physical bridge (P1), and drops of frames whose VLAN is not
// provisioned, in both directions (I14 on br-int, P2 on the physical bridge, the latter only
// without DVR). It returns the br-int flows and the physical bridge's flows; a patch port
// whose ofport is still 0 gets no flow.
func PhysicalBaseline(p PhysicalBridge, distributed bool) (integration []flows.IntFlow, physical []flows.PhysFlow) {
	c := flows.Cookie(flows.CategoryPhysicalPatch, p.Physnet)
	if p.IntPort != 0 {
		integration = append(integration, flows.IntFlow{Table: flows.IntLocalSwitching, Priority: 2, Cookie: c, Match: flows.Match{}.InPort(p.IntPort)})
	}
	physical = append(physical, flows.PhysFlow{Table: flows.PhysLocalSwitching, Priority: 0, Cookie: c, Actions: []flows.Action{flows.Normal()}})
	if !distributed && p.PhyPort != 0 {
		physical = append(physical, flows.PhysFlow{Table: flows.PhysLocalSwitching, Priority: 2, Cookie: c, Match: flows.Match{}.InPort(p.PhyPort)})
	}
	return integration, physical
}
