package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/agentapi"
)

func TestAgentSocketPath(t *testing.T) {
	dir := t.TempDir()
	ini := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	withSocket := ini("socket.ini", "[dvrflow]\napi_socket = /run/dvrflow/api.sock\n")
	withRundir := ini("rundir.ini", "[dvrflow]\novs_rundir = /run/ovs7\n")
	disabled := ini("off.ini", "[dvrflow]\napi_socket = none\n")
	tests := []struct {
		name    string
		g       globalOptions
		want    string
		wantErr string
	}{
		{"default", globalOptions{}, "/var/run/openvswitch/dvrflow-agent.sock", ""},
		{"--agent-socket wins", globalOptions{agentSocket: "/tmp/a.sock", ovsRundir: "/run/x", configFiles: []string{disabled}}, "/tmp/a.sock", ""},
		{"--ovs-rundir", globalOptions{ovsRundir: "/run/ovs1"}, "/run/ovs1/dvrflow-agent.sock", ""},
		{"the config's api_socket", globalOptions{configFiles: []string{withSocket}, ovsRundir: "/run/ovs1"}, "/run/dvrflow/api.sock", ""},
		{"the config's ovs_rundir", globalOptions{configFiles: []string{withRundir}}, "/run/ovs7/dvrflow-agent.sock", ""},
		{"--ovs-rundir over the config's", globalOptions{configFiles: []string{withRundir}, ovsRundir: "/run/ovs1"}, "/run/ovs1/dvrflow-agent.sock", ""},
		{"the API is off", globalOptions{configFiles: []string{disabled}}, "", "the agent's API is off (api_socket = none in " + disabled + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.g.agentSocketPath()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("agentSocketPath() = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestStatusText(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 5, 0, 0, time.UTC)
	s := &agentapi.Status{
		Host: "compute1", AgentMode: "dvr", Northbound: "topology", StartedAt: now.Add(-5 * time.Minute), Synced: true,
		OVSDBConnected: true,
		Bridges: []agentapi.Bridge{{Name: "br-int", Role: "integration", DesiredFlows: 19, OpenFlowConnected: true},
			{Name: "br-vlan", Role: "physical", PhysicalNetwork: "physnet1", DesiredFlows: 3}},
		Ports: []agentapi.Port{
			{ID: "p1", Device: "tap1", NetworkID: "n1", MAC: "fa:16:3e:00:00:01", LocalVLAN: 1, OFPort: 5, Status: agentapi.PortBound},
			{ID: "p2", NetworkID: "n1", MAC: "fa:16:3e:00:00:02", Status: agentapi.PortWaiting, Reason: "no VIF yet"},
		},
		LocalVLANs:    []agentapi.LocalVLAN{{NetworkID: "n1", NetworkType: "vlan", PhysicalNetwork: "physnet1", SegmentationID: 100, LocalVLAN: 1, Ports: 1}},
		LastReconcile: &agentapi.Reconcile{FinishedAt: now.Add(-2 * time.Second), DurationSeconds: 0.0012, Bridges: []agentapi.BridgeSync{{Bridge: "br-int"}}},
		LastChange: &agentapi.Reconcile{FinishedAt: now.Add(-time.Minute), DurationSeconds: 0.012, PhasesSeconds: agentapi.Phases{Sync: 0.008},
			FlowMods: 22, Bridges: []agentapi.BridgeSync{{Bridge: "br-int", Added: 19}, {Bridge: "br-vlan", Added: 3}}, PortsTagged: []string{"tap1"}},
		Reconciles: 4, WaitingForOfport: []string{"phy-br-vlan"},
		Problems: []agentapi.Problem{{Kind: "port", Object: "bad", Field: "mac", Message: `"zz" is not a MAC address`}},
		Config:   agentapi.ConfigSummary{TopologyFile: "/etc/t.yaml", OVSDBConnection: "unix:/run/ovs/db.sock", OVSRundir: "/run/ovs"},
	}
	var b strings.Builder
	if err := writeStatusText(&b, s, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"compute1: dvrflow-agent, agent_mode dvr, northbound topology /etc/t.yaml; up 5m0s, synced",
		"OVSDB connected (unix:/run/ovs/db.sock)",
		"br-vlan  physical (physnet1)  3 flows   OpenFlow NOT connected",
		"Last reconcile: 2s ago, took 1.2ms (observe 0s, build 0s, layout 0s, sync 0s, tags 0s); 0 flow-mods, 0 ports tagged",
		"Last change:    1m0s ago, took 12ms (observe 0s, build 0s, layout 0s, sync 8ms, tags 0s); 22 flow-mods (br-int +19 ~0 -0, br-vlan +3 ~0 -0), 1 ports tagged",
		"Ports (1 bound, 1 waiting):",
		"  p1    tap1    n1       1     5       fa:16:3e:00:00:01  bound",
		"  p2    -       n1       -     -       fa:16:3e:00:00:02  waiting (no VIF yet)",
		"  n1       vlan  physnet1  100              1           1",
		"Agent ports waiting for an ofport (no flow points at them yet): phy-br-vlan",
		`  port bad: field mac: "zz" is not a MAC address`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("text:\n%s", out)
	}
}
