package namespace

// The apply side of the floating IPs (see fip.go for what is wanted and why): Manager.Apply
// builds the fip- namespaces, the rfp-/fpr- pairs, their rules, routes and NAT from a
// FIPState and queues the gratuitous ARPs, which Announce sends once the fg- port carries
// traffic; HeldFloatingIPs reads back which floating IPs this host routes.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/dvrflow/dvrflow/dvr/nat"
)

const (
	// garpRounds and garpInterval are Neutron's send_ip_addr_adv_notif defaults: three
	// rounds (send_arp_for_ha = 3), each a gratuitous ARP request and reply, 2 s apart
	// (ARPING_SLEEP: spread out, since some kernels ignore updates that come too fast).
	garpRounds   = 3
	garpInterval = 2 * time.Second
)

// fipNSPlan is a valid fip- namespace with its rules and routes in the manager's terms.
type fipNSPlan struct {
	ns     FIPNamespace
	rules  []Rule
	routes []Route
}

// routerFIPPlan is a router's valid floating IP state with its qrouter- rules and routes.
type routerFIPPlan struct {
	fip    RouterFIP
	rules  []Rule
	routes []Route
}

// gatewayInterface is the fg- device as a plugged interface.
func (g FIPGateway) gatewayInterface() Interface {
	return Interface{PortID: g.PortID, MAC: g.MAC, Addrs: g.Addrs, MTU: g.MTU}
}

func routeOf(r FIPRoute) Route {
	return normalRoute(Route{Table: r.Table, Dst: r.Dst, Via: r.Via, Device: r.Device})
}

