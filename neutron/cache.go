package neutron

import (
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
)

// cache is what neutron-server told this host. It is not safe for concurrent use: the
// Source guards it.
type cache struct {
	host    string
	localIP netip.Addr
	// ownDVRMAC is this host's DVR MAC (nil: none).
	ownDVRMAC net.HardwareAddr
	// ports are the details of the devices plugged here, by port id.
	ports map[string]*DeviceDetails
	// unknown are devices the server does not know for this host (no binding, deleted):
	// they stay dead until a port_update, binding_activate or a resync names them again.
	unknown map[string]bool
	// deviceIDs are the device_id of ports the device details do not give it for (router
	// ports: the router's id), by port id; deviceIDAsked the ports already pulled for it.
	deviceIDs     map[string]string
	deviceIDAsked map[string]bool
	// subnets are the subnets of the ports' fixed IPs, by id.
	subnets map[string]*subnet
	// dvrMACs maps a host to its DVR MAC (normalised), this host included.
	dvrMACs map[string]string
	// tunnels maps a VTEP IP to its host ("" when a tunnel_update did not say) and the
	// tunnel types seen for it.
	tunnels map[netip.Addr]*tunnel
	// fdb is the l2population FDB: network → VTEP → entries.
	fdb map[string]map[netip.Addr]*fdbEntries
	// sg are the security groups, their rules, address groups and every port's groups.
	sg *secGroups
}

type subnet struct {
	id, network string
	cidr        netip.Prefix
	gatewayIP   netip.Addr
	gatewayMAC  net.HardwareAddr
	ipVersion   int
}

type tunnel struct {
	host  string
	types map[string]bool
}

type fdbEntries struct {
	flood   bool
	entries map[[2]string]bool // [mac, ip]
}

func newCache(host string, localIP netip.Addr) *cache {
	return &cache{host: host, localIP: localIP, ports: map[string]*DeviceDetails{}, unknown: map[string]bool{},
		deviceIDs: map[string]string{}, deviceIDAsked: map[string]bool{},
		subnets: map[string]*subnet{}, dvrMACs: map[string]string{}, tunnels: map[netip.Addr]*tunnel{},
		fdb: map[string]map[netip.Addr]*fdbEntries{}, sg: newSecGroups(false)}
}

// setDetails records the server's answer for devices: known ones are kept, the others are
// remembered as unknown to the server.
func (c *cache) setDetails(details []DeviceDetails) (known, unknown []string) {
	for i := range details {
		d := details[i]
		if d.Device == "" {
			continue
		}
		if d.Known() && !d.NoActiveBinding {
			c.ports[d.Device] = &d
			delete(c.unknown, d.Device)
			known = append(known, d.Device)
			continue
		}
		delete(c.ports, d.Device)
		c.unknown[d.Device] = true
		unknown = append(unknown, d.Device)
	}
	return known, unknown
}

// forget drops a device: it is no port of this host any more (deleted, unbound, gone).
func (c *cache) forget(device string, unknown bool) {
	delete(c.ports, device)
	delete(c.deviceIDs, device)
	delete(c.deviceIDAsked, device)
	c.sg.forget(device)
	if unknown {
		c.unknown[device] = true
	} else {
		delete(c.unknown, device)
	}
}

// missingSubnets are the subnets of the ports' fixed IPs the cache has no details of.
func (c *cache) missingSubnets() []string {
	seen := map[string]bool{}
	for _, p := range c.ports {
		for _, f := range p.FixedIPs {
			if _, ok := c.subnets[f.SubnetID]; !ok && f.SubnetID != "" {
				seen[f.SubnetID] = true
			}
		}
	}
	return slices.Sorted(maps.Keys(seen))
}

