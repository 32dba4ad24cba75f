// Package dvr generates the flows of Neutron's Distributed Virtual Routing on br-int, the
// physical bridges and br-tun (neutron-pipeline.md §2.9). Pure: state in, flows out.
package dvr

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// Generate appends the DVR flows of the node to out (bridge name → flows).
func Generate(n *state.Node, out map[string][]flows.Flow) {}
