package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dumpDir is a --from-dir holding one of Neutron's reference dumps as BRIDGE.flows files
// (the reference's "## bridge" sections split, its blanked cookies zero). It has no
// ovsdb.json, so ports stay numbers and no patch port joins the bridges.
func dumpDir(t *testing.T, scenario string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "testdata", "neutron", "scenarios", scenario+".flows"))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "compute1")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]*strings.Builder{}
	bridge := ""
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "## bridge "); ok {
			bridge, _, _ = strings.Cut(rest, ":")
			files[bridge] = &strings.Builder{}
			continue
		}
		if bridge != "" && !strings.HasPrefix(line, "#") {
			files[bridge].WriteString(strings.ReplaceAll(line, "cookie=COOKIE", "cookie=0x0") + "\n")
		}
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name+".flows"), []byte(text.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func run(t *testing.T, args ...string) error {
	t.Helper()
	root := newRootCommand()
	root.SetArgs(args)
	return root.ExecuteContext(context.Background())
}

func TestGraphCommand(t *testing.T) {
	dir := dumpDir(t, "dvr_vxlan_l2pop")
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, out string)
	}{
		{"dot by default", nil, func(t *testing.T, out string) {
			for _, want := range []string{"digraph pipeline", `"cluster_br-int"`, `"cluster_br-tun"`, "PATCH_LV_TO_TUN", "3 ARP_DVR_MAC_TO_DST_MAC"} {
				if !strings.Contains(out, want) {
					t.Errorf("DOT lacks %s", want)
				}
			}
		}},
		{"one bridge", []string{"br-tun"}, func(t *testing.T, out string) {
			if strings.Contains(out, `"cluster_br-int"`) || !strings.Contains(out, `"cluster_br-tun"`) {
				t.Errorf("br-tun alone should be drawn:\n%s", out)
			}
		}},
		{"svg", []string{"-o", "svg"}, func(t *testing.T, out string) {
			if !strings.Contains(out, "<svg") || !strings.Contains(out, "UCAST_TO_TUN") {
				t.Errorf("not the pipeline's SVG: %.200s", out)
			}
		}},
		{"png", []string{"-o", "png"}, func(t *testing.T, out string) {
			if !strings.HasPrefix(out, "\x89PNG") {
				t.Errorf("not a PNG: %q", out[:min(len(out), 8)])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "graph")
			args := append([]string{"graph", "--from-dir", dir, "--out", out}, tt.args...)
			if err := run(t, args...); err != nil {
				t.Fatal(err)
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, string(data))
		})
	}
}

func TestGraphCommandErrors(t *testing.T) {
	dir := dumpDir(t, "dvr_vlan")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown bridge", []string{"graph", "br-nope", "--from-dir", dir}, `no bridge "br-nope" (the node has br-int, br-vlan)`},
		{"unknown format", []string{"graph", "-o", "gif", "--from-dir", dir}, "unknown graph format"},
		{"no dump", []string{"graph", "--from-dir", t.TempDir()}, "no BRIDGE.flows"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestReportCommand(t *testing.T) {
	dir := dumpDir(t, "dvr_vlan")
	out := filepath.Join(t.TempDir(), "report.html")
	if err := run(t, "report", "--from-dir", dir, "--out", out); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(data)
	for _, want := range []string{`<span id="title">`, "<svg", `id="filter"`, "DVR_TO_SRC_MAC_PHYSICAL"} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %s", want)
		}
	}
	if rows := strings.Count(page, "<tr data-bridge="); rows != 61 {
		t.Errorf("%d flow rows, want 61", rows)
	}
}
