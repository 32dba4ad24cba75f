package e2e

import (
	"context"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// expectedToFail lists the scenarios whose pipeline is not complete yet, by name, with the
// issue that completes it. Those issues empty this list; a listed scenario that starts to
// pass fails the test, so the list cannot go stale.
var expectedToFail = map[string]string{}

// TestParityWithNeutron runs the real agent for every scenario in testdata/neutron/scenarios
// and compares what the real switch holds with what Neutron's own agent installed for the
// same topology: cookies blanked, port numbers mapped to names and local VLANs to networks,
// one-to-one and non-empty.
func TestParityWithNeutron(t *testing.T) {
	needsSwitch(t)
	dir := scenarioDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s: %v", dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) {
			problems := parity(t, file, strings.TrimSuffix(file, ".json")+".flows")
			reason, listed := expectedToFail[name]
			switch {
			case listed && len(problems) == 0:
				t.Errorf("scenario %s now matches Neutron: remove it from expectedToFail (%s)", name, reason)
			case listed:
				t.Logf("expected to differ until %s:\n%s", reason, strings.Join(problems, "\n"))
			case len(problems) > 0:
				t.Errorf("flows differ from Neutron's:\n%s", strings.Join(problems, "\n"))
			}
		})
	}
}

// parity sets up a host for the scenario as its README describes, runs the agent, and
// returns the differences (empty when the flows match).
func parity(t *testing.T, topoFile, flowsFile string) []string {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, err := testbed.ParseReference(flowsFile)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	h := scenarioHost(t, ctx, "parity", topoFile, topo)

	// Our local VLANs, from the ports' tags.
	portNet := map[string]string{}
	for _, p := range topo.Ports {
		portNet[testbed.PortName(p)] = p.NetworkID
	}
	ours := map[int]string{}
	for _, p := range topo.Ports {
		out, err := h.Vsctl(ctx, "get", "Port", testbed.PortName(p), "tag")
		if err != nil {
			t.Fatal(err)
		}
		var tag int
		if _, err := fmtSscan(strings.TrimSpace(out), &tag); err == nil && tag > 0 && tag < 4095 {
			if prev, ok := ours[tag]; ok && prev != p.NetworkID {
				t.Fatalf("local VLAN %d is used by networks %s and %s", tag, prev, p.NetworkID)
			}
			ours[tag] = p.NetworkID
		}
	}
	if len(ours) != len(ref.LocalVLANs) {
		t.Errorf("local VLANs: ours %v, Neutron's %v", ours, ref.LocalVLANs)
	}

	var problems []string
	bridges := append([]string(nil), ref.Order...)
	sort.Strings(bridges)
	for _, br := range bridges {
		want := ref.Bridges[br]
		if len(want.Lines) == 0 {
			t.Fatalf("reference bridge %s has no flows", br)
		}
		got, err := testbed.DumpFlows(ctx, h, br)
		if err != nil {
			problems = append(problems, br+": "+err.Error())
			continue
		}
		ports, err := testbed.BridgeOfports(ctx, h, br)
		if err != nil {
			t.Fatal(err)
		}
		var w, g []string
		for _, l := range want.Lines {
			w = append(w, testbed.Normalize(l, want.Ofports, ref.LocalVLANs))
		}
		for _, l := range got {
			g = append(g, testbed.Normalize(l, ports, ours))
		}
		missing, extra := testbed.Diff(w, g)
		// The documented, deliberate differences (docs/neutron-differences.md), and
		// nothing else, may remain.
		missing, extra = dvr.Explain(bridgeRole(topo, br), missing, extra, false)
		if len(missing)+len(extra) > 0 {
			problems = append(problems, "bridge "+br+": missing (Neutron has, we do not):\n"+lines(missing)+
				"\n extra (we have, Neutron does not):\n"+lines(extra))
		}
	}
	return problems
}

// scenarioHost starts a host programmed by the agent for a scenario as its README
// describes: the agent sets up its bridges (nothing plugged yet); the uplinks go on the
// physical bridges, then every port in one transaction, in order; the agent binds them.
func scenarioHost(t *testing.T, ctx context.Context, name, topoFile string, topo *topology.File) *sandbox.Host {
	t.Helper()
	h := sandbox.StartForTest(t, name)
	agentOnce(t, h, topoFile, "--manage-router-namespaces=false")
	if topo.Host != nil {
		for br, ports := range topo.Host.PhysicalBridgePorts {
			for _, p := range ports {
				if _, err := h.Vsctl(ctx, "add-port", br, p, "--", "set", "Interface", p, "type=internal"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	integration := "br-int"
	if topo.Host != nil && topo.Host.IntegrationBridge != nil {
		integration = *topo.Host.IntegrationBridge
	}
	first, err := testbed.NextOfport(ctx, h, integration)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testbed.PlugPorts(ctx, h, integration, first, topo.Ports); err != nil {
		t.Fatal(err)
	}
	agentOnce(t, h, topoFile, "--manage-router-namespaces=false")
	return h
}

// bridgeRole says which of dvr's difference roles a bridge of the scenario plays.
func bridgeRole(topo *topology.File, br string) string {
	integration, tunnel := "br-int", "br-tun"
	if h := topo.Host; h != nil {
		if h.IntegrationBridge != nil {
			integration = *h.IntegrationBridge
		}
		if h.TunnelBridge != nil {
			tunnel = *h.TunnelBridge
		}
	}
	switch br {
	case integration:
		return dvr.RoleIntegration
	case tunnel:
		return dvr.RoleTunnel
	}
	return dvr.RolePhysical
}
