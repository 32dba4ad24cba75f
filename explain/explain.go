package explain

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Explainer explains the flows of one node.
type Explainer struct {
	x *index
}

// New indexes the node for explaining its flows.
func New(n Node) *Explainer { return &Explainer{x: newIndex(n)} }

// Role returns the role of a bridge: integration, tunnel, physical or other.
func (e *Explainer) Role(bridge string) Role { return e.x.roles[bridge] }

// TableName returns the pipeline's name of a table of the bridge ("" when unnamed).
func (e *Explainer) TableName(bridge string, table uint8) string {
	if t, ok := e.x.roles[bridge].pipeline().Lookup(table); ok {
		return t.Name
	}
	return ""
}

// TableNumber resolves a table of the bridge given by number or name.
func (e *Explainer) TableNumber(bridge, ref string) (uint8, bool) {
	if n, err := strconv.ParseUint(ref, 10, 8); err == nil {
		return uint8(n), true
	}
	for _, t := range e.x.roles[bridge].pipeline() {
		if t.Name == ref {
			return t.Number, true
		}
	}
	if b := e.x.bridges[bridge]; b != nil {
		for n, name := range b.Tables {
			if name == ref {
				return n, true
			}
		}
	}
	return 0, false
}

// Explain says which rule made a flow of the bridge and which object it belongs to. For
// dvrflow's flows the owner is read off the cookie; for others (and where the cookie's
// object is unknown here) it is found from the flow's fields.
func (e *Explainer) Explain(bridge string, fl *dumptext.Flow) Explanation {
	c := &flowCtx{bridge: bridge, role: e.x.roles[bridge], flow: fl, e: e}
	out := Explanation{TableName: e.TableName(bridge, fl.Table)}
	r := e.x.match(c)
	if r != nil {
		out.Rule = r.id
	}
	if r != nil && r.owner != nil {
		out.Owner = r.owner(e.x, c)
	}
	// dvrflow's cookie names the object, except that a bridge's own cookie (a baseline
	// flow) says less than a shape that names another bridge.
	if info := flows.DescribeCookie(fl.Cookie); info.Ours {
		if o := e.x.cookies[cookieKey{info.Category, info.ObjectHash}]; o != nil && (o.Kind != KindBridge || out.Owner == nil) {
			cp := *o
			out.Owner = &cp
			return out
		}
	}
	if out.Owner == nil && c.role != RoleOther {
		out.Owner = bridgeOwner(e.x, c)
	}
	return out
}

// match returns the first rule of the catalogue the flow fits, nil if none.
func (x *index) match(c *flowCtx) *rule {
	if c.role == RoleOther {
		return nil
	}
	names := make([]string, len(c.flow.Match))
	for i, m := range c.flow.Match {
		names[i] = m.Name
	}
	set := fieldSet(names...)
	for i := range rules {
		r := &rules[i]
		if r.role != c.role || (r.priority >= 0 && r.priority != int(c.flow.Priority)) {
			continue
		}
		if !containsTable(r.tables, c.flow.Table) {
			continue
		}
		if r.fields != anyFields && r.fields != set {
			continue
		}
		if r.check != nil && !r.check(x, c) {
			continue
		}
		return r
	}
	return nil
}

func containsTable(ts []uint8, n uint8) bool {
	for _, t := range ts {
		if t == n {
			return true
		}
	}
	return false
}

// flowCtx is one flow being explained.
type flowCtx struct {
	bridge string
	role   Role
	flow   *dumptext.Flow
	e      *Explainer
}

func (c *flowCtx) tableNumber(ref string) string {
	if n, ok := c.e.TableNumber(c.bridge, ref); ok {
		return strconv.Itoa(int(n))
	}
	return ref
}

// port resolves a port of the bridge given as ovs-ofctl prints it: a number or a name.
func (c *flowCtx) port(x *index, ref string) *ovsdb.InventoryPort {
	if n, err := strconv.Atoi(ref); err == nil {
		return x.byOfport[c.bridge][n]
	}
	return x.byPortName[c.bridge][ref]
}

func (c *flowCtx) inPort(x *index) *ovsdb.InventoryPort {
	v, ok := c.flow.Get("in_port")
	if !ok {
		return nil
	}
	return c.port(x, v)
}

// Owners.

func bridgeOwner(x *index, c *flowCtx) *Owner {
	name := c.bridge
	if physnet := x.physnetOf[c.bridge]; physnet != "" {
		name = physnet
	}
	return &Owner{Kind: KindBridge, ID: c.bridge, Name: name}
}

func physicalBridgeOwner(x *index, c *flowCtx) *Owner { return bridgeOwner(x, c) }

