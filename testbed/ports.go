// Package testbed sets up what a hypervisor or Neutron would have set up around the agent
// on a sandbox host: VIF ports plugged into OVSDB the way the scenarios' README describes,
// and the comparison of a real switch's flows with a reference dump. It is shared by the
// acceptance tests, the demo and the benchmarks.
package testbed

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/topology"
)

// PortName is the OVS port name Neutron gives a port: a prefix by device owner (tap for VMs
// and DHCP, qr- for router interfaces, sg- for centralized SNAT, qg- for router gateways,
// fg- for floating-IP agent gateways) and the first 11 characters of the port id, unless
// the topology names the port.
func PortName(p topology.Port) string {
	if p.Name != "" {
		return p.Name
	}
	prefix := "tap"
	switch {
	case p.DeviceOwner == northbound.OwnerRouterInterfaceDistributed, p.DeviceOwner == northbound.OwnerRouterInterface,
		p.DeviceOwner == northbound.OwnerRouterHAInterface:
		prefix = "qr-"
	case p.DeviceOwner == northbound.OwnerRouterCentralizedSNAT:
		prefix = "sg-"
	case p.DeviceOwner == northbound.OwnerRouterGateway:
		prefix = "qg-"
	case p.DeviceOwner == northbound.OwnerFloatingIPAgentGateway:
		prefix = "fg-"
	}
	id := p.ID
	if len(id) > 11 {
		id = id[:11]
	}
	return prefix + id
}

// ModelPortName is [PortName] of a northbound model's port.
func ModelPortName(p *northbound.Port) string {
	return PortName(topology.Port{ID: p.ID, Name: p.Name, DeviceOwner: p.DeviceOwner})
}

// PlugPorts adds ports to bridge in one OVSDB transaction, in order, as OVS internal ports
// named by [PortName], with ofport_request = the port's ofport or else the next free
// number after firstOfport-1, and external_ids iface-id, attached-mac, iface-status=active
// and vm-uuid, as the scenarios' README describes. It returns the port names.
func PlugPorts(ctx context.Context, h *sandbox.Host, bridge string, firstOfport int, ports []topology.Port) ([]string, error) {
	if len(ports) == 0 {
		return nil, nil
	}
	var args, names []string
	next := firstOfport
	for _, p := range ports {
		name := PortName(p)
		ofport := p.OFPort
		if ofport == 0 {
			ofport = next
		}
		next = max(next, ofport) + 1
		if len(args) > 0 {
			args = append(args, "--")
		}
		args = append(args, "add-port", bridge, name, "--", "set", "Interface", name, "type=internal",
			"ofport_request="+strconv.Itoa(ofport),
			"external_ids:iface-id="+p.ID,
			"external_ids:attached-mac="+quote(p.MAC),
			"external_ids:iface-status=active")
		if p.DeviceID != "" {
			args = append(args, "external_ids:vm-uuid="+p.DeviceID)
		}
		names = append(names, name)
	}
	if _, err := h.Vsctl(ctx, args...); err != nil {
		return nil, fmt.Errorf("plug %d ports into %s: %w", len(ports), bridge, err)
	}
	return names, nil
}

// quote makes a MAC a valid ovs-vsctl string value (colons need quoting).
func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, ``) + `"` }

// NextOfport returns the lowest ofport above every ofport on the bridge.
func NextOfport(ctx context.Context, h *sandbox.Host, bridge string) (int, error) {
	out, err := h.Vsctl(ctx, "list-ifaces", bridge)
	if err != nil {
		return 0, err
	}
	next := 1
	for _, name := range strings.Fields(out) {
		v, err := h.Vsctl(ctx, "get", "Interface", name, "ofport")
		if err != nil {
			return 0, err
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= next {
			next = n + 1
		}
	}
	return next, nil
}
