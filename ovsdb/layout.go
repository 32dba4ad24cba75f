package ovsdb

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// Layout is the set of bridges and ports dvrflow manages on a node: the bridges, the patch
// pairs joining them, and other ports (br-tun's tunnel ports) set exactly as specified.
type Layout struct {
	Bridges []BridgeSpec
	Patches []PatchPair
	Ports   []PortSpec
}

// PatchPair is a pair of patch ports joining two bridges: PortA on BridgeA and PortB on
// BridgeB, each the other's peer (Interface type=patch, options:peer).
type PatchPair struct {
	BridgeA, PortA, BridgeB, PortB string
}

// ports returns the two ends of the pair.
func (p PatchPair) ports() [2]PortSpec {
	return [2]PortSpec{
		{Bridge: p.BridgeA, Name: p.PortA, Type: "patch", Options: map[string]string{"peer": p.PortB}},
		{Bridge: p.BridgeB, Name: p.PortB, Type: "patch", Options: map[string]string{"peer": p.PortA}},
	}
}

// EnsureLayout makes every bridge and patch pair of the layout exist and be configured, in
// one transaction holding only what differs from the cache, and waits once for ovs-vswitchd
// to apply it; when everything is already right it writes nothing and does not wait.
//
// A missing bridge is created with its internal port (and, in the same transaction, the
// layout's patch ports on it); an existing one is adopted as [Client.EnsureBridge] does: it
// keeps its UUID and its ports, and only the settings that differ are written. A patch
// port is created, or, if a port of that name is already on that bridge, its interface's
// type and options are set (so its ofport stays); a port of that name on another bridge is
// an error. A patch pair may join a bridge outside the layout, which must then exist. If the
// cache was behind the database (a guard of the transaction failed), everything is looked
// at again and retried.
//
// It returns the names of the bridges it created, in layout order.
func (c *Client) EnsureLayout(ctx context.Context, l Layout) (created []string, err error) {
	created, err = c.ensureLayout(ctx, l.Bridges, l.ports())
	if err != nil {
		return nil, fmt.Errorf("ensure bridges and patch ports: %w", err)
	}
	return created, nil
}

// ports returns the ports of every patch pair, then the other ports.
func (l Layout) ports() []PortSpec {
	ports := make([]PortSpec, 0, 2*len(l.Patches)+len(l.Ports))
	for _, p := range l.Patches {
		ends := p.ports()
		ports = append(ports, ends[0], ends[1])
	}
	return append(ports, l.Ports...)
}