// peerBridgeOwner is the bridge at the other end of the in_port patch port.
func peerBridgeOwner(x *index, c *flowCtx) *Owner {
	p := c.inPort(x)
	if p == nil {
		return nil
	}
	peer := x.peerBridge[c.bridge+"/"+p.Name]
	if peer == "" {
		return nil
	}
	name := peer
	if physnet := x.physnetOf[peer]; physnet != "" {
		name = physnet
	}
	return &Owner{Kind: KindBridge, ID: peer, Name: name}
}

func portOwnerFromInventory(x *index, p *ovsdb.InventoryPort) *Owner {
	if p == nil {
		return nil
	}
	if id := p.IfaceID(); id != "" {
		if known := x.ports[id]; known != nil {
			return known.ownerRef()
		}
		return &Owner{Kind: KindPort, ID: id, Name: p.Name}
	}
	if p.Options["remote_ip"] != "" {
		return &Owner{Kind: KindTunnel, ID: p.Options["remote_ip"], Name: p.Name}
	}
	return nil
}

func portOwnerByInPort(x *index, c *flowCtx) *Owner { return portOwnerFromInventory(x, c.inPort(x)) }

func tunnelOwnerByInPort(x *index, c *flowCtx) *Owner {
	p := c.inPort(x)
	if p == nil {
		return nil
	}
	return &Owner{Kind: KindTunnel, ID: p.Options["remote_ip"], Name: p.Name}
}

// vlanValue reads a VLAN id from dl_vlan=N or vlan_tci=0xNNNN/0x0fff (a learned flow).
func vlanValue(c *flowCtx, field string) (int, bool) {
	v, ok := c.flow.Get(field)
	if !ok {
		return 0, false
	}
	if field == "vlan_tci" {
		val, _, _ := strings.Cut(v, "/")
		n, err := strconv.ParseUint(strings.TrimPrefix(val, "0x"), 16, 16)
		if err != nil {
			return 0, false
		}
		return int(n & 0xfff), true
	}
	n, err := strconv.Atoi(v)
	return n, err == nil
}

func networkByLVID(field string) func(*index, *flowCtx) *Owner {
	return func(x *index, c *flowCtx) *Owner {
		if v, ok := vlanValue(c, field); ok {
			if n := x.byLVID[v]; n != nil {
				return n.owner()
			}
		}
		return nil
	}
}

// networkByProviderVLAN finds the network of I15/I16: the physnet of the in_port patch
// and the provider VLAN (or flat), else the local VLAN the flow tags frames with.
func networkByProviderVLAN(x *index, c *flowCtx) *Owner {
	if p := c.inPort(x); p != nil {
		physnet := x.physnetOf[x.peerBridge[c.bridge+"/"+p.Name]]
		if seg, ok := c.flow.Get("dl_vlan"); ok {
			if n := x.bySeg["vlan/"+physnet+"/"+seg]; n != nil {
				return n.owner()
			}
		} else if n := x.bySeg["flat/"+physnet]; n != nil {
			return n.owner()
		}
	}
	if lvid, ok := setVLANAction(c.flow.Actions); ok {
		if n := x.byLVID[lvid]; n != nil {
			return n.owner()
		}
	}
	// Without the in_port's bridge: the only VLAN network of that segment, if one.
	if seg, ok := c.flow.Get("dl_vlan"); ok {
		var found *network
		for key, n := range x.bySeg {
			if strings.HasPrefix(key, "vlan/") && strings.HasSuffix(key, "/"+seg) {
				if found != nil {
					return nil
				}
				found = n
			}
		}
		if found != nil {
			return found.owner()
		}
	}
	return nil
}

// setVLANAction reads the VLAN a flow tags frames with: set_field:4097->vlan_vid (OpenFlow
// 1.3 carries the present bit) or mod_vlan_vid:1.
func setVLANAction(actions []string) (int, bool) {
	for _, a := range actions {
		if v, ok := strings.CutPrefix(a, "mod_vlan_vid:"); ok {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
		if v, ok := strings.CutPrefix(a, "set_field:"); ok && strings.HasSuffix(v, "->vlan_vid") {
			n, err := strconv.Atoi(strings.TrimSuffix(v, "->vlan_vid"))
			return n &^ 0x1000, err == nil
		}
	}
	return 0, false
}

func networkBySegment(x *index, c *flowCtx) *Owner {
	v, ok := c.flow.Get("tun_id")
	if !ok {
		return nil
	}
	seg, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 64)
	if err != nil {
		return nil
	}
	if n := x.bySeg["tunnel/"+strconv.FormatUint(seg, 10)]; n != nil {
		return n.owner()
	}
	if lvid, ok := setVLANAction(c.flow.Actions); ok {
		if n := x.byLVID[lvid]; n != nil {
			return n.owner()
		}
	}
	return nil
}

