package neutron

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/neutron/oslo"
	"github.com/dvrflow/dvrflow/northbound"
)

// Settings configure the source.
type Settings struct {
	// Host is this agent's host name as Neutron knows it ([DEFAULT] host).
	Host string
	// LocalIP is this host's tunnel endpoint (invalid without tunnelling); TunnelTypes the
	// [agent] tunnel_types.
	LocalIP     netip.Addr
	TunnelTypes []string
	// DistributedRouting asks the server for DVR MACs ([agent] enable_distributed_routing).
	DistributedRouting bool
	// ReportInterval is [agent] report_interval: how often report_state is sent.
	ReportInterval time.Duration
	// Configurations builds report_state's configurations for the number of devices up.
	Configurations func(devices int) map[string]any
	// ResourceVersions is reported in the first report_state (reference §3.3).
	ResourceVersions map[string]string
	// SecurityGroups says the agent filters ports (a filtering [securitygroup]
	// firewall_driver with enable_security_group on): the source pulls the groups of the
	// ports bound here and gives them in its snapshots, holding back a new port until its
	// groups are known. Without it, the snapshots carry no security groups.
	SecurityGroups bool
}

// Report is what the agent did with the last snapshot, as far as Neutron needs to know.
type Report struct {
	// Plugged are the iface-ids (Neutron port ids) of the VIFs on the integration bridge.
	Plugged []string
	// Unknown are plugged devices the snapshot has no port for: the agent keeps them dead
	// until neutron-server says what they are.
	Unknown []string
	// Up are ports whose flows a barrier confirmed; Dead are ports the agent keeps dead
	// (admin down).
	Up, Dead []string
	// SwitchRestarted says ovs-vswitchd restarted since the last report: the next devices
	// up ask l2pop for the full FDB again.
	SwitchRestarted bool
}

// DefaultResourceVersions are the OVO versions reported in the first report_state: the
// server pushes those versions (reference §5).
var DefaultResourceVersions = map[string]string{
	"AddressGroup": "1.2", "Network": "1.1", "Port": "1.7", "SecurityGroup": "1.5", "SecurityGroupRule": "1.2", "Subnet": "1.1",
}

// Source is neutron-server as a northbound source for one host.
type Source struct {
	rpc *oslo.Client
	api *PluginAPI
	// serve starts consuming a notification topic (rpc.Serve; a recorder in unit tests).
	serve func(ctx context.Context, topic string) ([]string, error)
	set   Settings
	log   *zap.Logger

	mu sync.Mutex
	c  *cache
	// p are the Port and Network objects the server pushed: a plugged port they bind here
	// is programmed without asking for its details.
	p       *pushed
	plugged map[string]bool // the VIFs on br-int, from the last report
	up      map[string]bool // devices reported up
	pending map[string]bool // devices to ask details for
	// asking are the devices whose details call is in flight; detailsAsync makes the call
	// in the background, so that a push arriving meanwhile programs its port at once.
	asking       map[string]bool
	detailsAsync bool
	// upAgain are devices reported up while their details call was in flight: reported up
	// again after it.
	upAgain map[string]bool
	failed  map[string]bool // devices whose details failed: asked again at the next resync
	toUp    map[string]bool // devices to report up
	toDown  map[string]bool // devices to report down
	refresh bool            // the next update_device_list asks for the full FDB
	resync  bool            // everything is to be asked again
	// dvrMACUpdates counts the dvr_mac_address_update casts applied (see syncHost).
	dvrMACUpdates uint64
	uuid          string
	// retryAt is when the devices whose details failed are asked again (zero: no retry
	// due); retryWait the back-off of the next failure.
	retryAt   time.Time
	retryWait time.Duration
	// sgRetryWait is the back-off of the next failed security group pull.
	sgRetryWait time.Duration
	// l2pop is signalled by every FDB notification (Prime waits for them to settle).
	l2pop chan struct{}

	wake    chan struct{}
	changed chan struct{}
	updates chan *northbound.Update
}

// New returns the source of host's state; Run starts it.
func New(rpc *oslo.Client, set Settings, log *zap.Logger) *Source {
	s := newSource(NewPluginAPI(rpc, set.Host), set, log)
	s.rpc = rpc
	s.detailsAsync = true
	s.serve = func(ctx context.Context, topic string) ([]string, error) {
		srv, err := rpc.Serve(ctx, topic, set.Host, s.handle)
		if err != nil {
			return nil, err
		}
		return srv.Queues(), nil
	}
	return s
}

