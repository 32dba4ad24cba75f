package explain

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Node is what the explainer knows about the node: its switch (always) and its topology
// (when given). Without a topology it still resolves what OVSDB holds: VIFs by iface-id
// and attached-mac, local VLANs by the ports' tags and other_config, tunnel ports by
// their options.
type Node struct {
	Inventory *ovsdb.Inventory
	// Model is the topology; nil when none was given.
	Model *northbound.Model
	// Host is this node's name; DVRMAC its DVR MAC (nil: unknown).
	Host   string
	DVRMAC net.HardwareAddr
	// IntegrationBridge and TunnelBridge name those bridges ("" for Neutron's defaults,
	// br-int and br-tun); BridgeMappings maps a physnet to its bridge (empty: found from
	// the patch ports).
	IntegrationBridge string
	TunnelBridge      string
	BridgeMappings    map[string]string
}

// Role is what a bridge is in the pipeline.
type Role int

// Bridge roles.
const (
	RoleOther Role = iota
	RoleIntegration
	RoleTunnel
	RolePhysical
)

func (r Role) pipeline() flows.Pipeline {
	switch r {
	case RoleIntegration:
		return flows.IntegrationPipeline
	case RoleTunnel:
		return flows.TunnelPipeline
	case RolePhysical:
		return flows.PhysicalPipeline
	}
	return nil
}

// network is a network as far as the node knows it.
type network struct {
	id      string
	typ     string // "vlan", "flat", "vxlan", ...
	physnet string
	seg     int64
	hasSeg  bool
}

func (n *network) owner() *Owner {
	name := n.typ
	switch {
	case n.hasSeg && n.typ != "":
		name = n.typ + " " + strconv.FormatInt(n.seg, 10)
	case n.typ == "flat" && n.physnet != "":
		name = "flat " + n.physnet
	case name == "":
		name = "network"
	}
	return &Owner{Kind: KindNetwork, ID: n.id, Name: name}
}

// port is a Neutron port, local or on another host.
type port struct {
	// id is empty for an l2population entry no port of the topology explains: then
	// remote names the VTEP it points to.
	id, device, network string
	remote              string
	mac                 string // lower case
	owner               northbound.DeviceOwner
	deviceID            string
	ips                 []netip.Addr
	host                string // "" for a local port
}

func (p *port) ownerRef() *Owner {
	if p.id == "" {
		var addrs []string
		for _, ip := range p.ips {
			addrs = append(addrs, ip.String())
		}
		return &Owner{Kind: KindTunnel, ID: p.remote, Name: strings.TrimSpace(p.mac + " " + strings.Join(addrs, ","))}
	}
	name := p.device
	if name == "" {
		name = "tap" + p.id[:min(11, len(p.id))]
		if p.host != "" {
			name = p.mac + " on " + p.host
		}
	}
	return &Owner{Kind: KindPort, ID: p.id, Name: name}
}

// router is a distributed router as seen through one of its interfaces.
type router struct {
	id      string
	gateway string // the interface's address(es) and device
}

func (r *router) owner() *Owner { return &Owner{Kind: KindRouter, ID: r.id, Name: r.gateway} }

// index is the node's objects, indexed for the lookups flows need.
type index struct {
	roles     map[string]Role
	physnetOf map[string]string // physical bridge → physnet
	bridges   map[string]*ovsdb.InventoryBridge
	// byOfport and byPortName index each bridge's ports, the first of a number or name
	// winning as in InventoryBridge.PortByOfport and Port: every flow's in_port is looked up,
	// and a scan of a bridge's ports per flow is quadratic on a node of 10,000 ports.
	byOfport   map[string]map[int]*ovsdb.InventoryPort
	byPortName map[string]map[string]*ovsdb.InventoryPort
	// peerBridge maps "bridge/port" of a patch port to the bridge of its peer.
	peerBridge map[string]string

	networks  map[string]*network
	byLVID    map[int]*network
	bySeg     map[string]*network // "vlan/physnet/seg", "flat/physnet", "tunnel/seg"
	ports     map[string]*port    // by id
	byMAC     map[string]*port    // local ports first, then remote ones
	byNetIP   map[string]*port    // "network/IP"
	routerMAC map[string]*router
	routerIP  map[netip.Addr]*router
	hostMAC   map[string]*Owner
	cookies   map[cookieKey]*Owner
}

