package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
)

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// neutronIni is the openvswitch_agent.ini Neutron 21 ships (as Debian packages it).
const neutronIni = "../../testdata/neutron/openvswitch_agent.ini"

// writeIni writes an ini file into a temporary directory and returns its path.
func writeIni(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	hostname, _ := os.Hostname()
	want := &Config{
		Host: hostname, IntegrationBridge: "br-int", TunnelBridge: "br-tun",
		IntPeerPatchPort: "patch-tun", TunPeerPatchPort: "patch-int",
		BridgeMappings: map[string]string{}, DatapathType: "system",
		OVSDBConnection: "tcp:127.0.0.1:6640", OVSDBTimeout: 10, OFInactivityProbe: 10,
		OFConnectTimeout: 300, OFRequestTimeout: 300, BridgeMACTableSize: 50000,
		TunnelTypes: []northbound.NetworkType{}, VXLANUDPPort: 4789, DontFragment: true, PollingInterval: 2,
		ReportInterval: 30, Extensions: []string{}, EnableSecurityGroup: true, PermittedEthertypes: []uint16{},
		Messaging: map[string]string{}, Rabbit: map[string]string{},
		AgentMode: "legacy", PreventARPSpoofing: true, StatePath: "/var/lib/neutron",
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("DefaultConfig() = %+v\nwant %+v", c, want)
	}
	if c.DistributedRoutingEnabled() || c.TunnelingEnabled() || c.ArpResponderEnabled() || c.RouterNamespacesManaged() {
		t.Error("defaults enable DVR, tunnels, the ARP responder or router namespaces")
	}
}

// TestLoadNeutronIni loads the file Neutron ships. It is not all comments: Debian's
// package sets a few options, which must come through; everything else is a default.
func TestLoadNeutronIni(t *testing.T) {
	c, warnings, err := LoadConfig(neutronIni)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.TunnelTypes = []northbound.NetworkType{northbound.VXLAN}
	want.LocalIP = netip.MustParseAddr("127.0.0.1")
	want.BridgeMappings = map[string]string{"external": "br-ex"}
	want.FirewallDriver = "openvswitch"
	if !reflect.DeepEqual(c, want) {
		t.Errorf("LoadConfig(%s) = %+v\nwant %+v", neutronIni, c, want)
	}
	wantWarnings := []Warning{{File: neutronIni, Section: "securitygroup", Option: "enable_ipset",
		Reason: "Neutron option not used by dvrflow; ignored"}}
	if !reflect.DeepEqual(warnings, wantWarnings) {
		t.Errorf("warnings = %v, want %v", warnings, wantWarnings)
	}
	// The shipped file asks for the openvswitch firewall, which dvrflow gives: it starts,
	// filters, and installs no spoofing protection in tables 24/25 (the firewall's table 71
	// does that job).
	if err := c.Validate(); err != nil {
		t.Errorf("Validate = %v, want nil", err)
	}
	if !c.Firewall() || c.Unfiltered() || c.ARPSpoofingProtection() {
		t.Errorf("Firewall %v, Unfiltered %v, ARPSpoofingProtection %v; want true, false, false",
			c.Firewall(), c.Unfiltered(), c.ARPSpoofingProtection())
	}
	if u := c.Unhonoured(); len(u) != 0 {
		t.Errorf("Unhonoured = %v, want none", u)
	}
}

