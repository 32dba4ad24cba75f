// Package scenario reads flow dumps in the form of Neutron's reference dumps
// (testdata/neutron/scenarios/*.flows): `ovs-ofctl dump-flows` text, several bridges in one
// file under "## bridge NAME" headers, ports by number with a "# ofports: 1=NAME ..." map
// per bridge. It turns them into the CLI's flow records (ports by name, tables named after
// Neutron's catalogue, no rule or owner: recognising those is the explain package's job)
// and the patch ports Neutron's naming implies, so the graph and the report can be drawn
// from real pipelines in tests and examples.
package scenario

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flowgraph"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/inspect"
)

// Node is what a dump says about a node.
type Node struct {
	// Flows are the records per bridge, in dump order.
	Flows map[string][]inspect.FlowRecord
	// Ports are the port names per bridge, by ofport.
	Ports map[string]map[int]string
	// Patches are the patch ports joining the bridges, by Neutron's names.
	Patches []flowgraph.Patch
}

// Load reads a dump file; flows before any "## bridge" header belong to the bridge named
// by the file (br-int.flows → br-int).
func Load(path string) (*Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read dump: %w", err)
	}
	node, err := Parse(bytes.NewReader(data), strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return node, nil
}

// Parse reads a dump; flows before any "## bridge" header belong to defaultBridge.
func Parse(r io.Reader, defaultBridge string) (*Node, error) {
	sections := map[string]*strings.Builder{}
	ports := map[string]map[int]string{}
	bridge := defaultBridge
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "## bridge "); ok {
			bridge, _, _ = strings.Cut(rest, ":")
			bridge = strings.TrimSpace(bridge)
			continue
		}
		if rest, ok := strings.CutPrefix(line, "# ofports:"); ok {
			m, err := parseOfports(rest)
			if err != nil {
				return nil, fmt.Errorf("line %d: %w", n, err)
			}
			ports[bridge] = m
			continue
		}
		if sections[bridge] == nil {
			sections[bridge] = &strings.Builder{}
		}
		// The reference dumps blank their cookies (also inside learn()); zero is the
		// closest a cookie gets to blank.
		sections[bridge].WriteString(strings.ReplaceAll(line, "cookie=COOKIE", "cookie=0x0") + "\n")
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read dump: %w", err)
	}
	node := &Node{Flows: map[string][]inspect.FlowRecord{}, Ports: ports}
	for _, name := range slices.Sorted(maps.Keys(sections)) {
		pipeline := PipelineOf(name)
		parsed, err := dumptext.Parse(strings.NewReader(sections[name].String()), func(table string) (uint8, bool) {
			for _, t := range pipeline {
				if t.Name == table {
					return t.Number, true
				}
			}
			return 0, false
		})
		if err != nil {
			return nil, fmt.Errorf("bridge %s: %w", name, err)
		}
		if len(parsed) == 0 {
			continue
		}
		node.Flows[name] = Records(name, parsed, pipeline, ports[name])
	}
	node.Patches = NeutronPatches(ports)
	return node, nil
}

// PipelineOf is the catalogue of a bridge by Neutron's default names: br-int, br-tun, and
// every other bridge physical.
func PipelineOf(bridge string) flows.Pipeline {
	switch bridge {
	case "br-int":
		return flows.IntegrationPipeline
	case "br-tun":
		return flows.TunnelPipeline
	}
	return flows.PhysicalPipeline
}

// Records turns parsed flows into records: tables named by the catalogue, port numbers in
// in_port= and output: replaced by the ports' names.
func Records(bridge string, parsed []dumptext.Flow, pipeline flows.Pipeline, ports map[int]string) []inspect.FlowRecord {
	out := make([]inspect.FlowRecord, 0, len(parsed))
	for _, f := range parsed {
		name := f.TableName
		if t, ok := pipeline.Lookup(f.Table); ok && f.TableResolved {
			name = t.Name
		}
		match := make([]string, len(f.Match))
		for i, m := range f.Match {
			if m.Name == "in_port" {
				m.Value = portName(m.Value, ports)
			}
			match[i] = m.String()
		}
		actions := make([]string, len(f.Actions))
		for i, a := range f.Actions {
			if port, ok := strings.CutPrefix(a, "output:"); ok {
				a = "output:" + portName(port, ports)
			}
			actions[i] = a
		}
		out = append(out, inspect.FlowRecord{
			Bridge:    bridge,
			Table:     f.Table,
			TableName: name,
			Priority:  f.Priority,
			Match:     strings.Join(match, ","),
			Actions:   strings.Join(actions, ","),
			Cookie:    "0x" + strconv.FormatUint(f.Cookie, 16),
			Packets:   f.Packets,
			Bytes:     f.Bytes,
		})
	}
	return out
}

func portName(value string, ports map[int]string) string {
	if n, err := strconv.Atoi(value); err == nil {
		if name, ok := ports[n]; ok {
			return name
		}
	}
	return value
}

// parseOfports reads " 1=int-br-vlan 2=qr-d0000001-00".
func parseOfports(s string) (map[int]string, error) {
	m := map[int]string{}
	for _, field := range strings.Fields(s) {
		num, name, ok := strings.Cut(field, "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || name == "" {
			return nil, fmt.Errorf("ofports: %q is not NUMBER=NAME", field)
		}
		m[n] = name
	}
	return m, nil
}

// NeutronPatches pairs patch ports by the names Neutron's agent gives them: int-BRIDGE on
// the integration bridge with phy-BRIDGE on physical bridge BRIDGE, and patch-tun on the
// integration bridge with patch-int on the tunnel bridge. Both directions are returned,
// sorted.
func NeutronPatches(ports map[string]map[int]string) []flowgraph.Patch {
	owner := map[string]string{} // port name → bridge
	for bridge, m := range ports {
		for _, name := range m {
			owner[name] = bridge
		}
	}
	var out []flowgraph.Patch
	add := func(port, peerPort string) {
		bridge, ok1 := owner[port]
		peer, ok2 := owner[peerPort]
		if ok1 && ok2 {
			out = append(out,
				flowgraph.Patch{Bridge: bridge, Port: port, PeerBridge: peer, PeerPort: peerPort},
				flowgraph.Patch{Bridge: peer, Port: peerPort, PeerBridge: bridge, PeerPort: port})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(owner)) {
		if physical, ok := strings.CutPrefix(name, "int-"); ok {
			add(name, "phy-"+physical)
		}
	}
	add("patch-tun", "patch-int")
	slices.SortFunc(out, func(a, b flowgraph.Patch) int {
		return strings.Compare(a.Bridge+"\x00"+a.Port, b.Bridge+"\x00"+b.Port)
	})
	return out
}
