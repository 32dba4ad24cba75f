package main

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/bench/topogen"
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

// sized returns a size result with the given cold sync medians, restart and memory.
func sized(n int, agent, baseline, restart time.Duration, flows int, rss int64) *sizeResult {
	return &sizeResult{
		Params: topogen.Params{Ports: n, Networks: n / 20, OtherHosts: 50}, Flows: flows,
		Cold:        []coldRun{{Agent: agent, Baseline: baseline}},
		Restart:     restartResult{Took: restart},
		AfterDelete: restartResult{FlowMods: 1},
		Memory:      memoryResult{AgentRSS: rss},
	}
}

func TestTargets(t *testing.T) {
	r := &results{Sizes: []*sizeResult{
		sized(1000, 200*time.Millisecond, 250*time.Millisecond, 150*time.Millisecond, 8000, 40<<20),
		sized(10000, 3*time.Second, 2*time.Second, time.Second, 80000, 70<<20),
	}}
	r.Sizes[0].Incremental = &incrementalResult{Plug: []time.Duration{10 * time.Millisecond, 60 * time.Millisecond}}
	met := map[string]bool{}
	for _, tg := range r.targets() {
		if !tg.Measured {
			t.Fatalf("target %q not measured", tg.What)
		}
		met[tg.What] = tg.Met
	}
	want := map[string]bool{
		"cold sync, 1000 ports: agent / ovs-ofctl --bundle":    true,  // 0.8 ≤ 1.0
		"cold sync, 10000 ports: agent / ovs-ofctl --bundle":   false, // 1.5 > 1.2
		"no-op restart: flow-mods sent (every N)":              true,
		"no-op restart, 1000 ports: converged":                 true,
		"incremental plug, 1000 ports: p99 to flows confirmed": false, // p99 of two = 60 ms
		"agent memory, 10000 ports: RSS per installed flow":    true,  // 917 B
		"cost grows linearly with N (1000 → 10000 ports)":      false, // ×15 time for ×10 flows
	}
	for what, w := range want {
		if got, ok := met[what]; !ok || got != w {
			t.Errorf("target %q met=%v (present %v), want %v", what, got, ok, w)
		}
	}
	r.Sizes[1].Restart.FlowMods = 2
	for _, tg := range r.targets() {
		if strings.HasPrefix(tg.What, "no-op restart: flow-mods") && tg.Met {
			t.Errorf("a restart that sent 2 flow-mods meets the 0 flow-mods target")
		}
	}
	if md := r.markdown(""); !strings.Contains(md, "| 1000 | 50 |") || !strings.Contains(md, "**0.80**") {
		t.Errorf("markdown lacks the 1000-port cold sync row with its ratio:\n%s", md)
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
	r := &results{Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Machine: "m", Sizes: []*sizeResult{sized(1000, time.Second, time.Second, time.Second, 10, 1)}}
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
