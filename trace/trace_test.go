package trace

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// fakeSwitch answers ofproto/trace with a captured trace per in_port.
type fakeSwitch struct {
	t     *testing.T
	files map[string]string // in_port name → testdata file
	asked []string
}

func (f *fakeSwitch) Call(_ context.Context, method string, args ...string) (string, error) {
	f.asked = append(f.asked, strings.Join(args, " "))
	if method != "ofproto/trace" || len(args) != 3 || args[0] != "--names" {
		f.t.Fatalf("asked %s %q", method, args)
	}
	for port, file := range f.files {
		if strings.HasPrefix(args[2], `in_port="`+port+`"`) {
			b, err := os.ReadFile(filepath.Join("testdata", file+".txt"))
			return string(b), err
		}
	}
	f.t.Fatalf("no capture for %s", args[2])
	return "", nil
}

// tableExplainer names every flow's table and rule after its table.
type tableExplainer struct{}

func (tableExplainer) Explain(bridge string, f *dumptext.Flow) explain.Explanation {
	return explain.Explanation{TableName: "T" + bridge, Rule: "R" + strings.TrimPrefix(bridge, "br-"), Owner: &explain.Owner{Kind: explain.KindBridge, ID: bridge}}
}

func (tableExplainer) TableName(bridge string, table uint8) string { return "T" + bridge }

