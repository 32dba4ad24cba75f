package namespace

// The floating IP side of a DVR host, as Neutron's L3 agent builds it in dvr_fip_ns.py
// (FipNamespace) and dvr_local_router.py (DvrLocalRouter): what this host must hold so that
// each floating IP of a VM bound here is answered, routed and translated here, computed
// without any I/O by DesiredFIP.
//
// For each external network with a floating IP here, a namespace fip-<network id> holds the
// network's floatingip_agent_gateway port as fg-<port id[:11]>: its MAC and addresses,
// proxy ARP on (it answers ARP for the floating IPs routed behind it). For each router with
// a floating IP here, a veth pair joins qrouter-<router id> (end rfp-<router id[:10]>) to
// the fip- namespace (end fpr-<router id[:10]>), with a /31 from 169.254.64.0/18.
// The path of a packet:
//
//   - in: fg- answers ARP for the floating IP (proxy ARP: fip- has a route to it); fip-
//     routes it (main table: floating IP /32 via the rfp- address, dev fpr-) into qrouter-,
//     where the DNAT rule (floating → fixed, arriving on rfp-) sends it to the VM.
//   - out: in qrouter-, the rule "from <fixed IP> lookup 16" (one per floating IP, at its
//     allocated priority) sends the VM's traffic to table 16, whose default route goes via
//     the fpr- address out of rfp-; the SNAT rule (fixed → floating, leaving by rfp-)
//     translates it; in fip-, the rule "iif fpr- lookup T priority T" (T the fpr- address as
//     a number) sends it to table T, whose default route goes via the external subnet's
//     gateway out of fg-.
//
// # What the apply side adds, and what is not here
//
//   - The manager (fip_apply.go) adds what depends on the host: the permanent neighbour
//     entries on both veth ends (each end's peer address with the MAC the kernel gave the
//     peer), the sysctls (Neutron's Namespace.create settings, as for qrouter-,
//     routerSysctls, and net.ipv4.ip_nonlocal_bind=1 in fip-, fipNamespaceSysctls;
//     proxy_arp and proxy_delay on fg-, fipGatewaySysctls) and the gratuitous ARPs.
//   - Not built: the IPv6 default route in qrouter-'s main table via fpr-'s EUI-64
//     link-local address (floating IPs are IPv4, and no IPv6 north-south traffic is routed
//     yet), and "raw PREROUTING -j CT --notrack" in fip- (no connection tracking there),
//     which is no NAT and so not in a dvr/nat Set. docs/neutron-differences.md lists both.
//   - The address-scope fast path (FAST_PATH_EXIT_PR rules, router subnets routed in fip-)
//     and the routers' extra routes: the model has neither.
//   - A floating IP on a centralized (not distributed) router, or bound to the SNAT node
//     (DVR_SNAT_BOUND, a port without a host): not DVR's compute-node path.
//   - Neutron does not put the floating IP on rfp- (DvrLocalRouter.get_router_cidrs reads
//     the floating IPs back from fip-'s routes instead), and neither does this
//     (Manager.HeldFloatingIPs reads them the same way).

