package namespace

import (
	"cmp"
	"encoding/binary"
	"hash/crc32"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/dvr/nat"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// The north-south part of a DVR router that goes through the network node, as Neutron's L3
// agent builds it: the centralized SNAT namespace on the dvr_snat host (DvrEdgeRouter) and,
// in every qrouter namespace of a router with a gateway, the SNAT redirect that sends the
// traffic the router cannot route itself to that namespace (DvrLocalRouter).

// SNAT is a router's centralized SNAT namespace, snat-<router id>, on the dvr_snat host that
// holds the router's gateway (qg-) and centralized SNAT (sg-) ports: IP forwarding on, the
// gateway device with the router's external addresses and default route, one sg- device per
// internal subnet (the address the qrouter namespaces' SNAT redirect points at), and the
// source NAT of the internal subnets to the gateway IP out of qg-.
type SNAT struct {
	// Gateway is the qg- device: the network:router_gateway port, with its fixed IPs and
	// the prefix lengths of their (external) subnets.
	Gateway Interface
	// Interfaces are the sg- devices, one per network:router_centralized_snat port of the
	// router on this host, sorted by PortID.
	Interfaces []Interface
	// Routes are the namespace's routes besides the kernel's connected ones: a default
	// route per IP version via the external subnet's gateway IP (and, when that gateway
	// is outside the subnet, an on-link route to it first, as Neutron's _add_route_to_gw
	// does), sorted by [CompareRoutes].
	Routes []Route
	// NAT is the namespace's NAT (dvr/nat): SNAT of each internal IPv4 subnet, leaving
	// through qg-, to the gateway's first IPv4 address; empty when the router's
	// enable_snat is false.
	NAT nat.Set
}

// Rule is one IPv4 or IPv6 policy routing rule: from From [iif IIF] lookup Table, at
// Priority.
type Rule struct {
	// From is the source prefix as written, host bits kept: Neutron's SNAT redirect rule
	// is "from <the router port's ip_cidr>", e.g. from 10.0.1.1/24 (the kernel keeps the
	// address as given and matches on the prefix). A /0 is "from all" (and gives the
	// rule's IP version).
	From netip.Prefix
	// IIF, when set, matches the device the packet came in on (a fip- namespace's rule
	// per router: "from all iif fpr-<router> lookup <table>"); From is then a /0.
	IIF      string
	Table    uint32
	Priority uint32
}

// Route is one route the manager keeps.
type Route struct {
	// Table is the routing table; 0 is main.
	Table uint32
	Dst   netip.Prefix
	// Via is the next hop; invalid for an on-link route (scope link).
	Via netip.Addr
	// Device is the name of the device the route leaves through, in the same namespace.
	Device string
}

// mask30 is Neutron's MASK_30.
const mask30 = 0x3fffffff

// SNATIndex is Neutron's snat_idx (DvrLocalRouter._get_snat_idx) of a router port's
// ip_cidr, the table and priority of that port's SNAT redirect: for IPv4 the numeric value
// of the address (netaddr's IPNetwork.value keeps the host bits: 10.0.1.1/24 gives
// 0x0a000101); for IPv6 the CRC-32 of the text "<address>/<prefix length>" xor-folded to 30
// bits, plus 0x3fffffff when below 32768 (so that it stays clear of the kernel's own rule
// priorities).
func SNATIndex(ipCIDR netip.Prefix) uint32 {
	a := ipCIDR.Addr()
	if a.Is4() {
		b := a.As4()
		return binary.BigEndian.Uint32(b[:])
	}
	h := crc32.ChecksumIEEE([]byte(ipCIDR.String()))
	idx := (h >> 30) ^ (h & mask30)
	if idx < 32768 {
		idx += mask30
	}
	return idx
}

// CompareRules orders rules by priority, then table and source.
func CompareRules(a, b Rule) int {
	return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.Table, b.Table), comparePrefix(a.From, b.From),
		cmp.Compare(a.IIF, b.IIF))
}

