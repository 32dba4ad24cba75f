package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// Quiet switch: every timed start (agent, ovs-ofctl, ovs-vsctl) and every plug begins once
// ovs-vswitchd has applied every committed change and the switch then stayed nearly idle
// for quietWindow. After applying a change to a bridge of 10000 ports ovs-vswitchd goes on
// working for up to a second beyond cur_cfg, and a start that queued behind that tail would
// be charged with the previous step's work: a reset to cold, a node's ports being plugged.
const (
	quietWindow = 250 * time.Millisecond
	quietTicks  = 2 // CPU clock ticks (1/100 s) the switch may use within quietWindow
	quietLimit  = 15 * time.Second
	quietPoll   = 50 * time.Millisecond
)

// waitQuiet waits until the node's switch is quiet: next_cfg bumped and cur_cfg caught up with
// it (as ovs-vsctl waits after a change), then the switch idle (waitIdle).
func (b *bench) waitQuiet(ctx context.Context, n *node) error {
	if err := n.hv.applied(ctx); err != nil {
		return fmt.Errorf("wait for a quiet switch: %w", err)
	}
	return b.waitIdle(ctx, n)
}

// waitIdle waits until ovs-vswitchd and ovsdb-server together have used at most quietTicks
// of CPU within quietWindow (ovsdb-server takes ovs-vswitchd's status writes). A switch that
// is never idle within quietLimit is logged, not an error: the run goes on.
func (b *bench) waitIdle(ctx context.Context, n *node) error {
	pids := []int{n.host.VswitchdPid(), n.host.OVSDBPid()}
	deadline := time.Now().Add(quietLimit)
	type sample struct {
		at    time.Time
		ticks int64
	}
	var window []sample
	for time.Now().Before(deadline) {
		var ticks int64
		for _, pid := range pids {
			t, err := cpuTicks(pid)
			if err != nil {
				return fmt.Errorf("wait for a quiet switch: %w", err)
			}
			ticks += t
		}
		now := time.Now()
		window = append(window, sample{now, ticks})
		for len(window) > 1 && now.Sub(window[1].at) >= quietWindow {
			window = window[1:]
		}
		if now.Sub(window[0].at) >= quietWindow && ticks-window[0].ticks <= quietTicks {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(quietPoll):
		}
	}
	b.log.Warn("ovs-vswitchd not quiet, going on", zap.String("host", n.host.Name()), zap.Duration("waited", quietLimit))
	return nil
}

// cpuTicks returns the user and system CPU time a process has used, in clock ticks.
func cpuTicks(pid int) (int64, error) {
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) is in parentheses and may hold spaces; fields 14 and 15
	// (utime, stime) are the 12th and 13th after it.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields after the name", pid, len(fields))
	}
	var total int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		total += v
	}
	return total, nil
}

// applied bumps next_cfg and waits until ovs-vswitchd has applied the database as it is now
// (cur_cfg reaches the bumped value): a wait operation ovsdb-server holds until then.
func (h *hypervisor) applied(ctx context.Context) error {
	// Every row: an empty where would be left out of the request, which ovsdb-server refuses.
	all := []ovsdb.Condition{{Column: "_uuid", Function: ovsdb.ConditionNotEqual, Value: ovsdb.UUID{GoUUID: "00000000-0000-0000-0000-000000000000"}}}
	ops := []ovsdb.Operation{
		{Op: ovsdb.OperationMutate, Table: vswitchd.OpenvSwitchTable, Where: all,
			Mutations: []ovsdb.Mutation{{Column: "next_cfg", Mutator: ovsdb.MutateOperationAdd, Value: 1}}},
		{Op: ovsdb.OperationSelect, Table: vswitchd.OpenvSwitchTable, Where: all, Columns: []string{"next_cfg"}},
	}
	res, err := h.transact(ctx, ops)
	if err != nil {
		return fmt.Errorf("bump next_cfg: %w", err)
	}
	if len(res[1].Rows) != 1 {
		return fmt.Errorf("bump next_cfg: %d Open_vSwitch rows", len(res[1].Rows))
	}
	next, ok := res[1].Rows[0]["next_cfg"].(float64)
	if !ok {
		return fmt.Errorf("bump next_cfg: next_cfg is %T", res[1].Rows[0]["next_cfg"])
	}
	timeout := int(quietLimit / time.Millisecond)
	wait := []ovsdb.Operation{{Op: ovsdb.OperationWait, Table: vswitchd.OpenvSwitchTable, Where: all,
		Columns: []string{"cur_cfg"}, Until: string(ovsdb.WaitConditionEqual),
		Rows: []ovsdb.Row{{"cur_cfg": int(next)}}, Timeout: &timeout}}
	if _, err := h.transact(ctx, wait); err != nil {
		return fmt.Errorf("wait for ovs-vswitchd to apply next_cfg %d: %w", int(next), err)
	}
	return nil
}
