package testbed

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/topology"
)

// ScenarioInventory is what OVSDB holds on a switch that Neutron's agent programmed for a
// scenario (the reference dump ref of topology topo): the dump's ports with their ofports,
// patch peers by Neutron's names, tunnel ports' remote IPs from their names, and the VIFs'
// iface-id, attached-mac and local VLAN tag.
func ScenarioInventory(ref *Reference, topo *topology.File) (*ovsdb.Inventory, error) {
	lvidOf := map[string]int{}
	for lvid, netID := range ref.LocalVLANs {
		lvidOf[netID] = lvid
	}
	vifs := map[string]topology.Port{}
	for _, p := range topo.Ports {
		vifs[PortName(p)] = p
	}
	inv := &ovsdb.Inventory{}
	for _, br := range ref.Order {
		b := ovsdb.InventoryBridge{Name: br, Tables: map[uint8]string{}}
		for ofport, port := range ref.Bridges[br].Ofports {
			p := ovsdb.InventoryPort{Name: port, Ofport: ofport}
			switch {
			case port == "patch-tun":
				p.Type, p.Options = "patch", map[string]string{"peer": "patch-int"}
			case port == "patch-int":
				p.Type, p.Options = "patch", map[string]string{"peer": "patch-tun"}
			case strings.HasPrefix(port, "int-"):
				p.Type, p.Options = "patch", map[string]string{"peer": "phy-" + strings.TrimPrefix(port, "int-")}
			case strings.HasPrefix(port, "phy-"):
				p.Type, p.Options = "patch", map[string]string{"peer": "int-" + strings.TrimPrefix(port, "phy-")}
			case strings.HasPrefix(port, "vxlan-"), strings.HasPrefix(port, "gre-"), strings.HasPrefix(port, "geneve-"):
				typ, hex, _ := strings.Cut(port, "-")
				n, err := strconv.ParseUint(hex, 16, 32)
				if err != nil {
					return nil, fmt.Errorf("tunnel port %s: %w", port, err)
				}
				p.Type = typ
				p.Options = map[string]string{"remote_ip": netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}).String()}
			default:
				vif, ok := vifs[port]
				if !ok {
					return nil, fmt.Errorf("port %s of %s is no port of the topology", port, br)
				}
				p.Type, p.Tag = "internal", lvidOf[vif.NetworkID]
				p.ExternalIDs = map[string]string{"iface-id": vif.ID, "attached-mac": vif.MAC}
			}
			b.Ports = append(b.Ports, p)
		}
		inv.Bridges = append(inv.Bridges, b)
	}
	return inv, nil
}

// ScenarioNode is a node holding the flows Neutron's own agent installed for scenario name
// of dir (testdata/neutron/scenarios), read as the CLI reads a node: with the scenario's
// topology, its OVSDB inventory (ScenarioInventory) and the reference dump, each bridge's
// flows given a random-looking cookie as Neutron's agent does (the same on every call, so
// that outputs can be compared with golden files).
func ScenarioNode(dir, name string) (*inspect.Node, error) {
	topo, err := topology.Load(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	ref, err := ParseReference(filepath.Join(dir, name+".flows"))
	if err != nil {
		return nil, err
	}
	inv, err := ScenarioInventory(ref, topo)
	if err != nil {
		return nil, err
	}
	snap := topo.Snapshot()
	cfg := config.DefaultConfig()
	cfg.ApplyHost(snap.Host)
	dumps := map[string][]byte{}
	random := rand.New(rand.NewPCG(uint64(len(name)), 0x6e657574726f6e)) // "neutron"
	for _, br := range ref.Order {
		cookie := fmt.Sprintf("cookie=%#x", random.Uint64()>>1)
		dumps[br] = []byte(strings.ReplaceAll(strings.Join(ref.Bridges[br].Lines, "\n"), "cookie=COOKIE", cookie))
	}
	return inspect.NewNode(cfg, snap, inv, dumps)
}
