package main

import (
	"fmt"
	"strings"
	"time"
)

// The Neutron section's targets (issue 18): the agent's own share of a single plug, and a
// batch end to end against Neutron's agent.
const (
	neutronPlugP99Target = 100 * time.Millisecond
	neutronBatchTarget   = 5.0
)

// active is, per single plug, the time from the plug to the port ACTIVE in the API.
func (a *neutronAgentResult) active() []time.Duration {
	out := make([]time.Duration, 0, min(len(a.Reported), len(a.Server)))
	for i := range min(len(a.Reported), len(a.Server)) {
		out = append(out, a.Reported[i]+a.Server[i])
	}
	return out
}

// neutronTargets are the two Neutron targets, not measured in results without the
// section (or without an agent's figures).
func (r *results) neutronTargets() []target {
	plug := target{What: "Neutron: single plug → update_device_list (up) sent, dvrflow-agent p99 (the agent's own share)",
		Want: "< " + ms(neutronPlugP99Target)}
	batch := target{What: "Neutron: ports created and plugged at once → all ACTIVE, end to end: Neutron's agent / dvrflow-agent",
		Want: fmt.Sprintf("≥ %.0f×", neutronBatchTarget)}
	n := r.Neutron
	if n == nil {
		return []target{plug, batch}
	}
	ours, py := n.agent(neutronDvrflow), n.agent(neutronPython)
	if ours != nil && len(ours.Reported) > 0 {
		p99 := percentile(ours.Reported, 99)
		plug.Measured, plug.Met = true, p99 < neutronPlugP99Target
		plug.Got = fmt.Sprintf("%s over %d plugs (p50 %s; the server's part, to ACTIVE: p99 %s", ms(p99), len(ours.Reported),
			ms(percentile(ours.Reported, 50)), ms(percentile(ours.Server, 99)))
		if py != nil && len(py.Reported) > 0 {
			plug.Got += fmt.Sprintf("; Neutron's agent: p99 %s", ms(percentile(py.Reported, 99)))
		}
		plug.Got += ")"
	}
	if ratio := n.batchRatio(); ratio > 0 {
		batch.Measured, batch.Met = true, ratio >= neutronBatchTarget
		batch.Got = fmt.Sprintf("%.2f× for %d ports (%s vs %s)", ratio, n.Batch, ms(py.BatchActive), ms(ours.BatchActive))
	}
	return []target{plug, batch}
}

