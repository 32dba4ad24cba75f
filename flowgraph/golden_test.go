package flowgraph_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/testbed/scenario"
)

var update = flag.Bool("update", false, "rewrite the golden DOT files in testdata/")

// scenarioGraph draws the graph of one of Neutron's reference dumps.
func scenarioGraph(t *testing.T, name string) *flowgraph.Graph {
	t.Helper()
	node, err := scenario.Node(filepath.Join("..", "testdata", "neutron", "scenarios"), name)
	if err != nil {
		t.Fatal(err)
	}
	return flowgraph.Build(flowgraph.InputOf(node))
}

func scenarioNames(t *testing.T) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("..", "testdata", "neutron", "scenarios", "*.flows"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no reference dumps: %v", err)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), ".flows")
	}
	return names
}

// TestGoldenDOT compares the DOT of every reference dump with testdata/NAME.dot
// (go test -run TestGoldenDOT -update rewrites them).
func TestGoldenDOT(t *testing.T) {
	for _, name := range scenarioNames(t) {
		t.Run(name, func(t *testing.T) {
			got := scenarioGraph(t, name).DOT()
			golden := filepath.Join("testdata", name+".dot")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("DOT of %s differs from %s (run with -update after checking):\n%s", name, golden, got)
			}
		})
	}
}
