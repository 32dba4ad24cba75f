package flows

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	of "antrea.io/libOpenflow/openflow13"
)

// libOpenflowInstructions encodes f's instructions through libOpenflow, the way dvrflow did
// before it encoded them by hand: the reference the hand encoder must equal byte for byte
// (and that the switch accepts and echoes back, see TestSyncLandsExactlyAndIsIdempotent).
func libOpenflowInstructions(f Flow) ([]byte, error) {
	var out []byte
	apply := of.NewInstrApplyActions()
	var gotoTable *GotoTable
	for i, a := range f.Actions {
		if g, ok := a.(GotoTable); ok {
			if i != len(f.Actions)-1 {
				return nil, fmt.Errorf("goto_table:%d must be the last action", g.Table)
			}
			gotoTable = &g
			continue
		}
		act, err := libOpenflowAction(a)
		if err != nil {
			return nil, err
		}
		if err := apply.AddAction(act, false); err != nil {
			return nil, err
		}
	}
	if len(apply.Actions) > 0 {
		b, err := apply.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	if gotoTable != nil {
		b, err := of.NewInstrGotoTable(gotoTable.Table).MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	return out, nil
}

func libOpenflowAction(a Action) (of.Action, error) {
	switch a := a.(type) {
	case Output:
		o := of.NewActionOutput(a.Port)
		o.MaxLen = 0
		if a.Port == PortController {
			o.MaxLen = 0xffff
		}
		return o, nil
	case Resubmit:
		return of.NewNXActionResubmitTableAction(0xfff8, a.Table), nil
	case PushVLAN:
		return of.NewActionPushVlan(a.etherType()), nil
	case PopVLAN:
		return of.NewActionPopVlan(), nil
	case SetField:
		if len(a.Value) != a.Field.bytes {
			return nil, fmt.Errorf("set_field %s: value has %d bytes, want %d", a.Field.name, len(a.Value), a.Field.bytes)
		}
		return of.NewActionSetField(matchField(a.Field, a.Value)), nil
	case Move:
		if a.Src.nBits() != a.Dst.nBits() {
			return nil, fmt.Errorf("move: widths differ")
		}
		return of.NewNXActionRegMove(uint16(a.Src.nBits()), uint16(a.Src.Ofs), uint16(a.Dst.Ofs),
			headerField(a.Src.Field), headerField(a.Dst.Field)), nil
	case Load:
		ofsNbits := uint16(a.Dst.Ofs)<<6 | uint16(a.Dst.nBits()-1)
		return of.NewNXActionRegLoad(ofsNbits, headerField(a.Dst.Field), a.Value), nil
	case Learn:
		return a.ofAction(), nil
	case CT:
		ct := of.NewNXActionConnTrack()
		if a.Commit {
			ct.Commit()
		}
		if a.Recirc {
			ct.Table(a.Table)
		}
		if a.Zone.Field != nil {
			ct.ZoneRange(headerField(a.Zone.Field), of.NewNXRangeByOfsNBits(a.Zone.Ofs, a.Zone.nBits()))
		} else {
			ct.ZoneImm(a.ZoneImm)
		}
		for _, e := range a.Exec {
			sub, err := libOpenflowAction(e)
			if err != nil {
				return nil, err
			}
			ct.AddAction(sub)
		}
		return ct, nil
	case Conjunction:
		return of.NewNXActionConjunction(a.Clause-1, a.NClauses, a.ID), nil
	case CTClear:
		// libOpenflow has no ct_clear: a Nicira header padded to 16 bytes.
		h := of.NewNxActionHeader(of.NXAST_CT_CLEAR)
		h.Length = 16
		return &paddedNXAction{h}, nil
	}
	return nil, fmt.Errorf("no libOpenflow encoding for %T", a)
}

// TestInstructionsMatchLibOpenflow: the hand encoder produces libOpenflow's bytes for every
// action kind, field and shape the model has, alone and appended after other bytes.
func TestInstructionsMatchLibOpenflow(t *testing.T) {
	fs := manyFlows(400, 0x1)
	fs = append(fs,
		Flow{Actions: []Action{Output{Port: PortController}}},
		Flow{Actions: []Action{Output{Port: PortFlood}, Output{Port: 7}, PushVLAN{EtherType: 0x88a8}}},
		Flow{Actions: []Action{SetTunnelID(0x1234567890), SetARPOp(1), SetEthSrc(mac("fa:16:3e:01:02:03")), SetVLANVID(4094)}},
		Flow{Actions: []Action{Load{Value: 0xdeadbeef, Dst: Subfield{Field: FieldTunnelID, Ofs: 8, Bits: 32}},
			Move{Src: Subfield{Field: Reg(3), Ofs: 4, Bits: 8}, Dst: Subfield{Field: Reg(9), Ofs: 16, Bits: 8}}}},
		Flow{Actions: []Action{Resubmit{Table: 255}, GotoTable{Table: 200}}},
	)
	prefix := []byte("prefix")
	for _, f := range fs {
		want, err := libOpenflowInstructions(f)
		if err != nil {
			t.Fatalf("%s: libOpenflow: %v", f, err)
		}
		got, err := f.Instructions()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s:\n got  %x\n want %x", f, got, want)
		}
		appended, err := f.AppendInstructions(append([]byte(nil), prefix...))
		if err != nil || !bytes.Equal(appended, append(append([]byte(nil), prefix...), want...)) {
			t.Errorf("%s: AppendInstructions after a prefix = %x, %v", f, appended, err)
		}
	}
}

// TestInstructionsErrors: malformed action lists fail and leave the buffer as it was.
func TestInstructionsErrors(t *testing.T) {
	for _, acts := range [][]Action{
		{GotoTable{Table: 3}, Output{Port: 1}},
		{GotoTable{Table: 3}, GotoTable{Table: 4}},
		{SetField{Field: FieldEthSrc, Value: []byte{1, 2}}},
		{Move{Src: Whole(FieldEthSrc), Dst: Whole(Reg(1))}},
	} {
		f := Flow{Actions: acts}
		if _, err := libOpenflowInstructions(f); err == nil {
			t.Fatalf("%v: the reference encoder accepts it; pick a bad one", acts)
		}
		got, err := f.AppendInstructions([]byte("keep"))
		if err == nil {
			t.Errorf("%v: no error", acts)
		}
		if string(got) != "keep" {
			t.Errorf("%v: buffer = %q after the error, want it unchanged", acts, got)
		}
	}
}

// BenchmarkAppendInstructions: encoding one flow's instructions into a reused buffer.
func BenchmarkAppendInstructions(b *testing.B) {
	var fs []Flow
	for _, f := range everyKind(1) {
		if !strings.Contains(f.String(), "learn(") {
			fs = append(fs, f)
		}
	}
	var buf []byte
	b.ReportAllocs()
	for b.Loop() {
		for _, f := range fs {
			buf, _ = f.AppendInstructions(buf[:0])
		}
	}
}

// paddedNXAction is a bare Nicira action header padded to its Length (ct_clear).
type paddedNXAction struct{ *of.NXActionHeader }

func (a *paddedNXAction) Len() uint16 { return a.Length }

func (a *paddedNXAction) MarshalBinary() ([]byte, error) {
	h, err := a.NXActionHeader.MarshalBinary()
	return append(h, make([]byte, int(a.Length)-len(h))...), err
}
