package tunnels

import (
	"flag"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

var (
	ip12, ip13, ip14 = netip.MustParseAddr("192.168.100.12"), netip.MustParseAddr("192.168.100.13"), netip.MustParseAddr("192.168.100.14")
	ip6a, ip6b       = netip.MustParseAddr("fd00::12"), netip.MustParseAddr("fd00::13")
)

// tport is a tunnel port named as Neutron names it.
func tport(typ northbound.NetworkType, remote netip.Addr, ofport uint32) state.TunnelPort {
	return state.TunnelPort{Name: PortName(typ, remote), Type: typ, RemoteIP: remote, OFPort: ofport}
}

func host(types []northbound.NetworkType, l2pop, arpResponder bool) state.Host {
	return state.Host{
		Name: "compute1", AgentMode: "legacy", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
		TunnelTypes: types, LocalIP: netip.MustParseAddr("192.168.100.11"), PatchTun: 1, PatchInt: 1,
		L2Population: l2pop, ARPResponder: arpResponder,
	}
}

// goldenNodes are the derived cases: each is checked against testdata/NAME.golden, which
// -update rewrites from the generator (review the diff: they are derived from the rules, not
// from Neutron's own dump).
var goldenNodes = map[string]func() *state.Node{
	// GRE and Geneve without l2population: tables 3 and 6, full-mesh flooding per type over
	// the ready ports (the Geneve port without an ofport is left out), the FDB ignored, no
	// ARP responder; a vlan network and one without a local VLAN get nothing.
	"gre_geneve_full_mesh": func() *state.Node {
		return &state.Node{
			Host: host([]northbound.NetworkType{northbound.GRE, northbound.Geneve}, false, false),
			Networks: []state.Network{
				{ID: "net-gre", Type: northbound.GRE, SegmentationID: 0x10001, LocalVLAN: 1},
				{ID: "net-geneve", Type: northbound.Geneve, SegmentationID: 5000, LocalVLAN: 2},
				{ID: "net-gre-2", Type: northbound.GRE, SegmentationID: 77, LocalVLAN: 3},
				{ID: "net-vlan", Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 100, LocalVLAN: 4},
				{ID: "net-unprovisioned", Type: northbound.GRE, SegmentationID: 78},
			},
			TunnelPorts: []state.TunnelPort{
				tport(northbound.GRE, ip12, 0), // not ready yet
				tport(northbound.GRE, ip13, 2), tport(northbound.GRE, ip14, 3),
				tport(northbound.Geneve, ip12, 4), tport(northbound.Geneve, ip13, 5),
			},
			FDB: []state.FDB{{NetworkID: "net-gre", RemoteIP: ip13, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:00:01", "10.0.0.1")}}},
		}
	},
	// VXLAN with l2population but arp_responder off: no T3/T9/T16; floods only to VTEPs
	// with the flooding entry and a tunnel port; unicast also to a VTEP without flooding; a
	// MAC listed with an IPv4 and an IPv6 address gives one unicast flow; entries of a VTEP
	// without a tunnel port, of this host's own VTEP and of unknown networks are ignored; a
	// network whose flooding list is empty has no T13.
	"vxlan_l2pop_no_arp_responder": func() *state.Node {
		return &state.Node{
			Host: host([]northbound.NetworkType{northbound.VXLAN}, true, false),
			Networks: []state.Network{
				{ID: "net-a", Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 1},
				{ID: "net-b", Type: northbound.VXLAN, SegmentationID: 1002, LocalVLAN: 2},
			},
			TunnelPorts: []state.TunnelPort{tport(northbound.VXLAN, ip12, 2), tport(northbound.VXLAN, ip13, 3)},
			FDB: []state.FDB{
				{NetworkID: "net-a", RemoteIP: ip12, Flood: true, Entries: []state.FDBEntry{
					entry("fa:16:3e:00:0a:12", "10.0.0.12"), entry("fa:16:3e:00:0a:12", "fd00:a::12")}},
				{NetworkID: "net-a", RemoteIP: ip13, Entries: []state.FDBEntry{entry("fa:16:3e:00:0a:13", "")}},
				{NetworkID: "net-a", RemoteIP: ip14, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:0a:14", "10.0.0.14")}},
				{NetworkID: "net-a", RemoteIP: netip.MustParseAddr("192.168.100.11"), Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:0a:11", "10.0.0.11")}},
				{NetworkID: "net-b", RemoteIP: ip13, Entries: []state.FDBEntry{entry("fa:16:3e:00:0b:13", "10.0.1.13")}},
				{NetworkID: "net-unknown", RemoteIP: ip12, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:0c:12", "10.0.2.12")}},
			},
		}
	},
	// DVR over an IPv6 underlay with l2population and the ARP responder: T12 continues in
	// table 9, the ARP responder answers IPv4 entries only, tunnel ports carry IPv6 names.
	"dvr_ipv6_underlay": func() *state.Node {
		n := &state.Node{
			Host: host([]northbound.NetworkType{northbound.VXLAN}, true, true),
			Networks: []state.Network{
				{ID: "net-a", Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 1},
			},
			TunnelPorts: []state.TunnelPort{tport(northbound.VXLAN, ip6a, 2), tport(northbound.VXLAN, ip6b, 3)},
			FDB: []state.FDB{
				{NetworkID: "net-a", RemoteIP: ip6a, Flood: true, Entries: []state.FDBEntry{
					entry("fa:16:3e:00:0a:12", "10.0.0.12"), entry("fa:16:3e:00:0a:12", "fd00:a::12")}},
				{NetworkID: "net-a", RemoteIP: ip6b, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:0a:13", "fd00:a::13")}},
			},
		}
		n.Host.AgentMode, n.Host.Distributed, n.Host.DVRMAC = "dvr", true, mustMAC("fa:16:3f:00:00:01")
		n.Host.LocalIP = netip.MustParseAddr("fd00::11")
		return n
	},
}

// describe renders flows one per line, sorted as the reference dumps are (table, priority
// descending, text), each prefixed with its cookie's category; cookie values are blanked.
func describe(fs []flows.Flow) string {
	type line struct {
		flow flows.Flow
		text string
	}
	lines := make([]line, len(fs))
	for i, f := range fs {
		text := strings.TrimPrefix(ourCookie.ReplaceAllString(f.String(), "cookie=COOKIE"), "cookie=COOKIE, ")
		lines[i] = line{f, text}
	}
	slices.SortFunc(lines, func(a, b line) int {
		if a.flow.Table != b.flow.Table {
			return int(a.flow.Table) - int(b.flow.Table)
		}
		if a.flow.Priority != b.flow.Priority {
			return int(b.flow.Priority) - int(a.flow.Priority)
		}
		return strings.Compare(a.text, b.text)
	})
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(flows.CookieCategory(l.flow.Cookie).String() + "\t" + l.text + "\n")
	}
	return b.String()
}

func TestDerivedGolden(t *testing.T) {
	for _, name := range slices.Sorted(maps.Keys(goldenNodes)) {
		t.Run(name, func(t *testing.T) {
			out := map[string][]flows.Flow{}
			Generate(goldenNodes[name](), out)
			for _, f := range out["br-tun"] {
				if !flows.IsOurs(f.Cookie) {
					t.Errorf("flow without our cookie: %s", f)
				}
			}
			got := describe(out["br-tun"])
			path := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create): %v", err)
			}
			if got != string(want) {
				t.Errorf("br-tun changed (rerun with -update if intended):\n%s",
					lineDiff(strings.Split(string(want), "\n"), strings.Split(got, "\n")))
			}
		})
	}
}

// l2popNode has two networks and two VTEPs, every VTEP flooding and answering ARP.
func l2popNode() *state.Node {
	n := goldenNodes["vxlan_l2pop_no_arp_responder"]()
	n.Host.ARPResponder = true
	n.FDB = []state.FDB{
		{NetworkID: "net-a", RemoteIP: ip12, Flood: true, Entries: []state.FDBEntry{
			entry("fa:16:3e:00:0a:12", "10.0.0.12"), entry("fa:16:3e:00:0a:22", "10.0.0.22")}},
		{NetworkID: "net-a", RemoteIP: ip13, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:0a:13", "10.0.0.13")}},
		{NetworkID: "net-b", RemoteIP: ip13, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:00:0b:13", "10.0.1.13")}},
	}
	return n
}

// TestRemovingFDBRemovesOnlyItsFlows: taking an entry out of the FDB removes exactly that
// entry's flows (and rewrites the network's flooding flow when a VTEP stops flooding);
// nothing else changes.
func TestRemovingFDBRemovesOnlyItsFlows(t *testing.T) {
	tests := []struct {
		name     string
		change   func(n *state.Node)
		removed  []string
		modified []string // the flows whose actions changed, as they are after the change
	}{
		{
			name:   "one unicast entry",
			change: func(n *state.Node) { n.FDB[0].Entries = n.FDB[0].Entries[:1] },
			removed: []string{
				"table=20, priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:0a:22 actions=pop_vlan,set_field:0x3e9->tun_id,output:2",
				"table=21, priority=1,arp,dl_vlan=1,arp_tpa=10.0.0.22 actions=set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:fa:16:3e:00:0a:22->arp_sha,set_field:10.0.0.22->arp_spa,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:fa:16:3e:00:0a:22->eth_src,IN_PORT",
			},
		},
		{
			name:   "a VTEP of a network",
			change: func(n *state.Node) { n.FDB = slices.Delete(n.FDB, 1, 2) },
			removed: []string{
				"table=20, priority=2,dl_vlan=1,dl_dst=fa:16:3e:00:0a:13 actions=pop_vlan,set_field:0x3e9->tun_id,output:3",
				"table=21, priority=1,arp,dl_vlan=1,arp_tpa=10.0.0.13 actions=set_field:2->arp_op,move:NXM_NX_ARP_SHA[]->NXM_NX_ARP_THA[],move:NXM_OF_ARP_SPA[]->NXM_OF_ARP_TPA[],set_field:fa:16:3e:00:0a:13->arp_sha,set_field:10.0.0.13->arp_spa,move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],set_field:fa:16:3e:00:0a:13->eth_src,IN_PORT",
			},
			modified: []string{"table=22, priority=1,dl_vlan=1 actions=pop_vlan,set_field:0x3e9->tun_id,output:2"},
		},
		{
			name:    "the last flooding VTEP of a network",
			change:  func(n *state.Node) { n.FDB[2].Flood = false },
			removed: []string{"table=22, priority=1,dl_vlan=2 actions=pop_vlan,set_field:0x3ea->tun_id,output:3"},
		},
	}
	render := func(f flows.Flow) string { f.Cookie = 0; return f.String() }
	byKey := func(n *state.Node) map[flows.Key]flows.Flow {
		out := map[string][]flows.Flow{}
		Generate(n, out)
		m := map[flows.Key]flows.Flow{}
		for _, f := range out["br-tun"] {
			m[f.Key()] = f
		}
		return m
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := byKey(l2popNode())
			n := l2popNode()
			tt.change(n)
			after := byKey(n)
			var removed, modified []string
			for k, f := range before {
				g, ok := after[k]
				switch {
				case !ok:
					removed = append(removed, render(f))
				case render(g) != render(f) || g.Cookie != f.Cookie:
					modified = append(modified, render(g))
				}
			}
			for k, g := range after {
				if _, ok := before[k]; !ok {
					t.Errorf("flow added: %s", render(g))
				}
			}
			slices.Sort(removed)
			slices.Sort(modified)
			if !slices.Equal(removed, tt.removed) {
				t.Errorf("removed:\n%s", lineDiff(tt.removed, removed))
			}
			if !slices.Equal(modified, tt.modified) {
				t.Errorf("modified:\n%s", lineDiff(tt.modified, modified))
			}
		})
	}
}