// ensureLayout brings the bridges and ports to the specs in one transaction (none if nothing
// differs) and returns the bridges it created.
func (c *Client) ensureLayout(ctx context.Context, bridges []BridgeSpec, ports []PortSpec) ([]string, error) {
	bridges, err := checkLayout(bridges, ports)
	if err != nil {
		return nil, err
	}
	var created []string
	err = retry(ctx, func() error {
		created = nil
		b, ops, err := c.planLayout(bridges, ports)
		if err != nil || len(ops) == 0 {
			return err
		}
		if err := c.commit(ctx, ops); err != nil {
			return err
		}
		created = b.created
		for _, msg := range b.changes {
			c.log.Info(msg.what, msg.fields...)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return created, nil
}

// planLayout looks at the rows and returns the transaction that brings the bridges and
// ports to the (checked) specs: no operations when nothing differs.
func (c *Client) planLayout(bridges []BridgeSpec, ports []PortSpec) (b *layoutTxn, ops []ovsdb.Operation, err error) {
	c.read(func(r *rows) {
		b = &layoutTxn{r: r, bridges: map[string]*vswitchd.Bridge{}, newBridges: map[string]*vswitchd.Bridge{},
			links: map[string][]string{}, guarded: map[string]bool{}}
		for _, spec := range bridges {
			b.bridge(spec)
		}
		for _, spec := range ports {
			b.port(spec)
		}
		ops, err = b.operations()
	})
	return b, ops, err
}

// checkLayout rejects empty and duplicate names and returns the bridge specs with their
// default protocols filled in.
func checkLayout(bridges []BridgeSpec, ports []PortSpec) ([]BridgeSpec, error) {
	out := make([]BridgeSpec, 0, len(bridges))
	seen := map[string]bool{}
	for _, spec := range bridges {
		switch {
		case spec.Name == "":
			return nil, errors.New("bridge with an empty name")
		case seen[spec.Name]:
			return nil, fmt.Errorf("bridge %s named twice", spec.Name)
		}
		seen[spec.Name] = true
		if len(spec.Protocols) == 0 {
			spec.Protocols = DefaultProtocols
		}
		out = append(out, spec)
	}
	seenPort := map[string]bool{}
	for _, p := range ports {
		switch {
		case p.Bridge == "" || p.Name == "":
			return nil, errors.New("port with an empty bridge or port name")
		case seenPort[p.Name]:
			return nil, fmt.Errorf("port %s named twice", p.Name)
		}
		seenPort[p.Name] = true
	}
	return out, nil
}

// layoutTxn builds one transaction from a look at the rows: guards and updates first,
// then the rows to insert (referenced rows before the rows referencing them), then the
// mutations linking new rows to existing ones.
type layoutTxn struct {
	r   *rows // read-locked while the transaction is planned
	err error

	ops     []ovsdb.Operation // guards and updates of existing rows
	inserts []ovsdb.Operation // new Flow_Table, Interface and Port rows
	links   map[string][]string
	mutates []ovsdb.Operation // flow_tables of adopted bridges
	seq     int

	bridges    map[string]*vswitchd.Bridge // existing bridges looked at, by name
	newBridges map[string]*vswitchd.Bridge // bridges created, by name, with their ports
	newOrder   []string
	guarded    map[string]bool // guards already added, by table, name and expectation
	created    []string
	changes    []change // logged once the transaction committed
}

// change is one log line of what the transaction did.
type change struct {
	what   string
	fields []zap.Field
}

func (b *layoutTxn) fail(err error) {
	if b.err == nil {
		b.err = err
	}
}

// named returns a new named UUID for a row inserted by this transaction.
func (b *layoutTxn) named(kind string) string {
	b.seq++
	return "new_" + kind + "_" + strconv.Itoa(b.seq)
}

// guard adds a guard (once) that aborts the transaction unless a row named name exists in
// table (exists) or unless none does.
func (b *layoutTxn) guard(table, name string, exists bool) {
	key := table + "\x00" + name + "\x00" + strconv.FormatBool(exists)
	if !b.guarded[key] {
		b.guarded[key] = true
		b.ops = append(b.ops, guard(table, name, exists))
	}
}

// insert plans inserting rows, in order.
func (b *layoutTxn) insert(ops ...ovsdb.Operation) {
	b.inserts = append(b.inserts, ops...)
}

// bridge plans the creation or adoption of one bridge.
func (b *layoutTxn) bridge(spec BridgeSpec) {
	cur := b.r.bridge(spec.Name)
	if cur == nil {
		b.createBridge(spec)
		return
	}
	b.bridges[spec.Name] = cur
	b.adoptBridge(spec, cur)
}

// createBridge plans a new bridge with its internal port and its named tables.
func (b *layoutTxn) createBridge(spec BridgeSpec) {
	b.guard(vswitchd.BridgeTable, spec.Name, false)
	iface := &vswitchd.Interface{UUID: b.named("iface"), Name: spec.Name, Type: "internal"}
	port := &vswitchd.Port{UUID: b.named("port"), Name: spec.Name, Interfaces: []string{iface.UUID}}
	fmode := vswitchd.BridgeFailModeSecure
	br := &vswitchd.Bridge{
		UUID:         b.named("bridge"),
		Name:         spec.Name,
		DatapathType: spec.DatapathType,
		FailMode:     &fmode,
		Protocols:    spec.Protocols,
		OtherConfig:  spec.otherConfig(),
		Ports:        []string{port.UUID},
	}
	tables, flowTables := newFlowTables(spec.TableNames, nil, b.named)
	if len(tables) > 0 {
		br.FlowTables = flowTables
		for _, ft := range tables {
			b.insert(insertFlowTable(ft))
		}
	}
	b.insert(insertInterface(iface), insertPort(port))
	b.newBridges[spec.Name] = br
	b.newOrder = append(b.newOrder, spec.Name)
	b.created = append(b.created, spec.Name)
	b.changes = append(b.changes, change{"created bridge", []zap.Field{zap.String("bridge", spec.Name),
		zap.String("datapath_type", spec.DatapathType)}})
}

// adoptBridge plans re-applying the spec to an existing bridge, writing only what differs
// from the cache: fail_mode, datapath_type, the missing protocols, the other_config keys
// dvrflow owns, the table names. Ports are untouched.
func (b *layoutTxn) adoptBridge(spec BridgeSpec, cur *vswitchd.Bridge) {
	where := whereName(spec.Name)
	var ops, inserts, mutates []ovsdb.Operation
	settings := ovsdb.Row{}
	if cur.FailMode == nil || *cur.FailMode != vswitchd.BridgeFailModeSecure {
		settings["fail_mode"] = string(vswitchd.BridgeFailModeSecure)
	}
	if spec.DatapathType != "" && cur.DatapathType != spec.DatapathType {
		settings["datapath_type"] = spec.DatapathType
	}
	if len(settings) > 0 {
		ops = append(ops, updateOp(vswitchd.BridgeTable, where, settings))
	}
	var missing []string
	for _, p := range spec.Protocols {
		if !slices.Contains(cur.Protocols, p) {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		ops = append(ops, mutateOp(vswitchd.BridgeTable, where, "protocols", ovsdb.MutateOperationInsert, stringsSet(missing)))
	}
	oc := map[string]string{}
	for k, v := range spec.otherConfig() {
		if have, ok := cur.OtherConfig[k]; !ok || have != v {
			oc[k] = v
		}
	}
	if len(oc) > 0 {
		// Map "insert" keeps an existing key's value, so delete those keys first.
		ops = append(ops,
			mutateOp(vswitchd.BridgeTable, where, "other_config", ovsdb.MutateOperationDelete, stringsSet(slices.Sorted(maps.Keys(oc)))),
			mutateOp(vswitchd.BridgeTable, where, "other_config", ovsdb.MutateOperationInsert, stringMapValue(oc)))
	}
	// Existing Flow_Table rows are renamed in place; missing ones are created and linked.
	for _, n := range slices.Sorted(maps.Keys(spec.TableNames)) {
		uuid, ok := cur.FlowTables[n]
		name := spec.TableNames[n]
		if !ok || name == "" {
			continue
		}
		if ft := b.r.flowTables[uuid]; ft != nil && ft.Name != nil && *ft.Name == name {
			continue
		}
		ops = append(ops, updateOp(vswitchd.FlowTableTable, whereUUID(uuid), ovsdb.Row{"name": name}))
	}
	newTables, flowTables := newFlowTables(spec.TableNames, cur.FlowTables, b.named)
	if len(newTables) > 0 {
		for _, ft := range newTables {
			inserts = append(inserts, insertFlowTable(ft))
		}
		mutates = append(mutates, mutateOp(vswitchd.BridgeTable, where, "flow_tables", ovsdb.MutateOperationInsert, tableRefs(flowTables)))
	}
	if len(ops)+len(inserts) == 0 {
		return // already configured
	}
	b.guard(vswitchd.BridgeTable, spec.Name, true)
	b.ops = append(b.ops, ops...)
	b.inserts = append(b.inserts, inserts...)
	b.mutates = append(b.mutates, mutates...)
	b.changes = append(b.changes, change{"adopted bridge", []zap.Field{zap.String("bridge", spec.Name),
		zap.Int("operations", len(ops)+len(inserts)+len(mutates))}})
}

// port plans a port with one interface of its name on spec.Bridge: created if missing,
// otherwise its interface's type and options set if they differ.
func (b *layoutTxn) port(spec PortSpec) {
	if !b.bridgeKnown(spec.Bridge) {
		return
	}
	cur := b.r.port(spec.Name)
	if cur == nil {
		b.guard(vswitchd.PortTable, spec.Name, false)
		iface := &vswitchd.Interface{UUID: b.named("iface"), Name: spec.Name, Type: spec.Type, Options: spec.Options}
		p := &vswitchd.Port{UUID: b.named("port"), Name: spec.Name, Interfaces: []string{iface.UUID}}
		b.insert(insertInterface(iface), insertPort(p))
		b.link(spec.Bridge, p.UUID)
		b.changes = append(b.changes, change{"added port", []zap.Field{zap.String("bridge", spec.Bridge),
			zap.String("port", spec.Name), zap.String("type", spec.Type)}})
		return
	}
	owner := b.r.portBridge(cur.UUID)
	if owner != "" && owner != spec.Bridge {
		b.fail(fmt.Errorf("port %s exists on bridge %s", spec.Name, owner))
		return
	}
	if owner == spec.Bridge && b.r.ifaceIs(spec) {
		return
	}
	if owner == "" {
		// A port on no bridge is about to be garbage-collected; link it (the guard below
		// fails the transaction if it is gone, and the retry then creates it).
		b.link(spec.Bridge, cur.UUID)
	}
	b.guard(vswitchd.PortTable, spec.Name, true)
	b.ops = append(b.ops, updateOp(vswitchd.InterfaceTable, whereName(spec.Name),
		ovsdb.Row{"type": spec.Type, "options": stringMapValue(spec.Options)}))
	b.changes = append(b.changes, change{"set port", []zap.Field{zap.String("bridge", spec.Bridge),
		zap.String("port", spec.Name), zap.String("type", spec.Type)}})
}

// bridgeKnown reports whether the bridge exists in the cache or is created by this
// transaction, failing the transaction if neither.
func (b *layoutTxn) bridgeKnown(name string) bool {
	if b.bridges[name] != nil || b.newBridges[name] != nil {
		return true
	}
	br := b.r.bridge(name)
	if br == nil {
		b.fail(fmt.Errorf("no bridge %s", name))
		return false
	}
	b.bridges[name] = br
	return true
}

// link adds a port (a named UUID of this transaction or an existing row's) to a bridge: to
// the row of a bridge created here, otherwise by a mutation guarded by the bridge existing.
func (b *layoutTxn) link(bridge, portUUID string) {
	if br := b.newBridges[bridge]; br != nil {
		br.Ports = append(br.Ports, portUUID)
		return
	}
	b.guard(vswitchd.BridgeTable, bridge, true)
	b.links[bridge] = append(b.links[bridge], portUUID)
}

// operations returns the transaction's operations (none when nothing differs), or the first
// error met building them.
func (b *layoutTxn) operations() ([]ovsdb.Operation, error) {
	if b.err != nil {
		return nil, b.err
	}
	ops := append(b.ops, b.inserts...)
	var newUUIDs []string
	for _, name := range b.newOrder {
		br := b.newBridges[name]
		ops = append(ops, insertBridge(br))
		newUUIDs = append(newUUIDs, br.UUID)
	}
	for _, name := range slices.Sorted(maps.Keys(b.links)) {
		ops = append(ops, mutateOp(vswitchd.BridgeTable, whereName(name), "ports", ovsdb.MutateOperationInsert, uuids(b.links[name]...)))
	}
	ops = append(ops, b.mutates...)
	if len(newUUIDs) > 0 {
		var root string
		for uuid := range b.r.root {
			root = uuid
		}
		if root == "" {
			return nil, errors.New("no Open_vSwitch row (is the database initialised?)")
		}
		ops = append(ops, mutateOp(vswitchd.OpenvSwitchTable, whereUUID(root), "bridges", ovsdb.MutateOperationInsert, uuids(newUUIDs...)))
	}
	return ops, nil
}

// ifaceIs reports whether the interface named like the port has the spec's type and
// exactly its options.
func (r *rows) ifaceIs(spec PortSpec) bool {
	i := r.iface(spec.Name)
	return i != nil && i.Type == spec.Type && i.Options.equal(spec.Options)
}

// LayoutPresent reports whether the rows show every bridge of the layout, every port of its
// patch pairs on its bridge with an interface of type patch, and every other port on its
// bridge with exactly its type and options. The bridges' and patch ports' settings are not
// compared (EnsureLayout does that). It only looks rows up by name: cheap enough for every
// reconcile, even with thousands of ports.
func (c *Client) LayoutPresent(l Layout) (present bool) {
	c.read(func(r *rows) {
		for _, spec := range l.Bridges {
			if r.bridge(spec.Name) == nil {
				return
			}
		}
		for i, spec := range l.ports() {
			br, port, iface := r.bridge(spec.Bridge), r.port(spec.Name), r.iface(spec.Name)
			if br == nil || port == nil || !slices.Contains(br.Ports, port.UUID) || iface == nil || iface.Type != spec.Type {
				return
			}
			if i >= 2*len(l.Patches) && !r.ifaceIs(spec) {
				return
			}
		}
		present = true
	})
	return present
}
