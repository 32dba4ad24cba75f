package neutron

import (
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
)

// iniFile is an ini document whose sections and keys keep the order they were set in, so a
// rendered file reads like a hand-written one.
type iniFile struct {
	sections []*iniSection
}

type iniSection struct {
	name string
	keys []string
	vals map[string]string
}

// section returns the named section, adding it at the end when it is new.
func (f *iniFile) section(name string) *iniSection {
	for _, s := range f.sections {
		if s.name == name {
			return s
		}
	}
	s := &iniSection{name: name, vals: map[string]string{}}
	f.sections = append(f.sections, s)
	return s
}

// set sets key in section to value (a later set of the same key replaces the value in place).
func (f *iniFile) set(section, key, value string) {
	s := f.section(section)
	if _, ok := s.vals[key]; !ok {
		s.keys = append(s.keys, key)
	}
	s.vals[key] = value
}

// String renders the document.
func (f *iniFile) String() string {
	var b strings.Builder
	for i, s := range f.sections {
		if i > 0 {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, "[%s]\n", s.name)
		for _, k := range s.keys {
			if v := s.vals[k]; v == "" {
				fmt.Fprintf(&b, "%s =\n", k)
			} else {
				fmt.Fprintf(&b, "%s = %s\n", k, v)
			}
		}
	}
	return b.String()
}

