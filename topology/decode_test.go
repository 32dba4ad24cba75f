package topology

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
)

// scenarioDir holds the golden scenarios (testdata/neutron/README.md says where they come from).
const scenarioDir = "../testdata/neutron/scenarios"

// allKinds is the YAML fixture with one object of every kind.
const allKinds = "../testdata/topologies/all_kinds.yaml"

// effectiveConfig is the config a scenario runs with: defaults, then its host section,
// in standalone mode.
func effectiveConfig(t *File, path string) *config.Config {
	c := config.DefaultConfig()
	c.TopologyFile = path
	c.ApplyHost(t.Snapshot().Host)
	return c
}

func TestScenariosLoadAndValidate(t *testing.T) {
	paths, err := filepath.Glob(scenarioDir + "/*.json")
	if err != nil || len(paths) != 4 {
		t.Fatalf("scenarios: %v %v, want 4 files", paths, err)
	}
	paths = append(paths, allKinds)
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			topo, err := Load(path)
			if err != nil {
				t.Fatal(err)
			}
			cfg := effectiveConfig(topo, path)
			if err := cfg.Validate(); err != nil {
				t.Errorf("config: %v", err)
			}
			valid, problems := topo.Validate(cfg.Env())
			for _, p := range problems {
				t.Errorf("problem: %v", p)
			}
			if in, out := fileCounts(topo), modelCounts(valid); !reflect.DeepEqual(in, out) {
				t.Errorf("valid model lost objects: %v of %v", out, in)
			}
		})
	}
}

func TestScenarioValues(t *testing.T) {
	load := func(name string) (*File, *config.Config) {
		t.Helper()
		topo, err := Load(filepath.Join(scenarioDir, name))
		if err != nil {
			t.Fatal(err)
		}
		return topo, effectiveConfig(topo, name)
	}

	topo, cfg := load("legacy_vlan.json")
	if topo.Name != "legacy_vlan" || len(topo.Ports) != 2 || cfg.DistributedRoutingEnabled() {
		t.Errorf("legacy_vlan: %+v", topo)
	}
	n := topo.Networks[0]
	if n.NetworkType != "vlan" || n.PhysicalNetwork != "physnet1" || n.SegmentationID != 196 {
		t.Errorf("legacy_vlan network = %+v", n)
	}
	p := topo.Ports[1]
	if p.MAC != "fa:16:3e:00:01:02" || !p.AdminStateUp || !p.PortSecurityEnabled || p.DeviceOwner != "compute:nova" ||
		!reflect.DeepEqual(p.AllowedAddressPairs, []AddressPair{{IPAddress: "10.0.1.100"}}) {
		t.Errorf("legacy_vlan port = %+v", p)
	}

	topo, cfg = load("dvr_vlan.json")
	if !cfg.DistributedRoutingEnabled() || cfg.DVRMAC.String() != "fa:16:3f:00:00:01" || cfg.AgentMode != "dvr" {
		t.Errorf("dvr_vlan config = %+v", cfg)
	}
	if h := topo.OtherHosts[1]; h.Name != "compute3" || h.DVRMAC != "fa:16:3f:00:00:03" || h.IP != "" {
		t.Errorf("dvr_vlan other host = %+v", h)
	}
	if s := topo.Subnets[1]; s.GatewayMAC != "fa:16:3e:aa:02:01" || s.CIDR != "10.0.2.0/24" {
		t.Errorf("dvr_vlan subnet = %+v", s)
	}
	if p := topo.Ports[0]; p.DeviceOwner != northbound.OwnerRouterInterfaceDistributed || p.DeviceID != "e0000001-0000-4000-8000-000000000001" {
		t.Errorf("dvr_vlan router port = %+v", p)
	}

	topo, cfg = load("dvr_vxlan_l2pop.json")
	if !cfg.ArpResponderEnabled() || !cfg.L2Population || cfg.LocalIP.String() != "192.168.100.11" {
		t.Errorf("dvr_vxlan_l2pop config = %+v", cfg)
	}
	if len(topo.RemotePorts) != 5 || topo.RemotePorts[1].Key() != "compute2/d0000011-0000-4000-8000-000000000011" {
		t.Errorf("dvr_vxlan_l2pop remote ports = %+v", topo.RemotePorts)
	}
	if f := topo.L2popFDB[0]; !f.Flood || f.RemoteIP != "192.168.100.13" || f.Entries[0] != (FDBEntry{MAC: "fa:16:3e:30:02:02", IP: "10.1.2.2"}) {
		t.Errorf("dvr_vxlan_l2pop fdb = %+v", f)
	}
	valid, _ := topo.Validate(cfg.Env())
	// gateway_mac defaults to the MAC of the port holding gateway_ip.
	if s := valid.Subnets[0]; s.GatewayMAC.String() != "fa:16:3e:bb:01:01" || s.IPVersion != 4 {
		t.Errorf("dvr_vxlan_l2pop valid subnet = %+v", s)
	}

	topo, cfg = load("legacy_tunnels.json")
	if !reflect.DeepEqual(cfg.TunnelTypes, []northbound.NetworkType{"vxlan", "gre"}) || cfg.ArpResponderEnabled() {
		t.Errorf("legacy_tunnels config = %+v", cfg)
	}
	if topo.Subnets[2].GatewayIP != "" || topo.Networks[2].NetworkType != "local" || topo.Networks[1].SegmentationID != 4002 {
		t.Errorf("legacy_tunnels = %+v %+v", topo.Subnets[2], topo.Networks)
	}
	valid, _ = topo.Validate(cfg.Env())
	if h := valid.OtherHosts; !reflect.DeepEqual(h[0].TunnelTypes, []northbound.NetworkType{"vxlan", "gre"}) || !reflect.DeepEqual(h[1].TunnelTypes, []northbound.NetworkType{"vxlan"}) {
		t.Errorf("legacy_tunnels other hosts' tunnel_types = %+v", h)
	}
}

