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
	return []Flow{
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
	}
}
