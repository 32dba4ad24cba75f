package neutron

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/neutron/oslo"
)

// Topics the agent calls (reference §3).
const (
	topicPlugin  = "q-plugin"
	topicReports = "q-reports-plugin"
)

// Identity of the agent as neutron-server knows it: the ML2 openvswitch mechanism driver
// binds ports only to a live agent of this type.
const (
	AgentType   = "Open vSwitch agent"
	AgentBinary = "neutron-openvswitch-agent"
)

// caller is the part of the oslo client the API needs (a fake in unit tests).
type caller interface {
	Call(ctx context.Context, target oslo.Target, method string, args any) (json.RawMessage, error)
}

// PluginAPI is the agent's calls to neutron-server, typed.
type PluginAPI struct {
	rpc     caller
	host    string
	agentID string
}

// NewPluginAPI returns the calls of the agent on host.
func NewPluginAPI(rpc caller, host string) *PluginAPI {
	return &PluginAPI{rpc: rpc, host: host, agentID: "ovs-agent-" + host}
}

func (a *PluginAPI) call(ctx context.Context, topic, version, method string, args any, result any) error {
	raw, err := a.rpc.Call(ctx, oslo.Target{Topic: topic, Version: version}, method, args)
	if err != nil {
		return err
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(raw, result); err != nil {
		return fmt.Errorf("%s: decode the reply %.200s: %w", method, raw, err)
	}
	return nil
}

// HasAliveNeutronServer asks whether a server answers (the agent loops on it at start).
func (a *PluginAPI) HasAliveNeutronServer(ctx context.Context) (bool, error) {
	var alive bool
	err := a.call(ctx, topicReports, "1.2", "has_alive_neutron_server", nil, &alive)
	return alive, err
}

// ReportState sends the agent's state; the server answers "new", "alive" or "revived"
// (revived: it had counted the agent dead, so the agent resynchronises everything).
func (a *PluginAPI) ReportState(ctx context.Context, state AgentState) (string, error) {
	args := map[string]any{
		"agent_state": map[string]any{"agent_state": state},
		"time":        time.Now().UTC().Format("2006-01-02T15:04:05.000000"),
	}
	var result *string
	if err := a.call(ctx, topicReports, "1.2", "report_state", args, &result); err != nil {
		return "", err
	}
	if result == nil {
		return "", nil
	}
	return *result, nil
}

// AgentState is report_state's agent_state (reference §3.3).
type AgentState struct {
	Binary           string            `json:"binary"`
	Host             string            `json:"host"`
	Topic            string            `json:"topic"`
	AgentType        string            `json:"agent_type"`
	StartFlag        bool              `json:"start_flag,omitempty"`
	UUID             string            `json:"uuid"`
	Configurations   map[string]any    `json:"configurations"`
	ResourceVersions map[string]string `json:"resource_versions,omitempty"`
}

// DVRMAC is one host's DVR MAC as the server sends it ("FA-16-3F-DB-70-56").
type DVRMAC struct {
	Host       string `json:"host"`
	MACAddress string `json:"mac_address"`
}

// GetDVRMACAddressByHost returns (and on first use makes) the host's DVR MAC.
func (a *PluginAPI) GetDVRMACAddressByHost(ctx context.Context) (DVRMAC, error) {
	var m DVRMAC
	err := a.call(ctx, topicPlugin, "1.0", "get_dvr_mac_address_by_host", map[string]any{"host": a.host}, &m)
	return m, err
}

// GetDVRMACAddressList returns every host's DVR MAC.
func (a *PluginAPI) GetDVRMACAddressList(ctx context.Context) ([]DVRMAC, error) {
	var ms []DVRMAC
	err := a.call(ctx, topicPlugin, "1.0", "get_dvr_mac_address_list", nil, &ms)
	return ms, err
}

// Tunnel is a tunnel endpoint tunnel_sync returns.
type Tunnel struct {
	Host      string `json:"host"`
	IPAddress string `json:"ip_address"`
	UDPPort   int    `json:"udp_port"`
}

// TunnelSync registers this host's endpoint for a tunnel type and returns every endpoint.
func (a *PluginAPI) TunnelSync(ctx context.Context, tunnelIP, tunnelType string) ([]Tunnel, error) {
	var r struct {
		Tunnels []Tunnel `json:"tunnels"`
	}
	err := a.call(ctx, topicPlugin, "1.4", "tunnel_sync",
		map[string]any{"tunnel_ip": tunnelIP, "tunnel_type": tunnelType, "host": a.host}, &r)
	return r.Tunnels, err
}

// DeviceDetails is one entry of get_devices_details_list_and_failed_devices (reference
// §3.2). A device the server knows nothing about for this host comes back with only Device
// set (and NoActiveBinding when it is bound elsewhere).
type DeviceDetails struct {
	Device              string      `json:"device"`
	PortID              string      `json:"port_id"`
	NetworkID           string      `json:"network_id"`
	MACAddress          string      `json:"mac_address"`
	AdminStateUp        *bool       `json:"admin_state_up"`
	NetworkType         string      `json:"network_type"`
	SegmentationID      *int64      `json:"segmentation_id"`
	PhysicalNetwork     *string     `json:"physical_network"`
	MTU                 int         `json:"mtu"`
	FixedIPs            []FixedIP   `json:"fixed_ips"`
	DeviceOwner         string      `json:"device_owner"`
	AllowedAddressPairs []AddrPair  `json:"allowed_address_pairs"`
	PortSecurityEnabled *bool       `json:"port_security_enabled"`
	NoActiveBinding     bool        `json:"no_active_binding"`
	Profile             interface{} `json:"profile"`
}

// Known reports whether the server gave details (not just the device id).
func (d *DeviceDetails) Known() bool { return d.PortID != "" && d.NetworkID != "" }

// FixedIP is a port's address on a subnet.
type FixedIP struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

// AddrPair is an allowed address pair.
type AddrPair struct {
	IPAddress  string `json:"ip_address"`
	MACAddress string `json:"mac_address"`
}

// GetDevicesDetails asks for the details of the devices (Neutron port ids) plugged here.
// Devices whose details failed on the server are returned apart.
func (a *PluginAPI) GetDevicesDetails(ctx context.Context, devices []string) (details []DeviceDetails, failed []string, err error) {
	var r struct {
		Devices       []DeviceDetails `json:"devices"`
		FailedDevices []string        `json:"failed_devices"`
	}
	err = a.call(ctx, topicPlugin, "1.5", "get_devices_details_list_and_failed_devices",
		map[string]any{"devices": devices, "agent_id": a.agentID, "host": a.host}, &r)
	return r.Devices, r.FailedDevices, err
}

// DeviceListResult is update_device_list's reply.
type DeviceListResult struct {
	DevicesUp         []string `json:"devices_up"`
	FailedDevicesUp   []string `json:"failed_devices_up"`
	DevicesDown       []any    `json:"devices_down"`
	FailedDevicesDown []string `json:"failed_devices_down"`
}

// UpdateDeviceList reports devices up (their flows are in place) and down (unplugged or
// dead); refreshTunnels asks l2pop to send this host the full FDB of the networks of the
// devices up (the first sync, and after ovs-vswitchd restarted).
func (a *PluginAPI) UpdateDeviceList(ctx context.Context, up, down []string, refreshTunnels bool) (DeviceListResult, error) {
	if up == nil {
		up = []string{}
	}
	if down == nil {
		down = []string{}
	}
	var r DeviceListResult
	err := a.call(ctx, topicPlugin, "1.9", "update_device_list", map[string]any{
		"devices_up": up, "devices_down": down, "agent_id": a.agentID, "host": a.host, "refresh_tunnels": refreshTunnels,
	}, &r)
	return r, err
}

// SubnetInfo is get_subnet_for_dvr's reply: the subnet and its gateway's MAC.
type SubnetInfo struct {
	ID         string  `json:"id"`
	CIDR       string  `json:"cidr"`
	GatewayIP  *string `json:"gateway_ip"`
	GatewayMAC *string `json:"gateway_mac"`
	IPVersion  int     `json:"ip_version"`
	NetworkID  string  `json:"network_id"`
}

// GetSubnetForDVR returns a subnet of a distributed router interface, with the MAC of its
// gateway (the router interface holding the fixed IPs given).
func (a *PluginAPI) GetSubnetForDVR(ctx context.Context, subnet string, fixedIPs []FixedIP) (SubnetInfo, error) {
	var s SubnetInfo
	err := a.call(ctx, topicPlugin, "1.0", "get_subnet_for_dvr", map[string]any{"subnet": subnet, "fixed_ips": fixedIPs}, &s)
	return s, err
}

// HostPort is an entry of get_ports_on_host_by_subnet.
type HostPort struct {
	ID          string `json:"id"`
	MACAddress  string `json:"mac_address"`
	DeviceOwner string `json:"device_owner"`
	Status      string `json:"status"`
}

// GetPortsOnHostBySubnet returns the DVR-serviced ports of a subnet on this host.
func (a *PluginAPI) GetPortsOnHostBySubnet(ctx context.Context, subnet string) ([]HostPort, error) {
	var ps []HostPort
	err := a.call(ctx, topicPlugin, "1.0", "get_ports_on_host_by_subnet", map[string]any{"host": a.host, "subnet": subnet}, &ps)
	return ps, err
}

// normalizeMAC turns the server's DVR MAC form (FA-16-3F-DB-70-56) into fa:16:3f:db:70:56.
func normalizeMAC(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "-", ":"))
}

