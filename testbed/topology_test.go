package testbed

import (
	"slices"
	"strings"
	"testing"
)

func TestAgentTopology(t *testing.T) {
	const valid = `
host: {name: compute1, local_ip: 192.0.2.11, tunnel_types: [vxlan], l2_population: true}
networks: [{id: net1, network_type: vxlan, segmentation_id: 1001}]
subnets: [{id: sub1, network_id: net1, cidr: 10.0.0.0/24, gateway_ip: 10.0.0.1}]
ports:
  - {id: vm1, network_id: net1, mac: "fa:16:3e:00:00:01", device_owner: "compute:nova", ofport: 5,
     fixed_ips: [{subnet_id: sub1, ip_address: 10.0.0.11}]}
`
	tests := []struct {
		name     string
		data     string
		err      string   // a part of the error; "" for none
		problems []string // "kind id" of each problem
		ports    int
	}{
		{name: "valid", data: valid, ports: 1},
		{name: "host section invalid", data: strings.Replace(valid, "local_ip: 192.0.2.11, ", "", 1), err: "host section: local_ip"},
		{name: "does not parse", data: "networks: {", err: "yaml"},
		{name: "a port on no network", data: strings.Replace(valid, "network_id: net1, mac", "network_id: nope, mac", 1),
			problems: []string{"port vm1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, m, problems, err := AgentTopology([]byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one with %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, p := range problems {
				got = append(got, string(p.Kind)+" "+p.ID)
			}
			if !slices.Equal(got, tt.problems) {
				t.Errorf("problems %v, want %v", problems, tt.problems)
			}
			if cfg.Host != "compute1" || cfg.LocalIP.String() != "192.0.2.11" {
				t.Errorf("config host %q, local_ip %v; want the host section's", cfg.Host, cfg.LocalIP)
			}
			if len(m.Ports) != tt.ports {
				t.Errorf("%d ports in the model, want %d", len(m.Ports), tt.ports)
			}
		})
	}
}