// newSource is a source on api, without a connection of its own (unit tests).
func newSource(api *PluginAPI, set Settings, log *zap.Logger) *Source {
	if set.ReportInterval <= 0 {
		set.ReportInterval = 30 * time.Second
	}
	if set.ResourceVersions == nil {
		set.ResourceVersions = DefaultResourceVersions
	}
	c := newCache(set.Host, set.LocalIP)
	c.sg.enabled = set.SecurityGroups
	return &Source{
		api: api, set: set, log: log.With(zap.String("northbound", "neutron")),
		c: c, p: newPushed(), asking: map[string]bool{}, upAgain: map[string]bool{}, plugged: map[string]bool{}, up: map[string]bool{}, pending: map[string]bool{},
		failed: map[string]bool{}, toUp: map[string]bool{}, toDown: map[string]bool{}, refresh: true,
		uuid: newUUID(), l2pop: make(chan struct{}, 1), wake: make(chan struct{}, 1), changed: make(chan struct{}, 1), updates: make(chan *northbound.Update, 1),
	}
}

// Updates are the snapshots for the agent, the newest replacing one not yet taken.
func (s *Source) Updates() <-chan *northbound.Update { return s.updates }

// Start makes the agent's start sequence (reference §6.1): it waits for a live server,
// starts consuming the notifications, fetches the DVR MACs, registers the agent
// (report_state with start_flag) and its tunnel endpoints. It returns the first snapshot
// (no ports yet: they come as the agent reports the VIFs it sees).
//
// The consumers come first, so that no dvr_mac_address_update or tunnel_update sent while
// the agent fetches the lists is lost: Neutron's agent only starts listening after it has
// fetched them, and never learns a DVR host that registers in between
// (docs/neutron-differences.md).
func (s *Source) Start(ctx context.Context) (*northbound.Snapshot, error) {
	if err := s.waitServer(ctx); err != nil {
		return nil, err
	}
	var queues []string
	for _, topic := range slices.Sorted(maps.Keys(consumedTopics)) {
		q, err := s.serve(ctx, topic)
		if err != nil {
			return nil, fmt.Errorf("consume %s: %w", topic, err)
		}
		queues = append(queues, q...)
	}
	if err := s.syncHost(ctx); err != nil {
		return nil, err
	}
	if _, err := s.report(ctx, true); err != nil {
		return nil, fmt.Errorf("report_state: %w", err)
	}
	if err := s.syncTunnels(ctx); err != nil {
		return nil, err
	}
	s.mu.Lock()
	snap := s.c.snapshot()
	s.mu.Unlock()
	s.log.Info("registered with neutron-server", zap.String("host", s.set.Host), zap.Int("topics", len(consumedTopics)),
		zap.Strings("queues", queues))
	return snap, nil
}

// Plugged is a VIF found on the integration bridge when the agent starts.
type Plugged struct {
	// Device is its iface-id (the Neutron port id).
	Device string
	// Wired says a previous run of the agent confirmed its flows: it carries a local VLAN
	// (the agent tags a port only after the barrier that confirmed the port's flows).
	Wired bool
}

// fdbSettle is how long Prime waits after the last FDB notification, and fdbSettleMax at
// most, for l2pop's answer to the first devices up.
const (
	fdbSettle    = 300 * time.Millisecond
	fdbSettleMax = 3 * time.Second
)

