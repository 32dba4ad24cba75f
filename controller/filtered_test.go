package controller

import (
	"fmt"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// checkNeverUnfiltered checks the plan property that keeps a filtered port from passing
// traffic before its firewall: Reconcile writes a plan's flows (each bridge one bundle,
// confirmed by a barrier) before its tags, so every port the plan gives a live tag, and
// every port OVSDB shows with one, must have its firewall's table-60 hooks in the same
// plan's br-int flows (egress by in_port, ingress by its local VLAN and MAC) — or, if it
// is dead, the table-0 drop. Otherwise the tag (or the tag it already has) would let its
// traffic reach table 60's NORMAL unfiltered.
func checkNeverUnfiltered(t *testing.T, p plan, obs Observed) {
	t.Helper()
	n := p.binding.Node
	if !n.Host.Firewall {
		t.Fatal("the firewall is off")
	}
	var table0, table60 []string
	for _, f := range p.desired[n.Host.IntegrationBridge] {
		f.Cookie = 0
		switch f.Table {
		case uint8(flows.IntLocalSwitching):
			table0 = append(table0, f.String())
		case uint8(flows.IntTransient):
			table60 = append(table60, f.String())
		}
	}
	has := func(fs []string, parts ...string) bool {
	next:
		for _, f := range fs {
			for _, part := range parts {
				if !strings.Contains(f+",", part+",") && !strings.Contains(f+" ", part+" ") {
					continue next
				}
			}
			return true
		}
		return false
	}
	ports := map[string]*state.Port{}
	for i := range n.Ports {
		ports[n.Ports[i].Name] = &n.Ports[i]
	}
	live := func(tag int, ok bool) bool { return ok && tag != 0 && tag != state.DeadVLAN }
	for _, v := range obs.VIFs {
		after, now := p.binding.Tags[v.Name], obs.PortTags[v.Name]
		_, tagged := p.binding.Tags[v.Name]
		_, taggedNow := obs.PortTags[v.Name]
		if !live(after, tagged) && !live(now, taggedNow) {
			continue
		}
		port := ports[v.Name]
		if port == nil {
			t.Errorf("%s: tag %d now, %d after the plan, but not bound", v.Name, now, after)
			continue
		}
		in := fmt.Sprintf("in_port=%d", port.OFPort)
		if port.Dead {
			if !has(table0, "priority=2", in) {
				t.Errorf("%s: dead with a live tag %d, and no table-0 drop", v.Name, now)
			}
			continue
		}
		if !port.PortSecurity && !port.FirewallBlocked {
			continue
		}
		if !has(table60, "priority=100", in) {
			t.Errorf("%s (tag %d → %d): no table-60 egress hook for ofport %d in the plan", v.Name, now, after, port.OFPort)
		}
		if !has(table60, "priority=90", fmt.Sprintf("dl_vlan=%d", after), "dl_dst="+port.MAC.String()) {
			t.Errorf("%s (tag %d → %d): no table-60 ingress hook for VLAN %d and %s in the plan", v.Name, now, after, after, port.MAC)
		}
	}
}

// TestFilteredPortsAreTaggedWithTheirFirewall: the plan property of checkNeverUnfiltered,
// for ports plugged untagged, coming back from dead, moved to another ofport, blocked, and
// for every scenario of Neutron's firewall references.
func TestFilteredPortsAreTaggedWithTheirFirewall(t *testing.T) {
	cfg := firewallConfig("openvswitch")
	for _, tt := range []struct {
		name       string
		groups     string
		portOdd    string
		tags       map[string]int
		ofportMove bool
	}{
		{name: "plugged untagged", portOdd: portOdd, groups: sgOddSSH},
		{name: "already tagged", portOdd: portOdd, groups: sgOddSSH, tags: map[string]int{"tap-p-web": 1, "tap-p-db": 1, "tap-p-odd": 1}},
		{name: "back from dead", portOdd: portOdd, groups: sgOddSSH, tags: map[string]int{"tap-p-web": 4095, "tap-p-odd": 4095}},
		{name: "tagged, new ofport", portOdd: portOdd, groups: sgOddSSH, tags: map[string]int{"tap-p-web": 1, "tap-p-odd": 1}, ofportMove: true},
		{name: "blocked", portOdd: portOdd, groups: sgOddInvalid},
		{name: "admin down with a live tag", groups: sgOddSSH, tags: map[string]int{"tap-p-odd": 1},
			portOdd: "  - {id: p-odd, network_id: net-a, mac: \"fa:16:3e:00:00:05\", admin_state_up: false, security_groups: [sg-odd]}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			model, _ := validateSnapshot(t, cfg, sgTopology(tt.groups, tt.portOdd))
			obs := sgObserved("p-odd")
			obs.PortTags = tt.tags
			if tt.ofportMove {
				for i := range obs.VIFs {
					obs.VIFs[i].Ofport += 10
				}
			}
			p, _ := computePlan(cfg, model, nil, obs, NewLocalVLANs())
			if len(p.retag) == 0 && tt.tags == nil {
				t.Fatal("the plan tags nothing")
			}
			checkNeverUnfiltered(t, p, obs)
		})
	}
	for _, name := range []string{"default_group", "rules", "remote_group", "address_pairs", "no_port_security", "stateless", "dvr"} {
		t.Run(name, func(t *testing.T) {
			ref := readFirewallRef(t, name)
			cfg, model, obs := firewallScenario(t, name, ref)
			obs.PortTags = map[string]int{}
			p, _ := computePlan(cfg, model, nil, obs, NewLocalVLANs())
			checkNeverUnfiltered(t, p, obs)
		})
	}
}

// validateSnapshot is the model the agent would take from a topology text (sgSnapshot).
func validateSnapshot(t *testing.T, cfg *config.Config, text string) (*northbound.Model, []northbound.Problem) {
	t.Helper()
	return northbound.Validate(*sgSnapshot(t, text), cfg.Env())
}
