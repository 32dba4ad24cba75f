package trace

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Request is a packet described the way an operator thinks of it: from a VM's port to an
// address.
type Request struct {
	// Port is the source port: its Neutron id (the interface's iface-id) or its device name
	// on the integration bridge (tapXXXXXXXX-XX).
	Port string
	// Dst is the destination: an IP address (resolved to a MAC through the topology, and
	// routed through the subnet's gateway when it is off the port's subnets) or a MAC.
	Dst string
	// Proto is icmp (the default: an echo request), tcp:PORT, udp:PORT or arp (a request
	// for Dst, or for the gateway when Dst is off-subnet).
	Proto string
}

// Node is what a request is resolved against.
type Node struct {
	// Inventory is the switch's OVSDB (required): the source port, its MAC, the router's
	// interfaces.
	Inventory *ovsdb.Inventory
	// Model is the topology; nil when none was given (then --dst must be a MAC).
	Model *northbound.Model
	// IntegrationBridge is br-int's name ("" for br-int).
	IntegrationBridge string
}

// Packet is one packet entering the integration bridge.
type Packet struct {
	InPort         string
	SrcMAC, DstMAC net.HardwareAddr
	// SrcIP and DstIP are invalid when unknown (left out of the flow).
	SrcIP, DstIP netip.Addr
	// Proto is icmp, tcp, udp or arp; Port the TCP/UDP destination port.
	Proto string
	Port  int
	TTL   int
}

// Flow renders the packet in ofproto/trace's flow syntax.
func (p Packet) Flow() string {
	fields := []string{"in_port=" + strconv.Quote(p.InPort), "dl_src=" + p.SrcMAC.String(), "dl_dst=" + p.DstMAC.String()}
	v6 := p.DstIP.Is6() || p.SrcIP.Is6()
	src, dst := "nw_src", "nw_dst"
	if v6 {
		src, dst = "ipv6_src", "ipv6_dst"
	}
	ips := func() {
		if p.SrcIP.IsValid() {
			fields = append(fields, src+"="+p.SrcIP.String())
		}
		if p.DstIP.IsValid() {
			fields = append(fields, dst+"="+p.DstIP.String())
		}
		fields = append(fields, "nw_ttl="+strconv.Itoa(p.TTL))
	}
	switch p.Proto {
	case "arp":
		fields = append(fields, "arp", "arp_op=1", "arp_sha="+p.SrcMAC.String())
		if p.SrcIP.IsValid() {
			fields = append(fields, "arp_spa="+p.SrcIP.String())
		}
		if p.DstIP.IsValid() {
			fields = append(fields, "arp_tpa="+p.DstIP.String())
		}
	case "tcp", "udp":
		proto := p.Proto
		if v6 {
			proto += "6"
		}
		fields = append(fields, proto)
		ips()
		fields = append(fields, p.Proto+"_src=40000", p.Proto+"_dst="+strconv.Itoa(p.Port))
	default:
		if v6 {
			fields = append(fields, "icmp6")
			ips()
			fields = append(fields, "icmpv6_type=128")
		} else {
			fields = append(fields, "icmp")
			ips()
			fields = append(fields, "icmp_type=8")
		}
	}
	return strings.Join(fields, ",")
}

// Plan is a request resolved into the packets to trace.
type Plan struct {
	Bridge string
	First  Packet
	// Routed is the packet the distributed router sends on, nil when the destination is
	// on the source's subnet (or beyond what the topology knows; Notes say why).
	Routed *RoutedPacket
	Notes  []string
}

// RoutedPacket is the router's side of a routed packet.
type RoutedPacket struct {
	RouterID string
	// GatewayPort is the router's interface on the source's subnet: the first packet must
	// reach it for the router to route.
	GatewayPort string
	Packet      Packet
}

