package firewall

import (
	"bufio"
	"encoding/json"
	"net"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/state"
)

const refDir = "../testdata/neutron/firewall/"

// covered declares which flows of default_group.flows this slice generates, by table and
// priority. exact flows must be equal after normalisation; withoutResetCounts ones are equal
// once the reference's reset_counts flag is removed (flows.Flow cannot carry flags yet: a
// known difference, not a normalisation of run-dependent values).
var (
	coveredExact = map[int][]int{
		60: {100, 90},
		71: {95, 80, 70},
		73: {100, 80},
		81: {100, 95},
	}
	coveredWithoutResetCounts = map[int][]int{
		71: {0}, 72: {0}, 73: {0}, 81: {0}, 82: {0},
		91: {1}, 92: {0}, 93: {0}, 94: {1},
	}
	// firewallTables are the tables the firewall owns in full; of table 60 only the
	// priority-100 and -90 hooks are its.
	firewallTables = []int{71, 72, 73, 81, 82, 91, 92, 93, 94}
)

// reference is one scenario's dump: flows (cookie removed) and the header's maps.
type reference struct {
	flows      []string
	ofports    map[uint32]string // ofport → port name
	localVLANs map[uint16]string // local VLAN → network id
}

var (
	reOfports   = regexp.MustCompile(`^# ofports: (.*)$`)
	reLocalVLAN = regexp.MustCompile(`^# local_vlan (\d+): network (\S+)`)
	reTable     = regexp.MustCompile(`^(?:table=(\d+), )?(?:reset_counts )?priority=(\d+)`)
)

