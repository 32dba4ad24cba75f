package pipeline

import (
	"net"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/l2"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/tunnels"
)

// collisionNode is a DVR node with a tunnel bridge and a physical bridge, whose
// integration bridge is not called br-int so that l2's I1 cookie (named after "br-int", as
// Neutron's is) differs from DVR's (named after the bridge).
func collisionNode() *state.Node {
	return &state.Node{Host: state.Host{
		IntegrationBridge: "br-int-a", TunnelBridge: "br-tun", TunnelTypes: []northbound.NetworkType{northbound.VXLAN},
		PatchTun: 2, PatchInt: 1, Distributed: true, DVRMAC: net.HardwareAddr{0xfa, 0x16, 0x3f, 0, 0, 1},
		Physical: []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
	}}
}

// withKey returns the flows of fs with the given (table, priority, match).
func withKey(fs []flows.Flow, k flows.Key) []flows.Flow {
	var out []flows.Flow
	for _, f := range fs {
		if f.Key() == k {
			out = append(out, f)
		}
	}
	return out
}

// TestLaterGeneratorWinsCollisions pins the collision rule (package doc): where DVR emits
// the (table, priority, match) of an l2 or tunnels flow, the bridge keeps exactly one
// flow, DVR's — its cookie and its actions — not the earlier generator's.
func TestLaterGeneratorWinsCollisions(t *testing.T) {
	n := collisionNode()
	earlier := map[string][]flows.Flow{}
	l2.Generate(n, earlier)
	tunnels.Generate(n, earlier)
	out := Build(n)
	type version struct {
		cookie  uint64
		actions string
	}
	for _, tt := range []struct {
		name         string
		bridge       string
		key          flows.Flow // table, priority, match
		earlier, dvr version
	}{
		{"I1 canary", "br-int-a", flows.IntFlow{Table: flows.IntCanary, Priority: 0}.Flow(),
			version{flows.Cookie(flows.CategoryBaseline, "br-int"), "drop"},
			version{flows.Cookie(flows.CategoryBaseline, "br-int-a"), "drop"}},
		{"I14 drop from int-br-vlan", "br-int-a", flows.IntFlow{Table: flows.IntLocalSwitching, Priority: 2, Match: flows.Match{}.InPort(1)}.Flow(),
			version{flows.Cookie(flows.CategoryPhysicalPatch, "physnet1"), "drop"},
			version{flows.Cookie(flows.CategoryBaseline, "br-int-a"), "drop"}},
		{"T17 replaces T1", "br-tun", flows.TunFlow{Table: flows.TunLocalSwitching, Priority: 1, Match: flows.Match{}.InPort(1)}.Flow(),
			version{flows.Cookie(flows.CategoryBaseline, "br-tun"), "goto_table:2"},
			version{flows.Cookie(flows.CategoryBaseline, "br-tun"), "goto_table:1"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The collision is real: the earlier generator emits its version.
			if got := withKey(earlier[tt.bridge], tt.key.Key()); len(got) != 1 ||
				got[0].Cookie != tt.earlier.cookie || got[0].ActionsString(nil) != tt.earlier.actions {
				t.Fatalf("l2 and tunnels emit %v, want one flow with cookie %s and actions %s",
					got, flows.DescribeCookie(tt.earlier.cookie), tt.earlier.actions)
			}
			got := withKey(out[tt.bridge], tt.key.Key())
			if len(got) != 1 {
				t.Fatalf("%d flows with the key, want 1: %v", len(got), got)
			}
			if c := got[0].Cookie; c != tt.dvr.cookie {
				t.Errorf("cookie %s, want DVR's %s", flows.DescribeCookie(c), flows.DescribeCookie(tt.dvr.cookie))
			}
			if a := got[0].ActionsString(nil); a != tt.dvr.actions {
				t.Errorf("actions %s, want DVR's %s", a, tt.dvr.actions)
			}
		})
	}
}
