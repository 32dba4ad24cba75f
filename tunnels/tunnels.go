// Package tunnels generates br-tun's pipeline: VXLAN, GRE and Geneve tunnels, flooding,
// learning, l2population and the ARP responder (neutron-pipeline.md §2.3, §2.4, §2.7, §2.8),
// and names and configures the tunnel ports (§4.3). Pure: state in, flows out.
//
// The DVR flows of br-tun (tables 1 and 9, the gateway drops in table 22, and T17 which
// replaces T1) belong to package dvr.
package tunnels

import (
	"bytes"
	"cmp"
	"net"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

var (
	macZero      = net.HardwareAddr{0, 0, 0, 0, 0, 0}
	macBroadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}
	macMulticast = net.HardwareAddr{1, 0, 0, 0, 0, 0} // the group bit, as value and as mask
)

// learnedTimeout is the hard timeout of the flows T7 learns into table 20 (T15).
const learnedTimeout = 300

// Generate appends br-tun's flows for the node to out[n.Host.TunnelBridge]: the baseline
// (T1–T10), a classifier per tunnel port (T11), per tunnelled network its key → local VLAN
// flow (T12) and flooding flow (T13), and with l2population the unicast (T14) and ARP
// responder (T16) flows of the FDB. Tunnel ports without an ofport are skipped, and so is
// everything that would output to them.
func Generate(n *state.Node, out map[string][]flows.Flow) {
	br := n.Host.TunnelBridge
	fs := Baseline(br, n.Host.PatchInt, n.Host.ARPResponder)
	ports := readyPorts(n.TunnelPorts)
	for _, p := range ports {
		fs = append(fs, tunnelPortFlow(p))
	}
	for i := range n.Networks {
		nw := &n.Networks[i]
		if !nw.Tunnelled() || nw.LocalVLAN == 0 {
			continue
		}
		fs = append(fs, localVLANFlow(nw, n.Host.DVR()))
		if f, ok := floodFlow(nw, floodPorts(n, nw, ports)); ok {
			fs = append(fs, f)
		}
	}
	if n.Host.L2Population {
		fs = append(fs, l2popFlows(n, ports)...)
	}
	tun := out[br]
	flows.TunTarget(&tun).Add(fs...)
	out[br] = tun
}

// Baseline returns br-tun's default flows (Neutron's setup_default_table, T1–T10): from
// patch-int to table 2 (T1), default drop (T2), ARP broadcasts to the responder (T3, only
// with arpResponder), unicast to 20 and multicast to 22 (T4, T5), drops in every tunnel
// type's table (T6), learning and output to patch-int (T7), unknown unicast flooded (T8),
// responder misses flooded (T9, only with arpResponder), and table 22's default drop (T10).
// Without a patch-int ofport, T1 and T7 are left out.
func Baseline(bridge string, patchInt uint32, arpResponder bool) []flows.TunFlow {
	c := flows.Cookie(flows.CategoryBaseline, bridge)
	flow := func(table flows.TunTable, prio uint16, m flows.Match, acts ...flows.Action) flows.TunFlow {
		return flows.TunFlow{Table: table, Priority: prio, Cookie: c, Match: m, Actions: acts}
	}
	goTo := flows.Goto[flows.TunTable]
	var fs []flows.TunFlow
	if patchInt != 0 {
		fs = append(fs, flow(flows.TunLocalSwitching, 1, flows.Match{}.InPort(patchInt), goTo(flows.TunPatchLVToTun)))
	}
	fs = append(fs, flow(flows.TunLocalSwitching, 0, flows.Match{}))
	if arpResponder {
		fs = append(fs, flow(flows.TunPatchLVToTun, 1, flows.Match{}.ARP().EthDst(macBroadcast), goTo(flows.TunARPResponder)))
	}
	fs = append(fs,
		flow(flows.TunPatchLVToTun, 0, flows.Match{}.EthDstMasked(macZero, macMulticast), goTo(flows.TunUcastToTun)),
		flow(flows.TunPatchLVToTun, 0, flows.Match{}.EthDstMasked(macMulticast, macMulticast), goTo(flows.TunFloodToTun)),
	)
	for _, t := range northbound.TunnelTypes() {
		table, _ := tunnelTable(t)
		fs = append(fs, flow(table, 0, flows.Match{}))
	}
	if patchInt != 0 {
		fs = append(fs, flow(flows.TunLearnFromTun, 1, flows.Match{}, learnFromTunnel(c), flows.Output{Port: patchInt}))
	}
	fs = append(fs, flow(flows.TunUcastToTun, 0, flows.Match{}, goTo(flows.TunFloodToTun)))
	if arpResponder {
		fs = append(fs, flow(flows.TunARPResponder, 0, flows.Match{}, goTo(flows.TunFloodToTun)))
	}
	return append(fs, flow(flows.TunFloodToTun, 0, flows.Match{}))
}

