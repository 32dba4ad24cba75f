package northbound

import (
	"bytes"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Env is what validation needs to know of this node: its effective settings.
type Env struct {
	// Host is this node's name.
	Host string
	// TunnelTypes are the configured tunnel types ([agent] tunnel_types).
	TunnelTypes []NetworkType
	// BridgeMappings maps physical network → bridge.
	BridgeMappings map[string]string
	// LocalIP is the tunnel endpoint; invalid when unset.
	LocalIP netip.Addr
	// DVRMAC is this host's DVR MAC; nil when unset.
	DVRMAC net.HardwareAddr
	// AgentMode is this host's role; empty when unknown, which skips the checks that
	// depend on it (which device owners a port bound here may have, whether a floating IP
	// here needs an fg- port).
	AgentMode AgentMode
}

// Validate checks a parsed snapshot against the node's settings and returns a model
// holding only the valid objects, with the problems of the others. Each invalid object is
// dropped and reported, and so is every object that depends on a dropped or unknown one (a
// port on a dropped network names the network); every other object is kept. Of two objects
// with the same id the first is judged on its own and the later one is dropped.
//
// The returned model has the documented defaults filled in: other hosts' tunnel types (nil:
// the same as this host's), fixed IPs' subnet ids (when the address is in exactly one subnet
// of the port's network), subnets' gateway MACs (the MAC of the port holding the gateway
// address: a local port first, then a remote one), router gateways' fixed IPs' subnet ids,
// floating IPs' fixed IPs (the port's only IPv4 address) and hosts (the host of the port).
// Security groups, their rules and ports' security_groups are normalised as Neutron's
// server stores them (see [SecurityGroupRule]).
//
// Security groups are the exception to "dropped": a group with an invalid rule is withheld
// (see [SecurityGroup]), and a port whose security_groups are wrong (an unknown group, a
// group on a port without port security, stateful and stateless groups mixed) is kept
// with its firewall withheld ([Port.FirewallWithheld]); the problems are reported all the
// same.
//
// Problems come in a stable order: host, other hosts, networks, subnets, address groups,
// security groups, ports, remote ports, FDB entries, routers, floating IPs; within a kind,
// first the source's parse problems, then the others, each in source order.
func Validate(s Snapshot, env Env) (*Model, []Problem) {
	v := &validator{
		env:      env,
		invalid:  map[Kind]map[string]bool{},
		networks: map[string]*Network{},
		subnets:  map[string]*Subnet{},
		hosts:    map[string]*RemoteHost{},
		routers:  map[string]*Router{},
		parsed:   s.Problems,

		addressGroups:  map[string]*AddressGroup{},
		securityGroups: map[string]*SecurityGroup{},
		sgExists:       map[string]bool{},
		sgWithheld:     map[string]bool{},
	}
	v.reportParsed(KindHost)
	out := &Model{}
	out.OtherHosts = v.otherHosts(s.Model.OtherHosts)
	out.Networks = v.networksList(s.Model.Networks)
	out.Subnets = v.subnetsList(s.Model.Subnets)
	out.AddressGroups = v.addressGroupsList(s.Model.AddressGroups)
	out.SecurityGroups, out.WithheldSecurityGroups = v.securityGroupsList(s.Model.SecurityGroups)
	out.Ports = v.ports(s.Model.Ports)
	out.RemotePorts = v.remotePorts(s.Model.RemotePorts)
	out.GroupMembers = groupMembers(s.Model.GroupMembers)
	out.FDB = v.fdbs(s.Model.FDB)
	out.Routers = v.routersList(s.Model.Routers)
	out.FloatingIPs = v.floatingIPs(s.Model.FloatingIPs, out)
	fillGatewayMACs(out)
	return out, v.problems
}

// validator carries what is known while one snapshot is checked, list by list.
type validator struct {
	env      Env
	problems []Problem
	// invalid holds, per kind, the ids of objects that were dropped.
	invalid map[Kind]map[string]bool
	// the valid objects so far, by id (other hosts by name).
	networks map[string]*Network
	subnets  map[string]*Subnet
	hosts    map[string]*RemoteHost
	routers  map[string]*Router
	// parsed are the source's problems, reported at the start of their kind.
	parsed []Problem
	// the valid address and security groups by id; sgExists holds every security group
	// id the source gives (valid or not), sgWithheld those withheld.
	addressGroups  map[string]*AddressGroup
	securityGroups map[string]*SecurityGroup
	sgExists       map[string]bool
	sgWithheld     map[string]bool
}

// object collects the problems of one object.
type object struct {
	v      *validator
	kind   Kind
	id     string
	failed bool
}

// begin starts checking the i-th object of the list key; an object without an id is
// named "key[i]".
func (v *validator) begin(kind Kind, key string, i int, id string) *object {
	if id == "" {
		id = fmt.Sprintf("%s[%d]", key, i)
	}
	return &object{v: v, kind: kind, id: id}
}

// reportParsed reports the source's problems of kind and marks their ids invalid.
func (v *validator) reportParsed(kind Kind) {
	for _, p := range v.parsed {
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

func (v *validator) markInvalid(kind Kind, id string) {
	if v.invalid[kind] == nil {
		v.invalid[kind] = map[string]bool{}
	}
	v.invalid[kind][id] = true
}

// checkID reports a missing id, or one already seen (valid or not) in the same list.
func (o *object) checkID(id string, seen bool) {
	switch {
	case id == "":
		o.fail("id", "missing")
	case seen || o.v.invalid[o.kind][id]:
		o.fail("id", "duplicate id")
	}
}

// otherHosts checks other_hosts.
func (v *validator) otherHosts(hosts []RemoteHost) []RemoteHost {
	v.reportParsed(KindOtherHost)
	out := []RemoteHost{}
	seen := map[string]bool{}
	byIP, byMAC := map[netip.Addr]string{}, map[string]string{}
	for i, h := range hosts {
		o := v.begin(KindOtherHost, "other_hosts", i, h.Name)
		switch _, dup := seen[h.Name]; {
		case h.Name == "":
			o.fail("name", "missing")
		case dup || v.invalid[KindOtherHost][h.Name]:
			o.fail("name", "duplicate name")
		case h.Name == v.env.Host:
			o.fail("name", "%q is this host's name", h.Name)
		}
		if other, dup := byIP[h.IP]; dup && h.IP.IsValid() {
			o.fail("ip", "%q is also the ip of other host %q", h.IP, other)
		} else if h.IP.IsValid() && h.IP == v.env.LocalIP {
			o.fail("ip", "%q is this host's local_ip", h.IP)
		}
		if other, dup := byMAC[h.DVRMAC.String()]; dup && h.DVRMAC != nil {
			o.fail("dvr_mac", "%q is also the dvr_mac of other host %q", h.DVRMAC, other)
		} else if h.DVRMAC != nil && bytes.Equal(h.DVRMAC, v.env.DVRMAC) {
			o.fail("dvr_mac", "%q is this host's dvr_mac", h.DVRMAC)
		}
		if h.TunnelTypes == nil {
			h.TunnelTypes = slices.Clone(v.env.TunnelTypes)
			if h.TunnelTypes == nil {
				h.TunnelTypes = []NetworkType{}
			}
		}
		if !o.done() {
			continue
		}
		if h.IP.IsValid() {
			byIP[h.IP] = h.Name
		}
		if h.DVRMAC != nil {
			byMAC[h.DVRMAC.String()] = h.Name
		}
		seen[h.Name] = true
		out = append(out, h)
	}
	for i := range out {
		v.hosts[out[i].Name] = &out[i]
	}
	return out
}

// networksList checks networks.
func (v *validator) networksList(networks []Network) []Network {
	v.reportParsed(KindNetwork)
	out := []Network{}
	seen := map[string]bool{}
	for i, n := range networks {
		o := v.begin(KindNetwork, "networks", i, n.ID)
		o.checkID(n.ID, seen[n.ID])
		v.checkSegment(o, &n)
		if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
			o.fail("mtu", "%d is outside 68–65535", n.MTU)
		}
		if o.done() {
			seen[n.ID] = true
			out = append(out, n)
		}
	}
	for i := range out {
		v.networks[out[i].ID] = &out[i]
	}
	return out
}

// checkSegment checks a network's type, physical network and segmentation id against the
// node's settings.
func (v *validator) checkSegment(o *object, n *Network) {
	typ := n.Type
	switch {
	case typ == "":
		o.fail("network_type", "missing")
		return
	case typ.Tunnelled() && !slices.Contains(v.env.TunnelTypes, typ):
		o.fail("network_type", "%q is not in tunnel_types (%s)", typ, listOrNone(typesText(v.env.TunnelTypes)))
	case !slices.Contains(NetworkTypes(), typ):
		o.fail("network_type", "%q is not one of local, flat, vlan, vxlan, gre, geneve", typ)
		return
	}
	if typ.Physical() {
		switch _, ok := v.env.BridgeMappings[n.Physnet]; {
		case n.Physnet == "":
			o.fail("physical_network", "missing (a %s network needs one)", typ)
		case !ok:
			o.fail("physical_network", "%q is not in bridge_mappings (%s)", n.Physnet,
				listOrNone(slices.Sorted(maps.Keys(v.env.BridgeMappings))))
		}
	} else if n.Physnet != "" {
		o.fail("physical_network", "%q is set on a %s network", n.Physnet, typ)
	}
	if lo, hi, ok := typ.SegmentRange(); ok {
		if n.SegmentationID < lo || n.SegmentationID > hi {
			o.fail("segmentation_id", "%d is outside %d–%d for a %s network", n.SegmentationID, lo, hi, typ)
		}
	} else if n.SegmentationID != 0 {
		o.fail("segmentation_id", "%d is set on a %s network", n.SegmentationID, typ)
	}
}

func typesText(types []NetworkType) []string {
	out := make([]string, len(types))
	for i, t := range types {
		out[i] = string(t)
	}
	return out
}

// listOrNone renders a list for a message.
func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// network checks a network_id reference.
func (v *validator) network(o *object, id string) (*Network, bool) {
	return v.networkIn(o, "network_id", id)
}

// networkIn checks a reference to a network in field.
func (v *validator) networkIn(o *object, field, id string) (*Network, bool) {
	n, ok := v.networks[id]
	switch {
	case id == "":
		o.fail(field, "missing")
	case ok:
	case v.invalid[KindNetwork][id]:
		o.fail(field, "network %s is invalid", id)
	default:
		o.fail(field, "unknown network %s", id)
	}
	return n, ok
}

// subnetsList checks subnets.
func (v *validator) subnetsList(subnets []Subnet) []Subnet {
	v.reportParsed(KindSubnet)
	out := []Subnet{}
	seen := map[string]bool{}
	for i, s := range subnets {
		o := v.begin(KindSubnet, "subnets", i, s.ID)
		o.checkID(s.ID, seen[s.ID])
		v.network(o, s.NetworkID)
		if !s.CIDR.IsValid() {
			o.fail("cidr", "missing")
		} else {
			version := 4
			if s.CIDR.Addr().Is6() {
				version = 6
			}
			if s.IPVersion != 0 && s.IPVersion != version {
				o.fail("ip_version", "%d does not match cidr %s", s.IPVersion, s.CIDR)
			}
			s.IPVersion = version
			if s.GatewayIP.IsValid() && !s.CIDR.Contains(s.GatewayIP) {
				o.fail("gateway_ip", "%s is outside the subnet's cidr %s", s.GatewayIP, s.CIDR)
			}
		}
		if o.done() {
			seen[s.ID] = true
			out = append(out, s)
		}
	}
	for i := range out {
		v.subnets[out[i].ID] = &out[i]
	}
	return out
}

// fixedIPs checks a port's fixed_ips on network netID, filling in missing subnet ids;
// list names the list in problems ("fixed_ips").
func (v *validator) fixedIPs(o *object, list, netID string, ips []FixedIP) []FixedIP {
	out := make([]FixedIP, 0, len(ips))
	for i, f := range ips {
		field := fmt.Sprintf("%s[%d]", list, i)
		switch s, ok := v.subnets[f.SubnetID]; {
		case !f.IP.IsValid():
			o.fail(field+".ip_address", "missing")
		case f.SubnetID == "":
			f.SubnetID = v.subnetFor(netID, f.IP)
			if f.SubnetID == "" {
				o.fail(field+".subnet_id", "missing, and %s is in no subnet of network %s", f.IP, netID)
			}
		case !ok && v.invalid[KindSubnet][f.SubnetID]:
			o.fail(field+".subnet_id", "subnet %s is invalid", f.SubnetID)
		case !ok:
			o.fail(field+".subnet_id", "unknown subnet %s", f.SubnetID)
		case s.NetworkID != netID:
			o.fail(field+".subnet_id", "subnet %s is on network %s, not %s", f.SubnetID, s.NetworkID, netID)
		case !s.CIDR.Contains(f.IP):
			o.fail(field+".ip_address", "%s is outside subnet %s (%s)", f.IP, f.SubnetID, s.CIDR)
		}
		out = append(out, f)
	}
	return out
}

// subnetFor returns the id of the only valid subnet of netID that contains addr.
func (v *validator) subnetFor(netID string, addr netip.Addr) string {
	var found []string
	for id, s := range v.subnets {
		if s.NetworkID == netID && s.CIDR.Contains(addr) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		return ""
	}
	return found[0]
}

// ports checks this host's ports.
func (v *validator) ports(ports []Port) []Port {
	v.reportParsed(KindPort)
	out := []Port{}
	seen := map[string]bool{}
	macs := map[[2]string]string{} // (network, mac) → port id
	for i, p := range ports {
		o := v.begin(KindPort, "ports", i, p.ID)
		o.checkID(p.ID, seen[p.ID])
		_, netOK := v.network(o, p.NetworkID)
		if p.MAC == nil {
			o.fail("mac", "missing")
		} else if other, dup := macs[[2]string{p.NetworkID, p.MAC.String()}]; dup && netOK {
			o.fail("mac", "%q is also the MAC of port %s on the same network", p.MAC, other)
		}
		if netOK {
			p.FixedIPs = v.fixedIPs(o, "fixed_ips", p.NetworkID, p.FixedIPs)
		}
		p.SecurityGroups, p.FirewallWithheld = v.portGroups(o, p.SecurityGroups, true, p.PortSecurity)
		if p.OFPort < 0 || p.OFPort > 0xfeff {
			o.fail("ofport", "%d is outside 1–65279", p.OFPort)
		}
		v.checkOwnerMode(o, p.DeviceOwner)
		if o.done() {
			seen[p.ID] = true
			macs[[2]string{p.NetworkID, p.MAC.String()}] = p.ID
			out = append(out, p)
		}
	}
	return out
}

// checkOwnerMode checks that this host's agent_mode can hold a port of the owner: the
// router gateway (qg-) and centralized SNAT (sg-) ports of a distributed router live on a
// dvr_snat node, and a legacy node holds its legacy routers' gateways.
func (v *validator) checkOwnerMode(o *object, owner DeviceOwner) {
	var modes []AgentMode
	switch owner {
	case OwnerRouterCentralizedSNAT:
		modes = []AgentMode{ModeDVRSNAT}
	case OwnerRouterGateway:
		modes = []AgentMode{ModeDVRSNAT, ModeLegacy}
	default:
		return
	}
	if v.env.AgentMode == "" || slices.Contains(modes, v.env.AgentMode) {
		return
	}
	names := make([]string, len(modes))
	for i, m := range modes {
		names[i] = string(m)
	}
	o.fail("device_owner", "%q needs agent_mode %s; this host (%s) is %s",
		owner, strings.Join(names, " or "), v.env.Host, v.env.AgentMode)
}

// remotePorts checks the ports bound to other hosts.
func (v *validator) remotePorts(ports []RemotePort) []RemotePort {
	v.reportParsed(KindRemotePort)
	out := []RemotePort{}
	seen := map[string]bool{}
	for i, p := range ports {
		key := ""
		if p.ID != "" {
			key = p.Key()
		}
		o := v.begin(KindRemotePort, "remote_ports", i, key)
		o.checkID(key, seen[key])
		h, hostOK := v.hosts[p.Host]
		switch {
		case p.Host == "":
			o.fail("host", "missing")
		case p.Host == v.env.Host:
			o.fail("host", "%q is this host (list the port under ports)", p.Host)
		case hostOK:
		case v.invalid[KindOtherHost][p.Host]:
			o.fail("host", "other host %q is invalid", p.Host)
		default:
			o.fail("host", "unknown host %q (not in other_hosts)", p.Host)
		}
		n, netOK := v.network(o, p.NetworkID)
		if hostOK && netOK && n.Type.Tunnelled() && !h.IP.IsValid() {
			o.fail("host", "other host %q has no ip (tunnel endpoint) for %s network %s", p.Host, n.Type, n.ID)
		}
		if p.MAC == nil {
			o.fail("mac", "missing")
		}
		if netOK {
			p.FixedIPs = v.fixedIPs(o, "fixed_ips", p.NetworkID, p.FixedIPs)
		}
		p.SecurityGroups, _ = v.portGroups(o, p.SecurityGroups, false, false)
		if o.done() {
			seen[key] = true
			out = append(out, p)
		}
	}
	return out
}

// fdbs checks the explicit l2pop FDB entries.
func (v *validator) fdbs(fdbs []FDB) []FDB {
	v.reportParsed(KindL2popFDB)
	out := []FDB{}
	seen := map[string]bool{}
	for i, f := range fdbs {
		key := ""
		if f.NetworkID != "" {
			key = f.Key()
		}
		o := v.begin(KindL2popFDB, "l2pop_fdb", i, key)
		if f.NetworkID != "" && f.RemoteIP.IsValid() && (seen[key] || v.invalid[KindL2popFDB][key]) {
			o.fail("remote_ip", "duplicate entry for network %s and remote_ip %s", f.NetworkID, f.RemoteIP)
		}
		if n, ok := v.network(o, f.NetworkID); ok && !n.Type.Tunnelled() {
			o.fail("network_id", "network %s is %s; l2pop FDB entries apply to tunnel networks only", n.ID, n.Type)
		}
		switch {
		case !f.RemoteIP.IsValid():
			o.fail("remote_ip", "missing")
		case f.RemoteIP == v.env.LocalIP:
			o.fail("remote_ip", "%q is this host's local_ip", f.RemoteIP)
		}
		for j, e := range f.Entries {
			if e.MAC == nil {
				o.fail(fmt.Sprintf("entries[%d].mac", j), "missing")
			}
		}
		if o.done() {
			seen[key] = true
			out = append(out, f)
		}
	}
	return out
}

// fillGatewayMACs gives each subnet without a gateway MAC the MAC of the port holding its
// gateway address: a local port first, then a remote one.
func fillGatewayMACs(m *Model) {
	for i := range m.Subnets {
		s := &m.Subnets[i]
		if !s.GatewayIP.IsValid() || s.GatewayMAC != nil {
			continue
		}
		gw := FixedIP{SubnetID: s.ID, IP: s.GatewayIP}
		for _, p := range m.Ports {
			if slices.Contains(p.FixedIPs, gw) {
				s.GatewayMAC = p.MAC
				break
			}
		}
		if s.GatewayMAC != nil {
			continue
		}
		for _, p := range m.RemotePorts {
			if slices.Contains(p.FixedIPs, gw) {
				s.GatewayMAC = p.MAC
				break
			}
		}
	}
}
