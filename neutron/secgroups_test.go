package neutron

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/dvrflow/dvrflow/northbound"
)

const (
	sgDefault = "4d648cf5-0000-4000-8000-000000000001"
	sgWeb     = "4d648cf5-0000-4000-8000-000000000002"
	p2        = "c0000002-0000-4000-8000-000000000002"
	p3        = "c0000003-0000-4000-8000-000000000003"
	ag1       = "a9000001-0000-4000-8000-000000000001"
)

// sgPortObject is a Port 1.7 primitive bound to host, at revision rev, with address ip and
// security groups.
func sgPortObject(id, host string, rev int, ip string, groups ...string) string {
	o := pushedPortObject(id, host, rev, true)
	o = strings.ReplaceAll(o, `"10.0.1.11"`, `"`+ip+`"`)
	if id != p1 {
		o = strings.ReplaceAll(o, `fa:16:3e:00:00:01`, `fa:16:3e:00:00:`+id[len(id)-2:])
		o = strings.ReplaceAll(o, `"10.0.1.100/32"`, `"`+ip+`"`)
	}
	list, _ := json.Marshal(groups)
	return strings.Replace(o, `"security_group_ids": []`, `"security_group_ids": `+string(list), 1)
}

// ruleObject is a SecurityGroupRule 1.2 primitive as the server pushes and pulls it; attrs
// are its optional attributes (direction, ethertype, protocol, ports, remotes) as JSON.
func ruleObject(id, group string, rev int, attrs string) string {
	return `{"versioned_object.name": "SecurityGroupRule", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.2",
	"versioned_object.data": {"id": "` + id + `", "project_id": "demo", "security_group_id": "` + group + `", "revision_number": ` + fmt.Sprint(rev) + `,
		"created_at": "2026-11-21T19:10:11Z", "updated_at": "2026-11-21T19:10:11Z", "description": "", ` + attrs + `}}`
}

// defaultRules are the rules of a project's default group (reference §3.2): IPv4 and IPv6
// in from the group's members, and out to anywhere.
func defaultRules(group string) []string {
	return []string{
		ruleObject("r0000001-0000-4000-8000-000000000001", group, 0, `"direction": "ingress", "ethertype": "IPv4", "remote_group_id": "`+group+`", "normalized_cidr": null`),
		ruleObject("r0000002-0000-4000-8000-000000000002", group, 0, `"direction": "egress", "ethertype": "IPv4", "normalized_cidr": null`),
		ruleObject("r0000003-0000-4000-8000-000000000003", group, 0, `"direction": "ingress", "ethertype": "IPv6", "remote_group_id": "`+group+`", "normalized_cidr": null`),
		ruleObject("r0000004-0000-4000-8000-000000000004", group, 0, `"direction": "egress", "ethertype": "IPv6", "normalized_cidr": null`),
	}
}

// groupObject is a SecurityGroup 1.5 primitive.
func groupObject(id, name string, rev int, stateful bool) string {
	return `{"versioned_object.name": "SecurityGroup", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.5",
	"versioned_object.data": {"id": "` + id + `", "name": "` + name + `", "project_id": "demo", "shared": false, "stateful": ` + fmt.Sprint(stateful) + `,
		"is_default": ` + fmt.Sprint(name == "default") + `, "revision_number": ` + fmt.Sprint(rev) + `, "description": "",
		"created_at": "2026-11-21T19:10:11Z", "updated_at": "2026-11-21T19:10:11Z"}}`
}

func addressGroupObject(id string, rev int, addresses ...string) string {
	var list []string
	for _, a := range addresses {
		list = append(list, `{"versioned_object.name": "AddressAssociation", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.0",
			"versioned_object.data": {"address": "`+a+`", "address_group_id": "`+id+`"}}`)
	}
	return `{"versioned_object.name": "AddressGroup", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.2",
	"versioned_object.data": {"id": "` + id + `", "name": "office", "project_id": "demo", "shared": false, "description": "",
		"revision_number": ` + fmt.Sprint(rev) + `, "addresses": [` + strings.Join(list, ",") + `]}}`
}

