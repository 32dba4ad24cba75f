package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

// fakeSource is an agent as the metrics see it.
type fakeSource struct {
	desired  map[string][]flows.Flow
	ofUp     map[string]bool
	ovsdbUp  bool
	problems int
}

func (f *fakeSource) Bridges() []string { return []string{"br-int", "br-vlan"} }
func (f *fakeSource) Pipeline(br string) flows.Pipeline {
	if br == "br-int" {
		return flows.IntegrationPipeline
	}
	return flows.PhysicalPipeline
}
func (f *fakeSource) DesiredFlows() map[string][]flows.Flow { return f.desired }
func (f *fakeSource) Problems() int                         { return f.problems }
func (f *fakeSource) BridgeConnected(br string) bool        { return f.ofUp[br] }
func (f *fakeSource) OVSDBConnected() bool                  { return f.ovsdbUp }

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	body, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(body)
}

func TestSeriesAndReadiness(t *testing.T) {
	src := &fakeSource{
		desired: map[string][]flows.Flow{
			"br-int":  {{Table: 0, Priority: 2}, {Table: 0, Priority: 1}, {Table: 60, Priority: 3}},
			"br-vlan": {{Table: 0}},
		},
		ofUp: map[string]bool{"br-int": true}, ovsdbUp: true, problems: 2,
	}
	r := NewRecorder(src)
	h := r.Handler()
	if code, body := get(t, h, "/healthz"); code != 200 || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz = %d %q", code, body)
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "first full sync not done") || !strings.Contains(body, "br-vlan down") {
		t.Errorf("/readyz before the first sync = %d %q", code, body)
	}
	r.Reconciled(controller.Report{
		Results: []flows.SyncResult{
			{Bridge: "br-int", Added: make([]flows.Change, 3), Duration: 2 * time.Millisecond},
			{Bridge: "br-vlan", Modified: make([]flows.Change, 1), Foreign: 1},
		},
		Binding: controller.Binding{Node: &state.Node{Ports: []state.Port{{ID: "a"}, {ID: "b", Dead: true}}, Networks: []state.Network{{ID: "n"}}}},
		Took:    5 * time.Millisecond,
	})
	_, body := get(t, h, "/metrics")
	for _, want := range []string{
		`dvrflow_flows{bridge="br-int",table="0",table_name="LOCAL_SWITCHING"} 2`,
		`dvrflow_flows{bridge="br-int",table="60",table_name="TRANSIENT"} 1`,
		`dvrflow_flows{bridge="br-vlan",table="0",table_name="LOCAL_SWITCHING"} 1`,
		`dvrflow_flow_mods_total{bridge="br-int",op="add"} 3`,
		`dvrflow_flow_mods_total{bridge="br-vlan",op="modify"} 1`,
		`dvrflow_repairs_total{bridge="br-vlan"} 1`,
		`dvrflow_bundle_seconds_count{bridge="br-int"} 1`,
		`dvrflow_reconcile_seconds_count{phase="total"} 1`,
		`dvrflow_ports_bound 1`,
		`dvrflow_local_vlans 1`,
		`dvrflow_problems 2`,
		`dvrflow_ovsdb_connected 1`,
		`dvrflow_openflow_connected{bridge="br-int"} 1`,
		`dvrflow_openflow_connected{bridge="br-vlan"} 0`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if code, body := get(t, h, "/readyz"); code != 503 || !strings.Contains(body, "br-vlan down") || strings.Contains(body, "sync") {
		t.Errorf("/readyz with br-vlan down = %d %q", code, body)
	}
	src.ofUp["br-vlan"] = true
	if code, body := get(t, h, "/readyz"); code != 200 || strings.TrimSpace(body) != "ready" {
		t.Errorf("/readyz = %d %q, want 200 ready", code, body)
	}
}
