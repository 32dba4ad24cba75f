package controller_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
)

// With firewall_driver = openvswitch, a VIF plugged on the real switch is bound through the
// event path with its firewall: the switch takes the firewall's flows as we write them (the
// read-back finds no difference), table 60 holds the port's hooks, tables 24/25 no spoofing
// protection, and the tag is the port's local VLAN.
func TestFirewallPortOnTheSwitch(t *testing.T) {
	const id = "p1000000-0000-4000-8000-000000000001"
	doc := `
host: {name: h1, bridge_mappings: {physnet1: br-vlan}, tunnel_types: []}
networks: [{id: net-vlan, network_type: vlan, physical_network: physnet1, segmentation_id: 100}]
subnets: [{id: sub, network_id: net-vlan, cidr: 10.0.0.0/24, ip_version: 4}]
ports:
  - {id: ` + id + `, network_id: net-vlan, mac: "fa:16:3e:00:00:01", fixed_ips: [{ip_address: 10.0.0.11}], security_groups: [sg]}
security_groups:
  - {id: sg, security_group_rules: [{direction: egress}, {direction: ingress, protocol: tcp, port_range_min: 22, port_range_max: 22}]}
`
	ctx, a, h, _, _ := eventsAgent(t, "fwport", doc, func(c *config.Config) { c.FirewallDriver = "openvswitch" })
	r, stop := runAgent(t, ctx, a)
	first := r.await(t, ctx, 0, "at start", func(controller.Report) bool { return true })

	tap := "tap" + id[:11]
	if _, err := h.Run(ctx, "ip", "link", "add", tap, "type", "veth", "peer", "name", tap+"p"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Run(ctx, "ip", "link", "set", tap, "up"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.Vsctl(ctx, "add-port", "br-int", tap, "--", "set", "Interface", tap,
		"external_ids:iface-id="+id, "external_ids:attached-mac=fa:16:3e:00:00:01"); err != nil {
		t.Fatal(err)
	}
	got := r.await(t, ctx, first+1, "binding the port", func(rep controller.Report) bool { return bound(rep, id) })
	stop()
	rep := r.all[got]
	if rep.Binding.Tags[tap] != 1 || !rep.Binding.Node.Host.Firewall {
		t.Errorf("tag of %s = %d (want 1), firewall %v", tap, rep.Binding.Tags[tap], rep.Binding.Node.Host.Firewall)
	}
	if err := a.WaitTagsApplied(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if err := a.Verify(ctx); err != nil {
		t.Fatalf("switch after the plug: %v", err)
	}
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-names", "--no-stats", "dump-flows", "br-int")
	if err != nil {
		t.Fatal(err)
	}
	ofport := 0
	for _, p := range rep.Binding.Node.Ports {
		if p.ID == id {
			ofport = int(p.OFPort)
		}
	}
	for _, want := range []string{
		"table=60, priority=100,in_port=" + strconv.Itoa(ofport) + " actions=",
		"table=60, priority=90,dl_vlan=1,dl_dst=fa:16:3e:00:00:01 actions=",
		"table=71,",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("br-int lacks %q:\n%s", want, out)
		}
	}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "table=25,") || (strings.Contains(l, "table=24,") && !strings.Contains(l, "priority=0 ")) {
			t.Errorf("spoofing protection with the firewall on: %s", l)
		}
	}
}
