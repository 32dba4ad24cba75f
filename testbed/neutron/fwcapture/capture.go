package main

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// physnet1 is the physical network every host maps, to br-vlan.
var bridgeMappings = map[string]string{"physnet1": "br-vlan"}

// peerName is the other host: it holds the remote members of remote-group rules and is the
// DVR peer whose DVR MAC the DVR scenario's host learns. It runs Neutron's agent with DVR.
const peerName = "fw-peer"

// underlayIP is the tunnel endpoint of a host: the peer .60, scenario i's host .60+i.
func underlayIP(i int) netip.Prefix {
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 255, 0, byte(60 + i)}), 24)
}

// capture runs scenarios on one test bed.
type capture struct {
	cloud *neutron.Cloud
	log   *zap.Logger
	out   string

	peer       *neutron.AgentHost
	peerDVRMAC string
	peerErr    error // the peer could not be set up (it is not tried twice)
}

// result is what a scenario's capture says about itself.
type result struct {
	flows    int
	perTable string
}

// ensurePeer adds the peer host and starts its agent (DVR on), once.
func (c *capture) ensurePeer(ctx context.Context) (*neutron.AgentHost, error) {
	if c.peer != nil {
		return c.peer, nil
	}
	if c.peerErr != nil {
		return nil, c.peerErr
	}
	h, err := c.cloud.AddHost(ctx, neutron.HostOptions{Name: peerName, LocalIP: underlayIP(0), BridgeMappings: bridgeMappings})
	if err == nil {
		_, err = h.StartNeutronAgent(ctx, neutron.AgentOptions{FirewallDriver: "openvswitch"})
	}
	var mac string
	if err == nil {
		mac, err = agentDVRMAC(h)
	}
	if err != nil {
		c.peerErr = fmt.Errorf("peer host: %w", err)
		return nil, c.peerErr
	}
	c.peer, c.peerDVRMAC = h, mac
	return h, nil
}

// dvrMACLog is the agent's debug line with the answer to get_dvr_mac_address_by_host; the
// server gives the MAC as netaddr prints it, FA-16-3F-F2-89-1E.
var dvrMACLog = regexp.MustCompile(`get_dvr_mac_address_by_host\(\) from plugin: .*'mac_address': '([0-9A-Fa-f]{2}(?:[-:][0-9A-Fa-f]{2}){5})'`)

// agentDVRMAC is the DVR MAC neutron-server gave the host's agent, from the agent's log.
func agentDVRMAC(h *neutron.AgentHost) (string, error) {
	data, err := os.ReadFile(h.NeutronAgentLog())
	if err != nil {
		return "", err
	}
	m := dvrMACLog.FindAllStringSubmatch(string(data), -1)
	if len(m) == 0 {
		return "", fmt.Errorf("no DVR MAC in %s", h.NeutronAgentLog())
	}
	return strings.ToLower(strings.ReplaceAll(m[len(m)-1][1], "-", ":")), nil
}

