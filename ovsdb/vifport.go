package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// VIFPortSpec is a port carrying a Neutron port (a VIF): one interface of the same name with
// the external_ids Neutron's interface drivers set (iface-id, attached-mac,
// iface-status=active) plus any extra keys, e.g. an owner marker.
type VIFPortSpec struct {
	Bridge string
	Name   string
	// Type is Interface.type: "" for an existing network device (e.g. one end of a veth
	// pair), "internal" for an OVS internal port.
	Type string
	// IfaceID is external_ids:iface-id, the Neutron port UUID.
	IfaceID string
	// MAC is external_ids:attached-mac.
	MAC string
	// ExternalIDs are more external_ids keys to set; they may not override the three above.
	ExternalIDs map[string]string
	// Tag is the VLAN tag a new port is created with (Neutron creates ports on the dead VLAN
	// 4095 until the L2 agent has handled them); 0 for none. The tag of an existing port is
	// never changed here: the L2 side owns it.
	Tag int
}

// externalIDs returns the external_ids the spec owns.
func (spec VIFPortSpec) externalIDs() (map[string]string, error) {
	ids := map[string]string{"iface-id": spec.IfaceID, "attached-mac": spec.MAC, "iface-status": "active"}
	for k, v := range spec.ExternalIDs {
		if _, dup := ids[k]; dup {
			return nil, fmt.Errorf("external_ids key %q is set from the spec's own field", k)
		}
		ids[k] = v
	}
	return ids, nil
}

// EnsureVIFPort adds the VIF port to its bridge, or, if a port of that name already exists on
// that bridge, sets its interface's type and the spec's external_ids (other keys are kept; the
// port, its ofport and its tag are kept). A port of that name on another bridge is an error.
// An existing port that already matches is left alone without a transaction. It returns once
// ovs-vswitchd has applied the change; use Ofport to wait for the ofport.
//
// It does not look for other interfaces with the same iface-id: a caller that must not plug a
// Neutron port someone else has plugged checks InterfacesByExternalID first.
func (c *Client) EnsureVIFPort(ctx context.Context, spec VIFPortSpec) error {
	err := func() error {
		if spec.Bridge == "" || spec.Name == "" || spec.IfaceID == "" {
			return errors.New("empty bridge, port name or iface-id")
		}
		if spec.Tag < 0 || spec.Tag > 4095 {
			return fmt.Errorf("tag %d out of range 0..4095", spec.Tag)
		}
		ids, err := spec.externalIDs()
		if err != nil {
			return err
		}
		return retry(ctx, func() error { return c.ensureVIFPort(ctx, spec, ids) })
	}()
	if err != nil {
		return fmt.Errorf("ensure VIF port %s (iface-id %s) on %s: %w", spec.Name, spec.IfaceID, spec.Bridge, err)
	}
	return nil
}

