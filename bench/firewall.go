package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/testbed/neutron"
	"github.com/dvrflow/dvrflow/topology"
)

// firewallResult is section 8, the firewall scale test: per agent one host with
// Ports ports in one security group of Rules rules (a remote-group rule among them), both
// agents with firewall_driver = openvswitch under one real neutron-server; one rule is
// added to the group (and deleted again) Reps times and timed until br-int holds (no longer
// holds) its flows for every port.
type firewallResult struct {
	// Reps is dvrflow-agent's number of rules added and deleted, PythonReps Neutron's
	// agent's (fewer: each of its adds and deletes takes it minutes at 200 ports).
	Ports, Rules, Reps, PythonReps int
	// VMs says the ports were plugged as VMs (a namespace and a veth pair each, one OVSDB
	// transaction per port) rather than as VIFs of the bench's type in one transaction.
	VMs bool `json:",omitempty"`
	// Date and Took are when the section ran and how long it took, test bed included.
	Date   time.Time
	Took   time.Duration
	Agents []firewallAgentResult
}

// firewallAgentResult is one agent's figures.
type firewallAgentResult struct {
	Agent, Host string
	// Active is from the plug of the ports to every one ACTIVE in the API; Stable from the
	// plug to the agent idle (agentIdle) after that.
	Active, Stable time.Duration
	// Flows is br-int's flow count once stable; ByTable the firewall tables' (71–94, without
	// the DHCP extension's 77 and 78) and Hooks table 60's flows into them.
	Flows   int
	ByTable map[int]int
	Hooks   int
	// RuleFlows is how many flows the added rule made on br-int (the first repetition's).
	RuleFlows int
	// Added runs from the rule's POST returning until br-int holds its flows for every
	// port; Removed from the DELETE returning until none is left. APIAdd and APIRemove are
	// the REST calls themselves.
	Added, Removed    []time.Duration
	APIAdd, APIRemove []time.Duration
	// AddCalls are the q-plugin calls (by method) from the first add's POST to its flows
	// on br-int.
	AddCalls map[string]int `json:",omitempty"`
	// AgentAdds are dvrflow-agent's own "converged" log lines of each add (flow-mods, the
	// reconcile and its sync), summed over the reconciles between the POST and the flows.
	AgentAdds []agentConverged `json:",omitempty"`
	// AtReply and GoneAtReply count the adds (deletes) whose flows were all there (all
	// gone) at the first poll after the REST call returned: the agent was done before the
	// reply, and the time is one poll.
	AtReply, GoneAtReply int `json:",omitempty"`
	// PollTook is the median time of one poll (ovs-ofctl dump-flows of the rule's match):
	// the timer's resolution.
	PollTook time.Duration
}

// agentConverged is what dvrflow-agent's "converged" log lines said.
type agentConverged struct {
	Reconciles, FlowMods int
	Took, Sync           time.Duration
	// Changed and Confirmed are, from the POST being sent, when the agent logged its
	// northbound state changed (the server's push taken in) and its last reconcile
	// confirmed (its log's millisecond resolution).
	Changed, Confirmed time.Duration `json:",omitempty"`
}

// firewallOptions is the agent configuration both hosts get in section 8: section 7's with
// Neutron's Open vSwitch firewall.
var firewallOptions = neutron.AgentOptions{FirewallDriver: "openvswitch", NoDebug: true}

const (
	// firewallProbePort is the TCP destination port of the rule added in the first
	// repetition (the next ones add one each): no rule of the group uses it.
	firewallProbePort = 40000
	// firewallFlowsPerPort is what a plain ingress TCP rule makes per port in Neutron's
	// driver: one flow for +est-rel-rpl, one for +new-est (committed to conntrack).
	firewallFlowsPerPort = 2
	// The server and the agents are idle when their processes used at most idleTicks CPU
	// clock ticks (1/100 s) together within idleWindow (Neutron's agent polls every 2 s
	// and both report their state every 10 s even when idle).
	idleWindow = 3 * time.Second
	idleTicks  = 15
)

// fwAgent is one agent of section 8 with its group and ports.
type fwAgent struct {
	*neutronAgent
	group string
	ports []*neutron.Port
	res   *firewallAgentResult
}

