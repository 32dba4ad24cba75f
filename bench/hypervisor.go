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

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
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

// dialHypervisor connects to the host's OVSDB. It monitors nothing (a monitor's cache would
// compete for the CPU with the agent under test); it reads with select operations.
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
	return &hypervisor{ovs: ovs, vifType: vifType, ports: map[string]string{}}, nil
}

func (h *hypervisor) close() { h.ovs.Close() }

// plug adds ports to bridge in one transaction, with ofport_request firstOfport,
// firstOfport+1, ... in order. It returns the port names once the transaction committed.
func (h *hypervisor) plug(ctx context.Context, bridge string, firstOfport int, ports []topology.Port) ([]string, error) {
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

// tagged returns how many of the given ports carry a tag.
func (h *hypervisor) tagged(ctx context.Context, names []string) (int, error) {
	rows, err := h.selectAll(ctx, vswitchd.PortTable, "name", "tag")
	if err != nil {
		return 0, err
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	n := 0
	for _, r := range rows {
		name, _ := r["name"].(string)
		if _, isSet := r["tag"].(ovsdb.OvsSet); want[name] && !isSet {
			n++ // an empty optional column is an empty set; a tag is a number
		}
	}
	return n, nil
}

// selectAll reads columns of every row of a table.
func (h *hypervisor) selectAll(ctx context.Context, table string, columns ...string) ([]ovsdb.Row, error) {
	ops := []ovsdb.Operation{{Op: ovsdb.OperationSelect, Table: table, Where: []ovsdb.Condition{}, Columns: columns}}
	res, err := h.transact(ctx, ops)
	if err != nil {
		return nil, fmt.Errorf("select %s: %w", table, err)
	}
	return res[0].Rows, nil
}

// transact runs ops and checks every result.
func (h *hypervisor) transact(ctx context.Context, ops []ovsdb.Operation) ([]ovsdb.OperationResult, error) {
	res, err := h.ovs.Transact(ctx, ops...)
	if err != nil {
		return nil, err
	}
	if _, err := ovsdb.CheckOperationResults(res, ops); err != nil {
		// Name the failed operation; a result past the operations is ovsdb-server's
		// commit error, told of the last one.
		for i, r := range res {
			if r.Error != "" {
				op := ops[min(i, len(ops)-1)]
				return nil, fmt.Errorf("%w: operation %d (%s %s): %s: %s", err, i, op.Op, op.Table, r.Error, r.Details)
			}
		}
		return nil, err
	}
	return res, nil
}

// waitOfports waits until every named interface has an ofport (> 0); an ofport of -1 is an
// error with Interface.error.
func (h *hypervisor) waitOfports(ctx context.Context, names []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rows, err := h.selectAll(ctx, vswitchd.InterfaceTable, "name", "ofport", "error")
		if err != nil {
			return err
		}
		ofports := map[string]ovsdb.Row{}
		for _, r := range rows {
			name, _ := r["name"].(string)
			ofports[name] = r
		}
		var pending []string
		for _, name := range names {
			r, ok := ofports[name]
			ofport, isNum := r["ofport"].(float64)
			switch {
			case !ok || !isNum || ofport == 0:
				pending = append(pending, name)
			case ofport < 0:
				return fmt.Errorf("ovs-vswitchd could not add %s: %v", name, r["error"])
			}
		}
		if len(pending) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d interfaces still without an ofport after %s (first: %s)", len(pending), len(names), timeout, pending[0])
		}
		select {
		case <-ctx.Done():
			return errors.Join(ctx.Err(), fmt.Errorf("%d interfaces still without an ofport", len(pending)))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ofportAssigned returns when ovs-vswitchd has given the interface an ofport (or -1): a
// transaction with a wait operation that ovsdb-server holds until the interface's ofport
// column is no longer empty, so the reply comes when ovs-vswitchd's write of the ofport is
// committed — the moment the agent's monitor is told, too. It measures the switch's own part
// of a plug, without polling.
func (h *hypervisor) ofportAssigned(ctx context.Context, name string) (time.Time, error) {
	timeout := 30000
	ops := []ovsdb.Operation{{
		Op:      ovsdb.OperationWait,
		Table:   vswitchd.InterfaceTable,
		Where:   []ovsdb.Condition{{Column: "name", Function: ovsdb.ConditionEqual, Value: name}},
		Columns: []string{"ofport"},
		Until:   string(ovsdb.WaitConditionNotEqual),
		Rows:    []ovsdb.Row{{"ofport": ovsdb.OvsSet{GoSet: []any{}}}},
		Timeout: &timeout,
	}}
	if _, err := h.transact(ctx, ops); err != nil {
		return time.Time{}, fmt.Errorf("wait for the ofport of %s: %w", name, err)
	}
	return time.Now(), nil
}

// vswitchdIdle waits until ovs-vswitchd has applied every committed change (cur_cfg has
// caught up with next_cfg), so that the next plug does not queue behind the reconfiguration
// for the previous one's tag.
func (h *hypervisor) vswitchdIdle(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		rows, err := h.selectAll(ctx, vswitchd.OpenvSwitchTable, "next_cfg", "cur_cfg")
		if err != nil {
			return err
		}
		if len(rows) == 1 {
			next, _ := rows[0]["next_cfg"].(float64)
			cur, _ := rows[0]["cur_cfg"].(float64)
			if cur >= next {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ovs-vswitchd still reconfiguring after %s", timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(2 * time.Millisecond):
		}
	}
}
