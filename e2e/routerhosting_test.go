package e2e

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// The cloud of TestDVRRouterHostsGetTunnels: three DVR hosts, a VXLAN network X with VMs on
// rh-a and rh-c, a VLAN network Y with a VM on rh-b, one distributed router R on both. Every
// host hosts R (each has a VM on one of its subnets), so every host has R's interfaces; the
// topologies list them as this host's ports only, never as remote ports, the way one writes
// a topology by hand.
var (
	rhHosts = []overlayHost{
		{name: "rh-a", ip: "192.168.60.1", dvrMAC: "fa:16:3f:00:06:01"},
		{name: "rh-b", ip: "192.168.60.2", dvrMAC: "fa:16:3f:00:06:02"},
		{name: "rh-c", ip: "192.168.60.3", dvrMAC: "fa:16:3f:00:06:03"},
	}
	rhRouter = "e0000006-0000-4000-8000-000000000006"
	rhNets   = []overlayNet{
		{id: "0a000006-0000-4000-8000-000000000001", netType: "vxlan", segment: 1601, subnetID: "5b000006-0000-4000-8000-000000000001", cidr: "10.6.1.0/24", gateway: "10.6.1.1"},
		{id: "0a000006-0000-4000-8000-000000000002", netType: "vlan", physnet: "physnet1", segment: 106, subnetID: "5b000006-0000-4000-8000-000000000002", cidr: "10.6.2.0/24", gateway: "10.6.2.1"},
	}
	rhQrX = overlayPort{id: "d0610000-0000-4000-8000-000000000001", network: rhNets[0].id, subnet: rhNets[0].subnetID, mac: "fa:16:3e:bb:06:01", ip: "10.6.1.1",
		owner: "network:router_interface_distributed", deviceID: rhRouter, unlisted: true}
	rhQrY = overlayPort{id: "d0620000-0000-4000-8000-000000000002", network: rhNets[1].id, subnet: rhNets[1].subnetID, mac: "fa:16:3e:bb:06:02", ip: "10.6.2.1",
		owner: "network:router_interface_distributed", deviceID: rhRouter, unlisted: true}
	rhVMA = overlayPort{host: "rh-a", id: "c06a0000-0000-4000-8000-0000000000a1", network: rhNets[0].id, subnet: rhNets[0].subnetID, mac: "fa:16:3e:06:01:0a", ip: "10.6.1.10"}
	rhVMC = overlayPort{host: "rh-c", id: "c06c0000-0000-4000-8000-0000000000c1", network: rhNets[0].id, subnet: rhNets[0].subnetID, mac: "fa:16:3e:06:01:0c", ip: "10.6.1.12"}
	// rhVMD is in the topology from the start but plugged only by the fault matrix.
	rhVMD = overlayPort{host: "rh-a", id: "c06d0000-0000-4000-8000-0000000000d1", network: rhNets[0].id, subnet: rhNets[0].subnetID, mac: "fa:16:3e:06:01:0d", ip: "10.6.1.13"}
	rhVMB = overlayPort{host: "rh-b", id: "c06b0000-0000-4000-8000-0000000000b1", network: rhNets[1].id, subnet: rhNets[1].subnetID, mac: "fa:16:3e:06:02:0b", ip: "10.6.2.11"}
)

// TestDVRRouterHostsGetTunnels: a host that routes replies into a VXLAN network it has no
// VM on (rh-b: its VM is on the VLAN network) must be reachable through a tunnel from the
// hosts with VMs on that network. neutron-server gives every host of the router a flooding
// entry on each of the router's networks; the agent derives the same from the topology
// (northbound RouterHosts), so rh-a and rh-c make tunnels to rh-b although no remote port
// of rh-b is on the VXLAN network. Pings go in every direction, routed and switched.
func TestDVRRouterHostsGetTunnels(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cl := startRouterHostsCloud(t, ctx)
	c, vms, ip := cl.hosts["rh-c"], cl.vms, cl.ip

	// rh-c's tunnel to rh-b exists only through the router's hosting: rh-b has no port on
	// the VXLAN network in rh-c's topology.
	waitFor(t, 20*time.Second, "rh-c has a tunnel port to rh-b", func() error {
		out, err := c.Vsctl(ctx, "list-ports", "br-tun")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "vxlan-c0a83c02") {
			return fmt.Errorf("br-tun ports on rh-c: %s", strings.Fields(out))
		}
		return nil
	})
	waitFor(t, 30*time.Second, "c (rh-c, VXLAN) reaches b (rh-b, VLAN) through the router", func() error {
		return vms["c"].Ping(ctx, ip["b"], 1)
	})
	for _, p := range []struct{ from, to, what string }{
		{"c", "b", "routed VXLAN → VLAN; the reply comes back through rh-b's tunnel to rh-c"},
		{"b", "c", "routed VLAN → VXLAN"},
		{"a", "b", "routed VXLAN → VLAN; the reply comes back through rh-b's tunnel to rh-a"},
		{"b", "a", "routed VLAN → VXLAN"},
		{"a", "c", "switched on the VXLAN network"},
		{"c", "a", "switched on the VXLAN network"},
	} {
		if err := vms[p.from].Ping(ctx, ip[p.to], 3); err != nil {
			t.Errorf("%s → %s (%s): %v", p.from, p.to, p.what, err)
		}
	}
}

