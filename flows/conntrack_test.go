package flows

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

// TestFirewallMatchText: the new match fields print in OVS's match_format order (conj_id,
// ct_state, ct_zone, ct_mark before the protocol keyword; ports and ICMP code after).
// The wants are lines of testdata/neutron/firewall/*.flows (cookie and reset_counts
// removed) and, for shapes Neutron did not write there, what ovs-ofctl printed for them
// (TestFirewallShapesOnOVS checks every flow of firewallKinds against the switch).
func TestFirewallMatchText(t *testing.T) {
	est := Match{}.CTState(CTEst, CTRel|CTRpl)
	for _, tc := range []struct {
		m    Match
		prio uint16
		want string
	}{
		{est.ConjID(16).IPv4().Reg(5, 3), 70, "priority=70,conj_id=16,ct_state=+est-rel-rpl,ip,reg5=0x3"},
		{Match{}.Reg(5, 3).CTMark(0).CTZone(1).CTState(CTEst|CTRpl, CTRel), 50, "priority=50,ct_state=+est-rel+rpl,ct_zone=1,ct_mark=0,reg5=0x3"},
		{Match{}.CTState(CTRel, CTNew|CTEst|CTInv).CTZone(1).CTMark(0).Reg(5, 3), 50, "priority=50,ct_state=-new-est+rel-inv,ct_zone=1,ct_mark=0,reg5=0x3"},
		{Match{}.CTState(CTNew, CTEst).IPv4().Reg(5, 3).IPProto(47), 77, "priority=77,ct_state=+new-est,ip,reg5=0x3,nw_proto=47"},
		{Match{}.CTState(CTInv|CTTrk, 0), 50, "priority=50,ct_state=+inv+trk"},
		{Match{}.CTState(CTTrk, 0), 110, "priority=110,ct_state=+trk"},
		{Match{}.CTState(0, CTTrk).IPv6().Reg(5, 3), 90, "priority=90,ct_state=-trk,ipv6,reg5=0x3"},
		{Match{}.CTState(0, CTEst).Reg(5, 3), 40, "priority=40,ct_state=-est,reg5=0x3"},
		{Match{}.CTMark(1).Reg(5, 3), 50, "priority=50,ct_mark=0x1,reg5=0x3"},
		{est.ICMPv4().Reg(5, 3).ICMPType(8).ICMPCode(0), 77, "priority=77,ct_state=+est-rel-rpl,icmp,reg5=0x3,icmp_type=8,icmp_code=0"},
		{est.ICMPv6().Reg(5, 3).ICMPType(1).ICMPCode(4), 77, "priority=77,ct_state=+est-rel-rpl,icmp6,reg5=0x3,icmp_type=1,icmp_code=4"},
		{est.TCPv4().Reg(5, 3).TCPDstMasked(0x1f40, 0xffc0), 77, "priority=77,ct_state=+est-rel-rpl,tcp,reg5=0x3,tp_dst=0x1f40/0xffc0"},
		{est.TCPv4().Reg(5, 3).IPv4Src(pfx("10.20.0.0/16")).TCPDst(3306), 77, "priority=77,ct_state=+est-rel-rpl,tcp,reg5=0x3,nw_src=10.20.0.0/16,tp_dst=3306"},
		{est.TCPv6().Reg(5, 3).TCPDst(443), 77, "priority=77,ct_state=+est-rel-rpl,tcp6,reg5=0x3,tp_dst=443"},
		{est.TCPv4().Reg(5, 3).TCPSrc(80).TCPDstMasked(0x8000, 0xffff), 77, "priority=77,ct_state=+est-rel-rpl,tcp,reg5=0x3,tp_src=80,tp_dst=32768"},
		{est.UDPv4().Reg(5, 3).UDPSrcMasked(0x800, 0xf800).UDPDstMasked(0x1000, 0xff00), 77, "priority=77,ct_state=+est-rel-rpl,udp,reg5=0x3,tp_src=0x800/0xf800,tp_dst=0x1000/0xff00"},
		{est.SCTPv4().Reg(5, 3).SCTPSrc(7).SCTPDstMasked(0x1f40, 0xffc0), 77, "priority=77,ct_state=+est-rel-rpl,sctp,reg5=0x3,tp_src=7,tp_dst=0x1f40/0xffc0"},
		{est.SCTPv6().Reg(5, 3).SCTPSrcMasked(0x400, 0xfc00).SCTPDst(9), 77, "priority=77,ct_state=+est-rel-rpl,sctp6,reg5=0x3,tp_src=0x400/0xfc00,tp_dst=9"},
		// Masks OVS may report that our builders do not make.
		{Match{}.with(FieldCTState, putBE(uint64(CTEst|CTTrk), 4), nil), 1, "priority=1,ct_state=est|trk"},
		{Match{}.with(FieldCTState, []byte{0, 0, 0, 0}, nil), 1, "priority=1,ct_state=0"},
		{Match{}.with(FieldCTState, putBE(0x40, 4), putBE(0x1c0, 4)), 1, "priority=1,ct_state=+snat-dnat-[Unknown]"},
		{Match{}.with(FieldCTMark, putBE(0x10, 4), putBE(0xf0, 4)), 1, "priority=1,ct_mark=0x10/0xf0"},
	} {
		var w textWriter
		tc.m.appendText(&w, tc.prio, nil)
		if got := w.String(); got != tc.want {
			t.Errorf("got  %s\nwant %s", got, tc.want)
		}
	}
}

