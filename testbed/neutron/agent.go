package neutron

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/sandbox"
)

// HostOptions describe an agent host.
type HostOptions struct {
	// Name is the Neutron host name (the agent's host, ports' binding:host_id), e.g.
	// "compute-1": letters, digits, '.', '_', '-'; at most 30.
	Name string
	// LocalIP is the tunnel endpoint with the underlay's prefix, e.g. 10.255.0.11/24: it goes
	// on a netdev bridge br-phy whose uplink is a veth to the fabric's underlay switch. The
	// zero value means no underlay (no tunnels).
	LocalIP netip.Prefix
	// BridgeMappings maps a physical network to an OVS bridge (e.g. physnet1 → br-vlan). The
	// host gets each bridge (netdev) with an uplink to the fabric's switch of that physical
	// network, a VLAN trunk shared by every host that maps it.
	BridgeMappings map[string]string
}

// AgentHost is a simulated hypervisor of the test bed: a sandbox host (its own namespaces
// and Open vSwitch) on the fabric, with RabbitMQ reachable inside it at the same address
// as outside, that can run Neutron's Python Open vSwitch agent.
type AgentHost struct {
	cloud *Cloud
	opts  HostOptions
	host  *sandbox.Host
	fwd   *forwarder
	log   *zap.Logger

	mu        sync.Mutex
	agent     *process
	agentConf AgentConfig
	logOffset int64
}

var validHostName = func(s string) bool {
	if s == "" || len(s) > 30 {
		return false
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || (i > 0 && strings.ContainsRune("._-", r))
		if !ok {
			return false
		}
	}
	return true
}

// AddHost starts an agent host: a sandbox host named after opts.Name (plus a random suffix),
// linked to the fabric, with br-phy holding the tunnel endpoint, the mapped bridges with
// their uplinks, and the AMQP forwarder. It does not start an agent.
func (c *Cloud) AddHost(ctx context.Context, opts HostOptions) (_ *AgentHost, err error) {
	if !validHostName(opts.Name) {
		return nil, fmt.Errorf("add agent host %q: invalid name", opts.Name)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, fmt.Errorf("add agent host %s: test bed is closed", opts.Name)
	}
	for _, h := range c.hosts {
		if h.opts.Name == opts.Name {
			c.mu.Unlock()
			return nil, fmt.Errorf("add agent host %s: exists already", opts.Name)
		}
	}
	if c.fabric == nil {
		f, err := startFabric(ctx, c.sandboxOptions())
		if err != nil {
			c.mu.Unlock()
			return nil, err
		}
		c.fabric = f
	}
	c.mu.Unlock()

	t := time.Now()
	var b [2]byte
	_, _ = rand.Read(b[:])
	sh, err := sandbox.Start(ctx, fmt.Sprintf("%s-%x", opts.Name, b), c.sandboxOptions())
	if err != nil {
		return nil, fmt.Errorf("add agent host %s: %w", opts.Name, err)
	}
	h := &AgentHost{cloud: c, opts: opts, host: sh, log: c.log.With(zap.String("agent_host", opts.Name))}
	defer func() {
		if err != nil {
			h.host.KeepRunDir()
			if cerr := h.close(context.WithoutCancel(ctx), true); cerr != nil {
				err = errors.Join(err, cerr)
			}
			err = fmt.Errorf("add agent host %s: %w", opts.Name, err)
		}
	}()
	if err := c.wireHost(ctx, h); err != nil {
		return nil, err
	}
	amqpAddr := fmt.Sprintf("127.0.0.1:%d", c.rabbit.Ports().AMQP)
	if h.fwd, err = forward("/proc/"+strconv.Itoa(sh.Pid())+"/ns/net", amqpAddr, h.log); err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.hosts = append(c.hosts, h)
	c.mu.Unlock()
	h.log.Info("agent host added", zap.String("sandbox", sh.Name()), zap.String("rundir", sh.RunDir()),
		zap.Stringer("local_ip", opts.LocalIP), zap.Any("bridge_mappings", opts.BridgeMappings),
		zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	return h, nil
}

// wireHost connects the host to the fabric: the underlay on br-phy and the mapped bridges.
func (c *Cloud) wireHost(ctx context.Context, h *AgentHost) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if h.opts.LocalIP.IsValid() {
		if err := c.fabric.connect(ctx, underlaySwitch, h.host, "ul0"); err != nil {
			return err
		}
		if err := h.host.AddUnderlay(ctx, sandbox.UnderlaySpec{Bridge: "br-phy", Uplink: "ul0", CIDR: h.opts.LocalIP.String()}); err != nil {
			return err
		}
	}
	nets := make([]string, 0, len(h.opts.BridgeMappings))
	for n := range h.opts.BridgeMappings {
		nets = append(nets, n)
	}
	slices.Sort(nets)
	for i, n := range nets {
		idx := c.physnetIndex(n)
		br := h.opts.BridgeMappings[n]
		uplink := "uplink" + strconv.Itoa(i)
		if err := c.fabric.connect(ctx, physnetSwitch(idx), h.host, uplink); err != nil {
			return err
		}
		if _, err := h.host.Vsctl(ctx, "--may-exist", "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev",
			"--", "--may-exist", "add-port", br, uplink); err != nil {
			return fmt.Errorf("bridge %s for %s: %w", br, n, err)
		}
	}
	return nil
}

