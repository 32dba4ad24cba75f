package unixctl

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeDaemon listens on a unix socket in a temporary directory and answers each request
// with answer(request); a nil reply leaves the client waiting.
func fakeDaemon(t *testing.T, answer func(req map[string]any) any) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ovs-vswitchd.42.ctl")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer conn.Close()
				var req map[string]any
				if err := json.NewDecoder(conn).Decode(&req); err != nil {
					return
				}
				r := answer(req)
				if r == nil {
					_, _ = conn.Read(make([]byte, 1)) // hold the connection until the client goes
					return
				}
				_ = json.NewEncoder(conn).Encode(r)
			}()
		}
	}()
	return path
}

func TestCall(t *testing.T) {
	var got map[string]any
	path := fakeDaemon(t, func(req map[string]any) any {
		got = req
		switch req["method"] {
		case "ofproto/trace":
			return map[string]any{"result": "Flow: ...\nDatapath actions: drop\n", "error": nil, "id": req["id"]}
		case "silent":
			return nil
		default:
			return map[string]any{"result": nil, "error": "\"" + req["method"].(string) + "\" is not a valid command\n", "id": req["id"]}
		}
	})
	tests := []struct {
		name, method string
		args         []string
		want         string
		wantErr      string
		commandError bool
	}{
		{name: "result", method: "ofproto/trace", args: []string{"br-int", "in_port=1"}, want: "Flow: ...\nDatapath actions: drop\n"},
		{name: "no arguments", method: "ofproto/trace", want: "Flow: ...\nDatapath actions: drop\n"},
		{name: "daemon's error", method: "nonsense", wantErr: `nonsense: "nonsense" is not a valid command`, commandError: true},
		{name: "no answer within the deadline", method: "silent", wantErr: "deadline exceeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			out, err := New(path).Call(ctx, tt.method, tt.args...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				var ce *CommandError
				if errors.As(err, &ce) != tt.commandError {
					t.Errorf("err %v: a *CommandError = %v, want %v", err, !tt.commandError, tt.commandError)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if out != tt.want {
				t.Errorf("result %q, want %q", out, tt.want)
			}
			params, _ := got["params"].([]any)
			if got["method"] != tt.method || len(params) != len(tt.args) || got["id"] != float64(0) {
				t.Errorf("request %v, want method %s, params %v, id 0", got, tt.method, tt.args)
			}
		})
	}
}

func TestCallNoSocket(t *testing.T) {
	_, err := New(filepath.Join(t.TempDir(), "none.ctl")).Call(context.Background(), "version")
	if err == nil || !strings.Contains(err.Error(), "none.ctl") {
		t.Fatalf("err = %v, want one naming the socket", err)
	}
}

func TestFind(t *testing.T) {
	socketDir := func(t *testing.T, pidFile string) string {
		dir := t.TempDir()
		if pidFile != "" {
			if err := os.WriteFile(filepath.Join(dir, "ovs-vswitchd.pid"), []byte(pidFile), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		l, err := net.Listen("unix", filepath.Join(dir, "ovs-vswitchd.42.ctl"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return dir
	}
	tests := []struct {
		name, pidFile string
		wantErr       string
		noDaemon      bool
	}{
		{name: "pid file names the socket", pidFile: "42\n"},
		{name: "no pid file", wantErr: "no ovs-vswitchd.pid in", noDaemon: true},
		{name: "stale pid", pidFile: "43\n", wantErr: "no ovs-vswitchd.43.ctl in", noDaemon: true},
		{name: "garbage", pidFile: "hello", wantErr: `holds "hello", not a pid`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := socketDir(t, tt.pidFile)
			sock, err := Find(dir, "ovs-vswitchd")
			if tt.wantErr == "" {
				if err != nil || sock != filepath.Join(dir, "ovs-vswitchd.42.ctl") {
					t.Fatalf("Find = %q, %v; want the socket of pid 42", sock, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
			if errors.Is(err, ErrNoDaemon) != tt.noDaemon {
				t.Errorf("errors.Is(err, ErrNoDaemon) = %v, want %v", !tt.noDaemon, tt.noDaemon)
			}
		})
	}
}
