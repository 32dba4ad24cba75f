package controller

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
)

// Problem kinds: which list of the topology the object comes from.
const (
	KindHost       = "host"
	KindOtherHost  = "other_host"
	KindNetwork    = "network"
	KindSubnet     = "subnet"
	KindPort       = "port"
	KindRemotePort = "remote_port"
	KindL2popFDB   = "l2pop_fdb"
)

// Problem is one reason an object of the topology was dropped (or, for the host section,
// one host setting that was ignored).
type Problem struct {
	// Kind is one of the Kind* constants.
	Kind string
	// ID names the object: its id; for a remote port "host/id"; for an other host its
	// name; for an l2pop_fdb entry "network_id/remote_ip"; for the host section the host's
	// name; "LIST[i]" (e.g. "ports[2]") when the object has no id.
	ID string
	// Field is the attribute at fault ("mac", "fixed_ips[0].ip_address"); empty when the
	// whole object is.
	Field string
	// Reason says what is wrong, usually starting with the quoted value.
	Reason string
}

// Error renders the problem as `KIND ID: field FIELD: REASON`, e.g.
// `port c0000001-...: field mac: "fa:16:3e:zz:01:01" is not a MAC address`.
func (p Problem) Error() string {
	if p.Field == "" {
		return fmt.Sprintf("%s %s: %s", p.Kind, p.ID, p.Reason)
	}
	return fmt.Sprintf("%s %s: field %s: %s", p.Kind, p.ID, p.Field, p.Reason)
}

// Validate checks a topology against the effective config (ini, then host section, then
// flags: see the package documentation) and returns a copy holding only the valid objects,
// with the problems of the others. Each invalid object is dropped and reported, and so is
// every object that depends on a dropped or unknown one (a port on a dropped network names
// the network); every other object is kept. Of two objects with the same id the first is
// judged on its own and the later one is dropped. Invalid host-section settings are
// reported with Kind "host" and cleared in the copy; since the config was derived from them,
// the caller should treat them as fatal at start-up.
//
// The copy is normalised: MACs in lower-case colon form, addresses and CIDRs in canonical
// form, and the documented defaults filled in (other_hosts' tunnel_types, subnets'
// ip_version and gateway_mac, fixed_ips' subnet_id). Problems come in a stable order: host,
// other hosts, networks, subnets, ports, remote ports, FDB entries, each in file order.
// A nil cfg means [DefaultConfig].
func Validate(t *Topology, cfg *Config) (*Topology, []Problem) {
	if t == nil {
		t = &Topology{}
	}
	if cfg == nil {
		cfg = DefaultConfig()
	}
	v := &validator{
		cfg:       cfg,
		invalid:   map[string]map[string]bool{},
		networks:  map[string]Network{},
		subnets:   map[string]subnetInfo{},
		hosts:     map[string]OtherHost{},
		undecoded: t.undecodable,
	}
	out := &Topology{Name: t.Name, Description: t.Description}
	out.Host = v.host(t.Host)
	out.OtherHosts = v.otherHosts(t.OtherHosts)
	out.Networks = v.networksList(t.Networks)
	out.Subnets = v.subnetsList(t.Subnets)
	out.Ports = v.ports(t.Ports)
	out.RemotePorts = v.remotePorts(t.RemotePorts)
	out.L2popFDB = v.fdbs(t.L2popFDB)
	fillGatewayMACs(out)
	return out, v.problems
}

// validator carries what is known while one topology is checked, list by list.
type validator struct {
	cfg      *Config
	problems []Problem
	// invalid holds, per kind, the ids of objects that were dropped.
	invalid map[string]map[string]bool
	// the valid objects so far, by id (other hosts by name).
	networks map[string]Network
	subnets  map[string]subnetInfo
	hosts    map[string]OtherHost
	// undecoded are the decoder's problems, reported at the start of their kind.
	undecoded []Problem
}

// subnetInfo is a valid subnet with its parsed CIDR.
type subnetInfo struct {
	Subnet
	prefix netip.Prefix
}

// object collects the problems of one object.
type object struct {
	v        *validator
	kind, id string
	failed   bool
}

// begin starts checking the i-th object of the list key; an object without an id is
// named "key[i]".
func (v *validator) begin(kind, key string, i int, id string) *object {
	if id == "" {
		id = fmt.Sprintf("%s[%d]", key, i)
	}
	return &object{v: v, kind: kind, id: id}
}

// reportUndecoded reports the decoder's problems of kind and marks their ids invalid.
func (v *validator) reportUndecoded(kind string) {
	for _, p := range v.undecoded {
		if p.Kind == kind {
			v.problems = append(v.problems, p)
			v.markInvalid(kind, p.ID)
		}
	}
}

