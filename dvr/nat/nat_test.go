package nat

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

func routerSNAT() SNAT {
	return SNAT{Object: "router r1", Source: subnet, OutDevice: gwDevice, To: gateway}
}

func floatingIP() (SNAT, DNAT) {
	return SNAT{Object: "floatingip f1", Source: netip.PrefixFrom(vm, 32), OutDevice: gwDevice, To: fip},
		DNAT{Object: "floatingip f1", Destination: fip, InDevice: gwDevice, To: vm}
}

// TestSNAT: a datagram from inside reaches the outside with its own source before Apply,
// with the gateway's after; a second Apply changes nothing; an empty set removes the table
// and the translation (the connection's conntrack entry included).
func TestSNAT(t *testing.T) {
	l := newLab(t)
	listener := l.outside.socket(t, world)
	c := l.inside.socket(t, vm)
	if got := sourceSeen(t, c, listener); got != vm {
		t.Fatalf("before Apply the outside sees %s, want %s (no NAT)", got, vm)
	}

	set := Set{SNAT: []SNAT{routerSNAT()}}
	l.apply(t, set, 1, 0)
	c = l.inside.socket(t, vm) // a new connection, whatever conntrack made of the old one
	if got := sourceSeen(t, c, listener); got != gateway {
		t.Fatalf("after Apply the outside sees %s, want the gateway %s", got, gateway)
	}
	want := map[string][]string{PreroutingChain: {}, PostroutingChain: {"router r1: snat src=10.0.0.0/24 out=qg-out to=203.0.113.1"}}
	if got := tableRules(t, l.router); !equalRules(got, want) {
		t.Fatalf("table holds %q, want %q", got, want)
	}

	l.apply(t, set, 0, 0)
	if got := sourceSeen(t, c, listener); got != gateway {
		t.Fatalf("after a second Apply the outside sees %s, want %s", got, gateway)
	}

	res := l.apply(t, Set{}, 0, 1)
	if res.Conntrack == 0 {
		t.Errorf("removing the SNAT deleted no conntrack entry")
	}
	if hasTable(t, l.router, TableName) {
		t.Fatalf("table %s still there after Apply with an empty set", TableName)
	}
	// Same socket, same 5-tuple: only the conntrack flush makes it lose its NAT.
	if got := sourceSeen(t, c, listener); got != vm {
		t.Fatalf("after removing the SNAT the outside sees %s, want %s", got, vm)
	}
	l.apply(t, Set{}, 0, 0)
}

