package neutron

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
)

// pushedPortObject is a Port 1.7 primitive as the server pushes it, bound to host (vxlan
// 1001) unless host is "", at revision rev.
func pushedPortObject(id, host string, rev int, adminUp bool) string {
	bindings := `[{"versioned_object.name": "PortBinding", "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects",
		"versioned_object.data": {"port_id": "` + id + `", "host": "", "status": "ACTIVE", "vif_type": "unbound", "vnic_type": "normal", "profile": "{}", "vif_details": "{}"}}]`
	levels := `[]`
	if host != "" {
		bindings = `[{"versioned_object.name": "PortBinding", "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects",
			"versioned_object.data": {"port_id": "` + id + `", "host": "` + host + `", "status": "ACTIVE", "vif_type": "ovs", "vnic_type": "normal",
			"profile": "{}", "vif_details": "{\"connectivity\": \"l2\", \"port_filter\": true}"}}]`
		levels = `[{"versioned_object.name": "PortBindingLevel", "versioned_object.version": "1.1", "versioned_object.namespace": "versionedobjects",
			"versioned_object.data": {"port_id": "` + id + `", "host": "` + host + `", "level": 0, "driver": "openvswitch", "segment_id": "s",
			"segment": {"versioned_object.name": "NetworkSegment", "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects",
				"versioned_object.data": {"id": "s", "network_id": "` + n1 + `", "network_type": "vxlan", "segmentation_id": 1001, "is_dynamic": false, "segment_index": 0, "hosts": []}}}}]`
	}
	return `{"versioned_object.name": "Port", "versioned_object.namespace": "versionedobjects", "versioned_object.version": "1.7",
	"versioned_object.data": {"id": "` + id + `", "network_id": "` + n1 + `", "mac_address": "fa:16:3e:00:00:01", "admin_state_up": ` + fmt.Sprint(adminUp) + `,
		"status": "DOWN", "device_owner": "compute:nova", "device_id": "vm1", "project_id": "demo", "revision_number": ` + fmt.Sprint(rev) + `,
		"created_at": "2026-11-21T19:11:06Z", "updated_at": "2026-11-21T19:11:06Z", "security_group_ids": [], "qos_policy_id": null,
		"allowed_address_pairs": [{"versioned_object.name": "AllowedAddressPair", "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects",
			"versioned_object.data": {"port_id": "` + id + `", "mac_address": "fa:16:3e:00:00:01", "ip_address": "10.0.1.100/32"}}],
		"dhcp_options": [], "distributed_bindings": [], "dns": null, "data_plane_status": null,
		"fixed_ips": [{"versioned_object.name": "IPAllocation", "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects",
			"versioned_object.data": {"port_id": "` + id + `", "subnet_id": "` + s1 + `", "network_id": "` + n1 + `", "ip_address": "10.0.1.11"}}],
		"security": {"versioned_object.name": "PortSecurity", "versioned_object.version": "1.0", "versioned_object.namespace": "versionedobjects",
			"versioned_object.data": {"id": "` + id + `", "port_security_enabled": true}},
		"bindings": ` + bindings + `, "binding_levels": ` + levels + `}}`
}

func pushArgsJSON(event string, objects ...string) json.RawMessage {
	return json.RawMessage(`{"resource_list": [` + strings.Join(objects, ",") + `], "event_type": "` + event + `"}`)
}

const networkPush = `{"versioned_object.name": "Network", "versioned_object.version": "1.1", "versioned_object.namespace": "versionedobjects",
	"versioned_object.data": {"id": "` + n1 + `", "mtu": 1450, "revision_number": 3, "name": "net1"}}`