// physnetIndex numbers physical networks in the order hosts first map them. c.mu is held.
func (c *Cloud) physnetIndex(name string) int {
	for i, n := range c.physnets {
		if n == name {
			return i
		}
	}
	c.physnets = append(c.physnets, name)
	return len(c.physnets) - 1
}

// Name is the Neutron host name.
func (h *AgentHost) Name() string { return h.opts.Name }

// Sandbox is the host's sandbox (its Open vSwitch, commands inside it, VMs).
func (h *AgentHost) Sandbox() *sandbox.Host { return h.host }

// LocalIP is the host's tunnel endpoint (invalid without an underlay).
func (h *AgentHost) LocalIP() netip.Addr { return h.opts.LocalIP.Addr() }

// AgentOptions choose how Neutron's agent is configured. The zero value is the
// configuration of ../shared/tools/neutron-testbed.sh: vxlan (when the host has a
// LocalIP), l2population, DVR, ARP responder, the openvswitch firewall.
type AgentOptions struct {
	// FirewallDriver is openvswitch (default), iptables_hybrid or noop.
	FirewallDriver string
	// TunnelTypes default to vxlan when the host has a LocalIP.
	TunnelTypes []string
	// NoL2Population, NoDistributedRouting and NoARPResponder turn those options off.
	NoL2Population, NoDistributedRouting, NoARPResponder bool
	// ReportInterval is report_interval in seconds; default 10 (Neutron's is 30), so that
	// a restart of neutron-server or RabbitMQ is followed by a report soon.
	ReportInterval int
	// NoDebug logs at info level ([DEFAULT] debug = False, Neutron's default) instead of
	// the test bed's debug level: for timing the agent as it runs in production.
	NoDebug bool
}

// AgentConfig returns the configuration the host's agent gets with opts: the same file
// serves Neutron's agent and dvrflow-agent (which reads Neutron's option names).
func (h *AgentHost) AgentConfig(opts AgentOptions) AgentConfig {
	tunnels := opts.TunnelTypes
	if tunnels == nil && h.opts.LocalIP.IsValid() {
		tunnels = []string{"vxlan"}
	}
	dir := filepath.Join(h.cloud.dir, "hosts", h.opts.Name)
	return AgentConfig{
		Host:                     h.opts.Name,
		TransportURL:             h.cloud.TransportURL(),
		LocalIP:                  h.opts.LocalIP.Addr(),
		TunnelTypes:              tunnels,
		BridgeMappings:           h.opts.BridgeMappings,
		L2Population:             !opts.NoL2Population,
		EnableDistributedRouting: !opts.NoDistributedRouting,
		ARPResponder:             !opts.NoARPResponder,
		FirewallDriver:           opts.FirewallDriver,
		OVSDBConnection:          h.host.DBEndpoint(),
		StateDir:                 filepath.Join(dir, "state"),
		LockDir:                  filepath.Join(dir, "lock"),
		LogDir:                   h.cloud.logs,
		LogFile:                  "ovs-agent-" + h.opts.Name + ".log",
		ReportInterval:           orInt(opts.ReportInterval, 10),
		NoDebug:                  opts.NoDebug,
	}
}

// AgentTimings are how long Neutron's agent took to come up.
type AgentTimings struct {
	// Alive is from the start until the server lists the agent alive.
	Alive time.Duration
	// FirstSync is from the start until its first rpc_loop iteration completed.
	FirstSync time.Duration
}