// Prime learns, before the agent's first reconcile, what a restarted agent finds already
// wired: the details of the VIFs plugged on the integration bridge, their subnets, and —
// for the ports a previous run confirmed (Wired), known to the server and admin-up — the
// l2population FDB, by reporting them up with refresh_tunnels (their flows are in the
// switch) and waiting until l2pop's answer settles. It returns the snapshot for the first
// reconcile, which then finds nothing to change: no port goes dead, no tunnel port or l2pop
// flow is removed and put back. Failures are logged; what failed is asked again later.
func (s *Source) Prime(ctx context.Context, plugged []Plugged) *northbound.Snapshot {
	var devices []string
	wired := map[string]bool{}
	s.mu.Lock()
	for _, p := range plugged {
		if p.Device == "" {
			continue
		}
		devices = append(devices, p.Device)
		s.plugged[p.Device] = true
		wired[p.Device] = p.Wired
	}
	s.mu.Unlock()
	if len(devices) > 0 {
		slices.Sort(devices)
		s.fetchDetails(ctx, devices)
		s.fetchSubnets(ctx)
		// A port a previous run wired is never held back for its groups: if they cannot
		// be pulled now, its firewall stays as installed.
		s.mu.Lock()
		for d, w := range wired {
			if w {
				s.c.sg.shown[d] = true
			}
		}
		s.mu.Unlock()
		s.fetchSecurityGroups(ctx)
	}
	s.mu.Lock()
	var up []string
	for _, d := range devices {
		if p := s.c.ports[d]; p != nil && wired[d] && (p.AdminStateUp == nil || *p.AdminStateUp) {
			up = append(up, d)
		}
	}
	s.mu.Unlock()
	if len(up) > 0 {
		s.adopt(ctx, up)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.snapshot()
}

// adopt reports up the ports a previous run wired, asking l2pop for the full FDB, and waits
// for the FDB notifications to settle.
func (s *Source) adopt(ctx context.Context, up []string) {
	select {
	case <-s.l2pop:
	default:
	}
	res, err := s.api.UpdateDeviceList(ctx, up, nil, true)
	if err != nil {
		// The first reconcile reports them up again (with refresh_tunnels).
		s.log.Warn("update_device_list for the ports wired before the restart failed; reported after the first reconcile",
			zap.Strings("up", up), zap.Error(err))
		return
	}
	failed := map[string]bool{}
	for _, d := range res.FailedDevicesUp {
		failed[d] = true
	}
	s.mu.Lock()
	for _, d := range up {
		if !failed[d] {
			s.up[d] = true
		}
	}
	s.refresh = len(failed) > 0
	s.mu.Unlock()
	start := time.Now()
	deadline := time.NewTimer(fdbSettleMax)
	defer deadline.Stop()
	quiet := time.NewTimer(fdbSettle)
	defer quiet.Stop()
	fdbs := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
		case <-quiet.C:
		case <-s.l2pop:
			fdbs++
			quiet.Reset(fdbSettle)
			continue
		}
		break
	}
	s.log.Info("ports wired before the restart reported up; l2population FDB received",
		zap.Strings("up", up), zap.Strings("failed_up", res.FailedDevicesUp), zap.Int("fdb_notifications", fdbs),
		zap.Duration("took", time.Since(start).Round(time.Millisecond)))
}

// waitServer loops on has_alive_neutron_server until a server answers.
func (s *Source) waitServer(ctx context.Context) error {
	wait := time.Second
	for {
		alive, err := s.api.HasAliveNeutronServer(ctx)
		if err == nil && alive {
			return nil
		}
		s.log.Warn("waiting for a neutron-server", zap.Error(err), zap.Duration("retry_in", wait))
		select {
		case <-ctx.Done():
			return fmt.Errorf("no neutron-server answered has_alive_neutron_server: %w", ctx.Err())
		case <-time.After(wait):
		}
		wait = min(2*wait, 30*time.Second)
	}
}

// syncHost fetches this host's and every host's DVR MAC. The list replaces what the cache
// has, unless a dvr_mac_address_update came in while it was asked for: either may be the
// newer then, so the cache keeps both (a host removed meanwhile goes at the next update).
func (s *Source) syncHost(ctx context.Context) error {
	if !s.set.DistributedRouting {
		return nil
	}
	s.mu.Lock()
	updates := s.dvrMACUpdates
	s.mu.Unlock()
	own, err := s.api.GetDVRMACAddressByHost(ctx)
	if err != nil {
		return fmt.Errorf("get_dvr_mac_address_by_host: %w", err)
	}
	mac, err := net.ParseMAC(normalizeMAC(own.MACAddress))
	if err != nil {
		return fmt.Errorf("get_dvr_mac_address_by_host: MAC %q: %w", own.MACAddress, err)
	}
	all, err := s.api.GetDVRMACAddressList(ctx)
	if err != nil {
		return fmt.Errorf("get_dvr_mac_address_list: %w", err)
	}
	s.mu.Lock()
	s.c.ownDVRMAC = mac
	if s.dvrMACUpdates == updates {
		s.c.setDVRMACs(all)
	} else {
		s.c.addDVRMACs(all)
	}
	s.mu.Unlock()
	s.log.Info("DVR MACs", zap.String("own", mac.String()), zap.Int("hosts", len(all)))
	return nil
}

