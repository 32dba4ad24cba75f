package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// firewallRules are n rules for a group (its id: group) besides Neutron's two default
// egress rules, all different (the server refuses duplicates): first two remote-group
// rules naming the group itself (IPv4 TCP 22, IPv6 ICMPv6 from members), then a cycle of
// ten kinds: TCP and UDP ports and ranges, ICMP types and codes, IPv6, ingress from remote
// IP prefixes and an egress rule to one. No rule matches TCP ports from firewallProbePort
// up, for up to 2500 rules.
func firewallRules(n int, group string) []neutron.SecurityGroupRule {
	in := func(eth, proto string) neutron.SecurityGroupRule {
		return neutron.SecurityGroupRule{Direction: "ingress", EtherType: eth, Protocol: ptr(proto)}
	}
	ports := func(r neutron.SecurityGroupRule, lo, hi int) neutron.SecurityGroupRule {
		r.PortRangeMin, r.PortRangeMax = ptr(lo), ptr(hi)
		return r
	}
	icmp := func(r neutron.SecurityGroupRule, typ, code int) neutron.SecurityGroupRule {
		r.PortRangeMin = ptr(typ)
		if code >= 0 {
			r.PortRangeMax = ptr(code)
		}
		return r
	}
	from := func(r neutron.SecurityGroupRule, prefix string) neutron.SecurityGroupRule {
		r.RemoteIPPrefix = ptr(prefix)
		return r
	}
	var out []neutron.SecurityGroupRule
	for i := 0; len(out) < n; i++ {
		if i < 2 {
			r := ports(in("IPv4", "tcp"), 22, 22)
			if i == 1 {
				r = in("IPv6", "ipv6-icmp")
			}
			r.RemoteGroupID = ptr(group)
			out = append(out, r)
			continue
		}
		j := i - 2
		k := j / 10
		var r neutron.SecurityGroupRule
		switch j % 10 {
		case 0:
			r = ports(in("IPv4", "tcp"), 1000+k, 1000+k)
		case 1:
			r = ports(in("IPv4", "tcp"), 2000+100*k, 2000+100*k+49)
		case 2:
			r = ports(in("IPv4", "udp"), 3000+k, 3000+k)
		case 3:
			r = ports(in("IPv4", "udp"), 5000+100*k, 5000+100*k+99)
		case 4:
			r = icmp(in("IPv4", "icmp"), 8, -1)
			if k > 0 {
				r = icmp(in("IPv4", "icmp"), 3, k-1)
			}
		case 5:
			r = ports(in("IPv6", "tcp"), 6000+k, 6000+k)
		case 6:
			r = icmp(in("IPv6", "ipv6-icmp"), 128, -1)
			if k > 0 {
				r = icmp(in("IPv6", "ipv6-icmp"), 1, k-1)
			}
		case 7:
			r = from(ports(in("IPv4", "tcp"), 7000+k, 7000+k), fmt.Sprintf("10.%d.%d.0/24", k/256, k%256))
		case 8:
			r = from(ports(in("IPv4", "tcp"), 8000+k, 8000+k), fmt.Sprintf("192.168.%d.%d/32", k/256, k%256))
			r.Direction = "egress"
		case 9:
			r = from(ports(in("IPv6", "udp"), 9000+k, 9000+k), fmt.Sprintf("fd00:%x::/64", k))
		}
		out = append(out, r)
	}
	return out
}

// brIntFlows is br-int's flows counted by what they belong to.
type brIntFlows struct {
	Total int
	// Firewall counts the flows of each firewall table (71–94 but 77 and 78, the DHCP
	// extension's); Hooks table 60's flows that go on into one of them.
	Firewall map[int]int
	Hooks    int
}

var (
	tableRE = regexp.MustCompile(`(?:^|[ ,])table=(\d+)`)
	gotoRE  = regexp.MustCompile(`resubmit\([^,]*,(\d+)\)|goto_table:(\d+)`)
)

// firewallTable says whether a br-int table is one of Neutron's OVS firewall's.
func firewallTable(t int) bool { return t >= 71 && t <= 94 && t != 77 && t != 78 }

// countFlows counts the flows of an `ovs-ofctl dump-flows` text (a flow is a line with
// actions; a flow without table= is in table 0).
func countFlows(dump string) brIntFlows {
	fc := brIntFlows{Firewall: map[int]int{}}
	for _, line := range strings.Split(dump, "\n") {
		match, actions, ok := strings.Cut(line, "actions=")
		if !ok {
			continue
		}
		fc.Total++
		table := 0
		if m := tableRE.FindStringSubmatch(match); m != nil {
			table, _ = strconv.Atoi(m[1])
		}
		if firewallTable(table) {
			fc.Firewall[table]++
		}
		if table == 60 {
			for _, m := range gotoRE.FindAllStringSubmatch(actions, -1) {
				if t, _ := strconv.Atoi(m[1] + m[2]); firewallTable(t) {
					fc.Hooks++
					break
				}
			}
		}
	}
	return fc
}

