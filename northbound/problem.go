package northbound

import "fmt"

// Kind names the list of the northbound state an object comes from, in the words of the
// topology file (and of Neutron's API where they agree).
type Kind string

// Problem kinds, in the order problems are reported.
const (
	KindHost       Kind = "host"
	KindOtherHost  Kind = "other_host"
	KindNetwork    Kind = "network"
	KindSubnet     Kind = "subnet"
	KindPort       Kind = "port"
	KindRemotePort Kind = "remote_port"
	KindL2popFDB   Kind = "l2pop_fdb"
	KindRouter     Kind = "router"
	KindFloatingIP Kind = "floatingip"
)

// Problem is one reason an object was dropped (or, for the host section, one host setting
// that was ignored).
type Problem struct {
	Kind Kind
	// ID names the object: its id; for a remote port "host/id"; for an other host its
	// name; for an l2pop FDB entry "network_id/remote_ip"; for the host section the host's
	// name; "LIST[i]" (e.g. "ports[2]") when the object has no id.
	ID string
	// Field is the attribute at fault ("mac", "fixed_ips[0].ip_address"); empty when the
	// whole object is.
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