func TestLoadOperatorIni(t *testing.T) {
	base := writeIni(t, "base.ini", `
[DEFAULT]
host = compute7
debug = True
state_path = /srv/neutron-state

[ovs]
bridge_mappings = physnet1:br-vlan , extnet : br-ex,
local_ip = 192.0.2.7
datapath_type = netdev
of_inactivity_probe = 0
igmp_snooping_enable = Yes
ovs_integration_bridge = br-int2
frobnicate = 1

[agent]
tunnel_types = VXLAN, gre
l2_population = on
arp_responder = 1
dont_fragment = OFF
dscp = 46
report_interval = 7.5
extensions = qos,
veth_mtu = 1500
prevent_arp_spoofing = false

[dvrflow]
agent_mode = dvr
dvr_mac = FA:16:3F:00:00:07
topology_file = /etc/dvrflow/topology.yaml
manage_router_namespaces = false
metrics_address = 127.0.0.1:9100
api_socket = /run/dvrflow/agent.sock

[dhcp]
enable_ipv6 = false

[mystery]
x = y
`)
	override := writeIni(t, "override.ini", `
[ovs]
datapath_type = system
[agent]
tunnel_types = geneve
enable_distributed_routing = false
`)
	c, warnings, err := LoadConfig(base, override)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultConfig()
	want.Host = "compute7"
	want.StatePath = "/srv/neutron-state"
	want.IntegrationBridge = "br-int2"
	want.BridgeMappings = map[string]string{"physnet1": "br-vlan", "extnet": "br-ex"}
	want.LocalIP = netip.MustParseAddr("192.0.2.7")
	want.DatapathType = "system"
	want.OFInactivityProbe = 0
	want.IGMPSnoopingEnable = true
	want.TunnelTypes = []northbound.NetworkType{northbound.Geneve}
	want.L2Population = true
	want.ARPResponder = true
	want.DontFragment = false
	dscp, off := 46, false
	want.DSCP = &dscp
	want.ReportInterval = 7.5
	want.Extensions = []string{"qos"}
	want.AgentMode = "dvr"
	want.DVRMAC = mustMAC("fa:16:3f:00:00:07")
	want.TopologyFile = "/etc/dvrflow/topology.yaml"
	want.ManageRouterNamespaces = &off
	want.MetricsAddress = "127.0.0.1:9100"
	socket := "/run/dvrflow/agent.sock"
	want.APISocket = &socket
	want.EnableDistributedRouting = &off
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	var got []string
	for _, w := range warnings {
		got = append(got, strings.TrimPrefix(w.String(), filepath.Dir(base)+"/"))
	}
	wantWarnings := []string{
		"base.ini: [DEFAULT] debug: Neutron option not used by dvrflow; ignored",
		"base.ini: [ovs] ovs_integration_bridge: deprecated name; use integration_bridge",
		"base.ini: [ovs] frobnicate: unknown option; ignored",
		"base.ini: [agent] veth_mtu: deprecated Neutron option with no effect; ignored",
		"base.ini: [agent] prevent_arp_spoofing: removed from Neutron in 11.0.0; dvrflow reads [dvrflow] prevent_arp_spoofing; ignored",
		"base.ini: [dhcp] enable_ipv6: Neutron option not used by dvrflow; ignored",
		"base.ini: [mystery]: unknown section; ignored",
	}
	if !reflect.DeepEqual(got, wantWarnings) {
		t.Errorf("warnings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantWarnings, "\n"))
	}
}

func TestLoadConfigInvalidValues(t *testing.T) {
	tests := []struct {
		name, section, option, value, reason string
	}{
		{"port not an integer", "agent", "vxlan_udp_port", "47x9", "is not an integer"},
		{"port out of range", "agent", "vxlan_udp_port", "70000", "is outside 0–65535"},
		{"datapath_type", "ovs", "datapath_type", "foo", "is not one of system, netdev"},
		{"mapping without colon", "ovs", "bridge_mappings", "physnet1", `has an entry "physnet1" that is not <physical_network>:<bridge>`},
		{"mapping empty bridge", "ovs", "bridge_mappings", "physnet1:", `has an entry "physnet1:" with an empty physical network or bridge`},
		{"duplicate physnet", "ovs", "bridge_mappings", "p1:br-a,p1:br-b", `maps physical network "p1" twice`},
		{"duplicate bridge", "ovs", "bridge_mappings", "p1:br-a,p2:br-a", `maps bridge "br-a" twice (physical networks "p1" and "p2")`},
		{"boolean", "agent", "l2_population", "maybe", "is not a boolean (true/false, yes/no, 1/0, on/off)"},
		{"tunnel type", "agent", "tunnel_types", "vxlan,stt", `has a tunnel type "stt" that is not one of vxlan, gre, geneve`},
		{"local_ip", "ovs", "local_ip", "192.0.2.300", "is not an IP address"},
		{"dscp", "agent", "dscp", "64", "is outside 0–63"},
		{"agent_mode", "dvrflow", "agent_mode", "dvr_fast", "is not one of legacy, dvr, dvr_snat, dvr_no_external"},
		{"agent_mode dvr_no_external", "dvrflow", "agent_mode", "dvr_no_external", "is not supported yet (use dvr or dvr_snat)"},
		{"dvr_mac", "dvrflow", "dvr_mac", "fa:16:3f:zz:00:01", "is not a MAC address"},
		{"multicast dvr_mac", "dvrflow", "dvr_mac", "01:00:5e:00:00:01", "is a multicast MAC address"},
		{"metrics_address", "dvrflow", "metrics_address", "9100", "is not host:port"},
		{"relative api_socket", "dvrflow", "api_socket", "agent.sock", "is not an absolute path (or none)"},
		{"long api_socket", "dvrflow", "api_socket", "/" + strings.Repeat("s", 107), "is longer than the 107 bytes a unix socket path can have"},
		{"report_interval", "agent", "report_interval", "-1", "is not a non-negative number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeIni(t, "bad.ini", "["+tt.section+"]\n"+tt.option+" = "+tt.value+"\n")
			c, _, err := LoadConfig(path)
			if c != nil || err == nil {
				t.Fatalf("LoadConfig = %v, %v; want an error", c, err)
			}
			var oe *OptionError
			if !errors.As(err, &oe) {
				t.Fatalf("error %v is not an *OptionError", err)
			}
			want := OptionError{File: path, Section: tt.section, Option: tt.option, Value: tt.value}
			if oe.File != want.File || oe.Section != want.Section || oe.Option != want.Option || oe.Value != want.Value {
				t.Errorf("error names %+v, want %+v", *oe, want)
			}
			if msg := path + ": [" + tt.section + "] " + tt.option + `: "` + tt.value + `" ` + tt.reason; err.Error() != msg {
				t.Errorf("error = %q\nwant    %q", err, msg)
			}
		})
	}
}

