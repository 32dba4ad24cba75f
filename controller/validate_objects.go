package controller

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
)

// segmentRanges are the valid segmentation ids per network type.
var segmentRanges = map[string][2]int64{
	NetworkTypeVLAN:   {1, 4094},
	NetworkTypeVXLAN:  {1, 1<<24 - 1},
	NetworkTypeGeneve: {1, 1<<24 - 1},
	NetworkTypeGRE:    {1, 1<<32 - 1},
}

// networksList checks networks.
func (v *validator) networksList(networks []Network) []Network {
	v.reportUndecoded(KindNetwork)
	out := []Network{}
	for i, n := range networks {
		o := v.begin(KindNetwork, "networks", i, n.ID)
		checkIDIn(o, v.invalid[KindNetwork], n.ID, v.networks)
		v.checkSegment(o, &n)
		if n.MTU != 0 && (n.MTU < 68 || n.MTU > 65535) {
			o.fail("mtu", "%d is outside 68–65535", n.MTU)
		}
		if o.done() {
			v.networks[n.ID] = n
			out = append(out, n)
		}
	}
	return out
}

// checkIDIn reports a missing id, or one already seen (valid or not) in the same list.
func checkIDIn[T any](o *object, invalid map[string]bool, id string, valid map[string]T) {
	if id == "" {
		o.fail("id", "missing")
		return
	}
	if _, dup := valid[id]; dup || invalid[id] {
		o.fail("id", "duplicate id")
	}
}

// checkSegment checks a network's type, physical network and segmentation id against the
// config.
func (v *validator) checkSegment(o *object, n *Network) {
	typ := n.NetworkType
	switch typ {
	case "":
		o.fail("network_type", "missing")
		return
	case NetworkTypeLocal, NetworkTypeFlat, NetworkTypeVLAN:
	case NetworkTypeVXLAN, NetworkTypeGRE, NetworkTypeGeneve:
		if !v.cfg.HasTunnelType(typ) {
			o.fail("network_type", "%q is not in tunnel_types (%s)", typ, listOrNone(v.cfg.TunnelTypes))
		}
	default:
		o.fail("network_type", "%q is not one of local, flat, vlan, vxlan, gre, geneve", typ)
		return
	}
	if typ == NetworkTypeFlat || typ == NetworkTypeVLAN {
		switch _, ok := v.cfg.BridgeMappings[n.PhysicalNetwork]; {
		case n.PhysicalNetwork == "":
			o.fail("physical_network", "missing (a %s network needs one)", typ)
		case !ok:
			o.fail("physical_network", "%q is not in bridge_mappings (%s)", n.PhysicalNetwork, listOrNone(v.cfg.Physnets()))
		}
	} else if n.PhysicalNetwork != "" {
		o.fail("physical_network", "%q is set on a %s network", n.PhysicalNetwork, typ)
	}
	if r, ok := segmentRanges[typ]; ok {
		if n.SegmentationID < r[0] || n.SegmentationID > r[1] {
			o.fail("segmentation_id", "%d is outside %d–%d for a %s network", n.SegmentationID, r[0], r[1], typ)
		}
	} else if n.SegmentationID != 0 {
		o.fail("segmentation_id", "%d is set on a %s network", n.SegmentationID, typ)
	}
}

// listOrNone renders a list for a message.
func listOrNone(items []string) string {
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ", ")
}

// network checks a network_id reference.
func (v *validator) network(o *object, id string) (Network, bool) {
	n, ok := v.networks[id]
	switch {
	case id == "":
		o.fail("network_id", "missing")
	case ok:
	case v.invalid[KindNetwork][id]:
		o.fail("network_id", "network %s is invalid", id)
	default:
		o.fail("network_id", "unknown network %s", id)
	}
	return n, ok
}

