package main

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/dvrflow/dvrflow/testbed"
)

// securityGroups shows the firewall: every VM is in the group vms (egress anything; ingress
// ICMP from anywhere, SSH only from the group's members), filtered by Neutron's Open vSwitch
// firewall in br-int. b2 listens on TCP 22 and 80: a1 (a member) reaches its SSH port across
// the router and the hosts, not its port 80; the external host reaches neither through b2's
// floating IP.
func (d *demo) securityGroups(ctx context.Context) error {
	section("9. security groups: Neutron's Open vSwitch firewall in br-int")
	fmt.Println(wrap(`Every agent runs with firewall_driver = openvswitch (the topology's host section, as
Neutron's shipped ini sets it). Every VM is in the security group "vms": egress anything,
ingress ICMP from anywhere (the pings above) and TCP 22 only from the group's own members.
b2 now listens on TCP 22 and 80. Connections are stateful: replies pass because their
connection was allowed (conntrack zone = the network's local VLAN).`))
	b2 := d.cloud.vmNamed("b2")
	b2ns := testbed.VMNetns(d.hosts[b2.Host], d.vms["b2"])
	srv, err := testbed.ServeEcho(b2ns, []int{sshPort, httpPort}, nil)
	if err != nil {
		return fmt.Errorf("listen on b2: %w", err)
	}
	defer srv.Close()
	a1 := d.cloud.vmNamed("a1")
	a1ns := testbed.VMNetns(d.hosts[a1.Host], d.vms["a1"])
	type probe struct {
		ns, from, to string
		port         int
		want         testbed.Outcome
		why          string
	}
	probes := []probe{
		{a1ns, "a1 (compute1)", b2.IP, sshPort, testbed.Answered, "a1 is a member of vms: the remote-group rule allows it (routed by compute1's r1)"},
		{a1ns, "a1 (compute1)", b2.IP, httpPort, testbed.Silent, "no rule allows TCP 80: dropped in b2's ingress firewall on compute2"},
		{d.ext.Netns(), "the external host", b2FloatingIP.Address, sshPort, testbed.Silent, "the external host is not a member of vms: dropped (after DNAT to b2)"},
		{d.ext.Netns(), "the external host", b2FloatingIP.Address, httpPort, testbed.Silent, "no rule allows TCP 80"},
	}
	// The probes run at once (a dropped one waits out its timeout), then are reported in order.
	seen := make([]string, len(probes))
	got := make([]testbed.Outcome, len(probes))
	var wg sync.WaitGroup
	for i, c := range probes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			got[i], err = testbed.ProbeTCP(ctx, c.ns, "", net.JoinHostPort(c.to, strconv.Itoa(c.port)), 2*time.Second)
			seen[i] = got[i].String()
			if err != nil {
				seen[i] += " (" + err.Error() + ")"
			}
		}()
	}
	wg.Wait()
	for i, c := range probes {
		d.check(got[i] == c.want, fmt.Sprintf("tcp %s → %s: %s", c.from, net.JoinHostPort(c.to, strconv.Itoa(c.port)), c.why),
			c.want.String(), seen[i])
	}
	fmt.Println(wrap(`
b2's ingress rules as flows on compute2 (table 82, RULES_INGRESS): the SSH rule names a remote
group, so it is an OpenFlow conjunction of "the source is a member's address on this network"
(clause 1/2: a flow per member address, shared by the network's ports and owned by the group,
so not in this port's listing) and "TCP 22 to b2" (clause 2/2); a packet matching both takes
the conj_id flow, which records the conjunction in reg7 and outputs it to b2. A new
connection is committed to conntrack first; its later packets pass at priority 50.`))
	return d.showCLI(ctx, b2.Host, "flows", "br-int", "--table", "82", "--port", "tap"+b2.PortID[:11])
}
