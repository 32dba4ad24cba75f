package architecture

import (
	"os/exec"
	"strings"
	"testing"
)

// agentForbiddenModules are modules the CLI uses that must stay out of the agent binary:
// Graphviz compiled to WebAssembly (with its runtime) is megabytes the agent never needs,
// and the browser driver is for tests only.
var agentForbiddenModules = []string{
	"github.com/goccy/go-graphviz",
	"github.com/tetratelabs/wazero",
	"github.com/chromedp/",
}

// TestAgentDoesNotLinkTheCLIsRenderers lists everything cmd/dvrflow-agent links, also
// transitively (go list -deps), and fails on any package of the CLI's renderers.
func TestAgentDoesNotLinkTheCLIsRenderers(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../cmd/dvrflow-agent").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/dvrflow-agent: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 50 {
		t.Fatalf("go list found only %d packages: is it listing the agent?", len(deps))
	}
	for _, dep := range deps {
		for _, bad := range agentForbiddenModules {
			if strings.HasPrefix(dep, bad) || dep == module+"flowgraph" || dep == module+"report" {
				t.Errorf("cmd/dvrflow-agent links %s (the CLI's renderers must stay out of the agent)", dep)
				break
			}
		}
	}
	// The test itself must be able to see a violation: the CLI does link Graphviz.
	cli, err := exec.Command("go", "list", "-deps", "../cmd/dvrflow").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/dvrflow: %v\n%s", err, cli)
	}
	if !strings.Contains(string(cli), "github.com/goccy/go-graphviz") {
		t.Error("cmd/dvrflow does not link go-graphviz: the check above would prove nothing")
	}
}
