package main

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// firewallFixture is a firewall section of 200 ports and 50 rules, 5 rules added per
// agent: Neutron's agent 2.1 … 2.5 s to add and 1.1 … 1.5 s to delete, dvrflow 110 … 150
// ms and 60 … 100 ms.
func firewallFixture() *firewallResult {
	tenths := func(base, step time.Duration) []time.Duration {
		var ds []time.Duration
		for i := range 5 {
			ds = append(ds, base+time.Duration(i+1)*step)
		}
		return ds
	}
	return &firewallResult{Ports: 200, Rules: 50, Reps: 5, Date: time.Date(2026, 12, 8, 1, 0, 0, 0, time.UTC), Took: 7 * time.Minute,
		Agents: []firewallAgentResult{
			{Agent: neutronPython, Host: "fw-python", Active: 40 * time.Second, Stable: 43 * time.Second, Flows: 31500,
				ByTable: map[int]int{71: 1000, 72: 8000, 73: 600, 81: 800, 82: 20000, 91: 1, 92: 1, 93: 1, 94: 1}, Hooks: 400,
				RuleFlows: 400, Added: tenths(2*time.Second, 100*time.Millisecond), Removed: tenths(time.Second, 100*time.Millisecond),
				APIAdd: tenths(50*time.Millisecond, 0), APIRemove: tenths(40*time.Millisecond, 0), PollTook: 30 * time.Millisecond,
				AddCalls: map[string]int{"security_group_info_for_devices": 1}},
			{Agent: neutronDvrflow, Host: "fw-dvrflow", Active: 20 * time.Second, Stable: 21 * time.Second, Flows: 31300,
				ByTable: map[int]int{71: 1000, 72: 8000, 73: 600, 81: 800, 82: 20000, 91: 1, 92: 1, 93: 1, 94: 1}, Hooks: 400,
				RuleFlows: 400, Added: tenths(100*time.Millisecond, 10*time.Millisecond), Removed: tenths(50*time.Millisecond, 10*time.Millisecond),
				APIAdd: tenths(50*time.Millisecond, 0), APIRemove: tenths(40*time.Millisecond, 0), PollTook: 20 * time.Millisecond,
				AtReply: 1,
				AgentAdds: []agentConverged{{1, 400, 30 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond, 50 * time.Millisecond},
					{1, 400, 40 * time.Millisecond, 25 * time.Millisecond, 21 * time.Millisecond, 61 * time.Millisecond},
					{2, 402, 50 * time.Millisecond, 30 * time.Millisecond, 22 * time.Millisecond, 72 * time.Millisecond},
					{1, 400, 30 * time.Millisecond, 20 * time.Millisecond, 0, 0}, {1, 400, 30 * time.Millisecond, 20 * time.Millisecond, 23 * time.Millisecond, 53 * time.Millisecond}}},
		}}
}

