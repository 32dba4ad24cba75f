package northbound

import (
	"net/netip"
	"slices"
	"strings"
)

// The north-south part of validation: routers with their external gateways, and floating
// IPs, which refer to routers, external networks and ports (this host's or other hosts').

// routersList checks routers.
func (v *validator) routersList(routers []Router) []Router {
	v.reportParsed(KindRouter)
	out := []Router{}
	seen := map[string]bool{}
	for i, r := range routers {
		o := v.begin(KindRouter, "routers", i, r.ID)
		o.checkID(r.ID, seen[r.ID])
		if r.Gateway != nil {
			gw := *r.Gateway // the input keeps its own gateway
			const field = "external_gateway_info"
			if n, ok := v.networkIn(o, field+".network_id", gw.NetworkID); ok {
				if !n.External {
					o.fail(field+".network_id", "network %s is not router:external", n.ID)
				}
				gw.FixedIPs = v.fixedIPs(o, field+".external_fixed_ips", gw.NetworkID, gw.FixedIPs)
			}
			r.Gateway = &gw
		}
		if o.done() {
			seen[r.ID] = true
			out = append(out, r)
		}
	}
	for i := range out {
		v.routers[out[i].ID] = &out[i]
	}
	return out
}

// router checks a router_id reference.
func (v *validator) router(o *object, id string) (*Router, bool) {
	r, ok := v.routers[id]
	switch {
	case id == "":
		o.fail("router_id", "missing")
	case ok:
	case v.invalid[KindRouter][id]:
		o.fail("router_id", "router %s is invalid", id)
	default:
		o.fail("router_id", "unknown router %s", id)
	}
	return r, ok
}

// boundPorts indexes the valid ports of a model by id, for floating IPs to find theirs.
type boundPorts struct {
	local  map[string]*Port
	remote map[string][]*RemotePort
	// fgNetworks are the networks on which this host has a floating IP agent gateway (fg-).
	fgNetworks map[string]bool
}

func indexPorts(m *Model) boundPorts {
	b := boundPorts{local: map[string]*Port{}, remote: map[string][]*RemotePort{}, fgNetworks: map[string]bool{}}
	for i := range m.Ports {
		p := &m.Ports[i]
		b.local[p.ID] = p
		if p.DeviceOwner == OwnerFloatingIPAgentGateway {
			b.fgNetworks[p.NetworkID] = true
		}
	}
	for i := range m.RemotePorts {
		p := &m.RemotePorts[i]
		b.remote[p.ID] = append(b.remote[p.ID], p)
	}
	return b
}

// floatingIPs checks floating IPs against the valid objects of m, filling in their hosts
// and missing fixed IPs.
func (v *validator) floatingIPs(fips []FloatingIP, m *Model) []FloatingIP {
	v.reportParsed(KindFloatingIP)
	ports := indexPorts(m)
	out := []FloatingIP{}
	seen := map[string]bool{}
	byAddress := map[netip.Addr]string{}
	byFixedIP := map[string]string{} // "port_id/fixed_ip" → floating IP id
	for i, f := range fips {
		o := v.begin(KindFloatingIP, "floatingips", i, f.ID)
		o.checkID(f.ID, seen[f.ID])
		n, netOK := v.networkIn(o, "floating_network_id", f.NetworkID)
		if netOK && !n.External {
			o.fail("floating_network_id", "network %s is not router:external", n.ID)
		}
		switch other, dup := byAddress[f.Address]; {
		case !f.Address.IsValid():
			o.fail("floating_ip_address", "missing")
		case !f.Address.Is4():
			o.fail("floating_ip_address", "%s is not an IPv4 address (floating IPs are IPv4)", f.Address)
		case netOK && !v.inSubnetOf(f.NetworkID, f.Address):
			o.fail("floating_ip_address", "%s is in no subnet of network %s", f.Address, f.NetworkID)
		case dup:
			o.fail("floating_ip_address", "%s is also the address of floating IP %s", f.Address, other)
		}
		if f.PortID == "" {
			if f.RouterID != "" {
				o.fail("router_id", "%s is set on a floating IP without port_id", f.RouterID)
			}
			if f.FixedIP.IsValid() {
				o.fail("fixed_ip_address", "%s is set on a floating IP without port_id", f.FixedIP)
			}
			f.RouterID, f.FixedIP, f.Host = "", netip.Addr{}, ""
		} else {
			v.associate(o, &f, ports, netOK)
			if other, dup := byFixedIP[f.PortID+"/"+f.FixedIP.String()]; dup && f.FixedIP.IsValid() {
				o.fail("fixed_ip_address", "%s of port %s already has floating IP %s", f.FixedIP, f.PortID, other)
			}
		}
		if o.done() {
			seen[f.ID] = true
			byAddress[f.Address] = f.ID
			if f.PortID != "" {
				byFixedIP[f.PortID+"/"+f.FixedIP.String()] = f.ID
			}
			out = append(out, f)
		}
	}
	return out
}

