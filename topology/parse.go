package topology

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
)

// Snapshot parses the file into the typed northbound model: addresses, prefixes, MACs and
// enums once, here. An object with a value that does not parse, or that the decoder could
// not read, is left out and reported as a Problem naming it and the field; the others keep
// the file's order. An invalid host setting is reported (kind host) and left out of the
// host settings. References between objects and the node's settings are checked by
// [northbound.Validate].
func (f *File) Snapshot() *northbound.Snapshot {
	p := &parser{undecoded: f.undecodable}
	s := &northbound.Snapshot{}
	s.Host = p.host(f.Host)
	s.Model.OtherHosts = parseList(p, northbound.KindOtherHost, "other_hosts", f.OtherHosts, (*parser).otherHost)
	s.Model.Networks = parseList(p, northbound.KindNetwork, "networks", f.Networks, (*parser).network)
	s.Model.Subnets = parseList(p, northbound.KindSubnet, "subnets", f.Subnets, (*parser).subnet)
	s.Model.Ports = parseList(p, northbound.KindPort, "ports", f.Ports, (*parser).port)
	s.Model.RemotePorts = parseList(p, northbound.KindRemotePort, "remote_ports", f.RemotePorts, (*parser).remotePort)
	s.Model.FDB = parseList(p, northbound.KindL2popFDB, "l2pop_fdb", f.L2popFDB, (*parser).fdb)
	s.Model.Routers = parseList(p, northbound.KindRouter, "routers", f.Routers, (*parser).router)
	s.Model.FloatingIPs = parseList(p, northbound.KindFloatingIP, "floatingips", f.FloatingIPs, (*parser).floatingIP)
	s.Model.AddressGroups = parseList(p, northbound.KindAddressGroup, "address_groups", f.AddressGroups, (*parser).addressGroup)
	s.Model.SecurityGroups = parseList(p, northbound.KindSecurityGroup, "security_groups", f.SecurityGroups, (*parser).securityGroup)
	s.Problems = p.problems
	return s
}

// Validate parses the file and validates it against the node's settings (config.Env): the
// valid model and every problem, in the order [northbound.Validate] gives.
func (f *File) Validate(env northbound.Env) (*northbound.Model, []northbound.Problem) {
	return northbound.Validate(*f.Snapshot(), env)
}

// parser collects the problems of one file.
type parser struct {
	problems  []northbound.Problem
	undecoded []northbound.Problem
}

// object collects the problems of one object.
type object struct {
	p      *parser
	kind   northbound.Kind
	id     string
	failed bool
}

func (o *object) fail(field, format string, args ...any) {
	o.failed = true
	o.p.problems = append(o.p.problems, northbound.Problem{Kind: o.kind, ID: o.id, Field: field, Reason: fmt.Sprintf(format, args...)})
}

// parseList parses one list: the decoder's problems of that kind first, then each object.
// id names an object (empty: "key[i]").
func parseList[R any, T any](p *parser, kind northbound.Kind, key string, raws []R,
	parse func(*parser, *object, *R) T) []T {
	for _, u := range p.undecoded {
		if u.Kind == kind {
			p.problems = append(p.problems, u)
		}
	}
	out := make([]T, 0, len(raws))
	for i := range raws {
		o := &object{p: p, kind: kind, id: fmt.Sprintf("%s[%d]", key, i)}
		if id := objectID(&raws[i]); id != "" {
			o.id = id
		}
		v := parse(p, o, &raws[i])
		if !o.failed {
			out = append(out, v)
		}
	}
	return out
}

// objectID names a raw object as [northbound.Problem.ID] does.
func objectID(raw any) string {
	switch r := raw.(type) {
	case *OtherHost:
		return r.Name
	case *Network:
		return r.ID
	case *Subnet:
		return r.ID
	case *Port:
		return r.ID
	case *RemotePort:
		if r.ID == "" {
			return ""
		}
		return r.Key()
	case *FDB:
		if r.NetworkID == "" {
			return ""
		}
		return r.Key()
	case *Router:
		return r.ID
	case *FloatingIP:
		return r.ID
	case *SecurityGroup:
		return r.ID
	case *AddressGroup:
		return r.ID
	}
	return ""
}

