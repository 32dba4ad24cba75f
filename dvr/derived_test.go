package dvr_test

import (
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Ids of the derived scenarios.
const (
	tenantVXLAN   = "a0000021-0000-4000-8000-000000000021"
	tenantVLAN    = "a0000022-0000-4000-8000-000000000022"
	externalFlat  = "a0000023-0000-4000-8000-000000000023"
	subnetVXLAN   = "b0000021-0000-4000-8000-000000000021"
	subnetVLAN    = "b0000022-0000-4000-8000-000000000022"
	subnetExtern  = "b0000023-0000-4000-8000-000000000023"
	qrVXLAN       = "d0000021-0000-4000-8000-000000000021"
	qrVLAN        = "d0000022-0000-4000-8000-000000000022"
	sgVXLAN       = "f0000021-0000-4000-8000-000000000021"
	sgVLAN        = "f0000022-0000-4000-8000-000000000022"
	dhcpVXLAN     = "f0000023-0000-4000-8000-000000000023"
	qgExternal    = "f0000024-0000-4000-8000-000000000024"
	compute3DVR   = "fa:16:3f:00:00:04"
	vlanNet3      = "a0000003-0000-4000-8000-000000000003"
	vlanSubnet3   = "b0000003-0000-4000-8000-000000000003"
	vlanSubnet11  = "b0000011-0000-4000-8000-000000000011"
	vlanVM4       = "c0000004-0000-4000-8000-000000000004"
	vlanVM5       = "c0000005-0000-4000-8000-000000000005"
	flatNet       = "a0000031-0000-4000-8000-000000000031"
	flatSubnet    = "b0000031-0000-4000-8000-000000000031"
	v6NetVXLAN    = "a0000041-0000-4000-8000-000000000041"
	v6NetVLAN     = "a0000042-0000-4000-8000-000000000042"
	v6SubnetVXLAN = "b0000041-0000-4000-8000-000000000041"
	v6SubnetVLAN  = "b0000042-0000-4000-8000-000000000042"
)

// snatNode is a dvr_snat network node: the router's qr- and sg- ports on a VXLAN and a VLAN
// tenant subnet, a DHCP port on the VXLAN one, and the router's qg- port on a flat external
// network (br-ex). br-int ofports: 1 int-br-ex, 2 int-br-vlan, 3 patch-tun.
func snatNode() *state.Node {
	return &state.Node{
		Host: state.Host{
			Name: "network1", AgentMode: "dvr_snat", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical: []state.PhysicalBridge{
				{Physnet: "external", Bridge: "br-ex", IntPort: 1, PhyPort: 1},
				{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 2, PhyPort: 1},
			},
			TunnelTypes: []northbound.NetworkType{northbound.VXLAN}, LocalIP: addr("192.168.100.13"), PatchTun: 3, PatchInt: 1,
			Distributed: true, L2Population: true, ARPResponder: true, DVRMAC: mac("fa:16:3f:00:00:03"),
			PreventARPSpoofing: true,
		},
		Networks: []state.Network{
			{ID: tenantVXLAN, Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 1, MTU: 1450},
			{ID: tenantVLAN, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 196, LocalVLAN: 2, MTU: 1500},
			{ID: externalFlat, Type: northbound.Flat, Physnet: "external", LocalVLAN: 3, MTU: 1500},
		},
		Subnets: []state.Subnet{
			subnet(subnetVXLAN, tenantVXLAN, "10.1.1.0/24", "fa:16:3e:bb:01:01"),
			subnet(subnetVLAN, tenantVLAN, "10.0.1.0/24", "fa:16:3e:aa:01:01"),
			subnet(subnetExtern, externalFlat, "203.0.113.0/24", ""),
		},
		Ports: []state.Port{
			port(4, qrVXLAN, tenantVXLAN, "fa:16:3e:bb:01:01", northbound.OwnerRouterInterfaceDistributed, subnetVXLAN, "10.1.1.1"),
			port(5, qrVLAN, tenantVLAN, "fa:16:3e:aa:01:01", northbound.OwnerRouterInterfaceDistributed, subnetVLAN, "10.0.1.1"),
			port(6, sgVXLAN, tenantVXLAN, "fa:16:3e:30:01:03", northbound.OwnerRouterCentralizedSNAT, subnetVXLAN, "10.1.1.3"),
			port(7, sgVLAN, tenantVLAN, "fa:16:3e:30:02:03", northbound.OwnerRouterCentralizedSNAT, subnetVLAN, "10.0.1.3"),
			port(8, dhcpVXLAN, tenantVXLAN, "fa:16:3e:30:01:02", northbound.OwnerDHCP, subnetVXLAN, "10.1.1.2"),
			port(9, qgExternal, externalFlat, "fa:16:3e:40:00:01", northbound.OwnerRouterGateway, subnetExtern, "203.0.113.10"),
		},
		RemoteHosts: []state.RemoteHost{
			{Name: "compute1", IP: addr("192.168.100.11"), DVRMAC: mac("fa:16:3f:00:00:01"), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}},
			{Name: "compute2", IP: addr("192.168.100.12"), DVRMAC: mac("fa:16:3f:00:00:02"), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}},
		},
		TunnelPorts: []state.TunnelPort{
			{Name: "vxlan-c0a8640b", Type: northbound.VXLAN, RemoteIP: addr("192.168.100.11"), OFPort: 2},
			{Name: "vxlan-c0a8640c", Type: northbound.VXLAN, RemoteIP: addr("192.168.100.12"), OFPort: 3},
		},
	}
}

