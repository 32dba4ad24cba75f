package l2

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/state"
)

// TestGenerateRendersAsOVS installs what Generate returns for every node of the tests
// (Neutron's scenarios and the derived cases) on a real Open vSwitch, through our write path,
// and requires ovs-ofctl to print exactly our rendering: masked arp_spa and nd_target,
// EUI-64 link-local targets, untagged matches, push/pop VLAN. The golden files, rendered the
// same way, therefore say what the switch will show.
func TestGenerateRendersAsOVS(t *testing.T) {
	sandbox.SkipIfShort(t, "real Open vSwitch test")
	h := sandbox.StartForTest(t, "l2")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	bridges := map[string]int{"br-int": 8, "br-vlan": 1, "br-ex": 1} // bridge → ports 1..N
	brs := map[string]*flows.Bridge{}
	for _, name := range sortedKeys(bridges) {
		args := []string{"add-br", name, "--", "set", "bridge", name, "datapath_type=netdev",
			"fail_mode=secure", "protocols=OpenFlow10,OpenFlow13"}
		for i := 1; i <= bridges[name]; i++ {
			port := fmt.Sprintf("%s-p%d", strings.TrimPrefix(name, "br-"), i)
			args = append(args, "--", "add-port", name, port, "--", "set", "interface", port,
				"type=internal", fmt.Sprintf("ofport_request=%d", i))
		}
		if _, err := h.Vsctl(ctx, args...); err != nil {
			t.Fatal(err)
		}
		b := flows.NewBridge(name, h.MgmtSocket(name), zaptest.NewLogger(t))
		t.Cleanup(func() { _ = b.Close() })
		brs[name] = b
	}

	nodes := []struct {
		name string
		node *state.Node
	}{{"legacy_vlan", legacyVLANNode()}, {"dvr_vlan", dvrVLANNode()}}
	for _, c := range derivedCases() {
		nodes = append(nodes, struct {
			name string
			node *state.Node
		}{c.name, c.node})
	}
	for _, n := range nodes {
		out := generate(n.node)
		for br := range out {
			if brs[br] == nil {
				t.Fatalf("%s: flows for bridge %s, which the test does not create", n.name, br)
			}
		}
		for _, br := range sortedKeys(bridges) {
			if _, err := brs[br].Sync(ctx, out[br]); err != nil {
				t.Fatalf("%s: sync %s: %v", n.name, br, err)
			}
			want := make([]string, len(out[br]))
			for i, f := range out[br] {
				want[i] = f.String()
			}
			sort.Strings(want)
			got := dumpFlows(t, h, br)
			if strings.Join(got, "\n") != strings.Join(want, "\n") {
				t.Errorf("%s %s: switch (+) and rendering (-) differ:\n%s", n.name, br, lineDiff(want, got))
			}
		}
	}
}

func dumpFlows(t *testing.T, h *sandbox.Host, bridge string) []string {
	t.Helper()
	out, err := h.Ofctl(context.Background(), "-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", bridge)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{}
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "OFPST_FLOW") && !strings.HasPrefix(l, "NXST_FLOW") {
			lines = append(lines, l)
		}
	}
	sort.Strings(lines)
	return lines
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