// subnetsList checks subnets.
func (v *validator) subnetsList(subnets []Subnet) []Subnet {
	v.reportUndecoded(KindSubnet)
	out := []Subnet{}
	for i, s := range subnets {
		o := v.begin(KindSubnet, "subnets", i, s.ID)
		checkIDIn(o, v.invalid[KindSubnet], s.ID, v.subnets)
		v.network(o, s.NetworkID)
		prefix, err := parseCIDR(s.CIDR)
		switch {
		case s.CIDR == "":
			o.fail("cidr", "missing")
		case err != nil:
			o.fail("cidr", "%q %v", s.CIDR, err)
		default:
			s.CIDR = prefix.String()
			version := 4
			if prefix.Addr().Is6() {
				version = 6
			}
			if s.IPVersion != 0 && s.IPVersion != version {
				o.fail("ip_version", "%d does not match cidr %s", s.IPVersion, s.CIDR)
			}
			s.IPVersion = version
			if s.GatewayIP != "" {
				if gw, err := parseIP(s.GatewayIP); err != nil {
					o.fail("gateway_ip", "%q %v", s.GatewayIP, err)
				} else if !prefix.Contains(gw) {
					o.fail("gateway_ip", "%s is outside the subnet's cidr %s", gw, s.CIDR)
				} else {
					s.GatewayIP = gw.String()
				}
			}
		}
		s.GatewayMAC = o.mac("gateway_mac", s.GatewayMAC, false)
		if o.done() {
			v.subnets[s.ID] = subnetInfo{Subnet: s, prefix: prefix}
			out = append(out, s)
		}
	}
	return out
}

// fixedIPs checks a port's fixed_ips on network netID, filling in missing subnet ids.
func (v *validator) fixedIPs(o *object, netID string, ips []FixedIP) []FixedIP {
	out := make([]FixedIP, 0, len(ips))
	for i, f := range ips {
		field := fmt.Sprintf("fixed_ips[%d]", i)
		addr, err := parseIP(f.IPAddress)
		if err != nil {
			o.fail(field+".ip_address", "%q %v", f.IPAddress, err)
			out = append(out, f)
			continue
		}
		f.IPAddress = addr.String()
		if f.SubnetID == "" {
			f.SubnetID = v.subnetFor(netID, addr)
			if f.SubnetID == "" {
				o.fail(field+".subnet_id", "missing, and %s is in no subnet of network %s", addr, netID)
			}
		} else if s, ok := v.subnets[f.SubnetID]; !ok {
			if v.invalid[KindSubnet][f.SubnetID] {
				o.fail(field+".subnet_id", "subnet %s is invalid", f.SubnetID)
			} else {
				o.fail(field+".subnet_id", "unknown subnet %s", f.SubnetID)
			}
		} else if s.NetworkID != netID {
			o.fail(field+".subnet_id", "subnet %s is on network %s, not %s", f.SubnetID, s.NetworkID, netID)
		} else if !s.prefix.Contains(addr) {
			o.fail(field+".ip_address", "%s is outside subnet %s (%s)", addr, f.SubnetID, s.CIDR)
		}
		out = append(out, f)
	}
	return out
}

