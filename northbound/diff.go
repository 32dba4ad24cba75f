package northbound

import (
	"reflect"
	"slices"

	"go.uber.org/zap/zapcore"
)

// IDDiff lists the ids of one kind of object that were added, removed or changed, each
// sorted.
type IDDiff struct {
	Added, Removed, Changed []string
}

// Empty reports whether nothing changed.
func (d IDDiff) Empty() bool {
	return len(d.Added) == 0 && len(d.Removed) == 0 && len(d.Changed) == 0
}

// MarshalLogObject logs the non-empty lists.
func (d IDDiff) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, l := range []struct {
		name string
		ids  []string
	}{{"added", d.Added}, {"removed", d.Removed}, {"changed", d.Changed}} {
		if len(l.ids) > 0 {
			if err := enc.AddArray(l.name, zapcore.ArrayMarshalerFunc(func(a zapcore.ArrayEncoder) error {
				for _, id := range l.ids {
					a.AppendString(id)
				}
				return nil
			})); err != nil {
				return err
			}
		}
	}
	return nil
}

// Diff is what changed between two models, per kind. Objects are identified as in
// [Problem.ID]: by id, remote ports by "host/id", other hosts by name, FDB entries by
// "network_id/remote_ip".
type Diff struct {
	OtherHosts  IDDiff
	Networks    IDDiff
	Subnets     IDDiff
	Ports       IDDiff
	RemotePorts IDDiff
	// GroupMembers are the ports known only as security group members, by port id.
	GroupMembers IDDiff
	L2popFDB     IDDiff
	Routers      IDDiff
	FloatingIPs  IDDiff
	// SecurityGroups compares the valid groups (a changed rule changes its group);
	// WithheldSecurityGroups the withheld ids (a group that becomes invalid is removed
	// from the one and added to the other).
	SecurityGroups         IDDiff
	WithheldSecurityGroups IDDiff
	AddressGroups          IDDiff
}

// Empty reports whether the two models hold the same objects.
func (d Diff) Empty() bool {
	return d.OtherHosts.Empty() && d.Networks.Empty() && d.Subnets.Empty() &&
		d.Ports.Empty() && d.RemotePorts.Empty() && d.GroupMembers.Empty() && d.L2popFDB.Empty() &&
		d.Routers.Empty() && d.FloatingIPs.Empty() && d.SecurityGroups.Empty() &&
		d.WithheldSecurityGroups.Empty() && d.AddressGroups.Empty()
}

// MarshalLogObject logs the kinds that changed, for zap.Object.
func (d Diff) MarshalLogObject(enc zapcore.ObjectEncoder) error {
	for _, k := range []struct {
		name string
		diff IDDiff
	}{{"other_hosts", d.OtherHosts}, {"networks", d.Networks}, {"subnets", d.Subnets},
		{"ports", d.Ports}, {"remote_ports", d.RemotePorts}, {"group_members", d.GroupMembers}, {"l2pop_fdb", d.L2popFDB},
		{"routers", d.Routers}, {"floatingips", d.FloatingIPs}, {"security_groups", d.SecurityGroups},
		{"withheld_security_groups", d.WithheldSecurityGroups}, {"address_groups", d.AddressGroups}} {
		if !k.diff.Empty() {
			if err := enc.AddObject(k.name, k.diff); err != nil {
				return err
			}
		}
	}
	return nil
}

// Compare compares two models (nil is an empty one). Two objects with the same identity
// are "changed" when any attribute differs; of duplicates, the first counts.
func Compare(old, new *Model) Diff {
	if old == nil {
		old = &Model{}
	}
	if new == nil {
		new = &Model{}
	}
	return Diff{
		OtherHosts:     diffBy(old.OtherHosts, new.OtherHosts, func(h RemoteHost) string { return h.Name }),
		Networks:       diffBy(old.Networks, new.Networks, func(n Network) string { return n.ID }),
		Subnets:        diffBy(old.Subnets, new.Subnets, func(s Subnet) string { return s.ID }),
		Ports:          diffBy(old.Ports, new.Ports, func(p Port) string { return p.ID }),
		RemotePorts:    diffBy(old.RemotePorts, new.RemotePorts, func(p RemotePort) string { return p.Key() }),
		GroupMembers:   diffBy(old.GroupMembers, new.GroupMembers, func(g GroupMember) string { return g.PortID }),
		L2popFDB:       diffBy(old.FDB, new.FDB, func(f FDB) string { return f.Key() }),
		Routers:        diffBy(old.Routers, new.Routers, func(r Router) string { return r.ID }),
		FloatingIPs:    diffBy(old.FloatingIPs, new.FloatingIPs, func(f FloatingIP) string { return f.ID }),
		SecurityGroups: diffBy(old.SecurityGroups, new.SecurityGroups, func(g SecurityGroup) string { return g.ID }),
		WithheldSecurityGroups: diffBy(old.WithheldSecurityGroups, new.WithheldSecurityGroups,
			func(id string) string { return id }),
		AddressGroups: diffBy(old.AddressGroups, new.AddressGroups, func(g AddressGroup) string { return g.ID }),
	}
}

// diffBy compares two lists of objects identified by key.
func diffBy[T any](old, new []T, key func(T) string) IDDiff {
	before, after := index(old, key), index(new, key)
	var d IDDiff
	for k, o := range before {
		n, ok := after[k]
		switch {
		case !ok:
			d.Removed = append(d.Removed, k)
		case !reflect.DeepEqual(o, n):
			d.Changed = append(d.Changed, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			d.Added = append(d.Added, k)
		}
	}
	slices.Sort(d.Added)
	slices.Sort(d.Removed)
	slices.Sort(d.Changed)
	return d
}

// index maps each object's key to its first occurrence.
func index[T any](items []T, key func(T) string) map[string]T {
	m := make(map[string]T, len(items))
	for _, it := range items {
		if _, dup := m[key(it)]; !dup {
			m[key(it)] = it
		}
	}
	return m
}