func (c *Client) ensureVIFPort(ctx context.Context, spec VIFPortSpec, ids map[string]string) error {
	var (
		br    *vswitchd.Bridge
		port  *vswitchd.Port
		cur   *ifaceRow
		owner string
	)
	c.read(func(r *rows) {
		br, port, cur = r.bridge(spec.Bridge), r.port(spec.Name), r.iface(spec.Name)
		if port != nil {
			owner = r.portBridge(port.UUID)
		}
	})
	if br == nil {
		return fmt.Errorf("no bridge %s", spec.Bridge)
	}
	ops := []ovsdb.Operation{guard(vswitchd.BridgeTable, spec.Bridge, true)}
	if port == nil {
		iface := &vswitchd.Interface{UUID: "new_iface", Name: spec.Name, Type: spec.Type, ExternalIDs: ids}
		p := &vswitchd.Port{UUID: "new_port", Name: spec.Name, Interfaces: []string{iface.UUID}}
		if spec.Tag > 0 {
			tag := spec.Tag
			p.Tag = &tag
		}
		ops = append(ops, guard(vswitchd.PortTable, spec.Name, false), insertInterface(iface), insertPort(p),
			mutateOp(vswitchd.BridgeTable, whereName(spec.Bridge), "ports", ovsdb.MutateOperationInsert, uuids(p.UUID)))
		if err := c.commit(ctx, ops); err != nil {
			return err
		}
		c.log.Info("added VIF port", zap.String("bridge", spec.Bridge), zap.String("port", spec.Name),
			zap.String("iface-id", spec.IfaceID), zap.Int("tag", spec.Tag))
		return nil
	}
	if owner != spec.Bridge && owner != "" {
		return fmt.Errorf("port %s exists on bridge %s", spec.Name, owner)
	}
	if cur == nil {
		return fmt.Errorf("interface %s: not found", spec.Name)
	}
	if owner == spec.Bridge && cur.Type == spec.Type && cur.ExternalIDs.containsAll(ids) {
		return nil
	}
	if owner == "" {
		// A port on no bridge is about to be garbage-collected; link it (the guard below
		// fails the transaction if it is gone, and the retry then creates it).
		ops = append(ops, mutateOp(vswitchd.BridgeTable, whereName(spec.Bridge), "ports", ovsdb.MutateOperationInsert, uuids(port.UUID)))
	}
	ifWhere := whereName(spec.Name)
	ops = append(ops, guard(vswitchd.PortTable, spec.Name, true),
		updateOp(vswitchd.InterfaceTable, ifWhere, ovsdb.Row{"type": spec.Type}),
		// Map "insert" keeps an existing key's value, so delete our keys first.
		mutateOp(vswitchd.InterfaceTable, ifWhere, "external_ids", ovsdb.MutateOperationDelete,
			stringsSet(slices.Sorted(maps.Keys(ids)))),
		mutateOp(vswitchd.InterfaceTable, ifWhere, "external_ids", ovsdb.MutateOperationInsert, stringMapValue(ids)))
	if err := c.commit(ctx, ops); err != nil {
		return err
	}
	c.log.Info("updated VIF port", zap.String("bridge", spec.Bridge), zap.String("port", spec.Name),
		zap.String("iface-id", spec.IfaceID))
	return nil
}

// InterfaceInfo is an Interface row from the cache, with the bridge holding its port.
type InterfaceInfo struct {
	Name string
	Type string
	// Bridge holds the interface's port; "" while the Bridge→Port→Interface link is unknown
	// (or the port is on no bridge).
	Bridge string
	// Ofport is 0 while not assigned, -1 when ovs-vswitchd failed to add the interface.
	Ofport int
	// ExternalIDs is a copy.
	ExternalIDs map[string]string
}

// Interface returns the interface of that name from the cache.
func (c *Client) Interface(name string) (InterfaceInfo, bool) {
	var info InterfaceInfo
	found := false
	c.read(func(r *rows) {
		i := r.iface(name)
		if found = i != nil; found {
			info = InterfaceInfo{Name: i.Name, Type: i.Type, Bridge: r.ifaceBridge(i.UUID), Ofport: i.Ofport,
				ExternalIDs: i.ExternalIDs.toMap()}
		}
	})
	return info, found
}

// InterfacesByExternalID returns the interfaces (from the cache) whose external_ids hold key
// with this value, or with any value when value is "", sorted by name.
func (c *Client) InterfacesByExternalID(key, value string) []InterfaceInfo {
	return c.interfaces(func(i *ifaceRow) bool {
		v, ok := i.ExternalIDs.get(key)
		return ok && (value == "" || v == value)
	})
}

// interfaces returns the interfaces that match, sorted by name.
func (c *Client) interfaces(match func(*ifaceRow) bool) []InterfaceInfo {
	var infos []InterfaceInfo
	c.read(func(r *rows) {
		for uuid, i := range r.ifaces {
			if !match(i) {
				continue
			}
			infos = append(infos, InterfaceInfo{Name: i.Name, Type: i.Type, Bridge: r.ifaceBridge(uuid),
				Ofport: i.Ofport, ExternalIDs: i.ExternalIDs.toMap()})
		}
	})
	slices.SortFunc(infos, func(a, b InterfaceInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos
}
