package e2e

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// updateTraceGolden rewrites trace/testdata with ofproto/trace's raw answers on this cloud
// (go test ./e2e -run TestTrace -update-trace-golden): the parser's unit tests read them.
var updateTraceGolden = flag.Bool("update-trace-golden", false, "write ofproto/trace's raw output of TestTrace's packets to trace/testdata")

// The cloud of TestTrace: two DVR hosts joined by an underlay and a VLAN trunk, a
// distributed router R routing a VXLAN network X and a VLAN network Y, a VM of each on each
// host.
var (
	trHosts = []overlayHost{
		{name: "tr-1", ip: "192.168.70.1", dvrMAC: "fa:16:3f:00:07:01"},
		{name: "tr-2", ip: "192.168.70.2", dvrMAC: "fa:16:3f:00:07:02"},
	}
	trRouter = "e0000007-0000-4000-8000-000000000007"
	trNets   = []overlayNet{
		{id: "0a000007-0000-4000-8000-000000000001", netType: "vxlan", segment: 1701, subnetID: "5b000007-0000-4000-8000-000000000001", cidr: "10.7.1.0/24", gateway: "10.7.1.1"},
		{id: "0a000007-0000-4000-8000-000000000002", netType: "vlan", physnet: "physnet1", segment: 107, subnetID: "5b000007-0000-4000-8000-000000000002", cidr: "10.7.2.0/24", gateway: "10.7.2.1"},
	}
	trQrX = overlayPort{id: "d0710000-0000-4000-8000-000000000001", network: trNets[0].id, subnet: trNets[0].subnetID, mac: "fa:16:3e:bb:07:01", ip: "10.7.1.1",
		owner: "network:router_interface_distributed", deviceID: trRouter, unlisted: true}
	trQrY = overlayPort{id: "d0720000-0000-4000-8000-000000000002", network: trNets[1].id, subnet: trNets[1].subnetID, mac: "fa:16:3e:bb:07:02", ip: "10.7.2.1",
		owner: "network:router_interface_distributed", deviceID: trRouter, unlisted: true}
	trX1 = overlayPort{host: "tr-1", id: "c07a1000-0000-4000-8000-0000000000a1", network: trNets[0].id, subnet: trNets[0].subnetID, mac: "fa:16:3e:07:01:11", ip: "10.7.1.11"}
	trY1 = overlayPort{host: "tr-1", id: "c07b1000-0000-4000-8000-0000000000b1", network: trNets[1].id, subnet: trNets[1].subnetID, mac: "fa:16:3e:07:02:11", ip: "10.7.2.11"}
	trX2 = overlayPort{host: "tr-2", id: "c07a2000-0000-4000-8000-0000000000a2", network: trNets[0].id, subnet: trNets[0].subnetID, mac: "fa:16:3e:07:01:12", ip: "10.7.1.12"}
	trY2 = overlayPort{host: "tr-2", id: "c07b2000-0000-4000-8000-0000000000b2", network: trNets[1].id, subnet: trNets[1].subnetID, mac: "fa:16:3e:07:02:12", ip: "10.7.2.12"}
)

// traceCloud is the running cloud of TestTrace.
type traceCloud struct {
	hosts map[string]*sandbox.Host
	topo  map[string]string
	vms   map[string]*sandbox.VM
}

