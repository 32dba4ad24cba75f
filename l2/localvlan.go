package l2

import (
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// LocalVLAN returns the translation between a flat or vlan network's local VLAN and the
// wire (Neutron's provision_local_vlan, §2.4) for the physical bridge p of its physnet:
//
//	I15 (vlan)  br-int table 0 prio 3  in_port=INT_OF,dl_vlan=SEG → mod_vlan_vid:LVID, goto 59
//	I16 (flat)  br-int table 0 prio 3  in_port=INT_OF,untagged    → push_vlan, mod_vlan_vid:LVID, goto 59
//	P3 (vlan)   phys table 0|2 prio 4  in_port=PHY_OF,dl_vlan=LVID → mod_vlan_vid:SEG, NORMAL
//	P3 (flat)   phys table 0|2 prio 4  in_port=PHY_OF,dl_vlan=LVID → strip_vlan, NORMAL
//
// P3 sits in table 2 when distributed routing is configured, else in table 0. Other network
// types, a local VLAN or segmentation id outside 1–4094, and patch ports with ofport 0 give
// no flows. The caller checks that p is nw's physnet.
func LocalVLAN(nw state.Network, p PhysicalBridge, distributed bool) (integration []flows.IntFlow, physical []flows.PhysFlow) {
	lvid := nw.LocalVLAN
	if lvid == 0 || lvid >= DeadVLAN {
		return nil, nil
	}
	c := flows.Cookie(flows.CategoryLocalVLAN, nw.ID)
	var ingress flows.Match
	var toLocal, toWire []flows.Action
	switch nw.Type {
	case northbound.VLAN:
		if nw.SegmentationID < 1 || nw.SegmentationID >= DeadVLAN {
			return nil, nil
		}
		seg := uint16(nw.SegmentationID)
		ingress = flows.Match{}.InPort(p.IntPort).VLAN(seg)
		toLocal = []flows.Action{flows.SetVLANVID(lvid), flows.Goto(flows.IntPacketRateLimit)}
		toWire = []flows.Action{flows.SetVLANVID(seg), flows.Normal()}
	case northbound.Flat:
		ingress = flows.Match{}.InPort(p.IntPort).Untagged()
		toLocal = []flows.Action{flows.PushVLAN{}, flows.SetVLANVID(lvid), flows.Goto(flows.IntPacketRateLimit)}
		toWire = []flows.Action{flows.PopVLAN{}, flows.Normal()}
	default:
		return nil, nil
	}
	if p.IntPort != 0 {
		integration = []flows.IntFlow{{Table: flows.IntLocalSwitching, Priority: 3, Cookie: c, Match: ingress, Actions: toLocal}}
	}
	if p.PhyPort != 0 {
		table := flows.PhysLocalSwitching
		if distributed {
			table = flows.PhysLocalVLANTranslation
		}
		physical = []flows.PhysFlow{{Table: table, Priority: 4, Cookie: c, Match: flows.Match{}.InPort(p.PhyPort).VLAN(lvid), Actions: toWire}}
	}
	return integration, physical
}
