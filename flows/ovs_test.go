package flows

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/sandbox"
)

// testBridge starts a sandbox host with bridge br0 (netdev, secure, OpenFlow13) and three
// internal ports with ofports 1, 2, 3, and returns the host and our write path to it. It
// skips the test under -short.
func testBridge(t *testing.T) (*sandbox.Host, *Bridge) {
	t.Helper()
	sandbox.SkipIfShort(t, "real Open vSwitch")
	h := sandbox.StartForTest(t, "flows")
	ctx := context.Background()
	if _, err := h.Vsctl(ctx, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev",
		"fail_mode=secure", "protocols=OpenFlow10,OpenFlow13",
		"--", "add-port", "br0", "p1", "--", "set", "interface", "p1", "type=internal", "ofport_request=1",
		"--", "add-port", "br0", "p2", "--", "set", "interface", "p2", "type=internal", "ofport_request=2",
		"--", "add-port", "br0", "p3", "--", "set", "interface", "p3", "type=internal", "ofport_request=3"); err != nil {
		t.Fatal(err)
	}
	b := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
	t.Cleanup(func() { _ = b.Close() })
	return h, b
}

// dump returns the switch's flows as ovs-ofctl prints them, sorted.
func dump(t *testing.T, h *sandbox.Host) []string {
	t.Helper()
	out, err := h.Ofctl(context.Background(), "-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", "br0")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "OFPST_FLOW") || strings.HasPrefix(l, "NXST_FLOW") {
			continue
		}
		lines = append(lines, l)
	}
	sort.Strings(lines)
	return lines
}

func rendered(fs []Flow) []string {
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	sort.Strings(out)
	return out
}

func sameLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") == strings.Join(want, "\n") {
		return
	}
	t.Errorf("%s: switch and rendering differ (%d vs %d lines):\n%s", what, len(got), len(want), lineDiff(strings.Join(want, "\n"), strings.Join(got, "\n")))
}

// manyFlows returns n distinct flows: every kind first, then generated variants.
func manyFlows(n int, cookie uint64) []Flow {
	base := everyKind(cookie)
	if n <= len(base) {
		return base[:n]
	}
	out := append([]Flow(nil), base...)
	for i := 0; len(out) < n; i++ {
		m := net.HardwareAddr{0xfa, 0x16, 0x3e, byte(i >> 16), byte(i >> 8), byte(i)}
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		vid := uint16(1 + i%4000)
		var f Flow
		switch i % 6 {
		case 0:
			f = Flow{Table: 24, Priority: 2, Match: Match{}.InPort(uint32(1 + i%3)).ARP().ARPSPA(netip.PrefixFrom(ip, 32)), Actions: []Action{GotoTable{25}}}
		case 1:
			f = Flow{Table: 25, Priority: 2, Match: Match{}.InPort(uint32(1 + i%3)).EthSrc(m), Actions: []Action{GotoTable{30}}}
		case 2:
			f = Flow{Table: 60, Priority: 20, Match: Match{}.VLAN(vid).EthDst(m), Actions: []Action{PopVLAN{}, Output{2}}}
		case 3:
			f = Flow{Table: 21, Priority: 1, Match: Match{}.ARP().VLAN(vid).ARPTPA(netip.PrefixFrom(ip, 32)), Actions: []Action{
				SetARPOp(2), Move{Whole(FieldARPSHA), Whole(FieldARPTHA)}, Move{Whole(FieldARPSPA), Whole(FieldARPTPA)},
				SetARPSHA(m), SetARPSPA(ip), Move{Whole(FieldEthSrc), Whole(FieldEthDst)}, SetEthSrc(m), InPort()}}
		case 4:
			f = Flow{Table: 20, Priority: 2, Match: Match{}.VLAN(vid).EthDst(m), Actions: []Action{PopVLAN{}, SetTunnelID(uint64(1000 + i)), Output{3}}}
		case 5:
			f = Flow{Table: 61, Priority: 12, Match: Match{}.Reg(6, uint32(i)).EthDst(m), Actions: []Action{Load{Value: uint64(i), Dst: Whole(Reg(7))}, Resubmit{62}}}
		}
		f.Cookie = cookie
		out = append(out, f)
	}
	return out
}

// TestRenderMatchesOVS is the check behind the golden file: every kind of flow, installed
// through our write path, is printed by ovs-ofctl exactly as we render it.
func TestRenderMatchesOVS(t *testing.T) {
	h, b := testBridge(t)
	fs := everyKind(Cookie(CategoryTest, "every-kind"))
	if _, err := b.Sync(context.Background(), fs); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "every kind", dump(t, h), rendered(fs))
}

