// Package metrics exposes the agent to Prometheus and to health checks, on the HTTP
// listener of [dvrflow] metrics_address (served by the agent's one HTTP server, package
// agentapi, which also mounts them on the API's unix socket): /metrics (the series below, and Go's process and
// runtime collectors), /healthz (the process answers) and /readyz (the first full sync is
// done and the OVSDB and OpenFlow connections are up).
//
// Series:
//
//	dvrflow_flows{bridge,table,table_name}         flows installed (= desired after a reconcile)
//	dvrflow_flow_mods_total{bridge,op}             flow-mods sent, op add|modify|delete
//	dvrflow_bundle_seconds{bridge}                 duration of a bridge's sync that changed flows
//	dvrflow_reconcile_seconds{phase}               observe, build, layout, sync, tags, total
//	dvrflow_repairs_total{bridge}                  flow-mods that undid other clients' changes
//	dvrflow_openflow_connected{bridge}             1 while the bridge's OpenFlow connection is up
//	dvrflow_ovsdb_connected                        1 while the OVSDB session is up
//	dvrflow_ports_bound                            ports bound on the integration bridge (live)
//	dvrflow_local_vlans                            networks holding a local VLAN here
//	dvrflow_problems                               northbound objects refused as invalid
//
// The recorder takes the agent's reconcile reports on the agent's event loop; the
// connection gauges are read at scrape time without locks.
package metrics

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/flows"
)

// Source is what the metrics read of the agent and its connections.
type Source interface {
	// Bridges returns the managed bridges' names.
	Bridges() []string
	// Pipeline returns a bridge's table catalogue (for table names).
	Pipeline(bridge string) flows.Pipeline
	// DesiredFlows returns the desired flows of the last reconcile, by bridge, in any
	// order (counting them must not cost the agent a sort).
	DesiredFlows() map[string][]flows.Flow
	// Problems is how many northbound objects were refused.
	Problems() int
	// BridgeConnected reports whether a bridge's OpenFlow connection is up.
	BridgeConnected(bridge string) bool
	// OVSDBConnected reports whether the OVSDB session is up.
	OVSDBConnected() bool
}

// Recorder holds the agent's series.
type Recorder struct {
	reg    *prometheus.Registry
	source Source
	synced atomic.Bool

	flowsInstalled *prometheus.GaugeVec
	flowMods       *prometheus.CounterVec
	bundle         *prometheus.HistogramVec
	reconcile      *prometheus.HistogramVec
	repairs        *prometheus.CounterVec
	portsBound     prometheus.Gauge
	localVLANs     prometheus.Gauge
	problems       prometheus.Gauge
}