// syncTunnels registers this host's endpoint for every tunnel type and learns the others'.
func (s *Source) syncTunnels(ctx context.Context) error {
	if !s.set.LocalIP.IsValid() {
		return nil
	}
	for _, typ := range s.set.TunnelTypes {
		tunnels, err := s.api.TunnelSync(ctx, s.set.LocalIP.String(), typ)
		if err != nil {
			return fmt.Errorf("tunnel_sync %s: %w", typ, err)
		}
		s.mu.Lock()
		for _, t := range tunnels {
			if err := s.c.addTunnel(t.IPAddress, t.Host, typ); err != nil {
				s.log.Warn("tunnel_sync: endpoint skipped", zap.String("host", t.Host), zap.Error(err))
			}
		}
		s.mu.Unlock()
	}
	s.markChanged()
	return nil
}

// report sends report_state.
func (s *Source) report(ctx context.Context, start bool) (string, error) {
	s.mu.Lock()
	devices := len(s.up)
	inDistributedMode := s.set.DistributedRouting && s.c.ownDVRMAC != nil
	s.mu.Unlock()
	state := AgentState{Binary: AgentBinary, Host: s.set.Host, Topic: "N/A", AgentType: AgentType, StartFlag: start, UUID: s.uuid}
	if s.set.Configurations != nil {
		state.Configurations = s.set.Configurations(devices)
	} else {
		state.Configurations = map[string]any{}
	}
	// Only the source knows whether the server gave this host a DVR MAC.
	state.Configurations["in_distributed_mode"] = inDistributedMode
	if start {
		state.ResourceVersions = s.set.ResourceVersions
	}
	ctx, cancel := context.WithTimeout(ctx, s.set.ReportInterval)
	defer cancel()
	return s.api.ReportState(ctx, state)
}

// Run keeps the source going until ctx ends: it reports the agent's state every
// report_interval, asks for the details of new devices, reports devices up and down, and
// resynchronises everything when the server saw the agent dead (revived) or the broker
// connection came back.
func (s *Source) Run(ctx context.Context) error {
	go s.emit(ctx)
	ticker := time.NewTicker(s.set.ReportInterval)
	defer ticker.Stop()
	generation := s.rpc.Generation()
	s.markChanged()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
			s.heartbeat(ctx)
			if g := s.rpc.Generation(); g != generation {
				generation = g
				s.log.Info("connected to the broker again: full resync (notifications may have been lost)")
				s.requestResync()
			}
		case <-s.wake:
		}
		if g := s.rpc.Generation(); g != generation && s.rpc.Connected() {
			generation = g
			s.log.Info("connected to the broker again: reporting state and a full resync (notifications may have been lost)")
			// Report at once: the server may be about to count the agent dead.
			s.heartbeat(ctx)
			ticker.Reset(s.set.ReportInterval)
			s.requestResync()
		}
		s.work(ctx)
	}
}

// heartbeat sends report_state; when the server answers "revived" (it had counted the
// agent dead, so it may have dropped what the agent told it) everything is asked again.
//
// Plugged devices the server did not know for this host are asked again at every report: a
// port plugged before the server bound it gets no port_update when the binding commits (the
// Python agent learns it from the Port push of its OVO cache; the legacy path has none).
func (s *Source) heartbeat(ctx context.Context) {
	s.mu.Lock()
	for d := range s.c.unknown {
		if s.plugged[d] {
			s.pending[d] = true
		}
	}
	s.mu.Unlock()
	state, err := s.report(ctx, false)
	switch {
	case err != nil:
		s.log.Warn("report_state failed", zap.Error(err))
	case state == "revived":
		s.log.Warn("neutron-server had counted the agent dead: full resync")
		s.requestResync()
	}
}

// resyncCallTimeout bounds each list call of a resync.
const resyncCallTimeout = 10 * time.Second

func (s *Source) withTimeout(ctx context.Context, call func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, resyncCallTimeout)
	defer cancel()
	return call(ctx)
}

// requestResync marks everything to be asked again.
func (s *Source) requestResync() {
	s.mu.Lock()
	s.resync = true
	s.mu.Unlock()
	s.poke()
}

