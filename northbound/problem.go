package northbound

import "fmt"

// Kind names the list of the northbound state an object comes from, in the words of the
// topology file (and of Neutron's API where they agree).
type Kind string

// Problem kinds, in the order problems are reported.
const (
	KindHost      Kind = "host"
	KindOtherHost Kind = "other_host"
	KindNetwork   Kind = "network"
	KindSubnet    Kind = "subnet"
	// KindAddressGroup and KindSecurityGroup: Neutron's address_group and security_group.
	KindAddressGroup  Kind = "address_group"
	KindSecurityGroup Kind = "security_group"
	KindPort          Kind = "port"
	KindRemotePort    Kind = "remote_port"
	KindL2popFDB      Kind = "l2pop_fdb"
	KindRouter        Kind = "router"
	KindFloatingIP    Kind = "floatingip"
)

// Problem is one reason an object was dropped (or, for the host section, one host setting
// that was ignored; for a security group, one reason it was withheld; for a port's
// security_groups, one reason its firewall was withheld while the port itself is kept).
type Problem struct {
	Kind Kind
	// ID names the object: its id; for a remote port "host/id"; for an other host its
	// name; for an l2pop FDB entry "network_id/remote_ip"; for the host section the host's
	// name; "LIST[i]" (e.g. "ports[2]") when the object has no id.
	ID string
	// Field is the attribute at fault ("mac", "fixed_ips[0].ip_address"); empty when the
	// whole object is. A security group's rule is named by its id when it has one, else
	// by its index: "security_group_rules[5b2c…].port_range_min",
	// "security_group_rules[2].protocol".
	Field string
	// Reason says what is wrong, usually starting with the quoted value.
	Reason string
}

// Error renders the problem as `KIND ID: field FIELD: REASON`, e.g.
// `port c0000001-...: field mac: "fa:16:3e:zz:01:01" is not a MAC address`.
func (p Problem) Error() string {
	if p.Field == "" {
		return fmt.Sprintf("%s %s: %s", p.Kind, p.ID, p.Reason)
	}
	return fmt.Sprintf("%s %s: field %s: %s", p.Kind, p.ID, p.Field, p.Reason)
}
