// Package neutron makes dvrflow-agent the Open vSwitch agent of a real neutron-server: the
// agent's side of Neutron's OVS agent RPC API on the legacy dict path (the calls and casts
// the LinuxBridge and SR-IOV agents still use in Zed, plus the OVS agent's DVR, tunnel and
// l2population ones), over oslo.messaging (package neutron/oslo). Everything it learns
// feeds the typed northbound model, as the topology file does: the agent does not know
// where its model came from.
//
// The source keeps a cache of what neutron-server told this host: the details of every
// device plugged into the integration bridge (get_devices_details_list_and_failed_devices),
// the subnets of its distributed router interfaces (get_subnet_for_dvr), the DVR MACs of
// every host, the tunnel endpoints and the l2population FDB. It hands the agent a snapshot
// of it after every change, and acts on what the agent reports back: devices whose flows a
// barrier confirmed are reported up, devices that left or died down.
package neutron
