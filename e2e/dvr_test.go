package e2e

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
)

// The DVR cloud of TestDVRRoutedAcrossHosts, rendered per host from a template
// (testdata/demo/dvr_host.yaml.tmpl, which holds the networks, subnets and router; these
// constants repeat what the assertions need).
const (
	dvrRouterID = "e0000001-0000-4000-8000-000000000001"
	dvrNetA     = "a0000001-0000-4000-8000-000000000001"
	dvrNetB     = "a0000002-0000-4000-8000-000000000002"
	dvrSubnetA  = "b0000001-0000-4000-8000-000000000001"
	dvrSubnetB  = "b0000002-0000-4000-8000-000000000002"
	dvrVLANA    = 101
	dvrVLANB    = 102
	dvrGWA      = "10.0.1.1"
	dvrGWB      = "10.0.2.1"
	dvrGWMACA   = "fa:16:3e:aa:01:01"
	dvrGWMACB   = "fa:16:3e:aa:02:01"
	dvrMAC1     = "fa:16:3f:00:00:01"
	dvrMAC2     = "fa:16:3f:00:00:02"
	dvrMAC3     = "fa:16:3f:00:00:03"
)

// dvrHost is a host of the template's data: its name and DVR MAC.
type dvrHost struct{ Name, DVRMAC string }

// dvrVM is a VM of the template's data: its port, and the host it runs on.
type dvrVM struct{ Name, Host, PortID, NetworkID, SubnetID, MAC, IP string }

// Gateway returns the VM's default gateway (its subnet's router interface).
func (v dvrVM) Gateway() string {
	if v.SubnetID == dvrSubnetA {
		return dvrGWA
	}
	return dvrGWB
}

// dvrCloud is the template's data minus the host it is rendered for.
type dvrCloud struct {
	Hosts []dvrHost
	VMs   []dvrVM
}

// dvrVMData returns the data of VM name (say "a1") on host, in subnet "a" or "b": address
// 10.0.<1|2>.<10+n>, MAC fa:16:3e:00:0<1|2>:<10+n>, a port id starting with c00000<name>.
func dvrVMData(name, host, subnet string, n int) dvrVM {
	net, sub, third := dvrNetA, dvrSubnetA, "1"
	if subnet == "b" {
		net, sub, third = dvrNetB, dvrSubnetB, "2"
	}
	octet := strconv.Itoa(10 + n)
	prefix, mac := "10.0."+third+".", "fa:16:3e:00:0"+third+":"+octet
	return dvrVM{
		Name: name, Host: host, NetworkID: net, SubnetID: sub, MAC: mac, IP: prefix + octet,
		PortID: "c00000" + name + "-0000-4000-8000-0000000000" + octet,
	}
}