// routerHostsCloud is the running three-host cloud of rhHosts: hosts, agents, topology
// files and VMs (a, b, c) by name.
type routerHostsCloud struct {
	hosts  map[string]*sandbox.Host
	agents map[string]*runningAgent
	topo   map[string]string
	vms    map[string]*sandbox.VM
	ip     map[string]string
}

// rhSettings are the agents' host settings of the three-host cloud.
var rhSettings = map[string]any{"agent_mode": "dvr", "tunnel_types": []string{"vxlan"}, "l2_population": true,
	"arp_responder": true, "bridge_mappings": map[string]string{"physnet1": "br-vlan"}}

// rhUplinks are each host's underlay uplink (on br-phy) and VLAN trunks (on br-vlan): a
// chain a — b — c, b's bridges joining the other two.
var (
	rhUnderlay = map[string][]string{"rh-a": {"ul0"}, "rh-b": {"ula", "ulc"}, "rh-c": {"ul0"}}
	rhTrunks   = map[string][]string{"rh-a": {"vl0"}, "rh-b": {"vla", "vlc"}, "rh-c": {"vl0"}}
)

// startRouterHostsCloud brings up the three-host cloud and waits until c reaches b through
// the router.
func startRouterHostsCloud(t *testing.T, ctx context.Context) *routerHostsCloud {
	t.Helper()
	ports := []overlayPort{rhQrX, rhQrY, rhVMA, rhVMB, rhVMC, rhVMD}
	cl := &routerHostsCloud{hosts: map[string]*sandbox.Host{}, agents: map[string]*runningAgent{}, topo: map[string]string{}}
	for _, oh := range rhHosts {
		cl.hosts[oh.name] = sandbox.StartForTest(t, oh.name)
	}
	a, b, c := cl.hosts["rh-a"], cl.hosts["rh-b"], cl.hosts["rh-c"]
	for _, l := range []struct {
		h1, h2   *sandbox.Host
		if1, if2 string
	}{{a, b, "ul0", "ula"}, {c, b, "ul0", "ulc"}, {a, b, "vl0", "vla"}, {c, b, "vl0", "vlc"}} {
		if err := sandbox.Link(ctx, l.h1, l.if1, l.h2, l.if2); err != nil {
			t.Fatal(err)
		}
	}
	for _, oh := range rhHosts {
		cl.addUnderlay(t, ctx, oh.name)
	}
	dir := t.TempDir()
	for _, oh := range rhHosts {
		cl.topo[oh.name] = filepath.Join(dir, oh.name+".json")
		writeFileAtomic(t, cl.topo[oh.name], overlayTopology(t, oh, rhSettings, rhHosts, rhNets, ports))
		cl.agents[oh.name] = startAgent(t, cl.hosts[oh.name], cl.topo[oh.name])
	}
	ns := "qrouter-" + rhRouter
	for _, oh := range rhHosts {
		h := cl.hosts[oh.name]
		waitFor(t, 20*time.Second, "agent creates br-vlan and br-tun on "+oh.name, func() error {
			return errors.Join(bridgeExists(ctx, h, "br-vlan"), bridgeExists(ctx, h, "br-tun"))
		})
		cl.addTrunks(t, ctx, oh.name)
		waitFor(t, 30*time.Second, "agent creates the router namespace on "+oh.name, func() error {
			out, err := h.Run(ctx, "ip", "-n", ns, "-o", "addr", "show", "to", rhQrY.ip)
			if err != nil {
				return err
			}
			if !strings.Contains(out, rhQrY.ip) {
				return fmt.Errorf("no %s in %s yet", rhQrY.ip, ns)
			}
			return nil
		})
	}
	cl.vms = map[string]*sandbox.VM{
		"a": addOverlayVM(t, ctx, a, "a", rhVMA, "24", rhNets[0].gateway),
		"b": addOverlayVM(t, ctx, b, "b", rhVMB, "24", rhNets[1].gateway),
		"c": addOverlayVM(t, ctx, c, "c", rhVMC, "24", rhNets[0].gateway),
	}
	cl.ip = map[string]string{"a": rhVMA.ip, "b": rhVMB.ip, "c": rhVMC.ip}
	return cl
}

// addUnderlay puts host's tunnel endpoint on br-phy with its uplinks (again after an
// ovs-vswitchd restart, which re-creates br-phy's internal port without its address).
func (cl *routerHostsCloud) addUnderlay(t *testing.T, ctx context.Context, host string) {
	t.Helper()
	h, links := cl.hosts[host], rhUnderlay[host]
	var ip string
	for _, oh := range rhHosts {
		if oh.name == host {
			ip = oh.ip
		}
	}
	if err := h.AddUnderlay(ctx, sandbox.UnderlaySpec{Bridge: "br-phy", Uplink: links[0], CIDR: ip + "/24"}); err != nil {
		t.Fatal(err)
	}
	for _, l := range links[1:] {
		if _, err := h.Vsctl(ctx, "--may-exist", "add-port", "br-phy", l); err != nil {
			t.Fatal(err)
		}
	}
}

// addTrunks puts host's VLAN trunks on br-vlan (what belongs to others than the agent).
func (cl *routerHostsCloud) addTrunks(t *testing.T, ctx context.Context, host string) {
	t.Helper()
	for _, uplink := range rhTrunks[host] {
		if _, err := cl.hosts[host].Vsctl(ctx, "--may-exist", "add-port", "br-vlan", uplink); err != nil {
			t.Fatal(err)
		}
	}
}
