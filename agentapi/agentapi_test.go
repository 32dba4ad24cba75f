package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/pipeline"
	"github.com/dvrflow/dvrflow/topology"
)

// The node of these tests: one VLAN network with a bound port, an admin-down port, a port
// whose VIF is not plugged, a VIF nobody knows, and a port refused for its MAC.
const (
	netID     = "11111111-0000-4000-8000-000000000001"
	boundID   = "33333331-0000-4000-8000-000000000001"
	downID    = "33333332-0000-4000-8000-000000000002"
	waitingID = "33333333-0000-4000-8000-000000000003"
	badID     = "333333bb-0000-4000-8000-0000000000bb"
	strayID   = "44444444-0000-4000-8000-000000000004"
)

const topologyText = `
host: {name: compute1, agent_mode: legacy, bridge_mappings: {physnet1: br-vlan}}
networks:
  - {id: ` + netID + `, network_type: vlan, physical_network: physnet1, segmentation_id: 100}
subnets:
  - {id: 22222222-0000-4000-8000-000000000001, network_id: ` + netID + `, cidr: 10.0.0.0/24}
ports:
  - {id: ` + boundID + `, network_id: ` + netID + `, mac: "fa:16:3e:00:00:01", fixed_ips: [{ip_address: 10.0.0.1}], device_owner: "compute:nova"}
  - {id: ` + downID + `, network_id: ` + netID + `, mac: "fa:16:3e:00:00:02", fixed_ips: [{ip_address: 10.0.0.2}], admin_state_up: false}
  - {id: ` + waitingID + `, network_id: ` + netID + `, mac: "fa:16:3e:00:00:03", fixed_ips: [{ip_address: 10.0.0.3}]}
  - {id: ` + badID + `, network_id: ` + netID + `, mac: "fa:16:3e:zz:00:01", fixed_ips: [{ip_address: 10.0.0.9}]}
`

// fakeAgent is an agent as the API sees it, built with the real binding and generators.
type fakeAgent struct {
	cfg      *config.Config
	model    *northbound.Model
	problems []northbound.Problem
	binding  controller.Binding
	desired  map[string][]flows.Flow
	repairs  int
}

func (a *fakeAgent) Config() *config.Config            { return a.cfg }
func (a *fakeAgent) Bridges() []string                 { return a.cfg.ManagedBridges() }
func (a *fakeAgent) Binding() controller.Binding       { return a.binding }
func (a *fakeAgent) Model() *northbound.Model          { return a.model }
func (a *fakeAgent) ProblemList() []northbound.Problem { return a.problems }
func (a *fakeAgent) Repairs() int                      { return a.repairs }
func (a *fakeAgent) DesiredFlows() map[string][]flows.Flow {
	return a.desired
}
func (a *fakeAgent) Pipeline(br string) flows.Pipeline {
	if br == a.cfg.IntegrationBridge {
		return flows.IntegrationPipeline
	}
	return flows.PhysicalPipeline
}

func newFakeAgent(t testing.TB) *fakeAgent {
	t.Helper()
	file, err := topology.Parse([]byte(topologyText))
	if err != nil {
		t.Fatal(err)
	}
	snap := file.Snapshot()
	cfg := config.DefaultConfig()
	cfg.ApplyHost(snap.Host)
	cfg.TopologyFile, cfg.OVSRundir, cfg.DatapathType = "/etc/dvrflow/topology.yaml", "/run/ovs1", config.DatapathNetdev
	model, problems := northbound.Validate(*snap, cfg.Env())
	obs := controller.Observed{
		VIFs: []ovsdb.VIF{
			{Name: "tap33333331-00", IfaceID: boundID, MAC: "fa:16:3e:00:00:01", Bridge: "br-int", Ofport: 5},
			{Name: "tap33333332-00", IfaceID: downID, MAC: "fa:16:3e:00:00:02", Bridge: "br-int", Ofport: 6},
			{Name: "tap44444444-00", IfaceID: strayID, MAC: "fa:16:3e:00:00:44", Bridge: "br-int", Ofport: 7},
		},
		PortTags: map[string]int{}, IntPorts: map[string]uint32{"physnet1": 1}, PhyPorts: map[string]uint32{"physnet1": 1},
		Ofports: map[string]int{},
	}
	b := controller.Bind(cfg, model, obs, controller.NewLocalVLANs())
	return &fakeAgent{cfg: cfg, model: model, problems: problems, binding: b, desired: pipeline.Compose(b.Node), repairs: 3}
}

