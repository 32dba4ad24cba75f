package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"
)

// steps returns n durations step, 2×step, …, n×step.
func steps(n int, step time.Duration) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = time.Duration(i+1) * step
	}
	return ds
}

// neutronFixture is a Neutron section of 100 single plugs per agent (Neutron's agent
// 20 ms … 2 s, dvrflow 1 … 100 ms; the server 3 … 300 ms for both) and batches of 100
// (20 s and 2.5 s end to end).
func neutronFixture() *neutronResult {
	return &neutronResult{Plugs: 100, Batch: 100, Agents: []neutronAgentResult{
		{Agent: neutronPython, Host: "bench-python", Ofport: steps(100, 100*time.Microsecond), Reported: steps(100, 20*time.Millisecond),
			Server: steps(100, 3*time.Millisecond), BatchReported: 15 * time.Second, BatchActive: 20 * time.Second,
			BatchCalls: map[string]int{"get_devices_details_list_and_failed_devices": 4, "update_device_list": 8}},
		{Agent: neutronDvrflow, Host: "bench-dvrflow", Ofport: steps(100, 100*time.Microsecond), Reported: steps(100, time.Millisecond),
			Server: steps(100, 3*time.Millisecond), Asked: steps(100, 200*time.Microsecond), BatchReported: 1200 * time.Millisecond, BatchActive: 2500 * time.Millisecond,
			BatchCalls: map[string]int{"get_devices_details_list_and_failed_devices": 1, "update_device_list": 1, "bulk_pull": 1}},
	}}
}

func TestNeutronTargets(t *testing.T) {
	r := &results{Neutron: neutronFixture()}
	ts := r.neutronTargets()
	if len(ts) != 2 {
		t.Fatalf("%d Neutron targets, want 2", len(ts))
	}
	plug, batch := ts[0], ts[1]
	if !plug.Measured || !plug.Met || plug.Want != "< 100 ms" ||
		plug.Got != "99.0 ms over 100 plugs (p50 50.0 ms; the server's part, to ACTIVE: p99 297 ms; Neutron's agent: p99 1980 ms)" {
		t.Errorf("plug target: %+v", plug)
	}
	if !batch.Measured || !batch.Met || batch.Want != "≥ 5×" || batch.Got != "8.00× for 100 ports (20.0 s vs 2500 ms)" {
		t.Errorf("batch target: %+v", batch)
	}
	// 101 ms at p99 misses; 4× misses.
	r.Neutron.Agents[1].Reported[99] = 101 * time.Millisecond
	r.Neutron.Agents[1].Reported[98] = 101 * time.Millisecond
	r.Neutron.Agents[1].BatchActive = 5 * time.Second
	if ts := r.neutronTargets(); ts[0].Met || ts[1].Met || ts[1].Got != "4.00× for 100 ports (20.0 s vs 5000 ms)" {
		t.Errorf("targets missed: %+v", ts)
	}
	// Without the section, or without dvrflow's figures: not measured.
	for _, n := range []*neutronResult{nil, {Plugs: 100, Agents: []neutronAgentResult{{Agent: neutronPython, Reported: steps(3, time.Second)}}}} {
		for _, tg := range (&results{Neutron: n}).neutronTargets() {
			if tg.Measured {
				t.Errorf("target %q measured without dvrflow's figures (%+v)", tg.What, n)
			}
		}
	}
}

