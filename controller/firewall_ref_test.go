package controller

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// firewallRefDir holds Neutron's br-int dumps with firewall_driver = openvswitch.
const firewallRefDir = "../testdata/neutron/firewall"

// firewallRef is one scenario of firewallRefDir: br-int's flows (cookie removed) and the
// header's ofports (name → ofport) and local VLANs (network id → VLAN).
type firewallRef struct {
	flows      []string
	ofports    map[string]int
	localVLANs map[string]int
}

func readFirewallRef(t *testing.T, name string) firewallRef {
	t.Helper()
	parsed, err := testbed.ParseReference(filepath.Join(firewallRefDir, name+".flows"))
	if err != nil {
		t.Fatal(err)
	}
	br := parsed.Bridges["br-int"]
	if br == nil {
		t.Fatalf("%s: no br-int in the reference", name)
	}
	ref := firewallRef{ofports: map[string]int{}, localVLANs: map[string]int{}}
	for ofport, port := range br.Ofports {
		ref.ofports[port] = ofport
	}
	for v, id := range parsed.LocalVLANs {
		ref.localVLANs[id] = v
	}
	for _, l := range br.Lines {
		ref.flows = append(ref.flows, strings.TrimPrefix(l, "cookie=COOKIE, "))
	}
	return ref
}

// firewallScenario loads NAME.json as the agent takes it, with firewall_driver = openvswitch
// from the ini, and what OVSDB would show on the captured host: the VIFs with the ofports
// and the tags (local VLANs) of the reference's header, and the patch ports.
func firewallScenario(t *testing.T, name string, ref firewallRef) (*config.Config, *northbound.Model, Observed) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(firewallRefDir, name+".json"))
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultConfig()
	cfg.FirewallDriver = "openvswitch"
	cfg.ApplyHost(topo.Snapshot().Host)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	model, problems := topo.Validate(cfg.Env())
	if len(problems) > 0 {
		t.Fatalf("%s.json: %v", name, problems)
	}
	obs := Observed{PortTags: map[string]int{}, IntPorts: map[string]uint32{}, PhyPorts: map[string]uint32{},
		Ofports: map[string]int{}}
	for _, p := range model.Ports {
		for port, ofport := range ref.ofports {
			if len(p.ID) >= 11 && strings.HasSuffix(port, p.ID[:11]) {
				obs.VIFs = append(obs.VIFs, ovsdb.VIF{Name: port, IfaceID: p.ID, Bridge: cfg.IntegrationBridge, Ofport: ofport})
				obs.PortTags[port] = ref.localVLANs[p.NetworkID]
			}
		}
	}
	if len(obs.VIFs) != len(model.Ports) {
		t.Fatalf("%s: %d of %d ports found in the reference's ofports %v", name, len(obs.VIFs), len(model.Ports), ref.ofports)
	}
	for _, physnet := range cfg.Physnets() {
		br := cfg.BridgeMappings[physnet]
		obs.IntPorts[physnet], obs.PhyPorts[physnet] = uint32(ref.ofports[IntPatchName(br)]), 1
	}
	obs.PatchTun, obs.PatchInt = uint32(ref.ofports[cfg.IntPeerPatchPort]), 1
	return cfg, model, obs
}

// firewallOwned reports whether a reference flow is the firewall's: tables 71–94, and
// table 60's per-port hooks (priorities 90 and up).
var reTablePrio = regexp.MustCompile(`^(?:table=(\d+), )?(?:reset_counts )?priority=(\d+)`)

func firewallOwned(t *testing.T, l string) bool {
	m := reTablePrio.FindStringSubmatch(l)
	if m == nil {
		t.Fatalf("no table and priority in %q", l)
	}
	table, _ := strconv.Atoi(m[1])
	prio, _ := strconv.Atoi(m[2])
	return table >= 71 || (table == 60 && prio >= 90)
}

// TestFirewallOnEqualsNeutronOutsideTheFirewall: with firewall_driver = openvswitch the
// agent's br-int is Neutron's in every flow that is not the firewall's own (tables 0, 23,
// 24, 25, 30, 31, 59, 60's NORMAL, 62 and, with DVR, 1–4): table 24 holds only its default
// drop, table 25 nothing, and table 0 sends no port's traffic to 24 or 25 — the firewall's
// table 71 does that job.
func TestFirewallOnEqualsNeutronOutsideTheFirewall(t *testing.T) {
	for _, name := range []string{"default_group", "rules", "remote_group", "address_pairs", "no_port_security", "stateless", "dvr"} {
		t.Run(name, func(t *testing.T) {
			ref := readFirewallRef(t, name)
			cfg, model, obs := firewallScenario(t, name, ref)
			p, errs := computePlan(cfg, model, nil, obs, NewLocalVLANs())
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			if n := p.binding.Node; !n.Host.Firewall || n.Host.PreventARPSpoofing {
				t.Fatalf("Host.Firewall %v, PreventARPSpoofing %v; want true, false", n.Host.Firewall, n.Host.PreventARPSpoofing)
			}
			got := p.desired[cfg.IntegrationBridge]
			flows.Sort(got)
			var ours, want []string
			for _, f := range got {
				f.Cookie = 0
				if l := f.String(); !firewallOwned(t, l) {
					ours = append(ours, l)
				}
			}
			for _, l := range ref.flows {
				if !firewallOwned(t, l) {
					want = append(want, l)
				}
			}
			for _, l := range want {
				if !slices.Contains(ours, l) {
					t.Errorf("Neutron's flow missing: %s", l)
				}
			}
			for _, l := range ours {
				switch {
				case slices.Contains(want, l):
				default:
					t.Errorf("a flow Neutron does not have: %s", l)
				}
			}
			for _, l := range ours {
				if strings.HasPrefix(l, "table=25,") || (strings.HasPrefix(l, "table=24,") && !strings.HasPrefix(l, "table=24, priority=0 ")) ||
					strings.Contains(l, "goto_table:24") || strings.Contains(l, "goto_table:25") {
					t.Errorf("spoofing protection with the firewall on: %s", l)
				}
			}
		})
	}
}
