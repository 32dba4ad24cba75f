package flows

import (
	"net"
	"net/netip"
)

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func pfx(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

// everyKind returns flows that together use every match field and action kind of the
// model, in the shapes Neutron's pipeline uses them. Ports 1..3 must exist on the bridge.
func everyKind(cookie uint64) []Flow {
	f := func(table uint8, prio uint16, m Match, acts ...Action) Flow {
		return Flow{Table: table, Priority: prio, Cookie: cookie, Match: m, Actions: acts}
	}
	learn := Learn{Table: 20, HardTimeout: 300, Priority: 1, Cookie: cookie, Specs: []LearnSpec{
		{Kind: LearnMatch, Dst: Subfield{Field: FieldVLANTCI, Bits: 12}, Src: Subfield{Field: FieldVLANTCI, Bits: 12}},
		{Kind: LearnMatch, Dst: Whole(FieldEthDst), Src: Whole(FieldEthSrc)},
		{Kind: LearnLoad, Dst: Whole(FieldVLANTCI), Value: []byte{0, 0}},
		{Kind: LearnLoad, Dst: Whole(FieldTunnelID), Src: Whole(FieldTunnelID)},
		{Kind: LearnOutput, Src: Whole(FieldInPort)},
	}}
	return append([]Flow{
		f(0, 65535, Match{}.VLAN(4095)),
		f(0, 0, Match{}, GotoTable{59}),
		f(60, 3, Match{}, Normal()),
		f(0, 10, Match{}.InPort(2).ARP(), GotoTable{24}),
		f(0, 10, Match{}.InPort(2).ICMPv6().ICMPType(136), GotoTable{24}),
		f(0, 3, Match{}.InPort(1).VLAN(196), SetVLANVID(1), GotoTable{59}),
		f(0, 3, Match{}.InPort(1).Untagged(), PushVLAN{}, SetVLANVID(2), GotoTable{59}),
		f(24, 2, Match{}.InPort(2).ARP().ARPSPA(pfx("10.0.1.11")), GotoTable{25}),
		f(24, 2, Match{}.InPort(3).ARP().ARPSPA(pfx("10.0.2.0/24")), GotoTable{25}),
		f(24, 2, Match{}.InPort(2).ICMPv6().ICMPType(136).NDTarget(pfx("fe80::f816:3eff:fe00:101")), GotoTable{59}),
		f(24, 2, Match{}.InPort(3).ICMPv6().ICMPType(136).NDTarget(pfx("2001:db8::/64")), GotoTable{59}),
		f(25, 2, Match{}.InPort(2).EthSrc(mac("fa:16:3e:00:01:01")), GotoTable{30}),
		f(0, 99, Match{}.ARP().EthDst(mac("fa:16:3f:00:00:01")).ARPOp(2).ARPTHA(mac("fa:16:3e:aa:01:01")), SetEthDst(mac("fa:16:3e:aa:01:01")), GotoTable{59}),
		f(2, 20, Match{}.VLAN(101).EthDst(mac("fa:16:3e:00:01:01")), SetEthSrc(mac("fa:16:3e:aa:01:01")), GotoTable{59}),
		f(60, 20, Match{}.VLAN(101).EthDst(mac("fa:16:3e:00:01:01")), PopVLAN{}, Output{2}),
		f(4, 5, Match{}.VLAN(1).EthDst(mac("fa:16:3f:00:00:01")), SetEthDst(mac("fa:16:3e:aa:01:01")), PopVLAN{}, Output{3}),
		f(1, 2, Match{}.VLAN(1).EthDst(mac("fa:16:3e:aa:01:01"))),
		f(2, 4, Match{}.InPort(1).VLAN(1), SetVLANVID(196), Normal()),
		f(2, 4, Match{}.InPort(1).VLAN(2), PopVLAN{}, Normal()),
		f(2, 0, Match{}.EthDstMasked(mac("00:00:00:00:00:00"), mac("01:00:00:00:00:00")), GotoTable{20}),
		f(2, 1, Match{}.ARP().EthDst(mac("ff:ff:ff:ff:ff:ff")), GotoTable{21}),
		f(4, 1, Match{}.TunnelID(0x3e9), PushVLAN{}, SetVLANVID(1), GotoTable{10}),
		f(10, 1, Match{}, learn, Output{1}),
		f(20, 2, Match{}.VLAN(1).EthDst(mac("fa:16:3e:20:01:21")), PopVLAN{}, SetTunnelID(0x3e9), Output{2}),
		f(22, 1, Match{}.VLAN(1), PopVLAN{}, SetTunnelID(0x3e9), Output{2}, Output{3}),
		f(21, 1, Match{}.ARP().VLAN(1).ARPTPA(pfx("10.0.1.21")),
			SetARPOp(2), Move{Whole(FieldARPSHA), Whole(FieldARPTHA)}, Move{Whole(FieldARPSPA), Whole(FieldARPTPA)},
			SetARPSHA(mac("fa:16:3e:20:01:21")), SetARPSPA(netip.MustParseAddr("10.0.1.21")),
			Move{Whole(FieldEthSrc), Whole(FieldEthDst)}, SetEthSrc(mac("fa:16:3e:20:01:21")), InPort()),
		f(22, 3, Match{}.ICMPv6().VLAN(1).EthSrc(mac("fa:16:3e:aa:01:01")).ICMPType(134)),
		f(60, 9, Match{}.InPort(2).EthSrc(mac("fa:16:3e:00:01:01")), Load{Value: 1, Dst: Whole(Reg(6))}, Resubmit{61}),
		f(61, 12, Match{}.Reg(6, 1).EthDst(mac("fa:16:3e:00:01:01")), Output{2}),
		f(71, 10, Match{}.RegMasked(5, 0x2, 0xff).IPv4().IPv4Src(pfx("10.0.0.0/8")), Load{Value: 0x2a, Dst: Subfield{Field: Reg(7), Ofs: 0, Bits: 16}}, Resubmit{72}),
		f(60, 101, Match{}.UDPv4().IPv4Dst(pfx("255.255.255.255")).UDPSrc(68).UDPDst(67), GotoTable{77}),
		f(60, 101, Match{}.UDPv6().IPv6Dst(pfx("ff02::1:2")).UDPSrc(546).UDPDst(547), GotoTable{78}),
		f(0, 2, Match{}.InPort(3)),
		f(1, 1, Match{}.VLAN(1).EthSrc(mac("fa:16:3e:aa:01:01")), SetEthSrc(mac("fa:16:3f:00:00:01")), GotoTable{2}),
		f(62, 10, Match{}.InPort(2).EthSrc(mac("fa:16:3e:00:01:01")).EthDstMasked(mac("00:00:00:00:00:00"), mac("01:00:00:00:00:00")), PushVLAN{}, SetVLANVID(3), Output{1}),
		f(23, 0, Match{}),
		f(30, 0, Match{}, Output{PortLocal}),
	}, firewallKinds(cookie)...)
}

// firewallKinds returns flows in the shapes Neutron's OVS firewall writes (tables 60, 71–94
// of testdata/neutron/firewall/*.flows): conntrack matches and actions, conjunctions,
// transport port ranges. Each ct action's match has an IP Ethernet type, as OVS requires.
func firewallKinds(cookie uint64) []Flow {
	f := func(table uint8, prio uint16, m Match, acts ...Action) Flow {
		return Flow{Table: table, Priority: prio, Cookie: cookie, Match: m, Actions: acts}
	}
	reg := func(n int, v uint32) Action { return SetField{Field: Reg(n), Value: putBE(uint64(v), 4)} }
	markOne := SetField{Field: FieldCTMark, Value: []byte{0, 0, 0, 1}}
	estNotRelRpl := Match{}.CTState(CTEst, CTRel|CTRpl)
	newNotEst := Match{}.CTState(CTNew, CTEst)
	vm := mac("fa:16:3e:02:00:01")
	return []Flow{
		f(60, 100, Match{}.InPort(3), reg(5, 3), reg(6, 1), Resubmit{71}),
		f(71, 110, Match{}.CTState(CTTrk, 0), CTClear{}, Resubmit{71}),
		f(71, 65, Match{}.IPv4().Reg(5, 3).InPort(3).EthSrc(vm).IPv4Src(pfx("10.102.0.11")), CTRecirc(IntRulesEgress, 6)),
		f(71, 65, Match{}.IPv6().Reg(5, 3).InPort(3).EthSrc(vm).IPv6Src(pfx("fd00:102::b")), CTRecirc(IntRulesEgress, 6)),
		f(71, 10, Match{}.Reg(5, 3).InPort(3), CTClear{}, Resubmit{93}),
		f(72, 77, estNotRelRpl.UDPv4().Reg(5, 3).IPv4Dst(pfx("192.0.2.0/24")).UDPDst(123), Resubmit{73}),
		f(72, 77, newNotEst.UDPv4().Reg(5, 3).IPv4Dst(pfx("192.0.2.0/24")).UDPDst(123), Resubmit{73}),
		f(72, 50, Match{}.CTMark(1).Reg(5, 3), Resubmit{93}),
		f(72, 50, Match{}.CTState(CTEst|CTRpl, CTRel).CTZone(1).CTMark(0).Reg(5, 3), Resubmit{94}),
		f(72, 50, Match{}.CTState(CTInv|CTTrk, 0), Resubmit{93}),
		f(72, 50, Match{}.CTState(CTRel, CTNew|CTEst|CTInv).CTZone(1).CTMark(0).Reg(5, 3), Resubmit{94}),
		f(72, 40, Match{}.CTState(CTEst, 0).IPv4().Reg(5, 3), CTCommit(6, markOne)),
		f(72, 40, Match{}.CTState(CTEst, 0).IPv6().Reg(5, 3), CTCommit(6, markOne)),
		f(72, 40, Match{}.CTState(0, CTEst).Reg(5, 3), Resubmit{93}),
		f(73, 90, newNotEst.IPv6().Reg(5, 3), CTCommit(6), Resubmit{91}),
		f(81, 90, Match{}.CTState(0, CTTrk).IPv4().Reg(5, 3), CTRecirc(IntRulesIngress, 6)),
		f(81, 80, Match{}.CTState(CTTrk, 0).Reg(5, 3), Resubmit{82}),
		f(82, 77, estNotRelRpl.ICMPv4().Reg(5, 3).ICMPType(8).ICMPCode(0), Output{3}),
		f(82, 77, newNotEst.ICMPv4().Reg(5, 3).ICMPType(8).ICMPCode(0), CTCommit(6), Output{3}, Resubmit{92}),
		f(82, 77, estNotRelRpl.ICMPv6().Reg(5, 3).ICMPType(128), Output{3}),
		f(82, 77, estNotRelRpl.ICMPv6().Reg(5, 3).ICMPType(1).ICMPCode(4), Output{3}),
		f(82, 77, estNotRelRpl.IPv4().Reg(5, 3).IPProto(47), Output{3}),
		f(82, 77, newNotEst.IPv4().Reg(5, 3).IPProto(47), CTCommit(6), Output{3}, Resubmit{92}),
		f(82, 77, estNotRelRpl.TCPv4().Reg(5, 3), Output{3}),
		f(82, 77, estNotRelRpl.TCPv4().Reg(5, 3).TCPDstMasked(0x1f40, 0xffc0), Output{3}),
		f(82, 77, newNotEst.TCPv4().Reg(5, 3).TCPDstMasked(0x1f80, 0xfff0), CTCommit(6), Output{3}, Resubmit{92}),
		f(82, 77, estNotRelRpl.TCPv4().Reg(5, 3).IPv4Src(pfx("10.20.0.0/16")).TCPDst(3306), Output{3}),
		f(82, 77, estNotRelRpl.TCPv6().Reg(5, 3).TCPDst(443), Output{3}),
		f(82, 77, estNotRelRpl.TCPv4().Reg(5, 3).TCPSrcMasked(0x400, 0xfc00), Output{3}),
		f(82, 77, estNotRelRpl.UDPv4().Reg(5, 3).UDPDst(53), Output{3}),
		f(82, 77, estNotRelRpl.UDPv4().Reg(5, 3).UDPSrcMasked(0x800, 0xf800).UDPDstMasked(0x1000, 0xff00), Output{3}),
		f(82, 77, estNotRelRpl.UDPv6().Reg(5, 3).UDPDstMasked(0x20, 0xfff0), Output{3}),
		f(82, 77, estNotRelRpl.SCTPv4().Reg(5, 3).SCTPDst(5000), Output{3}),
		f(82, 77, estNotRelRpl.SCTPv4().Reg(5, 3).SCTPSrc(7).SCTPDstMasked(0x1f40, 0xffc0), Output{3}),
		f(82, 77, estNotRelRpl.SCTPv6().Reg(5, 3).SCTPSrcMasked(0x400, 0xfc00), Output{3}),
		f(82, 71, estNotRelRpl.IPv4().Reg(6, 1).IPv4Src(pfx("10.103.0.101")), Conjunction{ID: 22, Clause: 1, NClauses: 2}, Conjunction{ID: 38, Clause: 1, NClauses: 2}),
		f(82, 71, estNotRelRpl.IPv6().Reg(6, 1).IPv6Src(pfx("fd00:104::200")), Conjunction{ID: 24, Clause: 1, NClauses: 2}),
		f(82, 71, estNotRelRpl.TCPv4().Reg(5, 3).TCPDst(22), Conjunction{ID: 22, Clause: 2, NClauses: 2}),
		f(82, 71, newNotEst.TCPv4().Reg(5, 3).TCPDst(22), Conjunction{ID: 23, Clause: 2, NClauses: 2}),
		f(82, 70, estNotRelRpl.ConjID(22).IPv4().Reg(5, 3), reg(7, 0x16), Output{3}),
		f(82, 70, newNotEst.ConjID(23).IPv4().Reg(5, 3), reg(7, 0x17), CTCommit(6), Output{3}, Resubmit{92}),
		f(82, 60, Match{}.CTState(CTEst|CTTrk, 0).IPv4().Reg(5, 3), CT{Recirc: true, Table: 91, ZoneImm: 5}),
		f(82, 60, Match{}.CTState(CTNew|CTTrk, CTInv).IPv6().Reg(5, 3), CT{Commit: true}),
		f(82, 60, Match{}.CTMark(0x12345678).CTZone(4000).IPv4().Reg(5, 3), CT{Commit: true, ZoneImm: 7, Exec: []Action{SetField{Field: FieldCTMark, Value: []byte{0, 0, 0, 0}}}}),
		f(91, 100, Match{}.CTState(CTNew, CTEst).Reg(5, 4).IPv4(), CT{Commit: true, Recirc: true, Table: 92, Zone: Subfield{Field: Reg(6), Ofs: 16, Bits: 16}}),
	}
}