// Resolve turns a request into the packets to trace.
func Resolve(req Request, node Node) (*Plan, error) {
	if node.Inventory == nil {
		return nil, fmt.Errorf("the source port needs the switch's OVSDB")
	}
	brName := node.IntegrationBridge
	if brName == "" {
		brName = "br-int"
	}
	br, ok := node.Inventory.Bridge(brName)
	if !ok {
		return nil, fmt.Errorf("no bridge %s in OVSDB", brName)
	}
	src := findPort(br, req.Port)
	if src == nil {
		return nil, fmt.Errorf("--port %s: no port of %s has that name or iface-id", req.Port, brName)
	}
	proto, l4port, err := parseProto(req.Proto)
	if err != nil {
		return nil, err
	}
	plan := &Plan{Bridge: brName, First: Packet{InPort: src.Name, Proto: proto, Port: l4port, TTL: 64}}
	var srcPort *northbound.Port
	if node.Model != nil {
		srcPort = modelPort(node.Model, src.IfaceID())
	}
	plan.First.SrcMAC, _ = net.ParseMAC(src.AttachedMAC())
	if plan.First.SrcMAC == nil && srcPort != nil {
		plan.First.SrcMAC = srcPort.MAC
	}
	if plan.First.SrcMAC == nil {
		return nil, fmt.Errorf("--port %s: %s has no attached-mac and the topology names no MAC for it", req.Port, src.Name)
	}

	if mac, err := net.ParseMAC(req.Dst); err == nil {
		plan.First.DstMAC = mac
		if srcPort != nil && len(srcPort.FixedIPs) > 0 {
			plan.First.SrcIP = srcPort.FixedIPs[0].IP
		}
		if node.Model != nil {
			plan.First.DstIP = ipOfMAC(node.Model, mac)
		}
		return plan, nil
	}
	dst, err := netip.ParseAddr(req.Dst)
	if err != nil {
		return nil, fmt.Errorf("--dst %q: neither an IP address nor a MAC", req.Dst)
	}
	if node.Model == nil {
		return nil, fmt.Errorf("--dst %s: an address is resolved through the topology: give --topology, or --dst MAC", dst)
	}
	if srcPort == nil {
		return nil, fmt.Errorf("--port %s: port %s (iface-id %q) is not in the topology", req.Port, src.Name, src.IfaceID())
	}
	plan.First.DstIP = dst
	var srcSubnet *northbound.Subnet
	for _, ip := range srcPort.FixedIPs {
		if ip.IP.Is4() != dst.Is4() {
			continue
		}
		s := subnet(node.Model, ip.SubnetID)
		if s == nil {
			continue
		}
		if srcSubnet == nil || s.CIDR.Contains(dst) {
			plan.First.SrcIP, srcSubnet = ip.IP, s
		}
	}
	if srcSubnet == nil {
		return nil, fmt.Errorf("--port %s has no IPv%d address in the topology", req.Port, map[bool]int{true: 4, false: 6}[dst.Is4()])
	}
	if srcSubnet.CIDR.Contains(dst) {
		if proto == "arp" {
			plan.First.DstMAC = broadcast
			return plan, nil
		}
		mac := macOfIP(node.Model, srcSubnet.NetworkID, dst)
		if mac == nil {
			return nil, fmt.Errorf("--dst %s: no port, remote port or l2pop entry of the topology has that address: give --dst MAC", dst)
		}
		plan.First.DstMAC = mac
		return plan, nil
	}

	// Off-subnet: the packet goes to the gateway (the distributed router's interface).
	if !srcSubnet.GatewayIP.IsValid() || srcSubnet.GatewayMAC == nil {
		return nil, fmt.Errorf("--dst %s is off subnet %s (%s) of --port %s, which has no gateway (IP and MAC) in the topology", dst, srcSubnet.ID, srcSubnet.CIDR, req.Port)
	}
	if proto == "arp" {
		plan.First.DstMAC, plan.First.DstIP = broadcast, srcSubnet.GatewayIP
		plan.Notes = append(plan.Notes, fmt.Sprintf("%s is off subnet %s: the VM asks for its gateway %s", dst, srcSubnet.CIDR, srcSubnet.GatewayIP))
		return plan, nil
	}
	plan.First.DstMAC = srcSubnet.GatewayMAC
	routed, note := routerHop(node, br, srcSubnet, plan.First)
	plan.Routed = routed
	if note != "" {
		plan.Notes = append(plan.Notes, note)
	}
	return plan, nil
}

