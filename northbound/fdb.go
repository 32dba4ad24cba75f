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