// render returns the topology of host.
func (c dvrCloud) render(t *testing.T, host string) []byte {
	t.Helper()
	tmpl, err := template.ParseFiles(filepath.Join("..", "testdata", "demo", "dvr_host.yaml.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	data := struct {
		Host string
		dvrCloud
	}{host, c}
	if err := tmpl.Execute(&b, data); err != nil {
		t.Fatalf("render the topology of %s: %v", host, err)
	}
	return b.Bytes()
}

// write renders the topology of each of hosts into dir/<host>.yaml, atomically (the running
// agents reload it), and returns the paths.
func (c dvrCloud) write(t *testing.T, dir string, hosts ...string) map[string]string {
	t.Helper()
	paths := map[string]string{}
	for _, h := range hosts {
		paths[h] = filepath.Join(dir, h+".yaml")
		writeFileAtomic(t, paths[h], c.render(t, h))
	}
	return paths
}

// initialDVRCloud: two hosts; a1, b1 on compute1 and a2, b2 on compute2 (a: subnet A on
// VLAN 101, b: subnet B on VLAN 102).
func initialDVRCloud() dvrCloud {
	return dvrCloud{
		Hosts: []dvrHost{{"compute1", dvrMAC1}, {"compute2", dvrMAC2}},
		VMs: []dvrVM{
			dvrVMData("a1", "compute1", "a", 1), dvrVMData("b1", "compute1", "b", 1),
			dvrVMData("a2", "compute2", "a", 2), dvrVMData("b2", "compute2", "b", 2),
		},
	}
}

// TestDVRTopologyTemplate checks that the template renders, for every host, a
// topology the agent accepts without a single problem: the VMs of the host under ports, the
// others under remote_ports, the router interfaces on every host.
func TestDVRTopologyTemplate(t *testing.T) {
	c := initialDVRCloud()
	c.Hosts = append(c.Hosts, dvrHost{"compute3", dvrMAC3})
	c.VMs = append(c.VMs, dvrVMData("b3", "compute2", "b", 3))
	for _, host := range []string{"compute1", "compute2", "compute3"} {
		t.Run(host, func(t *testing.T) {
			cfg, valid, problems, err := testbed.AgentTopology(c.render(t, host))
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("problem: %s", p)
			}
			if cfg.Host != host || cfg.DVRMAC == nil || !cfg.DistributedRoutingEnabled() {
				t.Errorf("host section: name %q, dvr_mac %q, distributed %v; want %s, its DVR MAC, true", cfg.Host, cfg.DVRMAC, cfg.DistributedRoutingEnabled(), host)
			}
			if len(valid.OtherHosts) != 2 {
				t.Errorf("other_hosts: %d entries, want 2", len(valid.OtherHosts))
			}
			local, routerPorts := 0, 0
			for _, p := range valid.Ports {
				if p.DeviceOwner == northbound.OwnerRouterInterfaceDistributed {
					routerPorts++
					continue
				}
				local++
			}
			want := 0
			for _, v := range c.VMs {
				if v.Host == host {
					want++
				}
			}
			if routerPorts != 2 || local != want || len(valid.RemotePorts) != len(c.VMs)-want {
				t.Errorf("%d router ports, %d VM ports, %d remote ports; want 2, %d, %d", routerPorts, local, len(valid.RemotePorts), want, len(c.VMs)-want)
			}
		})
	}
}