func TestLoadConfigFileErrors(t *testing.T) {
	if _, _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.ini")); err == nil || !strings.Contains(err.Error(), "missing.ini") {
		t.Errorf("missing file: err = %v", err)
	}
	// Every invalid value is reported, not only the first.
	path := writeIni(t, "two.ini", "[ovs]\ndatapath_type = foo\n[agent]\nl2_population = maybe\n")
	_, _, err := LoadConfig(path)
	if err == nil || !strings.Contains(err.Error(), "datapath_type") || !strings.Contains(err.Error(), "l2_population") {
		t.Errorf("err = %v, want both options named", err)
	}
}

// TestPrecedence checks defaults < ini < host settings < flags, with the host section of
// legacy_vlan.json, which overrides the bridge_mappings and tunnel_types of Neutron's
// shipped ini.
func TestPrecedence(t *testing.T) {
	c, _, err := LoadConfig(neutronIni)
	if err != nil {
		t.Fatal(err)
	}
	name := "compute1"
	c.ApplyHost(&northbound.HostSettings{Name: &name, BridgeMappings: map[string]string{"physnet1": "br-vlan"}, TunnelTypes: []northbound.NetworkType{}})
	if want := map[string]string{"physnet1": "br-vlan"}; !reflect.DeepEqual(c.BridgeMappings, want) {
		t.Errorf("bridge_mappings = %v, want the host's %v", c.BridgeMappings, want)
	}
	if len(c.TunnelTypes) != 0 || c.TunnelingEnabled() {
		t.Errorf("tunnel_types = %v, want the host's []", c.TunnelTypes)
	}
	if c.Host != "compute1" {
		t.Errorf("host = %q, want compute1", c.Host)
	}
	if c.LocalIP != netip.MustParseAddr("127.0.0.1") || c.FirewallDriver != "openvswitch" {
		t.Errorf("ini values not in the host section were lost: local_ip %s firewall_driver %q", c.LocalIP, c.FirewallDriver)
	}
	// Flags come last: the cmd sets fields directly.
	c.DatapathType, c.AllowUnfilteredPorts = DatapathNetdev, true
	if err := c.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
	// A host section without a setting leaves the ini's value.
	c2, _, _ := LoadConfig(neutronIni)
	name = "n1"
	c2.ApplyHost(&northbound.HostSettings{Name: &name})
	if c2.BridgeMappings["external"] != "br-ex" || c2.Host != "n1" || c2.LocalIP != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("ApplyHost(name only) = %+v", c2)
	}
	c2.ApplyHost(nil)
	// Explicit unsets override.
	var noIP netip.Addr
	noMAC := net.HardwareAddr(nil)
	c2.DVRMAC = mustMAC("fa:16:3f:00:00:09")
	c2.ApplyHost(&northbound.HostSettings{LocalIP: &noIP, DVRMAC: &noMAC})
	if c2.LocalIP.IsValid() || c2.DVRMAC != nil {
		t.Errorf("explicit unsets ignored: local_ip %s dvr_mac %s", c2.LocalIP, c2.DVRMAC)
	}
}

