package main

import (
	"cmp"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/sandbox"
)

// dumpedFlow is one flow as `ovs-ofctl -O OpenFlow13 --names dump-flows` prints it.
type dumpedFlow struct {
	cookie   uint64
	table    flows.Table
	packets  uint64
	priority int
	// text is the flow without cookie, table and statistics: "priority=…,match actions=…".
	text string
}

var (
	dumpCookie   = regexp.MustCompile(`cookie=(0x[0-9a-f]+)`)
	dumpTable    = regexp.MustCompile(`table=([^,]+),`)
	dumpPackets  = regexp.MustCompile(`n_packets=(\d+)`)
	dumpRest     = regexp.MustCompile(`n_bytes=\d+, (?:idle_age=\d+, )?(?:hard_age=\d+, )?(.*)$`)
	dumpPriority = regexp.MustCompile(`^priority=(\d+)`)
)

// dumpFlows reads a bridge's flows, with table names (from OVSDB, where the agent put them),
// port names and counters, sorted by table, priority (highest first) and text.
func dumpFlows(ctx context.Context, h *sandbox.Host, bridge string, pipeline flows.Pipeline) ([]dumpedFlow, error) {
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--names", "dump-flows", bridge)
	if err != nil {
		return nil, err
	}
	byName := map[string]flows.Table{}
	for _, t := range pipeline {
		byName[t.Name] = t
	}
	var fs []dumpedFlow
	for _, l := range strings.Split(out, "\n") {
		c, t, p, r := dumpCookie.FindStringSubmatch(l), dumpTable.FindStringSubmatch(l), dumpPackets.FindStringSubmatch(l), dumpRest.FindStringSubmatch(l)
		if c == nil || t == nil || p == nil || r == nil {
			continue
		}
		// ovs-ofctl quotes some names (table="LOCAL_SWITCHING"); the quotes add nothing here.
		f := dumpedFlow{text: strings.ReplaceAll(r[1], `"`, ""), priority: 32768}
		tableName := strings.Trim(t[1], `"`)
		f.cookie, _ = strconv.ParseUint(strings.TrimPrefix(c[1], "0x"), 16, 64)
		f.packets, _ = strconv.ParseUint(p[1], 10, 64)
		if m := dumpPriority.FindStringSubmatch(f.text); m != nil {
			f.priority, _ = strconv.Atoi(m[1])
		}
		var ok bool
		if f.table, ok = byName[tableName]; !ok {
			n, err := strconv.Atoi(tableName)
			if err != nil {
				return nil, fmt.Errorf("dump-flows %s: unknown table %q", bridge, tableName)
			}
			f.table = flows.Table{Number: uint8(n), Name: "(unnamed)"}
		}
		fs = append(fs, f)
	}
	slices.SortFunc(fs, func(a, b dumpedFlow) int {
		return cmp.Or(cmp.Compare(a.table.Number, b.table.Number), cmp.Compare(b.priority, a.priority), cmp.Compare(a.text, b.text))
	})
	return fs, nil
}

// printFlows prints a bridge's flows grouped by table, each with its packet counter and
// owner: the generator and object its cookie names.
func printFlows(title string, fs []dumpedFlow, objects flows.ObjectNames) {
	fmt.Printf("\n   %s: %d flows\n", title, len(fs))
	fmt.Printf("     %8s  %-34s %s\n", "packets", "owner (cookie: category object)", "flow")
	last := -1
	for _, f := range fs {
		if int(f.table.Number) != last {
			last = int(f.table.Number)
			fmt.Printf("     -- table %d %s: %s\n", f.table.Number, f.table.Name, f.table.Purpose)
		}
		fmt.Printf("     %8d  %-34s %s\n", f.packets, flows.DescribeCookie(f.cookie).Text(objects), f.text)
	}
}

// objectLabels maps the cookie object hashes of everything in the cloud to readable names:
// bridges and the physical network, networks, router interfaces, VM ports and DVR MACs.
func objectLabels(c cloud, here string) flows.ObjectNames {
	m := flows.ObjectNames{}
	add := m.Add
	for _, b := range []string{"br-int", "br-vlan", "br-tun"} {
		add(b, b)
	}
	add("physnet1", "physnet1 (br-vlan)")
	for _, s := range []subnet{subnetA, subnetB} {
		add(s.NetworkID, fmt.Sprintf("%s, VLAN %d", s.NetworkName, s.VLAN))
	}
	for id, s := range routerPorts {
		add(id, "r1 "+s.GatewayIP)
	}
	for _, v := range c.VMs {
		add(v.PortID, v.Name+" "+v.IP)
	}
	for _, h := range c.Hosts {
		label := h.Name + "'s DVR MAC"
		if h.Name == here {
			label = "own DVR MAC"
		}
		add(strings.ToLower(h.DVRMAC), label)
	}
	return m
}