// mac parses an optional MAC field; nil when empty or invalid.
func (o *object) mac(field, value string) net.HardwareAddr {
	if value == "" {
		return nil
	}
	hw, err := northbound.ParseMAC(value)
	if err != nil {
		o.fail(field, "%q %v", value, err)
	}
	return hw
}

// ip parses an optional address field; invalid when empty or invalid.
func (o *object) ip(field, value string) netip.Addr {
	if value == "" {
		return netip.Addr{}
	}
	a, err := northbound.ParseIP(value)
	if err != nil {
		o.fail(field, "%q %v", value, err)
	}
	return a
}

func (p *parser) otherHost(o *object, h *OtherHost) northbound.RemoteHost {
	out := northbound.RemoteHost{Name: h.Name, IP: o.ip("ip", h.IP), DVRMAC: o.mac("dvr_mac", h.DVRMAC)}
	if h.TunnelTypes != nil {
		types, err := northbound.ParseTunnelTypes(h.TunnelTypes)
		if err != nil {
			o.fail("tunnel_types", "%v", err)
		}
		out.TunnelTypes = types
	}
	return out
}

func (p *parser) network(o *object, n *Network) northbound.Network {
	out := northbound.Network{
		ID: n.ID, Name: n.Name, Type: northbound.NetworkType(n.NetworkType), Physnet: n.PhysicalNetwork,
		SegmentationID: n.SegmentationID, MTU: n.MTU, External: n.RouterExternal,
	}
	if n.NetworkType != "" {
		if _, err := northbound.ParseNetworkType(n.NetworkType); err != nil {
			o.fail("network_type", "%q %v", n.NetworkType, err)
		}
	}
	return out
}

func (p *parser) subnet(o *object, s *Subnet) northbound.Subnet {
	out := northbound.Subnet{ID: s.ID, Name: s.Name, NetworkID: s.NetworkID, IPVersion: s.IPVersion}
	if s.CIDR != "" {
		prefix, err := northbound.ParseCIDR(s.CIDR)
		if err != nil {
			o.fail("cidr", "%q %v", s.CIDR, err)
		}
		out.CIDR = prefix
	}
	out.GatewayIP = o.ip("gateway_ip", s.GatewayIP)
	out.GatewayMAC = o.mac("gateway_mac", s.GatewayMAC)
	return out
}

// fixedIPs parses a list of fixed IPs; list names it in problems ("fixed_ips").
func (p *parser) fixedIPs(o *object, list string, ips []FixedIP) []northbound.FixedIP {
	out := make([]northbound.FixedIP, 0, len(ips))
	for i, f := range ips {
		field := fmt.Sprintf("%s[%d].ip_address", list, i)
		if f.IPAddress == "" {
			o.fail(field, "missing")
			continue
		}
		out = append(out, northbound.FixedIP{SubnetID: f.SubnetID, IP: o.ip(field, f.IPAddress)})
	}
	return out
}

func (p *parser) port(o *object, r *Port) northbound.Port {
	out := northbound.Port{
		ID: r.ID, Name: r.Name, NetworkID: r.NetworkID, MAC: o.mac("mac", r.MAC),
		DeviceOwner: r.DeviceOwner, DeviceID: r.DeviceID, FixedIPs: p.fixedIPs(o, "fixed_ips", r.FixedIPs),
		PortSecurity: r.PortSecurityEnabled, AdminStateUp: r.AdminStateUp, OFPort: r.OFPort,
		SecurityGroups: slices.Clone(r.SecurityGroups),
	}
	for j, pair := range r.AllowedAddressPairs {
		field := fmt.Sprintf("allowed_address_pairs[%d]", j)
		prefix, err := northbound.ParseIPOrCIDR(pair.IPAddress)
		if err != nil {
			o.fail(field+".ip_address", "%q %v", pair.IPAddress, err)
		}
		out.AllowedAddressPairs = append(out.AllowedAddressPairs, northbound.AddressPair{
			Prefix: prefix, MAC: o.mac(field+".mac_address", pair.MACAddress),
		})
	}
	return out
}

