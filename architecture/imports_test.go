package architecture

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/dvrflow/dvrflow/"

// allowed lists, for every package of the project, the project packages its non-test files
// may import. A new package must be added here, placed in the layers:
//
//   - the model: northbound (Neutron's objects, typed; no project imports) and state (a
//     node's resolved view, built from the model);
//   - sources that feed the model: topology (later neutron), which see nothing but it;
//   - the agent's config (controller/config), which knows the model's enums;
//   - pure generators: l2, dvr, tunnels, composed by pipeline; they see the model, state and
//     the flow types, and nothing that does I/O;
//   - the write path: flows (+ ofconn) and ovsdb, which know no Neutron object;
//   - the agent, controller, which consumes the model without knowing its source, and
//     startup, which wires a source to it;
//   - the harness (sandbox, testbed, bench, the demo and sandbox commands), which the
//     product never imports.
var allowed = map[string][]string{
	"northbound":                     {},
	"state":                          {"northbound"},
	"topology":                       {"northbound"},
	"neutron/oslo":                   {},
	"neutron":                        {"neutron/oslo", "northbound"},
	"controller/config":              {"northbound"},
	"l2":                             {"flows", "northbound", "state"},
	"dvr":                            {"flows", "northbound", "state"},
	"tunnels":                        {"flows", "northbound", "state"},
	"firewall":                       {"flows", "northbound", "state"},
	"pipeline":                       {"dvr", "firewall", "flows", "l2", "state", "tunnels"},
	"flows":                          {"flows/ofconn"},
	"flows/ofconn":                   {},
	"ovsdb":                          {"ovsdb/vswitchd"},
	"ovsdb/vswitchd":                 {},
	"ovsdb/vswitchd/internal/narrow": {},
	"ethtool":                        {},
	"nsthread":                       {},
	"dvr/namespace":                  {"dvr/nat", "ethtool", "northbound", "nsthread", "ovsdb", "state"},
	"dvr/nat":                        {},
	"controller":                     {"controller/config", "dvr/namespace", "flows", "northbound", "ovsdb", "pipeline", "state", "tunnels"},
	"startup":                        {"controller", "controller/config", "flows", "neutron", "neutron/oslo", "northbound", "ovsdb", "state", "topology"},
	"metrics":                        {"controller", "flows"},
	"agentapi":                       {"controller", "controller/config", "flows", "northbound"},
	"cmd/dvrflow-agent":              {"agentapi", "controller", "controller/config", "dvr/namespace", "flows", "metrics", "startup"},
	"cmd/dvrflow":                    {"agentapi", "controller/config", "explain", "flowgraph", "flows/dumptext", "inspect", "northbound", "ovsdb", "report", "topology", "trace", "unixctl"},
	"inspect":                        {"controller", "controller/config", "dvr", "explain", "flows", "flows/dumptext", "northbound", "ovsdb", "topology"},
	"explain":                        {"flows", "flows/dumptext", "northbound", "ovsdb"},
	"flows/dumptext":                 {},
	"flowgraph":                      {"flows", "flows/dumptext", "inspect"},
	"report":                         {"inspect"},
	"unixctl":                        {},
	"trace":                          {"explain", "flows/dumptext", "northbound", "ovsdb"},
	"architecture":                   {},

	// The harness.
	"sandbox":                   {"ethtool", "nsthread"},
	"testbed":                   {"controller/config", "ethtool", "northbound", "nsthread", "ovsdb", "sandbox", "topology"},
	"testbed/rabbitmq":          {"sandbox"},
	"testbed/neutron":           {"nsthread", "sandbox", "testbed", "testbed/rabbitmq"},
	"testbed/neutron/fwcapture": {"northbound", "sandbox", "testbed", "testbed/neutron", "topology"},
	"testbed/scenario":          {"controller/config", "inspect", "testbed", "topology"},
	"bench/topogen":             {"northbound", "topology"},
	"bench":                     {"bench/topogen", "controller", "controller/config", "flows", "inspect", "ovsdb/vswitchd", "sandbox", "startup", "testbed", "testbed/neutron", "topology"},
	"cmd/dvrflow-demo":          {"dvr/namespace", "northbound", "sandbox", "testbed", "topology"},
	"cmd/dvrflow-sandbox":       {"sandbox"},
	"cmd/dvrflow-topogen":       {"bench/topogen"},
}

// harness are the packages the product must not import, whatever the table says.
var harness = []string{"sandbox", "testbed", "testbed/rabbitmq", "testbed/neutron", "testbed/neutron/fwcapture", "testbed/scenario", "bench", "bench/topogen", "e2e"}

// product reports whether a package is part of what ships (not the harness or a command
// of the harness).
func product(pkg string) bool {
	return !slices.Contains(harness, pkg) && !slices.Contains([]string{"cmd/dvrflow-demo", "cmd/dvrflow-sandbox", "cmd/dvrflow-topogen"}, pkg)
}

func TestImportDirections(t *testing.T) {
	imports := projectImports(t, "..")
	if len(imports) < 20 {
		t.Fatalf("found only %d packages: is the walk looking at the repository?", len(imports))
	}
	for _, pkg := range sortedKeys(imports) {
		allow, known := allowed[pkg]
		if !known {
			t.Errorf("package %s is not placed in the layers: add it to allowed", pkg)
			continue
		}
		for _, imp := range imports[pkg] {
			switch {
			case product(pkg) && slices.Contains(harness, imp):
				t.Errorf("%s imports the test harness %s", pkg, imp)
			case !slices.Contains(allow, imp):
				t.Errorf("%s imports %s, which its layer may not (allowed: %s)", pkg, imp, strings.Join(allow, ", "))
			}
		}
	}
	for pkg := range allowed {
		if _, ok := imports[pkg]; !ok {
			t.Errorf("allowed lists %s, which has no Go files any more", pkg)
		}
	}
}

// projectImports returns, for every directory under root holding non-test Go files, the
// project packages those files import (module-relative paths, sorted, once each).
func projectImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, filepath.Dir(path))
		if err != nil {
			return err
		}
		pkg := filepath.ToSlash(rel)
		if _, ok := out[pkg]; !ok {
			out[pkg] = []string{}
		}
		for _, spec := range f.Imports {
			imp, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				return err
			}
			if own, ok := strings.CutPrefix(imp, module); ok && !slices.Contains(out[pkg], own) {
				out[pkg] = append(out[pkg], own)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, imps := range out {
		slices.Sort(imps)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("%s is not the repository root: %v", root, err)
	}
	return out
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