func TestFirewallRules(t *testing.T) {
	const group = "6f3c1f2e-0000-4000-8000-000000000001"
	for _, n := range []int{2, 48, 498} {
		rules := firewallRules(n, group)
		if len(rules) != n {
			t.Fatalf("%d rules, want %d", len(rules), n)
		}
		seen := map[string]bool{}
		kinds := map[string]bool{}
		for i, r := range rules {
			key, _ := json.Marshal(r)
			if seen[string(key)] {
				t.Errorf("n=%d: rule %d repeats an earlier one: %s", n, i, key)
			}
			seen[string(key)] = true
			if r.Direction != "ingress" && r.Direction != "egress" || r.EtherType != "IPv4" && r.EtherType != "IPv6" || r.Protocol == nil {
				t.Errorf("rule %d: %s", i, key)
			}
			if r.RemoteGroupID != nil {
				kinds["remote group"] = true
				if *r.RemoteGroupID != group {
					t.Errorf("rule %d: remote group %s, want the group itself", i, *r.RemoteGroupID)
				}
			}
			if r.RemoteIPPrefix != nil {
				kinds["remote prefix"] = true
				p, err := netip.ParsePrefix(*r.RemoteIPPrefix)
				if err != nil || p.Addr().Is4() != (r.EtherType == "IPv4") || p != p.Masked() {
					t.Errorf("rule %d: prefix %s for %s (%v)", i, *r.RemoteIPPrefix, r.EtherType, err)
				}
			}
			switch proto := *r.Protocol; proto {
			case "tcp", "udp":
				if r.PortRangeMin == nil || r.PortRangeMax == nil || *r.PortRangeMin > *r.PortRangeMax || *r.PortRangeMin < 1 {
					t.Errorf("rule %d: ports %s", i, key)
					continue
				}
				if *r.PortRangeMin < *r.PortRangeMax {
					kinds["range"] = true
				}
				if proto == "tcp" && *r.PortRangeMax >= firewallProbePort {
					t.Errorf("rule %d reaches the probe's TCP ports: %s", i, key)
				}
			case "icmp", "ipv6-icmp":
				kinds[proto] = true
				if r.PortRangeMin != nil && *r.PortRangeMin > 255 || r.PortRangeMax != nil && (r.PortRangeMin == nil || *r.PortRangeMax > 255) {
					t.Errorf("rule %d: ICMP type/code %s", i, key)
				}
			default:
				t.Errorf("rule %d: protocol %s", i, proto)
			}
			kinds[r.EtherType+" "+r.Direction] = true
		}
		if n < 48 {
			continue
		}
		for _, k := range []string{"remote group", "remote prefix", "range", "icmp", "ipv6-icmp", "IPv4 ingress", "IPv6 ingress", "IPv4 egress"} {
			if !kinds[k] {
				t.Errorf("n=%d: no %s rule", n, k)
			}
		}
	}
	// The set grows by appending: the first rules of a bigger set are the smaller set.
	a, b := firewallRules(10, "g"), firewallRules(48, "g")
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b[:10])
	if string(ja) != string(jb) {
		t.Errorf("firewallRules(10) is not a prefix of firewallRules(48)")
	}
	if r := firewallProbeRule(40003); r.Direction != "ingress" || r.EtherType != "IPv4" || *r.Protocol != "tcp" || *r.PortRangeMin != 40003 || *r.PortRangeMax != 40003 || r.RemoteGroupID != nil || r.RemoteIPPrefix != nil {
		t.Errorf("probe rule %+v", r)
	}
}

func TestCountFlows(t *testing.T) {
	dump := `OFPST_FLOW reply (OF1.3) (xid=0x2):
 cookie=0x1, priority=65535,dl_vlan=4095 actions=drop
 cookie=0x1, table=60, priority=100,in_port=7 actions=set_field:0x7->reg5,set_field:0x1->reg6,resubmit(,71)
 cookie=0x1, table=60, priority=90,dl_vlan=1,dl_dst=fa:16:3e:00:00:01 actions=set_field:0x7->reg5,set_field:0x1->reg6,pop_vlan,resubmit(,81)
 cookie=0x1, table=60, priority=3 actions=NORMAL
 cookie=0x1, table=60, priority=50,dl_dst=fa:16:3e:00:00:02 actions=goto_table:61
 cookie=0x1, table=60, priority=20,reg6=0x2 actions=goto_table:73
 cookie=0x1, table=71, priority=0 actions=drop
 cookie=0x1, table=72, priority=70,ct_state=+est-rel-rpl,tcp,reg5=0x7,tp_dst=40000 actions=resubmit(,73)
 cookie=0x1, table=77, priority=0 actions=drop
 cookie=0x1, table=82, priority=70,ct_state=+new-est,tcp,reg5=0x7,tp_dst=40000 actions=ct(commit,zone=NXM_NX_REG6[0..15]),output:7,resubmit(,92)
 cookie=0x1, table=82, priority=70,ct_state=+est-rel-rpl,tcp,reg5=0x7,tp_dst=40000 actions=output:7
 cookie=0x1, table=94, priority=12,reg6=0x1,dl_dst=fa:16:3e:00:00:01 actions=output:7
 cookie=0x1, table=95, priority=0 actions=drop
`
	fc := countFlows(dump)
	if fc.Total != 13 || fc.Hooks != 3 {
		t.Errorf("total %d, hooks %d; want 13, 3", fc.Total, fc.Hooks)
	}
	want := map[int]int{71: 1, 72: 1, 82: 2, 94: 1}
	if len(fc.Firewall) != len(want) {
		t.Errorf("firewall tables %v, want %v", fc.Firewall, want)
	}
	for tb, n := range want {
		if fc.Firewall[tb] != n {
			t.Errorf("table %d: %d flows, want %d", tb, fc.Firewall[tb], n)
		}
	}
	if fc := countFlows("OFPST_FLOW reply (OF1.3) (xid=0x2):\n"); fc.Total != 0 {
		t.Errorf("empty dump: %d flows", fc.Total)
	}
	for out, want := range map[string]int{
		"OFPST_AGGREGATE reply (OF1.3) (xid=0x2): packet_count=0 byte_count=0 flow_count=30512\n": 30512,
		"NXST_AGGREGATE reply (xid=0x4): packet_count=3 byte_count=180 flow_count=0\n":            0,
	} {
		if n, err := aggregateFlowCount(out); err != nil || n != want {
			t.Errorf("aggregateFlowCount(%q) = %d, %v; want %d", out, n, err, want)
		}
	}
	if _, err := aggregateFlowCount("ovs-ofctl: br-int is not a bridge or a socket"); err == nil {
		t.Error("aggregateFlowCount without flow_count: no error")
	}
}

