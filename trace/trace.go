// Package trace follows a packet through a node's bridges by asking ovs-vswitchd
// (ofproto/trace over its control socket; nothing is injected) and says, for every table
// it passes, which flow matched, what it did, and which rule and object of the pipeline
// that flow belongs to; then where the packet leaves (a VM port, an uplink with its VLAN,
// a tunnel with its VNI and remote endpoint) or where it is dropped. A packet addressed to
// another subnet is followed through the node's distributed router: up to the router's
// interface, then from the router's interface on the destination's subnet.
package trace

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Switch is ovs-vswitchd's control socket (a *unixctl.Client).
type Switch interface {
	Call(ctx context.Context, method string, args ...string) (string, error)
}

// Explainer names a flow's table, rule and owner (an *explain.Explainer).
type Explainer interface {
	Explain(bridge string, f *dumptext.Flow) explain.Explanation
}

// TableNamer is an Explainer that also names tables without a flow (the table of a miss).
type TableNamer interface {
	TableName(bridge string, table uint8) string
}

// Tracer traces packets on one node.
type Tracer struct {
	Switch Switch
	// Inventory is the node's OVSDB inventory: the bridge of each output port and the
	// tables' names. Nil leaves output bridges and table names empty.
	Inventory *ovsdb.Inventory
	// Explainer gives each step its table name, rule and owner; nil leaves rule and owner
	// empty (table names then come from the inventory).
	Explainer Explainer
}

// Trace is a traced packet, as `dvrflow trace -o json` prints it.
type Trace struct {
	// Legs are the packets traced: one, or two when the node's distributed router routes
	// the packet (up to the router, then from it).
	Legs  []Leg  `json:"legs"`
	Steps []Step `json:"steps"`
	// Result is where the last leg's packet goes.
	Result Result `json:"result"`
	// Notes say why a routed packet was not followed past the router.
	Notes []string `json:"notes,omitempty"`
}

// Leg is one ofproto/trace question.
type Leg struct {
	Bridge string `json:"bridge"`
	// Flow is the packet in ofproto/trace's flow syntax
	// (ovs-appctl ofproto/trace BRIDGE FLOW asks the same).
	Flow string `json:"flow"`
	// FirstStep is the index in Steps of the leg's first step.
	FirstStep int `json:"first_step"`
	// Router is the router that routed the packet into this leg; nil for the first.
	Router *RouterHop `json:"router"`
	// Result is where this leg's packet goes.
	Result Result `json:"result"`
}

// RouterHop is a distributed router's hop between two legs.
type RouterHop struct {
	ID string `json:"id"`
	// FromPort is the router's interface (br-int port) the first leg reached; ToPort the
	// one the second leg leaves from.
	FromPort string `json:"from_port"`
	ToPort   string `json:"to_port"`
}

// Step is one table lookup.
type Step struct {
	Bridge    string `json:"bridge"`
	Table     int    `json:"table"`
	TableName string `json:"table_name"`
	// Priority is the matched flow's; nil for a table miss.
	Priority *int `json:"priority"`
	// Cookie is the matched flow's cookie in hex, "" for a miss.
	Cookie string `json:"cookie"`
	// Match and Actions are the matched flow's, as ovs-vswitchd prints them (ports by
	// name); both empty for a miss. Actions are those applied to this packet.
	Match   string `json:"match"`
	Actions string `json:"actions"`
	// Rule is the pipeline rule ("I18"), "" when unknown; Owner the flow's object.
	Rule  string         `json:"rule"`
	Owner *explain.Owner `json:"owner"`
	// Notes are ovs-vswitchd's remarks ("no learned MAC for destination, flooding").
	Notes []string `json:"notes,omitempty"`
}

// Result kinds.
const (
	KindOutput     = "output"
	KindDrop       = "drop"
	KindController = "controller"
)

// Result is where the packet goes.
type Result struct {
	// Kind is output (at least one output), controller (none, but a copy goes to the
	// controller) or drop.
	Kind string `json:"kind"`
	// Miss says the packet was dropped because a table had no flow for it (the last step
	// is that table, without a flow).
	Miss    bool     `json:"miss"`
	Outputs []Output `json:"outputs"`
}

// Output is a port the packet leaves by; a flooded packet has several.
type Output struct {
	Bridge string `json:"bridge"`
	Port   string `json:"port"`
	// VLAN is the VLAN id the packet carries as it leaves; nil when untagged.
	VLAN   *int    `json:"vlan"`
	Tunnel *Tunnel `json:"tunnel"`
}

