package neutron

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestPrimeAdoptsWiredPorts: a restarted agent learns the VIFs already plugged before its
// first reconcile, reports the ports a previous run wired up with refresh_tunnels (so that
// l2pop sends the full FDB before the first reconcile), and does not report them again
// after the reconcile.
func TestPrimeAdoptsWiredPorts(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	unknown := "e0000009-0000-4000-8000-000000000009"
	snap := s.Prime(ctx, []Plugged{{Device: p1, Wired: true}, {Device: qr1, Wired: true}, {Device: unknown}})
	if len(snap.Model.Ports) != 2 {
		t.Fatalf("first snapshot ports: %+v, want p1 and qr1", snap.Model.Ports)
	}
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 || !strings.Contains(got[0], unknown) {
		t.Fatalf("details asked: %v", got)
	}
	up := f.called("update_device_list")
	if len(up) != 1 || !strings.Contains(up[0], `"devices_up":["`+p1+`","`+qr1+`"]`) || !strings.Contains(up[0], `"refresh_tunnels":true`) {
		t.Fatalf("update_device_list at start: %v", up)
	}
	s.Reconciled(Report{Plugged: []string{p1, qr1, unknown}, Unknown: []string{unknown}, Up: []string{p1, qr1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 1 {
		t.Errorf("ports reported up again after the first reconcile: %v", got)
	}
}

// TestPrimeLeavesUnwiredPortsToTheReconcile: a VIF no previous run wired (untagged) is
// reported up only after the reconcile that confirmed its flows.
func TestPrimeLeavesUnwiredPortsToTheReconcile(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	s.Prime(ctx, []Plugged{{Device: p1}})
	if got := f.called("update_device_list"); len(got) != 0 {
		t.Fatalf("an unwired port reported up before any reconcile: %v", got)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Up: []string{p1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 1 || !strings.Contains(got[0], `"refresh_tunnels":true`) {
		t.Errorf("update_device_list after the reconcile: %v", got)
	}
}

// TestDetailsRetried: devices whose details failed (no server) are asked again after the
// back-off, without waiting for a resync.
func TestDetailsRetried(t *testing.T) {
	s, f := newTestSource(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reply := f.replies["get_devices_details_list_and_failed_devices"]
	f.mu.Lock()
	delete(f.replies, "get_devices_details_list_and_failed_devices")
	f.mu.Unlock()
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	s.mu.Lock()
	failed, retryAt := s.failed[p1], s.retryAt
	s.mu.Unlock()
	if !failed || retryAt.IsZero() || time.Until(retryAt) > minDetailsRetry {
		t.Fatalf("failed %v, retry at %v: want a retry within %s", failed, retryAt, minDetailsRetry)
	}
	f.mu.Lock()
	f.replies["get_devices_details_list_and_failed_devices"] = reply
	f.mu.Unlock()
	select { // the poke of the report above
	case <-s.wake:
	default:
	}
	s.work(ctx) // before the back-off: not asked
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 {
		t.Fatalf("asked again before the back-off: %v", got)
	}
	select {
	case <-s.wake: // the retry pokes the source
	case <-time.After(5 * time.Second):
		t.Fatal("no retry within 5 s")
	}
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 2 {
		t.Fatalf("details asked %d times, want 2", len(got))
	}
	if m := validated(t, s); len(m.Ports) != 1 || m.Ports[0].ID != p1 {
		t.Errorf("after the retry: %+v", m.Ports)
	}
}

// TestRevivedResyncs: report_state answered "revived" asks every plugged device's details
// again and reports the ports up again with refresh_tunnels, once.
func TestRevivedResyncs(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	s.Reconciled(Report{Plugged: []string{p1}, Up: []string{p1}})
	s.work(ctx)
	f.mu.Lock()
	f.replies["report_state"] = `"revived"`
	f.replies["tunnel_sync"] = `{"tunnels": []}`
	f.replies["get_dvr_mac_address_by_host"] = `{"host": "compute1", "mac_address": "FA-16-3F-00-00-01"}`
	f.replies["get_dvr_mac_address_list"] = `[{"host": "compute1", "mac_address": "FA-16-3F-00-00-01"}]`
	f.mu.Unlock()
	s.heartbeat(ctx)
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 2 {
		t.Fatalf("details asked %d times, want 2 (once more after revived)", len(got))
	}
	if got := f.called("tunnel_sync"); len(got) != 1 {
		t.Errorf("tunnel_sync after revived: %v", got)
	}
	// The agent's reconcile after the new snapshot reports the port; it goes up again.
	s.Reconciled(Report{Plugged: []string{p1}, Up: []string{p1}})
	s.work(ctx)
	up := f.called("update_device_list")
	if len(up) != 2 || !strings.Contains(up[1], `"devices_up":["`+p1+`"]`) || !strings.Contains(up[1], `"refresh_tunnels":true`) {
		t.Fatalf("update_device_list after revived: %v", up)
	}
	f.mu.Lock()
	f.replies["report_state"] = `"alive"`
	f.mu.Unlock()
	s.heartbeat(ctx)
	s.work(ctx)
	s.Reconciled(Report{Plugged: []string{p1}, Up: []string{p1}})
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 2 {
		t.Errorf("details asked again after an alive report: %d calls", len(got))
	}
	if got := f.called("update_device_list"); len(got) != 2 {
		t.Errorf("reported up again after an alive report: %v", got)
	}
}

// TestUnknownAskedAtReports: a plugged device the server did not know (plugged before the
// server bound it) is asked again at the next report_state, and programmed once known.
func TestUnknownAskedAtReports(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	full := f.replies["get_devices_details_list_and_failed_devices"]
	f.replies["get_devices_details_list_and_failed_devices"] = `{"devices": [{"device": "` + p1 + `"}], "failed_devices": []}`
	f.replies["report_state"] = `"alive"`
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	if m := validated(t, s); len(m.Ports) != 0 {
		t.Fatalf("an unbound device is a port: %+v", m.Ports)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 {
		t.Fatalf("an unknown device asked again between reports: %v", got)
	}
	f.mu.Lock()
	f.replies["get_devices_details_list_and_failed_devices"] = full
	f.mu.Unlock()
	s.heartbeat(ctx)
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 2 {
		t.Fatalf("details asked %d times, want 2 (again at the report)", len(got))
	}
	if m := validated(t, s); len(m.Ports) != 1 || m.Ports[0].ID != p1 {
		t.Errorf("after the report: %+v", m.Ports)
	}
}
