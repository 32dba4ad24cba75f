package nat

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"reflect"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Result counts what Apply changed.
type Result struct {
	// Added and Removed count rules (a rule moved counts in both; the table, its chains
	// and its marker are not counted).
	Added, Removed int
	// Conntrack counts the conntrack entries deleted.
	Conntrack uint
}

// applyMu serialises Apply: two calls on one namespace would each read the table and then
// write their differences over each other's.
var applyMu sync.Mutex

// chainSpec is how each chain of our table is made.
type chainSpec struct {
	name     string
	hook     *nftables.ChainHook
	priority *nftables.ChainPriority
}

var chainSpecs = []chainSpec{
	{PreroutingChain, nftables.ChainHookPrerouting, nftables.ChainPriorityNATDest},
	{PostroutingChain, nftables.ChainHookPostrouting, nftables.ChainPriorityNATSource},
}

func (s chainSpec) chain(t *nftables.Table) *nftables.Chain {
	return &nftables.Chain{Name: s.name, Table: t, Type: nftables.ChainTypeNAT, Hooknum: s.hook, Priority: s.priority}
}

func (s chainSpec) matches(c *nftables.Chain) bool {
	return c.Type == nftables.ChainTypeNAT && c.Hooknum != nil && *c.Hooknum == *s.hook &&
		c.Priority != nil && *c.Priority == *s.priority
}

// Apply makes the network namespace ns hold exactly the NAT of set, in our table: it reads
// the table back, computes the difference ([Diff]) and sends it in one nftables batch,
// creating the table, its chains and its marker when missing, and deleting the table when
// set has no valid rule. Rules of set that are not valid are left out and reported in the
// returned error (the others are applied). A table named [TableName] without our marker is
// not touched: Apply returns an error naming it.
//
// After the batch, Apply deletes the conntrack entries made by the translations that went
// away (Diff's Flush): NAT is decided once per connection, when conntrack creates its entry,
// so without this a removed floating IP would keep translating the flows already open (UDP
// ones for as long as packets keep coming), as Neutron's `conntrack -D` after removing a
// floating IP prevents. For a removed DNAT the entries whose original destination is the
// rule's address and reply source its target go; for a removed SNAT, those whose original
// source is in the rule's prefix and reply destination its target.
//
// The conntrack entries are deleted once, right after the batch: if that fails, Apply
// returns the error and the entries live on until they time out (the next Apply does not
// retry, the rules being gone).
//
// ns stays the caller's (Apply does not close it). Apply calls are serialised within the
// process.
func Apply(ns netns.NsHandle, set Set) (Result, error) {
	applyMu.Lock()
	defer applyMu.Unlock()
	desired, invalid := Desired(set)
	res, err := apply(ns, desired)
	return res, errors.Join(invalid, err)
}

func apply(ns netns.NsHandle, desired []Rule) (Result, error) {
	var res Result
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns)), nftables.AsLasting())
	if err != nil {
		return res, fmt.Errorf("nftables: %w", err)
	}
	defer conn.CloseLasting()

	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	exists, err := ownTable(conn, table)
	if err != nil {
		return res, err
	}
	var chains []*nftables.Chain
	var installed []Installed
	if exists {
		if chains, installed, err = readTable(conn, table); err != nil {
			return res, err
		}
	}

	var plan Plan
	switch {
	case len(desired) == 0 && !exists:
		return res, nil
	case len(desired) == 0:
		conn.DelTable(table)
		plan = Diff(nil, installed)
	default:
		plan = planBatch(conn, table, exists, chains, desired, installed)
	}
	if err := conn.Flush(); err != nil {
		return res, fmt.Errorf("nftables: table ip %s: apply %d deletions and %d additions: %w", TableName, len(plan.Delete), len(plan.Add), err)
	}
	res.Added, res.Removed = len(plan.Add), len(plan.Delete)

	n, err := flushConntrack(ns, plan.Flush)
	res.Conntrack = n
	return res, err
}

