package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/inspect"
)

func TestParseMonitorLine(t *testing.T) {
	for _, tc := range []struct {
		line string
		want monitorKey
		ok   bool
	}{
		{" event=ADDED table=25 cookie=0xd7f10524977eb2c4 in_port=115,dl_src=fa:16:3e:00:00:64 actions=resubmit(,30)",
			monitorKey{"ADDED", "25", "fa:16:3e:00:00:64"}, true},
		{" event=DELETED reason=delete table=25 cookie=0 in_port=4,dl_src=fa:16:3e:00:00:02 actions=resubmit(,30)",
			monitorKey{"DELETED", "25", "fa:16:3e:00:00:02"}, true},
		{" event=ADDED table=60 cookie=0 dl_vlan=100,dl_dst=fa:16:3e:00:00:64 actions=strip_vlan,output:115", monitorKey{}, false},
		{"NXST_FLOW_MONITOR reply (xid=0x0):", monitorKey{}, false},
	} {
		got, ok := parseMonitorLine(tc.line)
		if ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("parseMonitorLine(%q) = %+v, %v; want %+v, %v", tc.line, got, ok, tc.want, tc.ok)
		}
	}
}

func TestPercentileIsNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[int]time.Duration{50: 50 * time.Millisecond, 99: 99 * time.Millisecond, 100: 100 * time.Millisecond, 1: time.Millisecond} {
		if got := percentile(ds, p); got != want {
			t.Errorf("p%d = %v, want %v", p, got, want)
		}
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one sample = %v", got)
	}
	if got := median([]time.Duration{3, 1, 2}); got != 2 {
		t.Errorf("median = %v, want 2", got)
	}
}

// sized returns a size result with the given cold sync medians (bare bridges, flows lost),
// restart and memory.
func sized(n int, agent, baseline, lost, restart time.Duration, flows int, rss int64) *sizeResult {
	return &sizeResult{
		Params: topogen.Params{Ports: n, Networks: n / 20, OtherHosts: 50}, Flows: flows,
		Cold:        []coldRun{{Agent: agent, Baseline: baseline}},
		FlowsLost:   []restartResult{{Took: lost, FlowMods: flows}},
		Restart:     restartResult{Took: restart},
		AfterDelete: restartResult{FlowMods: 1},
		Memory:      memoryResult{AgentRSS: rss},
	}
}

func TestTargets(t *testing.T) {
	r := &results{Sizes: []*sizeResult{
		sized(1000, 200*time.Millisecond, 250*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond, 8000, 40<<20),
		sized(10000, 3*time.Second, 2*time.Second, 2200*time.Millisecond, time.Second, 80000, 70<<20),
	}}
	r.Sizes[0].Incremental = &incrementalResult{Plug: []time.Duration{10 * time.Millisecond, 60 * time.Millisecond}}
	r.Sizes[0].Cold[0].AgentCPU = 100 * time.Millisecond
	r.Sizes[1].Cold[0].AgentCPU = 1500 * time.Millisecond
	r.Neutron = neutronFixture()
	r.Firewall = firewallFixture()
	met := map[string]bool{}
	for _, tg := range r.targets() {
		if !tg.Measured {
			t.Fatalf("target %q not measured", tg.What)
		}
		met[tg.What] = tg.Met
	}
	want := map[string]bool{
		"cold sync, bare bridges (first start), 1000 ports: agent / ovs-ofctl --bundle":                          true,  // 0.8 ≤ 1.0
		"cold sync, bare bridges (first start), 10000 ports: agent / ovs-ofctl --bundle":                         false, // 1.5 > 1.2
		"cold sync, bridges configured, every flow lost (host restart), 1000 ports: agent / ovs-ofctl --bundle":  false, // 1.2 > 1.0
		"cold sync, bridges configured, every flow lost (host restart), 10000 ports: agent / ovs-ofctl --bundle": true,  // 1.1 ≤ 1.2
		"no-op restart: flow-mods sent (every N)":                                                                true,
		"no-op restart, 1000 ports: converged":                                                                   true,
		"incremental plug, 1000 ports: p99 to flows confirmed":                                                   false, // p99 of two = 60 ms
		"agent memory, 10000 ports: RSS per installed flow":                                                      true,  // 917 B
		"cost grows linearly with N (1000 → 10000 ports): the agent's CPU time per cold sync":                    false, // ×15 CPU for ×10 flows
		"Neutron: single plug → update_device_list (up) sent, dvrflow-agent p99 (the agent's own share)":         true,  // 99 ms
		"Neutron: ports created and plugged at once → all ACTIVE, end to end: Neutron's agent / dvrflow-agent":   true,  // 8×
	}
	for what, w := range want {
		if got, ok := met[what]; !ok || got != w {
			t.Errorf("target %q met=%v (present %v), want %v", what, got, ok, w)
		}
	}
	r.Sizes[1].Cold[0].AgentCPU = 1100 * time.Millisecond // ×11 for ×10 flows: within 1.25×
	for _, tg := range r.targets() {
		if strings.HasPrefix(tg.What, "cost grows linearly") && (!tg.Met || !strings.Contains(tg.Got, "agent CPU ×11.0 (wall time: bare bridges ×15.0, every flow lost ×7.3)")) {
			t.Errorf("linear growth judged on the agent's CPU: met %v, %s", tg.Met, tg.Got)
		}
	}
	r.Sizes[1].Restart.FlowMods = 2
	for _, tg := range r.targets() {
		if strings.HasPrefix(tg.What, "no-op restart: flow-mods") && tg.Met {
			t.Errorf("a restart that sent 2 flow-mods meets the 0 flow-mods target")
		}
	}
	if md := r.markdown(""); !strings.Contains(md, "| 1000 | 50 |") || !strings.Contains(md, "**0.80**") ||
		!strings.Contains(md, "| 10000 | 80000 | 2200 ms |") || !strings.Contains(md, "**1.10**") {
		t.Errorf("markdown lacks the 1000-port cold sync row or the 10000-port flows-lost row with their ratios:\n%s", md)
	}
}