// startTraceCloud brings up the cloud and waits until every VM reaches every other one,
// routed and switched (which also teaches the bridges the VMs' MACs).
func startTraceCloud(t *testing.T, ctx context.Context) *traceCloud {
	t.Helper()
	ports := []overlayPort{trQrX, trQrY, trX1, trY1, trX2, trY2}
	cl := &traceCloud{hosts: map[string]*sandbox.Host{}, topo: map[string]string{}, vms: map[string]*sandbox.VM{}}
	for _, oh := range trHosts {
		cl.hosts[oh.name] = sandbox.StartForTest(t, oh.name)
	}
	h1, h2 := cl.hosts["tr-1"], cl.hosts["tr-2"]
	for _, l := range []string{"ul0", "vl0"} {
		if err := sandbox.Link(ctx, h1, l, h2, l); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	for _, oh := range trHosts {
		h := cl.hosts[oh.name]
		if err := h.AddUnderlay(ctx, sandbox.UnderlaySpec{Bridge: "br-phy", Uplink: "ul0", CIDR: oh.ip + "/24"}); err != nil {
			t.Fatal(err)
		}
		cl.topo[oh.name] = filepath.Join(dir, oh.name+".json")
		writeFileAtomic(t, cl.topo[oh.name], overlayTopology(t, oh, rhSettings, trHosts, trNets, ports))
		startAgent(t, h, cl.topo[oh.name])
	}
	ns := "qrouter-" + trRouter
	for _, oh := range trHosts {
		h := cl.hosts[oh.name]
		waitFor(t, 20*time.Second, "agent creates br-vlan and br-tun on "+oh.name, func() error {
			return errors.Join(bridgeExists(ctx, h, "br-vlan"), bridgeExists(ctx, h, "br-tun"))
		})
		if _, err := h.Vsctl(ctx, "--may-exist", "add-port", "br-vlan", "vl0"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 30*time.Second, "agent creates the router namespace on "+oh.name, func() error {
			out, err := h.Run(ctx, "ip", "-n", ns, "-o", "addr", "show", "to", trQrY.ip)
			if err != nil {
				return err
			}
			if !strings.Contains(out, trQrY.ip) {
				return fmt.Errorf("no %s in %s yet", trQrY.ip, ns)
			}
			return nil
		})
	}
	for name, p := range map[string]overlayPort{"x1": trX1, "y1": trY1, "x2": trX2, "y2": trY2} {
		gw := trNets[0].gateway
		if p.network == trNets[1].id {
			gw = trNets[1].gateway
		}
		cl.vms[name] = addOverlayVM(t, ctx, cl.hosts[p.host], name, p, "24", gw)
	}
	ips := map[string]string{"x1": trX1.ip, "y1": trY1.ip, "x2": trX2.ip, "y2": trY2.ip}
	for _, from := range []string{"x1", "y1", "x2", "y2"} {
		for _, to := range []string{"x1", "y1", "x2", "y2"} {
			if from != to {
				waitFor(t, 30*time.Second, from+" reaches "+to, func() error { return cl.vms[from].Ping(ctx, ips[to], 1) })
			}
		}
	}
	return cl
}

// TestTrace is the acceptance test of `dvrflow trace` (issue 14): packets traced on a
// two-host DVR cloud, asserted on the CLI's JSON.
func TestTrace(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cl := startTraceCloud(t, ctx)
	h1 := cl.hosts["tr-1"]
	if *updateTraceGolden {
		raw := func(name, bridge, flow string) {
			out, err := h1.Appctl(ctx, "vswitchd", "ofproto/trace", "--names", bridge, flow)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("..", "trace", "testdata", name+".txt"), []byte(out), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		tap := func(p overlayPort) string { return "tap" + p.id[:11] }
		qr := func(p overlayPort) string { return "qr-" + p.id[:11] }
		raw("to-gateway", "br-int", "in_port="+tap(trX1)+",dl_src="+trX1.mac+",dl_dst="+trQrX.mac+",icmp,nw_src="+trX1.ip+",nw_dst="+trY2.ip+",nw_ttl=64")
		raw("routed-vlan", "br-int", "in_port="+qr(trQrY)+",dl_src="+trQrY.mac+",dl_dst="+trY2.mac+",icmp,nw_src="+trX1.ip+",nw_dst="+trY2.ip+",nw_ttl=63")
		raw("routed-vxlan", "br-int", "in_port="+qr(trQrX)+",dl_src="+trQrX.mac+",dl_dst="+trX2.mac+",icmp,nw_src="+trY1.ip+",nw_dst="+trX2.ip+",nw_ttl=63")
		raw("routed-local", "br-int", "in_port="+qr(trQrY)+",dl_src="+trQrY.mac+",dl_dst="+trY1.mac+",icmp,nw_src="+trX1.ip+",nw_dst="+trY1.ip+",nw_ttl=63")
		raw("spoofed", "br-int", "in_port="+tap(trX1)+",dl_src=fa:16:3e:66:66:66,dl_dst="+trQrX.mac+",icmp,nw_src="+trX1.ip+",nw_dst="+trY2.ip+",nw_ttl=64")
		raw("flood", "br-int", "in_port="+tap(trX1)+",dl_src="+trX1.mac+",dl_dst=fa:16:3e:99:99:99,icmp,nw_src="+trX1.ip+",nw_dst=10.7.1.99,nw_ttl=64")
		raw("arp", "br-int", "in_port="+tap(trX1)+",dl_src="+trX1.mac+",dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_spa="+trX1.ip+",arp_tpa="+trX2.ip+",arp_sha="+trX1.mac)
	}
}
