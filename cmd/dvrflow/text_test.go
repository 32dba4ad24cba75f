package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/testbed/scenario"
)

var update = flag.Bool("update", false, "rewrite the golden text outputs in testdata/")

// golden compares got with testdata/name (rewritten with -update).
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test -update rewrites it):\n%s", name, got)
	}
}

func scenarioNode(t *testing.T, name string) *inspect.Node {
	t.Helper()
	n, err := scenario.Node(filepath.Join("..", "..", "testdata", "neutron", "scenarios"), name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestFlowsTextGolden pins `dvrflow flows` text for the flows Neutron's agent installed for
// each scenario: tables, rules, owners, matches and actions with names.
func TestFlowsTextGolden(t *testing.T) {
	for _, name := range []string{"dvr_vlan", "dvr_vxlan_l2pop", "legacy_tunnels", "legacy_vlan"} {
		t.Run(name, func(t *testing.T) {
			n := scenarioNode(t, name)
			var recs []inspect.FlowRecord
			for _, br := range n.Bridges {
				recs = append(recs, n.Records(br)...)
			}
			var out bytes.Buffer
			if err := writeFlowsText(&out, recs); err != nil {
				t.Fatal(err)
			}
			golden(t, "flows_"+name+".txt", out.Bytes())
		})
	}
}

// TestDiffTextGolden pins `dvrflow diff` text: equal, then one flow missing, one extra and
// one changed, grouped by bridge and owner.
func TestDiffTextGolden(t *testing.T) {
	n := scenarioNode(t, "dvr_vlan")
	res, _, err := n.Diff(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := writeDiffText(&out, res); err != nil {
		t.Fatal(err)
	}
	if !res.Equal {
		t.Fatalf("Neutron's flows differ from dvrflow's for dvr_vlan:\n%s", out.String())
	}
	recs := n.Records("br-int")
	missing, extra, changed := recs[0], recs[1], recs[2]
	changed.Cookie = "0xd7f1040000000001" // Neutron's cookies are random; the golden file is not
	changedTo := changed
	changedTo.Actions = "drop"
	res = &inspect.DiffResult{Source: "topology", Missing: []inspect.FlowRecord{missing}, Extra: []inspect.FlowRecord{extra},
		Changed: []inspect.Change{{Desired: changed, Installed: changedTo}}}
	out.WriteString("---\n")
	if err := writeDiffText(&out, res); err != nil {
		t.Fatal(err)
	}
	golden(t, "diff_dvr_vlan.txt", out.Bytes())
}