// subnetFor returns the id of the only valid subnet of netID that contains addr.
func (v *validator) subnetFor(netID string, addr netip.Addr) string {
	var found []string
	for id, s := range v.subnets {
		if s.NetworkID == netID && s.prefix.Contains(addr) {
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
	v.reportUndecoded(KindPort)
	out := []Port{}
	seen := map[string]Port{}
	macs := map[[2]string]string{} // (network, mac) → port id
	for i, p := range ports {
		o := v.begin(KindPort, "ports", i, p.ID)
		checkIDIn(o, v.invalid[KindPort], p.ID, seen)
		_, netOK := v.network(o, p.NetworkID)
		p.MAC = o.mac("mac", p.MAC, true)
		if other, dup := macs[[2]string{p.NetworkID, p.MAC}]; dup && netOK {
			o.fail("mac", "%q is also the MAC of port %s on the same network", p.MAC, other)
		}
		if netOK {
			p.FixedIPs = v.fixedIPs(o, p.NetworkID, p.FixedIPs)
		}
		p.AllowedAddressPairs = slices.Clone(p.AllowedAddressPairs)
		for j := range p.AllowedAddressPairs {
			pair := &p.AllowedAddressPairs[j]
			field := fmt.Sprintf("allowed_address_pairs[%d]", j)
			if ip, err := parseIPOrCIDR(pair.IPAddress); err != nil {
				o.fail(field+".ip_address", "%q %v", pair.IPAddress, err)
			} else {
				pair.IPAddress = ip
			}
			pair.MACAddress = o.mac(field+".mac_address", pair.MACAddress, false)
		}
		if p.OFPort < 0 || p.OFPort > 0xfeff {
			o.fail("ofport", "%d is outside 1–65279", p.OFPort)
		}
		if o.done() {
			seen[p.ID] = p
			macs[[2]string{p.NetworkID, p.MAC}] = p.ID
			out = append(out, p)
		}
	}
	return out
}

// remotePorts checks the ports bound to other hosts.
func (v *validator) remotePorts(ports []RemotePort) []RemotePort {
	v.reportUndecoded(KindRemotePort)
	out := []RemotePort{}
	seen := map[string]RemotePort{}
	for i, p := range ports {
		key := ""
		if p.ID != "" {
			key = p.Key()
		}
		o := v.begin(KindRemotePort, "remote_ports", i, key)
		checkIDIn(o, v.invalid[KindRemotePort], key, seen)
		h, hostOK := v.hosts[p.Host]
		switch {
		case p.Host == "":
			o.fail("host", "missing")
		case p.Host == v.cfg.Host:
			o.fail("host", "%q is this host (list the port under ports)", p.Host)
		case hostOK:
		case v.invalid[KindOtherHost][p.Host]:
			o.fail("host", "other host %q is invalid", p.Host)
		default:
			o.fail("host", "unknown host %q (not in other_hosts)", p.Host)
		}
		n, netOK := v.network(o, p.NetworkID)
		if hostOK && netOK && isTunnel(n.NetworkType) && h.IP == "" {
			o.fail("host", "other host %q has no ip (tunnel endpoint) for %s network %s", p.Host, n.NetworkType, n.ID)
		}
		p.MAC = o.mac("mac", p.MAC, true)
		if netOK {
			p.FixedIPs = v.fixedIPs(o, p.NetworkID, p.FixedIPs)
		}
		if o.done() {
			seen[key] = p
			out = append(out, p)
		}
	}
	return out
}

// isTunnel reports whether a network type is a tunnel type.
func isTunnel(networkType string) bool {
	return networkType == NetworkTypeVXLAN || networkType == NetworkTypeGRE || networkType == NetworkTypeGeneve
}

// fdbs checks the explicit l2pop FDB entries.
func (v *validator) fdbs(fdbs []FDB) []FDB {
	v.reportUndecoded(KindL2popFDB)
	out := []FDB{}
	seen := map[string]FDB{}
	ownIP := normalIP(v.cfg.LocalIP)
	for i, f := range fdbs {
		key := ""
		if f.NetworkID != "" {
			key = f.Key()
		}
		o := v.begin(KindL2popFDB, "l2pop_fdb", i, key)
		if f.NetworkID != "" && f.RemoteIP != "" {
			if _, dup := seen[key]; dup || v.invalid[KindL2popFDB][key] {
				o.fail("remote_ip", "duplicate entry for network %s and remote_ip %s", f.NetworkID, f.RemoteIP)
			}
		}
		if n, ok := v.network(o, f.NetworkID); ok && !isTunnel(n.NetworkType) {
			o.fail("network_id", "network %s is %s; l2pop FDB entries apply to tunnel networks only", n.ID, n.NetworkType)
		}
		f.RemoteIP = o.ip("remote_ip", f.RemoteIP, true)
		if f.RemoteIP != "" && f.RemoteIP == ownIP {
			o.fail("remote_ip", "%q is this host's local_ip", f.RemoteIP)
		}
		f.Entries = slices.Clone(f.Entries)
		for j := range f.Entries {
			e := &f.Entries[j]
			field := fmt.Sprintf("entries[%d]", j)
			e.MAC = o.mac(field+".mac", e.MAC, true)
			e.IP = o.ip(field+".ip", e.IP, false)
		}
		if o.done() {
			seen[key] = f
			out = append(out, f)
		}
	}
	return out
}

// fillGatewayMACs gives each subnet without a gateway_mac the MAC of the port holding its
// gateway_ip: a local port first, then a remote one.
func fillGatewayMACs(t *Topology) {
	for i := range t.Subnets {
		s := &t.Subnets[i]
		if s.GatewayIP == "" || s.GatewayMAC != "" {
			continue
		}
		for _, p := range t.Ports {
			if holds(p.FixedIPs, s.ID, s.GatewayIP) {
				s.GatewayMAC = p.MAC
				break
			}
		}
		if s.GatewayMAC != "" {
			continue
		}
		for _, p := range t.RemotePorts {
			if holds(p.FixedIPs, s.ID, s.GatewayIP) {
				s.GatewayMAC = p.MAC
				break
			}
		}
	}
}

// holds reports whether ips has address ip in subnet subnetID.
func holds(ips []FixedIP, subnetID, ip string) bool {
	return slices.Contains(ips, FixedIP{SubnetID: subnetID, IPAddress: ip})
}
