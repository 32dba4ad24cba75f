package trace

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows/dumptext"
)

// Raw is ofproto/trace's answer read into its parts, before ports are resolved and flows
// explained. Parse makes it from the text alone.
type Raw struct {
	// Flow is the traced flow as ovs-vswitchd understood it (its "Flow:" line).
	Flow string
	// Steps are the OpenFlow tables the packet went through, in the order it went, over
	// every bridge it reached (patch ports followed) and every recirculation.
	Steps []RawStep
	// Outputs are where the datapath sends the packet, in the order of the datapath
	// actions; tunnel outputs carry the tunnel and the OpenFlow port the trace named.
	Outputs []RawOutput
	// Controller is set when an action sends the packet to the OpenFlow controller.
	Controller bool
}

// RawStep is one table lookup.
type RawStep struct {
	Bridge string
	Table  int
	// Miss is set for a lookup that matched no flow ("No match."): Priority, Cookie, Match
	// and Actions are then empty.
	Miss     bool
	Priority int
	Cookie   uint64
	// Match is the flow's match as ovs-vswitchd prints it (ports by name, no priority).
	Match string
	// Actions are the actions the flow applied to this packet, in order.
	Actions []string
	// Notes are ovs-vswitchd's remarks on the actions ("forwarding to learned port",
	// "no learned MAC for destination, flooding", warnings).
	Notes []string
}

// RawOutput is one output of the datapath actions.
type RawOutput struct {
	// Port is the datapath port's name (an interface), or for a tunnel the OpenFlow tunnel
	// port of the bridge that tunnelled it.
	Port string
	// Bridge is the bridge the trace saw tunnel the packet; "" for other outputs (the
	// port's bridge is in OVSDB).
	Bridge string
	// VLAN is the 802.1Q VLAN id the packet carries as it leaves, 0 when untagged.
	VLAN int
	// Tunnel is set when the packet leaves encapsulated.
	Tunnel *Tunnel
}

// Tunnel is where an encapsulated packet goes.
type Tunnel struct {
	// Type is vxlan, gre or geneve.
	Type string `json:"type"`
	// VNI is the VXLAN/Geneve VNI or the GRE key.
	VNI uint64 `json:"vni"`
	// RemoteIP is the outer destination address.
	RemoteIP netip.Addr `json:"remote_ip"`
}

// Parse reads ofproto/trace's text. It understands the trees OVS 3.x prints: a bridge
// header (bridge("br-int") over a dashed line), under it one node per table ("25.
// MATCH, priority P, cookie C" or "25. No match."), each with its actions, remarks
// (" -> ...", " >> ..."), the next table (goto_table, resubmit) and the next bridge
// (through a patch port) as children; a recirculation starts a new tree after a line of
// '='. Every tree ends in "Datapath actions:", which says where the packet goes.
func Parse(text string) (*Raw, error) {
	raw := &Raw{}
	sections := splitRecirculations(text)
	if len(sections) == 0 {
		return nil, fmt.Errorf("no \"Datapath actions:\" line: not ofproto/trace's output: %q", firstLine(text))
	}
	for i, sec := range sections {
		if err := raw.parseSection(sec); err != nil {
			if len(sections) > 1 {
				return nil, fmt.Errorf("recirculation %d: %w", i, err)
			}
			return nil, err
		}
	}
	return raw, nil
}

// recircSeparator is the line of '=' around a recirculation's header.
var recircSeparator = strings.Repeat("=", 79)

// splitRecirculations returns the parts of the text that each hold a "Flow:" tree and its
// "Datapath actions:".
func splitRecirculations(text string) [][]string {
	var sections [][]string
	var cur []string
	for _, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		if line == recircSeparator {
			if len(cur) > 0 {
				sections = append(sections, cur)
			}
			cur = nil
			continue
		}
		cur = append(cur, line)
	}
	if len(cur) > 0 {
		sections = append(sections, cur)
	}
	// A recirculation's header ("recirc(0x1) ...", NAT notes) sits between two separators
	// and holds no tree: it belongs to no section.
	out := sections[:0]
	for _, s := range sections {
		if hasPrefix(s, "Flow:") || hasPrefix(s, "Datapath actions:") {
			out = append(out, s)
		}
	}
	return out
}

