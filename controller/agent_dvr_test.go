package controller_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// dvrAgent runs an in-process agent on a sandbox host for testdata/neutron/scenarios/dvr_vlan.json
// with its ports plugged (router namespaces off: the qr- ports are plugged like VIFs).
func dvrAgent(t *testing.T) (context.Context, *controller.Agent, *sandbox.Host, *ovsdb.Client, *topology.File) {
	t.Helper()
	sandbox.SkipIfShort(t, "real Open vSwitch")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	path := filepath.Join("..", "testdata", "neutron", "scenarios", "dvr_vlan.json")
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("Neutron scenarios missing from testdata/neutron: %v", err)
	}
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	a, h, db := startAgent(t, ctx, "agentdvr", topo)
	plug(t, ctx, h, db, topo.Ports...)
	reconcile(t, ctx, a)
	return ctx, a, h, db, topo
}

// plug plugs the ports and waits until the agent's OVSDB client sees each of them with
// an ofport (the monitor delivers the insert asynchronously).
func plug(t *testing.T, ctx context.Context, h *sandbox.Host, db *ovsdb.Client, ports ...topology.Port) {
	t.Helper()
	first, err := testbed.NextOfport(ctx, h, "br-int")
	if err != nil {
		t.Fatal(err)
	}
	names, err := testbed.PlugPorts(ctx, h, "br-int", first, ports)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		ready := map[string]bool{}
		for _, v := range db.VIFs() {
			ready[v.Name] = v.Ready()
		}
		missing := slices.DeleteFunc(slices.Clone(names), func(n string) bool { return ready[n] })
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("plugged ports without an ofport in the agent's view: %v", missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// reconcile waits for plugged ports to get ofports and converges.
func reconcile(t *testing.T, ctx context.Context, a *controller.Agent) controller.Report {
	t.Helper()
	a.WaitForPorts(ctx, 10*time.Second)
	rep, err := a.Reconcile(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(ctx); err != nil {
		t.Fatal(err)
	}
	return rep
}

// changed returns every flow a reconcile added, modified or deleted.
func changed(rep controller.Report) (added, modified, deleted []flows.Flow) {
	for _, r := range rep.Results {
		for _, c := range r.Added {
			added = append(added, c.Flow)
		}
		for _, c := range r.Modified {
			modified = append(modified, c.Flow)
		}
		for _, c := range r.Deleted {
			deleted = append(deleted, c.Flow)
		}
	}
	return added, modified, deleted
}

// ownedByAny reports whether a flow's cookie names one of the objects.
func ownedByAny(f flows.Flow, objects ...string) bool {
	for _, o := range objects {
		if flows.IsOurs(f.Cookie) && flows.CookieObject(f.Cookie) == flows.ObjectHash(o) {
			return true
		}
	}
	return false
}

func cloneTopology(t *topology.File) *topology.File {
	c := *t
	c.OtherHosts = slices.Clone(t.OtherHosts)
	c.Networks = slices.Clone(t.Networks)
	c.Subnets = slices.Clone(t.Subnets)
	c.Ports = slices.Clone(t.Ports)
	return &c
}

// TestDVRChangesAreIncremental: a third host's DVR MAC, a new subnet on the router and a
// new VM each change only their own flows, as the write path reports; removing the router
// interface removes every flow it caused and nothing else.
func TestDVRChangesAreIncremental(t *testing.T) {
	ctx, a, h, db, base := dvrAgent(t)
	expectOnly := func(t *testing.T, rep controller.Report, wantAdded, wantDeleted bool, owners ...string) {
		t.Helper()
		added, modified, deleted := changed(rep)
		if len(modified) > 0 {
			t.Errorf("modified %d flows, want none: %v", len(modified), modified)
		}
		if wantAdded != (len(added) > 0) || wantDeleted != (len(deleted) > 0) {
			t.Errorf("added %d, deleted %d flows; want added=%v deleted=%v", len(added), len(deleted), wantAdded, wantDeleted)
		}
		for _, f := range append(added, deleted...) {
			if !ownedByAny(f, owners...) {
				t.Errorf("changed a flow owned by none of %v: %s", owners, f)
			}
		}
	}

	t.Run("third host's DVR MAC", func(t *testing.T) {
		topo := cloneTopology(base)
		topo.OtherHosts = append(topo.OtherHosts, topology.OtherHost{Name: "compute4", DVRMAC: "fa:16:3f:00:00:04"})
		a.SetSnapshot(topo.Snapshot())
		rep := reconcile(t, ctx, a)
		expectOnly(t, rep, true, false, "fa:16:3f:00:00:04")
		if n := rep.FlowMods(); n != 2 {
			t.Errorf("%d flow-mods, want 2 (br-int table 0 steering, br-vlan table 3 no-learn output)", n)
		}
		base = topo
	})

	var newNet, newSubnet, newQR = "a0000003-0000-4000-8000-000000000003", "b0000003-0000-4000-8000-000000000003", "d0000003-0000-4000-8000-000000000003"
	t.Run("new subnet on the router", func(t *testing.T) {
		topo := cloneTopology(base)
		topo.Networks = append(topo.Networks, topology.Network{ID: newNet, NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 198})
		topo.Subnets = append(topo.Subnets, topology.Subnet{ID: newSubnet, NetworkID: newNet, CIDR: "10.0.3.0/24", GatewayIP: "10.0.3.1", GatewayMAC: "fa:16:3e:aa:03:01"})
		qr := topology.Port{ID: newQR, NetworkID: newNet, MAC: "fa:16:3e:aa:03:01", DeviceOwner: northbound.OwnerRouterInterfaceDistributed,
			DeviceID: "e0000001-0000-4000-8000-000000000001", FixedIPs: []topology.FixedIP{{SubnetID: newSubnet, IPAddress: "10.0.3.1"}},
			PortSecurityEnabled: true, AdminStateUp: true}
		topo.Ports = append(topo.Ports, qr)
		a.SetSnapshot(topo.Snapshot())
		plug(t, ctx, h, db, qr)
		rep := reconcile(t, ctx, a)
		expectOnly(t, rep, true, false, newNet, newQR)
		base = topo
	})

	newVM := "c0000004-0000-4000-8000-000000000004"
	t.Run("new VM on the new subnet", func(t *testing.T) {
		topo := cloneTopology(base)
		vm := topology.Port{ID: newVM, NetworkID: newNet, MAC: "fa:16:3e:00:03:11", DeviceOwner: "compute:nova",
			FixedIPs: []topology.FixedIP{{SubnetID: newSubnet, IPAddress: "10.0.3.11"}}, PortSecurityEnabled: true, AdminStateUp: true}
		topo.Ports = append(topo.Ports, vm)
		a.SetSnapshot(topo.Snapshot())
		plug(t, ctx, h, db, vm)
		rep := reconcile(t, ctx, a)
		expectOnly(t, rep, true, false, newVM)
		base = topo
	})

	t.Run("removing the router interface removes every flow it caused", func(t *testing.T) {
		topo := cloneTopology(base)
		topo.Ports = slices.DeleteFunc(topo.Ports, func(p topology.Port) bool { return p.ID == newQR })
		a.SetSnapshot(topo.Snapshot())
		if _, err := h.Vsctl(ctx, "del-port", "br-int", testbed.PortName(topology.Port{ID: newQR, DeviceOwner: northbound.OwnerRouterInterfaceDistributed})); err != nil {
			t.Fatal(err)
		}
		rep := reconcile(t, ctx, a)
		// The router port's own flows, and the routed delivery to the VM on its subnet
		// (the VM's dvr-serviced-port flows exist only while the subnet is routed here).
		expectOnly(t, rep, false, true, newQR, newVM)
		for _, br := range a.Bridges() {
			for _, f := range a.Desired()[br] {
				if ownedByAny(f, newQR) || flows.CookieCategory(f.Cookie) == flows.CategoryDVRServicedPort && ownedByAny(f, newVM) {
					t.Errorf("%s still wants a flow of the removed router interface: %s", br, f)
				}
			}
		}
	})
}
