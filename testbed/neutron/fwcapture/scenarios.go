package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// scenario is one captured situation: what is created over the REST API on a fresh host.
type scenario struct {
	name, description string
	// dvr runs the host's agent with enable_distributed_routing (agent_mode dvr); the
	// others run without, so that no other host's DVR MAC shows in their dumps.
	dvr bool
	// needsPeer: the scenario binds ports to the peer host, or needs its DVR MAC.
	needsPeer bool
	build     func(ctx context.Context, r *run) error
}

// errSkip is returned by a build when the deployment cannot express the scenario.
var errSkip = errors.New("scenario not supported by this deployment")

// run is one scenario's objects, in creation order.
type run struct {
	c       *capture
	sc      *scenario
	idx     int
	project string
	client  *neutron.Client // in the scenario's project
	host    *neutron.AgentHost
	dvrMAC  string

	networks   []*neutron.Network
	subnets    []*neutron.Subnet
	ports      []*neutron.Port // bound to the host, in plug order
	remote     []*neutron.Port // bound to the peer
	groups     []string
	addrGroups []*neutron.AddressGroup
	routers    []*neutron.Router
	plugSubnet map[string]*neutron.Subnet // VM port id → the subnet its VM is configured on
	netOf      map[string]*neutron.Network
}

func ptr[T any](v T) *T { return &v }

// rule builds a rule: direction, ethertype, protocol ("" for any), port range (0, 0 for
// none) and at most one remote ("ip:CIDR", "group:ID" or "ag:ID").
func rule(direction, ethertype, protocol string, min, max int, remote string) neutron.SecurityGroupRule {
	r := neutron.SecurityGroupRule{Direction: direction, EtherType: ethertype}
	if protocol != "" {
		r.Protocol = ptr(protocol)
	}
	if min != 0 || max != 0 {
		r.PortRangeMin = ptr(min)
		if max >= 0 {
			r.PortRangeMax = ptr(max)
		}
	}
	kind, val, _ := strings.Cut(remote, ":")
	switch kind {
	case "ip":
		r.RemoteIPPrefix = ptr(val)
	case "group":
		r.RemoteGroupID = ptr(val)
	case "ag":
		r.RemoteAddressGroupID = ptr(val)
	}
	return r
}

// self stands for the group's own id in a rule's remote.
const self = "group:SELF"