var broadcast = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// routerHop finds the packet the distributed router sends on for first (addressed to
// srcSubnet's gateway); a note says why there is none.
func routerHop(node Node, br *ovsdb.InventoryBridge, srcSubnet *northbound.Subnet, first Packet) (*RoutedPacket, string) {
	m, dst := node.Model, first.DstIP
	gwPort := portWithIP(m, srcSubnet.ID, srcSubnet.GatewayIP)
	if gwPort == nil || !gwPort.DeviceOwner.IsNetworkOwned() || gwPort.DeviceID == "" {
		return nil, fmt.Sprintf("no router interface of this host has %s's gateway %s: traced up to the gateway MAC only", srcSubnet.CIDR, srcSubnet.GatewayIP)
	}
	routerID := gwPort.DeviceID
	gwDevice := findPort(br, gwPort.ID)
	if gwDevice == nil {
		return nil, fmt.Sprintf("router %s's interface %s is not plugged into %s", routerID, gwPort.ID, br.Name)
	}
	var dstSubnet *northbound.Subnet
	for i := range m.Subnets {
		if m.Subnets[i].CIDR.Contains(dst) {
			dstSubnet = &m.Subnets[i]
		}
	}
	if dstSubnet == nil {
		return nil, fmt.Sprintf("%s is in no subnet of the topology: traced up to router %s", dst, routerID)
	}
	var out *northbound.Port
	for i := range m.Ports {
		p := &m.Ports[i]
		if p.DeviceID == routerID && p.DeviceOwner.IsNetworkOwned() && slices.ContainsFunc(p.FixedIPs, func(ip northbound.FixedIP) bool { return ip.SubnetID == dstSubnet.ID }) {
			out = p
		}
	}
	if out == nil {
		return nil, fmt.Sprintf("router %s has no interface on %s (%s) on this host: traced up to the router", routerID, dstSubnet.ID, dstSubnet.CIDR)
	}
	outDevice := findPort(br, out.ID)
	if outDevice == nil {
		return nil, fmt.Sprintf("router %s's interface %s is not plugged into %s", routerID, out.ID, br.Name)
	}
	dstMAC := macOfIP(m, dstSubnet.NetworkID, dst)
	if dstMAC == nil {
		return nil, fmt.Sprintf("%s: no port, remote port or l2pop entry of the topology has that address: traced up to router %s", dst, routerID)
	}
	next := first
	next.InPort, next.SrcMAC, next.DstMAC, next.TTL = outDevice.Name, out.MAC, dstMAC, first.TTL-1
	return &RoutedPacket{RouterID: routerID, GatewayPort: gwDevice.Name, Packet: next}, ""
}

// Packet traces the plan: the first packet, and when it reaches the router, the routed one.
func (t *Tracer) Packet(ctx context.Context, plan *Plan) (*Trace, error) {
	tr := &Trace{Notes: plan.Notes}
	if err := t.leg(ctx, tr, plan.Bridge, plan.First.Flow(), nil); err != nil {
		return nil, err
	}
	r := plan.Routed
	if r == nil {
		return tr, nil
	}
	reached := slices.ContainsFunc(tr.Result.Outputs, func(o Output) bool { return o.Port == r.GatewayPort })
	if !reached {
		tr.Notes = append(tr.Notes, fmt.Sprintf("the packet does not reach router %s's interface %s: not routed", r.RouterID, r.GatewayPort))
		return tr, nil
	}
	hop := &RouterHop{ID: r.RouterID, FromPort: r.GatewayPort, ToPort: r.Packet.InPort}
	if err := t.leg(ctx, tr, plan.Bridge, r.Packet.Flow(), hop); err != nil {
		return nil, err
	}
	return tr, nil
}