// ownTable reports whether our table exists, and fails if a table of its name is not ours.
func ownTable(conn *nftables.Conn, table *nftables.Table) (bool, error) {
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return false, fmt.Errorf("nftables: list tables: %w", err)
	}
	found := false
	for _, t := range tables {
		found = found || t.Name == table.Name
	}
	if !found {
		return false, nil
	}
	sets, err := conn.GetSets(table)
	if err != nil {
		return false, fmt.Errorf("nftables: table ip %s: list sets: %w", table.Name, err)
	}
	for _, s := range sets {
		if s.Name == MarkerSet {
			return true, nil
		}
	}
	return false, fmt.Errorf("nftables: table ip %s exists but was not made by dvrflow (no set %s): left alone, no NAT applied", table.Name, MarkerSet)
}

// readTable returns the chains of our table and their rules, in chain order.
func readTable(conn *nftables.Conn, table *nftables.Table) ([]*nftables.Chain, []Installed, error) {
	all, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		return nil, nil, fmt.Errorf("nftables: table ip %s: list chains: %w", table.Name, err)
	}
	var chains []*nftables.Chain
	var installed []Installed
	for _, c := range all {
		if c.Table == nil || c.Table.Name != table.Name {
			continue
		}
		chains = append(chains, c)
		rules, err := conn.GetRules(table, c)
		if err != nil {
			return nil, nil, fmt.Errorf("nftables: table ip %s: chain %s: list rules: %w", table.Name, c.Name, err)
		}
		for _, r := range rules {
			rule, ours := parseUserData(r.UserData)
			if ours && !reflect.DeepEqual(rule.exprs(), r.Exprs) {
				// The expressions are not what the user data says (edited by hand): the
				// rule is not one of ours any more.
				rule, ours = Rule{}, false
			}
			installed = append(installed, Installed{Chain: c.Name, Handle: r.Handle, Ours: ours, Rule: rule})
		}
	}
	return chains, installed, nil
}

// planBatch queues, on conn, what makes the existing (or missing) table hold desired, and
// returns the plan it followed. A chain whose type, hook or priority is not ours is made
// again; a chain we do not know is deleted.
func planBatch(conn *nftables.Conn, table *nftables.Table, exists bool, chains []*nftables.Chain, desired []Rule, installed []Installed) Plan {
	if !exists {
		// Create, not add: should a table of that name appear meanwhile, the batch fails
		// instead of writing into it.
		conn.CreateTable(table)
		// The marker: an empty set; AddSet fails only on bad arguments, which these are not.
		_ = conn.AddSet(&nftables.Set{Table: table, Name: MarkerSet, KeyType: nftables.TypeIPAddr,
			Comment: "dvrflow owns this table (dvr/nat): rules carry their object; changes are undone"}, nil)
	}
	have := map[string]*nftables.Chain{}
	for _, c := range chains {
		have[c.Name] = c
	}
	remake := map[string]bool{} // chains deleted and made again: their rules go with them
	var unknown []*nftables.Chain
	for _, c := range chains {
		spec, known := specOf(c.Name)
		switch {
		case !known:
			unknown = append(unknown, c)
		case !spec.matches(c):
			remake[c.Name] = true
		}
	}
	var kept []Installed
	var gone []Installed
	for _, in := range installed {
		if _, known := specOf(in.Chain); !known || remake[in.Chain] {
			gone = append(gone, in)
			continue
		}
		kept = append(kept, in)
	}
	plan := Diff(desired, kept)
	// Rules first, then chains: a chain is deleted only once nothing jumps to it.
	for _, in := range plan.Delete {
		// DelRule fails only on a zero handle, which the kernel never gives.
		_ = conn.DelRule(&nftables.Rule{Table: table, Chain: &nftables.Chain{Name: in.Chain, Table: table}, Handle: in.Handle})
	}
	for _, c := range append(unknown, chainsOf(remake, have)...) {
		conn.FlushChain(c)
		conn.DelChain(c)
	}
	for _, spec := range chainSpecs {
		if c, ok := have[spec.name]; !ok || remake[c.Name] {
			conn.AddChain(spec.chain(table))
		}
	}
	for _, a := range plan.Add {
		spec, _ := specOf(a.Rule.Kind.Chain())
		r := &nftables.Rule{Table: table, Chain: spec.chain(table), Exprs: a.Rule.exprs(), UserData: a.Rule.userData()}
		if a.Before != 0 {
			r.Position = a.Before
			conn.InsertRule(r)
		} else {
			conn.AddRule(r)
		}
	}
	// What went with a deleted chain counts as deleted, and its translations are flushed
	// unless still desired.
	if len(gone) > 0 {
		plan.Delete = append(plan.Delete, gone...)
		plan.Flush = flushes(desired, plan.Delete)
	}
	return plan
}