// neutronSection renders section 7.
func (r *results) neutronSection(p func(string, ...any)) {
	n := r.Neutron
	if n == nil || len(n.Agents) == 0 {
		return
	}
	p("\n## 7. Neutron: dvrflow-agent beside Neutron's agent\n\n")
	p("One Neutron test bed (`testbed/neutron`: RabbitMQ, MariaDB and neutron-server 21 with ML2 openvswitch + l2population, vxlan, distributed routers, noauth) and two agent hosts on its fabric with the same `openvswitch_agent.ini` (vxlan with a VTEP on the underlay, `l2_population`, `enable_distributed_routing`, `arp_responder`, `firewall_driver = noop`, `debug = False`): one runs Neutron's `neutron-openvswitch-agent`, the other the built `dvrflow-agent` started as in a Neutron cloud (`--config-file openvswitch_agent.ini`, info logging). Each agent's ports are on a network of its own. A port is created over REST bound to the agent's host (`binding:host_id`, `compute:nova`) and plugged as os-vif would, with its own OVSDB connection: Interface type `%s` named `tap<id[:11]>` with iface-id, attached-mac, iface-status and vm-uuid, committed without waiting for ovs-vswitchd.\n\n", r.VIFType)
	p("Every time runs from just before the plug's OVSDB transaction. *update_device_list (up)* is when the agent's call reporting the device up reached the broker: the bench binds a queue of its own to the `neutron` exchange with the key `q-plugin` and receives a copy of every call the agents make to the server, stamped on arrival (the agent's own share: it includes ovs-vswitchd assigning the ofport, shown beside it, and the agent's calls for the port's details). *ACTIVE* is when the API first showed the port `ACTIVE` (polled every 20 ms for a single plug, 100 ms for a batch); the server's part is from the call to that. ")
	p("**Single plugs**: %d per agent, the agents in turn, each plug once no call reached q-plugin for 700 ms (Neutron's agent reports a device up a second time 1–2 s after the first) and, as Nova does it (it binds the port, then builds the domain, then plugs), once the server's push of the bound port (`%s`, a copy received by the bench as for q-plugin) has gone out. **Batch**: %d ports created over REST in parallel (16 at a time), then, once the bus is quiet, plugged in one OVSDB transaction; one agent after the other.\n\n", n.Plugs, portPushExchange, n.Batch)
	p("| agent | plugs | plug → ofport (ovs-vswitchd) p50 / p99 | plug → update_device_list (up): p50 | p99 | max | → ACTIVE, the server's part: p50 | p99 | plug → ACTIVE: p50 | p99 |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, a := range n.Agents {
		act := a.active()
		p("| %s | %d | %s / %s | %s | **%s** | %s | %s | %s | %s | %s |\n", a.Agent, len(a.Reported),
			ms(percentile(a.Ofport, 50)), ms(percentile(a.Ofport, 99)),
			ms(percentile(a.Reported, 50)), ms(percentile(a.Reported, 99)), ms(percentile(a.Reported, 100)),
			ms(percentile(a.Server, 50)), ms(percentile(a.Server, 99)), ms(percentile(act, 50)), ms(percentile(act, 99)))
	}
	for _, a := range n.Agents {
		if a.PushLate > 0 {
			p("\nFor %d of %s's plugs the server's push had not come 5 s after the port was created; they were plugged anyway.\n", a.PushLate, a.Agent)
		}
		if len(a.Asked) > 0 {
			p("\n%s asked for the port's details (`get_devices_details_list_and_failed_devices`, seen on the broker) in %d of %d plugs, %s after the plug at p50 and %s at p99; the rest of its share is mostly the server's answer to that call.\n",
				a.Agent, len(a.Asked), len(a.Reported), ms(percentile(a.Asked, 50)), ms(percentile(a.Asked, 99)))
		}
	}
	if py, ours := n.agent(neutronPython), n.agent(neutronDvrflow); py != nil && ours != nil && len(py.Reported) > 0 && len(ours.Reported) > 0 {
		ratio := func(f func(*neutronAgentResult) []time.Duration, q int) string {
			a, b := percentile(f(py), q), percentile(f(ours), q)
			if b <= 0 {
				return "–"
			}
			return fmt.Sprintf("%.1f", float64(a)/float64(b))
		}
		reported := func(a *neutronAgentResult) []time.Duration { return a.Reported }
		active := func(a *neutronAgentResult) []time.Duration { return a.active() }
		p("\nNeutron's agent / dvrflow-agent: update_device_list (up) %s× at p50, %s× at p99; plug → ACTIVE %s× at p50, %s× at p99.\n",
			ratio(reported, 50), ratio(reported, 99), ratio(active, 50), ratio(active, 99))
	}
	if n.Batch > 0 {
		p("\n| agent | ports plugged at once | plug → last update_device_list (up) | plug → all ACTIVE | q-plugin calls meanwhile (both agents) |\n|---|---:|---:|---:|---|\n")
		for _, a := range n.Agents {
			p("| %s | %d | %s | %s | %s |\n", a.Agent, n.Batch, ms(a.BatchReported), ms(a.BatchActive), callsText(a.BatchCalls))
		}
		if ratio := n.batchRatio(); ratio > 0 {
			p("\nEnd to end, Neutron's agent / dvrflow-agent: **%.2f×**.\n", ratio)
		}
	}
}

// neutronSummary adds the Neutron section's figures to the summary (README) when the run
// measured them.
func (r *results) neutronSummary(b *strings.Builder) {
	n := r.Neutron
	if n == nil || len(n.Agents) == 0 {
		return
	}
	fmt.Fprintf(b, "\nUnder a real neutron-server, beside Neutron's own agent (same configuration, same run; %d single plugs, %d ports at once):\n\n", n.Plugs, n.Batch)
	fmt.Fprintf(b, "| agent | plug → update_device_list (up) p50 / p99 | → ACTIVE, the server's part p50 / p99 | %d ports at once → all ACTIVE |\n|---|---:|---:|---:|\n", n.Batch)
	for _, a := range n.Agents {
		batch := "–"
		if a.BatchActive > 0 {
			batch = ms(a.BatchActive)
		}
		fmt.Fprintf(b, "| %s | %s / %s | %s / %s | %s |\n", a.Agent, ms(percentile(a.Reported, 50)), ms(percentile(a.Reported, 99)),
			ms(percentile(a.Server, 50)), ms(percentile(a.Server, 99)), batch)
	}
}
