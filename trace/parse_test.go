package trace

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The testdata are ofproto/trace's answers (OVS 3.1, --names) on TestTrace's cloud,
// captured on host tr-1 by `go test ./e2e -run TestTrace -args -update-trace-golden`.

// path renders steps as "bridge/table" ("br-int/25!" for a miss).
func path(steps []RawStep) string {
	var parts []string
	for _, s := range steps {
		p := s.Bridge + "/" + strconv.Itoa(s.Table)
		if s.Miss {
			p += "!"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, " ")
}

func TestParseCaptured(t *testing.T) {
	vxlan := &Tunnel{Type: "vxlan", VNI: 1701, RemoteIP: netip.MustParseAddr("192.168.70.2")}
	tests := []struct {
		file    string
		path    string
		outputs []RawOutput
		// step is checked in full when set.
		stepIndex int
		step      *RawStep
	}{
		{file: "to-gateway", path: "br-int/0 br-int/25 br-int/30 br-int/59 br-int/60",
			outputs: []RawOutput{{Port: "qr-d0710000-00"}},
			step: &RawStep{Bridge: "br-int", Table: 25, Priority: 2, Cookie: 0xd7f10507ddab0849,
				Match: `in_port="tapc07a1000-00",dl_src=fa:16:3e:07:01:11`, Actions: []string{"goto_table:30"}},
			stepIndex: 1},
		{file: "routed-vlan", path: "br-int/0 br-int/59 br-int/60 br-vlan/0 br-vlan/1 br-vlan/2",
			outputs: []RawOutput{{Port: "vl0", VLAN: 107}},
			step: &RawStep{Bridge: "br-vlan", Table: 1, Priority: 1, Cookie: 0xd7f107b3798e6e7e,
				Match: "dl_vlan=2,dl_src=fa:16:3e:bb:07:02", Actions: []string{"set_field:fa:16:3f:00:07:01->eth_src", "goto_table:2"}},
			stepIndex: 4},
		{file: "routed-vxlan", path: "br-int/0 br-int/59 br-int/60 br-tun/0 br-tun/1 br-tun/2 br-tun/20 br-phy/0",
			outputs: []RawOutput{{Port: "vxlan-c0a84602", Bridge: "br-tun", Tunnel: vxlan}},
			step: &RawStep{Bridge: "br-tun", Table: 20, Priority: 2, Cookie: 0xd7f10bb24778dfb2,
				Match: "dl_vlan=1,dl_dst=fa:16:3e:07:01:12", Actions: []string{"pop_vlan", "set_field:0x6a5->tun_id", `output:"vxlan-c0a84602"`},
				Notes: []string{"output to native tunnel", "tunneling to 192.168.70.2 via br-phy", "tunneling from 7e:35:05:9d:f2:44 192.168.70.1 to 8a:c0:62:a4:39:48 192.168.70.2"}},
			stepIndex: 6},
		{file: "routed-local", path: "br-int/0 br-int/59 br-int/60", outputs: []RawOutput{{Port: "tapc07b1000-00"}}},
		{file: "spoofed", path: "br-int/0 br-int/25!",
			step: &RawStep{Bridge: "br-int", Table: 25, Miss: true}, stepIndex: 1},
		{file: "flood", path: "br-int/0 br-int/25 br-int/30 br-int/59 br-int/60 br-tun/0 br-tun/1 br-tun/2 br-tun/20 br-tun/22 br-phy/0 br-vlan/0 br-vlan/1 br-vlan/2",
			outputs:   []RawOutput{{Port: "vxlan-c0a84602", Bridge: "br-tun", Tunnel: vxlan}, {Port: "br-int", VLAN: 1}, {Port: "qr-d0710000-00"}},
			step:      &RawStep{Bridge: "br-vlan", Table: 2, Priority: 2, Cookie: 0xd7f101ca58840535, Match: `in_port="phy-br-vlan"`, Actions: []string{"drop"}},
			stepIndex: 13},
		// The ARP responder of br-tun answers through IN_PORT: the answer crosses back into
		// br-int (a second br-int section) while the request floods on.
		{file: "arp", path: "br-int/0 br-int/24 br-int/25 br-int/30 br-int/59 br-int/60 br-tun/0 br-tun/1 br-tun/2 br-tun/21 br-int/0 br-int/59 br-int/60 br-vlan/0 br-vlan/1 br-vlan/2",
			outputs: []RawOutput{{Port: "tapc07a1000-00"}, {Port: "br-int", VLAN: 1}, {Port: "qr-d0710000-00"}}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata", tt.file+".txt"))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := Parse(string(text))
			if err != nil {
				t.Fatal(err)
			}
			if got := path(raw.Steps); got != tt.path {
				t.Errorf("steps\n  %s\nwant\n  %s", got, tt.path)
			}
			if !reflect.DeepEqual(raw.Outputs, tt.outputs) {
				t.Errorf("outputs %+v, want %+v", raw.Outputs, tt.outputs)
			}
			if tt.step != nil && (tt.stepIndex >= len(raw.Steps) || !reflect.DeepEqual(raw.Steps[tt.stepIndex], *tt.step)) {
				if tt.stepIndex < len(raw.Steps) {
					t.Errorf("step %d\n  %+v\nwant\n  %+v", tt.stepIndex, raw.Steps[tt.stepIndex], *tt.step)
				} else {
					t.Errorf("no step %d", tt.stepIndex)
				}
			}
			if raw.Controller {
				t.Error("controller set, no packet went there")
			}
			if !strings.HasPrefix(raw.Flow, "icmp,in_port=") && !strings.HasPrefix(raw.Flow, "arp,in_port=") {
				t.Errorf("flow %q", raw.Flow)
			}
		})
	}
}