func TestAllKindsYAML(t *testing.T) {
	topo, err := Load(allKinds)
	if err != nil {
		t.Fatal(err)
	}
	if h := topo.Host; *h.Name != "compute1" || h.PhysicalBridgePorts["br-vlan"][0] != "vlan-uplink" || !*h.L2Population {
		t.Errorf("host = %+v", h)
	}
	if n := topo.Networks[1]; !n.RouterExternal || n.NetworkType != "flat" {
		t.Errorf("flat network = %+v", n)
	}
	if p := topo.Ports[3]; p.PortSecurityEnabled || p.AdminStateUp {
		t.Errorf("explicit false lost: %+v", p)
	}
	if f := topo.L2popFDB[1]; f.Flood {
		t.Errorf("flood: false lost: %+v", f)
	}
	valid, problems := topo.Validate(effectiveConfig(topo, allKinds).Env())
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if got := valid.Ports[3].FixedIPs[0].SubnetID; got != "sub-vxlan" {
		t.Errorf("inferred subnet_id = %q", got)
	}
	if got := valid.Subnets[2].GatewayMAC; got != nil {
		t.Errorf("gateway_mac of a subnet whose gateway no port holds = %q", got)
	}
	r1, ok := valid.Router("router1")
	if !ok || !r1.Distributed || r1.Gateway == nil || !r1.Gateway.EnableSNAT || r1.Name != "r1" ||
		r1.Gateway.FixedIPs[0] != (northbound.FixedIP{SubnetID: "sub-flat", IP: netip.MustParseAddr("172.24.4.5")}) {
		t.Errorf("router1 (defaults) = %+v", r1)
	}
	if r2, _ := valid.Router("router2"); r2.Distributed || r2.Gateway.EnableSNAT || r2.Gateway.FixedIPs[0].SubnetID != "sub-flat" {
		t.Errorf("router2 (explicit false, inferred subnet_id) = %+v %+v", r2, r2.Gateway)
	}
	if r3, _ := valid.Router("router3"); r3.Gateway != nil || !r3.Distributed {
		t.Errorf("router3 (no gateway) = %+v", r3)
	}
	wantFIPs := []northbound.FloatingIP{
		{ID: "fip-vxlan", Address: netip.MustParseAddr("172.24.4.100"), NetworkID: "net-flat", RouterID: "router1",
			PortID: "vm-vxlan", FixedIP: netip.MustParseAddr("10.1.1.11"), Host: "compute1"},
		{ID: "fip-remote", Address: netip.MustParseAddr("172.24.4.101"), NetworkID: "net-flat", RouterID: "router1",
			PortID: "vm-remote", FixedIP: netip.MustParseAddr("10.1.1.21"), Host: "compute2"},
		{ID: "fip-free", Address: netip.MustParseAddr("172.24.4.102"), NetworkID: "net-flat"},
	}
	if !reflect.DeepEqual(valid.FloatingIPs, wantFIPs) {
		t.Errorf("floating IPs (hosts and fixed IPs resolved) =\n%+v\nwant\n%+v", valid.FloatingIPs, wantFIPs)
	}
	if topo.FloatingIPs[1].FixedIPAddress != "" || topo.Routers[1].ExternalGatewayInfo.ExternalFixedIPs[0].SubnetID != "" {
		t.Errorf("validation modified the file: %+v", topo.FloatingIPs[1])
	}
	checkAllKindsSecurityGroups(t, valid)
}

