package flows

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// The Nicira actions of connection tracking and conjunctive matches: what Neutron's
// Open vSwitch firewall writes (tables 71–94 of br-int).

// Nicira extension subtypes of these actions.
const (
	nxastConjunction = 34
	nxastCT          = 35
	nxastCTClear     = 43
)

// nxCTRecircNone is the recirc_table of a ct action that does not recirculate.
const nxCTRecircNone = 0xff

// nxCTFlagCommit is NX_CT_F_COMMIT.
const nxCTFlagCommit = 1

// CT is Nicira's conntrack action, ct(...): it sends the packet through the connection
// tracker in a zone, optionally commits the connection (Commit) with the Exec actions
// applied to it (only set_field to ct_mark is supported, as Neutron uses it), and
// optionally recirculates a copy of the packet, its ct_state now known, to table Table
// (Recirc). Without Recirc the packet continues with the next action (ct_state unchanged).
//
// The zone is the bits Zone of a field (at most 16 of them; Neutron: NXM_NX_REG6[0..15],
// the network's local VLAN) or, when Zone.Field is nil, the immediate ZoneImm.
type CT struct {
	Commit  bool
	Recirc  bool
	Table   uint8 // the table to recirculate to, when Recirc
	Zone    Subfield
	ZoneImm uint16
	Exec    []Action
}

// CTRecirc is ct(table=T,zone=NXM_NX_REGn[0..15]): track the packet in the zone held by
// the low 16 bits of register zoneReg and continue in table (with ct_state set).
func CTRecirc[T BridgeTable](table T, zoneReg int) Action {
	return CT{Recirc: true, Table: uint8(table), Zone: Subfield{Field: Reg(zoneReg), Bits: 16}}
}

// CTCommit is ct(commit,zone=NXM_NX_REGn[0..15][,exec(...)]): commit the packet's
// connection in the zone held by the low 16 bits of register zoneReg, applying exec to it
// (e.g. SetField{Field: FieldCTMark, Value: ...}); the packet then goes on with the next
// action.
func CTCommit(zoneReg int, exec ...Action) Action {
	return CT{Commit: true, Zone: Subfield{Field: Reg(zoneReg), Bits: 16}, Exec: exec}
}

func (a CT) appendText(b *textWriter, names *Names) {
	b.WriteString("ct(")
	start := b.Len()
	if a.Commit {
		b.WriteString("commit,")
	}
	if a.Recirc {
		b.WriteString("table=")
		writeTable(b, a.Table, names)
		b.WriteByte(',')
	}
	if a.Zone.Field != nil {
		b.WriteString("zone=")
		a.Zone.appendText(b)
		b.WriteByte(',')
	} else if a.ZoneImm != 0 {
		b.WriteString("zone=")
		b.buf = strconv.AppendUint(b.buf, uint64(a.ZoneImm), 10)
		b.WriteByte(',')
	}
	if len(a.Exec) > 0 {
		b.WriteString("exec(")
		for i, e := range a.Exec {
			if i > 0 {
				b.WriteByte(',')
			}
			e.appendText(b, names)
		}
		b.WriteString("),")
	}
	if n := b.Len(); n > start && b.buf[n-1] == ',' {
		b.buf = b.buf[:n-1]
	}
	b.WriteByte(')')
}

// appendOF encodes struct nx_action_conntrack: flags, zone_src (the zone field's NXM
// header, 0 for an immediate zone), zone_ofs_nbits or zone_imm, recirc_table, 3 bytes of
// padding, alg (0: none), then the exec actions.
func (a CT) appendOF(b []byte) ([]byte, error) {
	start := len(b)
	b = appendNXHeader(b, 0, nxastCT) // length set below
	var flags uint16
	if a.Commit {
		flags |= nxCTFlagCommit
	}
	b = binary.BigEndian.AppendUint16(b, flags)
	if f := a.Zone.Field; f != nil {
		n := a.Zone.nBits()
		if n > 16 || a.Zone.Ofs < 0 || a.Zone.Ofs+n > f.bits {
			return b[:start], fmt.Errorf("ct zone %s[%d..%d]: a zone is 16 bits of a field", f.nxmName, a.Zone.Ofs, a.Zone.Ofs+n-1)
		}
		b = binary.BigEndian.AppendUint32(b, f.nxHeader())
		b = binary.BigEndian.AppendUint16(b, uint16(a.Zone.Ofs)<<6|uint16(n-1))
	} else {
		b = binary.BigEndian.AppendUint32(b, 0)
		b = binary.BigEndian.AppendUint16(b, a.ZoneImm)
	}
	table := uint8(nxCTRecircNone)
	if a.Recirc {
		if a.Table == nxCTRecircNone {
			return b[:start], fmt.Errorf("ct(table=%d): not a table", a.Table)
		}
		table = a.Table
	}
	b = append(b, table, 0, 0, 0, 0, 0) // recirc_table, pad[3], alg
	for _, e := range a.Exec {
		sf, ok := e.(SetField)
		if !ok || sf.Field != FieldCTMark {
			var w textWriter
			e.appendText(&w, nil)
			return b[:start], fmt.Errorf("ct exec(%s): only set_field to ct_mark is supported", w.String())
		}
		var err error
		if b, err = sf.appendOF(b); err != nil {
			return b[:start], err
		}
	}
	if len(b)-start > 0xffff {
		return b[:start], fmt.Errorf("ct: %d bytes of actions", len(b)-start)
	}
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	return b, nil
}

// CTClear is ct_clear: forget the packet's conntrack state (ct_state and the rest), so
// that it can be tracked again in another zone.
type CTClear struct{}

func (CTClear) appendText(b *textWriter, _ *Names) { b.WriteString("ct_clear") }

func (CTClear) appendOF(b []byte) ([]byte, error) {
	b = appendNXHeader(b, 16, nxastCTClear)
	return append(b, 0, 0, 0, 0, 0, 0), nil
}

// Conjunction is conjunction(ID,Clause/NClauses): the flow is clause Clause (1-based, as
// printed) of the NClauses-clause conjunctive match ID; a packet that matches a flow of
// every clause of ID continues with the flows matching conj_id=ID (Match.ConjID). A flow's
// conjunction actions must be its only actions.
type Conjunction struct {
	ID       uint32
	Clause   uint8
	NClauses uint8
}

func (a Conjunction) appendText(b *textWriter, _ *Names) {
	b.WriteString("conjunction(")
	b.buf = strconv.AppendUint(b.buf, uint64(a.ID), 10)
	b.WriteByte(',')
	b.buf = strconv.AppendUint(b.buf, uint64(a.Clause), 10)
	b.WriteByte('/')
	b.buf = strconv.AppendUint(b.buf, uint64(a.NClauses), 10)
	b.WriteByte(')')
}

// appendOF encodes struct nx_action_conjunction: clause (0-based on the wire), n_clauses, id.
func (a Conjunction) appendOF(b []byte) ([]byte, error) {
	if a.NClauses < 2 || a.NClauses > 64 || a.Clause < 1 || a.Clause > a.NClauses {
		return b, fmt.Errorf("conjunction(%d,%d/%d): want 1 ≤ clause ≤ n_clauses, 2 ≤ n_clauses ≤ 64", a.ID, a.Clause, a.NClauses)
	}
	b = appendNXHeader(b, 16, nxastConjunction)
	b = append(b, a.Clause-1, a.NClauses)
	return binary.BigEndian.AppendUint32(b, a.ID), nil
}