// report is a reconcile that installed the whole node.
func report(a *fakeAgent) controller.Report {
	rep := controller.Report{Binding: a.binding, Retagged: []string{"tap33333331-00", "tap33333332-00", "tap44444444-00"},
		Waiting: []string{"phy-br-vlan"}, Took: 12 * time.Millisecond,
		Phases: controller.Phases{Observe: time.Millisecond, Build: 2 * time.Millisecond, Sync: 8 * time.Millisecond, Tags: time.Millisecond}}
	for _, br := range a.Bridges() {
		rep.Results = append(rep.Results, flows.SyncResult{Bridge: br, Added: make([]flows.Change, len(a.desired[br]))})
	}
	return rep
}

// fakeConns are the live connection states.
type fakeConns struct {
	mu   sync.Mutex
	down map[string]bool
}

func (c *fakeConns) BridgeConnected(br string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.down[br]
}
func (c *fakeConns) OVSDBConnected() bool { return true }

// serve starts the agent's server with the API on a unix socket in a temp dir.
func serve(t *testing.T, pub *Publisher, conns Connections) (*Server, string) {
	t.Helper()
	socket := filepath.Join(t.TempDir(), "dvrflow-agent.sock")
	srv := NewServer(zap.NewNop())
	if err := srv.ListenUnix(socket, pub.Handler(conns)); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return srv, socket
}

