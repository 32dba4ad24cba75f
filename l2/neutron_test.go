package l2

import (
	"regexp"
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// legacyVLANNode is testdata/neutron/scenarios/legacy_vlan.json as the controller resolves
// it, with the ofports and local VLAN of the header comments of legacy_vlan.flows.
func legacyVLANNode() *state.Node {
	const (
		net1    = "a0000001-0000-4000-8000-000000000001"
		subnet1 = "b0000001-0000-4000-8000-000000000001"
	)
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "legacy", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:           []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
			PreventARPSpoofing: true,
		},
		Networks: []state.Network{{ID: net1, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 196, LocalVLAN: 1}},
		Ports: []state.Port{
			{ID: "c0000001-0000-4000-8000-000000000001", Name: "tapc0000001-00", NetworkID: net1,
				MAC: mac("fa:16:3e:00:01:01"), DeviceOwner: "compute:nova", FixedIPs: fixed(subnet1, "10.0.1.11"),
				PortSecurity: true, OFPort: 2},
			{ID: "c0000002-0000-4000-8000-000000000002", Name: "tapc0000002-00", NetworkID: net1,
				MAC: mac("fa:16:3e:00:01:02"), DeviceOwner: "compute:nova", FixedIPs: fixed(subnet1, "10.0.1.12"),
				AllowedAddressPairs: []state.AddressPair{{Prefix: pfx("10.0.1.100")}},
				PortSecurity:        true, OFPort: 3},
		},
	}
}

// dvrVLANNode is testdata/neutron/scenarios/dvr_vlan.json with the ofports and local VLANs of
// dvr_vlan.flows.
func dvrVLANNode() *state.Node {
	const (
		net1, net2       = "a0000001-0000-4000-8000-000000000001", "a0000002-0000-4000-8000-000000000002"
		subnet1, subnet2 = "b0000001-0000-4000-8000-000000000001", "b0000002-0000-4000-8000-000000000002"
		router           = "e0000001-0000-4000-8000-000000000001"
	)
	vm := func(id, name, network, m, subnet, ip string, ofport uint32) state.Port {
		return state.Port{ID: id, Name: name, NetworkID: network, MAC: mac(m), DeviceOwner: "compute:nova",
			FixedIPs: fixed(subnet, ip), PortSecurity: true, OFPort: ofport}
	}
	qr := func(id, name, network, m, subnet, ip string, ofport uint32) state.Port {
		return state.Port{ID: id, Name: name, NetworkID: network, MAC: mac(m), DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
			DeviceID: router, FixedIPs: fixed(subnet, ip), PortSecurity: true, OFPort: ofport}
	}
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "dvr", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:    []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
			Distributed: true, DVRMAC: mac("fa:16:3f:00:00:01"), PreventARPSpoofing: true,
		},
		Networks: []state.Network{
			{ID: net1, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 196, LocalVLAN: 1},
			{ID: net2, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 197, LocalVLAN: 2},
		},
		Ports: []state.Port{
			qr("d0000001-0000-4000-8000-000000000001", "qr-d0000001-00", net1, "fa:16:3e:aa:01:01", subnet1, "10.0.1.1", 2),
			qr("d0000002-0000-4000-8000-000000000002", "qr-d0000002-00", net2, "fa:16:3e:aa:02:01", subnet2, "10.0.2.1", 3),
			vm("c0000001-0000-4000-8000-000000000001", "tapc0000001-00", net1, "fa:16:3e:00:01:11", subnet1, "10.0.1.11", 4),
			vm("c0000002-0000-4000-8000-000000000002", "tapc0000002-00", net1, "fa:16:3e:00:01:12", subnet1, "10.0.1.12", 5),
			vm("c0000003-0000-4000-8000-000000000003", "tapc0000003-00", net2, "fa:16:3e:00:02:11", subnet2, "10.0.2.11", 6),
		},
	}
}

// Without DVR or tunnels, l2 is the whole pipeline: Generate must reproduce Neutron's dump
// of legacy_vlan exactly, line for line, on both bridges.
func TestGenerateEqualsNeutronLegacyVLAN(t *testing.T) {
	want := readScenario(t, "legacy_vlan")
	got := generate(legacyVLANNode())
	if len(got) != len(want) {
		t.Errorf("bridges: got %d, want %d (%v)", len(got), len(want), want)
	}
	for bridge, w := range want {
		g := lines(got[bridge])
		if !slices.Equal(g, w) {
			t.Errorf("%s differs from Neutron (- Neutron only, + ours only):\n%s", bridge, lineDiff(w, g))
		}
	}
}

// With DVR, l2's flows are a part of Neutron's dump: everything Generate returns is in it,
// and every L2 flow of the dump (local VLAN translation I15 and P3 in table 2, spoofing
// protection of the three VM ports, none for the qr ports) comes from Generate.
func TestGenerateIsPartOfNeutronDVRVLAN(t *testing.T) {
	want := readScenario(t, "dvr_vlan")
	got := generate(dvrVLANNode())
	l2Shaped := map[string]*regexp.Regexp{
		"br-int": regexp.MustCompile(`^(priority=(3|9|10),in_port=|priority=(9|10),(arp|icmp6),in_port=|table=(24|25), priority=2,)`),
		// P3: table 2 with DVR.
		"br-vlan": regexp.MustCompile(`^table=2, priority=4,`),
	}
	for bridge, w := range want {
		g := lines(got[bridge])
		for _, l := range g {
			if !slices.Contains(w, l) {
				t.Errorf("%s: we generate a flow Neutron does not have: %s", bridge, l)
			}
		}
		n := 0
		for _, l := range w {
			if l2Shaped[bridge] == nil || !l2Shaped[bridge].MatchString(l) {
				continue
			}
			n++
			if !slices.Contains(g, l) {
				t.Errorf("%s: Neutron's L2 flow is missing: %s", bridge, l)
			}
		}
		t.Logf("%s: %d of Neutron's %d flows are l2's; l2 generates %d", bridge, n, len(w), len(g))
	}
	// 2 × I15 and 3 ports × (I18, I19, I20, I21, I22, I23); 2 × P3.
	if n := countMatching(want["br-int"], l2Shaped["br-int"]); n != 2+3*6 {
		t.Errorf("br-int: the reference has %d L2-shaped flows, want 20 (is the filter right?)", n)
	}
	if n := countMatching(want["br-vlan"], l2Shaped["br-vlan"]); n != 2 {
		t.Errorf("br-vlan: the reference has %d P3 flows in table 2, want 2", n)
	}
	for _, f := range got["br-int"] {
		if in := f.Match.InPortValue(); in == 2 || in == 3 {
			t.Errorf("qr ports (ofports 2, 3) must have no flows: %s", f)
		}
	}
}

func countMatching(ls []string, re *regexp.Regexp) int {
	n := 0
	for _, l := range ls {
		if re.MatchString(l) {
			n++
		}
	}
	return n
}
