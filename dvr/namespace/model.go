// Package namespace keeps Neutron's DVR router namespaces on this host, as the L3 agent does
// on a DVR node, when there is no L3 agent (standalone mode):
//
//   - for each router with an interface here, a network namespace qrouter-<router id> with
//     IP forwarding on, one qr-<port id prefix> device per router interface (its MAC and
//     gateway address) joined to br-int by a veth pair whose br-int end carries the port's
//     iface-id, and permanent neighbour entries for every port of the router's subnets (a
//     DVR router cannot ARP for a port behind another host's copy of the same router);
//   - for a router with an external gateway, Neutron's SNAT redirect in that namespace:
//     per internal IPv4 subnet, `ip rule from <router port ip_cidr> table <snat_idx>
//     priority <snat_idx>` and in that table a default route via the router's centralized
//     SNAT (sg-) address on the subnet ([SNATIndex] is Neutron's snat_idx), so that what
//     the router cannot route itself goes to the network node;
//   - on a dvr_snat host that holds a router's gateway (qg-) port, its centralized SNAT
//     namespace snat-<router id> (see [SNAT]): qg- with the router's external addresses and
//     default route, one sg- device per internal subnet, plugged into br-int as qr- devices
//     are, and the source NAT of the internal subnets to the gateway IP out of qg- (package
//     dvr/nat; none when enable_snat is false);
//   - for the floating IPs of this host's ports (see fip.go and [DesiredFIP]): per external
//     network a namespace fip-<network id> holding this host's floating IP agent gateway port
//     as fg- (plugged into br-int like qr-, proxy ARP on), per router an rfp-/fpr- veth pair
//     between its qrouter- namespace and fip- with a /31 of [LinkLocalPool] and a permanent
//     neighbour entry for the other end on each, in qrouter- a rule "from <fixed IP> lookup
//     16" per floating IP at its priority, table 16's default route into fip- and the
//     floating IP's DNAT/SNAT, in fip- the floating IP's /32 route to rfp- and a rule and
//     table per router leading out of fg-; a gratuitous ARP from fg- when a floating IP is
//     new here. The pairs and priorities are allocated by [FIPAllocators] and kept in
//     Neutron's files in the agent's state directory, so they survive restarts.
//
// [Desired] and [DesiredFIP] compute the routers and the floating IP state from the
// topology without any I/O; [Manager.Apply] makes the host match them, creating, updating
// and removing namespaces, devices, addresses, neighbours, rules, routes, NAT and br-int
// ports, and logs how many changes it made (none on an agent restart with unchanged state);
// [Manager.HeldFloatingIPs] says which floating IPs the host routes already (they are not
// announced again). The caller decides whether the manager runs at all (off when an L3
// agent owns the routers).
//
// # Names and ownership
//
// Namespaces qrouter-<router id>, snat-<router id> and fip-<network id>; both ends of an
// interface's veth pair are called qr-, qg-, sg- or fg-<first 11 characters of the port id>,
// as Neutron names the router's ports (one end inside the namespace, the other in the host
// namespace as the br-int port), and a router's link to fip- is rfp-/fpr-<first 10
// characters of the router id>, so names match a Neutron-run host exactly. dvrflow marks
// what it creates: the loopback device of each namespace and both ends of every veth carry
// a link alias starting with "dvrflow router-namespace" (the veth ends also name the router
// and port, the network and port for fg-, the router and network for rfp-/fpr-), the
// br-int interfaces carry external_ids dvrflow-owner=router-namespace and
// dvrflow-router=<router id> (dvrflow-fip-network=<network id> for fg-), rules and routes
// carry protocol [RouteProtocol], and the NAT lives in dvr/nat's own nftables table. Only marked things are ever changed or removed (an
// unmarked namespace of a wanted router is adopted and marked; an unmarked one of no wanted
// router is left alone; rules and routes with another protocol are never touched);
// everything the manager needs to know is read back from the host, so a restarted agent
// cleans up after its predecessor. A Neutron port that is already plugged into OVS by
// someone else (an interface with its iface-id but without our marker) is left alone: it
// gets no device in the namespace and is never re-plugged.
package namespace

