package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// TestTunnelPeerRemoved: a peer that leaves the topology takes its tunnel port and every
// br-tun flow that points at it along; the other peer keeps its port and its flows. Without
// l2population the mesh follows other_hosts; with it, the ports follow the FDB (the remote
// ports bound on each VTEP).
func TestTunnelPeerRemoved(t *testing.T) {
	needsSwitch(t)
	self := overlayHost{name: "tr-h1", ip: "192.168.60.1"}
	peer2 := overlayHost{name: "tr-h2", ip: "192.168.60.2"}
	peer3 := overlayHost{name: "tr-h3", ip: "192.168.60.3"}
	net := overlayNet{id: "0c000000-0000-4000-8000-000000000001", netType: "vxlan", segment: 3001,
		subnetID: "5c000000-0000-4000-8000-000000000001", cidr: "10.3.0.0/24"}
	vm := overlayPort{host: self.name, id: "c1000000-0000-4000-8000-000000000001", network: net.id, subnet: net.subnetID, mac: "fa:16:3e:00:03:01", ip: "10.3.0.1"}
	on2 := overlayPort{host: peer2.name, id: "c2000000-0000-4000-8000-000000000002", network: net.id, subnet: net.subnetID, mac: "fa:16:3e:00:03:02", ip: "10.3.0.2"}
	on3 := overlayPort{host: peer3.name, id: "c3000000-0000-4000-8000-000000000003", network: net.id, subnet: net.subnetID, mac: "fa:16:3e:00:03:03", ip: "10.3.0.3"}
	const port2, port3 = "vxlan-c0a83c02", "vxlan-c0a83c03"

	for _, c := range []struct {
		name  string
		l2pop bool
		// before and after: the hosts and ports of the topology before and after the edit.
		hostsBefore, hostsAfter []overlayHost
		portsBefore, portsAfter []overlayPort
	}{
		{
			name:        "full mesh: other host removed",
			hostsBefore: []overlayHost{self, peer2, peer3}, hostsAfter: []overlayHost{self, peer2},
			portsBefore: []overlayPort{vm}, portsAfter: []overlayPort{vm},
		},
		{
			name: "l2pop: the VTEP's remote ports removed", l2pop: true,
			hostsBefore: []overlayHost{self, peer2, peer3}, hostsAfter: []overlayHost{self, peer2, peer3},
			portsBefore: []overlayPort{vm, on2, on3}, portsAfter: []overlayPort{vm, on2},
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			settings := map[string]any{"agent_mode": "legacy", "tunnel_types": []string{"vxlan"},
				"l2_population": c.l2pop, "arp_responder": c.l2pop, "bridge_mappings": map[string]string{}}
			topo := filepath.Join(t.TempDir(), "topology.json")
			writeFileAtomic(t, topo, overlayTopology(t, self, settings, c.hostsBefore, []overlayNet{net}, c.portsBefore))
			h := sandbox.StartForTest(t, "tr")
			startAgent(t, h, topo)
			waitFor(t, 20*time.Second, "agent creates br-tun", func() error { return bridgeExists(ctx, h, "br-tun") })
			addOverlayVM(t, ctx, h, "v1", vm, "24", "")

			// Both peers have a port, a classifier (in_port) and a place in the flooding
			// flow (output); with l2pop also a unicast flow to the remote VM's MAC.
			var of2, of3 int
			waitFor(t, 20*time.Second, "tunnel ports to both peers with their flows", func() error {
				var err error
				if of2, err = tunnelOfport(ctx, h, port2); err != nil {
					return err
				}
				if of3, err = tunnelOfport(ctx, h, port3); err != nil {
					return err
				}
				for _, of := range []int{of2, of3} {
					if err := portFlowsPresent(ctx, h, of); err != nil {
						return err
					}
				}
				return nil
			})
			if c.l2pop {
				mustFlow(t, ctx, h, "table=20,", "dl_dst="+on3.mac, "output:"+strconv.Itoa(of3))
				mustFlow(t, ctx, h, "table=21,", "arp_tpa="+on3.ip+" ")
			}
			before2 := portFlows(t, ctx, h, of2)

			writeFileAtomic(t, topo, overlayTopology(t, self, settings, c.hostsAfter, []overlayNet{net}, c.portsAfter))

			waitFor(t, 20*time.Second, port3+" leaves br-tun and OVSDB", func() error {
				ports, err := h.Vsctl(ctx, "list-ports", "br-tun")
				if err != nil {
					return err
				}
				if slices.Contains(strings.Fields(ports), port3) {
					return fmt.Errorf("br-tun ports: %s", strings.Join(strings.Fields(ports), " "))
				}
				ifaces, err := h.Vsctl(ctx, "--columns=name", "find", "Interface", "name="+port3)
				if err != nil {
					return err
				}
				if strings.TrimSpace(ifaces) != "" {
					return fmt.Errorf("interface %s still in OVSDB", port3)
				}
				return nil
			})
			if left := portFlows(t, ctx, h, of3); len(left) > 0 {
				t.Errorf("flows on br-tun still point at the removed port %s (ofport %d):\n%s", port3, of3, lines(left))
			}
			if c.l2pop {
				for _, sub := range []string{"dl_dst=" + on3.mac, "arp_tpa=" + on3.ip + " "} {
					if left, err := flowsWith(ctx, h, "br-tun", sub); err != nil || len(left) > 0 {
						t.Errorf("br-tun flows for the removed remote port (%s): %v\n%s", sub, err, lines(left))
					}
				}
			}

			// The other peer is untouched: same port, same ofport, same flows.
			if of, err := tunnelOfport(ctx, h, port2); err != nil || of != of2 {
				t.Errorf("%s: ofport %d (%v), want %d as before", port2, of, err, of2)
			}
			after2 := portFlows(t, ctx, h, of2)
			if err := portFlowsPresent(ctx, h, of2); err != nil {
				t.Errorf("%s lost flows: %v\nbefore:\n%s\nafter:\n%s", port2, err, lines(before2), lines(after2))
			}
			if c.l2pop {
				mustFlow(t, ctx, h, "table=20,", "dl_dst="+on2.mac, "output:"+strconv.Itoa(of2))
				mustFlow(t, ctx, h, "table=21,", "arp_tpa="+on2.ip+" ")
			}
			if len(after2) < len(before2) {
				t.Errorf("flows pointing at %s: %d before, %d after:\nbefore:\n%s\nafter:\n%s", port2, len(before2), len(after2), lines(before2), lines(after2))
			}
		})
	}
}