// CompareRoutes orders routes by table, destination, next hop and device.
func CompareRoutes(a, b Route) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), comparePrefix(a.Dst, b.Dst), a.Via.Compare(b.Via), cmp.Compare(a.Device, b.Device))
}

// routerGateways returns the gateway of every distributed router that has one, by id (the
// first of a duplicated id).
func routerGateways(routers []northbound.Router) map[string]northbound.RouterGateway {
	out := map[string]northbound.RouterGateway{}
	seen := map[string]bool{}
	for _, r := range routers {
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		if r.Distributed && r.Gateway != nil {
			out[r.ID] = *r.Gateway
		}
	}
	return out
}

// snatPorts are the routers' centralized SNAT (sg-) ports by router id, sorted by port id.
type snatPorts struct {
	// local are this host's; all are this host's and the other hosts' (a port in both
	// counts once, the local copy).
	local, all map[string][]state.Port
}

func centralizedSNATPorts(in Input) snatPorts {
	sp := snatPorts{local: map[string][]state.Port{}, all: map[string][]state.Port{}}
	seen := map[string]bool{}
	for i, list := range [][]state.Port{in.LocalPorts, in.RemotePorts} {
		for _, p := range list {
			if !p.IsCentralizedSNAT() || p.ID == "" || p.DeviceID == "" || seen[p.ID] {
				continue
			}
			seen[p.ID] = true
			sp.all[p.DeviceID] = append(sp.all[p.DeviceID], p)
			if i == 0 {
				sp.local[p.DeviceID] = append(sp.local[p.DeviceID], p)
			}
		}
	}
	for _, m := range []map[string][]state.Port{sp.local, sp.all} {
		for _, ports := range m {
			slices.SortFunc(ports, func(a, b state.Port) int { return cmp.Compare(a.ID, b.ID) })
		}
	}
	return sp
}

// snatHosted returns, by router id, the gateway (qg-) port among local of each router in
// gateways: the routers whose centralized SNAT this host holds. Of two gateway ports of
// one router, the lower id wins.
func snatHosted(local []state.Port, gateways map[string]northbound.RouterGateway) map[string]state.Port {
	out := map[string]state.Port{}
	for _, p := range local {
		if p.DeviceOwner != northbound.OwnerRouterGateway || p.ID == "" {
			continue
		}
		if _, ok := gateways[p.DeviceID]; !ok {
			continue
		}
		if cur, dup := out[p.DeviceID]; !dup || p.ID < cur.ID {
			out[p.DeviceID] = p
		}
	}
	return out
}

// portInterface is a port as a device: its MAC, its fixed IPs on known subnets with their
// prefix lengths (sorted) and its network's MTU. It also returns those fixed IPs, in the
// port's order.
func portInterface(p state.Port, subnets map[string]state.Subnet, mtus map[string]int) (Interface, []state.FixedIP) {
	ifc := Interface{PortID: p.ID, MAC: cloneMAC(p.MAC), MTU: mtus[p.NetworkID]}
	var ips []state.FixedIP
	for _, ip := range p.FixedIPs {
		s, ok := subnets[ip.SubnetID]
		if !ok || !ip.IP.IsValid() {
			continue
		}
		ips = append(ips, ip)
		if pfx := netip.PrefixFrom(ip.IP, s.CIDR.Bits()); !slices.Contains(ifc.Addrs, pfx) {
			ifc.Addrs = append(ifc.Addrs, pfx)
		}
	}
	slices.SortFunc(ifc.Addrs, comparePrefix)
	return ifc, ips
}

