// Package flowgraph draws a node's OpenFlow pipeline: one node per (bridge, table) with its
// name, flow count and packet counter; an edge wherever flows hand packets to another table
// (goto_table, resubmit, ct(table=)) or, through a patch port, to another bridge; and one
// exit node per bridge for each kind of place packets leave to (NORMAL, VM ports, router
// ports, tunnels, the uplink). The model is built from the CLI's flow records and rendered
// as DOT text here, deterministically; Render turns the DOT into SVG or PNG in-process.
// Building the model and the DOT is pure.
package flowgraph

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/inspect"
)

// Patch is one patch port: Port on Bridge is joined to PeerPort on PeerBridge. Both
// directions are listed when both bridges are known.
type Patch struct {
	Bridge     string `json:"bridge"`
	Port       string `json:"port"`
	PeerBridge string `json:"peer_bridge"`
	PeerPort   string `json:"peer_port"`
}

// DefaultIntegrationBridge is Neutron's default integration bridge.
const DefaultIntegrationBridge = "br-int"

// Input is what the graph is drawn from.
type Input struct {
	// Flows are the flow records per bridge.
	Flows map[string][]inspect.FlowRecord
	// Patches are the patch ports between the bridges.
	Patches []Patch
	// IntegrationBridge names br-int (default DefaultIntegrationBridge): its ports that are
	// neither VM, router, tunnel nor patch ports are "other ports"; on other bridges they
	// are the uplink.
	IntegrationBridge string
}

// Graph is the pipeline of a node.
type Graph struct {
	// Bridges in name order.
	Bridges []Bridge
	// Edges in (from, to, kind, port) order.
	Edges []Edge
}

// Bridge is one bridge's cluster: its tables and exits.
type Bridge struct {
	Name    string
	Flows   int
	Packets uint64
	// Tables in number order: every table holding flows, and every table a flow jumps to.
	Tables []Table
	// Exits in label order.
	Exits []Exit
}

// Table is one OpenFlow table of a bridge.
type Table struct {
	ID     string
	Bridge string
	Number uint8
	// Name is the table's Neutron name, "" when neither the records nor the catalogue
	// name it.
	Name    string
	Flows   int
	Packets uint64
	Bytes   uint64
}

// Exit is a place packets leave a bridge to, other than another bridge's table: NORMAL
// switching, a kind of port, or a table that could not be resolved.
type Exit struct {
	ID     string
	Bridge string
	Label  string
}

// EdgeKind says how packets move along an edge.
type EdgeKind string

// Edge kinds.
const (
	EdgeGoto      EdgeKind = "goto_table"
	EdgeResubmit  EdgeKind = "resubmit"
	EdgeConntrack EdgeKind = "ct"
	EdgePatch     EdgeKind = "patch"
	EdgeOutput    EdgeKind = "output"
)

// Edge joins two nodes (table or exit ids).
type Edge struct {
	From, To string
	Kind     EdgeKind
	// Port is the patch port for EdgePatch, "" otherwise.
	Port string
	// Flows is the number of flows whose actions take this edge (0 for the patch edges out
	// of NORMAL, which no single flow names); Packets the sum of their packet counters.
	Flows   int
	Packets uint64
}

// Exit labels.
const (
	ExitNormal      = "NORMAL"
	ExitVMPorts     = "VM ports"
	ExitRouterPorts = "router ports"
	ExitTunnels     = "tunnels"
	ExitUplink      = "uplink"
	ExitOtherPorts  = "other ports"
	ExitRegister    = "port in register"
)

// TableID is the node id of a bridge's table.
func TableID(bridge string, table uint8) string { return bridge + "/table/" + strconv.Itoa(int(table)) }

// ExitID is the node id of a bridge's exit.
func ExitID(bridge, label string) string { return bridge + "/exit/" + label }

// Build draws the graph of the input.
func Build(in Input) *Graph {
	integration := cmp.Or(in.IntegrationBridge, DefaultIntegrationBridge)
	patches := map[[2]string]Patch{}
	for _, p := range in.Patches {
		patches[[2]string{p.Bridge, p.Port}] = p
	}
	b := &builder{tables: map[string]*Table{}, exits: map[string]*Exit{}, edges: map[edgeKey]*Edge{}}
	for _, bridge := range slices.Sorted(maps.Keys(in.Flows)) {
		records := in.Flows[bridge]
		names := tableNames(records)
		for _, r := range records {
			t := b.table(bridge, r.Table, names)
			t.Flows++
			t.Packets += r.Packets
			t.Bytes += r.Bytes
			from := t.ID
			for _, s := range steps(r.Actions) {
				to, kind, port := b.target(s, bridge, r.Table, names, integration, patches, in.Flows)
				b.edge(from, to, kind, port, r.Packets)
			}
		}
	}
	b.normalPatches(in.Patches, in.Flows)
	return b.graph()
}

