package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// startNeutronModeAgent runs dvrflow-agent on an agent host of the Neutron test bed with
// Neutron's own configuration for that host (the same openvswitch_agent.ini Neutron's agent
// gets, transport_url included), and stops it at the end of the test.
func startNeutronModeAgent(t *testing.T, h *neutron.AgentHost, opts neutron.AgentOptions) (logPath string) {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "openvswitch_agent.ini")
	if err := os.WriteFile(conf, []byte(h.AgentConfig(opts).INI()), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath = filepath.Join(dir, "dvrflow-agent.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	sb := h.Sandbox()
	cmd := sb.Command(context.Background(), agentBinary, "--config-file", conf, "--ovs-rundir", sb.RunDir(),
		"--datapath-type", "netdev", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
		if t.Failed() {
			if data, err := os.ReadFile(logPath); err == nil {
				t.Logf("dvrflow-agent log on %s:\n%s", h.Name(), tailLines(string(data), 80))
			}
		}
	})
	return logPath
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// TestNeutronDropin: dvrflow-agent is the Open vSwitch agent of a host of a real
// neutron-server, beside Neutron's own agent on another host: the server lists it alive
// with its configuration, binds a port to it, the port becomes ACTIVE once plugged, VMs
// behind the two agents ping each other over VXLAN (l2population), and a port set
// admin-down goes DOWN with its VIF on the dead VLAN.
func TestNeutronDropin(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cloud := neutronCloud(t)
	api := cloud.Client

	ours, err := cloud.AddHost(ctx, neutron.HostOptions{Name: "dvrflow-1", LocalIP: netip.MustParsePrefix("10.255.0.21/24")})
	if err != nil {
		t.Fatal(err)
	}
	theirs, err := cloud.AddHost(ctx, neutron.HostOptions{Name: "python-1", LocalIP: netip.MustParsePrefix("10.255.0.22/24")})
	if err != nil {
		t.Fatal(err)
	}
	opts := neutron.AgentOptions{FirewallDriver: "noop"}
	started := time.Now()
	startNeutronModeAgent(t, ours, opts)
	agent, err := api.WaitAgentAlive(ctx, "dvrflow-1", neutron.AgentTypeOVS, started)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dvrflow-agent alive on dvrflow-1 after %s", time.Since(started).Round(time.Millisecond))
	conf := agent.Configurations
	if conf["tunneling_ip"] != "10.255.0.21" || conf["l2_population"] != true || conf["enable_distributed_routing"] != true ||
		conf["in_distributed_mode"] != true || conf["integration_bridge"] != "br-int" {
		t.Errorf("configurations reported: %v", conf)
	}
	if agent.Binary != "neutron-openvswitch-agent" {
		t.Errorf("agent binary %q", agent.Binary)
	}
	if _, err := theirs.StartNeutronAgent(ctx, opts); err != nil {
		t.Fatal(err)
	}

	network, err := api.CreateNetwork(ctx, neutron.NetworkRequest{Name: "net1"})
	if err != nil {
		t.Fatal(err)
	}
	subnet, err := api.CreateSubnet(ctx, neutron.SubnetRequest{Name: "sub1", NetworkID: network.ID, CIDR: "10.10.0.0/24"})
	if err != nil {
		t.Fatal(err)
	}
	plug := func(h *neutron.AgentHost, name string) (*neutron.Port, *sandbox.VM, time.Duration) {
		t.Helper()
		port, err := api.CreatePort(ctx, neutron.PortRequest{Name: name, NetworkID: network.ID, DeviceOwner: "compute:nova",
			DeviceID: "11111111-2222-3333-4444-55555555555" + name[len(name)-1:], HostID: h.Name()})
		if err != nil {
			t.Fatal(err)
		}
		if port.VIFType != "ovs" {
			t.Fatalf("port %s bound to %q with vif_type %q: the server did not bind it to a live Open vSwitch agent", name, port.HostID, port.VIFType)
		}
		t0 := time.Now()
		vm, err := h.PlugVM(ctx, port, subnet, network.MTU)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := api.WaitPortStatus(ctx, port.ID, "ACTIVE"); err != nil {
			t.Fatal(err)
		}
		return port, vm, time.Since(t0)
	}
	port1, vm1, took1 := plug(ours, "vm1")
	port2, vm2, took2 := plug(theirs, "vm2")
	t.Logf("plug → ACTIVE: dvrflow %s, Neutron's agent %s", took1.Round(time.Millisecond), took2.Round(time.Millisecond))

	// Across hosts over VXLAN: each side learned the other's VTEP and MAC from l2pop.
	for _, p := range []struct {
		from *sandbox.VM
		to   string
	}{{vm1, port2.FixedIPs[0].IPAddress}, {vm2, port1.FixedIPs[0].IPAddress}} {
		if out, err := p.from.Run(ctx, "ping", "-c", "3", "-i", "0.2", "-W", "2", p.to); err != nil {
			t.Errorf("ping %s: %v\n%s", p.to, err, out)
		}
	}
	flows, err := ours.Sandbox().Ofctl(ctx, "-O", "OpenFlow13", "dump-flows", "br-tun", "table=20")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(flows, "dl_dst="+port2.MACAddress) {
		t.Errorf("br-tun of dvrflow-1 has no l2pop unicast flow to %s:\n%s", port2.MACAddress, flows)
	}

	// Admin-down: DOWN, and the VIF on the dead VLAN.
	down := false
	if _, err := api.UpdatePort(ctx, port1.ID, neutron.PortUpdate{AdminStateUp: &down}); err != nil {
		t.Fatal(err)
	}
	if _, err := api.WaitPortStatus(ctx, port1.ID, "DOWN"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "port tag 4095", func() error {
		out, err := ours.Sandbox().Vsctl(ctx, "get", "Port", "tap"+port1.ID[:11], "tag")
		if err != nil {
			return err
		}
		if strings.TrimSpace(out) != "4095" {
			return fmt.Errorf("tag %s", strings.TrimSpace(out))
		}
		return nil
	})
}
