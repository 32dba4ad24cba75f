package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/agentapi"
	"github.com/dvrflow/dvrflow/sandbox"
)

// TestStatus: the running agent serves its read-only API on RUNDIR/dvrflow-agent.sock
// (0600), and `dvrflow status` shows its view: the bound port with its local VLAN (the tag
// in OVSDB), the network's local VLAN, the last reconcile with its phases, and the port
// the topology got wrong as a Problem. The desired flows it serves are the ones installed.
// The metrics listener answers on the same server. When the agent stops, the socket goes
// and `dvrflow status` exits 2 saying no agent runs.
func TestStatus(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	topo, ini := filepath.Join(dir, "topology.yaml"), filepath.Join(dir, "agent.ini")
	writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1", "bad")))
	if err := os.WriteFile(ini, []byte("[dvrflow]\nmetrics_address = 127.0.0.1:9109\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := sandbox.StartForTest(t, "status")
	agent := startAgent(t, h, topo, "--config-file", ini)
	socket := filepath.Join(h.RunDir(), "dvrflow-agent.sock")
	waitFor(t, 20*time.Second, "br-int created", func() error { return bridgeExists(ctx, h, "br-int") })
	tap := "tap" + portIDs["p1"][:11]
	if _, err := h.AddVM(ctx, sandbox.VMSpec{Name: "p1", Bridge: "br-int", PortName: tap, IfaceID: portIDs["p1"],
		MAC: "fa:16:3e:00:00:01", CIDR: "10.0.9.1/24"}); err != nil {
		t.Fatal(err)
	}

	status := func(args ...string) (string, error) {
		args = append([]string{"status", "--ovs-rundir", h.RunDir()}, args...)
		out, err := h.Command(ctx, cliBinary, args...).CombinedOutput()
		return string(out), err
	}
	var st agentapi.Status
	var p1 agentapi.Port
	waitFor(t, 20*time.Second, "dvrflow status shows p1 bound", func() error {
		out, err := status("-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		st = agentapi.Status{}
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			return fmt.Errorf("status -o json: %v\n%s", err, out)
		}
		for _, p := range st.Ports {
			if p.ID == portIDs["p1"] {
				p1 = p
			}
		}
		if p1.Status != agentapi.PortBound || st.LastReconcile == nil {
			return fmt.Errorf("p1 %+v, last reconcile %v", p1, st.LastReconcile)
		}
		return nil
	})

	if p1.Device != tap || p1.OFPort <= 0 || p1.MAC != "fa:16:3e:00:00:01" || p1.NetworkID != "11111111-0000-4000-8000-000000000001" {
		t.Errorf("p1 = %+v", p1)
	}
	if tag := portTag(t, ctx, h, tap); tag != fmt.Sprint(p1.LocalVLAN) {
		t.Errorf("p1's local VLAN %d, its tag in OVSDB %s", p1.LocalVLAN, tag)
	}
	wantVLAN := agentapi.LocalVLAN{NetworkID: "11111111-0000-4000-8000-000000000001", NetworkType: "vlan",
		PhysicalNetwork: "physnet1", SegmentationID: 100, LocalVLAN: p1.LocalVLAN, Ports: 1}
	if len(st.LocalVLANs) != 1 || st.LocalVLANs[0] != wantVLAN {
		t.Errorf("local VLANs %+v, want [%+v]", st.LocalVLANs, wantVLAN)
	}
	if !st.Synced || st.Reconciles < 1 || st.LastChange == nil || st.LastChange.FlowMods == 0 || st.LastReconcile.DurationSeconds <= 0 ||
		st.LastReconcile.PhasesSeconds.Build <= 0 {
		t.Errorf("synced %v, reconciles %d, last reconcile %+v, last change %+v", st.Synced, st.Reconciles, st.LastReconcile, st.LastChange)
	}
	wantProblem := agentapi.Problem{Kind: "port", Object: portIDs["bad"], Field: "mac", Message: `"fa:16:3e:zz:00:01" is not a MAC address`}
	if !slices.Contains(st.Problems, wantProblem) {
		t.Errorf("problems %+v, want %+v among them", st.Problems, wantProblem)
	}
	var bridges []string
	for _, b := range st.Bridges {
		bridges = append(bridges, b.Name)
		if !b.OpenFlowConnected || b.DesiredFlows == 0 {
			t.Errorf("bridge %+v", b)
		}
	}
	if !slices.Equal(bridges, []string{"br-int", "br-vlan"}) || !st.OVSDBConnected || st.Config.APISocket != socket || st.Host == "" {
		t.Errorf("bridges %v, ovsdb connected %v, config %+v, host %q", bridges, st.OVSDBConnected, st.Config, st.Host)
	}

	t.Run("text", func(t *testing.T) {
		out, err := status()
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		for _, want := range []string{"Last reconcile: ", "observe ", tap, "bound", fmt.Sprintf("vlan  physnet1  100"),
			`port 333333bb-0000-4000-8000-0000000000bb: field mac: "fa:16:3e:zz:00:01" is not a MAC address`} {
			if !strings.Contains(out, want) {
				t.Errorf("status lacks %q:\n%s", want, out)
			}
		}
		t.Logf("dvrflow status:\n%s", out)
	})

	t.Run("socket and desired flows", func(t *testing.T) {
		info, err := os.Stat(socket)
		if err != nil {
			t.Fatal(err)
		}
		if info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a socket with 0600", socket, info.Mode())
		}
		doc, err := agentapi.NewClient(socket).DesiredFlows(ctx, "br-int")
		if err != nil {
			t.Fatal(err)
		}
		installed, err := readInstalled(ctx, h, "br-int")
		if err != nil {
			t.Fatal(err)
		}
		var desired []string
		for _, f := range doc.Bridges[0].Flows {
			desired = append(desired, f.Text)
			if _, ok := installed[f.Text]; !ok {
				t.Errorf("desired flow not installed: %s", f.Text)
			}
		}
		if len(desired) != len(installed) {
			t.Errorf("%d desired flows on br-int, %d installed", len(desired), len(installed))
		}
	})

	t.Run("metrics on the same server", func(t *testing.T) {
		tcp := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) { return h.Dial(ctx, network, addr) },
		}}
		unix := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, "unix", socket)
			},
		}}
		for _, c := range []struct {
			name   string
			client *http.Client
			url    string
			code   int
			has    string
		}{
			{"metrics_address /metrics", tcp, "http://127.0.0.1:9109/metrics", 200, "dvrflow_ports_bound 1"},
			{"metrics_address /readyz", tcp, "http://127.0.0.1:9109/readyz", 200, "ready"},
			{"metrics_address has no API", tcp, "http://127.0.0.1:9109/v1/status", 404, ""},
			{"api_socket /metrics", unix, "http://agent/metrics", 200, "dvrflow_problems 1"},
			{"api_socket /healthz", unix, "http://agent/healthz", 200, "ok"},
		} {
			resp, err := c.client.Get(c.url)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.code || !strings.Contains(string(body), c.has) {
				t.Errorf("%s: %d, want %d with %q", c.name, resp.StatusCode, c.code, c.has)
			}
		}
	})

	t.Run("agent stopped", func(t *testing.T) {
		agent.stop(t)
		if _, err := os.Lstat(socket); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left after the agent stopped: %v", err)
		}
		out, err := status()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 {
			t.Fatalf("status without an agent: %v, want exit 2\n%s", err, out)
		}
		if want := "dvrflow: no agent API at " + socket + " (is dvrflow-agent running with api_socket?)"; strings.TrimSpace(out) != want {
			t.Errorf("status without an agent said %q, want %q", strings.TrimSpace(out), want)
		}
	})
}
