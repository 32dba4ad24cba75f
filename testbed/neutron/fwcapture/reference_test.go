package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// referenceDir is where the captured reference is committed.
const referenceDir = "../../../testdata/neutron/firewall"

// firewallTables are br-int's tables Neutron's openvswitch firewall writes: the table 60
// hooks and its own tables.
var firewallTables = []uint8{60, 71, 72, 73, 81, 82, 91, 92, 93, 94}

// TestReferenceFiles keeps the captured reference from rotting: every scenario has both
// files; every .flows parses with dumptext and has flows in each firewall table; every
// .json loads and validates with no Problem and no object lost; the ports' ofports and the
// local VLANs' networks in the .flows header name what the .json holds.
func TestReferenceFiles(t *testing.T) {
	flowsFiles, _ := filepath.Glob(filepath.Join(referenceDir, "*.flows"))
	jsonFiles, _ := filepath.Glob(filepath.Join(referenceDir, "*.json"))
	stem := func(p string) string { return strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)) }
	var fs, js []string
	for _, p := range flowsFiles {
		fs = append(fs, stem(p))
	}
	for _, p := range jsonFiles {
		js = append(js, stem(p))
	}
	var want []string
	for _, sc := range scenarios {
		want = append(want, sc.name)
	}
	slices.Sort(want)
	if !slices.Equal(fs, want) || !slices.Equal(js, want) {
		t.Fatalf("%s has .flows files of %v and .json files of %v, want both for each scenario the tool captures: %v",
			referenceDir, fs, js, want)
	}
	for _, name := range fs {
		t.Run(name, func(t *testing.T) {
			flowsPath := filepath.Join(referenceDir, name+".flows")
			data, err := os.ReadFile(flowsPath)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(data), "cookie=0x") {
				t.Error("a cookie is not blanked to COOKIE")
			}
			parsed, err := dumptext.Parse(strings.NewReader(strings.ReplaceAll(string(data), "cookie=COOKIE", "cookie=0x0")), nil)
			if err != nil {
				t.Fatalf("%s: %v", flowsPath, err)
			}
			perTable := map[uint8]int{}
			for _, f := range parsed {
				perTable[f.Table]++
			}
			for _, table := range firewallTables {
				if perTable[table] == 0 {
					t.Errorf("no flow in table %d", table)
				}
			}
			ref, err := testbed.ParseReference(flowsPath)
			if err != nil {
				t.Fatal(err)
			}
			br := ref.Bridges["br-int"]
			if br == nil || len(br.Lines) != len(parsed) {
				t.Fatalf("br-int section: %v, want all %d flows in it", br, len(parsed))
			}

			jsonPath := filepath.Join(referenceDir, name+".json")
			topo, err := topology.Load(jsonPath)
			if err != nil {
				t.Fatal(err)
			}
			if topo.Name != name {
				t.Errorf("name %q, want %q", topo.Name, name)
			}
			cfg := config.DefaultConfig()
			cfg.TopologyFile = jsonPath
			cfg.ApplyHost(topo.Snapshot().Host)
			if err := cfg.Validate(); err != nil {
				t.Errorf("config: %v", err)
			}
			model, problems := topo.Validate(cfg.Env())
			for _, p := range problems {
				t.Errorf("problem: %v", p)
			}
			if len(model.Ports) != len(topo.Ports) || len(model.SecurityGroups) != len(topo.SecurityGroups) ||
				len(model.Networks) != len(topo.Networks) || len(model.RemotePorts) != len(topo.RemotePorts) {
				t.Errorf("the valid model lost objects")
			}
			networks := map[string]bool{}
			for _, n := range topo.Networks {
				networks[n.ID] = true
			}
			for vlan, id := range ref.LocalVLANs {
				if !networks[id] {
					t.Errorf("local_vlan %d names network %s, which the topology lacks", vlan, id)
				}
			}
			for _, p := range topo.Ports {
				if got := br.Ofports[p.OFPort]; got != testbed.PortName(p) {
					t.Errorf("port %s: ofport %d is %q in the dump, want %s", p.ID, p.OFPort, got, testbed.PortName(p))
				}
			}
		})
	}
}
