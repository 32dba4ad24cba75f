package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/sandbox"
)

// TestFailsClosedOnFiltering: an ini asking for the iptables_hybrid firewall, which dvrflow
// does not implement (only openvswitch), stops the agent before it touches the switch, naming
// the option; with
// [dvrflow] allow_unfiltered_ports the agent runs and says at start that ports are not
// filtered, and names every other option it does not act on.
func TestFailsClosedOnFiltering(t *testing.T) {
	needsSwitch(t)
	dir := t.TempDir()
	topo := filepath.Join(dir, "topology.yaml")
	writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1")))
	ini := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	firewall := ini("firewall.ini", "[securitygroup]\nfirewall_driver = iptables_hybrid\n[agent]\ndrop_flows_on_start = true\n")
	h := sandbox.StartForTest(t, "failclosed")

	out, err := runAgentOnce(h, topo, "--config-file", firewall)
	if err == nil {
		t.Fatalf("the agent ran with firewall_driver = iptables_hybrid and no allow_unfiltered_ports:\n%s", out)
	}
	if !regexp.MustCompile(`firewall_driver: \\?"iptables_hybrid\\?" asks for security-group filtering`).MatchString(out) {
		t.Errorf("the refusal does not name firewall_driver:\n%s", out)
	}
	if err := bridgeExists(t.Context(), h, "br-int"); err == nil {
		t.Error("the refused agent created br-int")
	}

	allow := ini("allow.ini", "[dvrflow]\nallow_unfiltered_ports = true\n")
	out = agentOnce(t, h, topo, "--config-file", firewall, "--config-file", allow)
	for _, option := range []string{"firewall_driver", "drop_flows_on_start"} {
		if !regexp.MustCompile(`option not honoured.*"option": "` + option + `"`).MatchString(out) {
			t.Errorf("no warning naming %s at start:\n%s", option, out)
		}
	}
	if !strings.Contains(out, "VM ports are NOT filtered") {
		t.Errorf("the start does not say that ports are unfiltered:\n%s", out)
	}
}
