package neutron

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/neutron/oslo"
	"github.com/dvrflow/dvrflow/northbound"
)

// fakeServer answers the agent's calls with canned replies and records them.
type fakeServer struct {
	mu sync.Mutex
	// replies are JSON results by method, for bulk_pull by "bulk_pull <resource_type>".
	replies map[string]string
	calls   []string // "method args"
	// onCall, when set, runs as a call arrives (before it is answered), outside the lock.
	onCall func(method string)
	// pull, when set, answers bulk_pull by resource type and filter (ok false: as if
	// unset).
	pull func(resourceType string, filter map[string][]string) (reply string, ok bool)
}

func (f *fakeServer) Call(_ context.Context, _ oslo.Target, method string, args any) (json.RawMessage, error) {
	if f.onCall != nil {
		f.onCall(method)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	b, _ := json.Marshal(args)
	f.calls = append(f.calls, method+" "+string(b))
	key := method
	if a, ok := args.(map[string]any); ok && method == "bulk_pull" {
		key = fmt.Sprint(method, " ", a["resource_type"])
		if f.pull != nil {
			var filter map[string][]string
			raw, _ := json.Marshal(a["filter_kwargs"])
			_ = json.Unmarshal(raw, &filter)
			if r, ok := f.pull(fmt.Sprint(a["resource_type"]), filter); ok {
				return json.RawMessage(r), nil
			}
		}
	}
	r, ok := f.replies[key]
	if !ok {
		return nil, fmt.Errorf("no reply for %s", key)
	}
	return json.RawMessage(r), nil
}

func (f *fakeServer) called(method string) []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if strings.HasPrefix(c, method+" ") {
			out = append(out, strings.TrimPrefix(c, method+" "))
		}
	}
	return out
}

const (
	p1  = "c0000001-0000-4000-8000-000000000001"
	qr1 = "d0000001-0000-4000-8000-000000000001"
	n1  = "a0000001-0000-4000-8000-000000000001"
	s1  = "b0000001-0000-4000-8000-000000000001"
	r1  = "f0000001-0000-4000-8000-000000000001"
)

// pulledPort is a Port 1.7 primitive as bulk_pull returns it (the fields the agent reads).
func pulledPort(id, owner, deviceID string) string {
	return `{"versioned_object.name": "Port", "versioned_object.version": "1.7", "versioned_object.namespace": "versionedobjects",
		"versioned_object.data": {"id": "` + id + `", "device_owner": "` + owner + `", "device_id": "` + deviceID + `", "status": "DOWN"}}`
}

func newTestSource(t *testing.T) (*Source, *fakeServer) {
	f := &fakeServer{replies: map[string]string{
		"get_devices_details_list_and_failed_devices": `{"devices": [
			{"device": "` + p1 + `", "port_id": "` + p1 + `", "network_id": "` + n1 + `", "mac_address": "fa:16:3e:00:00:01",
			 "admin_state_up": true, "network_type": "vxlan", "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
			 "fixed_ips": [{"subnet_id": "` + s1 + `", "ip_address": "10.0.1.11"}], "device_owner": "compute:nova",
			 "allowed_address_pairs": [], "port_security_enabled": true, "profile": {}},
			{"device": "` + qr1 + `", "port_id": "` + qr1 + `", "network_id": "` + n1 + `", "mac_address": "fa:16:3e:aa:01:01",
			 "admin_state_up": true, "network_type": "vxlan", "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
			 "fixed_ips": [{"subnet_id": "` + s1 + `", "ip_address": "10.0.1.1"}], "device_owner": "network:router_interface_distributed",
			 "allowed_address_pairs": [], "port_security_enabled": false, "profile": {}},
			{"device": "e0000009-0000-4000-8000-000000000009"}],
			"failed_devices": []}`,
		"bulk_pull Subnet": `[{"versioned_object.name": "Subnet", "versioned_object.version": "1.1", "versioned_object.namespace": "versionedobjects",
			"versioned_object.data": {"id": "` + s1 + `", "network_id": "` + n1 + `", "cidr": "10.0.1.0/24", "gateway_ip": "10.0.1.1", "ip_version": 4}}]`,
		"bulk_pull Port":              `[` + pulledPort(qr1, "network:router_interface_distributed", r1) + `]`,
		"get_subnet_for_dvr":          `{"id": "` + s1 + `", "cidr": "10.0.1.0/24", "gateway_ip": "10.0.1.1", "gateway_mac": "fa:16:3e:aa:01:01", "ip_version": 4, "network_id": "` + n1 + `"}`,
		"get_ports_on_host_by_subnet": `[{"id": "` + p1 + `", "mac_address": "fa:16:3e:00:00:01", "device_owner": "compute:nova", "status": "DOWN"}]`,
		"update_device_list":          `{"devices_up": [], "failed_devices_up": [], "devices_down": [], "failed_devices_down": []}`,
	}}
	s := newSource(NewPluginAPI(f, "compute1"), Settings{Host: "compute1", LocalIP: netip.MustParseAddr("192.168.0.1"),
		TunnelTypes: []string{"vxlan"}, DistributedRouting: true}, zaptest.NewLogger(t))
	return s, f
}

