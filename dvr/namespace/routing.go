package namespace

import (
	"errors"
	"fmt"
	"math"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the policy routing rules (FRA_PROTOCOL) and routes (rtm_protocol)
// the manager makes: `ip rule show proto 211`, `ip route show table all proto 211`. In a
// namespace of ours, every rule and route with it is the manager's: one that is not wanted
// any more is removed. Rules and routes with any other protocol (the kernel's connected
// routes, anyone else's) are never touched.
const RouteProtocol = 211

// Routing tables the kernel reserves.
const (
	tableDefault = unix.RT_TABLE_DEFAULT
	tableMain    = unix.RT_TABLE_MAIN
	tableLocal   = unix.RT_TABLE_LOCAL
)

func validRule(r Rule) error {
	switch {
	case !r.From.IsValid():
		return errors.New("invalid source prefix")
	case r.IIF != "" && (len(r.IIF) >= 16 || r.From.Bits() != 0):
		return fmt.Errorf("invalid input device %q, or a source prefix with it", r.IIF)
	case r.Table == 0 || r.Table == tableLocal || r.Table == tableMain || r.Table == tableDefault:
		return fmt.Errorf("table %d is the kernel's", r.Table)
	case r.Priority == 0 || r.Priority == 32766 || r.Priority == 32767:
		return fmt.Errorf("priority %d is the kernel's", r.Priority)
	case uint64(r.Priority) > math.MaxInt || uint64(r.Table) > math.MaxInt:
		return errors.New("out of range")
	}
	return nil
}

func validRoute(r Route) error {
	switch {
	case !r.Dst.IsValid() || r.Dst != r.Dst.Masked():
		return errors.New("invalid destination")
	case r.Via.IsValid() && r.Via.Is4() != r.Dst.Addr().Is4():
		return errors.New("next hop and destination of different IP versions")
	case r.Device == "" || len(r.Device) >= 16:
		return fmt.Errorf("invalid device %q", r.Device)
	case r.Table == tableLocal || uint64(r.Table) > math.MaxInt:
		return fmt.Errorf("table %d not allowed", r.Table)
	}
	return nil
}

// ruleKey renders a rule as `ip rule` shows it, which is also its identity.
func ruleKey(r Rule) string {
	iif := ""
	if r.IIF != "" {
		iif = " iif " + r.IIF
	}
	return fmt.Sprintf("%d: from %s%s lookup %d", r.Priority, r.From, iif, r.Table)
}

// routeKey renders a route as `ip route` shows it, which is also its identity.
func routeKey(r Route) string {
	s := r.Dst.String()
	if r.Dst.Bits() == 0 {
		s = "default"
	}
	if r.Via.IsValid() {
		s += " via " + r.Via.String()
	}
	s += " dev " + r.Device
	if !r.Via.IsValid() {
		s += " scope link"
	}
	if r.Table != 0 && r.Table != tableMain {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	if r.Dst.Addr().Is6() {
		s = "-6 " + s
	}
	return s
}

// syncRules makes the namespace's rules with our protocol exactly want; it returns how many
// it added and removed.
func syncRules(h *netlink.Handle, want []Rule) (added, removed int, err error) {
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[ruleKey(r)] = true
	}
	have := map[string]bool{}
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		cur, err := ruleList(h, family)
		if err != nil {
			return added, removed, fmt.Errorf("list rules: %w", err)
		}
		for _, c := range cur {
			if c.Protocol != RouteProtocol {
				continue
			}
			r, ok := ruleFrom(c, family)
			if ok && wanted[ruleKey(r)] {
				have[ruleKey(r)] = true
				continue
			}
			del := netlink.NewRule()
			del.Family, del.Priority, del.Table, del.Src, del.Protocol = family, c.Priority, c.Table, c.Src, RouteProtocol
			del.IifName = c.IifName
			if err := h.RuleDel(del); err != nil && !errors.Is(err, unix.ENOENT) {
				return added, removed, fmt.Errorf("delete rule %s: %w", c, err)
			}
			removed++
		}
	}
	for _, r := range want {
		k := ruleKey(r)
		if have[k] {
			continue
		}
		have[k] = true
		add := netlink.NewRule()
		add.Family = netlink.FAMILY_V4
		if r.From.Addr().Is6() {
			add.Family = netlink.FAMILY_V6
		}
		if r.From.Bits() > 0 {
			add.Src = ipNetKeepHost(r.From)
		}
		add.IifName = r.IIF
		add.Table, add.Priority, add.Protocol = int(r.Table), int(r.Priority), RouteProtocol
		if err := h.RuleAdd(add); err != nil {
			return added, removed, fmt.Errorf("add rule %s: %w", k, err)
		}
		added++
	}
	return added, removed, nil
}

// ruleFrom reads back a rule of ours of the given family; ok is false for a shape we never
// write.
func ruleFrom(c netlink.Rule, family int) (Rule, bool) {
	if (c.Src == nil && c.IifName == "") || c.Dst != nil || c.OifName != "" || c.Invert || c.Table <= 0 || c.Priority <= 0 ||
		c.Mark != 0 || c.Goto > 0 {
		return Rule{}, false
	}
	// "from all" (no source) is the family's /0.
	p := netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	if family == netlink.FAMILY_V6 {
		p = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	}
	if c.Src != nil {
		var ok bool
		if p, ok = prefixOf(c.Src); !ok {
			return Rule{}, false
		}
	}
	return Rule{From: p, IIF: c.IifName, Table: uint32(c.Table), Priority: uint32(c.Priority)}, true
}

