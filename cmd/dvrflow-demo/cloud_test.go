package main

import (
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/dvrflow/dvrflow/testbed"
)

// TestDemoTopologies checks, without a switch, that the topology the demo writes for every
// host is accepted without a single problem: the host's agent_mode, the router with its
// gateway, the floating IP resolved to b2's host, every port local or remote.
func TestDemoTopologies(t *testing.T) {
	c := demoCloud()
	for _, h := range c.Hosts {
		t.Run(h.Name, func(t *testing.T) {
			data, err := yaml.Marshal(c.topology(h))
			if err != nil {
				t.Fatal(err)
			}
			cfg, m, problems, err := testbed.AgentTopology(data)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("problem: %s", p)
			}
			if string(cfg.AgentMode) != h.Mode || cfg.Host != h.Name {
				t.Errorf("host %q in agent_mode %q, want %q in %q", cfg.Host, cfg.AgentMode, h.Name, h.Mode)
			}
			if len(m.Routers) != 1 || m.Routers[0].Gateway == nil || !m.Routers[0].Gateway.EnableSNAT {
				t.Errorf("routers %+v, want r1 with its gateway, SNAT on", m.Routers)
			}
			if len(m.FloatingIPs) != 1 || m.FloatingIPs[0].Host != "compute2" {
				t.Errorf("floating IPs %+v, want b2's on compute2", m.FloatingIPs)
			}
			if !cfg.Firewall() || len(m.SecurityGroups) != 1 || len(m.WithheldSecurityGroups) != 0 {
				t.Errorf("firewall %v, groups %d valid, withheld %v; want the firewall on and the vms group valid",
					cfg.Firewall(), len(m.SecurityGroups), m.WithheldSecurityGroups)
			}
			for _, p := range m.Ports {
				if p.DeviceOwner.IsCompute() != (len(p.SecurityGroups) == 1) {
					t.Errorf("port %s (%s) has groups %v: want vms on every VM port and none elsewhere", p.ID, p.DeviceOwner, p.SecurityGroups)
				}
			}
			if n := len(m.Ports) + len(m.RemotePorts); n != len(c.Ports)+len(c.VMs) {
				t.Errorf("%d ports and remote ports, want %d", n, len(c.Ports)+len(c.VMs))
			}
		})
	}
}
