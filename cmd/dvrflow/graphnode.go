package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/flowgraph/scenario"
	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// graphNode is what graph and report draw: the node's flow records per bridge, the patch
// ports between its bridges and, when a topology was given, the diff.
type graphNode struct {
	name              string
	readAt            time.Time
	flows             map[string][]inspect.FlowRecord
	patches           []flowgraph.Patch
	integrationBridge string
	diff              *inspect.DiffResult
}

// loadRecords reads the node for graph and report.
//
// INTERIM (until inspect's node loader is on main): it reads only a --from-dir dump, the
// BRIDGE.flows files (`ovs-ofctl dump-flows` text; Neutron's reference format with
// "## bridge" sections and "# ofports:" lines works too) and, when present, ovsdb.json
// for the patch ports; rules, owners and the diff are left empty. Once inspect loads a
// live node or a dump into flow records with rules and owners and computes the diff, this
// function becomes a call to it plus patchesFromInventory.
func loadRecords(_ context.Context, g *globalOptions) (*graphNode, error) {
	if g.fromDir == "" {
		return nil, errors.New("graph and report read a dump for now: give --from-dir DIR (reading a live node comes with inspect's loader)")
	}
	paths, err := filepath.Glob(filepath.Join(g.fromDir, "*.flows"))
	if err != nil {
		return nil, fmt.Errorf("--from-dir: %w", err)
	}
	if len(paths) == 0 {
		return nil, fmt.Errorf("--from-dir %s: no BRIDGE.flows file", g.fromDir)
	}
	node := &graphNode{
		name:              filepath.Base(filepath.Clean(g.fromDir)),
		flows:             map[string][]inspect.FlowRecord{},
		integrationBridge: flowgraph.DefaultIntegrationBridge,
	}
	ports := map[string]map[int]string{}
	for _, path := range paths {
		dump, err := scenario.Load(path)
		if err != nil {
			return nil, fmt.Errorf("--from-dir: %w", err)
		}
		for bridge, records := range dump.Flows {
			node.flows[bridge] = append(node.flows[bridge], records...)
		}
		maps.Copy(ports, dump.Ports)
		if info, err := os.Stat(path); err == nil && info.ModTime().After(node.readAt) {
			node.readAt = info.ModTime().UTC()
		}
	}
	node.patches = scenario.NeutronPatches(ports)
	inventoryPath := filepath.Join(g.fromDir, "ovsdb.json")
	if f, err := os.Open(inventoryPath); err == nil {
		defer f.Close()
		inv, err := ovsdb.ParseInventoryDump(f)
		if err != nil {
			return nil, fmt.Errorf("--from-dir %s: %w", inventoryPath, err)
		}
		node.patches = patchesFromInventory(inv)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("--from-dir: %w", err)
	}
	return node, nil
}

// patchesFromInventory lists the patch ports of the switch: interfaces of type patch and
// their options:peer, on the bridge that holds the peer.
func patchesFromInventory(inv *ovsdb.Inventory) []flowgraph.Patch {
	bridgeOf := map[string]string{} // port name → bridge
	for _, b := range inv.Bridges {
		for _, p := range b.Ports {
			bridgeOf[p.Name] = b.Name
		}
	}
	var out []flowgraph.Patch
	for _, b := range inv.Bridges {
		for _, p := range b.Ports {
			peer := p.Options["peer"]
			if p.Type != "patch" || peer == "" || bridgeOf[peer] == "" {
				continue
			}
			out = append(out, flowgraph.Patch{Bridge: b.Name, Port: p.Name, PeerBridge: bridgeOf[peer], PeerPort: peer})
		}
	}
	slices.SortFunc(out, func(a, b flowgraph.Patch) int {
		return strings.Compare(a.Bridge+"\x00"+a.Port, b.Bridge+"\x00"+b.Port)
	})
	return out
}
