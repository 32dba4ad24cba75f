package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/go-logr/zapr"
	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/ovn-kubernetes/libovsdb/model"
	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
	"github.com/dvrflow/dvrflow/testbed"
)

// hypervisor plays nova/os-vif on a sandbox host: it plugs and unplugs VIF ports with its own
// OVSDB connection, each batch in one transaction, the way the scenarios' README describes
// (internal ports named by Neutron's rule, ofport_request, external_ids iface-id,
// attached-mac, iface-status=active, vm-uuid). It commits without waiting for ovs-vswitchd,
// as a hypervisor's insert does; waitOfports waits for the ofports separately.
type hypervisor struct {
	ovs     client.Client
	vifType string            // Interface.type of the VIFs it plugs
	ports   map[string]string // port name → Port row UUID, for unplugging
}

// dialHypervisor connects to the host's OVSDB and monitors the interfaces' names and ofports.
func dialHypervisor(ctx context.Context, endpoint, vifType string, log *zap.Logger) (*hypervisor, error) {
	dbModel, err := vswitchd.FullDatabaseModel()
	if err != nil {
		return nil, err
	}
	logr := zapr.NewLogger(log.Named("hypervisor"))
	ovs, err := client.NewOVSDBClient(dbModel, client.WithEndpoint(endpoint), client.WithLogger(&logr))
	if err != nil {
		return nil, fmt.Errorf("hypervisor ovsdb client: %w", err)
	}
	if err := ovs.Connect(ctx); err != nil {
		return nil, fmt.Errorf("hypervisor: connect to %s: %w", endpoint, err)
	}
	iface, port := &vswitchd.Interface{}, &vswitchd.Port{}
	if _, err := ovs.Monitor(ctx, ovs.NewMonitor(
		client.WithTable(iface, &iface.Name, &iface.Ofport, &iface.Error),
		client.WithTable(port, &port.Name, &port.Tag),
	)); err != nil {
		ovs.Close()
		return nil, fmt.Errorf("hypervisor: monitor: %w", err)
	}
	return &hypervisor{ovs: ovs, vifType: vifType, ports: map[string]string{}}, nil
}

func (h *hypervisor) close() { h.ovs.Close() }

// plug adds ports to bridge in one transaction, with ofport_request firstOfport,
// firstOfport+1, ... in order. It returns the port names once the transaction committed.
func (h *hypervisor) plug(ctx context.Context, bridge string, firstOfport int, ports []controller.Port) ([]string, error) {
	var ops []ovsdb.Operation
	names := make([]string, len(ports))
	portUUIDs := make([]string, len(ports))
	portOp := make([]int, len(ports))
	for i, p := range ports {
		name := testbed.PortName(p)
		names[i] = name
		ofport := firstOfport + i
		ids := map[string]string{"iface-id": p.ID, "attached-mac": p.MAC, "iface-status": "active"}
		if p.DeviceID != "" {
			ids["vm-uuid"] = p.DeviceID
		}
		iface := &vswitchd.Interface{UUID: "i" + strconv.Itoa(i), Name: name, Type: h.vifType,
			OfportRequest: &ofport, ExternalIDs: ids}
		if h.vifType == "patch" {
			iface.Options = map[string]string{"peer": "vm-" + name}
		}
		port := &vswitchd.Port{UUID: "p" + strconv.Itoa(i), Name: name, Interfaces: []string{iface.UUID}}
		portUUIDs[i] = port.UUID
		iop, err := h.ovs.Create(iface)
		if err != nil {
			return nil, fmt.Errorf("plug %s: %w", name, err)
		}
		pop, err := h.ovs.Create(port)
		if err != nil {
			return nil, fmt.Errorf("plug %s: %w", name, err)
		}
		ops = append(ops, iop...)
		portOp[i] = len(ops)
		ops = append(ops, pop...)
	}
	br := &vswitchd.Bridge{}
	op, err := h.ovs.WhereAll(br, model.Condition{Field: &br.Name, Function: ovsdb.ConditionEqual, Value: bridge}).
		Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationInsert, Value: portUUIDs})
	if err != nil {
		return nil, err
	}
	ops = append(ops, op...)
	res, err := h.transact(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("plug %d ports into %s: %w", len(ports), bridge, err)
	}
	for i, name := range names {
		h.ports[name] = res[portOp[i]].UUID.GoUUID
	}
	return names, nil
}

// unplug removes a port it plugged from bridge (its Port row; the Interface row goes with
// it), in one transaction.
func (h *hypervisor) unplug(ctx context.Context, bridge, name string) error {
	uuid, ok := h.ports[name]
	if !ok {
		return fmt.Errorf("unplug %s: not plugged here", name)
	}
	br := &vswitchd.Bridge{}
	ops, err := h.ovs.WhereAll(br, model.Condition{Field: &br.Name, Function: ovsdb.ConditionEqual, Value: bridge}).
		Mutate(br, model.Mutation{Field: &br.Ports, Mutator: ovsdb.MutateOperationDelete, Value: []string{uuid}})
	if err != nil {
		return err
	}
	del, err := h.ovs.Where(&vswitchd.Port{UUID: uuid}).Delete()
	if err != nil {
		return err
	}
	if _, err := h.transact(ctx, append(ops, del...)); err != nil {
		return fmt.Errorf("unplug %s: %w", name, err)
	}
	delete(h.ports, name)
	return nil
}

// clearTags removes the VLAN tag of every port it plugged, in one transaction: the ports as
// they were before any agent ran.
func (h *hypervisor) clearTags(ctx context.Context) error {
	var ops []ovsdb.Operation
	for _, uuid := range h.ports {
		p := &vswitchd.Port{UUID: uuid}
		op, err := h.ovs.Where(p).Update(p, &p.Tag)
		if err != nil {
			return err
		}
		ops = append(ops, op...)
	}
	if len(ops) == 0 {
		return nil
	}
	if _, err := h.transact(ctx, ops); err != nil {
		return fmt.Errorf("clear tags: %w", err)
	}
	return nil
}

// tagged returns how many of the given ports carry a tag, from the monitor's cache.
func (h *hypervisor) tagged(names []string) int {
	n := 0
	for _, name := range names {
		p := &vswitchd.Port{Name: name}
		if h.ovs.Get(context.Background(), p) == nil && p.Tag != nil {
			n++
		}
	}
	return n
}

// transact runs ops and checks every result.
func (h *hypervisor) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := h.ovs.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		return nil, err
	}
	return res, nil
}

// waitOfports waits until every named interface has an ofport (> 0); an ofport of -1 is an
// error with Interface.error.
func (h *hypervisor) waitOfports(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	pending := append([]string(nil), names...)
	for {
		rest := pending[:0]
		for _, name := range pending {
			i := &vswitchd.Interface{Name: name}
			if err := h.ovs.Get(ctx, i); err != nil || i.Ofport == nil || *i.Ofport == 0 {
				rest = append(rest, name)
				continue
			}
			if *i.Ofport < 0 {
				msg := "unknown error"
				if i.Error != nil {
					msg = *i.Error
				}
				return fmt.Errorf("ovs-vswitchd could not add %s: %s", name, msg)
			}
		}
		pending = rest
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d interfaces still without an ofport after %s (first: %s)", len(pending), len(names), timeout, pending[0])
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), fmt.Errorf("%d interfaces still without an ofport", len(pending)))
		case <-time.After(5 * time.Millisecond):
		}
	}
}
