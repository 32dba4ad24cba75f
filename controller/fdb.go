package controller

import (
	"bytes"
	"cmp"
	"net"
	"net/netip"
	"slices"
	"strings"

	"github.com/dvrflow/dvrflow/state"
)

// DeriveFDB returns the l2population forwarding database of a validated topology (the
// result of [Validate]), as Neutron's l2pop driver would send it to this host, merged with
// the explicit l2pop_fdb entries.
//
// For every tunnelled network and every remote VTEP (the ip of the other host a remote port
// is bound to) there is a flooding entry, then one [mac, ip] entry per fixed IP of each
// remote port that is not a distributed router interface: a remote DVR router interface
// (the same MAC and IP on every host) only adds flooding, and a port without fixed IPs only
// flooding too. A remote port on a host that does not support the network's tunnel type
// adds nothing (Neutron's l2pop ignores a port whose agent cannot carry the segment). An
// explicit entry adds its entries and, with flood, the flooding entry to the same
// (network, VTEP); explicit entries on networks that are not tunnelled are ignored.
//
// The result is sorted by (NetworkID, RemoteIP), each entry list deduplicated and sorted
// by (MAC, IP); a (network, VTEP) with neither flooding nor entries is left out.
func DeriveFDB(t *Topology) []state.FDB {
	tunnelled := map[string]string{} // network id → tunnel type
	for _, n := range t.Networks {
		if isTunnel(n.NetworkType) {
			tunnelled[n.ID] = n.NetworkType
		}
	}
	hosts := map[string]OtherHost{}
	for _, h := range t.OtherHosts {
		hosts[h.Name] = h
	}
	type key struct {
		network string
		vtep    netip.Addr
	}
	byKey := map[key]*state.FDB{}
	fdb := func(network string, vtep netip.Addr) *state.FDB {
		k := key{network, vtep}
		if byKey[k] == nil {
			byKey[k] = &state.FDB{NetworkID: network, RemoteIP: vtep}
		}
		return byKey[k]
	}
	for _, p := range t.RemotePorts {
		typ, ok := tunnelled[p.NetworkID]
		h := hosts[p.Host]
		vtep, err := netip.ParseAddr(h.IP)
		if !ok || err != nil || !slices.Contains(h.TunnelTypes, typ) {
			continue
		}
		f := fdb(p.NetworkID, vtep.Unmap())
		f.Flood = true
		if p.IsDistributedRouterInterface() {
			continue
		}
		for _, ip := range p.FixedIPs {
			f.Entries = appendEntry(f.Entries, p.MAC, ip.IPAddress)
		}
	}
	for _, e := range t.L2popFDB {
		vtep, err := netip.ParseAddr(e.RemoteIP)
		if _, ok := tunnelled[e.NetworkID]; !ok || err != nil {
			continue
		}
		f := fdb(e.NetworkID, vtep.Unmap())
		f.Flood = f.Flood || e.Flood
		for _, entry := range e.Entries {
			f.Entries = appendEntry(f.Entries, entry.MAC, entry.IP)
		}
	}
	out := make([]state.FDB, 0, len(byKey))
	for _, f := range byKey {
		if !f.Flood && len(f.Entries) == 0 {
			continue
		}
		slices.SortFunc(f.Entries, compareEntries)
		f.Entries = slices.CompactFunc(f.Entries, func(a, b state.FDBEntry) bool { return compareEntries(a, b) == 0 })
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b state.FDB) int {
		return cmp.Or(strings.Compare(a.NetworkID, b.NetworkID), a.RemoteIP.Compare(b.RemoteIP))
	})
	return out
}

// appendEntry adds the unicast entry [mac, ip]; ip may be empty (a MAC-only entry). Values
// that do not parse (impossible after Validate) are skipped.
func appendEntry(entries []state.FDBEntry, mac, ip string) []state.FDBEntry {
	hw, err := net.ParseMAC(mac)
	if err != nil {
		return entries
	}
	e := state.FDBEntry{MAC: hw}
	if ip != "" {
		if e.IP, err = netip.ParseAddr(ip); err != nil {
			return entries
		}
		e.IP = e.IP.Unmap()
	}
	return append(entries, e)
}

func compareEntries(a, b state.FDBEntry) int {
	return cmp.Or(bytes.Compare(a.MAC, b.MAC), a.IP.Compare(b.IP))
}
