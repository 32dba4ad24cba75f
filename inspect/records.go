// Package inspect reads a node without writing to it: its bridges' flows (live through the
// management sockets, or a dump in a directory), its OVSDB inventory and its topology, and
// turns them into the records the CLI prints: every flow with its rule and owner, and the
// difference between what dvrflow would install and what the switch holds.
package inspect

import (
	"fmt"
	"maps"
	"slices"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
)

// FlowRecord is one flow as `dvrflow flows -o json` prints it (the interface scripts rely
// on; see docs/cli.md).
type FlowRecord struct {
	Bridge    string `json:"bridge"`
	Table     uint8  `json:"table"`
	TableName string `json:"table_name"`
	Priority  uint16 `json:"priority"`
	// Match is ovs-ofctl's text without priority=; Actions ovs-ofctl's text, with ports and
	// tables by name.
	Match   string `json:"match"`
	Actions string `json:"actions"`
	// Cookie is the cookie in hex ("0xd7f1040000000001").
	Cookie  string `json:"cookie"`
	Packets uint64 `json:"packets"`
	Bytes   uint64 `json:"bytes"`
	// Rule is the pipeline rule id, "" when the flow matches no known rule.
	Rule  string         `json:"rule"`
	Owner *explain.Owner `json:"owner"`
}

// DiffResult is what `dvrflow diff -o json` prints.
type DiffResult struct {
	// Source says what the switch was compared with: "topology" (computed from the config
	// and topology by the agent's code) or "agent" (the running agent's desired flows).
	Source  string       `json:"source"`
	Equal   bool         `json:"equal"`
	Missing []FlowRecord `json:"missing"`
	Extra   []FlowRecord `json:"extra"`
	Changed []Change     `json:"changed"`
}

// Change is a flow whose key (bridge, table, priority, match) is installed with other
// actions than desired.
type Change struct {
	Desired   FlowRecord `json:"desired"`
	Installed FlowRecord `json:"installed"`
}

// tableRef is a pipeline table's number and name.
type tableRef struct {
	number uint8
	name   string
}

// pipelineTableNames are the pipeline's table names for the bridge's role in cfg.
func pipelineTableNames(cfg *config.Config, br string) []tableRef {
	var p flows.Pipeline
	switch {
	case br == cfg.IntegrationBridge:
		p = flows.IntegrationPipeline
	case br == cfg.TunnelBridge:
		p = flows.TunnelPipeline
	case slices.Contains(slices.Collect(maps.Values(cfg.BridgeMappings)), br):
		p = flows.PhysicalPipeline
	}
	out := make([]tableRef, len(p))
	for i, t := range p {
		out[i] = tableRef{t.Number, t.Name}
	}
	return out
}

// Records returns a bridge's installed flows as records: names as ovs-ofctl --names prints
// them, table name, counters, rule and owner.
func (n *Node) Records(br string) []FlowRecord {
	fs := n.Flows[br]
	out := make([]FlowRecord, 0, len(fs))
	for i := range fs {
		out = append(out, n.record(br, &fs[i]))
	}
	return out
}

// record explains a canonical flow and renders it with names.
func (n *Node) record(br string, f *dumptext.Flow) FlowRecord {
	ex := n.Explainer.Explain(br, f)
	named := *f
	named.Match = slices.Clone(f.Match)
	named.Actions = slices.Clone(f.Actions)
	n.refNames(br).named(&named)
	tableName := ex.TableName
	if name, ok := n.refNames(br).tableName[f.Table]; ok {
		tableName = name
	}
	return FlowRecord{
		Bridge: br, Table: f.Table, TableName: tableName, Priority: f.Priority,
		Match: named.MatchText(), Actions: named.ActionsText(), Cookie: fmt.Sprintf("%#x", f.Cookie),
		Packets: f.Packets, Bytes: f.Bytes, Rule: ex.Rule, Owner: ex.Owner,
	}
}
