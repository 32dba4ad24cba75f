package tunnels

import (
	"bufio"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// scenarioDir holds Neutron's reference dumps, in the repository (testdata/neutron/README.md
// says where they come from).
const scenarioDir = "../testdata/neutron/scenarios"

// reference is what a scenario's .flows file says: the local VLAN of each network, and per
// bridge its ofports and flow lines.
type reference struct {
	networks []state.Network
	ofports  map[string]map[uint32]string // bridge → ofport → port name
	lines    map[string][]string          // bridge → flow lines, as dumped
}

var (
	localVLANLine = regexp.MustCompile(`^# local_vlan (\d+): network (\S+) \((\w+)(?: ([^ )]+))?(?: seg (\d+))?\)$`)
	bridgeLine    = regexp.MustCompile(`^## bridge (\S+):`)
)

// readReference parses a scenario's .flows file.
func readReference(t *testing.T, name string) reference {
	t.Helper()
	path := filepath.Join(scenarioDir, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := reference{ofports: map[string]map[uint32]string{}, lines: map[string][]string{}}
	bridge := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := localVLANLine.FindStringSubmatch(line); m != nil {
			vlan, _ := strconv.Atoi(m[1])
			seg, _ := strconv.ParseInt(m[5], 10, 64)
			ref.networks = append(ref.networks, state.Network{ID: m[2], Type: northbound.NetworkType(m[3]), Physnet: m[4], SegmentationID: seg, LocalVLAN: uint16(vlan)})
			continue
		}
		if m := bridgeLine.FindStringSubmatch(line); m != nil {
			bridge = m[1]
			continue
		}
		if ports, ok := strings.CutPrefix(line, "# ofports: "); ok && bridge != "" {
			ref.ofports[bridge] = map[uint32]string{}
			for _, p := range strings.Fields(ports) {
				num, name, _ := strings.Cut(p, "=")
				n, err := strconv.ParseUint(num, 10, 32)
				if err != nil {
					t.Fatalf("%s: bad ofports entry %q", path, p)
				}
				ref.ofports[bridge][uint32(n)] = name
			}
			continue
		}
		if strings.HasPrefix(line, "cookie=") && bridge != "" {
			ref.lines[bridge] = append(ref.lines[bridge], line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return ref
}

// tunnelPorts turns the reference's br-tun ofports into patch-int's ofport and the tunnel
// ports, recovering each port's type and IPv4 peer from its name (and checking PortName
// names it the same way).
func (r reference) tunnelPorts(t *testing.T) (patchInt uint32, ports []state.TunnelPort) {
	t.Helper()
	for ofport, name := range r.ofports["br-tun"] {
		if name == "patch-int" {
			patchInt = ofport
			continue
		}
		prefix, hex, ok := strings.Cut(name, "-")
		typ := northbound.NetworkType(prefix)
		v, err := strconv.ParseUint(hex, 16, 32)
		if !ok || err != nil || len(hex) != 8 {
			t.Fatalf("br-tun port %q is not a tunnel port named after an IPv4 peer", name)
		}
		ip := netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
		if got := PortName(typ, ip); got != name {
			t.Errorf("PortName(%s, %s) = %s, Neutron named it %s", typ, ip, got, name)
		}
		ports = append(ports, state.TunnelPort{Name: name, Type: typ, RemoteIP: ip, OFPort: ofport})
	}
	slices.SortFunc(ports, func(a, b state.TunnelPort) int { return int(a.OFPort) - int(b.OFPort) })
	return patchInt, ports
}

var ourCookie = regexp.MustCompile(`cookie=0x[0-9a-f]+`)

// dumpLines renders flows as the reference files show them: cookies (also inside learn())
// blanked to COOKIE. Every flow must carry one of our cookies.
func dumpLines(t *testing.T, fs []flows.Flow) []string {
	t.Helper()
	var out []string
	for _, f := range fs {
		if !flows.IsOurs(f.Cookie) {
			t.Errorf("flow without our cookie: %s", f)
		}
		out = append(out, ourCookie.ReplaceAllString(f.String(), "cookie=COOKIE"))
	}
	slices.Sort(out)
	return out
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func entry(mac, ip string) state.FDBEntry {
	e := state.FDBEntry{MAC: mustMAC(mac)}
	if ip != "" {
		e.IP = netip.MustParseAddr(ip)
	}
	return e
}

// TestLegacyTunnelsMatchesNeutron: without DVR or l2population, br-tun is exactly what
// Neutron's agent installed (full-mesh flooding per tunnel type, no ARP responder).
func TestLegacyTunnelsMatchesNeutron(t *testing.T) {
	ref := readReference(t, "legacy_tunnels.flows")
	patchInt, ports := ref.tunnelPorts(t)
	n := &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "legacy", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			TunnelTypes: []northbound.NetworkType{northbound.VXLAN, northbound.GRE}, LocalIP: netip.MustParseAddr("192.168.100.11"),
			PatchTun: 1, PatchInt: patchInt,
		},
		Networks:    ref.networks,
		TunnelPorts: ports,
	}
	out := map[string][]flows.Flow{}
	Generate(n, out)
	got := dumpLines(t, out["br-tun"])
	want := slices.Sorted(slices.Values(ref.lines["br-tun"]))
	if len(want) == 0 {
		t.Fatal("the reference has no br-tun flows")
	}
	if !slices.Equal(got, want) {
		t.Errorf("br-tun differs from Neutron's:\n%s", lineDiff(want, got))
	}
}

// isDVRLine reports whether a br-tun line of a reference dump is one package dvr makes:
// tables 1 and 9, patch-int → table 1 (T17, which replaces our T1), and table 22's
// priority-3 gateway drops.
func isDVRLine(line string, patchInt uint32) bool {
	table, prio := 0, 0
	for _, field := range strings.FieldsFunc(line, func(r rune) bool { return r == ',' || r == ' ' }) {
		if v, ok := strings.CutPrefix(field, "table="); ok {
			table, _ = strconv.Atoi(v)
		}
		if v, ok := strings.CutPrefix(field, "priority="); ok {
			prio, _ = strconv.Atoi(v)
		}
	}
	t17 := "priority=1,in_port=" + strconv.Itoa(int(patchInt)) + " actions=goto_table:1"
	return table == 1 || table == 9 || (table == 22 && prio == 3) || (table == 0 && strings.HasSuffix(line, t17))
}

// TestDVRVXLANL2popMatchesNeutron: with DVR, l2population and the ARP responder, every
// br-tun flow of Neutron's that is not a DVR flow is produced, and the only flow we add is
// T1, which DVR's T17 replaces in pipeline.Build.
func TestDVRVXLANL2popMatchesNeutron(t *testing.T) {
	ref := readReference(t, "dvr_vxlan_l2pop.flows")
	patchInt, ports := ref.tunnelPorts(t)
	const net1, net2 = "a0000011-0000-4000-8000-000000000011", "a0000012-0000-4000-8000-000000000012"
	compute2, network1 := netip.MustParseAddr("192.168.100.12"), netip.MustParseAddr("192.168.100.13")
	n := &state.Node{
		Host: state.Host{
			Name: "compute1", AgentMode: "dvr", IntegrationBridge: "br-int", TunnelBridge: "br-tun",
			TunnelTypes: []northbound.NetworkType{northbound.VXLAN}, LocalIP: netip.MustParseAddr("192.168.100.11"),
			PatchTun: 1, PatchInt: patchInt, Distributed: true, L2Population: true, ARPResponder: true,
			DVRMAC: mustMAC("fa:16:3f:00:00:01"),
		},
		Networks:    ref.networks,
		TunnelPorts: ports,
		// As dvr_vxlan_l2pop.json's remote_ports and l2pop_fdb make them (compute2's router
		// interface floods only).
		FDB: []state.FDB{
			{NetworkID: net1, RemoteIP: compute2, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:20:01:21", "10.1.1.21")}},
			{NetworkID: net1, RemoteIP: network1, Flood: true, Entries: []state.FDBEntry{
				entry("fa:16:3e:30:01:02", "10.1.1.2"), entry("fa:16:3e:30:01:03", "10.1.1.3")}},
			{NetworkID: net2, RemoteIP: compute2, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:20:02:21", "10.1.2.21")}},
			{NetworkID: net2, RemoteIP: network1, Flood: true, Entries: []state.FDBEntry{entry("fa:16:3e:30:02:02", "10.1.2.2")}},
		},
	}
	out := map[string][]flows.Flow{}
	Generate(n, out)
	got := dumpLines(t, out["br-tun"])
	var want []string
	for _, line := range ref.lines["br-tun"] {
		if !isDVRLine(line, patchInt) {
			want = append(want, line)
		}
	}
	if len(want) == 0 {
		t.Fatal("the reference has no non-DVR br-tun flows")
	}
	t1 := "cookie=COOKIE, priority=1,in_port=" + strconv.Itoa(int(patchInt)) + " actions=goto_table:2"
	wantOurs := slices.Sorted(slices.Values(append(want, t1)))
	if !slices.Equal(got, wantOurs) {
		t.Errorf("br-tun differs from Neutron's non-DVR flows (plus T1):\n%s", lineDiff(wantOurs, got))
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got []string) string {
	var b strings.Builder
	for _, l := range want {
		if !slices.Contains(got, l) {
			b.WriteString("- " + l + "\n")
		}
	}
	for _, l := range got {
		if !slices.Contains(want, l) {
			b.WriteString("+ " + l + "\n")
		}
	}
	return b.String()
}
