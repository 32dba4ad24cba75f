package topology

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
)

// FuzzParseAndValidate feeds arbitrary documents through the topology decoder, the parser
// into the model and validation: nothing panics, and every object refused is named with a
// reason. Seeds: every scenario, the all-kinds fixture, and a few broken documents.
func FuzzParseAndValidate(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(scenarioDir, "*.json"))
	for _, p := range append(paths, allKinds) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{"", "networks: []\nports: []\n", "networks: [1]\nports: [{id: 2}]\n",
		"host: {tunnel_types: [vxlan, stt]}\nnetworks: []\nports: []\n",
		`{"networks":[{"id":"n","network_type":"vlan","segmentation_id":"x"}],"ports":[{"id":"p","network_id":"n","mac":"zz"}]}`} {
		f.Add([]byte(s))
	}
	env := northbound.Env{Host: "compute1", TunnelTypes: []northbound.NetworkType{northbound.VXLAN, northbound.GRE},
		BridgeMappings: map[string]string{"physnet1": "br-vlan", "extnet": "br-ex"}, LocalIP: netip.MustParseAddr("192.168.100.11"), AgentMode: northbound.ModeDVR}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("an empty error")
			}
			return
		}
		snap := file.Snapshot()
		model, problems := northbound.Validate(*snap, env)
		for _, p := range append(snap.Problems, problems...) {
			if p.Kind == "" || p.ID == "" || p.Reason == "" {
				t.Fatalf("a problem that names nothing: %+v", p)
			}
		}
		model.L2popFDB()
		model.RouterHosts()
	})
}