func TestDerivedSettings(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name                           string
		mode                           northbound.AgentMode
		edr                            *bool
		tunnels                        []northbound.NetworkType
		l2pop, arp                     bool
		wantDVR, wantArp, wantTunneled bool
	}{
		{"legacy defaults", "legacy", nil, nil, false, false, false, false, false},
		{"arp_responder needs l2pop", "legacy", nil, []northbound.NetworkType{"vxlan"}, false, true, false, false, true},
		{"arp_responder with l2pop", "legacy", nil, []northbound.NetworkType{"vxlan"}, true, true, false, true, true},
		{"dvr mode sets DVR", "dvr", nil, nil, false, false, true, false, false},
		{"dvr_snat mode sets DVR", "dvr_snat", nil, nil, false, false, true, false, false},
		{"explicit false beats dvr mode", "dvr", &no, nil, false, false, false, false, false},
		{"explicit true in legacy mode", "legacy", &yes, nil, false, false, true, false, false},
		{"DVR with tunnels forces the ARP responder", "dvr", nil, []northbound.NetworkType{"vxlan"}, true, false, true, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.AgentMode, c.EnableDistributedRouting, c.TunnelTypes = tt.mode, tt.edr, tt.tunnels
			c.L2Population, c.ARPResponder = tt.l2pop, tt.arp
			if got := c.DistributedRoutingEnabled(); got != tt.wantDVR {
				t.Errorf("DistributedRoutingEnabled = %v", got)
			}
			if got := c.ArpResponderEnabled(); got != tt.wantArp {
				t.Errorf("ArpResponderEnabled = %v", got)
			}
			if got := c.TunnelingEnabled(); got != tt.wantTunneled {
				t.Errorf("TunnelingEnabled = %v", got)
			}
		})
	}
	c := DefaultConfig()
	c.TopologyFile = "t.yaml"
	if !c.Standalone() || !c.RouterNamespacesManaged() {
		t.Error("standalone mode does not manage router namespaces by default")
	}
	c.ManageRouterNamespaces = &no
	if c.RouterNamespacesManaged() {
		t.Error("manage_router_namespaces = false ignored")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string // a substring of the error; empty for none
	}{
		{"defaults", func(c *Config) {}, ""},
		{"DVR VLAN standalone", func(c *Config) {
			c.AgentMode, c.TopologyFile, c.DVRMAC = "dvr", "t.yaml", mustMAC("fa:16:3f:00:00:01")
		}, ""},
		{"DVR tunnels without l2pop", func(c *Config) {
			c.AgentMode, c.TunnelTypes, c.LocalIP, c.DVRMAC = "dvr", []northbound.NetworkType{"vxlan"}, netip.MustParseAddr("192.0.2.1"), mustMAC("fa:16:3f:00:00:01")
		}, "enable_distributed_routing: DVR with tunnel_types vxlan requires l2_population = true (Neutron's agent refuses to start"},
		{"tunnels without local_ip", func(c *Config) { c.TunnelTypes = []northbound.NetworkType{"gre"} },
			"local_ip: is required with tunnel_types gre"},
		{"DVR standalone without dvr_mac", func(c *Config) { c.AgentMode, c.TopologyFile = "dvr_snat", "t.yaml" },
			"dvr_mac: is required with enable_distributed_routing in standalone mode"},
		{"DVR with Neutron needs no dvr_mac", func(c *Config) { c.AgentMode = "dvr" }, ""},
		{"bad agent_mode", func(c *Config) { c.AgentMode = "fast" }, `agent_mode: "fast" is not one of`},
		{"agent_mode dvr_no_external", func(c *Config) {
			c.AgentMode, c.TopologyFile, c.DVRMAC = "dvr_no_external", "t.yaml", mustMAC("fa:16:3f:00:00:01")
		},
			`agent_mode: "dvr_no_external" is not supported yet (use dvr or dvr_snat)`},
		{"bad datapath", func(c *Config) { c.DatapathType = "dpdk" }, `datapath_type: "dpdk" is not one of system, netdev`},
		{"physnet on br-int", func(c *Config) { c.BridgeMappings = map[string]string{"p": "br-int"} },
			`bridge_mappings: physical network "p" is mapped to "br-int"`},
		{"same bridge twice", func(c *Config) { c.BridgeMappings = map[string]string{"p": "br-a", "q": "br-a"} },
			`bridge_mappings: maps bridge "br-a" twice`},
		{"bad tunnel type", func(c *Config) {
			c.TunnelTypes, c.LocalIP = []northbound.NetworkType{"stt"}, netip.MustParseAddr("192.0.2.1")
		}, `tunnel_types: has a tunnel type "stt"`},
		{"port range", func(c *Config) { c.VXLANUDPPort = -1 }, "vxlan_udp_port: -1 is outside 0–65535"},
		{"empty host", func(c *Config) { c.Host = "" }, "host: is empty"},
		{"same bridges", func(c *Config) { c.TunnelBridge = "br-int" }, `tunnel_bridge: "br-int" is also the integration_bridge`},
		{"default api_socket in a deep run directory", func(c *Config) { c.OVSRundir = "/" + strings.Repeat("d", 90) },
			"api_socket: \"/ddd"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Host = "h"
			tt.modify(c)
			checkValidate(t, c, tt.want)
		})
	}
}