func TestNeutronSectionAndSummary(t *testing.T) {
	r := &results{VIFType: "patch", Neutron: neutronFixture()}
	md := r.markdown("")
	sec, _, _ := strings.Cut(strings.Split(md, "## 7. Neutron: dvrflow-agent beside Neutron's agent")[1], "\n## Node setup")
	for _, want := range []string{
		"**Single plugs**: 100 per agent",
		"**Batch**: 100 ports created over REST",
		"Interface type `patch`",
		// ofport p50/p99, reported p50/p99/max, server p50/p99, plug → ACTIVE p50/p99 (23 ms steps).
		"| neutron-openvswitch-agent | 100 | 5.0 ms / 9.9 ms | 1000 ms | **1980 ms** | 2000 ms | 150 ms | 297 ms | 1150 ms | 2277 ms |",
		"| dvrflow-agent | 100 | 5.0 ms / 9.9 ms | 50.0 ms | **99.0 ms** | 100 ms | 150 ms | 297 ms | 200 ms | 396 ms |",
		"update_device_list (up) 20.0× at p50, 20.0× at p99; plug → ACTIVE 5.8× at p50, 5.8× at p99.",
		"| neutron-openvswitch-agent | 100 | 15.0 s | 20.0 s | update_device_list ×8, get_devices_details_list_and_failed_devices ×4 |",
		"| dvrflow-agent | 100 | 1200 ms | 2500 ms | bulk_pull ×1, get_devices_details_list_and_failed_devices ×1, update_device_list ×1 |",
		"End to end, Neutron's agent / dvrflow-agent: **8.00×**.",
		"dvrflow-agent asked for the port's details (`get_devices_details_list_and_failed_devices`, seen on the broker) in 100 of 100 plugs, 10.0 ms after the plug at p50 and 19.8 ms at p99",
	} {
		if !strings.Contains(sec, want) {
			t.Errorf("Neutron section lacks %q:\n%s", want, sec)
		}
	}
	sum := r.summary()
	for _, want := range []string{
		"| Neutron: single plug → update_device_list (up) sent, dvrflow-agent p99 (the agent's own share) | < 100 ms | 99.0 ms over 100 plugs",
		"| Neutron: ports created and plugged at once → all ACTIVE, end to end: Neutron's agent / dvrflow-agent | ≥ 5× | 8.00× for 100 ports (20.0 s vs 2500 ms) | **yes** |",
		"| dvrflow-agent | 50.0 ms / 99.0 ms | 150 ms / 297 ms | 2500 ms |",
		"| neutron-openvswitch-agent | 1000 ms / 1980 ms | 150 ms / 297 ms | 20.0 s |",
	} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary lacks %q:\n%s", want, sum)
		}
	}
	// A run without the batch: no batch table, the target not measured.
	r.Neutron.Batch = 0
	for i := range r.Neutron.Agents {
		r.Neutron.Agents[i].BatchActive, r.Neutron.Agents[i].BatchReported, r.Neutron.Agents[i].BatchCalls = 0, 0, nil
	}
	if md := r.markdown(""); strings.Contains(md, "ports plugged at once") || strings.Contains(md, "End to end") {
		t.Errorf("section of a run without a batch shows the batch table:\n%s", md)
	}
	if ts := r.neutronTargets(); ts[1].Measured {
		t.Errorf("batch target measured without a batch: %+v", ts[1])
	}
}

