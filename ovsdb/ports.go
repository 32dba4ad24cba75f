package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// PortSpec is a port with one interface of the same name, as ovs-vsctl add-port makes it.
type PortSpec struct {
	Bridge  string
	Name    string
	Type    string            // Interface.type: "patch", "vxlan", "geneve", "gre", "internal", "" (system)
	Options map[string]string // Interface.options, set exactly (peer, remote_ip, local_ip, key, …)
}

// EnsurePort adds the port to its bridge, or, if a port of that name already exists on that
// bridge, sets its interface's type and options (the port and so its ofport are kept). A port
// of that name on another bridge is an error. A port already as specified is left alone
// without a transaction; otherwise it returns once ovs-vswitchd has applied the change. Use
// Ofport to wait for the ofport.
func (c *Client) EnsurePort(ctx context.Context, spec PortSpec) error {
	if _, err := c.ensureLayout(ctx, nil, []PortSpec{spec}); err != nil {
		return fmt.Errorf("ensure port %s on %s: %w", spec.Name, spec.Bridge, err)
	}
	return nil
}

// EnsurePatchPair makes portA on bridgeA and portB on bridgeB patch peers (Interface
// type=patch, options:peer), in one transaction, or none if they already are. Existing ports
// are reused, so their ofports stay stable. It is [Client.EnsureLayout] for one patch pair
// between existing bridges.
func (c *Client) EnsurePatchPair(ctx context.Context, bridgeA, portA, bridgeB, portB string) error {
	ends := PatchPair{BridgeA: bridgeA, PortA: portA, BridgeB: bridgeB, PortB: portB}.ports()
	if _, err := c.ensureLayout(ctx, nil, ends[:]); err != nil {
		return fmt.Errorf("ensure patch ports %s:%s <-> %s:%s: %w", bridgeA, portA, bridgeB, portB, err)
	}
	return nil
}

// DeletePort removes the port from its bridge (its Port and Interface rows are then
// garbage-collected). A missing port is not an error.
func (c *Client) DeletePort(ctx context.Context, bridge, port string) error {
	err := retry(ctx, func() error {
		var p *vswitchd.Port
		var owner string
		c.read(func(r *rows) {
			if p = r.port(port); p != nil {
				owner = r.portBridge(p.UUID)
			}
		})
		if p == nil {
			return nil
		}
		if owner != bridge {
			return fmt.Errorf("port is on bridge %q", owner)
		}
		// The guard makes sure the row is still the port of that name; the Port row is
		// deleted explicitly and its Interface row is garbage-collected.
		return c.commit(ctx, []ovsdb.Operation{
			guardRow(vswitchd.PortTable, p.UUID, port),
			mutateOp(vswitchd.BridgeTable, whereName(bridge), "ports", ovsdb.MutateOperationDelete, uuids(p.UUID)),
			deleteOp(vswitchd.PortTable, whereUUID(p.UUID)),
		})
	})
	if err != nil {
		return fmt.Errorf("delete port %s from %s: %w", port, bridge, err)
	}
	return nil
}

// DeletePorts removes the named ports from the bridge in one transaction (their Port and
// Interface rows are then garbage-collected), and waits once for ovs-vswitchd to apply it.
// Missing ports are skipped; a port of that name on another bridge is an error. Nothing is
// written when none of them is there.
func (c *Client) DeletePorts(ctx context.Context, bridge string, names []string) error {
	err := retry(ctx, func() error {
		var ops []ovsdb.Operation
		var gone []string
		var err error
		c.read(func(r *rows) {
			for _, name := range names {
				p := r.port(name)
				if p == nil {
					continue
				}
				if owner := r.portBridge(p.UUID); owner != bridge {
					err = fmt.Errorf("port %s is on bridge %q", name, owner)
					return
				}
				// The guard makes sure the row is still the port of that name; the Port
				// row is deleted explicitly and its Interface row is garbage-collected.
				ops = append(ops, guardRow(vswitchd.PortTable, p.UUID, name),
					mutateOp(vswitchd.BridgeTable, whereName(bridge), "ports", ovsdb.MutateOperationDelete, uuids(p.UUID)),
					deleteOp(vswitchd.PortTable, whereUUID(p.UUID)))
				gone = append(gone, name)
			}
		})
		if err != nil || len(ops) == 0 {
			return err
		}
		return c.commit(ctx, ops)
	})
	if err != nil {
		return fmt.Errorf("delete ports %s from %s: %w", strings.Join(names, ", "), bridge, err)
	}
	return nil
}

// Ofports returns the ofports of the named interfaces as the cache holds them now, without
// waiting: 0 when not assigned yet (or no such interface), -1 when ovs-vswitchd failed to
// add it. Take [Client.InterfacesChanged] first to learn when to look again.
func (c *Client) Ofports(names []string) map[string]int {
	out := make(map[string]int, len(names))
	c.read(func(r *rows) {
		for _, name := range names {
			if i := r.iface(name); i != nil {
				out[name] = i.Ofport
			} else {
				out[name] = 0
			}
		}
	})
	return out
}

// InterfacesChanged returns a channel closed at the next change of the cache's Interface
// rows (an ofport assigned, an interface added or removed). Take it before reading the
// state it should wake you about: a change after that read then closes this very channel.
func (c *Client) InterfacesChanged() <-chan struct{} {
	return c.changes[vswitchd.InterfaceTable].next()
}

