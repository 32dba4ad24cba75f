package controller

import (
	"fmt"
	"sort"
)

// MinLocalVLAN and MaxLocalVLAN bound the local VLAN ids (4095 is the dead VLAN).
const (
	MinLocalVLAN = 1
	MaxLocalVLAN = 4094
)

// LocalVLANs allocates br-int's local VLAN ids, one per network provisioned on this host,
// as Neutron's agent does: the lowest free id, kept for as long as the network has ports
// here. Allocations survive an agent restart because they are recovered from the ports'
// tags in OVSDB ([LocalVLANs.Recover]) before anything new is allocated.
//
// Not safe for concurrent use; the agent's event loop owns it.
type LocalVLANs struct {
	byNetwork map[string]uint16
	owner     map[uint16]string
}

// NewLocalVLANs returns an empty allocator.
func NewLocalVLANs() *LocalVLANs {
	return &LocalVLANs{byNetwork: map[string]uint16{}, owner: map[uint16]string{}}
}

// Get returns the network's local VLAN, if it has one.
func (a *LocalVLANs) Get(network string) (uint16, bool) {
	v, ok := a.byNetwork[network]
	return v, ok
}

// Recover claims vlan for network (found as a port tag in OVSDB). It returns false, and
// changes nothing, when the network already has another VLAN or vlan belongs to another
// network or is out of range: the port is then re-tagged with the allocated VLAN.
func (a *LocalVLANs) Recover(network string, vlan uint16) bool {
	if vlan < MinLocalVLAN || vlan > MaxLocalVLAN {
		return false
	}
	if cur, ok := a.byNetwork[network]; ok {
		return cur == vlan
	}
	if _, taken := a.owner[vlan]; taken {
		return false
	}
	a.byNetwork[network] = vlan
	a.owner[vlan] = network
	return true
}

// Allocate returns the network's local VLAN, allocating the lowest free one if it has none.
func (a *LocalVLANs) Allocate(network string) (uint16, error) {
	if v, ok := a.byNetwork[network]; ok {
		return v, nil
	}
	for v := uint16(MinLocalVLAN); v <= MaxLocalVLAN; v++ {
		if _, taken := a.owner[v]; !taken {
			a.byNetwork[network] = v
			a.owner[v] = network
			return v, nil
		}
	}
	return 0, fmt.Errorf("local vlan for network %s: all %d local VLANs are in use", network, MaxLocalVLAN)
}

// Release returns the network's local VLAN to the pool.
func (a *LocalVLANs) Release(network string) {
	if v, ok := a.byNetwork[network]; ok {
		delete(a.owner, v)
		delete(a.byNetwork, network)
	}
}

// Networks returns the networks holding a local VLAN, sorted.
func (a *LocalVLANs) Networks() []string {
	ns := make([]string, 0, len(a.byNetwork))
	for n := range a.byNetwork {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return ns
}
