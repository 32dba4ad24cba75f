package controller

import (
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/topology"
)

func bindTopology(t *testing.T) (*config.Config, *northbound.Model) {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.BridgeMappings = map[string]string{"physnet1": "br-vlan"}
	topo, err := topology.Parse([]byte(`
networks:
  - {id: net-a, network_type: vlan, physical_network: physnet1, segmentation_id: 100}
  - {id: net-b, network_type: flat, physical_network: physnet1}
ports:
  - {id: pa1, network_id: net-a, mac: "fa:16:3e:00:00:01"}
  - {id: pb1, network_id: net-b, mac: "fa:16:3e:00:00:02"}
  - {id: pa2, network_id: net-a, mac: "fa:16:3e:00:00:03"}
  - {id: pdown, network_id: net-b, mac: "fa:16:3e:00:00:04", admin_state_up: false}
`))
	if err != nil {
		t.Fatal(err)
	}
	valid, problems := topo.Validate(cfg.Env())
	if len(problems) > 0 {
		t.Fatal(problems)
	}
	return cfg, valid
}

func vif(name, id string, ofport int) ovsdb.VIF {
	return ovsdb.VIF{Name: name, IfaceID: id, Bridge: "br-int", Ofport: ofport}
}

func TestBind(t *testing.T) {
	cfg, topo := bindTopology(t)
	obs := Observed{
		VIFs: []ovsdb.VIF{
			vif("tap-pb1", "pb1", 5), vif("tap-pa1", "pa1", 4), vif("tap-pdown", "pdown", 7),
			vif("tap-stranger", "not-in-topology", 9),
			{Name: "tap-pa2", IfaceID: "pa2", Bridge: "br-int", Ofport: 0}, // no ofport yet
			{Name: "tap-elsewhere", IfaceID: "pa2", Bridge: "br-other", Ofport: 3},
		},
		IntPorts: map[string]uint32{"physnet1": 1}, PhyPorts: map[string]uint32{"physnet1": 1},
	}
	vlans := NewLocalVLANs()
	b := Bind(cfg, topo, obs, vlans)

	// Local VLANs in the order networks first appear among bound ports (as Neutron).
	wantTags := map[string]int{"tap-pa1": 1, "tap-pb1": 2, "tap-pdown": 4095, "tap-stranger": 4095}
	if len(b.Tags) != len(wantTags) {
		t.Errorf("tags %v, want %v", b.Tags, wantTags)
	}
	for name, want := range wantTags {
		if b.Tags[name] != want {
			t.Errorf("tag of %s = %d, want %d", name, b.Tags[name], want)
		}
	}
	if len(b.Unbound) != 1 || b.Unbound[0] != "pa2" {
		t.Errorf("unbound = %v, want [pa2] (no ofport yet; a VIF on another bridge does not count)", b.Unbound)
	}
	if len(b.Unknown) != 1 || b.Unknown[0].IfaceID != "not-in-topology" {
		t.Errorf("unknown = %v", b.Unknown)
	}
	var dead []string
	for _, p := range b.Node.Ports {
		if p.Dead {
			dead = append(dead, p.ID)
		}
	}
	if len(dead) != 2 {
		t.Errorf("dead ports %v, want pdown and the stranger", dead)
	}
	if len(b.Node.Networks) != 2 || b.Node.Networks[0].ID != "net-a" || b.Node.Networks[0].LocalVLAN != 1 ||
		b.Node.Networks[1].Type != northbound.Flat {
		t.Errorf("networks %+v", b.Node.Networks)
	}
	if p := b.Node.Host.Physical; len(p) != 1 || p[0].IntPort != 1 || p[0].Bridge != "br-vlan" {
		t.Errorf("physical bridges %+v", p)
	}
}

func TestBindRecoversVLANsFromTagsAndReleases(t *testing.T) {
	cfg, topo := bindTopology(t)
	obs := Observed{
		VIFs:     []ovsdb.VIF{vif("tap-pa1", "pa1", 4), vif("tap-pb1", "pb1", 5)},
		PortTags: map[string]int{"tap-pa1": 7, "tap-pb1": 7}, // a conflict: only the first keeps 7
	}
	vlans := NewLocalVLANs()
	b := Bind(cfg, topo, obs, vlans)
	if b.Tags["tap-pa1"] != 7 || b.Tags["tap-pb1"] != 1 {
		t.Fatalf("tags %v: want pa1 to keep its recovered VLAN 7 and pb1 the lowest free one", b.Tags)
	}
	// pb1's VIF leaves: its network's VLAN is released and reused.
	obs.VIFs = obs.VIFs[:1]
	Bind(cfg, topo, obs, vlans)
	if _, ok := vlans.Get("net-b"); ok {
		t.Error("net-b kept its local VLAN after its last port left")
	}
	if v, _ := vlans.Get("net-a"); v != 7 {
		t.Errorf("net-a moved to VLAN %d", v)
	}
}
