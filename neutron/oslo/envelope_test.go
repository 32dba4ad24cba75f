package oslo

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeMessageFromOslo(t *testing.T) {
	tests := []struct {
		file, method, version, msgID, replyQ, uniqueID, args string
	}{
		{"call_tunnel_sync.json", "tunnel_sync", "1.4", "627b3d1af7db4ca2a3439e25c24782f4", "reply_acaf93f853314620bfadaec4680de7c0",
			"6fbc97dbf64e4e789806ebfd32183e2f", `{"tunnel_ip":"10.255.77.11","tunnel_type":"vxlan","host":"compute-1"}`},
		{"cast_add_fdb_entries.json", "add_fdb_entries", "1.0", "", "", "0c2f6a3e9d1b4d3e8e4f5a6b7c8d9e0f",
			`{"fdb_entries":{"1c700c4c-9aaf-4489-b6eb-a645f40a346e":{"network_type":"vxlan","segment_id":1199,"ports":{"10.255.77.11":[["00:00:00:00:00:00","0.0.0.0"],["fa:16:3e:f0:25:f3","10.10.0.153"]]}}}}`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			m, err := DecodeMessage(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if m.Method != tt.method || m.Version != tt.version || m.MsgID != tt.msgID || m.ReplyQueue != tt.replyQ || m.UniqueID != tt.uniqueID {
				t.Errorf("got %+v", m)
			}
			if m.IsCall() != (tt.msgID != "") {
				t.Errorf("IsCall = %v", m.IsCall())
			}
			if m.CallTimeout != nil {
				t.Errorf("_timeout: got %v, want null", *m.CallTimeout)
			}
			assertSameJSON(t, m.Args, tt.args)
			if m.Context["is_admin"] != true || m.Context["request_id"] != "req-5b3f0f2c-1c3e-4bb5-9f2e-0d8b0c6f1a11" ||
				m.Context["user_identity"] != "- - - - -" || len(m.Context) != 23 {
				t.Errorf("context: got %d keys %v", len(m.Context), m.Context)
			}
			if v, ok := m.Context["project_id"]; !ok || v != nil {
				t.Errorf("context project_id: got %v (present %v), want null", v, ok)
			}
		})
	}
}

