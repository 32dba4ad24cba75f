package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/sandbox"
)

// oneHostTopology has two VLAN networks; ports lists which of the three ports (p1, p2 on
// net1; p3 on net2) the file holds, and net2 is only present when withNet2.
func oneHostTopology(withNet2 bool, ports ...string) string {
	var b strings.Builder
	b.WriteString(`host:
  agent_mode: legacy
  bridge_mappings: {physnet1: br-vlan}
networks:
  - {id: 11111111-0000-4000-8000-000000000001, network_type: vlan, physical_network: physnet1, segmentation_id: 100}
`)
	if withNet2 {
		b.WriteString("  - {id: 11111111-0000-4000-8000-000000000002, network_type: vlan, physical_network: physnet1, segmentation_id: 200}\n")
	}
	b.WriteString("subnets:\n  - {id: 22222222-0000-4000-8000-000000000001, network_id: 11111111-0000-4000-8000-000000000001, cidr: 10.0.0.0/24}\n")
	if withNet2 {
		b.WriteString("  - {id: 22222222-0000-4000-8000-000000000002, network_id: 11111111-0000-4000-8000-000000000002, cidr: 10.0.2.0/24}\n")
	}
	b.WriteString("ports:\n")
	all := map[string]string{
		"p1":  `{id: 33333331-0000-4000-8000-000000000001, network_id: 11111111-0000-4000-8000-000000000001, mac: "fa:16:3e:00:00:01", fixed_ips: [{ip_address: 10.0.0.1}]}`,
		"p2":  `{id: 33333332-0000-4000-8000-000000000002, network_id: 11111111-0000-4000-8000-000000000001, mac: "fa:16:3e:00:00:02", fixed_ips: [{ip_address: 10.0.0.2}]}`,
		"p3":  `{id: 33333333-0000-4000-8000-000000000003, network_id: 11111111-0000-4000-8000-000000000002, mac: "fa:16:3e:00:00:03", fixed_ips: [{ip_address: 10.0.2.3}]}`,
		"bad": `{id: 333333bb-0000-4000-8000-0000000000bb, network_id: 11111111-0000-4000-8000-000000000001, mac: "fa:16:3e:zz:00:01", fixed_ips: [{ip_address: 10.0.0.9}]}`,
	}
	for _, p := range ports {
		b.WriteString("  - " + all[p] + "\n")
	}
	return b.String()
}

var portIDs = map[string]string{
	"p1": "33333331-0000-4000-8000-000000000001", "p2": "33333332-0000-4000-8000-000000000002",
	"p3": "33333333-0000-4000-8000-000000000003", "bad": "333333bb-0000-4000-8000-0000000000bb",
}

// installed is a bridge's flows (cookie included, counters excluded) as a set.
type installed map[string]uint64

var cookieField = regexp.MustCompile(`cookie=(0x[0-9a-f]+), `)

