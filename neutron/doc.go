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
//
// Security groups take the path of Zed's Open vSwitch agent, not the legacy one: the
// server pushes every SecurityGroup, SecurityGroupRule, AddressGroup and Port object as it
// changes (neutron-vo-<Type>-<Version>_fanout; it pushes whether or not an agent listens),
// and the source pulls (bulk_pull) what its cache lacks, as Neutron's resource cache and
// SecurityGroupServerAPIShim do: the Port objects of its ports ({"id"}), their groups
// ({"id"}) and the groups' rules ({"security_group_id"}), the members of the rules' remote
// groups (Ports, {"security_group_ids"}) and the rules' address groups ({"id"}). Address
// groups only exist as objects, and the objects carry rule ids and revisions, which
// security_group_info_for_devices does not; the security_groups_rule_updated and
// security_groups_member_updated casts are not consumed (the pushes say more). A port bound
// here is given once its groups are known; see secgroups.go.
package neutron
