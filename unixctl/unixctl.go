// Package unixctl is a client of the control socket every Open vSwitch daemon listens on
// (ovs-vswitchd.PID.ctl, ovsdb-server.PID.ctl): the protocol ovs-appctl speaks, JSON-RPC 1.0
// over a unix stream socket. A request is {"method": "ofproto/trace", "params": ["br-int",
// "in_port=1"], "id": N}; the reply is {"result": TEXT, "error": null, "id": N}, or an
// error with the daemon's text in "error". It only asks: what a command does is up to the
// caller.
package unixctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Client talks to one daemon's control socket; every Call is one connection, as
// ovs-appctl makes one per command.
type Client struct {
	// Path is the unix socket, e.g. /var/run/openvswitch/ovs-vswitchd.1234.ctl.
	Path string
}

// New returns a client of the control socket at path.
func New(path string) *Client { return &Client{Path: path} }

// CommandError is the daemon's refusal of a command: an unknown command, bad arguments, or
// the command's own failure ("br-x: unknown bridge"). Text is the daemon's message.
type CommandError struct {
	Method string
	Text   string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("%s: %s", e.Method, strings.TrimSpace(e.Text))
}

type request struct {
	Method string   `json:"method"`
	Params []string `json:"params"`
	ID     int      `json:"id"`
}

type reply struct {
	Result json.RawMessage `json:"result"`
	Error  json.RawMessage `json:"error"`
	ID     json.RawMessage `json:"id"`
}

// requestID is the id of every request: one request per connection.
const requestID = 0

// Call runs one command with its arguments and returns the daemon's text. The context's
// deadline and cancellation bound the whole exchange. A refusal is a *CommandError.
func (c *Client) Call(ctx context.Context, method string, args ...string) (string, error) {
	if args == nil {
		args = []string{}
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return "", fmt.Errorf("unixctl %s: %w", c.Path, err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		if err := conn.SetDeadline(deadline); err != nil {
			return "", fmt.Errorf("unixctl %s: %w", c.Path, err)
		}
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()

	if err := json.NewEncoder(conn).Encode(request{Method: method, Params: args, ID: requestID}); err != nil {
		return "", c.failed(ctx, method, "send", err)
	}
	var r reply
	if err := json.NewDecoder(conn).Decode(&r); err != nil {
		return "", c.failed(ctx, method, "read the reply", err)
	}
	if id := strings.TrimSpace(string(r.ID)); id != strconv.Itoa(requestID) {
		return "", fmt.Errorf("unixctl %s: %s: reply has id %s, want %d", c.Path, method, id, requestID)
	}
	if text, isErr := stringOrNull(r.Error); isErr {
		return "", &CommandError{Method: method, Text: text}
	}
	text, ok := stringOrNull(r.Result)
	if !ok {
		return "", fmt.Errorf("unixctl %s: %s: reply has neither a result nor an error", c.Path, method)
	}
	return text, nil
}

// failed wraps an I/O error, preferring the context's reason when it ended the exchange.
func (c *Client) failed(ctx context.Context, method, what string, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		err = ctxErr
	} else if errors.Is(err, os.ErrDeadlineExceeded) {
		err = context.DeadlineExceeded // the socket's deadline is the context's
	}
	return fmt.Errorf("unixctl %s: %s: %s: %w", c.Path, method, what, err)
}

// stringOrNull decodes a JSON string; ok is false for null or absent. A non-string value
// is returned as its JSON text.
func stringOrNull(raw json.RawMessage) (s string, ok bool) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", false
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw), true
	}
	return s, true
}

// ErrNoDaemon is wrapped by Find's errors when the daemon's pid file or socket is absent.
var ErrNoDaemon = errors.New("daemon not found")

// Find returns the control socket of program (e.g. "ovs-vswitchd") in rundir, found as
// Open vSwitch finds it: the pid in RUNDIR/PROGRAM.pid names RUNDIR/PROGRAM.PID.ctl.
func Find(rundir, program string) (string, error) {
	pidFile := filepath.Join(rundir, program+".pid")
	data, err := os.ReadFile(pidFile)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no %s.pid in %s: is %s running with --rundir %s? give --unixctl: %w", program, rundir, program, rundir, ErrNoDaemon)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", pidFile, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return "", fmt.Errorf("%s holds %q, not a pid", pidFile, strings.TrimSpace(string(data)))
	}
	sock := filepath.Join(rundir, program+"."+strconv.Itoa(pid)+".ctl")
	info, err := os.Stat(sock)
	if errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("no %s in %s: is %s (pid %d from %s) still running? give --unixctl: %w", filepath.Base(sock), rundir, program, pid, pidFile, ErrNoDaemon)
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w", sock, err)
	}
	if info.Mode()&os.ModeSocket == 0 {
		return "", fmt.Errorf("%s is not a socket", sock)
	}
	return sock, nil
}