// TestFirewallMatchBytes: the new fields' TLVs (NXM class 1 for the conntrack fields and
// conj_id, OXM for the ports), canonical whatever the order of the builders.
func TestFirewallMatchBytes(t *testing.T) {
	for _, tc := range []struct {
		m    Match
		want string // hex
	}{
		{Match{}.CTState(CTEst, CTRel|CTRpl), "0001d308" + "00000002" + "0000000e"},
		{Match{}.CTState(CTNew|CTEst|CTRel|CTRpl|CTInv|CTTrk|0xffffffc0, 0), "0001d204" + "ffffffff"}, // a full mask is exact
		{Match{}.CTZone(1), "0001d402" + "0001"},
		{Match{}.CTMark(0x12345678), "0001d604" + "12345678"},
		{Match{}.ConjID(16), "00014a04" + "00000010"},
		{Match{}.TCPDstMasked(0x1f47, 0xffc0), "80001d04" + "1f40ffc0"}, // value stored masked
		{Match{}.UDPSrcMasked(0x800, 0xf800), "80001f04" + "0800f800"},
		{Match{}.SCTPSrc(7), "80002202" + "0007"},
		{Match{}.SCTPDstMasked(0x1f40, 0xffc0), "80002504" + "1f40ffc0"},
		{Match{}.IPv4().ICMPCode(3), "80000a02" + "0800" + "80002801" + "03"},
		{Match{}.IPv6().ICMPCode(4), "80000a02" + "86dd" + "80003c01" + "04"},
		// Canonical order: class 1 (reg5, conj_id, ct_*) before the OXM fields.
		{Match{}.IPv4().CTMark(0).ConjID(1).Reg(5, 3).CTZone(2),
			"00010a04" + "00000003" + "00014a04" + "00000001" + "0001d402" + "0002" + "0001d604" + "00000000" + "80000a02" + "0800"},
	} {
		if got := hex.EncodeToString(tc.m.Bytes()); got != tc.want {
			t.Errorf("%s:\n got  %s\n want %s", Flow{Match: tc.m}, got, tc.want)
		}
	}
	a := Match{}.CTState(CTNew, CTEst).TCPv4().Reg(5, 3).TCPDst(22).ConjID(7)
	b := Match{}.ConjID(7).TCPDst(22).Reg(5, 3).TCPv4().CTState(CTNew, CTEst)
	if a != b {
		t.Errorf("the same fields in another order give other bytes")
	}
	c, err := CanonicalMatch(reversedTLVs(t, a))
	if err != nil || c != a {
		t.Errorf("CanonicalMatch of the reversed TLVs = %x, %v; want %x", c.Bytes(), err, a.Bytes())
	}
}