// `-render` of results from a run before the Neutron section (a copy of results.json as it
// was then, in testdata): no
// section 7, the Neutron targets not measured, no Neutron table in the README summary;
// and the new fields survive -json and -render.
func TestRenderResultsWithoutNeutron(t *testing.T) {
	r, err := loadResults("testdata/results-before-neutron.json")
	if err != nil {
		t.Fatal(err)
	}
	if r.Neutron != nil {
		t.Fatal("testdata/results-before-neutron.json has a Neutron section: it must be a run from before it")
	}
	md := r.markdown("")
	if strings.Contains(md, "## 7.") || strings.Contains(md, "beside Neutron's own agent") {
		t.Errorf("old results render a Neutron section")
	}
	for _, what := range []string{"Neutron: single plug", "Neutron: ports created and plugged at once"} {
		if !strings.Contains(md, what) || !strings.Contains(strings.SplitN(strings.Split(md, what)[1], "\n", 2)[0], "| – | not measured |") {
			t.Errorf("old results: target %q not shown as not measured:\n%s", what, r.summary())
		}
	}
	dir := t.TempDir()
	readme := dir + "/README.md"
	if err := os.WriteFile(readme, []byte(readmeBegin+"\n"+readmeEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(readme, r); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(readme); strings.Contains(string(data), "beside Neutron's own agent") {
		t.Errorf("README summary of old results shows a Neutron table:\n%s", data)
	}
	r.Neutron = neutronFixture()
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	path := dir + "/results.json"
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := loadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := back.Neutron; n == nil || n.batchRatio() != 8 || len(n.Agents[1].Reported) != 100 || n.Agents[0].BatchCalls["update_device_list"] != 8 {
		t.Errorf("Neutron results after a JSON round trip: %+v", back.Neutron)
	}
}

func TestParseRPCCall(t *testing.T) {
	inner := `{"method": "update_device_list", "version": "1.9", "args": {"devices_up": ["a", "b"], "devices_down": [], "agent_id": "ovs-agent-h", "host": "h", "refresh_tunnels": true}, "_msg_id": "x"}`
	env, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": inner})
	for _, body := range [][]byte{env, []byte(inner)} {
		c, err := parseRPCCall(body)
		if err != nil || c.Method != "update_device_list" || c.Host != "h" || strings.Join(c.Up, ",") != "a,b" {
			t.Errorf("parseRPCCall(%s) = %+v, %v", body, c, err)
		}
	}
	c, err := parseRPCCall([]byte(`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"get_devices_details_list_and_failed_devices\", \"args\": {\"devices\": [\"a\"], \"host\": \"h\"}}"}`))
	if err != nil || c.Method != "get_devices_details_list_and_failed_devices" || c.Up != nil || strings.Join(c.Asked, ",") != "a" {
		t.Errorf("details call: %+v, %v", c, err)
	}
	for _, bad := range []string{`not json`, `{"oslo.message": "{}"}`, `{"oslo.message": "[1"}`} {
		if _, err := parseRPCCall([]byte(bad)); err == nil {
			t.Errorf("parseRPCCall(%s) accepted", bad)
		}
	}
}

func TestRPCWatchReportedUpAndCounts(t *testing.T) {
	w := &rpcWatch{up: map[string]time.Time{}, asked: map[string]time.Time{}, changed: make(chan struct{})}
	t0 := time.Now()
	w.record(rpcCall{At: t0, Method: "get_devices_details_list_and_failed_devices", Asked: []string{"a"}})
	w.record(rpcCall{At: t0.Add(time.Millisecond), Method: "update_device_list", Up: []string{"a"}})
	w.record(rpcCall{At: t0.Add(2 * time.Millisecond), Method: "update_device_list", Up: []string{"a", "b"}}) // a again: the first counts
	ats, err := w.reportedUp(t.Context(), []string{"b", "a"}, time.Second)
	if err != nil || ats[0] != t0.Add(2*time.Millisecond) || ats[1] != t0.Add(time.Millisecond) {
		t.Errorf("reportedUp = %v, %v", ats, err)
	}
	if _, err := w.reportedUp(t.Context(), []string{"c"}, 10*time.Millisecond); err == nil || !strings.Contains(err.Error(), "1 of 1 devices not reported up") {
		t.Errorf("reportedUp of a device never reported: %v", err)
	}
	if at, ok := w.askedAt("a"); !ok || at != t0 {
		t.Errorf("askedAt(a) = %v, %v", at, ok)
	}
	if _, ok := w.askedAt("b"); ok {
		t.Errorf("askedAt(b) found")
	}
	if got := callsText(w.methodsBetween(t0.Add(time.Millisecond), t0.Add(2*time.Millisecond))); got != "update_device_list ×2" {
		t.Errorf("calls between: %s", got)
	}
}

func TestParseBoundPortPush(t *testing.T) {
	binding := func(host, vifType string) string {
		return `{"versioned_object.name": "PortBinding", "versioned_object.data": {"port_id": "p", "host": "` + host + `", "vif_type": "` + vifType + `"}}`
	}
	level := func(host string) string {
		return `{"versioned_object.name": "PortBindingLevel", "versioned_object.data": {"host": "` + host + `", "level": 0,
			"segment": {"versioned_object.name": "NetworkSegment", "versioned_object.data": {"network_type": "vxlan", "segmentation_id": 1001}}}}`
	}
	port := func(id, bindings, levels string) string {
		return `{"versioned_object.name": "Port", "versioned_object.version": "1.7", "versioned_object.data": {"id": "` + id +
			`", "status": "DOWN", "bindings": [` + bindings + `], "binding_levels": [` + levels + `]}}`
	}
	push := `{"method": "push", "version": "1.1", "args": {"event_type": "updated", "resource_list": [` + strings.Join([]string{
		port("bound", binding("h1", "ovs"), level("h1")),
		port("no-level", binding("h1", "ovs"), ""),
		port("level-elsewhere", binding("h1", "ovs"), level("h2")),
		port("unbound", binding("h1", "unbound"), level("h1")),
		port("no-host", binding("", "ovs"), ""),
		port("none", "", ""),
	}, ",") + `]}}`
	env, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": push})
	ids, err := parseBoundPortPush(env)
	if err != nil || strings.Join(ids, ",") != "bound" {
		t.Errorf("parseBoundPortPush = %v, %v; want [bound]", ids, err)
	}
	for _, bad := range []string{`not json`, `{"oslo.message": "{\"method\": \"port_update\"}"}`} {
		if _, err := parseBoundPortPush([]byte(bad)); err == nil {
			t.Errorf("parseBoundPortPush(%s) accepted", bad)
		}
	}
}