func TestStatusDocument(t *testing.T) {
	a := newFakeAgent(t)
	// Before the first reconcile the agent has neither a binding nor flows.
	reconciled := *a
	a.binding, a.desired = controller.Binding{}, nil
	started := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	pub := NewPublisher(a, started)
	pub.Publish(nil)
	conns := &fakeConns{down: map[string]bool{"br-vlan": true}}
	_, socket := serve(t, pub, conns)
	client := NewClient(socket)
	ctx := context.Background()

	summary := ConfigSummary{TopologyFile: "/etc/dvrflow/topology.yaml", IntegrationBridge: "br-int",
		BridgeMappings: map[string]string{"physnet1": "br-vlan"}, TunnelTypes: []string{}, DatapathType: "netdev",
		OVSDBConnection: "tcp:127.0.0.1:6640", OVSRundir: "/run/ovs1", PreventARPSpoofing: true,
		ManageRouterNamespaces: true, APISocket: "/run/ovs1/dvrflow-agent.sock"}
	problems := []Problem{{Kind: "port", Object: badID, Field: "mac", Message: `"fa:16:3e:zz:00:01" is not a MAC address`}}
	desiredInt, desiredVLAN := len(reconciled.desired["br-int"]), len(reconciled.desired["br-vlan"])
	tests := []struct {
		name    string
		publish func()
		want    Status
	}{
		{"before the first reconcile", func() {}, Status{
			Host: "compute1", AgentMode: "legacy", Northbound: "topology", StartedAt: started, OVSDBConnected: true,
			Bridges: []Bridge{{Name: "br-int", Role: RoleIntegration, DesiredFlows: 0, OpenFlowConnected: true},
				{Name: "br-vlan", Role: RolePhysical, PhysicalNetwork: "physnet1"}},
			Ports: []Port{}, LocalVLANs: []LocalVLAN{}, WaitingForOfport: []string{},
			Problems: problems, Repairs: 3, Config: summary,
		}},
		{"after a reconcile", func() {
			a.binding, a.desired = reconciled.binding, reconciled.desired
			pub.Reconciled(report(a))
		}, Status{
			Host: "compute1", AgentMode: "legacy", Northbound: "topology", StartedAt: started, Synced: true, OVSDBConnected: true,
			Bridges: []Bridge{{Name: "br-int", Role: RoleIntegration, DesiredFlows: desiredInt, OpenFlowConnected: true},
				{Name: "br-vlan", Role: RolePhysical, PhysicalNetwork: "physnet1", DesiredFlows: desiredVLAN}},
			Ports: []Port{
				{ID: boundID, Device: "tap33333331-00", NetworkID: netID, DeviceOwner: "compute:nova", MAC: "fa:16:3e:00:00:01",
					FixedIPs: []string{"10.0.0.1"}, LocalVLAN: 1, OFPort: 5, Status: PortBound},
				{ID: downID, Device: "tap33333332-00", NetworkID: netID, DeviceOwner: "compute:nova", MAC: "fa:16:3e:00:00:02", FixedIPs: []string{"10.0.0.2"},
					LocalVLAN: 4095, OFPort: 6, Status: PortDead, Reason: "admin_state_up is false"},
				{ID: strayID, Device: "tap44444444-00", MAC: "fa:16:3e:00:00:44", LocalVLAN: 4095, OFPort: 7, Status: PortDead,
					Reason: "its iface-id names no valid port of the northbound state"},
				{ID: waitingID, NetworkID: netID, DeviceOwner: "compute:nova", MAC: "fa:16:3e:00:00:03", FixedIPs: []string{"10.0.0.3"}, Status: PortWaiting,
					Reason: "no VIF with an ofport on the integration bridge yet"},
			},
			LocalVLANs: []LocalVLAN{{NetworkID: netID, NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 100,
				LocalVLAN: 1, Ports: 1}},
			LastReconcile: &Reconcile{DurationSeconds: 0.012, PhasesSeconds: Phases{Observe: 0.001, Build: 0.002, Sync: 0.008, Tags: 0.001},
				FlowMods: desiredInt + desiredVLAN, Bridges: []BridgeSync{{Bridge: "br-int", Added: desiredInt}, {Bridge: "br-vlan", Added: desiredVLAN}},
				PortsTagged: []string{"tap33333331-00", "tap33333332-00", "tap44444444-00"}},
			Reconciles: 1, WaitingForOfport: []string{"phy-br-vlan"}, Problems: problems, Repairs: 3, Config: summary,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.publish()
			got, err := client.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if got.LastReconcile != nil {
				if got.LastReconcile.FinishedAt.Before(started) || got.LastChange != got.LastReconcile && !reflect.DeepEqual(got.LastChange, got.LastReconcile) {
					t.Errorf("last change %+v, want the last reconcile %+v", got.LastChange, got.LastReconcile)
				}
				got.LastReconcile.FinishedAt, got.LastChange = time.Time{}, nil
			}
			got.StartedAt = got.StartedAt.UTC()
			if !reflect.DeepEqual(*got, tt.want) {
				gotJSON, _ := json.MarshalIndent(got, "", "  ")
				wantJSON, _ := json.MarshalIndent(tt.want, "", "  ")
				t.Errorf("status:\n%s\nwant:\n%s", gotJSON, wantJSON)
			}
		})
	}
	if desiredInt == 0 || desiredVLAN == 0 {
		t.Fatalf("the node has no flows: br-int %d, br-vlan %d", desiredInt, desiredVLAN)
	}

	// A reconcile that changes nothing keeps the last change.
	noop := report(a)
	noop.Results, noop.Retagged = nil, nil
	pub.Reconciled(noop)
	got, err := client.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Reconciles != 2 || got.LastReconcile.FlowMods != 0 || got.LastChange == nil || got.LastChange.FlowMods != desiredInt+desiredVLAN {
		t.Errorf("after a no-op reconcile: reconciles %d, last %+v, last change %+v", got.Reconciles, got.LastReconcile, got.LastChange)
	}
}