// fail records a problem on field.
func (o *object) fail(field, format string, args ...any) {
	o.failed = true
	o.v.problems = append(o.v.problems, Problem{Kind: o.kind, ID: o.id, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// done reports whether the object is valid, and marks it invalid otherwise.
func (o *object) done() bool {
	if o.failed {
		o.v.markInvalid(o.kind, o.id)
	}
	return !o.failed
}

func (v *validator) markInvalid(kind, id string) {
	if v.invalid[kind] == nil {
		v.invalid[kind] = map[string]bool{}
	}
	v.invalid[kind][id] = true
}

// mac checks and normalises a required or optional MAC field.
func (o *object) mac(field, value string, required bool) string {
	if value == "" {
		if required {
			o.fail(field, "missing")
		}
		return ""
	}
	mac, err := parseMAC(value)
	if err != nil {
		o.fail(field, "%q %v", value, err)
		return value
	}
	return mac
}

// ip checks and normalises a required or optional address field.
func (o *object) ip(field, value string, required bool) string {
	if value == "" {
		if required {
			o.fail(field, "missing")
		}
		return ""
	}
	a, err := parseIP(value)
	if err != nil {
		o.fail(field, "%q %v", value, err)
		return value
	}
	return a.String()
}

// host checks the host section and returns it without its invalid settings.
func (v *validator) host(h *TopologyHost) *TopologyHost {
	if h == nil {
		return nil
	}
	c := *h
	c.BridgeMappings = maps.Clone(h.BridgeMappings)
	c.PhysicalBridgePorts = maps.Clone(h.PhysicalBridgePorts)
	c.TunnelTypes = slices.Clone(h.TunnelTypes)
	name := v.cfg.Host
	if h.Name != nil {
		name = *h.Name
	}
	if name == "" {
		name = "host"
	}
	o := v.begin(KindHost, "host", 0, name)
	if h.AgentMode != nil {
		if err := checkAgentMode(*h.AgentMode); err != nil {
			o.fail("agent_mode", "%q %v", *h.AgentMode, err)
			c.AgentMode = nil
		}
	}
	if h.IntegrationBridge != nil && *h.IntegrationBridge == "" {
		o.fail("integration_bridge", "is empty")
		c.IntegrationBridge = nil
	}
	if h.TunnelBridge != nil && *h.TunnelBridge == "" {
		o.fail("tunnel_bridge", "is empty")
		c.TunnelBridge = nil
	}
	if h.BridgeMappings != nil {
		if err := checkBridgeMappings(h.BridgeMappings); err != nil {
			o.fail("bridge_mappings", "%v", err)
			c.BridgeMappings = nil
		}
	}
	bridges := slices.Collect(maps.Values(v.cfg.BridgeMappings))
	for _, bridge := range sortedKeys(h.PhysicalBridgePorts) {
		if !slices.Contains(bridges, bridge) {
			o.fail("physical_bridge_ports", "bridge %q is not in bridge_mappings", bridge)
		}
	}
	if h.LocalIP != nil && *h.LocalIP != "" {
		if _, err := parseIP(*h.LocalIP); err != nil {
			o.fail("local_ip", "%q %v", *h.LocalIP, err)
			c.LocalIP = nil
		}
	}
	if h.TunnelTypes != nil {
		if _, err := parseTunnelTypes(h.TunnelTypes); err != nil {
			o.fail("tunnel_types", "%v", err)
			c.TunnelTypes = nil
		}
	}
	if h.DVRMAC != nil && *h.DVRMAC != "" {
		if _, err := parseMAC(*h.DVRMAC); err != nil {
			o.fail("dvr_mac", "%q %v", *h.DVRMAC, err)
			c.DVRMAC = nil
		}
	}
	o.done()
	return &c
}

// otherHosts checks other_hosts.
func (v *validator) otherHosts(hosts []OtherHost) []OtherHost {
	v.reportUndecoded(KindOtherHost)
	out := []OtherHost{}
	byIP, byMAC := map[string]string{}, map[string]string{}
	ownMAC, _ := parseMAC(v.cfg.DVRMAC)
	ownIP := normalIP(v.cfg.LocalIP)
	for i, h := range hosts {
		o := v.begin(KindOtherHost, "other_hosts", i, h.Name)
		switch _, dup := v.hosts[h.Name]; {
		case h.Name == "":
			o.fail("name", "missing")
		case dup || v.invalid[KindOtherHost][h.Name]:
			o.fail("name", "duplicate name")
		case h.Name == v.cfg.Host:
			o.fail("name", "%q is this host's name", h.Name)
		}
		h.IP = o.ip("ip", h.IP, false)
		if other, dup := byIP[h.IP]; dup && h.IP != "" {
			o.fail("ip", "%q is also the ip of other host %q", h.IP, other)
		} else if h.IP != "" && h.IP == ownIP {
			o.fail("ip", "%q is this host's local_ip", h.IP)
		}
		h.DVRMAC = o.mac("dvr_mac", h.DVRMAC, false)
		if other, dup := byMAC[h.DVRMAC]; dup && h.DVRMAC != "" {
			o.fail("dvr_mac", "%q is also the dvr_mac of other host %q", h.DVRMAC, other)
		} else if h.DVRMAC != "" && h.DVRMAC == ownMAC {
			o.fail("dvr_mac", "%q is this host's dvr_mac", h.DVRMAC)
		}
		if h.TunnelTypes == nil {
			h.TunnelTypes = slices.Clone(v.cfg.TunnelTypes)
		} else if types, err := parseTunnelTypes(h.TunnelTypes); err != nil {
			o.fail("tunnel_types", "%v", err)
		} else {
			h.TunnelTypes = types
		}
		if !o.done() {
			continue
		}
		v.hosts[h.Name] = h
		if h.IP != "" {
			byIP[h.IP] = h.Name
		}
		if h.DVRMAC != "" {
			byMAC[h.DVRMAC] = h.Name
		}
		out = append(out, h)
	}
	return out
}

// normalIP returns the canonical form of an address, or s itself if it is not one.
func normalIP(s string) string {
	if a, err := parseIP(s); err == nil {
		return a.String()
	}
	return s
}