// TestAPISocket: api_socket unset is RUNDIR/dvrflow-agent.sock; "" and "none" disable the
// API; a path is taken as it is.
func TestAPISocket(t *testing.T) {
	tests := []struct {
		name, ini, want string
	}{
		{"unset: the default run directory", "", "/var/run/openvswitch/dvrflow-agent.sock"},
		{"unset: ovs_rundir", "ovs_rundir = /tmp/ovs1\n", "/tmp/ovs1/dvrflow-agent.sock"},
		{"a path", "api_socket = /run/dvrflow/api.sock\n", "/run/dvrflow/api.sock"},
		{"empty: disabled", "api_socket =\n", ""},
		{"none: disabled", "api_socket = none\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, _, err := LoadConfig(writeIni(t, "api.ini", "[dvrflow]\n"+tt.ini))
			if err != nil {
				t.Fatal(err)
			}
			if got := c.APISocketPath(); got != tt.want {
				t.Errorf("APISocketPath() = %q, want %q", got, tt.want)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
}

func TestConfigClone(t *testing.T) {
	c := DefaultConfig()
	c.BridgeMappings["p"] = "br-p"
	yes := true
	c.EnableDistributedRouting = &yes
	socket := "/run/a.sock"
	c.APISocket = &socket
	d := c.Clone()
	d.BridgeMappings["q"] = "br-q"
	*d.EnableDistributedRouting = false
	*d.APISocket = "/run/b.sock"
	d.TunnelTypes = append(d.TunnelTypes, "vxlan")
	if len(c.BridgeMappings) != 1 || !*c.EnableDistributedRouting || len(c.TunnelTypes) != 0 || c.APISocketPath() != "/run/a.sock" {
		t.Errorf("Clone shares state: %+v", c)
	}
}

// TestFirewallDriver: firewall_driver = openvswitch (short name or class path) with
// enable_security_group filters; noop, unset or enable_security_group = false do not; the
// iptables drivers ask for filtering dvrflow does not give and stop the agent unless the
// operator accepts unfiltered ports; a value that names no driver is refused by name.
func TestFirewallDriver(t *testing.T) {
	const onlyOVS = "dvrflow implements only the openvswitch driver"
	tests := []struct {
		driver   string
		sgOff    bool
		allow    bool
		want     string // substring of Validate's error; empty: valid
		firewall bool   // Firewall
		unfilt   bool   // Unfiltered
	}{
		{driver: "", want: ""},
		{driver: "noop", want: ""},
		{driver: "neutron.agent.firewall.NoopFirewallDriver", want: ""},
		{driver: "openvswitch", want: "", firewall: true},
		{driver: " openvswitch ", want: "", firewall: true},
		{driver: "neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver", want: "", firewall: true},
		{driver: "neutron.agent.linux.openvswitch_firewall.OVSFirewallDriver", want: "", firewall: true},
		{driver: "openvswitch", sgOff: true, want: ""},
		{driver: "openvswitch", allow: true, want: "", firewall: true},
		{driver: "iptables_hybrid", want: `firewall_driver: "iptables_hybrid" asks for security-group filtering`, unfilt: true},
		{driver: "iptables_hybrid", want: onlyOVS, unfilt: true},
		{driver: "iptables", want: "allow_unfiltered_ports = true", unfilt: true},
		{driver: "neutron.agent.linux.iptables_firewall:OVSHybridIptablesFirewallDriver", want: onlyOVS, unfilt: true},
		{driver: "neutron.agent.linux.iptables_firewall.IptablesFirewallDriver", want: onlyOVS, unfilt: true},
		{driver: "iptables_hybrid", allow: true, want: "", unfilt: true},
		{driver: "iptables", sgOff: true, want: ""},
		{driver: "ovs", want: `firewall_driver: "ovs" is not a firewall driver of Neutron's Open vSwitch agent (iptables, iptables_hybrid, noop, openvswitch`},
		{driver: "OpenVSwitch", want: `firewall_driver: "OpenVSwitch" is not a firewall driver`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s sg_off=%v allow=%v", tt.driver, tt.sgOff, tt.allow), func(t *testing.T) {
			c := DefaultConfig()
			c.Host, c.FirewallDriver, c.EnableSecurityGroup, c.AllowUnfilteredPorts = "h", tt.driver, !tt.sgOff, tt.allow
			checkValidate(t, c, tt.want)
			if got := c.Firewall(); got != tt.firewall {
				t.Errorf("Firewall = %v, want %v", got, tt.firewall)
			}
			if got := c.Unfiltered(); got != tt.unfilt {
				t.Errorf("Unfiltered = %v, want %v", got, tt.unfilt)
			}
			// Neutron's agent asks the driver: the openvswitch firewall protects against
			// spoofing itself, every other leaves it to tables 24/25.
			if got := c.ARPSpoofingProtection(); got != !tt.firewall {
				t.Errorf("ARPSpoofingProtection = %v, want %v", got, !tt.firewall)
			}
		})
	}
	// The ini's values come through the same way.
	c, _, err := LoadConfig(writeIni(t, "sg.ini", "[securitygroup]\nfirewall_driver = openvswitch\nenable_security_group = false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Firewall() || !c.ARPSpoofingProtection() {
		t.Errorf("enable_security_group = false: Firewall %v, ARPSpoofingProtection %v; want noop", c.Firewall(), c.ARPSpoofingProtection())
	}
	c.PreventARPSpoofing = false
	if c.ARPSpoofingProtection() {
		t.Error("prevent_arp_spoofing = false ignored without the firewall")
	}
}

// TestPermittedEthertypes: [securitygroup] permitted_ethertypes is Neutron's list of
// hexadecimal strings, parsed once, sorted without duplicates; an item that is no
// ethertype, or one the security groups filter, is refused naming the option and the item.
func TestPermittedEthertypes(t *testing.T) {
	tests := []struct {
		value string
		want  []uint16
		err   string // the error's reason, after the quoted value
	}{
		{value: "", want: []uint16{}},
		{value: "0x4008", want: []uint16{0x4008}},
		{value: " 0x88cc , 0x4008,0x88CC, 0X8035,", want: []uint16{0x4008, 0x8035, 0x88cc}},
		{value: "0x0600", want: []uint16{0x0600}},
		{value: "0xffff", want: []uint16{0xffff}},
		{value: "4008", err: `has an item "4008" that is not a hexadecimal ethertype starting with 0x (as 0x4008)`},
		{value: "0x4008,0xInfiniBand", err: `has an item "0xInfiniBand" that is not a hexadecimal ethertype starting with 0x`},
		{value: "0x", err: `has an item "0x" that is not a hexadecimal ethertype`},
		{value: "0x-1", err: `has an item "0x-1" that is not a hexadecimal ethertype`},
		{value: "0x10000", err: `has an item "0x10000" that is not an ethertype (0x0600–0xffff)`},
		{value: "0x05dc", err: `has an item "0x05dc" that is not an ethertype (0x0600–0xffff; smaller values are 802.3 frame lengths)`},
		{value: "0x0800", err: `has an item "0x0800" that is IPv4, which the security groups filter`},
		{value: "0x4008,0x86DD", err: `has an item "0x86DD" that is IPv6, which the security groups filter`},
		{value: "0x806", err: `has an item "0x806" that is ARP, which the security groups filter`},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			path := writeIni(t, "eth.ini", "[securitygroup]\npermitted_ethertypes = "+tt.value+"\n")
			c, warnings, err := LoadConfig(path)
			if len(warnings) > 0 {
				t.Errorf("warnings %v: permitted_ethertypes is read", warnings)
			}
			if tt.err != "" {
				want := path + ": [securitygroup] permitted_ethertypes: " + fmt.Sprintf("%q", strings.TrimSpace(tt.value)) + " " + tt.err
				if err == nil || !strings.HasPrefix(err.Error(), want) {
					t.Errorf("err = %v\nwant %s…", err, want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(c.PermittedEthertypes, tt.want) {
				t.Errorf("PermittedEthertypes = %#04x, want %#04x", c.PermittedEthertypes, tt.want)
			}
		})
	}
	// Validate checks values set otherwise (they are a Config field).
	c := DefaultConfig()
	c.Host, c.FirewallDriver, c.PermittedEthertypes = "h", "openvswitch", []uint16{0x4008, 0x86dd}
	checkValidate(t, c, "permitted_ethertypes: 0x86dd is IPv6")
	d := c.Clone()
	d.PermittedEthertypes[0] = 1
	if c.PermittedEthertypes[0] != 0x4008 {
		t.Error("Clone shares permitted_ethertypes")
	}
	// Without the openvswitch firewall they have no effect, and the agent says so.
	c.PermittedEthertypes = []uint16{0x4008, 0x88cc}
	checkValidate(t, c, "")
	if u := c.Unhonoured(); len(u) != 0 {
		t.Errorf("Unhonoured with the firewall = %v, want none", u)
	}
	c.FirewallDriver = "noop"
	if u := c.Unhonoured(); len(u) != 1 || u[0].Option != "permitted_ethertypes" || u[0].Value != "0x4008,0x88cc" {
		t.Errorf("Unhonoured without the firewall = %v, want permitted_ethertypes 0x4008,0x88cc", u)
	}
}

// TestUnhonoured: every option dvrflow accepts but does not act on is listed by name when
// set to other than its default; a default config lists none.
func TestUnhonoured(t *testing.T) {
	if u := DefaultConfig().Unhonoured(); len(u) != 0 {
		t.Fatalf("defaults: %v", u)
	}
	c := DefaultConfig()
	c.TopologyFile = "t.yaml"
	c.FirewallDriver, c.AllowUnfilteredPorts = "iptables_hybrid", true
	c.PermittedEthertypes = []uint16{0x4008}
	c.DropFlowsOnStart, c.ExplicitlyEgressDirect, c.IGMPSnoopingEnable = true, true, true
	c.Extensions = []string{"qos"}
	c.PollingInterval, c.ReportInterval = 5, 10
	c.OVSDBTimeout, c.OFInactivityProbe, c.OFConnectTimeout, c.OFRequestTimeout = 1, 2, 3, 4
	c.StatePath = "/srv/state"
	off := false
	c.ManageRouterNamespaces = &off
	var got []string
	for _, u := range c.Unhonoured() {
		got = append(got, u.Section+"/"+u.Option)
		if u.Reason == "" || u.Value == "" {
			t.Errorf("%v: no value or reason", u)
		}
	}
	want := []string{"securitygroup/firewall_driver", "securitygroup/permitted_ethertypes", "agent/drop_flows_on_start", "agent/explicitly_egress_direct",
		"agent/extensions", "ovs/igmp_snooping_enable", "agent/polling_interval", "agent/report_interval",
		"DEFAULT/state_path", "ovs/ovsdb_timeout", "ovs/of_connect_timeout", "ovs/of_request_timeout"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Unhonoured names %v\nwant %v", got, want)
	}
	if u := c.Unhonoured()[0]; !strings.Contains(u.Reason, "VM ports are NOT filtered") || !strings.Contains(u.Reason, "only the openvswitch") {
		t.Errorf("the unfiltered ports' warning says %q", u.Reason)
	}
	// allow_unfiltered_ports with a driver dvrflow gives (or none) changes nothing.
	for _, driver := range []string{"openvswitch", "noop"} {
		c := DefaultConfig()
		c.FirewallDriver, c.AllowUnfilteredPorts = driver, true
		if u := c.Unhonoured(); len(u) != 1 || u[0].Option != "allow_unfiltered_ports" {
			t.Errorf("%s with allow_unfiltered_ports: Unhonoured = %v, want allow_unfiltered_ports named", driver, u)
		}
	}
}

// TestStatePath: [DEFAULT] state_path is read (Neutron's default when unset), must be an
// absolute path when the router namespaces are managed, and is warned about when not used.
func TestStatePath(t *testing.T) {
	if got := DefaultConfig().StatePath; got != "/var/lib/neutron" {
		t.Errorf("default state_path %q, want Neutron's /var/lib/neutron", got)
	}
	if _, _, err := LoadConfig(writeIni(t, "rel.ini", "[DEFAULT]\nstate_path = var/lib\n")); err == nil ||
		!strings.Contains(err.Error(), "state_path") {
		t.Errorf("a relative state_path: err %v, want one naming state_path", err)
	}
	c := DefaultConfig()
	c.Host, c.TopologyFile, c.StatePath = "h", "t.yaml", "relative/dir"
	checkValidate(t, c, "state_path")
	c.StatePath = "/tmp/private-state"
	checkValidate(t, c, "")
	if u := c.Unhonoured(); len(u) != 0 {
		t.Errorf("state_path with managed router namespaces is honoured, yet Unhonoured = %v", u)
	}
}

// checkValidate checks c.Validate's error: none when want is empty, else one holding want.
func checkValidate(t *testing.T, c *Config, want string) {
	t.Helper()
	err := c.Validate()
	switch {
	case want == "" && err != nil:
		t.Errorf("Validate = %v, want nil", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Errorf("Validate = %v, want %q", err, want)
	}
}

// TestNeutronConf: a neutron.conf shared with neutron-server selects the Neutron mode with
// its messaging options kept for the transport, and the server's own options and sections
// are read without a warning.
func TestNeutronConf(t *testing.T) {
	conf := writeIni(t, "neutron.conf", `[DEFAULT]
core_plugin = ml2
service_plugins = router
auth_strategy = noauth
transport_url = rabbit://guest:guest@127.0.0.1:5672/
control_exchange = neutron
rpc_response_timeout = 30
router_distributed = True
host = compute-1

[database]
connection = mysql+pymysql://neutron:x@127.0.0.1/neutron

[keystone_authtoken]
www_authenticate_uri = http://127.0.0.1:5000

[oslo_messaging_rabbit]
heartbeat_timeout_threshold = 60
rabbit_ha_queues = false
`)
	cfg, warnings, err := LoadConfig(conf)
	if err != nil {
		t.Fatal(err)
	}
	if len(warnings) > 0 {
		t.Errorf("warnings for neutron-server's options: %v", warnings)
	}
	if !cfg.NeutronMode() || cfg.Standalone() || cfg.RouterNamespacesManaged() || cfg.Host != "compute-1" {
		t.Errorf("neutron mode %v, standalone %v, router namespaces %v, host %q", cfg.NeutronMode(), cfg.Standalone(), cfg.RouterNamespacesManaged(), cfg.Host)
	}
	if cfg.Messaging["transport_url"] != "rabbit://guest:guest@127.0.0.1:5672/" || cfg.Messaging["rpc_response_timeout"] != "30" ||
		cfg.Rabbit["heartbeat_timeout_threshold"] != "60" || cfg.Rabbit["rabbit_ha_queues"] != "false" {
		t.Errorf("messaging %v, rabbit %v", cfg.Messaging, cfg.Rabbit)
	}
	if c := cfg.Clone(); c.Messaging["transport_url"] != cfg.Messaging["transport_url"] {
		t.Error("Clone lost the messaging options")
	} else if c.Messaging["x"] = "y"; cfg.Messaging["x"] == "y" {
		t.Error("Clone shares the messaging options")
	}
}

// TestTopologyAndTransportTogether: a topology file and a transport_url are refused at
// start, naming transport_url.
func TestTopologyAndTransportTogether(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Messaging["transport_url"] = "rabbit://guest:guest@127.0.0.1:5672/"
	if err := cfg.Validate(); err != nil {
		t.Fatalf("the Neutron mode alone is refused: %v", err)
	}
	cfg.TopologyFile = "/etc/dvrflow/topology.yaml"
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "transport_url") || !strings.Contains(err.Error(), "topology_file") {
		t.Errorf("Validate = %v, want an error naming transport_url and topology_file", err)
	}
}

// TestHostSectionFirewallDriver: the topology's host section sets firewall_driver like the
// ini does, and the firewall follows it.
func TestHostSectionFirewallDriver(t *testing.T) {
	for _, tc := range []struct {
		driver string
		want   bool
	}{
		{"openvswitch", true},
		{"neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver", true},
		{"noop", false},
	} {
		c := DefaultConfig()
		d := tc.driver
		c.ApplyHost(&northbound.HostSettings{FirewallDriver: &d})
		if c.FirewallDriver != tc.driver || c.Firewall() != tc.want {
			t.Errorf("host firewall_driver %q: FirewallDriver %q, Firewall() %v; want %v", tc.driver, c.FirewallDriver, c.Firewall(), tc.want)
		}
	}
}