func TestDesiredFlowsDocument(t *testing.T) {
	a := newFakeAgent(t)
	pub := NewPublisher(a, time.Now())
	pub.Publish(nil)
	_, socket := serve(t, pub, &fakeConns{})
	client := NewClient(socket)
	ctx := context.Background()
	if _, err := client.DesiredFlows(ctx); err == nil || !strings.Contains(err.Error(), "not finished its first reconcile") {
		t.Errorf("before the first reconcile: err = %v", err)
	}
	pub.Reconciled(report(a))

	tests := []struct {
		name    string
		bridges []string
		want    []string // bridges in the document
		wantErr string
	}{
		{"every bridge", nil, []string{"br-int", "br-vlan"}, ""},
		{"one bridge", []string{"br-vlan"}, []string{"br-vlan"}, ""},
		{"an unknown bridge", []string{"br-tun"}, nil, "br-tun is not a bridge this agent manages (br-int, br-vlan)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := client.DesiredFlows(ctx, tt.bridges...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, bf := range doc.Bridges {
				got = append(got, bf.Bridge)
				want := append([]flows.Flow(nil), a.desired[bf.Bridge]...)
				flows.Sort(want)
				if len(bf.Flows) != len(want) {
					t.Fatalf("%s: %d flows, want %d", bf.Bridge, len(bf.Flows), len(want))
				}
				for i, f := range bf.Flows {
					if f.Text != want[i].String() || f.Table != want[i].Table || f.Priority != want[i].Priority {
						t.Errorf("%s flow %d = %+v, want %s", bf.Bridge, i, f, want[i])
					}
				}
				// The text is ovs-ofctl's: it parses back with its cookie.
				parsed, err := dumptext.Parse(strings.NewReader(joinText(bf.Flows)), nil)
				if err != nil {
					t.Fatalf("%s: the flows' text does not parse as a dump: %v", bf.Bridge, err)
				}
				if len(parsed) != len(bf.Flows) {
					t.Errorf("%s: %d flows parsed back, want %d", bf.Bridge, len(parsed), len(bf.Flows))
				}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("bridges %v, want %v", got, tt.want)
			}
		})
	}
	doc, err := client.DesiredFlows(ctx, "br-int")
	if err != nil {
		t.Fatal(err)
	}
	first := doc.Bridges[0].Flows[0]
	if first.TableName != "LOCAL_SWITCHING" || !strings.HasPrefix(first.Cookie, "0xd7f1") || first.Category == "" || first.Category == "foreign" ||
		!strings.HasPrefix(first.Text, "cookie="+first.Cookie+", ") {
		t.Errorf("first br-int flow = %+v", first)
	}
}

func joinText(fs []DesiredFlow) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.Text + "\n")
	}
	return b.String()
}

// TestReadOnly: only GET and HEAD; unknown paths and parameters are JSON errors.
func TestReadOnly(t *testing.T) {
	a := newFakeAgent(t)
	pub := NewPublisher(a, time.Now())
	pub.Reconciled(report(a))
	_, socket := serve(t, pub, &fakeConns{})
	httpc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", socket)
	}}}
	tests := []struct {
		method, path string
		code         int
		errorHas     string
	}{
		{http.MethodGet, "/v1/status", 200, ""},
		{http.MethodHead, "/v1/status", 200, ""},
		{http.MethodPost, "/v1/status", 405, "method POST not allowed: the agent's API is read-only"},
		{http.MethodDelete, "/v1/desired-flows", 405, "read-only"},
		{http.MethodPut, "/v1/anything", 405, "read-only"},
		{http.MethodGet, "/v1/ports", 404, "no such path /v1/ports"},
		{http.MethodGet, "/v1/status?verbose=1", 400, `unknown query parameter "verbose"`},
		{http.MethodGet, "/v1/desired-flows?bridge=br-int", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, "http://agent"+tt.path, nil)
			resp, err := httpc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("%d %s, want %d", resp.StatusCode, body, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.code == 405 && resp.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", resp.Header.Get("Allow"))
			}
			if tt.errorHas != "" {
				var e errorDocument
				if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Error, tt.errorHas) {
					t.Errorf("body %s, want an error with %q", body, tt.errorHas)
				}
			}
		})
	}
}