import (
	"cmp"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/dvr/nat"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

const (
	// FIPNamespacePrefix starts the name of a floating IP namespace (Neutron's
	// FIP_NS_PREFIX).
	FIPNamespacePrefix = "fip-"
	// FIPGatewayDevicePrefix starts the name of the floating IP agent gateway device in it
	// (FIP_EXT_DEV_PREFIX).
	FIPGatewayDevicePrefix = "fg-"
	// FIPToRouterDevicePrefix starts the name of a router's veth end in fip-
	// (FIP_2_ROUTER_DEV_PREFIX).
	FIPToRouterDevicePrefix = "fpr-"
	// RouterToFIPDevicePrefix starts the name of the veth end in qrouter-
	// (ROUTER_2_FIP_DEV_PREFIX).
	RouterToFIPDevicePrefix = "rfp-"

	// FIPRouteTable is the table of qrouter- that the floating IPs' rules look up, holding
	// the default route to fip- (Neutron's FIP_RT_TBL).
	FIPRouteTable = 16
	// MainRouteTable is the kernel's main table (RT_TABLE_MAIN).
	MainRouteTable = 254

	// fipGatewayProxyDelay is net.ipv4.neigh.<fg->.proxy_delay as Neutron sets it, in
	// USER_HZ ticks (1/100 s): answer proxied ARP requests after at most 10 ms instead of
	// the default 0.8 s.
	fipGatewayProxyDelay = 1
)

// FIPNamespaceName is the namespace of an external network's floating IPs: fip-<network id>.
func FIPNamespaceName(networkID string) string { return FIPNamespacePrefix + networkID }

// FIPGatewayDeviceName is the floating IP agent gateway device: fg-<first 11 characters of
// the port id> (FipNamespace.get_ext_device_name).
func FIPGatewayDeviceName(portID string) string { return deviceName(FIPGatewayDevicePrefix, portID) }

// RouterToFIPDeviceName is a router's veth end in qrouter-: rfp-<first 10 characters of the
// router id> (get_rtr_ext_device_name; Neutron cuts every device name at 14 characters, so a
// four-character prefix leaves 10).
func RouterToFIPDeviceName(routerID string) string {
	return deviceName(RouterToFIPDevicePrefix, routerID)
}

// FIPToRouterDeviceName is a router's veth end in fip-: fpr-<first 10 characters of the
// router id> (get_int_device_name).
func FIPToRouterDeviceName(routerID string) string {
	return deviceName(FIPToRouterDevicePrefix, routerID)
}

// FIPInput is what DesiredFIP reads: the model as validated (northbound.Validate fills in
// each floating IP's Host and FixedIP), this host's ports, and the allocations.
type FIPInput struct {
	// Host is this host's name; only floating IPs whose Host it is are served here.
	Host string
	// Routers give each floating IP's router: distributed, with its gateway on the
	// floating IP's network.
	Routers []northbound.Router
	// FloatingIPs of the cloud; the associated ones of this host are served.
	FloatingIPs []northbound.FloatingIP
	// LocalPorts are the ports bound to this host; its floating IP agent gateway ports
	// (DeviceOwner network:floatingip_agent_gateway, one per external network) become the
	// fg- devices. Only ID, NetworkID, MAC, DeviceOwner and FixedIPs are read.
	LocalPorts []state.Port
	// Subnets give the fg- addresses' prefix lengths, the external gateways and the
	// external networks' other subnets.
	Subnets []state.Subnet
	// Networks give the external networks' MTU (fg-, rfp-, fpr-); a network missing here
	// (or with MTU 0) leaves the kernel's default.
	Networks []state.Network
	// LinkLocal is each router's pair (LinkLocalAllocator.Sync of FIPAllocationKeys).
	LinkLocal map[string]LinkLocalPair
	// Priorities is each floating IP's rule priority, by address
	// (FIPPriorityAllocator.Sync of FIPAllocationKeys).
	Priorities map[netip.Addr]uint32
	// Held are the floating IPs this host already served before (the previous result's,
	// or after a restart the /32 routes via rfp- found in the fip- namespaces, as
	// Neutron's get_router_cidrs reads them): they need no gratuitous ARP.
	Held []netip.Addr
}

// FIPState is what this host must hold for its floating IPs.
type FIPState struct {
	// Namespaces are the fip- namespaces, sorted by NetworkID.
	Namespaces []FIPNamespace
	// Routers are the routers with a floating IP here, sorted by RouterID.
	Routers []RouterFIP
	// Announce are the floating IPs that are new on this host (added, or moved here from
	// another host): each needs gratuitous ARPs from fg-, as Neutron's
	// floating_ip_added_dist sends them (send_ip_addr_adv_notif). Sorted by Address.
	Announce []GratuitousARP
	// Problems are the floating IPs (or their gateway ports, routers) that cannot be served
	// here, each naming the object and why; everything else is still in the state.
	Problems []northbound.Problem
}

// FIPNamespace is one fip-<external network> namespace.
type FIPNamespace struct {
	// NetworkID is the external network.
	NetworkID string
	// Name is fip-<NetworkID>.
	Name    string
	Gateway FIPGateway
	// Links are the routers whose fpr- device is in this namespace (their veth pairs are
	// in Routers of the FIPState), sorted.
	Links []string
	// Routes are the routes the namespace must hold besides the kernel's own connected
	// routes of its addresses, sorted by (Table, Dst, Via, Device): in the main table, each
	// floating IP /32 via its router's rfp- address (dev fpr-), an on-link route (no Via)
	// for each other subnet of the external network (Neutron's extra_subnets,
	// set_onlink_routes) and for a gateway outside its subnet; in each router's table
	// (FIPRouterRule.Table), the default route via the external subnet's gateway (dev fg-),
	// one per IP version (Neutron's _add_default_gateway_for_fip). Neutron puts no default
	// route in the main table.
	Routes []FIPRoute
	// Rules are the rules the namespace must hold, one per router, sorted by Priority.
	Rules []FIPRouterRule
}

// FIPGateway is the fg- device of a fip- namespace: the external network's
// floatingip_agent_gateway port of this host.
type FIPGateway struct {
	// PortID is the port's id (the iface-id of its br-int side).
	PortID string
	// Device is fg-<PortID[:11]>.
	Device string
	MAC    net.HardwareAddr
	// Addrs are the port's fixed IPs with their subnets' prefix lengths, sorted (Neutron's
	// init_l3 with fixed_ip_cidrs).
	Addrs []netip.Prefix
	// MTU is the external network's; 0 leaves the kernel's default.
	MTU int
	// ProxyARP is net.ipv4.conf.<Device>.proxy_arp=1: fg- answers ARP for every address
	// fip- routes elsewhere, the floating IPs (always true).
	ProxyARP bool
	// ProxyDelay is net.ipv4.neigh.<Device>.proxy_delay, in USER_HZ ticks (Neutron: 1).
	ProxyDelay int
}

// FIPRoute is one route of a fip- or qrouter- namespace.
type FIPRoute struct {
	// Table is the route table: MainRouteTable, FIPRouteTable or a router's FIPTable.
	Table uint32
	// Dst is 0.0.0.0/0 (or ::/0) for a default route.
	Dst netip.Prefix
	// Via is the next hop; invalid for an on-link route (scope link).
	Via    netip.Addr
	Device string
}

func (r FIPRoute) String() string {
	s := fmt.Sprintf("table %d %s", r.Table, r.Dst)
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	return s + " dev " + r.Device
}

// FIPRouterRule is the rule of a fip- namespace for what arrives from one router: "from all
// iif <fpr-> lookup <Table> priority <Priority>", IPv4 (FipNamespace.
// _add_rtr_ext_route_rule_to_route_table: both are the fpr- address as a number).
type FIPRouterRule struct {
	RouterID string
	// IIF is the router's fpr- device.
	IIF      string
	Table    uint32
	Priority uint32
}

// RouterFIP is what a router's qrouter- namespace holds for its floating IPs here.
type RouterFIP struct {
	RouterID string
	// Namespace is qrouter-<RouterID>.
	Namespace string
	// NetworkID is the router's external network (its gateway's).
	NetworkID string
	Link      RouterFIPLink
	// Routes are qrouter-'s routes to fip-: in FIPRouteTable, the default route via the
	// fpr- address out of rfp- (create_rtr_2_fip_link).
	Routes []FIPRoute
	// Rules are the floating IPs' rules, sorted by Priority.
	Rules []FloatingIPRule
	// NAT is what qrouter-'s nftables table holds for the floating IPs
	// (floating_forward_rules): DNAT floating → fixed for what arrives on rfp-, SNAT fixed →
	// floating for what leaves by rfp- (Neutron's float-snat, reached only for traffic
	// out of rfp-: the POSTROUTING "! -o rfp- ... -j ACCEPT" before it). Each rule's Object
	// is "floatingip <id>"; sorted by floating IP address.
	NAT nat.Set
}

// RouterFIPLink is the veth pair between a router's qrouter- and its fip- namespace.
type RouterFIPLink struct {
	Pair LinkLocalPair
	// RouterDevice is rfp-<router id[:10]>, in qrouter-, with RouterAddr: the first address
	// of the /31 (rtr_2_fip).
	RouterDevice string
	RouterAddr   netip.Prefix
	// FIPNamespace is fip-<external network id>; FIPDevice, fpr-<router id[:10]>, is there
	// with FIPAddr: the second address of the /31 (fip_2_rtr).
	FIPNamespace string
	FIPDevice    string
	FIPAddr      netip.Prefix
	// MTU of both ends: the external network's (Neutron: the gateway port's); 0 leaves the
	// kernel's default.
	MTU int
}

// FloatingIPRule is the rule of qrouter- that sends a VM's traffic to fip-: "from <FixedIP>/32
// lookup <Table> priority <Priority>" (DvrLocalRouter._add_floating_ip_rule).
type FloatingIPRule struct {
	FloatingIPID string
	FloatingIP   netip.Addr
	FixedIP      netip.Addr
	// Priority comes from the FIPPriorityAllocator.
	Priority uint32
	// Table is FIPRouteTable.
	Table uint32
}

// GratuitousARP is a floating IP to announce from a fip- namespace's fg- device.
type GratuitousARP struct {
	FloatingIPID string
	Address      netip.Addr
	Namespace    string
	Device       string
}

// fipHere is one floating IP this host serves, with what it needs.
type fipHere struct {
	fip    northbound.FloatingIP
	router *northbound.Router
	gw     *fipGatewayInfo
}

// fipGatewayInfo is an external network's fg- port as a fip- namespace uses it.
type fipGatewayInfo struct {
	gateway FIPGateway
	// defaults are the external gateways, at most one per IP version (IPv4 first).
	defaults []netip.Addr
	// routes are the main table's on-link routes.
	routes []FIPRoute
}

// FIPAllocationKeys returns what the allocations must hold for DesiredFIP: the routers with
// a floating IP served here, sorted, and those floating IPs' addresses, sorted. Pure.
func FIPAllocationKeys(in FIPInput) (routerIDs []string, floatingIPs []netip.Addr) {
	here, _ := selectFIPs(in)
	for _, h := range here {
		if !slices.Contains(routerIDs, h.router.ID) {
			routerIDs = append(routerIDs, h.router.ID)
		}
		floatingIPs = append(floatingIPs, h.fip.Address)
	}
	slices.Sort(routerIDs)
	slices.SortFunc(floatingIPs, netip.Addr.Compare)
	return routerIDs, floatingIPs
}

// selectFIPs picks the floating IPs this host serves, in id order: associated, with this
// host's Host, of a distributed router whose gateway is on the floating IP's network, both
// addresses IPv4, on a network where this host has a usable fg- port (otherwise a
// Problem). A floating IP whose router has no gateway (or another one), or is not
// distributed, is skipped without a Problem: validation already refuses the former, and
// the latter is served by the router's own namespace on the network node, not here.
func selectFIPs(in FIPInput) ([]fipHere, []northbound.Problem) {
	if in.Host == "" {
		return nil, nil
	}
	routers := map[string]*northbound.Router{}
	for i := range in.Routers {
		if _, dup := routers[in.Routers[i].ID]; !dup {
			routers[in.Routers[i].ID] = &in.Routers[i]
		}
	}
	// The fg- port of each network: the lowest port id, should there be several.
	fgPorts := map[string]*state.Port{}
	for i := range in.LocalPorts {
		p := &in.LocalPorts[i]
		if p.DeviceOwner != northbound.OwnerFloatingIPAgentGateway || p.ID == "" {
			continue
		}
		if cur, ok := fgPorts[p.NetworkID]; !ok || p.ID < cur.ID {
			fgPorts[p.NetworkID] = p
		}
	}
	subnets := map[string]state.Subnet{}
	for _, s := range in.Subnets {
		subnets[s.ID] = s
	}
	mtus := map[string]int{}
	for _, n := range in.Networks {
		mtus[n.ID] = n.MTU
	}

	var problems []northbound.Problem
	gateways := map[string]*fipGatewayInfo{}
	badGateway := map[string]bool{}
	seen := map[netip.Addr]bool{}
	var here []fipHere
	for _, f := range slices.SortedFunc(slices.Values(in.FloatingIPs), func(a, b northbound.FloatingIP) int {
		return cmp.Compare(a.ID, b.ID)
	}) {
		if !f.Associated() || f.Host != in.Host {
			continue
		}
		r := routers[f.RouterID]
		if r == nil || !r.Distributed || r.Gateway == nil || r.Gateway.NetworkID != f.NetworkID {
			continue
		}
		if !f.Address.Is4() || !f.FixedIP.Is4() || seen[f.Address] {
			continue // validation refuses these
		}
		gw := gateways[f.NetworkID]
		if gw == nil && !badGateway[f.NetworkID] {
			p := fgPorts[f.NetworkID]
			if p == nil {
				problems = append(problems, northbound.Problem{Kind: northbound.KindFloatingIP, ID: f.ID, Field: "port_id",
					Reason: fmt.Sprintf("port %s is on this host (%s), which has no %s (fg-) port on network %s",
						f.PortID, in.Host, northbound.OwnerFloatingIPAgentGateway, f.NetworkID)})
				continue
			}
			var err error
			if gw, err = fipGateway(p, subnets, mtus[p.NetworkID]); err != nil {
				badGateway[f.NetworkID] = true
				problems = append(problems, northbound.Problem{Kind: northbound.KindPort, ID: p.ID, Field: "fixed_ips",
					Reason: err.Error() + "; the floating IPs of network " + f.NetworkID + " are not served here"})
			} else {
				gateways[f.NetworkID] = gw
			}
		}
		if gw == nil {
			continue
		}
		seen[f.Address] = true
		here = append(here, fipHere{fip: f, router: r, gw: gw})
	}
	return here, problems
}

// fipGateway builds a network's fg- device from its floatingip_agent_gateway port. It fails
// when the port has no IPv4 address on a known subnet (Neutron skips a gateway port without
// subnets).
func fipGateway(p *state.Port, subnets map[string]state.Subnet, mtu int) (*fipGatewayInfo, error) {
	dev := FIPGatewayDeviceName(p.ID)
	g := &fipGatewayInfo{gateway: FIPGateway{
		PortID: p.ID, Device: dev, MAC: cloneMAC(p.MAC), MTU: mtu, ProxyARP: true, ProxyDelay: fipGatewayProxyDelay,
	}}
	if len(p.MAC) == 0 {
		return nil, fmt.Errorf("floating IP agent gateway port %s has no MAC", p.ID)
	}
	own := map[string]bool{} // the subnets fg- has an address on
	var v4, v6 netip.Addr
	for _, ip := range p.FixedIPs {
		s, ok := subnets[ip.SubnetID]
		if !ok || !ip.IP.IsValid() || !s.CIDR.Contains(ip.IP) {
			continue
		}
		if pfx := netip.PrefixFrom(ip.IP, s.CIDR.Bits()); !slices.Contains(g.gateway.Addrs, pfx) {
			g.gateway.Addrs = append(g.gateway.Addrs, pfx)
		}
		if own[s.ID] {
			continue
		}
		own[s.ID] = true
		gwIP := s.GatewayIP
		if !gwIP.IsValid() || gwIP.Is4() != s.CIDR.Addr().Is4() {
			continue
		}
		// Neutron's _update_gateway_route: a gateway outside its subnet gets an on-link
		// route first.
		if !s.CIDR.Contains(gwIP) {
			g.routes = append(g.routes, FIPRoute{Table: MainRouteTable, Dst: netip.PrefixFrom(gwIP, gwIP.BitLen()), Device: dev})
		}
		// One default route per IP version: Neutron replaces it for each subnet in the
		// server's order; here the first of the port's fixed IPs wins.
		if gwIP.Is4() && !v4.IsValid() {
			v4 = gwIP
		} else if gwIP.Is6() && !v6.IsValid() {
			v6 = gwIP
		}
	}
	if !slices.ContainsFunc(g.gateway.Addrs, func(a netip.Prefix) bool { return a.Addr().Is4() }) {
		return nil, fmt.Errorf("floating IP agent gateway port %s has no IPv4 address on a known subnet of network %s", p.ID, p.NetworkID)
	}
	slices.SortFunc(g.gateway.Addrs, comparePrefix)
	for _, a := range []netip.Addr{v4, v6} {
		if a.IsValid() {
			g.defaults = append(g.defaults, a)
		}
	}
	// The network's other subnets are on-link (the port's extra_subnets).
	for _, s := range subnets {
		if s.NetworkID == p.NetworkID && !own[s.ID] && s.CIDR.IsValid() {
			g.routes = append(g.routes, FIPRoute{Table: MainRouteTable, Dst: s.CIDR.Masked(), Device: dev})
		}
	}
	return g, nil
}

// DesiredFIP returns what this host must hold for its floating IPs (see FIPState), from the
// floating IPs selectFIPs picks: a fip- namespace per external network, and per router a
// veth pair with its pair of in.LinkLocal, routes, a rule per floating IP at its priority of
// in.Priorities, and the NAT. A router without a valid pair, or a floating IP without a
// priority in the pool's range, is left out with a Problem (the allocators' error says
// why). A router without a gateway has nothing here and no Problem. Pure; the result shares
// no memory with in.
func DesiredFIP(in FIPInput) FIPState {
	here, problems := selectFIPs(in)
	held := map[netip.Addr]bool{}
	for _, a := range in.Held {
		held[a] = true
	}

	var out FIPState
	namespaces := map[string]*FIPNamespace{}
	routers := map[string]*RouterFIP{}
	noPair := map[string]bool{}
	for _, h := range here {
		f, r := h.fip, h.router
		pair, ok := in.LinkLocal[r.ID]
		if !ok || !pair.IsValid() {
			if !noPair[r.ID] {
				noPair[r.ID] = true
				problems = append(problems, northbound.Problem{Kind: northbound.KindRouter, ID: r.ID,
					Reason: fmt.Sprintf("no link-local pair from %s allocated: its floating IPs are not served here", LinkLocalPool)})
			}
			continue
		}
		prio, ok := in.Priorities[f.Address]
		if !ok || prio < FIPRulePriorityStart || prio >= FIPRulePriorityEnd {
			problems = append(problems, northbound.Problem{Kind: northbound.KindFloatingIP, ID: f.ID,
				Reason: fmt.Sprintf("no rule priority (%d-%d) allocated: not served here", FIPRulePriorityStart, FIPRulePriorityEnd-1)})
			continue
		}

		ns := namespaces[f.NetworkID]
		if ns == nil {
			ns = &FIPNamespace{NetworkID: f.NetworkID, Name: FIPNamespaceName(f.NetworkID), Gateway: h.gw.gateway,
				Routes: slices.Clone(h.gw.routes)}
			ns.Gateway.MAC = cloneMAC(ns.Gateway.MAC)
			ns.Gateway.Addrs = slices.Clone(ns.Gateway.Addrs)
			namespaces[f.NetworkID] = ns
		}
		rf := routers[r.ID]
		if rf == nil {
			rf = newRouterFIP(r.ID, ns, pair, h.gw)
			routers[r.ID] = rf
			ns.Links = append(ns.Links, r.ID)
			ns.Rules = append(ns.Rules, FIPRouterRule{RouterID: r.ID, IIF: rf.Link.FIPDevice, Table: pair.FIPTable(), Priority: pair.FIPTable()})
			for _, gw := range h.gw.defaults {
				ns.Routes = append(ns.Routes, FIPRoute{Table: pair.FIPTable(), Dst: netip.PrefixFrom(gw, 0).Masked(), Via: gw, Device: h.gw.gateway.Device})
			}
		}

		ns.Routes = append(ns.Routes, FIPRoute{Table: MainRouteTable, Dst: netip.PrefixFrom(f.Address, 32),
			Via: rf.Link.RouterAddr.Addr(), Device: rf.Link.FIPDevice})
		rf.Rules = append(rf.Rules, FloatingIPRule{FloatingIPID: f.ID, FloatingIP: f.Address, FixedIP: f.FixedIP,
			Priority: prio, Table: FIPRouteTable})
		object := "floatingip " + f.ID
		rf.NAT.DNAT = append(rf.NAT.DNAT, nat.DNAT{Object: object, Destination: f.Address, InDevice: rf.Link.RouterDevice, To: f.FixedIP})
		rf.NAT.SNAT = append(rf.NAT.SNAT, nat.SNAT{Object: object, Source: netip.PrefixFrom(f.FixedIP, 32), OutDevice: rf.Link.RouterDevice, To: f.Address})
		if !held[f.Address] {
			out.Announce = append(out.Announce, GratuitousARP{FloatingIPID: f.ID, Address: f.Address, Namespace: ns.Name, Device: ns.Gateway.Device})
		}
	}

	for _, ns := range namespaces {
		slices.Sort(ns.Links)
		slices.SortFunc(ns.Routes, compareFIPRoute)
		ns.Routes = slices.Compact(ns.Routes)
		slices.SortFunc(ns.Rules, func(a, b FIPRouterRule) int {
			return cmp.Or(cmp.Compare(a.Priority, b.Priority), cmp.Compare(a.RouterID, b.RouterID))
		})
		out.Namespaces = append(out.Namespaces, *ns)
	}
	slices.SortFunc(out.Namespaces, func(a, b FIPNamespace) int { return cmp.Compare(a.NetworkID, b.NetworkID) })
	for _, rf := range routers {
		slices.SortFunc(rf.Rules, func(a, b FloatingIPRule) int {
			return cmp.Or(cmp.Compare(a.Priority, b.Priority), a.FloatingIP.Compare(b.FloatingIP))
		})
		slices.SortFunc(rf.NAT.DNAT, func(a, b nat.DNAT) int { return a.Destination.Compare(b.Destination) })
		slices.SortFunc(rf.NAT.SNAT, func(a, b nat.SNAT) int { return a.To.Compare(b.To) })
		out.Routers = append(out.Routers, *rf)
	}
	slices.SortFunc(out.Routers, func(a, b RouterFIP) int { return cmp.Compare(a.RouterID, b.RouterID) })
	slices.SortFunc(out.Announce, func(a, b GratuitousARP) int { return a.Address.Compare(b.Address) })
	slices.SortFunc(problems, func(a, b northbound.Problem) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.ID, b.ID), cmp.Compare(a.Field, b.Field))
	})
	out.Problems = problems
	return out
}

