package ofconn

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	of13 "antrea.io/libOpenflow/openflow13"
	"antrea.io/libOpenflow/util"
	"go.uber.org/zap/zaptest"
)

func dial(t testing.TB, o *testOVS) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := Dial(ctx, o.mgmt(), zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitDone(t *testing.T, c *Conn) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not fire within 10s")
	}
	if c.Err() == nil {
		t.Fatal("Err() is nil after Done")
	}
}

func TestDialBarrierEcho(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	if err := c.Barrier(ctx); err != nil {
		t.Fatalf("Barrier: %v", err)
	}
	if _, err := c.Echo(ctx); err != nil {
		t.Fatalf("Echo: %v", err)
	}
	select {
	case <-c.Done():
		t.Fatalf("Done fired on a healthy connection: %v", c.Err())
	default:
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if !errors.Is(c.Err(), ErrClosed) {
		t.Errorf("Err after Close = %v, want ErrClosed", c.Err())
	}
	if err := c.Barrier(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Barrier after Close = %v, want ErrClosed", err)
	}
}

func TestDialRefusesBridgeWithoutOpenFlow13(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	o.vsctl(t, "add-br", "br1", "--", "set", "bridge", "br1", "datapath_type=netdev",
		"fail_mode=secure", "protocols=OpenFlow10")
	_, err := Dial(testCtx(t), o.mgmt("br1"), nil)
	if err == nil || !strings.Contains(err.Error(), "OpenFlow 1.3") {
		t.Fatalf("Dial to an OpenFlow10-only bridge: err = %v, want a complaint about OpenFlow 1.3", err)
	}
	if _, err := Dial(testCtx(t), o.mgmt("nosuch"), nil); err == nil {
		t.Fatal("Dial to a missing socket succeeded")
	}
}

func TestDoneWhenVswitchdKilled(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	if err := c.Barrier(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	pid := o.h.VswitchdPid()
	if pid == 0 {
		t.Fatal("no vswitchd pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	t.Logf("Err after kill: %v", c.Err())
	if err := c.Barrier(testCtx(t)); err == nil {
		t.Fatal("Barrier on a lost connection succeeded")
	}
}

func TestDoneWhenBridgeDeleted(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	if err := c.Barrier(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	o.vsctl(t, "del-br", "br0")
	waitDone(t, c)
	if !strings.Contains(c.Err().Error(), "closed by the switch") {
		t.Errorf("Err = %v, want it to say the switch closed the connection", c.Err())
	}
}

// A pending call must return promptly when the connection is lost under it.
func TestPendingCallReturnsOnConnectionLoss(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	// Register a waiter for an xid no reply will ever carry, as FlowStats
	// would while the switch works.
	xid := c.nextXids(1)
	sig := make(chan struct{})
	defer c.register(xid, 1, func(uint32, []byte) {})()
	errc := make(chan error, 1)
	go func() { errc <- c.wait(context.Background(), sig) }()
	o.vsctl(t, "del-br", "br0")
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("wait returned nil on a lost connection")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a pending call did not return after the connection was lost")
	}
}

const (
	cookieA = 0x1111000000000001
	cookieB = 0x1111000000000002
	cookieC = 0x2222000000000003
	genMask = 0xffff000000000000
)

func TestApplyAndFlowStats(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	if err := c.Apply(ctx, msgs(classifyFlow(cookieA), dropFlow(cookieB), arpResponderFlow(t, cookieC))); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	dump := o.ofctl(t, "dump-flows", "br0")
	for _, want := range []string{
		"cookie=0x1111000000000001, ", "table=0, ", "priority=10,in_port=1 actions=goto_table:24",
		"cookie=0x1111000000000002, ", "table=24, ", "priority=0 actions=drop",
		"cookie=0x2222000000000003, ", "table=21, ", "priority=1,arp,dl_vlan=5,arp_tpa=10.0.0.5 actions=" +
			"move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:fa:16:3e:aa:bb:cc->eth_src," +
			"load:0x2->NXM_OF_ARP_OP[],move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[]," +
			"move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],load:0xfa163eaabbcc->NXM_NX_ARP_SHA[]," +
			"load:0xa000005->NXM_OF_ARP_SPA[],IN_PORT",
	} {
		if !strings.Contains(dump, want) {
			t.Errorf("dump-flows lacks %q:\n%s", want, dump)
		}
	}

	all, err := c.FlowStats(ctx, TableAll, 0, 0)
	if err != nil {
		t.Fatalf("FlowStats: %v", err)
	}
	type key struct {
		table  uint8
		prio   uint16
		cookie uint64
	}
	var got []key
	for _, fs := range all {
		got = append(got, key{fs.TableID, fs.Priority, fs.Cookie})
	}
	want := []key{{0, 10, cookieA}, {21, 1, cookieC}, {24, 0, cookieB}}
	if !slices.Equal(got, want) {
		t.Fatalf("FlowStats = %+v, want %+v", got, want)
	}

	// The raw match bytes are OXM TLVs: in_port=1 is OXM_OF_IN_PORT (0x80000004), value 1.
	oxms, err := ParseOXMs(all[0].Match)
	if err != nil {
		t.Fatalf("ParseOXMs(%x): %v", all[0].Match, err)
	}
	if len(oxms) != 1 || oxms[0].Header() != 0x80000004 || !bytes.Equal(oxms[0].Value, []byte{0, 0, 0, 1}) {
		t.Errorf("in_port=1 match parsed as %+v", oxms)
	}
	// arp,dl_vlan=5,arp_tpa=10.0.0.5: eth_type 0x0806, vlan_vid 0x1005, arp_tpa 10.0.0.5.
	oxms, err = ParseOXMs(all[1].Match)
	if err != nil {
		t.Fatalf("ParseOXMs(%x): %v", all[1].Match, err)
	}
	headers := map[uint32][]byte{}
	for _, f := range oxms {
		headers[f.Header()] = f.Value
	}
	for h, v := range map[uint32][]byte{0x80000a02: {0x08, 0x06}, 0x80000c02: {0x10, 0x05}, 0x80002e04: {10, 0, 0, 5}} {
		if !bytes.Equal(headers[h], v) {
			t.Errorf("ARP responder match: OXM %#08x = %x, want %x (all: %x)", h, headers[h], v, all[1].Match)
		}
	}
	if len(all[2].Instructions) != 0 {
		t.Errorf("drop flow has instructions %x", all[2].Instructions)
	}

	// Cookie filters.
	gen1, err := c.FlowStats(ctx, TableAll, 0x1111000000000000, genMask)
	if err != nil {
		t.Fatal(err)
	}
	if len(gen1) != 2 || gen1[0].Cookie != cookieA || gen1[1].Cookie != cookieB {
		t.Errorf("FlowStats(cookie 0x1111/0xffff…) = %d flows %+v, want A and B", len(gen1), gen1)
	}
	exact, err := c.FlowStats(ctx, TableAll, cookieC, ^uint64(0))
	if err != nil {
		t.Fatal(err)
	}
	if len(exact) != 1 || exact[0].Cookie != cookieC {
		t.Errorf("FlowStats(cookie C exact) = %+v", exact)
	}
	t24, err := c.FlowStats(ctx, 24, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(t24) != 1 || t24[0].Cookie != cookieB {
		t.Errorf("FlowStats(table 24) = %+v", t24)
	}
	none, err := c.FlowStats(ctx, TableAll, 0x3333000000000000, genMask)
	if err != nil || len(none) != 0 {
		t.Errorf("FlowStats(no such cookie) = %v, %v; want none", none, err)
	}

	// Delete by cookie/mask over all tables removes generation 0x1111 only.
	del := of13.NewFlowMod()
	del.Command, del.TableId, del.Cookie, del.CookieMask = of13.FC_DELETE, of13.OFPTT_ALL, 0x1111000000000000, genMask
	if err := c.Apply(ctx, []util.Message{del}); err != nil {
		t.Fatal(err)
	}
	left, err := c.FlowStats(ctx, TableAll, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 1 || left[0].Cookie != cookieC {
		t.Errorf("after deleting cookie 0x1111/0xffff…: %+v", left)
	}
}

// Apply is not atomic: good messages are applied, bad ones are reported by index.
func TestApplyReportsErrorsByIndex(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	err := c.Apply(ctx, msgs(classifyFlow(1), badGotoFlow(2), dropFlow(3), badGotoFlow(4)))
	var ae *ApplyError
	if !errors.As(err, &ae) {
		t.Fatalf("Apply = %v, want an *ApplyError", err)
	}
	if !slices.Equal(ae.Rejected(), []int{1, 3}) {
		t.Errorf("rejected %v, want [1 3]; %v", ae.Rejected(), err)
	}
	var me MessageError
	if !errors.As(err, &me) || me.Index != 1 || me.Type != 3 || me.Code != 2 || me.Name() != "OFPBIC_BAD_TABLE_ID" {
		t.Errorf("first MessageError = %+v (%v), want index 1 OFPBIC_BAD_TABLE_ID (3,2)", me, me)
	}
	if n := o.flowCount(t); n != 2 {
		t.Errorf("%d flows installed, want the 2 good ones", n)
	}
	t.Logf("Apply error: %v", err)
}

// flowBytes returns what libOpenflow encodes for fm's match (the OXM TLVs
// only) and instructions.
func flowBytes(t testing.TB, fm *of13.FlowMod) (match, instructions []byte) {
	t.Helper()
	mb, err := fm.Match.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	match = mb[ofpMatchHdrLen:fm.Match.Length]
	for _, in := range fm.Instructions {
		b, err := in.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		instructions = append(instructions, b...)
	}
	return match, instructions
}

// The caller compares installed with desired flows by bytes. Instructions
// come back exactly as libOpenflow encoded them, including pop_vlan,
// set_field eth_src/vlan_vid/tun_id, NX move/load, learn, ct and conjunction.
func TestInstructionsRoundTrip(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	f := func(n string) *of13.MatchField { return field(t, n) }
	learn := of13.NewNXActionLearn()
	learn.TableID, learn.HardTimeout, learn.Priority, learn.Cookie = 20, 300, 1, 0x99
	learn.LearnSpecs = []*of13.NXLearnSpec{
		{Header: of13.NewLearnHeaderMatchFromField(12), SrcField: &of13.NXLearnSpecField{Field: f("NXM_OF_VLAN_TCI")}, DstField: &of13.NXLearnSpecField{Field: f("NXM_OF_VLAN_TCI")}},
		{Header: of13.NewLearnHeaderMatchFromField(48), SrcField: &of13.NXLearnSpecField{Field: f("NXM_OF_ETH_SRC")}, DstField: &of13.NXLearnSpecField{Field: f("NXM_OF_ETH_DST")}},
		{Header: of13.NewLearnHeaderLoadFromValue(16), SrcValue: []byte{0, 0}, DstField: &of13.NXLearnSpecField{Field: f("NXM_OF_VLAN_TCI")}},
		{Header: of13.NewLearnHeaderLoadFromField(64), SrcField: &of13.NXLearnSpecField{Field: f("NXM_NX_TUN_ID")}, DstField: &of13.NXLearnSpecField{Field: f("NXM_NX_TUN_ID")}},
		{Header: of13.NewLearnHeaderOutputFromField(16), SrcField: &of13.NXLearnSpecField{Field: f("NXM_OF_IN_PORT")}},
	}
	learnFlow := flowMod(10, 1, 0x10)
	learnFlow.AddInstruction(applyActions(learn, of13.NewActionOutput(1)))

	tunFlow := flowMod(2, 1, 0x11) // mod_vlan_vid + set_tunnel + output
	tunFlow.Match.AddField(*of13.NewVlanIdField(1, nil))
	tunFlow.AddInstruction(applyActions(of13.NewActionPopVlan(), of13.NewActionSetField(*of13.NewTunnelIdField(0x64)), of13.NewActionOutput(1)))

	vlanFlow := flowMod(0, 3, 0x12)
	vlanFlow.Match.AddField(*of13.NewInPortField(1))
	vlanFlow.Match.AddField(*of13.NewVlanIdField(100, nil))
	vlanFlow.AddInstruction(applyActions(of13.NewActionSetField(*of13.NewVlanIdField(5, nil)), of13.NewNXActionResubmitTableAction(0xfff8, 60)))

	ctFlow := flowMod(71, 1, 0x13)
	ctFlow.Match.AddField(*of13.NewEthTypeField(0x0800))
	ctFlow.Match.AddField(*of13.NewConjIDMatchField(10))
	ctFlow.AddInstruction(applyActions(
		of13.NewNXActionRegLoad(of13.NewNXRangeByOfsNBits(0, 32).ToOfsBits(), f("NXM_NX_REG7"), 10),
		of13.NewNXActionConnTrack().Commit().ZoneRange(f("NXM_NX_REG6"), of13.NewNXRange(0, 15)),
		of13.NewNXActionResubmitTableAction(0xfff8, 91)))

	conjFlow := flowMod(71, 2, 0x14)
	conjFlow.Match.AddField(*of13.NewEthTypeField(0x0800))
	conjFlow.Match.AddField(*of13.NewIpv4SrcField([]byte{10, 0, 0, 1}, nil))
	conjFlow.AddInstruction(applyActions(of13.NewNXActionConjunction(0, 2, 10)))

	sent := []*of13.FlowMod{
		stripVlanFlow(t, 0x1), dvrSrcMACFlow(t, 0x2), arpResponderFlow(t, 0x3),
		learnFlow, tunFlow, vlanFlow, ctFlow, conjFlow,
	}
	if err := c.Bundle(ctx, msgs(sent...)); err != nil {
		t.Fatal(err)
	}
	got, err := c.FlowStats(ctx, TableAll, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	byCookie := map[uint64]FlowStat{}
	for _, fs := range got {
		byCookie[fs.Cookie] = fs
	}
	for _, fm := range sent {
		fs, ok := byCookie[fm.Cookie]
		if !ok {
			t.Errorf("flow cookie %#x not installed", fm.Cookie)
			continue
		}
		wantMatch, wantIns := flowBytes(t, fm)
		if !bytes.Equal(fs.Instructions, wantIns) {
			t.Errorf("cookie %#x: instructions differ\nsent %x\ngot  %x", fm.Cookie, wantIns, fs.Instructions)
		}
		if !EqualMatch(fs.Match, wantMatch) {
			t.Errorf("cookie %#x: match differs as a set of OXM TLVs\nsent %x\ngot  %x", fm.Cookie, wantMatch, fs.Match)
		}
	}
}

// What Open vSwitch does to matches and instructions before echoing them:
// these are the rules a byte comparison of installed and desired flows must
// follow. If OVS changes them, this test says so.
func TestSwitchNormalisation(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	// 1. Fields come back in OVS's canonical order, not the order sent:
	//    eth_src was sent after vlan_vid, comes back before it.
	reordered := dvrSrcMACFlow(t, 1)

	// 2. An all-ones mask is dropped (the field becomes exact);
	// 3. a field with an all-zero mask disappears;
	// 4. NXM_OF_ fields that have an OXM twin come back as OXM, and an
	//    NXM_OF_VLAN_TCI match of 0x1005/0x1fff as OXM vlan_vid=0x1005.
	masks := flowMod(80, 1, 2)
	masks.Match.AddField(*of13.NewEthTypeField(0x0800))
	ones := []byte{255, 255, 255, 255}
	ipOnes := of13.NewIpv4SrcField([]byte{10, 9, 9, 9}, nil)
	ipOnes.HasMask, ipOnes.Mask, ipOnes.Length = true, &of13.Ipv4SrcField{Ipv4Src: ones}, 8
	masks.Match.AddField(*ipOnes)
	zero := field(t, "NXM_NX_REG3")
	zero.HasMask, zero.Length = true, 8
	zero.Value, zero.Mask = &of13.Uint32Message{Data: 0}, &of13.Uint32Message{Data: 0}
	masks.Match.AddField(*zero)
	ethDst := field(t, "NXM_OF_ETH_DST")
	ethDst.Value = &of13.EthDstField{EthDst: mustMAC(t, "fa:16:3e:00:00:07")}
	masks.Match.AddField(*ethDst)
	masks.AddInstruction(applyActions(of13.NewActionOutput(1)))

	// 5. Instructions come back in OVS's order (apply_actions, write_metadata,
	//    goto_table), whatever order they were sent in.
	insOrder := flowMod(81, 1, 3)
	insOrder.AddInstruction(of13.NewInstrGotoTable(90))
	insOrder.AddInstruction(applyActions(of13.NewActionOutput(2)))
	insOrder.AddInstruction(of13.NewInstrWriteMetadata(0x5, 0xf))

	if err := c.Bundle(ctx, msgs(reordered, masks, insOrder)); err != nil {
		t.Fatal(err)
	}
	got, err := c.FlowStats(ctx, TableAll, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d flows, want 3", len(got))
	}
	byCookie := map[uint64]FlowStat{}
	for _, fs := range got {
		byCookie[fs.Cookie] = fs
	}

	sentMatch, _ := flowBytes(t, reordered)
	fs := byCookie[1]
	if bytes.Equal(fs.Match, sentMatch) || !EqualMatch(fs.Match, sentMatch) {
		t.Errorf("reordered match: sent %x got %x; want the same TLVs in another order", sentMatch, fs.Match)
	}
	if want := hexBytes(t, "80000806fa163e0000fe"+"80000c021005"); !bytes.Equal(fs.Match, want) {
		t.Errorf("reordered match: got %x, want %x (eth_src before vlan_vid)", fs.Match, want)
	}

	fs = byCookie[2]
	want := hexBytes(t, "80000606fa163e000007"+ // OXM eth_dst, from NXM_OF_ETH_DST
		"80000a020800"+ // eth_type
		"800016040a090909") // OXM ipv4_src exact: the all-ones mask is gone; reg3/0 is gone
	if !bytes.Equal(fs.Match, want) {
		t.Errorf("mask normalisation: got %x, want %x", fs.Match, want)
	}

	fs = byCookie[3]
	var wantIns []byte
	for _, in := range []of13.Instruction{applyActions(of13.NewActionOutput(2)), of13.NewInstrWriteMetadata(0x5, 0xf), of13.NewInstrGotoTable(90)} {
		b, _ := in.MarshalBinary()
		wantIns = append(wantIns, b...)
	}
	if !bytes.Equal(fs.Instructions, wantIns) {
		t.Errorf("instruction order: got %x, want %x", fs.Instructions, wantIns)
	}
}

func TestSwitchRejectsNonCanonicalMatches(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	// A masked value with bits outside its mask is refused, not normalised.
	loose := flowMod(0, 1, 1)
	loose.Match.AddField(*of13.NewRegMatchFieldWithMask(0, 0x12345678, 0xffff0000))
	// A prerequisite (eth_type) after the field that needs it is refused.
	late := flowMod(0, 2, 2)
	late.Match.AddField(*of13.NewIpv4DstField([]byte{10, 0, 0, 1}, nil))
	late.Match.AddField(*of13.NewEthTypeField(0x0800))
	// pop_vlan without a VLAN match is refused in OpenFlow 1.3.
	pop := flowMod(0, 3, 3)
	pop.AddInstruction(applyActions(of13.NewActionPopVlan()))

	err := c.Apply(ctx, msgs(loose, late, pop))
	var ae *ApplyError
	if !errors.As(err, &ae) || len(ae.Errors) != 3 {
		t.Fatalf("Apply = %v, want 3 errors", err)
	}
	for i, want := range []string{"OFPBMC_BAD_WILDCARDS", "OFPBMC_BAD_PREREQ", "OFPBAC_MATCH_INCONSISTENT"} {
		if me := ae.Errors[i]; me.Index != i || me.Name() != want {
			t.Errorf("error %d = %v, want index %d %s", i, me, i, want)
		}
	}
}

func TestBundleCommitsAll(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	if err := c.Bundle(ctx, ipFlows(5, 0x5)); err != nil {
		t.Fatalf("Bundle: %v", err)
	}
	if n := o.flowCount(t); n != 5 {
		t.Fatalf("%d flows installed, want 5", n)
	}
	if err := c.Bundle(ctx, nil); err != nil {
		t.Fatalf("empty Bundle: %v", err)
	}
}

func TestBundleWithInvalidMessageInstallsNothing(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	batch := append(ipFlows(4, 0x4), badGotoFlow(0x4))
	err := c.Bundle(ctx, batch)
	var be *BundleError
	if !errors.As(err, &be) {
		t.Fatalf("Bundle = %v, want a *BundleError", err)
	}
	t.Logf("Bundle error: %v", err)
	if be.Stage != "add" || !slices.Equal(be.Rejected(), []int{4}) {
		t.Errorf("stage %q rejected %v, want add [4]", be.Stage, be.Rejected())
	}
	var me MessageError
	if !errors.As(err, &me) || me.Index != 4 || me.Type != 3 || me.Code != 2 || me.Name() != "OFPBIC_BAD_TABLE_ID" {
		t.Errorf("MessageError = %+v, want index 4 OFPBIC_BAD_TABLE_ID (3,2)", me)
	}
	if !strings.Contains(err.Error(), "message 4") || !strings.Contains(err.Error(), "OFPBIC_BAD_TABLE_ID") {
		t.Errorf("error text %q does not name message 4 and OFPBIC_BAD_TABLE_ID", err)
	}
	if n := o.flowCount(t); n != 0 {
		t.Fatalf("%d flows installed after a rejected bundle, want 0", n)
	}

	// The connection is still usable.
	if err := c.Barrier(ctx); err != nil {
		t.Fatalf("Barrier after a rejected bundle: %v", err)
	}
	if err := c.Bundle(ctx, ipFlows(5, 0x5)); err != nil {
		t.Fatalf("Bundle after a rejected bundle: %v", err)
	}
	if n := o.flowCount(t); n != 5 {
		t.Fatalf("%d flows installed, want 5", n)
	}
}

// A message that passes the add-time checks but fails at commit (an
// OFPFF_CHECK_OVERLAP clash with an installed flow) fails the whole commit.
func TestBundleCommitFailureInstallsNothing(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	if err := c.Apply(ctx, msgs(classifyFlow(0x1))); err != nil {
		t.Fatal(err)
	}
	clash := classifyFlow(0x2)
	clash.Match = *of13.NewMatch() // priority 10 wildcard overlaps in_port=1
	clash.Flags = of13.FF_CHECK_OVERLAP
	err := c.Bundle(ctx, append(ipFlows(3, 0x3), clash))
	var be *BundleError
	if !errors.As(err, &be) {
		t.Fatalf("Bundle = %v, want a *BundleError", err)
	}
	t.Logf("Bundle error: %v", err)
	if be.Stage != "commit" || !slices.Equal(be.Rejected(), []int{3}) {
		t.Errorf("stage %q rejected %v, want commit [3]", be.Stage, be.Rejected())
	}
	names := map[string]bool{}
	for _, me := range be.Errors {
		names[me.Name()] = true
	}
	if !names["OFPFMFC_OVERLAP"] || !names["OFPBFC_MSG_FAILED"] {
		t.Errorf("errors %v, want OFPFMFC_OVERLAP and OFPBFC_MSG_FAILED", be.Errors)
	}
	if n := o.flowCount(t); n != 1 {
		t.Fatalf("%d flows installed, want only the earlier one", n)
	}
	if err := c.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestBundle20kAndDump(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	const n = 20000
	flows := ipFlows(n, 0x20)
	start := time.Now()
	if err := c.Bundle(ctx, flows); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if got := o.flowCount(t); got != n {
		t.Fatalf("dump-aggregate flow_count=%d, want %d", got, n)
	}
	start = time.Now()
	dump, err := c.FlowStats(ctx, TableAll, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dumpTook := time.Since(start)
	if len(dump) != n {
		t.Fatalf("FlowStats returned %d flows, want %d", len(dump), n)
	}
	seen := make(map[string]bool, n)
	for _, fs := range dump {
		if fs.Cookie != 0x20 || fs.Priority != 100 || fs.TableID != 0 {
			t.Fatalf("unexpected flow %+v", fs)
		}
		seen[string(fs.Match)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct matches, want %d", len(seen), n)
	}
	t.Logf("bundle of %d flows: %v (%.0f flows/s); dump: %v", n, took, n/took.Seconds(), dumpTook)

	// Apply streams as well: delete them all and re-add without a bundle.
	del := of13.NewFlowMod()
	del.Command, del.TableId = of13.FC_DELETE, of13.OFPTT_ALL
	if err := c.Apply(ctx, []util.Message{del}); err != nil {
		t.Fatal(err)
	}
	if err := c.Apply(ctx, flows); err != nil {
		t.Fatal(err)
	}
	if got := o.flowCount(t); got != n {
		t.Fatalf("after Apply: flow_count=%d, want %d", got, n)
	}
}

// Concurrent calls on one Conn keep their replies apart (run with -race).
func TestConcurrentCalls(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			cookie := uint64(g+1) << 48
			for i := 0; i < 5; i++ {
				batch := make([]util.Message, 50)
				for j := range batch {
					fm := ipFlow(g<<12|i<<6|j, cookie)
					batch[j] = fm
				}
				var err error
				if i%2 == 0 {
					err = c.Bundle(ctx, batch)
				} else {
					err = c.Apply(ctx, batch)
				}
				if err != nil {
					errs <- err
					return
				}
				if err := c.Barrier(ctx); err != nil {
					errs <- err
					return
				}
				got, err := c.FlowStats(ctx, TableAll, cookie, genMask)
				if err != nil {
					errs <- err
					return
				}
				if len(got) != 50*(i+1) {
					errs <- errors.New("wrong flow count for one writer")
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := o.flowCount(t); n != 4*5*50 {
		t.Errorf("%d flows, want %d", n, 4*5*50)
	}
}

func hexBytes(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// badVersion is a message that encodes as OpenFlow 1.5.
type badVersion struct{ util.Message }

func (badVersion) MarshalBinary() ([]byte, error) { return []byte{6, 14, 0, 8, 0, 0, 0, 0}, nil }

func TestUnencodableMessage(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)
	ctx := testCtx(t)

	batch := append(ipFlows(3, 0x1), badVersion{}, ipFlow(9, 0x1))
	err := c.Bundle(ctx, batch)
	var be *BundleError
	if !errors.As(err, &be) || be.Stage != "encode" || be.Cause == nil || !strings.Contains(err.Error(), "message 3") {
		t.Fatalf("Bundle = %v, want a BundleError at stage encode naming message 3", err)
	}
	if n := o.flowCount(t); n != 0 {
		t.Fatalf("%d flows installed, want 0", n)
	}

	err = c.Apply(ctx, batch)
	var ae *ApplyError
	if !errors.As(err, &ae) || ae.Sent != 3 || ae.Cause == nil || len(ae.Errors) != 0 {
		t.Fatalf("Apply = %v, want an ApplyError with 3 sent and an encode cause", err)
	}
	if n := o.flowCount(t); n != 3 {
		t.Fatalf("%d flows installed, want the 3 sent before the bad message", n)
	}
}

// A context that ends in the middle of a big bundle leaves nothing installed.
func TestBundleContextEndsMidway(t *testing.T) {
	t.Parallel()
	o := startOVS(t)
	c := dial(t, o)

	flows := ipFlows(100000, 0x1)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := c.Bundle(ctx, flows)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Bundle = %v, want context.DeadlineExceeded", err)
	}
	t.Logf("Bundle: %v", err)

	// Either the connection survived (the bundle is discarded) or the write
	// was cut and the connection failed (the switch drops the bundle).
	ctx = testCtx(t)
	if c.Err() == nil {
		if err := c.Barrier(ctx); err != nil && c.Err() == nil {
			t.Fatalf("Barrier after an abandoned bundle: %v", err)
		}
	}
	if c.Err() != nil {
		t.Logf("connection failed: %v", c.Err())
		c = dial(t, o)
	}
	if err := c.Barrier(ctx); err != nil {
		t.Fatal(err)
	}
	if n := o.flowCount(t); n != 0 {
		t.Fatalf("%d flows installed after an abandoned bundle, want 0", n)
	}
	if err := c.Bundle(ctx, ipFlows(10, 0x2)); err != nil {
		t.Fatal(err)
	}
	if n := o.flowCount(t); n != 10 {
		t.Fatalf("%d flows installed, want 10", n)
	}
}