// Reconnected tells the source that the broker connection came back: it resynchronises at
// once (notifications may have been lost) instead of at its next report.
func (s *Source) Reconnected() { s.poke() }

func (s *Source) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *Source) markChanged() {
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// work does what is pending: a resync, details of new devices, subnets, devices up/down.
func (s *Source) work(ctx context.Context) {
	s.mu.Lock()
	resync := s.resync
	s.resync = false
	if resync {
		for d := range s.plugged {
			s.pending[d] = true
		}
		for d := range s.failed {
			s.pending[d] = true
		}
		clear(s.failed)
		clear(s.c.unknown)
		clear(s.c.deviceIDAsked)
		s.p.clear()     // pushes may have been lost: everything is asked
		s.c.sg.resync() // and pulled again
		clear(s.up)     // every device is reported up again
		s.refresh = true
	}
	if !resync && !s.retryAt.IsZero() && !time.Now().Before(s.retryAt) {
		s.retryAt = time.Time{}
		for d := range s.failed {
			s.pending[d] = true
		}
		clear(s.failed)
	}
	devices := slices.Sorted(maps.Keys(s.pending))
	clear(s.pending)
	asked := len(devices)
	devices = s.takePushed(devices)
	fromPushes := asked > len(devices)
	// A device whose call is in flight is asked again after it (it changed meanwhile).
	devices = slices.DeleteFunc(devices, func(d string) bool {
		if s.asking[d] {
			s.pending[d] = true
		}
		return s.asking[d]
	})
	// A resync asks in one blocking call, as before: the devices are reported up together
	// after it.
	async := s.detailsAsync && !resync && len(devices) > 0
	if async {
		for _, d := range devices {
			s.asking[d] = true
		}
	}
	s.mu.Unlock()

	if resync {
		// A resync's list calls must not hold up the devices behind them for a whole
		// rpc_response_timeout: each gets resyncCallTimeout, and a failed one is asked
		// again at the next report.
		if err := s.withTimeout(ctx, s.syncHost); err != nil {
			s.log.Warn("resync: DVR MACs; asked again at the next report", zap.Error(err))
			s.mu.Lock()
			s.resync = true
			s.mu.Unlock()
		}
		if err := s.withTimeout(ctx, s.syncTunnels); err != nil {
			s.log.Warn("resync: tunnels; asked again at the next report", zap.Error(err))
			s.mu.Lock()
			s.resync = true
			s.mu.Unlock()
		}
	}
	switch {
	case async:
		go func() {
			s.fetchDetails(ctx, devices)
			s.mu.Lock()
			for _, d := range devices {
				delete(s.asking, d)
				if s.upAgain[d] {
					delete(s.upAgain, d)
					delete(s.up, d)
					if s.plugged[d] && s.c.ports[d] != nil {
						s.toUp[d] = true
					}
				}
			}
			s.mu.Unlock()
			s.poke() // their subnets, and whatever came meanwhile
		}()
	case len(devices) > 0:
		s.fetchDetails(ctx, devices)
	}
	s.fetchSubnets(ctx)
	s.fetchSecurityGroups(ctx)
	if fromPushes {
		s.markChanged()
	}
	s.updateDevices(ctx)
	s.fetchRouterIDs(ctx)
}

// fetchRouterIDs fills in the router of the router ports plugged here (bulk_pull of their
// Port objects): the device details lack device_id. It runs after the devices are reported,
// off the path from plug to up; a failure is logged and asked again at the next resync.
func (s *Source) fetchRouterIDs(ctx context.Context) {
	s.mu.Lock()
	ids := s.c.routerPortsWithoutDevice()
	for _, id := range ids {
		s.c.deviceIDAsked[id] = true
	}
	s.mu.Unlock()
	if len(ids) == 0 {
		return
	}
	ports, err := s.api.PullPorts(ctx, ids)
	if err != nil {
		s.log.Warn("bulk_pull Port failed: router ports without their router until the next resync", zap.Strings("ports", ids), zap.Error(err))
		return
	}
	s.mu.Lock()
	for _, p := range ports {
		s.c.setDeviceID(p.ID, p.DeviceID)
	}
	s.mu.Unlock()
	s.log.Debug("routers of the router ports", zap.Strings("ports", ids), zap.Int("found", len(ports)))
	s.markChanged()
}

// Back-off of the retries of devices whose details failed.
const (
	minDetailsRetry = time.Second
	maxDetailsRetry = 30 * time.Second
)

// fetchDetails asks for the details of devices; failures are asked again after a back-off
// (1 s, doubling up to 30 s) and at the next resync.
func (s *Source) fetchDetails(ctx context.Context, devices []string) {
	details, failed, err := s.api.GetDevicesDetails(ctx, devices)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for _, d := range devices {
			s.failed[d] = true
		}
		s.log.Warn("get_devices_details_list_and_failed_devices failed; asked again",
			zap.Strings("devices", devices), zap.Duration("retry_in", s.scheduleRetry(ctx)), zap.Error(err))
		return
	}
	for _, d := range failed {
		s.failed[d] = true
	}
	if len(failed) > 0 {
		s.log.Warn("device details failed on the server; asked again", zap.Strings("devices", failed),
			zap.Duration("retry_in", s.scheduleRetry(ctx)))
	} else if len(s.failed) == 0 {
		s.retryWait = 0
	}
	asked := map[string]bool{}
	for _, d := range devices {
		asked[d] = true
	}
	// A device a push bound here meanwhile is programmed from the push (takePushed); one
	// pushed as deleted meanwhile stays deleted.
	details = slices.DeleteFunc(details, func(d DeviceDetails) bool {
		return !asked[d.Device] || s.fromPush(d.Device, true) != nil
	})
	known, unknown := s.c.setDetails(details)
	for _, d := range devices {
		if s.p.deletedPorts[d] {
			s.c.forget(d, true)
		}
	}
	for _, d := range unknown {
		s.log.Info("device unknown to neutron-server for this host: kept dead", zap.String("device", d))
	}
	s.log.Info("device details", zap.Int("known", len(known)), zap.Int("unknown", len(unknown)), zap.Int("failed", len(failed)))
	s.markChanged()
}