// routerPortsWithoutDevice are the router ports (interfaces, centralized SNAT ports) plugged
// here whose router the cache does not know and has not asked for yet: the legacy device
// details carry no device_id, and `dvrflow trace` routes through a router by its id.
func (c *cache) routerPortsWithoutDevice() []string {
	var out []string
	for id, p := range c.ports {
		if strings.HasPrefix(p.DeviceOwner, "network:router") && c.deviceIDs[id] == "" && !c.deviceIDAsked[id] {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// setDeviceID records a port's device_id (its router's id for a router port).
func (c *cache) setDeviceID(port, deviceID string) {
	if _, ok := c.ports[port]; ok && deviceID != "" {
		c.deviceIDs[port] = deviceID
	}
}

// routerInterfaceSubnets are the subnets of the distributed router interfaces plugged
// here, with the interface's fixed IPs on each (what get_subnet_for_dvr asks).
func (c *cache) routerInterfaceSubnets() map[string][]FixedIP {
	out := map[string][]FixedIP{}
	for _, p := range c.ports {
		if p.DeviceOwner != string(northbound.OwnerRouterInterfaceDistributed) {
			continue
		}
		for _, f := range p.FixedIPs {
			out[f.SubnetID] = append(out[f.SubnetID], f)
		}
	}
	return out
}

// setSubnet records a subnet (from bulk_pull or get_subnet_for_dvr).
func (c *cache) setSubnet(id, network, cidr string, gatewayIP, gatewayMAC *string, ipVersion int) error {
	prefix, err := netip.ParsePrefix(cidr)
	if err != nil {
		return fmt.Errorf("subnet %s: cidr %q: %w", id, cidr, err)
	}
	s := &subnet{id: id, network: network, cidr: prefix.Masked(), ipVersion: ipVersion}
	if old := c.subnets[id]; old != nil {
		s.gatewayMAC = old.gatewayMAC
	}
	if gatewayIP != nil && *gatewayIP != "" {
		if s.gatewayIP, err = netip.ParseAddr(*gatewayIP); err != nil {
			return fmt.Errorf("subnet %s: gateway_ip %q: %w", id, *gatewayIP, err)
		}
	}
	if gatewayMAC != nil && *gatewayMAC != "" {
		if s.gatewayMAC, err = net.ParseMAC(*gatewayMAC); err != nil {
			return fmt.Errorf("subnet %s: gateway_mac %q: %w", id, *gatewayMAC, err)
		}
	}
	c.subnets[id] = s
	return nil
}

// setDVRMACs replaces the DVR MACs with the full list (dvr_mac_address_update,
// get_dvr_mac_address_list).
func (c *cache) setDVRMACs(macs []DVRMAC) {
	c.dvrMACs = map[string]string{}
	c.addDVRMACs(macs)
}

// addDVRMACs adds (or changes) the hosts' DVR MACs, keeping the others.
func (c *cache) addDVRMACs(macs []DVRMAC) {
	for _, m := range macs {
		if m.Host != "" && m.MACAddress != "" {
			c.dvrMACs[m.Host] = normalizeMAC(m.MACAddress)
		}
	}
}

// addTunnel records a VTEP (host may be "": tunnel_update does not name it).
func (c *cache) addTunnel(ip, host, typ string) error {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("tunnel ip %q: %w", ip, err)
	}
	t := c.tunnels[addr]
	if t == nil {
		t = &tunnel{types: map[string]bool{}}
		c.tunnels[addr] = t
	}
	if host != "" {
		t.host = host
	}
	if typ != "" {
		t.types[typ] = true
	}
	return nil
}

func (c *cache) deleteTunnel(ip, typ string) error {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return fmt.Errorf("tunnel ip %q: %w", ip, err)
	}
	if t := c.tunnels[addr]; t != nil {
		delete(t.types, typ)
		if len(t.types) == 0 || typ == "" {
			delete(c.tunnels, addr)
		}
	}
	return nil
}

// FDB entries as l2pop sends them (reference §4.2): network → {network_type, segment_id,
// ports: {VTEP: [[mac, ip], ...]}}; the entry ["00:00:00:00:00:00", "0.0.0.0"] floods.
type fdbNetwork struct {
	NetworkType string                `json:"network_type"`
	SegmentID   any                   `json:"segment_id"`
	Ports       map[string][][]string `json:"ports"`
}

const floodMAC = "00:00:00:00:00:00"

// applyFDB adds (add) or removes entries; entries of this host's own VTEP are ignored, as
// Neutron's agent ignores them.
func (c *cache) applyFDB(entries map[string]fdbNetwork, add bool) error {
	var errs []string
	for network, n := range entries {
		for vtep, list := range n.Ports {
			addr, err := netip.ParseAddr(vtep)
			if err != nil {
				errs = append(errs, fmt.Sprintf("network %s: VTEP %q: %v", network, vtep, err))
				continue
			}
			if addr == c.localIP {
				continue
			}
			for _, e := range list {
				if len(e) != 2 {
					errs = append(errs, fmt.Sprintf("network %s VTEP %s: entry %q is not [mac, ip]", network, vtep, e))
					continue
				}
				c.fdbEntry(network, addr, e[0], e[1], add)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("fdb entries: %s", strings.Join(errs, "; "))
	}
	return nil
}

func (c *cache) fdbEntry(network string, vtep netip.Addr, mac, ip string, add bool) {
	byVTEP := c.fdb[network]
	if byVTEP == nil {
		if !add {
			return
		}
		byVTEP = map[netip.Addr]*fdbEntries{}
		c.fdb[network] = byVTEP
	}
	e := byVTEP[vtep]
	if e == nil {
		if !add {
			return
		}
		e = &fdbEntries{entries: map[[2]string]bool{}}
		byVTEP[vtep] = e
	}
	mac = strings.ToLower(mac)
	if mac == floodMAC {
		e.flood = add
	} else if add {
		e.entries[[2]string{mac, ip}] = true
	} else {
		delete(e.entries, [2]string{mac, ip})
	}
	if !e.flood && len(e.entries) == 0 {
		delete(byVTEP, vtep)
	}
	if len(byVTEP) == 0 {
		delete(c.fdb, network)
	}
}

// chgIP applies update_fdb_entries' chg_ip: network → VTEP → {before, after}.
func (c *cache) chgIP(changes map[string]map[string]map[string][][]string) error {
	var errs []string
	for network, byVTEP := range changes {
		for vtep, change := range byVTEP {
			addr, err := netip.ParseAddr(vtep)
			if err != nil {
				errs = append(errs, fmt.Sprintf("network %s: VTEP %q: %v", network, vtep, err))
				continue
			}
			if addr == c.localIP {
				continue
			}
			for _, e := range change["before"] {
				if len(e) == 2 {
					c.fdbEntry(network, addr, e[0], e[1], false)
				}
			}
			for _, e := range change["after"] {
				if len(e) == 2 {
					c.fdbEntry(network, addr, e[0], e[1], true)
				}
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("chg_ip: %s", strings.Join(errs, "; "))
	}
	return nil
}

// snapshot is the northbound state of this host: its ports and their networks and subnets,
// the other hosts (DVR MACs, VTEPs), the FDB and the ports' security groups. Values the
// server sent that do not parse are Problems naming the port or object; the rest is kept.
// With security groups on, a port whose groups are not known yet is held back until they
// are, the first time (see secGroups.portGroups).
func (c *cache) snapshot() *northbound.Snapshot {
	s := &northbound.Snapshot{Host: &northbound.HostSettings{}}
	host := c.host
	s.Host.Name = &host
	if c.ownDVRMAC != nil {
		mac := c.ownDVRMAC
		s.Host.DVRMAC = &mac
	}
	m := &s.Model
	networks := map[string]bool{}
	for _, id := range slices.Sorted(maps.Keys(c.ports)) {
		d := c.ports[id]
		groups, hold := c.sg.portGroups(id, d)
		if hold {
			continue
		}
		p, problems := modelPort(d, c.subnets)
		s.Problems = append(s.Problems, problems...)
		if p == nil {
			continue
		}
		p.DeviceID = c.deviceIDs[id]
		p.SecurityGroups = groups
		m.Ports = append(m.Ports, *p)
		if !networks[d.NetworkID] {
			networks[d.NetworkID] = true
			m.Networks = append(m.Networks, modelNetwork(d))
		} else if n := &m.Networks[slices.IndexFunc(m.Networks, func(n northbound.Network) bool { return n.ID == d.NetworkID })]; n.MTU == 0 {
			// Ports programmed from the server's pushes have no MTU until the network's is known.
			n.MTU = d.MTU
		}
	}
	for _, id := range slices.Sorted(maps.Keys(c.subnets)) {
		sn := c.subnets[id]
		if !networks[sn.network] {
			continue
		}
		m.Subnets = append(m.Subnets, northbound.Subnet{ID: sn.id, NetworkID: sn.network, CIDR: sn.cidr,
			GatewayIP: sn.gatewayIP, GatewayMAC: sn.gatewayMAC, IPVersion: sn.ipVersion})
	}
	s.Problems = append(s.Problems, c.sg.snapshot(m)...)
	m.OtherHosts = c.otherHosts()
	for _, network := range slices.Sorted(maps.Keys(c.fdb)) {
		if !networks[network] {
			continue
		}
		byVTEP := c.fdb[network]
		for _, vtep := range slices.SortedFunc(maps.Keys(byVTEP), func(a, b netip.Addr) int { return a.Compare(b) }) {
			e := byVTEP[vtep]
			f := northbound.FDB{NetworkID: network, RemoteIP: vtep, Flood: e.flood}
			for _, k := range slices.SortedFunc(maps.Keys(e.entries), func(a, b [2]string) int { return strings.Compare(a[0]+a[1], b[0]+b[1]) }) {
				mac, err := net.ParseMAC(k[0])
				if err != nil {
					continue
				}
				entry := northbound.FDBEntry{MAC: mac}
				if ip, err := netip.ParseAddr(k[1]); err == nil && !ip.IsUnspecified() {
					entry.IP = ip
				}
				f.Entries = append(f.Entries, entry)
			}
			m.FDB = append(m.FDB, f)
		}
	}
	return s
}

// otherHosts joins the DVR MACs and the VTEPs by host name; a VTEP no host name came with
// is a host of its own, named after its address.
func (c *cache) otherHosts() []northbound.RemoteHost {
	hosts := map[string]*northbound.RemoteHost{}
	get := func(name string) *northbound.RemoteHost {
		if hosts[name] == nil {
			hosts[name] = &northbound.RemoteHost{Name: name}
		}
		return hosts[name]
	}
	for name, mac := range c.dvrMACs {
		if name == c.host {
			continue
		}
		if hw, err := net.ParseMAC(mac); err == nil {
			get(name).DVRMAC = hw
		}
	}
	for ip, t := range c.tunnels {
		if ip == c.localIP || t.host == c.host {
			continue
		}
		name := t.host
		if name == "" {
			name = "vtep-" + ip.String()
		}
		h := get(name)
		h.IP = ip
		for _, typ := range slices.Sorted(maps.Keys(t.types)) {
			h.TunnelTypes = append(h.TunnelTypes, northbound.NetworkType(typ))
		}
	}
	out := make([]northbound.RemoteHost, 0, len(hosts))
	for _, name := range slices.Sorted(maps.Keys(hosts)) {
		out = append(out, *hosts[name])
	}
	return out
}

func modelNetwork(d *DeviceDetails) northbound.Network {
	n := northbound.Network{ID: d.NetworkID, Type: northbound.NetworkType(d.NetworkType), MTU: d.MTU}
	if d.PhysicalNetwork != nil {
		n.Physnet = *d.PhysicalNetwork
	}
	if d.SegmentationID != nil {
		n.SegmentationID = *d.SegmentationID
	}
	return n
}

// modelPort turns a device's details into a model port. Fixed IPs on subnets the cache
// lacks are left out (the port keeps its other addresses); a value that does not parse is
// a Problem and the port is dropped.
func modelPort(d *DeviceDetails, subnets map[string]*subnet) (*northbound.Port, []northbound.Problem) {
	problem := func(field, format string, args ...any) []northbound.Problem {
		return []northbound.Problem{{Kind: northbound.KindPort, ID: d.Device, Field: field, Reason: fmt.Sprintf(format, args...)}}
	}
	mac, err := net.ParseMAC(d.MACAddress)
	if err != nil {
		return nil, problem("mac_address", "%q from neutron-server: %v", d.MACAddress, err)
	}
	p := &northbound.Port{ID: d.Device, NetworkID: d.NetworkID, MAC: mac, DeviceOwner: northbound.DeviceOwner(d.DeviceOwner),
		AdminStateUp: d.AdminStateUp == nil || *d.AdminStateUp, PortSecurity: d.PortSecurityEnabled == nil || *d.PortSecurityEnabled}
	for i, f := range d.FixedIPs {
		ip, err := netip.ParseAddr(f.IPAddress)
		if err != nil {
			return nil, problem(fmt.Sprintf("fixed_ips[%d].ip_address", i), "%q from neutron-server: %v", f.IPAddress, err)
		}
		if _, ok := subnets[f.SubnetID]; !ok {
			continue
		}
		p.FixedIPs = append(p.FixedIPs, northbound.FixedIP{SubnetID: f.SubnetID, IP: ip})
	}
	for i, a := range d.AllowedAddressPairs {
		prefix, err := northbound.ParseIPOrCIDR(a.IPAddress)
		if err != nil {
			return nil, problem(fmt.Sprintf("allowed_address_pairs[%d].ip_address", i), "%q from neutron-server: %v", a.IPAddress, err)
		}
		pair := northbound.AddressPair{Prefix: prefix}
		if a.MACAddress != "" {
			if pair.MAC, err = net.ParseMAC(a.MACAddress); err != nil {
				return nil, problem(fmt.Sprintf("allowed_address_pairs[%d].mac_address", i), "%q from neutron-server: %v", a.MACAddress, err)
			}
		}
		p.AllowedAddressPairs = append(p.AllowedAddressPairs, pair)
	}
	return p, nil
}
