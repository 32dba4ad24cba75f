package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/testbed/neutron"
	"github.com/dvrflow/dvrflow/topology"
)

// neutronResult is section 7: dvrflow-agent and Neutron's own Python agent, each the Open
// vSwitch agent of one host of the same real neutron-server (testbed/neutron), given the
// same ports over the REST API.
type neutronResult struct {
	Plugs  int // single plugs per agent
	Batch  int // ports plugged at once per agent
	Agents []neutronAgentResult
}

// neutronAgentResult is one agent's figures. The single-plug slices are in plug order;
// every time is from just before the plug's OVSDB transaction.
type neutronAgentResult struct {
	Agent string // neutronPython or neutronDvrflow
	Host  string
	// Ofport: ovs-vswitchd's part, the ofport it assigned committed to OVSDB.
	Ofport []time.Duration
	// Reported: the agent's update_device_list with the device up seen on the broker (the
	// agent's own share).
	Reported []time.Duration
	// Server: from that call to the port ACTIVE in the API (the server's part).
	Server []time.Duration
	// Asked: the agent's get_devices_details_list_and_failed_devices naming the device,
	// for the plugs it asked (Neutron's agent takes a port's details from its OVO cache,
	// filled by the server's pushes when the port was created).
	Asked []time.Duration `json:",omitempty"`
	// PushLate counts the single plugs whose port's bound push had not come within 5 s of
	// its creation (plugged anyway).
	PushLate int `json:",omitempty"`
	// BatchReported is the batch's last device reported up; BatchActive every port of the
	// batch ACTIVE in the API.
	BatchReported, BatchActive time.Duration
	// BatchCalls counts the q-plugin calls (by method) from the batch's plug to all ACTIVE.
	BatchCalls map[string]int
}

const (
	neutronPython  = "neutron-openvswitch-agent"
	neutronDvrflow = "dvrflow-agent"
)

// neutronOptions is the agent configuration both hosts get: vxlan, l2population, DVR, the
// ARP responder (the test bed's defaults), no firewall, info logging.
var neutronOptions = neutron.AgentOptions{FirewallDriver: "noop", NoDebug: true}

// neutronAgent is one agent under test with the host it runs on.
type neutronAgent struct {
	name   string
	host   *neutron.AgentHost
	hv     *hypervisor
	net    *neutron.Network
	subnet *neutron.Subnet
	pid    int // the agent's process
	ofport int // the next ofport_request
	res    *neutronAgentResult
}

// neutronBed is one Neutron test bed with a host per agent (Neutron's agent first, then
// dvrflow-agent), both agents running with the same options, the broker watched, and per
// agent a hypervisor connected to its host and a network with a subnet of its own.
type neutronBed struct {
	cloud  *neutron.Cloud
	watch  *rpcWatch
	agents []*neutronAgent
	log    *zap.Logger
	undo   []func() // newest last
}