var scenarios = []*scenario{
	{
		name:        "default_group",
		description: "one VM port with the project's default security group (egress any IPv4/IPv6, ingress from members of the same group)",
		build: func(ctx context.Context, r *run) error {
			n, subs, err := r.network(ctx, "vxlan", 1001, "10.101.0.0/24")
			if err != nil {
				return err
			}
			_, err = r.vm(ctx, 1, n, subs, nil)
			return err
		},
	},
	{
		name: "rules",
		description: "one dual-stack VM port in one stateful group: TCP 22, TCP 8000-8080, TCP 1-65535, UDP 53, ICMP 8/0, ICMP any, " +
			"IP protocol 47, IPv6 TCP 443 from ::/0, ICMPv6 128, TCP 3306 from 10.20.0.0/16, egress UDP 123 to 192.0.2.0/24, " +
			"plus the group's default egress rules",
		build: func(ctx context.Context, r *run) error {
			n, subs, err := r.network(ctx, "vxlan", 1002, "10.102.0.0/24", "fd00:102::/64")
			if err != nil {
				return err
			}
			g, err := r.group(ctx, "rules", nil,
				rule("ingress", "IPv4", "tcp", 22, 22, ""),
				rule("ingress", "IPv4", "tcp", 8000, 8080, ""),
				rule("ingress", "IPv4", "tcp", 1, 65535, ""),
				rule("ingress", "IPv4", "udp", 53, 53, ""),
				rule("ingress", "IPv4", "icmp", 8, 0, ""),
				rule("ingress", "IPv4", "icmp", 0, 0, ""),
				rule("ingress", "IPv4", "47", 0, 0, ""),
				rule("ingress", "IPv6", "tcp", 443, 443, "ip:::/0"),
				rule("ingress", "IPv6", "ipv6-icmp", 128, -1, ""),
				rule("ingress", "IPv4", "tcp", 3306, 3306, "ip:10.20.0.0/16"),
				rule("egress", "IPv4", "udp", 123, 123, "ip:192.0.2.0/24"),
			)
			if err != nil {
				return err
			}
			_, err = r.vm(ctx, 1, n, subs, func(p *neutron.PortRequest) { p.SecurityGroups = &[]string{g} })
			return err
		},
	},
	{
		name: "remote_group",
		description: "remote-group rules (conjunctions): group members (TCP 22 and ICMP from members, TCP 80 from an address group) " +
			"with a VM here and a VM bound to the peer host; group db (TCP 5432 from members) with a second VM here",
		needsPeer: true,
		build: func(ctx context.Context, r *run) error {
			n, subs, err := r.network(ctx, "vxlan", 1003, "10.103.0.0/24")
			if err != nil {
				return err
			}
			rules := []neutron.SecurityGroupRule{
				rule("ingress", "IPv4", "tcp", 22, 22, self),
				rule("ingress", "IPv4", "icmp", 0, 0, self),
			}
			ok, err := r.client.HasExtension(ctx, "address-group")
			if err == nil && ok {
				ok, err = r.client.HasExtension(ctx, "security-groups-remote-address-group")
			}
			if err != nil {
				return err
			} else if ok {
				ag, err := r.client.CreateAddressGroup(ctx, "fw-admins", []string{"192.0.2.0/28", "198.51.100.7/32"})
				if err != nil {
					return err
				}
				r.addrGroups = append(r.addrGroups, ag)
				rules = append(rules, rule("ingress", "IPv4", "tcp", 80, 80, "ag:"+ag.ID))
			} else {
				r.c.log.Warn("no address-group extension: the remote_group scenario has no address-group rule")
			}
			members, err := r.group(ctx, "members", nil, rules...)
			if err != nil {
				return err
			}
			db, err := r.group(ctx, "db", nil, rule("ingress", "IPv4", "tcp", 5432, 5432, "group:"+members))
			if err != nil {
				return err
			}
			if _, err := r.vm(ctx, 1, n, subs, func(p *neutron.PortRequest) { p.SecurityGroups = &[]string{members} }); err != nil {
				return err
			}
			if _, err := r.vm(ctx, 2, n, subs, func(p *neutron.PortRequest) { p.SecurityGroups = &[]string{db} }); err != nil {
				return err
			}
			_, err = r.remoteVM(ctx, 1, n, subs, func(p *neutron.PortRequest) { p.SecurityGroups = &[]string{members} })
			return err
		},
	},
	{
		name: "address_pairs",
		description: "one VM port with the default group and allowed address pairs: an IPv4 address, an IPv4 CIDR, " +
			"an address with another MAC, an IPv6 address",
		build: func(ctx context.Context, r *run) error {
			n, subs, err := r.network(ctx, "vxlan", 1004, "10.104.0.0/24")
			if err != nil {
				return err
			}
			_, err = r.vm(ctx, 1, n, subs, func(p *neutron.PortRequest) {
				p.AllowedAddressPairs = []neutron.AddressPair{
					{IPAddress: "10.104.0.200"},
					{IPAddress: "10.104.0.128/28"},
					{IPAddress: "10.104.0.201", MACAddress: "fa:16:3e:04:aa:01"},
					{IPAddress: "fd00:104::200"},
				}
			})
			return err
		},
	},
	{
		name:        "no_port_security",
		description: "one VM port with port_security_enabled false and no security groups",
		build: func(ctx context.Context, r *run) error {
			n, subs, err := r.network(ctx, "vxlan", 1005, "10.105.0.0/24")
			if err != nil {
				return err
			}
			_, err = r.vm(ctx, 1, n, subs, func(p *neutron.PortRequest) {
				p.PortSecurity = ptr(false)
				p.SecurityGroups = &[]string{}
			})
			return err
		},
	},
	{
		name:        "stateless",
		description: "one VM port in a stateless group (stateful false): TCP 22, UDP 53, ICMP any, plus the group's default egress rules",
		build: func(ctx context.Context, r *run) error {
			if ok, err := r.client.HasExtension(ctx, "stateful-security-group"); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("%w: no stateful-security-group extension", errSkip)
			}
			n, subs, err := r.network(ctx, "vxlan", 1006, "10.106.0.0/24")
			if err != nil {
				return err
			}
			g, err := r.group(ctx, "stateless", ptr(false),
				rule("ingress", "IPv4", "tcp", 22, 22, ""),
				rule("ingress", "IPv4", "udp", 53, 53, ""),
				rule("ingress", "IPv4", "icmp", 0, 0, ""),
			)
			if err != nil {
				return err
			}
			_, err = r.vm(ctx, 1, n, subs, func(p *neutron.PortRequest) { p.SecurityGroups = &[]string{g} })
			return err
		},
	},
	{
		name: "dvr",
		description: "DVR (agent_mode dvr): a VLAN and a VXLAN network joined by a distributed router, a VM with the default group " +
			"on each; the peer host is a DVR host too",
		dvr:       true,
		needsPeer: true,
		build: func(ctx context.Context, r *run) error {
			vlan, vlanSubs, err := r.network(ctx, "vlan", 107, "10.107.0.0/24")
			if err != nil {
				return err
			}
			vxlan, vxlanSubs, err := r.network(ctx, "vxlan", 1007, "10.117.0.0/24")
			if err != nil {
				return err
			}
			if _, err := r.vm(ctx, 1, vlan, vlanSubs, nil); err != nil {
				return err
			}
			if _, err := r.vm(ctx, 2, vxlan, vxlanSubs, nil); err != nil {
				return err
			}
			router, err := r.client.CreateRouter(ctx, neutron.RouterRequest{Name: "fw-dvr", Distributed: true})
			if err != nil {
				return err
			}
			r.routers = append(r.routers, router)
			for _, s := range []*neutron.Subnet{vlanSubs[0], vxlanSubs[0]} {
				ifc, err := r.client.AddRouterInterface(ctx, router.ID, s.ID)
				if err != nil {
					return err
				}
				p, err := r.client.GetPort(ctx, ifc.PortID)
				if err != nil {
					return err
				}
				r.ports = append(r.ports, p)
			}
			return nil
		},
	},
}