// scenario captures one scenario on a new host and writes its two files.
func (c *capture) scenario(ctx context.Context, s *scenario) (*result, error) {
	idx := slices.Index(scenarios, s) + 1
	r := &run{c: c, sc: s, idx: idx, project: "fw-" + s.name}
	// The cloud's client, in the scenario's project and with a 60 s request timeout.
	client := *c.cloud.Client
	client.ProjectID, client.HTTP = r.project, &http.Client{Timeout: 60 * time.Second}
	r.client = &client
	if s.needsPeer {
		if _, err := c.ensurePeer(ctx); err != nil {
			return nil, err
		}
	}
	hostName := "fw-" + strings.ReplaceAll(s.name, "_", "-")
	h, err := c.cloud.AddHost(ctx, neutron.HostOptions{Name: hostName, LocalIP: underlayIP(idx), BridgeMappings: bridgeMappings})
	if err != nil {
		return nil, err
	}
	r.host = h
	opts := neutron.AgentOptions{FirewallDriver: "openvswitch", NoDistributedRouting: !s.dvr}
	if _, err := h.StartNeutronAgent(ctx, opts); err != nil {
		return nil, err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := h.StopNeutronAgent(sctx); err != nil {
			c.log.Warn("stop Neutron's agent", zap.String("host", hostName), zap.Error(err))
		}
	}()
	if s.dvr {
		if r.dvrMAC, err = agentDVRMAC(h); err != nil {
			return nil, err
		}
	}

	if err := s.build(ctx, r); err != nil {
		return nil, err
	}
	if len(r.routers) > 0 {
		// The L3 agent's part: sync_routers binds the distributed router's interfaces to
		// the host (it has VMs on their subnets), before the qr- ports are plugged.
		if err := h.RegisterDVRL3Agent(ctx); err != nil {
			return nil, err
		}
	}
	for _, p := range r.ports {
		if err := r.plug(ctx, h, p); err != nil {
			return nil, err
		}
	}
	for _, p := range r.remote {
		if err := r.plug(ctx, c.peer, p); err != nil {
			return nil, err
		}
	}
	for _, p := range append(slices.Clone(r.ports), r.remote...) {
		if !strings.HasPrefix(p.DeviceOwner, "compute:") {
			continue
		}
		wctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
		_, err := r.client.WaitPortStatus(wctx, p.ID, "ACTIVE")
		cancel()
		if err != nil {
			return nil, err
		}
	}
	// Read the ports back: the server's view after binding (security groups, pairs).
	for _, list := range [][]*neutron.Port{r.ports, r.remote} {
		for i, p := range list {
			fresh, err := r.client.GetPort(ctx, p.ID)
			if err != nil {
				return nil, err
			}
			list[i] = fresh
		}
	}
	lines, err := waitStable(ctx, h, 5*time.Second, 3*time.Minute)
	if err != nil {
		return nil, err
	}
	return c.write(ctx, r, lines)
}