// NewRecorder registers the series for the agent src, its bridges' connection gauges
// included (src.Bridges must already list them).
func NewRecorder(src Source) *Recorder {
	r := &Recorder{reg: prometheus.NewRegistry(), source: src}
	durations := []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}
	r.flowsInstalled = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "dvrflow_flows",
		Help: "Flows installed per bridge and table (the desired set, confirmed by the last reconcile)."},
		[]string{"bridge", "table", "table_name"})
	r.flowMods = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dvrflow_flow_mods_total",
		Help: "Flow-mods sent, per bridge and operation (add, modify, delete)."}, []string{"bridge", "op"})
	r.bundle = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dvrflow_bundle_seconds",
		Help: "Duration of a bridge's sync that changed flows (diff, bundle, commit confirmed).", Buckets: durations},
		[]string{"bridge"})
	r.reconcile = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "dvrflow_reconcile_seconds",
		Help: "Duration of a reconcile's phases (observe, build, layout, sync, tags) and of the whole (total).", Buckets: durations},
		[]string{"phase"})
	r.repairs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "dvrflow_repairs_total",
		Help: "Flow-mods that undid changes other OpenFlow clients made to the agent's flows."}, []string{"bridge"})
	r.portsBound = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dvrflow_ports_bound",
		Help: "Ports bound on the integration bridge with their network's local VLAN."})
	r.localVLANs = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dvrflow_local_vlans",
		Help: "Networks holding a local VLAN on this host."})
	r.problems = prometheus.NewGauge(prometheus.GaugeOpts{Name: "dvrflow_problems",
		Help: "Northbound objects refused as invalid (each logged with its id and field)."})
	ovsdb := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dvrflow_ovsdb_connected",
		Help: "1 while the OVSDB session is up."}, func() float64 { return boolValue(src.OVSDBConnected()) })
	r.reg.MustRegister(r.flowsInstalled, r.flowMods, r.bundle, r.reconcile, r.repairs, r.portsBound, r.localVLANs,
		r.problems, ovsdb, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, br := range src.Bridges() {
		r.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "dvrflow_openflow_connected",
			Help: "1 while the bridge's OpenFlow connection is up.", ConstLabels: prometheus.Labels{"bridge": br}},
			func() float64 { return boolValue(src.BridgeConnected(br)) }))
	}
	return r
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// Reconciled records a successful reconcile; call it on the agent's event loop (the
// agent's OnConverged).
func (r *Recorder) Reconciled(rep controller.Report) {
	for _, res := range rep.Results {
		r.flowMods.WithLabelValues(res.Bridge, "add").Add(float64(len(res.Added)))
		r.flowMods.WithLabelValues(res.Bridge, "modify").Add(float64(len(res.Modified)))
		r.flowMods.WithLabelValues(res.Bridge, "delete").Add(float64(len(res.Deleted)))
		if res.FlowMods() > 0 {
			r.bundle.WithLabelValues(res.Bridge).Observe(res.Duration.Seconds())
		}
		if res.Foreign > 0 {
			r.repairs.WithLabelValues(res.Bridge).Add(float64(res.FlowMods()))
		}
	}
	for phase, d := range map[string]time.Duration{"observe": rep.Phases.Observe, "build": rep.Phases.Build,
		"layout": rep.Phases.Layout, "sync": rep.Phases.Sync, "tags": rep.Phases.Tags, "total": rep.Took} {
		r.reconcile.WithLabelValues(phase).Observe(d.Seconds())
	}
	r.flowsInstalled.Reset()
	for br, fs := range r.source.DesiredFlows() {
		names := r.source.Pipeline(br).Names()
		count := map[uint8]int{}
		for _, f := range fs {
			count[f.Table]++
		}
		for table, n := range count {
			r.flowsInstalled.WithLabelValues(br, strconv.Itoa(int(table)), names[table]).Set(float64(n))
		}
	}
	bound := 0
	if rep.Binding.Node != nil {
		for _, p := range rep.Binding.Node.Ports {
			if !p.Dead {
				bound++
			}
		}
		r.localVLANs.Set(float64(len(rep.Binding.Node.Networks)))
	}
	r.portsBound.Set(float64(bound))
	r.problems.Set(float64(r.source.Problems()))
	r.synced.Store(true)
}

// Mount registers /metrics, /healthz and /readyz on mux: the agent's one HTTP server
// mounts them on the metrics listener ([dvrflow] metrics_address) and beside the API on
// its unix socket.
func (r *Recorder) Mount(mux *http.ServeMux) {
	mux.Handle("/metrics", promhttp.HandlerFor(r.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if why := r.notReady(); len(why) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "not ready: "+strings.Join(why, "; "))
			return
		}
		fmt.Fprintln(w, "ready")
	})
}

// Handler is a mux serving only /metrics, /healthz and /readyz (see Mount).
func (r *Recorder) Handler() http.Handler {
	mux := http.NewServeMux()
	r.Mount(mux)
	return mux
}

// notReady says what keeps the agent from being ready; nothing when it is.
func (r *Recorder) notReady() []string {
	var why []string
	if !r.synced.Load() {
		why = append(why, "first full sync not done")
	}
	if !r.source.OVSDBConnected() {
		why = append(why, "OVSDB not connected")
	}
	for _, br := range r.source.Bridges() {
		if !r.source.BridgeConnected(br) {
			why = append(why, "OpenFlow connection to "+br+" down")
		}
	}
	return why
}

// Agent adapts a running agent and its OVSDB session to Source.
type Agent struct {
	*controller.Agent
	DB interface{ Connected() bool }
}

// BridgeConnected reports whether the bridge's OpenFlow connection is up.
func (a Agent) BridgeConnected(bridge string) bool {
	w := a.Writer(bridge)
	return w != nil && w.Connected()
}

// OVSDBConnected reports whether the OVSDB session is up.
func (a Agent) OVSDBConnected() bool { return a.DB.Connected() }