func readReference(t *testing.T, name string) reference {
	t.Helper()
	f, err := os.Open(refDir + name + ".flows")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ref := reference{ofports: map[uint32]string{}, localVLANs: map[uint16]string{}}
	s := bufio.NewScanner(f)
	for s.Scan() {
		l := s.Text()
		if m := reOfports.FindStringSubmatch(l); m != nil {
			for _, kv := range strings.Fields(m[1]) {
				n, name, _ := strings.Cut(kv, "=")
				p, err := strconv.ParseUint(n, 10, 32)
				if err != nil {
					t.Fatalf("ofports %q: %v", kv, err)
				}
				ref.ofports[uint32(p)] = name
			}
		}
		if m := reLocalVLAN.FindStringSubmatch(l); m != nil {
			v, _ := strconv.ParseUint(m[1], 10, 16)
			ref.localVLANs[uint16(v)] = m[2]
		}
		if strings.HasPrefix(l, "cookie=COOKIE, ") {
			ref.flows = append(ref.flows, strings.TrimPrefix(l, "cookie=COOKIE, "))
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return ref
}

// normalise replaces the run-dependent values of a flow's text by names, as the reference's
// README says: ofports (in_port, output, reg5) by port name, local VLANs (dl_vlan, reg6,
// ct_zone) by network id. Conjunction ids are not mapped yet: no covered flow has one.
func normalise(l string, ofports map[uint32]string, vlans map[uint16]string) string {
	for p, name := range ofports {
		hex := "0x" + strconv.FormatUint(uint64(p), 16)
		dec := strconv.FormatUint(uint64(p), 10)
		l = regexp.MustCompile(`\b(in_port=|output:)`+dec+`\b`).ReplaceAllString(l, "${1}<"+name+">")
		l = regexp.MustCompile(`\breg5=`+hex+`\b`).ReplaceAllString(l, "reg5=<"+name+">")
		l = strings.ReplaceAll(l, "set_field:"+hex+"->reg5", "set_field:<"+name+">->reg5")
	}
	for v, id := range vlans {
		hex := "0x" + strconv.FormatUint(uint64(v), 16)
		dec := strconv.FormatUint(uint64(v), 10)
		l = regexp.MustCompile(`\b(dl_vlan=|ct_zone=)`+dec+`\b`).ReplaceAllString(l, "${1}<"+id+">")
		l = regexp.MustCompile(`\breg6=`+hex+`\b`).ReplaceAllString(l, "reg6=<"+id+">")
		l = strings.ReplaceAll(l, "set_field:"+hex+"->reg6", "set_field:<"+id+">->reg6")
	}
	return l
}

func tablePriority(t *testing.T, l string) (table, prio int) {
	m := reTable.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no table/priority in %q", l)
	}
	if m[1] != "" {
		table, _ = strconv.Atoi(m[1])
	}
	prio, _ = strconv.Atoi(m[2])
	return table, prio
}

func declared(set map[int][]int, table, prio int) bool { return slices.Contains(set[table], prio) }

// scenario is the part of NAME.json the generator needs (ports with port security).
type scenario struct {
	Networks []struct {
		ID   string `json:"id"`
		Type string `json:"network_type"`
	} `json:"networks"`
	Ports []struct {
		ID        string `json:"id"`
		NetworkID string `json:"network_id"`
		MAC       string `json:"mac"`
		FixedIPs  []struct {
			SubnetID string `json:"subnet_id"`
			IP       string `json:"ip_address"`
		} `json:"fixed_ips"`
		PortSecurity bool   `json:"port_security_enabled"`
		OFPort       uint32 `json:"ofport"`
	} `json:"ports"`
}

// node builds the state the controller would for NAME.json, with the local VLANs of the
// reference's header.
func node(t *testing.T, name string, ref reference) *state.Node {
	t.Helper()
	b, err := os.ReadFile(refDir + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var sc scenario
	if err := json.Unmarshal(b, &sc); err != nil {
		t.Fatal(err)
	}
	n := &state.Node{Host: state.Host{IntegrationBridge: "br-int"}}
	for _, nw := range sc.Networks {
		for v, id := range ref.localVLANs {
			if id == nw.ID {
				n.Networks = append(n.Networks, state.Network{ID: nw.ID, Type: northbound.NetworkType(nw.Type), LocalVLAN: v})
			}
		}
	}
	for _, p := range sc.Ports {
		mac, err := net.ParseMAC(p.MAC)
		if err != nil {
			t.Fatal(err)
		}
		sp := state.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: mac, DeviceOwner: "compute:nova",
			PortSecurity: p.PortSecurity, OFPort: p.OFPort}
		for _, f := range p.FixedIPs {
			sp.FixedIPs = append(sp.FixedIPs, state.FixedIP{SubnetID: f.SubnetID, IP: netip.MustParseAddr(f.IP)})
		}
		n.Ports = append(n.Ports, sp)
	}
	return n
}

// generate is what a caller composing the firewall would install on br-int for n.
func generate(n *state.Node) []flows.Flow {
	var out []flows.Flow
	integ := flows.IntTarget(&out)
	integ.Add(Bridge(n.Host.IntegrationBridge)...)
	for i := range n.Ports {
		p := &n.Ports[i]
		if !p.PortSecurity {
			continue
		}
		nw, _ := n.Network(p.NetworkID)
		integ.Add(Port(p, nw)...)
	}
	return out
}

func TestDefaultGroupEqualsNeutron(t *testing.T) {
	const name = "default_group"
	ref := readReference(t, name)
	n := node(t, name, ref)
	if len(n.Ports) != 1 || len(n.Networks) != 1 {
		t.Fatalf("%s: want one port on one network with a local VLAN, got %d ports, %d networks", name, len(n.Ports), len(n.Networks))
	}

	var want, notCovered []string
	nExact, nReset := 0, 0
	for _, l := range ref.flows {
		table, prio := tablePriority(t, l)
		norm := normalise(l, ref.ofports, ref.localVLANs)
		switch {
		case declared(coveredExact, table, prio):
			want = append(want, norm)
			nExact++
		case declared(coveredWithoutResetCounts, table, prio):
			if !strings.Contains(norm, "reset_counts ") {
				t.Errorf("reference flow declared to carry reset_counts does not: %s", l)
			}
			want = append(want, strings.Replace(norm, "reset_counts ", "", 1))
			nReset++
		case slices.Contains(firewallTables, table) || (table == 60 && prio >= 90):
			notCovered = append(notCovered, l)
		}
	}

	got := generate(n)
	flows.Sort(got)
	var gotLines []string
	for _, f := range got {
		if !flows.IsOurs(f.Cookie) {
			t.Errorf("flow without our cookie: %s", f)
		}
		f.Cookie = 0
		gotLines = append(gotLines, normalise(f.String(), ref.ofports, ref.localVLANs))
	}
	for _, g := range gotLines {
		if !slices.Contains(want, g) {
			t.Errorf("we generate a flow the covered reference does not have: %s", g)
		}
	}
	for _, w := range want {
		if !slices.Contains(gotLines, w) {
			t.Errorf("covered reference flow missing: %s", w)
		}
	}
	if len(gotLines) != len(want) {
		t.Errorf("got %d flows, the covered reference has %d", len(gotLines), len(want))
	}
	t.Logf("%s: covered %d reference flows exactly and %d modulo reset_counts; %d firewall flows not yet covered:",
		name, nExact, nReset, len(notCovered))
	for _, l := range notCovered {
		t.Logf("  not covered: %s", l)
	}
}