// waitStable dumps br-int every second until the dump has not changed for quiet (so at
// least two identical dumps quiet apart), and returns the last dump.
func waitStable(ctx context.Context, h *neutron.AgentHost, quiet, limit time.Duration) ([]string, error) {
	deadline := time.Now().Add(limit)
	var last []string
	since := time.Now()
	for {
		cur, err := testbed.DumpFlows(ctx, h.Sandbox(), "br-int")
		if err != nil {
			return nil, err
		}
		if !slices.Equal(cur, last) {
			last, since = cur, time.Now()
		} else if time.Since(since) >= quiet {
			return cur, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("br-int of %s still changing after %s", h.Name(), limit)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

var (
	cookieRe   = regexp.MustCompile(`cookie=0x[0-9a-f]+`)
	tableRe    = regexp.MustCompile(`(?:^|[ ,])table=(\d+),`)
	priorityRe = regexp.MustCompile(`(?:^|[ ,])priority=(\d+)`)
)

// normalise blanks the cookies and sorts the flows by table, priority (highest first),
// then text, as testdata/neutron/scenarios' dumps are. It also counts the flows by table.
func normalise(lines []string) ([]string, map[int]int) {
	type flow struct {
		table, prio int
		text        string
	}
	fl := make([]flow, 0, len(lines))
	perTable := map[int]int{}
	for _, l := range lines {
		l = cookieRe.ReplaceAllString(l, "cookie=COOKIE")
		head, _, _ := strings.Cut(l, " actions=")
		f := flow{prio: 0x8000, text: l}
		if m := tableRe.FindStringSubmatch(head); m != nil {
			f.table, _ = strconv.Atoi(m[1])
		}
		if m := priorityRe.FindStringSubmatch(head); m != nil {
			f.prio, _ = strconv.Atoi(m[1])
		}
		fl = append(fl, f)
		perTable[f.table]++
	}
	slices.SortFunc(fl, func(a, b flow) int {
		if a.table != b.table {
			return a.table - b.table
		}
		if a.prio != b.prio {
			return b.prio - a.prio
		}
		return strings.Compare(a.text, b.text)
	})
	out := make([]string, len(fl))
	for i, f := range fl {
		out[i] = f.text
	}
	return out, perTable
}

// write writes NAME.flows and NAME.json.
func (c *capture) write(ctx context.Context, r *run, raw []string) (*result, error) {
	h := r.host.Sandbox()
	lines, perTable := normalise(raw)
	ofports, err := testbed.BridgeOfports(ctx, h, "br-int")
	if err != nil {
		return nil, err
	}
	byName := map[string]int{}
	for n, name := range ofports {
		byName[name] = n
	}
	// Local VLANs, from the tags of the scenario's ports, by network.
	vlanOf := map[string]int{}
	for _, p := range r.ports {
		if _, ok := vlanOf[p.NetworkID]; ok {
			continue
		}
		out, err := h.Vsctl(ctx, "get", "Port", portName(p), "tag")
		if err != nil {
			return nil, err
		}
		tag, err := strconv.Atoi(strings.TrimSpace(out))
		if err != nil {
			return nil, fmt.Errorf("port %s has no local VLAN tag (%q)", portName(p), out)
		}
		vlanOf[p.NetworkID] = tag
	}
	version, _ := h.Run(ctx, "ovs-vswitchd", "--version")
	version, _, _ = strings.Cut(strings.TrimSpace(version), "\n")

	var b strings.Builder
	mode := "legacy"
	if r.sc.dvr {
		mode = "dvr"
	}
	fmt.Fprintf(&b, "# Reference dump of Neutron's OVS agent: firewall scenario %s (host %s, %s)\n", r.sc.name, r.host.Name(), mode)
	fmt.Fprintf(&b, "# neutron 21.0.0, %s, native OpenFlow driver, firewall_driver=openvswitch, datapath_type=netdev\n", version)
	fmt.Fprintf(&b, "# %s\n", r.sc.description)
	b.WriteString("# cookies replaced by COOKIE; flows sorted by table, priority (descending), text\n")
	b.WriteString("# run-dependent as captured: ofports, local VLANs (= reg6 values and ct zones), conjunction ids, UUIDs\n")
	nets := slices.Clone(r.networks)
	slices.SortFunc(nets, func(a, b *neutron.Network) int { return vlanOf[a.ID] - vlanOf[b.ID] })
	for _, n := range nets {
		v, ok := vlanOf[n.ID]
		if !ok {
			continue
		}
		seg := ""
		if n.SegmentationID != nil {
			seg = " seg " + strconv.Itoa(*n.SegmentationID)
		}
		phys := ""
		if n.PhysicalNetwork != "" {
			phys = " " + n.PhysicalNetwork
		}
		fmt.Fprintf(&b, "# local_vlan %d: network %s (%s%s%s)\n", v, n.ID, n.NetworkType, phys, seg)
	}
	fmt.Fprintf(&b, "\n## bridge br-int: %d flows\n# ofports:", len(lines))
	nums := make([]int, 0, len(ofports))
	for n := range ofports {
		nums = append(nums, n)
	}
	slices.Sort(nums)
	for _, n := range nums {
		fmt.Fprintf(&b, " %d=%s", n, ofports[n])
	}
	b.WriteString("\n")
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\n")
	}
	if err := os.WriteFile(filepath.Join(c.out, r.sc.name+".flows"), []byte(b.String()), 0o644); err != nil {
		return nil, err
	}

	topo, err := r.topology(ctx, byName)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(c.out, r.sc.name+".json"), topo, 0o644); err != nil {
		return nil, err
	}

	tables := make([]int, 0, len(perTable))
	for t := range perTable {
		tables = append(tables, t)
	}
	slices.Sort(tables)
	var pt []string
	for _, t := range tables {
		pt = append(pt, fmt.Sprintf("%d:%d", t, perTable[t]))
	}
	return &result{flows: len(lines), perTable: strings.Join(pt, " ")}, nil
}
