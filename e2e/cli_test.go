package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// runCLI runs the dvrflow CLI inside a host, pointed at its switch, and returns stdout and
// the exit code (stderr goes to the test log).
func runCLI(t *testing.T, ctx context.Context, h *sandbox.Host, args ...string) (string, int) {
	t.Helper()
	args = append(args, "--ovs-rundir", h.RunDir(), "--ovsdb-connection", h.DBEndpoint())
	cmd := h.Command(ctx, cliBinary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if stderr.Len() > 0 {
		t.Logf("dvrflow %s: stderr:\n%s", strings.Join(args, " "), stderr.String())
	}
	code := 0
	if err != nil {
		code = -1
		if cmd.ProcessState != nil {
			code = cmd.ProcessState.ExitCode()
		}
	}
	return string(out), code
}

var (
	refPortRe = regexp.MustCompile(`\b(in_port=|output:)(\d+)\b`)
	refVLANs  = regexp.MustCompile(`\b(dl_vlan=)(\d+)\b|\bset_field:(\d+)->vlan_vid\b`)
)

// loadNeutronFlows replaces every flow of the scenario's bridges with what Neutron's own
// agent installed (the reference dump), with random cookies as Neutron's are, its port
// numbers turned into the names ovs-ofctl resolves on this switch, and its local VLANs
// into this switch's tags for the same networks.
func loadNeutronFlows(t *testing.T, ctx context.Context, h *sandbox.Host, ref *testbed.Reference, lvid map[int]int) {
	t.Helper()
	cookie := map[string]uint64{}
	for _, br := range ref.Order {
		cookie[br] = rand.Uint64() >> 1
	}
	for _, br := range ref.Order {
		dump := ref.Bridges[br]
		var lines []string
		for _, l := range dump.Lines {
			// Neutron's agent gives every flow of a bridge the bridge's random cookie, also
			// the flows its learn actions make.
			l = strings.ReplaceAll(l, "cookie=COOKIE", fmt.Sprintf("cookie=%#x", cookie[br]))
			l = refPortRe.ReplaceAllStringFunc(l, func(m string) string {
				p := refPortRe.FindStringSubmatch(m)
				n, _ := strconv.Atoi(p[2])
				name, ok := dump.Ofports[n]
				if !ok {
					t.Fatalf("%s: no port %d in the reference's ofports", br, n)
				}
				return p[1] + `"` + name + `"`
			})
			l = refVLANs.ReplaceAllStringFunc(l, func(m string) string {
				p := refVLANs.FindStringSubmatch(m)
				if p[1] != "" {
					v, _ := strconv.Atoi(p[2])
					if ours, ok := lvid[v]; ok {
						return p[1] + strconv.Itoa(ours)
					}
					return m
				}
				v, _ := strconv.Atoi(p[3])
				if ours, ok := lvid[v-4096]; ok {
					return "set_field:" + strconv.Itoa(ours+4096) + "->vlan_vid"
				}
				return m
			})
			lines = append(lines, l)
		}
		file := filepath.Join(t.TempDir(), br+".flows")
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "replace-flows", br, file); err != nil {
			t.Fatalf("load Neutron's flows on %s: %v\n%s", br, err, out)
		}
	}
}

// TestCLIOnNeutronFlows: on a real switch holding the flows Neutron's own agent installed
// for each scenario, `dvrflow flows` names a rule for every flow and the owner of every flow
// that concerns an object, and `dvrflow diff` finds it equal to what dvrflow would install
// (modulo the documented differences); with one flow deleted and one changed by hand, diff
// reports exactly those two, with their owners.
func TestCLIOnNeutronFlows(t *testing.T) {
	needsSwitch(t)
	dir := scenarioDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios in %s: %v", dir, err)
	}
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".json")
		t.Run(name, func(t *testing.T) { cliOnNeutronFlows(t, file, strings.TrimSuffix(file, ".json")+".flows") })
	}
}