// PulledSubnet is the part of a Subnet OVO primitive (bulk_pull, reference §5) the agent
// reads.
type PulledSubnet struct {
	ID        string  `json:"id"`
	NetworkID string  `json:"network_id"`
	CIDR      string  `json:"cidr"`
	GatewayIP *string `json:"gateway_ip"`
	IPVersion int     `json:"ip_version"`
}

// PullSubnets asks for subnets by id (bulk_pull of Subnet 1.1 objects).
func (a *PluginAPI) PullSubnets(ctx context.Context, ids []string) ([]PulledSubnet, error) {
	var objects []struct {
		Data PulledSubnet `json:"versioned_object.data"`
	}
	err := a.call(ctx, topicPlugin, "1.1", "bulk_pull", map[string]any{
		"resource_type": "Subnet", "version": "1.1", "filter_kwargs": map[string]any{"id": ids},
	}, &objects)
	out := make([]PulledSubnet, 0, len(objects))
	for _, o := range objects {
		out = append(out, o.Data)
	}
	return out, err
}

// PulledPort is the part of a Port OVO primitive (bulk_pull, reference §5) the agent reads
// and the legacy device details lack.
type PulledPort struct {
	ID          string `json:"id"`
	DeviceID    string `json:"device_id"`
	DeviceOwner string `json:"device_owner"`
}