// TestFloatingIP: a floating IP's DNAT brings the outside to the VM, its SNAT wins over the
// router's subnet SNAT (added to an existing table, where it must be inserted before the
// subnet rule), another address of the subnet still gets the gateway, and removing the
// floating IP stops both (conntrack included): the VM's datagrams leave with the gateway
// address and the floating IP no longer reaches it.
func TestFloatingIP(t *testing.T) {
	l := newLab(t)
	outside := l.outside.socket(t, world)
	inside := l.inside.socket(t, vm)
	inside2 := l.inside.socket(t, vm2)
	fromWorld := l.outside.socket(t, world)
	toFIP := netip.AddrPortFrom(fip, port(inside))

	if reaches(t, fromWorld, toFIP, inside) {
		t.Fatal("the floating IP reaches the VM before Apply")
	}
	l.apply(t, Set{SNAT: []SNAT{routerSNAT()}}, 1, 0)
	fipSNAT, fipDNAT := floatingIP()
	// The subnet rule is listed first: the order in the input must not matter.
	set := Set{SNAT: []SNAT{routerSNAT(), fipSNAT}, DNAT: []DNAT{fipDNAT}}
	l.apply(t, set, 2, 0)
	want := map[string][]string{
		PreroutingChain: {"floatingip f1: dnat dst=203.0.113.10 in=qg-out to=10.0.0.2"},
		PostroutingChain: {
			"floatingip f1: snat src=10.0.0.2/32 out=qg-out to=203.0.113.10",
			"router r1: snat src=10.0.0.0/24 out=qg-out to=203.0.113.1",
		},
	}
	if got := tableRules(t, l.router); !equalRules(got, want) {
		t.Fatalf("table holds %q, want %q", got, want)
	}

	if got := sourceSeen(t, inside, outside); got != fip {
		t.Fatalf("the VM's datagram leaves with source %s, want its floating IP %s", got, fip)
	}
	if got := sourceSeen(t, inside2, outside); got != gateway {
		t.Fatalf("the other address's datagram leaves with source %s, want the gateway %s", got, gateway)
	}
	if !reaches(t, fromWorld, toFIP, inside) {
		t.Fatal("a datagram to the floating IP does not reach the VM")
	}
	if got := sourceSeenVia(t, fromWorld, toFIP, inside); got != world {
		t.Fatalf("the VM sees the outside as %s, want %s (DNAT only)", got, world)
	}

	l.apply(t, set, 0, 0)

	res := l.apply(t, Set{SNAT: []SNAT{routerSNAT()}}, 0, 2)
	if res.Conntrack < 2 {
		t.Errorf("removing the floating IP deleted %d conntrack entries, want at least 2 (one per direction's connection)", res.Conntrack)
	}
	// The same sockets: their conntrack entries went with the rules.
	if got := sourceSeen(t, inside, outside); got != gateway {
		t.Fatalf("after removing the floating IP the VM's datagram leaves with source %s, want the gateway %s", got, gateway)
	}
	if reaches(t, fromWorld, toFIP, inside) {
		t.Fatal("the floating IP still reaches the VM after its removal")
	}
}

// TestForeignTables: other tables are never touched, and a table with our name but without
// our marker is refused, not replaced.
func TestForeignTables(t *testing.T) {
	l := newLab(t)
	conn, err := nftables.New(nftables.WithNetNSFd(int(l.router.ns)))
	if err != nil {
		t.Fatal(err)
	}
	foreign := conn.AddTable(&nftables.Table{Name: "operator", Family: nftables.TableFamilyIPv4})
	fc := conn.AddChain(&nftables.Chain{Name: "postrouting", Table: foreign, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	conn.AddRule(&nftables.Rule{Table: foreign, Chain: fc, Exprs: []expr.Any{&expr.Counter{}}})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	foreignRules := func() int {
		rules, err := conn.GetRules(foreign, fc)
		if err != nil {
			t.Fatalf("foreign table: %v", err)
		}
		return len(rules)
	}

	l.apply(t, Set{SNAT: []SNAT{routerSNAT()}}, 1, 0)
	l.apply(t, Set{}, 0, 1)
	if !hasTable(t, l.router, "operator") || foreignRules() != 1 {
		t.Fatal("the foreign table or its rule is gone")
	}

	// A table named like ours, made by someone else.
	impostor := conn.AddTable(&nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4})
	ic := conn.AddChain(&nftables.Chain{Name: PostroutingChain, Table: impostor})
	conn.AddRule(&nftables.Rule{Table: impostor, Chain: ic, Exprs: []expr.Any{&expr.Counter{}}})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}
	for _, set := range []Set{{SNAT: []SNAT{routerSNAT()}}, {}} {
		_, err = Apply(l.router.ns, set)
		if err == nil || !strings.Contains(err.Error(), "table ip "+TableName) {
			t.Fatalf("Apply over a foreign %s: err = %v, want one naming the table", TableName, err)
		}
		if got := tableRules(t, l.router); !equalRules(got, map[string][]string{PostroutingChain: {"foreign"}}) {
			t.Fatalf("the foreign %s was changed: %q", TableName, got)
		}
	}
}