func cliOnNeutronFlows(t *testing.T, topoFile, flowsFile string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ref, err := testbed.ParseReference(flowsFile)
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	// The node's layout as the agents build it: bridges, patch and tunnel ports, then the
	// VIFs bound with their local VLAN tags.
	h := scenarioHost(t, ctx, "cli", topoFile, topo)
	lvid := map[int]int{} // Neutron's local VLAN → ours, by network
	for refVLAN, netID := range ref.LocalVLANs {
		for _, p := range topo.Ports {
			if p.NetworkID != netID {
				continue
			}
			out, err := h.Vsctl(ctx, "get", "Port", testbed.PortName(p), "tag")
			if err != nil {
				t.Fatal(err)
			}
			if tag, err := strconv.Atoi(strings.TrimSpace(out)); err == nil {
				lvid[refVLAN] = tag
			}
		}
	}
	loadNeutronFlows(t, ctx, h, ref, lvid)

	// flows: a rule for every flow, an owner for every flow of an object.
	out, code := runCLI(t, ctx, h, "flows", "-o", "json", "--topology", topoFile)
	if code != 0 {
		t.Fatalf("dvrflow flows: exit %d", code)
	}
	var recs []inspect.FlowRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatalf("dvrflow flows -o json: %v\n%s", err, out)
	}
	want := 0
	for _, br := range ref.Order {
		want += len(ref.Bridges[br].Lines)
	}
	scenarioBridges := map[string]bool{}
	for _, br := range ref.Order {
		scenarioBridges[br] = true
	}
	got := 0
	for _, r := range recs {
		if !scenarioBridges[r.Bridge] {
			continue
		}
		got++
		line := fmt.Sprintf("%s table=%d priority=%d %s actions=%s", r.Bridge, r.Table, r.Priority, r.Match, r.Actions)
		switch kind := explain.Concerns(r.Rule); {
		case r.Rule == "":
			t.Errorf("no rule: %s", line)
		case r.Owner == nil:
			t.Errorf("rule %s, no owner: %s", r.Rule, line)
		case kind != "" && (r.Owner.ID == "" || (r.Owner.Kind != kind && !(kind == explain.KindPort && r.Owner.Kind == explain.KindTunnel))):
			t.Errorf("rule %s concerns a %s, owner is %+v: %s", r.Rule, kind, *r.Owner, line)
		}
		if r.TableName == "" {
			t.Errorf("no table name: %s", line)
		}
		if strings.HasPrefix(r.Cookie, "0xd7f1") {
			t.Errorf("a flow with dvrflow's cookie after loading Neutron's: %s", line)
		}
	}
	if got != want {
		t.Errorf("dvrflow flows listed %d flows of the scenario's bridges, the switch holds %d", got, want)
	}

	// diff: equal to what dvrflow would install, modulo the documented differences.
	diff := func() (inspect.DiffResult, int) {
		out, code := runCLI(t, ctx, h, "diff", "-o", "json", "--topology", topoFile)
		var res inspect.DiffResult
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			t.Fatalf("dvrflow diff -o json (exit %d): %v\n%s", code, err, out)
		}
		return res, code
	}
	res, code := diff()
	if code != 0 || !res.Equal {
		t.Fatalf("diff on Neutron's flows: exit %d, %d missing %+v, %d extra %+v, %d changed %+v", code, len(res.Missing), res.Missing, len(res.Extra), res.Extra, len(res.Changed), res.Changed)
	}

	// One flow deleted and one changed by hand: exactly those two, per object.
	var victim, changed *inspect.FlowRecord
	for i := range recs {
		r := &recs[i]
		if !scenarioBridges[r.Bridge] || r.Owner == nil || explain.Concerns(r.Rule) == "" {
			continue
		}
		if victim == nil {
			victim = r
		} else if changed == nil && r.Bridge != victim.Bridge || (changed == nil && r.Owner.ID != victim.Owner.ID) {
			changed = r
		}
	}
	if victim == nil || changed == nil {
		t.Fatal("no two object flows to edit")
	}
	spec := func(r *inspect.FlowRecord) string {
		return fmt.Sprintf("table=%d,priority=%d,%s", r.Table, r.Priority, r.Match)
	}
	if out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "del-flows", victim.Bridge, spec(victim)); err != nil {
		t.Fatalf("del-flows: %v\n%s", err, out)
	}
	if out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--strict", "mod-flows", changed.Bridge, spec(changed)+",actions=drop"); err != nil {
		t.Fatalf("mod-flows: %v\n%s", err, out)
	}
	res, code = diff()
	if code != 1 || res.Equal {
		t.Errorf("diff after editing: exit %d, equal %v; want 1, false", code, res.Equal)
	}
	if len(res.Missing) != 1 || len(res.Extra) != 0 || len(res.Changed) != 1 {
		t.Fatalf("diff after editing: %d missing %+v, %d extra %+v, %d changed %+v; want 1, 0, 1", len(res.Missing), res.Missing, len(res.Extra), res.Extra, len(res.Changed), res.Changed)
	}
	if m := res.Missing[0]; m.Bridge != victim.Bridge || m.Table != victim.Table || m.Priority != victim.Priority || m.Match != victim.Match ||
		m.Owner == nil || *m.Owner != *victim.Owner {
		t.Errorf("missing %+v (owner %+v), want the deleted %+v (owner %+v)", m, m.Owner, *victim, *victim.Owner)
	}
	if c := res.Changed[0]; c.Installed.Match != changed.Match || c.Installed.Actions != "drop" || c.Desired.Actions != changed.Actions ||
		c.Installed.Owner == nil || *c.Installed.Owner != *changed.Owner {
		t.Errorf("changed %+v, want %s from %q to drop, owner %+v", c, changed.Match, changed.Actions, *changed.Owner)
	}
	// The text output names the objects.
	text, _ := runCLI(t, ctx, h, "diff", "--topology", topoFile)
	for _, wantText := range []string{"1 missing, 0 extra, 1 changed", victim.Owner.ID, changed.Owner.ID} {
		if !strings.Contains(text, wantText) {
			t.Errorf("diff text lacks %q:\n%s", wantText, text)
		}
	}
}

