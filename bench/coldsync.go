package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/flows"
)

// coldRun is one cold sync of the agent, one baseline load of the same flows and one
// ovs-vsctl run of the same OVSDB changes.
type coldRun struct {
	Agent     time.Duration
	Reconcile time.Duration // the first reconcile alone (Report.Took)
	AgentCPU  time.Duration // CPU time of the agent during Agent
	// TagsApplied: from the same start until ovs-vswitchd applied the committed tags.
	TagsApplied time.Duration
	Baseline    time.Duration
	// Vsctl is the second baseline: one ovs-vsctl invocation adding the same patch pair and
	// setting the same tags on the node reset to cold, until ovs-vswitchd applied them (0 in
	// results of runs that did not measure it).
	Vsctl    time.Duration
	FlowMods int
}

// coldSync starts the agent on the cold node (bridges bare, ports untagged, no flows) and
// returns the running agent, checked against the switch: every flow it wants is installed
// and every port carries its tag.
func (b *bench) coldSync(ctx context.Context, n *node) (*inproc, startResult, error) {
	p, res, err := b.startInproc(ctx, n, n.topoFile)
	if err != nil {
		return nil, res, fmt.Errorf("cold sync: %w", err)
	}
	if err := p.agent.Verify(ctx); err != nil {
		p.close()
		return nil, res, fmt.Errorf("cold sync: not converged: %w", err)
	}
	if got, err := n.hv.tagged(ctx, n.ports); err != nil || got != len(n.ports) {
		p.close()
		return nil, res, fmt.Errorf("cold sync: %d of %d ports tagged (%v)", got, len(n.ports), err)
	}
	return p, res, nil
}

// resetCold puts the node back as it was before any agent ran: the agent's patch ports and
// bridge settings removed, every flow deleted, every port untagged; then it waits for
// a quiet switch (waitQuiet).
func (b *bench) resetCold(ctx context.Context, n *node) error {
	args := []string{"--if-exists", "del-port", controller.IntPatchName(topogen.PhysBridge), "--",
		"--if-exists", "del-port", controller.PhyPatchName(topogen.PhysBridge)}
	for _, br := range agentBridges() {
		args = append(args, "--", "clear", "Bridge", br, "fail_mode", "protocols", "other_config", "flow_tables")
	}
	if _, err := n.host.Vsctl(ctx, args...); err != nil {
		return fmt.Errorf("reset node: %w", err)
	}
	for _, br := range agentBridges() {
		if _, err := n.host.Ofctl(ctx, "del-flows", br); err != nil {
			return fmt.Errorf("reset node: %w", err)
		}
	}
	if err := n.hv.clearTags(ctx); err != nil {
		return err
	}
	return b.waitQuiet(ctx, n)
}

// baseline loads each bridge's flows, as the agent exported them, with
// `ovs-ofctl --bundle -O OpenFlow13 add-flows` into freshly created bridges configured like
// the agent's (netdev, fail_mode secure, OpenFlow13), one bridge after the other as the agent
// does, timing the ovs-ofctl processes. It checks with dump-aggregate that each baseline
// bridge holds as many flows as the agent's, then deletes the baseline bridges.
func (b *bench) baseline(ctx context.Context, n *node, desired map[string][]flows.Flow) (time.Duration, error) {
	brs := agentBridges()
	var create []string
	for _, br := range brs {
		bl := baselineName(br)
		if len(create) > 0 {
			create = append(create, "--")
		}
		create = append(create, "add-br", bl, "--", "set", "Bridge", bl, "datapath_type=netdev", "fail_mode=secure",
			"protocols=OpenFlow10,OpenFlow13", "other_config:disable-in-band=true", "other_config:mac-table-size=50000")
	}
	if _, err := n.host.Vsctl(ctx, create...); err != nil {
		return 0, fmt.Errorf("baseline bridges: %w", err)
	}
	if err := b.waitQuiet(ctx, n); err != nil {
		return 0, err
	}
	defer func() {
		var del []string
		for _, br := range brs {
			if len(del) > 0 {
				del = append(del, "--")
			}
			del = append(del, "--if-exists", "del-br", baselineName(br))
		}
		if _, err := n.host.Vsctl(context.WithoutCancel(ctx), del...); err != nil {
			b.log.Error("delete baseline bridges", zap.Error(err))
		}
	}()
	files := map[string]string{}
	for _, br := range brs {
		files[br] = filepath.Join(b.workDir, br+".flows")
		if err := writeFlows(files[br], desired[br]); err != nil {
			return 0, err
		}
	}
	var total time.Duration
	for _, br := range brs {
		cmd := exec.CommandContext(ctx, "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows",
			"unix:"+n.host.MgmtSocket(baselineName(br)), files[br])
		start := time.Now()
		out, err := cmd.CombinedOutput()
		total += time.Since(start)
		if err != nil {
			return 0, fmt.Errorf("baseline: ovs-ofctl add-flows %s: %w: %s", baselineName(br), err, out)
		}
	}
	for _, br := range brs {
		want, err := flowCount(ctx, n, br)
		if err != nil {
			return 0, err
		}
		got, err := flowCount(ctx, n, baselineName(br))
		if err != nil {
			return 0, err
		}
		if got != want || want != len(desired[br]) {
			return 0, fmt.Errorf("baseline: %s holds %d flows, %s %d, the agent wants %d", baselineName(br), got, br, want, len(desired[br]))
		}
	}
	return total, nil
}

// writeFlows writes flows in ovs-ofctl add-flows format, as dvrflow-agent --print-desired
// does.
func writeFlows(path string, fs []flows.Flow) error {
	var sb strings.Builder
	for _, f := range fs {
		sb.WriteString(f.String())
		sb.WriteByte('\n')
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var flowCountRE = regexp.MustCompile(`flow_count=(\d+)`)

// flowCount is `ovs-ofctl dump-aggregate`'s flow_count of a bridge.
func flowCount(ctx context.Context, n *node, br string) (int, error) {
	out, err := n.host.Ofctl(ctx, "-O", "OpenFlow13", "dump-aggregate", br)
	if err != nil {
		return 0, err
	}
	m := flowCountRE.FindStringSubmatch(out)
	if m == nil {
		return 0, fmt.Errorf("dump-aggregate %s: no flow_count in %q", br, out)
	}
	return strconv.Atoi(m[1])
}

// totalFlows sums flowCount over the agent's bridges.
func totalFlows(ctx context.Context, n *node) (int, error) {
	total := 0
	for _, br := range agentBridges() {
		c, err := flowCount(ctx, n, br)
		if err != nil {
			return 0, err
		}
		total += c
	}
	return total, nil
}

// agentBridges are the bridges the agent manages on a benchmark node, in setup order.
func agentBridges() []string { return []string{topogen.IntBridge, topogen.PhysBridge} }

// baselineName is the baseline twin of an agent bridge: br-int → bl-int.
func baselineName(br string) string { return "bl" + strings.TrimPrefix(br, "br") }

func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
