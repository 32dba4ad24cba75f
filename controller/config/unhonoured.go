package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Firewall drivers: Neutron's [securitygroup] firewall_driver values, by short name (the
// agent's stevedore entry points) and class path (with ':' or '.' before the class).
var firewallDrivers = map[string]struct {
	classPath string
	filters   bool
}{
	"noop":              {"neutron.agent.firewall:NoopFirewallDriver", false},
	firewallOpenvswitch: {"neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver", true},
	"iptables_hybrid":   {"neutron.agent.linux.iptables_firewall:OVSHybridIptablesFirewallDriver", true},
	"iptables":          {"neutron.agent.linux.iptables_firewall:IptablesFirewallDriver", true},
}

// firewallDriver returns the short name of the configured firewall driver ("noop" when
// unset, as in Neutron), or false when the value names none.
func (c *Config) firewallDriver() (string, bool) {
	v := strings.TrimSpace(c.FirewallDriver)
	if v == "" {
		return "noop", true
	}
	for name, d := range firewallDrivers {
		dotted := strings.Replace(d.classPath, ":", ".", 1)
		if v == name || v == d.classPath || v == dotted {
			return name, true
		}
	}
	return "", false
}

// FilteringRequested reports whether the config asks for security-group filtering of VM
// ports: a filtering firewall_driver with enable_security_group on. dvrflow gives it with
// the openvswitch driver ([Config.Firewall]) and not with the others ([Config.Unfiltered]).
func (c *Config) FilteringRequested() bool {
	name, ok := c.firewallDriver()
	return ok && firewallDrivers[name].filters && c.EnableSecurityGroup
}

// Firewall reports whether dvrflow filters VM ports by their security groups: Neutron's
// openvswitch firewall driver (firewall_driver = openvswitch or its class path) with
// enable_security_group on. Without it (noop, unset, enable_security_group = false) ports
// are not filtered.
func (c *Config) Firewall() bool {
	name, _ := c.firewallDriver()
	return name == firewallOpenvswitch && c.EnableSecurityGroup
}

// Unfiltered reports whether the config asks for filtering by a firewall driver dvrflow
// does not implement (iptables, iptables_hybrid): the ports would run unfiltered, which
// Validate refuses unless allow_unfiltered_ports.
func (c *Config) Unfiltered() bool { return c.FilteringRequested() && !c.Firewall() }

// ARPSpoofingProtection is the effective prevent_arp_spoofing: br-int tables 24/25 protect
// ports only without the openvswitch firewall, whose table 71 does that job (Neutron's
// agent asks the driver: OVSFirewallDriver provides_arp_spoofing_protection).
func (c *Config) ARPSpoofingProtection() bool { return c.PreventARPSpoofing && !c.Firewall() }

// firewallOpenvswitch is the short name of the one firewall driver dvrflow implements.
const firewallOpenvswitch = "openvswitch"

// checkFiltering is Validate's fail-closed rule: a config that asks for filtering dvrflow
// does not give (a driver other than openvswitch) stops the agent, unless
// allow_unfiltered_ports says to go on.
func (c *Config) checkFiltering(bad func(option, format string, args ...any)) {
	if _, ok := c.firewallDriver(); !ok {
		names := slices.Sorted(maps.Keys(firewallDrivers))
		bad("firewall_driver", "%q is not a firewall driver of Neutron's Open vSwitch agent (%s, or their class paths)",
			c.FirewallDriver, strings.Join(names, ", "))
		return
	}
	if c.Unfiltered() && !c.AllowUnfilteredPorts {
		bad("firewall_driver", "%q asks for security-group filtering by a driver dvrflow does not implement: "+
			"dvrflow implements only the openvswitch driver, and every VM port would run unfiltered. "+
			"Set firewall_driver = openvswitch to filter ports by their security groups, "+
			"firewall_driver = noop (or enable_security_group = false) to run without filtering, "+
			"or [dvrflow] allow_unfiltered_ports = true to accept unfiltered ports", c.FirewallDriver)
	}
	for _, e := range c.PermittedEthertypes {
		if err := checkEthertype(e); err != nil {
			bad("permitted_ethertypes", "%#04x %v", e, err)
		}
	}
}

// Unhonoured is an option set in the config that dvrflow does not act on.
type Unhonoured struct {
	Section, Option, Value string
	// Reason says what dvrflow does instead.
	Reason string
}

func (u Unhonoured) String() string {
	return fmt.Sprintf("[%s] %s = %s: %s", u.Section, u.Option, u.Value, u.Reason)
}

// Unhonoured lists the options of the effective config that ask for something dvrflow does
// not do (each set to other than its default), so that the agent warns about every one of
// them by name at start: an option is either honoured or warned about, never silently
// ignored. Allowed unfiltered ports are listed too, at every start.
func (c *Config) Unhonoured() []Unhonoured {
	d := DefaultConfig()
	var out []Unhonoured
	add := func(section, option string, value any, reason string) {
		out = append(out, Unhonoured{Section: section, Option: option, Value: fmt.Sprint(value), Reason: reason})
	}
	switch {
	case c.Unfiltered() && c.AllowUnfilteredPorts:
		add("securitygroup", "firewall_driver", c.FirewallDriver,
			"VM ports are NOT filtered: dvrflow implements only the openvswitch firewall driver ([dvrflow] allow_unfiltered_ports = true)")
	case c.AllowUnfilteredPorts:
		add("dvrflow", "allow_unfiltered_ports", true, "no effect: firewall_driver asks for no filtering dvrflow lacks")
	}
	if len(c.PermittedEthertypes) > 0 && !c.Firewall() {
		add("securitygroup", "permitted_ethertypes", formatEthertypes(c.PermittedEthertypes),
			"no effect without the openvswitch firewall (firewall_driver = openvswitch, enable_security_group = true): unfiltered ports send every ethertype")
	}
	if c.DropFlowsOnStart {
		add("agent", "drop_flows_on_start", true, "not implemented: dvrflow keeps the installed flows and sends only the difference")
	}
	if c.ExplicitlyEgressDirect {
		add("agent", "explicitly_egress_direct", true, "not implemented")
	}
	if len(c.Extensions) > 0 {
		add("agent", "extensions", strings.Join(c.Extensions, ","), "agent extensions are not implemented")
	}
	if c.IGMPSnoopingEnable {
		add("ovs", "igmp_snooping_enable", true, "not implemented: multicast snooping stays off")
	}
	if c.PollingInterval != d.PollingInterval {
		add("agent", "polling_interval", c.PollingInterval, "no effect: dvrflow does not poll, OVSDB changes wake it")
	}
	if c.ReportInterval != d.ReportInterval && c.Standalone() {
		add("agent", "report_interval", c.ReportInterval, "no effect in standalone mode: there is no Neutron server to report to")
	}
	if c.StatePath != d.StatePath && !c.RouterNamespacesManaged() {
		add("DEFAULT", "state_path", c.StatePath, "not used: dvrflow keeps state there only for the router namespaces it manages (manage_router_namespaces is off)")
	}
	for _, n := range []struct {
		option   string
		set, def int
	}{
		{"ovsdb_timeout", c.OVSDBTimeout, d.OVSDBTimeout},
		{"of_connect_timeout", c.OFConnectTimeout, d.OFConnectTimeout},
		{"of_request_timeout", c.OFRequestTimeout, d.OFRequestTimeout},
	} {
		if n.set != n.def {
			add("ovs", n.option, n.set, "not honoured yet: dvrflow uses its own timeouts")
		}
	}
	return out
}