// learnFromTunnel is T7's learn action: a table-20 flow (T15) that sends frames for the
// packet's source MAC, in its VLAN, untagged with its tunnel key out of the tunnel port it
// came from. The learned flows carry the baseline cookie, as Neutron's carry the bridge's.
func learnFromTunnel(cookie uint64) flows.Action {
	vid := flows.Subfield{Field: flows.FieldVLANTCI, Bits: 12}
	return flows.Learn{
		Table: uint8(flows.TunUcastToTun), HardTimeout: learnedTimeout, Priority: 1, Cookie: cookie,
		Specs: []flows.LearnSpec{
			{Kind: flows.LearnMatch, Dst: vid, Src: vid},
			{Kind: flows.LearnMatch, Dst: flows.Whole(flows.FieldEthDst), Src: flows.Whole(flows.FieldEthSrc)},
			{Kind: flows.LearnLoad, Dst: flows.Whole(flows.FieldVLANTCI), Value: []byte{0, 0}},
			{Kind: flows.LearnLoad, Dst: flows.Whole(flows.FieldTunnelID), Src: flows.Whole(flows.FieldTunnelID)},
			{Kind: flows.LearnOutput, Src: flows.Whole(flows.FieldInPort)},
		},
	}
}

// readyPorts returns the tunnel ports with an ofport and a known tunnel type, in ofport
// order.
func readyPorts(ports []state.TunnelPort) []state.TunnelPort {
	var out []state.TunnelPort
	for _, p := range ports {
		if _, ok := tunnelTable(p.Type); ok && p.OFPort != 0 {
			out = append(out, p)
		}
	}
	return out
}

// tunnelPortFlow is T11: frames from a tunnel port go to its type's table.
func tunnelPortFlow(p state.TunnelPort) flows.TunFlow {
	table, _ := tunnelTable(p.Type)
	return flows.TunFlow{
		Table: flows.TunLocalSwitching, Priority: 1, Cookie: flows.Cookie(flows.CategoryTunnelPort, p.Name),
		Match: flows.Match{}.InPort(p.OFPort), Actions: []flows.Action{flows.Goto(table)},
	}
}

// localVLANFlow is T12: frames with the network's key get its local VLAN and go to learning
// (table 10), or with DVR first to the DVR MAC check (table 9).
func localVLANFlow(nw *state.Network, dvr bool) flows.TunFlow {
	table, _ := tunnelTable(nw.Type)
	next := flows.TunLearnFromTun
	if dvr {
		next = flows.TunDVRNotLearn
	}
	return flows.TunFlow{
		Table: table, Priority: 1, Cookie: flows.Cookie(flows.CategoryLocalVLAN, nw.ID),
		Match:   flows.Match{}.TunnelID(uint64(nw.SegmentationID)),
		Actions: []flows.Action{flows.PushVLAN{}, flows.SetVLANVID(nw.LocalVLAN), flows.Goto(next)},
	}
}

// floodPorts returns the ofports a network floods to, ordered by remote IP. Without
// l2population that is every tunnel port of the network's type (Neutron's full mesh); with
// it, the ports of the network's type towards the VTEPs whose FDB has the flooding entry.
//
// Neutron lists them by ofport, which follows the order it happened to create the ports
// in; dvrflow creates a reconcile's new tunnel ports in one OVSDB transaction, where
// ovs-vswitchd numbers them in no set order, so it orders them by the peer's address: the
// same set of outputs, and the same flow on every start (docs/neutron-differences.md).
func floodPorts(n *state.Node, nw *state.Network, ports []state.TunnelPort) []uint32 {
	var peers []state.TunnelPort
	if !n.Host.L2Population {
		for _, p := range ports {
			if p.Type == nw.Type {
				peers = append(peers, p)
			}
		}
	} else {
		for _, f := range n.FDB {
			if f.NetworkID != nw.ID || !f.Flood || f.RemoteIP == n.Host.LocalIP {
				continue
			}
			if p, ok := portTo(ports, nw.Type, f.RemoteIP); ok {
				peers = append(peers, p)
			}
		}
	}
	slices.SortFunc(peers, func(a, b state.TunnelPort) int {
		return cmp.Or(a.RemoteIP.Compare(b.RemoteIP), cmp.Compare(a.OFPort, b.OFPort))
	})
	out := make([]uint32, 0, len(peers))
	for _, p := range peers {
		if !slices.Contains(out, p.OFPort) {
			out = append(out, p.OFPort)
		}
	}
	return out
}