// scheduleRetry makes the failed devices due again after the back-off, and returns it.
// s.mu is held.
func (s *Source) scheduleRetry(ctx context.Context) time.Duration {
	s.retryWait = min(max(2*s.retryWait, minDetailsRetry), maxDetailsRetry)
	wait := s.retryWait
	s.retryAt = time.Now().Add(wait)
	s.pokeAfter(ctx, wait)
	return wait
}

// pokeAfter wakes the source after wait (unless ctx ends first).
func (s *Source) pokeAfter(ctx context.Context, wait time.Duration) {
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(wait):
			s.poke()
		}
	}()
}

// fetchSubnets fills in the subnets of the ports' fixed IPs (bulk_pull Subnet) and the
// gateway of every distributed router interface's subnet (get_subnet_for_dvr).
func (s *Source) fetchSubnets(ctx context.Context) {
	s.mu.Lock()
	missing := s.c.missingSubnets()
	dvr := s.c.routerInterfaceSubnets()
	for id := range dvr {
		if sn := s.c.subnets[id]; sn != nil && sn.gatewayMAC != nil {
			delete(dvr, id)
		}
	}
	s.mu.Unlock()
	if len(missing) > 0 {
		subnets, err := s.api.PullSubnets(ctx, missing)
		if err != nil {
			s.log.Warn("bulk_pull Subnet failed", zap.Strings("subnets", missing), zap.Error(err))
		}
		s.mu.Lock()
		for _, sn := range subnets {
			if err := s.c.setSubnet(sn.ID, sn.NetworkID, sn.CIDR, sn.GatewayIP, nil, sn.IPVersion); err != nil {
				s.log.Warn("subnet skipped", zap.Error(err))
			}
		}
		s.mu.Unlock()
		s.markChanged()
	}
	for _, id := range slices.Sorted(maps.Keys(dvr)) {
		info, err := s.api.GetSubnetForDVR(ctx, id, dvr[id])
		if err != nil || info.ID == "" {
			s.log.Warn("get_subnet_for_dvr failed", zap.String("subnet", id), zap.Error(err))
			continue
		}
		s.mu.Lock()
		if err := s.c.setSubnet(info.ID, info.NetworkID, info.CIDR, info.GatewayIP, info.GatewayMAC, info.IPVersion); err != nil {
			s.log.Warn("subnet skipped", zap.Error(err))
		}
		s.mu.Unlock()
		if ports, err := s.api.GetPortsOnHostBySubnet(ctx, id); err == nil {
			s.log.Debug("ports of the DVR subnet on this host", zap.String("subnet", id), zap.Int("ports", len(ports)))
		}
		s.markChanged()
	}
}