// TestParseShapes covers what the captured traces do not: recirculation, the controller,
// tables past 99, and text that is not a trace.
func TestParseShapes(t *testing.T) {
	tests := []struct {
		name       string
		text       string
		path       string
		outputs    []RawOutput
		controller bool
		wantErr    string
	}{
		{
			name: "recirculation after conntrack",
			text: `Flow: tcp,in_port=1,vlan_tci=0x0000,dl_src=00:00:00:00:00:01,dl_dst=00:00:00:00:00:02

bridge("br-int")
----------------
 0. in_port=1, priority 9
    ct(table=72,zone=5)
    drop
     -> A clone of the packet is forked to recirculate. The forked pipeline will be resumed at table 72.
     -> Sets the packet to an untracked state, and clears all the conntrack fields.

Final flow: unchanged
Megaflow: recirc_id=0,eth,tcp,in_port=1,nw_frag=no
Datapath actions: ct(zone=5),recirc(0x1)

===============================================================================
recirc(0x1) - resume conntrack with default ct_state=trk|new (use --ct-next to customize)
===============================================================================

Flow: recirc_id=0x1,ct_state=new|trk,ct_zone=5,eth,tcp,in_port=1

bridge("br-int")
----------------
    thaw
        Resuming from table 72
72. ct_state=+new+trk, priority 100
    output:2

Final flow: unchanged
Megaflow: recirc_id=0x1,ct_state=+new+trk,eth,tcp,in_port=1
Datapath actions: p2
`,
			path:    "br-int/0 br-int/72",
			outputs: []RawOutput{{Port: "p2"}},
		},
		{
			name: "controller, and a table past 99",
			text: `Flow: arp,in_port=1

bridge("br-x")
--------------
 0. priority 0
    resubmit(,120)
120. arp, priority 5, cookie 0x10
    CONTROLLER:65535

Final flow: unchanged
Megaflow: recirc_id=0,eth,arp,in_port=1
Datapath actions: userspace(pid=0,controller(reason=1,dont_send=0,continuation=0,recirc_id=1,rule_cookie=0x10,controller_id=0,max_len=65535))
`,
			path:       "br-x/0 br-x/120",
			controller: true,
		},
		{name: "not a trace", text: "br-x: unknown bridge\n", wantErr: "Datapath actions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Parse(tt.text)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := path(raw.Steps); got != tt.path {
				t.Errorf("steps %s, want %s", got, tt.path)
			}
			if !reflect.DeepEqual(raw.Outputs, tt.outputs) {
				t.Errorf("outputs %+v, want %+v", raw.Outputs, tt.outputs)
			}
			if raw.Controller != tt.controller {
				t.Errorf("controller %v, want %v", raw.Controller, tt.controller)
			}
		})
	}
}

func TestDatapathOutputs(t *testing.T) {
	tests := []struct {
		actions string
		want    []RawOutput
	}{
		{"drop", nil},
		{"set(eth(src=fa:16:3f:00:07:01)),push_vlan(vid=107,pcp=0),vl0", []RawOutput{{Port: "vl0", VLAN: 107}}},
		{"push_vlan(vid=5,pcp=0),a,pop_vlan,b", []RawOutput{{Port: "a", VLAN: 5}, {Port: "b"}}},
		{"clone(push_vlan(vid=5,pcp=0),a),b", []RawOutput{{Port: "a", VLAN: 5}, {Port: "b"}}},
		{"tnl_push(tnl_port(gre_sys),header(size=38,type=3,eth(dst=aa:bb:cc:dd:ee:ff,src=aa:bb:cc:dd:ee:00,dl_type=0x0800),ipv4(src=10.0.0.1,dst=10.0.0.2,proto=47,tos=0,ttl=64,frag=0x4000),gre((flags=0x2000,proto=0x6558),key=0x7d1)),out_port(br-phy)),ul0",
			[]RawOutput{{Tunnel: &Tunnel{Type: "gre", VNI: 2001, RemoteIP: netip.MustParseAddr("10.0.0.2")}}}},
	}
	for _, tt := range tests {
		t.Run(tt.actions, func(t *testing.T) {
			got, _, err := datapathOutputs(tt.actions)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%+v, want %+v", got, tt.want)
			}
		})
	}
}
