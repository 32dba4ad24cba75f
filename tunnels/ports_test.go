package tunnels

import (
	"github.com/dvrflow/dvrflow/northbound"

	"maps"
	"net/netip"
	"strings"
	"testing"
)

// The IPv6 names were computed with Neutron 21's get_tunnel_name algorithm in Python
// (base64.b32encode(hashlib.sha1(ip.encode()).digest()).lower(), cut to 15 - len(type) - 1).
func TestPortName(t *testing.T) {
	tests := []struct {
		typ, ip, want string
	}{
		{"vxlan", "192.168.100.12", "vxlan-c0a8640c"},
		{"gre", "192.168.100.12", "gre-c0a8640c"},
		{"geneve", "192.168.1.10", "geneve-c0a8010a"},
		{"vxlan", "10.0.0.2", "vxlan-0a000002"},
		{"vxlan", "2001:db8::2", "vxlan-pehtjzksi"},
		{"gre", "2001:db8::2", "gre-pehtjzksiqr"},
		{"geneve", "2001:db8::2", "geneve-pehtjzks"},
		{"vxlan", "fd00::12", "vxlan-bhcswoyzf"},
		{"gre", "fd00::12", "gre-bhcswoyzf73"},
		// The canonical text is hashed: a long form names the same peer the same way.
		{"vxlan", "fd00:0:0:0:0:0:0:12", "vxlan-bhcswoyzf"},
	}
	for _, tt := range tests {
		got := PortName(northbound.NetworkType(tt.typ), netip.MustParseAddr(tt.ip))
		if got != tt.want {
			t.Errorf("PortName(%s, %s) = %q, want %q", tt.typ, tt.ip, got, tt.want)
		}
		if len(got) > deviceNameMaxLen {
			t.Errorf("PortName(%s, %s) = %q is longer than %d", tt.typ, tt.ip, got, deviceNameMaxLen)
		}
	}
	if got := PortName("vxlan", netip.Addr{}); got != "" {
		t.Errorf("PortName of an invalid address = %q, want empty", got)
	}
}

func TestPortOptions(t *testing.T) {
	v4, v6 := netip.MustParseAddr("192.168.100.11"), netip.MustParseAddr("2001:db8::1")
	dscp := func(v int) *int { return &v }
	tests := []struct {
		name     string
		typ      northbound.NetworkType
		remote   string
		settings PortSettings
		wantType string
		want     map[string]string
		wantErr  string
	}{
		{"vxlan defaults", "vxlan", "192.168.100.12", PortSettings{LocalIP: v4, DontFragment: true}, "vxlan",
			map[string]string{"df_default": "true", "remote_ip": "192.168.100.12", "local_ip": "192.168.100.11",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0"}, ""},
		{"vxlan explicit default port", "vxlan", "192.168.100.12", PortSettings{LocalIP: v4, VXLANUDPPort: 4789}, "vxlan",
			map[string]string{"df_default": "false", "remote_ip": "192.168.100.12", "local_ip": "192.168.100.11",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0"}, ""},
		{"vxlan every option", "vxlan", "192.168.100.12",
			PortSettings{LocalIP: v4, VXLANUDPPort: 8472, TunnelCsum: true, DSCP: dscp(46), HWOffload: true}, "vxlan",
			map[string]string{"dst_port": "8472", "df_default": "false", "remote_ip": "192.168.100.12",
				"local_ip": "192.168.100.11", "in_key": "flow", "out_key": "flow", "csum": "true", "tos": "184"}, ""},
		{"dscp inherit wins", "geneve", "192.168.100.12",
			PortSettings{LocalIP: v4, DontFragment: true, DSCP: dscp(10), DSCPInherit: true}, "geneve",
			map[string]string{"df_default": "true", "remote_ip": "192.168.100.12", "local_ip": "192.168.100.11",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0", "tos": "inherit"}, ""},
		{"dscp 0 sets no tos", "gre", "192.168.100.12", PortSettings{LocalIP: v4, DontFragment: true, DSCP: dscp(0)}, "gre",
			map[string]string{"df_default": "true", "remote_ip": "192.168.100.12", "local_ip": "192.168.100.11",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0"}, ""},
		{"udp port ignored off vxlan", "geneve", "192.168.100.12", PortSettings{LocalIP: v4, VXLANUDPPort: 8472}, "geneve",
			map[string]string{"df_default": "false", "remote_ip": "192.168.100.12", "local_ip": "192.168.100.11",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0"}, ""},
		{"gre over IPv6 is ip6gre", "gre", "2001:db8::2", PortSettings{LocalIP: v6, DontFragment: true}, "ip6gre",
			map[string]string{"df_default": "true", "remote_ip": "2001:db8::2", "local_ip": "2001:db8::1",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0", "packet_type": "legacy_l2"}, ""},
		{"vxlan over IPv6", "vxlan", "2001:db8::2", PortSettings{LocalIP: v6, DontFragment: true}, "vxlan",
			map[string]string{"df_default": "true", "remote_ip": "2001:db8::2", "local_ip": "2001:db8::1",
				"in_key": "flow", "out_key": "flow", "egress_pkt_mark": "0"}, ""},
		{"IP version mismatch", "vxlan", "2001:db8::2", PortSettings{LocalIP: v4}, "", nil, "IP version mismatch"},
		{"no local IP", "vxlan", "192.168.100.12", PortSettings{}, "", nil, "valid local and remote IP"},
		{"unknown type", "stt", "192.168.100.12", PortSettings{LocalIP: v4}, "", nil, "not one of vxlan, gre, geneve"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			typ, opts, err := PortOptions(tt.typ, netip.MustParseAddr(tt.remote), tt.settings)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if typ != tt.wantType || !maps.Equal(opts, tt.want) {
				t.Errorf("got type %q options %v\nwant type %q options %v", typ, opts, tt.wantType, tt.want)
			}
		})
	}
}
