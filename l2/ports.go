package l2

import (
	"net"
	"net/netip"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// ICMPv6 neighbour advertisement, the ND message spoofing protection checks.
const icmpv6NeighborAdvert = 136

// DeadPort returns I17 (§2.5): every frame from a dead port is dropped in table 0.
func DeadPort(p *state.Port) flows.IntFlow {
	return flows.IntFlow{Table: flows.IntLocalSwitching, Priority: 2, Cookie: flows.Cookie(flows.CategoryPort, p.ID),
		Match: flows.Match{}.InPort(p.OFPort)}
}

// SpoofingProtection returns the ARP / MAC / IPv6-ND spoofing protection of a port (Neutron's
// setup_arp_spoofing_protection, §2.6), as Neutron leaves it installed:
//
//   - none for a port without port security or owned by a network:* service;
//   - I18 (table 25: in_port, dl_src → 30) per allowed MAC, and I19 (table 0 prio 9 → 25);
//   - I20 (table 24: NA with nd_target → 59) per IPv6 address or prefix and per EUI-64
//     link-local address of each allowed MAC, and I21 (table 0 prio 10, NA → 24), unless an
//     allowed address pair is ::/0;
//   - I22 (table 24: ARP with arp_spa → 25) per IPv4 address or prefix, and I23 (table 0
//     prio 10, ARP → 24), unless an allowed address pair is 0.0.0.0/0. Then Neutron deletes
//     the whole protection (delete_arp_spoofing_protection), ND included: only I18 and I19
//     remain.
//
// Host addresses match exactly, prefixes under their mask.
func SpoofingProtection(p *state.Port) []flows.IntFlow { return appendSpoofingProtection(nil, p) }

// appendSpoofingProtection appends SpoofingProtection(p) to out.
func appendSpoofingProtection(out []flows.IntFlow, p *state.Port) []flows.IntFlow {
	if !p.PortSecurity || p.IsNetworkOwned() || p.OFPort == 0 {
		return out
	}
	c := flows.Cookie(flows.CategorySpoofing, p.ID)
	in := flows.Match{}.InPort(p.OFPort)
	// The port's flows share one action list per table they continue in (one allocation
	// for the four lists).
	gotos := &[4]flows.Action{flows.Goto(flows.IntMACSpoof), flows.Goto(flows.IntLocalEgress),
		flows.Goto(flows.IntPacketRateLimit), flows.Goto(flows.IntARPSpoof)}
	goTo := func(next flows.IntTable) []flows.Action {
		i := 0
		switch next {
		case flows.IntLocalEgress:
			i = 1
		case flows.IntPacketRateLimit:
			i = 2
		case flows.IntARPSpoof:
			i = 3
		}
		return gotos[i : i+1 : i+1]
	}
	flow := func(table flows.IntTable, prio uint16, m flows.Match, next flows.IntTable) flows.IntFlow {
		return flows.IntFlow{Table: table, Priority: prio, Cookie: c, Match: m, Actions: goTo(next)}
	}

	macs := AllowedMACs(p)
	for _, mac := range macs {
		out = append(out, flow(flows.IntMACSpoof, 2, in.EthSrc(mac), flows.IntLocalEgress))
	}
	out = append(out, flow(flows.IntLocalSwitching, 9, in, flows.IntMACSpoof))

	v4, v6 := AllowedAddresses(p)
	if anyZeroLength(v4) {
		return out
	}
	if !anyZeroLength(v6) {
		for _, mac := range macs {
			v6 = appendPrefix(v6, netip.PrefixFrom(LinkLocal(mac), 128))
		}
		na := in.ICMPv6().ICMPType(icmpv6NeighborAdvert)
		for _, a := range v6 {
			out = append(out, flow(flows.IntARPSpoof, 2, na.NDTarget(a), flows.IntPacketRateLimit))
		}
		out = append(out, flow(flows.IntLocalSwitching, 10, na, flows.IntARPSpoof))
	}
	arp := in.ARP()
	for _, a := range v4 {
		out = append(out, flow(flows.IntARPSpoof, 2, arp.ARPSPA(a), flows.IntMACSpoof))
	}
	return append(out, flow(flows.IntLocalSwitching, 10, arp, flows.IntARPSpoof))
}

// AllowedMACs returns the source MACs a port may use: its own, then those of its allowed
// address pairs, without duplicates.
func AllowedMACs(p *state.Port) []net.HardwareAddr {
	var macs []net.HardwareAddr
	add := func(mac net.HardwareAddr) {
		if len(mac) != 6 {
			return // nil: the pair uses the port's own MAC
		}
		for _, m := range macs {
			if string(m) == string(mac) {
				return
			}
		}
		macs = append(macs, mac)
	}
	add(p.MAC)
	for _, pair := range p.AllowedAddressPairs {
		add(pair.MAC)
	}
	return macs
}

// AllowedAddresses returns the addresses a port may claim, split by family: its fixed IPs
// (as host prefixes), then its allowed address pairs' prefixes, masked, without duplicates.
// IPv4-mapped IPv6 prefixes count as IPv4.
func AllowedAddresses(p *state.Port) (v4, v6 []netip.Prefix) {
	add := func(a netip.Prefix) {
		if !a.IsValid() {
			return
		}
		a = a.Masked()
		if a.Addr().Is4In6() {
			a = netip.PrefixFrom(a.Addr().Unmap(), a.Bits()-96)
		}
		if a.Addr().Is4() {
			v4 = appendPrefix(v4, a)
		} else {
			v6 = appendPrefix(v6, a)
		}
	}
	for _, ip := range p.FixedIPs {
		if ip.IP.IsValid() {
			add(netip.PrefixFrom(ip.IP, ip.IP.BitLen()))
		}
	}
	for _, pair := range p.AllowedAddressPairs {
		add(pair.Prefix)
	}
	return v4, v6
}

// LinkLocal returns the EUI-64 IPv6 link-local address (fe80::/64) of a MAC address.
func LinkLocal(mac net.HardwareAddr) netip.Addr {
	return netip.AddrFrom16([16]byte{0: 0xfe, 1: 0x80,
		8: mac[0] ^ 0x02, 9: mac[1], 10: mac[2], 11: 0xff, 12: 0xfe, 13: mac[3], 14: mac[4], 15: mac[5]})
}

func appendPrefix(ps []netip.Prefix, p netip.Prefix) []netip.Prefix {
	for _, q := range ps {
		if q == p {
			return ps
		}
	}
	return append(ps, p)
}

func anyZeroLength(ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Bits() == 0 {
			return true
		}
	}
	return false
}