// checkAllKindsSecurityGroups checks all_kinds.yaml's security groups as validated: the
// defaults, Neutron's normalisations and the members of a remote group.
func checkAllKindsSecurityGroups(t *testing.T, valid *northbound.Model) {
	t.Helper()
	if len(valid.SecurityGroups) != 3 || len(valid.WithheldSecurityGroups) != 0 || len(valid.AddressGroups) != 1 {
		t.Fatalf("groups = %+v\nwithheld %v\naddress groups %+v", valid.SecurityGroups, valid.WithheldSecurityGroups, valid.AddressGroups)
	}
	def, _ := valid.SecurityGroup("sg-default")
	if !def.Stateful || def.Name != "default" || def.Rules[1].EtherType != northbound.IPv4 || !def.Rules[1].Protocol.Any() ||
		def.Rules[3].EtherType != northbound.IPv6 || def.Rules[0].RemoteGroupID != "sg-default" {
		t.Errorf("sg-default = %+v", def)
	}
	web, _ := valid.SecurityGroup("sg-web")
	if pr, ok := web.Rules[0].Ports(); !ok || pr != (northbound.PortRange{Min: 80, Max: 443}) || web.Rules[0].RemoteIPPrefix.String() != "0.0.0.0/0" {
		t.Errorf("sgr-5 = %+v", web.Rules[0])
	}
	if n, _ := web.Rules[1].Protocol.Number(); n != northbound.ProtoUDP || web.Rules[1].RemoteAddressGroupID != "ag-office" {
		t.Errorf("sgr-6 = %+v", web.Rules[1])
	}
	if ic, ok := web.Rules[2].ICMP(); !ok || web.Rules[2].Protocol.Name() != "ipv6-icmp" || ic != (northbound.ICMPMatch{Type: 128}) {
		t.Errorf("sgr-7 = %+v (ICMP %+v)", web.Rules[2], ic)
	}
	if ic, ok := web.Rules[3].ICMP(); !ok || web.Rules[3].Protocol.Name() != "icmp" || ic != (northbound.ICMPMatch{Type: 8, HasCode: true}) ||
		web.Rules[3].RemoteIPPrefix.String() != "10.0.1.0/24" {
		t.Errorf("sgr-8 = %+v", web.Rules[3])
	}
	if _, ok := web.Rules[4].Ports(); ok {
		t.Errorf("sgr-9 (1-65535) = %+v, want no range", web.Rules[4])
	}
	if g, _ := valid.SecurityGroup("sg-stateless"); g.Stateful || !g.Rules[0].Protocol.Any() {
		t.Errorf("sg-stateless = %+v", g)
	}
	ag, _ := valid.AddressGroup("ag-office")
	if got := fmt.Sprint(ag.Addresses); got != "[192.0.2.0/24 198.51.100.0/24 2001:db8:99::/48]" {
		t.Errorf("ag-office addresses = %s", got)
	}
	if p := valid.Ports[1]; !reflect.DeepEqual(p.SecurityGroups, []string{"sg-default", "sg-web"}) || p.FirewallWithheld {
		t.Errorf("vm-vlan groups = %v (withheld %v)", p.SecurityGroups, p.FirewallWithheld)
	}
	if got := fmt.Sprint(valid.SecurityGroupMembers("sg-default")); got != "[10.0.1.11/32 10.0.1.100/32 10.0.1.128/25 10.1.1.21/32 2001:db8:1::11/128]" {
		t.Errorf("members of sg-default = %s", got)
	}
}