// aggregateFlowCount reads flow_count from `ovs-ofctl dump-aggregate`.
func aggregateFlowCount(out string) (int, error) {
	m := flowCountRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("no flow_count in dump-aggregate's output %q", strings.TrimSpace(out))
	}
	return strconv.Atoi(m[1])
}

// agentLogTime is the time layout of dvrflow-agent's log (zapcore.ISO8601TimeEncoder).
const agentLogTime = "2006-01-02T15:04:05.000Z0700"

// convergedIn sums dvrflow-agent's "converged" log lines (the console encoding of the
// production logger: time, level, caller, message, then the fields as JSON, durations in
// seconds) found in log. With since set it also says when, after since, the first
// "northbound state changed" line and the last "converged" line were logged.
func convergedIn(log string, since time.Time) agentConverged {
	var c agentConverged
	at := func(line string) time.Duration {
		stamp, _, _ := strings.Cut(line, "\t")
		t, err := time.Parse(agentLogTime, stamp)
		if err != nil || since.IsZero() {
			return 0
		}
		return t.Sub(since)
	}
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "\tnorthbound state changed\t") && c.Changed == 0 {
			c.Changed = at(line)
		}
		_, fields, ok := strings.Cut(line, "\tconverged\t")
		if !ok {
			continue
		}
		var f struct {
			FlowMods int     `json:"flow_mods"`
			Took     float64 `json:"took"`
			Phases   struct {
				Sync float64 `json:"sync"`
			} `json:"phases"`
		}
		if json.Unmarshal([]byte(fields), &f) != nil {
			continue
		}
		c.Reconciles++
		c.FlowMods += f.FlowMods
		c.Took += seconds(f.Took)
		c.Sync += seconds(f.Phases.Sync)
		c.Confirmed = at(line)
	}
	return c
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// firewallFlows is the firewall's share of br-int: its tables and table 60's hooks.
func (a *firewallAgentResult) firewallFlows() int {
	n := a.Hooks
	for _, c := range a.ByTable {
		n += c
	}
	return n
}

func (r *firewallResult) agent(name string) *firewallAgentResult {
	for i := range r.Agents {
		if r.Agents[i].Agent == name {
			return &r.Agents[i]
		}
	}
	return nil
}