// Flow traces one packet given in ofproto/trace's flow syntax on bridge.
func (t *Tracer) Flow(ctx context.Context, bridge, flow string) (*Trace, error) {
	tr := &Trace{}
	if err := t.leg(ctx, tr, bridge, flow, nil); err != nil {
		return nil, err
	}
	return tr, nil
}

// leg traces one packet and appends its steps and leg to tr; tr.Result becomes its result.
func (t *Tracer) leg(ctx context.Context, tr *Trace, bridge, flow string, via *RouterHop) error {
	text, err := t.Switch.Call(ctx, "ofproto/trace", "--names", bridge, flow)
	if err != nil {
		return fmt.Errorf("ofproto/trace %s %s: %w", bridge, flow, err)
	}
	raw, err := Parse(text)
	if err != nil {
		return fmt.Errorf("ofproto/trace %s %s: %w", bridge, flow, err)
	}
	first := len(tr.Steps)
	for _, s := range raw.Steps {
		tr.Steps = append(tr.Steps, t.step(s))
	}
	res := t.result(raw, tr.Steps[first:])
	tr.Legs = append(tr.Legs, Leg{Bridge: bridge, Flow: flow, FirstStep: first, Router: via, Result: res})
	tr.Result = res
	return nil
}

// step explains one raw step.
func (t *Tracer) step(s RawStep) Step {
	out := Step{Bridge: s.Bridge, Table: s.Table, Notes: s.Notes}
	if !s.Miss {
		prio := s.Priority
		out.Priority = &prio
		out.Cookie = "0x" + strconv.FormatUint(s.Cookie, 16)
		out.Match = s.Match
		out.Actions = strings.Join(s.Actions, ",")
	}
	if t.Explainer != nil && !s.Miss {
		if f, err := dumptext.ParseLine(flowLine(s), nil); err == nil {
			e := t.Explainer.Explain(s.Bridge, &f)
			out.TableName, out.Rule, out.Owner = e.TableName, e.Rule, e.Owner
		}
	} else if namer, ok := t.Explainer.(TableNamer); ok {
		// A miss has no flow; its table still has a name.
		out.TableName = namer.TableName(s.Bridge, uint8(s.Table))
	}
	if out.TableName == "" && t.Inventory != nil {
		if b, ok := t.Inventory.Bridge(s.Bridge); ok {
			out.TableName = b.Tables[uint8(s.Table)]
		}
	}
	return out
}

// flowLine renders a matched step as ovs-ofctl dump-flows prints a flow.
func flowLine(s RawStep) string {
	var b strings.Builder
	fmt.Fprintf(&b, "cookie=%#x, table=%d, priority=%d", s.Cookie, s.Table, s.Priority)
	if s.Match != "" {
		b.WriteString(",")
		b.WriteString(s.Match)
	}
	actions := strings.Join(s.Actions, ",")
	if actions == "" {
		actions = "drop"
	}
	b.WriteString(" actions=")
	b.WriteString(actions)
	return b.String()
}

// result says where the packet of raw goes; steps are its explained steps.
func (t *Tracer) result(raw *Raw, steps []Step) Result {
	res := Result{Outputs: []Output{}}
	for _, o := range raw.Outputs {
		out := Output{Bridge: o.Bridge, Port: o.Port, Tunnel: o.Tunnel}
		if o.VLAN != 0 {
			vlan := o.VLAN
			out.VLAN = &vlan
		}
		if out.Bridge == "" {
			out.Bridge = t.bridgeOf(o.Port)
		}
		res.Outputs = append(res.Outputs, out)
	}
	switch {
	case len(res.Outputs) > 0:
		res.Kind = KindOutput
	case raw.Controller:
		res.Kind = KindController
	default:
		res.Kind = KindDrop
		res.Miss = len(steps) > 0 && steps[len(steps)-1].Priority == nil
	}
	return res
}

// bridgeOf returns the bridge holding the port (an interface name), "" when unknown.
func (t *Tracer) bridgeOf(port string) string {
	if t.Inventory == nil {
		return ""
	}
	for _, b := range t.Inventory.Bridges {
		if _, ok := b.Port(port); ok {
			return b.Name
		}
	}
	return ""
}