// TestDecodeRoutersAndFloatingIPs checks the north-south keys: Neutron's names, the
// documented defaults, unknown keys ignored, and objects of the wrong shape reported.
func TestDecodeRoutersAndFloatingIPs(t *testing.T) {
	tests := []struct {
		name        string
		text        string
		routers     []Router
		floatingIPs []FloatingIP
		undecodable []northbound.Problem
	}{
		{name: "defaults", text: `routers: [{id: r1, external_gateway_info: {network_id: ext}}, {id: r2}]`,
			routers: []Router{{ID: "r1", Distributed: true, ExternalGatewayInfo: &GatewayInfo{NetworkID: "ext", EnableSNAT: true}},
				{ID: "r2", Distributed: true}}},
		{name: "explicit values", text: `routers: [{id: r1, name: one, distributed: false, ha: true, external_gateway_info: {network_id: ext, enable_snat: false,
  external_fixed_ips: [{subnet_id: s1, ip_address: 203.0.113.5}], qos_policy_id: null}}]`,
			routers: []Router{{ID: "r1", Name: "one", ExternalGatewayInfo: &GatewayInfo{NetworkID: "ext",
				ExternalFixedIPs: []FixedIP{{SubnetID: "s1", IPAddress: "203.0.113.5"}}}}}},
		{name: "null gateway", text: `routers: [{id: r1, external_gateway_info: null}]`,
			routers: []Router{{ID: "r1", Distributed: true}}},
		{name: "empty gateway", text: `routers: [{id: r1, external_gateway_info: {}}]`,
			routers: []Router{{ID: "r1", Distributed: true, ExternalGatewayInfo: &GatewayInfo{EnableSNAT: true}}}},
		{name: "floating IPs", text: `floatingips:
  - {id: f1, floating_ip_address: 203.0.113.10, floating_network_id: ext, router_id: r1, port_id: p1, fixed_ip_address: 10.0.0.5, status: ACTIVE}
  - {id: f2, floating_ip_address: 203.0.113.11, floating_network_id: ext, router_id: null, port_id: null}`,
			floatingIPs: []FloatingIP{{ID: "f1", FloatingIPAddress: "203.0.113.10", FloatingNetworkID: "ext", RouterID: "r1", PortID: "p1", FixedIPAddress: "10.0.0.5"},
				{ID: "f2", FloatingIPAddress: "203.0.113.11", FloatingNetworkID: "ext"}}},
		{name: "wrong types", text: `routers:
  - {id: r1, distributed: [yes]}
  - {id: r2, external_gateway_info: ext}
  - {id: r3, external_gateway_info: {network_id: ext, external_fixed_ips: {ip_address: 203.0.113.5}}}
  - {id: r4}
floatingips: [{id: f1, port_id: {id: p1}}, 7]`,
			routers:     []Router{{ID: "r4", Distributed: true}},
			floatingIPs: []FloatingIP{},
			undecodable: []northbound.Problem{
				{Kind: northbound.KindRouter, ID: "r1", Field: "distributed", Reason: "is a JSON array, want a boolean"},
				{Kind: northbound.KindRouter, ID: "r2", Field: "external_gateway_info", Reason: "is a JSON string, want a mapping"},
				{Kind: northbound.KindRouter, ID: "r3", Field: "external_gateway_info.external_fixed_ips", Reason: "is a JSON object, want a list"},
				{Kind: northbound.KindFloatingIP, ID: "f1", Field: "port_id", Reason: "is a JSON object, want a string"},
				{Kind: northbound.KindFloatingIP, ID: "floatingips[1]", Reason: "is a JSON number, want a mapping"},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topo, err := Parse([]byte("networks: []\nports: []\n" + tt.text + "\n"))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(topo.Routers, tt.routers) {
				t.Errorf("routers = %+v\nwant %+v", topo.Routers, tt.routers)
			}
			if !reflect.DeepEqual(topo.FloatingIPs, tt.floatingIPs) {
				t.Errorf("floatingips = %+v\nwant %+v", topo.FloatingIPs, tt.floatingIPs)
			}
			if got := topo.Snapshot().Problems; !reflect.DeepEqual(got, tt.undecodable) {
				t.Errorf("problems = %v\nwant %v", got, tt.undecodable)
			}
		})
	}
}

