package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

	// run runs `dvrflow trace -o json` on tr-1 and decodes its answer.
	run := func(t *testing.T, args ...string) traceJSON {
		t.Helper()
		args = append([]string{"trace", "-o", "json", "--ovs-rundir", h1.RunDir(), "--unixctl", filepath.Join(h1.RunDir(), "vswitchd.ctl"),
			"--topology", cl.topo["tr-1"]}, args...)
		out, err := h1.Command(ctx, cliBinary, args...).Output()
		if err != nil {
			t.Fatalf("dvrflow %s: %v\n%s", strings.Join(args, " "), err, stderrOf(err))
		}
		var tr traceJSON
		if err := json.Unmarshal(out, &tr); err != nil {
			t.Fatalf("dvrflow trace -o json: %v\n%s", err, out)
		}
		t.Logf("dvrflow %s:\n%s", strings.Join(args, " "), out)
		return tr
	}
	dvrMAC1 := trHosts[0].dvrMAC
	// learn has the bridges learn where dst's MAC is (NORMAL floods to unknown MACs) by a
	// switched ping from dst to from, just before a trace relies on it.
	learn := func(t *testing.T, dst, from string, ip string) {
		t.Helper()
		if err := cl.vms[dst].Ping(ctx, ip, 1); err != nil {
			t.Fatalf("%s → %s: %v", dst, from, err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				for _, br := range []string{"br-int", "br-vlan"} {
					out, _ := h1.Appctl(ctx, "vswitchd", "fdb/show", br)
					t.Logf("tr-1 fdb/show %s:\n%s", br, out)
				}
			}
		})
	}

	t.Run("routed to a VLAN network on another host: DVR MAC and provider VLAN on br-vlan, out the trunk", func(t *testing.T) {
		learn(t, "y2", "y1", trY1.ip)
		tr := run(t, "--port", trX1.id, "--dst", trY2.ip)
		if len(tr.Legs) != 2 || tr.Legs[1].Router == nil || tr.Legs[1].Router.ID != trRouter {
			t.Fatalf("legs %+v: want two, the second routed by %s", tr.Legs, trRouter)
		}
		rewrite := tr.find("br-vlan", "set_field:"+dvrMAC1+"->eth_src")
		if rewrite == nil || rewrite.Table != 1 || rewrite.TableName == "" || rewrite.Owner == nil || rewrite.Rule == "" {
			t.Errorf("no explained br-vlan table 1 step rewriting eth_src to tr-1's DVR MAC %s: %+v", dvrMAC1, rewrite)
		}
		if s := tr.find("br-vlan", "set_field:"+strconv.Itoa(0x1000|trNets[1].segment)+"->vlan_vid"); s == nil {
			t.Errorf("no br-vlan step translating to provider VLAN %d", trNets[1].segment)
		}
		tr.wantUplink(t, "br-vlan", "vl0", trNets[1].segment, nil)
	})

	t.Run("routed to a VXLAN network on another host: DVR MAC and VNI on br-tun, out the tunnel", func(t *testing.T) {
		tr := run(t, "--port", "tap"+trY1.id[:11], "--dst", trX2.ip)
		if s := tr.find("br-tun", "set_field:"+dvrMAC1+"->eth_src"); s == nil || s.Owner == nil {
			t.Errorf("no explained br-tun step rewriting eth_src to tr-1's DVR MAC %s: %+v", dvrMAC1, s)
		}
		if s := tr.find("br-tun", fmt.Sprintf("set_field:%#x->tun_id", trNets[0].segment)); s == nil {
			t.Errorf("no br-tun step setting VNI %d", trNets[0].segment)
		}
		tr.wantUplink(t, "br-tun", "vxlan-c0a84602", 0, &traceTunnel{Type: "vxlan", VNI: trNets[0].segment, RemoteIP: trHosts[1].ip})
	})

	t.Run("routed on the same host: out the destination VM's port", func(t *testing.T) {
		learn(t, "y1", "gateway", trQrY.ip)
		tr := run(t, "--port", trX1.id, "--dst", trY1.ip)
		if len(tr.Legs) != 2 {
			t.Fatalf("legs %+v: want two (to the router, from it)", tr.Legs)
		}
		tr.wantOnlyOutput(t, "br-int", "tap"+trY1.id[:11], 0, nil)
	})

	t.Run("spoofed source MAC: a miss in table 25 MAC_SPOOF", func(t *testing.T) {
		tr := run(t, "--bridge", "br-int", "--flow", "in_port=tap"+trX1.id[:11]+",dl_src=fa:16:3e:66:66:66,dl_dst="+trQrX.mac+",icmp,nw_src="+trX1.ip+",nw_dst="+trY2.ip)
		if tr.Result.Kind != "drop" || !tr.Result.Miss || len(tr.Result.Outputs) != 0 {
			t.Errorf("result %+v, want a drop by a miss", tr.Result)
		}
		last := tr.Steps[len(tr.Steps)-1]
		if last.Bridge != "br-int" || last.Table != 25 || last.TableName != "MAC_SPOOF" || last.Priority != nil || last.Match != "" || last.Actions != "" {
			t.Errorf("last step %+v, want br-int table 25 MAC_SPOOF without a flow", last)
		}
	})

	t.Run("text output: a line per step, then the result", func(t *testing.T) {
		out, err := h1.Run(ctx, cliBinary, "trace", "--ovs-rundir", h1.RunDir(), "--unixctl", filepath.Join(h1.RunDir(), "vswitchd.ctl"),
			"--topology", cl.topo["tr-1"], "--port", trX1.id, "--dst", trY2.ip)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("dvrflow trace:\n%s", out)
		for _, want := range []string{"routed by router " + trRouter, "1 DVR_PROCESS_PHYSICAL", "set_field:" + dvrMAC1 + "->eth_src", "result: output on br-vlan port vl0 VLAN 107"} {
			if !strings.Contains(out, want) {
				t.Errorf("text output lacks %q", want)
			}
		}
	})

	t.Run("errors exit 2", func(t *testing.T) {
		cmd := h1.Command(ctx, cliBinary, "trace", "--ovs-rundir", h1.RunDir(), "--unixctl", filepath.Join(h1.RunDir(), "vswitchd.ctl"),
			"--bridge", "br-nope", "--flow", "in_port=1")
		out, err := cmd.CombinedOutput()
		if cmd.ProcessState == nil || cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), "br-nope: unknown bridge") {
			t.Errorf("dvrflow trace on an unknown bridge: %v, %s; want exit 2 and ovs-vswitchd's complaint", err, out)
		}
	})
}