// syncRoutes makes the namespace's routes with our protocol, in every table, exactly want;
// it returns how many it added and removed.
func syncRoutes(h *netlink.Handle, want []Route) (added, removed int, err error) {
	wanted := map[string]bool{}
	for _, r := range want {
		wanted[routeKey(normalRoute(r))] = true
	}
	links, err := linkList(h)
	if err != nil {
		return 0, 0, fmt.Errorf("list links: %w", err)
	}
	names := map[int]string{}
	indexes := map[string]int{}
	for _, l := range links {
		names[l.Attrs().Index] = l.Attrs().Name
		indexes[l.Attrs().Name] = l.Attrs().Index
	}
	filter := &netlink.Route{Table: unix.RT_TABLE_UNSPEC, Protocol: RouteProtocol}
	cur, err := h.RouteListFiltered(netlink.FAMILY_ALL, filter, netlink.RT_FILTER_TABLE|netlink.RT_FILTER_PROTOCOL)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return 0, 0, fmt.Errorf("list routes: %w", err)
	}
	have := map[string]bool{}
	for _, c := range cur {
		r, ok := routeFrom(c, names)
		if ok && wanted[routeKey(r)] {
			have[routeKey(r)] = true
			continue
		}
		if err := h.RouteDel(&c); err != nil && !errors.Is(err, unix.ESRCH) {
			return added, removed, fmt.Errorf("delete route %s: %w", c, err)
		}
		removed++
	}
	// On-link routes first: a route via a gateway outside every subnet needs one.
	order := slices.Clone(want)
	slices.SortStableFunc(order, func(a, b Route) int {
		return cmpBool(a.Via.IsValid(), b.Via.IsValid())
	})
	for _, r := range order {
		k := routeKey(normalRoute(r))
		if have[k] {
			continue
		}
		have[k] = true
		idx, ok := indexes[r.Device]
		if !ok {
			return added, removed, fmt.Errorf("add route %s: no device %s", routeKey(r), r.Device)
		}
		nr := &netlink.Route{LinkIndex: idx, Dst: ipNetKeepHost(r.Dst), Table: int(r.Table), Protocol: RouteProtocol,
			Scope: netlink.SCOPE_UNIVERSE, Family: netlink.FAMILY_V4}
		if r.Dst.Addr().Is6() {
			nr.Family = netlink.FAMILY_V6
		}
		if r.Table == 0 {
			nr.Table = tableMain
		}
		if r.Via.IsValid() {
			nr.Gw = r.Via.AsSlice()
		} else {
			nr.Scope = netlink.SCOPE_LINK
		}
		if err := h.RouteAdd(nr); err != nil {
			if errors.Is(err, unix.EEXIST) {
				err = errors.New("a route for this destination exists and is not ours; left alone")
			}
			return added, removed, fmt.Errorf("add route %s: %w", routeKey(r), err)
		}
		added++
	}
	return added, removed, nil
}

// normalRoute writes table main as 0, as Route does.
func normalRoute(r Route) Route {
	if r.Table == tableMain {
		r.Table = 0
	}
	return r
}

// routeFrom reads back a route of ours; ok is false for a shape we never write.
func routeFrom(c netlink.Route, names map[int]string) (Route, bool) {
	if c.MultiPath != nil || c.Priority != 0 || c.Src != nil || c.Tos != 0 || c.Type != unix.RTN_UNICAST {
		return Route{}, false
	}
	r := Route{Table: uint32(c.Table), Device: names[c.LinkIndex]}
	if c.Gw != nil {
		gw, ok := netip.AddrFromSlice(c.Gw)
		if !ok {
			return Route{}, false
		}
		r.Via = gw.Unmap()
	} else if c.Scope != netlink.SCOPE_LINK {
		return Route{}, false
	}
	if c.Dst != nil {
		p, ok := prefixOf(c.Dst)
		if !ok {
			return Route{}, false
		}
		r.Dst = p
	} else if c.Family == netlink.FAMILY_V6 {
		r.Dst = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
	} else {
		r.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	return normalRoute(r), r.Device != ""
}

// ruleList lists the rules of a family, retrying a dump the kernel interrupted.
func ruleList(h *netlink.Handle, family int) ([]netlink.Rule, error) {
	var err error
	for range 5 {
		var rules []netlink.Rule
		if rules, err = h.RuleList(family); err == nil {
			return rules, nil
		}
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	return nil, err
}

// ipNetKeepHost is p as a net.IPNet with its host bits (net.ParseCIDR would clear them).
func ipNetKeepHost(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func cmpBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// logRouting logs what a rule or route sync changed, and counts it.
func (a *apply) logRouting(what string, o owner, ns string, added, removed int) {
	if added+removed == 0 {
		return
	}
	a.changes += added + removed
	a.m.log.Info("router namespace "+what+" updated", o.field(), zap.String("namespace", ns),
		zap.Int("added", added), zap.Int("removed", removed))
}
