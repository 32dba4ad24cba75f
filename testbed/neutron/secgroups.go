package neutron

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// SecurityGroup is a security group as the API shows it.
type SecurityGroup struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Stateful is nil when the server lacks the stateful-security-group extension.
	Stateful *bool               `json:"stateful"`
	Rules    []SecurityGroupRule `json:"security_group_rules"`
}

// SecurityGroupRule is a security group rule as the API shows it (null attributes are nil),
// and the body that creates one.
type SecurityGroupRule struct {
	ID              string `json:"id,omitempty"`
	SecurityGroupID string `json:"security_group_id,omitempty"`
	// Direction is "ingress" or "egress"; EtherType "IPv4" or "IPv6".
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

// AddressGroup is an address group (extension address-group).
type AddressGroup struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Addresses []string `json:"addresses"`
}

// AddressPair is one of a port's allowed_address_pairs; IPAddress may be a CIDR, and an
// empty MACAddress means the port's own.
type AddressPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address,omitempty"`
}

// CreateSecurityGroup creates a security group in the client's project (Neutron adds its
// default egress rules); stateful nil leaves the server's default (stateful).
func (c *Client) CreateSecurityGroup(ctx context.Context, name string, stateful *bool) (*SecurityGroup, error) {
	body := map[string]any{"name": name, "project_id": c.project()}
	if stateful != nil {
		body["stateful"] = *stateful
	}
	var out struct {
		SecurityGroup SecurityGroup `json:"security_group"`
	}
	if err := c.do(ctx, http.MethodPost, "/security-groups", map[string]any{"security_group": body}, &out); err != nil {
		return nil, err
	}
	return &out.SecurityGroup, nil
}

// AddSecurityGroupRule adds the rule to group, in the client's project.
func (c *Client) AddSecurityGroupRule(ctx context.Context, group string, r SecurityGroupRule) error {
	r.SecurityGroupID, r.ProjectID = group, c.project()
	return c.do(ctx, http.MethodPost, "/security-group-rules", map[string]any{"security_group_rule": r}, nil)
}

// GetSecurityGroup reads a security group with its rules.
func (c *Client) GetSecurityGroup(ctx context.Context, id string) (*SecurityGroup, error) {
	var out struct {
		SecurityGroup SecurityGroup `json:"security_group"`
	}
	if err := c.do(ctx, http.MethodGet, "/security-groups/"+url.PathEscape(id), nil, &out); err != nil {
		return nil, err
	}
	return &out.SecurityGroup, nil
}

// DefaultSecurityGroup returns the client's project's default security group (the server
// makes it when it first sees the project).
func (c *Client) DefaultSecurityGroup(ctx context.Context) (*SecurityGroup, error) {
	q := url.Values{"project_id": {c.project()}, "name": {"default"}}
	var out struct {
		SecurityGroups []SecurityGroup `json:"security_groups"`
	}
	if err := c.do(ctx, http.MethodGet, "/security-groups"+query(q), nil, &out); err != nil {
		return nil, err
	}
	if len(out.SecurityGroups) != 1 {
		return nil, fmt.Errorf("project %s has %d default security groups", c.project(), len(out.SecurityGroups))
	}
	return &out.SecurityGroups[0], nil
}

// CreateAddressGroup creates an address group of the addresses (CIDRs) in the client's
// project.
func (c *Client) CreateAddressGroup(ctx context.Context, name string, addrs []string) (*AddressGroup, error) {
	body := map[string]any{"name": name, "addresses": addrs, "project_id": c.project()}
	var out struct {
		AddressGroup AddressGroup `json:"address_group"`
	}
	if err := c.do(ctx, http.MethodPost, "/address-groups", map[string]any{"address_group": body}, &out); err != nil {
		return nil, err
	}
	return &out.AddressGroup, nil
}

// HasExtension reports whether the server lists the API extension alias (e.g.
// "address-group", "stateful-security-group").
func (c *Client) HasExtension(ctx context.Context, alias string) (bool, error) {
	var out struct {
		Extensions []struct {
			Alias string `json:"alias"`
		} `json:"extensions"`
	}
	if err := c.do(ctx, http.MethodGet, "/extensions", nil, &out); err != nil {
		return false, err
	}
	for _, e := range out.Extensions {
		if e.Alias == alias {
			return true, nil
		}
	}
	return false, nil
}

// CreateSecurityGroupRule adds the rule to group, in the client's project, and returns it as
// the server stored it (with its id).
func (c *Client) CreateSecurityGroupRule(ctx context.Context, group string, r SecurityGroupRule) (*SecurityGroupRule, error) {
	r.SecurityGroupID, r.ProjectID = group, c.project()
	var out struct {
		SecurityGroupRule SecurityGroupRule `json:"security_group_rule"`
	}
	if err := c.do(ctx, http.MethodPost, "/security-group-rules", map[string]any{"security_group_rule": r}, &out); err != nil {
		return nil, err
	}
	return &out.SecurityGroupRule, nil
}

// DeleteSecurityGroupRule deletes a security group rule.
func (c *Client) DeleteSecurityGroupRule(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/security-group-rules/"+url.PathEscape(id), nil, nil)
}

// AddAddressGroupAddresses adds addresses (CIDRs) to an address group
// (PUT /address-groups/ID/add_addresses) and returns the group as it is then.
func (c *Client) AddAddressGroupAddresses(ctx context.Context, id string, addrs []string) (*AddressGroup, error) {
	var out struct {
		AddressGroup AddressGroup `json:"address_group"`
	}
	if err := c.do(ctx, http.MethodPut, "/address-groups/"+url.PathEscape(id)+"/add_addresses", map[string]any{"addresses": addrs}, &out); err != nil {
		return nil, err
	}
	return &out.AddressGroup, nil
}
