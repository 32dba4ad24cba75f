package report

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/testbed/scenario"
)

// scenarioInput is the report of a node holding the flows Neutron's own agent installed
// for one of the reference scenarios, every flow explained (rule and owner), with its graph.
func scenarioInput(t *testing.T, name string) Input {
	t.Helper()
	node, err := scenario.Node(filepath.Join("..", "testdata", "neutron", "scenarios"), name)
	if err != nil {
		t.Fatal(err)
	}
	in := flowgraph.InputOf(node)
	var svg bytes.Buffer
	if err := flowgraph.Build(in).Render(context.Background(), flowgraph.FormatSVG, &svg); err != nil {
		t.Fatal(err)
	}
	diff, _, err := node.Diff(nil)
	if err != nil {
		t.Fatal(err)
	}
	return Input{
		Title:     name,
		Generated: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Flows:     in.Flows,
		GraphSVG:  svg.Bytes(),
		Diff:      diff,
	}
}

func TestWriteShowsEveryFlow(t *testing.T) {
	in := scenarioInput(t, "dvr_vlan")
	var out bytes.Buffer
	if err := Write(&out, in); err != nil {
		t.Fatal(err)
	}
	html := out.String()
	rows := strings.Count(html, "<tr data-bridge=")
	if want := len(in.Flows["br-int"]) + len(in.Flows["br-vlan"]); rows != want || want != 61 {
		t.Errorf("%d flow rows, want %d (45 + 16)", rows, want)
	}
	for _, want := range []string{
		"<svg", "LOCAL_SWITCHING", "DVR_PROCESS_PHYSICAL", `id="filter"`, "2025-01-02T03:04:05Z",
		`class="equal">Diff:`, "The switch holds exactly the flows dvrflow would install.", `<option>br-vlan</option>`, `<option>port</option>`, `<option>I30</option>`,
	} {
		if !strings.Contains(html, want) {
			t.Errorf("page lacks %s", want)
		}
	}
}

func TestWriteIsSelfContained(t *testing.T) {
	var out bytes.Buffer
	if err := Write(&out, scenarioInput(t, "dvr_vxlan_l2pop")); err != nil {
		t.Fatal(err)
	}
	html := out.String()
	// The SVG namespace URIs are names, not loads; nothing else may point outside.
	for _, bad := range []string{`src="http`, `href="http`, `src="//`, `href="//`, "url(http", "@import", "<link", "<script src"} {
		if strings.Contains(html, bad) {
			t.Errorf("page refers outside itself: %s", bad)
		}
	}
}

func TestWriteEscapesFlowText(t *testing.T) {
	hostile := `<script>alert("x")</script>`
	in := Input{
		Title: hostile,
		Flows: map[string][]inspect.FlowRecord{"br-int": {{
			Bridge: "br-int", TableName: hostile, Match: `in_port="` + hostile + `"`, Actions: "output:" + hostile,
			Rule: hostile, Owner: &explain.Owner{Kind: hostile, ID: hostile, Name: `" onmouseover="alert(1)`},
		}}},
		Diff: &inspect.DiffResult{Missing: []inspect.FlowRecord{{Bridge: "br-int", Match: hostile}}},
	}
	var out bytes.Buffer
	if err := Write(&out, in); err != nil {
		t.Fatal(err)
	}
	html := out.String()
	if strings.Contains(html, hostile) || strings.Contains(html, `alert("x")</script>`) {
		t.Errorf("flow text reached the page unescaped:\n%s", html)
	}
	if strings.Contains(html, `" onmouseover="alert(1)`) {
		t.Error("an owner name broke out of its attribute or cell")
	}
	if !strings.Contains(html, "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;") {
		t.Error("the escaped text is missing")
	}
}

func TestWriteDiff(t *testing.T) {
	rec := func(match, actions string) inspect.FlowRecord {
		return inspect.FlowRecord{Bridge: "br-int", Table: 60, TableName: "TRANSIENT", Priority: 20, Match: match, Actions: actions, Rule: "I60"}
	}
	tests := []struct {
		name string
		diff *inspect.DiffResult
		want []string
	}{
		{"not computed", nil, []string{"Diff: not computed", `class="unknown"`, "Not computed"}},
		{"equal", &inspect.DiffResult{Equal: true}, []string{`class="equal"`, "Diff: equal"}},
		{"different", &inspect.DiffResult{
			Missing: []inspect.FlowRecord{rec("dl_vlan=1,dl_dst=fa:16:3e:00:01:11", "pop_vlan,output:tapc0000001-00")},
			Extra:   []inspect.FlowRecord{rec("dl_vlan=9", "drop"), rec("dl_vlan=8", "drop")},
			Changed: []inspect.Change{{Desired: rec("dl_vlan=2", "output:tapA"), Installed: rec("dl_vlan=2", "output:tapB")}},
		}, []string{
			`class="different"`, "Diff: different: 1 missing, 2 extra, 1 changed", "Missing (1)", "Extra (2)", "Changed (1)",
			"output:tapc0000001-00", "dl_vlan=9", `id="diff-changed"`, "output:tapA", "output:tapB",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := Write(&out, Input{Flows: map[string][]inspect.FlowRecord{}, Diff: tt.diff}); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("page lacks %s", want)
				}
			}
		})
	}
}

func TestInlineSVG(t *testing.T) {
	tests := []struct {
		name    string
		svg     string
		want    string
		wantErr bool
	}{
		{"prolog cut", `<?xml version="1.0"?><!DOCTYPE svg><svg><g/></svg>`, "<svg><g/></svg>", false},
		{"none", "", "", false},
		{"not svg", "<html></html>", "", true},
		{"script", `<svg><script>alert(1)</script></svg>`, "", true},
		{"foreign object", `<svg><foreignObject/></svg>`, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := inlineSVG([]byte(tt.svg))
			if (err != nil) != tt.wantErr || string(got) != tt.want {
				t.Errorf("inlineSVG = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