// planFIP validates fip against the routers planned: it fills a.fipNS (and wants their
// namespaces), a.routerFIP and a.keepFIP, and reports what it leaves out. A fip- namespace
// whose fg- port someone else plugged is left alone (logged once).
func (a *apply) planFIP(fip FIPState) {
	defer func() { a.m.foreign = a.nowForeign }()
	planned := map[string]bool{}
	for _, r := range a.routers {
		planned[r.ID] = true
	}
	listed := map[string]bool{}
	fprs := map[string]map[string]string{} // network → fpr- device → router
	for _, ns := range slices.SortedStableFunc(slices.Values(fip.Namespaces), func(x, y FIPNamespace) int {
		return cmp.Compare(x.NetworkID, y.NetworkID)
	}) {
		o := networkOwner(ns.NetworkID)
		fail := func(err error) { a.errs = append(a.errs, fmt.Errorf("%s: %w", o, err)) }
		if !validID.MatchString(ns.NetworkID) {
			fail(fmt.Errorf("invalid id (want %s): no %s namespace", validID, FIPNamespacePrefix))
			continue
		}
		if listed[ns.NetworkID] {
			fail(fmt.Errorf("%s listed twice; the first is used", ns.Name))
			continue
		}
		listed[ns.NetworkID] = true
		g := ns.Gateway
		if ns.Name != FIPNamespaceName(ns.NetworkID) {
			fail(fmt.Errorf("namespace %q, want %s", ns.Name, FIPNamespaceName(ns.NetworkID)))
			continue
		}
		if g.PortID != "" {
			if a.keepFIP[ns.NetworkID] == nil {
				a.keepFIP[ns.NetworkID] = map[string]bool{}
			}
			a.keepFIP[ns.NetworkID][g.PortID] = true
		}
		if err := validInterface(g.gatewayInterface()); err != nil {
			fail(fmt.Errorf("floating IP gateway port %s: %w", g.PortID, err))
			continue
		}
		dev := FIPGatewayDeviceName(g.PortID)
		if g.Device != dev {
			fail(fmt.Errorf("floating IP gateway port %s: device %q, want %s", g.PortID, g.Device, dev))
			continue
		}
		if other, dup := a.devices[dev]; dup {
			fail(fmt.Errorf("floating IP gateway port %s: device name %s already used by port %s", g.PortID, dev, other))
			continue
		}
		a.devices[dev] = g.PortID
		by, foreign := a.foreignIfc[g.PortID]
		if info, exists := a.m.db.Interface(dev); !foreign && exists && !ours(info) {
			by, foreign = info.Name, true
		}
		if foreign {
			delete(a.keepFIP[ns.NetworkID], g.PortID)
			a.nowForeign[g.PortID] = by
			if a.m.foreign[g.PortID] != by {
				a.m.log.Info("floating IP gateway port plugged by someone else: its fip namespace is left alone",
					o.field(), zap.String("port", g.PortID), zap.String("interface", by))
			}
			continue
		}
		p := fipNSPlan{ns: ns}
		var rules []Rule
		for _, r := range ns.Rules {
			rules = append(rules, Rule{From: netip.PrefixFrom(netip.IPv4Unspecified(), 0), IIF: r.IIF, Table: r.Table, Priority: r.Priority})
		}
		var routes []Route
		for _, r := range ns.Routes {
			routes = append(routes, routeOf(r))
		}
		p.rules, p.routes = a.validRouting(o, ns.Name, rules, routes)
		a.wantNS[ns.Name] = true
		a.fipNS = append(a.fipNS, p)
		fprs[ns.NetworkID] = map[string]string{}
	}

	for _, rf := range fip.Routers {
		fail := func(err error) {
			a.errs = append(a.errs, fmt.Errorf("router %s: floating IPs: %w", rf.RouterID, err))
		}
		l := rf.Link
		switch {
		case !planned[rf.RouterID]:
			fail(fmt.Errorf("no %s namespace on this host (no router interface here): none of them is served", NamespacePrefix))
			continue
		case fprs[rf.NetworkID] == nil:
			if !listed[rf.NetworkID] {
				fail(fmt.Errorf("no %s namespace for network %s: none of them is served", FIPNamespacePrefix, rf.NetworkID))
			}
			continue // else the namespace's own error says why
		case a.routerFIP[rf.RouterID].fip.RouterID != "":
			fail(fmt.Errorf("listed twice; the first is used"))
			continue
		case !l.Pair.IsValid() || l.RouterAddr != l.Pair.RouterEnd() || l.FIPAddr != l.Pair.FIPEnd():
			fail(fmt.Errorf("link-local pair %s with addresses %s and %s is not a /31 of %s and its two ends", l.Pair, l.RouterAddr, l.FIPAddr, LinkLocalPool))
			continue
		case l.RouterDevice != RouterToFIPDeviceName(rf.RouterID) || l.FIPDevice != FIPToRouterDeviceName(rf.RouterID) ||
			l.FIPNamespace != FIPNamespaceName(rf.NetworkID) || rf.Namespace != NamespaceName(rf.RouterID):
			fail(fmt.Errorf("link %s/%s to %s does not follow Neutron's names", l.RouterDevice, l.FIPDevice, l.FIPNamespace))
			continue
		case l.MTU < 0 || l.MTU > 65535:
			fail(fmt.Errorf("invalid MTU %d", l.MTU))
			continue
		}
		if other, dup := fprs[rf.NetworkID][l.FIPDevice]; dup {
			fail(fmt.Errorf("device %s in %s is already router %s's (the first 10 characters of the ids are the same)",
				l.FIPDevice, l.FIPNamespace, other))
			continue
		}
		fprs[rf.NetworkID][l.FIPDevice] = rf.RouterID
		var rules []Rule
		for _, r := range rf.Rules {
			if !r.FixedIP.Is4() {
				fail(fmt.Errorf("floating IP %s (%s): fixed IP %s is not IPv4", r.FloatingIPID, r.FloatingIP, r.FixedIP))
				continue
			}
			rules = append(rules, Rule{From: netip.PrefixFrom(r.FixedIP, 32), Table: r.Table, Priority: r.Priority})
		}
		var routes []Route
		for _, r := range rf.Routes {
			routes = append(routes, routeOf(r))
		}
		p := routerFIPPlan{fip: rf}
		p.rules, p.routes = a.validRouting(routerOwner(rf.RouterID), rf.Namespace, rules, routes)
		a.routerFIP[rf.RouterID] = p
	}
}

