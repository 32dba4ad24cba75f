package northbound

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
)

func mac(s string) net.HardwareAddr {
	hw, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return hw
}

func TestCompare(t *testing.T) {
	base := func() *Model {
		return &Model{
			OtherHosts:  []RemoteHost{{Name: "h2", IP: netip.MustParseAddr("192.0.2.2")}},
			Networks:    []Network{{ID: "n1", Type: Local}, {ID: "n2", Type: Local}},
			Subnets:     []Subnet{{ID: "s1", NetworkID: "n1", CIDR: netip.MustParsePrefix("10.0.0.0/24")}},
			Ports:       []Port{{ID: "p1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:01")}, {ID: "p2", NetworkID: "n2", MAC: mac("fa:16:3e:00:00:02")}},
			RemotePorts: []RemotePort{{Host: "h2", ID: "r1", NetworkID: "n1", MAC: mac("fa:16:3e:00:00:03")}},
			FDB:         []FDB{{NetworkID: "n1", RemoteIP: netip.MustParseAddr("192.0.2.2"), Flood: true}},
			Routers:     []Router{{ID: "r1", Distributed: true, Gateway: &RouterGateway{NetworkID: "n2", EnableSNAT: true}}},
			FloatingIPs: []FloatingIP{{ID: "f1", Address: netip.MustParseAddr("192.0.2.10"), NetworkID: "n2", RouterID: "r1", PortID: "p1", Host: "h1"}},
			SecurityGroups: []SecurityGroup{{ID: "sg1", Stateful: true, Rules: []SecurityGroupRule{
				{ID: "r1", Direction: Ingress, EtherType: IPv4, Protocol: ProtocolNumber(ProtoTCP), PortRangeMin: port(22), PortRangeMax: port(22)}}}},
			WithheldSecurityGroups: []string{"sg2"},
			AddressGroups:          []AddressGroup{{ID: "ag1", Addresses: []netip.Prefix{netip.MustParsePrefix("10.9.0.0/16")}}},
		}
	}
	tests := []struct {
		name string
		old  *Model
		edit func(*Model)
		want Diff
	}{
		{"same", base(), func(*Model) {}, Diff{}},
		{"from nothing", nil, func(*Model) {}, Diff{
			OtherHosts: IDDiff{Added: []string{"h2"}}, Networks: IDDiff{Added: []string{"n1", "n2"}},
			Subnets: IDDiff{Added: []string{"s1"}}, Ports: IDDiff{Added: []string{"p1", "p2"}},
			RemotePorts: IDDiff{Added: []string{"h2/r1"}}, L2popFDB: IDDiff{Added: []string{"n1/192.0.2.2"}},
			Routers: IDDiff{Added: []string{"r1"}}, FloatingIPs: IDDiff{Added: []string{"f1"}},
			SecurityGroups: IDDiff{Added: []string{"sg1"}}, WithheldSecurityGroups: IDDiff{Added: []string{"sg2"}},
			AddressGroups: IDDiff{Added: []string{"ag1"}},
		}},
		{"port added, removed, changed", base(), func(t *Model) {
			t.Ports[0].AdminStateUp = true
			t.Ports = append(t.Ports[:1], Port{ID: "p3", NetworkID: "n2"})
		}, Diff{Ports: IDDiff{Added: []string{"p3"}, Removed: []string{"p2"}, Changed: []string{"p1"}}}},
		{"nested change", base(), func(t *Model) {
			t.Ports[1].FixedIPs = []FixedIP{{SubnetID: "s1", IP: netip.MustParseAddr("10.0.0.5")}}
			t.FDB[0].Entries = []FDBEntry{{MAC: mac("fa:16:3e:00:00:09")}}
		}, Diff{Ports: IDDiff{Changed: []string{"p2"}}, L2popFDB: IDDiff{Changed: []string{"n1/192.0.2.2"}}}},
		{"remote port moves host", base(), func(t *Model) { t.RemotePorts[0].Host = "h3" },
			Diff{RemotePorts: IDDiff{Added: []string{"h3/r1"}, Removed: []string{"h2/r1"}}}},
		{"network and other host", base(), func(t *Model) {
			t.Networks[1].MTU = 1400
			t.OtherHosts = nil
		}, Diff{Networks: IDDiff{Changed: []string{"n2"}}, OtherHosts: IDDiff{Removed: []string{"h2"}}}},
		{"router gateway and floating IP host", base(), func(t *Model) {
			t.Routers[0].Gateway.EnableSNAT = false
			t.FloatingIPs[0].Host = "h2"
		}, Diff{Routers: IDDiff{Changed: []string{"r1"}}, FloatingIPs: IDDiff{Changed: []string{"f1"}}}},
		{"rule port range", base(), func(t *Model) { *t.SecurityGroups[0].Rules[0].PortRangeMax = 23 },
			Diff{SecurityGroups: IDDiff{Changed: []string{"sg1"}}}},
		{"rule protocol and address group", base(), func(t *Model) {
			t.SecurityGroups[0].Rules[0].Protocol = ProtocolNumber(ProtoUDP)
			t.AddressGroups[0].Addresses = nil
		}, Diff{SecurityGroups: IDDiff{Changed: []string{"sg1"}}, AddressGroups: IDDiff{Changed: []string{"ag1"}}}},
		{"group withheld, port's firewall withheld", base(), func(t *Model) {
			t.SecurityGroups, t.WithheldSecurityGroups = nil, []string{"sg1", "sg2"}
			t.Ports[0].SecurityGroups, t.Ports[0].FirewallWithheld = []string{"sg1"}, true
		}, Diff{SecurityGroups: IDDiff{Removed: []string{"sg1"}}, WithheldSecurityGroups: IDDiff{Added: []string{"sg1"}},
			Ports: IDDiff{Changed: []string{"p1"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base()
			tt.edit(n)
			got := Compare(tt.old, n)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compare = %+v\nwant %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, Diff{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}
