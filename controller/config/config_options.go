package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
)

// option is one ini option dvrflow reads: where it lives and how its text is stored.
type option struct {
	section, name string
	set           func(c *Config, value string) error
}

// options lists every ini option dvrflow reads, by section, in Neutron's order. It is
// never modified.
var options = []option{
	{"DEFAULT", "host", setString(func(c *Config) *string { return &c.Host })},
	{"DEFAULT", "transport_url", setRaw(func(c *Config) map[string]string { return c.Messaging }, "transport_url")},
	{"DEFAULT", "control_exchange", setRaw(func(c *Config) map[string]string { return c.Messaging }, "control_exchange")},
	{"DEFAULT", "rpc_response_timeout", setRaw(func(c *Config) map[string]string { return c.Messaging }, "rpc_response_timeout")},
	{"DEFAULT", "rpc_response_max_timeout", setRaw(func(c *Config) map[string]string { return c.Messaging }, "rpc_response_max_timeout")},
	{"DEFAULT", "state_path", setChecked(func(c *Config) *string { return &c.StatePath }, checkStatePath)},

	{"ovs", "integration_bridge", setString(func(c *Config) *string { return &c.IntegrationBridge })},
	{"ovs", "tunnel_bridge", setString(func(c *Config) *string { return &c.TunnelBridge })},
	{"ovs", "int_peer_patch_port", setString(func(c *Config) *string { return &c.IntPeerPatchPort })},
	{"ovs", "tun_peer_patch_port", setString(func(c *Config) *string { return &c.TunPeerPatchPort })},
	{"ovs", "bridge_mappings", func(c *Config, v string) error {
		m, err := parseBridgeMappings(v)
		if err == nil {
			c.BridgeMappings = m
		}
		return err
	}},
	{"ovs", "local_ip", func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			c.LocalIP = netip.Addr{}
			return nil
		}
		ip, err := northbound.ParseIP(v)
		if err == nil {
			c.LocalIP = ip
		}
		return err
	}},
	{"ovs", "datapath_type", setChecked(func(c *Config) *string { return &c.DatapathType }, checkDatapathType)},
	{"ovs", "ovsdb_connection", setString(func(c *Config) *string { return &c.OVSDBConnection })},
	{"ovs", "ovsdb_timeout", setInt(func(c *Config) *int { return &c.OVSDBTimeout }, 0, maxInt32)},
	{"ovs", "of_inactivity_probe", setInt(func(c *Config) *int { return &c.OFInactivityProbe }, 0, maxInt32)},
	{"ovs", "of_connect_timeout", setInt(func(c *Config) *int { return &c.OFConnectTimeout }, 0, maxInt32)},
	{"ovs", "of_request_timeout", setInt(func(c *Config) *int { return &c.OFRequestTimeout }, 0, maxInt32)},
	{"ovs", "bridge_mac_table_size", setInt(func(c *Config) *int { return &c.BridgeMACTableSize }, 0, maxInt32)},
	{"ovs", "igmp_snooping_enable", setBool(func(c *Config) *bool { return &c.IGMPSnoopingEnable })},

	{"agent", "tunnel_types", func(c *Config, v string) error {
		types, err := northbound.ParseTunnelTypes(parseList(v))
		if err == nil {
			c.TunnelTypes = types
		}
		return err
	}},
	{"agent", "vxlan_udp_port", setInt(func(c *Config) *int { return &c.VXLANUDPPort }, 0, 65535)},
	{"agent", "l2_population", setBool(func(c *Config) *bool { return &c.L2Population })},
	{"agent", "arp_responder", setBool(func(c *Config) *bool { return &c.ARPResponder })},
	{"agent", "enable_distributed_routing", setOptBool(func(c *Config) **bool { return &c.EnableDistributedRouting })},
	{"agent", "drop_flows_on_start", setBool(func(c *Config) *bool { return &c.DropFlowsOnStart })},
	{"agent", "dont_fragment", setBool(func(c *Config) *bool { return &c.DontFragment })},
	{"agent", "tunnel_csum", setBool(func(c *Config) *bool { return &c.TunnelCsum })},
	{"agent", "dscp", func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			c.DSCP = nil
			return nil
		}
		n, err := parseInt(v, 0, 63)
		if err == nil {
			d := int(n)
			c.DSCP = &d
		}
		return err
	}},
	{"agent", "dscp_inherit", setBool(func(c *Config) *bool { return &c.DSCPInherit })},
	{"agent", "polling_interval", setInt(func(c *Config) *int { return &c.PollingInterval }, 0, maxInt32)},
	{"agent", "report_interval", func(c *Config, v string) error {
		f, err := parseFloat(v)
		if err == nil {
			c.ReportInterval = f
		}
		return err
	}},
	{"agent", "explicitly_egress_direct", setBool(func(c *Config) *bool { return &c.ExplicitlyEgressDirect })},
	{"agent", "extensions", func(c *Config, v string) error { c.Extensions = parseList(v); return nil }},

	{"securitygroup", "firewall_driver", setString(func(c *Config) *string { return &c.FirewallDriver })},
	{"securitygroup", "enable_security_group", setBool(func(c *Config) *bool { return &c.EnableSecurityGroup })},
	{"securitygroup", "permitted_ethertypes", func(c *Config, v string) error {
		es, err := parseEthertypes(v)
		if err == nil {
			c.PermittedEthertypes = es
		}
		return err
	}},

	{"dvrflow", "topology_file", setString(func(c *Config) *string { return &c.TopologyFile })},
	{"dvrflow", "ovs_rundir", setString(func(c *Config) *string { return &c.OVSRundir })},
	{"dvrflow", "manage_router_namespaces", setOptBool(func(c *Config) **bool { return &c.ManageRouterNamespaces })},
	{"dvrflow", "metrics_address", setChecked(func(c *Config) *string { return &c.MetricsAddress }, checkOptionalHostPort)},
	{"dvrflow", "api_socket", func(c *Config, v string) error {
		path, err := parseAPISocket(v)
		if err == nil {
			c.APISocket = &path
		}
		return err
	}},
	{"dvrflow", "agent_mode", func(c *Config, v string) error {
		m, err := northbound.ParseAgentMode(strings.TrimSpace(v))
		if err == nil {
			err = m.CheckSupported()
		}
		if err == nil {
			c.AgentMode = m
		}
		return err
	}},
	{"dvrflow", "dvr_mac", func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			c.DVRMAC = nil
			return nil
		}
		mac, err := northbound.ParseMAC(v)
		if err == nil {
			c.DVRMAC = mac
		}
		return err
	}},
	{"dvrflow", "prevent_arp_spoofing", setBool(func(c *Config) *bool { return &c.PreventARPSpoofing })},
	{"dvrflow", "verify_interval", setInt(func(c *Config) *int { return &c.VerifyInterval }, 0, maxInt32)},
	{"dvrflow", "allow_unfiltered_ports", setBool(func(c *Config) *bool { return &c.AllowUnfilteredPorts })},
}