// ensureFIPNamespace makes a fip- namespace and its fg- device right (Neutron's
// FipNamespace.create and _create_gateway_port): sysctls, a fg- device of ours for another
// port removed, fg- plugged into br-int as a router interface is (external_ids
// dvrflow-fip-network=<network>), proxy_arp and proxy_delay on it. Its routes and rules
// wait for syncFIPNamespace.
func (a *apply) ensureFIPNamespace(p fipNSPlan) {
	net := p.ns.NetworkID
	o := networkOwner(net)
	fail := func(err error) { a.errs = append(a.errs, fmt.Errorf("%s: %w", o, err)) }
	ns, h, ok := a.ensureNamespace(o, p.ns.Name, fipNamespaceSysctls)
	if !ok {
		return
	}
	defer ns.Close()
	defer h.Close()
	g := p.ns.Gateway
	links, err := linkList(h)
	if err != nil {
		fail(fmt.Errorf("namespace %s: list links: %w", p.ns.Name, err))
		return
	}
	for _, l := range links {
		if d, ok := parseDevAlias(l.Attrs().Alias); ok && d.network != "" && (d.network != net || d.port != g.PortID) {
			if err := a.removeDevice(h, l, d); err != nil {
				fail(err)
			}
		}
	}
	err = a.ensurePlugged(ns, h, g.Device, g.gatewayInterface(), gatewayAlias(net, g.PortID), o.field(),
		map[string]string{OwnerKey: OwnerValue, NetworkKey: net})
	if err != nil {
		fail(fmt.Errorf("floating IP gateway port %s: %w", g.PortID, err))
		return
	}
	changed, err := setSysctls(ns, fipGatewaySysctls(g))
	if err != nil {
		fail(fmt.Errorf("namespace %s: %w", p.ns.Name, err))
		return
	}
	if len(changed) > 0 {
		a.changed("router namespace sysctls set", o.field(), zap.String("namespace", p.ns.Name), zap.Strings("sysctls", changed))
	}
	a.fipReady[net] = true
}

// routerFIPs returns what the qrouter- namespace of r must hold with its floating IPs: r's
// rules and routes plus, when its link to the fip- namespace is in place (made here), the
// floating IPs' rules and table 16's route, and the floating IPs' NAT. A router without a
// floating IP served here loses its link.
func (a *apply) routerFIPs(rh *netlink.Handle, r Router) ([]Rule, []Route, nat.Set) {
	p, ok := a.routerFIP[r.ID]
	keep := ""
	if ok && a.fipReady[p.fip.NetworkID] {
		if err := a.ensureFIPLink(rh, p.fip); err != nil {
			a.errs = append(a.errs, fmt.Errorf("router %s: floating IPs: %w", r.ID, err))
		} else {
			a.linkReady[r.ID] = true
			keep = p.fip.NetworkID
		}
	}
	if err := a.removeFIPLinks(rh, r.ID, keep); err != nil {
		a.errs = append(a.errs, fmt.Errorf("router %s: floating IPs: %w", r.ID, err))
	}
	if !a.linkReady[r.ID] {
		return r.Rules, r.Routes, nat.Set{}
	}
	rules := append(slices.Clone(r.Rules), p.rules...)
	routes := append(slices.Clone(r.Routes), p.routes...)
	return rules, routes, p.fip.NAT
}

// removeFIPLinks deletes the rfp- devices of ours in a qrouter- namespace except router
// routerID's link to keepNetwork's fip- namespace (deleting one end deletes the pair).
func (a *apply) removeFIPLinks(rh *netlink.Handle, routerID, keepNetwork string) error {
	links, err := linkList(rh)
	if err != nil {
		return fmt.Errorf("list links: %w", err)
	}
	for _, l := range links {
		d, ok := parseDevAlias(l.Attrs().Alias)
		if !ok || d.fipNetwork == "" || (d.router == routerID && d.fipNetwork == keepNetwork) {
			continue
		}
		if err := rh.LinkDel(l); err != nil && !isNotFound(err) {
			return fmt.Errorf("delete %s: %w", l.Attrs().Name, err)
		}
		a.changed("removed floating IP link", append(d.fields(), zap.String("device", l.Attrs().Name))...)
	}
	return nil
}

