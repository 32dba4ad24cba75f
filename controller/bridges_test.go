package controller

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/l2"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/sandbox"
)

func dumpFlows(t *testing.T, h *sandbox.Host, bridge string) string {
	t.Helper()
	out, err := h.Ofctl(context.Background(), "-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", bridge)
	if err != nil {
		return "error: " + err.Error()
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "OFPST_FLOW") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func render(fs []flows.Flow) string {
	var lines []string
	for _, f := range fs {
		lines = append(lines, f.String())
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// A managed bridge deleted by hand is noticed through the OVSDB monitor, re-created with its
// patch ports and options, and its flows re-synced, within a second.
func TestDeletedBridgeIsRecreatedAndResynced(t *testing.T) {
	h := sandbox.StartForTest(t, "bridges")
	log := zaptest.NewLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := ovsdb.Connect(ctx, h.DBEndpoint(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	desired := func(ctx context.Context, bridge string) ([]flows.Flow, error) {
		intPort, err := db.Ofport(ctx, "int-br-vlan")
		if err != nil {
			return nil, err
		}
		phyPort, err := db.Ofport(ctx, "phy-br-vlan")
		if err != nil {
			return nil, err
		}
		integ, phys := l2.PhysicalBaseline(l2.PhysicalBridge{Physnet: "physnet1", Bridge: "br-vlan", IntPort: uint32(intPort), PhyPort: uint32(phyPort)}, false)
		if bridge == "br-int" {
			return flows.FlowsOf(append(l2.IntegrationBaseline(), integ...)), nil
		}
		return flows.FlowsOf(phys), nil
	}
	bs := NewBridges(db, h.RunDir(), log, desired)
	defer bs.Close()
	if err := bs.Manage(ctx, ovsdb.BridgeSpec{Name: "br-int", DatapathType: "netdev"}); err != nil {
		t.Fatal(err)
	}
	if err := bs.Manage(ctx, ovsdb.BridgeSpec{Name: "br-vlan", DatapathType: "netdev"},
		PatchPair{"br-int", "int-br-vlan", "br-vlan", "phy-br-vlan"}); err != nil {
		t.Fatal(err)
	}
	if _, err := bs.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	want, err := desired(ctx, "br-vlan")
	if err != nil {
		t.Fatal(err)
	}
	if got := dumpFlows(t, h, "br-vlan"); got != render(want) {
		t.Fatalf("initial flows:\n%s\nwant\n%s", got, render(want))
	}

	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() { _ = bs.Run(runCtx, nil) }()

	if _, err := h.Vsctl(ctx, "del-br", "br-vlan"); err != nil {
		t.Fatal(err)
	}
	deleted := time.Now()
	var got string
	for time.Since(deleted) < time.Second {
		if got = dumpFlows(t, h, "br-vlan"); got == render(want) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got != render(want) {
		t.Fatalf("br-vlan not restored within a second; flows:\n%s\nwant\n%s", got, render(want))
	}
	t.Logf("br-vlan re-created and re-synced %s after deletion", time.Since(deleted).Round(time.Millisecond))
	if out, _ := h.Vsctl(ctx, "get", "bridge", "br-vlan", "fail_mode", "datapath_type"); !strings.Contains(out, "secure") || !strings.Contains(out, "netdev") {
		t.Fatalf("re-created bridge lacks its options: %s", out)
	}
	if out, _ := h.Vsctl(ctx, "get", "interface", "phy-br-vlan", "options:peer"); strings.TrimSpace(out) != `"int-br-vlan"` && strings.TrimSpace(out) != "int-br-vlan" {
		t.Fatalf("patch port not restored: peer=%s", out)
	}
	// br-int kept its flows (and its drop of the re-created patch port's new ofport).
	wantInt, err := desired(ctx, "br-int")
	if err != nil {
		t.Fatal(err)
	}
	if got := dumpFlows(t, h, "br-int"); got != render(wantInt) {
		t.Fatalf("br-int flows after br-vlan re-creation:\n%s\nwant\n%s", got, render(wantInt))
	}
}
