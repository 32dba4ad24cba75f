package main

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// ovsdbState is the OVSDB part of a cold sync's result, the part ovs-vsctl can do as well:
// the settings of the bridges the agent adopted, the patch pair between br-int and the
// physical bridge, and the VLAN tag of every VIF.
type ovsdbState struct {
	Bridges []bridgeSettings // in the order asked for
	Patches []patchPort      // in the order asked for; an absent port has Bridge ""
	Tags    map[string]int   // VIF port name → tag, for the tagged VIFs
}

// bridgeSettings are the columns of a bridge the agent sets when it adopts it.
type bridgeSettings struct {
	Name, FailMode string
	Protocols      []string // sorted
	OtherConfig    map[string]string
	TableNames     map[int]string // Flow_Table names by table number
}

// patchPort is one end of a patch pair as OVSDB holds it.
type patchPort struct {
	Bridge, Name, Type string
	Options            map[string]string // Interface.options (peer)
}

// agentPatchNames are the names of the patch pair the agent adds between br-int and the
// physical bridge (the ports resetCold deletes).
func agentPatchNames() []string {
	return []string{controller.IntPatchName(topogen.PhysBridge), controller.PhyPatchName(topogen.PhysBridge)}
}

// vsctlBaseline is the second cold sync baseline: the switch's own CLI doing the OVSDB part
// of the agent's work. It resets the node to cold as between repetitions, times one
// `ovs-vsctl` invocation that adds the patch pair and sets every tag of want (the agent's
// converged state, read back from OVSDB), which as by default waits until ovs-vswitchd has
// applied it, checks that the result equals want, and resets the node to cold again. The
// agent must be stopped before.
func (b *bench) vsctlBaseline(ctx context.Context, n *node, want ovsdbState) (time.Duration, error) {
	if err := b.resetCold(ctx, n); err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// Run as the ovs-ofctl baseline runs: the tool itself, on the host's socket.
	cmd := exec.CommandContext(ctx, "ovs-vsctl", append([]string{"--db=" + n.host.DBEndpoint()}, vsctlArgs(want)...)...)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("baseline: ovs-vsctl (patch pair and %d tags): %w: %s", len(want.Tags), err, out)
	}
	got, err := n.hv.ovsdbState(ctx, agentBridges(), agentPatchNames(), n.ports)
	if err != nil {
		return 0, fmt.Errorf("baseline: ovs-vsctl: read back: %w", err)
	}
	if err := want.diff(got); err != nil {
		return 0, fmt.Errorf("baseline: ovs-vsctl's result differs from the agent's: %w", err)
	}
	if err := b.resetCold(ctx, n); err != nil {
		return 0, err
	}
	b.log.Info("ovs-vsctl baseline", zap.Int("N", n.params.Ports), zap.Duration("took", took), zap.Int("tags", len(want.Tags)))
	return took, nil
}

// vsctlArgs are the ovs-vsctl commands, separated by "--", that make st: each bridge's
// settings (a Flow_Table row per named table), each patch port added to its bridge with its
// interface's type and options, then every tag set.
func vsctlArgs(st ovsdbState) []string {
	var args []string
	cmd := func(c ...string) {
		if len(args) > 0 {
			args = append(args, "--")
		}
		args = append(args, c...)
	}
	for bi, b := range st.Bridges {
		set := []string{"set", "Bridge", b.Name}
		if b.FailMode != "" {
			set = append(set, "fail_mode="+b.FailMode)
		}
		if len(b.Protocols) > 0 {
			set = append(set, "protocols="+strings.Join(b.Protocols, ","))
		}
		for _, k := range slices.Sorted(maps.Keys(b.OtherConfig)) {
			set = append(set, "other_config:"+k+"="+b.OtherConfig[k])
		}
		for _, n := range slices.Sorted(maps.Keys(b.TableNames)) {
			id := fmt.Sprintf("@ft%d_%d", bi, n)
			cmd("--id="+id, "create", "Flow_Table", "name="+b.TableNames[n])
			set = append(set, fmt.Sprintf("flow_tables:%d=%s", n, id))
		}
		cmd(set...)
	}
	for _, p := range st.Patches {
		cmd("add-port", p.Bridge, p.Name)
		set := []string{"set", "Interface", p.Name, "type=" + p.Type}
		for _, k := range slices.Sorted(maps.Keys(p.Options)) {
			set = append(set, "options:"+k+"="+p.Options[k])
		}
		cmd(set...)
	}
	for _, name := range slices.Sorted(maps.Keys(st.Tags)) {
		cmd("set", "Port", name, "tag="+strconv.Itoa(st.Tags[name]))
	}
	return args
}

