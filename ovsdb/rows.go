package ovsdb

import "github.com/dvrflow/dvrflow/ovsdb/vswitchd"

// monitorRequests is the third parameter of the monitor request (RFC 7047 section 4.1.5):
// every monitored table's columns, with the initial contents and every change.
func monitorRequests() map[string]any {
	tables := monitored()
	req := make(map[string]any, len(tables))
	for table, cols := range tables {
		req[table] = map[string]any{"columns": cols}
	}
	return req
}

// rows is the client's copy of the monitored tables, by row UUID, with the name indexes
// and the links from an interface to its bridge. Rows are never modified once stored (an
// update stores a new row), so a row read under the lock may be kept after it.
type rows struct {
	root       map[string]*vswitchd.OpenvSwitch
	bridges    map[string]*vswitchd.Bridge
	ports      map[string]*vswitchd.Port
	ifaces     map[string]*ifaceRow
	flowTables map[string]*vswitchd.FlowTable

	bridgeByName map[string]string
	portByName   map[string]string
	ifaceByName  map[string]string

	// portOfIface (Interface UUID → UUID of the Port listing it) and bridgeOfPort (Port
	// UUID → UUID of the Bridge listing it) are kept up to date by apply, so that an
	// interface's bridge is found without a scan. Their strings are the rows' own.
	portOfIface  map[string]string
	bridgeOfPort map[string]string
}

func newRows() *rows {
	return &rows{
		root:         map[string]*vswitchd.OpenvSwitch{},
		bridges:      map[string]*vswitchd.Bridge{},
		ports:        map[string]*vswitchd.Port{},
		ifaces:       map[string]*ifaceRow{},
		flowTables:   map[string]*vswitchd.FlowTable{},
		bridgeByName: map[string]string{},
		portByName:   map[string]string{},
		ifaceByName:  map[string]string{},
		portOfIface:  map[string]string{},
		bridgeOfPort: map[string]string{},
	}
}

// bridge returns the bridge of that name, nil if none.
func (r *rows) bridge(name string) *vswitchd.Bridge { return r.bridges[r.bridgeByName[name]] }

// port returns the port of that name, nil if none.
func (r *rows) port(name string) *vswitchd.Port { return r.ports[r.portByName[name]] }

// iface returns the interface of that name, nil if none.
func (r *rows) iface(name string) *ifaceRow { return r.ifaces[r.ifaceByName[name]] }

// portBridge returns the name of the bridge whose ports include portUUID, "" if none.
func (r *rows) portBridge(portUUID string) string {
	if b := r.bridges[r.bridgeOfPort[portUUID]]; b != nil {
		return b.Name
	}
	return ""
}

// ifaceBridge returns the name of the bridge holding the port of the interface ifaceUUID,
// "" if none.
func (r *rows) ifaceBridge(ifaceUUID string) string {
	port, ok := r.portOfIface[ifaceUUID]
	if !ok {
		return ""
	}
	return r.portBridge(port)
}

// tableUpdates is a monitor reply or update notification (RFC 7047 section 4.1.6) of the
// monitored tables, as decodeUpdates reads it: per row UUID, the row's new contents (every
// monitored column), or no New when the row was deleted.
type tableUpdates struct {
	Root       map[string]rowUpdate[rootRow]
	Bridges    map[string]rowUpdate[bridgeRow]
	Ports      map[string]rowUpdate[portRow]
	Ifaces     map[string]rowUpdate[ifaceRow]
	FlowTables map[string]rowUpdate[flowTableRow]
}

type rowUpdate[T any] struct {
	New *T
}

// The rows as ovsdb-server sends them, one field per monitored column.
type (
	rootRow struct {
		Bridges []string
		NextCfg int
		CurCfg  int
	}
	bridgeRow struct {
		Name         string
		Ports        []string
		DatapathType string
		FailMode     *string
		Protocols    []string
		OtherConfig  map[string]string
		FlowTables   map[int]string
	}
	portRow struct {
		Name       string
		Interfaces []string
		Tag        *int
	}
	// ifaceRow is also how the client keeps an Interface: 10,000 of them are most of its
	// memory, so the optional columns are plain values and the maps flat pairs.
	ifaceRow struct {
		UUID        string
		Name        string
		Type        string
		Ofport      int    // 0 while not assigned (the empty set), -1 when adding it failed
		Error       string // "" when none
		ExternalIDs pairs
		Options     pairs
	}
	flowTableRow struct {
		Name *string
	}
)

// apply stores the updates and reports which tables changed. With a queue, it also queues
// the VIF and bridge events of the update (see eventQueue), looking only at the rows the
// update touches. Without one it only stores them: rows not installed yet have no events of
// their own (they are the starting point, or compared whole on a reconnection).
func (r *rows) apply(u *tableUpdates, q *eventQueue) (changed []string) {
	var before *snapshot
	if q != nil {
		before = r.snapshot(u)
	}
	if len(u.Root) > 0 {
		changed = append(changed, vswitchd.OpenvSwitchTable)
		r.applyRoot(u.Root)
	}
	if len(u.Bridges) > 0 {
		changed = append(changed, vswitchd.BridgeTable)
		r.applyBridges(u.Bridges)
	}
	if len(u.Ports) > 0 {
		changed = append(changed, vswitchd.PortTable)
		r.applyPorts(u.Ports)
	}
	if len(u.Ifaces) > 0 {
		changed = append(changed, vswitchd.InterfaceTable)
		r.applyIfaces(u.Ifaces)
	}
	if len(u.FlowTables) > 0 {
		changed = append(changed, vswitchd.FlowTableTable)
		r.applyFlowTables(u.FlowTables)
	}
	if q != nil {
		q.queue(before, r)
	}
	return changed
}