// flatNode is a compute node with a flat tenant network routed by a local qr- port, a VM and
// a DHCP port on it.
func flatNode() *state.Node {
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "dvr", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:    []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-flat", IntPort: 1, PhyPort: 1}},
			Distributed: true, DVRMAC: mac("fa:16:3f:00:00:01"), PreventARPSpoofing: true,
		},
		Networks: []state.Network{{ID: flatNet, Type: northbound.Flat, Physnet: "physnet1", LocalVLAN: 1, MTU: 1500}},
		Subnets:  []state.Subnet{subnet(flatSubnet, flatNet, "10.2.0.0/24", "fa:16:3e:cc:00:01")},
		Ports: []state.Port{
			port(2, "d0000031-0000-4000-8000-000000000031", flatNet, "fa:16:3e:cc:00:01", northbound.OwnerRouterInterfaceDistributed, flatSubnet, "10.2.0.1"),
			port(3, "c0000031-0000-4000-8000-000000000031", flatNet, "fa:16:3e:00:31:11", "compute:nova", flatSubnet, "10.2.0.11"),
			port(4, "f0000031-0000-4000-8000-000000000031", flatNet, "fa:16:3e:00:31:02", northbound.OwnerDHCP, flatSubnet, "10.2.0.2"),
		},
		RemoteHosts: []state.RemoteHost{{Name: "compute2", DVRMAC: mac("fa:16:3f:00:00:02")}},
	}
}

