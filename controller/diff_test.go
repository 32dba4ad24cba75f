package controller

import (
	"reflect"
	"testing"
)

func TestDiffTopology(t *testing.T) {
	base := func() *Topology {
		return &Topology{
			OtherHosts:  []OtherHost{{Name: "h2", IP: "192.0.2.2"}},
			Networks:    []Network{{ID: "n1", NetworkType: "local"}, {ID: "n2", NetworkType: "local"}},
			Subnets:     []Subnet{{ID: "s1", NetworkID: "n1", CIDR: "10.0.0.0/24"}},
			Ports:       []Port{{ID: "p1", NetworkID: "n1", MAC: "fa:16:3e:00:00:01"}, {ID: "p2", NetworkID: "n2", MAC: "fa:16:3e:00:00:02"}},
			RemotePorts: []RemotePort{{Host: "h2", ID: "r1", NetworkID: "n1", MAC: "fa:16:3e:00:00:03"}},
			L2popFDB:    []FDB{{NetworkID: "n1", RemoteIP: "192.0.2.2", Flood: true}},
		}
	}
	tests := []struct {
		name string
		old  *Topology
		edit func(*Topology)
		want TopologyDiff
	}{
		{"same", base(), func(*Topology) {}, TopologyDiff{}},
		{"from nothing", nil, func(*Topology) {}, TopologyDiff{
			OtherHosts: IDDiff{Added: []string{"h2"}}, Networks: IDDiff{Added: []string{"n1", "n2"}},
			Subnets: IDDiff{Added: []string{"s1"}}, Ports: IDDiff{Added: []string{"p1", "p2"}},
			RemotePorts: IDDiff{Added: []string{"h2/r1"}}, L2popFDB: IDDiff{Added: []string{"n1/192.0.2.2"}},
		}},
		{"port added, removed, changed", base(), func(t *Topology) {
			t.Ports[0].AdminStateUp = true
			t.Ports = append(t.Ports[:1], Port{ID: "p3", NetworkID: "n2"})
		}, TopologyDiff{Ports: IDDiff{Added: []string{"p3"}, Removed: []string{"p2"}, Changed: []string{"p1"}}}},
		{"nested change", base(), func(t *Topology) {
			t.Ports[1].FixedIPs = []FixedIP{{SubnetID: "s1", IPAddress: "10.0.0.5"}}
			t.L2popFDB[0].Entries = []FDBEntry{{MAC: "fa:16:3e:00:00:09"}}
		}, TopologyDiff{Ports: IDDiff{Changed: []string{"p2"}}, L2popFDB: IDDiff{Changed: []string{"n1/192.0.2.2"}}}},
		{"remote port moves host", base(), func(t *Topology) { t.RemotePorts[0].Host = "h3" },
			TopologyDiff{RemotePorts: IDDiff{Added: []string{"h3/r1"}, Removed: []string{"h2/r1"}}}},
		{"host section", base(), func(t *Topology) { yes := true; t.Host = &TopologyHost{L2Population: &yes} },
			TopologyDiff{Host: true}},
		{"network and other host", base(), func(t *Topology) {
			t.Networks[1].MTU = 1400
			t.OtherHosts = nil
		}, TopologyDiff{Networks: IDDiff{Changed: []string{"n2"}}, OtherHosts: IDDiff{Removed: []string{"h2"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := base()
			tt.edit(n)
			got := DiffTopology(tt.old, n)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DiffTopology = %+v\nwant %+v", got, tt.want)
			}
			if got.Empty() != reflect.DeepEqual(tt.want, TopologyDiff{}) {
				t.Errorf("Empty() = %v", got.Empty())
			}
		})
	}
}
