// Package tunnels generates br-tun's pipeline: VXLAN, GRE and Geneve tunnels, flooding,
// learning, l2population and the ARP responder (neutron-pipeline.md §2.3, §2.4, §2.7, §2.8).
// Pure: state in, flows out.
package tunnels

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// Generate appends br-tun's flows for the node to out (bridge name → flows).
func Generate(n *state.Node, out map[string][]flows.Flow) {}