// sgServer answers the security group pulls from its objects, as neutron-server does: by
// id, by security_group_id, by security_group_ids.
type sgServer struct {
	mu     sync.Mutex
	groups map[string]string   // id → primitive
	rules  map[string][]string // group → primitives
	ports  map[string][]string // group → member primitives
	byID   map[string]string   // port id → primitive
	ags    map[string]string
	fail   bool
	pulls  []string
}

func (v *sgServer) pull(typ string, filter map[string][]string) (string, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range filter {
			if !yield(k) {
				return
			}
		}
	})
	v.pulls = append(v.pulls, fmt.Sprintf("%s %v=%v", typ, keys, filter[keys[0]]))
	if v.fail {
		return `x`, true // does not decode: the call fails
	}
	var out []string
	switch {
	case typ == "SecurityGroup":
		for _, id := range filter["id"] {
			if g, ok := v.groups[id]; ok {
				out = append(out, g)
			}
		}
	case typ == "SecurityGroupRule":
		for _, id := range filter["security_group_id"] {
			out = append(out, v.rules[id]...)
		}
	case typ == "AddressGroup":
		for _, id := range filter["id"] {
			if g, ok := v.ags[id]; ok {
				out = append(out, g)
			}
		}
	case typ == "Port" && filter["security_group_ids"] != nil:
		seen := map[string]bool{}
		for _, id := range filter["security_group_ids"] {
			for _, p := range v.ports[id] {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
		}
	case typ == "Port" && v.byID != nil:
		for _, id := range filter["id"] {
			if p, ok := v.byID[id]; ok {
				out = append(out, p)
			}
		}
	default:
		return "", false
	}
	return "[" + strings.Join(out, ",") + "]", true
}

func (v *sgServer) pulled() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := v.pulls
	v.pulls = nil
	return out
}

// newSGTestSource is a source with security groups on, its server holding the default
// group with p1 (here) and p2 (compute2) in it.
func newSGTestSource(t *testing.T) (*Source, *fakeServer, *sgServer) {
	s, f := newTestSource(t)
	s.set.SecurityGroups = true
	s.c.sg.enabled = true
	v := &sgServer{
		groups: map[string]string{sgDefault: groupObject(sgDefault, "default", 1, true)},
		rules:  map[string][]string{sgDefault: defaultRules(sgDefault)},
		ports: map[string][]string{sgDefault: {sgPortObject(p1, "compute1", 2, "10.0.1.11", sgDefault),
			sgPortObject(p2, "compute2", 3, "10.0.1.12", sgDefault)}},
		ags: map[string]string{},
	}
	f.pull = v.pull
	s.mu.Lock()
	gw := "10.0.1.1"
	if err := s.c.setSubnet(s1, n1, "10.0.1.0/24", &gw, nil, 4); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	return s, f, v
}

// model is the source's snapshot validated, with its problems.
func model(t *testing.T, s *Source) (*northbound.Model, []northbound.Problem) {
	t.Helper()
	s.mu.Lock()
	snap := s.c.snapshot()
	s.mu.Unlock()
	return northbound.Validate(*snap, northbound.Env{Host: "compute1", TunnelTypes: []northbound.NetworkType{northbound.VXLAN},
		LocalIP: netip.MustParseAddr("192.168.0.1")})
}

