package flows

import (
	"strconv"
)

// textWriter accumulates rendered text in a byte slice: rendering appends without copying
// what was written, can reuse one buffer for many flows (the sort does) and can drop a
// trailing separator.
type textWriter struct{ buf []byte }

func (w *textWriter) WriteString(s string) { w.buf = append(w.buf, s...) }

// WriteByte appends c; it never fails.
func (w *textWriter) WriteByte(c byte) error { w.buf = append(w.buf, c); return nil }

// Write appends p (for fmt.Fprintf); it never fails.
func (w *textWriter) Write(p []byte) (int, error) { w.buf = append(w.buf, p...); return len(p), nil }

func (w *textWriter) Len() int { return len(w.buf) }

func (w *textWriter) String() string { return string(w.buf) }

// maxParsedTLVs is how many match fields fit in the fixed array appendText parses into;
// longer matches (not made by dvrflow) spill to the heap.
const maxParsedTLVs = 16

// hexFields are the fields match_format prints as name=0xVALUE[/0xMASK], in its order:
// the registers, tun_id, metadata.
var hexFields = append(append([]*Field(nil), registerFields...), FieldTunnelID, FieldMetadata)

// appendText renders the match (and the priority, which ovs-ofctl prints with it) in the
// field order of OVS's match_format(), so the text equals `ovs-ofctl dump-flows` output.
func (m Match) appendText(b *textWriter, priority uint16, names *Names) {
	start := b.Len()
	put := func(s string) { b.WriteString(s); b.WriteByte(',') }
	if priority != 0x8000 {
		b.WriteString("priority=")
		b.buf = strconv.AppendUint(b.buf, uint64(priority), 10)
		b.WriteByte(',')
	}
	var arr [maxParsedTLVs]tlv
	tlvs, _ := appendTLVs(arr[:0], m.oxm)
	get := func(f *Field) *tlv {
		k := f.key()
		for i := range tlvs {
			if tlvs[i].key() == k {
				return &tlvs[i]
			}
		}
		return nil
	}
	field := func(name string, t *tlv) {
		if t == nil {
			return
		}
		b.WriteString(name)
		b.WriteByte('=')
		t.field.formatValue(b, t.value, t.mask)
		b.WriteByte(',')
	}

	ethT, protoT := get(FieldEthType), get(FieldIPProto)
	var ethType, proto uint64
	if ethT != nil {
		ethType = beUint(ethT.value)
	}
	if protoT != nil {
		proto = beUint(protoT.value)
	}
	// match_format prints these before the protocol keyword.
	if t := get(FieldConjID); t != nil {
		b.WriteString("conj_id=")
		b.buf = strconv.AppendUint(b.buf, beUint(t.value), 10)
		b.WriteByte(',')
	}
	if t := get(FieldCTState); t != nil {
		appendCTState(b, t)
	}
	if t := get(FieldCTZone); t != nil {
		appendBE16Masked(b, "ct_zone", t)
	}
	if t := get(FieldCTMark); t != nil {
		appendHexMasked(b, "ct_mark", t)
	}
	keyword, skipProto := protocolKeyword(ethT != nil, ethType, protoT != nil, proto)
	skipType := keyword != ""
	if skipType {
		put(keyword)
	}
	for _, f := range hexFields {
		if t := get(f); t != nil {
			appendHexMasked(b, f.name, t)
		}
	}
	if t := get(FieldInPort); t != nil {
		b.WriteString("in_port=")
		writePort(b, uint32(beUint(t.value)), names)
		b.WriteByte(',')
	} else if t := get(FieldNXMInPort); t != nil {
		b.WriteString("in_port=")
		writePort(b, nxPortToOF13(uint16(beUint(t.value))), names)
		b.WriteByte(',')
	}
	if t := get(FieldVLANVID); t != nil {
		appendVLAN(b, uint16(beUint(t.value)), t.mask)
	} else if t := get(FieldVLANTCI); t != nil {
		appendTCI(b, uint16(beUint(t.value)), t.mask)
	}
	field("dl_src", get(FieldEthSrc))
	field("dl_dst", get(FieldEthDst))
	if !skipType && ethT != nil {
		b.WriteString("dl_type=0x")
		appendHex0(b, ethType, 4)
		b.WriteByte(',')
	}
	switch ethType {
	case EthTypeIPv6:
		field("ipv6_src", get(FieldIPv6Src))
		field("ipv6_dst", get(FieldIPv6Dst))
	case EthTypeARP:
		field("arp_spa", get(FieldARPSPA))
		field("arp_tpa", get(FieldARPTPA))
	default:
		field("nw_src", get(FieldIPv4Src))
		field("nw_dst", get(FieldIPv4Dst))
	}
	if !skipProto && protoT != nil {
		b.WriteString("nw_proto=")
		b.buf = strconv.AppendUint(b.buf, proto, 10)
		b.WriteByte(',')
	}
	if t := get(FieldARPOp); t != nil && ethType == EthTypeARP {
		b.WriteString("arp_op=")
		b.buf = strconv.AppendUint(b.buf, beUint(t.value), 10)
		b.WriteByte(',')
	}
	if ethType == EthTypeARP {
		field("arp_sha", get(FieldARPSHA))
		field("arp_tha", get(FieldARPTHA))
	}
	switch {
	case ethType == EthTypeIPv4 && proto == 1:
		field("icmp_type", get(FieldICMPv4Type))
		field("icmp_code", get(FieldICMPv4Code))
	case ethType == EthTypeIPv6 && proto == 58:
		field("icmp_type", get(FieldICMPv6Type))
		field("icmp_code", get(FieldICMPv6Code))
		field("nd_target", get(FieldNDTarget))
	default:
		for _, f := range [...]*Field{FieldTCPSrc, FieldUDPSrc, FieldSCTPSrc} {
			if t := get(f); t != nil {
				appendBE16Masked(b, "tp_src", t)
			}
		}
		for _, f := range [...]*Field{FieldTCPDst, FieldUDPDst, FieldSCTPDst} {
			if t := get(f); t != nil {
				appendBE16Masked(b, "tp_dst", t)
			}
		}
	}
	if n := b.Len(); n > start && b.buf[n-1] == ',' {
		b.buf = b.buf[:n-1]
	}
}

