package northbound

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// routerModel is one distributed router R with interfaces on a VXLAN network X and a VLAN
// network Y, seen from a host that has a VM on X. The other hosts: b has a VM on Y (so it
// hosts R), c a VM on Z, which R does not route (so it does not), d R's centralized SNAT port
// (its dvr_snat host), e a DHCP port on Y but no tunnel endpoint.
func routerModel() *Model {
	ip := netip.MustParseAddr
	fixed := func(subnet, addr string) []FixedIP { return []FixedIP{{SubnetID: subnet, IP: ip(addr)}} }
	vxlan := []NetworkType{VXLAN}
	return &Model{
		OtherHosts: []RemoteHost{
			{Name: "b", IP: ip("192.0.2.2"), TunnelTypes: vxlan}, {Name: "c", IP: ip("192.0.2.3"), TunnelTypes: vxlan},
			{Name: "d", IP: ip("192.0.2.4"), TunnelTypes: vxlan}, {Name: "e", TunnelTypes: vxlan},
		},
		Networks: []Network{{ID: "x", Type: VXLAN, SegmentationID: 1}, {ID: "y", Type: VLAN, Physnet: "p", SegmentationID: 2}, {ID: "z", Type: VXLAN, SegmentationID: 3}},
		Subnets: []Subnet{
			{ID: "sx", NetworkID: "x", CIDR: netip.MustParsePrefix("10.0.1.0/24")},
			{ID: "sy", NetworkID: "y", CIDR: netip.MustParsePrefix("10.0.2.0/24")},
			{ID: "sz", NetworkID: "z", CIDR: netip.MustParsePrefix("10.0.3.0/24")},
		},
		Ports: []Port{
			{ID: "qr-x", NetworkID: "x", MAC: mac("fa:16:3e:aa:01:01"), DeviceOwner: OwnerRouterInterfaceDistributed, DeviceID: "r", FixedIPs: fixed("sx", "10.0.1.1")},
			{ID: "qr-y", NetworkID: "y", MAC: mac("fa:16:3e:aa:02:01"), DeviceOwner: OwnerRouterInterfaceDistributed, DeviceID: "r", FixedIPs: fixed("sy", "10.0.2.1")},
			{ID: "vm-a", NetworkID: "x", MAC: mac("fa:16:3e:00:01:0a"), DeviceOwner: OwnerCompute, FixedIPs: fixed("sx", "10.0.1.10")},
		},
		RemotePorts: []RemotePort{
			{Host: "b", ID: "vm-b", NetworkID: "y", MAC: mac("fa:16:3e:00:02:0b"), DeviceOwner: OwnerCompute, FixedIPs: fixed("sy", "10.0.2.11")},
			{Host: "c", ID: "vm-c", NetworkID: "z", MAC: mac("fa:16:3e:00:03:0c"), DeviceOwner: OwnerCompute, FixedIPs: fixed("sz", "10.0.3.12")},
			{Host: "d", ID: "sg-y", NetworkID: "y", MAC: mac("fa:16:3e:00:02:0d"), DeviceOwner: OwnerRouterCentralizedSNAT, DeviceID: "r", FixedIPs: fixed("sy", "10.0.2.13")},
			{Host: "e", ID: "dhcp-y", NetworkID: "y", MAC: mac("fa:16:3e:00:02:0e"), DeviceOwner: OwnerDHCP, FixedIPs: fixed("sy", "10.0.2.2")},
		},
	}
}

func TestRouterHosts(t *testing.T) {
	got := routerModel().RouterHosts()
	want := []RouterHost{
		{Router: "r", Host: "b", Networks: []string{"x", "y"}},
		{Router: "r", Host: "d", Networks: []string{"x", "y"}},
		{Router: "r", Host: "e", Networks: []string{"x", "y"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RouterHosts = %+v\nwant %+v", got, want)
	}
}

// A host that hosts the router floods on the router's tunnelled networks even when the
// model lists none of its router interfaces: b (a VM on the VLAN network) and d (the SNAT
// port) get X's flooding entry; c, whose VM is on a network the router does not route, gets
// only its own network's; e has no tunnel endpoint.
func TestL2popFDBFloodsToRouterHosts(t *testing.T) {
	var got []string
	for _, f := range routerModel().L2popFDB() {
		line := fmt.Sprintf("%s %s flood=%v", f.NetworkID, f.RemoteIP, f.Flood)
		for _, e := range f.Entries {
			line += fmt.Sprintf(" [%s %s]", e.MAC, e.IP)
		}
		got = append(got, line)
	}
	want := []string{
		"x 192.0.2.2 flood=true",
		"x 192.0.2.4 flood=true",
		"z 192.0.2.3 flood=true [fa:16:3e:00:03:0c 10.0.3.12]",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("L2popFDB:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