// plugP1 pushes p1 bound here in the default group and reports its VIF.
func plugP1(t *testing.T, s *Source) {
	t.Helper()
	for _, args := range []json.RawMessage{
		pushArgsJSON("updated", networkPush),
		pushArgsJSON("updated", sgPortObject(p1, "compute1", 2, "10.0.1.11", sgDefault)),
	} {
		if err := s.apply("push", args); err != nil {
			t.Fatal(err)
		}
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(context.Background())
}

func ruleIDs(g *northbound.SecurityGroup) []string {
	var out []string
	for _, r := range g.Rules {
		out = append(out, r.ID)
	}
	return out
}

func prefixes(ps []netip.Prefix) string { return fmt.Sprint(ps) }

// TestDefaultGroupOfAPort: a port in the default group is given with the group, its rules
// and the members of its remote group (the port itself and p2 on another host), pulled as
// Neutron's agent pulls them; until then the port is held back.
func TestDefaultGroupOfAPort(t *testing.T) {
	s, _, v := newSGTestSource(t)
	v.fail = true
	plugP1(t, s)
	if m, _ := model(t, s); len(m.Ports) != 0 {
		t.Fatalf("a port given before its groups are known: %+v", m.Ports)
	}
	v.fail = false
	v.pulled()
	s.work(context.Background())
	if got := v.pulled(); !reflect.DeepEqual(got, []string{
		"SecurityGroup [id]=[" + sgDefault + "]",
		"SecurityGroupRule [security_group_id]=[" + sgDefault + "]",
		"Port [security_group_ids]=[" + sgDefault + "]",
	}) {
		t.Errorf("pulls: %q", got)
	}
	m, problems := model(t, s)
	if len(problems) != 0 {
		t.Fatalf("problems: %v", problems)
	}
	if len(m.Ports) != 1 || !reflect.DeepEqual(m.Ports[0].SecurityGroups, []string{sgDefault}) || m.Ports[0].FirewallWithheld {
		t.Fatalf("ports: %+v", m.Ports)
	}
	g, ok := m.SecurityGroup(sgDefault)
	if !ok || g.Name != "default" || !g.Stateful || len(g.Rules) != 4 {
		t.Fatalf("groups: %+v", m.SecurityGroups)
	}
	if r := g.Rules[0]; r.Direction != northbound.Ingress || r.EtherType != northbound.IPv4 || r.RemoteGroupID != sgDefault || !r.Protocol.Any() {
		t.Errorf("rule 0: %+v", r)
	}
	if got := prefixes(m.SecurityGroupMembers(sgDefault)); got != "[10.0.1.11/32 10.0.1.12/32 10.0.1.100/32]" {
		t.Errorf("members: %s", got)
	}
	if len(m.GroupMembers) != 1 || m.GroupMembers[0].PortID != p2 {
		t.Errorf("group members: %+v", m.GroupMembers)
	}
	// Nothing is pulled again.
	s.work(context.Background())
	if got := v.pulled(); len(got) != 0 {
		t.Errorf("pulled again: %q", got)
	}
}

// TestRulePushes: a rule pushed is added to its group; an older revision of it is ignored;
// a rule pushed as deleted (its id alone) goes; a group pushed as deleted goes with its
// rules, its ports' firewall then withheld.
func TestRulePushes(t *testing.T) {
	s, _, v := newSGTestSource(t)
	plugP1(t, s)
	ssh := "r0000009-0000-4000-8000-000000000009"
	push := func(event string, objects ...string) {
		t.Helper()
		if err := s.apply("push", pushArgsJSON(event, objects...)); err != nil {
			t.Fatal(err)
		}
	}
	push("updated", ruleObject(ssh, sgDefault, 2, `"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
		"port_range_min": 22, "port_range_max": 22, "remote_ip_prefix": "192.0.2.0/24", "normalized_cidr": "192.0.2.0/24"`))
	m, problems := model(t, s)
	g, _ := m.SecurityGroup(sgDefault)
	if len(problems) != 0 || g == nil || len(g.Rules) != 5 {
		t.Fatalf("after the rule push: %+v %v", g, problems)
	}
	r := g.Rules[4]
	if pr, ok := r.Ports(); r.ID != ssh || !ok || pr.Min != 22 || pr.Max != 22 || r.RemoteIPPrefix.String() != "192.0.2.0/24" || r.Protocol.Name() != "tcp" {
		t.Errorf("the pushed rule: %+v", r)
	}
	push("updated", ruleObject(ssh, sgDefault, 1, `"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp",
		"port_range_min": 80, "port_range_max": 80`))
	m, _ = model(t, s)
	if g, _ := m.SecurityGroup(sgDefault); g.Rules[4].RemoteIPPrefix.String() != "192.0.2.0/24" {
		t.Errorf("an older revision was applied: %+v", g.Rules[4])
	}
	push("deleted", `{"versioned_object.name": "SecurityGroupRule", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.2",
		"versioned_object.changes": ["id"], "versioned_object.data": {"id": "`+ssh+`"}}`)
	m, _ = model(t, s)
	if g, _ := m.SecurityGroup(sgDefault); len(g.Rules) != 4 || slices.Contains(ruleIDs(g), ssh) {
		t.Errorf("after the rule's delete: %v", ruleIDs(g))
	}
	// A late update of the deleted rule is ignored.
	push("updated", ruleObject(ssh, sgDefault, 5, `"direction": "ingress", "ethertype": "IPv4"`))
	m, _ = model(t, s)
	if g, _ := m.SecurityGroup(sgDefault); len(g.Rules) != 4 {
		t.Errorf("a deleted rule came back: %v", ruleIDs(g))
	}
	if len(v.pulled()) != 3 {
		t.Error("pulls: want the first three only")
	}

	push("deleted", `{"versioned_object.name": "SecurityGroup", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.5",
		"versioned_object.data": {"id": "`+sgDefault+`"}}`)
	m, problems = model(t, s)
	if len(m.SecurityGroups) != 0 || len(m.Ports) != 1 || !m.Ports[0].FirewallWithheld || len(problems) != 1 {
		t.Errorf("after the group's delete: groups %+v ports %+v problems %v", m.SecurityGroups, m.Ports, problems)
	}
}

// TestGroupPushCarriesRules: a group object that carries its rules gives them (the server
// pushes no rule of a new group on its own); a port moved to it by a Port push gets it
// without a pull of its rules; its remote group's members are pulled.
func TestGroupPushCarriesRules(t *testing.T) {
	s, _, v := newSGTestSource(t)
	plugP1(t, s)
	v.pulled()
	web := strings.Replace(groupObject(sgWeb, "web", 1, false), `"updated_at"`, `"rules": [`+
		ruleObject("r0000010-0000-4000-8000-000000000010", sgWeb, 0, `"direction": "ingress", "ethertype": "IPv4", "protocol": "6",
			"port_range_min": 80, "port_range_max": 443, "remote_group_id": "`+sgWeb+`"`)+`], "updated_at"`, 1)
	v.ports[sgWeb] = []string{sgPortObject(p1, "compute1", 5, "10.0.1.11", sgWeb), sgPortObject(p3, "compute3", 1, "10.0.7.3", sgWeb)}
	for _, args := range []json.RawMessage{
		pushArgsJSON("updated", web),
		pushArgsJSON("updated", sgPortObject(p1, "compute1", 5, "10.0.1.11", sgWeb)),
	} {
		if err := s.apply("push", args); err != nil {
			t.Fatal(err)
		}
	}
	s.work(context.Background())
	if got := v.pulled(); !reflect.DeepEqual(got, []string{"Port [security_group_ids]=[" + sgWeb + "]"}) {
		t.Errorf("pulls: %q", got)
	}
	m, problems := model(t, s)
	g, ok := m.SecurityGroup(sgWeb)
	if len(problems) != 0 || !ok || g.Stateful || len(g.Rules) != 1 || !reflect.DeepEqual(m.Ports[0].SecurityGroups, []string{sgWeb}) {
		t.Fatalf("groups %+v ports %+v problems %v", m.SecurityGroups, m.Ports, problems)
	}
	if got := prefixes(m.SecurityGroupMembers(sgWeb)); got != "[10.0.1.11/32 10.0.1.100/32 10.0.7.3/32]" {
		t.Errorf("members of web: %s", got)
	}
	// p3 leaves the group (a Port push): no longer a member.
	if err := s.apply("push", pushArgsJSON("updated", sgPortObject(p3, "compute3", 2, "10.0.7.3"))); err != nil {
		t.Fatal(err)
	}
	if m, _ := model(t, s); prefixes(m.SecurityGroupMembers(sgWeb)) != "[10.0.1.11/32 10.0.1.100/32]" {
		t.Errorf("members after p3 left: %s", prefixes(m.SecurityGroupMembers(sgWeb)))
	}
}

// TestAddressGroup: a rule's address group is pulled, and its pushes change it.
func TestAddressGroup(t *testing.T) {
	s, _, v := newSGTestSource(t)
	v.rules[sgDefault] = append(v.rules[sgDefault], ruleObject("r0000011-0000-4000-8000-000000000011", sgDefault, 0,
		`"direction": "ingress", "ethertype": "IPv4", "protocol": "icmp", "remote_address_group_id": "`+ag1+`"`))
	v.ags[ag1] = addressGroupObject(ag1, 1, "203.0.113.0/24")
	plugP1(t, s)
	if got := v.pulled(); len(got) != 4 || got[3] != "AddressGroup [id]=["+ag1+"]" {
		t.Errorf("pulls: %q", got)
	}
	m, problems := model(t, s)
	if a, ok := m.AddressGroup(ag1); len(problems) != 0 || !ok || prefixes(a.Addresses) != "[203.0.113.0/24]" {
		t.Fatalf("address groups %+v problems %v", m.AddressGroups, problems)
	}
	if err := s.apply("push", pushArgsJSON("updated", addressGroupObject(ag1, 2, "203.0.113.0/24", "198.51.100.7/32"))); err != nil {
		t.Fatal(err)
	}
	m, _ = model(t, s)
	if a, _ := m.AddressGroup(ag1); prefixes(a.Addresses) != "[198.51.100.7/32 203.0.113.0/24]" {
		t.Errorf("after the push: %+v", a)
	}
	// A bad address is a Problem naming the address group; the rule's group is withheld.
	if err := s.apply("push", pushArgsJSON("updated", addressGroupObject(ag1, 3, "203.0.113.0/33"))); err != nil {
		t.Fatal(err)
	}
	m, problems = model(t, s)
	if len(m.SecurityGroups) != 0 || !m.Ports[0].FirewallWithheld || len(problems) == 0 || problems[0].Kind != northbound.KindAddressGroup ||
		problems[0].ID != ag1 {
		t.Errorf("groups %+v problems %v", m.SecurityGroups, problems)
	}
}

// TestBadRule: a rule that does not parse is a Problem naming its group and the rule; the
// group is withheld and its port keeps its firewall.
func TestBadRule(t *testing.T) {
	s, _, _ := newSGTestSource(t)
	plugP1(t, s)
	if err := s.apply("push", pushArgsJSON("updated", ruleObject("r0000012-0000-4000-8000-000000000012", sgDefault, 1,
		`"direction": "ingress", "ethertype": "IPv4", "protocol": "tcp", "remote_ip_prefix": "10.0.0.300/8"`))); err != nil {
		t.Fatal(err)
	}
	m, problems := model(t, s)
	if len(m.SecurityGroups) != 0 || !reflect.DeepEqual(m.WithheldSecurityGroups, []string{sgDefault}) || !m.Ports[0].FirewallWithheld {
		t.Fatalf("groups %+v withheld %v ports %+v", m.SecurityGroups, m.WithheldSecurityGroups, m.Ports)
	}
	if len(problems) != 1 || problems[0].ID != sgDefault || problems[0].Field != "security_group_rules[r0000012-0000-4000-8000-000000000012].remote_ip_prefix" {
		t.Errorf("problems: %v", problems)
	}
}

// TestResyncRepulls: a resync pulls everything again; a rule or member the server no longer
// has (its push was lost) goes, the pulls replacing what was cached.
func TestResyncRepulls(t *testing.T) {
	s, f, v := newSGTestSource(t)
	// p1 comes from the legacy details call: its groups come with its Port object.
	f.replies["get_devices_details_list_and_failed_devices"] = `{"devices": [
		{"device": "` + p1 + `", "port_id": "` + p1 + `", "network_id": "` + n1 + `", "mac_address": "fa:16:3e:00:00:01",
		 "admin_state_up": true, "network_type": "vxlan", "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
		 "fixed_ips": [{"subnet_id": "` + s1 + `", "ip_address": "10.0.1.11"}], "device_owner": "compute:nova",
		 "allowed_address_pairs": [], "port_security_enabled": true, "profile": {}}], "failed_devices": []}`
	v.byID = map[string]string{p1: sgPortObject(p1, "compute1", 2, "10.0.1.11", sgDefault)}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(context.Background())
	if got := v.pulled(); len(got) != 4 || got[0] != "Port [id]=["+p1+"]" {
		t.Fatalf("pulls: %q", got)
	}
	if m, problems := model(t, s); len(problems) != 0 || len(m.Ports) != 1 || len(m.SecurityGroups) != 1 || len(m.GroupMembers) != 1 {
		t.Fatalf("model %+v problems %v", m, problems)
	}
	// While the broker connection was lost, a rule was deleted and p2 left the group.
	v.rules[sgDefault] = v.rules[sgDefault][1:]
	v.ports[sgDefault] = v.ports[sgDefault][:1]
	s.requestResync()
	s.work(context.Background())
	if got := v.pulled(); len(got) != 4 {
		t.Errorf("pulls at the resync: %q", got)
	}
	m, problems := model(t, s)
	g, _ := m.SecurityGroup(sgDefault)
	if len(problems) != 0 || g == nil || len(g.Rules) != 3 || len(m.GroupMembers) != 0 || len(m.Ports) != 1 {
		t.Errorf("after the resync: group %+v members %+v problems %v", g, m.GroupMembers, problems)
	}
}

// TestSecurityGroupsOff: without Settings.SecurityGroups nothing is pulled, no port is held
// back and the snapshot carries no groups.
func TestSecurityGroupsOff(t *testing.T) {
	s, f := newTestSource(t)
	if err := s.apply("push", pushArgsJSON("updated", networkPush, sgPortObject(p1, "compute1", 2, "10.0.1.11", sgDefault))); err != nil {
		t.Fatal(err)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(context.Background())
	m := validated(t, s)
	if len(m.Ports) != 1 || m.Ports[0].SecurityGroups != nil || len(m.SecurityGroups) != 0 {
		t.Errorf("model: %+v", m)
	}
	for _, c := range f.called("bulk_pull") {
		if strings.Contains(c, "Security") || strings.Contains(c, "security_group") {
			t.Errorf("pulled: %s", c)
		}
	}
}

// TestPrimeKeepsWiredPorts: after a restart, a port a previous run wired is given even when
// its groups cannot be pulled: its firewall is withheld (kept as installed), not emptied,
// and the port is not torn down.
func TestPrimeKeepsWiredPorts(t *testing.T) {
	s, _, v := newSGTestSource(t)
	v.byID = map[string]string{p1: sgPortObject(p1, "compute1", 2, "10.0.1.11", sgDefault)}
	v.fail = true
	snap := s.Prime(context.Background(), []Plugged{{Device: p1, Wired: true}})
	m, problems := northbound.Validate(*snap, northbound.Env{Host: "compute1", TunnelTypes: []northbound.NetworkType{northbound.VXLAN},
		LocalIP: netip.MustParseAddr("192.168.0.1")})
	if len(m.Ports) != 1 || m.Ports[0].ID != p1 || !m.Ports[0].FirewallWithheld || len(problems) != 1 {
		t.Fatalf("ports %+v problems %v", m.Ports, problems)
	}
	// The pulls succeed later: the port gets its groups.
	v.fail = false
	s.work(context.Background())
	if m, problems := model(t, s); len(problems) != 0 || m.Ports[0].FirewallWithheld || len(m.SecurityGroups) != 1 {
		t.Errorf("after the pulls: ports %+v problems %v", m.Ports, problems)
	}
}

// TestResyncKeepsGroupsUntilPulled: between a resync and the pulls that follow it (a
// server counting the agent dead is slow to answer), the cached groups are still given:
// the ports keep their groups and no "unknown security group" problem appears.
func TestResyncKeepsGroupsUntilPulled(t *testing.T) {
	s, f, v := newSGTestSource(t)
	f.replies["get_devices_details_list_and_failed_devices"] = `{"devices": [
		{"device": "` + p1 + `", "port_id": "` + p1 + `", "network_id": "` + n1 + `", "mac_address": "fa:16:3e:00:00:01",
		 "admin_state_up": true, "network_type": "vxlan", "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
		 "fixed_ips": [{"subnet_id": "` + s1 + `", "ip_address": "10.0.1.11"}], "device_owner": "compute:nova",
		 "allowed_address_pairs": [], "port_security_enabled": true, "profile": {}}], "failed_devices": []}`
	v.byID = map[string]string{p1: sgPortObject(p1, "compute1", 2, "10.0.1.11", sgDefault)}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(context.Background())
	if m, problems := model(t, s); len(problems) != 0 || len(m.SecurityGroups) != 1 {
		t.Fatalf("before the resync: model %+v problems %v", m, problems)
	}
	s.mu.Lock()
	s.c.sg.resync()
	s.mu.Unlock()
	m, problems := model(t, s)
	g, _ := m.SecurityGroup(sgDefault)
	if len(problems) != 0 || g == nil || len(g.Rules) != 4 || len(m.Ports) != 1 || len(m.Ports[0].SecurityGroups) != 1 {
		t.Errorf("between the resync and its pulls: group %+v ports %+v problems %v; want the cached group given", g, m.Ports, problems)
	}
}
