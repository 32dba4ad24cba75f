package neutron

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client talks to neutron-server's REST API in noauth mode: no token and no
// X-Project-Id/X-Roles headers (with them the API answers 400), and the project in every
// request body. Requests then run with an admin context, which may set binding:host_id.
type Client struct {
	// BaseURL is the API root, e.g. http://127.0.0.1:19696/v2.0.
	BaseURL string
	// ProjectID goes into the body of every create request ("demo" when empty).
	ProjectID string
	// HTTP is the HTTP client (a 30 s timeout when nil).
	HTTP *http.Client
}

// APIError is a failed API request: the HTTP status and Neutron's fault.
type APIError struct {
	Method, Path string
	Status       int
	// Type and Message are Neutron's NeutronError type and message (e.g. "NetworkNotFound",
	// "Network 1234 could not be found."); Message is the raw body when it is not a fault.
	Type, Message string
}

func (e *APIError) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("neutron API %s %s: HTTP %d %s: %s", e.Method, e.Path, e.Status, e.Type, e.Message)
	}
	return fmt.Sprintf("neutron API %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.Message)
}

// IsNotFound reports whether err is an API error with HTTP status 404.
func IsNotFound(err error) bool {
	var e *APIError
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

func (c *Client) project() string {
	if c.ProjectID == "" {
		return "demo"
	}
	return c.ProjectID
}

// do sends body (if not nil) as JSON and decodes a JSON answer into out (if not nil).
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("neutron API %s %s: encode request: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(c.BaseURL, "/")+path, rd)
	if err != nil {
		return fmt.Errorf("neutron API %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("neutron API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("neutron API %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return apiError(method, path, resp.StatusCode, data)
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("neutron API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// apiError decodes Neutron's fault body {"NeutronError": {"type", "message", "detail"}}.
func apiError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Method: method, Path: path, Status: status}
	var fault struct {
		NeutronError *struct {
			Type    string `json:"type"`
			Message string `json:"message"`
			Detail  string `json:"detail"`
		} `json:"NeutronError"`
	}
	if json.Unmarshal(body, &fault) == nil && fault.NeutronError != nil {
		e.Type, e.Message = fault.NeutronError.Type, fault.NeutronError.Message
		if d := fault.NeutronError.Detail; d != "" {
			e.Message += " (" + d + ")"
		}
		return e
	}
	e.Message = strings.TrimSpace(string(body))
	if len(e.Message) > 500 {
		e.Message = e.Message[:500] + "…"
	}
	return e
}

// Network is a Neutron network as the API shows it.
type Network struct {
	ID              string   `json:"id"`
	Name            string   `json:"name"`
	ProjectID       string   `json:"project_id"`
	Status          string   `json:"status"`
	AdminStateUp    bool     `json:"admin_state_up"`
	MTU             int      `json:"mtu"`
	Subnets         []string `json:"subnets"`
	NetworkType     string   `json:"provider:network_type"`
	PhysicalNetwork string   `json:"provider:physical_network"`
	SegmentationID  *int     `json:"provider:segmentation_id"`
	RouterExternal  bool     `json:"router:external"`
}

// NetworkRequest creates a network. Without provider attributes the network is a tenant
// network of the first tenant_network_types (vxlan in the test bed).
type NetworkRequest struct {
	Name string `json:"name,omitempty"`
	// NetworkType is "flat", "vlan" or "vxlan" (provider:network_type).
	NetworkType     string `json:"provider:network_type,omitempty"`
	PhysicalNetwork string `json:"provider:physical_network,omitempty"`
	SegmentationID  int    `json:"provider:segmentation_id,omitempty"`
	RouterExternal  bool   `json:"router:external,omitempty"`
	MTU             int    `json:"mtu,omitempty"`
	ProjectID       string `json:"project_id,omitempty"`
}

// Subnet is a Neutron subnet.
type Subnet struct {
	ID              string           `json:"id"`
	Name            string           `json:"name"`
	NetworkID       string           `json:"network_id"`
	IPVersion       int              `json:"ip_version"`
	CIDR            string           `json:"cidr"`
	GatewayIP       string           `json:"gateway_ip"`
	EnableDHCP      bool             `json:"enable_dhcp"`
	AllocationPools []AllocationPool `json:"allocation_pools"`
}

// AllocationPool is a range of addresses Neutron hands out.
type AllocationPool struct {
	Start string `json:"start"`
	End   string `json:"end"`
}

// SubnetRequest creates a subnet; IPVersion defaults to 4.
type SubnetRequest struct {
	Name       string `json:"name,omitempty"`
	NetworkID  string `json:"network_id"`
	IPVersion  int    `json:"ip_version"`
	CIDR       string `json:"cidr"`
	GatewayIP  string `json:"gateway_ip,omitempty"`
	EnableDHCP *bool  `json:"enable_dhcp,omitempty"`
	ProjectID  string `json:"project_id,omitempty"`
}

// Port is a Neutron port with its binding.
type Port struct {
	ID             string         `json:"id"`
	Name           string         `json:"name"`
	NetworkID      string         `json:"network_id"`
	MACAddress     string         `json:"mac_address"`
	FixedIPs       []FixedIP      `json:"fixed_ips"`
	DeviceOwner    string         `json:"device_owner"`
	DeviceID       string         `json:"device_id"`
	Status         string         `json:"status"`
	AdminStateUp   bool           `json:"admin_state_up"`
	SecurityGroups []string       `json:"security_groups"`
	PortSecurity   *bool          `json:"port_security_enabled"`
	HostID         string         `json:"binding:host_id"`
	VIFType        string         `json:"binding:vif_type"`
	VIFDetails     map[string]any `json:"binding:vif_details"`
	VNICType       string         `json:"binding:vnic_type"`
	// AllowedAddressPairs are the other addresses (and MACs) the port may send from.
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
}

// FixedIP is one address of a port.
type FixedIP struct {
	SubnetID  string `json:"subnet_id,omitempty"`
	IPAddress string `json:"ip_address,omitempty"`
}

// PortRequest creates a port. A compute port is DeviceOwner "compute:nova" with the VM's
// id as DeviceID; HostID binds it to an agent host at once.
type PortRequest struct {
	Name           string    `json:"name,omitempty"`
	NetworkID      string    `json:"network_id"`
	FixedIPs       []FixedIP `json:"fixed_ips,omitempty"`
	MACAddress     string    `json:"mac_address,omitempty"`
	DeviceOwner    string    `json:"device_owner,omitempty"`
	DeviceID       string    `json:"device_id,omitempty"`
	HostID         string    `json:"binding:host_id,omitempty"`
	PortSecurity   *bool     `json:"port_security_enabled,omitempty"`
	SecurityGroups *[]string `json:"security_groups,omitempty"`
	ProjectID      string    `json:"project_id,omitempty"`
	// AllowedAddressPairs are other addresses (and MACs) the port may send from.
	AllowedAddressPairs []AddressPair `json:"allowed_address_pairs,omitempty"`
}

// PortUpdate changes a port; nil fields stay as they are.
type PortUpdate struct {
	Name         *string `json:"name,omitempty"`
	AdminStateUp *bool   `json:"admin_state_up,omitempty"`
	HostID       *string `json:"binding:host_id,omitempty"`
	DeviceOwner  *string `json:"device_owner,omitempty"`
	DeviceID     *string `json:"device_id,omitempty"`
	// SecurityGroups replaces the port's groups (an empty list: none).
	SecurityGroups *[]string `json:"security_groups,omitempty"`
}

// Router is a Neutron router.
type Router struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Status       string `json:"status"`
	AdminStateUp bool   `json:"admin_state_up"`
	Distributed  bool   `json:"distributed"`
	HA           bool   `json:"ha"`
}

// RouterRequest creates a router; Distributed is sent as given (the test bed's default
// router_distributed = True makes routers distributed anyway).
type RouterRequest struct {
	Name        string `json:"name,omitempty"`
	Distributed bool   `json:"distributed"`
	ProjectID   string `json:"project_id,omitempty"`
}

// RouterInterface is the answer to add_router_interface.
type RouterInterface struct {
	RouterID  string   `json:"id"`
	SubnetID  string   `json:"subnet_id"`
	SubnetIDs []string `json:"subnet_ids"`
	PortID    string   `json:"port_id"`
	NetworkID string   `json:"network_id"`
}

// Agent is an entry of the agents list.
type Agent struct {
	ID                 string         `json:"id"`
	AgentType          string         `json:"agent_type"`
	Binary             string         `json:"binary"`
	Host               string         `json:"host"`
	Topic              string         `json:"topic"`
	Alive              bool           `json:"alive"`
	AdminStateUp       bool           `json:"admin_state_up"`
	StartedAt          string         `json:"started_at"`
	HeartbeatTimestamp string         `json:"heartbeat_timestamp"`
	Configurations     map[string]any `json:"configurations"`
}

// Agent types as neutron-server lists them.
const (
	AgentTypeOVS = "Open vSwitch agent"
	AgentTypeL3  = "L3 agent"
)

// StartedAtTime parses StartedAt (UTC).
func (a Agent) StartedAtTime() (time.Time, error) { return parseAgentTime(a.StartedAt) }

// HeartbeatTime parses HeartbeatTimestamp (UTC): the agent's last report_state.
func (a Agent) HeartbeatTime() (time.Time, error) { return parseAgentTime(a.HeartbeatTimestamp) }

// CreateNetwork creates a network.
func (c *Client) CreateNetwork(ctx context.Context, r NetworkRequest) (*Network, error) {
	if r.ProjectID == "" {
		r.ProjectID = c.project()
	}
	var out struct{ Network Network }
	if err := c.do(ctx, http.MethodPost, "/networks", map[string]any{"network": r}, &out); err != nil {
		return nil, err
	}
	return &out.Network, nil
}

// GetNetwork reads a network.
func (c *Client) GetNetwork(ctx context.Context, id string) (*Network, error) {
	var out struct{ Network Network }
	if err := c.do(ctx, http.MethodGet, "/networks/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out.Network, nil
}

// DeleteNetwork deletes a network.
func (c *Client) DeleteNetwork(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/networks/"+url.PathEscape(id), nil, nil)
}

// CreateSubnet creates a subnet.
func (c *Client) CreateSubnet(ctx context.Context, r SubnetRequest) (*Subnet, error) {
	if r.ProjectID == "" {
		r.ProjectID = c.project()
	}
	if r.IPVersion == 0 {
		r.IPVersion = 4
	}
	var out struct{ Subnet Subnet }
	if err := c.do(ctx, http.MethodPost, "/subnets", map[string]any{"subnet": r}, &out); err != nil {
		return nil, err
	}
	return &out.Subnet, nil
}

// DeleteSubnet deletes a subnet.
func (c *Client) DeleteSubnet(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/subnets/"+url.PathEscape(id), nil, nil)
}

// CreatePort creates a port.
func (c *Client) CreatePort(ctx context.Context, r PortRequest) (*Port, error) {
	if r.ProjectID == "" {
		r.ProjectID = c.project()
	}
	var out struct{ Port Port }
	if err := c.do(ctx, http.MethodPost, "/ports", map[string]any{"port": r}, &out); err != nil {
		return nil, err
	}
	return &out.Port, nil
}

// GetPort reads a port.
func (c *Client) GetPort(ctx context.Context, id string) (*Port, error) {
	var out struct{ Port Port }
	if err := c.do(ctx, http.MethodGet, "/ports/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out.Port, nil
}

// ListPorts lists ports; filter holds API query parameters such as network_id,
// device_owner or binding:host_id.
func (c *Client) ListPorts(ctx context.Context, filter url.Values) ([]Port, error) {
	var out struct{ Ports []Port }
	if err := c.do(ctx, http.MethodGet, "/ports"+query(filter), nil, &out); err != nil {
		return nil, err
	}
	return out.Ports, nil
}

// UpdatePort changes a port.
func (c *Client) UpdatePort(ctx context.Context, id string, u PortUpdate) (*Port, error) {
	var out struct{ Port Port }
	if err := c.do(ctx, http.MethodPut, "/ports/"+url.PathEscape(id), map[string]any{"port": u}, &out); err != nil {
		return nil, err
	}
	return &out.Port, nil
}

// DeletePort deletes a port.
func (c *Client) DeletePort(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/ports/"+url.PathEscape(id), nil, nil)
}

// CreateRouter creates a router.
func (c *Client) CreateRouter(ctx context.Context, r RouterRequest) (*Router, error) {
	if r.ProjectID == "" {
		r.ProjectID = c.project()
	}
	var out struct{ Router Router }
	if err := c.do(ctx, http.MethodPost, "/routers", map[string]any{"router": r}, &out); err != nil {
		return nil, err
	}
	return &out.Router, nil
}

// DeleteRouter deletes a router (its interfaces must be gone).
func (c *Client) DeleteRouter(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/routers/"+url.PathEscape(id), nil, nil)
}

// AddRouterInterface gives the router an interface on the subnet (at the subnet's gateway
// address); for a distributed router its port is network:router_interface_distributed.
func (c *Client) AddRouterInterface(ctx context.Context, routerID, subnetID string) (*RouterInterface, error) {
	var out RouterInterface
	path := "/routers/" + url.PathEscape(routerID) + "/add_router_interface"
	if err := c.do(ctx, http.MethodPut, path, map[string]string{"subnet_id": subnetID}, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// RemoveRouterInterface removes the router's interface on the subnet.
func (c *Client) RemoveRouterInterface(ctx context.Context, routerID, subnetID string) error {
	path := "/routers/" + url.PathEscape(routerID) + "/remove_router_interface"
	return c.do(ctx, http.MethodPut, path, map[string]string{"subnet_id": subnetID}, nil)
}

// ListAgents lists the agents neutron-server knows; host and agentType filter when not
// empty.
func (c *Client) ListAgents(ctx context.Context, host, agentType string) ([]Agent, error) {
	q := url.Values{}
	if host != "" {
		q.Set("host", host)
	}
	if agentType != "" {
		q.Set("agent_type", agentType)
	}
	var out struct{ Agents []Agent }
	if err := c.do(ctx, http.MethodGet, "/agents"+query(q), nil, &out); err != nil {
		return nil, err
	}
	return out.Agents, nil
}

// WaitPortStatus polls the port every 100 ms until its status is want, and returns it
// then. The error on timeout (ctx) names the last status seen.
func (c *Client) WaitPortStatus(ctx context.Context, id, want string) (*Port, error) {
	last := "(not read)"
	for {
		p, err := c.GetPort(ctx, id)
		if err == nil && p.Status == want {
			return p, nil
		}
		if err == nil {
			last = p.Status
		} else if ctx.Err() == nil {
			last = err.Error()
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("port %s did not become %s (last status %s): %w", id, want, last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitAgentAlive polls the agents list until an agent of agentType on host is alive and
// was (re)started at or after since (to the second; zero means any start), and returns it.
func (c *Client) WaitAgentAlive(ctx context.Context, host, agentType string, since time.Time) (*Agent, error) {
	for {
		a, err := c.agentAlive(ctx, host, agentType, since, time.Time{})
		if err == nil {
			return a, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", err, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// agentAlive returns the agent of agentType on host if it is alive, was started at or after
// started and last reported at or after reported (zero times: any); the error says why not.
// Neutron keeps its times in whole seconds (UTC), so both are truncated to the second.
func (c *Client) agentAlive(ctx context.Context, host, agentType string, started, reported time.Time) (*Agent, error) {
	agents, err := c.ListAgents(ctx, host, agentType)
	if err != nil {
		return nil, err
	}
	started, reported = started.UTC().Truncate(time.Second), reported.UTC().Truncate(time.Second)
	why := "not listed"
	for _, a := range agents {
		s, serr := parseAgentTime(a.StartedAt)
		r, rerr := parseAgentTime(a.HeartbeatTimestamp)
		switch {
		case !a.Alive:
			why = "listed, not alive"
		case serr != nil:
			why = serr.Error()
		case rerr != nil:
			why = rerr.Error()
		case s.Before(started):
			why = "alive, but started at " + a.StartedAt + " (before " + started.Format(time.DateTime) + ")"
		case r.Before(reported):
			why = "alive, but last reported at " + a.HeartbeatTimestamp + " (before " + reported.Format(time.DateTime) + ")"
		default:
			return &a, nil
		}
	}
	return nil, fmt.Errorf("%s on %s: %s", agentType, host, why)
}

// parseAgentTime parses an agent time stamp as the API shows it (UTC, "2006-01-02 15:04:05").
func parseAgentTime(s string) (time.Time, error) {
	t, err := time.Parse(time.DateTime, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("agent time %q: %w", s, err)
	}
	return t, nil
}

func query(q url.Values) string {
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}
