package topology

import (
	"bufio"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
)

// fdbFacts are the l2population facts of one host, as comparable strings: the VTEPs each
// network floods to ("net vtep"), the unicast entries ("net vtep mac") and the ARP
// responder entries ("net ip mac").
type fdbFacts struct {
	flood, unicast, arp []string
}

// factsOf reads the facts off a derived FDB; the ARP responder only answers IPv4.
func factsOf(fdb []northbound.FDB) fdbFacts {
	var f fdbFacts
	for _, e := range fdb {
		if e.Flood {
			f.flood = append(f.flood, e.NetworkID+" "+e.RemoteIP.String())
		}
		for _, u := range e.Entries {
			f.unicast = append(f.unicast, e.NetworkID+" "+e.RemoteIP.String()+" "+u.MAC.String())
			if u.IP.Is4() {
				f.arp = append(f.arp, e.NetworkID+" "+u.IP.String()+" "+u.MAC.String())
			}
		}
	}
	return f.sorted()
}

func (f fdbFacts) sorted() fdbFacts {
	for _, s := range []*[]string{&f.flood, &f.unicast, &f.arp} {
		slices.Sort(*s)
		*s = slices.Compact(*s)
	}
	return f
}

var (
	fdbLocalVLAN = regexp.MustCompile(`^# local_vlan (\d+): network (\S+) `)
	fdbFlood     = regexp.MustCompile(`table=22, priority=1,dl_vlan=(\d+) actions=pop_vlan,set_field:\S+->tun_id,(.*)$`)
	fdbUnicast   = regexp.MustCompile(`table=20, priority=2,dl_vlan=(\d+),dl_dst=(\S+) actions=pop_vlan,set_field:\S+->tun_id,output:(\d+)$`)
	fdbARP       = regexp.MustCompile(`table=21, priority=1,arp,dl_vlan=(\d+),arp_tpa=(\S+) actions=.*set_field:(\S+)->arp_sha,`)
)

// factsOfFlows reads the facts off the br-tun flows of a Neutron reference dump: T13 (the
// flooding VTEPs), T14 (unicast) and T16 (ARP responder), mapping local VLANs to networks
// and tunnel ports (named after their IPv4 peer) to VTEPs.
func factsOfFlows(t *testing.T, path string) fdbFacts {
	t.Helper()
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	networks, vteps := map[string]string{}, map[string]string{}
	vtep := func(ofport string) string {
		if v, ok := vteps[ofport]; ok {
			return v
		}
		t.Fatalf("%s: output to ofport %s, which is not a tunnel port", path, ofport)
		return ""
	}
	network := func(vlan string) string {
		if n, ok := networks[vlan]; ok {
			return n
		}
		t.Fatalf("%s: local VLAN %s has no network", path, vlan)
		return ""
	}
	var f fdbFacts
	inTun := false
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "## bridge ") {
			inTun = strings.HasPrefix(line, "## bridge br-tun:")
		}
		if m := fdbLocalVLAN.FindStringSubmatch(line); m != nil {
			networks[m[1]] = m[2]
		}
		if !inTun {
			continue
		}
		if ports, ok := strings.CutPrefix(line, "# ofports: "); ok {
			for _, p := range strings.Fields(ports) {
				num, name, _ := strings.Cut(p, "=")
				if _, hex, ok := strings.Cut(name, "-"); ok && name != "patch-int" {
					v, err := strconv.ParseUint(hex, 16, 32)
					if err != nil {
						t.Fatalf("%s: tunnel port %q is not named after an IPv4 peer", path, name)
					}
					vteps[num] = netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}).String()
				}
			}
		}
		if m := fdbFlood.FindStringSubmatch(line); m != nil {
			for _, out := range strings.Split(m[2], ",") {
				f.flood = append(f.flood, network(m[1])+" "+vtep(strings.TrimPrefix(out, "output:")))
			}
		}
		if m := fdbUnicast.FindStringSubmatch(line); m != nil {
			f.unicast = append(f.unicast, network(m[1])+" "+vtep(m[3])+" "+m[2])
		}
		if m := fdbARP.FindStringSubmatch(line); m != nil {
			f.arp = append(f.arp, network(m[1])+" "+m[2]+" "+m[3])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return f.sorted()
}

// TestL2popFDBMatchesScenarios: for every l2population scenario, the FDB derived from the
// topology (remote_ports and l2pop_fdb) is exactly what Neutron's br-tun flows show: the same
// flooding VTEPs per network, unicast entries and ARP responder entries.
func TestL2popFDBMatchesScenarios(t *testing.T) {
	paths, err := filepath.Glob(scenarioDir + "/*.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Skipf("no scenarios in %s", scenarioDir)
	}
	compared := 0
	for _, path := range paths {
		topo, err := Load(path)
		if err != nil {
			t.Fatal(err)
		}
		cfg := effectiveConfig(topo, path)
		valid, problems := topo.Validate(cfg.Env())
		if len(problems) > 0 {
			t.Fatalf("%s: %v", path, problems)
		}
		if !cfg.L2Population {
			continue
		}
		compared++
		t.Run(filepath.Base(path), func(t *testing.T) {
			got := factsOf(valid.L2popFDB())
			want := factsOfFlows(t, strings.TrimSuffix(path, ".json")+".flows")
			if len(want.flood) == 0 || len(want.unicast) == 0 || len(want.arp) == 0 {
				t.Fatalf("the reference shows no l2population flows: %+v", want)
			}
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"flooding", got.flood, want.flood}, {"unicast", got.unicast, want.unicast}, {"ARP responder", got.arp, want.arp}} {
				if !slices.Equal(c.got, c.want) {
					t.Errorf("%s entries:\ngot  %q\nwant %q", c.what, c.got, c.want)
				}
			}
		})
	}
	if compared == 0 {
		t.Fatal("no scenario with l2_population to compare with")
	}
}

