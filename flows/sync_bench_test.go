package flows_test

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
)

// benchDesired returns the desired flows of the node `make bench` measures at the given
// number of VM ports (bench/topogen, every port plugged with ofports from 10 up, the
// physical patch pair on ofport 1), by bridge.
func benchDesired(tb testing.TB, ports int) map[string][]flows.Flow {
	tb.Helper()
	raw, err := topogen.Generate(topogen.Params{Ports: ports, Networks: max(1, ports/20), OtherHosts: 50})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.ApplyHost(raw.Snapshot().Host)
	topo, problems := raw.Validate(cfg.Env())
	if len(problems) > 0 {
		tb.Fatalf("%d topology problems, first: %v", len(problems), problems[0])
	}
	obs := controller.Observed{IntPorts: map[string]uint32{topogen.Physnet: 1}, PhyPorts: map[string]uint32{topogen.Physnet: 1}}
	for i, p := range topo.Ports {
		obs.VIFs = append(obs.VIFs, ovsdb.VIF{Name: testbed.ModelPortName(&topo.Ports[i]), IfaceID: p.ID, MAC: p.MAC.String(), Bridge: topogen.IntBridge, Ofport: 10 + i})
	}
	return pipeline.Build(controller.Bind(cfg, topo, obs, controller.NewLocalVLANs()).Node)
}

// benchSwitch starts a sandbox host with the bench node's two bridges (netdev, secure) and
// returns it with a write path per bridge.
func benchSwitch(tb testing.TB) (*sandbox.Host, map[string]*flows.Bridge) {
	tb.Helper()
	h := sandbox.StartForTest(tb, "flowsbench")
	brs := map[string]*flows.Bridge{}
	for _, br := range []string{topogen.IntBridge, topogen.PhysBridge} {
		if _, err := h.Vsctl(context.Background(), "add-br", br, "--", "set", "bridge", br,
			"datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow10,OpenFlow13"); err != nil {
			tb.Fatal(err)
		}
		b := flows.NewBridge(br, h.MgmtSocket(br), nil)
		tb.Cleanup(func() { _ = b.Close() })
		brs[br] = b
	}
	return h, brs
}

// syncAll syncs every bridge and returns the number of flow-mods sent.
func syncAll(tb testing.TB, brs map[string]*flows.Bridge, desired map[string][]flows.Flow) int {
	tb.Helper()
	n := 0
	for br, b := range brs {
		res, err := b.Sync(context.Background(), desired[br])
		if err != nil {
			tb.Fatal(err)
		}
		n += res.FlowMods()
	}
	return n
}

// BenchmarkSyncUnchanged measures Bridge.Sync of the bench node's bridges when the switch
// already holds exactly the desired flows: the diff alone (nothing is sent).
//
//	go test -run '^$' -bench SyncUnchanged -benchmem ./flows/
func BenchmarkSyncUnchanged(b *testing.B) {
	_, brs := benchSwitch(b)
	for _, ports := range []int{100, 1000, 10000} {
		desired := benchDesired(b, ports)
		syncAll(b, brs, desired)
		total := 0
		for _, fs := range desired {
			total += len(fs)
		}
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if n := syncAll(b, brs, desired); n != 0 {
					b.Fatalf("unchanged desired set sent %d flow-mods", n)
				}
			}
			b.ReportMetric(float64(total), "flows")
		})
	}
}

// TestInstalledMemory installs the 10000-port bench node's flows (83,619) and measures the
// live heap a fresh Bridge keeps after reading them back from the switch (its record of
// what is installed, and whatever the read left reachable), per installed flow (run with
// -v). It fails above 200 bytes per flow.
func TestInstalledMemory(t *testing.T) {
	sandbox.SkipIfShort(t, "installs 83,619 flows on a real switch")
	h, brs := benchSwitch(t)
	desired := benchDesired(t, 10000)
	syncAll(t, brs, desired)
	total := 0
	for _, fs := range desired {
		total += len(fs)
	}

	before := liveHeap()
	fresh := map[string]*flows.Bridge{}
	for br := range brs {
		fresh[br] = flows.NewBridge(br, h.MgmtSocket(br), nil)
	}
	if n := syncAll(t, fresh, desired); n != 0 {
		t.Fatalf("a fresh bridge found %d flow-mods to send", n)
	}
	after := liveHeap()
	for _, b := range fresh {
		if got := b.Installed(); got <= 0 {
			t.Fatalf("bridge %s: %d installed after a read", b.Name(), got)
		}
	}
	perFlow := float64(after-before) / float64(total)
	t.Logf("installed flows read back: %d flows, %.3f MB live, %.1f bytes/flow", total, float64(after-before)/1e6, perFlow)
	for _, b := range fresh {
		_ = b.Close()
	}
	runtime.KeepAlive(desired)
	if perFlow > 200 {
		t.Errorf("the installed record holds %.0f bytes per flow, want at most 200", perFlow)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
