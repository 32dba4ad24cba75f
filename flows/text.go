package flows

import (
	"strconv"
	"strings"
)

// appendText renders the match (and the priority, which ovs-ofctl prints with it) in the
// field order of OVS's match_format(), so the text equals `ovs-ofctl dump-flows` output.
func (m Match) appendText(b *strings.Builder, priority uint16, names *Names) {
	start := b.Len()
	put := func(s string) { b.WriteString(s); b.WriteByte(',') }
	if priority != 0x8000 {
		put("priority=" + strconv.Itoa(int(priority)))
	}
	tlvs, _ := parseTLVs([]byte(m.oxm))
	get := func(f *Field) *tlv {
		for i := range tlvs {
			if tlvs[i].key() == f.key() {
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

	var ethType uint64
	var proto uint64 = 0
	ethT, protoT := get(FieldEthType), get(FieldIPProto)
	if ethT != nil {
		ethType = beUint(ethT.value)
	}
	if protoT != nil {
		proto = beUint(protoT.value)
	}
	skipType, skipProto := false, false
	if ethT != nil {
		skipType = true
		switch ethType {
		case EthTypeIPv4:
			names4 := map[uint64]string{1: "icmp", 6: "tcp", 17: "udp", 132: "sctp"}
			if n, ok := names4[proto]; ok && protoT != nil {
				put(n)
				skipProto = true
			} else {
				put("ip")
			}
		case EthTypeIPv6:
			names6 := map[uint64]string{58: "icmp6", 6: "tcp6", 17: "udp6", 132: "sctp6"}
			if n, ok := names6[proto]; ok && protoT != nil {
				put(n)
				skipProto = true
			} else {
				put("ipv6")
			}
		case EthTypeARP:
			put("arp")
		case 0x8035:
			put("rarp")
		case 0x8847:
			put("mpls")
		case 0x8848:
			put("mplsm")
		default:
			skipType = false
		}
	}
	for _, f := range append(append([]*Field(nil), registerFields...), FieldTunnelID, FieldMetadata) {
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
		s := strconv.FormatUint(ethType, 16)
		b.WriteString(strings.Repeat("0", 4-len(s)) + s + ",")
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
		put("nw_proto=" + strconv.FormatUint(proto, 10))
	}
	if t := get(FieldARPOp); t != nil && ethType == EthTypeARP {
		put("arp_op=" + strconv.FormatUint(beUint(t.value), 10))
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
		for _, f := range []*Field{FieldTCPSrc, FieldUDPSrc} {
			if t := get(f); t != nil {
				appendBE16Masked(b, "tp_src", t)
			}
		}
		for _, f := range []*Field{FieldTCPDst, FieldUDPDst} {
			if t := get(f); t != nil {
				appendBE16Masked(b, "tp_dst", t)
			}
		}
	}
	if b.Len() > start {
		s := b.String()
		if s[len(s)-1] == ',' {
			// strings.Builder cannot shrink: rebuild without the trailing comma.
			b.Reset()
			b.WriteString(s[:len(s)-1])
		}
	}
}

// appendHexMasked prints name=0xvalue[/0xmask], like OVS's format_uint32/be64_masked.
func appendHexMasked(b *strings.Builder, name string, t *tlv) {
	b.WriteString(name)
	b.WriteByte('=')
	writeHexC(b, beUint(t.value))
	if t.mask != nil {
		b.WriteByte('/')
		writeHexC(b, beUint(t.mask))
	}
	b.WriteByte(',')
}

func appendBE16Masked(b *strings.Builder, name string, t *tlv) {
	b.WriteString(name)
	b.WriteByte('=')
	if t.mask == nil {
		b.WriteString(strconv.FormatUint(beUint(t.value), 10))
	} else {
		b.WriteString("0x" + strconv.FormatUint(beUint(t.value), 16) + "/0x" + strconv.FormatUint(beUint(t.mask), 16))
	}
	b.WriteByte(',')
}

// appendVLAN prints an OXM vlan_vid match the way OVS prints the equivalent vlan_tci match.
func appendVLAN(b *strings.Builder, vid uint16, mask []byte) {
	m := uint16(0x1fff)
	if mask != nil {
		m = uint16(beUint(mask))
	}
	// OXM vlan_vid bit 12 (OFPVID_PRESENT) is the TCI's CFI bit.
	tci := vid & 0x1fff
	appendTCI(b, tci, putBE(uint64(m&0x1fff), 2))
}

func appendTCI(b *strings.Builder, tci uint16, mask []byte) {
	m := uint16(0xffff)
	if mask != nil {
		m = uint16(beUint(mask))
	}
	vidMask, pcpMask, cfi := m&0x0fff, m&0xe000, m&0x1000
	if cfi != 0 && tci&0x1000 != 0 && (vidMask == 0 || vidMask == 0x0fff) && (pcpMask == 0 || pcpMask == 0xe000) && (vidMask != 0 || pcpMask != 0) {
		if vidMask != 0 {
			b.WriteString("dl_vlan=" + strconv.Itoa(int(tci&0x0fff)) + ",")
		}
		if pcpMask != 0 {
			b.WriteString("dl_vlan_pcp=" + strconv.Itoa(int(tci>>13)) + ",")
		}
		return
	}
	hex4 := func(v uint16) string {
		s := strconv.FormatUint(uint64(v), 16)
		return "0x" + strings.Repeat("0", 4-len(s)) + s
	}
	if m == 0xffff {
		b.WriteString("vlan_tci=" + hex4(tci) + ",")
		return
	}
	b.WriteString("vlan_tci=" + hex4(tci) + "/" + hex4(m) + ",")
}

// nxPortToOF13 converts a 16-bit OpenFlow 1.0 port number to its 1.3 form.
func nxPortToOF13(p uint16) uint32 {
	if p >= 0xff00 {
		return uint32(p) + 0xffff0000
	}
	return uint32(p)
}