func (f *iniFile) write(path string) error {
	if err := os.WriteFile(path, []byte(f.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func boolValue(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// ServerConfig is what neutron.conf and ml2_conf.ini of the test bed's neutron-server say.
type ServerConfig struct {
	// APIPort is the REST API's port on 127.0.0.1.
	APIPort int
	// TransportURL is oslo.messaging's rabbit://… URL of the test bed's RabbitMQ.
	TransportURL string
	// DatabaseURL is the SQLAlchemy URL of the test bed's MariaDB.
	DatabaseURL string
	// StateDir, LockDir and LogDir are neutron-server's state_path, lock_path and log_dir.
	StateDir, LockDir, LogDir string

	// TenantNetworkTypes are ML2's tenant_network_types (default vxlan).
	TenantNetworkTypes []string
	// FlatNetworks are the physical networks flat networks may use.
	FlatNetworks []string
	// NetworkVLANRanges are ML2's network_vlan_ranges, "physnet1:100:199" or "physnet1".
	NetworkVLANRanges []string
	// VNIRanges are the VXLAN VNI ranges, "1000:1999".
	VNIRanges []string
	// FirewallDriver is the server's [securitygroup] firewall_driver (openvswitch,
	// iptables_hybrid or noop); noop also turns security groups off.
	FirewallDriver string
	// AgentDownTime is how many seconds after its last report an agent counts as dead.
	AgentDownTime int
}

// NeutronConf renders neutron.conf: ML2 core plugin, the router service plugin with
// distributed routers by default, noauth, one API and one RPC worker (which also handles
// report_state), no Nova notifications, no DHCP agent scheduling, debug logs in LogDir.
func (c ServerConfig) NeutronConf() string {
	var f iniFile
	d := "DEFAULT"
	f.set(d, "debug", "True")
	f.set(d, "bind_host", "127.0.0.1")
	f.set(d, "bind_port", strconv.Itoa(c.APIPort))
	f.set(d, "auth_strategy", "noauth")
	f.set(d, "core_plugin", "ml2")
	f.set(d, "service_plugins", "router")
	f.set(d, "router_distributed", "True")
	f.set(d, "allow_overlapping_ips", "True")
	f.set(d, "transport_url", c.TransportURL)
	f.set(d, "api_workers", "1")
	f.set(d, "rpc_workers", "1")
	f.set(d, "rpc_state_report_workers", "0")
	f.set(d, "agent_down_time", strconv.Itoa(orInt(c.AgentDownTime, 75)))
	f.set(d, "graceful_shutdown_timeout", "5")
	f.set(d, "notify_nova_on_port_status_changes", "False")
	f.set(d, "notify_nova_on_port_data_changes", "False")
	f.set(d, "enable_traditional_dhcp", "False")
	f.set(d, "state_path", c.StateDir)
	f.set(d, "api_paste_config", "/etc/neutron/api-paste.ini")
	f.set(d, "log_dir", c.LogDir)
	f.set(d, "use_stderr", "False")
	f.set("database", "connection", c.DatabaseURL)
	f.set("oslo_concurrency", "lock_path", c.LockDir)
	f.set("oslo_policy", "enforce_scope", "False")
	f.set("oslo_policy", "enforce_new_defaults", "False")
	f.set("oslo_messaging_notifications", "driver", "noop")
	return f.String()
}

// ML2Conf renders ml2_conf.ini: type drivers flat, vlan and vxlan, mechanism drivers
// openvswitch and l2population, port security, and the configured ranges.
func (c ServerConfig) ML2Conf() string {
	var f iniFile
	f.set("ml2", "type_drivers", "flat,vlan,vxlan")
	f.set("ml2", "tenant_network_types", strings.Join(orDefault(c.TenantNetworkTypes, "vxlan"), ","))
	f.set("ml2", "mechanism_drivers", "openvswitch,l2population")
	f.set("ml2", "extension_drivers", "port_security")
	f.set("ml2", "overlay_ip_version", "4")
	f.set("ml2_type_flat", "flat_networks", strings.Join(c.FlatNetworks, ","))
	f.set("ml2_type_vlan", "network_vlan_ranges", strings.Join(c.NetworkVLANRanges, ","))
	f.set("ml2_type_vxlan", "vni_ranges", strings.Join(orDefault(c.VNIRanges, "1000:1999"), ","))
	fw := orString(c.FirewallDriver, "openvswitch")
	f.set("securitygroup", "enable_security_group", boolValue(fw != "noop"))
	f.set("securitygroup", "firewall_driver", fw)
	return f.String()
}

// AgentConfig is what a host's openvswitch_agent.ini for Neutron's Python agent says.
type AgentConfig struct {
	// Host is the agent's host name ([DEFAULT] host), which ports are bound to.
	Host string
	// TransportURL is oslo.messaging's URL as seen from inside the host.
	TransportURL string
	// LocalIP is the tunnel endpoint ([ovs] local_ip); invalid means no tunnels.
	LocalIP netip.Addr
	// TunnelTypes are [agent] tunnel_types, e.g. vxlan.
	TunnelTypes []string
	// BridgeMappings maps a physical network to its bridge ([ovs] bridge_mappings).
	BridgeMappings map[string]string
	// L2Population, EnableDistributedRouting and ARPResponder are the [agent] options.
	L2Population, EnableDistributedRouting, ARPResponder bool
	// FirewallDriver is [securitygroup] firewall_driver: openvswitch, iptables_hybrid or
	// noop (noop also sets enable_security_group = False).
	FirewallDriver string
	// OVSDBConnection is [ovs] ovsdb_connection, e.g. tcp:127.0.0.1:6640.
	OVSDBConnection string
	// OFListenPort is the port of the agent's OpenFlow controller on the host's 127.0.0.1.
	OFListenPort int
	// StateDir, LockDir, LogDir and LogFile are where the agent keeps its files.
	StateDir, LockDir, LogDir, LogFile string
	// ReportInterval is [agent] report_interval in seconds (default 30).
	ReportInterval int
	// NoDebug sets [DEFAULT] debug = False (Neutron's default); the test bed logs at debug
	// level otherwise.
	NoDebug bool
}

// INI renders the agent's configuration file.
func (c AgentConfig) INI() string {
	var f iniFile
	d := "DEFAULT"
	f.set(d, "debug", boolValue(!c.NoDebug))
	f.set(d, "host", c.Host)
	f.set(d, "transport_url", c.TransportURL)
	f.set(d, "state_path", c.StateDir)
	f.set(d, "log_dir", c.LogDir)
	f.set(d, "log_file", c.LogFile)
	f.set(d, "use_stderr", "False")
	f.set("agent", "root_helper", "env")
	f.set("agent", "tunnel_types", strings.Join(c.TunnelTypes, ","))
	f.set("agent", "l2_population", boolValue(c.L2Population))
	f.set("agent", "enable_distributed_routing", boolValue(c.EnableDistributedRouting))
	f.set("agent", "arp_responder", boolValue(c.ARPResponder))
	f.set("agent", "report_interval", strconv.Itoa(orInt(c.ReportInterval, 30)))
	f.set("ovs", "integration_bridge", "br-int")
	f.set("ovs", "tunnel_bridge", "br-tun")
	if c.LocalIP.IsValid() {
		f.set("ovs", "local_ip", c.LocalIP.String())
	}
	f.set("ovs", "datapath_type", "netdev")
	f.set("ovs", "ovsdb_connection", c.OVSDBConnection)
	f.set("ovs", "of_listen_address", "127.0.0.1")
	f.set("ovs", "of_listen_port", strconv.Itoa(orInt(c.OFListenPort, 6633)))
	f.set("ovs", "bridge_mappings", joinMappings(c.BridgeMappings))
	fw := orString(c.FirewallDriver, "openvswitch")
	f.set("securitygroup", "firewall_driver", fw)
	f.set("securitygroup", "enable_security_group", boolValue(fw != "noop"))
	f.set("oslo_concurrency", "lock_path", c.LockDir)
	return f.String()
}

// joinMappings renders bridge_mappings sorted by physical network: "physnet1:br-vlan,…".
func joinMappings(m map[string]string) string {
	nets := make([]string, 0, len(m))
	for n := range m {
		nets = append(nets, n)
	}
	slices.Sort(nets)
	parts := make([]string, 0, len(nets))
	for _, n := range nets {
		parts = append(parts, n+":"+m[n])
	}
	return strings.Join(parts, ",")
}

// orInt returns v, or def when v is zero.
func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDefault(v []string, def ...string) []string {
	if len(v) == 0 {
		return def
	}
	return v
}

func orString(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