func dumpInstalled(t *testing.T, ctx context.Context, h *sandbox.Host, br string) installed {
	t.Helper()
	set, err := readInstalled(ctx, h, br)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

// readInstalled is dumpInstalled returning the error (a bridge that is not there), with
// port numbers or, with names, port names.
func readInstalled(ctx context.Context, h *sandbox.Host, br string, names ...bool) (installed, error) {
	naming := "--no-names"
	if len(names) > 0 && names[0] {
		naming = "--names"
	}
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", naming, "dump-flows", br)
	if err != nil {
		return nil, err
	}
	set := installed{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		m := cookieField.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		c, _ := strconv.ParseUint(m[1], 0, 64)
		set[l] = c
	}
	return set, nil
}

// changes returns the lines removed from and added to a bridge between two dumps.
func changes(before, after installed) (removed, added []string) {
	for l := range before {
		if _, ok := after[l]; !ok {
			removed = append(removed, l)
		}
	}
	for l := range after {
		if _, ok := before[l]; !ok {
			added = append(added, l)
		}
	}
	sort.Strings(removed)
	sort.Strings(added)
	return removed, added
}

// ownedBy reports whether a flow's cookie names the object.
func ownedBy(cookie uint64, object string) bool {
	return flows.IsOurs(cookie) && flows.CookieObject(cookie) == flows.ObjectHash(object)
}

func portTag(t *testing.T, ctx context.Context, h *sandbox.Host, port string) string {
	t.Helper()
	out, err := h.Vsctl(ctx, "get", "Port", port, "tag")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(out)
}

// TestTopologyChangesAreIncremental: a running agent applies edits of the topology file;
// removing a port or a network removes exactly its flows and its local VLAN.
func TestTopologyChangesAreIncremental(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	writeFileAtomic(t, topo, []byte(oneHostTopology(true, "p1", "p2", "p3")))
	h := sandbox.StartForTest(t, "changes")
	startAgent(t, h, topo)
	waitFor(t, 20*time.Second, "br-vlan created", func() error { return bridgeExists(ctx, h, "br-vlan") })
	var vms = map[string]*sandbox.VM{}
	for i, p := range []string{"p1", "p2", "p3"} {
		vm, err := h.AddVM(ctx, sandbox.VMSpec{Name: p, Bridge: "br-int", PortName: "tap" + portIDs[p][:11], IfaceID: portIDs[p],
			MAC: fmt.Sprintf("fa:16:3e:00:00:0%d", i+1), CIDR: fmt.Sprintf("10.0.9.%d/24", i+1)})
		if err != nil {
			t.Fatal(err)
		}
		vms[p] = vm
	}
	tap := func(p string) string { return "tap" + portIDs[p][:11] }
	waitFor(t, 20*time.Second, "all three ports tagged", func() error {
		for p, want := range map[string]string{"p1": "1", "p2": "1", "p3": "2"} {
			if got := portTag(t, ctx, h, tap(p)); got != want {
				return fmt.Errorf("port %s tag %s, want %s", p, got, want)
			}
		}
		return nil
	})
	// quiet is a negative check's window, not a synchronisation: after a change has been
	// seen whole (the waits above and below are on the change itself), it gives a wrong
	// extra change (a flow added or removed that should not be) time to show, so that
	// the dump compared afterwards would contain it.
	quiet := func() { time.Sleep(500 * time.Millisecond) }
	quiet()

	t.Run("removing a port removes exactly its flows", func(t *testing.T) {
		before := dumpInstalled(t, ctx, h, "br-int")
		owned := 0
		for _, c := range before {
			if ownedBy(c, portIDs["p2"]) {
				owned++
			}
		}
		if owned == 0 {
			t.Fatal("p2 owns no flow before its removal")
		}
		writeFileAtomic(t, topo, []byte(oneHostTopology(true, "p1", "p3")))
		if err := h.RemoveVM(ctx, "p2"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "p2's flows removed", func() error {
			for _, c := range dumpInstalled(t, ctx, h, "br-int") {
				if ownedBy(c, portIDs["p2"]) {
					return fmt.Errorf("a flow of p2 is still installed")
				}
			}
			return nil
		})
		quiet()
		removed, added := changes(before, dumpInstalled(t, ctx, h, "br-int"))
		if len(added) > 0 {
			t.Errorf("removing p2 added flows:\n%s", lines(added))
		}
		if len(removed) != owned {
			t.Errorf("removing p2 removed %d flows, p2 owned %d:\n%s", len(removed), owned, lines(removed))
		}
		for _, l := range removed {
			if !ownedBy(before[l], portIDs["p2"]) {
				t.Errorf("removing p2 removed a flow it does not own: %s", l)
			}
		}
	})

	t.Run("removing a network removes exactly its flows and frees its local VLAN", func(t *testing.T) {
		beforeInt, beforeVLAN := dumpInstalled(t, ctx, h, "br-int"), dumpInstalled(t, ctx, h, "br-vlan")
		writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1")))
		if err := h.RemoveVM(ctx, "p3"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "net2's translation flows removed", func() error {
			if hits, _ := flowsWith(ctx, h, "br-int", "dl_vlan=200"); len(hits) > 0 {
				return fmt.Errorf("still installed: %s", hits[0])
			}
			return nil
		})
		quiet()
		net2, p3 := "11111111-0000-4000-8000-000000000002", portIDs["p3"]
		for br, before := range map[string]installed{"br-int": beforeInt, "br-vlan": beforeVLAN} {
			removed, added := changes(before, dumpInstalled(t, ctx, h, br))
			if len(added) > 0 {
				t.Errorf("%s: removing net2 added flows:\n%s", br, lines(added))
			}
			if len(removed) == 0 {
				t.Errorf("%s: removing net2 removed nothing", br)
			}
			for _, l := range removed {
				if !ownedBy(before[l], net2) && !ownedBy(before[l], p3) {
					t.Errorf("%s: removing net2 removed a flow owned by neither net2 nor its port: %s", br, l)
				}
			}
		}
		// Local VLAN 2 is free again: a new network takes it.
		writeFileAtomic(t, topo, []byte(oneHostTopology(true, "p1", "p3")))
		if _, err := h.AddVM(ctx, sandbox.VMSpec{Name: "p3b", Bridge: "br-int", PortName: tap("p3"), IfaceID: p3, MAC: "fa:16:3e:00:00:03", CIDR: "10.0.9.3/24"}); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "p3 back on local VLAN 2", func() error {
			if got := portTag(t, ctx, h, tap("p3")); got != "2" {
				return fmt.Errorf("tag %s", got)
			}
			return nil
		})
	})

	t.Run("a VIF whose port leaves the topology is marked dead", func(t *testing.T) {
		writeFileAtomic(t, topo, []byte(oneHostTopology(true, "p3")))
		waitFor(t, 10*time.Second, "p1 on the dead VLAN with a drop flow", func() error {
			if got := portTag(t, ctx, h, tap("p1")); got != "4095" {
				return fmt.Errorf("tag %s", got)
			}
			var owned []string
			for l, c := range dumpInstalled(t, ctx, h, "br-int") {
				if ownedBy(c, portIDs["p1"]) {
					owned = append(owned, l)
				}
			}
			// Exactly one flow is left: the dead port's drop (Neutron's I16 shape).
			if len(owned) != 1 || !strings.Contains(owned[0], "priority=2,in_port=") || !strings.HasSuffix(owned[0], "actions=drop") {
				return fmt.Errorf("p1's flows: %q, want only its drop", owned)
			}
			return nil
		})
	})
}

