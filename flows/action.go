package flows

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"

	of "antrea.io/libOpenflow/openflow13"
)

// Action is one step of a flow's instructions. The kinds are those Neutron's pipeline uses;
// each knows its OpenFlow 1.3 encoding (byte for byte what libOpenflow encodes, which the
// tests check; learn goes through libOpenflow) and its ovs-ofctl text.
type Action interface {
	appendText(b *textWriter, names *Names)
	// appendOF appends the OpenFlow 1.3 encoding of the apply-action to b; GotoTable
	// appends nothing (it is an instruction: see Flow.AppendInstructions).
	appendOF(b []byte) ([]byte, error)
}

// OpenFlow 1.3 action types and Nicira extension subtypes dvrflow encodes.
const (
	ofpatOutput       = 0
	ofpatPushVLAN     = 17
	ofpatPopVLAN      = 18
	ofpatSetField     = 25
	ofpatExperimenter = 0xffff

	nxVendorID         = 0x00002320
	nxastRegMove       = 6
	nxastRegLoad       = 7
	nxastResubmitTable = 14
)

// appendNXHeader appends the header of a Nicira action of length n and subtype sub.
func appendNXHeader(b []byte, n, sub uint16) []byte {
	b = binary.BigEndian.AppendUint16(b, ofpatExperimenter)
	b = binary.BigEndian.AppendUint16(b, n)
	b = binary.BigEndian.AppendUint32(b, nxVendorID)
	return binary.BigEndian.AppendUint16(b, sub)
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

func writePort(b *textWriter, p uint32, names *Names) {
	if p >= PortInPort {
		if s, ok := specialPorts[p]; ok {
			b.WriteString(s)
			return
		}
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

func (a Output) appendText(b *textWriter, names *Names) {
	if a.Port < 0xffffff00 {
		b.WriteString("output:")
	}
	writePort(b, a.Port, names)
	if a.Port == PortController {
		b.WriteString(":65535")
	}
}

func (a Output) appendOF(b []byte) ([]byte, error) {
	maxLen := uint16(0)
	if a.Port == PortController {
		maxLen = 0xffff
	}
	b = append(b, 0, ofpatOutput, 0, 16)
	b = binary.BigEndian.AppendUint32(b, a.Port)
	b = binary.BigEndian.AppendUint16(b, maxLen)
	return append(b, 0, 0, 0, 0, 0, 0), nil
}

// Normal is output:NORMAL, the switch's L2 learning.
func Normal() Action { return Output{Port: PortNormal} }

// InPort sends the packet back out of the port it came from.
func InPort() Action { return Output{Port: PortInPort} }

// GotoTable continues processing in a later table (an OpenFlow 1.3 instruction; it must
// be the last action of a flow).
type GotoTable struct{ Table uint8 }

func (a GotoTable) appendText(b *textWriter, names *Names) {
	b.WriteString("goto_table:")
	writeTable(b, a.Table, names)
}

func (a GotoTable) appendOF(b []byte) ([]byte, error) { return b, nil }

// Resubmit is Nicira's resubmit(,table): process the packet in another table, then come back.
type Resubmit struct{ Table uint8 }

func (a Resubmit) appendText(b *textWriter, names *Names) {
	b.WriteString("resubmit(,")
	writeTable(b, a.Table, names)
	b.WriteByte(')')
}

func (a Resubmit) appendOF(b []byte) ([]byte, error) {
	b = appendNXHeader(b, 16, nxastResubmitTable)
	b = binary.BigEndian.AppendUint16(b, 0xfff8) // in_port: OFPP_IN_PORT (the packet's own)
	return append(b, a.Table, 0, 0, 0), nil
}

// PushVLAN pushes an 802.1Q header (EtherType 0x8100 when zero).
type PushVLAN struct{ EtherType uint16 }

func (a PushVLAN) etherType() uint16 {
	if a.EtherType == 0 {
		return 0x8100
	}
	return a.EtherType
}

func (a PushVLAN) appendText(b *textWriter, _ *Names) {
	b.WriteString("push_vlan:")
	writeHexC(b, uint64(a.etherType()))
}

func (a PushVLAN) appendOF(b []byte) ([]byte, error) {
	b = append(b, 0, ofpatPushVLAN, 0, 8)
	b = binary.BigEndian.AppendUint16(b, a.etherType())
	return append(b, 0, 0), nil
}

// PopVLAN removes the outer 802.1Q header (strip_vlan).
type PopVLAN struct{}

func (PopVLAN) appendText(b *textWriter, _ *Names) { b.WriteString("pop_vlan") }
func (PopVLAN) appendOF(b []byte) ([]byte, error) {
	return append(b, 0, ofpatPopVLAN, 0, 8, 0, 0, 0, 0), nil
}

// SetField writes a value into a header field (OpenFlow 1.3 set_field).
type SetField struct {
	Field *Field
	Value []byte
}

func (a SetField) appendText(b *textWriter, names *Names) {
	b.WriteString("set_field:")
	a.Field.formatValue(b, a.Value, nil)
	b.WriteString("->")
	b.WriteString(a.Field.name)
}

func (a SetField) appendOF(b []byte) ([]byte, error) {
	if len(a.Value) != a.Field.bytes {
		return b, fmt.Errorf("set_field %s: value has %d bytes, want %d", a.Field.name, len(a.Value), a.Field.bytes)
	}
	n := (4 + 4 + len(a.Value) + 7) / 8 * 8 // action header, OXM header, value; padded to 8
	b = append(b, 0, ofpatSetField)
	b = binary.BigEndian.AppendUint16(b, uint16(n))
	b = binary.BigEndian.AppendUint32(b, a.Field.header(false))
	b = append(b, a.Value...)
	for i := 8 + len(a.Value); i < n; i++ {
		b = append(b, 0)
	}
	return b, nil
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

func (s Subfield) appendText(b *textWriter) {
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

func (a Move) appendText(b *textWriter, _ *Names) {
	b.WriteString("move:")
	a.Src.appendText(b)
	b.WriteString("->")
	a.Dst.appendText(b)
}

func (a Move) appendOF(b []byte) ([]byte, error) {
	if a.Src.nBits() != a.Dst.nBits() {
		return b, fmt.Errorf("move %s->%s: widths differ", a.Src.Field.nxmName, a.Dst.Field.nxmName)
	}
	b = appendNXHeader(b, 24, nxastRegMove)
	b = binary.BigEndian.AppendUint16(b, uint16(a.Src.nBits()))
	b = binary.BigEndian.AppendUint16(b, uint16(a.Src.Ofs))
	b = binary.BigEndian.AppendUint16(b, uint16(a.Dst.Ofs))
	b = binary.BigEndian.AppendUint32(b, a.Src.Field.nxHeader())
	return binary.BigEndian.AppendUint32(b, a.Dst.Field.nxHeader()), nil
}

// Load writes an immediate value into a subfield (Nicira reg_load).
type Load struct {
	Value uint64
	Dst   Subfield
}

func (a Load) appendText(b *textWriter, _ *Names) {
	b.WriteString("load:")
	writeHexC(b, a.Value)
	b.WriteString("->")
	a.Dst.appendText(b)
}

func (a Load) appendOF(b []byte) ([]byte, error) {
	b = appendNXHeader(b, 24, nxastRegLoad)
	b = binary.BigEndian.AppendUint16(b, uint16(a.Dst.Ofs)<<6|uint16(a.Dst.nBits()-1))
	b = binary.BigEndian.AppendUint32(b, a.Dst.Field.nxHeader())
	return binary.BigEndian.AppendUint64(b, a.Value), nil
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

func (a Learn) appendText(b *textWriter, names *Names) {
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

// appendOF encodes learn through libOpenflow (the one action dvrflow does not encode by
// hand: it is rare, and its spec layout is intricate).
func (a Learn) appendOF(b []byte) ([]byte, error) {
	data, err := a.ofAction().MarshalBinary()
	if err != nil {
		return b, fmt.Errorf("encode learn: %w", err)
	}
	return append(b, data...), nil
}

func (a Learn) ofAction() *of.NXActionLearn {
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
	return l
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