// The node of the captures (host tr-1 of e2e's TestTrace).
func captureNode() Node {
	mac := func(s string) net.HardwareAddr { m, _ := net.ParseMAC(s); return m }
	ip := netip.MustParseAddr
	inv := &ovsdb.Inventory{Bridges: []ovsdb.InventoryBridge{
		{Name: "br-int", Ports: []ovsdb.InventoryPort{
			{Name: "tapc07a1000-00", ExternalIDs: map[string]string{"iface-id": "c07a1000-0000-4000-8000-0000000000a1", "attached-mac": "fa:16:3e:07:01:11"}},
			{Name: "tapc07b1000-00", ExternalIDs: map[string]string{"iface-id": "c07b1000-0000-4000-8000-0000000000b1", "attached-mac": "fa:16:3e:07:02:11"}},
			{Name: "qr-d0710000-00", ExternalIDs: map[string]string{"iface-id": "d0710000-0000-4000-8000-000000000001"}},
			{Name: "qr-d0720000-00", ExternalIDs: map[string]string{"iface-id": "d0720000-0000-4000-8000-000000000002"}},
		}},
		{Name: "br-vlan", Tables: map[uint8]string{25: "unused"}, Ports: []ovsdb.InventoryPort{{Name: "vl0"}}},
	}}
	sx, sy := "5b000007-0000-4000-8000-000000000001", "5b000007-0000-4000-8000-000000000002"
	nx, ny := "0a000007-0000-4000-8000-000000000001", "0a000007-0000-4000-8000-000000000002"
	router := "e0000007-0000-4000-8000-000000000007"
	m := &northbound.Model{
		Subnets: []northbound.Subnet{
			{ID: sx, NetworkID: nx, CIDR: netip.MustParsePrefix("10.7.1.0/24"), GatewayIP: ip("10.7.1.1"), GatewayMAC: mac("fa:16:3e:bb:07:01")},
			{ID: sy, NetworkID: ny, CIDR: netip.MustParsePrefix("10.7.2.0/24"), GatewayIP: ip("10.7.2.1"), GatewayMAC: mac("fa:16:3e:bb:07:02")},
		},
		Ports: []northbound.Port{
			{ID: "c07a1000-0000-4000-8000-0000000000a1", NetworkID: nx, MAC: mac("fa:16:3e:07:01:11"), FixedIPs: []northbound.FixedIP{{SubnetID: sx, IP: ip("10.7.1.11")}}},
			{ID: "c07b1000-0000-4000-8000-0000000000b1", NetworkID: ny, MAC: mac("fa:16:3e:07:02:11"), FixedIPs: []northbound.FixedIP{{SubnetID: sy, IP: ip("10.7.2.11")}}},
			{ID: "d0710000-0000-4000-8000-000000000001", NetworkID: nx, MAC: mac("fa:16:3e:bb:07:01"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed, DeviceID: router,
				FixedIPs: []northbound.FixedIP{{SubnetID: sx, IP: ip("10.7.1.1")}}},
			{ID: "d0720000-0000-4000-8000-000000000002", NetworkID: ny, MAC: mac("fa:16:3e:bb:07:02"), DeviceOwner: northbound.OwnerRouterInterfaceDistributed, DeviceID: router,
				FixedIPs: []northbound.FixedIP{{SubnetID: sy, IP: ip("10.7.2.1")}}},
		},
		RemotePorts: []northbound.RemotePort{
			{Host: "tr-2", ID: "c07b2000-0000-4000-8000-0000000000b2", NetworkID: ny, MAC: mac("fa:16:3e:07:02:12"), FixedIPs: []northbound.FixedIP{{SubnetID: sy, IP: ip("10.7.2.12")}}},
		},
	}
	return Node{Inventory: inv, Model: m}
}

func TestResolveAndTraceRouted(t *testing.T) {
	node := captureNode()
	plan, err := Resolve(Request{Port: "c07a1000-0000-4000-8000-0000000000a1", Dst: "10.7.2.12"}, node)
	if err != nil {
		t.Fatal(err)
	}
	wantFirst := `in_port="tapc07a1000-00",dl_src=fa:16:3e:07:01:11,dl_dst=fa:16:3e:bb:07:01,icmp,nw_src=10.7.1.11,nw_dst=10.7.2.12,nw_ttl=64,icmp_type=8`
	wantRouted := `in_port="qr-d0720000-00",dl_src=fa:16:3e:bb:07:02,dl_dst=fa:16:3e:07:02:12,icmp,nw_src=10.7.1.11,nw_dst=10.7.2.12,nw_ttl=63,icmp_type=8`
	if plan.First.Flow() != wantFirst || plan.Routed == nil || plan.Routed.Packet.Flow() != wantRouted || plan.Routed.GatewayPort != "qr-d0710000-00" {
		t.Fatalf("plan %+v\nfirst  %s\nrouted %+v", plan, plan.First.Flow(), plan.Routed)
	}
	sw := &fakeSwitch{t: t, files: map[string]string{"tapc07a1000-00": "to-gateway", "qr-d0720000-00": "routed-vlan"}}
	tr, err := (&Tracer{Switch: sw, Inventory: node.Inventory, Explainer: tableExplainer{}}).Packet(context.Background(), plan)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Legs) != 2 || tr.Legs[1].FirstStep != 5 || tr.Legs[1].Router.ToPort != "qr-d0720000-00" || len(tr.Steps) != 11 {
		t.Fatalf("legs %+v, %d steps", tr.Legs, len(tr.Steps))
	}
	last := tr.Steps[len(tr.Steps)-1]
	if last.Bridge != "br-vlan" || last.Table != 2 || last.TableName != "Tbr-vlan" || last.Rule != "Rvlan" || last.Owner == nil || *last.Priority != 4 ||
		last.Cookie != "0xd7f103ffaa153f81" || last.Actions != "set_field:4203->vlan_vid,NORMAL" {
		t.Errorf("last step %+v", last)
	}
	if r := tr.Result; r.Kind != KindOutput || len(r.Outputs) != 1 || r.Outputs[0].Bridge != "br-vlan" || r.Outputs[0].Port != "vl0" || *r.Outputs[0].VLAN != 107 {
		t.Errorf("result %+v", r)
	}
}