// ipv6Node is a compute node with IPv6-only subnets on a VXLAN and a VLAN network, each
// routed by a local qr- port, with a VM on each.
func ipv6Node() *state.Node {
	return &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "dvr", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			Physical:    []state.PhysicalBridge{{Physnet: "physnet1", Bridge: "br-vlan", IntPort: 1, PhyPort: 1}},
			TunnelTypes: []northbound.NetworkType{northbound.VXLAN}, LocalIP: addr("192.168.100.11"), PatchTun: 2, PatchInt: 1,
			Distributed: true, L2Population: true, ARPResponder: true, DVRMAC: mac("fa:16:3f:00:00:01"),
			PreventARPSpoofing: true,
		},
		Networks: []state.Network{
			{ID: v6NetVXLAN, Type: northbound.VXLAN, SegmentationID: 1001, LocalVLAN: 1, MTU: 1450},
			{ID: v6NetVLAN, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 300, LocalVLAN: 2, MTU: 1500},
		},
		Subnets: []state.Subnet{
			subnet(v6SubnetVXLAN, v6NetVXLAN, "2001:db8:1::/64", "fa:16:3e:dd:01:01"),
			subnet(v6SubnetVLAN, v6NetVLAN, "2001:db8:2::/64", "fa:16:3e:dd:02:01"),
		},
		Ports: []state.Port{
			port(3, "d0000041-0000-4000-8000-000000000041", v6NetVXLAN, "fa:16:3e:dd:01:01", northbound.OwnerRouterInterfaceDistributed, v6SubnetVXLAN, "2001:db8:1::1"),
			port(4, "d0000042-0000-4000-8000-000000000042", v6NetVLAN, "fa:16:3e:dd:02:01", northbound.OwnerRouterInterfaceDistributed, v6SubnetVLAN, "2001:db8:2::1"),
			port(5, "c0000041-0000-4000-8000-000000000041", v6NetVXLAN, "fa:16:3e:00:41:11", "compute:nova", v6SubnetVXLAN, "2001:db8:1::11"),
			port(6, "c0000042-0000-4000-8000-000000000042", v6NetVLAN, "fa:16:3e:00:42:11", "compute:nova", v6SubnetVLAN, "2001:db8:2::11"),
		},
		RemoteHosts: []state.RemoteHost{
			{Name: "compute2", IP: addr("192.168.100.12"), DVRMAC: mac("fa:16:3f:00:00:02"), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}},
		},
	}
}

// withoutPort returns a copy of the node without the port.
func withoutPort(n *state.Node, id string) *state.Node {
	c := *n
	c.Ports = slices.DeleteFunc(slices.Clone(n.Ports), func(p state.Port) bool { return p.ID == id })
	return &c
}

// unroutedNode is dvr_vlan with two VMs on subnets that have no local router interface:
// one on a third VLAN network, one on a second subnet of network 1 (whose first subnet is
// routed here).
func unroutedNode() *state.Node {
	n := dvrVLANNode()
	n.Networks = append(n.Networks, state.Network{ID: vlanNet3, Type: northbound.VLAN, Physnet: "physnet1", SegmentationID: 198, LocalVLAN: 3, MTU: 1500})
	n.Subnets = append(n.Subnets,
		subnet(vlanSubnet3, vlanNet3, "10.0.3.0/24", "fa:16:3e:aa:03:01"),
		subnet(vlanSubnet11, vlanNet1, "10.0.11.0/24", "fa:16:3e:aa:11:01"))
	n.Ports = append(n.Ports,
		port(7, vlanVM4, vlanNet3, "fa:16:3e:00:03:11", "compute:nova", vlanSubnet3, "10.0.3.11"),
		port(8, vlanVM5, vlanNet1, "fa:16:3e:00:11:11", "compute:nova", vlanSubnet11, "10.0.11.11"))
	return n
}

// withRemoteHost returns a copy of the node that knows one more host with a DVR MAC.
func withRemoteHost(n *state.Node, name, ip, dvrMAC string) *state.Node {
	c := *n
	c.RemoteHosts = append(slices.Clone(n.RemoteHosts),
		state.RemoteHost{Name: name, IP: addr(ip), DVRMAC: mac(dvrMAC), TunnelTypes: []northbound.NetworkType{northbound.VXLAN}})
	return &c
}