// TestCLIOnDvrflowNode: on a node dvrflow-agent programmed, `dvrflow flows` renders every
// flow as `ovs-ofctl --names` does (ports and tables by name), reads each owner off the
// cookie, its filters keep exactly the flows they name, and `dvrflow diff` is equal.
func TestCLIOnDvrflowNode(t *testing.T) {
	needsSwitch(t)
	files, err := filepath.Glob(filepath.Join(scenarioDir(t), "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scenarios: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) { cliOnDvrflowNode(t, file) })
	}
}

func cliOnDvrflowNode(t *testing.T, topoFile string) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	h := scenarioHost(t, ctx, "cli", topoFile, topo)

	// The CLI never writes: the switch holds the same flows before and after every command.
	snapshot := func() string {
		var all []string
		for _, br := range []string{"br-int", "br-tun", "br-vlan"} {
			if out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", "dump-flows", br); err == nil {
				all = append(all, out)
			}
		}
		return strings.Join(all, "\n")
	}
	before := snapshot()
	defer func() {
		if after := snapshot(); after != before {
			t.Errorf("the switch's flows changed while only the CLI ran:\nbefore:\n%s\nafter:\n%s", before, after)
		}
	}()

	out, code := runCLI(t, ctx, h, "flows", "-o", "json", "--topology", topoFile)
	if code != 0 {
		t.Fatalf("dvrflow flows: exit %d", code)
	}
	var recs []inspect.FlowRecord
	if err := json.Unmarshal([]byte(out), &recs); err != nil {
		t.Fatal(err)
	}
	byBridge := map[string][]inspect.FlowRecord{}
	for _, r := range recs {
		byBridge[r.Bridge] = append(byBridge[r.Bridge], r)
		if r.Rule == "" || r.Owner == nil || !strings.HasPrefix(r.Cookie, "0xd7f1") {
			t.Errorf("%s: rule %q owner %v cookie %s", r.Bridge, r.Rule, r.Owner, r.Cookie)
		}
	}
	// The same text as ovs-ofctl --names, line for line.
	var bridges []string
	for br := range byBridge {
		bridges = append(bridges, br)
	}
	slices.Sort(bridges)
	for _, br := range bridges {
		dump, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--names", "--no-stats", "dump-flows", br)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]bool{}
		for _, l := range strings.Split(dump, "\n") {
			if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "OFPST") {
				continue
			}
			want[l] = true
		}
		if len(want) != len(byBridge[br]) {
			t.Errorf("%s: %d flows listed, ovs-ofctl dumps %d", br, len(byBridge[br]), len(want))
		}
		for _, r := range byBridge[br] {
			line := "cookie=" + r.Cookie + ", "
			if r.Table != 0 || r.TableName != "" {
				table := r.TableName
				if strings.ContainsAny(table, "_-.") {
					table = strconv.Quote(table)
				}
				line += "table=" + table + ", "
			}
			if r.Priority != 32768 {
				line += "priority=" + strconv.Itoa(int(r.Priority))
				if r.Match != "" {
					line += ","
				}
			}
			line += r.Match
			if !strings.HasSuffix(line, ", ") {
				line += " "
			}
			line += "actions=" + r.Actions
			if !want[line] {
				t.Errorf("%s: %s is not as ovs-ofctl --names prints it", br, line)
			}
		}
	}

	// Offline: the same node from a dump directory (flows dumped with names and stats,
	// OVSDB with ovsdb-client) gives the same records.
	dir := t.TempDir()
	for _, br := range bridges {
		dump, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--names", "dump-flows", br)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, br+".flows"), []byte(dump), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := h.Run(ctx, "ovsdb-client", "dump", "-f", "json", h.DBEndpoint(), "Open_vSwitch")
	if err != nil {
		t.Fatal(err)
	}
	topoData, err := os.ReadFile(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string]string{"ovsdb.json": db, "topology.json": string(topoData)} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	offline, code := runCLI(t, ctx, h, append([]string{"flows", "-o", "json", "--from-dir", dir}, bridges...)...)
	var fromDir []inspect.FlowRecord
	if err := json.Unmarshal([]byte(offline), &fromDir); code != 0 || err != nil {
		t.Fatalf("flows --from-dir: exit %d, %v", code, err)
	}
	var live []inspect.FlowRecord
	for _, br := range bridges {
		live = append(live, byBridge[br]...)
	}
	strip := func(rs []inspect.FlowRecord) map[string]bool {
		m := map[string]bool{}
		for _, r := range rs {
			r.Packets, r.Bytes = 0, 0
			b, _ := json.Marshal(r)
			m[string(b)] = true
		}
		return m
	}
	if a, b := strip(live), strip(fromDir); len(a) != len(b) || len(a) == 0 {
		t.Errorf("--from-dir: %d distinct records, live %d", len(b), len(a))
	} else {
		for r := range a {
			if !b[r] {
				t.Errorf("live record not read from the dump directory: %s", r)
			}
		}
	}

	// Filters keep exactly what they name.
	vm := topo.Ports[0]
	dvrNode := strings.HasPrefix(filepath.Base(topoFile), "dvr_")
	for _, tc := range []struct {
		args    []string
		keep    func(r inspect.FlowRecord) bool
		dvrOnly bool
	}{
		{[]string{"--rule", "I30"}, func(r inspect.FlowRecord) bool { return r.Rule == "I30" }, true},
		{[]string{"--table", "DVR_TO_SRC_MAC"}, func(r inspect.FlowRecord) bool { return r.Bridge == "br-int" && r.Table == 1 }, true},
		{[]string{"--rule", "I6"}, func(r inspect.FlowRecord) bool { return r.Rule == "I6" }, false},
		{[]string{"--port", testbed.PortName(vm)}, func(r inspect.FlowRecord) bool {
			return r.Owner != nil && r.Owner.Kind == explain.KindPort && r.Owner.ID == vm.ID ||
				strings.Contains(r.Match+" "+r.Actions, `"`+testbed.PortName(vm)+`"`)
		}, false},
		{[]string{"--network", vm.NetworkID}, func(r inspect.FlowRecord) bool {
			return r.Owner != nil && r.Owner.Kind == explain.KindNetwork && r.Owner.ID == vm.NetworkID
		}, false},
	} {
		if tc.dvrOnly && !dvrNode {
			continue
		}
		out, code := runCLI(t, ctx, h, append([]string{"flows", "-o", "json", "--topology", topoFile}, tc.args...)...)
		var got []inspect.FlowRecord
		if err := json.Unmarshal([]byte(out), &got); code != 0 || err != nil {
			t.Fatalf("flows %v: exit %d, %v", tc.args, code, err)
		}
		var want int
		for _, r := range recs {
			if tc.keep(r) {
				want++
			}
		}
		if want == 0 || len(got) != want {
			t.Errorf("flows %v: %d flows, want %d (of %d)", tc.args, len(got), want, len(recs))
		}
		for _, r := range got {
			if !tc.keep(r) {
				t.Errorf("flows %v kept %+v", tc.args, r)
			}
		}
	}

	if out, code := runCLI(t, ctx, h, "diff", "--topology", topoFile); code != 0 || !strings.HasPrefix(out, "equal") {
		t.Errorf("diff on the agent's own node: exit %d\n%s", code, out)
	}
}