// normalPatches joins a bridge's NORMAL exit to the bridges behind its patch ports: NORMAL
// switching may send packets out of any port, and on Neutron's bridges that is how most
// traffic crosses (br-int's table 60, br-vlan's table 0).
func (b *builder) normalPatches(patches []Patch, all map[string][]inspect.FlowRecord) {
	for _, p := range patches {
		normal := ExitID(p.Bridge, ExitNormal)
		if _, ok := b.exits[normal]; !ok {
			continue
		}
		if _, drawn := all[p.PeerBridge]; !drawn {
			continue
		}
		to := b.table(p.PeerBridge, 0, tableNames(all[p.PeerBridge])).ID
		k := edgeKey{normal, to, EdgePatch, p.Port}
		if _, ok := b.edges[k]; !ok {
			b.edges[k] = &Edge{From: normal, To: to, Kind: EdgePatch, Port: p.Port}
		}
	}
}

type edgeKey struct {
	from, to string
	kind     EdgeKind
	port     string
}

type builder struct {
	tables map[string]*Table
	exits  map[string]*Exit
	edges  map[edgeKey]*Edge
}

func (b *builder) table(bridge string, number uint8, names tableNaming) *Table {
	id := TableID(bridge, number)
	if t, ok := b.tables[id]; ok {
		return t
	}
	t := &Table{ID: id, Bridge: bridge, Number: number, Name: names.name(number)}
	b.tables[id] = t
	return t
}

func (b *builder) exit(bridge, label string) string {
	id := ExitID(bridge, label)
	if _, ok := b.exits[id]; !ok {
		b.exits[id] = &Exit{ID: id, Bridge: bridge, Label: label}
	}
	return id
}

func (b *builder) edge(from, to string, kind EdgeKind, port string, packets uint64) {
	k := edgeKey{from, to, kind, port}
	e, ok := b.edges[k]
	if !ok {
		e = &Edge{From: from, To: to, Kind: kind, Port: port}
		b.edges[k] = e
	}
	e.Flows++
	e.Packets += packets
}

// target resolves a step of a flow in table current of bridge to a node id.
func (b *builder) target(s step, bridge string, current uint8, names tableNaming, integration string, patches map[[2]string]Patch, all map[string][]inspect.FlowRecord) (id string, kind EdgeKind, port string) {
	switch s.kind {
	case stepTable:
		kind = map[string]EdgeKind{"goto_table": EdgeGoto, "resubmit": EdgeResubmit, "ct": EdgeConntrack}[s.via]
		if s.table == "" {
			return b.table(bridge, current, names).ID, kind, ""
		}
		number, ok := names.number(s.table)
		if !ok {
			return b.exit(bridge, "table "+s.table+" (unknown)"), kind, ""
		}
		return b.table(bridge, number, names).ID, kind, ""
	case stepReserved:
		return b.exit(bridge, s.via), EdgeOutput, ""
	}
	if p, ok := patches[[2]string{bridge, s.port}]; ok {
		if _, drawn := all[p.PeerBridge]; drawn {
			peer := tableNames(all[p.PeerBridge])
			return b.table(p.PeerBridge, 0, peer).ID, EdgePatch, p.Port
		}
		return b.exit(bridge, p.PeerBridge+" via "+p.Port), EdgeOutput, ""
	}
	return b.exit(bridge, portKind(s.port, bridge == integration)), EdgeOutput, ""
}

// portKind groups an output port by Neutron's device name prefixes.
func portKind(port string, onIntegration bool) string {
	switch {
	case port == "register":
		return ExitRegister
	case strings.HasPrefix(port, "tap"):
		return ExitVMPorts
	case hasAnyPrefix(port, "qr-", "qg-", "sg-", "fg-", "rfp-", "ha-"):
		return ExitRouterPorts
	case hasAnyPrefix(port, "vxlan-", "gre-", "geneve-", "stt-", "erspan-"):
		return ExitTunnels
	case onIntegration:
		return ExitOtherPorts
	}
	return ExitUplink
}

