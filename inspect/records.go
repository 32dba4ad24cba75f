// Package inspect reads a node without writing to it: its bridges' flows (live through the
// management sockets, or a dump in a directory), its OVSDB inventory and its topology, and
// turns them into the records the CLI prints: every flow with its rule and owner, and the
// difference between what dvrflow would install and what the switch holds.
package inspect

import (
	"github.com/dvrflow/dvrflow/explain"
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
