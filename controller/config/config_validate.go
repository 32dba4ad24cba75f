package config

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
)

// Validate checks the effective configuration (after the topology host section and the
// flags were applied) the way Neutron's agent does at start-up, and returns every problem
// joined into one error. The agent must not start when it fails.
func (c *Config) Validate() error {
	var errs []error
	bad := func(option, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", option, fmt.Sprintf(format, args...)))
	}
	if c.Host == "" {
		bad("host", "is empty (and the OS hostname could not be read)")
	}
	if c.NeutronMode() && c.Standalone() {
		bad("transport_url", "is set and so is [dvrflow] topology_file (%s): the agent takes its state from neutron-server or from a topology file, not both", c.TopologyFile)
	}
	if _, err := northbound.ParseAgentMode(string(c.AgentMode)); err != nil {
		bad("agent_mode", "%q %v", c.AgentMode, err)
	} else if err := c.AgentMode.CheckSupported(); err != nil {
		bad("agent_mode", "%q %v", c.AgentMode, err)
	}
	if err := checkDatapathType(c.DatapathType); err != nil {
		bad("datapath_type", "%q %v", c.DatapathType, err)
	}
	for _, o := range [][2]string{{"integration_bridge", c.IntegrationBridge},
		{"tunnel_bridge", c.TunnelBridge}, {"int_peer_patch_port", c.IntPeerPatchPort},
		{"tun_peer_patch_port", c.TunPeerPatchPort}} {
		if o[1] == "" {
			bad(o[0], "is empty")
		}
	}
	if c.IntegrationBridge == c.TunnelBridge {
		bad("tunnel_bridge", "%q is also the integration_bridge", c.TunnelBridge)
	}
	if err := northbound.CheckBridgeMappings(c.BridgeMappings); err != nil {
		bad("bridge_mappings", "%v", err)
	}
	for _, physnet := range c.Physnets() {
		if b := c.BridgeMappings[physnet]; b == c.IntegrationBridge || b == c.TunnelBridge {
			bad("bridge_mappings", "physical network %q is mapped to %q, the integration or tunnel bridge", physnet, b)
		}
	}
	for _, t := range c.TunnelTypes {
		if !t.Tunnelled() {
			bad("tunnel_types", "has a tunnel type %q that is not one of vxlan, gre, geneve", t)
		}
	}
	if c.TunnelingEnabled() && !c.LocalIP.IsValid() {
		bad("local_ip", "is required with tunnel_types %s", tunnelTypesText(c.TunnelTypes))
	}
	if c.DistributedRoutingEnabled() {
		if c.TunnelingEnabled() && !c.L2Population {
			bad("enable_distributed_routing", "DVR with tunnel_types %s requires l2_population = true "+
				"(Neutron's agent refuses to start: \"DVR deployments for VXLAN/GRE/Geneve underlays "+
				"require L2-pop to be enabled, in both the Agent and Server side\")", tunnelTypesText(c.TunnelTypes))
		}
		if c.Standalone() && c.DVRMAC == nil {
			bad("dvr_mac", "is required with enable_distributed_routing in standalone mode "+
				"(set host.dvr_mac in the topology or [dvrflow] dvr_mac)")
		}
	}
	c.checkFiltering(bad)
	c.validateNumbers(bad)
	if err := checkStatePath(c.StatePath); err != nil && c.RouterNamespacesManaged() {
		bad("state_path", "%q %v (the router namespaces keep their floating IP allocations there)", c.StatePath, err)
	}
	if err := checkOptionalHostPort(c.MetricsAddress); err != nil {
		bad("metrics_address", "%q %v", c.MetricsAddress, err)
	}
	if path := c.APISocketPath(); len(path) > maxSocketPathLen {
		bad("api_socket", "%q is longer than the %d bytes a unix socket path can have "+
			"(set [dvrflow] api_socket to a shorter path, or none)", path, maxSocketPathLen)
	}
	return errors.Join(errs...)
}

// validateNumbers checks the numeric options' ranges (flags can set any value).
func (c *Config) validateNumbers(bad func(option, format string, args ...any)) {
	for _, n := range []struct {
		option   string
		value    int
		min, max int
	}{
		{"vxlan_udp_port", c.VXLANUDPPort, 0, 65535},
		{"ovsdb_timeout", c.OVSDBTimeout, 0, maxInt32},
		{"of_inactivity_probe", c.OFInactivityProbe, 0, maxInt32},
		{"of_connect_timeout", c.OFConnectTimeout, 0, maxInt32},
		{"of_request_timeout", c.OFRequestTimeout, 0, maxInt32},
		{"bridge_mac_table_size", c.BridgeMACTableSize, 0, maxInt32},
		{"polling_interval", c.PollingInterval, 0, maxInt32},
		{"verify_interval", c.VerifyInterval, 0, maxInt32},
	} {
		if n.value < n.min || n.value > n.max {
			bad(n.option, "%d is outside %d–%d", n.value, n.min, n.max)
		}
	}
	if c.DSCP != nil && (*c.DSCP < 0 || *c.DSCP > 63) {
		bad("dscp", "%d is outside 0–63", *c.DSCP)
	}
	if c.ReportInterval < 0 {
		bad("report_interval", "%v is negative", c.ReportInterval)
	}
}

// tunnelTypesText renders tunnel types for a message.
func tunnelTypesText(types []northbound.NetworkType) string {
	if len(types) == 0 {
		return "none"
	}
	s := make([]string, len(types))
	for i, t := range types {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}