import (
	"bytes"
	"cmp"
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

const (
	// NamespacePrefix starts the name of every router namespace.
	NamespacePrefix = "qrouter-"
	// SNATNamespacePrefix starts the name of every centralized SNAT namespace (Neutron's
	// SNAT_NS_PREFIX).
	SNATNamespacePrefix = "snat-"
	// DevicePrefix starts the name of every router interface device (Neutron's
	// INTERNAL_DEV_PREFIX).
	DevicePrefix = "qr-"
	// GatewayDevicePrefix starts the name of a router's external gateway device in its
	// snat namespace (Neutron's EXTERNAL_DEV_PREFIX).
	GatewayDevicePrefix = "qg-"
	// SNATDevicePrefix starts the name of a router's centralized SNAT devices, one per
	// internal subnet, in its snat namespace (Neutron's SNAT_INT_DEV_PREFIX).
	SNATDevicePrefix = "sg-"
	// deviceNameLen is Neutron's DEV_NAME_LEN: a prefix and 11 characters of the port id.
	deviceNameLen = 14
)

// NamespaceName is the namespace of a router: qrouter-<router id>.
func NamespaceName(routerID string) string { return NamespacePrefix + routerID }

// SNATNamespaceName is the centralized SNAT namespace of a router: snat-<router id>.
func SNATNamespaceName(routerID string) string { return SNATNamespacePrefix + routerID }

// DeviceName is the device of a router interface, inside the namespace and as the br-int
// port: qr-<first 11 characters of the port id>, as Neutron's L3 agent names it.
func DeviceName(portID string) string { return deviceName(DevicePrefix, portID) }

// GatewayDeviceName is the device of a router's gateway port in its snat namespace:
// qg-<first 11 characters of the port id>.
func GatewayDeviceName(portID string) string { return deviceName(GatewayDevicePrefix, portID) }

// SNATDeviceName is the device of a centralized SNAT port in its snat namespace:
// sg-<first 11 characters of the port id>.
func SNATDeviceName(portID string) string { return deviceName(SNATDevicePrefix, portID) }

// deviceName is prefix and as much of id (a port's or a router's) as Neutron's 14-character
// device names leave.
func deviceName(prefix, id string) string {
	n := prefix + id
	if len(n) > deviceNameLen {
		n = n[:deviceNameLen]
	}
	return n
}

// Router is one DVR router as this host must hold it: its qrouter- namespace and, on the
// host that holds its centralized SNAT, its snat- namespace.
type Router struct {
	ID string
	// Interfaces are the router's ports on this host, sorted by PortID.
	Interfaces []Interface
	// Neighbors are the permanent neighbour entries, sorted by (Interface, IP).
	Neighbors []Neighbor
	// Rules are the policy routing rules of the qrouter namespace (today Neutron's SNAT
	// redirect, one per internal IPv4 subnet), sorted by [CompareRules].
	Rules []Rule
	// Routes are the routes the manager keeps in the qrouter namespace besides the
	// kernel's connected ones (today the SNAT redirect's default routes, in the tables
	// the Rules name), sorted by [CompareRoutes].
	Routes []Route
	// SNAT is the router's centralized SNAT namespace when this host holds it; nil
	// otherwise.
	SNAT *SNAT
}

// Interface is one router interface: a qr- device in the namespace.
type Interface struct {
	// PortID is the Neutron port id (the br-int port's iface-id).
	PortID string
	MAC    net.HardwareAddr
	// Addrs are the port's fixed IPs with their subnets' prefix lengths (the subnets'
	// gateway addresses), sorted; usually one, two on a dual-stack network.
	Addrs []netip.Prefix
	// MTU of both veth ends; 0 leaves it as it is (the kernel's default on a new device).
	MTU int
}

// Neighbor is one permanent neighbour entry.
type Neighbor struct {
	IP  netip.Addr
	MAC net.HardwareAddr
	// Interface is the PortID of the router interface the neighbour is on.
	Interface string
}

// Input is what Desired reads from the topology. state.Port is used for every port, bound
// here or elsewhere; only ID, NetworkID, MAC, DeviceOwner, DeviceID, FixedIPs and
// AllowedAddressPairs are read (not OFPort: a router interface is wanted before its br-int
// port exists, since the manager is what creates it).
type Input struct {
	// Subnets of the topology (state.Node.Subnets will do): they give the prefix lengths.
	Subnets []state.Subnet
	// Networks give the router interfaces' MTU; a network missing here (or with MTU 0)
	// leaves the kernel default.
	Networks []state.Network
	// LocalPorts are the ports bound to this host. The distributed router interfaces among
	// them (DeviceOwner network:router_interface_distributed, DeviceID = router id) are the
	// routers' interfaces here.
	LocalPorts []state.Port
	// RemotePorts are the ports bound to other hosts. With LocalPorts, they are the ports
	// of the routers' subnets that get neighbour entries. A port in both lists counts once
	// (the local copy wins). The centralized SNAT ports among them (and among LocalPorts)
	// are where the routers' SNAT redirect points.
	RemotePorts []state.Port
	// Routers are the cloud's routers: their gateways decide the SNAT redirect and the
	// snat namespaces. A router missing here has no gateway.
	Routers []northbound.Router
	// AgentMode is this host's agent_mode: only a dvr_snat host holds snat namespaces.
	AgentMode northbound.AgentMode
}

// routerInterfaceOwners are the device owners that never get a neighbour entry (Neutron's
// ROUTER_INTERFACE_OWNERS: the router's own ports on every host).
var routerInterfaceOwners = map[northbound.DeviceOwner]bool{
	northbound.OwnerRouterInterfaceDistributed: true,
	northbound.OwnerRouterInterface:            true,
	northbound.OwnerHARouterReplicatedIface:    true,
}

// Desired returns the routers this host must hold, sorted by ID: one per router id among the
// local distributed router interfaces, and one per router whose centralized SNAT this host
// holds (see [SNAT]; on a dvr_snat host such a router gets its qrouter- namespace too, as
// Neutron's DvrEdgeRouter makes it, even without an interface here). A router with a
// gateway gets Neutron's SNAT redirect (see [Rule]). Each interface gets the port's MAC, its fixed IPs with
// the prefix lengths of their subnets (fixed IPs on unknown subnets are skipped) and its
// network's MTU. Each router gets, as Neutron's DVR local router does, a permanent neighbour
// entry on the interface of subnet S for every fixed IP on S of every port (local or remote)
// that is not a router interface, and for each such port's allowed address pairs that are
// single addresses of S's IP version (with the pair's MAC, or the port's own). A fixed IP
// wins over an address pair for the same address on the same interface; otherwise the
// lowest port id wins. The router's own addresses never get an entry. Pure; the result
// shares no memory with in.
func Desired(in Input) []Router {
	subnets := map[string]state.Subnet{}
	for _, s := range in.Subnets {
		subnets[s.ID] = s
	}
	mtus := map[string]int{}
	for _, n := range in.Networks {
		mtus[n.ID] = n.MTU
	}

	byRouter := map[string]*Router{}
	// onSubnet maps router id → subnet id → the interface holding an address on it.
	onSubnet := map[string]map[string]string{}
	// ifcIPs maps an interface's port id → its fixed IPs on known subnets.
	ifcIPs := map[string][]state.FixedIP{}
	seenPort := map[string]bool{}
	for _, p := range in.LocalPorts {
		if !p.IsDistributedRouterInterface() || p.DeviceID == "" || p.ID == "" || seenPort[p.ID] {
			continue
		}
		seenPort[p.ID] = true
		r := byRouter[p.DeviceID]
		if r == nil {
			r = &Router{ID: p.DeviceID}
			byRouter[p.DeviceID] = r
			onSubnet[p.DeviceID] = map[string]string{}
		}
		ifc := Interface{PortID: p.ID, MAC: cloneMAC(p.MAC), MTU: mtus[p.NetworkID]}
		for _, ip := range p.FixedIPs {
			s, ok := subnets[ip.SubnetID]
			if !ok || !ip.IP.IsValid() {
				continue
			}
			pfx := netip.PrefixFrom(ip.IP, s.CIDR.Bits())
			if !slices.Contains(ifc.Addrs, pfx) {
				ifc.Addrs = append(ifc.Addrs, pfx)
			}
			ifcIPs[p.ID] = append(ifcIPs[p.ID], ip)
			if _, taken := onSubnet[r.ID][s.ID]; !taken {
				onSubnet[r.ID][s.ID] = p.ID
			}
		}
		slices.SortFunc(ifc.Addrs, comparePrefix)
		r.Interfaces = append(r.Interfaces, ifc)
	}

	// Every port once (local first), by id, without router interfaces.
	all := map[string]state.Port{}
	for _, list := range [][]state.Port{in.LocalPorts, in.RemotePorts} {
		for _, p := range list {
			if _, dup := all[p.ID]; dup || p.ID == "" || routerInterfaceOwners[p.DeviceOwner] || len(p.MAC) == 0 {
				continue
			}
			all[p.ID] = p
		}
	}
	ports := slices.SortedFunc(maps.Values(all), func(a, b state.Port) int { return cmp.Compare(a.ID, b.ID) })

	gateways := routerGateways(in.Routers)
	snatPorts := centralizedSNATPorts(in)
	if in.AgentMode == northbound.ModeDVRSNAT {
		for id, gwPort := range snatHosted(in.LocalPorts, gateways) {
			r := byRouter[id]
			if r == nil {
				r = &Router{ID: id}
				byRouter[id] = r
			}
			r.SNAT = snatNamespace(id, gateways[id], gwPort, snatPorts.local[id], subnets, mtus)
		}
	}

	routers := make([]Router, 0, len(byRouter))
	for _, r := range byRouter {
		slices.SortFunc(r.Interfaces, func(a, b Interface) int { return cmp.Compare(a.PortID, b.PortID) })
		r.Neighbors = neighbors(r, onSubnet[r.ID], subnets, ports)
		if _, ok := gateways[r.ID]; ok {
			r.Rules, r.Routes = snatRedirect(r.Interfaces, ifcIPs, snatPorts.all[r.ID], subnets)
		}
		routers = append(routers, *r)
	}
	slices.SortFunc(routers, func(a, b Router) int { return cmp.Compare(a.ID, b.ID) })
	return routers
}

// neighbors computes a router's neighbour entries. onSubnet maps subnet id → the router
// interface on it; ports are sorted by id.
func neighbors(r *Router, onSubnet map[string]string, subnets map[string]state.Subnet, ports []state.Port) []Neighbor {
	own := map[netip.Addr]bool{}
	for _, ifc := range r.Interfaces {
		for _, a := range ifc.Addrs {
			own[a.Addr()] = true
		}
	}
	type key struct {
		iface string
		ip    netip.Addr
	}
	fixed := map[key]net.HardwareAddr{}
	pairs := map[key]net.HardwareAddr{}
	for _, p := range ports {
		for _, fip := range p.FixedIPs {
			iface, ok := onSubnet[fip.SubnetID]
			if !ok || !fip.IP.IsValid() {
				continue
			}
			k := key{iface, fip.IP}
			if _, dup := fixed[k]; !dup {
				fixed[k] = p.MAC
			}
			s := subnets[fip.SubnetID]
			for _, ap := range p.AllowedAddressPairs {
				if !ap.Prefix.IsValid() || !ap.Prefix.IsSingleIP() || ap.Prefix.Addr().Is4() != s.CIDR.Addr().Is4() {
					continue
				}
				mac := ap.MAC
				if len(mac) == 0 {
					mac = p.MAC
				}
				k := key{iface, ap.Prefix.Addr()}
				if _, dup := pairs[k]; !dup {
					pairs[k] = mac
				}
			}
		}
	}
	for k, mac := range pairs {
		if _, ok := fixed[k]; !ok {
			fixed[k] = mac
		}
	}
	var out []Neighbor
	for k, mac := range fixed {
		if own[k.ip] {
			continue
		}
		out = append(out, Neighbor{IP: k.ip, MAC: cloneMAC(mac), Interface: k.iface})
	}
	slices.SortFunc(out, func(a, b Neighbor) int {
		return cmp.Or(cmp.Compare(a.Interface, b.Interface), a.IP.Compare(b.IP))
	})
	return out
}

func comparePrefix(a, b netip.Prefix) int {
	return cmp.Or(a.Addr().Compare(b.Addr()), cmp.Compare(a.Bits(), b.Bits()))
}

func cloneMAC(m net.HardwareAddr) net.HardwareAddr {
	if m == nil {
		return nil
	}
	return bytes.Clone(m)
}
