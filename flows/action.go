package flows

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"

	of "antrea.io/libOpenflow/openflow13"
)

// Action is one step of a flow's instructions. The kinds are those Neutron's pipeline uses;
// each knows its OpenFlow 1.3 encoding (through libOpenflow) and its ovs-ofctl text.
type Action interface {
	appendText(b *strings.Builder, names *Names)
	// ofAction returns the apply-action; GotoTable returns nil (it is an instruction).
	ofAction() (of.Action, error)
}

// Special OpenFlow 1.3 port numbers.
const (
	PortInPort     uint32 = 0xfffffff8
	PortTable      uint32 = 0xfffffff9
	PortNormal     uint32 = 0xfffffffa
	PortFlood      uint32 = 0xfffffffb
	PortAll        uint32 = 0xfffffffc
	PortController uint32 = 0xfffffffd
	PortLocal      uint32 = 0xfffffffe
	PortAny        uint32 = 0xffffffff
)

var specialPorts = map[uint32]string{
	PortInPort: "IN_PORT", PortTable: "TABLE", PortNormal: "NORMAL", PortFlood: "FLOOD",
	PortAll: "ALL", PortController: "CONTROLLER", PortLocal: "LOCAL", PortAny: "ANY",
}

func writePort(b *strings.Builder, p uint32, names *Names) {
	if s, ok := specialPorts[p]; ok {
		b.WriteString(s)
		return
	}
	if names != nil {
		if n, ok := names.Ports[p]; ok {
			b.WriteString(n)
			return
		}
	}
	b.WriteString(strconv.FormatUint(uint64(p), 10))
}

// Output sends the packet to an OpenFlow port (a number, or PortNormal, PortInPort, ...).
type Output struct{ Port uint32 }

func (a Output) appendText(b *strings.Builder, names *Names) {
	if a.Port < 0xffffff00 {
		b.WriteString("output:")
	}
	writePort(b, a.Port, names)
	if a.Port == PortController {
		b.WriteString(":65535")
	}
}

func (a Output) ofAction() (of.Action, error) {
	o := of.NewActionOutput(a.Port)
	o.MaxLen = 0
	if a.Port == PortController {
		o.MaxLen = 0xffff
	}
	return o, nil
}

// Normal is output:NORMAL, the switch's L2 learning.
func Normal() Action { return Output{Port: PortNormal} }

// InPort sends the packet back out of the port it came from.
func InPort() Action { return Output{Port: PortInPort} }

// GotoTable continues processing in a later table (an OpenFlow 1.3 instruction; it must
// be the last action of a flow).
type GotoTable struct{ Table uint8 }

func (a GotoTable) appendText(b *strings.Builder, names *Names) {
	b.WriteString("goto_table:")
	writeTable(b, a.Table, names)
}

func (a GotoTable) ofAction() (of.Action, error) { return nil, nil }

// Resubmit is Nicira's resubmit(,table): process the packet in another table, then come back.
type Resubmit struct{ Table uint8 }

func (a Resubmit) appendText(b *strings.Builder, names *Names) {
	b.WriteString("resubmit(,")
	writeTable(b, a.Table, names)
	b.WriteByte(')')
}

func (a Resubmit) ofAction() (of.Action, error) {
	return of.NewNXActionResubmitTableAction(0xfff8, a.Table), nil
}

// PushVLAN pushes an 802.1Q header (EtherType 0x8100 when zero).
type PushVLAN struct{ EtherType uint16 }

func (a PushVLAN) etherType() uint16 {
	if a.EtherType == 0 {
		return 0x8100
	}
	return a.EtherType
}

func (a PushVLAN) appendText(b *strings.Builder, _ *Names) {
	b.WriteString("push_vlan:")
	writeHexC(b, uint64(a.etherType()))
}

func (a PushVLAN) ofAction() (of.Action, error) { return of.NewActionPushVlan(a.etherType()), nil }

// PopVLAN removes the outer 802.1Q header (strip_vlan).
type PopVLAN struct{}

func (PopVLAN) appendText(b *strings.Builder, _ *Names) { b.WriteString("pop_vlan") }
func (PopVLAN) ofAction() (of.Action, error)            { return of.NewActionPopVlan(), nil }

// SetField writes a value into a header field (OpenFlow 1.3 set_field).
type SetField struct {
	Field *Field
	Value []byte
}

func (a SetField) appendText(b *strings.Builder, names *Names) {
	b.WriteString("set_field:")
	a.Field.formatValue(b, a.Value, nil)
	b.WriteString("->")
	b.WriteString(a.Field.name)
}

func (a SetField) ofAction() (of.Action, error) {
	if len(a.Value) != a.Field.bytes {
		return nil, fmt.Errorf("set_field %s: value has %d bytes, want %d", a.Field.name, len(a.Value), a.Field.bytes)
	}
	return of.NewActionSetField(matchField(a.Field, a.Value)), nil
}