func (r *rows) applyRoot(ups map[string]rowUpdate[rootRow]) {
	for uuid, up := range ups {
		if up.New == nil {
			delete(r.root, uuid)
			continue
		}
		r.root[uuid] = &vswitchd.OpenvSwitch{UUID: uuid, Bridges: up.New.Bridges, NextCfg: up.New.NextCfg, CurCfg: up.New.CurCfg}
	}
}

// applyBridges stores Bridge rows and links their ports to them.
func (r *rows) applyBridges(ups map[string]rowUpdate[bridgeRow]) {
	for uuid, up := range ups {
		var row *vswitchd.Bridge
		if n := up.New; n != nil {
			row = &vswitchd.Bridge{UUID: uuid, Name: n.Name, Ports: n.Ports, DatapathType: n.DatapathType,
				Protocols: n.Protocols, OtherConfig: n.OtherConfig,
				FlowTables: n.FlowTables}
			if n.FailMode != nil {
				mode := vswitchd.BridgeFailMode(*n.FailMode)
				row.FailMode = &mode
			}
		}
		var oldPorts []string
		if old := r.bridges[uuid]; old != nil {
			oldPorts = old.Ports
		}
		var newPorts []string
		if row != nil {
			newPorts = row.Ports
		}
		relink(r.bridgeOfPort, uuid, oldPorts, newPorts)
		store(r.bridges, r.bridgeByName, uuid, row, func(b *vswitchd.Bridge) string { return b.Name })
	}
}

// applyPorts stores Port rows and links their interfaces to them.
func (r *rows) applyPorts(ups map[string]rowUpdate[portRow]) {
	for uuid, up := range ups {
		var row *vswitchd.Port
		var newIfaces []string
		if n := up.New; n != nil {
			row = &vswitchd.Port{UUID: uuid, Name: n.Name, Interfaces: n.Interfaces, Tag: n.Tag}
			newIfaces = n.Interfaces
		}
		var oldIfaces []string
		if old := r.ports[uuid]; old != nil {
			oldIfaces = old.Interfaces
		}
		relink(r.portOfIface, uuid, oldIfaces, newIfaces)
		store(r.ports, r.portByName, uuid, row, func(p *vswitchd.Port) string { return p.Name })
	}
}

func (r *rows) applyIfaces(ups map[string]rowUpdate[ifaceRow]) {
	for uuid, up := range ups {
		row := up.New
		if row != nil {
			row.UUID = uuid
		}
		store(r.ifaces, r.ifaceByName, uuid, row, func(i *ifaceRow) string { return i.Name })
	}
}

func (r *rows) applyFlowTables(ups map[string]rowUpdate[flowTableRow]) {
	for uuid, up := range ups {
		if up.New == nil {
			delete(r.flowTables, uuid)
			continue
		}
		r.flowTables[uuid] = &vswitchd.FlowTable{UUID: uuid, Name: up.New.Name}
	}
}

// store puts row (nil: deletes the row) into a table and keeps its name index right.
func store[T any](table map[string]*T, byName map[string]string, uuid string, row *T, name func(*T) string) {
	if old := table[uuid]; old != nil {
		if n := name(old); byName[n] == uuid {
			delete(byName, n)
		}
	}
	if row == nil {
		delete(table, uuid)
		return
	}
	table[uuid] = row
	byName[name(row)] = uuid
}

// pairs is a small string map stored flat, key, value, key, value...: a few external_ids
// or options take a fraction of a Go map's memory and are looked up as fast.
type pairs []string

// get returns the value of key.
func (p pairs) get(key string) (string, bool) {
	for i := 0; i+1 < len(p); i += 2 {
		if p[i] == key {
			return p[i+1], true
		}
	}
	return "", false
}

// value returns the value of key, "" if absent.
func (p pairs) value(key string) string {
	v, _ := p.get(key)
	return v
}

// toMap returns the pairs as a new map (nil when empty).
func (p pairs) toMap() map[string]string {
	if len(p) == 0 {
		return nil
	}
	m := make(map[string]string, len(p)/2)
	for i := 0; i+1 < len(p); i += 2 {
		m[p[i]] = p[i+1]
	}
	return m
}

// equal reports whether the pairs hold exactly the map's keys and values.
func (p pairs) equal(m map[string]string) bool {
	return len(p) == 2*len(m) && p.containsAll(m)
}

// containsAll reports whether the pairs hold every key of m with the same value.
func (p pairs) containsAll(m map[string]string) bool {
	for k, v := range m {
		if have, ok := p.get(k); !ok || have != v {
			return false
		}
	}
	return true
}
