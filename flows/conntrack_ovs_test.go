package flows

import (
	"context"
	"strings"
	"testing"

	"go.uber.org/zap/zaptest"
)

// TestFirewallShapesOnOVS: every shape of Neutron's OVS firewall (firewallKinds: ct with a
// table, commit, commit with exec(set_field ct_mark), immediate zones, ct_clear,
// conjunctions and conj_id, ct_state/ct_zone/ct_mark, masked tcp/udp/sctp ports, icmp type
// and code, nw_proto=47), installed through Sync, (a) is printed by ovs-ofctl exactly as we
// render it, (b) reads back byte for byte (a second Sync, and a new write path's first one,
// send no flow-mod) and (c) verifies clean; a change made behind our back is seen.
func TestFirewallShapesOnOVS(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	fs := firewallKinds(Cookie(CategoryFirewall, "c0000001-0000-4000-8000-000000000001"))
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	sameLines(t, "firewall shapes", dump(t, h), rendered(fs))

	again, err := b.Sync(ctx, fs)
	if err != nil || again.FlowMods() != 0 || again.Unchanged != len(fs) {
		t.Fatalf("second sync: %s, %v; want no flow-mod", again, err)
	}
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
	if d, err := fresh.Verify(ctx, fs); err != nil || !d.Empty() {
		t.Fatalf("Verify: %v, %v", d, err)
	}

	// Behind our back: the committed mark of one ct(commit,exec(...)) flow changes.
	var target Flow
	for _, f := range fs {
		if strings.Contains(f.String(), "exec(set_field:0x1->ct_mark)") {
			target = f
			break
		}
	}
	spec := target
	spec.Cookie = 0
	text := spec.String()
	text = text[:strings.Index(text, " actions=")]
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "mod-flows", "br0",
		text+",actions=ct(commit,zone=NXM_NX_REG6[0..15],exec(set_field:0x2->ct_mark))"); err != nil {
		t.Fatal(err)
	}
	d, err := fresh.Verify(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Differing) != 1 || d.Differing[0].Key() != target.Key() || len(d.Missing) != 0 || len(d.Extra) != 0 {
		t.Fatalf("Verify after changing %s: %v", target, d)
	}
}
