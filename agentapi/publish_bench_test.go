package agentapi

import (
	"fmt"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/testbed"
)

// BenchmarkPublish is what the API costs the agent's event loop per reconcile, on the node
// `make bench` measures (bench/topogen: N VM ports, N/20 networks). It grows with the
// ports; the flows are kept by reference.
func BenchmarkPublish(b *testing.B) {
	for _, ports := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("ports=%d", ports), func(b *testing.B) {
			raw, err := topogen.Generate(topogen.Params{Ports: ports, Networks: max(1, ports/20), OtherHosts: 50})
			if err != nil {
				b.Fatal(err)
			}
			cfg := config.DefaultConfig()
			cfg.ApplyHost(raw.Snapshot().Host)
			model, problems := raw.Validate(cfg.Env())
			obs := controller.Observed{IntPorts: map[string]uint32{topogen.Physnet: 1}, PhyPorts: map[string]uint32{topogen.Physnet: 1}}
			for i, p := range model.Ports {
				obs.VIFs = append(obs.VIFs, ovsdb.VIF{Name: testbed.ModelPortName(&model.Ports[i]), IfaceID: p.ID, MAC: p.MAC.String(),
					Bridge: topogen.IntBridge, Ofport: 10 + i})
			}
			binding := controller.Bind(cfg, model, obs, controller.NewLocalVLANs())
			a := &fakeAgent{cfg: cfg, model: model, problems: problems, binding: binding, desired: pipeline.Compose(binding.Node)}
			pub := NewPublisher(a, time.Now())
			rep := report(a)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				pub.Reconciled(rep)
			}
		})
	}
}
