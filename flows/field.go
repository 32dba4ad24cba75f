package flows

import (
	"encoding/binary"
	"fmt"
	"net"
	"strconv"
)

// Field is one OpenFlow match field (an OXM or NXM TLV) that dvrflow matches on, sets,
// loads, moves or learns. The table below is the single place that knows its wire
// encoding and how ovs-ofctl prints it.
type Field struct {
	id       fieldID
	name     string // OVS's meta-flow name, printed by set_field ("vlan_vid", "eth_src")
	nxmName  string // printed in move/load/learn subfields ("NXM_OF_ETH_SRC")
	class    uint16
	field    uint8
	bytes    int
	bits     int
	format   valueFormat
	maskable bool
	// nxClass/nxField are the NXM header OVS uses for this field inside Nicira actions
	// (move, load, learn) when it has one; OVS re-encodes those actions with it, so we must
	// too for installed and desired bytes to compare equal.
	nxClass uint16
	nxField uint8
	hasNX   bool
}

type fieldID uint8

type valueFormat uint8

const (
	formatDecimal valueFormat = iota
	formatHex
	formatEthernet
	formatIPv4
	formatIPv6
	formatPort
)

const (
	classNXM0  = 0x0000
	classNXM1  = 0x0001
	classOXMOF = 0x8000
)