// associate checks an associated floating IP's router, port and fixed IP, and fills in
// its host and, when the port has only one IPv4 address, its fixed IP. netOK says whether
// its network is valid.
func (v *validator) associate(o *object, f *FloatingIP, ports boundPorts, netOK bool) {
	r, routerOK := v.router(o, f.RouterID)
	if routerOK && netOK {
		switch {
		case r.Gateway == nil:
			o.fail("router_id", "router %s has no external gateway", r.ID)
		case r.Gateway.NetworkID != f.NetworkID:
			o.fail("router_id", "router %s has its gateway on network %s, not %s", r.ID, r.Gateway.NetworkID, f.NetworkID)
		}
	}
	host, addrs, portOK := v.portHost(o, f.PortID, ports)
	if !portOK {
		return
	}
	f.Host = host
	var v4 []netip.Addr
	for _, a := range addrs {
		if a.IP.Is4() {
			v4 = append(v4, a.IP)
		}
	}
	switch {
	case !f.FixedIP.IsValid() && len(v4) == 1:
		f.FixedIP = v4[0]
	case !f.FixedIP.IsValid():
		o.fail("fixed_ip_address", "missing, and port %s has %d IPv4 addresses (%s)", f.PortID, len(v4), addrList(v4))
	case !f.FixedIP.Is4():
		o.fail("fixed_ip_address", "%s is not an IPv4 address (floating IPs are IPv4)", f.FixedIP)
	case !slices.Contains(v4, f.FixedIP):
		o.fail("fixed_ip_address", "%s is not an address of port %s (%s)", f.FixedIP, f.PortID, addrList(v4))
	}
	dvrHere := v.env.AgentMode == ModeDVR || v.env.AgentMode == ModeDVRSNAT
	if host == v.env.Host && dvrHere && routerOK && r.Distributed && netOK && !ports.fgNetworks[f.NetworkID] {
		o.fail("port_id", "port %s is on this host (%s), which has no %s (fg-) port on network %s",
			f.PortID, host, OwnerFloatingIPAgentGateway, f.NetworkID)
	}
}

// portHost finds the port a floating IP names: this host's first, then the other hosts'.
func (v *validator) portHost(o *object, id string, ports boundPorts) (host string, addrs []FixedIP, ok bool) {
	if p, ok := ports.local[id]; ok {
		return v.env.Host, p.FixedIPs, true
	}
	if v.invalid[KindPort][id] {
		o.fail("port_id", "port %s is invalid", id)
		return "", nil, false
	}
	switch remote := ports.remote[id]; {
	case len(remote) == 1:
		return remote[0].Host, remote[0].FixedIPs, true
	case len(remote) > 1:
		hosts := make([]string, len(remote))
		for i, p := range remote {
			hosts[i] = p.Host
		}
		o.fail("port_id", "port %s is bound to more than one host (%s)", id, strings.Join(hosts, ", "))
	case v.invalidRemotePort(id):
		o.fail("port_id", "port %s is invalid", id)
	default:
		o.fail("port_id", "unknown port %s (in neither ports nor remote_ports)", id)
	}
	return "", nil, false
}

// invalidRemotePort reports whether a remote port with this id was dropped, on any host.
func (v *validator) invalidRemotePort(id string) bool {
	for key := range v.invalid[KindRemotePort] {
		if strings.HasSuffix(key, "/"+id) {
			return true
		}
	}
	return false
}

// inSubnetOf reports whether addr is in a valid subnet of network netID.
func (v *validator) inSubnetOf(netID string, addr netip.Addr) bool {
	for _, s := range v.subnets {
		if s.NetworkID == netID && s.CIDR.Contains(addr) {
			return true
		}
	}
	return false
}

// addrList renders addresses for a message.
func addrList(addrs []netip.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return listOrNone(s)
}