// validated is the source's snapshot as the agent keeps it.
func validated(t *testing.T, s *Source) *northbound.Model {
	t.Helper()
	s.mu.Lock()
	snap := s.c.snapshot()
	s.mu.Unlock()
	model, problems := northbound.Validate(*snap, northbound.Env{Host: "compute1", TunnelTypes: []northbound.NetworkType{northbound.VXLAN},
		LocalIP: netip.MustParseAddr("192.168.0.1")})
	if len(problems) > 0 {
		t.Fatalf("the snapshot has problems: %v", problems)
	}
	return model
}

func TestDevicesFromReports(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	unknown := "e0000009-0000-4000-8000-000000000009"

	// The agent sees three VIFs it has no port for: their details are asked once.
	s.Reconciled(Report{Plugged: []string{p1, qr1, unknown}, Unknown: []string{p1, qr1, unknown}})
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 || !strings.Contains(got[0], p1) || !strings.Contains(got[0], `"agent_id":"ovs-agent-compute1"`) {
		t.Fatalf("details asked: %v", got)
	}
	m := validated(t, s)
	if len(m.Ports) != 2 || len(m.Networks) != 1 || m.Networks[0].SegmentationID != 1001 || len(m.Subnets) != 1 {
		t.Fatalf("model: ports %+v networks %+v subnets %+v", m.Ports, m.Networks, m.Subnets)
	}
	if sn := m.Subnets[0]; sn.GatewayMAC.String() != "fa:16:3e:aa:01:01" || sn.CIDR.String() != "10.0.1.0/24" {
		t.Errorf("subnet %+v: want the gateway MAC of get_subnet_for_dvr", sn)
	}
	if len(f.called("get_subnet_for_dvr")) != 1 || len(f.called("bulk_pull")) != 2 {
		t.Errorf("subnets asked: bulk_pull %v, get_subnet_for_dvr %v", f.called("bulk_pull"), f.called("get_subnet_for_dvr"))
	}

	// The unknown device is not asked again while it stays unknown.
	s.Reconciled(Report{Plugged: []string{p1, qr1, unknown}, Unknown: []string{unknown}, Up: []string{p1, qr1}})
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 {
		t.Errorf("details asked again for a device the server does not know: %v", got)
	}
	// The ports whose flows are confirmed are reported up, the first time with refresh_tunnels.
	up := f.called("update_device_list")
	if len(up) != 1 || !strings.Contains(up[0], `"devices_up":["`+p1+`","`+qr1+`"]`) || !strings.Contains(up[0], `"refresh_tunnels":true`) {
		t.Fatalf("update_device_list: %v", up)
	}
	s.Reconciled(Report{Plugged: []string{p1, qr1, unknown}, Unknown: []string{unknown}, Up: []string{p1, qr1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 1 {
		t.Errorf("devices reported up twice: %v", got)
	}

	// p1 goes admin-down (port_update → details again; the agent keeps it dead): down.
	f.replies["get_devices_details_list_and_failed_devices"] = strings.Replace(f.replies["get_devices_details_list_and_failed_devices"], `"admin_state_up": true, "network_type": "vxlan", "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
			 "fixed_ips": [{"subnet_id": "`+s1+`", "ip_address": "10.0.1.11"}]`, `"admin_state_up": false, "network_type": "vxlan", "segmentation_id": 1001, "physical_network": null, "mtu": 1450,
			 "fixed_ips": [{"subnet_id": "`+s1+`", "ip_address": "10.0.1.11"}]`, 1)
	if err := s.apply("port_update", json.RawMessage(`{"port": {"id": "`+p1+`", "admin_state_up": false}, "network_type": "vxlan"}`)); err != nil {
		t.Fatal(err)
	}
	s.work(ctx)
	if m := validated(t, s); m.Ports[0].ID != p1 || m.Ports[0].AdminStateUp {
		t.Errorf("after port_update: %+v", m.Ports[0])
	}
	s.Reconciled(Report{Plugged: []string{p1, qr1, unknown}, Unknown: []string{unknown}, Up: []string{qr1}, Dead: []string{p1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 2 || !strings.Contains(got[1], `"devices_down":["`+p1+`"]`) || !strings.Contains(got[1], `"refresh_tunnels":false`) {
		t.Errorf("admin-down not reported down: %v", got)
	}

	// qr1 is unplugged: down, and no port of this host any more.
	s.Reconciled(Report{Plugged: []string{p1, unknown}, Unknown: []string{unknown}, Dead: []string{p1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 3 || !strings.Contains(got[2], `"devices_down":["`+qr1+`"]`) {
		t.Errorf("unplugged port not reported down: %v", got)
	}
	for _, p := range validated(t, s).Ports {
		if p.ID == qr1 {
			t.Error("an unplugged port is still in the model")
		}
	}
}

func TestNotifications(t *testing.T) {
	s, _ := newTestSource(t)
	ctx := context.Background()
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	for _, tc := range []struct{ method, args string }{
		{"dvr_mac_address_update", `{"dvr_macs": [{"host": "compute1", "mac_address": "FA-16-3F-00-00-01"}, {"host": "compute2", "mac_address": "FA-16-3F-00-00-02"}]}`},
		{"tunnel_update", `{"tunnel_ip": "192.168.0.2", "tunnel_type": "vxlan"}`},
		{"add_fdb_entries", `{"fdb_entries": {"` + n1 + `": {"network_type": "vxlan", "segment_id": 1001, "ports": {
			"192.168.0.2": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:00:00:02", "10.0.1.12"]],
			"192.168.0.1": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:00:00:01", "10.0.1.11"]]}}}}`},
		{"update_fdb_entries", `{"fdb_entries": {"chg_ip": {"` + n1 + `": {"192.168.0.2": {"before": [["fa:16:3e:00:00:02", "10.0.1.12"]], "after": [["fa:16:3e:00:00:02", "10.0.1.13"]]}}}}}`},
	} {
		if err := s.apply(tc.method, json.RawMessage(tc.args)); err != nil {
			t.Fatalf("%s: %v", tc.method, err)
		}
	}
	m := validated(t, s)
	if len(m.FDB) != 1 || m.FDB[0].RemoteIP.String() != "192.168.0.2" || !m.FDB[0].Flood || len(m.FDB[0].Entries) != 1 || m.FDB[0].Entries[0].IP.String() != "10.0.1.13" {
		t.Errorf("FDB (own VTEP ignored, chg_ip applied): %+v", m.FDB)
	}
	var hosts []string
	for _, h := range m.OtherHosts {
		hosts = append(hosts, fmt.Sprintf("%s %s %s", h.Name, h.DVRMAC, h.IP))
	}
	if strings.Join(hosts, "; ") != "compute2 fa:16:3f:00:00:02 invalid IP; vtep-192.168.0.2  192.168.0.2" {
		t.Errorf("other hosts: %q", hosts)
	}

	if err := s.apply("remove_fdb_entries", json.RawMessage(`{"fdb_entries": {"`+n1+`": {"network_type": "vxlan", "segment_id": 1001, "ports": {
		"192.168.0.2": [["00:00:00:00:00:00", "0.0.0.0"], ["fa:16:3e:00:00:02", "10.0.1.13"]]}}}}`)); err != nil {
		t.Fatal(err)
	}
	if m := validated(t, s); len(m.FDB) != 0 {
		t.Errorf("FDB after remove: %+v", m.FDB)
	}

	// port_delete: the port leaves the model and is not asked again.
	if err := s.apply("port_delete", json.RawMessage(`{"port_id": "`+p1+`"}`)); err != nil {
		t.Fatal(err)
	}
	if m := validated(t, s); len(m.Ports) != 0 {
		t.Errorf("ports after port_delete: %+v", m.Ports)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.mu.Lock()
	asked := s.pending[p1]
	s.mu.Unlock()
	if asked {
		t.Error("a deleted port is asked for again")
	}

	// Garbage is an error naming the method, and changes nothing.
	for _, tc := range []struct{ method, args string }{
		{"add_fdb_entries", `{"fdb_entries": {"x": {"ports": {"not-an-ip": [["m", "i"]]}}}}`},
		{"add_fdb_entries", `{"fdb_entries": [1, 2]}`},
		{"tunnel_update", `{"tunnel_ip": 7}`},
		{"no_such_method", `{}`},
	} {
		if err := s.apply(tc.method, json.RawMessage(tc.args)); err == nil {
			t.Errorf("%s %s accepted", tc.method, tc.args)
		}
	}
}

// TestRouterPortsGetTheirRouter: the legacy device details carry no device_id, so the
// router ports plugged here are pulled once (bulk_pull Port, only those) for their router's
// id, which the model's port then carries (`dvrflow trace` routes by it); a failed pull is
// asked again at the next resync, and a port_update's device_id is taken as it comes.
func TestRouterPortsGetTheirRouter(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	pulls := func() []string {
		var out []string
		for _, c := range f.called("bulk_pull") {
			if strings.Contains(c, `"resource_type":"Port"`) {
				out = append(out, c)
			}
		}
		return out
	}
	devices := func() map[string]string {
		out := map[string]string{}
		for _, p := range validated(t, s).Ports {
			out[p.ID] = p.DeviceID
		}
		return out
	}

	s.Reconciled(Report{Plugged: []string{p1, qr1}, Unknown: []string{p1, qr1}})
	s.work(ctx)
	if got := pulls(); len(got) != 1 || !strings.Contains(got[0], `"filter_kwargs":{"id":["`+qr1+`"]}`) || !strings.Contains(got[0], `"version":"1.7"`) {
		t.Fatalf("Port pulls: %v; want one, of the router port only", got)
	}
	if d := devices(); d[qr1] != r1 || d[p1] != "" {
		t.Errorf("device ids %v: want the router's on the router port", d)
	}
	s.Reconciled(Report{Plugged: []string{p1, qr1}, Up: []string{p1, qr1}})
	s.work(ctx)
	if got := pulls(); len(got) != 1 {
		t.Errorf("router port pulled again: %v", got)
	}

	// A fresh source whose pull fails: no router id, no new pull until the resync.
	s, f = newTestSource(t)
	delete(f.replies, "bulk_pull Port")
	s.Reconciled(Report{Plugged: []string{p1, qr1}, Unknown: []string{p1, qr1}})
	s.work(ctx)
	s.Reconciled(Report{Plugged: []string{p1, qr1}, Up: []string{p1, qr1}})
	s.work(ctx)
	if got, d := pulls(), devices(); len(got) != 1 || d[qr1] != "" {
		t.Fatalf("after a failed pull: pulls %v, device ids %v", got, d)
	}
	f.mu.Lock()
	f.replies["bulk_pull Port"] = `[` + pulledPort(qr1, "network:router_interface_distributed", r1) + `]`
	f.mu.Unlock()
	s.requestResync()
	s.work(ctx)
	if got, d := pulls(), devices(); len(got) != 2 || d[qr1] != r1 {
		t.Errorf("after the resync: pulls %v, device ids %v", got, d)
	}

	// port_update names the device (here the router port moved to another router).
	r2 := "f0000002-0000-4000-8000-000000000002"
	if err := s.apply("port_update", json.RawMessage(`{"port": {"id": "`+qr1+`", "device_id": "`+r2+`"}}`)); err != nil {
		t.Fatal(err)
	}
	if d := devices(); d[qr1] != r2 {
		t.Errorf("after port_update: device ids %v", d)
	}
}

// TestStartConsumesBeforeFetchingTheLists: the agent consumes the notifications before it
// asks for the DVR MACs and tunnels, so that a host registering meanwhile is not missed (the
// update is queued, not lost); an update that arrives while the list is asked is kept even
// if the list reply, older, lacks its host.
func TestStartConsumesBeforeFetchingTheLists(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	for method, reply := range map[string]string{
		"has_alive_neutron_server":    `true`,
		"get_dvr_mac_address_by_host": `{"host": "compute1", "mac_address": "FA-16-3F-00-00-01"}`,
		"get_dvr_mac_address_list":    `[{"host": "compute1", "mac_address": "FA-16-3F-00-00-01"}, {"host": "compute2", "mac_address": "FA-16-3F-00-00-02"}]`,
		"report_state":                `"new"`,
		"tunnel_sync":                 `{"tunnels": [{"host": "compute1", "ip_address": "192.168.0.1", "udp_port": 4789}]}`,
	} {
		f.replies[method] = reply
	}
	var order []string
	var mu sync.Mutex
	s.serve = func(_ context.Context, topic string) ([]string, error) {
		mu.Lock()
		defer mu.Unlock()
		order = append(order, "serve "+topic)
		return []string{topic}, nil
	}
	// compute3 registers while the list is asked: its update (the full list, compute3
	// included) is consumed before the list's reply (computed just before) comes back.
	f.onCall = func(method string) {
		mu.Lock()
		order = append(order, method)
		mu.Unlock()
		if method == "get_dvr_mac_address_list" {
			if err := s.apply("dvr_mac_address_update", json.RawMessage(`{"dvr_macs": [{"host": "compute1", "mac_address": "FA-16-3F-00-00-01"},
				{"host": "compute2", "mac_address": "FA-16-3F-00-00-02"}, {"host": "compute3", "mac_address": "FA-16-3F-00-00-03"}]}`)); err != nil {
				t.Error(err)
			}
		}
	}
	snap, err := s.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	list := slices.Index(order, "get_dvr_mac_address_list")
	served := 0
	for i, o := range order {
		if strings.HasPrefix(o, "serve ") {
			served++
			if i > list {
				t.Errorf("%s after get_dvr_mac_address_list: %v", o, order)
			}
		}
	}
	if served != len(consumedTopics) || list < 0 {
		t.Fatalf("start sequence %v", order)
	}
	var macs []string
	for _, h := range snap.Model.OtherHosts {
		macs = append(macs, h.Name+" "+h.DVRMAC.String())
	}
	if got := strings.Join(macs, ", "); got != "compute2 fa:16:3f:00:00:02, compute3 fa:16:3f:00:00:03" {
		t.Errorf("other hosts' DVR MACs after the start: %s", got)
	}

	// Without an update meanwhile, the list replaces what the cache had (a resync).
	f.onCall = nil
	s.mu.Lock()
	s.c.addDVRMACs([]DVRMAC{{Host: "compute9", MACAddress: "FA-16-3F-00-00-09"}})
	s.mu.Unlock()
	if err := s.syncHost(ctx); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	_, stale := s.c.dvrMACs["compute9"]
	s.mu.Unlock()
	if stale {
		t.Error("a host the list no longer has kept its DVR MAC")
	}
}

// TestDeviceListInChunks: many devices due at once go out as several update_device_list
// calls of at most deviceListChunk devices, in flight together, each device exactly once.
func TestDeviceListInChunks(t *testing.T) {
	s, f := newTestSource(t)
	var up, down []string
	for i := range 25 {
		up = append(up, fmt.Sprintf("c0000001-0000-4000-8000-%012d", i))
	}
	for i := range 3 {
		down = append(down, fmt.Sprintf("c0000002-0000-4000-8000-%012d", i))
	}
	s.mu.Lock()
	for _, d := range up {
		s.toUp[d] = true
	}
	for _, d := range down {
		s.toDown[d] = true
		s.up[d] = true
	}
	s.mu.Unlock()
	// Every call waits until a second one is in flight: the calls must overlap.
	f.onCall = overlapGate(t, "update_device_list", 2)
	s.updateDevices(context.Background())

	calls := f.called("update_device_list")
	if len(calls) != 4 {
		t.Fatalf("%d update_device_list calls, want 4 (10 + 10 + 5 up, 3 down): %v", len(calls), calls)
	}
	seen := map[string]int{}
	for _, c := range calls {
		var args struct {
			Up   []string `json:"devices_up"`
			Down []string `json:"devices_down"`
		}
		if err := json.Unmarshal([]byte(c), &args); err != nil {
			t.Fatal(err)
		}
		if n := len(args.Up) + len(args.Down); n > deviceListChunk {
			t.Errorf("a call with %d devices: %s", n, c)
		}
		for _, d := range append(args.Up, args.Down...) {
			seen[d]++
		}
	}
	for _, d := range append(up, down...) {
		if seen[d] != 1 {
			t.Errorf("%s reported %d times", d, seen[d])
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.toUp) != 0 || len(s.toDown) != 0 || len(s.up) != len(up) {
		t.Errorf("after the calls: %d still to report up, %d down, %d up; want 0, 0, %d", len(s.toUp), len(s.toDown), len(s.up), len(up))
	}
}

// overlapGate is a fakeServer.onCall that holds each call of method until n of them are
// in flight at once (the test fails if that does not happen within 10 s).
func overlapGate(t *testing.T, method string, n int) func(string) {
	var mu sync.Mutex
	inFlight := 0
	reached := make(chan struct{})
	return func(m string) {
		if m != method {
			return
		}
		mu.Lock()
		inFlight++
		if inFlight == n {
			close(reached)
		}
		mu.Unlock()
		select {
		case <-reached:
		case <-time.After(10 * time.Second):
			t.Errorf("%s: never %d calls in flight at once", method, n)
		}
	}
}
