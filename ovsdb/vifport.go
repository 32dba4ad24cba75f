package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
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
	if err := c.ovs.Get(ctx, &vswitchd.Bridge{Name: spec.Bridge}); err != nil {
		return fmt.Errorf("bridge %s: %w", spec.Bridge, err)
	}
	b := &vswitchd.Bridge{}
	brWhere := c.ovs.WhereAll(b, model.Condition{Field: &b.Name, Function: ovsdb.ConditionEqual, Value: spec.Bridge})
	l := &opList{ops: []ovsdb.Operation{guard(vswitchd.BridgeTable, spec.Bridge, true)}}

	port := &vswitchd.Port{Name: spec.Name}
	switch err := c.ovs.Get(ctx, port); {
	case errors.Is(err, client.ErrNotFound):
		l.ops = append(l.ops, guard(vswitchd.PortTable, spec.Name, false))
		iface := &vswitchd.Interface{UUID: "new_iface", Name: spec.Name, Type: spec.Type, ExternalIDs: ids}
		p := &vswitchd.Port{UUID: "new_port", Name: spec.Name, Interfaces: []string{iface.UUID}}
		if spec.Tag > 0 {
			tag := spec.Tag
			p.Tag = &tag
		}
		l.add(c.ovs.Create(iface))
		l.add(c.ovs.Create(p))
		l.add(brWhere.Mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{p.UUID}}))
		if err := l.commit(ctx, c); err != nil {
			return err
		}
		c.log.Info("added VIF port", zap.String("bridge", spec.Bridge), zap.String("port", spec.Name),
			zap.String("iface-id", spec.IfaceID), zap.Int("tag", spec.Tag))
		return nil
	case err != nil:
		return fmt.Errorf("port %s: %w", spec.Name, err)
	}
	owner := c.portBridge(port.UUID)
	if owner != spec.Bridge && owner != "" {
		return fmt.Errorf("port %s exists on bridge %s", spec.Name, owner)
	}
	cur := &vswitchd.Interface{Name: spec.Name}
	if err := c.ovs.Get(ctx, cur); err != nil {
		return fmt.Errorf("interface %s: %w", spec.Name, err)
	}
	if owner == spec.Bridge && cur.Type == spec.Type && containsAll(cur.ExternalIDs, ids) {
		return nil
	}
	if owner == "" {
		// A port on no bridge is about to be garbage-collected; link it (the guard below
		// fails the transaction if it is gone, and the retry then creates it).
		l.add(brWhere.Mutate(b, model.Mutation{Field: &b.Ports, Mutator: ovsdb.MutateOperationInsert, Value: []string{port.UUID}}))
	}
	l.ops = append(l.ops, guard(vswitchd.PortTable, spec.Name, true))
	i := &vswitchd.Interface{}
	ifWhere := c.ovs.WhereAll(i, model.Condition{Field: &i.Name, Function: ovsdb.ConditionEqual, Value: spec.Name})
	i.Type = spec.Type
	l.add(ifWhere.Update(i, &i.Type))
	// Map "insert" keeps an existing key's value, so delete our keys first.
	l.add(ifWhere.Mutate(i, model.Mutation{Field: &i.ExternalIDs, Mutator: ovsdb.MutateOperationDelete,
		Value: slices.Sorted(maps.Keys(ids))}))
	l.add(ifWhere.Mutate(i, model.Mutation{Field: &i.ExternalIDs, Mutator: ovsdb.MutateOperationInsert, Value: ids}))
	if err := l.commit(ctx, c); err != nil {
		return err
	}
	c.log.Info("updated VIF port", zap.String("bridge", spec.Bridge), zap.String("port", spec.Name),
		zap.String("iface-id", spec.IfaceID))
	return nil
}

// containsAll reports whether have holds every key of want with the same value.
func containsAll(have, want map[string]string) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
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
	infos := c.interfaces(func(i *vswitchd.Interface) bool { return i.Name == name })
	if len(infos) == 0 {
		return InterfaceInfo{}, false
	}
	return infos[0], true
}

// InterfacesByExternalID returns the interfaces (from the cache) whose external_ids hold key
// with this value, or with any value when value is "", sorted by name.
func (c *Client) InterfacesByExternalID(key, value string) []InterfaceInfo {
	return c.interfaces(func(i *vswitchd.Interface) bool {
		v, ok := i.ExternalIDs[key]
		return ok && (value == "" || v == value)
	})
}

// interfaces returns the cached interfaces that match, sorted by name.
func (c *Client) interfaces(match func(*vswitchd.Interface) bool) []InterfaceInfo {
	var infos []InterfaceInfo
	var ifaceBridge map[string]string // computed on the first match
	for uuid, m := range c.table(vswitchd.InterfaceTable) {
		i := m.(*vswitchd.Interface)
		if !match(i) {
			continue
		}
		if ifaceBridge == nil {
			ifaceBridge = c.interfaceBridges()
		}
		info := InterfaceInfo{Name: i.Name, Type: i.Type, Bridge: ifaceBridge[uuid], ExternalIDs: maps.Clone(i.ExternalIDs)}
		if i.Ofport != nil {
			info.Ofport = *i.Ofport
		}
		infos = append(infos, info)
	}
	slices.SortFunc(infos, func(a, b InterfaceInfo) int { return strings.Compare(a.Name, b.Name) })
	return infos
}

// interfaceBridges maps Interface UUID → name of the bridge holding its port, from the cache.
func (c *Client) interfaceBridges() map[string]string {
	portBridge := map[string]string{}
	for _, m := range c.table(vswitchd.BridgeTable) {
		b := m.(*vswitchd.Bridge)
		for _, p := range b.Ports {
			portBridge[p] = b.Name
		}
	}
	ifaceBridge := map[string]string{}
	for uuid, m := range c.table(vswitchd.PortTable) {
		for _, i := range m.(*vswitchd.Port).Interfaces {
			ifaceBridge[i] = portBridge[uuid]
		}
	}
	return ifaceBridge
}
