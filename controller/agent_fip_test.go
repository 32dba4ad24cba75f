package controller_test

import (
	"context"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/state"
)

// announceProbe is a router-namespace manager that applies nothing and, each time the
// agent lets it announce, asks whether fg- is wired and reads fg-'s tag from OVSDB right
// then: what a gratuitous ARP sent at that moment would leave on.
type announceProbe struct {
	ctx    context.Context
	h      *sandbox.Host
	device string

	mu    sync.Mutex
	calls []announceCall
}

type announceCall struct {
	wired bool
	tag   string // the port's tag in OVSDB when wired said so ("" before it is plugged)
}

func (p *announceProbe) Apply(context.Context, []namespace.Router, namespace.FIPState) error {
	return nil
}

func (p *announceProbe) HeldFloatingIPs() ([]netip.Addr, error) { return nil, nil }

func (p *announceProbe) Announce(wired func(string) bool) error {
	c := announceCall{wired: wired(p.device)}
	if out, err := p.h.Vsctl(p.ctx, "--if-exists", "get", "Port", p.device, "tag"); err == nil {
		c.tag = strings.TrimSpace(out)
	}
	p.mu.Lock()
	p.calls = append(p.calls, c)
	p.mu.Unlock()
	return nil
}

func (p *announceProbe) all() []announceCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]announceCall(nil), p.calls...)
}

// A floating IP's gratuitous ARPs leave fg- only once its port carries the external
// network's VLAN: the router-namespace manager plugs fg- on the dead VLAN 4095, and a
// gratuitous ARP sent then is dropped by br-int (the external network keeps sending to
// the floating IP's old host until the next round, 2 s later). The agent therefore lets
// the manager announce after the reconcile's flows and tags, and reports fg- as wired only
// when it is bound and tagged: never while it is unplugged or on 4095.
func TestFloatingIPAnnouncedOnceFGPortCarriesItsVLAN(t *testing.T) {
	const fgID = "f9000000-0000-4000-8000-000000000001"
	doc := `
host: {name: h1, agent_mode: dvr, bridge_mappings: {extnet: br-ex}, tunnel_types: []}
networks: [{id: ext, network_type: flat, physical_network: extnet, "router:external": true}]
subnets: [{id: sext, network_id: ext, cidr: 203.0.113.0/24, gateway_ip: 203.0.113.1, ip_version: 4}]
ports:
  - {id: ` + fgID + `, network_id: ext, mac: "fa:16:3e:00:00:21", device_owner: "network:floatingip_agent_gateway",
     device_id: h1, fixed_ips: [{subnet_id: sext, ip_address: 203.0.113.21}]}
`
	ctx, a, h, _, _ := eventsAgent(t, "fipannounce", doc)
	fg := "fg-" + fgID[:11]
	probe := &announceProbe{ctx: ctx, h: h, device: fg}
	a.EnableRouterNamespaces(probe, nil)
	r, stop := runAgent(t, ctx, a)
	first := r.await(t, ctx, 0, "at start", func(controller.Report) bool { return true })
	before := len(probe.all())
	if before == 0 {
		t.Fatal("the agent did not let the manager announce after its first reconcile")
	}

	// The manager plugs fg- as it plugs every router port: on the dead VLAN.
	if _, err := h.Vsctl(ctx, "add-port", "br-int", fg, "tag=4095", "--", "set", "Interface", fg, "type=internal",
		"external_ids:iface-id="+fgID, `external_ids:attached-mac="fa:16:3e:00:00:21"`); err != nil {
		t.Fatal(err)
	}
	got := r.await(t, ctx, first+1, "binding fg-", func(rep controller.Report) bool { return bound(rep, fgID) })
	stop()
	rep := r.all[got]
	vlan := rep.Binding.Tags[fg]
	if vlan == 0 || vlan == state.DeadVLAN {
		t.Fatalf("tag of %s in the reconcile that bound it = %d, want the external network's local VLAN", fg, vlan)
	}
	calls := probe.all()
	for i, c := range calls {
		if c.wired && c.tag != strconv.Itoa(vlan) {
			t.Errorf("announce call %d: %s reported wired while its tag in OVSDB was %q, want %d", i, fg, c.tag, vlan)
		}
	}
	if last := calls[len(calls)-1]; !last.wired {
		t.Errorf("after the reconcile that bound and tagged %s (VLAN %d), the agent reported it not wired: %+v", fg, vlan, calls)
	}
	for _, c := range calls[:before] {
		if c.wired {
			t.Errorf("before %s was plugged the agent reported it wired: %+v", fg, calls)
		}
	}
}
