package e2e

import (
	"context"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// TestNeutronHarness proves the Neutron test harness (testbed/neutron): a real
// neutron-server with RabbitMQ and MariaDB, Neutron's own Python agent on two sandbox
// hosts (openvswitch and iptables_hybrid firewalls) on one underlay, VXLAN ports bound over
// REST and plugged as Nova would plug them, a ping between them across hosts, a VLAN
// provider port bound through a bridge mapping, the DVR L3 stand-in, and neutron-server and
// RabbitMQ restarted one at a time with the agent reporting again after each. It logs the timings docs/neutron-testbed.md quotes.
func TestNeutronHarness(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cloud := neutronCloud(t)
	api := cloud.Client
	tm := cloud.Timings()
	t.Logf("test bed up: install %s, RabbitMQ %s, MariaDB %s, db upgrade %s, neutron-server %s",
		tm.Install.Round(time.Millisecond), tm.RabbitMQ.Round(time.Millisecond), tm.Database.Round(time.Millisecond),
		tm.DBUpgrade.Round(time.Millisecond), tm.Server.Round(time.Millisecond))

	// compute-1: the openvswitch firewall and a VLAN bridge mapping; compute-2: the
	// iptables_hybrid firewall. Both on the fabric's underlay; their agents start together.
	host, err := cloud.AddHost(ctx, neutron.HostOptions{
		Name:           "compute-1",
		LocalIP:        netip.MustParsePrefix("10.255.0.11/24"),
		BridgeMappings: map[string]string{"physnet1": "br-vlan"},
	})
	if err != nil {
		t.Fatal(err)
	}
	host2, err := cloud.AddHost(ctx, neutron.HostOptions{Name: "compute-2", LocalIP: netip.MustParsePrefix("10.255.0.12/24")})
	if err != nil {
		t.Fatal(err)
	}
	var at, at2 neutron.AgentTimings
	var err2 error
	done := make(chan struct{})
	go func() {
		defer close(done)
		at2, err2 = host2.StartNeutronAgent(ctx, neutron.AgentOptions{FirewallDriver: "iptables_hybrid"})
	}()
	at, err = host.StartNeutronAgent(ctx, neutron.AgentOptions{})
	<-done
	if err = errors.Join(err, err2); err != nil {
		t.Fatal(err)
	}
	t.Logf("Neutron agents: compute-1 alive after %s, first sync after %s; compute-2 (iptables_hybrid) %s, %s",
		at.Alive.Round(time.Millisecond), at.FirstSync.Round(time.Millisecond), at2.Alive.Round(time.Millisecond), at2.FirstSync.Round(time.Millisecond))

	// The agents list shows it alive, with the configuration it was given.
	agents, err := api.ListAgents(ctx, "compute-1", neutron.AgentTypeOVS)
	if err != nil {
		t.Fatal(err)
	}
	if len(agents) != 1 || !agents[0].Alive {
		t.Fatalf("agents on compute-1: %+v, want one alive Open vSwitch agent", agents)
	}
	conf := agents[0].Configurations
	if got := conf["tunneling_ip"]; got != "10.255.0.11" {
		t.Errorf("agent reports tunneling_ip %v, want 10.255.0.11", got)
	}
	if tt, _ := conf["tunnel_types"].([]any); !slices.Contains(tt, any("vxlan")) {
		t.Errorf("agent reports tunnel_types %v, want vxlan", conf["tunnel_types"])
	}
	if bm, _ := conf["bridge_mappings"].(map[string]any); bm["physnet1"] != "br-vlan" {
		t.Errorf("agent reports bridge_mappings %v, want physnet1: br-vlan", conf["bridge_mappings"])
	}

	// A VXLAN network with a port bound to compute-1, plugged as Nova would.
	t0 := time.Now()
	network, err := api.CreateNetwork(ctx, neutron.NetworkRequest{Name: "net1"})
	if err != nil {
		t.Fatal(err)
	}
	if network.NetworkType != "vxlan" || network.SegmentationID == nil {
		t.Fatalf("network %+v: want a vxlan tenant network with a VNI", network)
	}
	subnet, err := api.CreateSubnet(ctx, neutron.SubnetRequest{Name: "sub1", NetworkID: network.ID, CIDR: "10.10.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	restNet := time.Since(t0)
	t0 = time.Now()
	port, err := api.CreatePort(ctx, neutron.PortRequest{
		Name: "vm1", NetworkID: network.ID, DeviceOwner: "compute:nova",
		DeviceID: "11111111-2222-3333-4444-555555555555", HostID: "compute-1",
	})
	if err != nil {
		t.Fatal(err)
	}
	restPort := time.Since(t0)
	if port.VIFType != "ovs" || port.HostID != "compute-1" {
		t.Fatalf("port bound to %q with vif_type %q, want compute-1 and ovs", port.HostID, port.VIFType)
	}
	t0 = time.Now()
	vm, err := host.PlugVM(ctx, port, subnet, network.MTU)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.WaitPortStatus(ctx, port.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	plugToActive := time.Since(t0)
	t.Logf("VXLAN %d network + subnet (REST) %s, bound port (REST) %s, plug → port ACTIVE %s",
		*network.SegmentationID, restNet.Round(time.Millisecond), restPort.Round(time.Millisecond), plugToActive.Round(time.Millisecond))
	if out, err := vm.Run(ctx, "ip", "-br", "addr", "show", "eth0"); err != nil || !strings.Contains(out, port.FixedIPs[0].IPAddress) {
		t.Errorf("VM eth0: %q, %v; want address %s", out, err, port.FixedIPs[0].IPAddress)
	}

	// A second port on compute-2, plugged the hybrid way (its agent asks for it), and a
	// ping across the underlay between the two VMs.
	port2, err := api.CreatePort(ctx, neutron.PortRequest{
		Name: "vm2", NetworkID: network.ID, DeviceOwner: "compute:nova",
		DeviceID: "33333333-2222-3333-4444-555555555555", HostID: "compute-2",
	})
	if err != nil {
		t.Fatal(err)
	}
	if port2.VIFDetails["ovs_hybrid_plug"] != true {
		t.Errorf("port on compute-2 (iptables_hybrid): vif_details %v, want ovs_hybrid_plug", port2.VIFDetails)
	}
	t0 = time.Now()
	vm2, err := host2.PlugVM(ctx, port2, subnet, network.MTU)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := api.WaitPortStatus(ctx, port2.ID, "ACTIVE"); err != nil {
		t.Fatal(err)
	}
	plugToActive2 := time.Since(t0)
	t0 = time.Now()
	if err := pingUntil(ctx, vm2, port.FixedIPs[0].IPAddress); err != nil {
		t.Fatal(err)
	}
	t.Logf("compute-2: hybrid plug → port ACTIVE %s; VM on compute-2 → VM on compute-1 over VXLAN answered after %s",
		plugToActive2.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

	// A VLAN provider network on physnet1 binds to the host's bridge mapping.
	vlan, err := api.CreateNetwork(ctx, neutron.NetworkRequest{Name: "vlan150", NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 150})
	if err != nil {
		t.Fatal(err)
	}
	vport, err := api.CreatePort(ctx, neutron.PortRequest{NetworkID: vlan.ID, DeviceOwner: "compute:nova", DeviceID: "22222222-2222-3333-4444-555555555555", HostID: "compute-1"})
	if err != nil {
		t.Fatal(err)
	}
	if vport.VIFType != "ovs" {
		t.Errorf("VLAN port: vif_type %q, want ovs (bound through physnet1:br-vlan)", vport.VIFType)
	}
	// A VLAN outside network_vlan_ranges is still allowed for an admin; an unknown physnet is not.
	if _, err := api.CreateNetwork(ctx, neutron.NetworkRequest{NetworkType: "vlan", PhysicalNetwork: "nosuchnet", SegmentationID: 150}); err == nil {
		t.Error("a VLAN network on an unknown physical network was accepted")
	} else if !strings.Contains(err.Error(), "HTTP 400") {
		t.Errorf("unknown physical network: %v, want an HTTP 400 with Neutron's message", err)
	}

	// DVR: a distributed router on the subnet, the L3 stand-in binds its port to
	// compute-1, and its qr- port gets the DVR MAC rewrite on br-tun.
	t0 = time.Now()
	router, err := api.CreateRouter(ctx, neutron.RouterRequest{Name: "r1", Distributed: true})
	if err != nil {
		t.Fatal(err)
	}
	ifc, err := api.AddRouterInterface(ctx, router.ID, subnet.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.RegisterDVRL3Agent(ctx); err != nil {
		t.Fatal(err)
	}
	qport, err := api.GetPort(ctx, ifc.PortID)
	if err != nil {
		t.Fatal(err)
	}
	if err := host.PlugInternal(ctx, "qr-"+qport.ID[:11], qport); err != nil {
		t.Fatal(err)
	}
	want := "dl_src=" + qport.MACAddress + " actions=set_field:"
	for {
		out, err := host.Sandbox().Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", "dump-flows", "br-tun", "table=1")
		if err == nil && strings.Contains(out, want) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("no DVR MAC rewrite for %s on br-tun: %v\n%s", qport.MACAddress, err, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("DVR router + interface, L3 stand-in, qr- plugged → DVR flows on br-tun: %s", time.Since(t0).Round(time.Millisecond))

	// neutron-server, then RabbitMQ, restarted one at a time: the agent reports again.
	for _, svc := range []struct {
		name        string
		stop, start func(context.Context) error
	}{
		{"neutron-server", cloud.StopServer, cloud.StartServer},
		{"RabbitMQ", cloud.StopRabbitMQ, cloud.StartRabbitMQ},
	} {
		t0 := time.Now()
		if err := svc.stop(ctx); err != nil {
			t.Fatal(err)
		}
		stopped := time.Since(t0)
		t1 := time.Now()
		if err := svc.start(ctx); err != nil {
			t.Fatal(err)
		}
		started := time.Since(t1)
		if _, err := host.WaitAgentReport(ctx, neutron.AgentTypeOVS, time.Now()); err != nil {
			t.Fatalf("after restarting %s: %v", svc.name, err)
		}
		t.Logf("%s: stop %s, start %s, agent reported again %s after the start", svc.name,
			stopped.Round(time.Millisecond), started.Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	}
	for _, id := range []string{port.ID, port2.ID} {
		if p, err := api.GetPort(ctx, id); err != nil || p.Status != "ACTIVE" {
			t.Errorf("after the restarts port %s is %v (%v), want ACTIVE", id, p, err)
		}
	}
	if err := pingUntil(ctx, vm, port2.FixedIPs[0].IPAddress); err != nil {
		t.Errorf("after the restarts: %v", err)
	}
}

// pingUntil pings ip from the VM until one answer comes back (the first packets may be
// lost while flows and ARP settle), for at most 20 s.
func pingUntil(ctx context.Context, vm *sandbox.VM, ip string) error {
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		err := vm.Ping(ctx, ip, 1)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return err
		}
	}
}
