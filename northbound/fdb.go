package northbound

import (
	"bytes"
	"cmp"
	"net/netip"
	"slices"
	"strings"
)

// L2popFDB returns the l2population forwarding database of a validated model as Neutron's
// l2pop driver would send it to this host, merged with the model's explicit FDB entries.
//
// For every tunnelled network and every remote VTEP (the ip of the other host a remote port
// is bound to) there is a flooding entry, then one [mac, ip] entry per fixed IP of each
// remote port that is not a distributed router interface: a remote DVR router interface
// (the same MAC and IP on every host) only adds flooding, and a port without fixed IPs only
// flooding too. A remote port on a host that does not support the network's tunnel type
// adds nothing (Neutron's l2pop ignores a port whose agent cannot carry the segment). An
// explicit entry adds its entries and, with Flood, the flooding entry to the same
// (network, VTEP); explicit entries on networks that are not tunnelled are ignored.
//
// Distributed routers are hosted as neutron-server hosts them (see [Model.RouterHosts]):
// the router's interfaces are bound on every host that hosts it, so each such host floods
// on every tunnelled network of the router, whether or not the model lists the remote
// router interfaces. Without that, a host routing a reply into a tunnelled network it has
// no port on would find no tunnel to the VM's host.
//
// The result is sorted by (NetworkID, RemoteIP), each entry list deduplicated and sorted
// by (MAC, IP); a (network, VTEP) with neither flooding nor entries is left out.
func (m *Model) L2popFDB() []FDB {
	tunnelled := map[string]NetworkType{}
	for _, n := range m.Networks {
		if n.Type.Tunnelled() {
			tunnelled[n.ID] = n.Type
		}
	}
	hosts := map[string]*RemoteHost{}
	for i := range m.OtherHosts {
		hosts[m.OtherHosts[i].Name] = &m.OtherHosts[i]
	}
	type key struct {
		network string
		vtep    netip.Addr
	}
	byKey := map[key]*FDB{}
	fdb := func(network string, vtep netip.Addr) *FDB {
		k := key{network, vtep}
		if byKey[k] == nil {
			byKey[k] = &FDB{NetworkID: network, RemoteIP: vtep}
		}
		return byKey[k]
	}
	for _, p := range m.RemotePorts {
		typ, ok := tunnelled[p.NetworkID]
		h := hosts[p.Host]
		if !ok || h == nil || !h.IP.IsValid() || !slices.Contains(h.TunnelTypes, typ) {
			continue
		}
		f := fdb(p.NetworkID, h.IP)
		f.Flood = true
		if p.DeviceOwner == OwnerRouterInterfaceDistributed {
			continue
		}
		for _, ip := range p.FixedIPs {
			f.Entries = append(f.Entries, FDBEntry{MAC: p.MAC, IP: ip.IP})
		}
	}
	for _, rh := range m.RouterHosts() {
		h := hosts[rh.Host]
		for _, network := range rh.Networks {
			if typ, ok := tunnelled[network]; ok && h != nil && h.IP.IsValid() && slices.Contains(h.TunnelTypes, typ) {
				fdb(network, h.IP).Flood = true
			}
		}
	}
	for _, e := range m.FDB {
		if _, ok := tunnelled[e.NetworkID]; !ok || !e.RemoteIP.IsValid() {
			continue
		}
		f := fdb(e.NetworkID, e.RemoteIP)
		f.Flood = f.Flood || e.Flood
		f.Entries = append(f.Entries, e.Entries...)
	}
	out := make([]FDB, 0, len(byKey))
	for _, f := range byKey {
		if !f.Flood && len(f.Entries) == 0 {
			continue
		}
		slices.SortFunc(f.Entries, compareEntries)
		f.Entries = slices.CompactFunc(f.Entries, func(a, b FDBEntry) bool { return compareEntries(a, b) == 0 })
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b FDB) int {
		return cmp.Or(strings.Compare(a.NetworkID, b.NetworkID), a.RemoteIP.Compare(b.RemoteIP))
	})
	return out
}

func compareEntries(a, b FDBEntry) int {
	return cmp.Or(bytes.Compare(a.MAC, b.MAC), a.IP.Compare(b.IP))
}

// RouterHost is a distributed router hosted on another host, with the router's networks.
type RouterHost struct {
	Router string
	Host   string
	// Networks are the networks of the router's interfaces, sorted.
	Networks []string
}

// RouterHosts returns, for every distributed router of the model, the other hosts that
// host it, as neutron-server schedules DVR routers: a host hosts a router when it has a
// DVR-serviced port (a VM, a DHCP port, ...; Neutron's is_dvr_serviced) with an address on
// one of the router's subnets, or the router's centralized SNAT port (its dvr_snat host).
// A router is known by its interfaces (device owner router_interface_distributed) among
// this host's ports and the remote ports that name their router (device_id); its subnets
// and networks are those of its interfaces. Sorted by router, then host.
func (m *Model) RouterHosts() []RouterHost {
	type router struct {
		subnets, networks map[string]bool
	}
	routers := map[string]*router{}
	addInterface := func(id, network string, ips []FixedIP) {
		if id == "" {
			return
		}
		r := routers[id]
		if r == nil {
			r = &router{subnets: map[string]bool{}, networks: map[string]bool{}}
			routers[id] = r
		}
		r.networks[network] = true
		for _, ip := range ips {
			r.subnets[ip.SubnetID] = true
		}
	}
	for _, p := range m.Ports {
		if p.DeviceOwner == OwnerRouterInterfaceDistributed {
			addInterface(p.DeviceID, p.NetworkID, p.FixedIPs)
		}
	}
	for _, p := range m.RemotePorts {
		if p.DeviceOwner == OwnerRouterInterfaceDistributed {
			addInterface(p.DeviceID, p.NetworkID, p.FixedIPs)
		}
	}
	type key struct{ router, host string }
	hosted := map[key]bool{}
	for _, p := range m.RemotePorts {
		switch {
		case p.DeviceOwner == OwnerRouterCentralizedSNAT:
			if routers[p.DeviceID] != nil {
				hosted[key{p.DeviceID, p.Host}] = true
			}
		case p.DeviceOwner.IsDVRServiced():
			for id, r := range routers {
				for _, ip := range p.FixedIPs {
					if r.subnets[ip.SubnetID] {
						hosted[key{id, p.Host}] = true
					}
				}
			}
		}
	}
	out := make([]RouterHost, 0, len(hosted))
	for k := range hosted {
		nets := make([]string, 0, len(routers[k.router].networks))
		for n := range routers[k.router].networks {
			nets = append(nets, n)
		}
		slices.Sort(nets)
		out = append(out, RouterHost{Router: k.router, Host: k.host, Networks: nets})
	}
	slices.SortFunc(out, func(a, b RouterHost) int {
		return cmp.Or(strings.Compare(a.Router, b.Router), strings.Compare(a.Host, b.Host))
	})
	return out
}
