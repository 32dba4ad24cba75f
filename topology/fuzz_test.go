package topology

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
)

// checkSecurityGroups checks what a validated model promises of its security groups: a
// withheld group is not among the valid ones, a port naming a withheld group has its
// firewall withheld, and every valid rule's port range reads as ports or ICMP in range.
func checkSecurityGroups(t *testing.T, model *northbound.Model) {
	withheld := map[string]bool{}
	for _, id := range model.WithheldSecurityGroups {
		withheld[id] = true
		if _, ok := model.SecurityGroup(id); ok {
			t.Fatalf("group %s is both withheld and valid", id)
		}
		model.SecurityGroupMembers(id)
	}
	for _, p := range model.Ports {
		for _, id := range p.SecurityGroups {
			if withheld[id] && !p.FirewallWithheld {
				t.Fatalf("port %s names withheld group %s but keeps no firewall", p.ID, id)
			}
		}
	}
	for _, g := range model.SecurityGroups {
		for _, r := range g.Rules {
			pr, hasPorts := r.Ports()
			ic, hasICMP := r.ICMP()
			switch {
			case hasPorts && (pr.Min == 0 || pr.Min > pr.Max || *r.PortRangeMax > 65535):
				t.Fatalf("group %s: a rule with ports %+v", g.ID, pr)
			case hasICMP && (*r.PortRangeMin > 255 || ic.HasCode && *r.PortRangeMax > 255):
				t.Fatalf("group %s: a rule with ICMP %+v", g.ID, r)
			case !hasPorts && !hasICMP && (r.PortRangeMin != nil || r.PortRangeMax != nil):
				t.Fatalf("group %s: a port range that reads as nothing: %+v", g.ID, r)
			case r.RemoteIPPrefix.IsValid() && northbound.EtherTypeOf(r.RemoteIPPrefix.Addr()) != r.EtherType:
				t.Fatalf("group %s: a prefix of the other ethertype: %+v", g.ID, r)
			}
		}
		model.SecurityGroupMembers(g.ID)
	}
}

// FuzzParseAndValidate feeds arbitrary documents through the topology decoder, the parser
// into the model and validation: nothing panics, and every object refused is named with a
// reason, and every associated floating IP kept has a host. Seeds: every scenario, the
// all-kinds fixture, a north-south document, a security group document and a few broken
// documents.
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
		"networks: []\nports: []\nrouters: [{id: r, external_gateway_info: 1}, 2]\nfloatingips: {id: f}\n",
		"networks: [{id: n, network_type: local}]\nsubnets: [{id: s, network_id: n, cidr: 10.0.0.0/24}]\n" +
			"ports: [{id: p, network_id: n, mac: \"fa:16:3e:00:00:01\", fixed_ips: [{ip_address: 10.0.0.5}], security_groups: [g, h, x]}]\n" +
			"address_groups: [{id: a, addresses: [10.1.0.0/16, \"2001:db8::1/64\"]}, {id: b, addresses: [x]}]\n" +
			"security_groups: [{id: g, stateful: false, security_group_rules: [{id: r1, direction: ingress, ethertype: ipv6, protocol: icmp, port_range_min: 128, port_range_max: 0}," +
			" {direction: egress, protocol: 6, port_range_min: 1, port_range_max: 65535, remote_ip_prefix: 10.0.0.9/8}, {direction: ingress, remote_group_id: h}," +
			" {direction: ingress, protocol: any, remote_address_group_id: a}]}," +
			" {id: h, security_group_rules: [{direction: sideways, protocol: 256, port_range_min: 70000, remote_ip_prefix: \"::/0\", remote_group_id: g}]}, {id: h}, 3]\n",
		"networks: []\nports: []\nsecurity_groups: {id: g}\naddress_groups: [{id: a, addresses: 1}]\n"} {
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
		checkSecurityGroups(t, model)
	})
}
