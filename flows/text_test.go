package flows

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestRenderGolden pins the canonical text of every action and match kind. The golden file
// itself is checked against what ovs-vswitchd prints for the same flows in
// TestRenderMatchesOVS (flows/ovs_test.go), so it cannot drift from OVS.
func TestRenderGolden(t *testing.T) {
	var b strings.Builder
	for _, f := range everyKind(0x1234) {
		b.WriteString(f.String())
		b.WriteByte('\n')
	}
	golden := filepath.Join("testdata", "every_kind.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("read golden (run with -update to create): %v", err)
	}
	if got := b.String(); got != string(want) {
		t.Errorf("rendering changed (rerun with -update if intended):\n%s", lineDiff(string(want), got))
	}
}

func TestRenderScenarioShapes(t *testing.T) {
	// Lines copied from testdata/neutron/scenarios/*.flows (what Neutron's agent installed, as OVS
	// printed it), with COOKIE removed.
	tests := []struct {
		flow Flow
		want string
	}{
		{Flow{Priority: 65535, Match: Match{}.VLAN(4095)}, "priority=65535,dl_vlan=4095 actions=drop"},
		{Flow{Priority: 10, Match: Match{}.InPort(2).ICMPv6().ICMPType(136), Actions: []Action{GotoTable{24}}}, "priority=10,icmp6,in_port=2,icmp_type=136 actions=goto_table:24"},
		{Flow{Priority: 3, Match: Match{}.InPort(1).VLAN(196), Actions: []Action{SetVLANVID(1), GotoTable{59}}}, "priority=3,in_port=1,dl_vlan=196 actions=set_field:4097->vlan_vid,goto_table:59"},
		{Flow{Table: 23}, "table=23, priority=0 actions=drop"},
		{Flow{Table: 24, Priority: 2, Match: Match{}.InPort(2).ICMPv6().ICMPType(136).NDTarget(pfx("fe80::f816:3eff:fe00:101")), Actions: []Action{GotoTable{59}}}, "table=24, priority=2,icmp6,in_port=2,icmp_type=136,nd_target=fe80::f816:3eff:fe00:101 actions=goto_table:59"},
		{Flow{Priority: 99, Match: Match{}.ARP().EthDst(mac("fa:16:3f:00:00:01")).ARPOp(2).ARPTHA(mac("fa:16:3e:aa:01:01")), Actions: []Action{SetEthDst(mac("fa:16:3e:aa:01:01")), GotoTable{59}}}, "priority=99,arp,dl_dst=fa:16:3f:00:00:01,arp_op=2,arp_tha=fa:16:3e:aa:01:01 actions=set_field:fa:16:3e:aa:01:01->eth_dst,goto_table:59"},
		{Flow{Table: 4, Priority: 1, Match: Match{}.TunnelID(0x3e9), Actions: []Action{PushVLAN{}, SetVLANVID(1), GotoTable{9}}}, "table=4, priority=1,tun_id=0x3e9 actions=push_vlan:0x8100,set_field:4097->vlan_vid,goto_table:9"},
		{Flow{Table: 20, Priority: 2, Match: Match{}.VLAN(1).EthDst(mac("fa:16:3e:20:01:21")), Actions: []Action{PopVLAN{}, SetTunnelID(0x3e9), Output{2}}}, "table=20, priority=2,dl_vlan=1,dl_dst=fa:16:3e:20:01:21 actions=pop_vlan,set_field:0x3e9->tun_id,output:2"},
		{Flow{Table: 2, Priority: 4, Match: Match{}.InPort(1).VLAN(1), Actions: []Action{SetVLANVID(196), Normal()}}, "table=2, priority=4,in_port=1,dl_vlan=1 actions=set_field:4292->vlan_vid,NORMAL"},
		{Flow{Priority: 3, Match: Match{}.InPort(1).Untagged(), Actions: []Action{PushVLAN{}, SetVLANVID(2), GotoTable{59}}}, "priority=3,in_port=1,vlan_tci=0x0000/0x1fff actions=push_vlan:0x8100,set_field:4098->vlan_vid,goto_table:59"},
		{Flow{Table: 10, Priority: 1, Actions: []Action{Learn{Table: 20, HardTimeout: 300, Priority: 1, Specs: []LearnSpec{
			{Kind: LearnMatch, Dst: Subfield{Field: FieldVLANTCI, Bits: 12}, Src: Subfield{Field: FieldVLANTCI, Bits: 12}},
			{Kind: LearnMatch, Dst: Whole(FieldEthDst), Src: Whole(FieldEthSrc)},
			{Kind: LearnLoad, Dst: Whole(FieldVLANTCI), Value: []byte{0, 0}},
			{Kind: LearnLoad, Dst: Whole(FieldTunnelID), Src: Whole(FieldTunnelID)},
			{Kind: LearnOutput, Src: Whole(FieldInPort)},
		}}, Output{1}}}, "table=10, priority=1 actions=learn(table=20,hard_timeout=300,priority=1,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1"},
	}
	for _, tt := range tests {
		if got := tt.flow.String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
	}
}

func TestMatchIsCanonical(t *testing.T) {
	a := Match{}.InPort(2).ARP().ARPSPA(pfx("10.0.0.1"))
	b := Match{}.ARPSPA(pfx("10.0.0.1")).ARP().InPort(2)
	if a.Key() != b.Key() {
		t.Fatalf("same fields in another order give another key")
	}
	if a.Key() == (Match{}).InPort(3).ARP().ARPSPA(pfx("10.0.0.1")).Key() {
		t.Fatalf("different in_port gives the same key")
	}
	c, err := CanonicalMatch(reversedTLVs(t, a))
	if err != nil {
		t.Fatal(err)
	}
	if c.Key() != a.Key() {
		t.Fatalf("CanonicalMatch of reordered TLVs differs")
	}
	// Masked prefix values are stored masked, so 10.0.1.77/24 equals 10.0.1.0/24.
	if (Match{}.ARP().ARPSPA(pfx("10.0.1.77/24"))).Key() != (Match{}.ARP().ARPSPA(pfx("10.0.1.0/24"))).Key() {
		t.Fatalf("prefix host bits leak into the key")
	}
}

func reversedTLVs(t *testing.T, m Match) []byte {
	tlvs, err := parseTLVs(m.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for i := len(tlvs) - 1; i >= 0; i-- {
		one := Match{oxm: encodeTLVs([]tlv{tlvs[i]})}
		out = append(out, one.Bytes()...)
	}
	return out
}

func TestCookie(t *testing.T) {
	c := Cookie(CategoryPort, "c0000001-0000-4000-8000-000000000001")
	if !IsOurs(c) || CookieCategory(c) != CategoryPort || CookieObject(c) != ObjectHash("c0000001-0000-4000-8000-000000000001") {
		t.Fatalf("cookie %#x does not decode", c)
	}
	if IsOurs(0x1234) {
		t.Fatalf("foreign cookie reported as ours")
	}
	if Cookie(CategoryPort, "a") == Cookie(CategorySpoofing, "a") {
		t.Fatalf("categories collide")
	}
}

func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("- " + wl + "\n+ " + gl + "\n")
		}
	}
	return b.String()
}