// TestCLIWithRunningAgent: given only the run directory, the CLI asks the running agent
// for the node's configuration and topology (so a flow of another host's DVR MAC names the
// host) and diffs the switch against the agent's own desired flows.
func TestCLIWithRunningAgent(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topoFile := filepath.Join(scenarioDir(t), "dvr_vlan.json")
	topo, err := topology.Load(topoFile)
	if err != nil {
		t.Fatal(err)
	}
	h := sandbox.StartForTest(t, "cli")
	startAgent(t, h, topoFile, "--manage-router-namespaces=false")
	waitFor(t, 20*time.Second, "br-int created", func() error { return bridgeExists(ctx, h, "br-int") })
	first, err := testbed.NextOfport(ctx, h, "br-int")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := testbed.PlugPorts(ctx, h, "br-int", first, topo.Ports); err != nil {
		t.Fatal(err)
	}
	cli := func(args ...string) (string, int) {
		cmd := h.Command(ctx, cliBinary, append(args, "--ovs-rundir", h.RunDir())...)
		out, err := cmd.Output()
		code := 0
		if err != nil {
			code = -1
			if cmd.ProcessState != nil {
				code = cmd.ProcessState.ExitCode()
			}
		}
		return string(out), code
	}
	var res inspect.DiffResult
	waitFor(t, 30*time.Second, "diff against the agent equal", func() error {
		out, code := cli("diff", "-o", "json")
		res = inspect.DiffResult{}
		if err := json.Unmarshal([]byte(out), &res); err != nil {
			return fmt.Errorf("exit %d: %v: %s", code, err, out)
		}
		if code != 0 || !res.Equal || res.Source != "agent" {
			return fmt.Errorf("exit %d, source %q, %d missing, %d extra, %d changed", code, res.Source, len(res.Missing), len(res.Extra), len(res.Changed))
		}
		return nil
	})

	out, code := cli("flows", "-o", "json", "--rule", "I26")
	var recs []inspect.FlowRecord
	if err := json.Unmarshal([]byte(out), &recs); code != 0 || err != nil || len(recs) != 2 {
		t.Fatalf("flows --rule I26: exit %d, %v, %d records:\n%s", code, err, len(recs), out)
	}
	for _, r := range recs {
		if r.Owner == nil || r.Owner.Kind != explain.KindHost || (r.Owner.ID != "compute2" && r.Owner.ID != "compute3") {
			t.Errorf("I26 %s owned by %+v, want another host named by the agent's topology", r.Match, r.Owner)
		}
	}

	// A foreign flow that collides with nothing: the agent leaves it, diff lists it.
	if out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "add-flow", "br-int", "cookie=0x99,table=23,priority=5,dl_src=00:00:00:00:00:99,actions=drop"); err != nil {
		t.Fatalf("add-flow: %v\n%s", err, out)
	}
	out, code = cli("diff", "-o", "json")
	res = inspect.DiffResult{}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if code != 1 || res.Equal || len(res.Extra) != 1 || len(res.Missing)+len(res.Changed) != 0 ||
		res.Extra[0].Cookie != "0x99" || res.Extra[0].Table != 23 || res.Extra[0].Rule != "" {
		t.Errorf("diff with a foreign flow: exit %d, %+v", code, res)
	}
}