// ratio is Neutron's agent's p-th percentile of what over dvrflow-agent's, 0 without both.
func (r *firewallResult) ratio(what func(*firewallAgentResult) []time.Duration, p int) float64 {
	py, ours := r.agent(neutronPython), r.agent(neutronDvrflow)
	if py == nil || ours == nil {
		return 0
	}
	a, b := percentile(what(py), p), percentile(what(ours), p)
	if a <= 0 || b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func added(a *firewallAgentResult) []time.Duration   { return a.Added }
func removed(a *firewallAgentResult) []time.Duration { return a.Removed }

// firewallTarget is the scale test, which sets no number: the ratio is reported.
func (r *results) firewallTarget() target {
	t := target{What: "Firewall scale: one rule added to a group of 200 ports with 50 rules (remote-group rule included) → its flows on br-int for every port, Neutron's agent / dvrflow-agent",
		Want: "none set: the ratio is reported", Informational: true}
	f := r.Firewall
	if f == nil {
		return t
	}
	if f.Ports != 200 || f.Rules != 50 {
		t.What = strings.Replace(strings.Replace(t.What, "200 ports", fmt.Sprintf("%d ports", f.Ports), 1), "50 rules", fmt.Sprintf("%d rules", f.Rules), 1)
	}
	ratio := f.ratio(added, 50)
	if ratio == 0 {
		return t
	}
	py, ours := f.agent(neutronPython), f.agent(neutronDvrflow)
	t.Measured = true
	t.Got = fmt.Sprintf("%.0f× at p50 (%s vs %s; p99 %s vs %s; %d and %d rules added); firewall flows %d vs %d", ratio,
		ms(percentile(py.Added, 50)), ms(percentile(ours.Added, 50)), ms(percentile(py.Added, 99)), ms(percentile(ours.Added, 99)),
		len(py.Added), len(ours.Added), py.firewallFlows(), ours.firewallFlows())
	return t
}

// firewallSection renders section 8.
func (r *results) firewallSection(p func(string, ...any)) {
	f := r.Firewall
	if f == nil || len(f.Agents) == 0 {
		return
	}
	p("\n## 8. Firewall: one rule added to a group of %d ports\n\n", f.Ports)
	p("The issue's scale test. A Neutron test bed as in section 7 (its own run, %s, took %s with the test bed's start and stop), both agents' hosts with `firewall_driver = openvswitch` (Neutron's Open vSwitch firewall driver; `debug = False`). Per agent, over the REST API: a security group of %d rules (Neutron's two default egress rules and %d more: TCP and UDP ports and port ranges, ICMP types and codes, IPv6, ingress from remote IP prefixes, egress to one, and two rules whose remote group is the group itself, IPv4 TCP 22 and ICMPv6), and %d ports in it bound to the agent's host, ", f.Date.UTC().Format("2006-01-02 15:04 MST"), f.Took.Round(time.Second), f.Rules, f.Rules-2, f.Ports)
	if f.VMs {
		p("plugged as VMs (a network namespace and a veth pair each, `PlugVM`, 4 at a time).")
	} else {
		p("plugged in one OVSDB transaction as in section 7's batch (Interface type `%s`).", r.VIFType)
	}
	p(" Both groups and all ports are created first (the ports in bulk requests of 50), then each host's ports are plugged, one host after the other; the next step waits until the agent is idle (below).\n\n")
	p("Then %d times for dvrflow-agent and %d times for Neutron's agent (each of its adds and deletes takes it most of a minute at 200 ports), the agents in turn, each once the bus is quiet (no agent call to the server for 2 s), neutron-server and both agents are idle (their processes together at most %d CPU ticks in %s: Neutron's agent works for minutes between two calls to the server, waiting on the server as much as on itself, and the server, with one RPC worker, answers the other agent only in between; and since both sometimes wait seconds on the database, Neutron's agent's log must show an `rpc_loop` iteration completed within that window and none started since) and br-int's flow count has not changed for 2 s: a rule is added to the group (ingress, IPv4, TCP to a port no rule uses, 40000 + the repetition) and timed from the POST's reply until `ovs-ofctl dump-flows br-int tcp,tp_dst=PORT` on the host shows its %d flows per port (%d), the same poll for both agents, one dump right after the other; then it is deleted and timed from the DELETE's reply until the dump is empty. A poll took %s (Neutron's agent's host) and %s (dvrflow's) at the median: the timer's resolution.\n\n",
		f.Reps, f.pythonReps(), idleTicks, idleWindow, firewallFlowsPerPort, firewallFlowsPerPort*f.Ports, ms(f.agentPoll(neutronPython)), ms(f.agentPoll(neutronDvrflow)))
	p("| agent | ports plugged → all ACTIVE | → agent idle | rule added → flows on every port: p50 | p99 | max | rule deleted → flows gone: p50 | p99 | max | the POST / DELETE itself (p50) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range f.Agents {
		p("| %s | %s | %s | %s | **%s** | %s | %s | %s | %s | %s / %s |\n", a.Agent, ms(a.Active), ms(a.Stable),
			ms(percentile(a.Added, 50)), ms(percentile(a.Added, 99)), ms(percentile(a.Added, 100)),
			ms(percentile(a.Removed, 50)), ms(percentile(a.Removed, 99)), ms(percentile(a.Removed, 100)),
			ms(percentile(a.APIAdd, 50)), ms(percentile(a.APIRemove, 50)))
	}
	if ra := f.ratio(added, 50); ra > 0 {
		p("\nNeutron's agent / dvrflow-agent: rule added **%.1f×** at p50, %.1f× at p99; rule deleted %.1f× at p50, %.1f× at p99. The issue sets no number for this one.\n",
			ra, f.ratio(added, 99), f.ratio(removed, 50), f.ratio(removed, 99))
	}
	p("\nFrom the POST being sent instead (the server's own work included): ")
	var parts []string
	for _, a := range f.Agents {
		sent := a.addedFromCall()
		parts = append(parts, fmt.Sprintf("%s p50 %s, p99 %s", a.Agent, ms(percentile(sent, 50)), ms(percentile(sent, 99))))
	}
	p("%s.", strings.Join(parts, "; "))
	for _, a := range f.Agents {
		if a.AtReply > 0 || a.GoneAtReply > 0 {
			p(" %s's flows were already in place when the POST returned for %d of %d adds, and gone when the DELETE returned for %d of %d deletes: those times are one poll.",
				a.Agent, a.AtReply, len(a.Added), a.GoneAtReply, len(a.Removed))
		}
	}
	p("\n")
	p("\nbr-int's flows with %d ports × %d rules, once settled:\n\n", f.Ports, f.Rules)
	tables := map[int]bool{}
	for _, a := range f.Agents {
		for t := range a.ByTable {
			tables[t] = true
		}
	}
	p("| agent | all of br-int | firewall (tables 71–94 + table 60's hooks) |")
	ts := slices.Sorted(maps.Keys(tables))
	for _, t := range ts {
		p(" %d |", t)
	}
	p(" 60 → firewall |\n|---|---:|---:|%s---:|\n", strings.Repeat("---:|", len(ts)))
	for _, a := range f.Agents {
		p("| %s | %d | **%d** |", a.Agent, a.Flows, a.firewallFlows())
		for _, t := range ts {
			p(" %d |", a.ByTable[t])
		}
		p(" %d |\n", a.Hooks)
	}
	for _, a := range f.Agents {
		if len(a.AddCalls) > 0 {
			p("\n%s's calls to the server from the first rule's POST to its flows: %s.", a.Agent, callsText(a.AddCalls))
		}
	}
	if ours := f.agent(neutronDvrflow); ours != nil && len(ours.AgentAdds) > 0 {
		var mods []int
		var took, sync, changed, confirmed []time.Duration
		recs := 0
		for _, c := range ours.AgentAdds {
			mods = append(mods, c.FlowMods)
			took, sync = append(took, c.Took), append(sync, c.Sync)
			if c.Changed > 0 && c.Confirmed > 0 {
				changed, confirmed = append(changed, c.Changed), append(confirmed, c.Confirmed)
			}
			recs += c.Reconciles
		}
		slices.Sort(mods)
		p("\n\ndvrflow-agent's own log for the adds (its lines between the POST and the flows seen): %d reconciles for %d rules, %d flow-mods per rule at the median (%d–%d), the reconcile %s and its confirmed bundles %s at the median.",
			recs, len(ours.AgentAdds), mods[len(mods)/2], mods[0], mods[len(mods)-1], ms(median(took)), ms(median(sync)))
		if len(changed) > 0 {
			p(" From the POST being sent, the agent took in the server's push (`northbound state changed`) after %s and logged the rule's flows confirmed after %s at the median (max %s; the log's resolution is 1 ms), while the POST itself took %s.",
				ms(median(changed)), ms(median(confirmed)), ms(percentile(confirmed, 100)), ms(percentile(ours.APIAdd, 50)))
		}
	}
	p("\n")
}

// addedFromCall is, per add, the time from the POST being sent to the flows seen.
func (a *firewallAgentResult) addedFromCall() []time.Duration {
	out := make([]time.Duration, 0, len(a.Added))
	for i := range min(len(a.Added), len(a.APIAdd)) {
		out = append(out, a.APIAdd[i]+a.Added[i])
	}
	return out
}

// pythonReps is Neutron's agent's repetitions (results before PythonReps: Reps).
func (r *firewallResult) pythonReps() int {
	if r.PythonReps > 0 {
		return r.PythonReps
	}
	return r.Reps
}

func (r *firewallResult) agentPoll(name string) time.Duration {
	if a := r.agent(name); a != nil {
		return a.PollTook
	}
	return 0
}

// firewallSummary adds section 8's figures to the summary (README) when the run measured
// them.
func (r *results) firewallSummary(b *strings.Builder) {
	f := r.Firewall
	if f == nil || len(f.Agents) == 0 {
		return
	}
	fmt.Fprintf(b, "\nFirewall (`firewall_driver = openvswitch`), %d ports in one group of %d rules, under the same neutron-server, rules added and deleted %d times by dvrflow-agent and %d times by Neutron's agent:\n\n", f.Ports, f.Rules, f.Reps, f.pythonReps())
	fmt.Fprintf(b, "| agent | rule added → flows on every port p50 / p99 | rule deleted → flows gone p50 / p99 | firewall flows on br-int |\n|---|---:|---:|---:|\n")
	for _, a := range f.Agents {
		fmt.Fprintf(b, "| %s | %s / %s | %s / %s | %d |\n", a.Agent, ms(percentile(a.Added, 50)), ms(percentile(a.Added, 99)),
			ms(percentile(a.Removed, 50)), ms(percentile(a.Removed, 99)), a.firewallFlows())
	}
}

// pythonLogTime is the time layout of Neutron's agent's log (oslo.log, the host's time
// zone, UTC here).
const pythonLogTime = "2006-01-02 15:04:05.000"

// rpcLoopIdle says whether, in a tail of Neutron's agent's log, the last line about an
// rpc_loop iteration is one completing it, at or after from.
func rpcLoopIdle(log string, from time.Time) bool {
	lines := strings.Split(log, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := lines[i]
		if !strings.Contains(l, "Agent rpc_loop - iteration:") {
			continue
		}
		if !strings.Contains(l, " completed. ") || len(l) < len(pythonLogTime) {
			return false
		}
		at, err := time.ParseInLocation(pythonLogTime, l[:len(pythonLogTime)], time.Local)
		return err == nil && !at.Before(from)
	}
	return false
}
