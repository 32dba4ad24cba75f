package flows

import (
	"context"
	"testing"

	"go.uber.org/zap/zaptest"
)

// A write path that learned what is installed from the switch (not from its own commits)
// modifies exactly the flows whose actions changed, and the switch then holds them: the
// instructions it read back and the ones it encodes compare byte for byte, per flow.
func TestFreshSyncModifiesChangedActions(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	fs := manyFlows(300, Cookie(CategoryTest, "fresh"))
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	changed := append([]Flow(nil), fs...)
	modified := map[Key]bool{}
	for i := 0; i < len(changed); i += 37 {
		if acts := changed[i].Actions; len(acts) > 0 && isConjunction(acts[0]) {
			continue // a conjunction flow has no other actions
		}
		changed[i].Actions = append([]Action{Output{Port: uint32(1 + i%3)}}, changed[i].Actions...)
		modified[changed[i].Key()] = true
	}
	fresh := NewBridge("br0", h.MgmtSocket("br0"), zaptest.NewLogger(t))
	defer fresh.Close()
	res, err := fresh.Sync(ctx, changed)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Read || len(res.Added) != 0 || len(res.Deleted) != 0 || len(res.Modified) != len(modified) {
		t.Fatalf("fresh sync of %d changed flows: %s (read %v)", len(modified), res, res.Read)
	}
	for _, c := range res.Modified {
		if !modified[c.Flow.Key()] {
			t.Errorf("modified a flow whose actions did not change: %s", c.Flow)
		}
	}
	sameLines(t, "after the fresh sync", dump(t, h), rendered(changed))
	if again, err := fresh.Sync(ctx, changed); err != nil || again.FlowMods() != 0 {
		t.Fatalf("re-sync: %s, %v; want nothing", again, err)
	}
}

// Verify reads the switch afresh and reports flows missing, flows with other actions and
// our flows that are not desired.
func TestVerifyReportsDifferences(t *testing.T) {
	h, b := testBridge(t)
	ctx := context.Background()
	fs := manyFlows(40, Cookie(CategoryTest, "verify"))
	if _, err := b.Sync(ctx, fs); err != nil {
		t.Fatal(err)
	}
	if d, err := b.Verify(ctx, fs); err != nil || !d.Empty() {
		t.Fatalf("Verify after Sync: %v, %v", d, err)
	}
	// Behind the agent's back: other actions on fs[1], fs[2] deleted.
	spec := func(f Flow) string {
		f.Cookie = 0
		s := f.String()
		return s[:len(s)-len(" actions="+f.ActionsString(nil))]
	}
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "mod-flows", "br0", spec(fs[1])+",actions=output:3"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "del-flows", "br0", spec(fs[2])); err != nil {
		t.Fatal(err)
	}
	d, err := b.Verify(ctx, fs[:39])
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Differing) != 1 || d.Differing[0].Key() != fs[1].Key() ||
		len(d.Missing) != 1 || d.Missing[0].Key() != fs[2].Key() ||
		len(d.Extra) != 1 || d.Extra[0].Key() != fs[39].Key() {
		t.Fatalf("Verify: %v", d)
	}
}

func isConjunction(a Action) bool { _, ok := a.(Conjunction); return ok }