// floodFlow is T13: broadcast, multicast and unknown unicast of the network's local VLAN
// leave untagged with its key through every port given. There is none without ports.
func floodFlow(nw *state.Network, ofports []uint32) (flows.TunFlow, bool) {
	if len(ofports) == 0 {
		return flows.TunFlow{}, false
	}
	acts := []flows.Action{flows.PopVLAN{}, flows.SetTunnelID(uint64(nw.SegmentationID))}
	for _, p := range ofports {
		acts = append(acts, flows.Output{Port: p})
	}
	return flows.TunFlow{
		Table: flows.TunFloodToTun, Priority: 1, Cookie: flows.Cookie(flows.CategoryFlood, nw.ID),
		Match: flows.Match{}.VLAN(nw.LocalVLAN), Actions: acts,
	}, true
}

// l2popFlows returns the unicast (T14) and ARP responder (T16) flows of the FDB's entries on
// provisioned networks whose VTEP has a tunnel port of the network's type. Entries of this
// host's own VTEP are ignored, as Neutron does. A MAC listed with several addresses (entries
// are sorted by MAC) gives one unicast flow; a MAC or IP listed under two VTEPs gives two
// flows with the same match, of which pipeline.Build keeps the later, as Neutron's later
// OpenFlow ADD would.
func l2popFlows(n *state.Node, ports []state.TunnelPort) []flows.TunFlow {
	var fs []flows.TunFlow
	for _, fdb := range n.FDB {
		nw, ok := n.Network(fdb.NetworkID)
		if !ok || !nw.Tunnelled() || nw.LocalVLAN == 0 || fdb.RemoteIP == n.Host.LocalIP {
			continue
		}
		port, ok := portTo(ports, nw.Type, fdb.RemoteIP)
		if !ok {
			continue
		}
		for i, e := range fdb.Entries {
			if i == 0 || !bytes.Equal(e.MAC, fdb.Entries[i-1].MAC) {
				fs = append(fs, unicastFlow(nw, e.MAC, port.OFPort))
			}
			if n.Host.ARPResponder && e.IP.Unmap().Is4() {
				fs = append(fs, arpResponderFlow(nw, e))
			}
		}
	}
	return fs
}

// unicastFlow is T14: frames to a remote MAC leave untagged with the network's key through
// the tunnel port of its VTEP.
func unicastFlow(nw *state.Network, mac net.HardwareAddr, ofport uint32) flows.TunFlow {
	return flows.TunFlow{
		Table: flows.TunUcastToTun, Priority: 2, Cookie: flows.Cookie(flows.CategoryL2popUnicast, nw.ID+"/"+mac.String()),
		Match:   flows.Match{}.VLAN(nw.LocalVLAN).EthDst(mac),
		Actions: []flows.Action{flows.PopVLAN{}, flows.SetTunnelID(uint64(nw.SegmentationID)), flows.Output{Port: ofport}},
	}
}

// arpResponderFlow is T16: an ARP for a remote IPv4 address is turned into the reply in place
// (opcode 2, sender and target swapped, the remote MAC as sender) and sent back out of the
// port it came from, so it never crosses the overlay. Like Neutron's, it does not match the
// ARP opcode (§7.10).
func arpResponderFlow(nw *state.Network, e state.FDBEntry) flows.TunFlow {
	ip := e.IP.Unmap()
	return flows.TunFlow{
		Table: flows.TunARPResponder, Priority: 1, Cookie: flows.Cookie(flows.CategoryARPResponder, nw.ID+"/"+ip.String()),
		Match: flows.Match{}.ARP().VLAN(nw.LocalVLAN).ARPTPA(netip.PrefixFrom(ip, 32)),
		Actions: []flows.Action{
			flows.SetARPOp(2),
			flows.Move{Src: flows.Whole(flows.FieldARPSHA), Dst: flows.Whole(flows.FieldARPTHA)},
			flows.Move{Src: flows.Whole(flows.FieldARPSPA), Dst: flows.Whole(flows.FieldARPTPA)},
			flows.SetARPSHA(e.MAC),
			flows.SetARPSPA(ip),
			flows.Move{Src: flows.Whole(flows.FieldEthSrc), Dst: flows.Whole(flows.FieldEthDst)},
			flows.SetEthSrc(e.MAC),
			flows.InPort(),
		},
	}
}

// portTo returns the ready tunnel port of the given type towards remoteIP.
func portTo(ports []state.TunnelPort, tunnelType northbound.NetworkType, remoteIP netip.Addr) (state.TunnelPort, bool) {
	for _, p := range ports {
		if p.Type == tunnelType && p.RemoteIP == remoteIP {
			return p, true
		}
	}
	return state.TunnelPort{}, false
}