func TestSyncLandsExactlyAndIsIdempotent(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	cookie := Cookie(CategoryTest, "sync")
	for _, n := range []int{1, 100, 20000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			fs := manyFlows(n, cookie)
			res, err := b.Sync(ctx, fs)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("sync of %d flows: %s", n, res)
			sameLines(t, "after sync", dump(t, h), rendered(fs))

			again, err := b.Sync(ctx, fs)
			if err != nil {
				t.Fatal(err)
			}
			if again.FlowMods() != 0 || again.Unchanged != n {
				t.Fatalf("re-sync sent %d flow-mods (%s), want 0", again.FlowMods(), again)
			}
			// A new write path learns what is installed from the switch itself and must
			// also find nothing to do: instructions and matches round-trip byte for byte.
			fresh := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
			defer fresh.Close()
			r, err := fresh.Sync(ctx, fs)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Read || r.FlowMods() != 0 {
				var diffs []string
				for _, c := range append(append(r.Added, r.Modified...), r.Deleted...) {
					diffs = append(diffs, c.Flow.String())
				}
				t.Fatalf("fresh sync read=%v sent %d flow-mods, want 0:\n%s", r.Read, r.FlowMods(), strings.Join(diffs, "\n"))
			}
		})
	}
}

func TestSyncModifiesDeletesAndSparesForeignFlows(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	cookie := Cookie(CategoryTest, "modify")
	fs := manyFlows(100, cookie)
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	// A flow someone else installed, with another cookie, in a table we also use.
	foreign := "cookie=0x99, table=60, priority=77,in_port=3 actions=drop"
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "add-flow", "br0", foreign); err != nil {
		t.Fatal(err)
	}
	// Change the actions of one flow, drop ten others.
	changed := append([]Flow(nil), fs[:90]...)
	changed[5].Actions = []Action{Output{PortNormal}}
	res, err := b.Sync(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 0 || len(res.Modified) != 1 || len(res.Deleted) != 10 {
		t.Fatalf("got %s, want 0 added, 1 modified, 10 deleted", res)
	}
	if res.Modified[0].Flow.Key() != changed[5].Key() {
		t.Fatalf("modified %s, want %s", res.Modified[0].Flow, changed[5])
	}
	want := append(rendered(changed), foreign)
	sort.Strings(want)
	sameLines(t, "after modify+delete", dump(t, h), want)
}

func TestBundleWithInvalidFlowInstallsNothing(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	cookie := Cookie(CategoryTest, "invalid")
	good := manyFlows(50, cookie)
	if _, err := b.Sync(ctx, good); err != nil {
		t.Fatal(err)
	}
	before := dump(t, h)
	bad := Flow{Table: 10, Priority: 7, Cookie: cookie, Match: Match{}.InPort(2), Actions: []Action{GotoTable{5}}} // goto must go forward
	next := append(manyFlows(80, cookie), bad)
	_, err := b.Sync(ctx, next)
	var fe *FlowError
	if !errors.As(err, &fe) {
		t.Fatalf("want a FlowError, got %v", err)
	}
	if len(fe.Flows) != 1 || fe.Flows[0].Flow.Key() != bad.Key() {
		t.Fatalf("error does not name exactly the bad flow: %v", err)
	}
	if !strings.Contains(err.Error(), "table=10, priority=7,in_port=2 actions=goto_table:5") {
		t.Fatalf("error text does not show the flow: %v", err)
	}
	sameLines(t, "after rejected bundle", dump(t, h), before)
	// The write path still works and still knows what is installed.
	res, err := b.Sync(ctx, next[:80])
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Added) != 30 {
		t.Fatalf("after the rejected bundle: %s, want 30 added", res)
	}
}

func TestSyncAfterVswitchdRestartReinstalls(t *testing.T) {
	h, b := testBridge(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fs := manyFlows(200, Cookie(CategoryTest, "restart"))
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if err := h.RestartVswitchd(ctx); err != nil {
		t.Fatal(err)
	}
	// The management socket comes back once vswitchd has re-created the bridge.
	var res SyncResult
	var err error
	for i := 0; i < 50; i++ {
		if res, err = b.Sync(ctx, fs); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !res.Read || len(res.Added) != len(fs) {
		t.Fatalf("after restart: %s (read=%v), want all %d re-added", res, res.Read, len(fs))
	}
	sameLines(t, "after restart", dump(t, h), rendered(fs))
}