// TestDVRRoutedAcrossHosts is issue 4's acceptance test: two DVR compute hosts joined by a
// VLAN trunk, a running agent on each (which also creates the router namespaces), a
// distributed router with a subnet on each of two VLAN networks, VMs on both hosts and
// subnets; real pings, captures on the trunk and flow counters.
func TestDVRRoutedAcrossHosts(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	dir := t.TempDir()
	cloud := initialDVRCloud()
	topo := cloud.write(t, dir, "compute1", "compute2")

	h1 := sandbox.StartForTest(t, "dvr-h1")
	h2 := sandbox.StartForTest(t, "dvr-h2")
	startAgent(t, h1, topo["compute1"])
	startAgent(t, h2, topo["compute2"])
	hosts := map[string]*sandbox.Host{"compute1": h1, "compute2": h2}
	for _, h := range hosts {
		waitFor(t, 20*time.Second, "agent creates br-vlan on "+h.Name(), func() error { return bridgeExists(ctx, h, "br-vlan") })
	}
	if err := sandbox.Link(ctx, h1, "trunk1", h2, "trunk2"); err != nil {
		t.Fatal(err)
	}
	for h, port := range map[*sandbox.Host]string{h1: "trunk1", h2: "trunk2"} {
		if _, err := h.Vsctl(ctx, "add-port", "br-vlan", port); err != nil {
			t.Fatal(err)
		}
	}
	ns := "qrouter-" + dvrRouterID
	for _, h := range hosts {
		waitFor(t, 20*time.Second, "agent creates the router namespace on "+h.Name(), func() error {
			_, err := h.Run(ctx, "ip", "-n", ns, "addr", "show", "to", dvrGWB)
			return err
		})
	}
	vms := map[string]*sandbox.VM{}
	addVM := func(v dvrVM) {
		t.Helper()
		vm, err := hosts[v.Host].AddVM(ctx, sandbox.VMSpec{Name: v.Name, Bridge: "br-int", PortName: "tap" + v.PortID[:11],
			IfaceID: v.PortID, MAC: v.MAC, CIDR: v.IP + "/24", Gateway: v.Gateway()})
		if err != nil {
			t.Fatal(err)
		}
		vms[v.Name] = vm
	}
	ip := map[string]string{}
	for _, v := range cloud.VMs {
		addVM(v)
		ip[v.Name] = v.IP
	}
	waitFor(t, 20*time.Second, "a1 (compute1, subnet A) reaches b2 (compute2, subnet B) through the router", func() error {
		return vms["a1"].Ping(ctx, ip["b2"], 1)
	})

	t.Run("routed and switched pings within and across hosts", func(t *testing.T) {
		pingDVRMatrix(t, ctx, vms, ip)
	})

	t.Run("routed frames on the trunk carry the sender's DVR MAC and the provider VLAN", func(t *testing.T) {
		capture := startCapture(t, ctx, h1.Command, "-i", "trunk1", "-e", "-n", "-l")
		if err := vms["a1"].Ping(ctx, ip["b2"], 3); err != nil {
			t.Error(err)
		}
		if err := vms["a1"].Ping(ctx, ip["a2"], 3); err != nil {
			t.Error(err)
		}
		out := capture()
		var requests, replies, switched int
		for _, f := range parseTrunk(out) {
			if f.src == dvrGWMACA || f.src == dvrGWMACB {
				t.Errorf("a frame with a gateway MAC as source left its host: %s", f.text)
			}
			switch {
			case strings.Contains(f.text, ip["a1"]+" > "+ip["b2"]+": ICMP echo request"):
				requests++
				if f.src != dvrMAC1 || f.dst != cloud.VMs[3].MAC || f.vlan != dvrVLANB {
					t.Errorf("routed request a1→b2: src %s, dst %s, VLAN %d; want compute1's DVR MAC %s, b2's MAC %s, subnet B's VLAN %d:\n  %s",
						f.src, f.dst, f.vlan, dvrMAC1, cloud.VMs[3].MAC, dvrVLANB, f.text)
				}
			case strings.Contains(f.text, ip["b2"]+" > "+ip["a1"]+": ICMP echo reply"):
				replies++
				if f.src != dvrMAC2 || f.dst != cloud.VMs[0].MAC || f.vlan != dvrVLANA {
					t.Errorf("routed reply b2→a1: src %s, dst %s, VLAN %d; want compute2's DVR MAC %s, a1's MAC %s, subnet A's VLAN %d:\n  %s",
						f.src, f.dst, f.vlan, dvrMAC2, cloud.VMs[0].MAC, dvrVLANA, f.text)
				}
			case strings.Contains(f.text, ip["a1"]+" > "+ip["a2"]+": ICMP echo request"):
				switched++
				if f.src != cloud.VMs[0].MAC || f.vlan != dvrVLANA {
					t.Errorf("switched request a1→a2: src %s, VLAN %d; want a1's own MAC %s, VLAN %d:\n  %s", f.src, f.vlan, cloud.VMs[0].MAC, dvrVLANA, f.text)
				}
			}
		}
		if requests < 3 || replies < 3 || switched < 3 {
			t.Errorf("the trunk carried %d routed requests, %d routed replies and %d switched requests; want ≥ 3 each:\n%s", requests, replies, switched, out)
		}
	})

	t.Run("ARP for a gateway never leaves its host", func(t *testing.T) {
		drops := func() int {
			return bridgePackets(t, ctx, h1, "br-vlan", "table=1,", "priority=3,arp", "arp_tpa=") +
				bridgePackets(t, ctx, h2, "br-vlan", "table=1,", "priority=3,arp", "arp_tpa=")
		}
		before := drops()
		capture := startCapture(t, ctx, h1.Command, "-i", "trunk1", "-e", "-n", "-l")
		for _, v := range cloud.VMs {
			vm := vms[v.Name]
			if _, err := vm.Run(ctx, "ip", "neigh", "flush", "dev", sandbox.VMInterface); err != nil {
				t.Fatal(err)
			}
			out, err := vm.Run(ctx, "arping", "-c", "2", "-w", "3", "-I", sandbox.VMInterface, v.Gateway())
			if err != nil || !strings.Contains(strings.ToLower(out), "["+gatewayMAC(v.Gateway())+"]") {
				t.Errorf("%s on %s: its gateway %s did not answer with %s: %v\n%s", v.Name, v.Host, v.Gateway(), gatewayMAC(v.Gateway()), err, out)
			}
			if err := vm.Ping(ctx, v.Gateway(), 1); err != nil {
				t.Error(err)
			}
		}
		// Control: ARP for a VM on the other host does cross the trunk, so the capture sees ARP.
		if _, err := vms["a1"].Run(ctx, "arping", "-c", "1", "-w", "2", "-I", sandbox.VMInterface, ip["a2"]); err != nil {
			t.Error(err)
		}
		out := capture()
		control := 0
		for _, f := range parseTrunk(out) {
			if !strings.Contains(f.text, "ARP") {
				continue
			}
			for _, tok := range strings.FieldsFunc(f.text, func(r rune) bool { return r == ' ' || r == ',' }) {
				if tok == dvrGWA || tok == dvrGWB {
					t.Errorf("ARP for a gateway address on the trunk: %s", f.text)
				}
				if tok == ip["a2"] {
					control++
				}
			}
		}
		if control == 0 {
			t.Fatalf("the capture saw no ARP for a2 (the control), so it proves nothing:\n%s", out)
		}
		if n := drops() - before; n < len(cloud.VMs) {
			t.Errorf("br-vlan's gateway-ARP drops counted %d packets, want ≥ %d (one broadcast request per VM at least)", n, len(cloud.VMs))
		}
	})

	t.Run("a third host's DVR MAC is programmed within seconds", func(t *testing.T) {
		dvrFlows := func(h *sandbox.Host) ([]string, []string) {
			intPort := ofport(t, ctx, h, "int-br-vlan")
			phyPort := ofport(t, ctx, h, "phy-br-vlan")
			integ, err := flowsWith(ctx, h, "br-int", "table=0,", "priority=4,in_port="+intPort+",dl_src="+dvrMAC3+" ", "actions=goto_table:2")
			if err != nil {
				t.Fatal(err)
			}
			phys, err := flowsWith(ctx, h, "br-vlan", "table=3,", "priority=2,dl_src="+dvrMAC3+" ", "actions=output:"+phyPort)
			if err != nil {
				t.Fatal(err)
			}
			return integ, phys
		}
		for _, h := range hosts {
			if i, p := dvrFlows(h); len(i)+len(p) > 0 {
				t.Fatalf("%s has flows for compute3's DVR MAC before it was added:\n%s", h.Name(), lines(append(i, p...)))
			}
		}
		cloud.Hosts = append(cloud.Hosts, dvrHost{"compute3", dvrMAC3})
		start := time.Now()
		cloud.write(t, dir, "compute1", "compute2")
		for _, h := range hosts {
			waitFor(t, 3*time.Second, "flows for compute3's DVR MAC on "+h.Name(), func() error {
				if i, p := dvrFlows(h); len(i) != 1 || len(p) != 1 {
					return fmt.Errorf("br-int table 0: %d flows, br-vlan table 3: %d flows; want 1 each", len(i), len(p))
				}
				return nil
			})
		}
		t.Logf("compute3's DVR MAC programmed on both hosts %s after the topology files changed", time.Since(start).Round(time.Millisecond))
		if err := vms["a1"].Ping(ctx, ip["b2"], 2); err != nil {
			t.Errorf("routing after the reload: %v", err)
		}
	})

	t.Run("a new VM is routed across hosts", func(t *testing.T) {
		b3 := dvrVMData("b3", "compute2", "b", 3)
		cloud.VMs = append(cloud.VMs, b3)
		cloud.write(t, dir, "compute1", "compute2")
		addVM(b3)
		waitFor(t, 15*time.Second, "a1 (compute1, subnet A) reaches the new b3 (compute2, subnet B)", func() error {
			return vms["a1"].Ping(ctx, b3.IP, 1)
		})
		if err := vms["b3"].Ping(ctx, ip["a1"], 3); err != nil {
			t.Errorf("routed b3→a1: %v", err)
		}
		if err := vms["b3"].Ping(ctx, ip["b1"], 3); err != nil {
			t.Errorf("switched b3→b1: %v", err)
		}
		neigh, err := h1.Run(ctx, "ip", "-n", ns, "neigh", "show", b3.IP)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(neigh, b3.MAC) || !strings.Contains(neigh, "PERMANENT") {
			t.Errorf("compute1's router has no permanent neighbour entry %s → %s: %q", b3.IP, b3.MAC, neigh)
		}
	})
}

