package firewall

import (
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/state"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

const refDir = "../testdata/neutron/firewall/"

// firewallTables are the tables the firewall owns in full; of table 60 only the priority-100
// and -90 hooks are its.
var firewallTables = []int{71, 72, 73, 81, 82, 91, 92, 93, 94}

// reference is one scenario's dump: flows (cookie removed) and the header's maps.
type reference struct {
	flows      []string
	ofports    map[uint32]string // ofport → port name
	localVLANs map[uint16]string // local VLAN → network id
}

var reTable = regexp.MustCompile(`^(?:table=(\d+), )?(?:reset_counts )?priority=(\d+)`)

// readReference reads NAME.flows with the harness's parser (testbed.ParseReference): br-int's
// flows without their blanked cookie, and the header's maps.
func readReference(t *testing.T, name string) reference {
	t.Helper()
	parsed, err := testbed.ParseReference(refDir + name + ".flows")
	if err != nil {
		t.Fatal(err)
	}
	br := parsed.Bridges["br-int"]
	if br == nil {
		t.Fatalf("%s: no br-int in the reference", name)
	}
	ref := reference{ofports: map[uint32]string{}, localVLANs: map[uint16]string{}}
	for p, name := range br.Ofports {
		ref.ofports[uint32(p)] = name
	}
	for v, id := range parsed.LocalVLANs {
		ref.localVLANs[uint16(v)] = id
	}
	for _, l := range br.Lines {
		ref.flows = append(ref.flows, strings.TrimPrefix(l, "cookie=COOKIE, "))
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

// scenarios are the reference captures of testdata/neutron/firewall.
var scenarios = []string{"default_group", "rules", "remote_group", "address_pairs", "no_port_security", "stateless", "dvr"}

// node builds the state the controller would for NAME.json: the topology file loaded and
// validated into a model, then the node's networks with the local VLANs of the reference's
// header, its ports with the json's ofports, the groups and their members' addresses.
func node(t *testing.T, name string, ref reference) *state.Node {
	t.Helper()
	path := refDir + name + ".json"
	topo, err := topology.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.ApplyHost(topo.Snapshot().Host)
	model, problems := topo.Validate(cfg.Env())
	for _, p := range problems {
		t.Fatalf("%s: %v", name, p)
	}
	n := &state.Node{Host: state.Host{IntegrationBridge: "br-int", Firewall: true}}
	for _, nw := range model.Networks {
		for v, id := range ref.localVLANs {
			if id == nw.ID {
				n.Networks = append(n.Networks, state.Network{ID: nw.ID, Type: nw.Type, Physnet: nw.Physnet,
					SegmentationID: nw.SegmentationID, LocalVLAN: v})
			}
		}
	}
	ofports := map[string]uint32{}
	for _, p := range topo.Ports {
		ofports[p.ID] = uint32(p.OFPort)
	}
	remoteGroups := map[string]bool{}
	for _, p := range model.Ports {
		n.Ports = append(n.Ports, state.Port{ID: p.ID, NetworkID: p.NetworkID, MAC: p.MAC, DeviceOwner: p.DeviceOwner,
			FixedIPs: p.FixedIPs, AllowedAddressPairs: p.AllowedAddressPairs, PortSecurity: p.PortSecurity,
			SecurityGroups: p.SecurityGroups, OFPort: ofports[p.ID]})
	}
	n.SecurityGroups = slices.Clone(model.SecurityGroups)
	slices.SortFunc(n.SecurityGroups, func(a, b state.SecurityGroup) int { return strings.Compare(a.ID, b.ID) })
	n.AddressGroups = slices.Clone(model.AddressGroups)
	slices.SortFunc(n.AddressGroups, func(a, b state.AddressGroup) int { return strings.Compare(a.ID, b.ID) })
	for _, g := range model.SecurityGroups {
		for _, r := range g.Rules {
			if r.RemoteGroupID != "" {
				remoteGroups[r.RemoteGroupID] = true
			}
		}
	}
	n.GroupMembers = map[string][]netip.Prefix{}
	for id := range remoteGroups {
		n.GroupMembers[id] = model.SecurityGroupMembers(id)
	}
	return n
}

// generate is what Generate installs on br-int for n.
func generate(n *state.Node) []flows.Flow {
	out := map[string][]flows.Flow{}
	Generate(n, out)
	return out[n.Host.IntegrationBridge]
}

// firewallLines returns the lines of a dump that belong to the firewall: table 60's hooks
// (priority 90 and above) and every flow of its own tables.
func firewallLines(t *testing.T, lines []string) []string {
	var out []string
	for _, l := range lines {
		table, prio := tablePriority(t, l)
		if slices.Contains(firewallTables, table) || (table == 60 && prio >= 90) {
			out = append(out, l)
		}
	}
	return out
}

// TestEqualsNeutron checks, for every reference scenario, that the firewall's flows (table
// 60's hooks and tables 71–94) equal Neutron's own, modulo ofports, local VLANs and
// conjunction ids (mapped), cookies, and the reset_counts flag of Neutron's ovs-ofctl
// writes (a documented difference).
func TestEqualsNeutron(t *testing.T) {
	for _, name := range scenarios {
		t.Run(name, func(t *testing.T) {
			ref := readReference(t, name)
			n := node(t, name, ref)
			var want []string
			for _, l := range firewallLines(t, ref.flows) {
				want = append(want, normalise(strings.Replace(l, "reset_counts ", "", 1), ref.ofports, ref.localVLANs))
			}
			got := generate(n)
			var gotLines []string
			for _, f := range got {
				if !flows.IsOurs(f.Cookie) {
					t.Errorf("flow without our cookie: %s", f)
				}
				f.Cookie = 0
				gotLines = append(gotLines, normalise(f.String(), ref.ofports, ref.localVLANs))
			}
			want, gotLines = testbed.NormaliseConjunctions(want), testbed.NormaliseConjunctions(gotLines)
			slices.Sort(want)
			slices.Sort(gotLines)
			for _, g := range gotLines {
				if _, ok := slices.BinarySearch(want, g); !ok {
					t.Errorf("we generate a flow Neutron does not have: %s", g)
				}
			}
			for _, w := range want {
				if _, ok := slices.BinarySearch(gotLines, w); !ok {
					t.Errorf("Neutron's flow missing: %s", w)
				}
			}
			t.Logf("%s: %d firewall flows equal Neutron's", name, len(want))
			if len(gotLines) != len(want) {
				t.Errorf("got %d flows, Neutron has %d", len(gotLines), len(want))
			}
		})
	}
}
