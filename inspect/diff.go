package inspect

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
)

// ErrNoTopology is returned by Diff on a node read without a topology: there is nothing to
// say what should be installed.
var ErrNoTopology = errors.New("diff needs the topology: give --topology FILE (or [dvrflow] topology_file, or topology.yaml in --from-dir)")

// Diff compares what dvrflow would install on the node (computed read-only by the agent's
// own code from the config, the topology and the switch's inventory, local VLANs recovered
// from the ports' tags) with what the switch holds, for the given bridges (none: every
// bridge dvrflow would program). Flows are compared by table, priority and match; a flow
// installed with other actions is changed, and so is one of dvrflow's own flows installed
// with another cookie (other agents' cookies mean nothing and are ignored). Lines that a
// documented difference from Neutron explains (docs/neutron-differences.md) are not
// reported when the installed flow is not dvrflow's: on a node Neutron's agent programmed,
// equal means "what Neutron should have programmed, modulo those differences".
func (n *Node) Diff(bridges []string) (*DiffResult, *controller.Preview, error) {
	if n.Snapshot == nil {
		return nil, nil, ErrNoTopology
	}
	prev := controller.PreviewFlows(n.Config, n.Snapshot, n.Inventory)
	desired := make(map[string][]string, len(prev.Flows))
	for br, fs := range prev.Flows {
		texts := make([]string, len(fs))
		for i, f := range fs {
			texts[i] = f.String()
		}
		desired[br] = texts
	}
	res, err := n.DiffDesired(desired, bridges)
	if res != nil {
		res.Source = "topology"
	}
	return res, prev, err
}

// DiffDesired compares the switch with desired flows given as text (`ovs-ofctl --no-stats
// --no-names` lines with cookies, as a running agent reports them), per bridge, for the
// given bridges (none: every bridge of desired), with Diff's rules.
func (n *Node) DiffDesired(desired map[string][]string, bridges []string) (*DiffResult, error) {
	if len(bridges) == 0 {
		bridges = slices.Sorted(maps.Keys(desired))
	}
	res := &DiffResult{Missing: []FlowRecord{}, Extra: []FlowRecord{}, Changed: []Change{}}
	for _, br := range bridges {
		want := make([]dumptext.Flow, 0, len(desired[br]))
		for _, text := range desired[br] {
			f, err := dumptext.ParseLine(text, nil)
			if err != nil {
				return nil, fmt.Errorf("bridge %s: desired flow %q: %w", br, text, err)
			}
			want = append(want, f)
		}
		// A bridge the switch lacks has every desired flow missing.
		n.diffBridge(br, want, n.Flows[br], res)
	}
	res.Equal = len(res.Missing)+len(res.Extra)+len(res.Changed) == 0
	return res, nil
}

// learnCookie is the cookie a learn action gives the flows it learns: the installing
// agent's, so it is compared only between dvrflow's own flows.
var learnCookie = regexp.MustCompile(`,cookie=0x[0-9a-f]+|cookie=0x[0-9a-f]+,?`)

// sameActions compares an installed flow's actions with a desired flow's; for a flow that
// is not dvrflow's, cookies inside learn actions are ignored like the flow's own.
func sameActions(installed, desired *dumptext.Flow) bool {
	a, b := installed.ActionsText(), desired.ActionsText()
	if a == b {
		return true
	}
	if flows.IsOurs(installed.Cookie) {
		return false
	}
	return learnCookie.ReplaceAllString(a, "") == learnCookie.ReplaceAllString(b, "")
}

func flowKey(f *dumptext.Flow) string {
	return strconv.Itoa(int(f.Table)) + "|" + strconv.Itoa(int(f.Priority)) + "|" + f.MatchText()
}

// dumpLine is a flow as the documented differences state it: the dump line without cookie.
func dumpLine(f *dumptext.Flow) string {
	if f.Table == 0 {
		return f.Text()
	}
	return "table=" + strconv.Itoa(int(f.Table)) + ", " + f.Text()
}

func (n *Node) diffBridge(br string, want []dumptext.Flow, installed []dumptext.Flow, res *DiffResult) {
	have := make(map[string]*dumptext.Flow, len(installed))
	for i := range installed {
		have[flowKey(&installed[i])] = &installed[i]
	}
	wantKeys := make(map[string]bool, len(want))
	var missing, extra []*dumptext.Flow
	for i := range want {
		w := &want[i]
		k := flowKey(w)
		wantKeys[k] = true
		h, ok := have[k]
		switch {
		case !ok:
			missing = append(missing, w)
		case !sameActions(h, w) || (flows.IsOurs(h.Cookie) && h.Cookie != w.Cookie):
			res.Changed = append(res.Changed, Change{Desired: n.record(br, w), Installed: n.record(br, h)})
		}
	}
	for i := range installed {
		if !wantKeys[flowKey(&installed[i])] {
			extra = append(extra, &installed[i])
		}
	}
	// The documented differences from Neutron, for flows another agent installed.
	var foreignLines, missingLines []string
	for _, f := range extra {
		if !flows.IsOurs(f.Cookie) {
			foreignLines = append(foreignLines, dumpLine(f))
		}
	}
	for _, f := range missing {
		missingLines = append(missingLines, dumpLine(f))
	}
	role := differenceRole(n.Explainer.Role(br))
	foreignLeft, missingLeft := dvr.Explain(role, foreignLines, missingLines, true)
	for _, f := range missing {
		if slices.Contains(missingLeft, dumpLine(f)) {
			res.Missing = append(res.Missing, n.record(br, f))
		}
	}
	for _, f := range extra {
		if flows.IsOurs(f.Cookie) || slices.Contains(foreignLeft, dumpLine(f)) {
			res.Extra = append(res.Extra, n.record(br, f))
		}
	}
}

func differenceRole(r explain.Role) string {
	switch r {
	case explain.RoleIntegration:
		return dvr.RoleIntegration
	case explain.RoleTunnel:
		return dvr.RoleTunnel
	case explain.RolePhysical:
		return dvr.RolePhysical
	}
	return ""
}