func TestConvergedIn(t *testing.T) {
	log := strings.Join([]string{
		"2026-12-08T01:00:00.000Z\tINFO\tcontroller/agent_run.go:90\tconverged\t" +
			`{"host": "fw-dvrflow", "flow_mods": 400, "ports_tagged": 0, "ports_bound": 200, "networks": 1, "took": 0.0305, "phases": {"observe": 0.001, "build": 0.008, "layout": 0, "sync": 0.0202, "tags": 0}}`,
		"2026-12-08T01:00:00.100Z\tINFO\tneutron/source.go:300\tsecurity groups pulled\t" + `{"groups": 1}`,
		"2026-12-08T01:00:00.200Z\tINFO\tcontroller/agent_run.go:90\tconverged\t" +
			`{"flow_mods": 2, "took": 0.004, "phases": {"sync": 0.002}}`,
		"2026-12-08T01:00:00.300Z\tINFO\tcontroller/agent_run.go:90\tconverged\t{truncated",
		"",
	}, "\n")
	c := convergedIn(log, time.Time{})
	if c.Reconciles != 2 || c.FlowMods != 402 || c.Took != 34500*time.Microsecond || c.Sync != 22200*time.Microsecond || c.Changed != 0 || c.Confirmed != 0 {
		t.Errorf("convergedIn = %+v", c)
	}
	// From the POST: the first state change, the last converged line.
	changed := "2026-12-08T00:59:59.990Z\tINFO\tcontroller/agent.go:121\tnorthbound state changed\t{}\n"
	c = convergedIn(changed+log+changed, time.Date(2026, 12, 8, 0, 59, 59, 950e6, time.UTC))
	if c.Reconciles != 2 || c.Changed != 40*time.Millisecond || c.Confirmed != 250*time.Millisecond {
		t.Errorf("convergedIn since the POST = %+v", c)
	}
	if c := convergedIn("", time.Now()); c != (agentConverged{}) {
		t.Errorf("empty log: %+v", c)
	}
}