func (p *parser) remotePort(o *object, r *RemotePort) northbound.RemotePort {
	return northbound.RemotePort{
		Host: r.Host, ID: r.ID, NetworkID: r.NetworkID, MAC: o.mac("mac", r.MAC),
		DeviceOwner: r.DeviceOwner, DeviceID: r.DeviceID, FixedIPs: p.fixedIPs(o, "fixed_ips", r.FixedIPs),
		SecurityGroups: slices.Clone(r.SecurityGroups),
	}
}

func (p *parser) fdb(o *object, f *FDB) northbound.FDB {
	out := northbound.FDB{NetworkID: f.NetworkID, RemoteIP: o.ip("remote_ip", f.RemoteIP), Flood: f.Flood}
	for j, e := range f.Entries {
		field := fmt.Sprintf("entries[%d]", j)
		out.Entries = append(out.Entries, northbound.FDBEntry{MAC: o.mac(field+".mac", e.MAC), IP: o.ip(field+".ip", e.IP)})
	}
	return out
}

func (p *parser) router(o *object, r *Router) northbound.Router {
	out := northbound.Router{ID: r.ID, Name: r.Name, Distributed: r.Distributed}
	if g := r.ExternalGatewayInfo; g != nil {
		out.Gateway = &northbound.RouterGateway{
			NetworkID: g.NetworkID, EnableSNAT: g.EnableSNAT,
			FixedIPs: p.fixedIPs(o, "external_gateway_info.external_fixed_ips", g.ExternalFixedIPs),
		}
	}
	return out
}

func (p *parser) floatingIP(o *object, f *FloatingIP) northbound.FloatingIP {
	return northbound.FloatingIP{
		ID: f.ID, Address: o.ip("floating_ip_address", f.FloatingIPAddress), NetworkID: f.FloatingNetworkID,
		RouterID: f.RouterID, PortID: f.PortID, FixedIP: o.ip("fixed_ip_address", f.FixedIPAddress),
	}
}

func (p *parser) addressGroup(o *object, g *AddressGroup) northbound.AddressGroup {
	out := northbound.AddressGroup{ID: g.ID, Name: g.Name, Addresses: make([]netip.Prefix, 0, len(g.Addresses))}
	for i, a := range g.Addresses {
		prefix, err := northbound.ParseAddressGroupAddress(a)
		if err != nil {
			o.fail(fmt.Sprintf("addresses[%d]", i), "%q %v", a, err)
		}
		out.Addresses = append(out.Addresses, prefix)
	}
	return out
}

// securityGroup parses a group; a rule that does not parse makes the whole group a
// problem (Validate then withholds it), naming the rule by its id, else its index.
func (p *parser) securityGroup(o *object, g *SecurityGroup) northbound.SecurityGroup {
	out := northbound.SecurityGroup{ID: g.ID, Name: g.Name, Stateful: g.Stateful,
		Rules: make([]northbound.SecurityGroupRule, 0, len(g.Rules))}
	for i, r := range g.Rules {
		field := fmt.Sprintf("security_group_rules[%d]", i)
		if r.ID != "" {
			field = "security_group_rules[" + r.ID + "]"
		}
		rule := northbound.SecurityGroupRule{
			ID: r.ID, PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax,
			RemoteGroupID: r.RemoteGroupID, RemoteAddressGroupID: r.RemoteAddressGroupID,
		}
		if r.Direction != "" {
			d, err := northbound.ParseDirection(r.Direction)
			if err != nil {
				o.fail(field+".direction", "%q %v", r.Direction, err)
			}
			rule.Direction = d
		}
		if r.EtherType != "" {
			e, err := northbound.ParseEtherType(r.EtherType)
			if err != nil {
				o.fail(field+".ethertype", "%q %v", r.EtherType, err)
			}
			rule.EtherType = e
		}
		proto, err := northbound.ParseProtocol(r.Protocol)
		if err != nil {
			o.fail(field+".protocol", "%q %v", r.Protocol, err)
		}
		rule.Protocol = proto
		if r.RemoteIPPrefix != "" {
			prefix, err := northbound.ParseRemoteIPPrefix(r.RemoteIPPrefix)
			if err != nil {
				o.fail(field+".remote_ip_prefix", "%q %v", r.RemoteIPPrefix, err)
			}
			rule.RemoteIPPrefix = prefix
		}
		out.Rules = append(out.Rules, rule)
	}
	return out
}