// protocolKeyword is the shorthand ovs-ofctl prints first for a match's Ethernet type
// and IP protocol ("arp", "ip", "icmp6", ...), "" when there is none; usedProto reports
// whether it stands for the IP protocol too.
func protocolKeyword(hasType bool, ethType uint64, hasProto bool, proto uint64) (keyword string, usedProto bool) {
	if !hasType {
		return "", false
	}
	switch ethType {
	case EthTypeIPv4:
		if n := ipProtoName(proto, ""); n != "" && hasProto {
			return n, true
		}
		return "ip", false
	case EthTypeIPv6:
		if n := ipProtoName(proto, "6"); n != "" && hasProto {
			return n, true
		}
		return "ipv6", false
	case EthTypeARP:
		return "arp", false
	case 0x8035:
		return "rarp", false
	case 0x8847:
		return "mpls", false
	case 0x8848:
		return "mplsm", false
	}
	return "", false
}

// keyword is the match's protocolKeyword when that is the first word of its text after the
// priority, "" when it is not (a match on conj_id or the conntrack fields, printed first).
func (m Match) keyword() string {
	for _, f := range [...]*Field{FieldConjID, FieldCTState, FieldCTZone, FieldCTMark} {
		if m.Has(f) {
			return ""
		}
	}
	t, _, hasType := m.get(FieldEthType)
	p, _, hasProto := m.get(FieldIPProto)
	k, _ := protocolKeyword(hasType, beUint(t), hasProto, beUint(p))
	return k
}

// ipProtoName is the ovs-ofctl shorthand for an IP protocol (suffix "6" for IPv6), or "".
func ipProtoName(proto uint64, suffix string) string {
	switch {
	case proto == 1 && suffix == "":
		return "icmp"
	case proto == 58 && suffix == "6":
		return "icmp6"
	case proto == 6 && suffix == "":
		return "tcp"
	case proto == 6:
		return "tcp6"
	case proto == 17 && suffix == "":
		return "udp"
	case proto == 17:
		return "udp6"
	case proto == 132 && suffix == "":
		return "sctp"
	case proto == 132:
		return "sctp6"
	}
	return ""
}

// appendHex0 writes v in lower-case hex, left-padded with zeros to width digits.
func appendHex0(b *textWriter, v uint64, width int) {
	var tmp [16]byte
	s := strconv.AppendUint(tmp[:0], v, 16)
	for i := len(s); i < width; i++ {
		b.WriteByte('0')
	}
	b.buf = append(b.buf, s...)
}