// TestConntrackActions: text as ovs-ofctl prints it and the OpenFlow 1.3 bytes OVS
// returns in flow stats (nx_action_conntrack, nx_action_conjunction, ct_clear; nested
// set_field with ct_mark's NXM header), for every shape of the firewall.
func TestConntrackActions(t *testing.T) {
	markOne := SetField{Field: FieldCTMark, Value: []byte{0, 0, 0, 1}}
	const nx = "ffff" // OFPAT_EXPERIMENTER
	for _, tc := range []struct {
		a    Action
		text string
		hex  string
	}{
		{CTRecirc(IntRulesEgress, 6), "ct(table=72,zone=NXM_NX_REG6[0..15])",
			nx + "0018" + "00002320" + "0023" + "0000" + "00010c04" + "000f" + "48" + "000000" + "0000"},
		{CTRecirc(IntRulesIngress, 6), "ct(table=82,zone=NXM_NX_REG6[0..15])",
			nx + "0018" + "00002320" + "0023" + "0000" + "00010c04" + "000f" + "52" + "000000" + "0000"},
		{CTCommit(6), "ct(commit,zone=NXM_NX_REG6[0..15])",
			nx + "0018" + "00002320" + "0023" + "0001" + "00010c04" + "000f" + "ff" + "000000" + "0000"},
		{CTCommit(6, markOne), "ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark))",
			nx + "0028" + "00002320" + "0023" + "0001" + "00010c04" + "000f" + "ff" + "000000" + "0000" +
				"0019" + "0010" + "0001d604" + "00000001" + "00000000"},
		{CT{Commit: true, ZoneImm: 7, Exec: []Action{SetField{Field: FieldCTMark, Value: []byte{0, 0, 0, 0}}}}, "ct(commit,zone=7,exec(set_field:0->ct_mark))",
			nx + "0028" + "00002320" + "0023" + "0001" + "00000000" + "0007" + "ff" + "000000" + "0000" +
				"0019" + "0010" + "0001d604" + "00000000" + "00000000"},
		{CT{Recirc: true, Table: 91, ZoneImm: 5}, "ct(table=91,zone=5)",
			nx + "0018" + "00002320" + "0023" + "0000" + "00000000" + "0005" + "5b" + "000000" + "0000"},
		{CT{Commit: true, Recirc: true, Table: 0, Zone: Subfield{Field: Reg(6), Ofs: 16, Bits: 16}}, "ct(commit,table=0,zone=NXM_NX_REG6[16..31])",
			nx + "0018" + "00002320" + "0023" + "0001" + "00010c04" + "040f" + "00" + "000000" + "0000"},
		{CT{Commit: true}, "ct(commit)",
			nx + "0018" + "00002320" + "0023" + "0001" + "00000000" + "0000" + "ff" + "000000" + "0000"},
		{CTClear{}, "ct_clear", nx + "0010" + "00002320" + "002b" + "000000000000"},
		{Conjunction{ID: 16, Clause: 2, NClauses: 2}, "conjunction(16,2/2)", nx + "0010" + "00002320" + "0022" + "01" + "02" + "00000010"},
		{Conjunction{ID: 0x12345678, Clause: 1, NClauses: 3}, "conjunction(305419896,1/3)", nx + "0010" + "00002320" + "0022" + "00" + "03" + "12345678"},
		{markOne, "set_field:0x1->ct_mark", "0019" + "0010" + "0001d604" + "00000001" + "00000000"},
		{SetField{Field: Reg(7), Value: []byte{0, 0, 0, 0x16}}, "set_field:0x16->reg7", "0019" + "0010" + "00010e04" + "00000016" + "00000000"},
	} {
		var w textWriter
		tc.a.appendText(&w, nil)
		if got := w.String(); got != tc.text {
			t.Errorf("text %s, want %s", got, tc.text)
		}
		got, err := tc.a.appendOF([]byte("pre"))
		if err != nil {
			t.Errorf("%s: %v", tc.text, err)
			continue
		}
		if !bytes.HasPrefix(got, []byte("pre")) || hex.EncodeToString(got[3:]) != tc.hex {
			t.Errorf("%s:\n got  %x\n want %s", tc.text, got, tc.hex)
		}
	}
	// With table names, as ovs-ofctl --names prints them.
	names := &Names{Tables: IntegrationPipeline.Names()}
	if got := (Flow{Table: 71, Priority: 65, Match: Match{}.IPv4(), Actions: []Action{CTRecirc(IntRulesEgress, 6)}}).Format(names); got !=
		"table=BASE_EGRESS, priority=65,ip actions=ct(table=RULES_EGRESS,zone=NXM_NX_REG6[0..15])" {
		t.Errorf("with names: %s", got)
	}
}

// TestConntrackActionErrors: what OVS would refuse is refused when encoding, and the
// buffer is left as it was.
func TestConntrackActionErrors(t *testing.T) {
	for _, a := range []Action{
		CTCommit(6, Output{Port: 1}),
		CTCommit(6, SetField{Field: Reg(7), Value: []byte{0, 0, 0, 1}}),
		CTCommit(6, SetField{Field: FieldCTMark, Value: []byte{1}}),
		CT{Recirc: true, Table: 255},
		CT{Zone: Subfield{Field: Reg(6), Ofs: 20, Bits: 16}},
		CT{Zone: Subfield{Field: Reg(6), Bits: 17}},
		Conjunction{ID: 1, Clause: 0, NClauses: 2},
		Conjunction{ID: 1, Clause: 3, NClauses: 2},
		Conjunction{ID: 1, Clause: 1, NClauses: 1},
		Conjunction{ID: 1, Clause: 1, NClauses: 65},
	} {
		got, err := a.appendOF([]byte("keep"))
		var w textWriter
		a.appendText(&w, nil)
		if err == nil {
			t.Errorf("%s: no error", w.String())
		}
		if string(got) != "keep" {
			t.Errorf("%s: buffer %q after the error", w.String(), got)
		}
	}
}

// TestFirewallFieldsAsTargets: ct_mark is a set_field target and the new fields have
// OVS's names.
func TestFirewallFieldsAsTargets(t *testing.T) {
	for f, name := range map[*Field]string{FieldCTState: "ct_state", FieldCTZone: "ct_zone", FieldCTMark: "ct_mark", FieldConjID: "conj_id", FieldSCTPSrc: "sctp_src", FieldSCTPDst: "sctp_dst"} {
		if f.Name() != name {
			t.Errorf("field %s named %s", name, f.Name())
		}
	}
	f := Flow{Table: 72, Priority: 40, Match: Match{}.CTState(CTEst, 0).IPv4().Reg(5, 3), Actions: []Action{CTCommit(6, SetField{Field: FieldCTMark, Value: []byte{0, 0, 0, 1}})}}
	if want := "table=72, priority=40,ct_state=+est,ip,reg5=0x3 actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x1->ct_mark))"; f.String() != want {
		t.Errorf("got  %s\nwant %s", f, want)
	}
	if !strings.Contains(f.ActionsString(nil), "exec(") {
		t.Errorf("actions: %s", f.ActionsString(nil))
	}
}
