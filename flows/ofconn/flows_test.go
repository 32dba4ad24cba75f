package ofconn

import (
	"net"
	"testing"

	of13 "antrea.io/libOpenflow/openflow13"
	"antrea.io/libOpenflow/util"
)

// Flow builders for the tests, written the way the agent's flow layer
// will use libOpenflow.

func field(t testing.TB, name string) *of13.MatchField {
	t.Helper()
	f, err := of13.FindFieldHeaderByName(name, false)
	if err != nil {
		t.Fatalf("field %s: %v", name, err)
	}
	return f
}

func mustMAC(t testing.TB, s string) net.HardwareAddr {
	t.Helper()
	m, err := net.ParseMAC(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func flowMod(table uint8, prio uint16, cookie uint64) *of13.FlowMod {
	fm := of13.NewFlowMod()
	fm.TableId, fm.Priority, fm.Cookie = table, prio, cookie
	return fm
}

func applyActions(acts ...of13.Action) *of13.InstrActions {
	ins := of13.NewInstrApplyActions()
	for _, a := range acts {
		ins.AddAction(a, false)
	}
	return ins
}

// classifyFlow: table=0,priority=10,in_port=1 actions=goto_table:24
func classifyFlow(cookie uint64) *of13.FlowMod {
	fm := flowMod(0, 10, cookie)
	fm.Match.AddField(*of13.NewInPortField(1))
	fm.AddInstruction(of13.NewInstrGotoTable(24))
	return fm
}

// dropFlow: table=24,priority=0 actions=drop
func dropFlow(cookie uint64) *of13.FlowMod {
	return flowMod(24, 0, cookie)
}

// arpResponderFlow is Neutron's ARP responder:
// table=21,priority=1,arp,dl_vlan=5,arp_tpa=10.0.0.5
// actions=move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:fa:16:3e:aa:bb:cc->eth_src,
// load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],
// move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163eaabbcc->NXM_NX_ARP_SHA[],
// load:0xa000005->NXM_OF_ARP_SPA[],IN_PORT
func arpResponderFlow(t testing.TB, cookie uint64) *of13.FlowMod {
	fm := flowMod(21, 1, cookie)
	fm.Match.AddField(*of13.NewEthTypeField(0x0806))
	fm.Match.AddField(*of13.NewVlanIdField(5, nil))
	fm.Match.AddField(*of13.NewArpTpaField(net.ParseIP("10.0.0.5").To4()))
	mac := mustMAC(t, "fa:16:3e:aa:bb:cc")
	fm.AddInstruction(applyActions(
		of13.NewNXActionRegMove(48, 0, 0, field(t, "NXM_OF_ETH_SRC"), field(t, "NXM_OF_ETH_DST")),
		of13.NewActionSetField(*of13.NewEthSrcField(mac, nil)),
		of13.NewNXActionRegLoad(of13.NewNXRangeByOfsNBits(0, 16).ToOfsBits(), field(t, "NXM_OF_ARP_OP"), 2),
		of13.NewNXActionRegMove(48, 0, 0, field(t, "NXM_NX_ARP_SHA"), field(t, "NXM_NX_ARP_THA")),
		of13.NewNXActionRegMove(32, 0, 0, field(t, "NXM_OF_ARP_SPA"), field(t, "NXM_OF_ARP_TPA")),
		of13.NewNXActionRegLoad(of13.NewNXRangeByOfsNBits(0, 48).ToOfsBits(), field(t, "NXM_NX_ARP_SHA"), 0xfa163eaabbcc),
		of13.NewNXActionRegLoad(of13.NewNXRangeByOfsNBits(0, 32).ToOfsBits(), field(t, "NXM_OF_ARP_SPA"), 0x0a000005),
		of13.NewActionOutput(of13.P_IN_PORT),
	))
	return fm
}

// stripVlanFlow: table=60,priority=4,dl_vlan=5,dl_dst=fa:16:3e:00:00:01 actions=pop_vlan,output:2
func stripVlanFlow(t testing.TB, cookie uint64) *of13.FlowMod {
	fm := flowMod(60, 4, cookie)
	fm.Match.AddField(*of13.NewVlanIdField(5, nil))
	fm.Match.AddField(*of13.NewEthDstField(mustMAC(t, "fa:16:3e:00:00:01"), nil))
	fm.AddInstruction(applyActions(of13.NewActionPopVlan(), of13.NewActionOutput(2)))
	return fm
}

// dvrSrcMACFlow is the DVR source-MAC rewrite on a physical bridge:
// table=1,priority=2,dl_vlan=5,dl_src=fa:16:3e:00:00:fe
// actions=set_field:fa:16:3f:00:00:01->eth_src,goto_table:2
func dvrSrcMACFlow(t testing.TB, cookie uint64) *of13.FlowMod {
	fm := flowMod(1, 2, cookie)
	fm.Match.AddField(*of13.NewVlanIdField(5, nil))
	fm.Match.AddField(*of13.NewEthSrcField(mustMAC(t, "fa:16:3e:00:00:fe"), nil))
	fm.AddInstruction(applyActions(of13.NewActionSetField(*of13.NewEthSrcField(mustMAC(t, "fa:16:3f:00:00:01"), nil))))
	fm.AddInstruction(of13.NewInstrGotoTable(2))
	return fm
}

// badGotoFlow: table=10 actions=goto_table:5 — goto_table must go forwards,
// so OVS rejects it with OFPBIC_BAD_TABLE_ID.
func badGotoFlow(cookie uint64) *of13.FlowMod {
	fm := flowMod(10, 1, cookie)
	fm.AddInstruction(of13.NewInstrGotoTable(5))
	return fm
}

// ipFlow is one of many distinct flows:
// table=0,priority=100,ip,nw_dst=10.a.b.c actions=goto_table:1
func ipFlow(i int, cookie uint64) *of13.FlowMod {
	fm := flowMod(0, 100, cookie)
	fm.Match.AddField(*of13.NewEthTypeField(0x0800))
	fm.Match.AddField(*of13.NewIpv4DstField(net.IPv4(10, byte(i>>16), byte(i>>8), byte(i)).To4(), nil))
	fm.AddInstruction(of13.NewInstrGotoTable(1))
	return fm
}

func ipFlows(n int, cookie uint64) []util.Message {
	msgs := make([]util.Message, n)
	for i := range msgs {
		msgs[i] = ipFlow(i, cookie)
	}
	return msgs
}

func msgs(fms ...*of13.FlowMod) []util.Message {
	out := make([]util.Message, len(fms))
	for i, fm := range fms {
		out[i] = fm
	}
	return out
}
