package main

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/testbed/neutron"
	"github.com/dvrflow/dvrflow/topology"
)

// fileOut is a topology file as written: topology.File's keys, with the host section's
// firewall_driver (a key the topology format documents and dvrflow's decoder accepts).
type fileOut struct {
	Name           string                   `json:"name"`
	Description    string                   `json:"description"`
	Host           hostOut                  `json:"host"`
	OtherHosts     []topology.OtherHost     `json:"other_hosts,omitempty"`
	Networks       []topology.Network       `json:"networks"`
	Subnets        []topology.Subnet        `json:"subnets,omitempty"`
	Ports          []topology.Port          `json:"ports"`
	RemotePorts    []topology.RemotePort    `json:"remote_ports,omitempty"`
	Routers        []topology.Router        `json:"routers,omitempty"`
	SecurityGroups []topology.SecurityGroup `json:"security_groups,omitempty"`
	AddressGroups  []topology.AddressGroup  `json:"address_groups,omitempty"`
}

type hostOut struct {
	topology.Host
	FirewallDriver string `json:"firewall_driver"`
}

// topology renders the scenario's objects as Neutron has them now, with each local port's
// ofport (byName: br-int port name → ofport).
func (r *run) topology(ctx context.Context, byName map[string]int) ([]byte, error) {
	mode := "legacy"
	if r.sc.dvr {
		mode = "dvr"
	}
	f := fileOut{
		Name:        r.sc.name,
		Description: r.sc.description + " (captured by testbed/neutron/fwcapture)",
		Host: hostOut{Host: topology.Host{
			Name:                     ptr(r.host.Name()),
			AgentMode:                ptr(mode),
			IntegrationBridge:        ptr("br-int"),
			TunnelBridge:             ptr("br-tun"),
			BridgeMappings:           bridgeMappings,
			LocalIP:                  ptr(r.host.LocalIP().String()),
			TunnelTypes:              []string{"vxlan"},
			L2Population:             ptr(true),
			ARPResponder:             ptr(true),
			EnableDistributedRouting: ptr(r.sc.dvr),
		}, FirewallDriver: "openvswitch"},
	}
	if r.sc.dvr {
		f.Host.DVRMAC = ptr(r.dvrMAC)
	}
	if r.sc.needsPeer {
		o := topology.OtherHost{Name: peerName, IP: underlayIP(0).Addr().String()}
		if r.sc.dvr {
			o.DVRMAC = r.c.peerDVRMAC
		}
		f.OtherHosts = append(f.OtherHosts, o)
	}
	for _, n := range r.networks {
		tn := topology.Network{ID: n.ID, Name: n.Name, NetworkType: n.NetworkType, PhysicalNetwork: n.PhysicalNetwork, MTU: n.MTU}
		if n.SegmentationID != nil {
			tn.SegmentationID = int64(*n.SegmentationID)
		}
		f.Networks = append(f.Networks, tn)
	}
	for _, s := range r.subnets {
		f.Subnets = append(f.Subnets, topology.Subnet{ID: s.ID, Name: s.Name, NetworkID: s.NetworkID, CIDR: s.CIDR,
			GatewayIP: s.GatewayIP, IPVersion: s.IPVersion})
	}
	for _, p := range r.ports {
		ofport, ok := byName[portName(p)]
		if !ok {
			return nil, fmt.Errorf("port %s (%s) is not on br-int", p.ID, portName(p))
		}
		tp := topology.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress, DeviceOwner: northbound.DeviceOwner(p.DeviceOwner),
			DeviceID: p.DeviceID, FixedIPs: fixedIPs(p), PortSecurityEnabled: p.PortSecurity == nil || *p.PortSecurity,
			AdminStateUp: p.AdminStateUp, OFPort: ofport, SecurityGroups: slices.Clone(p.SecurityGroups)}
		for _, ap := range p.AllowedAddressPairs {
			tp.AllowedAddressPairs = append(tp.AllowedAddressPairs, topology.AddressPair{IPAddress: ap.IPAddress, MACAddress: ap.MACAddress})
		}
		f.Ports = append(f.Ports, tp)
	}
	for _, p := range r.remote {
		f.RemotePorts = append(f.RemotePorts, topology.RemotePort{Host: p.HostID, ID: p.ID, NetworkID: p.NetworkID, MAC: p.MACAddress,
			DeviceOwner: northbound.DeviceOwner(p.DeviceOwner), DeviceID: p.DeviceID, FixedIPs: fixedIPs(p),
			SecurityGroups: slices.Clone(p.SecurityGroups)})
	}
	for _, rt := range r.routers {
		f.Routers = append(f.Routers, topology.Router{ID: rt.ID, Name: rt.Name, Distributed: rt.Distributed})
	}
	// The groups the ports use: the scenario's own, and the project's default group.
	ids := slices.Clone(r.groups)
	for _, p := range append(slices.Clone(r.ports), r.remote...) {
		for _, g := range p.SecurityGroups {
			if !slices.Contains(ids, g) {
				ids = append(ids, g)
			}
		}
	}
	for _, id := range ids {
		g, err := r.client.GetSecurityGroup(ctx, id)
		if err != nil {
			return nil, err
		}
		f.SecurityGroups = append(f.SecurityGroups, securityGroup(g))
	}
	for _, ag := range r.addrGroups {
		f.AddressGroups = append(f.AddressGroups, topology.AddressGroup{ID: ag.ID, Name: ag.Name, Addresses: ag.Addresses})
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}

func fixedIPs(p *neutron.Port) []topology.FixedIP {
	var out []topology.FixedIP
	for _, ip := range p.FixedIPs {
		out = append(out, topology.FixedIP{SubnetID: ip.SubnetID, IPAddress: ip.IPAddress})
	}
	return out
}

// securityGroup converts a group as the API shows it; its rules are sorted by what they
// say (the API lists them in no stable order), the id last.
func securityGroup(g *neutron.SecurityGroup) topology.SecurityGroup {
	out := topology.SecurityGroup{ID: g.ID, Name: g.Name, Stateful: g.Stateful == nil || *g.Stateful}
	for _, r := range g.Rules {
		out.Rules = append(out.Rules, topology.SecurityGroupRule{
			ID: r.ID, Direction: r.Direction, EtherType: r.EtherType, Protocol: deref(r.Protocol),
			PortRangeMin: r.PortRangeMin, PortRangeMax: r.PortRangeMax, RemoteIPPrefix: deref(r.RemoteIPPrefix),
			RemoteGroupID: deref(r.RemoteGroupID), RemoteAddressGroupID: deref(r.RemoteAddressGroupID),
		})
	}
	key := func(r topology.SecurityGroupRule) string {
		num := func(p *int) string {
			if p == nil {
				return "-"
			}
			return fmt.Sprintf("%05d", *p)
		}
		return strings.Join([]string{r.Direction, r.EtherType, r.Protocol, num(r.PortRangeMin), num(r.PortRangeMax),
			r.RemoteIPPrefix, r.RemoteGroupID, r.RemoteAddressGroupID, r.ID}, "|")
	}
	slices.SortFunc(out.Rules, func(a, b topology.SecurityGroupRule) int { return cmp.Compare(key(a), key(b)) })
	return out
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