// TestDerivedGolden pins dvr.Generate's flows for scenarios Neutron's dumps do not cover.
// Each testdata/*.golden was reviewed line by line against neutron-pipeline.md §2.9; rerun
// with -update after an intended change and review the diff the same way.
func TestDerivedGolden(t *testing.T) {
	for _, tt := range []struct {
		name string
		node *state.Node
	}{
		{"dvr_snat", snatNode()},
		{"flat_router", flatNode()},
		{"ipv6", ipv6Node()},
		{"router_interface_removed", withoutPort(dvrVLANNode(), vlanQR1)},
		{"unrouted_subnets", unroutedNode()},
		{"remote_dvr_mac_added", withRemoteHost(snatNode(), "compute3", "192.168.100.14", compute3DVR)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkGolden(t, tt.name, annotated(tt.node, generate(tt.node)))
		})
	}
}

func checkGolden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run with -update to create it): %v", err)
	}
	if got != string(want) {
		gotL, wantL := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for _, l := range minus(slices.Sorted(slices.Values(wantL)), slices.Sorted(slices.Values(gotL))) {
			t.Errorf("%s: missing: %s", path, l)
		}
		for _, l := range minus(slices.Sorted(slices.Values(gotL)), slices.Sorted(slices.Values(wantL))) {
			t.Errorf("%s: extra:   %s", path, l)
		}
		if !t.Failed() {
			t.Errorf("%s: same lines, different order (rerun with -update if intended)", path)
		}
	}
}

// cookieFlows returns the flows of every bridge whose cookie is (category, object).
func cookieFlows(out map[string][]flows.Flow, c flows.Category, object string) []string {
	var got []string
	for br, fs := range out {
		for _, f := range fs {
			if f.Cookie == flows.Cookie(c, object) {
				got = append(got, br+" "+withoutCookie(f))
			}
		}
	}
	slices.Sort(got)
	return got
}

// all renders every flow of every bridge as "bridge line", sorted.
func all(out map[string][]flows.Flow) []string {
	var got []string
	for br, fs := range out {
		for _, l := range lines(fs) {
			got = append(got, br+" "+l)
		}
	}
	slices.Sort(got)
	return got
}

// TestRouterInterfaceRemovalRemovesItsFlows: without the qr- port of subnet 1 the node has
// none of its flows — its table-4 flow included, which Neutron leaks — nor the DVR delivery
// to the subnet's VMs; nothing else changes.
func TestRouterInterfaceRemovalRemovesItsFlows(t *testing.T) {
	before := generate(dvrVLANNode())
	after := generate(withoutPort(dvrVLANNode(), vlanQR1))
	want := []string{
		"br-int priority=99,arp,dl_dst=fa:16:3f:00:00:01,arp_op=2,arp_tha=fa:16:3e:aa:01:01 actions=set_field:fa:16:3e:aa:01:01->eth_dst,goto_table:59",
		"br-int table=2, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:11 actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:59",
		"br-int table=2, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:12 actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:59",
		"br-int table=4, priority=5,dl_vlan=1,dl_dst=fa:16:3f:00:00:01 actions=set_field:fa:16:3e:aa:01:01->eth_dst,pop_vlan,output:2",
		"br-int table=60, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:11 actions=pop_vlan,output:4",
		"br-int table=60, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:12 actions=pop_vlan,output:5",
		"br-vlan table=1, priority=1,dl_vlan=1,dl_src=fa:16:3e:aa:01:01 actions=set_field:fa:16:3f:00:00:01->eth_src,goto_table:2",
		"br-vlan table=1, priority=2,dl_vlan=1,dl_dst=fa:16:3e:aa:01:01 actions=drop",
		"br-vlan table=1, priority=3,arp,dl_vlan=1,arp_tpa=10.0.1.1 actions=drop",
	}
	if removed := minus(all(before), all(after)); !slices.Equal(removed, want) {
		t.Errorf("removed:\n%s\nwant:\n%s", strings.Join(removed, "\n"), strings.Join(want, "\n"))
	}
	if added := minus(all(after), all(before)); len(added) != 0 {
		t.Errorf("removing a port added flows:\n%s", strings.Join(added, "\n"))
	}
	for _, br := range []string{"br-int", "br-vlan"} {
		for _, f := range after[br] {
			if f.Cookie == flows.Cookie(flows.CategoryDVRRouterPort, vlanQR1) {
				t.Errorf("%s: flow of the removed router interface left behind: %s", br, f)
			}
		}
	}
}