// updateDevices reports the devices up and down that the agent's reports made due.
func (s *Source) updateDevices(ctx context.Context) {
	s.mu.Lock()
	up, down := slices.Sorted(maps.Keys(s.toUp)), slices.Sorted(maps.Keys(s.toDown))
	// A device whose details call is in flight (a push programmed it meanwhile) is reported
	// up at once and again after the call: the server sets a port BUILD when it answers for
	// its details, which may undo an ACTIVE set before.
	for _, d := range up {
		if s.asking[d] {
			s.upAgain[d] = true
		}
	}
	refresh := s.refresh && len(up) > 0
	s.mu.Unlock()
	if len(up)+len(down) == 0 {
		return
	}
	// The server handles a call's devices one after the other; chunks in flight together
	// let it overlap them, and keep each call well inside rpc_response_timeout.
	chunks := chunkDevices(up, down, deviceListChunk)
	var (
		wg     sync.WaitGroup
		failed atomic.Bool
		slots  = make(chan struct{}, deviceListInFlight)
	)
	for _, c := range chunks {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			if !s.reportDevices(ctx, c.up, c.down, refresh) {
				failed.Store(true)
			}
		}()
	}
	wg.Wait()
	if failed.Load() {
		go func() {
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
				s.poke()
			}
		}()
		return
	}
	if refresh {
		s.mu.Lock()
		s.refresh = false
		s.mu.Unlock()
	}
}

// deviceListChunk is how many devices one update_device_list carries, and
// deviceListInFlight how many such calls are in flight at once. neutron-server runs
// update_device_up for a call's devices one after the other (port status, provisioning
// block, l2population), 10 ms to most of a second each depending on its load: a few hundred
// devices in one call would outlast rpc_response_timeout.
const (
	deviceListChunk    = 10
	deviceListInFlight = 4
)

// deviceChunk is one update_device_list's devices.
type deviceChunk struct{ up, down []string }

// chunkDevices splits the devices to report into calls of at most n devices, the devices up
// first.
func chunkDevices(up, down []string, n int) []deviceChunk {
	var out []deviceChunk
	for len(up) > 0 {
		k := min(n, len(up))
		out = append(out, deviceChunk{up: up[:k]})
		up = up[k:]
	}
	for len(down) > 0 {
		k := min(n, len(down))
		out = append(out, deviceChunk{down: down[:k]})
		down = down[k:]
	}
	return out
}

// reportDevices makes one update_device_list call and records its result; false if the
// call failed (its devices stay due).
func (s *Source) reportDevices(ctx context.Context, up, down []string, refresh bool) bool {
	res, err := s.api.UpdateDeviceList(ctx, up, down, refresh)
	if err != nil {
		s.log.Warn("update_device_list failed; retried", zap.Strings("up", up), zap.Strings("down", down), zap.Error(err))
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	failedUp := map[string]bool{}
	for _, d := range res.FailedDevicesUp {
		failedUp[d] = true
	}
	for _, d := range up {
		if failedUp[d] {
			continue
		}
		delete(s.toUp, d)
		s.up[d] = true
	}
	for _, d := range down {
		if !slices.Contains(res.FailedDevicesDown, d) {
			delete(s.toDown, d)
			delete(s.up, d)
		}
	}
	s.log.Info("devices reported", zap.Strings("up", up), zap.Strings("down", down), zap.Bool("refresh_tunnels", refresh),
		zap.Strings("failed_up", res.FailedDevicesUp), zap.Strings("failed_down", res.FailedDevicesDown))
	return true
}

// Reconciled takes the agent's report of a reconcile. It must not block: it records what
// is due and wakes the source.
func (s *Source) Reconciled(r Report) {
	s.mu.Lock()
	plugged := make(map[string]bool, len(r.Plugged))
	for _, d := range r.Plugged {
		plugged[d] = true
	}
	for d := range s.plugged {
		if !plugged[d] {
			// Unplugged: down if it was up, and no port of this host any more.
			if s.up[d] {
				s.toDown[d] = true
			}
			delete(s.toUp, d)
			s.c.forget(d, false)
			delete(s.failed, d)
			s.markChanged()
		}
	}
	s.plugged = plugged
	for _, d := range r.Unknown {
		if _, known := s.c.ports[d]; !known && !s.c.unknown[d] && !s.failed[d] && !s.asking[d] {
			s.pending[d] = true
		}
	}
	for _, d := range r.Up {
		if !s.up[d] {
			s.toUp[d] = true
		}
		delete(s.toDown, d)
	}
	for _, d := range r.Dead {
		delete(s.toUp, d)
		if s.up[d] {
			s.toDown[d] = true
		}
	}
	if r.SwitchRestarted {
		s.refresh = true
		clear(s.up) // l2pop sends the full FDB only for devices reported up again
		for _, d := range r.Up {
			s.toUp[d] = true
		}
	}
	s.mu.Unlock()
	s.poke()
}

// emit hands the agent a snapshot after every change, the newest replacing one the agent
// has not taken yet.
func (s *Source) emit(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.changed:
		}
		s.mu.Lock()
		u := &northbound.Update{Snapshot: s.c.snapshot()}
		s.mu.Unlock()
		select {
		case s.updates <- u:
		default:
			select {
			case <-s.updates:
			default:
			}
			s.updates <- u
		}
	}
}