// TestSocket: the socket is 0600, a stale one is replaced, one in use or a file that is not
// a socket is refused, Close removes it, and a TCP listener serves only its own handler.
func TestSocket(t *testing.T) {
	a := newFakeAgent(t)
	pub := NewPublisher(a, time.Now())
	pub.Reconciled(report(a))
	dir := t.TempDir()
	socket := filepath.Join(dir, "dvrflow-agent.sock")

	// A stale socket: bound, then its listener gone without unlinking it.
	stale, err := net.ListenUnix("unix", &net.UnixAddr{Name: socket, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	stale.SetUnlinkOnClose(false)
	stale.Close()
	if _, err := NewClient(socket).Status(context.Background()); !errors.Is(err, ErrNoAgent) {
		t.Errorf("stale socket: err = %v, want ErrNoAgent", err)
	}

	srv := NewServer(zap.NewNop())
	if err := srv.ListenUnix(socket, pub.Handler(&fakeConns{})); err != nil {
		t.Fatalf("over a stale socket: %v", err)
	}
	metricsMux := http.NewServeMux()
	metricsMux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	if err := srv.ListenTCP("127.0.0.1:0", metricsMux); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	info, err := os.Stat(socket)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Type() != os.ModeSocket || info.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", info.Mode())
	}
	if _, err := os.Lstat(socket + "~"); !os.IsNotExist(err) {
		t.Errorf("the temporary name is left: %v", err)
	}
	if _, err := NewClient(socket).Status(context.Background()); err != nil {
		t.Errorf("status: %v", err)
	}
	tcp := srv.Addrs()[1].String()
	for path, want := range map[string]int{"/healthz": 200, "/v1/status": 404} {
		resp, err := http.Get("http://" + tcp + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("TCP listener %s: %d, want %d", path, resp.StatusCode, want)
		}
	}

	second := NewServer(zap.NewNop())
	if err := second.ListenUnix(socket, pub.Handler(nil)); err == nil || !strings.Contains(err.Error(), "another process serves this socket") {
		t.Errorf("a socket in use: err = %v", err)
	}
	second.Close()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := NewServer(zap.NewNop()).ListenUnix(plain, pub.Handler(nil)); err == nil || !strings.Contains(err.Error(), "is not a socket") {
		t.Errorf("a regular file: err = %v", err)
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(socket); !os.IsNotExist(err) {
		t.Errorf("socket left after Close: %v", err)
	}
	_, err = NewClient(socket).Status(context.Background())
	var noAgent *NoAgentError
	if !errors.As(err, &noAgent) || err.Error() != "no agent API at "+socket+" (is dvrflow-agent running with api_socket?)" {
		t.Errorf("no agent: err = %v", err)
	}
}

// TestPublishWhileServing: reconciles publish while clients read (run with -race).
func TestPublishWhileServing(t *testing.T) {
	a := newFakeAgent(t)
	pub := NewPublisher(a, time.Now())
	pub.Publish(nil)
	conns := &fakeConns{down: map[string]bool{}}
	_, socket := serve(t, pub, conns)
	client := NewClient(socket)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var readers sync.WaitGroup
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for ctx.Err() == nil {
				if _, err := client.Status(ctx); err != nil && ctx.Err() == nil {
					t.Errorf("status: %v", err)
					return
				}
				if _, err := client.DesiredFlows(ctx); err != nil && ctx.Err() == nil && !strings.Contains(err.Error(), "first reconcile") {
					t.Errorf("desired flows: %v", err)
					return
				}
			}
		}()
	}
	// The event loop: every reconcile hands over new desired slices and a new binding
	// (the agent never modifies those it handed out) and the connections change.
	for i := range 50 {
		fresh := newFakeAgent(t)
		a.binding, a.desired, a.repairs = fresh.binding, fresh.desired, i
		pub.Reconciled(report(a))
		conns.mu.Lock()
		conns.down["br-vlan"] = i%2 == 0
		conns.mu.Unlock()
	}
	cancel()
	readers.Wait()
	got, err := client.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got.Reconciles != 50 || got.Repairs != 49 {
		t.Errorf("reconciles %d repairs %d, want 50 and 49", got.Reconciles, got.Repairs)
	}
}