// tunnelOfport returns the ofport of a tunnel port, or an error while it has none.
func tunnelOfport(ctx context.Context, h *sandbox.Host, port string) (int, error) {
	out, err := h.Vsctl(ctx, "get", "Interface", port, "ofport")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%s: ofport %q", port, strings.TrimSpace(out))
	}
	return n, nil
}

// portFlows returns br-tun's flows that match on the ofport (in_port=N) or send to it
// (output:N).
func portFlows(t *testing.T, ctx context.Context, h *sandbox.Host, ofport int) []string {
	t.Helper()
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", "br-tun")
	if err != nil {
		t.Fatal(err)
	}
	mention := regexp.MustCompile(`(in_port=|output:)` + strconv.Itoa(ofport) + `([^0-9]|$)`)
	var hits []string
	for _, l := range strings.Split(out, "\n") {
		if mention.MatchString(l) {
			hits = append(hits, strings.TrimSpace(l))
		}
	}
	return hits
}

// portFlowsPresent checks that br-tun classifies packets from the ofport (table 0,
// in_port=N) and floods to it (table 22, output:N).
func portFlowsPresent(ctx context.Context, h *sandbox.Host, ofport int) error {
	n := strconv.Itoa(ofport)
	for _, subs := range [][]string{{"in_port=" + n + " "}, {"table=22,", "output:" + n}} {
		hits, err := flowsWith(ctx, h, "br-tun", subs...)
		if err != nil {
			return err
		}
		if len(hits) == 0 {
			return fmt.Errorf("no br-tun flow with %q", subs)
		}
	}
	return nil
}

// mustFlow fails the test unless br-tun has a flow containing every one of subs.
func mustFlow(t *testing.T, ctx context.Context, h *sandbox.Host, subs ...string) {
	t.Helper()
	hits, err := flowsWith(ctx, h, "br-tun", subs...)
	if err != nil {
		t.Fatal(err)
	}
	if len(hits) == 0 {
		t.Errorf("no br-tun flow with %q", subs)
	}
}