// TestPushedPortProgrammedWithoutDetailsCall: a port the server pushed as bound here is
// programmed from the push as soon as its VIF is reported, without
// get_devices_details_list_and_failed_devices, and reported up after the agent confirms it;
// a later update push changes it without any call.
func TestPushedPortProgrammedWithoutDetailsCall(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	// The subnet is cached already (another port of the network): no call at all before up.
	s.mu.Lock()
	gw := "10.0.1.1"
	if err := s.c.setSubnet(s1, n1, "10.0.1.0/24", &gw, nil, 4); err != nil {
		t.Fatal(err)
	}
	s.mu.Unlock()
	for _, args := range []json.RawMessage{
		pushArgsJSON("updated", networkPush),
		pushArgsJSON("updated", pushedPortObject(p1, "", 1, true)), // created, not yet bound
		pushArgsJSON("updated", pushedPortObject(p1, "compute1", 2, true)),
	} {
		if err := s.apply("push", args); err != nil {
			t.Fatal(err)
		}
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	if len(f.calls) != 0 {
		t.Fatalf("calls before the port was reported up: %v", f.calls)
	}
	m := validated(t, s)
	if len(m.Ports) != 1 || len(m.Networks) != 1 || m.Networks[0].MTU != 1450 || m.Networks[0].SegmentationID != 1001 {
		t.Fatalf("model: ports %+v networks %+v", m.Ports, m.Networks)
	}
	if p := m.Ports[0]; p.MAC.String() != "fa:16:3e:00:00:01" || len(p.FixedIPs) != 1 || p.FixedIPs[0].IP.String() != "10.0.1.11" ||
		!p.AdminStateUp || !p.PortSecurity || len(p.AllowedAddressPairs) != 1 || p.DeviceID != "vm1" {
		t.Errorf("port from the push: %+v", p)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Up: []string{p1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 1 || !strings.Contains(got[0], `"devices_up":["`+p1+`"]`) {
		t.Fatalf("update_device_list: %v", got)
	}
	if len(f.calls) != 1 {
		t.Errorf("calls: %v; want update_device_list only", f.calls)
	}

	// An update push: admin down, without a call.
	if err := s.apply("push", pushArgsJSON("updated", pushedPortObject(p1, "compute1", 4, false))); err != nil {
		t.Fatal(err)
	}
	if m := validated(t, s); len(m.Ports) != 1 || m.Ports[0].AdminStateUp {
		t.Errorf("after the admin-down push: %+v", m.Ports)
	}
	// An older revision is ignored.
	if err := s.apply("push", pushArgsJSON("updated", pushedPortObject(p1, "compute1", 3, true))); err != nil {
		t.Fatal(err)
	}
	if m := validated(t, s); len(m.Ports) != 1 || m.Ports[0].AdminStateUp {
		t.Errorf("an older revision was applied: %+v", m.Ports)
	}
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 0 {
		t.Errorf("details asked: %v", got)
	}

	// Deleted: the port leaves the model, is not asked for, and a late update is ignored.
	if err := s.apply("push", pushArgsJSON("deleted", `{"versioned_object.name": "Port", "versioned_object.version": "1.7",
		"versioned_object.namespace": "versionedobjects", "versioned_object.changes": ["id", "qos_network_policy_id", "security_group_ids", "qos_policy_id"],
		"versioned_object.data": {"id": "`+p1+`", "qos_network_policy_id": null, "qos_policy_id": null, "security_group_ids": null}}`)); err != nil {
		t.Fatal(err)
	}
	if m := validated(t, s); len(m.Ports) != 0 {
		t.Errorf("ports after the deleted push: %+v", m.Ports)
	}
	if err := s.apply("push", pushArgsJSON("updated", pushedPortObject(p1, "compute1", 9, true))); err != nil {
		t.Fatal(err)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	if m := validated(t, s); len(m.Ports) != 0 {
		t.Errorf("a deleted port came back: %+v", m.Ports)
	}
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 0 {
		t.Errorf("details asked for a deleted port: %v", got)
	}
}

// TestPushForAnotherHost: a port bound to another host is not programmed from its push: its
// details are asked as before.
func TestPushForAnotherHost(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	if err := s.apply("push", pushArgsJSON("updated", pushedPortObject(p1, "compute2", 2, true))); err != nil {
		t.Fatal(err)
	}
	s.mu.Lock()
	pushed := s.p.ports[p1]
	s.mu.Unlock()
	if pushed != nil {
		t.Fatalf("another host's port kept: %+v", pushed)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 {
		t.Errorf("details asked: %v; want once", got)
	}
	// A later push moving the port elsewhere drops it (kept dead).
	if err := s.apply("push", pushArgsJSON("updated", pushedPortObject(p1, "compute2", 5, true))); err != nil {
		t.Fatal(err)
	}
	for _, p := range validated(t, s).Ports {
		if p.ID == p1 {
			t.Error("a port bound elsewhere is still in the model")
		}
	}
}

// TestPushBindsAPluggedPort: a VIF plugged before its port was bound (the server did not
// know it for this host) is programmed when the push binding it arrives.
func TestPushBindsAPluggedPort(t *testing.T) {
	s, f := newTestSource(t)
	ctx := context.Background()
	f.replies["get_devices_details_list_and_failed_devices"] = `{"devices": [{"device": "` + p1 + `"}], "failed_devices": []}`
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	if m := validated(t, s); len(m.Ports) != 0 {
		t.Fatalf("ports: %+v", m.Ports)
	}
	if err := s.apply("push", pushArgsJSON("updated", pushedPortObject(p1, "compute1", 2, true))); err != nil {
		t.Fatal(err)
	}
	s.work(ctx)
	if m := validated(t, s); len(m.Ports) != 1 {
		t.Errorf("ports after the push: %+v", m.Ports)
	}
	if got := f.called("get_devices_details_list_and_failed_devices"); len(got) != 1 {
		t.Errorf("details asked: %v; want once (before the push)", got)
	}
}

// TestGarbagePush: a push that does not decode is an error naming the method, and changes
// nothing.
func TestGarbagePush(t *testing.T) {
	s, _ := newTestSource(t)
	for _, args := range []string{
		`{"resource_list": "x", "event_type": "updated"}`,
		`{"resource_list": [{"versioned_object.name": "Port", "versioned_object.data": {"id": 7}}], "event_type": "updated"}`,
		`{"resource_list": [{"versioned_object.name": "Port", "versioned_object.data": {"network_id": "n"}}], "event_type": "updated"}`,
		`{"resource_list": [{"versioned_object.name": "Trunk", "versioned_object.data": {"id": "t"}}], "event_type": "updated"}`,
		`{"resource_list": [], "event_type": "renamed"}`,
		`[1]`,
	} {
		err := s.apply("push", json.RawMessage(args))
		if err == nil || !strings.HasPrefix(err.Error(), "push: ") {
			t.Errorf("%s: error %v, want one naming push", args, err)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.p.ports)+len(s.p.portRevisions) != 0 {
		t.Errorf("garbage cached: %+v", s.p)
	}
}

// TestPushDuringDetailsCall: a port pushed while its details call is in flight (the server
// pushes after the REST call that bound it returns; the VIF may be plugged first) is
// programmed from the push at once; the call's answer, when it comes, does not replace it.
func TestPushDuringDetailsCall(t *testing.T) {
	s, f := newTestSource(t)
	s.detailsAsync = true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	release := make(chan struct{})
	f.onCall = func(method string) {
		if method == "get_devices_details_list_and_failed_devices" {
			<-release
		}
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx) // the call is in flight
	if err := s.apply("push", pushArgsJSON("updated", networkPush, pushedPortObject(p1, "compute1", 2, false))); err != nil {
		t.Fatal(err)
	}
	s.Reconciled(Report{Plugged: []string{p1}, Unknown: []string{p1}})
	s.work(ctx)
	m := validated(t, s)
	if len(m.Ports) != 1 || m.Ports[0].AdminStateUp {
		t.Fatalf("ports while the call is in flight: %+v; want p1 from the push (admin down)", m.Ports)
	}
	// Reported up at once, and again after the call (which sets the port BUILD).
	s.Reconciled(Report{Plugged: []string{p1}, Up: []string{p1}})
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 1 || !strings.Contains(got[0], `"devices_up":["`+p1+`"]`) {
		t.Fatalf("update_device_list while the call is in flight: %v", got)
	}
	close(release)
	for i := 0; ; i++ {
		s.mu.Lock()
		n := len(s.asking)
		s.mu.Unlock()
		if n == 0 {
			break
		}
		if i > 500 {
			t.Fatal("the details call never returned")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if m := validated(t, s); len(m.Ports) != 1 || m.Ports[0].AdminStateUp {
		t.Errorf("ports after the call's answer: %+v; want the push's", m.Ports)
	}
	s.work(ctx)
	if got := f.called("update_device_list"); len(got) != 2 || !strings.Contains(got[1], `"devices_up":["`+p1+`"]`) {
		t.Errorf("update_device_list after the call: %v; want the device up again", got)
	}
}