// TestBadPortIsReportedOthersProgrammed: one invalid port is skipped with an error naming it
// and its field; every valid object is still programmed, and its VIF is fenced off.
func TestBadPortIsReportedOthersProgrammed(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1", "bad")))
	h := sandbox.StartForTest(t, "badport")
	agentOnce(t, h, topo)
	for _, p := range []string{"p1", "bad"} {
		if _, err := h.AddVM(ctx, sandbox.VMSpec{Name: p, Bridge: "br-int", PortName: "tap" + portIDs[p][:11], IfaceID: portIDs[p]}); err != nil {
			t.Fatal(err)
		}
	}
	out := agentOnce(t, h, topo)
	if !regexp.MustCompile(`topology object skipped.*"kind": "port".*"id": "` + portIDs["bad"] + `".*"field": "mac"`).MatchString(out) {
		t.Errorf("the bad port is not reported with its id and field:\n%s", out)
	}
	if got := portTag(t, ctx, h, "tap"+portIDs["p1"][:11]); got != "1" {
		t.Errorf("valid port p1: tag %s, want 1", got)
	}
	if hits, _ := flowsWith(ctx, h, "br-int", "table=25", "dl_src=fa:16:3e:00:00:01"); len(hits) != 1 {
		t.Errorf("valid port p1 lacks its MAC protection flow: %v", hits)
	}
	if got := portTag(t, ctx, h, "tap"+portIDs["bad"][:11]); got != "4095" {
		t.Errorf("the bad port's VIF: tag %s, want the dead VLAN 4095", got)
	}
}

// TestExistingBridgesAreAdopted: bridges an operator created, with ports on them, are
// adopted (same bridge row, ports and ofports kept), not recreated.
func TestExistingBridgesAreAdopted(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := sandbox.StartForTest(t, "adopt")
	for _, args := range [][]string{
		{"add-br", "br-int", "--", "set", "Bridge", "br-int", "datapath_type=netdev"},
		{"add-port", "br-int", "operator0", "--", "set", "Interface", "operator0", "type=internal", "ofport_request=7"},
		{"add-br", "br-vlan", "--", "set", "Bridge", "br-vlan", "datapath_type=netdev"},
		{"add-port", "br-vlan", "uplink0", "--", "set", "Interface", "uplink0", "type=internal"},
	} {
		if _, err := h.Vsctl(ctx, args...); err != nil {
			t.Fatal(err)
		}
	}
	uuidBefore, err := h.Vsctl(ctx, "get", "Bridge", "br-int", "_uuid")
	if err != nil {
		t.Fatal(err)
	}
	topo := filepath.Join(t.TempDir(), "topology.yaml")
	writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1")))
	agentOnce(t, h, topo)
	uuidAfter, err := h.Vsctl(ctx, "get", "Bridge", "br-int", "_uuid")
	if err != nil {
		t.Fatal(err)
	}
	if uuidBefore != uuidAfter {
		t.Errorf("br-int was recreated: uuid %s → %s", strings.TrimSpace(uuidBefore), strings.TrimSpace(uuidAfter))
	}
	if of, err := h.Vsctl(ctx, "get", "Interface", "operator0", "ofport"); err != nil || strings.TrimSpace(of) != "7" {
		t.Errorf("operator's port on br-int: ofport %q, %v; want 7, kept", of, err)
	}
	if _, err := h.Vsctl(ctx, "port-to-br", "uplink0"); err != nil {
		t.Errorf("operator's uplink on br-vlan is gone: %v", err)
	}
	if fail, _ := h.Vsctl(ctx, "get", "Bridge", "br-int", "fail_mode"); strings.TrimSpace(fail) != "secure" {
		t.Errorf("adopted br-int: fail_mode %q, want secure", fail)
	}
}