// parseProto reads --proto.
func parseProto(s string) (proto string, port int, err error) {
	name, portText, hasPort := strings.Cut(strings.ToLower(s), ":")
	switch name {
	case "", "icmp":
		name = "icmp"
	case "arp":
	case "tcp", "udp":
		if !hasPort {
			return "", 0, fmt.Errorf("--proto %s: give the destination port, %s:PORT", s, name)
		}
		port, err = strconv.Atoi(portText)
		if err != nil || port < 1 || port > 65535 {
			return "", 0, fmt.Errorf("--proto %s: port %q is not 1-65535", s, portText)
		}
		return name, port, nil
	default:
		return "", 0, fmt.Errorf("--proto %q: want icmp, tcp:PORT, udp:PORT or arp", s)
	}
	if hasPort {
		return "", 0, fmt.Errorf("--proto %s: %s has no port", s, name)
	}
	return name, 0, nil
}

// findPort returns the bridge's port named ref, or bound to Neutron port ref.
func findPort(br *ovsdb.InventoryBridge, ref string) *ovsdb.InventoryPort {
	if p, ok := br.Port(ref); ok {
		return p
	}
	for i := range br.Ports {
		if br.Ports[i].IfaceID() == ref {
			return &br.Ports[i]
		}
	}
	return nil
}

func modelPort(m *northbound.Model, id string) *northbound.Port {
	for i := range m.Ports {
		if m.Ports[i].ID == id {
			return &m.Ports[i]
		}
	}
	return nil
}

func subnet(m *northbound.Model, id string) *northbound.Subnet {
	for i := range m.Subnets {
		if m.Subnets[i].ID == id {
			return &m.Subnets[i]
		}
	}
	return nil
}

// portWithIP returns the local port holding ip on the subnet.
func portWithIP(m *northbound.Model, subnetID string, ip netip.Addr) *northbound.Port {
	for i := range m.Ports {
		if slices.Contains(m.Ports[i].FixedIPs, northbound.FixedIP{SubnetID: subnetID, IP: ip}) {
			return &m.Ports[i]
		}
	}
	return nil
}

// macOfIP finds the MAC of an address on a network: a local port, a remote port, then an
// l2population entry.
func macOfIP(m *northbound.Model, networkID string, ip netip.Addr) net.HardwareAddr {
	has := func(ips []northbound.FixedIP) bool {
		return slices.ContainsFunc(ips, func(f northbound.FixedIP) bool { return f.IP == ip })
	}
	for _, p := range m.Ports {
		if p.NetworkID == networkID && has(p.FixedIPs) {
			return p.MAC
		}
	}
	for _, p := range m.RemotePorts {
		if p.NetworkID == networkID && has(p.FixedIPs) {
			return p.MAC
		}
	}
	for _, f := range m.FDB {
		if f.NetworkID != networkID {
			continue
		}
		for _, e := range f.Entries {
			if e.IP == ip {
				return e.MAC
			}
		}
	}
	return nil
}

// ipOfMAC finds the first address of the port with that MAC, invalid when none.
func ipOfMAC(m *northbound.Model, mac net.HardwareAddr) netip.Addr {
	for _, p := range m.Ports {
		if slices.Equal(p.MAC, mac) && len(p.FixedIPs) > 0 {
			return p.FixedIPs[0].IP
		}
	}
	for _, p := range m.RemotePorts {
		if slices.Equal(p.MAC, mac) && len(p.FixedIPs) > 0 {
			return p.FixedIPs[0].IP
		}
	}
	return netip.Addr{}
}