// traceJSON is `dvrflow trace -o json` as docs/cli/trace.md documents it.
type traceJSON struct {
	Legs []struct {
		Bridge, Flow string
		Router       *struct{ ID string }
	}
	Steps  []traceStep
	Result struct {
		Kind    string
		Miss    bool
		Outputs []struct {
			Bridge, Port string
			VLAN         *int
			Tunnel       *traceTunnel
		}
	}
}

// traceStep is one step of the JSON.
type traceStep struct {
	Bridge    string
	Table     int
	TableName string `json:"table_name"`
	Priority  *int
	Match     string
	Actions   string
	Rule      string
	Owner     *struct{ Kind, ID, Name string }
}

type traceTunnel struct {
	Type     string
	VNI      int    `json:"vni"`
	RemoteIP string `json:"remote_ip"`
}

// find returns the first step on bridge whose actions contain action, nil if none.
func (tr *traceJSON) find(bridge, action string) *traceStep {
	for i, s := range tr.Steps {
		if s.Bridge == bridge && strings.Contains(s.Actions, action) {
			return &tr.Steps[i]
		}
	}
	return nil
}

// wantOnlyOutput checks that the packet leaves by exactly one port: bridge/port, with the
// VLAN (0: untagged) and the tunnel.
func (tr *traceJSON) wantOnlyOutput(t *testing.T, bridge, port string, vlan int, tunnel *traceTunnel) {
	t.Helper()
	if tr.Result.Kind != "output" || len(tr.Result.Outputs) != 1 {
		t.Fatalf("result %+v, want one output", tr.Result)
	}
	o := tr.Result.Outputs[0]
	gotVLAN := 0
	if o.VLAN != nil {
		gotVLAN = *o.VLAN
	}
	if o.Bridge != bridge || o.Port != port || gotVLAN != vlan {
		t.Errorf("output %s/%s VLAN %d, want %s/%s VLAN %d", o.Bridge, o.Port, gotVLAN, bridge, port, vlan)
	}
	if (o.Tunnel == nil) != (tunnel == nil) || (tunnel != nil && *o.Tunnel != *tunnel) {
		t.Errorf("tunnel %+v, want %+v", o.Tunnel, tunnel)
	}
}

// wantUplink checks that the packet leaves the host by exactly one port, bridge/port with
// the VLAN (0: untagged) and the tunnel. br-int's NORMAL floods a frame for a MAC it has not
// learned (a remote VM's, which only reaches br-int when a broadcast from it did) to the
// network's other local ports as well: those copies, on br-int, are allowed.
func (tr *traceJSON) wantUplink(t *testing.T, bridge, port string, vlan int, tunnel *traceTunnel) {
	t.Helper()
	if tr.Result.Kind != "output" {
		t.Fatalf("result %+v, want output", tr.Result)
	}
	var uplinks []int
	for i, o := range tr.Result.Outputs {
		if o.Bridge != "br-int" {
			uplinks = append(uplinks, i)
		}
	}
	if len(uplinks) != 1 {
		t.Fatalf("outputs %+v: want exactly one off br-int", tr.Result.Outputs)
	}
	only := *tr
	only.Result.Outputs = tr.Result.Outputs[uplinks[0] : uplinks[0]+1]
	only.wantOnlyOutput(t, bridge, port, vlan, tunnel)
}

// stderrOf returns a failed command's standard error.
func stderrOf(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(ee.Stderr)
	}
	return ""
}
