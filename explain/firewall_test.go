package explain_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/topology"
)

// TestFirewallCookies: dvrflow's firewall flows are owned by what their cookie names: a
// port's own flows by the port, a remote group's flows on a network by the security group
// or address group, named with the network.
func TestFirewallCookies(t *testing.T) {
	topo, err := topology.Load(filepath.Join("..", "testdata", "neutron", "firewall", "remote_group.json"))
	if err != nil {
		t.Fatal(err)
	}
	snap := topo.Snapshot()
	e := explain.New(explain.Node{Model: &snap.Model})
	const (
		network = "bc4400e1-38b6-4eaf-990a-ad7b3142369e" // vxlan 1003
		port    = "8e9bace4-f976-4df4-a5c7-76fbef88977b"
		members = "fea9159c-ccfb-4f70-a7d5-7e78b9588e08" // security group fw-members
		admins  = "ddeef6d2-ae59-47af-af38-f0d5f23274c1" // address group fw-admins
	)
	for _, tc := range []struct {
		cookie uint64
		line   string
		want   explain.Owner
	}{
		{flows.Cookie(flows.CategoryFirewall, port), "table=72, priority=40,ct_state=-est,reg5=0x3 actions=resubmit(,93)",
			explain.Owner{Kind: explain.KindPort, ID: port, Name: "tap8e9bace4-f9"}},
		{flows.Cookie(flows.CategoryFirewallRemote, network+"/"+members), "table=82, priority=71,ct_state=+est-rel-rpl,ip,reg6=0x1,nw_src=10.103.0.101 actions=conjunction(22,1/2)",
			explain.Owner{Kind: explain.KindSecurityGroup, ID: members, Name: "fw-members on vxlan 1003"}},
		{flows.Cookie(flows.CategoryFirewallRemote, network+"/"+admins), "table=82, priority=71,ct_state=+est-rel-rpl,ip,reg6=0x1,nw_src=192.0.2.0/28 actions=conjunction(30,1/2)",
			explain.Owner{Kind: explain.KindAddressGroup, ID: admins, Name: "fw-admins on vxlan 1003"}},
	} {
		fl, err := dumptext.ParseLine(fmt.Sprintf("cookie=%#x, %s", tc.cookie, tc.line), nil)
		if err != nil {
			t.Fatal(err)
		}
		got := e.Explain("br-int", &fl)
		if got.Owner == nil || *got.Owner != tc.want {
			t.Errorf("%s: owner %+v, want %+v", tc.line, got.Owner, tc.want)
		}
	}
	// Another network's remote group flows name nothing known here.
	fl, _ := dumptext.ParseLine(fmt.Sprintf("cookie=%#x, table=82, priority=71,ip,reg6=0x9,nw_src=10.0.0.1 actions=conjunction(1,1/2)",
		flows.Cookie(flows.CategoryFirewallRemote, "other-network/"+members)), nil)
	if got := e.Explain("br-int", &fl); got.Owner != nil && got.Owner.ID == members {
		t.Errorf("a group on another network: owner %+v", got.Owner)
	}
}