func TestFirewallSectionAndSummary(t *testing.T) {
	r := &results{VIFType: "patch", Firewall: firewallFixture()}
	md := r.markdown("")
	sec, _, _ := strings.Cut(strings.Split(md, "## 8. Firewall: one rule added to a group of 200 ports")[1], "\n## Node setup")
	for _, want := range []string{
		"a security group of 50 rules (Neutron's two default egress rules and 48 more",
		"200 ports in it bound to the agent's host, plugged in one OVSDB transaction as in section 7's batch (Interface type `patch`)",
		"Then 5 times for dvrflow-agent and 5 times for Neutron's agent",
		"at most 15 CPU ticks in 3s",
		"shows its 2 flows per port (400)",
		"A poll took 30.0 ms (Neutron's agent's host) and 20.0 ms (dvrflow's)",
		"took 7m0s",
		"| neutron-openvswitch-agent | 40.0 s | 43.0 s | 2300 ms | **2500 ms** | 2500 ms | 1300 ms | 1500 ms | 1500 ms | 50.0 ms / 40.0 ms |",
		"| dvrflow-agent | 20.0 s | 21.0 s | 130 ms | **150 ms** | 150 ms | 80.0 ms | 100 ms | 100 ms | 50.0 ms / 40.0 ms |",
		"rule added **17.7×** at p50, 16.7× at p99; rule deleted 16.2× at p50, 15.0× at p99",
		"| agent | all of br-int | firewall (tables 71–94 + table 60's hooks) | 71 | 72 | 73 | 81 | 82 | 91 | 92 | 93 | 94 | 60 → firewall |",
		"| neutron-openvswitch-agent | 31500 | **30804** | 1000 | 8000 | 600 | 800 | 20000 | 1 | 1 | 1 | 1 | 400 |",
		"neutron-openvswitch-agent's calls to the server from the first rule's POST to its flows: security_group_info_for_devices ×1.",
		"6 reconciles for 5 rules, 400 flow-mods per rule at the median (400–402), the reconcile 30.0 ms and its confirmed bundles 20.0 ms at the median.",
		"the agent took in the server's push (`northbound state changed`) after 22.0 ms and logged the rule's flows confirmed after 61.0 ms at the median (max 72.0 ms; the log's resolution is 1 ms), while the POST itself took 50.0 ms.",
		"From the POST being sent instead (the server's own work included): neutron-openvswitch-agent p50 2350 ms, p99 2550 ms; dvrflow-agent p50 180 ms, p99 200 ms. dvrflow-agent's flows were already in place when the POST returned for 1 of 5 adds, and gone when the DELETE returned for 0 of 5 deletes: those times are one poll.",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("section 8 lacks %q:\n%s", want, sec)
		}
	}
	sum := r.summary()
	for _, want := range []string{
		"| Firewall scale: one rule added to a group of 200 ports with 50 rules (remote-group rule included) → its flows on br-int for every port, Neutron's agent / dvrflow-agent | none set: the ratio is reported | 18× at p50 (2300 ms vs 130 ms; p99 2500 ms vs 150 ms; 5 and 5 rules added); firewall flows 30804 vs 30804 | (reported) |",
		"| dvrflow-agent | 130 ms / 150 ms | 80.0 ms / 100 ms | 30804 |",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	// Other sizes are named; without the section nothing is rendered and the target is
	// not measured.
	r.Firewall.Ports, r.Firewall.Rules = 100, 20
	if tg := r.firewallTarget(); !strings.Contains(tg.What, "a group of 100 ports with 20 rules") {
		t.Errorf("target %q", tg.What)
	}
	r.Firewall = nil
	if md := r.markdown(""); strings.Contains(md, "## 8.") {
		t.Error("section 8 rendered without its results")
	}
	if tg := r.firewallTarget(); tg.Measured {
		t.Errorf("target measured without the section: %+v", tg)
	}
}

func TestMergeResults(t *testing.T) {
	old := &results{Reps: 3, VIFType: "patch", Took: time.Hour, Sizes: []*sizeResult{sized(1000, time.Second, time.Second, time.Second, time.Second, 8000, 1)},
		Neutron: neutronFixture()}
	run := &results{Firewall: firewallFixture()}
	m := mergeResults(old, run)
	if len(m.Sizes) != 1 || m.Neutron == nil || m.Firewall == nil || m.Took != time.Hour || m.Reps != 3 {
		t.Errorf("merged: %+v", m)
	}
	if old.Firewall != nil {
		t.Error("the earlier results were changed")
	}
}

func TestRPCLoopIdle(t *testing.T) {
	const (
		done    = "2026-12-08 00:38:47.483 15497 INFO neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent [None req-6c7 - - - - - -] Agent rpc_loop - iteration:64 completed. Processed ports statistics: {'regular': {'added': 200, 'updated': 0, 'removed': 0}}. Elapsed:74.6"
		started = "2026-12-08 00:38:49.200 15497 INFO neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent [None req-6c7 - - - - - -] Agent rpc_loop - iteration:65 started"
		polling = "2026-12-08 00:38:49.210 15497 INFO neutron.plugins.ml2.drivers.openvswitch.agent.ovs_neutron_agent [None req-6c7 - - - - - -] Agent rpc_loop - iteration:65 - starting polling. Elapsed:0.010"
		refresh = "2026-12-08 00:38:49.266 15497 INFO neutron.agent.securitygroups_rpc [None req-6c7 - - - - - -] Refresh firewall rules"
	)
	at := func(s string) time.Time {
		t0, err := time.ParseInLocation(pythonLogTime, s, time.Local)
		if err != nil {
			t.Fatal(err)
		}
		return t0
	}
	for _, c := range []struct {
		log  string
		from string
		want bool
	}{
		{done + "\n", "2026-12-08 00:38:47.000", true},
		{done + "\n", "2026-12-08 00:38:48.000", false}, // completed before the window
		{done + "\n" + started + "\n" + polling + "\n" + refresh + "\n", "2026-12-08 00:38:47.000", false},
		{refresh + "\n", "2026-12-08 00:38:47.000", false},
		{"", "2026-12-08 00:38:47.000", false},
	} {
		if got := rpcLoopIdle(c.log, at(c.from)); got != c.want {
			t.Errorf("rpcLoopIdle(%q, %s) = %v, want %v", c.log, c.from, got, c.want)
		}
	}
}