// startNeutronBed starts a test bed, its two agent hosts (named prefix-python and
// prefix-dvrflow) and both agents at once, as they would start on a cloud's nodes;
// dvrflow-agent logs to dvrflowLog. It returns once both are alive, the bench sees the
// server's Port pushes, each agent has its network and the bus has been quiet for 2 s.
func (b *bench) startNeutronBed(ctx context.Context, log *zap.Logger, prefix string, opts neutron.AgentOptions, dvrflowLog string) (_ *neutronBed, err error) {
	cloud, err := neutron.Start(ctx, neutron.Options{Log: log.WithOptions(zap.IncreaseLevel(zapcore.WarnLevel))})
	if err != nil {
		return nil, err
	}
	bed := &neutronBed{cloud: cloud, log: log}
	defer func() {
		if err != nil {
			err = bed.close(err)
		}
	}()
	if bed.watch, err = watchRPC(ctx, cloud.AMQPURL()); err != nil {
		return bed, err
	}
	watch := bed.watch
	bed.undo = append(bed.undo, watch.close)

	bed.agents = []*neutronAgent{{name: neutronPython}, {name: neutronDvrflow}}
	agents := bed.agents
	for i, a := range agents {
		hostName := prefix + "-" + map[string]string{neutronPython: "python", neutronDvrflow: "dvrflow"}[a.name]
		a.host, err = cloud.AddHost(ctx, neutron.HostOptions{Name: hostName, LocalIP: netip.MustParsePrefix(fmt.Sprintf("10.255.0.%d/24", 41+i))})
		if err != nil {
			return bed, err
		}
		a.res = &neutronAgentResult{Agent: a.name, Host: hostName}
		a.ofport = 100
	}
	// Both start at once, as they would on a cloud's nodes.
	started := time.Now()
	pyErr := make(chan error, 1)
	go func() {
		_, err := agents[0].host.StartNeutronAgent(ctx, opts)
		pyErr <- err
	}()
	stopDvrflow, pid, err := b.startNeutronModeAgent(ctx, agents[1].host, opts, dvrflowLog)
	agents[1].pid = pid
	if err == nil {
		bed.undo = append(bed.undo, stopDvrflow)
		_, err = cloud.Client.WaitAgentAlive(ctx, agents[1].host.Name(), neutron.AgentTypeOVS, started)
	}
	if err = errors.Join(err, <-pyErr); err != nil {
		return bed, err
	}
	if pids := agents[0].host.NeutronAgentPids(); len(pids) > 0 {
		agents[0].pid = slices.Min(pids) // the agent itself, the group's leader, started first
	}
	log.Info("both agents alive", zap.Duration("after", time.Since(started).Round(time.Millisecond)))
	if err := watch.watchPortPushes(ctx); err != nil {
		return bed, err
	}

	api := cloud.Client
	for i, a := range agents {
		if a.hv, err = dialHypervisor(ctx, a.host.Sandbox().DBEndpoint(), b.vifType, log); err != nil {
			return bed, err
		}
		bed.undo = append(bed.undo, a.hv.close)
		// A network per agent: l2population's casts about one agent's ports are no work for
		// the other.
		if a.net, err = api.CreateNetwork(ctx, neutron.NetworkRequest{Name: prefix + "-" + a.host.Name()}); err != nil {
			return bed, err
		}
		if a.subnet, err = api.CreateSubnet(ctx, neutron.SubnetRequest{Name: prefix + "-" + a.host.Name(), NetworkID: a.net.ID,
			CIDR: fmt.Sprintf("10.%d.0.0/16", 101+i)}); err != nil {
			return bed, err
		}
	}
	if err := watch.quiet(ctx, 2*time.Second, 20*time.Second); err != nil {
		return bed, err
	}
	return bed, nil
}

// close stops what the test bed started, newest first, and the test bed itself. With err
// not nil it keeps the test bed's files and returns err naming where they are.
func (bed *neutronBed) close(err error) error {
	for i := len(bed.undo) - 1; i >= 0; i-- {
		bed.undo[i]()
	}
	bed.undo = nil
	if err != nil {
		bed.cloud.KeepDir()
		err = fmt.Errorf("%w (test bed files kept in %s)", err, bed.cloud.Dir())
	}
	cctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if cerr := bed.cloud.Close(cctx); cerr != nil {
		bed.log.Error("stop the Neutron test bed", zap.Error(cerr))
	}
	return err
}

// measureNeutron runs section 7: one test bed, a host per agent, plugs single ports on
// both agents in turn, then a batch on each agent one after the other.
func (b *bench) measureNeutron(ctx context.Context, plugs, batch int) (_ *neutronResult, err error) {
	log := b.log.Named("neutron")
	bed, err := b.startNeutronBed(ctx, log, "bench", neutronOptions, b.neutronAgentLogPath())
	if err != nil {
		return nil, err
	}
	defer func() { err = bed.close(err) }()
	api, watch, agents := bed.cloud.Client, bed.watch, bed.agents

	// Single plugs, the agents in turn, each plug on a quiet bus.
	for i := 0; i < plugs; i++ {
		for _, a := range agents {
			if err := b.neutronSinglePlug(ctx, api, watch, a, i); err != nil {
				return nil, fmt.Errorf("%s: single plug %d: %w", a.name, i+1, err)
			}
			if err := watch.quiet(ctx, 700*time.Millisecond, 5*time.Second); err != nil {
				return nil, err
			}
		}
	}
	for _, a := range agents {
		r := a.res
		log.Info("single plugs", zap.String("agent", a.name), zap.Int("plugs", len(r.Reported)),
			zap.Duration("reported_p50", percentile(r.Reported, 50)), zap.Duration("reported_p99", percentile(r.Reported, 99)),
			zap.Duration("server_p50", percentile(r.Server, 50)), zap.Duration("server_p99", percentile(r.Server, 99)),
			zap.Duration("ofport_p99", percentile(r.Ofport, 99)), zap.Duration("asked_p50", percentile(r.Asked, 50)))
	}

	// The batch, one agent after the other.
	if batch > 0 {
		for _, a := range agents {
			if err := watch.quiet(ctx, 2*time.Second, 20*time.Second); err != nil {
				return nil, err
			}
			if err := b.neutronBatch(ctx, api, watch, a, batch); err != nil {
				return nil, fmt.Errorf("%s: batch of %d: %w", a.name, batch, err)
			}
		}
	}
	res := &neutronResult{Plugs: plugs, Batch: batch}
	for _, a := range agents {
		res.Agents = append(res.Agents, *a.res)
	}
	return res, nil
}