// measureFirewall runs section 8.
func (b *bench) measureFirewall(ctx context.Context, ports, rules, reps, pythonReps int, vms bool) (_ *firewallResult, err error) {
	log := b.log.Named("firewall")
	start := time.Now()
	bed, err := b.startNeutronBed(ctx, log, "fw", firewallOptions, b.firewallAgentLogPath())
	if err != nil {
		return nil, err
	}
	defer func() { err = bed.close(err) }()
	// Neutron's default quotas (100 rules, 500 ports per project) are below two agents'
	// groups and ports.
	if err := bed.cloud.Client.SetQuotas(ctx, map[string]int{"security_group": -1, "security_group_rule": -1, "port": -1}); err != nil {
		return nil, err
	}
	res := &firewallResult{Ports: ports, Rules: rules, Reps: reps, PythonReps: pythonReps, VMs: vms, Date: start}
	var fas []*fwAgent
	for _, a := range bed.agents {
		fa := &fwAgent{neutronAgent: a, res: &firewallAgentResult{Agent: a.name, Host: a.host.Name()}}
		fas = append(fas, fa)
	}
	// Both groups and all ports first, then the hosts' ports plugged one host after the
	// other: each agent has the server to itself while its ports come up, and the next
	// starts once it is idle.
	for _, fa := range fas {
		if err := b.firewallCreate(ctx, bed, fa, ports, rules); err != nil {
			return nil, fmt.Errorf("%s: %w", fa.name, err)
		}
	}
	for _, fa := range fas {
		if err := b.firewallPlug(ctx, bed, fa, vms); err != nil {
			return nil, fmt.Errorf("%s: %w", fa.name, err)
		}
	}
	// The rule added and deleted, the agents in turn, each on a quiet bus with the agent
	// idle and br-int's flows settled.
	for rep := range max(reps, pythonReps) {
		for _, fa := range fas {
			if fa.name == neutronPython && rep >= pythonReps || fa.name != neutronPython && rep >= reps {
				continue
			}
			if err := b.firewallRuleRep(ctx, bed, fa, rep); err != nil {
				return nil, fmt.Errorf("%s: rule %d: %w", fa.name, rep+1, err)
			}
		}
	}
	for _, fa := range fas {
		r := fa.res
		log.Info("firewall rule", zap.String("agent", fa.name), zap.Int("reps", len(r.Added)),
			zap.Duration("added_p50", percentile(r.Added, 50)), zap.Duration("added_max", percentile(r.Added, 100)),
			zap.Duration("removed_p50", percentile(r.Removed, 50)), zap.Duration("removed_max", percentile(r.Removed, 100)),
			zap.Int("firewall_flows", r.firewallFlows()), zap.Int("flows", r.Flows))
		res.Agents = append(res.Agents, *r)
	}
	res.Took = time.Since(start)
	return res, nil
}