// newRouterFIP starts a router's floating IP state: its link to ns and qrouter-'s table 16.
func newRouterFIP(routerID string, ns *FIPNamespace, pair LinkLocalPair, gw *fipGatewayInfo) *RouterFIP {
	link := RouterFIPLink{
		Pair:         pair,
		RouterDevice: RouterToFIPDeviceName(routerID),
		RouterAddr:   pair.RouterEnd(),
		FIPNamespace: ns.Name,
		FIPDevice:    FIPToRouterDeviceName(routerID),
		FIPAddr:      pair.FIPEnd(),
		MTU:          gw.gateway.MTU,
	}
	return &RouterFIP{
		RouterID:  routerID,
		Namespace: NamespaceName(routerID),
		NetworkID: ns.NetworkID,
		Link:      link,
		Routes: []FIPRoute{{Table: FIPRouteTable, Dst: netip.PrefixFrom(netip.IPv4Unspecified(), 0),
			Via: link.FIPAddr.Addr(), Device: link.RouterDevice}},
	}
}

func compareFIPRoute(a, b FIPRoute) int {
	return cmp.Or(cmp.Compare(a.Table, b.Table), comparePrefix(a.Dst, b.Dst), a.Via.Compare(b.Via), cmp.Compare(a.Device, b.Device))
}

// fipNamespaceSysctls are what Neutron sets in a fip- namespace: Namespace.create's settings
// (those of a router namespace) and ip_nonlocal_bind (FipNamespace.create).
var fipNamespaceSysctls = append(slices.Clone(routerSysctls), sysctl{path: "net/ipv4/ip_nonlocal_bind", value: "1"})

// fipGatewaySysctls are the fg- device's settings (FipNamespace._create_gateway_port).
func fipGatewaySysctls(g FIPGateway) []sysctl {
	var out []sysctl
	if g.ProxyDelay > 0 {
		// The kernel keeps proxy_delay in jiffies and shows it in USER_HZ ticks rounded
		// down: with HZ=250, 1 (10 ms, two jiffies) reads back as 0. Any value up to the
		// one written is what was asked for (the default is 80).
		var same []string
		for v := range g.ProxyDelay {
			same = append(same, fmt.Sprint(v))
		}
		out = append(out, sysctl{path: "net/ipv4/neigh/" + g.Device + "/proxy_delay", value: fmt.Sprint(g.ProxyDelay), same: same})
	}
	if g.ProxyARP {
		out = append(out, sysctl{path: "net/ipv4/conf/" + g.Device + "/proxy_arp", value: "1"})
	}
	return out
}
