package flows

import (
	"encoding/binary"
	"fmt"
	"strconv"

	of "antrea.io/libOpenflow/openflow13"
)

// Flow is one OpenFlow flow entry as dvrflow wants it installed: no timeouts, no flags,
// instructions = apply-actions followed by an optional goto_table (the last action).
// An empty Actions list is a drop.
//
// No flags means no reset_counts either: Neutron's OVS firewall adds its flows with
// ovs-ofctl, which sets it (its dumps print "reset_counts priority=..."); dvrflow's flows
// are the same without it, a documented difference.
type Flow struct {
	Table    uint8
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  []Action
}

// Key identifies a flow in a table the way OpenFlow does for strict operations:
// table, priority and match.
type Key struct {
	Table    uint8
	Priority uint16
	Match    string // Match.Key()
}

// Key returns the flow's identity.
func (f Flow) Key() Key { return Key{Table: f.Table, Priority: f.Priority, Match: f.Match.Key()} }

// String renders the flow exactly as `ovs-ofctl -O OpenFlow13 --no-stats --no-names
// dump-flows` prints it.
func (f Flow) String() string { return f.Format(nil) }

// Names maps table and port numbers to names for human-readable output
// (`ovs-ofctl --names`). A nil *Names prints numbers.
type Names struct {
	Tables map[uint8]string
	Ports  map[uint32]string
}

// Format renders the flow like ovs-ofctl, with names when given.
func (f Flow) Format(names *Names) string {
	b := textWriter{buf: make([]byte, 0, 160)}
	f.appendFormat(&b, names)
	return b.String()
}

func (f Flow) appendFormat(b *textWriter, names *Names) {
	if f.Cookie != 0 {
		b.WriteString("cookie=")
		writeHexC(b, f.Cookie)
		b.WriteString(", ")
	}
	if f.Table != 0 || (names != nil && names.Tables[f.Table] != "") {
		b.WriteString("table=")
		writeTable(b, f.Table, names)
		b.WriteString(", ")
	}
	n := b.Len()
	f.Match.appendText(b, f.Priority, names)
	if b.Len() != n {
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	f.appendActions(b, names)
}

// ActionsString renders only the actions part (after "actions=").
func (f Flow) ActionsString(names *Names) string {
	var b textWriter
	f.appendActions(&b, names)
	return b.String()
}

func (f Flow) appendActions(b *textWriter, names *Names) {
	if len(f.Actions) == 0 {
		b.WriteString("drop")
		return
	}
	for i, a := range f.Actions {
		if i > 0 {
			b.WriteByte(',')
		}
		a.appendText(b, names)
	}
}

func writeTable(b *textWriter, t uint8, names *Names) {
	if names != nil {
		if n, ok := names.Tables[t]; ok && n != "" {
			b.WriteString(n)
			return
		}
	}
	b.buf = strconv.AppendUint(b.buf, uint64(t), 10)
}

// OpenFlow 1.3 instruction types.
const (
	ofpitGotoTable    = 1
	ofpitApplyActions = 4
)

// Instructions encodes the flow's instruction list (OpenFlow 1.3 wire format).
func (f Flow) Instructions() ([]byte, error) { return f.AppendInstructions(nil) }

// AppendInstructions appends the flow's encoded instruction list (OpenFlow 1.3 wire format:
// apply-actions with every action but a final goto_table, then that goto_table) to dst and
// returns the extended slice. Encoding into a reused buffer allocates nothing (but for
// learn actions).
func (f Flow) AppendInstructions(dst []byte) ([]byte, error) {
	acts := f.Actions
	var gotoTable *GotoTable
	if n := len(acts); n > 0 {
		if g, ok := acts[n-1].(GotoTable); ok {
			gotoTable, acts = &g, acts[:n-1]
		}
	}
	if len(acts) > 0 {
		start := len(dst)
		dst = append(dst, 0, ofpitApplyActions, 0, 0, 0, 0, 0, 0) // type, length, pad
		for _, a := range acts {
			if g, ok := a.(GotoTable); ok {
				return dst[:start], fmt.Errorf("goto_table:%d must be the last action", g.Table)
			}
			var err error
			if dst, err = a.appendOF(dst); err != nil {
				return dst[:start], err
			}
		}
		if len(dst)-start > 0xffff {
			return dst[:start], fmt.Errorf("encode actions: %d bytes of actions", len(dst)-start)
		}
		binary.BigEndian.PutUint16(dst[start+2:], uint16(len(dst)-start))
	}
	if gotoTable != nil {
		dst = append(dst, 0, ofpitGotoTable, 0, 8, gotoTable.Table, 0, 0, 0)
	}
	return dst, nil
}

// FlowMod commands.
const (
	CommandAdd          = of.FC_ADD
	CommandModifyStrict = of.FC_MODIFY_STRICT
	CommandDeleteStrict = of.FC_DELETE_STRICT
)

// FlowMod is an encoded OpenFlow 1.3 flow-mod message; it implements libOpenflow's
// util.Message so the connection can send it (its xid is set by the connection).
type FlowMod struct{ b []byte }

// EncodeFlowMod builds the flow-mod for f. instructions may be passed pre-encoded (from
// Flow.Instructions) to avoid encoding twice; nil encodes them (and deletes carry none).
// For strict modify and delete, cookieMask selects the flows by cookie.
func EncodeFlowMod(f Flow, command uint8, instructions []byte, cookieMask uint64) (*FlowMod, error) {
	if instructions == nil && command != CommandDeleteStrict {
		var err error
		if instructions, err = f.Instructions(); err != nil {
			return nil, err
		}
	}
	if command == CommandDeleteStrict {
		instructions = nil
	}
	match := f.Match.oxm
	matchLen := 4 + len(match)
	matchPadded := (matchLen + 7) / 8 * 8
	total := 48 + matchPadded + len(instructions)
	b := make([]byte, total)
	b[0] = 4 // OpenFlow 1.3
	b[1] = of.Type_FlowMod
	binary.BigEndian.PutUint16(b[2:], uint16(total))
	binary.BigEndian.PutUint64(b[8:], f.Cookie)
	binary.BigEndian.PutUint64(b[16:], cookieMask)
	b[24] = f.Table
	b[25] = command
	binary.BigEndian.PutUint16(b[30:], f.Priority)
	binary.BigEndian.PutUint32(b[32:], 0xffffffff) // buffer_id: none
	binary.BigEndian.PutUint32(b[36:], PortAny)    // out_port
	binary.BigEndian.PutUint32(b[40:], 0xffffffff) // out_group: any
	binary.BigEndian.PutUint16(b[48:], 1)          // OFPMT_OXM
	binary.BigEndian.PutUint16(b[50:], uint16(matchLen))
	copy(b[52:], match)
	copy(b[48+matchPadded:], instructions)
	if total > 0xffff {
		return nil, fmt.Errorf("flow-mod too large (%d bytes)", total)
	}
	return &FlowMod{b: b}, nil
}

// Len implements util.Message.
func (m *FlowMod) Len() uint16 { return uint16(len(m.b)) }

// MarshalBinary implements util.Message.
func (m *FlowMod) MarshalBinary() ([]byte, error) { return m.b, nil }

// UnmarshalBinary implements util.Message.
func (m *FlowMod) UnmarshalBinary(b []byte) error { m.b = append(m.b[:0], b...); return nil }

// SetXid sets the OpenFlow transaction id in the header.
func (m *FlowMod) SetXid(xid uint32) { binary.BigEndian.PutUint32(m.b[4:], xid) }
