package firewall

import (
	"bytes"
	"net"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// portFlows builds the flows of one port on its network.
type portFlows struct {
	p      *state.Port
	nw     *state.Network
	of     uint32
	vlan   uint16
	cookie uint64
	// port matches reg5 = the port; fromPort also its in_port.
	port, fromPort flows.Match
}

func newPortFlows(p *state.Port, nw *state.Network) portFlows {
	port := flows.Match{}.Reg(RegPort, p.OFPort)
	return portFlows{p: p, nw: nw, of: p.OFPort, vlan: nw.LocalVLAN,
		cookie: flows.Cookie(flows.CategoryFirewall, p.ID),
		port:   port, fromPort: port.InPort(p.OFPort)}
}

func (pf portFlows) flow(t flows.IntTable, prio uint16, m flows.Match, a ...flows.Action) flows.IntFlow {
	return flows.IntFlow{Table: t, Priority: prio, Cookie: pf.cookie, Match: m, Actions: a}
}

func setReg(n int, v uint32) flows.Action { return flows.SetField{Field: flows.Reg(n), Value: be32(v)} }

// ctZone is the zone every conntrack action of the firewall uses: the port's local VLAN,
// from reg6.
const ctZone = RegNet

// macIP is one (MAC, address) the port may send from: its own MAC with a fixed IP, or an
// allowed address pair.
type macIP struct {
	mac net.HardwareAddr
	ip  netip.Prefix
}

// allowedMACs returns the port's MAC and its address pairs' MACs, without duplicates, in
// a stable order (the port's first).
func (pf portFlows) allowedMACs() []net.HardwareAddr {
	macs := []net.HardwareAddr{pf.p.MAC}
	for _, ap := range pf.p.AllowedAddressPairs {
		mac := pairMAC(pf.p, ap)
		if !slices.ContainsFunc(macs, func(m net.HardwareAddr) bool { return bytes.Equal(m, mac) }) {
			macs = append(macs, mac)
		}
	}
	return macs
}

// pairMAC is an address pair's MAC, the port's when the pair has none (as Neutron's server
// fills it in).
func pairMAC(p *state.Port, ap state.AddressPair) net.HardwareAddr {
	if len(ap.MAC) == 0 {
		return p.MAC
	}
	return ap.MAC
}

// sources returns the (MAC, address) pairs the port may send from, per family, as
// Neutron's OFPort has them: the fixed IPs with the port's MAC and the address pairs; for
// IPv6 also the port's link-local address. Duplicates are dropped.
func (pf portFlows) sources() (v4, v6 []macIP) {
	add := func(list []macIP, e macIP) []macIP {
		if slices.ContainsFunc(list, func(x macIP) bool { return x.ip == e.ip && bytes.Equal(x.mac, e.mac) }) {
			return list
		}
		return append(list, e)
	}
	v6 = add(v6, macIP{pf.p.MAC, host(LinkLocal(pf.p.MAC))})
	for _, f := range pf.p.FixedIPs {
		e := macIP{pf.p.MAC, host(f.IP)}
		if f.IP.Is4() {
			v4 = add(v4, e)
		} else {
			v6 = add(v6, e)
		}
	}
	for _, ap := range pf.p.AllowedAddressPairs {
		e := macIP{pairMAC(pf.p, ap), ap.Prefix.Masked()}
		if ap.Prefix.Addr().Is4() {
			v4 = add(v4, e)
		} else {
			v6 = add(v6, e)
		}
	}
	return v4, v6
}

// hooks are table 60's flows that send the port's traffic into its firewall: egress by
// in_port, ingress by destination MAC on the local VLAN, and, on VLAN and flat networks,
// by destination MAC on the provider VLAN or untagged (Neutron's
// install_physical_direct_flow, for frames DVR delivers straight from the physical bridge),
// plus table 73's hand-over of traffic from another port of this bridge to this port's
// ingress.
func (pf portFlows) hooks() []flows.IntFlow {
	out := []flows.IntFlow{
		pf.flow(flows.IntTransient, 100, flows.Match{}.InPort(pf.of),
			setReg(RegPort, pf.of), setReg(RegNet, uint32(pf.vlan)), flows.ResubmitTo(flows.IntBaseEgress)),
	}
	for _, mac := range pf.allowedMACs() {
		switch pf.nw.Type {
		case northbound.VLAN:
			out = append(out, pf.flow(flows.IntTransient, 90, flows.Match{}.VLAN(uint16(pf.nw.SegmentationID)).EthDst(mac),
				setReg(RegPort, pf.of), setReg(RegNet, uint32(pf.vlan)), flows.PopVLAN{}, flows.ResubmitTo(flows.IntBaseIngress)))
		case northbound.Flat:
			out = append(out, pf.flow(flows.IntTransient, 90, flows.Match{}.Untagged().EthDst(mac),
				setReg(RegPort, pf.of), setReg(RegNet, uint32(pf.vlan)), flows.ResubmitTo(flows.IntBaseIngress)))
		}
		out = append(out,
			pf.flow(flows.IntTransient, 90, flows.Match{}.VLAN(pf.vlan).EthDst(mac),
				setReg(RegPort, pf.of), setReg(RegNet, uint32(pf.vlan)), flows.PopVLAN{}, flows.ResubmitTo(flows.IntBaseIngress)),
			pf.flow(flows.IntAcceptOrIngress, 100, flows.Match{}.Reg(RegNet, uint32(pf.vlan)).EthDst(mac),
				setReg(RegPort, pf.of), flows.ResubmitTo(flows.IntBaseIngress)),
		)
	}
	return out
}

// unfiltered are the flows of a port the firewall does not filter (port security off, or a
// trusted network:* owner): its egress skips the rules and is switched NORMAL (Neutron's
// _initialize_egress_no_port_security); traffic to it is not intercepted.
func (pf portFlows) unfiltered() []flows.IntFlow {
	return []flows.IntFlow{
		pf.flow(flows.IntTransient, 100, flows.Match{}.InPort(pf.of),
			setReg(RegPort, pf.of), setReg(RegNet, uint32(pf.vlan)), flows.ResubmitTo(flows.IntAcceptOrIngress)),
		pf.flow(flows.IntAcceptOrIngress, 80, pf.port, flows.ResubmitTo(flows.IntAcceptedEgressTrafficNormal)),
	}
}

// base returns the rule-independent flows of a filtered port: its hooks, the egress
// base (Neutron's _initialize_egress), the ingress base (_initialize_ingress) and the
// connection tracking of both rule tables (_initialize_tracked_egress/_ingress).
func (pf portFlows) base(permittedEthertypes []uint16) []flows.IntFlow {
	out := pf.hooks()
	out = append(out, pf.egressBase(permittedEthertypes)...)
	out = append(out, pf.ingressBase()...)
	out = append(out, pf.tracked()...)
	return out
}

func (pf portFlows) egressBase(permittedEthertypes []uint16) []flows.IntFlow {
	var out []flows.IntFlow
	add := func(prio uint16, m flows.Match, a ...flows.Action) {
		out = append(out, pf.flow(flows.IntBaseEgress, prio, m, a...))
	}
	toNormal := flows.ResubmitTo(flows.IntAcceptedEgressTrafficNormal)
	toRules := flows.CTRecirc(flows.IntRulesEgress, ctZone)
	v4, v6 := pf.sources()
	for _, s := range v4 {
		add(95, pf.fromPort.ARP().EthSrc(s.mac).ARPSPA(s.ip), toNormal)
		add(65, pf.fromPort.IPv4().EthSrc(s.mac).IPv4Src(s.ip), toRules)
	}
	for _, s := range v6 {
		for _, t := range icmpv6AllowedEgress {
			add(95, pf.fromPort.ICMPv6().ICMPType(t).EthSrc(s.mac).IPv6Src(s.ip), toNormal)
		}
		for _, t := range icmpv6RestrictedEgress {
			add(95, pf.fromPort.ICMPv6().ICMPType(t).NDTarget(s.ip), toNormal)
		}
		add(65, pf.fromPort.IPv6().EthSrc(s.mac).IPv6Src(s.ip), toRules)
	}
	// DHCP discovery, from each source and from 0.0.0.0 with the port's MAC.
	toAccept := flows.ResubmitTo(flows.IntAcceptOrIngress)
	for _, s := range append(slices.Clone(v4), macIP{pf.p.MAC, host(netip.IPv4Unspecified())}) {
		add(80, pf.fromPort.UDPv4().EthSrc(s.mac).IPv4Src(s.ip).UDPSrc(dhcpv4Client).UDPDst(dhcpv4Server), toAccept)
	}
	for _, s := range v6 {
		add(80, pf.fromPort.UDPv6().EthSrc(s.mac).IPv6Src(s.ip).UDPSrc(dhcpv6Client).UDPDst(dhcpv6Server), toAccept)
	}
	// No DHCP server nor router advertisements from the instance.
	toDropped := flows.ResubmitTo(flows.IntDroppedTraffic)
	add(70, pf.fromPort.UDPv4().UDPSrc(dhcpv4Server).UDPDst(dhcpv4Client), toDropped)
	add(70, pf.fromPort.UDPv6().UDPSrc(dhcpv6Server).UDPDst(dhcpv6Client), toDropped)
	add(70, pf.fromPort.ICMPv6().ICMPType(icmpv6RA), toDropped)
	// Ethertypes the operator permits ([securitygroup] permitted_ethertypes).
	for _, et := range permittedEthertypes {
		add(95, pf.port.EthType(et), toNormal)
	}
	// Everything else the port sends is dropped.
	add(10, pf.fromPort, flows.CTClear{}, toDropped)

	// Accept or ingress: traffic to one of the port's MACs on its network enters its ingress
	// firewall (hooks); a new connection is committed and goes to 91; the rest to NORMAL.
	for _, et := range []flows.Match{pf.port.IPv4(), pf.port.IPv6()} {
		out = append(out, pf.flow(flows.IntAcceptOrIngress, 90, et.CTState(flows.CTNew, flows.CTEst),
			flows.CTCommit(ctZone), flows.ResubmitTo(flows.IntAcceptedEgressTraffic)))
	}
	out = append(out, pf.flow(flows.IntAcceptOrIngress, 80, pf.port, toNormal))
	return out
}

func (pf portFlows) ingressBase() []flows.IntFlow {
	output := flows.Output{Port: pf.of}
	out := []flows.IntFlow{pf.flow(flows.IntBaseIngress, 100, pf.port.ARP(), output)}
	for _, t := range icmpv6AllowedIngress {
		out = append(out, pf.flow(flows.IntBaseIngress, 100, pf.port.ICMPv6().ICMPType(t), output))
	}
	out = append(out,
		pf.flow(flows.IntBaseIngress, 95, pf.port.UDPv4().UDPSrc(dhcpv4Server).UDPDst(dhcpv4Client), output),
		pf.flow(flows.IntBaseIngress, 95, pf.port.UDPv6().UDPSrc(dhcpv6Server).UDPDst(dhcpv6Client), output),
	)
	for _, et := range []flows.Match{pf.port.IPv4(), pf.port.IPv6()} {
		out = append(out, pf.flow(flows.IntBaseIngress, 90, et.CTState(0, flows.CTTrk),
			flows.CTRecirc(flows.IntRulesIngress, ctZone)))
	}
	out = append(out, pf.flow(flows.IntBaseIngress, 80, pf.port.CTState(flows.CTTrk, 0), flows.ResubmitTo(flows.IntRulesIngress)))
	return out
}

// ctMarkInvalid marks a connection a rule change no longer allows.
const ctMarkInvalid = 1

// tracked are the connection-state flows of both rule tables: replies and related packets
// of connections not marked invalid pass (egress to NORMAL, ingress to the port); a
// packet of a marked connection is dropped; an established connection that no rule
// accepted any more is marked; anything else not established is dropped.
func (pf portFlows) tracked() []flows.IntFlow {
	var out []flows.IntFlow
	for _, dir := range []struct {
		table flows.IntTable
		pass  flows.Action
	}{
		{flows.IntRulesEgress, flows.ResubmitTo(flows.IntAcceptedEgressTrafficNormal)},
		{flows.IntRulesIngress, flows.Output{Port: pf.of}},
	} {
		out = append(out, pf.flow(dir.table, 50, pf.port.CTMark(ctMarkInvalid), flows.ResubmitTo(flows.IntDroppedTraffic)))
		// OF_STATE_ESTABLISHED_REPLY (+est-rel+rpl) and OF_STATE_RELATED (-new-est+rel-inv).
		for _, st := range [][2]flows.CTState{
			{flows.CTEst | flows.CTRpl, flows.CTRel},
			{flows.CTRel, flows.CTNew | flows.CTEst | flows.CTInv},
		} {
			out = append(out, pf.flow(dir.table, 50, pf.port.CTState(st[0], st[1]).CTZone(pf.vlan).CTMark(0), dir.pass))
		}
		out = append(out, pf.flow(dir.table, 40, pf.port.CTState(0, flows.CTEst), flows.ResubmitTo(flows.IntDroppedTraffic)))
		for _, et := range []flows.Match{pf.port.IPv4(), pf.port.IPv6()} {
			out = append(out, pf.flow(dir.table, 40, et.CTState(flows.CTEst, 0),
				flows.CTCommit(ctZone, flows.SetField{Field: flows.FieldCTMark, Value: be32(ctMarkInvalid)})))
		}
	}
	return out
}

// LinkLocal is the EUI-64 IPv6 link-local address of mac (Neutron's
// ipv6_utils.get_ipv6_addr_by_EUI64(fe80::/64, mac)).
func LinkLocal(mac net.HardwareAddr) netip.Addr {
	var a [16]byte
	a[0], a[1] = 0xfe, 0x80
	a[8], a[9], a[10] = mac[0]^0x02, mac[1], mac[2]
	a[11], a[12] = 0xff, 0xfe
	a[13], a[14], a[15] = mac[3], mac[4], mac[5]
	return netip.AddrFrom16(a)
}

func host(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, a.BitLen()) }

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