// appendHexMasked prints name=0xvalue[/0xmask], like OVS's format_uint32/be64_masked.
func appendHexMasked(b *textWriter, name string, t *tlv) {
	b.WriteString(name)
	b.WriteByte('=')
	writeHexC(b, beUint(t.value))
	if t.mask != nil {
		b.WriteByte('/')
		writeHexC(b, beUint(t.mask))
	}
	b.WriteByte(',')
}

// ctStateNames are OVS's names of the ct_state bits, lowest first.
var ctStateNames = [...]string{"new", "est", "rel", "rpl", "inv", "trk", "snat", "dnat"}

// appendCTState prints a ct_state match like OVS's match_format: the flags looked at in bit
// order, "+" when set and "-" when clear (ct_state=+est-rel-rpl); an exact match (all 32
// bits) prints the set flags joined by "|" (ct_state=est|trk), or 0.
func appendCTState(b *textWriter, t *tlv) {
	v := uint32(beUint(t.value))
	b.WriteString("ct_state=")
	if t.mask == nil {
		if v == 0 {
			b.WriteByte('0')
		}
		for i, first := 0, true; i < 32; i++ {
			bit := uint32(1) << i
			if v&bit == 0 {
				continue
			}
			if !first {
				b.WriteByte('|')
			}
			first = false
			if i < len(ctStateNames) {
				b.WriteString(ctStateNames[i])
			} else {
				writeHexC(b, uint64(bit))
			}
		}
		b.WriteByte(',')
		return
	}
	m := uint32(beUint(t.mask))
	if m == 0 {
		b.WriteString("0/0")
	}
	for i := 0; i < 32; i++ {
		bit := uint32(1) << i
		if m&bit == 0 {
			continue
		}
		if v&bit != 0 {
			b.WriteByte('+')
		} else {
			b.WriteByte('-')
		}
		if i < len(ctStateNames) {
			b.WriteString(ctStateNames[i])
		} else {
			b.WriteString("[Unknown]")
		}
	}
	b.WriteByte(',')
}

// appendBE16Masked prints name=N, or name=0xV/0xM under a mask (OVS's format_be16_masked).
func appendBE16Masked(b *textWriter, name string, t *tlv) {
	b.WriteString(name)
	b.WriteByte('=')
	if t.mask == nil {
		b.buf = strconv.AppendUint(b.buf, beUint(t.value), 10)
	} else {
		b.WriteString("0x")
		b.buf = strconv.AppendUint(b.buf, beUint(t.value), 16)
		b.WriteString("/0x")
		b.buf = strconv.AppendUint(b.buf, beUint(t.mask), 16)
	}
	b.WriteByte(',')
}

// appendVLAN prints an OXM vlan_vid match the way OVS prints the equivalent vlan_tci match.
func appendVLAN(b *textWriter, vid uint16, mask []byte) {
	m := uint16(0x1fff)
	if mask != nil {
		m = uint16(beUint(mask))
	}
	// OXM vlan_vid bit 12 (OFPVID_PRESENT) is the TCI's CFI bit.
	tci := vid & 0x1fff
	appendTCIMask(b, tci, m&0x1fff)
}

func appendTCI(b *textWriter, tci uint16, mask []byte) {
	m := uint16(0xffff)
	if mask != nil {
		m = uint16(beUint(mask))
	}
	appendTCIMask(b, tci, m)
}

func appendTCIMask(b *textWriter, tci, m uint16) {
	vidMask, pcpMask, cfi := m&0x0fff, m&0xe000, m&0x1000
	if cfi != 0 && tci&0x1000 != 0 && (vidMask == 0 || vidMask == 0x0fff) && (pcpMask == 0 || pcpMask == 0xe000) && (vidMask != 0 || pcpMask != 0) {
		if vidMask != 0 {
			b.WriteString("dl_vlan=")
			b.buf = strconv.AppendUint(b.buf, uint64(tci&0x0fff), 10)
			b.WriteByte(',')
		}
		if pcpMask != 0 {
			b.WriteString("dl_vlan_pcp=")
			b.buf = strconv.AppendUint(b.buf, uint64(tci>>13), 10)
			b.WriteByte(',')
		}
		return
	}
	b.WriteString("vlan_tci=0x")
	appendHex0(b, uint64(tci), 4)
	if m != 0xffff {
		b.WriteString("/0x")
		appendHex0(b, uint64(m), 4)
	}
	b.WriteByte(',')
}

// nxPortToOF13 converts a 16-bit OpenFlow 1.0 port number to its 1.3 form.
func nxPortToOF13(p uint16) uint32 {
	if p >= 0xff00 {
		return uint32(p) + 0xffff0000
	}
	return uint32(p)
}