func TestBaselineName(t *testing.T) {
	if got := baselineName("br-int"); got != "bl-int" {
		t.Errorf("baselineName(br-int) = %s", got)
	}
}

func TestUpdateReadmeReplacesOnlyBetweenMarkers(t *testing.T) {
	path := t.TempDir() + "/README.md"
	before := "# x\n\n## Benchmarks\n\ntext\n\n" + readmeBegin + "\nold table\n" + readmeEnd + "\n\n## After\nkept\n"
	if err := os.WriteFile(path, []byte(before), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &results{Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Machine: "m", Sizes: []*sizeResult{sized(1000, time.Second, time.Second, time.Second, time.Second, 10, 1)}}
	if err := updateReadme(path, r); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(path)
	got := string(data)
	if strings.Contains(got, "old table") || !strings.Contains(got, "2026-01-02 on m") ||
		!strings.HasSuffix(got, readmeEnd+"\n\n## After\nkept\n") || !strings.HasPrefix(got, "# x\n\n## Benchmarks\n\ntext\n\n"+readmeBegin) {
		t.Errorf("README after update:\n%s", got)
	}
	if err := os.WriteFile(path, []byte("no markers"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(path, r); err == nil {
		t.Error("a README without markers was accepted")
	}
}

func TestColdSyncTableFloorColumns(t *testing.T) {
	s := sized(1000, 600*time.Millisecond, 200*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond, 8000, 40<<20)
	s.Cold = []coldRun{
		{Agent: 700 * time.Millisecond, Baseline: 250 * time.Millisecond, Vsctl: 90 * time.Millisecond},
		{Agent: 600 * time.Millisecond, Baseline: 200 * time.Millisecond, Vsctl: 100 * time.Millisecond},
		{Agent: 500 * time.Millisecond, Baseline: 150 * time.Millisecond, Vsctl: 400 * time.Millisecond},
	}
	md := (&results{Sizes: []*sizeResult{s}}).markdown("")
	for _, want := range []string{
		"| ovs-ofctl --bundle | ratio | ovs-vsctl: bridge settings, patch pair, tags | floor (ovs-vsctl + ovs-ofctl) | agent / floor |",
		// medians: agent 600, ovs-ofctl 200, ovs-vsctl 100; floor 300, agent / floor 2.00
		"| 200 ms | **3.00** | 100 ms | 300 ms | 2.00 |",
		"600 ms / 200 ms / 100 ms",
		"A second baseline, **ovs-vsctl**",
		"`int-br-vlan` / `phy-br-vlan`",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	cold, _, _ := strings.Cut(strings.Split(md, "\n## 2.")[0], "\n### Cold sync on configured bridges")
	if got := strings.Count(cold, "|---:"); got != 13 {
		t.Errorf("cold sync table has %d right-aligned columns, want 13", got)
	}
	judged := false
	for _, tg := range (&results{Sizes: []*sizeResult{s}}).targets() {
		if strings.HasPrefix(tg.What, "cold sync, bare bridges (first start), 1000 ports") {
			judged = true
			if tg.Got != "3.00" || tg.Met {
				t.Errorf("the target is judged on agent / ovs-ofctl: got %s, met %v", tg.Got, tg.Met)
			}
		}
	}
	if !judged {
		t.Error("no cold sync target for 1000 ports")
	}
}

// An earlier run's -json results lack the ovs-vsctl baseline: they render with "–" there.
func TestRenderResultsWithoutVsctl(t *testing.T) {
	old := `{"Reps": 1, "Sizes": [{"Params": {"Ports": 100, "Networks": 5, "OtherHosts": 50}, "Ports": 105, "Flows": 954,
		"FlowsByBr": {"br-int": 878, "br-vlan": 76},
		"Cold": [{"Agent": 89247993, "Reconcile": 45256339, "TagsApplied": 96026345, "Baseline": 129971788, "FlowMods": 954}],
		"Restart": {"Took": 1000000}, "AfterDelete": {"Took": 1000000, "FlowMods": 1}, "Memory": {"AgentRSS": 1000}}]}`
	var r results
	if err := json.Unmarshal([]byte(old), &r); err != nil {
		t.Fatal(err)
	}
	md := r.markdown("")
	if !strings.Contains(md, "| 130 ms | **0.69** | – | – | – | – |") || !strings.Contains(md, "89.2 ms / 130 ms / –") {
		t.Errorf("old results render without dashes for the ovs-vsctl columns:\n%s", md)
	}
	cold := strings.Split(strings.Split(md, "## 1. Cold sync")[1], "## 2.")[0]
	for _, bad := range []string{"NaN", "Inf", "0.0 ms"} {
		if strings.Contains(cold, bad) {
			t.Errorf("old results render %q in the cold sync section:\n%s", bad, cold)
		}
	}
}

func TestVsctlArgs(t *testing.T) {
	st := ovsdbState{
		Bridges: []bridgeSettings{{Name: "br-int", FailMode: "secure", Protocols: []string{"OpenFlow10", "OpenFlow13"},
			OtherConfig: map[string]string{"mac-table-size": "50000"}, TableNames: map[int]string{0: "LOCAL_SWITCHING", 23: "CANARY"}}},
		Patches: []patchPort{
			{Bridge: "br-int", Name: "int-br-vlan", Type: "patch", Options: map[string]string{"peer": "phy-br-vlan"}},
			{Bridge: "br-vlan", Name: "phy-br-vlan", Type: "patch", Options: map[string]string{"peer": "int-br-vlan"}},
		},
		Tags: map[string]int{"tapb": 2, "qr-a": 1},
	}
	want := "--id=@ft0_0 create Flow_Table name=LOCAL_SWITCHING -- --id=@ft0_23 create Flow_Table name=CANARY -- " +
		"set Bridge br-int fail_mode=secure protocols=OpenFlow10,OpenFlow13 other_config:mac-table-size=50000 flow_tables:0=@ft0_0 flow_tables:23=@ft0_23 -- " +
		"add-port br-int int-br-vlan -- set Interface int-br-vlan type=patch options:peer=phy-br-vlan -- " +
		"add-port br-vlan phy-br-vlan -- set Interface phy-br-vlan type=patch options:peer=int-br-vlan -- " +
		"set Port qr-a tag=1 -- set Port tapb tag=2"
	if got := strings.Join(vsctlArgs(st), " "); got != want {
		t.Errorf("vsctlArgs =\n%s\nwant\n%s", got, want)
	}
}

func TestOvsdbStateDiff(t *testing.T) {
	want := ovsdbState{
		Bridges: []bridgeSettings{{Name: "br-int", FailMode: "secure", Protocols: []string{"OpenFlow13"}, TableNames: map[int]string{0: "T0"}}},
		Patches: []patchPort{
			{Bridge: "br-int", Name: "int-br-vlan", Type: "patch", Options: map[string]string{"peer": "phy-br-vlan"}},
			{Bridge: "br-vlan", Name: "phy-br-vlan", Type: "patch", Options: map[string]string{"peer": "int-br-vlan"}},
		},
		Tags: map[string]int{"a": 1, "b": 2},
	}
	clone := func(edit func(*ovsdbState)) ovsdbState {
		s := ovsdbState{Tags: maps.Clone(want.Tags)}
		for _, b := range want.Bridges {
			b.TableNames = maps.Clone(b.TableNames)
			s.Bridges = append(s.Bridges, b)
		}
		for _, p := range want.Patches {
			p.Options = maps.Clone(p.Options)
			s.Patches = append(s.Patches, p)
		}
		edit(&s)
		return s
	}
	for name, tc := range map[string]struct {
		got  ovsdbState
		want string // a part of the error; "" for none
	}{
		"equal":           {clone(func(*ovsdbState) {}), ""},
		"standalone":      {clone(func(s *ovsdbState) { s.Bridges[0].FailMode = "" }), "bridge br-int"},
		"table unnamed":   {clone(func(s *ovsdbState) { delete(s.Bridges[0].TableNames, 0) }), "bridge br-int"},
		"patch absent":    {clone(func(s *ovsdbState) { s.Patches[1].Bridge = "" }), "patch port phy-br-vlan absent"},
		"patch elsewhere": {clone(func(s *ovsdbState) { s.Patches[0].Bridge = "br-vlan" }), "patch port int-br-vlan: on br-vlan"},
		"wrong peer":      {clone(func(s *ovsdbState) { s.Patches[0].Options["peer"] = "x" }), "patch port int-br-vlan"},
		"not patch":       {clone(func(s *ovsdbState) { s.Patches[1].Type = "" }), "patch port phy-br-vlan"},
		"untagged":        {clone(func(s *ovsdbState) { delete(s.Tags, "b") }), "port b untagged, want tag 2"},
		"other tag":       {clone(func(s *ovsdbState) { s.Tags["a"] = 3 }), "port a tag 3, want 1"},
		"extra tag":       {clone(func(s *ovsdbState) { s.Tags["c"] = 1 }), "port c tag 1, want untagged"},
	} {
		err := want.diff(tc.got)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want one containing %q", name, err, tc.want)
		}
	}
	many := ovsdbState{Bridges: want.Bridges, Patches: want.Patches, Tags: map[string]int{}}
	for i := range 10 {
		many.Tags[fmt.Sprint("p", i)] = 1
	}
	if err := many.diff(want); err == nil || !strings.Contains(err.Error(), "and 7 more") {
		t.Errorf("12 differences: %v, want the first 5 and \"and 7 more\"", err)
	}
}

func TestUUIDsAndStringMap(t *testing.T) {
	if got := uuids(ovsdb.UUID{GoUUID: "u1"}); !slices.Equal(got, []string{"u1"}) {
		t.Errorf("uuids(one) = %v", got)
	}
	set := ovsdb.OvsSet{GoSet: []any{ovsdb.UUID{GoUUID: "u1"}, ovsdb.UUID{GoUUID: "u2"}}}
	if got := uuids(set); !slices.Equal(got, []string{"u1", "u2"}) {
		t.Errorf("uuids(set) = %v", got)
	}
	if got := uuids(ovsdb.OvsSet{GoSet: []any{}}); len(got) != 0 {
		t.Errorf("uuids(empty) = %v", got)
	}
	m := ovsdb.OvsMap{GoMap: map[any]any{"peer": "phy-br-vlan"}}
	if got := stringMap(m); !maps.Equal(got, map[string]string{"peer": "phy-br-vlan"}) {
		t.Errorf("stringMap = %v", got)
	}
}

// cliSized returns a size result whose CLI phase ran three times.
func cliSized(n, flows int) *sizeResult {
	s := sized(n, time.Second, time.Second, time.Second, 100*time.Millisecond, flows, 40<<20)
	s.CLI = &cliResult{Bridges: []string{"br-int", "br-vlan"}, Flows: flows, Ruled: flows - 2, Runs: []cliRun{
		{Baseline: 20 * time.Millisecond, Flows: cliProcess{Took: 90 * time.Millisecond, CPU: 60 * time.Millisecond, MaxRSS: 30 << 20},
			Diff: cliProcess{Took: 110 * time.Millisecond, MaxRSS: 34 << 20}},
		{Baseline: 25 * time.Millisecond, Flows: cliProcess{Took: 100 * time.Millisecond, CPU: 70 * time.Millisecond, MaxRSS: 31 << 20},
			Diff: cliProcess{Took: 120 * time.Millisecond, MaxRSS: 36 << 20}},
		{Baseline: 40 * time.Millisecond, Flows: cliProcess{Took: 300 * time.Millisecond, CPU: 80 * time.Millisecond, MaxRSS: 32 << 20},
			Diff: cliProcess{Took: 90 * time.Millisecond, MaxRSS: 35 << 20}},
	}}
	return s
}

func TestCLISectionAndSummary(t *testing.T) {
	r := &results{Reps: 3, Sizes: []*sizeResult{cliSized(1000, 8000)}}
	md := r.markdown("")
	cli, _, _ := strings.Cut(strings.Split(md, "## 6. The dvrflow CLI")[1], "\n## Node setup")
	for _, want := range []string{
		"| N | flows (with a rule) | ovs-ofctl dump-flows | `dvrflow flows -o json` | ratio | flows explained / s | CPU of flows (with its ovs-ofctl) | `dvrflow diff -o json` | ratio | peak RSS: flows / diff |",
		// medians: baseline 25 ms, flows 100 ms (4.00), diff 110 ms (4.40); 8000 flows / 0.1 s;
		// CPU 70 ms; peak RSS the largest of the runs.
		"| 1000 | 8000 (7998) | 25.0 ms | 100 ms | **4.00** | 80000 | 70.0 ms | 110 ms | **4.40** | 32.0 MiB / 36.0 MiB |",
		"N=1000: 20.0 ms / 90.0 ms / 110 ms, 25.0 ms / 100 ms / 120 ms, 40.0 ms / 300 ms / 90.0 ms.",
		"3 repetitions, medians",
	} {
		if !strings.Contains(cli, want) {
			t.Errorf("CLI section lacks %q:\n%s", want, cli)
		}
	}
	if got := strings.Count(cli, "|---:"); got != 10 {
		t.Errorf("CLI table has %d right-aligned columns, want 10", got)
	}
	sum := r.summary()
	if want := "| 1000 | 8000 | 100 ms (4.00× ovs-ofctl dump-flows) | 110 ms (4.40× ovs-ofctl dump-flows) | 80000 | 36.0 MiB |"; !strings.Contains(sum, want) {
		t.Errorf("summary lacks the CLI row %q:\n%s", want, sum)
	}
	// A size of the same run without the CLI phase (a run interrupted) shows dashes.
	r.Sizes = append(r.Sizes, sized(10000, time.Second, time.Second, time.Second, time.Second, 80000, 70<<20))
	if sum := r.summary(); !strings.Contains(sum, "| 10000 | 80000 | – | – | – | – |") {
		t.Errorf("summary without the CLI for 10000 ports:\n%s", sum)
	}
	if md := r.markdown(""); !strings.Contains(md, "| 10000 | – | – | – | – | – | – | – | – | – |") {
		t.Errorf("CLI section without the CLI for 10000 ports:\n%s", md)
	}
}

// `-render` of an earlier run's results.json, which lacks the CLI phase: the CLI section
// shows "–", the README summary has no CLI table, and nothing renders NaN or Inf.
func TestRenderResultsWithoutCLI(t *testing.T) {
	old := `{"Reps": 1, "Sizes": [{"Params": {"Ports": 100, "Networks": 5, "OtherHosts": 50}, "Ports": 105, "Flows": 954,
		"FlowsByBr": {"br-int": 878, "br-vlan": 76},
		"Cold": [{"Agent": 89247993, "Reconcile": 45256339, "TagsApplied": 96026345, "Baseline": 129971788, "Vsctl": 20000000, "FlowMods": 954}],
		"Restart": {"Took": 1000000}, "AfterDelete": {"Took": 1000000, "FlowMods": 1}, "Memory": {"AgentRSS": 1000}}]}`
	dir := t.TempDir()
	path := dir + "/results.json"
	if err := os.WriteFile(path, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := loadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	md := r.markdown("")
	cli, _, _ := strings.Cut(strings.Split(md, "## 6. The dvrflow CLI")[1], "\n## Node setup")
	if !strings.Contains(cli, "| 100 | – | – | – | – | – | – | – | – | – |") || strings.Contains(cli, "Every run") {
		t.Errorf("old results' CLI section:\n%s", cli)
	}
	for _, bad := range []string{"NaN", "Inf", "0.0 ms", "0.0 MiB"} {
		if strings.Contains(cli, bad) {
			t.Errorf("old results render %q in the CLI section:\n%s", bad, cli)
		}
	}
	readme := dir + "/README.md"
	if err := os.WriteFile(readme, []byte(readmeBegin+"\n"+readmeEnd+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(readme, r); err != nil {
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(readme); strings.Contains(string(data), "dvrflow flows") {
		t.Errorf("README summary of old results shows a CLI table:\n%s", data)
	}
	// Round trip: the new fields survive -json and -render.
	r.Sizes[0].CLI = cliSized(100, 954).CLI
	data, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	back, err := loadResults(path)
	if err != nil {
		t.Fatal(err)
	}
	if c := back.Sizes[0].CLI; c == nil || len(c.Runs) != 3 || c.diffTook() != 110*time.Millisecond || c.Runs[2].Flows.MaxRSS != 32<<20 {
		t.Errorf("CLI results after a JSON round trip: %+v", c)
	}
}

type fakeUsage struct{ ru any }

func (f fakeUsage) SysUsage() any { return f.ru }

func TestProcessFigures(t *testing.T) {
	ru := &syscall.Rusage{Maxrss: 2048, Utime: syscall.Timeval{Sec: 1, Usec: 500}, Stime: syscall.Timeval{Usec: 250000}}
	got := processFigures(fakeUsage{ru}, time.Second)
	want := cliProcess{Took: time.Second, CPU: time.Second + 500*time.Microsecond + 250*time.Millisecond, MaxRSS: 2 << 20}
	if got != want {
		t.Errorf("processFigures = %+v, want %+v", got, want)
	}
	if got := processFigures(fakeUsage{nil}, time.Second); got != (cliProcess{Took: time.Second}) {
		t.Errorf("processFigures without rusage = %+v", got)
	}
}

func TestCheckCLIOutput(t *testing.T) {
	recs := []inspect.FlowRecord{{Bridge: "br-int"}, {Bridge: "br-vlan"}, {Bridge: "br-int"}}
	if err := checkFlowRecords(recs, []string{"br-vlan", "br-int"}, 3); err != nil {
		t.Error(err)
	}
	if err := checkFlowRecords(recs, []string{"br-int", "br-vlan"}, 4); err == nil || !strings.Contains(err.Error(), "3 flows, the switch holds 4") {
		t.Errorf("a missing flow: %v", err)
	}
	if err := checkFlowRecords(recs[:1], []string{"br-int", "br-vlan"}, 1); err == nil || !strings.Contains(err.Error(), "bridges [br-int]") {
		t.Errorf("a bridge not read: %v", err)
	}
	if err := checkDiffEqual([]byte(`{"source": "topology", "equal": true, "missing": [], "extra": [], "changed": []}`)); err != nil {
		t.Error(err)
	}
	err := checkDiffEqual([]byte(`{"source": "topology", "equal": false, "missing": [{"bridge": "br-int", "table": 25, "priority": 2, "match": "in_port=10", "actions": "goto_table:60"}], "extra": [], "changed": []}`))
	if err == nil || !strings.Contains(err.Error(), "1 missing, 0 extra, 0 changed; first missing: br-int table=25 priority=2,in_port=10 actions=goto_table:60") {
		t.Errorf("a diff with a missing flow: %v", err)
	}
	if err := checkDiffEqual([]byte("not json")); err == nil {
		t.Error("diff output that is not JSON was accepted")
	}
}