// firewallCreate makes the agent's group (rules in all, Neutron's two default egress rules
// included) and its ports in the group bound to its host.
func (b *bench) firewallCreate(ctx context.Context, bed *neutronBed, fa *fwAgent, ports, rules int) error {
	api, log := bed.cloud.Client, bed.log
	t := time.Now()
	sg, err := api.CreateSecurityGroup(ctx, "fw-"+fa.host.Name(), nil)
	if err != nil {
		return err
	}
	fa.group = sg.ID
	add := firewallRules(rules-len(sg.Rules), sg.ID)
	if err := parallel(len(add), 8, func(i int) error {
		_, err := api.CreateSecurityGroupRule(ctx, sg.ID, add[i])
		return err
	}); err != nil {
		return fmt.Errorf("group %s: %w", sg.ID, err)
	}
	if got, err := api.GetSecurityGroup(ctx, sg.ID); err != nil {
		return err
	} else if len(got.Rules) != rules {
		return fmt.Errorf("group %s has %d rules, want %d", sg.ID, len(got.Rules), rules)
	}
	// The ports in bulk requests of 50 (setup, not timed: one request each took the
	// single-worker server 0.4 s per port).
	groups := []string{sg.ID}
	for lo := 0; lo < ports; lo += 50 {
		reqs := make([]neutron.PortRequest, 0, 50)
		for i := lo; i < min(lo+50, ports); i++ {
			reqs = append(reqs, neutron.PortRequest{Name: fmt.Sprintf("fw-%d", i), NetworkID: fa.net.ID, DeviceOwner: "compute:nova",
				DeviceID: newVMID(), HostID: fa.host.Name(), SecurityGroups: &groups})
		}
		made, err := api.CreatePorts(ctx, reqs)
		if err != nil {
			return err
		}
		for i := range made {
			p := &made[i]
			if p.VIFType != "ovs" {
				return fmt.Errorf("port %s bound to %q with vif_type %q: the server did not bind it to a live Open vSwitch agent", p.ID, p.HostID, p.VIFType)
			}
			fa.ports = append(fa.ports, p)
		}
	}
	if len(fa.ports) != ports {
		return fmt.Errorf("%d ports made, want %d", len(fa.ports), ports)
	}
	log.Info("group and ports created", zap.String("agent", fa.name), zap.Int("rules", rules), zap.Int("ports", ports),
		zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	return nil
}

// firewallPlug plugs the agent's ports and waits until every one is ACTIVE and the agent
// has settled; then it counts br-int's flows.
func (b *bench) firewallPlug(ctx context.Context, bed *neutronBed, fa *fwAgent, vms bool) error {
	api, log, ports := bed.cloud.Client, bed.log, len(fa.ports)
	if err := b.firewallSettle(ctx, bed, fa); err != nil {
		return err
	}
	ids := make([]string, ports)
	for i, p := range fa.ports {
		ids[i] = p.ID
	}
	t0 := time.Now()
	var err error
	if vms {
		err = parallel(ports, 4, func(i int) error {
			_, err := fa.host.PlugVM(ctx, fa.ports[i], fa.subnet, 0)
			return err
		})
	} else {
		vifs := make([]topology.Port, ports)
		for i, p := range fa.ports {
			vifs[i] = vif(p)
		}
		_, err = fa.hv.plug(ctx, "br-int", fa.ofport, vifs)
		fa.ofport += ports
	}
	if err != nil {
		return err
	}
	active, err := waitPortsActive(ctx, api, fa.net.ID, ids, 250*time.Millisecond, 15*time.Minute)
	if err != nil {
		return err
	}
	r := fa.res
	r.Active = active.Sub(t0)
	if err := bed.watch.quiet(ctx, 2*time.Second, 60*time.Second); err != nil {
		return err
	}
	idle, err := bed.idle(ctx, 15*time.Minute)
	if err != nil {
		return err
	}
	r.Stable = idle.Sub(t0)
	_, flows, err := flowsStable(ctx, fa.host, 2*time.Second, 5*time.Minute)
	if err != nil {
		return err
	}
	dump, err := dumpFlows(ctx, fa.host, "")
	if err != nil {
		return err
	}
	fc := countFlows(dump)
	if fc.Total != flows {
		log.Warn("br-int changed after it settled", zap.String("agent", fa.name), zap.Int("settled", flows), zap.Int("dumped", fc.Total))
	}
	r.Flows, r.ByTable, r.Hooks = fc.Total, fc.Firewall, fc.Hooks
	log.Info("ports up, agent idle", zap.String("agent", fa.name), zap.Duration("active", r.Active), zap.Duration("idle", r.Stable),
		zap.Int("flows", r.Flows), zap.Int("firewall_flows", r.firewallFlows()))
	return nil
}

// firewallRuleRep adds a rule to the agent's group and times it until br-int holds its
// flows for every port, then deletes it and times it until they are gone; each ends on a
// quiet bus with settled flows.
func (b *bench) firewallRuleRep(ctx context.Context, bed *neutronBed, fa *fwAgent, rep int) error {
	api, r := bed.cloud.Client, fa.res
	tp := firewallProbePort + rep
	want := firewallFlowsPerPort * len(fa.ports)
	match := fmt.Sprintf("tcp,tp_dst=%d", tp)
	logOffset := fileSize(b.firewallAgentLogPath())

	call := time.Now()
	rule, err := api.CreateSecurityGroupRule(ctx, fa.group, firewallProbeRule(tp))
	if err != nil {
		return err
	}
	t0 := time.Now()
	r.APIAdd = append(r.APIAdd, t0.Sub(call))
	at, polls, pollTook, err := waitFlowCount(ctx, fa.host, match, want, 3*time.Minute)
	if err != nil {
		return fmt.Errorf("add tp_dst=%d: %w", tp, err)
	}
	r.Added = append(r.Added, at.Sub(t0))
	r.PollTook = pollTook
	if polls == 1 {
		r.AtReply++
	}
	if rep == 0 {
		r.RuleFlows = want
		r.AddCalls = bed.watch.methodsBetween(call, at)
	}
	if fa.name == neutronDvrflow {
		if lines, err := readFrom(b.firewallAgentLogPath(), logOffset); err == nil {
			r.AgentAdds = append(r.AgentAdds, convergedIn(lines, call))
		}
	}
	if err := b.firewallSettle(ctx, bed, fa); err != nil {
		return err
	}

	call = time.Now()
	if err := api.DeleteSecurityGroupRule(ctx, rule.ID); err != nil {
		return err
	}
	t0 = time.Now()
	r.APIRemove = append(r.APIRemove, t0.Sub(call))
	at, polls, _, err = waitFlowCount(ctx, fa.host, match, 0, 3*time.Minute)
	if err != nil {
		return fmt.Errorf("delete tp_dst=%d: %w", tp, err)
	}
	if polls == 1 {
		r.GoneAtReply++
	}
	r.Removed = append(r.Removed, at.Sub(t0))
	bed.log.Info("rule added and deleted", zap.String("agent", fa.name), zap.Int("rep", rep+1),
		zap.Duration("added", r.Added[rep]), zap.Duration("removed", r.Removed[rep]))
	return b.firewallSettle(ctx, bed, fa)
}

// firewallSettle waits until no agent has called the server for 2 s, the server and both
// agents are idle (the server has a single RPC worker: an agent busy with it delays the
// other's calls, and report_state, by minutes) and fa's br-int flow count has not changed
// for 2 s.
func (b *bench) firewallSettle(ctx context.Context, bed *neutronBed, fa *fwAgent) error {
	if err := bed.watch.quiet(ctx, 2*time.Second, 60*time.Second); err != nil {
		return err
	}
	if _, err := bed.idle(ctx, 15*time.Minute); err != nil {
		return err
	}
	_, _, err := flowsStable(ctx, fa.host, 2*time.Second, 2*time.Minute)
	return err
}

// idle waits until neutron-server's processes and both agents' together have used at most
// idleTicks of CPU within idleWindow, and returns when that window began. The bus being
// quiet is not enough: Neutron's agent works for minutes between two calls on 200
// filtered ports (after they came up it refiltered all 200 for their new group members,
// for 264 s in one run), waiting on the server's answers as long as on its own work, and
// br-int's flow count does not show a rewrite of the same flows.
func (bed *neutronBed) idle(ctx context.Context, limit time.Duration) (time.Time, error) {
	pids := bed.cloud.ServerPids()
	for _, a := range bed.agents {
		pids = append(pids, a.pid)
	}
	deadline := time.Now().Add(limit)
	type sample struct {
		at    time.Time
		ticks int64
	}
	var window []sample
	for {
		var ticks int64
		for _, pid := range pids {
			t, err := cpuTicks(pid)
			if err != nil {
				return time.Time{}, fmt.Errorf("wait for the server and agents idle: %w", err)
			}
			ticks += t
		}
		now := time.Now()
		window = append(window, sample{now, ticks})
		for len(window) > 1 && now.Sub(window[1].at) >= idleWindow {
			window = window[1:]
		}
		if now.Sub(window[0].at) >= idleWindow && ticks-window[0].ticks <= idleTicks && bed.pythonLoopIdle(window[0].at) {
			return window[0].at, nil
		}
		if now.After(deadline) {
			return time.Time{}, fmt.Errorf("neutron-server and the agents still busy after %s", limit)
		}
		select {
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// firewallProbeRule is the rule the repetitions add: ingress TCP to port tp from anywhere,
// IPv4 (Neutron's driver makes firewallFlowsPerPort flows per port of it in table 82).
func firewallProbeRule(tp int) neutron.SecurityGroupRule {
	return neutron.SecurityGroupRule{Direction: "ingress", EtherType: "IPv4", Protocol: ptr("tcp"), PortRangeMin: ptr(tp), PortRangeMax: ptr(tp)}
}

// dumpFlows is `ovs-ofctl dump-flows br-int [match]` on the host (OpenFlow 1.3, port
// numbers, no statistics): the same command for both agents.
func dumpFlows(ctx context.Context, h *neutron.AgentHost, match string) (string, error) {
	sb := h.Sandbox()
	args := []string{"-O", "OpenFlow13", "--no-names", "--no-stats", "dump-flows", "unix:" + sb.MgmtSocket("br-int")}
	if match != "" {
		args = append(args, match)
	}
	return sb.Ofctl(ctx, args...)
}

// waitFlowCount polls br-int's flows of match, one dump after the other, until there are
// want of them; it returns when the dump that saw them returned, how many dumps it took
// and the median time of a dump.
func waitFlowCount(ctx context.Context, h *neutron.AgentHost, match string, want int, timeout time.Duration) (time.Time, int, time.Duration, error) {
	deadline := time.Now().Add(timeout)
	var took []time.Duration
	for {
		t := time.Now()
		out, err := dumpFlows(ctx, h, match)
		now := time.Now()
		took = append(took, now.Sub(t))
		got := -1
		if err == nil {
			got = countFlows(out).Total
			if got == want {
				return now, len(took), median(took), nil
			}
		}
		if now.After(deadline) {
			return time.Time{}, 0, 0, fmt.Errorf("%d flows of %s on br-int after %s, want %d (%v)", got, match, timeout, want, err)
		}
		select {
		case <-time.After(5 * time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, 0, 0, ctx.Err()
		}
	}
}

// flowsStable polls br-int's flow count (dump-aggregate) every 250 ms until it has not
// changed for d, and returns when it last changed (or the first poll) and the count.
func flowsStable(ctx context.Context, h *neutron.AgentHost, d, timeout time.Duration) (time.Time, int, error) {
	deadline := time.Now().Add(timeout)
	sb := h.Sandbox()
	last, since := -1, time.Now()
	for {
		out, err := sb.Ofctl(ctx, "-O", "OpenFlow13", "dump-aggregate", "unix:"+sb.MgmtSocket("br-int"))
		if err != nil {
			return time.Time{}, 0, err
		}
		n, err := aggregateFlowCount(out)
		if err != nil {
			return time.Time{}, 0, err
		}
		now := time.Now()
		if n != last {
			last, since = n, now
		} else if now.Sub(since) >= d {
			return since, n, nil
		}
		if now.After(deadline) {
			return time.Time{}, 0, fmt.Errorf("br-int's flow count still changing after %s (%d)", timeout, n)
		}
		select {
		case <-time.After(250 * time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, 0, ctx.Err()
		}
	}
}

// pythonLoopIdle says whether Neutron's agent's log shows an rpc_loop iteration completed
// since from and none started after it: the CPU alone misses the agent (and the server)
// waiting on the database for seconds in the middle of a refresh of its 200 ports.
func (bed *neutronBed) pythonLoopIdle(from time.Time) bool {
	for _, a := range bed.agents {
		if a.name != neutronPython {
			continue
		}
		data, err := os.ReadFile(a.host.NeutronAgentLog())
		if err != nil {
			return false
		}
		return rpcLoopIdle(string(data[max(0, len(data)-256<<10):]), from)
	}
	return true
}

func (b *bench) firewallAgentLogPath() string {
	return b.workDir + "/dvrflow-agent-firewall.log"
}

// parallel runs f(0) … f(n-1), at most width at once, and joins their errors.
func parallel(n, width int, f func(i int) error) error {
	errs := make([]error, n)
	sem := make(chan struct{}, width)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = f(i)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func fileSize(path string) int64 {
	if st, err := os.Stat(path); err == nil {
		return st.Size()
	}
	return 0
}

// readFrom reads a file from offset.
func readFrom(path string, offset int64) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return string(data[min(offset, int64(len(data))):]), nil
}

func ptr[T any](v T) *T { return &v }