// PullPorts asks for ports by id (bulk_pull of Port 1.7 objects).
func (a *PluginAPI) PullPorts(ctx context.Context, ids []string) ([]PulledPort, error) {
	var objects []struct {
		Data PulledPort `json:"versioned_object.data"`
	}
	err := a.call(ctx, topicPlugin, "1.1", "bulk_pull", map[string]any{
		"resource_type": "Port", "version": "1.7", "filter_kwargs": map[string]any{"id": ids},
	}, &objects)
	out := make([]PulledPort, 0, len(objects))
	for _, o := range objects {
		out = append(out, o.Data)
	}
	return out, err
}

// BulkPull asks for the objects of a type that match filter (bulk_pull: a filter key's
// values are alternatives, keys must all match), in version, and decodes them (reference
// §5).
func (a *PluginAPI) bulkPull(ctx context.Context, resourceType, version string, filter map[string][]string) (*pushBatch, error) {
	var objects []json.RawMessage
	if err := a.call(ctx, topicPlugin, "1.1", "bulk_pull", map[string]any{
		"resource_type": resourceType, "version": version, "filter_kwargs": filter,
	}, &objects); err != nil {
		return nil, err
	}
	b := &pushBatch{event: pushUpdated}
	if err := decodeObjects(objects, b); err != nil {
		return nil, fmt.Errorf("bulk_pull %s: %w", resourceType, err)
	}
	return b, nil
}
