// Package scenario reads Neutron's reference scenarios (testdata/neutron/scenarios) as the
// CLI reads a node, for the tests of the CLI's packages. It is harness: the product never
// imports it.
package scenario

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// Node is a node holding the flows Neutron's own agent installed for scenario name
// of dir (testdata/neutron/scenarios), read as the CLI reads a node: with the scenario's
// topology, its OVSDB inventory (testbed.ScenarioInventory) and the reference dump, each bridge's
// flows given a random-looking cookie as Neutron's agent does (the same on every call, so
// that outputs can be compared with golden files).
func Node(dir, name string) (*inspect.Node, error) {
	topo, err := topology.Load(filepath.Join(dir, name+".json"))
	if err != nil {
		return nil, err
	}
	ref, err := testbed.ParseReference(filepath.Join(dir, name+".flows"))
	if err != nil {
		return nil, err
	}
	inv, err := testbed.ScenarioInventory(ref, topo)
	if err != nil {
		return nil, err
	}
	snap := topo.Snapshot()
	cfg := config.DefaultConfig()
	cfg.ApplyHost(snap.Host)
	dumps := map[string][]byte{}
	random := rand.New(rand.NewPCG(uint64(len(name)), 0x6e657574726f6e)) // "neutron"
	for _, br := range ref.Order {
		cookie := fmt.Sprintf("cookie=%#x", random.Uint64()>>1)
		dumps[br] = []byte(strings.ReplaceAll(strings.Join(ref.Bridges[br].Lines, "\n"), "cookie=COOKIE", cookie))
	}
	return inspect.NewNode(cfg, snap, inv, dumps)
}
