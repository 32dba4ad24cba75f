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
// reason, and every associated floating IP kept has a host. Seeds: every scenario, the
// all-kinds fixture, a north-south document and a few broken documents.
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
		`{"networks":[{"id":"n","network_type":"vlan","segmentation_id":"x"}],"ports":[{"id":"p","network_id":"n","mac":"zz"}]}`,
		"networks: [{id: e, network_type: flat, physical_network: extnet, \"router:external\": true}]\n" +
			"subnets: [{id: s, network_id: e, cidr: 203.0.113.0/24}]\n" +
			"ports: [{id: fg, network_id: e, mac: \"fa:16:3e:00:00:01\", device_owner: \"network:floatingip_agent_gateway\", fixed_ips: [{ip_address: 203.0.113.2}]}]\n" +
			"routers: [{id: r, distributed: true, external_gateway_info: {network_id: e, enable_snat: false, external_fixed_ips: [{subnet_id: s, ip_address: 203.0.113.5}]}}]\n" +
			"floatingips: [{id: f, floating_ip_address: 203.0.113.9, floating_network_id: e, router_id: r, port_id: fg, fixed_ip_address: 203.0.113.2}, {id: g, floating_ip_address: x}]\n",
		"networks: []\nports: []\nrouters: [{id: r, external_gateway_info: 1}, 2]\nfloatingips: {id: f}\n"} {
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
		for _, f := range model.FloatingIPs {
			if f.Associated() && f.Host == "" {
				t.Fatalf("an associated floating IP without a host: %+v", f)
			}
		}
	})
}