// StartNeutronAgent writes the host's openvswitch_agent.ini and starts Neutron's
// neutron-openvswitch-agent inside the host. It returns once the server lists the agent
// alive and the agent has finished its first rpc_loop iteration: a port plugged before that
// waits for a second loop (§9.4 of the reference).
func (h *AgentHost) StartNeutronAgent(ctx context.Context, opts AgentOptions) (AgentTimings, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.agent.running() {
		return AgentTimings{}, fmt.Errorf("start Neutron agent on %s: it runs already", h.opts.Name)
	}
	cfg := h.AgentConfig(opts)
	for _, d := range []string{cfg.StateDir, cfg.LockDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return AgentTimings{}, fmt.Errorf("start Neutron agent on %s: %w", h.opts.Name, err)
		}
	}
	conf := filepath.Join(h.cloud.etc, "openvswitch_agent-"+h.opts.Name+".ini")
	if err := os.WriteFile(conf, []byte(cfg.INI()), 0o644); err != nil {
		return AgentTimings{}, fmt.Errorf("start Neutron agent on %s: %w", h.opts.Name, err)
	}
	logPath := h.NeutronAgentLog()
	h.logOffset = 0
	if st, err := os.Stat(logPath); err == nil {
		h.logOffset = st.Size()
	}
	start := time.Now()
	cmd := h.host.Command(context.Background(), "neutron-openvswitch-agent", "--config-file", conf)
	cmd.Env = systemPath(cmd.Env)
	p, err := startProcess("ovs-agent-"+h.opts.Name, cmd, h.cloud.run, filepath.Join(h.cloud.logs, "ovs-agent-"+h.opts.Name+".out"))
	if err != nil {
		return AgentTimings{}, err
	}
	h.agent, h.agentConf = p, cfg
	var tm AgentTimings
	err = waitReady(ctx, p, readyTimeout, "Neutron agent on "+h.opts.Name+" alive", func(ctx context.Context) error {
		_, err := h.cloud.Client.agentAlive(ctx, h.opts.Name, AgentTypeOVS, start, time.Time{})
		return err
	})
	if err != nil {
		return tm, fmt.Errorf("%w%s", err, tailFile(logPath, 30))
	}
	tm.Alive = time.Since(start)
	err = waitReady(ctx, p, readyTimeout, "Neutron agent on "+h.opts.Name+" first sync", func(context.Context) error {
		return h.logSince("rpc_loop - iteration:0 completed")
	})
	if err != nil {
		return tm, fmt.Errorf("%w%s", err, tailFile(logPath, 30))
	}
	tm.FirstSync = time.Since(start)
	h.log.Info("Neutron agent started", zap.Int("pid", p.pid), zap.String("config", conf), zap.String("log", logPath),
		zap.Duration("alive", tm.Alive.Round(time.Millisecond)), zap.Duration("first_sync", tm.FirstSync.Round(time.Millisecond)))
	return tm, nil
}

// logSince is nil once the agent's log, from where it was when the agent started, holds s.
func (h *AgentHost) logSince(s string) error {
	f, err := os.Open(h.NeutronAgentLog())
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(h.logOffset, 0); err != nil {
		return err
	}
	data, err := io.ReadAll(f)
	if err != nil {
		return err
	}
	if !bytes.Contains(data, []byte(s)) {
		return fmt.Errorf("no %q in the agent's log yet", s)
	}
	return nil
}

// NeutronAgentLog is the path of the Python agent's log file.
func (h *AgentHost) NeutronAgentLog() string {
	return filepath.Join(h.cloud.logs, "ovs-agent-"+h.opts.Name+".log")
}

// StopNeutronAgent stops Neutron's agent (and its privsep daemons, in its process group).
func (h *AgentHost) StopNeutronAgent(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.agent.stop(ctx, 10*time.Second)
}