// The fields dvrflow uses. The order of this list is the canonical order of TLVs in an
// encoded Match (sorted by class, then field number).
var (
	FieldNXMInPort  = &Field{name: "in_port", nxmName: "NXM_OF_IN_PORT", class: classNXM0, field: 0, bytes: 2, bits: 16, format: formatPort}
	FieldVLANTCI    = &Field{name: "vlan_tci", nxmName: "NXM_OF_VLAN_TCI", class: classNXM0, field: 4, bytes: 2, bits: 16, format: formatHex, maskable: true}
	FieldInPort     = &Field{name: "in_port", nxmName: "OXM_OF_IN_PORT", class: classOXMOF, field: 0, bytes: 4, bits: 32, format: formatPort}
	FieldMetadata   = &Field{name: "metadata", nxmName: "OXM_OF_METADATA", class: classOXMOF, field: 2, bytes: 8, bits: 64, format: formatHex, maskable: true}
	FieldEthDst     = &Field{name: "eth_dst", nxmName: "NXM_OF_ETH_DST", class: classOXMOF, field: 3, bytes: 6, bits: 48, format: formatEthernet, maskable: true, nxClass: 0, nxField: 1, hasNX: true}
	FieldEthSrc     = &Field{name: "eth_src", nxmName: "NXM_OF_ETH_SRC", class: classOXMOF, field: 4, bytes: 6, bits: 48, format: formatEthernet, maskable: true, nxClass: 0, nxField: 2, hasNX: true}
	FieldEthType    = &Field{name: "eth_type", nxmName: "NXM_OF_ETH_TYPE", class: classOXMOF, field: 5, bytes: 2, bits: 16, format: formatHex, nxClass: 0, nxField: 3, hasNX: true}
	FieldVLANVID    = &Field{name: "vlan_vid", nxmName: "OXM_OF_VLAN_VID", class: classOXMOF, field: 6, bytes: 2, bits: 13, format: formatDecimal, maskable: true}
	FieldIPProto    = &Field{name: "nw_proto", nxmName: "NXM_OF_IP_PROTO", class: classOXMOF, field: 10, bytes: 1, bits: 8, format: formatDecimal, nxClass: 0, nxField: 6, hasNX: true}
	FieldIPv4Src    = &Field{name: "ip_src", nxmName: "NXM_OF_IP_SRC", class: classOXMOF, field: 11, bytes: 4, bits: 32, format: formatIPv4, maskable: true, nxClass: 0, nxField: 7, hasNX: true}
	FieldIPv4Dst    = &Field{name: "ip_dst", nxmName: "NXM_OF_IP_DST", class: classOXMOF, field: 12, bytes: 4, bits: 32, format: formatIPv4, maskable: true, nxClass: 0, nxField: 8, hasNX: true}
	FieldTCPSrc     = &Field{name: "tcp_src", nxmName: "NXM_OF_TCP_SRC", class: classOXMOF, field: 13, bytes: 2, bits: 16, format: formatDecimal, maskable: true, nxClass: 0, nxField: 9, hasNX: true}
	FieldTCPDst     = &Field{name: "tcp_dst", nxmName: "NXM_OF_TCP_DST", class: classOXMOF, field: 14, bytes: 2, bits: 16, format: formatDecimal, maskable: true, nxClass: 0, nxField: 10, hasNX: true}
	FieldUDPSrc     = &Field{name: "udp_src", nxmName: "NXM_OF_UDP_SRC", class: classOXMOF, field: 15, bytes: 2, bits: 16, format: formatDecimal, maskable: true, nxClass: 0, nxField: 11, hasNX: true}
	FieldUDPDst     = &Field{name: "udp_dst", nxmName: "NXM_OF_UDP_DST", class: classOXMOF, field: 16, bytes: 2, bits: 16, format: formatDecimal, maskable: true, nxClass: 0, nxField: 12, hasNX: true}
	FieldICMPv4Type = &Field{name: "icmp_type", nxmName: "NXM_OF_ICMP_TYPE", class: classOXMOF, field: 19, bytes: 1, bits: 8, format: formatDecimal, nxClass: 0, nxField: 13, hasNX: true}
	FieldICMPv4Code = &Field{name: "icmp_code", nxmName: "NXM_OF_ICMP_CODE", class: classOXMOF, field: 20, bytes: 1, bits: 8, format: formatDecimal, nxClass: 0, nxField: 14, hasNX: true}
	FieldARPOp      = &Field{name: "arp_op", nxmName: "NXM_OF_ARP_OP", class: classOXMOF, field: 21, bytes: 2, bits: 16, format: formatDecimal, nxClass: 0, nxField: 15, hasNX: true}
	FieldARPSPA     = &Field{name: "arp_spa", nxmName: "NXM_OF_ARP_SPA", class: classOXMOF, field: 22, bytes: 4, bits: 32, format: formatIPv4, maskable: true, nxClass: 0, nxField: 16, hasNX: true}
	FieldARPTPA     = &Field{name: "arp_tpa", nxmName: "NXM_OF_ARP_TPA", class: classOXMOF, field: 23, bytes: 4, bits: 32, format: formatIPv4, maskable: true, nxClass: 0, nxField: 17, hasNX: true}
	FieldARPSHA     = &Field{name: "arp_sha", nxmName: "NXM_NX_ARP_SHA", class: classOXMOF, field: 24, bytes: 6, bits: 48, format: formatEthernet, maskable: true, nxClass: 1, nxField: 17, hasNX: true}
	FieldARPTHA     = &Field{name: "arp_tha", nxmName: "NXM_NX_ARP_THA", class: classOXMOF, field: 25, bytes: 6, bits: 48, format: formatEthernet, maskable: true, nxClass: 1, nxField: 18, hasNX: true}
	FieldIPv6Src    = &Field{name: "ipv6_src", nxmName: "NXM_NX_IPV6_SRC", class: classOXMOF, field: 26, bytes: 16, bits: 128, format: formatIPv6, maskable: true, nxClass: 1, nxField: 19, hasNX: true}
	FieldIPv6Dst    = &Field{name: "ipv6_dst", nxmName: "NXM_NX_IPV6_DST", class: classOXMOF, field: 27, bytes: 16, bits: 128, format: formatIPv6, maskable: true, nxClass: 1, nxField: 20, hasNX: true}
	FieldICMPv6Type = &Field{name: "icmpv6_type", nxmName: "NXM_NX_ICMPV6_TYPE", class: classOXMOF, field: 29, bytes: 1, bits: 8, format: formatDecimal, nxClass: 1, nxField: 21, hasNX: true}
	FieldICMPv6Code = &Field{name: "icmpv6_code", nxmName: "NXM_NX_ICMPV6_CODE", class: classOXMOF, field: 30, bytes: 1, bits: 8, format: formatDecimal, nxClass: 1, nxField: 22, hasNX: true}
	FieldNDTarget   = &Field{name: "nd_target", nxmName: "NXM_NX_ND_TARGET", class: classOXMOF, field: 31, bytes: 16, bits: 128, format: formatIPv6, maskable: true, nxClass: 1, nxField: 23, hasNX: true}
	FieldTunnelID   = &Field{name: "tun_id", nxmName: "NXM_NX_TUN_ID", class: classOXMOF, field: 38, bytes: 8, bits: 64, format: formatHex, maskable: true, nxClass: 1, nxField: 16, hasNX: true}
	FieldSCTPSrc    = &Field{name: "sctp_src", nxmName: "OXM_OF_SCTP_SRC", class: classOXMOF, field: 17, bytes: 2, bits: 16, format: formatDecimal, maskable: true}
	FieldSCTPDst    = &Field{name: "sctp_dst", nxmName: "OXM_OF_SCTP_DST", class: classOXMOF, field: 18, bytes: 2, bits: 16, format: formatDecimal, maskable: true}
	// The conntrack and conjunction fields have only a Nicira (NXM class 1) header, which
	// OVS also uses in OpenFlow 1.3 matches and set_field actions.
	FieldConjID      = &Field{name: "conj_id", nxmName: "NXM_NX_CONJ_ID", class: classNXM1, field: 37, bytes: 4, bits: 32, format: formatDecimal}
	FieldCTState     = &Field{name: "ct_state", nxmName: "NXM_NX_CT_STATE", class: classNXM1, field: 105, bytes: 4, bits: 32, format: formatHex, maskable: true}
	FieldCTZone      = &Field{name: "ct_zone", nxmName: "NXM_NX_CT_ZONE", class: classNXM1, field: 106, bytes: 2, bits: 16, format: formatHex}
	FieldCTMark      = &Field{name: "ct_mark", nxmName: "NXM_NX_CT_MARK", class: classNXM1, field: 107, bytes: 4, bits: 32, format: formatHex, maskable: true}
	registerFields   = makeRegisters()
	fieldsByHeader   = indexFields()
	maxRegisterIndex = len(registerFields) - 1
)