// neutronSinglePlug creates a port bound to the agent's host, plugs it in one OVSDB
// transaction, and times the agent's update_device_list and the port ACTIVE.
func (b *bench) neutronSinglePlug(ctx context.Context, api *neutron.Client, watch *rpcWatch, a *neutronAgent, i int) error {
	port, err := createBoundPort(ctx, api, a, fmt.Sprintf("single-%d", i))
	if err != nil {
		return err
	}
	// Nova plugs a VIF after the server has bound the port and told the agents (it builds
	// the domain meanwhile): the plug waits for the server's push of the bound port.
	pushed, err := watch.boundPushed(ctx, port.ID, 5*time.Second)
	if err != nil {
		return err
	}
	if !pushed {
		a.res.PushLate++
	}
	t0 := time.Now()
	names, err := a.hv.plug(ctx, "br-int", a.ofport, []topology.Port{vif(port)})
	if err != nil {
		return err
	}
	a.ofport++
	assigned := make(chan time.Time, 1)
	go func() {
		at, err := a.hv.ofportAssigned(ctx, names[0])
		if err != nil {
			b.log.Warn("ofport wait", zap.Error(err))
		}
		assigned <- at
	}()
	ups, err := watch.reportedUp(ctx, []string{port.ID}, 60*time.Second)
	if err != nil {
		return err
	}
	active, err := waitPortActive(ctx, api, port.ID, 20*time.Millisecond, 60*time.Second)
	if err != nil {
		return err
	}
	r := a.res
	if at := <-assigned; !at.IsZero() {
		r.Ofport = append(r.Ofport, at.Sub(t0))
	}
	r.Reported = append(r.Reported, ups[0].Sub(t0))
	if at, ok := watch.askedAt(port.ID); ok {
		r.Asked = append(r.Asked, at.Sub(t0))
	}
	r.Server = append(r.Server, max(0, active.Sub(ups[0])))
	b.log.Debug("single plug", zap.String("agent", a.name), zap.Int("plug", i+1),
		zap.Duration("reported", ups[0].Sub(t0)), zap.Duration("active", active.Sub(t0)))
	return nil
}

// neutronBatch creates count ports bound to the agent's host (in parallel, as Nova's
// instances would), plugs them in one OVSDB transaction and times every port ACTIVE.
func (b *bench) neutronBatch(ctx context.Context, api *neutron.Client, watch *rpcWatch, a *neutronAgent, count int) error {
	ports := make([]*neutron.Port, count)
	errs := make([]error, count)
	sem := make(chan struct{}, 16)
	var wg sync.WaitGroup
	for i := range ports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			ports[i], errs[i] = createBoundPort(ctx, api, a, fmt.Sprintf("batch-%d", i))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if err := watch.quiet(ctx, 2*time.Second, 20*time.Second); err != nil {
		return err
	}
	vifs := make([]topology.Port, count)
	ids := make([]string, count)
	for i, p := range ports {
		vifs[i], ids[i] = vif(p), p.ID
	}
	t0 := time.Now()
	if _, err := a.hv.plug(ctx, "br-int", a.ofport, vifs); err != nil {
		return err
	}
	a.ofport += count
	active, err := waitPortsActive(ctx, api, a.net.ID, ids, 100*time.Millisecond, 5*time.Minute)
	if err != nil {
		return err
	}
	ups, err := watch.reportedUp(ctx, ids, 10*time.Second)
	if err != nil {
		return err
	}
	r := a.res
	r.BatchActive = active.Sub(t0)
	for _, at := range ups {
		r.BatchReported = max(r.BatchReported, at.Sub(t0))
	}
	r.BatchCalls = watch.methodsBetween(t0, active)
	b.log.Info("batch", zap.String("agent", a.name), zap.Int("ports", count), zap.Duration("last_reported", r.BatchReported),
		zap.Duration("all_active", r.BatchActive), zap.Any("calls", r.BatchCalls))
	return nil
}

// createBoundPort creates a compute port on the agent's network bound to its host.
func createBoundPort(ctx context.Context, api *neutron.Client, a *neutronAgent, name string) (*neutron.Port, error) {
	port, err := api.CreatePort(ctx, neutron.PortRequest{Name: name, NetworkID: a.net.ID, DeviceOwner: "compute:nova",
		DeviceID: newVMID(), HostID: a.host.Name()})
	if err != nil {
		return nil, err
	}
	if port.VIFType != "ovs" {
		return nil, fmt.Errorf("port %s bound to %q with vif_type %q: the server did not bind it to a live Open vSwitch agent", port.ID, port.HostID, port.VIFType)
	}
	return port, nil
}

