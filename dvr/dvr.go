// Package dvr generates the flows of Neutron's Distributed Virtual Routing on br-int, the
// physical bridges and br-tun (neutron-pipeline.md §2.9). Pure: state in, flows out.
//
// The flows are Neutron 21's, derived from the node's state rather than from a history of
// binds and unbinds, with the deliberate differences listed in NeutronDifferences (and in
// docs/neutron-differences.md).
package dvr

import (
	"net"
	"net/netip"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// Priorities of the DVR flows (neutron-pipeline.md §2.9, §2.12).
const (
	prioIntARPReplyToGateway = 99 // I33, br-int table 0
	prioIntToOwnDVRMAC       = 5  // I28/I29 (table 0), I32 (tables 3/4)
	prioIntFromPhysDVRMAC    = 4  // I26
	prioIntFromTunDVRMAC     = 2  // I27
	prioIntPhysPatchDrop     = 2  // I14: frames of unprovisioned VLANs from the physical bridge
	prioIntDrop              = 1  // I24, I25
	prioIntToServicedPort    = 20 // I30 (tables 1/2), I31 (table 60)

	// Table 1 of br-tun and of the physical bridges (DVR_PROCESS).
	prioProcessGatewayDrop = 3 // ours on physical bridges: ARP for the gateway IP, the router's RAs
	prioProcessToRouter    = 2 // T21/P10
	prioProcessFromRouter  = 1 // T22/P11
	prioTunGatewayDrop     = 3 // T23/T24, br-tun table 22

	prioPhysFromIntegration = 2 // P4
	prioPhysInbound         = 1 // P5
	prioPhysUnprovisioned   = 2 // P7, table 2
	prioPhysFromDVRMAC      = 2 // P9, table 3
	prioPhysNormal          = 1 // P8, table 3
	prioTunFromIntegration  = 1 // T17
	prioTunFromDVRMAC       = 1 // T20, table 9

	icmpv6RouterAdvertisement = 134
	arpReply                  = 2
)

// Generate appends the DVR flows of the node to out (bridge name → flows): the DVR baseline
// (§2.9.1), the flows of every DVR MAC (§2.9.2) and of every local router interface,
// DVR-serviced port and centralized SNAT port (§2.9.3). It emits nothing unless the node is
// in DVR mode (Host.DVR).
//
// Where the state offers several candidates for one flow, the generator picks one and emits
// only that: of two router interfaces on one network the first (port order, that is ofport)
// owns the network's I32, and a port routed on two subnets of its network gets I30/I31 for
// its first routed fixed IP. Flows that repeat another generator's (table, priority, match)
// — I1 and I14 of l2, T1 of tunnels — are emitted as Neutron's DVR code installs them; which
// one the bridge keeps is decided by pipeline.Compose alone (the later generator: DVR's).
func Generate(n *state.Node, out map[string][]flows.Flow) {
	if !n.Host.DVR() {
		return
	}
	h := &n.Host
	g := &generator{n: n,
		networks: make(map[string]*state.Network, len(n.Networks)), subnets: make(map[string]*state.Subnet, len(n.Subnets)),
		gatewayActions: map[string][]flows.Action{}, ownedDstMAC: map[string]bool{}, ownedGateway: map[string]bool{}}
	for i := range n.Networks {
		if _, dup := g.networks[n.Networks[i].ID]; !dup { // the first, as Node.Network
			g.networks[n.Networks[i].ID] = &n.Networks[i]
		}
	}
	for i := range n.Subnets {
		if _, dup := g.subnets[n.Subnets[i].ID]; !dup {
			g.subnets[n.Subnets[i].ID] = &n.Subnets[i]
		}
	}
	lists := bridgeLists{out: out, lists: map[string]*[]flows.Flow{}}
	g.integ = flows.IntTarget(lists.of(h.IntegrationBridge))
	if h.Tunnelling() {
		g.tun = flows.TunTarget(lists.of(h.TunnelBridge))
	}
	g.phys = make(map[string]flows.Target[flows.PhysTable], len(h.Physical))
	for _, p := range h.Physical {
		g.phys[p.Bridge] = flows.PhysTarget(lists.of(p.Bridge))
	}
	g.baseline()
	g.dvrMACs()
	g.ports()
	lists.writeBack()
}

// bridgeLists lends the generator the flow lists of out's bridges by pointer (map entries
// are not addressable) and puts them back when it is done.
type bridgeLists struct {
	out   map[string][]flows.Flow
	lists map[string]*[]flows.Flow
}

// of returns bridge br's list.
func (b bridgeLists) of(br string) *[]flows.Flow {
	l, ok := b.lists[br]
	if !ok {
		l = new([]flows.Flow)
		*l = b.out[br]
		b.lists[br] = l
	}
	return l
}

// writeBack stores every list in out; a bridge out did not have gets an entry only if it
// got flows.
func (b bridgeLists) writeBack() {
	for br, l := range b.lists {
		if _, ok := b.out[br]; ok || len(*l) > 0 {
			b.out[br] = *l
		}
	}
}

type generator struct {
	n *state.Node
	// integ, tun and phys (by bridge name) are where the flows of the node's bridges go;
	// tun is set only when the node tunnels.
	integ flows.Target[flows.IntTable]
	tun   flows.Target[flows.TunTable]
	phys  map[string]flows.Target[flows.PhysTable]
	// networks and subnets index the node's by id.
	networks map[string]*state.Network
	subnets  map[string]*state.Subnet
	// gatewayActions holds I30's actions by gateway MAC (fromGateway).
	gatewayActions map[string][]flows.Action
	// ownedDstMAC holds the networks whose I32 a router interface already owns, and
	// ownedGateway the gateway MACs whose I33 one does.
	ownedDstMAC  map[string]bool
	ownedGateway map[string]bool
}

// baseline is Neutron's setup_dvr_flows (§2.9.1): I1, I24, I25, I14 on br-int, P4–P8 on
// every physical bridge, T17–T19 on br-tun.
func (g *generator) baseline() {
	h := &g.n.Host
	c := flows.Cookie(flows.CategoryBaseline, h.IntegrationBridge)
	g.integ.Add(
		flows.IntFlow{Table: flows.IntCanary, Priority: 0, Cookie: c},
		flows.IntFlow{Table: flows.IntDVRToSrcMAC, Priority: prioIntDrop, Cookie: c},
		flows.IntFlow{Table: flows.IntDVRToSrcMACPhysical, Priority: prioIntDrop, Cookie: c})
	for _, p := range h.Physical {
		if p.IntPort != 0 {
			g.integ.Add(flows.IntFlow{Table: flows.IntLocalSwitching, Priority: prioIntPhysPatchDrop, Cookie: c,
				Match: flows.Match{}.InPort(p.IntPort)})
		}
		phys := g.phys[p.Bridge]
		pc := flows.Cookie(flows.CategoryBaseline, p.Bridge)
		if p.PhyPort != 0 {
			phys.Add(flows.PhysFlow{Table: flows.PhysLocalSwitching, Priority: prioPhysFromIntegration, Cookie: pc,
				Match: flows.Match{}.InPort(p.PhyPort), Actions: []flows.Action{flows.Goto(flows.PhysDVRProcess)}})
		}
		phys.Add(
			flows.PhysFlow{Table: flows.PhysLocalSwitching, Priority: prioPhysInbound, Cookie: pc,
				Actions: []flows.Action{flows.Goto(flows.PhysDVRNotLearn)}},
			flows.PhysFlow{Table: flows.PhysDVRProcess, Priority: 0, Cookie: pc,
				Actions: []flows.Action{flows.Goto(flows.PhysLocalVLANTranslation)}})
		if p.PhyPort != 0 {
			phys.Add(flows.PhysFlow{Table: flows.PhysLocalVLANTranslation, Priority: prioPhysUnprovisioned, Cookie: pc,
				Match: flows.Match{}.InPort(p.PhyPort)})
		}
		phys.Add(flows.PhysFlow{Table: flows.PhysDVRNotLearn, Priority: prioPhysNormal, Cookie: pc,
			Actions: []flows.Action{flows.Normal()}})
	}
	if !h.Tunnelling() {
		return
	}
	tc := flows.Cookie(flows.CategoryBaseline, h.TunnelBridge)
	if h.PatchInt != 0 {
		g.tun.Add(flows.TunFlow{Table: flows.TunLocalSwitching, Priority: prioTunFromIntegration, Cookie: tc,
			Match: flows.Match{}.InPort(h.PatchInt), Actions: []flows.Action{flows.Goto(flows.TunDVRProcess)}})
	}
	g.tun.Add(
		flows.TunFlow{Table: flows.TunDVRNotLearn, Priority: 0, Cookie: tc, Actions: []flows.Action{flows.Goto(flows.TunLearnFromTun)}},
		flows.TunFlow{Table: flows.TunDVRProcess, Priority: 0, Cookie: tc, Actions: []flows.Action{flows.Goto(flows.TunPatchLVToTun)}})
}

// dvrMACs is Neutron's setup_dvr_mac_flows_on_all_brs (§2.9.2): frames to this host's DVR
// MAC go to tables 4/3 (I28, I29); frames from another host's DVR MAC skip learning on the
// physical bridge and br-tun (P9, T20) and go to tables 2/1 on br-int (I26, I27).
func (g *generator) dvrMACs() {
	h := &g.n.Host
	own := h.DVRMAC
	oc := flows.Cookie(flows.CategoryDVRMAC, own.String())
	for _, p := range h.Physical {
		if p.IntPort != 0 {
			g.integ.Add(flows.IntFlow{Table: flows.IntLocalSwitching, Priority: prioIntToOwnDVRMAC, Cookie: oc,
				Match:   flows.Match{}.InPort(p.IntPort).EthDst(own),
				Actions: []flows.Action{flows.Goto(flows.IntARPDVRMACToDstMACPhysical)}})
		}
	}
	tunnelling := h.Tunnelling()
	if tunnelling && h.PatchTun != 0 {
		g.integ.Add(flows.IntFlow{Table: flows.IntLocalSwitching, Priority: prioIntToOwnDVRMAC, Cookie: oc,
			Match:   flows.Match{}.InPort(h.PatchTun).EthDst(own),
			Actions: []flows.Action{flows.Goto(flows.IntARPDVRMACToDstMAC)}})
	}
	for _, r := range g.n.RemoteHosts {
		mac := r.DVRMAC
		if mac == nil || mac.String() == own.String() {
			continue
		}
		c := flows.Cookie(flows.CategoryDVRMAC, mac.String())
		for _, p := range h.Physical {
			if p.IntPort != 0 {
				g.integ.Add(flows.IntFlow{Table: flows.IntLocalSwitching, Priority: prioIntFromPhysDVRMAC, Cookie: c,
					Match:   flows.Match{}.InPort(p.IntPort).EthSrc(mac),
					Actions: []flows.Action{flows.Goto(flows.IntDVRToSrcMACPhysical)}})
			}
			if p.PhyPort != 0 {
				g.phys[p.Bridge].Add(flows.PhysFlow{Table: flows.PhysDVRNotLearn, Priority: prioPhysFromDVRMAC, Cookie: c,
					Match: flows.Match{}.EthSrc(mac), Actions: []flows.Action{flows.Output{Port: p.PhyPort}}})
			}
		}
		if !tunnelling {
			continue
		}
		if h.PatchTun != 0 {
			g.integ.Add(flows.IntFlow{Table: flows.IntLocalSwitching, Priority: prioIntFromTunDVRMAC, Cookie: c,
				Match:   flows.Match{}.InPort(h.PatchTun).EthSrc(mac),
				Actions: []flows.Action{flows.Goto(flows.IntDVRToSrcMAC)}})
		}
		if h.PatchInt != 0 {
			g.tun.Add(flows.TunFlow{Table: flows.TunDVRNotLearn, Priority: prioTunFromDVRMAC, Cookie: c,
				Match: flows.Match{}.EthSrc(mac), Actions: []flows.Action{flows.Output{Port: h.PatchInt}}})
		}
	}
}

// routedSubnet is a subnet with a local distributed router interface (Neutron's dvr_owned
// local_dvr_map entry).
type routedSubnet struct {
	net   *state.Network
	gwMAC net.HardwareAddr
}

// ports is Neutron's bind_port_to_dvr for every port of the node (§2.9.3): router
// interfaces first (they decide which subnets are routed here), then centralized SNAT ports
// and DVR-serviced ports.
func (g *generator) ports() {
	routed := map[string]routedSubnet{}
	for i := range g.n.Ports {
		p := &g.n.Ports[i]
		if !p.IsDistributedRouterInterface() || !g.bindable(p) {
			continue
		}
		if r, ok := g.routerInterface(p); ok {
			if _, dup := routed[p.FixedIPs[0].SubnetID]; !dup {
				routed[p.FixedIPs[0].SubnetID] = r
			}
		}
	}
	for i := range g.n.Ports {
		p := &g.n.Ports[i]
		if !g.bindable(p) {
			continue
		}
		switch {
		case p.IsCentralizedSNAT():
			// Neutron binds an sg- port on its first subnet, routed here or not.
			s, ok := g.subnets[p.FixedIPs[0].SubnetID]
			if !ok {
				continue
			}
			gw := s.GatewayMAC
			if gw == nil {
				gw = routed[s.ID].gwMAC
			}
			if gw != nil {
				g.toServicedPort(g.network(p), p, gw)
			}
		case p.IsDVRServiced():
			// I30/I31 match the port's MAC, not the subnet: the first routed fixed IP
			// chooses the gateway MAC.
			for _, ip := range p.FixedIPs {
				if r, ok := routed[ip.SubnetID]; ok && r.net.ID == p.NetworkID {
					g.toServicedPort(r.net, p, r.gwMAC)
					break
				}
			}
		}
	}
}

// bindable reports whether Neutron's DVR agent would bind the port: alive, with an ofport
// and a fixed IP, on a provisioned network of a type DVR serves whose bridge exists here.
func (g *generator) bindable(p *state.Port) bool {
	if p.Dead || p.OFPort == 0 || len(p.FixedIPs) == 0 {
		return false
	}
	nw := g.network(p)
	if nw == nil {
		return false
	}
	_, ok := g.processBridge(nw)
	return ok
}

func (g *generator) network(p *state.Port) *state.Network { return g.networks[p.NetworkID] }

// processBridge is the bridge that carries the network off the host: br-tun for tunnel
// networks, the physnet's bridge for vlan and flat networks.
func (g *generator) processBridge(nw *state.Network) (string, bool) {
	switch {
	case nw.Tunnelled():
		return g.n.Host.TunnelBridge, g.n.Host.Tunnelling()
	case nw.Type == northbound.VLAN || nw.Type == northbound.Flat:
		p, ok := g.n.Host.PhysicalFor(nw.Physnet)
		return p.Bridge, ok
	}
	return "", false
}

// routerInterface emits the flows of a local distributed router interface (Neutron's
// _bind_distributed_router_interface_port, on the subnet of its first fixed IP): I32, I33,
// T21/T22 (P10/P11), T23/T24, and on physical bridges our table-1 gateway drops.
func (g *generator) routerInterface(qr *state.Port) (routedSubnet, bool) {
	fip := qr.FixedIPs[0]
	s, ok := g.subnets[fip.SubnetID]
	if !ok {
		return routedSubnet{}, false
	}
	nw := g.network(qr)
	h := &g.n.Host
	// Neutron's gateway_mac comes from get_subnet_for_dvr with the qr port's fixed IP, so it
	// is the qr port's MAC whenever the subnet does not say otherwise.
	gw := s.GatewayMAC
	if gw == nil {
		gw = qr.MAC
	}
	ipv4 := s.IPVersion == 4 || (s.IPVersion == 0 && s.CIDR.Addr().Is4())
	c := flows.Cookie(flows.CategoryDVRRouterPort, qr.ID)
	localVLAN := flows.Match{}.VLAN(nw.LocalVLAN)

	// I32: unicast to this host's DVR MAC → the router port (always matched on the local
	// VLAN, so one per network: the network's first router interface owns it).
	if !g.ownedDstMAC[nw.ID] {
		g.ownedDstMAC[nw.ID] = true
		toDst := flows.IntARPDVRMACToDstMACPhysical
		if nw.Tunnelled() {
			toDst = flows.IntARPDVRMACToDstMAC
		}
		g.integ.Add(flows.IntFlow{Table: toDst, Priority: prioIntToOwnDVRMAC, Cookie: c,
			Match:   localVLAN.EthDst(h.DVRMAC),
			Actions: []flows.Action{flows.SetEthDst(qr.MAC), flows.PopVLAN{}, flows.Output{Port: qr.OFPort}}})
	}
	// I33: ARP replies to the DVR MAC for the gateway MAC → the router (IPv4 only; one per
	// gateway MAC: the first router interface behind it owns it).
	if ipv4 && !g.ownedGateway[string(gw)] {
		g.ownedGateway[string(gw)] = true
		g.integ.Add(flows.IntFlow{Table: flows.IntLocalSwitching, Priority: prioIntARPReplyToGateway, Cookie: c,
			Match:   flows.Match{}.ARP().ARPOp(arpReply).EthDst(h.DVRMAC).ARPTHA(gw),
			Actions: []flows.Action{flows.SetEthDst(gw), flows.Goto(flows.IntPacketRateLimit)}})
	}

	process := routerProcess{qr: qr, cookie: c, localVLAN: nw.LocalVLAN, dvrMAC: h.DVRMAC}
	switch {
	case ipv4 && s.GatewayIP.IsValid() && fip.IP.Is4():
		process.gatewayDrop = flows.Match{}.ARP().VLAN(nw.LocalVLAN).ARPTPA(netip.PrefixFrom(fip.IP, 32))
	case !ipv4:
		process.gatewayDrop = flows.Match{}.ICMPv6().ICMPType(icmpv6RouterAdvertisement).VLAN(nw.LocalVLAN).EthSrc(qr.MAC)
	}
	// br-tun drops the gateway's ARP and RAs in table 22, after the ARP responder, as
	// Neutron does. On physical bridges Neutron's copies in table 22 are never reached; ours
	// sit in table 1 above P11.
	if nw.Tunnelled() {
		addRouterProcess(g.tun, process, flows.TunDVRProcess, flows.TunPatchLVToTun, flows.TunFloodToTun, prioTunGatewayDrop)
	} else {
		br, _ := g.processBridge(nw)
		addRouterProcess(g.phys[br], process, flows.PhysDVRProcess, flows.PhysLocalVLANTranslation, flows.PhysDVRProcess, prioProcessGatewayDrop)
	}
	return routedSubnet{net: nw, gwMAC: gw}, true
}

// routerProcess is what a router interface's flows on the bridge that carries its network
// off the host depend on.
type routerProcess struct {
	qr        *state.Port
	cookie    uint64
	localVLAN uint16
	dvrMAC    net.HardwareAddr
	// gatewayDrop matches the ARP for the gateway IP or the router's RAs; zero: none.
	gatewayDrop flows.Match
}

// addRouterProcess adds a router interface's flows to br-tun or a physical bridge, the same
// flows in each kind's tables: T21/P10 (frames to the router stay on this host) and T22/P11
// (the router's frames leave with this host's DVR MAC) in table process, continuing in
// table next; T23/T24 (the gateway's ARP and RAs do not leave the host) in table drop.
func addRouterProcess[T flows.BridgeTable](b flows.Target[T], r routerProcess, process, next, drop T, dropPrio uint16) {
	localVLAN := flows.Match{}.VLAN(r.localVLAN)
	b.Add(
		flows.TableFlow[T]{Table: process, Priority: prioProcessToRouter, Cookie: r.cookie,
			Match: localVLAN.EthDst(r.qr.MAC)},
		flows.TableFlow[T]{Table: process, Priority: prioProcessFromRouter, Cookie: r.cookie,
			Match:   localVLAN.EthSrc(r.qr.MAC),
			Actions: []flows.Action{flows.SetEthSrc(r.dvrMAC), flows.Goto(next)}})
	if !r.gatewayDrop.IsZero() {
		b.Add(flows.TableFlow[T]{Table: drop, Priority: dropPrio, Cookie: r.cookie, Match: r.gatewayDrop})
	}
}

// fromGateway returns I30's actions for gateway MAC gw: the same list for every port
// behind that gateway.
func (g *generator) fromGateway(gw net.HardwareAddr) []flows.Action {
	acts, ok := g.gatewayActions[string(gw)]
	if !ok {
		acts = []flows.Action{flows.SetEthSrc(gw), flows.Goto(flows.IntPacketRateLimit)}
		g.gatewayActions[string(gw)] = acts
	}
	return acts
}

// toServicedPort emits I30 and I31 for a port that DVR delivers to directly: frames routed
// by another host's router arrive from its DVR MAC, get the gateway MAC as source and go
// straight to the port. The match is on the VLAN they arrive with (Neutron's vlan_to_use):
// the local VLAN for tunnel networks, the provider VLAN for vlan networks, none for flat.
func (g *generator) toServicedPort(nw *state.Network, p *state.Port, gw net.HardwareAddr) {
	var m flows.Match
	var deliver []flows.Action
	switch nw.Type {
	case northbound.VLAN:
		m, deliver = flows.Match{}.VLAN(uint16(nw.SegmentationID)), []flows.Action{flows.PopVLAN{}}
	case northbound.Flat:
		m = flows.Match{}.Untagged()
	default:
		m, deliver = flows.Match{}.VLAN(nw.LocalVLAN), []flows.Action{flows.PopVLAN{}}
	}
	m = m.EthDst(p.MAC)
	table := flows.IntDVRToSrcMACPhysical
	if nw.Tunnelled() {
		table = flows.IntDVRToSrcMAC
	}
	c := flows.Cookie(flows.CategoryDVRServicedPort, p.ID)
	g.integ.Add(flows.IntFlow{Table: table, Priority: prioIntToServicedPort, Cookie: c, Match: m,
		Actions: g.fromGateway(gw)})
	if g.n.Host.Filters(p) {
		// The firewall's ingress hook has this match at priority 90: routed frames enter the
		// port's firewall, and I31 would never be hit. Neutron's firewall deletes it too (its
		// delete_all_port_flows removes every table-60 flow with the port's dl_vlan and
		// dl_dst when it sets the port's filter up).
		return
	}
	g.integ.Add(flows.IntFlow{Table: flows.IntTransient, Priority: prioIntToServicedPort, Cookie: c, Match: m,
		Actions: append(deliver, flows.Output{Port: p.OFPort})})
}