func hasAnyPrefix(s string, prefixes ...string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func (b *builder) graph() *Graph {
	bridges := map[string]*Bridge{}
	bridgeOf := func(name string) *Bridge {
		if br, ok := bridges[name]; ok {
			return br
		}
		br := &Bridge{Name: name}
		bridges[name] = br
		return br
	}
	for _, t := range b.tables {
		br := bridgeOf(t.Bridge)
		br.Tables = append(br.Tables, *t)
		br.Flows += t.Flows
		br.Packets += t.Packets
	}
	for _, e := range b.exits {
		br := bridgeOf(e.Bridge)
		br.Exits = append(br.Exits, *e)
	}
	g := &Graph{}
	for _, name := range slices.Sorted(maps.Keys(bridges)) {
		br := bridges[name]
		slices.SortFunc(br.Tables, func(x, y Table) int { return cmp.Compare(x.Number, y.Number) })
		slices.SortFunc(br.Exits, func(x, y Exit) int { return cmp.Compare(x.Label, y.Label) })
		g.Bridges = append(g.Bridges, *br)
	}
	for _, e := range b.edges {
		g.Edges = append(g.Edges, *e)
	}
	slices.SortFunc(g.Edges, func(x, y Edge) int {
		return cmp.Or(compareIDs(x.From, y.From), compareIDs(x.To, y.To), cmp.Compare(x.Kind, y.Kind), cmp.Compare(x.Port, y.Port))
	})
	return g
}

// compareIDs orders node ids by bridge, then tables by number before exits by label.
func compareIDs(x, y string) int {
	xb, xrest, _ := strings.Cut(x, "/")
	yb, yrest, _ := strings.Cut(y, "/")
	if c := cmp.Compare(xb, yb); c != 0 {
		return c
	}
	xn, xTable := strings.CutPrefix(xrest, "table/")
	yn, yTable := strings.CutPrefix(yrest, "table/")
	switch {
	case xTable && yTable:
		a, _ := strconv.Atoi(xn)
		b, _ := strconv.Atoi(yn)
		return cmp.Compare(a, b)
	case xTable:
		return -1
	case yTable:
		return 1
	}
	return cmp.Compare(xrest, yrest)
}

// tableNaming names a bridge's tables: the names its records carry, then the catalogue of
// the kind of bridge those names come from.
type tableNaming struct {
	byNumber map[uint8]string
	byName   map[string]uint8
}

// pipelines are the catalogues a bridge's tables may come from.
var pipelines = []flows.Pipeline{flows.IntegrationPipeline, flows.TunnelPipeline, flows.PhysicalPipeline}

func tableNames(records []inspect.FlowRecord) tableNaming {
	n := tableNaming{byNumber: map[uint8]string{}, byName: map[string]uint8{}}
	// The catalogue that names most of the records' tables fills in the tables that hold
	// no flow (a goto_table to an empty table).
	best, bestScore := flows.Pipeline(nil), 0
	for _, p := range pipelines {
		score := 0
		for _, r := range records {
			if t, ok := p.Lookup(r.Table); ok && t.Name == r.TableName {
				score++
			}
		}
		if score > bestScore {
			best, bestScore = p, score
		}
	}
	for _, t := range best {
		n.byNumber[t.Number] = t.Name
		n.byName[t.Name] = t.Number
	}
	for _, r := range records {
		if r.TableName != "" {
			n.byNumber[r.Table] = r.TableName
			n.byName[r.TableName] = r.Table
		}
	}
	return n
}

func (n tableNaming) name(number uint8) string { return n.byNumber[number] }

// number resolves a table as an action names it: a number or a name.
func (n tableNaming) number(table string) (uint8, bool) {
	if v, err := strconv.ParseUint(table, 10, 8); err == nil {
		return uint8(v), true
	}
	v, ok := n.byName[table]
	return v, ok
}

// String is a one-line summary, for logs and errors.
func (g *Graph) String() string {
	tables := 0
	for _, b := range g.Bridges {
		tables += len(b.Tables)
	}
	return fmt.Sprintf("%d bridges, %d tables, %d edges", len(g.Bridges), tables, len(g.Edges))
}

// InputOf is the graph input of a node read by inspect: every bridge's flow records, its
// patch ports (from the OVSDB inventory) and its integration bridge.
func InputOf(n *inspect.Node) Input {
	in := Input{Flows: make(map[string][]inspect.FlowRecord, len(n.Bridges)), IntegrationBridge: n.Config.IntegrationBridge}
	for _, br := range n.Bridges {
		in.Flows[br] = n.Records(br)
	}
	for _, p := range n.PatchPorts() {
		in.Patches = append(in.Patches, Patch{Bridge: p.Bridge, Port: p.Port, PeerBridge: p.PeerBridge, PeerPort: p.PeerPort})
	}
	return in
}
