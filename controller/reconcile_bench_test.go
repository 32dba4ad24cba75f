package controller

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/testbed"
)

// benchNode is the node `make bench` measures (bench/topogen: N VM ports on N/20 VLAN
// networks with a distributed router interface each, 50 other hosts' DVR MACs), as the
// agent sees it once the hypervisor has plugged every port: the validated topology, the
// effective config and what OVSDB reports (VIFs with ofports from 10 up in topology order,
// as bench/hypervisor.go plugs them; the int-br-vlan/phy-br-vlan patch pair on ofport 1).
type benchNode struct {
	cfg  *config.Config
	topo *northbound.Model
	obs  Observed
}

func newBenchNode(tb testing.TB, ports int) benchNode {
	tb.Helper()
	raw, err := topogen.Generate(topogen.Params{Ports: ports, Networks: max(1, ports/20), OtherHosts: 50})
	if err != nil {
		tb.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.ApplyHost(raw.Snapshot().Host)
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	topo, problems := raw.Validate(cfg.Env())
	if len(problems) > 0 {
		tb.Fatalf("%d topology problems, first: %v", len(problems), problems[0])
	}
	obs := Observed{
		IntPorts: map[string]uint32{topogen.Physnet: 1},
		PhyPorts: map[string]uint32{topogen.Physnet: 1},
	}
	for i, p := range topo.Ports {
		obs.VIFs = append(obs.VIFs, ovsdb.VIF{Name: testbed.ModelPortName(&topo.Ports[i]), IfaceID: p.ID, MAC: p.MAC.String(),
			Bridge: topogen.IntBridge, Ofport: 10 + i})
	}
	return benchNode{cfg: cfg, topo: topo, obs: obs}
}

// compute is one reconcile's computation, as Agent.Reconcile runs it (computePlan: Bind,
// tunnel ports and FDB with tunnels, Compose).
func (n benchNode) compute(vlans *LocalVLANs) (Binding, int) {
	p, _ := computePlan(n.cfg, n.topo, nil, n.obs, vlans)
	total := 0
	for _, fs := range p.desired {
		total += len(fs)
	}
	return p.binding, total
}

var benchSizes = []int{100, 1000, 10000}

// TestBenchNodeFlows pins the size of the benchmarked node to the figures of bench/NOTES.md
// (1000 ports: 8469 flows, br-int 8213, br-vlan 256), so the benchmark measures that node.
func TestBenchNodeFlows(t *testing.T) {
	n := newBenchNode(t, 1000)
	b := Bind(n.cfg, n.topo, n.obs, NewLocalVLANs())
	if len(b.Unbound) != 0 || len(b.Unknown) != 0 {
		t.Fatalf("unbound %d, unknown %d: every plugged port must bind", len(b.Unbound), len(b.Unknown))
	}
	got := map[string]int{}
	for br, fs := range pipeline.Build(b.Node) {
		got[br] = len(fs)
	}
	want := map[string]int{topogen.IntBridge: 8213, topogen.PhysBridge: 256}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("flows per bridge = %v, want %v", got, want)
	}
}

// BenchmarkReconcileCompute measures one reconcile's computation on the bench node (no
// OVSDB, no switch): Bind with a warm local VLAN allocator (as every reconcile after the
// first), then Compose (Build without the dump-order sort, as Agent.Reconcile computes);
// each of the two alone; and Build, which sorts too.
//
//	go test -run '^$' -bench ReconcileCompute -benchmem ./controller/
func BenchmarkReconcileCompute(b *testing.B) {
	for _, ports := range benchSizes {
		n := newBenchNode(b, ports)
		vlans := NewLocalVLANs()
		bound, flows := n.compute(vlans)
		b.Run(fmt.Sprintf("ports=%d/bind+compose", ports), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				n.compute(vlans)
			}
			b.ReportMetric(float64(flows), "flows")
		})
		b.Run(fmt.Sprintf("ports=%d/bind", ports), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Bind(n.cfg, n.topo, n.obs, vlans)
			}
		})
		b.Run(fmt.Sprintf("ports=%d/compose", ports), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pipeline.Compose(bound.Node)
			}
		})
		b.Run(fmt.Sprintf("ports=%d/build+sort", ports), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				pipeline.Build(bound.Node)
			}
		})
	}
}

// TestDesiredFlowsMemory reports how much live heap the desired flows of the 10000-port
// bench node hold, per flow (run with -v). It fails above 400 bytes per flow.
func TestDesiredFlowsMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the 10000-port node")
	}
	n := newBenchNode(t, 10000)
	b := Bind(n.cfg, n.topo, n.obs, NewLocalVLANs())
	before := liveHeap()
	desired := pipeline.Build(b.Node)
	after := liveHeap()
	total := 0
	for _, fs := range desired {
		total += len(fs)
	}
	runtime.KeepAlive(desired)
	runtime.KeepAlive(b)
	perFlow := float64(after-before) / float64(total)
	t.Logf("desired flows of the 10000-port node: %d flows, %.1f MB live, %.0f bytes/flow", total, float64(after-before)/1e6, perFlow)
	if perFlow > 400 {
		t.Errorf("desired flows hold %.0f bytes per flow, want at most 400", perFlow)
	}
}

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}
