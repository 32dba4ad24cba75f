package inspect

import (
	"testing"

	"github.com/dvrflow/dvrflow/flows/dumptext"
)

func TestQuoteName(t *testing.T) {
	// What ovs-ofctl --names prints, as read off Open vSwitch 3.1.
	for name, want := range map[string]string{
		"tap1": "tap1", "Xy": "Xy", "TRANSIENT": "TRANSIENT", "abc1": "abc1",
		"int-br-vlan": `"int-br-vlan"`, "LOCAL_SWITCHING": `"LOCAL_SWITCHING"`, "9ab": `"9ab"`, "t.x": `"t.x"`, "": `""`,
	} {
		if got := quoteName(name); got != want {
			t.Errorf("quoteName(%q) = %s, want %s", name, got, want)
		}
	}
}

func TestRewriteBothWays(t *testing.T) {
	refs := &refNames{
		portName: map[int]string{1: "int-br-vlan", 4: "tap1"}, portNum: map[string]int{"int-br-vlan": 1, "tap1": 4},
		tableName: map[uint8]string{60: "TRANSIENT", 20: "UCAST_TO_TUN"}, tableNum: map[string]uint8{"TRANSIENT": 60, "UCAST_TO_TUN": 20},
	}
	canonical := "in_port=1,dl_vlan=5 actions=output:4,output:9,resubmit(,60),resubmit(1,60),goto_table:60,learn(table=20,priority=1,output:OXM_OF_IN_PORT[]),NORMAL"
	named := `in_port="int-br-vlan",dl_vlan=5 actions=output:tap1,output:9,resubmit(,TRANSIENT),resubmit("int-br-vlan",TRANSIENT),goto_table:TRANSIENT,learn(table="UCAST_TO_TUN",priority=1,output:OXM_OF_IN_PORT[]),NORMAL`
	f, err := dumptext.ParseLine(canonical, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs.named(&f)
	if got := f.Text(); got != "priority=32768,"+named && got != named {
		t.Errorf("named:\n got %s\nwant %s", got, named)
	}
	g, err := dumptext.ParseLine(named, nil)
	if err != nil {
		t.Fatal(err)
	}
	refs.canonical(&g)
	if got := g.Text(); got != canonical {
		t.Errorf("canonical:\n got %s\nwant %s", got, canonical)
	}
}
