package namespace

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"

	"github.com/dvrflow/dvrflow/dvr/nat"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/state"
)

// Ownership markers.
const (
	// OwnerKey=OwnerValue is in the external_ids of every br-int interface the manager
	// plugs; RouterKey holds its router id.
	OwnerKey   = "dvrflow-owner"
	OwnerValue = "router-namespace"
	RouterKey  = "dvrflow-router"
	// NetworkKey holds the external network of a fip- namespace's fg- interface (in
	// place of RouterKey).
	NetworkKey = "dvrflow-fip-network"
	// aliasPrefix starts the link alias of a router namespace's loopback device (exactly
	// this) and of both ends of each veth pair (followed by " router=<id> port=<id>").
	aliasPrefix = "dvrflow router-namespace"
)

// validID is what a router id may look like: it becomes a file name in /run/netns.
var validID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}$`)

// Manager reconciles the router namespaces of this host with a desired list. Its methods are
// safe for concurrent use; Apply calls are serialised.
type Manager struct {
	db     *ovsdb.Client
	bridge string
	log    *zap.Logger

	mu     sync.Mutex
	closed bool
	// foreign holds the router ports last seen plugged by someone else (port id → their
	// interface name), so that each is logged once, not on every Apply.
	foreign map[string]string

	// due are the gratuitous ARPs of the floating IPs Apply routed, by address, until
	// Announce sends them.
	due map[netip.Addr]GratuitousARP
	// garps are the gratuitous ARP rounds still to send after Announce returned; Close
	// cancels them and waits.
	garpCtx    context.Context
	garpCancel context.CancelFunc
	garps      sync.WaitGroup
}

// New returns a manager that plugs router interfaces into integrationBridge through db. It
// changes nothing until Apply.
func New(db *ovsdb.Client, integrationBridge string, log *zap.Logger) *Manager {
	if log == nil {
		log = zap.NewNop()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{db: db, bridge: integrationBridge, log: log.Named("router-namespaces"), foreign: map[string]string{},
		due: map[netip.Addr]GratuitousARP{}, garpCtx: ctx, garpCancel: cancel}
}

// Close stops the manager: later Apply calls fail. Namespaces, devices and br-int ports stay
// as they are (routing goes on while the agent restarts, as with Neutron's L3 agent); Apply
// with no routers removes them.
func (m *Manager) Close() {
	m.mu.Lock()
	m.closed = true
	m.garpCancel()
	m.mu.Unlock()
	m.garps.Wait()
}

// Apply makes the host hold exactly routers (as computed by Desired) and the floating IP
// state fip (as computed by DesiredFIP; the zero FIPState holds no floating IP): it creates
// missing namespaces (qrouter-<id> for every router, snat-<id> for those with SNAT set,
// fip-<network id> for fip's namespaces; loopback up, forwarding and the other sysctls
// Neutron sets), veth pairs (rfp-/fpr- between qrouter- and fip-), MACs, MTUs, addresses,
// permanent neighbour entries, rules, routes, NAT and br-int ports (iface-id, attached-mac,
// iface-status=active and our owner marker; new ports on the dead VLAN 4095 until the L2
// side tags them), corrects what differs, and removes what it made that is no longer
// wanted: devices and their br-int ports, permanent neighbours, rules and routes of ours,
// NAT rules (with their conntrack entries), and whole namespaces marked as ours. The
// gratuitous ARPs of fip.Announce whose floating IP it routed are left due for Announce,
// which sends them once the L2 side has tagged fg-'s port. A router port plugged by
// someone else is skipped and logged.
// Apply is idempotent and logs how many changes it made; it goes on past a failing router
// or port and returns every error, each naming its router, network, port or floating IP.
func (m *Manager) Apply(ctx context.Context, routers []Router, fip FIPState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errors.New("router namespaces: manager is closed")
	}
	hostNS, err := netns.GetFromPath("/proc/self/ns/net")
	if err != nil {
		return fmt.Errorf("router namespaces: open host network namespace: %w", err)
	}
	defer hostNS.Close()
	host, err := netlink.NewHandleAt(hostNS, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("router namespaces: netlink: %w", err)
	}
	defer host.Close()
	a := &apply{m: m, ctx: ctx, hostNS: hostNS, host: host, keep: map[string]map[string]bool{},
		keepNS: map[string]map[string]bool{}, wantNS: map[string]bool{}, devices: map[string]string{},
		keepFIP: map[string]map[string]bool{}, routerFIP: map[string]routerFIPPlan{},
		fipReady: map[string]bool{}, linkReady: map[string]bool{}, routed: map[netip.Addr]bool{}, nowForeign: map[string]string{}}
	a.plan(routers)
	a.planFIP(fip)
	a.removeStaleNamespaces()
	// The fip- namespaces with their fg- devices first: a router's rfp-/fpr- pair joins
	// its qrouter- namespace to one; their routes and rules last, once the pairs exist.
	for _, p := range a.fipNS {
		if ctx.Err() != nil {
			break
		}
		a.ensureFIPNamespace(p)
	}
	for _, r := range a.routers {
		if err := ctx.Err(); err != nil {
			a.errs = append(a.errs, err)
			break
		}
		a.applyRouter(r)
	}
	for _, p := range a.fipNS {
		if ctx.Err() != nil {
			break
		}
		a.syncFIPNamespace(p)
	}
	if ctx.Err() == nil {
		a.removeStalePorts()
		a.removeStaleHostLinks()
		a.queue(fip.Announce)
	}
	snat := 0
	for _, r := range a.routers {
		if r.SNAT != nil {
			snat++
		}
	}
	// The count of changes is 0 when the host already matched (e.g. an agent restart with
	// unchanged state).
	m.log.Info("router namespaces applied", zap.Int("routers", len(a.routers)), zap.Int("snat_namespaces", snat),
		zap.Int("fip_namespaces", len(a.fipNS)), zap.Int("floating_ips", len(a.routed)),
		zap.Int("changes", a.changes), zap.Int("errors", len(a.errs)))
	if err := errors.Join(a.errs...); err != nil {
		return fmt.Errorf("router namespaces: %w", err)
	}
	return nil
}

// apply is the state of one Apply call.
type apply struct {
	m      *Manager
	ctx    context.Context
	hostNS netns.NsHandle
	host   *netlink.Handle

	// routers are the valid routers, sorted by id, with only the interfaces to plug.
	routers []Router
	// keep is router id → port ids whose devices and br-int ports must not be removed: the
	// ones to plug and the invalid ones (left as they are).
	keep map[string]map[string]bool
	// keepNS is namespace name → port ids whose devices in that namespace must not be
	// removed; wantNS holds the namespaces (qrouter- and snat-) that must exist.
	keepNS map[string]map[string]bool
	wantNS map[string]bool
	// devices maps each host device name to the port id that owns it (host names are
	// global).
	devices map[string]string
	// foreignIfc are the Neutron ports plugged by someone else (port id → interface);
	// nowForeign those of them that are wanted here (Manager.foreign after Apply).
	foreignIfc, nowForeign map[string]string

	// fipNS are the valid fip- namespaces, sorted by network; routerFIP the valid
	// floating IP state of each router, by router id; keepFIP is network id → the fg-
	// port ids whose devices and br-int ports must not be removed.
	fipNS     []fipNSPlan
	routerFIP map[string]routerFIPPlan
	keepFIP   map[string]map[string]bool
	// fipReady holds the networks whose fip- namespace and fg- device are in place;
	// linkReady the routers whose rfp-/fpr- pair is; routed the floating IPs whose
	// routes in fip- are.
	fipReady  map[string]bool
	linkReady map[string]bool
	routed    map[netip.Addr]bool
	// changes counts what this Apply changed on the host (devices, addresses, neighbours,
	// sysctls, rules, routes, NAT rules, namespaces, br-int ports).
	changes int
	errs    []error
}

// changed logs one change and counts it.
func (a *apply) changed(msg string, fields ...zap.Field) {
	a.changes++
	a.m.log.Info(msg, fields...)
}

// plan validates the routers, drops the interfaces plugged by someone else and the invalid
// rules and routes, and fills a.routers, a.keep, a.keepNS and a.wantNS.
func (a *apply) plan(routers []Router) {
	foreign := a.foreignPorts()
	a.foreignIfc = foreign
	devices := a.devices
	seen := map[string]bool{}
	sorted := slices.Clone(routers)
	slices.SortStableFunc(sorted, func(x, y Router) int { return cmp.Compare(x.ID, y.ID) })
	nowForeign := a.nowForeign
	for _, r := range sorted {
		if !validID.MatchString(r.ID) {
			a.errs = append(a.errs, fmt.Errorf("router %q: invalid id (want %s)", r.ID, validID))
			continue
		}
		if seen[r.ID] {
			a.errs = append(a.errs, fmt.Errorf("router %s: listed twice; the first is used", r.ID))
			continue
		}
		seen[r.ID] = true
		keep := map[string]bool{}
		a.keep[r.ID] = keep
		// admit validates one interface of the router in namespace ns, whose device is
		// called prefix+<port id>, and reports whether the manager plugs it.
		admit := func(ns, prefix string, ifc Interface) bool {
			if ifc.PortID != "" {
				keep[ifc.PortID] = true
				a.keepPort(ns, ifc.PortID)
			}
			if err := validInterface(ifc); err != nil {
				a.errs = append(a.errs, fmt.Errorf("router %s: port %s: %w", r.ID, ifc.PortID, err))
				return false
			}
			dev := deviceName(prefix, ifc.PortID)
			if other, dup := devices[dev]; dup {
				a.errs = append(a.errs, fmt.Errorf("router %s: port %s: device name %s already used by port %s",
					r.ID, ifc.PortID, dev, other))
				return false
			}
			devices[dev] = ifc.PortID
			by, ok := foreign[ifc.PortID]
			if info, exists := a.m.db.Interface(dev); !ok && exists && !ours(info) {
				by, ok = info.Name, true
			}
			if ok {
				// A device of ours for it would duplicate theirs.
				delete(keep, ifc.PortID)
				delete(a.keepNS[ns], ifc.PortID)
				nowForeign[ifc.PortID] = by
				if a.m.foreign[ifc.PortID] != by {
					a.m.log.Info("router port plugged by someone else, left alone",
						zap.String("router", r.ID), zap.String("port", ifc.PortID), zap.String("interface", by))
				}
				return false
			}
			return true
		}

		name := NamespaceName(r.ID)
		a.wantNS[name] = true
		plug := Router{ID: r.ID}
		ports := map[string]bool{}
		for _, ifc := range r.Interfaces {
			if admit(name, DevicePrefix, ifc) {
				ports[ifc.PortID] = true
				plug.Interfaces = append(plug.Interfaces, ifc)
			}
		}
		for _, n := range r.Neighbors {
			switch {
			case !n.IP.IsValid() || len(n.MAC) != 6:
				a.errs = append(a.errs, fmt.Errorf("router %s: neighbour %s (%s): invalid IP or MAC", r.ID, n.IP, n.MAC))
			case ports[n.Interface]:
				plug.Neighbors = append(plug.Neighbors, n)
			}
		}
		plug.Rules, plug.Routes = a.validRouting(routerOwner(r.ID), name, r.Rules, r.Routes)

		if r.SNAT != nil {
			name := SNATNamespaceName(r.ID)
			a.wantNS[name] = true
			snat := &SNAT{NAT: r.SNAT.NAT}
			if admit(name, GatewayDevicePrefix, r.SNAT.Gateway) {
				snat.Gateway = r.SNAT.Gateway
			}
			for _, ifc := range r.SNAT.Interfaces {
				if admit(name, SNATDevicePrefix, ifc) {
					snat.Interfaces = append(snat.Interfaces, ifc)
				}
			}
			_, snat.Routes = a.validRouting(routerOwner(r.ID), name, nil, r.SNAT.Routes)
			plug.SNAT = snat
		}
		a.routers = append(a.routers, plug)
	}
}

// keepPort records that the device of portID in namespace ns must not be removed.
func (a *apply) keepPort(ns, portID string) {
	if a.keepNS[ns] == nil {
		a.keepNS[ns] = map[string]bool{}
	}
	a.keepNS[ns][portID] = true
}

// validRouting returns the valid rules and routes of namespace ns, reporting the others.
func (a *apply) validRouting(o owner, ns string, rules []Rule, routes []Route) ([]Rule, []Route) {
	var okRules []Rule
	for _, r := range rules {
		if err := validRule(r); err != nil {
			a.errs = append(a.errs, fmt.Errorf("%s: namespace %s: rule %s: %w", o, ns, ruleKey(r), err))
			continue
		}
		okRules = append(okRules, r)
	}
	var okRoutes []Route
	for _, r := range routes {
		if err := validRoute(r); err != nil {
			a.errs = append(a.errs, fmt.Errorf("%s: namespace %s: route %s: %w", o, ns, routeKey(r), err))
			continue
		}
		okRoutes = append(okRoutes, r)
	}
	return okRules, okRoutes
}

func validInterface(ifc Interface) error {
	switch {
	case ifc.PortID == "" || strings.ContainsAny(ifc.PortID, " /\x00"):
		return errors.New("invalid port id")
	case len(ifc.MAC) != 6 || ifc.MAC[0]&1 != 0:
		return fmt.Errorf("invalid MAC %q", ifc.MAC)
	case ifc.MTU < 0 || ifc.MTU > 65535:
		return fmt.Errorf("invalid MTU %d", ifc.MTU)
	}
	for _, p := range ifc.Addrs {
		if !p.IsValid() {
			return fmt.Errorf("invalid address %s", p)
		}
	}
	return nil
}

// foreignPorts returns port id → interface name for the Neutron ports plugged into OVS by
// someone else: an interface with that iface-id without our owner marker, or an interface
// holding the name of our device without our marker.
func (a *apply) foreignPorts() map[string]string {
	foreign := map[string]string{}
	for _, info := range a.m.db.InterfacesByExternalID("iface-id", "") {
		if info.ExternalIDs[OwnerKey] != OwnerValue {
			foreign[info.ExternalIDs["iface-id"]] = info.Name
		}
	}
	return foreign
}

// ours reports whether an OVS interface carries our owner marker.
func ours(info ovsdb.InterfaceInfo) bool { return info.ExternalIDs[OwnerKey] == OwnerValue }

// linkAlias is the alias of both ends of a router interface's veth pair.
func linkAlias(routerID, portID string) string {
	return aliasPrefix + " router=" + routerID + " port=" + portID
}

// gatewayAlias is the alias of both ends of a fip- namespace's fg- veth pair.
func gatewayAlias(networkID, portID string) string {
	return aliasPrefix + " network=" + networkID + " port=" + portID
}

// fipLinkAlias is the alias of both ends of a router's rfp-/fpr- pair to the fip- namespace
// of networkID.
func fipLinkAlias(routerID, networkID string) string {
	return aliasPrefix + " router=" + routerID + " fip-network=" + networkID
}

// devAlias is what the alias of one of our devices says: router and port for a router
// interface (qr-, qg-, sg-), network and port for a fip- namespace's gateway (fg-), router
// and fipNetwork for a router's link to a fip- namespace (rfp-, fpr-).
type devAlias struct {
	router, network, port, fipNetwork string
}

// parseDevAlias reads the alias of one of our veth ends; ok is false for any other alias.
func parseDevAlias(alias string) (devAlias, bool) {
	rest, found := strings.CutPrefix(alias, aliasPrefix+" ")
	if !found {
		return devAlias{}, false
	}
	f := strings.Fields(rest)
	if len(f) != 2 {
		return devAlias{}, false
	}
	k0, v0, _ := strings.Cut(f[0], "=")
	k1, v1, _ := strings.Cut(f[1], "=")
	if v0 == "" || v1 == "" {
		return devAlias{}, false
	}
	switch {
	case k0 == "router" && k1 == "port":
		return devAlias{router: v0, port: v1}, true
	case k0 == "network" && k1 == "port":
		return devAlias{network: v0, port: v1}, true
	case k0 == "router" && k1 == "fip-network":
		return devAlias{router: v0, fipNetwork: v1}, true
	}
	return devAlias{}, false
}

// fields names the device's owner in a log entry.
func (d devAlias) fields() []zap.Field {
	var f []zap.Field
	for _, kv := range [][2]string{{"router", d.router}, {"network", d.network}, {"port", d.port}, {"fip_network", d.fipNetwork}} {
		if kv[1] != "" {
			f = append(f, zap.String(kv[0], kv[1]))
		}
	}
	return f
}

func (d devAlias) String() string {
	switch {
	case d.fipNetwork != "":
		return "router " + d.router + ": link to " + FIPNamespaceName(d.fipNetwork)
	case d.network != "":
		return "external network " + d.network + ": port " + d.port
	}
	return "router " + d.router + ": port " + d.port
}

// parseAlias returns the router and port of one of our router interface veth ends; ok is
// false for any other alias.
func parseAlias(alias string) (routerID, portID string, ok bool) {
	d, ok := parseDevAlias(alias)
	if !ok || d.router == "" || d.port == "" {
		return "", "", false
	}
	return d.router, d.port, true
}

// owner is what a namespace belongs to, in errors and logs: a router (qrouter-, snat-) or
// an external network (fip-).
type owner struct{ kind, id string }

func routerOwner(id string) owner  { return owner{"router", id} }
func networkOwner(id string) owner { return owner{"network", id} }

func (o owner) String() string {
	if o.kind == "network" {
		return "external network " + o.id
	}
	return "router " + o.id
}

func (o owner) field() zap.Field { return zap.String(o.kind, o.id) }

// applyRouter reconciles one router's namespaces: qrouter- always, snat- when r.SNAT is set.
func (a *apply) applyRouter(r Router) {
	fail := func(err error) { a.errs = append(a.errs, fmt.Errorf("router %s: %w", r.ID, err)) }
	name := NamespaceName(r.ID)
	ns, rh, ok := a.ensureNamespace(routerOwner(r.ID), name, routerSysctls)
	if !ok {
		return
	}
	defer ns.Close()
	defer rh.Close()

	plugged := map[string]bool{}
	for _, ifc := range r.Interfaces {
		if err := a.ensureInterface(ns, rh, r.ID, DeviceName(ifc.PortID), ifc); err != nil {
			fail(fmt.Errorf("port %s: %w", ifc.PortID, err))
			continue
		}
		plugged[ifc.PortID] = true
	}
	for _, ifc := range r.Interfaces {
		if !plugged[ifc.PortID] {
			continue
		}
		if err := a.syncNeighbors(rh, r, ifc.PortID); err != nil {
			fail(fmt.Errorf("port %s: %w", ifc.PortID, err))
		}
	}
	if len(r.Rules) > 0 {
		a.noRedirects(ns, r.ID, name, r.Routes)
	}
	rules, routes, natSet := a.routerFIPs(rh, r)
	a.syncRouting(rh, routerOwner(r.ID), name, rules, routes)
	a.applyNAT(ns, routerOwner(r.ID), name, natSet)

	if r.SNAT != nil {
		a.applySNAT(r.ID, r.SNAT)
	}
}

// applySNAT reconciles a router's snat namespace: devices, routes and NAT.
func (a *apply) applySNAT(routerID string, snat *SNAT) {
	fail := func(err error) { a.errs = append(a.errs, fmt.Errorf("router %s: %w", routerID, err)) }
	name := SNATNamespaceName(routerID)
	ns, sh, ok := a.ensureNamespace(routerOwner(routerID), name, snatSysctls)
	if !ok {
		return
	}
	defer ns.Close()
	defer sh.Close()
	if snat.Gateway.PortID != "" {
		if err := a.ensureInterface(ns, sh, routerID, GatewayDeviceName(snat.Gateway.PortID), snat.Gateway); err != nil {
			fail(fmt.Errorf("port %s: %w", snat.Gateway.PortID, err))
		}
	}
	for _, ifc := range snat.Interfaces {
		if err := a.ensureInterface(ns, sh, routerID, SNATDeviceName(ifc.PortID), ifc); err != nil {
			fail(fmt.Errorf("port %s: %w", ifc.PortID, err))
		}
	}
	a.syncRouting(sh, routerOwner(routerID), name, nil, snat.Routes)
	a.applyNAT(ns, routerOwner(routerID), name, snat.NAT)
}

// applyNAT makes the namespace's NAT exactly set (none: our table goes).
func (a *apply) applyNAT(ns netns.NsHandle, o owner, name string, set nat.Set) {
	res, err := nat.Apply(ns, set)
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("%s: namespace %s: %w", o, name, err))
	}
	if res.Added+res.Removed > 0 {
		a.changes += res.Added + res.Removed
		a.m.log.Info("router namespace NAT updated", o.field(), zap.String("namespace", name),
			zap.Int("added", res.Added), zap.Int("removed", res.Removed), zap.Uint("conntrack_deleted", res.Conntrack))
	}
}

// noRedirects turns send_redirects off on every device some route of the SNAT redirect
// leaves through, which is also where the packets it routes came from (the redirect sends a
// router port's traffic back out of the same port), and on "all" (the kernel sends a
// redirect when either is on), as Neutron does when it adds a redirect: otherwise the router
// would tell each VM to skip it.
func (a *apply) noRedirects(ns netns.NsHandle, routerID, name string, routes []Route) {
	settings := []sysctl{{path: "net/ipv4/conf/all/send_redirects", value: "0"}}
	seen := map[string]bool{}
	for _, r := range routes {
		if r.Table != 0 && r.Table != tableMain && !seen[r.Device] && r.Dst.Addr().Is4() {
			seen[r.Device] = true
			// Optional: a device that could not be made is reported on its own.
			settings = append(settings, sysctl{path: "net/ipv4/conf/" + r.Device + "/send_redirects", value: "0", optional: true})
		}
	}
	changed, err := setSysctls(ns, settings)
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("router %s: namespace %s: %w", routerID, name, err))
	}
	if len(changed) > 0 {
		a.changed("router namespace sysctls set", zap.String("router", routerID), zap.String("namespace", name),
			zap.Strings("sysctls", changed))
	}
}

// syncRouting makes the namespace's rules and routes of ours exactly rules and routes.
func (a *apply) syncRouting(h *netlink.Handle, o owner, name string, rules []Rule, routes []Route) {
	fail := func(err error) {
		a.errs = append(a.errs, fmt.Errorf("%s: namespace %s: %w", o, name, err))
	}
	// Routes before rules: a rule then never points at a table that is still empty.
	added, removed, err := syncRoutes(h, routes)
	a.logRouting("routes", o, name, added, removed)
	if err != nil {
		fail(err)
	}
	added, removed, err = syncRules(h, rules)
	a.logRouting("rules", o, name, added, removed)
	if err != nil {
		fail(err)
	}
}

// ensureNamespace opens or creates the namespace name of o, marks it as ours, sets its
// sysctls and removes the router interface devices of ours in it that are not wanted there
// (the fg-, rfp- and fpr- devices are the floating IP code's). On success the caller closes
// ns and h.
func (a *apply) ensureNamespace(o owner, name string, sysctls []sysctl) (ns netns.NsHandle, h *netlink.Handle, ok bool) {
	log := a.m.log.With(o.field(), zap.String("namespace", name))
	fail := func(err error) { a.errs = append(a.errs, fmt.Errorf("%s: %w", o, err)) }
	ns, existed, err := openNamespace(name)
	if err != nil {
		fail(fmt.Errorf("open namespace %s: %w", name, err))
		return ns, nil, false
	}
	if !existed {
		if ns, err = createNamespace(name); err != nil {
			fail(fmt.Errorf("create namespace %s: %w", name, err))
			return ns, nil, false
		}
		a.changed("created router namespace", o.field(), zap.String("namespace", name))
	}
	rh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		ns.Close()
		fail(fmt.Errorf("netlink in namespace %s: %w", name, err))
		return ns, nil, false
	}
	ok = false
	defer func() {
		if !ok {
			rh.Close()
			ns.Close()
		}
	}()

	lo, err := rh.LinkByName("lo")
	if err != nil {
		fail(fmt.Errorf("namespace %s: lo: %w", name, err))
		return ns, nil, false
	}
	if lo.Attrs().Alias != aliasPrefix {
		if existed {
			log.Warn("adopting router namespace not marked as ours", zap.String("lo_alias", lo.Attrs().Alias))
		}
		if err := rh.LinkSetAlias(lo, aliasPrefix); err != nil {
			fail(fmt.Errorf("namespace %s: mark lo: %w", name, err))
			return ns, nil, false
		}
	}
	if lo.Attrs().Flags&net.FlagUp == 0 {
		if err := rh.LinkSetUp(lo); err != nil {
			fail(fmt.Errorf("namespace %s: set lo up: %w", name, err))
			return ns, nil, false
		}
	}
	changed, err := setSysctls(ns, sysctls)
	if err != nil {
		fail(fmt.Errorf("namespace %s: %w", name, err))
		return ns, nil, false
	}
	if len(changed) > 0 {
		a.changed("router namespace sysctls set", o.field(), zap.String("namespace", name),
			zap.Strings("sysctls", changed))
	}

	// Remove our devices that are no longer wanted here first: that frees their names.
	links, err := linkList(rh)
	if err != nil {
		fail(fmt.Errorf("namespace %s: list links: %w", name, err))
		return ns, nil, false
	}
	for _, l := range links {
		d, isOurs := parseDevAlias(l.Attrs().Alias)
		if !isOurs || d.port == "" || d.router == "" || (o.kind == "router" && d.router == o.id && a.keepNS[name][d.port]) {
			continue
		}
		if err := a.removeDevice(rh, l, d); err != nil {
			fail(err)
		}
	}
	return ns, rh, true
}

// removeDevice unplugs one of our veth ends (the br-int port of the same name, if ours) and
// deletes the pair.
func (a *apply) removeDevice(h *netlink.Handle, l netlink.Link, d devAlias) error {
	dev := l.Attrs().Name
	if err := a.unplug(dev); err != nil {
		return fmt.Errorf("%s: %w", d, err)
	}
	if err := h.LinkDel(l); err != nil && !isNotFound(err) {
		return fmt.Errorf("%s: delete device %s: %w", d, dev, err)
	}
	a.changed("removed router namespace device", append(d.fields(), zap.String("device", dev))...)
	return nil
}

// unplug deletes the br-int port called dev if it is ours.
func (a *apply) unplug(dev string) error {
	info, ok := a.m.db.Interface(dev)
	if !ok || !ours(info) || info.Bridge == "" {
		return nil
	}
	if err := a.m.db.DeletePort(a.ctx, info.Bridge, dev); err != nil {
		return err
	}
	a.changed("unplugged router interface", zap.String("bridge", info.Bridge), zap.String("port", dev),
		zap.String("iface-id", info.ExternalIDs["iface-id"]))
	return nil
}

// ensureInterface makes one router interface right: the veth pair (both ends ours and
// paired), MAC, MTU, TX checksum offload off, up, addresses, and the br-int port.
func (a *apply) ensureInterface(ns netns.NsHandle, rh *netlink.Handle, routerID, dev string, ifc Interface) error {
	return a.ensurePlugged(ns, rh, dev, ifc, linkAlias(routerID, ifc.PortID), zap.String("router", routerID),
		map[string]string{OwnerKey: OwnerValue, RouterKey: routerID})
}

// ensurePlugged makes one device of a namespace right that is a veth pair plugged into
// br-int (a router interface, a fip- namespace's gateway): both ends ours (alias) and
// paired, MAC, MTU, TX checksum offload off, up, addresses, and the br-int port with
// externalIDs. who names the owner in logs.
func (a *apply) ensurePlugged(ns netns.NsHandle, rh *netlink.Handle, dev string, ifc Interface, alias string, who zap.Field,
	externalIDs map[string]string) error {
	nsLink, err := lookupLink(rh, dev)
	if err != nil {
		return err
	}
	hostLink, err := lookupLink(a.host, dev)
	if err != nil {
		return err
	}
	if nsLink != nil && nsLink.Attrs().Alias != alias {
		return fmt.Errorf("device %s in the namespace is not ours (alias %q); left alone", dev, nsLink.Attrs().Alias)
	}
	if hostLink != nil {
		if _, ok := parseDevAlias(hostLink.Attrs().Alias); !ok {
			return fmt.Errorf("host device %s exists and is not ours (alias %q); left alone", dev, hostLink.Attrs().Alias)
		}
	}
	if !paired(nsLink, hostLink, alias) {
		// Start afresh: the br-int port goes too, so that ovs-vswitchd opens the new device.
		if err := a.unplug(dev); err != nil {
			return err
		}
		for _, del := range []struct {
			h *netlink.Handle
			l netlink.Link
		}{{a.host, hostLink}, {rh, nsLink}} {
			if del.l != nil {
				if err := del.h.LinkDel(del.l); err != nil && !isNotFound(err) {
					return fmt.Errorf("delete stale device %s: %w", dev, err)
				}
			}
		}
		attrs := netlink.NewLinkAttrs()
		attrs.Name = dev
		attrs.MTU = ifc.MTU
		veth := &netlink.Veth{LinkAttrs: attrs, PeerName: dev, PeerHardwareAddr: ifc.MAC,
			PeerNamespace: netlink.NsFd(int(ns)), PeerTxQLen: -1}
		if err := a.host.LinkAdd(veth); err != nil {
			return fmt.Errorf("create veth pair %s: %w", dev, err)
		}
		// RTM_NEWLINK ignores IFLA_IFALIAS: both aliases are set afterwards.
		if nsLink, err = rh.LinkByName(dev); err == nil {
			err = rh.LinkSetAlias(nsLink, alias)
		}
		if err == nil {
			hostLink, err = a.host.LinkByName(dev)
		}
		if err == nil {
			err = a.host.LinkSetAlias(hostLink, alias)
		}
		if err != nil {
			_ = a.host.LinkDel(veth)
			return fmt.Errorf("set up veth pair %s: %w", dev, err)
		}
		a.changed("created router interface device", who, zap.String("port", ifc.PortID),
			zap.String("device", dev), zap.Stringer("mac", ifc.MAC), zap.Int("mtu", ifc.MTU))
	}

	if !bytes.Equal(nsLink.Attrs().HardwareAddr, ifc.MAC) {
		// Not every driver changes the address of a running device.
		if err := rh.LinkSetDown(nsLink); err != nil {
			return fmt.Errorf("set %s down: %w", dev, err)
		}
		if err := rh.LinkSetHardwareAddr(nsLink, ifc.MAC); err != nil {
			return fmt.Errorf("set MAC of %s to %s: %w", dev, ifc.MAC, err)
		}
		a.changed("router interface MAC changed", who, zap.String("port", ifc.PortID),
			zap.Stringer("old", nsLink.Attrs().HardwareAddr), zap.Stringer("new", ifc.MAC))
		nsLink.Attrs().Flags &^= net.FlagUp
	}
	if ifc.MTU > 0 {
		for _, side := range []struct {
			h *netlink.Handle
			l netlink.Link
		}{{rh, nsLink}, {a.host, hostLink}} {
			if side.l.Attrs().MTU != ifc.MTU {
				if err := side.h.LinkSetMTU(side.l, ifc.MTU); err != nil {
					return fmt.Errorf("set MTU of %s to %d: %w", dev, ifc.MTU, err)
				}
			}
		}
	}
	if err := disableTxChecksum(ns, dev); err != nil {
		return err
	}
	if err := disableTxChecksum(a.hostNS, dev); err != nil {
		return err
	}
	for _, side := range []struct {
		h *netlink.Handle
		l netlink.Link
	}{{a.host, hostLink}, {rh, nsLink}} {
		if side.l.Attrs().Flags&net.FlagUp == 0 {
			if err := side.h.LinkSetUp(side.l); err != nil {
				return fmt.Errorf("set %s up: %w", dev, err)
			}
		}
	}
	if err := a.syncAddrs(rh, nsLink, ifc.Addrs, who, zap.String("port", ifc.PortID)); err != nil {
		return err
	}
	return a.m.db.EnsureVIFPort(a.ctx, ovsdb.VIFPortSpec{
		Bridge:      a.m.bridge,
		Name:        dev,
		IfaceID:     ifc.PortID,
		MAC:         ifc.MAC.String(),
		ExternalIDs: externalIDs,
		Tag:         state.DeadVLAN,
	})
}

// paired reports whether both ends exist, are veths with our alias, and are each other's
// peer.
func paired(nsLink, hostLink netlink.Link, alias string) bool {
	if nsLink == nil || hostLink == nil {
		return false
	}
	_, v1 := nsLink.(*netlink.Veth)
	_, v2 := hostLink.(*netlink.Veth)
	n, h := nsLink.Attrs(), hostLink.Attrs()
	return v1 && v2 && n.Alias == alias && h.Alias == alias && n.ParentIndex == h.Index && h.ParentIndex == n.Index
}

// syncAddrs makes the device's global addresses exactly want (link-local IPv6 addresses
// are the kernel's and stay; IPv4 link-local ones, the rfp-/fpr- pairs', are managed).
// who names the owner in logs.
func (a *apply) syncAddrs(rh *netlink.Handle, link netlink.Link, want []netip.Prefix, who ...zap.Field) error {
	cur, err := rh.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return fmt.Errorf("list addresses of %s: %w", link.Attrs().Name, err)
	}
	have := map[netip.Prefix]bool{}
	for _, addr := range cur {
		p, ok := prefixOf(addr.IPNet)
		if !ok || (p.Addr().Is6() && p.Addr().IsLinkLocalUnicast()) {
			continue
		}
		if slices.Contains(want, p) {
			have[p] = true
			continue
		}
		if err := rh.AddrDel(link, &addr); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return fmt.Errorf("delete address %s from %s: %w", p, link.Attrs().Name, err)
		}
		a.changed("removed router interface address", append(slices.Clone(who), zap.String("device", link.Attrs().Name),
			zap.Stringer("addr", p))...)
	}
	for _, p := range want {
		if have[p] {
			continue
		}
		addr := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
		if p.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // a gateway address is never a duplicate; no waiting
		}
		if err := rh.AddrAdd(link, addr); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("add address %s to %s: %w", p, link.Attrs().Name, err)
		}
		a.changed("added router interface address", append(slices.Clone(who), zap.String("device", link.Attrs().Name),
			zap.Stringer("addr", p))...)
	}
	return nil
}

// syncNeighbors makes the permanent neighbour entries on the port's device exactly the
// router's neighbours on that port; other (dynamic) entries are the kernel's and stay.
func (a *apply) syncNeighbors(rh *netlink.Handle, r Router, portID string) error {
	dev := DeviceName(portID)
	link, err := rh.LinkByName(dev)
	if err != nil {
		return fmt.Errorf("neighbours: %s: %w", dev, err)
	}
	want := map[netip.Addr]net.HardwareAddr{}
	for _, n := range r.Neighbors {
		if n.Interface == portID {
			want[n.IP.Unmap()] = n.MAC
		}
	}
	added, removed, err := setPermanentNeighbors(rh, link, want)
	if added+removed > 0 {
		a.changed("router neighbours updated", zap.String("router", r.ID), zap.String("port", portID),
			zap.Int("set", added), zap.Int("removed", removed), zap.Int("total", len(want)))
	}
	return err
}

// setPermanentNeighbors makes the permanent neighbour entries of link exactly want; other
// (dynamic) entries are the kernel's and stay. It returns how many it set and removed.
func setPermanentNeighbors(rh *netlink.Handle, link netlink.Link, want map[netip.Addr]net.HardwareAddr) (added, removed int, err error) {
	dev := link.Attrs().Name
	cur, err := rh.NeighList(link.Attrs().Index, 0)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return 0, 0, fmt.Errorf("list neighbours of %s: %w", dev, err)
	}
	have := map[netip.Addr]bool{}
	for _, n := range cur {
		if n.State&netlink.NUD_PERMANENT == 0 {
			continue
		}
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if mac, ok := want[ip]; ok && bytes.Equal(mac, n.HardwareAddr) {
			have[ip] = true
			continue
		}
		if _, ok := want[ip]; ok {
			continue // replaced below
		}
		if err := rh.NeighDel(&n); err != nil && !isNotFound(err) {
			return added, removed, fmt.Errorf("delete neighbour %s on %s: %w", ip, dev, err)
		}
		removed++
	}
	for _, ip := range slices.SortedFunc(maps.Keys(want), netip.Addr.Compare) {
		if have[ip] {
			continue
		}
		family := netlink.FAMILY_V4
		if ip.Is6() {
			family = netlink.FAMILY_V6
		}
		n := &netlink.Neigh{LinkIndex: link.Attrs().Index, Family: family, State: netlink.NUD_PERMANENT,
			IP: ip.AsSlice(), HardwareAddr: want[ip]}
		if err := rh.NeighSet(n); err != nil {
			return added, removed, fmt.Errorf("set neighbour %s lladdr %s on %s: %w", ip, want[ip], dev, err)
		}
		added++
	}
	return added, removed, nil
}

// removeStaleNamespaces deletes the qrouter-, snat- and fip- namespaces marked as ours that
// are not wanted, with their devices and br-int ports (and the rules, routes and NAT in
// them). Unmarked ones are left alone.
func (a *apply) removeStaleNamespaces() {
	for _, prefix := range []string{NamespacePrefix, SNATNamespacePrefix, FIPNamespacePrefix} {
		names, err := listNamespaces(prefix)
		if err != nil {
			a.errs = append(a.errs, fmt.Errorf("list namespaces: %w", err))
			return
		}
		for _, name := range names {
			if a.wantNS[name] {
				continue
			}
			o := routerOwner(strings.TrimPrefix(name, prefix))
			if prefix == FIPNamespacePrefix {
				o = networkOwner(strings.TrimPrefix(name, prefix))
			}
			if err := a.removeNamespace(o, name); err != nil {
				a.errs = append(a.errs, fmt.Errorf("%s: remove namespace %s: %w", o, name, err))
			}
		}
	}
}

// removeNamespace deletes the namespace name of o if it is ours, after removing our devices
// in it one by one: their br-int ports go, and so does the other end of an rfp-/fpr- pair
// at once (the kernel cleans a deleted namespace up later, in the background).
func (a *apply) removeNamespace(o owner, name string) error {
	ns, ok, err := openNamespace(name)
	if err != nil || !ok {
		return err
	}
	mine, err := func() (bool, error) {
		defer ns.Close()
		rh, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		if err != nil {
			return false, err
		}
		defer rh.Close()
		lo, err := rh.LinkByName("lo")
		if err != nil {
			return false, err
		}
		if lo.Attrs().Alias != aliasPrefix {
			return false, nil
		}
		links, err := linkList(rh)
		if err != nil {
			return true, err
		}
		for _, l := range links {
			if d, ok := parseDevAlias(l.Attrs().Alias); ok {
				if err := a.removeDevice(rh, l, d); err != nil {
					return true, err
				}
			}
		}
		return true, nil
	}()
	if err != nil || !mine {
		if !mine && err == nil {
			a.m.log.Debug("namespace not ours, left alone", zap.String("namespace", name))
		}
		return err
	}
	if err := deleteNamespace(name); err != nil {
		return err
	}
	a.changed("removed router namespace", o.field(), zap.String("namespace", name))
	return nil
}

// removeStalePorts deletes our br-int ports whose router port is not wanted (left behind by
// a namespace deleted by hand, or by a failed removal).
func (a *apply) removeStalePorts() {
	for _, info := range a.m.db.InterfacesByExternalID(OwnerKey, OwnerValue) {
		d := devAlias{router: info.ExternalIDs[RouterKey], network: info.ExternalIDs[NetworkKey], port: info.ExternalIDs["iface-id"]}
		if info.Bridge == "" || (d.network == "" && a.keep[d.router][d.port]) || (d.network != "" && a.keepFIP[d.network][d.port]) {
			continue
		}
		if err := a.m.db.DeletePort(a.ctx, info.Bridge, info.Name); err != nil {
			a.errs = append(a.errs, fmt.Errorf("%s: %w", d, err))
			continue
		}
		a.changed("unplugged stale router interface", append(d.fields(),
			zap.String("bridge", info.Bridge), zap.String("interface", info.Name))...)
	}
}

// removeStaleHostLinks deletes host-side veth ends of ours whose router port is not wanted
// (deleting one end deletes the pair).
func (a *apply) removeStaleHostLinks() {
	links, err := linkList(a.host)
	if err != nil {
		a.errs = append(a.errs, fmt.Errorf("list host links: %w", err))
		return
	}
	for _, l := range links {
		d, ok := parseDevAlias(l.Attrs().Alias)
		if !ok || (d.router != "" && d.port != "" && a.keep[d.router][d.port]) || (d.network != "" && a.keepFIP[d.network][d.port]) {
			continue
		}
		if err := a.host.LinkDel(l); err != nil && !isNotFound(err) {
			a.errs = append(a.errs, fmt.Errorf("%s: delete host device %s: %w", d, l.Attrs().Name, err))
			continue
		}
		a.changed("removed stale router interface device", append(d.fields(), zap.String("device", l.Attrs().Name))...)
	}
}

// linkList lists the links, retrying a dump the kernel interrupted.
func linkList(h *netlink.Handle) ([]netlink.Link, error) {
	var err error
	for range 5 {
		var links []netlink.Link
		if links, err = h.LinkList(); err == nil {
			return links, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, err
}

// lookupLink returns the link called name, nil if there is none.
func lookupLink(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", name, err)
	}
	return l, nil
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.ENOENT)
}

// prefixOf converts an address with its mask.
func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	bits, _ := n.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), bits), true
}