// gatewayMAC returns the router interface MAC of a gateway address.
func gatewayMAC(gw string) string {
	if gw == dvrGWA {
		return dvrGWMACA
	}
	return dvrGWMACB
}

// trunkFrame is one frame of a `tcpdump -e -n` capture.
type trunkFrame struct {
	src, dst string
	vlan     int // 0 when untagged
	text     string
}

var (
	tcpdumpMACs = regexp.MustCompile(`^\S+ ([0-9a-f:]{17}) > ([0-9a-f:]{17}),`)
	tcpdumpVLAN = regexp.MustCompile(`vlan (\d+),`)
)

// parseTrunk parses the frame lines of a `tcpdump -e -n` capture.
func parseTrunk(out string) []trunkFrame {
	var frames []trunkFrame
	for _, l := range strings.Split(out, "\n") {
		m := tcpdumpMACs.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		f := trunkFrame{src: m[1], dst: m[2], text: strings.TrimSpace(l)}
		if v := tcpdumpVLAN.FindStringSubmatch(l); v != nil {
			f.vlan, _ = strconv.Atoi(v[1])
		}
		frames = append(frames, f)
	}
	return frames
}

// ofport returns the ofport of an interface of the host.
func ofport(t *testing.T, ctx context.Context, h *sandbox.Host, iface string) string {
	t.Helper()
	out, err := h.Vsctl(ctx, "get", "Interface", iface, "ofport")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// bridgePackets returns the summed packet counters of the bridge's flows whose text contains
// every one of subs; it fails the test when there is none.
func bridgePackets(t *testing.T, ctx context.Context, h *sandbox.Host, br string, subs ...string) int {
	t.Helper()
	hits, err := flowsWith(ctx, h, br, subs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 {
		t.Fatalf("no flow with %q on %s of %s", subs, br, h.Name())
	}
	total := 0
	for _, l := range hits {
		if m := nPackets.FindStringSubmatch(l); m != nil {
			n, _ := strconv.Atoi(m[1])
			total += n
		}
	}
	return total
}

// pingDVRMatrix pings, 3 times each, between VMs a1, b1 (host 1) and a2, b2 (host 2) on
// subnets A and B of one distributed router: routed across hosts both ways, routed on one
// host, and switched across hosts. ip maps a VM's name to its address.
func pingDVRMatrix(t *testing.T, ctx context.Context, vms map[string]*sandbox.VM, ip map[string]string) {
	t.Helper()
	for _, c := range []struct{ from, to, what string }{
		{"a1", "b2", "routed A→B across hosts"},
		{"b2", "a1", "routed B→A across hosts"},
		{"b1", "a2", "routed B→A across hosts"},
		{"a2", "b1", "routed A→B across hosts"},
		{"a1", "b1", "routed on one host"},
		{"a1", "a2", "same subnet across hosts"},
		{"b2", "b1", "same subnet across hosts"},
	} {
		if err := vms[c.from].Ping(ctx, ip[c.to], 3); err != nil {
			t.Errorf("%s (%s): %v", c.what, c.from+"→"+c.to, err)
		}
	}
}
