package agentapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// ErrNoAgent is what every client error means when no agent serves the socket (no socket
// file, or nothing listening on it): commands that can work without the agent test for it
// with errors.Is and go on without.
var ErrNoAgent = errors.New("no agent API")

// NoAgentError says that no agent serves the API socket at Path.
type NoAgentError struct {
	Path string
	Err  error
}

func (e *NoAgentError) Error() string {
	return fmt.Sprintf("no agent API at %s (is dvrflow-agent running with api_socket?)", e.Path)
}

// Is makes errors.Is(err, ErrNoAgent) true.
func (e *NoAgentError) Is(target error) bool { return target == ErrNoAgent }

func (e *NoAgentError) Unwrap() error { return e.Err }

// Client reads the API of the agent serving a unix socket.
type Client struct {
	socket string
	http   *http.Client
}

// DefaultTimeout bounds one request of a Client.
const DefaultTimeout = 30 * time.Second

// NewClient returns a client of the agent API at the unix socket path socket.
func NewClient(socket string) *Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	return &Client{socket: socket, http: &http.Client{
		Timeout: DefaultTimeout,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return dialer.DialContext(ctx, "unix", socket)
			},
			DisableKeepAlives: true,
		},
	}}
}

// Socket is the path the client reads from.
func (c *Client) Socket() string { return c.socket }

// Status reads /v1/status.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var s Status
	if err := c.get(ctx, StatusPath, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// DesiredFlows reads /v1/desired-flows: the given bridges' desired flows, or every
// bridge's without any.
func (c *Client) DesiredFlows(ctx context.Context, bridges ...string) (*DesiredFlows, error) {
	q := url.Values{}
	for _, br := range bridges {
		q.Add("bridge", br)
	}
	var d DesiredFlows
	if err := c.get(ctx, DesiredFlowsPath, q, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// get reads one document into v.
func (c *Client) get(ctx context.Context, path string, query url.Values, v any) error {
	u := url.URL{Scheme: "http", Host: "dvrflow-agent", Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("agent API %s: %w", path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.dialError(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("agent API at %s: %s: %w", c.socket, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		var e errorDocument
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = resp.Status
		}
		return fmt.Errorf("agent API at %s: %s: %s", c.socket, path, e.Error)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("agent API at %s: %s: decode: %w", c.socket, path, err)
	}
	return nil
}

// dialError explains a failed request: no agent, no permission, or something else.
func (c *Client) dialError(err error) error {
	switch {
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ENOTSOCK):
		return &NoAgentError{Path: c.socket, Err: err}
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("agent API at %s: permission denied (the socket is readable by the agent's user only: run as that user, usually root)", c.socket)
	}
	return fmt.Errorf("agent API at %s: %w", c.socket, err)
}