// rawSections are sections whose every option is kept as written, for a parser elsewhere
// ([oslo_messaging_rabbit]: package neutron/oslo).
var rawSections = map[string]func(c *Config) map[string]string{
	"oslo_messaging_rabbit": func(c *Config) map[string]string { return c.Rabbit },
}

// serverOnlySections and serverOnlyOptions are what a neutron.conf holds for
// neutron-server alone: the agent reads the same file (dvrflow-agent --config-file
// neutron.conf --config-file openvswitch_agent.ini) and ignores them without a warning.
var serverOnlySections = []string{
	"database", "keystone_authtoken", "nova", "placement", "oslo_concurrency", "oslo_policy",
	"oslo_middleware", "quotas", "designate", "ironic", "experimental", "healthcheck", "cors",
	"oslo_messaging_notifications", "oslo_messaging_amqp", "oslo_messaging_kafka", "profiler",
	"ssl", "privsep", "ml2", "ml2_type_flat", "ml2_type_vlan", "ml2_type_vxlan", "ml2_type_gre",
	"ml2_type_geneve", "l2pop", "service_providers", "ovn", "placement_client",
}

var serverOnlyOptions = map[string][]string{
	"DEFAULT": {"core_plugin", "service_plugins", "auth_strategy", "allow_overlapping_ips",
		"notify_nova_on_port_status_changes", "notify_nova_on_port_data_changes", "api_workers",
		"rpc_workers", "rpc_state_report_workers", "router_distributed", "l3_ha",
		"dhcp_agents_per_network", "bind_host", "bind_port", "api_paste_config",
		"agent_down_time", "dhcp_agent_notification", "allow_automatic_l3agent_failover",
		"max_l3_agents_per_router", "network_scheduler_driver", "router_scheduler_driver",
		"global_physnet_mtu", "dns_domain", "base_mac", "dvr_base_mac", "max_allowed_address_pair",
		"default_availability_zones", "transport_url_notifications", "executor_thread_pool_size",
		"rpc_conn_pool_size", "conn_pool_min_size", "conn_pool_ttl", "rpc_ping_enabled",
		"periodic_fuzzy_delay", "periodic_interval", "api_extensions_path", "interface_driver",
		"ipam_driver", "vlan_transparent", "filter_validation", "pagination_max_limit",
		"enable_dvr", "enable_snat_by_default", "send_events_interval", "use_ssl"},
}

// renamedOptions maps deprecated or removed option names (section → name) to the warning
// that explains them. A deprecated alias that still works is listed in aliasOptions.
var renamedOptions = map[string]map[string]string{
	"agent": {
		"prevent_arp_spoofing": "removed from Neutron in 11.0.0; dvrflow reads [dvrflow] prevent_arp_spoofing; ignored",
		"veth_mtu":             "deprecated Neutron option with no effect; ignored",
	},
}

