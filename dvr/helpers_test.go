package dvr_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/dvr"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

// scenarios is where the reference dumps of Neutron's own agent live, in the repository
// (testdata/neutron/README.md says where they come from).
var scenarios = filepath.Join("..", "testdata", "neutron", "scenarios")

// readDump reads the bridges of a scenario's .flows file: bridge name → lines, with the
// blanked cookie removed.
func readDump(t *testing.T, name string) map[string][]string {
	t.Helper()
	path := filepath.Join(scenarios, name)
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	var bridge string
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## bridge "):
			bridge, _, _ = strings.Cut(strings.TrimPrefix(line, "## bridge "), ":")
			out[bridge] = []string{}
		case line == "" || strings.HasPrefix(line, "#"):
		case bridge == "":
			t.Fatalf("%s: flow before any bridge header: %s", path, line)
		default:
			out[bridge] = append(out[bridge], strings.TrimPrefix(line, "cookie=COOKIE, "))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s: no bridges", path)
	}
	return out
}

// learnCookie is the cookie a learn() action stamps on learned flows.
var learnCookie = regexp.MustCompile(`,cookie=0x[0-9a-f]+,`)

// lines renders flows as dump lines without cookies (blanked inside learn(), as the
// reference dumps do), sorted.
func lines(fs []flows.Flow) []string {
	out := make([]string, 0, len(fs))
	for _, f := range fs {
		out = append(out, learnCookie.ReplaceAllString(withoutCookie(f), ",cookie=COOKIE,"))
	}
	sort.Strings(out)
	return out
}

// minus returns the lines of a that are not in b (both sorted; duplicates count).
func minus(a, b []string) []string {
	var out []string
	i := 0
	for _, l := range a {
		for i < len(b) && b[i] < l {
			i++
		}
		if i < len(b) && b[i] == l {
			i++
			continue
		}
		out = append(out, l)
	}
	return out
}

// compareWithNeutron requires ours to equal Neutron's lines of one bridge, except for the
// documented differences.
func compareWithNeutron(t *testing.T, bridge, role string, neutron, ours []string) {
	t.Helper()
	neutron, ours = slices.Sorted(slices.Values(neutron)), slices.Sorted(slices.Values(ours))
	if len(neutron) == 0 {
		t.Fatalf("%s: the reference has no lines to compare with", bridge)
	}
	missing, extra := dvr.Explain(role, minus(neutron, ours), minus(ours, neutron), false)
	for _, l := range missing {
		t.Errorf("%s: Neutron has, we lack: %s", bridge, l)
	}
	for _, l := range extra {
		t.Errorf("%s: we have, Neutron lacks: %s", bridge, l)
	}
}

func generate(n *state.Node) map[string][]flows.Flow {
	out := map[string][]flows.Flow{}
	dvr.Generate(n, out)
	return out
}

// annotated renders the flows of every bridge as a golden file: flows without cookies,
// sorted as in a reference dump (table, priority descending, text), each followed by
// its cookie's category and the name of its object (flows.CookieInfo.Text).
func annotated(n *state.Node, out map[string][]flows.Flow) string {
	names := objectNames(n)
	var b strings.Builder
	for _, br := range slices.Sorted(func(yield func(string) bool) {
		for br := range out {
			if !yield(br) {
				return
			}
		}
	}) {
		fs := slices.Clone(out[br])
		slices.SortStableFunc(fs, func(a, b flows.Flow) int {
			if a.Table != b.Table {
				return int(a.Table) - int(b.Table)
			}
			if a.Priority != b.Priority {
				return int(b.Priority) - int(a.Priority)
			}
			return strings.Compare(withoutCookie(a), withoutCookie(b))
		})
		fmt.Fprintf(&b, "## bridge %s: %d flows\n", br, len(fs))
		for _, f := range fs {
			fmt.Fprintf(&b, "%s  # %s\n", withoutCookie(f), flows.DescribeCookie(f.Cookie).Text(names))
		}
	}
	return b.String()
}

func withoutCookie(f flows.Flow) string { f.Cookie = 0; return f.String() }

// objectNames maps cookie object hashes to readable names: bridges, DVR MACs, ports.
func objectNames(n *state.Node) flows.ObjectNames {
	m := flows.ObjectNames{}
	add := m.Add
	add(n.Host.IntegrationBridge, n.Host.IntegrationBridge)
	add(n.Host.TunnelBridge, n.Host.TunnelBridge)
	for _, p := range n.Host.Physical {
		add(p.Bridge, p.Bridge)
	}
	if n.Host.DVRMAC != nil {
		add(n.Host.DVRMAC.String(), n.Host.DVRMAC.String()+" (own)")
	}
	for _, r := range n.RemoteHosts {
		if r.DVRMAC != nil {
			add(r.DVRMAC.String(), r.DVRMAC.String()+" ("+r.Name+")")
		}
	}
	for _, p := range n.Ports {
		add(p.ID, p.Name)
	}
	return m
}

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func prefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
func addr(s string) netip.Addr     { return netip.MustParseAddr(s) }

// subnet builds an IPv4 or IPv6 subnet whose gateway is the first address of the CIDR.
func subnet(id, network, cidr, gatewayMAC string) state.Subnet {
	p := prefix(cidr)
	s := state.Subnet{ID: id, NetworkID: network, CIDR: p, GatewayIP: p.Addr().Next(), IPVersion: 4}
	if p.Addr().Is6() {
		s.IPVersion = 6
	}
	if gatewayMAC != "" {
		s.GatewayMAC = mac(gatewayMAC)
	}
	return s
}

// port builds a bound port named as Neutron names it (prefix + first 11 characters of the id).
func port(ofport uint32, id, network, macAddr string, owner northbound.DeviceOwner, ips ...string) state.Port {
	prefixes := map[northbound.DeviceOwner]string{
		northbound.OwnerRouterInterfaceDistributed: "qr-",
		northbound.OwnerRouterCentralizedSNAT:      "sg-",
		northbound.OwnerRouterGateway:              "qg-",
	}
	name := "tap" + id[:11]
	if p, ok := prefixes[owner]; ok {
		name = p + id[:11]
	}
	p := state.Port{ID: id, Name: name, NetworkID: network, MAC: mac(macAddr), DeviceOwner: owner,
		PortSecurity: !owner.IsNetworkOwned(), OFPort: ofport}
	for i := 0; i < len(ips); i += 2 {
		p.FixedIPs = append(p.FixedIPs, state.FixedIP{SubnetID: ips[i], IP: addr(ips[i+1])})
	}
	return p
}
