package neutron

import (
	"context"
	"net/http"
	"net/url"
)

// SetQuotas sets quotas of the client's project (PUT /quotas/PROJECT, an admin request,
// which noauth requests are), e.g. {"security_group_rule": -1, "port": -1}; -1 is
// unlimited. Neutron's defaults (100 security group rules, 10 groups, 500 ports per
// project) are below what a scale test of one project needs.
func (c *Client) SetQuotas(ctx context.Context, quotas map[string]int) error {
	return c.do(ctx, http.MethodPut, "/quotas/"+url.PathEscape(c.project()), map[string]any{"quota": quotas}, nil)
}
