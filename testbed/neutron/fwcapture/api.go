package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// api is the part of Neutron's REST API the harness's client does not cover (security
// groups and their rules, address groups, ports with allowed address pairs, extensions), in
// the same noauth style: no token, the project in every create request's body.
type api struct {
	base    string
	project string
	hc      *http.Client
}

func newAPI(c *neutron.Client, project string) *api {
	return &api{base: strings.TrimSuffix(c.BaseURL, "/"), project: project, hc: &http.Client{Timeout: 60 * time.Second}}
}

// do sends body (if not nil) as JSON and decodes a JSON answer into out (if not nil).
func (a *api) do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("neutron API %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return fmt.Errorf("neutron API %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := a.hc.Do(req)
	if err != nil {
		return fmt.Errorf("neutron API %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("neutron API %s %s: read answer: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("neutron API %s %s: HTTP %d: %s", method, path, resp.StatusCode, strings.TrimSpace(string(data)))
	}
	if out == nil || len(data) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("neutron API %s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// hasExtension reports whether the server lists the API extension alias.
func (a *api) hasExtension(ctx context.Context, alias string) (bool, error) {
	var out struct {
		Extensions []struct {
			Alias string `json:"alias"`
		} `json:"extensions"`
	}
	if err := a.do(ctx, http.MethodGet, "/extensions", nil, &out); err != nil {
		return false, err
	}
	for _, e := range out.Extensions {
		if e.Alias == alias {
			return true, nil
		}
	}
	return false, nil
}

// secGroup is a security group as the API shows it.
type secGroup struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Stateful *bool    `json:"stateful"`
	Rules    []sgRule `json:"security_group_rules"`
}

// sgRule is a security group rule as the API shows it (null attributes are nil).
type sgRule struct {
	ID                   string  `json:"id,omitempty"`
	SecurityGroupID      string  `json:"security_group_id,omitempty"`
	Direction            string  `json:"direction"`
	EtherType            string  `json:"ethertype,omitempty"`
	Protocol             *string `json:"protocol,omitempty"`
	PortRangeMin         *int    `json:"port_range_min,omitempty"`
	PortRangeMax         *int    `json:"port_range_max,omitempty"`
	RemoteIPPrefix       *string `json:"remote_ip_prefix,omitempty"`
	RemoteGroupID        *string `json:"remote_group_id,omitempty"`
	RemoteAddressGroupID *string `json:"remote_address_group_id,omitempty"`
	ProjectID            string  `json:"project_id,omitempty"`
}

// createGroup creates a security group (Neutron adds its default egress rules); stateful
// nil leaves the server's default (stateful).
func (a *api) createGroup(ctx context.Context, name string, stateful *bool) (*secGroup, error) {
	body := map[string]any{"name": name, "project_id": a.project}
	if stateful != nil {
		body["stateful"] = *stateful
	}
	var out struct {
		SecurityGroup secGroup `json:"security_group"`
	}
	if err := a.do(ctx, http.MethodPost, "/security-groups", map[string]any{"security_group": body}, &out); err != nil {
		return nil, err
	}
	return &out.SecurityGroup, nil
}

// addRule adds a rule to a group.
func (a *api) addRule(ctx context.Context, group string, r sgRule) error {
	r.SecurityGroupID, r.ProjectID = group, a.project
	return a.do(ctx, http.MethodPost, "/security-group-rules", map[string]any{"security_group_rule": r}, nil)
}

// getGroup reads a group with its rules.
func (a *api) getGroup(ctx context.Context, id string) (*secGroup, error) {
	var out struct {
		SecurityGroup secGroup `json:"security_group"`
	}
	if err := a.do(ctx, http.MethodGet, "/security-groups/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out.SecurityGroup, nil
}

// defaultGroup returns the project's default group (the server makes it when it first
// sees the project).
func (a *api) defaultGroup(ctx context.Context) (*secGroup, error) {
	q := url.Values{"project_id": {a.project}, "name": {"default"}}
	var out struct {
		SecurityGroups []secGroup `json:"security_groups"`
	}
	if err := a.do(ctx, http.MethodGet, "/security-groups?"+q.Encode(), nil, &out); err != nil {
		return nil, err
	}
	if len(out.SecurityGroups) != 1 {
		return nil, fmt.Errorf("project %s has %d default security groups", a.project, len(out.SecurityGroups))
	}
	return &out.SecurityGroups[0], nil
}

// addrGroup is an address group.
type addrGroup struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

func (a *api) createAddressGroup(ctx context.Context, name string, addrs []string) (*addrGroup, error) {
	var out struct {
		AddressGroup addrGroup `json:"address_group"`
	}
	body := map[string]any{"name": name, "addresses": addrs, "project_id": a.project}
	if err := a.do(ctx, http.MethodPost, "/address-groups", map[string]any{"address_group": body}, &out); err != nil {
		return nil, err
	}
	return &out.AddressGroup, nil
}

// addressPair is one of a port's allowed_address_pairs.
type addressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address,omitempty"`
}

// port is a Neutron port with the attributes the harness's Port lacks.
type port struct {
	neutron.Port
	AllowedAddressPairs []addressPair `json:"allowed_address_pairs"`
}

// portRequest creates a port: the harness's request plus allowed address pairs.
type portRequest struct {
	neutron.PortRequest
	AllowedAddressPairs []addressPair `json:"allowed_address_pairs,omitempty"`
}

func (a *api) createPort(ctx context.Context, r portRequest) (*port, error) {
	if r.ProjectID == "" {
		r.ProjectID = a.project
	}
	var out struct {
		Port port `json:"port"`
	}
	if err := a.do(ctx, http.MethodPost, "/ports", map[string]any{"port": r}, &out); err != nil {
		return nil, err
	}
	return &out.Port, nil
}

func (a *api) getPort(ctx context.Context, id string) (*port, error) {
	var out struct {
		Port port `json:"port"`
	}
	if err := a.do(ctx, http.MethodGet, "/ports/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out.Port, nil
}
