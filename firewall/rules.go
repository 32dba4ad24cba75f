package firewall

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// Rule priorities (Neutron's rules.flow_priority_offset): 70, plus 4 for a rule without a
// remote group (conjunction rules stay below plain ones), plus 0 for any protocol, 1 for
// ICMP of any type, 2 for an ICMP type of any code, 3 for everything more specific.
const rulePriorityBase = 70

// priorityOffset is the offset of a rule's flows above rulePriorityBase, without the 4 of a
// plain rule.
func priorityOffset(r *northbound.SecurityGroupRule) uint16 {
	n, ok := r.Protocol.Number()
	if !ok {
		return 0
	}
	if n == northbound.ProtoICMP || n == northbound.ProtoIPv6ICMP {
		if r.PortRangeMin == nil {
			return 1
		}
		if r.PortRangeMax == nil {
			return 2
		}
	}
	return 3
}

func isRemote(r *northbound.SecurityGroupRule) bool {
	return r.RemoteGroupID != "" || r.RemoteAddressGroupID != ""
}

// ruleMatches returns the matches of a rule for the port (reg5), without connection
// state: the ethertype, the remote prefix (unless it is every address), the protocol and
// its ICMP type/code or destination ports, one match per masked port block. ports, when
// not nil, replaces the rule's own port range (merged conjunction rules).
func ruleMatches(port flows.Match, r *northbound.SecurityGroupRule, ports *northbound.PortRange) []flows.Match {
	m := port
	v6 := r.EtherType == northbound.IPv6
	if v6 {
		m = m.IPv6()
	} else {
		m = m.IPv4()
	}
	if p := r.RemoteIPPrefix; p.IsValid() && p.Bits() > 0 {
		switch {
		case r.Direction == northbound.Ingress && v6:
			m = m.IPv6Src(p)
		case r.Direction == northbound.Ingress:
			m = m.IPv4Src(p)
		case v6:
			m = m.IPv6Dst(p)
		default:
			m = m.IPv4Dst(p)
		}
	}
	proto, ok := r.Protocol.Number()
	if !ok {
		return []flows.Match{m}
	}
	m = m.IPProto(proto)
	if icmp, ok := r.ICMP(); ok {
		m = m.ICMPType(icmp.Type)
		if icmp.HasCode {
			m = m.ICMPCode(icmp.Code)
		}
		return []flows.Match{m}
	}
	rng, ok := r.Ports()
	if ports != nil {
		rng, ok = *ports, true
	}
	if !ok || (proto != northbound.ProtoTCP && proto != northbound.ProtoUDP && proto != northbound.ProtoSCTP) {
		// Neutron matches ports of tcp, udp and sctp only; dccp and udplite rules match
		// the protocol.
		return []flows.Match{m}
	}
	var out []flows.Match
	for _, pm := range portRangeMasks(rng.Min, rng.Max) {
		out = append(out, withDstPort(m, proto, pm))
	}
	return out
}

func withDstPort(m flows.Match, proto uint8, pm portMask) flows.Match {
	switch proto {
	case northbound.ProtoTCP:
		if pm.exact() {
			return m.TCPDst(pm.Value)
		}
		return m.TCPDstMasked(pm.Value, pm.Mask)
	case northbound.ProtoUDP:
		if pm.exact() {
			return m.UDPDst(pm.Value)
		}
		return m.UDPDstMasked(pm.Value, pm.Mask)
	default:
		if pm.exact() {
			return m.SCTPDst(pm.Value)
		}
		return m.SCTPDstMasked(pm.Value, pm.Mask)
	}
}

// The two connection states rule flows match (Neutron's rules.CT_STATES): a packet of an
// established connection that is not a reply, and a new connection's first packet.
var (
	ctEstablishedNotReply = [2]flows.CTState{flows.CTEst, flows.CTRel | flows.CTRpl}
	ctNewNotEstablished   = [2]flows.CTState{flows.CTNew, flows.CTEst}
)

// accept returns what a rule flow does with a packet it allows: egress goes on to table
// 73; ingress is output to the port, and a new connection is committed first and copied to
// table 92 (accepted ingress, for third parties).
func (pf portFlows) accept(dir northbound.Direction, isNew bool) []flows.Action {
	if dir == northbound.Egress {
		return []flows.Action{flows.ResubmitTo(flows.IntAcceptOrIngress)}
	}
	if !isNew {
		return []flows.Action{flows.Output{Port: pf.of}}
	}
	return []flows.Action{flows.CTCommit(ctZone), flows.Output{Port: pf.of}, flows.ResubmitTo(flows.IntAcceptedIngressTraffic)}
}

func rulesTable(dir northbound.Direction) flows.IntTable {
	if dir == northbound.Egress {
		return flows.IntRulesEgress
	}
	return flows.IntRulesIngress
}

// rules returns the flows of the rules of the port's groups: each plain rule as accept
// flows of its own (Neutron's add_flows_from_rules), each remote rule as the port's clause
// of a conjunction (_add_non_ip_conj_flows), registered with conj for the address side.
func (pf portFlows) rules(n *state.Node, conj *conjunctions) []flows.IntFlow {
	var out []flows.IntFlow
	remote := map[remoteRuleKey][]remoteRule{}
	var remoteKeys []remoteRuleKey
	for _, gid := range pf.p.SecurityGroups {
		g, ok := n.SecurityGroup(gid)
		if !ok {
			continue // Generate does not call rules for a blocked port
		}
		for i := range g.Rules {
			r := &g.Rules[i]
			if isRemote(r) {
				k := remoteRuleKey{r.Direction, r.EtherType, r.Protocol}
				if _, seen := remote[k]; !seen {
					remoteKeys = append(remoteKeys, k)
				}
				remote[k] = append(remote[k], remoteRule{rule: r, id: conj.add(pf.vlan, pf.nw.ID, g.ID, r)})
				continue
			}
			prio := rulePriorityBase + 4 + priorityOffset(r)
			for _, m := range ruleMatches(pf.port, r, nil) {
				out = append(out,
					pf.flow(rulesTable(r.Direction), prio, m.CTState(ctEstablishedNotReply[0], ctEstablishedNotReply[1]),
						pf.accept(r.Direction, false)...),
					pf.flow(rulesTable(r.Direction), prio, m.CTState(ctNewNotEstablished[0], ctNewNotEstablished[1]),
						pf.accept(r.Direction, true)...),
				)
			}
		}
	}
	for _, k := range remoteKeys {
		out = append(out, pf.conjunctionFlows(k, remote[k])...)
	}
	return out
}
