package e2e

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// overlayHost is one simulated host of a tunnelled cloud: its name, tunnel endpoint and
// DVR MAC (empty without DVR).
type overlayHost struct {
	name, ip, dvrMAC string
}

// overlayNet is a network with one subnet: tunnelled, or a vlan network on physnet.
type overlayNet struct {
	id, netType string
	physnet     string // vlan networks: the physical network
	segment     int
	subnetID    string
	cidr        string
	gateway     string // empty: no gateway
}

// overlayPort is a port of the cloud. host "" means "on every host" (a distributed router
// interface: the same MAC and IP everywhere).
type overlayPort struct {
	host, id, network, subnet, mac, ip string
	owner, deviceID                    string // device_owner ("" = compute:nova), router id
	// unlisted leaves the port out of the other hosts' remote_ports, as a topology written
	// by hand leaves out the remote copies of a distributed router's interfaces.
	unlisted bool
}

// overlayTopology renders the topology file that self's agent reads: its host section
// (settings plus local_ip, dvr_mac), the other hosts as tunnel endpoints, the networks, the
// ports bound on self in ports and every other host's ports in remote_ports (so that the
// l2population FDB and the ARP responder have them). A port on every host is in both.
func overlayTopology(t *testing.T, self overlayHost, settings map[string]any, hosts []overlayHost, nets []overlayNet, ports []overlayPort) []byte {
	t.Helper()
	host := map[string]any{"name": self.name, "local_ip": self.ip}
	if self.dvrMAC != "" {
		host["dvr_mac"] = self.dvrMAC
	}
	for k, v := range settings {
		host[k] = v
	}
	var others []map[string]any
	for _, h := range hosts {
		if h.name == self.name {
			continue
		}
		o := map[string]any{"name": h.name, "ip": h.ip}
		if h.dvrMAC != "" {
			o["dvr_mac"] = h.dvrMAC
		}
		if tt, ok := settings["tunnel_types"]; ok {
			o["tunnel_types"] = tt
		}
		others = append(others, o)
	}
	var networks, subnets []map[string]any
	for _, n := range nets {
		network := map[string]any{"id": n.id, "network_type": n.netType, "segmentation_id": n.segment}
		if n.physnet != "" {
			network["physical_network"] = n.physnet
		}
		networks = append(networks, network)
		s := map[string]any{"id": n.subnetID, "network_id": n.id, "cidr": n.cidr}
		if n.gateway != "" {
			s["gateway_ip"] = n.gateway
		} else {
			s["gateway_ip"] = nil
		}
		subnets = append(subnets, s)
	}
	local, remote := []map[string]any{}, []map[string]any{}
	for _, p := range ports {
		owner := p.owner
		if owner == "" {
			owner = "compute:nova"
		}
		entry := func() map[string]any {
			e := map[string]any{"id": p.id, "network_id": p.network, "mac": p.mac, "device_owner": owner,
				"fixed_ips": []map[string]any{{"subnet_id": p.subnet, "ip_address": p.ip}}}
			if p.deviceID != "" {
				e["device_id"] = p.deviceID
			}
			return e
		}
		if p.host == "" || p.host == self.name {
			local = append(local, entry())
		}
		for _, h := range hosts {
			if h.name != self.name && (p.host == "" || p.host == h.name) && !p.unlisted {
				e := entry()
				e["host"] = h.name
				remote = append(remote, e)
			}
		}
	}
	data, err := json.MarshalIndent(map[string]any{
		"host": host, "other_hosts": others, "networks": networks, "subnets": subnets,
		"ports": local, "remote_ports": remote,
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// startOverlayHosts starts one sandbox host per entry of hosts, joins the first two by an
// underlay veth (ul-<name> on each side) on a br-phy bridge carrying the host's tunnel
// endpoint (a /24), writes each host's topology (made by topo) and starts its agent, and
// waits until every agent has made br-tun.
func startOverlayHosts(t *testing.T, ctx context.Context, hosts []overlayHost, topo func(self overlayHost) []byte) []*sandbox.Host {
	t.Helper()
	if len(hosts) != 2 {
		t.Fatalf("startOverlayHosts joins exactly two hosts, got %d", len(hosts))
	}
	var hs []*sandbox.Host
	for _, oh := range hosts {
		hs = append(hs, sandbox.StartForTest(t, oh.name))
	}
	if err := sandbox.Link(ctx, hs[0], underlayIf, hs[1], underlayIf); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for i, oh := range hosts {
		if err := hs[i].AddUnderlay(ctx, sandbox.UnderlaySpec{Bridge: "br-phy", Uplink: underlayIf, CIDR: oh.ip + "/24"}); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, oh.name+".json")
		writeFileAtomic(t, path, topo(oh))
		startAgent(t, hs[i], path)
	}
	for _, h := range hs {
		waitFor(t, 20*time.Second, "agent creates br-tun on "+h.Name(), func() error { return bridgeExists(ctx, h, "br-tun") })
	}
	return hs
}

// underlayIf is the underlay veth's name on every host.
const underlayIf = "ul0"

// addOverlayVM plugs a VM for port p into br-int of h.
func addOverlayVM(t *testing.T, ctx context.Context, h *sandbox.Host, name string, p overlayPort, prefixLen, gateway string) *sandbox.VM {
	t.Helper()
	v, err := h.AddVM(ctx, sandbox.VMSpec{Name: name, Bridge: "br-int", PortName: "tap" + p.id[:11], IfaceID: p.id,
		MAC: p.mac, CIDR: p.ip + "/" + prefixLen, Gateway: gateway})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// packetStart matches the first line of a packet in tcpdump's output (default timestamps).
var packetStart = regexp.MustCompile(`^\d{2}:\d{2}:\d{2}\.\d+ `)

// packets splits tcpdump's output into packets: a VXLAN packet's inner frame is printed
// on the lines after the outer header; they are joined to it with " | ".
func packets(out string) []string {
	var ps []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "":
		case packetStart.MatchString(l) || len(ps) == 0:
			ps = append(ps, l)
		default:
			ps[len(ps)-1] += " | " + l
		}
	}
	return ps
}

// Overlay test cloud: a VXLAN and a GRE network with the same IP range (isolation must come
// from L2), one VM of each on each host.
var (
	ovHosts = []overlayHost{{name: "ov-h1", ip: "192.168.50.1"}, {name: "ov-h2", ip: "192.168.50.2"}}
	ovNets  = []overlayNet{
		{id: "0a000000-0000-4000-8000-000000000001", netType: "vxlan", segment: 1001, subnetID: "5b000000-0000-4000-8000-000000000001", cidr: "10.0.0.0/24"},
		{id: "0a000000-0000-4000-8000-000000000002", netType: "gre", segment: 2001, subnetID: "5b000000-0000-4000-8000-000000000002", cidr: "10.0.0.0/24"},
	}
	ovA1 = overlayPort{host: "ov-h1", id: "a1000000-0000-4000-8000-000000000011", network: ovNets[0].id, subnet: ovNets[0].subnetID, mac: "fa:16:3e:00:01:11", ip: "10.0.0.11"}
	ovA2 = overlayPort{host: "ov-h2", id: "a2000000-0000-4000-8000-000000000012", network: ovNets[0].id, subnet: ovNets[0].subnetID, mac: "fa:16:3e:00:01:12", ip: "10.0.0.12"}
	ovB1 = overlayPort{host: "ov-h1", id: "b1000000-0000-4000-8000-000000000021", network: ovNets[1].id, subnet: ovNets[1].subnetID, mac: "fa:16:3e:00:02:21", ip: "10.0.0.21"}
	ovB2 = overlayPort{host: "ov-h2", id: "b2000000-0000-4000-8000-000000000022", network: ovNets[1].id, subnet: ovNets[1].subnetID, mac: "fa:16:3e:00:02:22", ip: "10.0.0.22"}
)

// TestOverlayVXLANandGRE is issue 6's acceptance test for tunnels: two hosts joined by an
// underlay, agents with VXLAN and GRE, l2population and the ARP responder.
func TestOverlayVXLANandGRE(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	settings := map[string]any{"agent_mode": "legacy", "tunnel_types": []string{"vxlan", "gre"},
		"l2_population": true, "arp_responder": true, "bridge_mappings": map[string]string{}}
	ports := []overlayPort{ovA1, ovA2, ovB1, ovB2}
	hs := startOverlayHosts(t, ctx, ovHosts, func(self overlayHost) []byte {
		return overlayTopology(t, self, settings, ovHosts, ovNets, ports)
	})
	h1, h2 := hs[0], hs[1]
	a1 := addOverlayVM(t, ctx, h1, "a1", ovA1, "24", "")
	b1 := addOverlayVM(t, ctx, h1, "b1", ovB1, "24", "")
	a2 := addOverlayVM(t, ctx, h2, "a2", ovA2, "24", "")
	b2 := addOverlayVM(t, ctx, h2, "b2", ovB2, "24", "")

	waitFor(t, 30*time.Second, "VM a1 reaches a2 over VXLAN", func() error { return a1.Ping(ctx, ovA2.ip, 1) })
	waitFor(t, 30*time.Second, "VM b1 reaches b2 over GRE", func() error { return b1.Ping(ctx, ovB2.ip, 1) })

	t.Run("tunnel ports as Neutron names them", func(t *testing.T) {
		for h, peer := range map[*sandbox.Host]string{h1: "c0a83202", h2: "c0a83201"} {
			out, err := h.Vsctl(ctx, "list-ports", "br-tun")
			if err != nil {
				t.Fatal(err)
			}
			got := strings.Fields(out)
			for _, want := range []string{"vxlan-" + peer, "gre-" + peer} {
				if !strings.Contains(" "+strings.Join(got, " ")+" ", " "+want+" ") {
					t.Errorf("%s: br-tun ports %v lack %s", h.Name(), got, want)
				}
			}
		}
	})

	t.Run("same network pings across hosts, both tunnel types", func(t *testing.T) {
		for _, c := range []struct {
			from *sandbox.VM
			to   string
		}{{a1, ovA2.ip}, {a2, ovA1.ip}, {b1, ovB2.ip}, {b2, ovB1.ip}} {
			if err := c.from.Ping(ctx, c.to, 3); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("underlay carries VXLAN for one network and GRE for the other", func(t *testing.T) {
		capture := startCapture(t, ctx, h1.Command, "-i", underlayIf, "-e", "-n", "-l", "udp port 4789 or ip proto 47")
		_ = a1.Ping(ctx, ovA2.ip, 3)
		_ = b1.Ping(ctx, ovB2.ip, 3)
		out := capture()
		aICMP := "10.0.0.11 > 10.0.0.12: ICMP echo request"
		bICMP := "10.0.0.21 > 10.0.0.22: ICMP echo request"
		var vxA, greB int
		for _, p := range packets(out) {
			isVXLAN := strings.Contains(p, "VXLAN")
			isGRE := strings.Contains(p, "GRE")
			switch {
			case strings.Contains(p, aICMP):
				if !isVXLAN || isGRE || !strings.Contains(p, "vni 1001") {
					t.Errorf("the VXLAN network's ping not in VXLAN VNI 1001 on the underlay: %s", p)
				}
				vxA++
			case strings.Contains(p, bICMP):
				if !isGRE || isVXLAN || !strings.Contains(p, "key=0x7d1") {
					t.Errorf("the GRE network's ping not in GRE key 2001 on the underlay: %s", p)
				}
				greB++
			}
		}
		if vxA < 3 || greB < 3 {
			t.Fatalf("underlay capture: %d VXLAN-encapsulated pings of a1, %d GRE-encapsulated pings of b1; want ≥ 3 each:\n%s", vxA, greB, out)
		}
	})

	t.Run("different networks are isolated at L2", func(t *testing.T) {
		type watch struct {
			vm  *sandbox.VM
			mac string
		}
		// Each network's VMs watch for frames from the other network's VM on h1.
		var stops []func() string
		watches := []watch{{b1, ovA1.mac}, {b2, ovA1.mac}, {a1, ovB1.mac}, {a2, ovB1.mac}}
		for _, w := range watches {
			stops = append(stops, startCapture(t, ctx, w.vm.Command, "-i", "eth0", "-e", "-n", "-l", "ether src "+w.mac))
		}
		for _, c := range []struct {
			from *sandbox.VM
			to   string
		}{{a1, ovB1.ip}, {a1, ovB2.ip}, {b1, ovA1.ip}, {b1, ovA2.ip}} {
			if err := c.from.Ping(ctx, c.to, 2); err == nil {
				t.Errorf("VM %s reached %s on the other network", c.from.Name(), c.to)
			}
		}
		for i, stop := range stops {
			if out := stop(); countFrames(out) > 0 {
				t.Errorf("%s received %d frames from %s of the other network:\n%s", watches[i].vm.Name(), countFrames(out), watches[i].mac, out)
			}
		}
	})

	t.Run("ARP for a remote VM is answered locally, no ARP request crosses the underlay", func(t *testing.T) {
		// The responder answers broadcast requests (Neutron's too: a unicast request goes
		// to its destination), so arping sends broadcasts only (-b) and the kernel's
		// neighbour caches are flushed lest a unicast refresh of an earlier ping's entry
		// cross the underlay meanwhile.
		for _, vm := range []*sandbox.VM{a1, b1} {
			if _, err := vm.Run(ctx, "ip", "neigh", "flush", "dev", "eth0"); err != nil {
				t.Fatal(err)
			}
		}
		responder := func(ip string) int { return tunFlowPackets(t, ctx, h1, "table=21,", "arp_tpa="+ip+" ") }
		before := map[string]int{ovA2.ip: responder(ovA2.ip), ovB2.ip: responder(ovB2.ip)}
		capture := startCapture(t, ctx, h1.Command, "-i", underlayIf, "-e", "-n", "-l", "udp port 4789 or ip proto 47")
		for _, c := range []struct {
			from    *sandbox.VM
			target  overlayPort
			tunnel  string
			unknown string // an address nobody holds: its request must be flooded
		}{
			{a1, ovA2, "VXLAN", "10.0.0.99"},
			{b1, ovB2, "GRE", "10.0.0.98"},
		} {
			out, err := c.from.Run(ctx, "arping", "-b", "-c", "2", "-w", "3", "-I", "eth0", c.target.ip)
			if err != nil {
				t.Errorf("arping %s from %s: %v", c.target.ip, c.from.Name(), err)
			}
			want := "Unicast reply from " + c.target.ip + " [" + strings.ToUpper(c.target.mac) + "]"
			if n := strings.Count(out, want); n < 2 {
				t.Errorf("arping %s from %s: %d replies with %s's MAC %s, want 2:\n%s", c.target.ip, c.from.Name(), n, c.target.ip, c.target.mac, out)
			}
			if strings.Count(out, "Unicast reply") != strings.Count(out, want) {
				t.Errorf("arping %s from %s: a reply with another MAC than %s:\n%s", c.target.ip, c.from.Name(), c.target.mac, out)
			}
			// The control: a request the responder cannot answer is flooded to the peer, so
			// the capture does see inner ARP requests when there are any.
			_, _ = c.from.Run(ctx, "arping", "-b", "-c", "1", "-w", "1", "-I", "eth0", c.unknown)
		}
		out := capture()
		for ip, n := range before {
			if answered := responder(ip) - n; answered < 2 {
				t.Errorf("br-tun's ARP responder flow for %s answered %d requests, want ≥ 2", ip, answered)
			}
		}
		flooded := map[string]string{"10.0.0.99": "VXLAN", "10.0.0.98": "GRE"}
		seen := map[string]bool{}
		for _, p := range packets(out) {
			for _, target := range []string{ovA2.ip, ovB2.ip} {
				if strings.Contains(p, "who-has "+target+" ") {
					t.Errorf("an ARP request for %s (answerable by the ARP responder) crossed the underlay: %s", target, p)
				}
			}
			for target, tunnel := range flooded {
				if strings.Contains(p, "who-has "+target+" ") && strings.Contains(p, tunnel) {
					seen[target] = true
				}
			}
		}
		for target, tunnel := range flooded {
			if !seen[target] {
				t.Errorf("control: the ARP request for unknown %s was not seen flooded in %s on the underlay; the capture cannot see inner ARP:\n%s", target, tunnel, out)
			}
		}
	})
}

// tunFlowPackets returns the summed packet counters of the br-tun flows whose text contains
// every one of subs; it fails the test when there is none.
func tunFlowPackets(t *testing.T, ctx context.Context, h *sandbox.Host, subs ...string) int {
	t.Helper()
	hits, err := flowsWith(ctx, h, "br-tun", subs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 {
		t.Fatalf("no flow with %q on br-tun", subs)
	}
	total := 0
	for _, l := range hits {
		if m := nPackets.FindStringSubmatch(l); m != nil {
			var n int
			if _, err := fmtSscan(m[1], &n); err != nil {
				t.Fatal(err)
			}
			total += n
		}
	}
	return total
}

// DVR over tunnels: two VXLAN subnets joined by a distributed router present on both
// hosts (the same interface MACs and IPs everywhere), a VM of each subnet on each host.
var (
	dvHosts = []overlayHost{
		{name: "dv-h1", ip: "192.168.51.1", dvrMAC: "fa:16:3f:00:00:01"},
		{name: "dv-h2", ip: "192.168.51.2", dvrMAC: "fa:16:3f:00:00:02"},
	}
	dvNets = []overlayNet{
		{id: "0d000000-0000-4000-8000-000000000001", netType: "vxlan", segment: 1101, subnetID: "5d000000-0000-4000-8000-000000000001", cidr: "10.1.1.0/24", gateway: "10.1.1.1"},
		{id: "0d000000-0000-4000-8000-000000000002", netType: "vxlan", segment: 1102, subnetID: "5d000000-0000-4000-8000-000000000002", cidr: "10.1.2.0/24", gateway: "10.1.2.1"},
	}
	dvRouter = "e0000000-0000-4000-8000-000000000001"
	dvQrA    = overlayPort{id: "da000000-0000-4000-8000-000000000001", network: dvNets[0].id, subnet: dvNets[0].subnetID, mac: "fa:16:3e:bb:01:01", ip: "10.1.1.1", owner: "network:router_interface_distributed", deviceID: dvRouter}
	dvQrB    = overlayPort{id: "db000000-0000-4000-8000-000000000002", network: dvNets[1].id, subnet: dvNets[1].subnetID, mac: "fa:16:3e:bb:02:01", ip: "10.1.2.1", owner: "network:router_interface_distributed", deviceID: dvRouter}
	dvA1     = overlayPort{host: "dv-h1", id: "a1d00000-0000-4000-8000-000000000011", network: dvNets[0].id, subnet: dvNets[0].subnetID, mac: "fa:16:3e:10:01:11", ip: "10.1.1.11"}
	dvB1     = overlayPort{host: "dv-h1", id: "b1d00000-0000-4000-8000-000000000021", network: dvNets[1].id, subnet: dvNets[1].subnetID, mac: "fa:16:3e:10:02:11", ip: "10.1.2.11"}
	dvA2     = overlayPort{host: "dv-h2", id: "a2d00000-0000-4000-8000-000000000012", network: dvNets[0].id, subnet: dvNets[0].subnetID, mac: "fa:16:3e:10:01:22", ip: "10.1.1.22"}
	dvB2     = overlayPort{host: "dv-h2", id: "b2d00000-0000-4000-8000-000000000022", network: dvNets[1].id, subnet: dvNets[1].subnetID, mac: "fa:16:3e:10:02:22", ip: "10.1.2.22"}
)

// innerEther finds the inner Ethernet addresses of a VXLAN packet in tcpdump -e output
// joined by packets: "... vni N | SRC > DST, ethertype ...".
var innerEther = regexp.MustCompile(`vni (\d+) \| ([0-9a-f:]{17}) > ([0-9a-f:]{17}),`)

// TestOverlayDVR is issue 6's acceptance test for DVR over tunnels: two DVR hosts joined by
// a VXLAN underlay with l2population, the agents creating the router namespaces
// themselves; routed pings across hosts, and the sender's DVR MAC on the wire.
func TestOverlayDVR(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	settings := map[string]any{"agent_mode": "dvr", "enable_distributed_routing": true, "tunnel_types": []string{"vxlan"},
		"l2_population": true, "arp_responder": true, "bridge_mappings": map[string]string{}}
	ports := []overlayPort{dvQrA, dvQrB, dvA1, dvB1, dvA2, dvB2}
	hs := startOverlayHosts(t, ctx, dvHosts, func(self overlayHost) []byte {
		return overlayTopology(t, self, settings, dvHosts, dvNets, ports)
	})
	h1, h2 := hs[0], hs[1]
	for _, h := range hs {
		waitRouterGateways(t, ctx, h, dvRouter, dvQrA.ip, dvQrB.ip)
	}
	vms := map[string]*sandbox.VM{
		"a1": addOverlayVM(t, ctx, h1, "a1", dvA1, "24", dvNets[0].gateway),
		"b1": addOverlayVM(t, ctx, h1, "b1", dvB1, "24", dvNets[1].gateway),
		"a2": addOverlayVM(t, ctx, h2, "a2", dvA2, "24", dvNets[0].gateway),
		"b2": addOverlayVM(t, ctx, h2, "b2", dvB2, "24", dvNets[1].gateway),
	}
	ip := map[string]string{"a1": dvA1.ip, "b1": dvB1.ip, "a2": dvA2.ip, "b2": dvB2.ip}
	waitFor(t, 30*time.Second, "a1 (dv-h1, subnet A) reaches b2 (dv-h2, subnet B) through the router", func() error {
		return vms["a1"].Ping(ctx, dvB2.ip, 1)
	})

	t.Run("routed and switched pings within and across hosts", func(t *testing.T) {
		pingDVRMatrix(t, ctx, vms, ip)
	})

	t.Run("routed frames in the tunnel carry the sender's DVR MAC", func(t *testing.T) {
		capture := startCapture(t, ctx, h1.Command, "-i", underlayIf, "-e", "-n", "-l", "udp port 4789")
		if err := vms["a1"].Ping(ctx, dvB2.ip, 3); err != nil {
			t.Error(err)
		}
		if err := vms["a1"].Ping(ctx, dvA2.ip, 3); err != nil {
			t.Error(err)
		}
		out := capture()
		vni := map[string]string{dvNets[0].id: "1101", dvNets[1].id: "1102"}
		var requests, replies, switched int
		for _, p := range packets(out) {
			m := innerEther.FindStringSubmatch(p)
			if m == nil {
				continue
			}
			gotVNI, src, dst := m[1], m[2], m[3]
			if src == dvQrA.mac || src == dvQrB.mac {
				t.Errorf("a frame with a router interface MAC as source left its host: %s", p)
			}
			switch {
			case strings.Contains(p, dvA1.ip+" > "+dvB2.ip+": ICMP echo request"):
				requests++
				if src != dvHosts[0].dvrMAC || dst != dvB2.mac || gotVNI != vni[dvB2.network] {
					t.Errorf("routed request a1→b2: inner src %s, dst %s, VNI %s; want dv-h1's DVR MAC %s, b2's MAC %s, subnet B's VNI %s:\n  %s",
						src, dst, gotVNI, dvHosts[0].dvrMAC, dvB2.mac, vni[dvB2.network], p)
				}
			case strings.Contains(p, dvB2.ip+" > "+dvA1.ip+": ICMP echo reply"):
				replies++
				if src != dvHosts[1].dvrMAC || dst != dvA1.mac || gotVNI != vni[dvA1.network] {
					t.Errorf("routed reply b2→a1: inner src %s, dst %s, VNI %s; want dv-h2's DVR MAC %s, a1's MAC %s, subnet A's VNI %s:\n  %s",
						src, dst, gotVNI, dvHosts[1].dvrMAC, dvA1.mac, vni[dvA1.network], p)
				}
			case strings.Contains(p, dvA1.ip+" > "+dvA2.ip+": ICMP echo request"):
				switched++
				if src != dvA1.mac || dst != dvA2.mac || gotVNI != vni[dvA1.network] {
					t.Errorf("switched request a1→a2: inner src %s, dst %s, VNI %s; want a1's MAC, a2's MAC, subnet A's VNI:\n  %s", src, dst, gotVNI, p)
				}
			}
		}
		if requests < 3 || replies < 3 || switched < 3 {
			t.Fatalf("underlay capture: %d routed requests, %d routed replies, %d switched requests; want ≥ 3 each:\n%s", requests, replies, switched, out)
		}
	})

	t.Run("the VM sees the gateway MAC as the source of routed packets", func(t *testing.T) {
		capture := startCapture(t, ctx, vms["b2"].Command, "-i", "eth0", "-e", "-n", "-l", "icmp")
		if err := vms["a1"].Ping(ctx, dvB2.ip, 3); err != nil {
			t.Error(err)
		}
		out := capture()
		n := 0
		for _, l := range strings.Split(out, "\n") {
			if !strings.Contains(l, dvA1.ip+" > "+dvB2.ip+": ICMP echo request") {
				continue
			}
			n++
			if !strings.Contains(l, dvQrB.mac+" > "+dvB2.mac) {
				t.Errorf("routed request delivered to b2 without subnet B's gateway MAC %s as source: %s", dvQrB.mac, l)
			}
		}
		if n < 3 {
			t.Fatalf("b2 received %d routed requests, want ≥ 3:\n%s", n, out)
		}
	})
}
