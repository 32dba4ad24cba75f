package neutron

import (
	"encoding/json"
	"fmt"
)

// The notification topics the agent consumes on the legacy dict path (reference §4.1), each
// as an oslo RPC server Target(topic, server=host): a fanout queue, the host queue (where
// l2pop's host-directed casts arrive) and the shared topic queue.
const (
	topicTunnelUpdate      = "q-agent-notifier-tunnel-update"
	topicTunnelDelete      = "q-agent-notifier-tunnel-delete"
	topicDVRUpdate         = "q-agent-notifier-dvr-update"
	topicL2popUpdate       = "q-agent-notifier-l2population-update"
	topicPortUpdate        = "q-agent-notifier-port-update"
	topicPortDelete        = "q-agent-notifier-port-delete"
	topicNetworkUpdate     = "q-agent-notifier-network-update"
	topicNetworkDelete     = "q-agent-notifier-network-delete"
	topicBindingActivate   = "q-agent-notifier-binding-activate"
	topicBindingDeactivate = "q-agent-notifier-binding-deactivate"
)

// consumedTopics are every topic the source serves, with the methods it handles on each.
var consumedTopics = map[string][]string{
	topicTunnelUpdate:      {"tunnel_update"},
	topicTunnelDelete:      {"tunnel_delete"},
	topicDVRUpdate:         {"dvr_mac_address_update"},
	topicL2popUpdate:       {"add_fdb_entries", "remove_fdb_entries", "update_fdb_entries"},
	topicPortUpdate:        {"port_update"},
	topicPortDelete:        {"port_delete"},
	topicNetworkUpdate:     {"network_update"},
	topicNetworkDelete:     {"network_delete"},
	topicBindingActivate:   {"binding_activate"},
	topicBindingDeactivate: {"binding_deactivate"},
	topicPortPush:          {"push"},
	topicNetworkPush:       {"push"},
	// Security groups (secgroups.go).
	topicSecurityGroupPush:     {"push"},
	topicSecurityGroupRulePush: {"push"},
	topicAddressGroupPush:      {"push"},
}

// The arguments of the casts.
type (
	tunnelArgs struct {
		TunnelIP   string `json:"tunnel_ip"`
		TunnelType string `json:"tunnel_type"`
	}
	dvrMACArgs struct {
		DVRMACs []DVRMAC `json:"dvr_macs"`
	}
	fdbArgs struct {
		FDBEntries json.RawMessage `json:"fdb_entries"`
	}
	portUpdateArgs struct {
		Port struct {
			ID       string `json:"id"`
			DeviceID string `json:"device_id"`
		} `json:"port"`
	}
	portDeleteArgs struct {
		PortID string `json:"port_id"`
	}
	networkUpdateArgs struct {
		Network struct {
			ID string `json:"id"`
		} `json:"network"`
	}
	networkDeleteArgs struct {
		NetworkID string `json:"network_id"`
	}
	bindingArgs struct {
		PortID string `json:"port_id"`
		Host   string `json:"host"`
	}
)

// decodeArgs decodes a cast's arguments, naming the method on failure.
func decodeArgs(method string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("%s: arguments %.200s: %w", method, raw, err)
	}
	return nil
}

// decodeFDB reads add/remove_fdb_entries' fdb_entries.
func decodeFDB(raw json.RawMessage) (map[string]fdbNetwork, error) {
	var entries map[string]fdbNetwork
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, fmt.Errorf("fdb_entries %.200s: %w", raw, err)
	}
	return entries, nil
}

// decodeChgIP reads update_fdb_entries' fdb_entries: {"chg_ip": {net: {vtep: {before, after}}}}.
func decodeChgIP(raw json.RawMessage) (map[string]map[string]map[string][][]string, error) {
	var v struct {
		ChgIP map[string]map[string]map[string][][]string `json:"chg_ip"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("fdb_entries %.200s: %w", raw, err)
	}
	return v.ChgIP, nil
}