func TestL2popFDB(t *testing.T) {
	const (
		netA, netB, netGRE, netVLAN = "a0000001-0000-4000-8000-000000000001", "a0000002-0000-4000-8000-000000000002",
			"a0000003-0000-4000-8000-000000000003", "a0000004-0000-4000-8000-000000000004"
		subA, subA6 = "b0000001-0000-4000-8000-000000000001", "b0000006-0000-4000-8000-000000000006"
	)
	remote := func(host, id, network, mac string, owner northbound.DeviceOwner, ips ...string) RemotePort {
		p := RemotePort{Host: host, ID: id, NetworkID: network, MAC: mac, DeviceOwner: owner}
		for _, ip := range ips {
			p.FixedIPs = append(p.FixedIPs, FixedIP{IPAddress: ip})
		}
		return p
	}
	topo := &File{
		OtherHosts: []OtherHost{
			{Name: "compute2", IP: "192.168.100.12"},
			{Name: "compute3", IP: "192.168.100.13", TunnelTypes: []string{"vxlan"}},
			{Name: "vlan-only"},
		},
		Networks: []Network{
			{ID: netA, NetworkType: "vxlan", SegmentationID: 1001},
			{ID: netB, NetworkType: "vxlan", SegmentationID: 1002},
			{ID: netGRE, NetworkType: "gre", SegmentationID: 7},
			{ID: netVLAN, NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 100},
		},
		Subnets: []Subnet{
			{ID: subA, NetworkID: netA, CIDR: "10.0.0.0/24", GatewayIP: "10.0.0.1"},
			{ID: subA6, NetworkID: netA, CIDR: "fd00:a::/64"},
		},
		Ports: []Port{},
		RemotePorts: []RemotePort{
			// compute3's port comes before compute2's: the output is sorted anyway.
			remote("compute3", "c0000031-0000-4000-8000-000000000031", netA, "fa:16:3e:00:03:01", northbound.OwnerCompute, "10.0.0.31"),
			// Two fixed IPs: two entries, IPv4 and IPv6.
			remote("compute2", "c0000021-0000-4000-8000-000000000021", netA, "fa:16:3e:00:02:01", northbound.OwnerCompute, "fd00:a::21", "10.0.0.21"),
			// A DVR router interface adds flooding only.
			remote("compute2", "d0000001-0000-4000-8000-000000000001", netA, "fa:16:3e:bb:00:01", northbound.OwnerRouterInterfaceDistributed, "10.0.0.1"),
			// A port without fixed IPs adds flooding only, as in Neutron.
			remote("compute2", "c0000022-0000-4000-8000-000000000022", netB, "fa:16:3e:00:02:02", northbound.OwnerCompute),
			// compute3 has no GRE: its GRE port adds nothing.
			remote("compute3", "c0000032-0000-4000-8000-000000000032", netGRE, "fa:16:3e:00:03:02", northbound.OwnerCompute),
			remote("compute2", "c0000023-0000-4000-8000-000000000023", netGRE, "fa:16:3e:00:02:03", northbound.OwnerCompute),
			// Not a tunnel network: no FDB.
			remote("vlan-only", "c0000041-0000-4000-8000-000000000041", netVLAN, "fa:16:3e:00:04:01", northbound.OwnerCompute),
		},
		L2popFDB: []FDB{
			// Merged with the derived entry: a duplicate and a new entry; flood false keeps
			// the derived flooding.
			{NetworkID: netA, RemoteIP: "192.168.100.12", Flood: false, Entries: []FDBEntry{
				{MAC: "fa:16:3e:00:02:01", IP: "10.0.0.21"}, {MAC: "fa:16:3e:00:02:99", IP: "10.0.0.99"}}},
			// A VTEP known only from l2pop_fdb, not flooding, with a MAC-only entry.
			{NetworkID: netB, RemoteIP: "192.168.100.14", Flood: false, Entries: []FDBEntry{{MAC: "fa:16:3e:00:04:02"}}},
			// Nothing to program: left out.
			{NetworkID: netB, RemoteIP: "192.168.100.15", Flood: false},
		},
	}
	cfg := config.DefaultConfig()
	cfg.Host, cfg.LocalIP = "compute1", netip.MustParseAddr("192.168.100.11")
	cfg.TunnelTypes = []northbound.NetworkType{"vxlan", "gre"}
	cfg.BridgeMappings = map[string]string{"physnet1": "br-vlan"}
	valid, problems := topo.Validate(cfg.Env())
	if len(problems) > 0 {
		t.Fatalf("test topology is invalid: %v", problems)
	}
	got := describeFDB(valid.L2popFDB())
	want := strings.Join([]string{
		netA + " 192.168.100.12 flood [fa:16:3e:00:02:01 10.0.0.21] [fa:16:3e:00:02:01 fd00:a::21] [fa:16:3e:00:02:99 10.0.0.99]",
		netA + " 192.168.100.13 flood [fa:16:3e:00:03:01 10.0.0.31]",
		netB + " 192.168.100.12 flood",
		netB + " 192.168.100.14 [fa:16:3e:00:04:02]",
		netGRE + " 192.168.100.12 flood",
	}, "\n")
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

// describeFDB renders an FDB one (network, VTEP) per line.
func describeFDB(fdb []northbound.FDB) string {
	var lines []string
	for _, f := range fdb {
		line := f.NetworkID + " " + f.RemoteIP.String()
		if f.Flood {
			line += " flood"
		}
		for _, e := range f.Entries {
			if e.IP.IsValid() {
				line += fmt.Sprintf(" [%s %s]", e.MAC, e.IP)
			} else {
				line += fmt.Sprintf(" [%s]", e.MAC)
			}
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}