// TestUnroutedSubnetGetsNoDelivery: a VM whose subnet has no local router interface gets no
// I30/I31, even when another subnet of its network is routed here.
func TestUnroutedSubnetGetsNoDelivery(t *testing.T) {
	n := unroutedNode()
	out := generate(n)
	for _, vm := range []string{vlanVM4, vlanVM5} {
		if got := cookieFlows(out, flows.CategoryDVRServicedPort, vm); len(got) != 0 {
			t.Errorf("VM %s on an unrouted subnet has DVR flows:\n%s", vm, strings.Join(got, "\n"))
		}
	}
	if added := minus(all(out), all(generate(dvrVLANNode()))); len(added) != 0 {
		t.Errorf("unrouted ports added flows:\n%s", strings.Join(added, "\n"))
	}
	// The routed VMs of the same network still get theirs.
	if got := cookieFlows(out, flows.CategoryDVRServicedPort, vlanVM1); len(got) != 2 {
		t.Errorf("routed VM: want I30 and I31, got:\n%s", strings.Join(got, "\n"))
	}
}

// TestNewRemoteDVRMACAddsExactlyItsFlows: a host with a new DVR MAC adds I26 and P9 per
// physnet, I27 and T20 — with that MAC's cookie — and changes nothing else.
func TestNewRemoteDVRMACAddsExactlyItsFlows(t *testing.T) {
	before := generate(snatNode())
	after := generate(withRemoteHost(snatNode(), "compute3", "192.168.100.14", compute3DVR))
	if removed := minus(all(before), all(after)); len(removed) != 0 {
		t.Errorf("a new DVR MAC removed flows:\n%s", strings.Join(removed, "\n"))
	}
	want := []string{
		"br-ex table=3, priority=2,dl_src=fa:16:3f:00:00:04 actions=output:1",
		"br-int priority=2,in_port=3,dl_src=fa:16:3f:00:00:04 actions=goto_table:1",
		"br-int priority=4,in_port=1,dl_src=fa:16:3f:00:00:04 actions=goto_table:2",
		"br-int priority=4,in_port=2,dl_src=fa:16:3f:00:00:04 actions=goto_table:2",
		"br-tun table=9, priority=1,dl_src=fa:16:3f:00:00:04 actions=output:1",
		"br-vlan table=3, priority=2,dl_src=fa:16:3f:00:00:04 actions=output:1",
	}
	if added := minus(all(after), all(before)); !slices.Equal(added, want) {
		t.Errorf("added:\n%s\nwant:\n%s", strings.Join(added, "\n"), strings.Join(want, "\n"))
	}
	if got := cookieFlows(after, flows.CategoryDVRMAC, compute3DVR); !slices.Equal(got, want) {
		t.Errorf("flows with the new MAC's cookie:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// sharedMatchesNode is dvr_vlan with a second routed subnet on network 1 (its own router
// interface, ofport 7) and a VM on both subnets: candidates for I32 and I30/I31 that share
// a match.
func sharedMatchesNode() *state.Node {
	n := dvrVLANNode()
	n.Subnets = append(n.Subnets, subnet(vlanSubnet11, vlanNet1, "10.0.11.0/24", "fa:16:3e:aa:11:01"))
	n.Ports = append(n.Ports,
		port(7, "d0000011-0000-4000-8000-000000000011", vlanNet1, "fa:16:3e:aa:11:01", northbound.OwnerRouterInterfaceDistributed, vlanSubnet11, "10.0.11.1"),
		port(8, vlanVM5, vlanNet1, "fa:16:3e:00:11:11", "compute:nova", vlanSubnet11, "10.0.11.11", vlanSubnet1, "10.0.1.15"))
	return n
}

// dvrNodes returns every DVR node of these tests by name.
func dvrNodes() map[string]*state.Node {
	return map[string]*state.Node{
		"dvr_vlan": dvrVLANNode(), "dvr_vxlan_l2pop": dvrVXLANNode(), "dvr_snat": snatNode(),
		"flat_router": flatNode(), "ipv6": ipv6Node(), "unrouted_subnets": unroutedNode(),
		"router_interface_removed": withoutPort(dvrVLANNode(), vlanQR1), "shared_matches": sharedMatchesNode(),
	}
}

// TestPipelineUsesEachBridgesOwnTables: the typed tables make a flow's own table its
// bridge's; this checks what they cannot, on the whole pipeline of every DVR node: every
// table a flow sits in or continues to (goto_table, resubmit) is in its bridge's
// catalogue, and goto_table only goes forward.
func TestPipelineUsesEachBridgesOwnTables(t *testing.T) {
	for name, n := range dvrNodes() {
		catalogues := map[string]flows.Pipeline{n.Host.IntegrationBridge: flows.IntegrationPipeline, n.Host.TunnelBridge: flows.TunnelPipeline}
		for _, p := range n.Host.Physical {
			catalogues[p.Bridge] = flows.PhysicalPipeline
		}
		for br, fs := range pipeline.Build(n) {
			catalogue, ok := catalogues[br]
			if !ok {
				t.Errorf("%s: flows for unknown bridge %s", name, br)
				continue
			}
			for _, f := range fs {
				if _, ok := catalogue.Lookup(f.Table); !ok {
					t.Errorf("%s %s: flow in a table the bridge does not have: %s", name, br, f)
				}
				for _, a := range f.Actions {
					next, forward := uint8(0), false
					switch a := a.(type) {
					case flows.GotoTable:
						next, forward = a.Table, true
					case flows.Resubmit:
						next = a.Table
					default:
						continue
					}
					if _, ok := catalogue.Lookup(next); !ok {
						t.Errorf("%s %s: flow continues in table %d the bridge does not have: %s", name, br, next, f)
					}
					if forward && next <= f.Table {
						t.Errorf("%s %s: goto_table does not go forward: %s", name, br, f)
					}
				}
			}
		}
	}
}

// TestGenerateEmitsEachKeyOnce: dvr.Generate chooses among its own candidates (Generate's
// doc) and so never emits two flows with one (table, priority, match) on a bridge; only
// collisions with other generators are left to pipeline.Compose.
func TestGenerateEmitsEachKeyOnce(t *testing.T) {
	for name, n := range dvrNodes() {
		for br, fs := range generate(n) {
			seen := map[flows.Key]flows.Flow{}
			for _, f := range fs {
				if first, dup := seen[f.Key()]; dup {
					t.Errorf("%s %s: two flows with one key:\n%s\n%s", name, br, first, f)
				}
				seen[f.Key()] = f
			}
		}
	}
}

// TestSharedMatchesFirstPortWins: where two flows would share a match, the state decides,
// not binding order: of two router interfaces on one network the lowest ofport owns I32, and
// a VM on two routed subnets of its network takes its first fixed IP's gateway MAC.
func TestSharedMatchesFirstPortWins(t *testing.T) {
	got := lines(generate(sharedMatchesNode())["br-int"])
	for _, want := range []string{
		"table=4, priority=5,dl_vlan=1,dl_dst=fa:16:3f:00:00:01 actions=set_field:fa:16:3e:aa:01:01->eth_dst,pop_vlan,output:2",
		"table=2, priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:11:11 actions=set_field:fa:16:3e:aa:11:01->eth_src,goto_table:59",
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %s", want)
		}
	}
	if n := len(slices.DeleteFunc(got, func(l string) bool { return !strings.HasPrefix(l, "table=4,") })); n != 2 {
		t.Errorf("table 4 has %d flows, want 2 (one per network)", n)
	}
}
