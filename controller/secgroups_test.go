package controller

import (
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/topology"
)

// sgTopology is a node whose ports use security groups that name each other and an address
// group as their rules' remote sides: p-web (sg-web, allowed address pairs), p-db (sg-db and
// sg-web, dual stack), p-open (no port security), p-odd (extra's groups), p-unbound (not
// plugged); r-db is a member of sg-db on another host. extra adds YAML to the
// security_groups list and extraPorts to the ports.
func sgTopology(groups, extraPorts string) string {
	return `
other_hosts: [{name: h2, ip: 192.0.2.2}]
networks:
  - {id: net-a, network_type: vlan, physical_network: physnet1, segmentation_id: 100}
subnets:
  - {id: sub-a, network_id: net-a, cidr: 10.0.0.0/24, ip_version: 4}
  - {id: sub-a6, network_id: net-a, cidr: "2001:db8::/64", ip_version: 6}
ports:
  - {id: p-web, network_id: net-a, mac: "fa:16:3e:00:00:01", security_groups: [sg-web],
     fixed_ips: [{ip_address: 10.0.0.11}],
     allowed_address_pairs: [{ip_address: 10.0.0.100}, {ip_address: 10.0.1.5/28, mac_address: "fa:16:3e:00:00:99"}]}
  - {id: p-db, network_id: net-a, mac: "fa:16:3e:00:00:02", security_groups: [sg-web, sg-db, sg-web],
     fixed_ips: [{ip_address: 10.0.0.12}, {ip_address: "2001:db8::12"}]}
  - {id: p-open, network_id: net-a, mac: "fa:16:3e:00:00:03", port_security_enabled: false, fixed_ips: [{ip_address: 10.0.0.13}]}
  - {id: p-unbound, network_id: net-a, mac: "fa:16:3e:00:00:04", security_groups: [sg-unbound]}
` + extraPorts + `
remote_ports:
  - {host: h2, id: r-db, network_id: net-a, mac: "fa:16:3e:00:01:01", security_groups: [sg-db],
     fixed_ips: [{ip_address: 10.0.0.21}]}
security_groups:
  - id: sg-web
    security_group_rules:
      - {direction: ingress, protocol: tcp, port_range_min: 80, port_range_max: 80, remote_group_id: sg-db}
      - {direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22, remote_address_group_id: ag-admin}
      - {direction: egress}
  - id: sg-db
    security_group_rules:
      - {direction: ingress, protocol: tcp, port_range_min: 5432, port_range_max: 5432, remote_group_id: sg-web}
      - {direction: ingress, ethertype: IPv6, remote_group_id: sg-db}
  - {id: sg-unbound, security_group_rules: [{direction: ingress, remote_group_id: sg-lonely}]}
  - {id: sg-lonely, security_group_rules: [{direction: ingress, remote_address_group_id: ag-unused}]}
` + groups + `
address_groups:
  - {id: ag-admin, addresses: [192.0.2.0/28]}
  - {id: ag-unused, addresses: [198.51.100.0/24]}
`
}