func firstLine(text string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(text), "\n")
	return l
}

func hasPrefix(lines []string, prefix string) bool {
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return true
		}
	}
	return false
}

// parseSection reads one tree and its datapath actions.
func (raw *Raw) parseSection(lines []string) error {
	var treeLines []line
	var datapath string
	seenDatapath := false
	for _, l := range lines {
		switch {
		case strings.HasPrefix(l, "Flow: "):
			if raw.Flow == "" {
				raw.Flow = strings.TrimPrefix(l, "Flow: ")
			}
		case strings.HasPrefix(l, "Final flow:"), strings.HasPrefix(l, "Megaflow:"):
		case strings.HasPrefix(l, "Datapath actions:"):
			datapath = strings.TrimSpace(strings.TrimPrefix(l, "Datapath actions:"))
			seenDatapath = true
		case seenDatapath:
			// What follows the datapath actions (the slow path's reasons) is commentary.
		case strings.TrimSpace(l) == "", isDashes(l):
		default:
			trimmed := strings.TrimLeft(l, " ")
			indent := len(l) - len(trimmed)
			if indent%4 == 1 {
				// A node's own text may start with a space: " 0." (a table number printed
				// with %2d), " -> " (a remark).
				indent--
			}
			treeLines = append(treeLines, line{indent: indent, text: trimmed})
		}
	}
	if !seenDatapath {
		return fmt.Errorf("no \"Datapath actions:\" line: not ofproto/trace's output")
	}
	p := &treeParser{lines: treeLines}
	tree := p.list(0)
	if p.pos < len(p.lines) {
		return fmt.Errorf("trace line %q: indented unlike ofproto/trace's tree", p.lines[p.pos].text)
	}
	var tunnels []tunnelHop
	if err := raw.walk(tree, "", &tunnels); err != nil {
		return err
	}
	outs, controller, err := datapathOutputs(datapath)
	if err != nil {
		return fmt.Errorf("datapath actions %q: %w", datapath, err)
	}
	raw.Controller = raw.Controller || controller
	used := make([]bool, len(tunnels))
	for _, o := range outs {
		if o.Tunnel != nil {
			for i, hop := range tunnels {
				if !used[i] && hop.remote == o.Tunnel.RemoteIP {
					o.Port, o.Bridge, used[i] = hop.port, hop.bridge, true
					break
				}
			}
		}
		raw.Outputs = append(raw.Outputs, o)
	}
	return nil
}

func isDashes(l string) bool {
	t := strings.TrimSpace(l)
	return t != "" && strings.Trim(t, "-") == ""
}

// line is a line of the tree: its indentation and its text without it.
type line struct {
	indent int
	text   string
}

// node is a node of ofproto/trace's tree.
type node struct {
	text     string
	children []*node
}

// treeParser rebuilds the tree from the indentation, which OVS prints so (see
// oftrace_node_print_details): a list at level L prints each node at 4·(L+1) columns with
// its children as a list at level L+2, except its last node when that one can have
// children (a bridge, a table), which it prints at 4·L with its children as a list at the
// same level L, so that a chain of tables does not drift right.
type treeParser struct {
	lines []line
	pos   int
}

// list reads the nodes of a list at level.
func (p *treeParser) list(level int) []*node {
	var nodes []*node
	for p.pos < len(p.lines) {
		l := p.lines[p.pos]
		switch {
		case l.indent == 4*(level+1):
			p.pos++
			n := &node{text: l.text}
			n.children = p.list(level + 2)
			nodes = append(nodes, n)
		case l.indent == 4*level:
			p.pos++
			n := &node{text: l.text}
			n.children = p.list(level)
			return append(nodes, n)
		default:
			return nodes
		}
	}
	return nodes
}

// tunnelHop is a tunnel output the tree shows: the OpenFlow port and the remote endpoint.
type tunnelHop struct {
	bridge, port string
	remote       netip.Addr
}

