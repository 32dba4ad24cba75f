package l2

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func mac(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// pfx parses a prefix, or an address as a host prefix.
func pfx(s string) netip.Prefix {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p
	}
	a := netip.MustParseAddr(s)
	return netip.PrefixFrom(a, a.BitLen())
}

func fixed(subnet string, ips ...string) []state.FixedIP {
	var out []state.FixedIP
	for _, ip := range ips {
		out = append(out, state.FixedIP{SubnetID: subnet, IP: netip.MustParseAddr(ip)})
	}
	return out
}

// generate runs Generate on a fresh map, as pipeline.Build does.
func generate(n *state.Node) map[string][]flows.Flow {
	out := map[string][]flows.Flow{}
	Generate(n, out)
	return out
}

// lines renders flows the way the scenario dumps print them: cookies blanked, sorted by
// table, priority (highest first), then text.
func lines(fs []flows.Flow) []string {
	fs = append([]flows.Flow(nil), fs...)
	for i := range fs {
		fs[i].Cookie = 0
	}
	flows.Sort(fs)
	out := make([]string, len(fs))
	for i, f := range fs {
		out[i] = f.String()
	}
	return out
}

// scenarios holds the reference dumps of Neutron's own agent, in the repository
// (testdata/neutron/README.md says where they come from).
var scenarios = filepath.Join("..", "testdata", "neutron", "scenarios")

// readScenario returns the flows of a NAME.flows reference dump per bridge, without the
// "cookie=COOKIE, " prefix, in file order.
func readScenario(t *testing.T, name string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(scenarios, name+".flows"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	bridge := ""
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := strings.TrimSpace(s.Text())
		switch {
		case strings.HasPrefix(l, "## bridge "):
			bridge, _, _ = strings.Cut(strings.TrimPrefix(l, "## bridge "), ":")
			out[bridge] = []string{}
		case l == "" || strings.HasPrefix(l, "#"):
		case bridge == "":
			t.Fatalf("%s.flows: flow before any bridge header: %s", name, l)
		default:
			rest, ok := strings.CutPrefix(l, "cookie=COOKIE, ")
			if !ok {
				t.Fatalf("%s.flows: unexpected line %q", name, l)
			}
			out[bridge] = append(out[bridge], rest)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	if len(out) == 0 {
		t.Fatalf("%s.flows: no bridges", name)
	}
	return out
}

// lineDiff shows the lines only in want (-) and only in got (+).
func lineDiff(want, got []string) string {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	var b strings.Builder
	keys := make([]string, 0, len(count))
	for l := range count {
		keys = append(keys, l)
	}
	sort.Strings(keys)
	for _, l := range keys {
		for c := count[l]; c > 0; c-- {
			fmt.Fprintf(&b, "- %s\n", l)
		}
		for c := count[l]; c < 0; c++ {
			fmt.Fprintf(&b, "+ %s\n", l)
		}
	}
	if b.Len() == 0 {
		return "(same lines, different order)\n"
	}
	return b.String()
}

// objectNames maps cookie object hashes back to the ids of the node's objects.
func objectNames(n *state.Node) flows.ObjectNames {
	m := flows.ObjectNames{}
	m.Add("br-int", "br-int")
	for _, p := range n.Host.Physical {
		m.Add(p.Physnet, p.Physnet)
	}
	for _, nw := range n.Networks {
		m.Add(nw.ID, nw.ID)
	}
	for _, p := range n.Ports {
		m.Add(p.ID, p.ID)
	}
	return m
}