func specOf(chain string) (chainSpec, bool) {
	for _, s := range chainSpecs {
		if s.name == chain {
			return s, true
		}
	}
	return chainSpec{}, false
}

func chainsOf(names map[string]bool, have map[string]*nftables.Chain) []*nftables.Chain {
	var out []*nftables.Chain
	for _, n := range sortedKeys(names) {
		out = append(out, have[n])
	}
	return out
}

// exprs is the rule in nftables expressions, as `nft` would write
// `oifname "qg-x" ip saddr 10.0.0.0/24 snat ip to 203.0.113.1 fully-random` or
// `iifname "rfp-x" ip daddr 203.0.113.10 dnat ip to 10.0.0.5`.
func (r Rule) exprs() []expr.Any {
	var e []expr.Any
	if r.Device != "" {
		key := expr.MetaKeyOIFNAME
		if r.Kind == KindDNAT {
			key = expr.MetaKeyIIFNAME
		}
		name := make([]byte, ifNameSize)
		copy(name, r.Device)
		e = append(e, &expr.Meta{Key: key, Register: 1}, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name})
	}
	if bits := r.Match.Bits(); bits > 0 {
		offset := uint32(12) // IPv4 source address
		if r.Kind == KindDNAT {
			offset = 16 // destination address
		}
		e = append(e, &expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: offset, Len: 4})
		if bits < 32 {
			mask := net.CIDRMask(bits, 32)
			e = append(e, &expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: make([]byte, 4)})
		}
		addr := r.Match.Addr().As4()
		e = append(e, &expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: addr[:]})
	}
	to := r.To.As4()
	// RegAddrMax as the kernel reports it back (a range of one address), so that a rule read
	// back equals the one written.
	nat := &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: 1, RegAddrMax: 1}
	if r.Kind == KindSNAT {
		// Neutron adds --random-fully to its SNAT rules when iptables has it (it does on
		// every supported distribution): ports are picked at random, not in sequence.
		nat.Type, nat.FullyRandom = expr.NATTypeSourceNAT, true
	}
	return append(e, &expr.Immediate{Register: 1, Data: to[:]}, nat)
}

// flushConntrack deletes, in ns, the conntrack entries the rules translated.
func flushConntrack(ns netns.NsHandle, rules []Rule) (uint, error) {
	if len(rules) == 0 {
		return 0, nil
	}
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("conntrack: %w", err)
	}
	defer h.Close()
	var filters []netlink.CustomConntrackFilter
	for _, r := range rules {
		f, err := conntrackFilter(r)
		if err != nil {
			return 0, fmt.Errorf("conntrack: %s: %w", r, err)
		}
		filters = append(filters, f)
	}
	n, err := h.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		return n, fmt.Errorf("conntrack: delete the entries of %d removed rules: %w", len(rules), err)
	}
	return n, nil
}

// conntrackFilter matches the entries r made: for a DNAT, original destination = its
// address and reply source = its target; for an SNAT, original source in its prefix and
// reply destination = its target.
func conntrackFilter(r Rule) (*netlink.ConntrackFilter, error) {
	f := &netlink.ConntrackFilter{}
	to := net.IP(r.To.AsSlice())
	if r.Kind == KindDNAT {
		if err := f.AddIP(netlink.ConntrackOrigDstIP, net.IP(r.Match.Addr().AsSlice())); err != nil {
			return nil, err
		}
		return f, f.AddIP(netlink.ConntrackReplySrcIP, to)
	}
	if err := f.AddIPNet(netlink.ConntrackOrigSrcIP, ipNet(r.Match)); err != nil {
		return nil, err
	}
	return f, f.AddIP(netlink.ConntrackReplyDstIP, to)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