// WaitAgentReport waits until the server has a report_state of the host's agent of
// agentType from at or after since (its heartbeat), e.g. after a restart of neutron-server
// or RabbitMQ; the agent must be alive then.
func (h *AgentHost) WaitAgentReport(ctx context.Context, agentType string, since time.Time) (*Agent, error) {
	for {
		a, err := h.cloud.Client.agentAlive(ctx, h.opts.Name, agentType, time.Time{}, since)
		if err == nil {
			return a, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("no report from %s on %s since %s: %w (last: %v)", agentType, h.opts.Name,
				since.UTC().Format(time.DateTime), ctx.Err(), err)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// PlugVM plugs a VM for the port as Nova and os-vif would: a network namespace whose eth0
// (the port's MAC, its first fixed IP with the subnet's prefix, a default route to the
// subnet's gateway, MTU mtu when not 0) is one end of a veth pair; the other end,
// tap<port id[:11]>, goes on br-int with external_ids iface-id, attached-mac,
// iface-status=active and vm-uuid (the port's device_id). When the binding asks for it
// (binding:vif_details ovs_hybrid_plug, an agent with the iptables_hybrid firewall), the
// tap goes into a Linux bridge qbr<…> and qvo<…> onto br-int instead, as os-vif does.
func (h *AgentHost) PlugVM(ctx context.Context, port *Port, subnet *Subnet, mtu int) (*sandbox.VM, error) {
	if len(port.ID) < 11 {
		return nil, fmt.Errorf("plug VM on %s: bad port id %q", h.opts.Name, port.ID)
	}
	spec := sandbox.VMSpec{
		Name: "vm-" + port.ID[:8], Bridge: "br-int", PortName: "tap" + port.ID[:11],
		IfaceID: port.ID, VMUUID: port.DeviceID, MAC: port.MACAddress, MTU: mtu,
		HybridPlug: port.VIFDetails["ovs_hybrid_plug"] == true,
	}
	if subnet != nil {
		pfx, err := netip.ParsePrefix(subnet.CIDR)
		if err != nil {
			return nil, fmt.Errorf("plug VM on %s: subnet %s: %w", h.opts.Name, subnet.ID, err)
		}
		for _, ip := range port.FixedIPs {
			if ip.SubnetID == subnet.ID {
				spec.CIDR = ip.IPAddress + "/" + strconv.Itoa(pfx.Bits())
			}
		}
		spec.Gateway = subnet.GatewayIP
	}
	vm, err := h.host.AddVM(ctx, spec)
	if err != nil {
		return nil, fmt.Errorf("plug VM for port %s on %s: %w", port.ID, h.opts.Name, err)
	}
	return vm, nil
}

// PlugInternal adds an OVS internal port named name to br-int for the Neutron port, with
// the external_ids the L3 agent (qr-, sg-, fg-) or os-vif gives it.
func (h *AgentHost) PlugInternal(ctx context.Context, name string, port *Port) error {
	args := []string{"--may-exist", "add-port", "br-int", name, "--", "set", "Interface", name, "type=internal",
		"external_ids:iface-id=" + port.ID, "external_ids:iface-status=active",
		"external_ids:attached-mac=" + strconv.Quote(port.MACAddress)}
	if port.DeviceOwner == "compute:nova" && port.DeviceID != "" {
		args = append(args, "external_ids:vm-uuid="+port.DeviceID)
	}
	if _, err := h.host.Vsctl(ctx, args...); err != nil {
		return fmt.Errorf("plug %s for port %s on %s: %w", name, port.ID, h.opts.Name, err)
	}
	return nil
}

//go:embed l3_agent_rpc.py
var l3AgentRPC []byte

// RegisterDVRL3Agent does the RPC part of a DVR L3 agent on the host (l3_agent_rpc.py, a
// copy of ../shared/tools/neutron-testbed/l3_agent_rpc.py): report_state as an "L3 agent"
// with agent_mode dvr, then sync_routers. That makes neutron-server bind every distributed
// router interface to the host, which the L2 agent needs before it wires a qr- port. No
// router namespace is made (a real L3 agent cannot run in the netdev datapath).
func (h *AgentHost) RegisterDVRL3Agent(ctx context.Context) error {
	script := filepath.Join(h.cloud.dir, "l3_agent_rpc.py")
	if err := os.WriteFile(script, l3AgentRPC, 0o644); err != nil {
		return fmt.Errorf("register DVR L3 agent on %s: %w", h.opts.Name, err)
	}
	out := filepath.Join(h.cloud.logs, "l3-agent-rpc-"+h.opts.Name+".out")
	t := time.Now()
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", script, h.opts.Name, h.cloud.TransportURL())
	cmd.Env = systemPath(os.Environ())
	data, err := cmd.CombinedOutput()
	_ = os.WriteFile(out, data, 0o644)
	if err != nil {
		return fmt.Errorf("register DVR L3 agent on %s: %w\n%s", h.opts.Name, err, lastLines(string(data), 20))
	}
	h.log.Info("DVR L3 agent registered (report_state + sync_routers)", zap.String("output", out),
		zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	return nil
}

// close stops the agent, the forwarder and the sandbox host.
func (h *AgentHost) close(ctx context.Context, keep bool) error {
	var errs []error
	h.mu.Lock()
	if err := h.agent.stop(ctx, 10*time.Second); err != nil {
		errs = append(errs, err)
	}
	h.mu.Unlock()
	if h.fwd != nil {
		if err := h.fwd.close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if keep {
		h.host.KeepRunDir()
	}
	if err := h.host.Stop(ctx); err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("stop agent host %s: %w", h.opts.Name, err)
	}
	return nil
}

// systemPath puts Debian's system directories first in PATH, so that Neutron's programs
// find Debian's python3 and privsep-helper, not another installation's.
func systemPath(env []string) []string {
	const sys = "/usr/sbin:/usr/bin:/sbin:/bin"
	out := make([]string, 0, len(env)+1)
	path := sys
	for _, e := range env {
		if p, ok := strings.CutPrefix(e, "PATH="); ok {
			path = sys + ":" + p
			continue
		}
		out = append(out, e)
	}
	return append(out, "PATH="+path)
}