// TestRepairs: what someone changed in our table is put back: a rule of ours deleted, one
// replaced by a rule carrying its user data but doing something else, a chain added to our
// table, a chain of ours remade with another priority.
func TestRepairs(t *testing.T) {
	l := newLab(t)
	fipSNAT, fipDNAT := floatingIP()
	set := Set{SNAT: []SNAT{routerSNAT(), fipSNAT}, DNAT: []DNAT{fipDNAT}}
	l.apply(t, set, 3, 0)
	want := tableRules(t, l.router)

	conn, err := nftables.New(nftables.WithNetNSFd(int(l.router.ns)))
	if err != nil {
		t.Fatal(err)
	}
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	post := &nftables.Chain{Name: PostroutingChain, Table: table}
	rules, err := conn.GetRules(table, post)
	if err != nil || len(rules) != 2 {
		t.Fatalf("postrouting: %d rules, %v", len(rules), err)
	}
	for _, r := range rules { // the floating IP's SNAT and the subnet's
		if err := conn.DelRule(r); err != nil {
			t.Fatal(err)
		}
	}
	conn.AddRule(&nftables.Rule{Table: table, Chain: post, Exprs: []expr.Any{&expr.Counter{}}, UserData: rules[1].UserData})
	conn.AddChain(&nftables.Chain{Name: "extra", Table: table})
	// The prerouting chain made again at the wrong priority, with a copy of our rule.
	pre := &nftables.Chain{Name: PreroutingChain, Table: table}
	preRules, err := conn.GetRules(table, pre)
	if err != nil || len(preRules) != 1 {
		t.Fatalf("prerouting: %d rules, %v", len(preRules), err)
	}
	conn.FlushChain(pre)
	conn.DelChain(pre)
	wrong := conn.AddChain(&nftables.Chain{Name: PreroutingChain, Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPrerouting, Priority: nftables.ChainPriorityRef(-50)})
	conn.AddRule(&nftables.Rule{Table: table, Chain: wrong, Exprs: preRules[0].Exprs, UserData: preRules[0].UserData})
	if err := conn.Flush(); err != nil {
		t.Fatal(err)
	}

	// Added: both SNATs and the DNAT in the remade chain; removed: the forged SNAT and the
	// DNAT in the wrong chain.
	l.apply(t, set, 3, 2)
	if got := tableRules(t, l.router); !equalRules(got, want) {
		t.Fatalf("after repair the table holds %q, want %q", got, want)
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range chains {
		if c.Table.Name == TableName && c.Name == PreroutingChain && *c.Priority != *nftables.ChainPriorityNATDest {
			t.Errorf("prerouting has priority %d after repair", *c.Priority)
		}
	}
	l.apply(t, set, 0, 0)
	listener := l.outside.socket(t, world)
	if got := sourceSeen(t, l.inside.socket(t, vm), listener); got != fip {
		t.Fatalf("after repair the VM's datagram leaves with source %s, want %s", got, fip)
	}
	if got := sourceSeen(t, l.inside.socket(t, vm2), listener); got != gateway {
		t.Fatalf("after repair the other address's datagram leaves with source %s, want %s", got, gateway)
	}
}

// TestInvalidRules: an invalid rule is reported, naming its object and field, and the valid
// ones are applied.
func TestInvalidRules(t *testing.T) {
	l := newLab(t)
	bad := SNAT{Object: "floatingip broken", Source: netip.MustParsePrefix("10.0.0.2/24"), To: fip}
	res, err := Apply(l.router.ns, Set{SNAT: []SNAT{routerSNAT(), bad}})
	if err == nil || !strings.Contains(err.Error(), `"floatingip broken": Source`) {
		t.Fatalf("Apply: err = %v, want one naming the floating IP and Source", err)
	}
	if res.Added != 1 {
		t.Fatalf("Apply added %d rules, want the valid one", res.Added)
	}
	if got := sourceSeen(t, l.inside.socket(t, vm), l.outside.socket(t, world)); got != gateway {
		t.Fatalf("the outside sees %s, want %s", got, gateway)
	}
}

func equalRules(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || join(v) != join(w) {
			return false
		}
	}
	return true
}