// TestNeutronSpellings checks that Neutron's API attribute names are accepted too.
func TestNeutronSpellings(t *testing.T) {
	topo, err := Parse([]byte(`
networks: [{id: n1, "provider:network_type": vlan, "provider:physical_network": p1, "provider:segmentation_id": 5}]
ports: [{id: p1, network_id: n1, mac_address: "fa:16:3e:00:00:01", device_owner: ""}]
remote_ports: [{host: h2, id: p2, network_id: n1, mac_address: "fa:16:3e:00:00:02"}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Network{ID: "n1", NetworkType: "vlan", PhysicalNetwork: "p1", SegmentationID: 5}
	if topo.Networks[0] != want {
		t.Errorf("network = %+v, want %+v", topo.Networks[0], want)
	}
	if topo.Ports[0].MAC != "fa:16:3e:00:00:01" || topo.Ports[0].DeviceOwner != "" {
		t.Errorf("port = %+v", topo.Ports[0])
	}
	if rp := topo.RemotePorts[0]; rp.MAC != "fa:16:3e:00:00:02" || rp.DeviceOwner != "compute:nova" {
		t.Errorf("remote port = %+v", rp)
	}
}

func TestLoadFileErrors(t *testing.T) {
	tests := []struct {
		name, text, want string
	}{
		{"not YAML", "networks: [\n  {id: a\nports: []\n", "line"},
		{"not a mapping", "- a\n- b\n", "not a mapping"},
		{"empty", "", "not a mapping"},
		{"no networks", "ports: []\n", `missing key "networks"`},
		{"null ports", "networks: []\nports:\n", `missing key "ports"`},
		{"list is a string", "networks: []\nports: []\nsubnets: none\n", "subnets: not a list"},
		{"routers is a mapping", "networks: []\nports: []\nrouters: {id: r1}\n", "routers: not a list"},
		{"floatingips is a string", "networks: []\nports: []\nfloatingips: none\n", "floatingips: not a list"},
		{"bad host", "host: {l2_population: [1]}\nnetworks: []\nports: []\n", "host: field l2_population: is a JSON array, want a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "topo.yaml")
			if err := os.WriteFile(path, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %v, want the path and %q", err, tt.want)
			}
		})
	}
	if _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("unreadable file: err = %v", err)
	}
}

// TestUndecodableObject checks that an object of the wrong shape is reported
// and only it (and its dependents) is lost.
func TestUndecodableObject(t *testing.T) {
	topo, err := Parse([]byte(`
networks:
  - {id: n1, network_type: vlan, physical_network: p1, segmentation_id: "one"}
  - {id: n2, network_type: vlan, physical_network: p1, segmentation_id: 2}
ports:
  - {id: a, network_id: n1, mac: "fa:16:3e:00:00:01"}
  - {id: b, network_id: n2, mac: "fa:16:3e:00:00:02"}
  - "not a port"
`))
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.BridgeMappings = map[string]string{"p1": "br-p1"}
	valid, problems := topo.Validate(cfg.Env())
	want := []northbound.Problem{
		{Kind: northbound.KindNetwork, ID: "n1", Field: "segmentation_id", Reason: "is a JSON string, want an integer"},
		{Kind: northbound.KindPort, ID: "ports[2]", Reason: "is a JSON string, want a mapping"},
		{Kind: northbound.KindPort, ID: "a", Field: "network_id", Reason: "network n1 is invalid"},
	}
	if !reflect.DeepEqual(problems, want) {
		t.Errorf("problems:\n%v\nwant\n%v", problems, want)
	}
	if len(valid.Networks) != 1 || len(valid.Ports) != 1 || valid.Ports[0].ID != "b" {
		t.Errorf("valid = %+v", valid)
	}
}

// TestYAMLScalars checks YAML's implicit types: an unquoted all-digit MAC stays a string
// (no base-60 numbers), a number given for a string field becomes a string, and YAML 1.1
// "no" is false.
func TestYAMLScalars(t *testing.T) {
	topo, err := Parse([]byte(`
networks: []
ports: [{id: p1, name: 1234, network_id: n1, mac: 12:34:56:00:01:02, admin_state_up: no, device_id: 42}]
`))
	if err != nil {
		t.Fatal(err)
	}
	want := Port{ID: "p1", Name: "1234", NetworkID: "n1", MAC: "12:34:56:00:01:02", DeviceOwner: northbound.OwnerCompute,
		DeviceID: "42", PortSecurityEnabled: true}
	if !reflect.DeepEqual(topo.Ports[0], want) {
		t.Errorf("port = %+v\nwant %+v", topo.Ports[0], want)
	}
}

// fileCounts returns the number of objects per kind of a file.
func fileCounts(f *File) map[northbound.Kind]int {
	return map[northbound.Kind]int{
		northbound.KindOtherHost: len(f.OtherHosts), northbound.KindNetwork: len(f.Networks), northbound.KindSubnet: len(f.Subnets),
		northbound.KindPort: len(f.Ports), northbound.KindRemotePort: len(f.RemotePorts), northbound.KindL2popFDB: len(f.L2popFDB),
		northbound.KindRouter: len(f.Routers), northbound.KindFloatingIP: len(f.FloatingIPs),
		northbound.KindSecurityGroup: len(f.SecurityGroups), northbound.KindAddressGroup: len(f.AddressGroups),
	}
}

// modelCounts returns the number of objects per kind of a model.
func modelCounts(m *northbound.Model) map[northbound.Kind]int {
	return map[northbound.Kind]int{
		northbound.KindOtherHost: len(m.OtherHosts), northbound.KindNetwork: len(m.Networks), northbound.KindSubnet: len(m.Subnets),
		northbound.KindPort: len(m.Ports), northbound.KindRemotePort: len(m.RemotePorts), northbound.KindL2popFDB: len(m.FDB),
		northbound.KindRouter: len(m.Routers), northbound.KindFloatingIP: len(m.FloatingIPs),
		northbound.KindSecurityGroup: len(m.SecurityGroups), northbound.KindAddressGroup: len(m.AddressGroups),
	}
}