// TestEncodeMessageRoundTrip checks that what we send decodes to what we meant, and that the
// wire form is the 2.0 envelope with the message as a JSON string and the context flattened.
func TestEncodeMessageRoundTrip(t *testing.T) {
	timeout := 30.0
	tests := []Message{
		{Method: "tunnel_sync", Args: json.RawMessage(`{"tunnel_ip":"10.0.0.1"}`), Version: "1.4", MsgID: "a1", ReplyQueue: "reply_b2",
			UniqueID: "u1", Context: Context{"is_admin": true, "roles": []any{}}},
		{Method: "get_dvr_mac_address_list", Version: "1.0", MsgID: "a2", ReplyQueue: "reply_b2", CallTimeout: &timeout, UniqueID: "u2", Context: Context{}},
		{Method: "port_update", Args: json.RawMessage(`{"port":{"id":"p"}}`), UniqueID: "u3", Context: AdminContext(time.Unix(0, 0))},
		{Method: "ping", Namespace: "ns", UniqueID: "u4", Context: Context{}},
	}
	for _, want := range tests {
		t.Run(want.Method, func(t *testing.T) {
			body, err := EncodeMessage(want)
			if err != nil {
				t.Fatal(err)
			}
			var outer map[string]any
			if err := json.Unmarshal(body, &outer); err != nil {
				t.Fatal(err)
			}
			inner, isString := outer["oslo.message"].(string)
			if outer["oslo.version"] != "2.0" || !isString || len(outer) != 2 {
				t.Fatalf("envelope: %s", body)
			}
			var flat map[string]any
			if err := json.Unmarshal([]byte(inner), &flat); err != nil {
				t.Fatal(err)
			}
			for k := range want.Context {
				if _, ok := flat["_context_"+k]; !ok {
					t.Errorf("context key %s not flattened to _context_%s: %s", k, k, inner)
				}
			}
			_, hasMsgID := flat["_msg_id"]
			_, hasTimeout := flat["_timeout"]
			_, hasNamespace := flat["namespace"]
			if hasMsgID != (want.MsgID != "") || hasTimeout != (want.MsgID != "") || hasNamespace != (want.Namespace != "") {
				t.Errorf("call-only keys or namespace wrong: %s", inner)
			}
			got, err := DecodeMessage(body)
			if err != nil {
				t.Fatal(err)
			}
			if len(want.Args) == 0 {
				want.Args = json.RawMessage("{}")
			}
			assertSameJSON(t, got.Args, string(want.Args))
			got.Args, want.Args = nil, nil
			wantCtx, _ := json.Marshal(want.Context)
			gotCtx, _ := json.Marshal(got.Context)
			assertSameJSON(t, gotCtx, string(wantCtx))
			got.Context, want.Context = nil, nil
			if !reflect.DeepEqual(got, want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

func TestDecodeMessageRefusesGarbage(t *testing.T) {
	tests := map[string]string{
		"not JSON":               `garbage`,
		"not an object":          `[1,2]`,
		"other envelope":         `{"oslo.version": "3.0", "oslo.message": "{}"}`,
		"message not a string":   `{"oslo.version": "2.0", "oslo.message": {"method": "x"}}`,
		"message not JSON":       `{"oslo.version": "2.0", "oslo.message": "{nope"}`,
		"no method":              `{"oslo.version": "2.0", "oslo.message": "{\"args\": {}}"}`,
		"method not a string":    `{"oslo.version": "2.0", "oslo.message": "{\"method\": 7}"}`,
		"args not an object":     `{"oslo.version": "2.0", "oslo.message": "{\"method\": \"x\", \"args\": [1]}"}`,
		"unique id not a string": `{"oslo.version": "2.0", "oslo.message": "{\"method\": \"x\", \"_unique_id\": 5}"}`,
	}
	for name, body := range tests {
		t.Run(name, func(t *testing.T) {
			if m, err := DecodeMessage([]byte(body)); err == nil {
				t.Errorf("decoded %+v, want an error", m)
			}
		})
	}
	// Like oslo, a bare pre-envelope message is accepted.
	if m, err := DecodeMessage([]byte(`{"method": "x", "args": {"a": 1}}`)); err != nil || m.Method != "x" {
		t.Errorf("bare message: %+v, %v", m, err)
	}
}

func TestDecodeReplyFromOslo(t *testing.T) {
	tests := []struct {
		file                  string
		result                string
		ending                bool
		exc, message          string
		noSuchMethod, version bool
	}{
		{file: "reply_tunnel_sync.json", result: `{"tunnels":[{"host":"compute-1","ip_address":"10.255.77.11","udp_port":4789}]}`, ending: true},
		{file: "reply_heartbeat.json", ending: false},
		{file: "reply_no_such_method.json", ending: true, exc: "oslo_messaging.rpc.dispatcher.NoSuchMethod",
			message: "Endpoint does not support RPC method no_such_method", noSuchMethod: true},
		{file: "reply_unsupported_version.json", ending: true, exc: "oslo_messaging.rpc.dispatcher.UnsupportedVersion",
			message: "Endpoint does not support RPC version 9.0. Attempted method: tunnel_sync", version: true},
		{file: "reply_addr_format_error.json", ending: true, exc: "netaddr.core.AddrFormatError",
			message: "failed to detect a valid IP address from 'bogus'"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			r, err := DecodeReply(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if r.Ending != tt.ending || r.MsgID == "" || r.UniqueID == "" {
				t.Errorf("got %+v", r)
			}
			if tt.result != "" {
				assertSameJSON(t, r.Result, tt.result)
			} else if r.Result != nil {
				t.Errorf("result: got %s, want none", r.Result)
			}
			if tt.exc == "" {
				if r.Failure != nil {
					t.Errorf("failure: got %+v, want none", r.Failure)
				}
				return
			}
			if r.Failure == nil {
				t.Fatal("no failure decoded")
			}
			err = &RemoteError{Topic: "q-plugin", Method: "m", Failure: *r.Failure}
			var remote *RemoteError
			if !errors.As(err, &remote) || remote.Exc() != tt.exc || remote.Message != tt.message {
				t.Errorf("got %s / %q, want %s / %q", remote.Exc(), remote.Message, tt.exc, tt.message)
			}
			if !strings.HasPrefix(remote.TracebackText(), "Traceback (most recent call last):") {
				t.Errorf("traceback: %q", remote.TracebackText())
			}
			if errors.Is(err, ErrNoSuchMethod) != tt.noSuchMethod || errors.Is(err, ErrUnsupportedVersion) != tt.version {
				t.Errorf("errors.Is: NoSuchMethod %v, UnsupportedVersion %v", errors.Is(err, ErrNoSuchMethod), errors.Is(err, ErrUnsupportedVersion))
			}
		})
	}
}

func TestEncodeReplyRoundTrip(t *testing.T) {
	for _, want := range []Reply{
		{MsgID: "m1", Result: json.RawMessage(`{"a":[1,2]}`), Ending: true, UniqueID: "u1"},
		{MsgID: "m2", Ending: true, UniqueID: "u2", Failure: &Failure{Class: "NoSuchMethod", Module: "oslo_messaging.rpc.dispatcher",
			Message: "no", Traceback: []string{"Traceback (most recent call last):\n"}, Args: json.RawMessage(`["no"]`), Kwargs: json.RawMessage(`{}`)}},
	} {
		body, err := EncodeReply(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeReply(body)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, want)
		}
	}
}

func TestUniqueIDsBounded(t *testing.T) {
	u := newUniqueIDs(3)
	for _, id := range []string{"a", "b", "c"} {
		if !u.firstTime(id) {
			t.Fatalf("%s: first time reported as duplicate", id)
		}
	}
	if u.firstTime("b") {
		t.Error("b: duplicate reported as new")
	}
	u.firstTime("d") // evicts a
	if !u.firstTime("a") {
		t.Error("a: should have been forgotten after 3 newer ids")
	}
	if len(u.seen) != 3 {
		t.Errorf("remembers %d ids, want at most 3", len(u.seen))
	}
	if !u.firstTime("") || !u.firstTime("") {
		t.Error("an empty id is never a duplicate")
	}
}

func TestTimeoutPolicy(t *testing.T) {
	p := NewTimeoutPolicy(60*time.Second, 600*time.Second)
	steps := []struct {
		method    string
		wantFirst time.Duration
		wantNext  time.Duration
	}{
		{"report_state", 60 * time.Second, 120 * time.Second},
		{"report_state", 120 * time.Second, 240 * time.Second},
		{"report_state", 240 * time.Second, 480 * time.Second},
		{"report_state", 480 * time.Second, 600 * time.Second},
		{"report_state", 600 * time.Second, 600 * time.Second},
		{"tunnel_sync", 60 * time.Second, 120 * time.Second}, // methods are independent
	}
	for i, s := range steps {
		if got := p.Timeout(s.method); got != s.wantFirst {
			t.Errorf("step %d: Timeout(%s) = %s, want %s", i, s.method, got, s.wantFirst)
		}
		if got := p.TimedOut(s.method, s.wantFirst); got != s.wantNext {
			t.Errorf("step %d: TimedOut(%s) = %s, want %s", i, s.method, got, s.wantNext)
		}
		if w := p.Wait(s.method); w < 0 || w >= 60*time.Second {
			t.Errorf("step %d: Wait = %s, want in [0, rpc_response_timeout)", i, w)
		}
	}
	// A shorter timeout that ran out (a caller's own deadline) never lowers the method's.
	if got := p.TimedOut("report_state", time.Second); got != 600*time.Second {
		t.Errorf("TimedOut with a short timeout lowered the method's to %s", got)
	}
}

func assertSameJSON(t *testing.T, got json.RawMessage, want string) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("got invalid JSON %s: %v", got, err)
	}
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("want invalid JSON %s: %v", want, err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("JSON differs:\n got %s\nwant %s", got, want)
	}
}

func TestVersionCompatible(t *testing.T) {
	tests := []struct {
		endpoint, requested string
		want                bool
	}{
		{"1.9", "1.5", true},  // ml2 RpcCallbacks 1.9 serves get_devices_details_list_and_failed_devices 1.5
		{"1.9", "1.9", true},  //
		{"1.4", "1.5", false}, // minor too new
		{"1.2", "2.0", false}, // other major
		{"2.0", "1.0", false},
		{"1.0", "", true}, // no version = 1.0
		{"1.1", "1", true},
		{"1.x", "1.0", false},
		{"1.0", "one", false},
	}
	for _, tt := range tests {
		if got := VersionCompatible(tt.endpoint, tt.requested); got != tt.want {
			t.Errorf("VersionCompatible(%q, %q) = %v, want %v", tt.endpoint, tt.requested, got, tt.want)
		}
	}
}