// network creates a network of the kind (vlan on physnet1, or vxlan) with the segment, and
// a subnet for each CIDR.
func (r *run) network(ctx context.Context, kind string, seg int, cidrs ...string) (*neutron.Network, []*neutron.Subnet, error) {
	req := neutron.NetworkRequest{Name: fmt.Sprintf("fw-%s-%s", r.sc.name, kind), NetworkType: kind, SegmentationID: seg}
	if kind == "vlan" {
		req.PhysicalNetwork = "physnet1"
	}
	n, err := r.client.CreateNetwork(ctx, req)
	if err != nil {
		return nil, nil, err
	}
	r.networks = append(r.networks, n)
	if r.netOf == nil {
		r.netOf = map[string]*neutron.Network{}
	}
	r.netOf[n.ID] = n
	var subs []*neutron.Subnet
	for _, c := range cidrs {
		v := 4
		if strings.Contains(c, ":") {
			v = 6
		}
		s, err := r.client.CreateSubnet(ctx, neutron.SubnetRequest{Name: n.Name + fmt.Sprintf("-v%d", v), NetworkID: n.ID, CIDR: c, IPVersion: v})
		if err != nil {
			return nil, nil, err
		}
		r.subnets = append(r.subnets, s)
		subs = append(subs, s)
	}
	return n, subs, nil
}