// SetVLANVID rewrites the VLAN id (mod_vlan_vid; OVS prints set_field:4096+vid->vlan_vid).
func SetVLANVID(vid uint16) Action {
	return SetField{Field: FieldVLANVID, Value: putBE(uint64(vid)|ofpVIDPresent, 2)}
}

// SetEthSrc rewrites the source MAC (mod_dl_src).
func SetEthSrc(mac net.HardwareAddr) Action { return SetField{Field: FieldEthSrc, Value: mac6(mac)} }

// SetEthDst rewrites the destination MAC (mod_dl_dst).
func SetEthDst(mac net.HardwareAddr) Action { return SetField{Field: FieldEthDst, Value: mac6(mac)} }

// SetTunnelID sets the tunnel key (set_tunnel).
func SetTunnelID(id uint64) Action { return SetField{Field: FieldTunnelID, Value: putBE(id, 8)} }

// SetARPOp sets the ARP opcode.
func SetARPOp(op uint16) Action { return SetField{Field: FieldARPOp, Value: putBE(uint64(op), 2)} }

// SetARPSHA sets the ARP sender hardware address.
func SetARPSHA(mac net.HardwareAddr) Action { return SetField{Field: FieldARPSHA, Value: mac6(mac)} }

// SetARPSPA sets the ARP sender protocol address.
func SetARPSPA(ip netip.Addr) Action {
	a := ip.As4()
	return SetField{Field: FieldARPSPA, Value: a[:]}
}

// Subfield is a bit range of a field, as used by move, load and learn ("NXM_NX_REG6[0..15]").
type Subfield struct {
	Field *Field
	Ofs   int
	Bits  int // 0 means the whole field
}

// Whole is the subfield covering all of f.
func Whole(f *Field) Subfield { return Subfield{Field: f, Bits: f.bits} }

func (s Subfield) nBits() int {
	if s.Bits == 0 {
		return s.Field.bits
	}
	return s.Bits
}

func (s Subfield) appendText(b *strings.Builder) {
	b.WriteString(s.Field.nxmName)
	n := s.nBits()
	switch {
	case s.Ofs == 0 && n == s.Field.bits:
		b.WriteString("[]")
	case n == 1:
		fmt.Fprintf(b, "[%d]", s.Ofs)
	default:
		fmt.Fprintf(b, "[%d..%d]", s.Ofs, s.Ofs+n-1)
	}
}

// Move copies a subfield to another (Nicira reg_move).
type Move struct{ Src, Dst Subfield }

func (a Move) appendText(b *strings.Builder, _ *Names) {
	b.WriteString("move:")
	a.Src.appendText(b)
	b.WriteString("->")
	a.Dst.appendText(b)
}

func (a Move) ofAction() (of.Action, error) {
	if a.Src.nBits() != a.Dst.nBits() {
		return nil, fmt.Errorf("move %s->%s: widths differ", a.Src.Field.nxmName, a.Dst.Field.nxmName)
	}
	return of.NewNXActionRegMove(uint16(a.Src.nBits()), uint16(a.Src.Ofs), uint16(a.Dst.Ofs),
		headerField(a.Src.Field), headerField(a.Dst.Field)), nil
}

// Load writes an immediate value into a subfield (Nicira reg_load).
type Load struct {
	Value uint64
	Dst   Subfield
}

func (a Load) appendText(b *strings.Builder, _ *Names) {
	b.WriteString("load:")
	writeHexC(b, a.Value)
	b.WriteString("->")
	a.Dst.appendText(b)
}

func (a Load) ofAction() (of.Action, error) {
	ofsNbits := uint16(a.Dst.Ofs)<<6 | uint16(a.Dst.nBits()-1)
	return of.NewNXActionRegLoad(ofsNbits, headerField(a.Dst.Field), a.Value), nil
}

// LearnSpec is one element of a learn action: a match, a load or an output of the learned flow.
type LearnSpec struct {
	Kind LearnKind
	Dst  Subfield // the learned flow's match field / load destination
	Src  Subfield // source field in the packet (Field nil when Value is used)
	// Value is the immediate (big-endian, ceil(bits/8) bytes) when Src.Field is nil.
	Value []byte
}

// LearnKind says what a LearnSpec contributes to the learned flow.
type LearnKind uint8

// The learn spec kinds.
const (
	LearnMatch LearnKind = iota
	LearnLoad
	LearnOutput
)

// Learn adds or refreshes a flow from the packet being processed (Nicira learn).
type Learn struct {
	Table       uint8
	IdleTimeout uint16
	HardTimeout uint16
	Priority    uint16
	Cookie      uint64
	Specs       []LearnSpec
}