type cookieKey struct {
	category flows.Category
	hash     uint64
}

func newIndex(n Node) *index {
	x := &index{
		roles: map[string]Role{}, physnetOf: map[string]string{}, bridges: map[string]*ovsdb.InventoryBridge{},
		byOfport: map[string]map[int]*ovsdb.InventoryPort{}, byPortName: map[string]map[string]*ovsdb.InventoryPort{},
		peerBridge: map[string]string{}, networks: map[string]*network{}, byLVID: map[int]*network{},
		bySeg: map[string]*network{}, ports: map[string]*port{}, byMAC: map[string]*port{}, byNetIP: map[string]*port{},
		routerMAC: map[string]*router{}, routerIP: map[netip.Addr]*router{}, hostMAC: map[string]*Owner{},
		cookies: map[cookieKey]*Owner{},
	}
	integration, tunnel := n.IntegrationBridge, n.TunnelBridge
	if integration == "" {
		integration = "br-int"
	}
	if tunnel == "" {
		tunnel = "br-tun"
	}
	x.roles[integration], x.roles[tunnel] = RoleIntegration, RoleTunnel
	for physnet, br := range n.BridgeMappings {
		x.roles[br], x.physnetOf[br] = RolePhysical, physnet
	}
	inv := n.Inventory
	if inv == nil {
		inv = &ovsdb.Inventory{}
	}
	portBridge := map[string]string{}
	for i := range inv.Bridges {
		b := &inv.Bridges[i]
		x.bridges[b.Name] = b
		byOfport := make(map[int]*ovsdb.InventoryPort, len(b.Ports))
		byName := make(map[string]*ovsdb.InventoryPort, len(b.Ports))
		for j := range b.Ports {
			p := &b.Ports[j]
			portBridge[p.Name] = b.Name
			if _, seen := byOfport[p.Ofport]; !seen {
				byOfport[p.Ofport] = p
			}
			if _, seen := byName[p.Name]; !seen {
				byName[p.Name] = p
			}
		}
		x.byOfport[b.Name], x.byPortName[b.Name] = byOfport, byName
	}
	for _, b := range inv.Bridges {
		for _, p := range b.Ports {
			if p.Type == "patch" {
				x.peerBridge[b.Name+"/"+p.Name] = portBridge[p.Options["peer"]]
			}
			// Without bridge mappings, a bridge patched to br-int through phy-BRIDGE is
			// a physical bridge (Neutron's naming).
			if _, known := x.roles[b.Name]; !known && p.Type == "patch" && p.Name == "phy-"+b.Name {
				x.roles[b.Name] = RolePhysical
			}
		}
	}
	x.addModel(n.Model)
	x.addInventory(integration)
	x.addHost(n.Host, n.DVRMAC)
	x.addCookies(n.Model)
	return x
}

func (x *index) network(id string) *network {
	if n, ok := x.networks[id]; ok {
		return n
	}
	n := &network{id: id}
	x.networks[id] = n
	return n
}