// aliasOptions maps deprecated names that oslo.config still accepts to the current name in
// the same section.
var aliasOptions = map[string]map[string]string{
	"ovs": {"ovs_integration_bridge": "integration_bridge"},
}

// ignoredOptions are Neutron options (from the openvswitch_agent.ini Neutron 21 ships, and
// the DEFAULT options of oslo.log) that dvrflow accepts but does not use.
var ignoredOptions = map[string][]string{
	"DEFAULT": {"debug", "log_config_append", "log_date_format",
		"log_file", "log_dir", "watch_log_file", "use_syslog", "use_journal",
		"syslog_log_facility", "use_json", "use_stderr", "use_eventlog", "log_rotate_interval",
		"log_rotate_interval_type", "max_logfile_count", "max_logfile_size_mb",
		"log_rotation_type", "logging_context_format_string", "logging_default_format_string",
		"logging_debug_format_suffix", "logging_exception_prefix", "logging_user_identity_format",
		"default_log_levels", "publish_errors", "instance_format", "instance_uuid_format",
		"rate_limit_interval", "rate_limit_burst", "rate_limit_except_level",
		"fatal_deprecations"},
	"agent": {"minimize_polling", "ovsdb_monitor_respawn_interval", "baremetal_smartnic",
		"quitting_rpc_timeout"},
	"ovs": {"of_listen_address", "of_listen_port", "vhostuser_socket_dir",
		"openflow_processed_per_port", "ssl_key_file", "ssl_cert_file", "ssl_ca_cert_file",
		"ovsdb_debug", "resource_provider_bandwidths", "resource_provider_hypervisors",
		"resource_provider_packet_processing_without_direction",
		"resource_provider_packet_processing_with_direction",
		"resource_provider_default_hypervisor", "resource_provider_inventory_defaults",
		"resource_provider_packet_processing_inventory_defaults"},
	"securitygroup": {"enable_ipset"},
	"dhcp":          {"enable_ipv6", "dhcp_renewal_time", "dhcp_rebinding_time"},
	"network_log":   {"rate_limit", "burst_limit", "local_output_log_base"},
	"local_ip":      {"static_nat"},
}

const maxInt32 = 1<<31 - 1

// setString stores the value as it is.
// setRaw keeps the option's value as written in the map field returns.
func setRaw(field func(*Config) map[string]string, name string) func(*Config, string) error {
	return func(c *Config, v string) error { field(c)[name] = v; return nil }
}

func setString(field func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *field(c) = v; return nil }
}

// setChecked stores the value after check accepts it.
func setChecked(field func(*Config) *string, check func(string) error) func(*Config, string) error {
	return func(c *Config, v string) error {
		v = strings.TrimSpace(v)
		if err := check(v); err != nil {
			return err
		}
		*field(c) = v
		return nil
	}
}

// setBool parses an oslo boolean.
func setBool(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := parseBool(v)
		if err == nil {
			*field(c) = b
		}
		return err
	}
}

// setOptBool parses an oslo boolean into an optional field (an empty value unsets it).
func setOptBool(field func(*Config) **bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		if strings.TrimSpace(v) == "" {
			*field(c) = nil
			return nil
		}
		b, err := parseBool(v)
		if err == nil {
			*field(c) = &b
		}
		return err
	}
}

// setInt parses an integer in [min, max].
func setInt(field func(*Config) *int, min, max int64) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v, min, max)
		if err == nil {
			*field(c) = int(n)
		}
		return err
	}
}

// checkDatapathType accepts Neutron's datapath_type choices.
func checkDatapathType(v string) error { return oneOf(v, DatapathSystem, DatapathNetdev) }

// parseAPISocket reads api_socket: "" or "none" disable the API (""), anything else must
// be an absolute path short enough for a unix socket.
func parseAPISocket(v string) (string, error) {
	v = strings.TrimSpace(v)
	if v == "" || v == "none" {
		return "", nil
	}
	return v, checkSocketPath(v)
}

// checkSocketPath accepts an absolute path a unix socket can be bound to.
func checkSocketPath(p string) error {
	if !filepath.IsAbs(p) {
		return errors.New("is not an absolute path (or none)")
	}
	if len(p) > maxSocketPathLen {
		return fmt.Errorf("is longer than the %d bytes a unix socket path can have", maxSocketPathLen)
	}
	return nil
}

// checkOptionalHostPort accepts an empty value or host:port.
// checkStatePath accepts an absolute directory path (a relative one would depend on the
// directory the agent was started in).
func checkStatePath(v string) error {
	if v == "" || !filepath.IsAbs(v) {
		return errors.New("is not an absolute directory path")
	}
	return nil
}

func checkOptionalHostPort(v string) error {
	if v == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(v); err != nil {
		return errors.New("is not host:port")
	}
	return nil
}