var (
	bridgeHeader = regexp.MustCompile(`^bridge\("(.*)"\)$`)
	tableHeader  = regexp.MustCompile(`^\s*(\d+)\. (.*)$`)
	// tableMatch is a matched table's text: match (may be empty), priority, cookie.
	tableMatch   = regexp.MustCompile(`^(?:(.*?),? )?priority (\d+)(?:, cookie (0x[0-9a-fA-F]+))?$`)
	tunnelingTo  = regexp.MustCompile(`^tunneling to (\S+) via `)
	outputAction = regexp.MustCompile(`^output:(.+)$`)
	vniField     = regexp.MustCompile(`\bvni=(0x[0-9a-fA-F]+|\d+)`)
	greKeyField  = regexp.MustCompile(`\bkey=(0x[0-9a-fA-F]+|\d+)`)
)

// walk visits the tree in order, collecting the table steps of raw and the tunnel outputs.
func (raw *Raw) walk(nodes []*node, bridge string, tunnels *[]tunnelHop) error {
	for _, n := range nodes {
		if m := bridgeHeader.FindStringSubmatch(n.text); m != nil {
			if err := raw.walk(n.children, m[1], tunnels); err != nil {
				return err
			}
			continue
		}
		m := tableHeader.FindStringSubmatch(n.text)
		if m == nil {
			// A thawed continuation ("thaw", after a pause or a conntrack
			// recirculation), a group's bucket: what runs under it is still this bridge's.
			if err := raw.walk(n.children, bridge, tunnels); err != nil {
				return err
			}
			continue
		}
		table, err := strconv.Atoi(m[1])
		if err != nil {
			return fmt.Errorf("table %q: %w", m[1], err)
		}
		step := RawStep{Bridge: bridge, Table: table}
		if strings.HasPrefix(m[2], "No match") {
			step.Miss = true
		} else if mm := tableMatch.FindStringSubmatch(m[2]); mm != nil {
			step.Match = mm[1]
			step.Priority, _ = strconv.Atoi(mm[2])
			if mm[3] != "" {
				step.Cookie, _ = strconv.ParseUint(strings.TrimPrefix(strings.ToLower(mm[3]), "0x"), 16, 64)
			}
		} else {
			// IP fragments dropped by the fragment handling mode, and what later OVS may add.
			step.Miss = true
			step.Notes = append(step.Notes, m[2])
		}
		raw.Steps = append(raw.Steps, step)
		idx := len(raw.Steps) - 1
		var lastOutput string
		for _, c := range n.children {
			switch {
			case strings.HasPrefix(c.text, "-> "), strings.HasPrefix(c.text, ">> "), strings.HasPrefix(c.text, ">>>> "):
				note := strings.TrimSpace(strings.Trim(c.text, "<>- "))
				raw.Steps[idx].Notes = append(raw.Steps[idx].Notes, note)
				if t := tunnelingTo.FindStringSubmatch(note); t != nil && lastOutput != "" {
					if ip, err := netip.ParseAddr(t[1]); err == nil {
						*tunnels = append(*tunnels, tunnelHop{bridge: bridge, port: lastOutput, remote: ip})
					}
				}
			case bridgeHeader.MatchString(c.text), tableHeader.MatchString(c.text):
				// The next table or bridge runs now, before this flow's later actions:
				// its steps follow this one.
				if err := raw.walk([]*node{c}, bridge, tunnels); err != nil {
					return err
				}
			default:
				if !step.Miss {
					raw.Steps[idx].Actions = append(raw.Steps[idx].Actions, c.text)
				}
				if o := outputAction.FindStringSubmatch(c.text); o != nil {
					lastOutput = strings.Trim(o[1], `"`)
				}
				if strings.HasPrefix(c.text, "CONTROLLER") || strings.HasPrefix(c.text, "controller") {
					raw.Controller = true
				}
			}
		}
	}
	return nil
}