func TestTraceMiss(t *testing.T) {
	node := captureNode()
	sw := &fakeSwitch{t: t, files: map[string]string{"tapc07a1000-00": "spoofed"}}
	tr, err := (&Tracer{Switch: sw, Inventory: node.Inventory}).Flow(context.Background(), "br-int", `in_port="tapc07a1000-00",dl_src=fa:16:3e:66:66:66`)
	if err != nil {
		t.Fatal(err)
	}
	last := tr.Steps[len(tr.Steps)-1]
	if tr.Result.Kind != KindDrop || !tr.Result.Miss || len(tr.Result.Outputs) != 0 || last.Table != 25 || last.Priority != nil || last.Match != "" || last.Actions != "" || last.Cookie != "" {
		t.Errorf("result %+v, last step %+v: want a miss in table 25", tr.Result, last)
	}
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		noModel bool
		want    string // the first packet's flow
		routed  bool
		wantErr string
	}{
		{name: "same subnet by device name, tcp", req: Request{Port: "tapc07b1000-00", Dst: "10.7.2.12", Proto: "tcp:22"},
			want: `in_port="tapc07b1000-00",dl_src=fa:16:3e:07:02:11,dl_dst=fa:16:3e:07:02:12,tcp,nw_src=10.7.2.11,nw_dst=10.7.2.12,nw_ttl=64,tcp_src=40000,tcp_dst=22`},
		{name: "arp on the subnet", req: Request{Port: "tapc07b1000-00", Dst: "10.7.2.12", Proto: "arp"},
			want: `in_port="tapc07b1000-00",dl_src=fa:16:3e:07:02:11,dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_sha=fa:16:3e:07:02:11,arp_spa=10.7.2.11,arp_tpa=10.7.2.12`},
		{name: "arp off the subnet asks for the gateway", req: Request{Port: "tapc07b1000-00", Dst: "10.7.1.11", Proto: "arp"},
			want: `in_port="tapc07b1000-00",dl_src=fa:16:3e:07:02:11,dl_dst=ff:ff:ff:ff:ff:ff,arp,arp_op=1,arp_sha=fa:16:3e:07:02:11,arp_spa=10.7.2.11,arp_tpa=10.7.2.1`},
		{name: "routed on the host", req: Request{Port: "tapc07b1000-00", Dst: "10.7.1.11"}, routed: true,
			want: `in_port="tapc07b1000-00",dl_src=fa:16:3e:07:02:11,dl_dst=fa:16:3e:bb:07:02,icmp,nw_src=10.7.2.11,nw_dst=10.7.1.11,nw_ttl=64,icmp_type=8`},
		{name: "a MAC without a topology", req: Request{Port: "tapc07b1000-00", Dst: "fa:16:3e:07:02:12", Proto: "udp:53"}, noModel: true,
			want: `in_port="tapc07b1000-00",dl_src=fa:16:3e:07:02:11,dl_dst=fa:16:3e:07:02:12,udp,nw_ttl=64,udp_src=40000,udp_dst=53`},
		{name: "an IP without a topology", req: Request{Port: "tapc07b1000-00", Dst: "10.7.2.12"}, noModel: true, wantErr: "give --topology"},
		{name: "unknown port", req: Request{Port: "tapnope", Dst: "10.7.2.12"}, wantErr: "--port tapnope: no port of br-int"},
		{name: "unknown address", req: Request{Port: "tapc07b1000-00", Dst: "10.7.2.99"}, wantErr: "give --dst MAC"},
		{name: "bad proto", req: Request{Port: "tapc07b1000-00", Dst: "10.7.2.12", Proto: "tcp"}, wantErr: "tcp:PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			node := captureNode()
			if tt.noModel {
				node.Model = nil
			}
			plan, err := Resolve(tt.req, node)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := plan.First.Flow(); got != tt.want {
				t.Errorf("flow\n  %s\nwant\n  %s", got, tt.want)
			}
			if (plan.Routed != nil) != tt.routed {
				t.Errorf("routed %+v, want %v (notes %q)", plan.Routed, tt.routed, plan.Notes)
			}
		})
	}
}