// ensureFIPLink makes a router's rfp-/fpr- pair right (Neutron's create_rtr_2_fip_link):
// a veth pair, both ends ours and each other's peer, rfp- in qrouter- (rh) and fpr- in the
// fip- namespace, the external network's MTU, up, each end's address of the /31, and on
// each end a permanent neighbour entry for the other end's address with its MAC.
func (a *apply) ensureFIPLink(rh *netlink.Handle, rf RouterFIP) error {
	l := rf.Link
	fns, ok, err := openNamespace(l.FIPNamespace)
	if err == nil && !ok {
		err = fmt.Errorf("namespace %s does not exist", l.FIPNamespace)
	}
	if err != nil {
		return err
	}
	defer fns.Close()
	fh, err := netlink.NewHandleAt(fns, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("netlink in namespace %s: %w", l.FIPNamespace, err)
	}
	defer fh.Close()
	who := zap.String("router", rf.RouterID)
	alias := fipLinkAlias(rf.RouterID, rf.NetworkID)
	rl, err := lookupLink(rh, l.RouterDevice)
	if err != nil {
		return err
	}
	fl, err := lookupLink(fh, l.FIPDevice)
	if err != nil {
		return err
	}
	for _, x := range []netlink.Link{rl, fl} {
		if x == nil {
			continue
		}
		if _, ok := parseDevAlias(x.Attrs().Alias); !ok {
			return fmt.Errorf("device %s is not ours (alias %q); left alone", x.Attrs().Name, x.Attrs().Alias)
		}
	}
	if !paired(rl, fl, alias) {
		for _, del := range []struct {
			h *netlink.Handle
			l netlink.Link
		}{{rh, rl}, {fh, fl}} {
			if del.l != nil {
				if err := del.h.LinkDel(del.l); err != nil && !isNotFound(err) {
					return fmt.Errorf("delete stale device %s: %w", del.l.Attrs().Name, err)
				}
			}
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = l.RouterDevice
		attrs.MTU = l.MTU
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: l.FIPDevice, PeerNamespace: netlink.NsFd(int(fns)), PeerTxQLen: -1}
		if err := rh.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth pair %s/%s: %w", l.RouterDevice, l.FIPDevice, err)
		}
		// RTM_NEWLINK ignores IFLA_IFALIAS: both aliases are set afterwards.
		if rl, err = rh.LinkByName(l.RouterDevice); err == nil {
			err = rh.LinkSetAlias(rl, alias)
		}
		if err == nil {
			fl, err = fh.LinkByName(l.FIPDevice)
		}
		if err == nil {
			err = fh.LinkSetAlias(fl, alias)
		}
		if err != nil {
			_ = rh.LinkDel(veth)
			return fmt.Errorf("set up veth pair %s/%s: %w", l.RouterDevice, l.FIPDevice, err)
		}
		a.changed("created floating IP link", who, zap.String("device", l.RouterDevice), zap.String("peer", l.FIPDevice),
			zap.String("peer_namespace", l.FIPNamespace), zap.Stringer("pair", l.Pair), zap.Int("mtu", l.MTU))
	}
	for _, side := range []struct {
		h *netlink.Handle
		l netlink.Link
	}{{rh, rl}, {fh, fl}} {
		if l.MTU > 0 && side.l.Attrs().MTU != l.MTU {
			if err := side.h.LinkSetMTU(side.l, l.MTU); err != nil {
				return fmt.Errorf("set MTU of %s to %d: %w", side.l.Attrs().Name, l.MTU, err)
			}
		}
		if side.l.Attrs().Flags&net.FlagUp == 0 {
			if err := side.h.LinkSetUp(side.l); err != nil {
				return fmt.Errorf("set %s up: %w", side.l.Attrs().Name, err)
			}
		}
	}
	if err := a.syncAddrs(rh, rl, []netip.Prefix{l.RouterAddr}, who); err != nil {
		return err
	}
	if err := a.syncAddrs(fh, fl, []netip.Prefix{l.FIPAddr}, who); err != nil {
		return err
	}
	for _, n := range []struct {
		h    *netlink.Handle
		l    netlink.Link
		peer netip.Addr
		mac  net.HardwareAddr
	}{{rh, rl, l.FIPAddr.Addr(), fl.Attrs().HardwareAddr}, {fh, fl, l.RouterAddr.Addr(), rl.Attrs().HardwareAddr}} {
		added, removed, err := setPermanentNeighbors(n.h, n.l, map[netip.Addr]net.HardwareAddr{n.peer: n.mac})
		if added+removed > 0 {
			a.changed("floating IP link neighbours updated", who, zap.String("device", n.l.Attrs().Name),
				zap.Int("set", added), zap.Int("removed", removed))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// syncFIPNamespace finishes a fip- namespace once the routers' links are made: the fpr-
// devices of routers without a link here go, and the rules and routes become exactly those
// of the namespace (less those of routers whose link could not be made). The floating IPs
// routed are recorded in a.routed.
func (a *apply) syncFIPNamespace(p fipNSPlan) {
	network, name := p.ns.NetworkID, p.ns.Name
	if !a.fipReady[network] {
		return
	}
	o := networkOwner(network)
	fail := func(err error) { a.errs = append(a.errs, fmt.Errorf("%s: namespace %s: %w", o, name, err)) }
	ns, ok, err := openNamespace(name)
	if err == nil && !ok {
		err = fmt.Errorf("namespace %s does not exist", name)
	}
	if err != nil {
		fail(err)
		return
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		fail(err)
		return
	}
	defer h.Close()
	links, err := linkList(h)
	if err != nil {
		fail(fmt.Errorf("list links: %w", err))
		return
	}
	linked := map[string]bool{} // the fpr- devices of the routers linked here
	for _, l := range links {
		d, ok := parseDevAlias(l.Attrs().Alias)
		if !ok || d.fipNetwork == "" {
			continue
		}
		if d.fipNetwork == network && a.linkReady[d.router] && a.routerFIP[d.router].fip.NetworkID == network {
			linked[l.Attrs().Name] = true
			continue
		}
		if err := h.LinkDel(l); err != nil && !isNotFound(err) {
			fail(fmt.Errorf("delete %s: %w", l.Attrs().Name, err))
			continue
		}
		a.changed("removed floating IP link", append(d.fields(), zap.String("device", l.Attrs().Name))...)
	}
	var rules []Rule
	for _, r := range p.rules {
		if r.IIF == "" || linked[r.IIF] {
			rules = append(rules, r)
		}
	}
	var routes []Route
	for _, r := range p.routes {
		if !strings.HasPrefix(r.Device, FIPToRouterDevicePrefix) || linked[r.Device] {
			routes = append(routes, r)
		}
	}
	before := len(a.errs)
	a.syncRouting(h, o, name, rules, routes)
	if len(a.errs) > before {
		return
	}
	for _, r := range routes {
		if r.Table == 0 && r.Dst.Bits() == 32 && strings.HasPrefix(r.Device, FIPToRouterDevicePrefix) {
			a.routed[r.Dst.Addr()] = true
		}
	}
}

// queue keeps the gratuitous ARPs of the floating IPs in list that this Apply routed until
// Announce sends them, and drops the ones still kept whose floating IP it no longer routes
// (removed, or moved away before it was announced). m.mu is held.
func (a *apply) queue(list []GratuitousARP) {
	for addr := range a.m.due {
		if !a.routed[addr] {
			delete(a.m.due, addr)
		}
	}
	for _, g := range list {
		if a.routed[g.Address] {
			a.m.due[g.Address] = g
		}
	}
}

// Announce sends the gratuitous ARPs that Apply left due for the floating IPs it routed,
// from the fg- devices that wired reports as carrying traffic (plugged by Apply on the dead
// VLAN, a device only passes frames once the L2 side has bound and tagged its port: a
// gratuitous ARP sent before is lost, and the external network keeps sending to the
// floating IP's old host). The first round goes now, two more 2 s apart in the background
// (until Close), as Neutron's send_ip_addr_adv_notif; the others stay due for a later
// call. wired is called without the manager's lock held, so it may wait.
func (m *Manager) Announce(wired func(device string) bool) error {
	m.mu.Lock()
	due := slices.Collect(maps.Values(m.due))
	m.mu.Unlock()
	slices.SortFunc(due, func(a, b GratuitousARP) int { return a.Address.Compare(b.Address) })
	ready := map[string]bool{}
	var now []GratuitousARP
	for _, g := range due {
		if _, asked := ready[g.Device]; !asked {
			ready[g.Device] = wired(g.Device)
		}
		if ready[g.Device] {
			now = append(now, g)
		}
	}
	if len(now) == 0 {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	var sent []GratuitousARP
	var errs []error
	for _, g := range now {
		if m.due[g.Address] != g {
			continue // Apply changed it meanwhile
		}
		delete(m.due, g.Address)
		if err := sendGratuitousARP(g.Namespace, g.Device, g.Address); err != nil {
			errs = append(errs, fmt.Errorf("floating IP %s (%s): gratuitous ARP from %s in %s: %w",
				g.FloatingIPID, g.Address, g.Device, g.Namespace, err))
			continue
		}
		m.log.Info("gratuitous ARP sent", zap.String("floatingip", g.FloatingIPID), zap.Stringer("address", g.Address),
			zap.String("namespace", g.Namespace), zap.String("device", g.Device))
		sent = append(sent, g)
	}
	if len(sent) == 0 || garpRounds < 2 {
		return errors.Join(errs...)
	}
	ctx := m.garpCtx
	m.garps.Add(1)
	go func() {
		defer m.garps.Done()
		t := time.NewTicker(garpInterval)
		defer t.Stop()
		for range garpRounds - 1 {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			for _, g := range sent {
				if err := sendGratuitousARP(g.Namespace, g.Device, g.Address); err != nil {
					// The floating IP or its namespace may have gone meanwhile.
					m.log.Debug("gratuitous ARP not sent", zap.String("floatingip", g.FloatingIPID), zap.Error(err))
				}
			}
		}
	}()
	return errors.Join(errs...)
}

// sendGratuitousARP sends, from device dev of namespace nsName, a gratuitous ARP request
// and a gratuitous ARP reply for ip with the device's MAC (as Neutron's arping -U and -A:
// some hosts honour only one of them), on a raw packet socket opened inside the namespace.
func sendGratuitousARP(nsName, dev string, ip netip.Addr) error {
	if !ip.Is4() {
		return fmt.Errorf("%s is not an IPv4 address", ip)
	}
	ns, ok, err := openNamespace(nsName)
	if err == nil && !ok {
		err = fmt.Errorf("namespace %s does not exist", nsName)
	}
	if err != nil {
		return err
	}
	defer ns.Close()
	return inNamespace(ns, func() error {
		ifc, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		if len(ifc.HardwareAddr) != 6 {
			return fmt.Errorf("%s has no Ethernet address", dev)
		}
		proto := htons(unix.ETH_P_ARP)
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return fmt.Errorf("packet socket: %w", err)
		}
		defer unix.Close(fd)
		to := &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifc.Index, Halen: 6}
		copy(to.Addr[:], broadcastMAC)
		for _, op := range []uint16{arpRequest, arpReply} {
			if err := unix.Sendto(fd, gratuitousARP(ifc.HardwareAddr, ip, op), 0, to); err != nil {
				return fmt.Errorf("send on %s: %w", dev, err)
			}
		}
		return nil
	})
}

const (
	arpRequest = 1
	arpReply   = 2
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// gratuitousARP is the Ethernet frame of a gratuitous ARP of ip from mac: to
// the broadcast address, sender and target protocol address both ip, target hardware
// address the broadcast address (as iputils' arping -U and -A write it).
func gratuitousARP(mac net.HardwareAddr, ip netip.Addr, op uint16) []byte {
	f := make([]byte, 0, 42)
	f = append(f, broadcastMAC...)
	f = append(f, mac...)
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_ARP)
	f = binary.BigEndian.AppendUint16(f, 1) // hardware type: Ethernet
	f = binary.BigEndian.AppendUint16(f, unix.ETH_P_IP)
	f = append(f, 6, 4)
	f = binary.BigEndian.AppendUint16(f, op)
	a := ip.As4()
	f = append(f, mac...)
	f = append(f, a[:]...)
	f = append(f, broadcastMAC...)
	f = append(f, a[:]...)
	return f
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// HeldFloatingIPs returns the floating IPs this host routes now, sorted: the /32 routes of
// ours through an fpr- device in the main table of the fip- namespaces of ours (as
// Neutron's DvrLocalRouter.get_router_cidrs reads them back). They are FIPInput.Held: a
// floating IP among them gets no gratuitous ARP, so an agent restart announces nothing.
func (m *Manager) HeldFloatingIPs() ([]netip.Addr, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	names, err := listNamespaces(FIPNamespacePrefix)
	if err != nil {
		return nil, fmt.Errorf("router namespaces: list namespaces: %w", err)
	}
	var held []netip.Addr
	for _, name := range names {
		got, err := heldIn(name)
		if err != nil {
			return nil, fmt.Errorf("router namespaces: namespace %s: %w", name, err)
		}
		held = append(held, got...)
	}
	slices.SortFunc(held, netip.Addr.Compare)
	return slices.Compact(held), nil
}

func heldIn(name string) ([]netip.Addr, error) {
	ns, ok, err := openNamespace(name)
	if err != nil || !ok {
		return nil, err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil || lo.Attrs().Alias != aliasPrefix {
		return nil, err // not ours
	}
	links, err := linkList(h)
	if err != nil {
		return nil, err
	}
	names := map[int]string{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	filter := &netlink.Route{Table: tableMain, Protocol: RouteProtocol}
	routes, err := h.RouteListFiltered(netlink.FAMILY_V4, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil {
		return nil, err
	}
	var held []netip.Addr
	for _, r := range routes {
		p, ok := prefixOf(r.Dst)
		if ok && p.Bits() == 32 && r.Gw != nil && strings.HasPrefix(names[r.LinkIndex], FIPToRouterDevicePrefix) {
			held = append(held, p.Addr())
		}
	}
	return held, nil
}