// Reg returns the 32-bit Nicira register field regN (0 ≤ N ≤ 15).
func Reg(n int) *Field {
	if n < 0 || n > maxRegisterIndex {
		panic(fmt.Sprintf("flows: register reg%d does not exist", n))
	}
	return registerFields[n]
}

func makeRegisters() []*Field {
	regs := make([]*Field, 16)
	for i := range regs {
		regs[i] = &Field{name: "reg" + strconv.Itoa(i), nxmName: "NXM_NX_REG" + strconv.Itoa(i), class: classNXM1, field: uint8(i), bytes: 4, bits: 32, format: formatHex, maskable: true}
	}
	return regs
}

func indexFields() map[uint32]*Field {
	all := []*Field{FieldNXMInPort, FieldVLANTCI, FieldInPort, FieldMetadata, FieldEthDst, FieldEthSrc, FieldEthType,
		FieldVLANVID, FieldIPProto, FieldIPv4Src, FieldIPv4Dst, FieldTCPSrc, FieldTCPDst, FieldUDPSrc, FieldUDPDst,
		FieldICMPv4Type, FieldICMPv4Code, FieldARPOp, FieldARPSPA, FieldARPTPA, FieldARPSHA, FieldARPTHA,
		FieldIPv6Src, FieldIPv6Dst, FieldICMPv6Type, FieldICMPv6Code, FieldNDTarget, FieldTunnelID,
		FieldSCTPSrc, FieldSCTPDst, FieldConjID, FieldCTState, FieldCTZone, FieldCTMark}
	all = append(all, registerFields...)
	m := make(map[uint32]*Field, len(all))
	for i, f := range all {
		f.id = fieldID(i)
		m[f.key()] = f
	}
	return m
}

// key identifies the field independent of mask and length: class and field number.
func (f *Field) key() uint32 { return uint32(f.class)<<16 | uint32(f.field)<<9 }