// vif is the port as os-vif plugs it: the hypervisor gives it Neutron's tap name, its
// iface-id, attached-mac and vm-uuid.
func vif(p *neutron.Port) topology.Port {
	return topology.Port{ID: p.ID, MAC: p.MACAddress, DeviceID: p.DeviceID}
}

var vmIDs struct {
	sync.Mutex
	n int
}

// newVMID is a VM id (device_id) unique within the run.
func newVMID() string {
	vmIDs.Lock()
	defer vmIDs.Unlock()
	vmIDs.n++
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", vmIDs.n)
}

// waitPortActive polls the port every interval until the API shows it ACTIVE, and returns
// when it saw that.
func waitPortActive(ctx context.Context, api *neutron.Client, id string, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	for {
		p, err := api.GetPort(ctx, id)
		if err == nil && p.Status == "ACTIVE" {
			return time.Now(), nil
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("port %s not ACTIVE within %s (%v)", id, timeout, err)
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// waitPortsActive polls the network's ports (ids and statuses only) every interval until
// every one of ids is ACTIVE, and returns when it saw that.
func waitPortsActive(ctx context.Context, api *neutron.Client, networkID string, ids []string, interval, timeout time.Duration) (time.Time, error) {
	deadline := time.Now().Add(timeout)
	filter := url.Values{"network_id": {networkID}, "fields": {"id", "status"}}
	for {
		ports, err := api.ListPorts(ctx, filter)
		active := 0
		if err == nil {
			status := map[string]string{}
			for _, p := range ports {
				status[p.ID] = p.Status
			}
			for _, id := range ids {
				if status[id] == "ACTIVE" {
					active++
				}
			}
			if active == len(ids) {
				return time.Now(), nil
			}
		}
		if time.Now().After(deadline) {
			return time.Time{}, fmt.Errorf("%d of %d ports ACTIVE after %s (%v)", active, len(ids), timeout, err)
		}
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return time.Time{}, ctx.Err()
		}
	}
}

// startNeutronModeAgent runs the built dvrflow-agent inside the host with the host's
// Neutron configuration for opts (the openvswitch_agent.ini Neutron's agent gets,
// transport_url included), logging at info level to logPath. stop interrupts it and waits.
func (b *bench) startNeutronModeAgent(ctx context.Context, h *neutron.AgentHost, opts neutron.AgentOptions, logPath string) (stop func(), pid int, err error) {
	conf := filepath.Join(b.workDir, "openvswitch_agent-"+h.Name()+".ini")
	if err := os.WriteFile(conf, []byte(h.AgentConfig(opts).INI()), 0o644); err != nil {
		return nil, 0, err
	}
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, 0, err
	}
	sb := h.Sandbox()
	cmd := sb.Command(context.WithoutCancel(ctx), b.agent, "--config-file", conf, "--ovs-rundir", sb.RunDir(),
		"--datapath-type", "netdev", "--log-level", "info")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, 0, fmt.Errorf("start dvrflow-agent on %s: %w", h.Name(), err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logFile.Close()
	}, cmd.Process.Pid, nil
}

func (b *bench) neutronAgentLogPath() string {
	return filepath.Join(b.workDir, "dvrflow-agent-neutron.log")
}

// agent returns the named agent's result, nil if absent.
func (r *neutronResult) agent(name string) *neutronAgentResult {
	for i := range r.Agents {
		if r.Agents[i].Agent == name {
			return &r.Agents[i]
		}
	}
	return nil
}

// batchRatio is the Python agent's batch end-to-end time over dvrflow's; 0 without both.
func (r *neutronResult) batchRatio() float64 {
	py, ours := r.agent(neutronPython), r.agent(neutronDvrflow)
	if py == nil || ours == nil || py.BatchActive <= 0 || ours.BatchActive <= 0 {
		return 0
	}
	return float64(py.BatchActive) / float64(ours.BatchActive)
}

// callsText renders the batch's q-plugin calls, most frequent first: "update_device_list
// ×3, …".
func callsText(calls map[string]int) string {
	if len(calls) == 0 {
		return "–"
	}
	methods := slices.SortedFunc(maps.Keys(calls), func(x, y string) int {
		if calls[x] != calls[y] {
			return calls[y] - calls[x]
		}
		return strings.Compare(x, y)
	})
	parts := make([]string, len(methods))
	for i, m := range methods {
		parts[i] = fmt.Sprintf("%s ×%d", m, calls[m])
	}
	return strings.Join(parts, ", ")
}
