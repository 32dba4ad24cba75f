// Package northbound is the typed desired state of the cloud as this node sees it: networks,
// subnets, ports bound here, ports bound to other hosts, the other hosts themselves (tunnel
// endpoints, DVR MACs), explicit l2population FDB entries, and for north-south DVR the
// routers with their external gateways and the floating IPs (each resolved to the host of
// its port), the security groups with their rules and the address groups they use, with
// Neutron's enums (network type, device owner, agent mode) and one set of
// constants for the whole project.
//
// Sources feed it: the topology file (package topology) and, later, Neutron's RPC. A source
// parses its input once into these types — addresses as [netip.Addr] and [netip.Prefix],
// MACs as [net.HardwareAddr] — and reports what it could not parse as [Problem]s naming the
// object and the field. [Validate] then checks what no parser can: references between
// objects and the node's settings ([Env]). Each invalid object, and every object that
// depends on it, is dropped with a Problem; every other object is kept. Security groups
// are all or nothing: one with an invalid rule is withheld, and the ports that use it keep
// the firewall they have rather than opening up (see [SecurityGroup]). The agent consumes
// the validated [Model] without knowing which source produced it.
//
// Nothing here does I/O.
package northbound