// header is the 32-bit OXM/NXM header for this field, with or without mask.
func (f *Field) header(masked bool) uint32 {
	h := f.key() | uint32(f.bytes)
	if masked {
		h = f.key() | 1<<8 | uint32(2*f.bytes)
	}
	return h
}

// nxHeaderField returns class and field number to use in Nicira actions.
func (f *Field) nxHeaderField() (uint16, uint8) {
	if f.hasNX {
		return f.nxClass, f.nxField
	}
	return f.class, f.field
}

// nxHeader is the 32-bit field header used inside Nicira actions (move, load): the NXM
// class and field number when the field has one, its length, no mask.
func (f *Field) nxHeader() uint32 {
	class, field := f.nxHeaderField()
	return uint32(class)<<16 | uint32(field)<<9 | uint32(f.bytes)
}

// Name is the field's name as OVS prints it in set_field actions.
func (f *Field) Name() string { return f.name }

// formatValue appends v (and mask m, nil when exact) the way OVS's mf_format does.
func (f *Field) formatValue(b *textWriter, v, m []byte) {
	if m != nil && allOnes(m) {
		m = nil
	}
	switch f.format {
	case formatEthernet:
		b.WriteString(net.HardwareAddr(v).String())
		if m != nil {
			b.WriteByte('/')
			b.WriteString(net.HardwareAddr(m).String())
		}
	case formatIPv4:
		writeIPv4Masked(b, v, m)
	case formatIPv6:
		writeIPv6Masked(b, v, m)
	case formatPort:
		if m == nil {
			writePort(b, uint32(beUint(v)), nil)
			return
		}
		fallthrough // a masked port prints as a decimal integer, like OVS
	case formatDecimal:
		b.WriteString(strconv.FormatUint(beUint(v), 10))
		if m != nil {
			b.WriteByte('/')
			writeHexBytes(b, m)
		}
	case formatHex:
		writeHexBytes(b, v)
		if m != nil {
			b.WriteByte('/')
			writeHexBytes(b, m)
		}
	}
}

// writeHexBytes is OVS's ds_put_hex: "0x" and the value without leading zero bytes, or "0".
func writeHexBytes(b *textWriter, v []byte) {
	printed := false
	for _, c := range v {
		if c == 0 && !printed {
			continue
		}
		if !printed {
			b.WriteString("0x")
			b.WriteString(strconv.FormatUint(uint64(c), 16))
			printed = true
			continue
		}
		const digits = "0123456789abcdef"
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0xf])
	}
	if !printed {
		b.WriteByte('0')
	}
}

// writeHexC prints v like C's "%#x": "0x2a", but plain "0" for zero.
func writeHexC(b *textWriter, v uint64) {
	if v == 0 {
		b.WriteByte('0')
		return
	}
	b.WriteString("0x")
	b.WriteString(strconv.FormatUint(v, 16))
}

func writeIPv4Masked(b *textWriter, v, m []byte) {
	b.WriteString(net.IP(v).To4().String())
	if m == nil || allOnes(m) {
		return
	}
	if ones, bits := net.IPMask(m).Size(); bits != 0 {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(ones))
		return
	}
	b.WriteByte('/')
	b.WriteString(net.IP(m).To4().String())
}

func writeIPv6Masked(b *textWriter, v, m []byte) {
	b.WriteString(net.IP(v).String())
	if m == nil || allOnes(m) {
		return
	}
	if ones, bits := net.IPMask(m).Size(); bits != 0 {
		b.WriteByte('/')
		b.WriteString(strconv.Itoa(ones))
		return
	}
	b.WriteByte('/')
	b.WriteString(net.IP(m).String())
}

func allOnes(m []byte) bool {
	for _, c := range m {
		if c != 0xff {
			return false
		}
	}
	return true
}

func allZeros(m []byte) bool {
	for _, c := range m {
		if c != 0 {
			return false
		}
	}
	return true
}

func beUint(v []byte) uint64 {
	var x uint64
	for _, c := range v {
		x = x<<8 | uint64(c)
	}
	return x
}

func putBE(v uint64, n int) []byte {
	var a [8]byte
	binary.BigEndian.PutUint64(a[:], v)
	return a[8-n:]
}