// Ofport waits until the interface has a valid ofport (> 0) and returns it. An ofport of -1
// (ovs-vswitchd could not add the interface) is an error carrying Interface.error. It also
// fails when ctx ends first. It looks again whenever the cache's Interface rows change.
func (c *Client) Ofport(ctx context.Context, iface string) (int, error) {
	var (
		ofport int
		failed error
		found  bool
	)
	err := c.waitFor(ctx, vswitchd.InterfaceTable, func() bool {
		var i *ifaceRow
		c.read(func(r *rows) { i = r.iface(iface) })
		if found = i != nil; !found {
			return false
		}
		switch {
		case i.Ofport > 0:
			ofport = i.Ofport
			return true
		case i.Ofport == -1:
			msg := "unknown error"
			if i.Error != "" {
				msg = i.Error
			}
			failed = fmt.Errorf("ofport of %s: ovs-vswitchd failed to add it: %s", iface, msg)
			return true
		}
		return false
	})
	switch {
	case failed != nil:
		return -1, failed
	case err != nil:
		state := "not assigned yet"
		if !found {
			state = "no such interface"
		}
		return 0, fmt.Errorf("ofport of %s: %s: %w", iface, state, err)
	}
	return ofport, nil
}

// SetPortTag sets the port's VLAN tag (access port of that VLAN) and, like Neutron, clears
// vlan_mode and trunks in the same transaction. Tag 0 clears the tag.
func (c *Client) SetPortTag(ctx context.Context, port string, tag int) error {
	if tag < 0 || tag > 4095 {
		return fmt.Errorf("set tag of port %s: tag %d out of range 0..4095", port, tag)
	}
	ops := []ovsdb.Operation{
		guard(vswitchd.PortTable, port, true),
		updateOp(vswitchd.PortTable, whereName(port), portTagRow(tag)),
	}
	if err := c.commit(ctx, ops); err != nil {
		if errors.Is(err, errConflict) {
			err = fmt.Errorf("no such port: %w", err)
		}
		return fmt.Errorf("set tag of port %s to %d: %w", port, tag, err)
	}
	c.log.Debug("set port tag", zap.String("port", port), zap.Int("tag", tag))
	return nil
}

// PortTags returns the VLAN tag of every tagged port on the bridge, by port name, from the
// cache (used to recover local VLAN allocations after a restart).
func (c *Client) PortTags(bridge string) map[string]int {
	tags := map[string]int{}
	c.read(func(r *rows) {
		br := r.bridge(bridge)
		if br == nil {
			return
		}
		for _, uuid := range br.Ports {
			if p := r.ports[uuid]; p != nil && p.Tag != nil {
				tags[p.Name] = *p.Tag
			}
		}
	})
	return tags
}

// CommitPortTags sets the VLAN tags of many ports in one transaction (tag 0 clears a tag),
// clearing vlan_mode and trunks like [Client.SetPortTag]. Ports that no longer exist are
// skipped (a port can vanish between the read and the write; the next event reports it);
// the names of the ports actually updated are returned. It returns as soon as ovsdb-server
// has committed the transaction, without waiting for ovs-vswitchd to reconfigure. cfg is the
// transaction's Open_vSwitch.next_cfg: [Client.WaitApplied] with it waits for ovs-vswitchd. With nothing to write (no tags, or none of the ports exist)
// there is no transaction and cfg is 0.
func (c *Client) CommitPortTags(ctx context.Context, tags map[string]int) (updated []string, cfg int, err error) {
	if len(tags) == 0 {
		return nil, 0, nil
	}
	names := make([]string, 0, len(tags))
	for name, tag := range tags {
		if tag < 0 || tag > 4095 {
			return nil, 0, fmt.Errorf("set tag of port %s: tag %d out of range 0..4095", name, tag)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	var ops []ovsdb.Operation
	c.read(func(r *rows) {
		for _, name := range names {
			cur := r.port(name)
			if cur == nil {
				continue // gone (or never there)
			}
			// By _uuid, which ovsdb-server finds directly; a condition on the name is a scan
			// of the Port table per port (seconds for a cold node of 10000 ports).
			ops = append(ops, updateOp(vswitchd.PortTable, whereUUID(cur.UUID), portTagRow(tags[name])))
			updated = append(updated, name)
		}
	})
	if len(updated) == 0 {
		return nil, 0, nil
	}
	tctx, cancel := context.WithTimeout(ctx, txnTimeout)
	defer cancel()
	if cfg, err = c.transact(tctx, ops); err != nil {
		return nil, 0, fmt.Errorf("set tags of %d ports: %w", len(updated), err)
	}
	c.log.Debug("set port tags", zap.Int("ports", len(updated)), zap.Int("next_cfg", cfg))
	return updated, cfg, nil
}

// PortInfo is a port of a bridge with its (first) interface's type, options and ofport.
type PortInfo struct {
	Name    string
	Type    string
	Options map[string]string
	Ofport  int // 0 when not assigned yet, -1 when ovs-vswitchd failed to add it
}

// BridgePorts returns the bridge's ports from the cache, sorted by name.
func (c *Client) BridgePorts(bridge string) []PortInfo {
	var out []PortInfo
	c.read(func(r *rows) {
		br := r.bridge(bridge)
		if br == nil {
			return
		}
		for _, uuid := range br.Ports {
			p := r.ports[uuid]
			if p == nil {
				continue
			}
			info := PortInfo{Name: p.Name}
			if len(p.Interfaces) > 0 {
				if i := r.ifaces[p.Interfaces[0]]; i != nil {
					info.Type, info.Options, info.Ofport = i.Type, i.Options.toMap(), i.Ofport
				}
			}
			out = append(out, info)
		}
	})
	slices.SortFunc(out, func(a, b PortInfo) int { return strings.Compare(a.Name, b.Name) })
	return out
}
