package flowgraph

import (
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows/dumptext"
)

// stepKind says how a flow hands a packet on.
type stepKind int

const (
	// stepTable continues in another table of the same bridge (goto_table, resubmit, the
	// table= of ct()).
	stepTable stepKind = iota
	// stepOutput sends the packet out of a port (output:PORT, a bare port).
	stepOutput
	// stepReserved is one of OpenFlow's reserved destinations (NORMAL, FLOOD, ALL, LOCAL,
	// IN_PORT, CONTROLLER).
	stepReserved
)

// step is one place a flow's actions send a packet: a table (by number or name), a port,
// or a reserved destination.
type step struct {
	kind stepKind
	// via names the action: "goto_table", "resubmit", "ct", "output", or the reserved
	// destination in upper case ("NORMAL").
	via string
	// table is the target table: a number ("60") or a name ("TRANSIENT"); "" with resubmit
	// to the current table.
	table string
	// port is the output port: a name or a number, as printed.
	port string
}

// reserved maps the reserved ports ovs-ofctl prints (as a bare action or after output:) to
// the name the graph shows.
var reserved = map[string]string{
	"normal": "NORMAL", "flood": "FLOOD", "all": "ALL", "local": "LOCAL",
	"in_port": "IN_PORT", "controller": "CONTROLLER",
}

// steps returns where an action list (ovs-ofctl text) sends packets, in order. Actions
// that only rewrite the packet (set_field, pop_vlan, learn, ...) and drop are not steps;
// learn() and other nested action lists are not looked into, since what they contain is
// installed later as other flows.
func steps(actions string) []step {
	var out []step
	for _, action := range dumptext.SplitActions(actions) {
		if s, ok := parseStep(action); ok {
			out = append(out, s)
		}
	}
	return out
}

// parseStep parses one top-level action.
func parseStep(action string) (step, bool) {
	name, arg, hasArg := cutAction(action)
	lower := strings.ToLower(name)
	switch {
	case lower == "goto_table":
		return step{kind: stepTable, via: "goto_table", table: arg}, hasArg && arg != ""
	case lower == "resubmit":
		return parseResubmit(arg)
	case lower == "ct":
		for _, opt := range splitArgs(arg) {
			if table, ok := strings.CutPrefix(opt, "table="); ok {
				return step{kind: stepTable, via: "ct", table: table}, true
			}
		}
		return step{}, false
	case lower == "output":
		return outputStep(unquote(arg))
	case lower == "controller":
		return step{kind: stepReserved, via: "CONTROLLER"}, true
	case !hasArg && isPortNumber(name):
		// OpenFlow 1.0 style: a bare port number is output to it.
		return step{kind: stepOutput, via: "output", port: name}, true
	case !hasArg:
		if r, ok := reserved[lower]; ok {
			return step{kind: stepReserved, via: r}, true
		}
	}
	return step{}, false
}

// outputStep is output:PORT, where PORT may be a reserved port.
func outputStep(port string) (step, bool) {
	if port == "" || strings.HasPrefix(port, "NXM_") || strings.HasPrefix(port, "OXM_") || strings.Contains(port, "[") {
		// output:NXM_NX_REG1[] sends to a port only known at run time.
		return step{kind: stepOutput, via: "output", port: "register"}, true
	}
	if r, ok := reserved[strings.ToLower(port)]; ok {
		return step{kind: stepReserved, via: r}, true
	}
	return step{kind: stepOutput, via: "output", port: port}, true
}

// parseResubmit reads resubmit(PORT,TABLE[,ct]), resubmit(,TABLE) and resubmit:PORT (the
// same table, as if the packet came in on PORT).
func parseResubmit(arg string) (step, bool) {
	args := splitArgs(arg)
	if len(args) < 2 {
		// resubmit:PORT: the current table again.
		return step{kind: stepTable, via: "resubmit"}, true
	}
	return step{kind: stepTable, via: "resubmit", table: strings.TrimSpace(args[1])}, true
}

// cutAction splits "name:arg" or "name(arg)" into name and arg.
func cutAction(action string) (name, arg string, hasArg bool) {
	action = strings.TrimSpace(action)
	paren := strings.IndexByte(action, '(')
	colon := strings.IndexByte(action, ':')
	switch {
	case paren >= 0 && (colon < 0 || paren < colon) && strings.HasSuffix(action, ")"):
		return action[:paren], action[paren+1 : len(action)-1], true
	case colon >= 0:
		return action[:colon], action[colon+1:], true
	}
	return action, "", false
}

// splitArgs splits a parenthesised argument list at its top-level commas, keeping empty
// arguments ("" for the port of resubmit(,60)).
func splitArgs(arg string) []string {
	var out []string
	depth, start := 0, 0
	for i := 0; i < len(arg); i++ {
		switch arg[i] {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, strings.TrimSpace(arg[start:i]))
				start = i + 1
			}
		}
	}
	return append(out, strings.TrimSpace(arg[start:]))
}

func isPortNumber(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

// unquote removes the double quotes ovs-ofctl --names puts around some port names.
func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
		return s[1 : len(s)-1]
	}
	return s
}
