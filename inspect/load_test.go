package inspect

import (
	"slices"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/ovsdb"
)

func TestPatchPorts(t *testing.T) {
	inv := &ovsdb.Inventory{Bridges: []ovsdb.InventoryBridge{
		{Name: "br-tun", Ports: []ovsdb.InventoryPort{
			{Name: "patch-int", Type: "patch", Options: map[string]string{"peer": "patch-tun"}},
			{Name: "vxlan-c0a8640c", Type: "vxlan", Options: map[string]string{"remote_ip": "192.168.100.12"}},
		}},
		{Name: "br-int", Ports: []ovsdb.InventoryPort{
			{Name: "patch-tun", Type: "patch", Options: map[string]string{"peer": "patch-int"}},
			{Name: "dangling", Type: "patch", Options: map[string]string{"peer": "nowhere"}},
			{Name: "tapc0000011-00", Type: "internal"},
		}},
	}}
	n, err := NewNode(config.DefaultConfig(), nil, inv, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []PatchPort{
		{Bridge: "br-int", Port: "patch-tun", PeerBridge: "br-tun", PeerPort: "patch-int"},
		{Bridge: "br-tun", Port: "patch-int", PeerBridge: "br-int", PeerPort: "patch-tun"},
	}
	if got := n.PatchPorts(); !slices.Equal(got, want) {
		t.Errorf("patches = %+v, want %+v", got, want)
	}
}
