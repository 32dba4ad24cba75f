package topogen

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/testbed"
	"github.com/dvrflow/dvrflow/topology"
)

// agentConfig is the agent config the benchmark runs with: defaults, the topology's host section,
// the netdev datapath.
func agentConfig(t *testing.T, topo *topology.File) *config.Config {
	t.Helper()
	cfg := config.DefaultConfig()
	cfg.ApplyHost(topo.Snapshot().Host)
	cfg.DatapathType = config.DatapathNetdev
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg
}

func TestGenerateIsValidAndSized(t *testing.T) {
	for _, p := range []Params{{Ports: 100, Networks: 5, OtherHosts: 50}, {Ports: 10000, Networks: 500, OtherHosts: 50}, {Ports: 0, Networks: 1}} {
		t.Run(fmt.Sprintf("N=%d,M=%d,K=%d", p.Ports, p.Networks, p.OtherHosts), func(t *testing.T) {
			topo, err := Generate(p)
			if err != nil {
				t.Fatal(err)
			}
			valid, problems := topo.Validate(agentConfig(t, topo).Env())
			if len(problems) > 0 {
				t.Fatalf("%d problems, first: %v", len(problems), problems[0])
			}
			if len(valid.Ports) != p.Ports+p.Networks || len(valid.Networks) != p.Networks ||
				len(valid.Subnets) != p.Networks || len(valid.OtherHosts) != p.OtherHosts {
				t.Fatalf("valid: %d ports, %d networks, %d subnets, %d other hosts; want %d, %d, %d, %d",
					len(valid.Ports), len(valid.Networks), len(valid.Subnets), len(valid.OtherHosts),
					p.Ports+p.Networks, p.Networks, p.Networks, p.OtherHosts)
			}
			names, macs := map[string]bool{}, map[string]bool{}
			routers := 0
			for _, port := range topo.Ports {
				n := testbed.PortName(port)
				if len(n) > 15 || names[n] {
					t.Fatalf("port name %q too long or duplicate", n)
				}
				names[n] = true
				if port.DeviceOwner == northbound.OwnerRouterInterfaceDistributed {
					routers++
				} else if macs[port.MAC] {
					t.Fatalf("duplicate VM MAC %s", port.MAC)
				}
				macs[port.MAC] = true
			}
			if routers != p.Networks {
				t.Fatalf("%d router interfaces, want one per subnet (%d)", routers, p.Networks)
			}
		})
	}
}

// TestFileRoundTrip: what dvrflow-topogen writes is what the agent loads.
func TestFileRoundTrip(t *testing.T) {
	topo, err := Generate(Params{Ports: 40, Networks: 2, OtherHosts: 3})
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(topo)
	if err != nil {
		t.Fatal(err)
	}
	back, err := topology.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	again, err := json.Marshal(back)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != string(data) {
		t.Fatalf("topology changed through its file:\n got %s\nwant %s", again, data)
	}
	if len(back.Ports) != 42 || len(back.OtherHosts) != 3 {
		t.Fatalf("loaded %d ports, %d other hosts; want 42, 3", len(back.Ports), len(back.OtherHosts))
	}
}

// TestLaterPortsExtendTheNetworks: the ports a benchmark plugs later are valid members of the
// same networks, distinct from the initial ones.
func TestLaterPortsExtendTheNetworks(t *testing.T) {
	p := Params{Ports: 1000, Networks: 50, OtherHosts: 50}
	topo, err := Generate(Params{Ports: 1100, Networks: 50, OtherHosts: 50})
	if err != nil {
		t.Fatal(err)
	}
	for j := 1000; j < 1100; j++ {
		if got, want := VMPort(p, j), topo.Ports[p.Networks+j]; !reflect.DeepEqual(got, want) {
			t.Fatalf("later port %d: %+v, want %+v", j, got, want)
		}
	}
}

func TestValidateRefuses(t *testing.T) {
	for _, p := range []Params{{Ports: 10, Networks: 0}, {Ports: 1000, Networks: 2}, {Ports: 1, Networks: MaxNetworks + 1}, {Ports: -1, Networks: 1}} {
		if _, err := Generate(p); err == nil {
			t.Errorf("Generate(%+v) accepted", p)
		}
	}
}