func (x *index) addModel(m *northbound.Model) {
	if m == nil {
		return
	}
	for _, nw := range m.Networks {
		n := x.network(nw.ID)
		n.typ, n.physnet, n.seg, n.hasSeg = string(nw.Type), nw.Physnet, nw.SegmentationID, nw.Type == northbound.VLAN || nw.Type.Tunnelled()
		x.indexSeg(n)
	}
	gatewayOf := map[string]string{} // gateway MAC → gateway IP
	for _, s := range m.Subnets {
		if s.GatewayMAC != nil && s.GatewayIP.IsValid() {
			gatewayOf[strings.ToLower(s.GatewayMAC.String())] = s.GatewayIP.String()
		}
	}
	add := func(p *port) {
		if p.id != "" {
			x.ports[p.id] = p
		}
		if _, ok := x.byMAC[p.mac]; !ok && p.mac != "" {
			x.byMAC[p.mac] = p
		}
		for _, ip := range p.ips {
			key := p.network + "/" + ip.String()
			if _, ok := x.byNetIP[key]; !ok {
				x.byNetIP[key] = p
			}
		}
		if p.owner == northbound.OwnerRouterInterfaceDistributed && p.deviceID != "" {
			var addrs []string
			for _, ip := range p.ips {
				addrs = append(addrs, ip.String())
			}
			r := &router{id: p.deviceID, gateway: strings.Join(addrs, ",")}
			if r.gateway == "" {
				r.gateway = p.mac
			}
			if _, ok := x.routerMAC[p.mac]; !ok {
				x.routerMAC[p.mac] = r
			}
			for _, ip := range p.ips {
				if _, ok := x.routerIP[ip]; !ok {
					x.routerIP[ip] = r
				}
			}
		}
	}
	fromModel := func(id, name, netID string, mac net.HardwareAddr, owner northbound.DeviceOwner, deviceID string, fixed []northbound.FixedIP, host string) *port {
		p := &port{id: id, device: name, network: netID, owner: owner, deviceID: deviceID, host: host}
		if mac != nil {
			p.mac = strings.ToLower(mac.String())
		}
		for _, f := range fixed {
			p.ips = append(p.ips, f.IP)
		}
		return p
	}
	for _, p := range m.Ports {
		add(fromModel(p.ID, p.Name, p.NetworkID, p.MAC, p.DeviceOwner, p.DeviceID, p.FixedIPs, ""))
	}
	for _, p := range m.RemotePorts {
		add(fromModel(p.ID, "", p.NetworkID, p.MAC, p.DeviceOwner, p.DeviceID, p.FixedIPs, p.Host))
	}
	// l2population entries no port explains (the topology's own FDB, or entries for
	// ports it does not list) belong to the VTEP they point to.
	for _, fdb := range append(m.L2popFDB(), m.FDB...) {
		for _, e := range fdb.Entries {
			if e.MAC == nil {
				continue
			}
			mac := strings.ToLower(e.MAC.String())
			if _, known := x.byMAC[mac]; known {
				continue
			}
			p := &port{network: fdb.NetworkID, mac: mac, remote: fdb.RemoteIP.String()}
			if e.IP.IsValid() {
				p.ips = []netip.Addr{e.IP}
			}
			add(p)
		}
	}
	for _, h := range m.OtherHosts {
		if h.DVRMAC != nil {
			x.hostMAC[strings.ToLower(h.DVRMAC.String())] = &Owner{Kind: KindHost, ID: h.Name, Name: strings.ToLower(h.DVRMAC.String())}
		}
	}
}

func (x *index) indexSeg(n *network) {
	switch {
	case n.typ == "vlan" && n.hasSeg:
		x.bySeg[fmt.Sprintf("vlan/%s/%d", n.physnet, n.seg)] = n
	case n.typ == "flat":
		x.bySeg["flat/"+n.physnet] = n
	case n.hasSeg && n.typ != "":
		x.bySeg[fmt.Sprintf("tunnel/%d", n.seg)] = n
	}
}

// addInventory adds what OVSDB says: VIFs (iface-id, attached-mac, device name) and the
// local VLANs of br-int's ports, with Neutron's other_config where its agent wrote it.
func (x *index) addInventory(integration string) {
	b := x.bridges[integration]
	if b == nil {
		return
	}
	for _, ip := range b.Ports {
		id := ip.IfaceID()
		var nw *network
		if netID := ip.OtherConfig["net_uuid"]; netID != "" {
			nw = x.network(netID)
			if nw.typ == "" {
				nw.typ, nw.physnet = ip.OtherConfig["network_type"], ip.OtherConfig["physical_network"]
				if seg, err := strconv.ParseInt(ip.OtherConfig["segmentation_id"], 10, 64); err == nil {
					nw.seg, nw.hasSeg = seg, true
				}
				x.indexSeg(nw)
			}
		}
		if id != "" {
			p, ok := x.ports[id]
			if !ok {
				p = &port{id: id}
				if nw != nil {
					p.network = nw.id
				}
				x.ports[id] = p
			}
			p.device = ip.Name
			if mac := strings.ToLower(ip.AttachedMAC()); mac != "" {
				if p.mac == "" {
					p.mac = mac
				}
				if prev, ok := x.byMAC[mac]; !ok || prev.host != "" {
					x.byMAC[mac] = p
				}
			}
			if nw == nil && p.network != "" {
				nw = x.network(p.network)
			}
		}
		if nw != nil && ip.Tag > 0 && ip.Tag < 4095 {
			if _, taken := x.byLVID[ip.Tag]; !taken {
				x.byLVID[ip.Tag] = nw
			}
		}
	}
}