// snatNamespace computes the snat namespace of router id, whose gateway is gw and gateway
// port gwPort, with the centralized SNAT ports sg of this host.
func snatNamespace(id string, gw northbound.RouterGateway, gwPort state.Port, sg []state.Port,
	subnets map[string]state.Subnet, mtus map[string]int) *SNAT {
	out := &SNAT{}
	var gwIPs []state.FixedIP
	out.Gateway, gwIPs = portInterface(gwPort, subnets, mtus)
	dev := GatewayDeviceName(gwPort.ID)

	// A default route per IP version, via the gateway IP of the first subnet of that
	// version (in the port's order) that has one.
	done := map[bool]bool{}
	for _, ip := range gwIPs {
		s := subnets[ip.SubnetID]
		v4 := ip.IP.Is4()
		if done[v4] || !s.GatewayIP.IsValid() || s.GatewayIP.Is4() != v4 {
			continue
		}
		done[v4] = true
		if !s.CIDR.Contains(s.GatewayIP) {
			out.Routes = append(out.Routes, Route{Dst: netip.PrefixFrom(s.GatewayIP, s.GatewayIP.BitLen()), Device: dev})
		}
		def := netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		if v4 {
			def = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		}
		out.Routes = append(out.Routes, Route{Dst: def, Via: s.GatewayIP, Device: dev})
	}
	slices.SortFunc(out.Routes, CompareRoutes)

	// The gateway's first IPv4 address is where SNAT goes (Neutron's _add_snat_rules).
	var to netip.Addr
	for _, ip := range gwIPs {
		if ip.IP.Is4() {
			to = ip.IP
			break
		}
	}
	for _, p := range sg {
		ifc, ips := portInterface(p, subnets, mtus)
		out.Interfaces = append(out.Interfaces, ifc)
		if !gw.EnableSNAT || !to.IsValid() {
			continue
		}
		for _, ip := range ips {
			src := subnets[ip.SubnetID].CIDR.Masked()
			if !ip.IP.Is4() || !src.Addr().Is4() {
				continue
			}
			rule := nat.SNAT{Object: "router " + id, Source: src, OutDevice: dev, To: to}
			if !slices.Contains(out.NAT.SNAT, rule) {
				out.NAT.SNAT = append(out.NAT.SNAT, rule)
			}
		}
	}
	slices.SortFunc(out.NAT.SNAT, func(a, b nat.SNAT) int { return comparePrefix(a.Source, b.Source) })
	return out
}

// snatRedirect computes Neutron's SNAT redirect of a router with a gateway
// (DvrLocalRouter._snat_redirect_modify): for each IPv4 fixed IP of each router interface
// on a subnet that has a centralized SNAT port of the router (sg, local or remote), with
// idx = [SNATIndex] of the interface's ip_cidr (its address with the subnet's prefix
// length):
//
//	ip rule add from <ip_cidr> table <idx> priority <idx>
//	ip route add default via <sg- port's address on the subnet> dev qr-<port> table <idx>
//
// The kernel consults the main table first (priority 32766), which holds the router's
// connected subnets: east-west traffic stays local, the rest leaves towards the SNAT
// namespace. ifcIPs maps an interface's port id to its fixed IPs on known subnets.
func snatRedirect(ifcs []Interface, ifcIPs map[string][]state.FixedIP, sg []state.Port,
	subnets map[string]state.Subnet) ([]Rule, []Route) {
	// The sg- address on each subnet: the lowest port id's.
	via := map[string]netip.Addr{}
	for _, p := range sg {
		for _, ip := range p.FixedIPs {
			if _, dup := via[ip.SubnetID]; !dup && ip.IP.IsValid() {
				via[ip.SubnetID] = ip.IP
			}
		}
	}
	var rules []Rule
	var routes []Route
	tables := map[uint32]bool{}
	for _, ifc := range ifcs {
		for _, ip := range ifcIPs[ifc.PortID] {
			gw, ok := via[ip.SubnetID]
			s := subnets[ip.SubnetID]
			if !ok || !ip.IP.Is4() || !gw.Is4() {
				continue
			}
			cidr := netip.PrefixFrom(ip.IP, s.CIDR.Bits())
			idx := SNATIndex(cidr)
			if tables[idx] {
				continue // the same ip_cidr on two interfaces: the first keeps the table
			}
			tables[idx] = true
			rules = append(rules, Rule{From: cidr, Table: idx, Priority: idx})
			routes = append(routes, Route{Table: idx, Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0), Via: gw,
				Device: DeviceName(ifc.PortID)})
		}
	}
	slices.SortFunc(rules, CompareRules)
	slices.SortFunc(routes, CompareRoutes)
	return rules, routes
}
