package testbed

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

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