// group creates a security group with the rules (a remote of SELF is the group itself) and
// returns its id.
func (r *run) group(ctx context.Context, name string, stateful *bool, rules ...neutron.SecurityGroupRule) (string, error) {
	g, err := r.client.CreateSecurityGroup(ctx, "fw-"+name, stateful)
	if err != nil {
		return "", err
	}
	for _, ru := range rules {
		if ru.RemoteGroupID != nil && *ru.RemoteGroupID == "SELF" {
			ru.RemoteGroupID = ptr(g.ID)
		}
		if err := r.client.AddSecurityGroupRule(ctx, g.ID, ru); err != nil {
			return "", err
		}
	}
	r.groups = append(r.groups, g.ID)
	return g.ID, nil
}

// hostAddr is the address number n of the prefix (10.101.0.0/24, 11 → 10.101.0.11).
func hostAddr(cidr string, n int) string {
	p := netip.MustParsePrefix(cidr)
	a := p.Addr().As16()
	a[15] += byte(n)
	addr := netip.AddrFrom16(a)
	if p.Addr().Is4() {
		addr = addr.Unmap()
	}
	return addr.String()
}

// vm creates VM port number n on the network, bound to the scenario's host, with a fixed
// MAC (fa:16:3e:<scenario>:00:<n>) and address .1n in each subnet; mod adjusts the request.
func (r *run) vm(ctx context.Context, n int, net *neutron.Network, subs []*neutron.Subnet, mod func(*neutron.PortRequest)) (*neutron.Port, error) {
	p, err := r.createVM(ctx, n, 0, r.host.Name(), net, subs, mod)
	if err != nil {
		return nil, err
	}
	r.ports = append(r.ports, p)
	return p, nil
}

// remoteVM is vm on the peer host (MAC fa:16:3e:<scenario>:01:<n>, address .10n).
func (r *run) remoteVM(ctx context.Context, n int, net *neutron.Network, subs []*neutron.Subnet, mod func(*neutron.PortRequest)) (*neutron.Port, error) {
	p, err := r.createVM(ctx, n, 1, peerName, net, subs, mod)
	if err != nil {
		return nil, err
	}
	r.remote = append(r.remote, p)
	return p, nil
}

func (r *run) createVM(ctx context.Context, n, where int, host string, net *neutron.Network, subs []*neutron.Subnet, mod func(*neutron.PortRequest)) (*neutron.Port, error) {
	req := neutron.PortRequest{
		Name:        fmt.Sprintf("fw-%s-vm%d", r.sc.name, n),
		NetworkID:   net.ID,
		MACAddress:  fmt.Sprintf("fa:16:3e:%02x:%02x:%02x", r.idx, where, n),
		DeviceOwner: "compute:nova",
		DeviceID:    fmt.Sprintf("f%07x-0000-4000-8000-%012x", r.idx, where*256+n),
		HostID:      host,
	}
	if where == 1 {
		req.Name += "-peer"
	}
	for _, s := range subs {
		req.FixedIPs = append(req.FixedIPs, neutron.FixedIP{SubnetID: s.ID, IPAddress: hostAddr(s.CIDR, 10+where*90+n)})
	}
	if mod != nil {
		mod(&req)
	}
	p, err := r.client.CreatePort(ctx, req)
	if err != nil {
		return nil, err
	}
	if p.VIFType != "ovs" {
		return nil, fmt.Errorf("port %s bound to %s with vif_type %q", p.ID, host, p.VIFType)
	}
	if r.plugSubnet == nil {
		r.plugSubnet = map[string]*neutron.Subnet{}
	}
	r.plugSubnet[p.ID] = subs[0]
	return p, nil
}

// portName is the port's br-int port name, as os-vif and the L3 agent name it.
func portName(p *neutron.Port) string {
	if p.DeviceOwner == "network:router_interface_distributed" {
		return "qr-" + p.ID[:11]
	}
	return "tap" + p.ID[:11]
}

// plug plugs the port on host h: a VM (veth, os-vif style) or a router's qr- port.
func (r *run) plug(ctx context.Context, h *neutron.AgentHost, p *neutron.Port) error {
	if strings.HasPrefix(p.DeviceOwner, "compute:") {
		_, err := h.PlugVM(ctx, p, r.plugSubnet[p.ID], r.netOf[p.NetworkID].MTU)
		return err
	}
	return h.PlugInternal(ctx, portName(p), p)
}
