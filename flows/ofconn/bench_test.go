package ofconn

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Install n distinct flows (table=0,priority=100,ip,nw_dst=10.a.b.c
// actions=goto_table:1) from an empty table, timed until the commit reply
// (ofconn, including building and encoding the flow-mods in Go) or until
// `ovs-ofctl --bundle add-flows` exits. Flows are deleted between iterations,
// outside the timer; the installed count is checked with dump-aggregate.
//
//	go test -run '^$' -bench Bundle -benchtime 3x ./flows/ofconn/
func BenchmarkBundle20k(b *testing.B)  { benchmarkBundle(b, 20000) }
func BenchmarkBundle100k(b *testing.B) { benchmarkBundle(b, 100000) }

func benchmarkBundle(b *testing.B, n int) {
	o := startOVS(b)
	c := dial(b, o)
	ctx := context.Background()

	b.Run("ofconn", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			resetFlows(b, o)
			start := time.Now()
			b.StartTimer()
			if err := c.Bundle(ctx, ipFlows(n, 0x1234)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			report(b, o, n, time.Since(start))
		}
	})
	b.Run("ofconn-apply", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			resetFlows(b, o)
			start := time.Now()
			b.StartTimer()
			if err := c.Apply(ctx, ipFlows(n, 0x1234)); err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			report(b, o, n, time.Since(start))
		}
	})
	b.Run("ovs-ofctl", func(b *testing.B) {
		file := filepath.Join(b.TempDir(), "flows.txt")
		var sb strings.Builder
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, "table=0,priority=100,cookie=0x1234,ip,nw_dst=10.%d.%d.%d,actions=goto_table:1\n", byte(i>>16), byte(i>>8), byte(i))
		}
		if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
			b.Fatal(err)
		}
		for i := 0; i < b.N; i++ {
			resetFlows(b, o)
			// Run directly (not through nsenter) against the socket, as ofconn does.
			cmd := exec.Command("ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", "unix:"+o.mgmt(), file)
			start := time.Now()
			b.StartTimer()
			out, err := cmd.CombinedOutput()
			b.StopTimer()
			took := time.Since(start)
			if err != nil {
				b.Fatalf("ovs-ofctl: %v\n%s", err, out)
			}
			report(b, o, n, took)
		}
	})
	b.Run("dump", func(b *testing.B) {
		resetFlows(b, o)
		if err := c.Bundle(ctx, ipFlows(n, 0x1234)); err != nil {
			b.Fatal(err)
		}
		b.ResetTimer()
		b.StartTimer()
		for i := 0; i < b.N; i++ {
			got, err := c.FlowStats(ctx, TableAll, 0, 0)
			if err != nil || len(got) != n {
				b.Fatalf("FlowStats: %d flows, %v", len(got), err)
			}
		}
	})
}

func resetFlows(b *testing.B, o *testOVS) {
	b.StopTimer()
	o.ofctl(b, "del-flows", "br0")
}

// report checks the installed count and reports the throughput over all
// iterations so far (the last call's figure stands).
func report(b *testing.B, o *testOVS, n int, took time.Duration) {
	if got := o.flowCount(b); got != n {
		b.Fatalf("flow_count=%d, want %d", got, n)
	}
	b.Logf("%d flows in %v (%.0f flows/s)", n, took.Round(time.Millisecond), float64(n)/took.Seconds())
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "flows/s")
}
