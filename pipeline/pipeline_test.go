package pipeline

import (
	"net"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

func TestLastWinsKeepsTheLaterFlowOfAKey(t *testing.T) {
	m := flows.Match{}.InPort(1)
	first := flows.Flow{Table: 0, Priority: 1, Match: m, Actions: []flows.Action{flows.GotoTable{Table: 2}}}
	later := flows.Flow{Table: 0, Priority: 1, Match: m, Actions: []flows.Action{flows.GotoTable{Table: 1}}}
	other := flows.Flow{Table: 0, Priority: 0}
	got := lastWins([]flows.Flow{first, other, later})
	if len(got) != 2 {
		t.Fatalf("got %d flows, want 2: %v", len(got), got)
	}
	if got[0].String() != later.String() {
		t.Errorf("kept %s, want the later %s", got[0], later)
	}
}

func TestBuildCoversEveryBridgeAndReplacesT1WithDVR(t *testing.T) {
	n := &state.Node{Host: state.Host{
		IntegrationBridge: "br-int", TunnelBridge: "br-tun", TunnelTypes: []northbound.NetworkType{northbound.VXLAN},
		PatchTun: 2, PatchInt: 1, Distributed: true, DVRMAC: net.HardwareAddr{0xfa, 0x16, 0x3f, 0, 0, 1},
		Physical: []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
	}}
	out := Build(n)
	for _, br := range []string{"br-int", "br-tun", "br-vlan"} {
		if len(out[br]) == 0 {
			t.Errorf("bridge %s has no flows", br)
		}
	}
	for _, f := range out["br-tun"] {
		if f.Table == 0 && f.Priority == 1 && f.Match.InPortValue() == 1 {
			if got := f.ActionsString(nil); got != "goto_table:1" {
				t.Errorf("br-tun patch-int flow: %s, want DVR's goto_table:1 (T17 replaces T1)", got)
			}
			return
		}
	}
	t.Error("br-tun has no flow for in_port=patch-int")
}
