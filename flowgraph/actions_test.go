package flowgraph

import (
	"reflect"
	"testing"
)

func TestSteps(t *testing.T) {
	tests := []struct {
		name    string
		actions string
		want    []step
	}{
		{"goto by number", "goto_table:60", []step{{kind: stepTable, via: "goto_table", table: "60"}}},
		{"goto by name", "set_field:fa:16:3e:aa:01:01->eth_src,goto_table:TRANSIENT", []step{{kind: stepTable, via: "goto_table", table: "TRANSIENT"}}},
		{"resubmit to a table", "resubmit(,60)", []step{{kind: stepTable, via: "resubmit", table: "60"}}},
		{"resubmit with port", "resubmit(tapc0000001-00,25)", []step{{kind: stepTable, via: "resubmit", table: "25"}}},
		{"resubmit with ct", "resubmit(,72,ct)", []step{{kind: stepTable, via: "resubmit", table: "72"}}},
		{"resubmit same table", "resubmit:3", []step{{kind: stepTable, via: "resubmit"}}},
		{"ct recirculation", "ct(commit,zone=NXM_NX_REG6[0..15],table=72)", []step{{kind: stepTable, via: "ct", table: "72"}}},
		{"ct without table", "ct(commit,zone=NXM_NX_REG6[0..15])", nil},
		{"output by name", "pop_vlan,output:tapc0000001-00", []step{{kind: stepOutput, via: "output", port: "tapc0000001-00"}}},
		{"output quoted", `output:"int-br-vlan"`, []step{{kind: stepOutput, via: "output", port: "int-br-vlan"}}},
		{"output by number", "output:2", []step{{kind: stepOutput, via: "output", port: "2"}}},
		{"bare port number", "strip_vlan,3", []step{{kind: stepOutput, via: "output", port: "3"}}},
		{"output register", "output:NXM_NX_REG1[]", []step{{kind: stepOutput, via: "output", port: "register"}}},
		{"NORMAL", "NORMAL", []step{{kind: stepReserved, via: "NORMAL"}}},
		{"in_port", "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[],IN_PORT", []step{{kind: stepReserved, via: "IN_PORT"}}},
		{"output:in_port", "output:in_port", []step{{kind: stepReserved, via: "IN_PORT"}}},
		{"controller", "controller(reason=no_match)", []step{{kind: stepReserved, via: "CONTROLLER"}}},
		{"drop", "drop", nil},
		{"learn is not looked into", "learn(table=20,priority=1,hard_timeout=300,NXM_OF_VLAN_TCI[0..11],output:NXM_OF_IN_PORT[]),output:patch-int", []step{{kind: stepOutput, via: "output", port: "patch-int"}}},
		{"flood to several ports", "strip_vlan,load:0x64->NXM_NX_TUN_ID[],output:vxlan-c0a8640c,output:vxlan-c0a8640d", []step{
			{kind: stepOutput, via: "output", port: "vxlan-c0a8640c"},
			{kind: stepOutput, via: "output", port: "vxlan-c0a8640d"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := steps(tt.actions); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("steps(%q) =\n  %+v\nwant\n  %+v", tt.actions, got, tt.want)
			}
		})
	}
}

func TestPortKind(t *testing.T) {
	tests := []struct {
		port          string
		onIntegration bool
		want          string
	}{
		{"tapc0000001-00", true, ExitVMPorts},
		{"qr-d0000001-00", true, ExitRouterPorts},
		{"sg-d0000001-00", true, ExitRouterPorts},
		{"vxlan-c0a8640c", false, ExitTunnels},
		{"gre-c0a8640c", false, ExitTunnels},
		{"eth1", false, ExitUplink},
		{"eth1", true, ExitOtherPorts},
		{"register", false, ExitRegister},
	}
	for _, tt := range tests {
		if got := portKind(tt.port, tt.onIntegration); got != tt.want {
			t.Errorf("portKind(%q, %v) = %q, want %q", tt.port, tt.onIntegration, got, tt.want)
		}
	}
}