func (a Learn) appendText(b *strings.Builder, names *Names) {
	b.WriteString("learn(table=")
	writeTable(b, a.Table, names)
	if a.IdleTimeout != 0 {
		fmt.Fprintf(b, ",idle_timeout=%d", a.IdleTimeout)
	}
	if a.HardTimeout != 0 {
		fmt.Fprintf(b, ",hard_timeout=%d", a.HardTimeout)
	}
	if a.Priority != 0x8000 {
		fmt.Fprintf(b, ",priority=%d", a.Priority)
	}
	if a.Cookie != 0 {
		b.WriteString(",cookie=")
		writeHexC(b, a.Cookie)
	}
	for _, s := range a.Specs {
		b.WriteByte(',')
		switch {
		case s.Kind == LearnMatch && s.Src.Field == nil:
			if s.Dst.Ofs == 0 && s.Dst.nBits() == s.Dst.Field.bits {
				b.WriteString(s.Dst.Field.name)
				b.WriteByte('=')
				v := make([]byte, s.Dst.Field.bytes)
				copy(v[len(v)-len(s.Value):], s.Value)
				s.Dst.Field.formatValue(b, v, nil)
			} else {
				s.Dst.appendText(b)
				b.WriteByte('=')
				writeHexBytes(b, s.Value)
			}
		case s.Kind == LearnMatch:
			s.Dst.appendText(b)
			if s.Src.Field != s.Dst.Field || s.Src.Ofs != s.Dst.Ofs {
				b.WriteByte('=')
				s.Src.appendText(b)
			}
		case s.Kind == LearnLoad && s.Src.Field == nil:
			b.WriteString("load:")
			writeHexBytes(b, s.Value)
			b.WriteString("->")
			s.Dst.appendText(b)
		case s.Kind == LearnLoad:
			b.WriteString("load:")
			s.Src.appendText(b)
			b.WriteString("->")
			s.Dst.appendText(b)
		case s.Kind == LearnOutput:
			b.WriteString("output:")
			s.Src.appendText(b)
		}
	}
	b.WriteByte(')')
}

func (a Learn) ofAction() (of.Action, error) {
	l := of.NewNXActionLearn()
	l.TableID, l.IdleTimeout, l.HardTimeout, l.Priority, l.Cookie = a.Table, a.IdleTimeout, a.HardTimeout, a.Priority, a.Cookie
	for _, s := range a.Specs {
		var n int
		if s.Src.Field != nil {
			n = s.Src.nBits()
		} else {
			n = s.Dst.nBits()
		}
		spec := &of.NXLearnSpec{}
		switch {
		case s.Kind == LearnMatch && s.Src.Field == nil:
			spec.Header = of.NewLearnHeaderMatchFromValue(uint16(n))
		case s.Kind == LearnMatch:
			spec.Header = of.NewLearnHeaderMatchFromField(uint16(n))
		case s.Kind == LearnLoad && s.Src.Field == nil:
			spec.Header = of.NewLearnHeaderLoadFromValue(uint16(n))
		case s.Kind == LearnLoad:
			spec.Header = of.NewLearnHeaderLoadFromField(uint16(n))
		default:
			spec.Header = of.NewLearnHeaderOutputFromField(uint16(n))
		}
		if s.Src.Field != nil {
			spec.SrcField = &of.NXLearnSpecField{Field: headerField(s.Src.Field), Ofs: uint16(s.Src.Ofs)}
		} else {
			// The immediate is padded to a whole number of 16-bit words, right-aligned.
			width := 2 * ((n + 15) / 16)
			v := make([]byte, width)
			copy(v[width-min(len(s.Value), width):], s.Value[max(0, len(s.Value)-width):])
			spec.SrcValue = v
		}
		if s.Kind != LearnOutput {
			spec.DstField = &of.NXLearnSpecField{Field: headerField(s.Dst.Field), Ofs: uint16(s.Dst.Ofs)}
		}
		l.LearnSpecs = append(l.LearnSpecs, spec)
	}
	return l, nil
}

// rawValue is a util.Message holding preformatted field bytes.
type rawValue []byte

func (r *rawValue) Len() uint16                    { return uint16(len(*r)) }
func (r *rawValue) MarshalBinary() ([]byte, error) { return *r, nil }
func (r *rawValue) UnmarshalBinary(b []byte) error { *r = append((*r)[:0], b...); return nil }

func matchField(f *Field, value []byte) of.MatchField {
	v := rawValue(append([]byte(nil), value...))
	return of.MatchField{Class: f.class, Field: f.field, Length: uint8(f.bytes), Value: &v}
}

// headerField is the field header used inside Nicira actions (move, load, learn).
func headerField(f *Field) *of.MatchField {
	mf := matchField(f, make([]byte, f.bytes))
	mf.Class, mf.Field = f.nxHeaderField()
	return &mf
}