// handle is every consumed notification.
func (s *Source) handle(_ context.Context, in oslo.Incoming) {
	if err := s.apply(in.Method, in.Args); err != nil {
		s.log.Warn("notification skipped", zap.String("queue", in.Queue), zap.String("method", in.Method), zap.Error(err))
		return
	}
	if strings.HasSuffix(in.Method, "_fdb_entries") {
		select {
		case s.l2pop <- struct{}{}:
		default:
		}
	}
	s.markChanged()
	s.poke()
}

// apply applies one notification to the cache.
func (s *Source) apply(method string, raw json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch method {
	case "tunnel_update":
		var a tunnelArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		return s.c.addTunnel(a.TunnelIP, "", a.TunnelType)
	case "tunnel_delete":
		var a tunnelArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		return s.c.deleteTunnel(a.TunnelIP, a.TunnelType)
	case "dvr_mac_address_update":
		var a dvrMACArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		s.c.setDVRMACs(a.DVRMACs)
		s.dvrMACUpdates++
	case "add_fdb_entries", "remove_fdb_entries":
		var a fdbArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		entries, err := decodeFDB(a.FDBEntries)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		return s.c.applyFDB(entries, method == "add_fdb_entries")
	case "update_fdb_entries":
		var a fdbArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		changes, err := decodeChgIP(a.FDBEntries)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		return s.c.chgIP(changes)
	case "port_update":
		var a portUpdateArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		s.refetch(a.Port.ID)
		s.c.setDeviceID(a.Port.ID, a.Port.DeviceID)
	case "port_delete":
		var a portDeleteArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		if s.plugged[a.PortID] || s.c.ports[a.PortID] != nil {
			s.c.forget(a.PortID, true)
		}
	case "network_update":
		var a networkUpdateArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		for id, p := range s.c.ports {
			if p.NetworkID == a.Network.ID {
				s.pending[id] = true
			}
		}
	case "network_delete":
		var a networkDeleteArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		for id, p := range s.c.ports {
			if p.NetworkID == a.NetworkID {
				s.c.forget(id, true)
			}
		}
	case "binding_activate":
		var a bindingArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		if a.Host == s.set.Host {
			s.refetch(a.PortID)
		}
	case "push":
		return s.applyPush(method, raw)
	case "binding_deactivate":
		var a bindingArgs
		if err := decodeArgs(method, raw, &a); err != nil {
			return err
		}
		if a.Host == s.set.Host {
			s.c.forget(a.PortID, true)
		}
	default:
		return fmt.Errorf("no such method %q", method)
	}
	return nil
}

// refetch asks again for a plugged device's details (it changed on the server).
func (s *Source) refetch(device string) {
	if device == "" {
		return
	}
	delete(s.c.unknown, device)
	delete(s.failed, device)
	if s.plugged[device] || s.c.ports[device] != nil {
		s.pending[device] = true
	}
}

// newUUID is a random UUID for report_state's uuid.
func newUUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "00000000-0000-4000-8000-000000000000"
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}

// Snapshot is the current snapshot (for a reload that reads the config files again).
func (s *Source) Snapshot() *northbound.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.c.snapshot()
}