func (x *index) addHost(host string, mac net.HardwareAddr) {
	if mac == nil {
		return
	}
	name := host
	if name == "" {
		name = "this host"
	}
	x.hostMAC[strings.ToLower(mac.String())] = &Owner{Kind: KindHost, ID: name, Name: strings.ToLower(mac.String())}
}

// addCookies indexes the objects dvrflow's cookies name (flows.Cookie: category + hash of
// the object's id), so that the owner of one of its flows is read off the cookie.
func (x *index) addCookies(m *northbound.Model) {
	put := func(c flows.Category, id string, o *Owner) {
		if o != nil {
			x.cookies[cookieKey{c, flows.ObjectHash(id)}] = o
		}
	}
	for br, b := range x.bridges {
		o := &Owner{Kind: KindBridge, ID: br, Name: br}
		put(flows.CategoryBaseline, br, o)
		for _, p := range b.Ports {
			if p.Type != "" && p.Type != "patch" && p.Type != "internal" && p.Options["remote_ip"] != "" {
				put(flows.CategoryTunnelPort, p.Name, &Owner{Kind: KindTunnel, ID: p.Options["remote_ip"], Name: p.Name})
			}
		}
	}
	for br, physnet := range x.physnetOf {
		put(flows.CategoryPhysicalPatch, physnet, &Owner{Kind: KindBridge, ID: br, Name: physnet})
	}
	for id, n := range x.networks {
		put(flows.CategoryLocalVLAN, id, n.owner())
		put(flows.CategoryFlood, id, n.owner())
	}
	for _, p := range x.byMAC {
		put(flows.CategoryL2popUnicast, p.network+"/"+p.mac, p.ownerRef())
		for _, ip := range p.ips {
			put(flows.CategoryARPResponder, p.network+"/"+ip.String(), p.ownerRef())
		}
	}
	for id, p := range x.ports {
		put(flows.CategoryPort, id, p.ownerRef())
		put(flows.CategorySpoofing, id, p.ownerRef())
		put(flows.CategoryDVRServicedPort, id, p.ownerRef())
		if r := x.routerMAC[p.mac]; r != nil && p.owner == northbound.OwnerRouterInterfaceDistributed {
			put(flows.CategoryDVRRouterPort, id, r.owner())
		}
		put(flows.CategoryL2popUnicast, p.network+"/"+p.mac, p.ownerRef())
		for _, ip := range p.ips {
			put(flows.CategoryARPResponder, p.network+"/"+ip.String(), p.ownerRef())
		}
	}
	for mac, h := range x.hostMAC {
		put(flows.CategoryDVRMAC, mac, h)
	}
	x.addFirewallCookies(m, put)
}

// addFirewallCookies indexes the firewall's cookies: a port's own flows (object: port id)
// and a remote group's flows on a network (object: "network id/group id", for every
// security group and address group of the model on every network with a port here).
func (x *index) addFirewallCookies(m *northbound.Model, put func(flows.Category, string, *Owner)) {
	local := map[string]bool{}
	for id, p := range x.ports {
		put(flows.CategoryFirewall, id, p.ownerRef())
		if p.host == "" && p.network != "" {
			local[p.network] = true
		}
	}
	if m == nil || len(local) == 0 {
		return
	}
	type group struct{ kind, id, name string }
	var groups []group
	for _, g := range m.SecurityGroups {
		groups = append(groups, group{KindSecurityGroup, g.ID, g.Name})
	}
	for _, id := range m.WithheldSecurityGroups {
		groups = append(groups, group{KindSecurityGroup, id, ""})
	}
	for _, g := range m.AddressGroups {
		groups = append(groups, group{KindAddressGroup, g.ID, g.Name})
	}
	for netID := range local {
		network := x.network(netID).owner().Name
		if network == "network" { // nothing known but its id
			network = netID
		}
		for _, g := range groups {
			name := g.name
			if name == "" {
				name = g.id
			}
			put(flows.CategoryFirewallRemote, netID+"/"+g.id, &Owner{Kind: g.kind, ID: g.id, Name: name + " on " + network})
		}
	}
}