// sgSnapshot parses a topology and adds a port known only as a member of sg-db (as the
// Neutron source gives them).
func sgSnapshot(t *testing.T, text string) *northbound.Snapshot {
	t.Helper()
	topo, err := topology.Parse([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	s := topo.Snapshot()
	s.Model.GroupMembers = append(s.Model.GroupMembers, northbound.GroupMember{PortID: "m-db", SecurityGroups: []string{"sg-db"},
		Addresses: []netip.Prefix{netip.MustParsePrefix("10.9.0.5/32"), netip.MustParsePrefix("10.0.0.21/32")}})
	return s
}

// sgObserved plugs every port of the topology but p-unbound, with ofports from 3.
func sgObserved(ids ...string) Observed {
	obs := Observed{IntPorts: map[string]uint32{"physnet1": 1}, PhyPorts: map[string]uint32{"physnet1": 1}}
	for i, id := range append([]string{"p-web", "p-db", "p-open"}, ids...) {
		obs.VIFs = append(obs.VIFs, vif("tap-"+id, id, 3+i))
	}
	return obs
}

func firewallConfig(driver string) *config.Config {
	cfg := config.DefaultConfig()
	cfg.BridgeMappings = map[string]string{"physnet1": "br-vlan"}
	cfg.FirewallDriver = driver
	return cfg
}

func nodePort(t *testing.T, n *state.Node, id string) *state.Port {
	t.Helper()
	for i := range n.Ports {
		if n.Ports[i].ID == id {
			return &n.Ports[i]
		}
	}
	t.Fatalf("port %s not bound", id)
	return nil
}

func groupIDs[T any](gs []T, id func(T) string) []string {
	var out []string
	for _, g := range gs {
		out = append(out, id(g))
	}
	return out
}

func sgIDs(n *state.Node) []string {
	return groupIDs(n.SecurityGroups, func(g state.SecurityGroup) string { return g.ID })
}

func prefixes(ss ...string) []netip.Prefix {
	out := []netip.Prefix{}
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

// TestBindSecurityGroups: with the firewall on, the node holds the groups of its bound
// ports with port security (not those of unplugged ports, nor groups only named as remote
// groups), the address groups their rules name, and for every remote group their rules
// name the addresses of its members on every host — fixed IPs as host prefixes, allowed
// address pairs, remote ports, members known only as such — sorted, without duplicates,
// as Neutron's sg_member_ips (host bits cleared: 10.0.1.5/28 is 10.0.1.0/28). Without the firewall only the ports' group ids are set.
func TestBindSecurityGroups(t *testing.T) {
	snap := sgSnapshot(t, sgTopology("", ""))
	for _, tt := range []struct {
		driver   string
		firewall bool
	}{{"openvswitch", true}, {"neutron.agent.linux.openvswitch_firewall:OVSFirewallDriver", true}, {"noop", false}, {"", false}} {
		t.Run(tt.driver, func(t *testing.T) {
			cfg := firewallConfig(tt.driver)
			model, problems := northbound.Validate(*snap, cfg.Env())
			if len(problems) > 0 {
				t.Fatal(problems)
			}
			n := Bind(cfg, model, sgObserved(), NewLocalVLANs()).Node
			if n.Host.Firewall != tt.firewall || n.Host.PreventARPSpoofing == tt.firewall {
				t.Errorf("Host.Firewall %v, PreventARPSpoofing %v", n.Host.Firewall, n.Host.PreventARPSpoofing)
			}
			if got := nodePort(t, n, "p-db").SecurityGroups; !slices.Equal(got, []string{"sg-db", "sg-web"}) {
				t.Errorf("p-db's groups %v, want [sg-db sg-web]", got)
			}
			if got := nodePort(t, n, "p-open").SecurityGroups; got != nil {
				t.Errorf("p-open's groups %v, want none", got)
			}
			for _, p := range n.Ports {
				if p.FirewallBlocked {
					t.Errorf("port %s blocked", p.ID)
				}
			}
			if !tt.firewall {
				if n.SecurityGroups != nil || n.AddressGroups != nil || n.GroupMembers != nil {
					t.Errorf("groups without the firewall: %v %v %v", n.SecurityGroups, n.AddressGroups, n.GroupMembers)
				}
				return
			}
			if got := sgIDs(n); !slices.Equal(got, []string{"sg-db", "sg-web"}) {
				t.Errorf("security groups %v, want [sg-db sg-web]", got)
			}
			if sg, _ := n.SecurityGroup("sg-web"); len(sg.Rules) != 3 || !sg.Stateful {
				t.Errorf("sg-web = %+v", sg)
			}
			if got := groupIDs(n.AddressGroups, func(g state.AddressGroup) string { return g.ID }); !slices.Equal(got, []string{"ag-admin"}) {
				t.Errorf("address groups %v, want [ag-admin]", got)
			}
			want := map[string][]netip.Prefix{
				"sg-db": prefixes("10.0.0.12/32", "10.0.0.21/32", "10.9.0.5/32", "2001:db8::12/128"),
				"sg-web": prefixes("10.0.0.11/32", "10.0.0.12/32", "10.0.0.100/32", "10.0.1.0/28",
					"2001:db8::12/128"),
			}
			if !reflect.DeepEqual(n.GroupMembers, want) {
				t.Errorf("group members %v\nwant %v", n.GroupMembers, want)
			}
			for id, members := range n.GroupMembers {
				if m := model.SecurityGroupMembers(id); !slices.Equal(members, m) {
					t.Errorf("%s: members %v, the model's sg_member_ips %v", id, members, m)
				}
			}
		})
	}
}

// withheldAgent is an agent without a switch: enough for SetSnapshot and the plan.
func withheldAgent(t *testing.T) (*Agent, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.InfoLevel)
	cfg := firewallConfig("openvswitch")
	return &Agent{cfg: cfg, log: zap.New(core), vlans: NewLocalVLANs(), groupHistory: newGroupHistory()}, logs
}

// bindNow is the node the agent's next reconcile would program.
func (a *Agent) bindNow(obs Observed) *state.Node {
	p, _ := computePlan(a.cfg, a.model, a.groups, obs, a.vlans)
	return p.binding.Node
}

// sgOdd is sg-odd in one of its versions: valid with an SSH rule, valid with an HTTPS
// rule, or withheld for a rule whose port range has no protocol.
const (
	sgOddSSH     = "  - {id: sg-odd, security_group_rules: [{direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22}]}\n"
	sgOddHTTPS   = "  - {id: sg-odd, security_group_rules: [{direction: ingress, protocol: tcp, port_range_min: 443, port_range_max: 443}]}\n"
	sgOddInvalid = "  - {id: sg-odd, security_group_rules: [{direction: ingress, port_range_min: 22, port_range_max: 22}]}\n"
	portOdd      = "  - {id: p-odd, network_id: net-a, mac: \"fa:16:3e:00:00:05\", security_groups: [sg-odd]}\n"
)

func oddRulePort(t *testing.T, n *state.Node) int {
	t.Helper()
	sg, ok := n.SecurityGroup("sg-odd")
	if !ok {
		t.Fatalf("sg-odd not in force: %v", sgIDs(n))
	}
	pr, _ := sg.Rules[0].Ports()
	return int(pr.Min)
}

func messages(logs *observer.ObservedLogs, group string) []string {
	var out []string
	for _, e := range logs.TakeAll() {
		if e.ContextMap()["security_group"] == group {
			out = append(out, e.Message)
		}
	}
	return out
}

// TestWithheldGroupKeepsItsLastValidVersion: a group the source withholds (a bad rule) stays
// in force in the last valid version the agent saw, across snapshots, and is logged once;
// one the agent never saw valid blocks the ports naming it (nothing opens up because of a
// bad rule), as does a port whose groups cannot be combined; a group no local port names
// any more is forgotten.
func TestWithheldGroupKeepsItsLastValidVersion(t *testing.T) {
	a, logs := withheldAgent(t)
	obs := sgObserved("p-odd")
	set := func(groups string) *state.Node {
		t.Helper()
		a.SetSnapshot(sgSnapshot(t, sgTopology(groups, portOdd)))
		return a.bindNow(obs)
	}

	// Never seen valid: p-odd is blocked, and the others are not.
	n := set(sgOddInvalid)
	if !nodePort(t, n, "p-odd").FirewallBlocked || nodePort(t, n, "p-web").FirewallBlocked {
		t.Errorf("p-odd blocked %v (want true), p-web blocked %v", nodePort(t, n, "p-odd").FirewallBlocked, nodePort(t, n, "p-web").FirewallBlocked)
	}
	if _, ok := n.SecurityGroup("sg-odd"); ok {
		t.Error("a group never seen valid is in force")
	}
	if got := messages(logs, "sg-odd"); len(got) != 1 || !strings.Contains(got[0], "never seen valid") {
		t.Errorf("logs about sg-odd: %q", got)
	}

	// Valid, then withheld: the valid version stays, logged once however many snapshots.
	if n = set(sgOddSSH); nodePort(t, n, "p-odd").FirewallBlocked || oddRulePort(t, n) != 22 {
		t.Errorf("valid sg-odd: blocked %v, rule port %d", nodePort(t, n, "p-odd").FirewallBlocked, oddRulePort(t, n))
	}
	if got := messages(logs, "sg-odd"); len(got) != 1 || !strings.Contains(got[0], "valid again") {
		t.Errorf("logs about sg-odd: %q", got)
	}
	for range 3 {
		n = set(sgOddInvalid)
		if nodePort(t, n, "p-odd").FirewallBlocked || oddRulePort(t, n) != 22 {
			t.Errorf("withheld sg-odd: blocked %v, rule port %d; want the SSH version kept", nodePort(t, n, "p-odd").FirewallBlocked, oddRulePort(t, n))
		}
	}
	if !slices.Equal(a.model.WithheldSecurityGroups, []string{"sg-odd"}) {
		t.Fatalf("withheld %v: the test's invalid version is valid", a.model.WithheldSecurityGroups)
	}
	if got := messages(logs, "sg-odd"); len(got) != 1 || !strings.Contains(got[0], "last valid version stays in force") {
		t.Errorf("logs about sg-odd: %q, want one", got)
	}

	// A new valid version replaces the kept one, and is kept in turn.
	if n = set(sgOddHTTPS); oddRulePort(t, n) != 443 {
		t.Errorf("rule port %d, want the new version's 443", oddRulePort(t, n))
	}
	if n = set(sgOddInvalid); oddRulePort(t, n) != 443 || nodePort(t, n, "p-odd").FirewallBlocked {
		t.Errorf("rule port %d, want the last valid version's 443", oddRulePort(t, n))
	}

	// A group the model does not know at all (not given yet) keeps its version too.
	if n = set(""); oddRulePort(t, n) != 443 || nodePort(t, n, "p-odd").FirewallBlocked {
		t.Errorf("unknown sg-odd: rule port %d, blocked %v", oddRulePort(t, n), nodePort(t, n, "p-odd").FirewallBlocked)
	}

	// No local port names it: forgotten. Named again while withheld: blocked.
	a.SetSnapshot(sgSnapshot(t, sgTopology(sgOddSSH, "")))
	a.SetSnapshot(sgSnapshot(t, sgTopology(sgOddInvalid, portOdd)))
	if n = a.bindNow(obs); !nodePort(t, n, "p-odd").FirewallBlocked {
		t.Error("a forgotten group's version came back")
	}

	// Without the agent's memory (Bind), a withheld group blocks its ports.
	set(sgOddSSH)
	set(sgOddInvalid)
	if n = Bind(a.cfg, a.model, obs, NewLocalVLANs()).Node; !nodePort(t, n, "p-odd").FirewallBlocked {
		t.Error("Bind without history did not block a port of a withheld group")
	}
}

// TestWithheldGroupKeepsItsAddressGroup: a withheld group's kept version names an address
// group that the model no longer has (it became invalid, which withholds the group): the
// last valid version of the address group stays in force with it.
func TestWithheldGroupKeepsItsAddressGroup(t *testing.T) {
	a, _ := withheldAgent(t)
	obs := sgObserved()
	a.SetSnapshot(sgSnapshot(t, sgTopology("", "")))
	text := strings.Replace(sgTopology("", ""), "{id: ag-admin, addresses: [192.0.2.0/28]}", "{id: ag-admin, addresses: [192.0.2.0/28, bogus]}", 1)
	a.SetSnapshot(sgSnapshot(t, text))
	if !slices.Contains(a.model.WithheldSecurityGroups, "sg-web") {
		t.Fatalf("withheld %v: want sg-web (its address group is invalid)", a.model.WithheldSecurityGroups)
	}
	n := a.bindNow(obs)
	if nodePort(t, n, "p-web").FirewallBlocked {
		t.Error("p-web blocked, want sg-web's last valid version")
	}
	ag, ok := n.AddressGroup("ag-admin")
	if !ok || !slices.Equal(ag.Addresses, prefixes("192.0.2.0/28")) {
		t.Errorf("ag-admin = %+v (%v), want its last valid version", ag, ok)
	}
}

// TestFirewallBlockedPorts: a port whose filtering no group version can make right is
// blocked with the firewall on (and only then).
func TestFirewallBlockedPorts(t *testing.T) {
	stateless := "  - {id: sg-free, stateful: false, security_group_rules: [{direction: egress}]}\n"
	for _, tt := range []struct {
		name, groups, port string
		blocked            bool
	}{
		{"valid group", sgOddSSH, portOdd, false},
		{"unknown group", "", portOdd, true},
		{"withheld group", sgOddInvalid, portOdd, true},
		{"stateful and stateless mixed", sgOddSSH + stateless,
			"  - {id: p-odd, network_id: net-a, mac: \"fa:16:3e:00:00:05\", security_groups: [sg-odd, sg-free]}\n", true},
		{"groups without port security", sgOddSSH,
			"  - {id: p-odd, network_id: net-a, mac: \"fa:16:3e:00:00:05\", port_security_enabled: false, security_groups: [sg-odd]}\n", true},
		{"no groups", "", "  - {id: p-odd, network_id: net-a, mac: \"fa:16:3e:00:00:05\"}\n", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, driver := range []string{"openvswitch", "noop"} {
				cfg := firewallConfig(driver)
				model, _ := northbound.Validate(*sgSnapshot(t, sgTopology(tt.groups, tt.port)), cfg.Env())
				n := Bind(cfg, model, sgObserved("p-odd"), NewLocalVLANs()).Node
				if got, want := nodePort(t, n, "p-odd").FirewallBlocked, tt.blocked && cfg.Firewall(); got != want {
					t.Errorf("%s: blocked %v, want %v", driver, got, want)
				}
			}
		})
	}
}

// TestProblemsLoggedOnceEach: a problem is logged when it appears and when it is gone, not
// again with every snapshot that still has it (a source sends a snapshot per change).
func TestProblemsLoggedOnceEach(t *testing.T) {
	a, logs := withheldAgent(t)
	count := func(msg string) int {
		n := 0
		for _, e := range logs.TakeAll() {
			if e.Message == msg && e.ContextMap()["id"] == "sg-odd" {
				n++
			}
		}
		return n
	}
	a.SetSnapshot(sgSnapshot(t, sgTopology(sgOddInvalid, portOdd)))
	if n := count("topology object skipped"); n != 1 {
		t.Fatalf("the invalid group logged %d times at its first snapshot, want 1", n)
	}
	for range 5 {
		a.SetSnapshot(sgSnapshot(t, sgTopology(sgOddInvalid, portOdd)))
	}
	if n := count("topology object skipped"); n != 0 {
		t.Errorf("the same problem logged again %d times over 5 more snapshots, want 0", n)
	}
	a.SetSnapshot(sgSnapshot(t, sgTopology(sgOddSSH, portOdd)))
	if n := count("topology object problem resolved"); n != 1 {
		t.Errorf("the fixed group's problem: %d resolved lines, want 1", n)
	}
	a.SetSnapshot(sgSnapshot(t, sgTopology(sgOddInvalid, portOdd)))
	if n := count("topology object skipped"); n != 1 {
		t.Errorf("the problem back again: logged %d times, want 1", n)
	}
}
