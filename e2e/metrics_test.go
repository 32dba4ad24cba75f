package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// TestMetricsAndReadiness: with metrics_address the running agent serves /healthz, /readyz
// (ready once it has synced and its connections are up) and /metrics with the flows it
// installed per bridge and table and its connections' state.
func TestMetricsAndReadiness(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The listener is on the host's own loopback, in its private network namespace.
	topo, ini := oneHostWithIni(t, "[dvrflow]\nmetrics_address = 127.0.0.1:9108\n")
	h := sandbox.StartForTest(t, "metrics")
	startAgent(t, h, topo, "--config-file", ini)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return h.Dial(ctx, network, addr) },
	}}
	get := func(path string) (int, string, error) {
		resp, err := client.Get("http://127.0.0.1:9108" + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), err
	}
	waitFor(t, 20*time.Second, "the agent is ready", func() error {
		code, body, err := get("/readyz")
		if err != nil {
			return err
		}
		if code != http.StatusOK {
			return fmt.Errorf("/readyz: %d %s", code, strings.TrimSpace(body))
		}
		return nil
	})
	if code, body, err := get("/healthz"); err != nil || code != http.StatusOK {
		t.Errorf("/healthz: %d %q %v", code, body, err)
	}
	_, body, err := get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	installed, err := flowsWith(ctx, h, "br-int", "table=0,")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		fmt.Sprintf(`dvrflow_flows{bridge="br-int",table="0",table_name="LOCAL_SWITCHING"} %d`, len(installed)),
		`dvrflow_openflow_connected{bridge="br-int"} 1`,
		`dvrflow_ovsdb_connected 1`,
		`dvrflow_reconcile_seconds_count{phase="total"}`,
		`process_resident_memory_bytes`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}