// datapathOutputs reads the datapath actions: the outputs with the VLAN each carries, and
// whether the packet goes to userspace for the controller.
func datapathOutputs(actions string) ([]RawOutput, bool, error) {
	var outs []RawOutput
	controller := false
	var run func(acts []string, vlans []int) error
	run = func(acts []string, vlans []int) error {
		vlans = append([]int(nil), vlans...)
		for _, a := range acts {
			name, args, _ := strings.Cut(a, "(")
			args = strings.TrimSuffix(args, ")")
			switch name {
			case "drop", "":
			case "push_vlan":
				vid, err := field(args, "vid")
				if err != nil {
					return fmt.Errorf("%s: %w", a, err)
				}
				vlans = append(vlans, int(vid))
			case "pop_vlan":
				if len(vlans) > 0 {
					vlans = vlans[:len(vlans)-1]
				}
			case "clone":
				if err := run(dumptext.SplitActions(args), vlans); err != nil {
					return err
				}
			case "tnl_push":
				t, err := tunnelHeader(args)
				if err != nil {
					return fmt.Errorf("%s: %w", a, err)
				}
				// The rest of this list carries the encapsulated packet over the underlay
				// (OVS clones a tunnel output that is not the last).
				outs = append(outs, RawOutput{Tunnel: t})
				return nil
			case "userspace":
				if strings.Contains(args, "controller(") {
					controller = true
				}
			case "set", "masked_set", "ct", "ct_clear", "recirc", "meter", "sample", "trunc", "hash",
				"push_eth", "pop_eth", "push_mpls", "pop_mpls", "push_nsh", "pop_nsh", "tnl_pop",
				"check_pkt_len", "lb_output", "add_mpls", "dec_ttl", "psample", "drop_action":
			default:
				if strings.Contains(a, "(") || strings.Contains(a, "=") {
					continue // an action this reader does not know changes no output
				}
				o := RawOutput{Port: a}
				if len(vlans) > 0 {
					o.VLAN = vlans[len(vlans)-1]
				}
				outs = append(outs, o)
			}
		}
		return nil
	}
	err := run(dumptext.SplitActions(actions), nil)
	return outs, controller, err
}

// tunnelHeader reads tnl_push's header: its type, VNI (or GRE key) and outer destination.
func tunnelHeader(args string) (*Tunnel, error) {
	t := &Tunnel{}
	for _, typ := range []string{"vxlan", "geneve", "gre"} {
		i := strings.Index(args, typ+"(")
		if i < 0 {
			continue
		}
		t.Type = typ
		inner := args[i+len(typ)+1:]
		key := vniField
		if typ == "gre" {
			key = greKeyField
		}
		if m := key.FindStringSubmatch(inner); m != nil {
			t.VNI, _ = strconv.ParseUint(m[1], 0, 64)
		}
		break
	}
	if t.Type == "" {
		return nil, fmt.Errorf("no vxlan, geneve or gre header")
	}
	for _, ipv := range []string{"ipv4(", "ipv6("} {
		if i := strings.Index(args, ipv); i >= 0 {
			for _, kv := range strings.Split(upTo(args[i+len(ipv):], ')'), ",") {
				if v, ok := strings.CutPrefix(kv, "dst="); ok {
					ip, err := netip.ParseAddr(v)
					if err != nil {
						return nil, fmt.Errorf("outer destination %q: %w", v, err)
					}
					t.RemoteIP = ip
				}
			}
		}
	}
	if !t.RemoteIP.IsValid() {
		return nil, fmt.Errorf("no outer destination address")
	}
	return t, nil
}

func upTo(s string, c byte) string {
	if i := strings.IndexByte(s, c); i >= 0 {
		return s[:i]
	}
	return s
}

// field returns the number after key= in a comma-separated list ("vid=107,pcp=0"),
// decimal or 0x-hexadecimal.
func field(list, key string) (uint64, error) {
	for _, kv := range strings.Split(list, ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(kv), key+"="); ok {
			n, err := strconv.ParseUint(v, 0, 64)
			if err != nil {
				return 0, fmt.Errorf("%s=%q: %w", key, v, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("no %s=", key)
}