// diff reports every way got differs from want (the first few named): a patch port absent
// or on another bridge, of another type or options, a tag missing, different or extra.
func (want ovsdbState) diff(got ovsdbState) error {
	var errs []string
	gotBridge := map[string]bridgeSettings{}
	for _, b := range got.Bridges {
		gotBridge[b.Name] = b
	}
	for _, w := range want.Bridges {
		g := gotBridge[w.Name]
		if g.FailMode != w.FailMode || !slices.Equal(g.Protocols, w.Protocols) || !maps.Equal(g.OtherConfig, w.OtherConfig) || !maps.Equal(g.TableNames, w.TableNames) {
			errs = append(errs, fmt.Sprintf("bridge %s: %+v, want %+v", w.Name, g, w))
		}
	}
	gotPatch := map[string]patchPort{}
	for _, p := range got.Patches {
		gotPatch[p.Name] = p
	}
	for _, w := range want.Patches {
		g, ok := gotPatch[w.Name]
		switch {
		case !ok || g.Bridge == "":
			errs = append(errs, fmt.Sprintf("patch port %s absent (want it on %s)", w.Name, w.Bridge))
		case g.Bridge != w.Bridge || g.Type != w.Type || !maps.Equal(g.Options, w.Options):
			errs = append(errs, fmt.Sprintf("patch port %s: on %s, type %q, options %v; want on %s, type %q, options %v",
				w.Name, g.Bridge, g.Type, g.Options, w.Bridge, w.Type, w.Options))
		}
	}
	names := slices.Sorted(maps.Keys(want.Tags))
	for name := range got.Tags {
		if _, ok := want.Tags[name]; !ok {
			names = append(names, name)
		}
	}
	for _, name := range names {
		w, wok := want.Tags[name]
		g, gok := got.Tags[name]
		switch {
		case !gok:
			errs = append(errs, fmt.Sprintf("port %s untagged, want tag %d", name, w))
		case !wok:
			errs = append(errs, fmt.Sprintf("port %s tag %d, want untagged", name, g))
		case g != w:
			errs = append(errs, fmt.Sprintf("port %s tag %d, want %d", name, g, w))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	const shown = 5
	if len(errs) > shown {
		errs = append(errs[:shown], fmt.Sprintf("and %d more", len(errs)-shown))
	}
	return errors.New(strings.Join(errs, "; "))
}

// ovsdbState reads, in one transaction, the named bridges' settings, the named patch ports
// (bridge, interface type and options) and the tags of the named VIF ports.
func (h *hypervisor) ovsdbState(ctx context.Context, bridges, patches, vifs []string) (ovsdbState, error) {
	sel := func(table string, columns ...string) ovsdb.Operation {
		return ovsdb.Operation{Op: ovsdb.OperationSelect, Table: table, Where: []ovsdb.Condition{}, Columns: columns}
	}
	res, err := h.transact(ctx, []ovsdb.Operation{
		sel(vswitchd.BridgeTable, "name", "ports", "fail_mode", "protocols", "other_config", "flow_tables"),
		sel(vswitchd.PortTable, "_uuid", "name", "tag"),
		sel(vswitchd.InterfaceTable, "name", "type", "options"),
		sel(vswitchd.FlowTableTable, "_uuid", "name"),
	})
	if err != nil {
		return ovsdbState{}, fmt.Errorf("read ports: %w", err)
	}
	tableName := map[string]string{} // Flow_Table UUID → name
	for _, r := range res[3].Rows {
		if u, ok := r["_uuid"].(ovsdb.UUID); ok {
			tableName[u.GoUUID] = optionalString(r["name"])
		}
	}
	bridgeOf := map[string]string{} // Port UUID → bridge name
	settings := map[string]bridgeSettings{}
	for _, r := range res[0].Rows {
		name, _ := r["name"].(string)
		for _, u := range uuids(r["ports"]) {
			bridgeOf[u] = name
		}
		b := bridgeSettings{Name: name, FailMode: optionalString(r["fail_mode"]), Protocols: stringSet(r["protocols"]),
			OtherConfig: stringMap(r["other_config"])}
		if m, ok := r["flow_tables"].(ovsdb.OvsMap); ok && len(m.GoMap) > 0 {
			b.TableNames = map[int]string{}
			for k, v := range m.GoMap {
				n, _ := k.(float64)
				if u, ok := v.(ovsdb.UUID); ok {
					b.TableNames[int(n)] = tableName[u.GoUUID]
				}
			}
		}
		settings[name] = b
	}
	portBridge := map[string]string{} // port name → bridge name
	tags := map[string]int{}
	for _, r := range res[1].Rows {
		name, _ := r["name"].(string)
		if u, ok := r["_uuid"].(ovsdb.UUID); ok {
			portBridge[name] = bridgeOf[u.GoUUID]
		}
		if tag, ok := r["tag"].(float64); ok {
			tags[name] = int(tag) // an empty optional column is an empty set; a tag is a number
		}
	}
	ifaces := map[string]ovsdb.Row{}
	for _, r := range res[2].Rows {
		name, _ := r["name"].(string)
		ifaces[name] = r
	}
	st := ovsdbState{Tags: map[string]int{}}
	for _, name := range bridges {
		b := settings[name]
		b.Name = name
		st.Bridges = append(st.Bridges, b)
	}
	for _, name := range patches {
		p := patchPort{Name: name, Bridge: portBridge[name]}
		if r, ok := ifaces[name]; ok && p.Bridge != "" {
			p.Type, _ = r["type"].(string)
			p.Options = stringMap(r["options"])
		}
		st.Patches = append(st.Patches, p)
	}
	for _, name := range vifs {
		if tag, ok := tags[name]; ok {
			st.Tags[name] = tag
		}
	}
	return st, nil
}

// agentState reads the agent's converged OVSDB state: its patch pair, which must be one
// (each end a patch port whose peer is the other), and the tags of the node's VIFs, which
// must all be tagged.
func (n *node) agentState(ctx context.Context) (ovsdbState, error) {
	st, err := n.hv.ovsdbState(ctx, agentBridges(), agentPatchNames(), n.ports)
	if err != nil {
		return st, fmt.Errorf("the agent's OVSDB state: %w", err)
	}
	for i, p := range st.Patches {
		if peer := st.Patches[1-i].Name; p.Bridge == "" || p.Type != "patch" || p.Options["peer"] != peer {
			return st, fmt.Errorf("the agent's OVSDB state: patch port %s: on bridge %q, type %q, options %v; want a patch port with peer %s",
				p.Name, p.Bridge, p.Type, p.Options, peer)
		}
	}
	if len(st.Tags) != len(n.ports) {
		return st, fmt.Errorf("the agent's OVSDB state: %d of %d VIFs tagged", len(st.Tags), len(n.ports))
	}
	return st, nil
}

// uuids returns the UUIDs of a set-of-UUIDs column (a single UUID is sent bare).
func uuids(v any) []string {
	switch v := v.(type) {
	case ovsdb.UUID:
		return []string{v.GoUUID}
	case ovsdb.OvsSet:
		var out []string
		for _, e := range v.GoSet {
			if u, ok := e.(ovsdb.UUID); ok {
				out = append(out, u.GoUUID)
			}
		}
		return out
	}
	return nil
}

// optionalString returns an optional string column's value ("" when empty).
func optionalString(v any) string {
	s, _ := v.(string) // an empty optional column is an empty set
	return s
}

// stringSet returns a set-of-strings column, sorted (a single string is sent bare).
func stringSet(v any) []string {
	var out []string
	switch v := v.(type) {
	case string:
		out = []string{v}
	case ovsdb.OvsSet:
		for _, e := range v.GoSet {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
	}
	slices.Sort(out)
	return out
}

// stringMap returns a string-to-string map column (nil when empty).
func stringMap(v any) map[string]string {
	m, ok := v.(ovsdb.OvsMap)
	if !ok || len(m.GoMap) == 0 {
		return nil
	}
	out := make(map[string]string, len(m.GoMap))
	for k, v := range m.GoMap {
		ks, _ := k.(string)
		vs, _ := v.(string)
		out[ks] = vs
	}
	return out
}