// portByMACOrNetwork finds the port whose MAC the flow matches in macField, else the
// network of its VLAN (vlanField; "" to skip).
func portByMACOrNetwork(macField, vlanField string) func(*index, *flowCtx) *Owner {
	return func(x *index, c *flowCtx) *Owner {
		if mac, ok := c.flow.Get(macField); ok {
			if p := x.byMAC[strings.ToLower(mac)]; p != nil {
				return p.ownerRef()
			}
		}
		if vlanField != "" {
			return networkByLVID(vlanField)(x, c)
		}
		// A DVR flow for a port this node does not know: the output port says.
		for _, a := range c.flow.Actions {
			if ref, ok := strings.CutPrefix(a, "output:"); ok {
				if o := portOwnerFromInventory(x, c.port(x, ref)); o != nil {
					return o
				}
			}
		}
		return nil
	}
}

// portByIPOrNetwork finds the remote port an ARP responder flow answers for.
func portByIPOrNetwork(x *index, c *flowCtx) *Owner {
	ip, _ := c.flow.Get("arp_tpa")
	if v, ok := vlanValue(c, "dl_vlan"); ok {
		if n := x.byLVID[v]; n != nil {
			if p := x.byNetIP[n.id+"/"+ip]; p != nil {
				return p.ownerRef()
			}
			return n.owner()
		}
	}
	return nil
}

func hostByMAC(field string) func(*index, *flowCtx) *Owner {
	return func(x *index, c *flowCtx) *Owner {
		mac, ok := c.flow.Get(field)
		if !ok {
			return nil
		}
		mac = strings.ToLower(mac)
		if h := x.hostMAC[mac]; h != nil {
			cp := *h
			return &cp
		}
		return &Owner{Kind: KindHost, ID: "", Name: mac}
	}
}

func routerOwnerByMAC(x *index, mac string) *Owner {
	mac = strings.ToLower(mac)
	if r := x.routerMAC[mac]; r != nil {
		return r.owner()
	}
	if p := x.byMAC[mac]; p != nil {
		return p.ownerRef()
	}
	return nil
}

func routerByMAC(field string) func(*index, *flowCtx) *Owner {
	return func(x *index, c *flowCtx) *Owner {
		mac, ok := c.flow.Get(field)
		if !ok {
			return nil
		}
		return routerOwnerByMAC(x, mac)
	}
}

// routerBySetEthDst finds the router of I32 by the MAC it writes as destination.
func routerBySetEthDst(x *index, c *flowCtx) *Owner {
	for _, a := range c.flow.Actions {
		if v, ok := strings.CutPrefix(a, "set_field:"); ok && strings.HasSuffix(v, "->eth_dst") {
			return routerOwnerByMAC(x, strings.TrimSuffix(v, "->eth_dst"))
		}
		if v, ok := strings.CutPrefix(a, "mod_dl_dst:"); ok {
			return routerOwnerByMAC(x, v)
		}
	}
	return nil
}

func routerByIP(x *index, c *flowCtx) *Owner {
	v, ok := c.flow.Get("arp_tpa")
	if !ok {
		return nil
	}
	ip, err := netip.ParseAddr(v)
	if err != nil {
		return nil
	}
	if r := x.routerIP[ip]; r != nil {
		return r.owner()
	}
	return networkByLVID("dl_vlan")(x, c)
}

// firewallPortOwner is the port a firewall flow concerns: its reg5 (the port's ofport, as
// Neutron's driver loads it), its in_port, or its destination MAC.
func firewallPortOwner(x *index, c *flowCtx) *Owner {
	if v, ok := c.flow.Get("reg5"); ok {
		n, err := strconv.ParseUint(strings.TrimPrefix(v, "0x"), 16, 32)
		if strings.HasPrefix(v, "0x") && err == nil {
			if o := portOwnerFromInventory(x, c.port(x, strconv.FormatUint(n, 10))); o != nil {
				return o
			}
		} else if o := portOwnerFromInventory(x, c.port(x, v)); o != nil {
			return o
		}
	}
	if o := portOwnerByInPort(x, c); o != nil {
		return o
	}
	if mac, ok := c.flow.Get("dl_dst"); ok {
		if p := x.byMAC[strings.ToLower(mac)]; p != nil {
			return p.ownerRef()
		}
	}
	return bridgeOwner(x, c)
}