// host parses the host section; an invalid setting is reported and left out.
func (p *parser) host(h *Host) *northbound.HostSettings {
	if h == nil {
		return nil
	}
	name := "host"
	if h.Name != nil && *h.Name != "" {
		name = *h.Name
	}
	o := &object{p: p, kind: northbound.KindHost, id: name}
	out := &northbound.HostSettings{
		Name: h.Name, IntegrationBridge: h.IntegrationBridge, TunnelBridge: h.TunnelBridge,
		BridgeMappings: maps.Clone(h.BridgeMappings), L2Population: h.L2Population, ARPResponder: h.ARPResponder,
		EnableDistributedRouting: h.EnableDistributedRouting, PreventARPSpoofing: h.PreventARPSpoofing,
		FirewallDriver: h.FirewallDriver,
	}
	if h.AgentMode != nil {
		m, err := northbound.ParseAgentMode(*h.AgentMode)
		if err == nil {
			err = m.CheckSupported()
		}
		if err != nil {
			o.fail("agent_mode", "%q %v", *h.AgentMode, err)
		} else {
			out.AgentMode = &m
		}
	}
	if h.IntegrationBridge != nil && *h.IntegrationBridge == "" {
		o.fail("integration_bridge", "is empty")
		out.IntegrationBridge = nil
	}
	if h.TunnelBridge != nil && *h.TunnelBridge == "" {
		o.fail("tunnel_bridge", "is empty")
		out.TunnelBridge = nil
	}
	if h.BridgeMappings != nil {
		if err := northbound.CheckBridgeMappings(h.BridgeMappings); err != nil {
			o.fail("bridge_mappings", "%v", err)
			out.BridgeMappings = nil
		}
	}
	if h.BridgeMappings != nil {
		bridges := slices.Collect(maps.Values(h.BridgeMappings))
		for _, bridge := range slices.Sorted(maps.Keys(h.PhysicalBridgePorts)) {
			if !slices.Contains(bridges, bridge) {
				o.fail("physical_bridge_ports", "bridge %q is not in bridge_mappings", bridge)
			}
		}
	}
	if h.LocalIP != nil {
		var ip netip.Addr
		if strings.TrimSpace(*h.LocalIP) != "" {
			ip = o.ip("local_ip", *h.LocalIP)
		}
		if ip.IsValid() || strings.TrimSpace(*h.LocalIP) == "" {
			out.LocalIP = &ip
		}
	}
	if h.TunnelTypes != nil {
		if types, err := northbound.ParseTunnelTypes(h.TunnelTypes); err != nil {
			o.fail("tunnel_types", "%v", err)
		} else {
			out.TunnelTypes = types
		}
	}
	if h.DVRMAC != nil {
		var hw net.HardwareAddr
		if strings.TrimSpace(*h.DVRMAC) != "" {
			hw = o.mac("dvr_mac", *h.DVRMAC)
		}
		if hw != nil || strings.TrimSpace(*h.DVRMAC) == "" {
			out.DVRMAC = &hw
		}
	}
	return out
}
