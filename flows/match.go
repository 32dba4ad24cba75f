package flows

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"unsafe"
)

// Match is a set of OpenFlow match fields. It is stored in its wire form: the OXM/NXM
// TLVs sorted by field, which is canonical (two equal matches have equal bytes, whatever
// order they were built in), cheap to keep for 100k flows, and directly comparable with
// what the switch reports. The zero Match matches every packet.
//
// Methods return a new Match, so matches compose: flows.Match{}.InPort(2).ARP().
type Match struct{ oxm string }

type tlv struct {
	field       *Field // nil for fields dvrflow does not know (foreign flows)
	header      uint32
	value, mask []byte
}

func (t tlv) key() uint32 { return t.header &^ 0x1ff }

// Key returns the canonical bytes of the match, usable as a map key.
func (m Match) Key() string { return m.oxm }

// Bytes returns the OXM TLVs to put in an ofp_match.
func (m Match) Bytes() []byte { return []byte(m.oxm) }

// IsZero reports whether the match is empty (matches everything).
func (m Match) IsZero() bool { return m.oxm == "" }

func (m Match) with(f *Field, value, mask []byte) Match {
	if len(value) != f.bytes || (mask != nil && len(mask) != f.bytes) {
		panic(fmt.Sprintf("flows: field %s wants %d bytes", f.name, f.bytes))
	}
	if mask != nil && allOnes(mask) {
		mask = nil
	}
	// Splice the new TLV into the canonical (key-ordered) bytes: keep the TLVs before it,
	// drop one with the same field, keep the rest. One allocation: the new string.
	key := f.key()
	old := m.oxm
	at, end := len(old), len(old)
	for off := 0; off < len(old); {
		h, n, ok := tlvAt(old, off)
		if !ok {
			break // malformed tail (cannot come from a builder): append after it
		}
		if k := h &^ 0x1ff; k >= key {
			at, end = off, off
			if k == key {
				end = off + n
			}
			break
		}
		off += n
	}
	b := make([]byte, 0, len(old)-(end-at)+4+2*len(value))
	b = append(b, old[:at]...)
	b = binary.BigEndian.AppendUint32(b, f.header(mask != nil))
	if mask != nil {
		for i := range value {
			b = append(b, value[i]&mask[i])
		}
		b = append(b, mask...)
	} else {
		b = append(b, value...)
	}
	b = append(b, old[end:]...)
	return Match{oxm: string(b)}
}

// tlvAt returns the header and the whole length (header included) of the TLV at offset off
// of encoded match bytes; ok is false when it is truncated.
func tlvAt(oxm string, off int) (header uint32, n int, ok bool) {
	if len(oxm)-off < 4 {
		return 0, 0, false
	}
	h := uint32(oxm[off])<<24 | uint32(oxm[off+1])<<16 | uint32(oxm[off+2])<<8 | uint32(oxm[off+3])
	n = 4 + int(h&0xff)
	if off+n > len(oxm) {
		return 0, 0, false
	}
	return h, n, true
}

// get returns the value and mask (nil when exact) of f, if the match has it. The slices
// must not be modified.
func (m Match) get(f *Field) (value, mask []byte, ok bool) {
	key := f.key()
	for off := 0; off < len(m.oxm); {
		h, n, ok := tlvAt(m.oxm, off)
		if !ok {
			break
		}
		if h&^0x1ff == key {
			body := readOnlyBytes(m.oxm[off+4 : off+n])
			if h&0x100 != 0 {
				return body[:len(body)/2], body[len(body)/2:], true
			}
			return body, nil, true
		}
		off += n
	}
	return nil, nil, false
}

// Has reports whether the match constrains field f.
func (m Match) Has(f *Field) bool { _, _, ok := m.get(f); return ok }

// InPortValue returns the in_port matched, or 0 when the match has none.
func (m Match) InPortValue() uint32 {
	if v, _, ok := m.get(FieldInPort); ok {
		return uint32(beUint(v))
	}
	return 0
}

// InPort matches packets that entered through OpenFlow port p.
func (m Match) InPort(p uint32) Match { return m.with(FieldInPort, putBE(uint64(p), 4), nil) }

// VLAN matches frames tagged with VLAN id vid (ovs-ofctl: dl_vlan=vid).
func (m Match) VLAN(vid uint16) Match {
	return m.with(FieldVLANVID, putBE(uint64(vid)|ofpVIDPresent, 2), nil)
}

// Untagged matches frames without an 802.1Q header (ovs-ofctl: vlan_tci=0x0000/0x1fff).
func (m Match) Untagged() Match { return m.with(FieldVLANVID, []byte{0, 0}, nil) }

// EthSrc matches the source MAC (dl_src).
func (m Match) EthSrc(mac net.HardwareAddr) Match { return m.with(FieldEthSrc, mac6(mac), nil) }

// EthDst matches the destination MAC (dl_dst).
func (m Match) EthDst(mac net.HardwareAddr) Match { return m.with(FieldEthDst, mac6(mac), nil) }

// EthDstMasked matches the destination MAC under a mask (e.g. the multicast bit).
func (m Match) EthDstMasked(mac, mask net.HardwareAddr) Match {
	return m.with(FieldEthDst, mac6(mac), mac6(mask))
}

// EthType matches the Ethernet type.
func (m Match) EthType(t uint16) Match { return m.with(FieldEthType, putBE(uint64(t), 2), nil) }

// ARP matches ARP packets (dl_type=0x0806).
func (m Match) ARP() Match { return m.EthType(EthTypeARP) }

// IPv4 matches IPv4 packets (ip).
func (m Match) IPv4() Match { return m.EthType(EthTypeIPv4) }

// IPv6 matches IPv6 packets (ipv6).
func (m Match) IPv6() Match { return m.EthType(EthTypeIPv6) }

// IPProto matches the IP protocol number; it needs IPv4 or IPv6.
func (m Match) IPProto(p uint8) Match { return m.with(FieldIPProto, []byte{p}, nil) }

// ICMPv6 matches ICMPv6 packets (icmp6).
func (m Match) ICMPv6() Match { return m.IPv6().IPProto(58) }

// ICMPv4 matches ICMP packets (icmp).
func (m Match) ICMPv4() Match { return m.IPv4().IPProto(1) }

// UDPv4 matches UDP over IPv4 (udp).
func (m Match) UDPv4() Match { return m.IPv4().IPProto(17) }

// UDPv6 matches UDP over IPv6 (udp6).
func (m Match) UDPv6() Match { return m.IPv6().IPProto(17) }

// TCPv4 matches TCP over IPv4 (tcp).
func (m Match) TCPv4() Match { return m.IPv4().IPProto(IPProtoTCP) }

// TCPv6 matches TCP over IPv6 (tcp6).
func (m Match) TCPv6() Match { return m.IPv6().IPProto(IPProtoTCP) }

// SCTPv4 matches SCTP over IPv4 (sctp).
func (m Match) SCTPv4() Match { return m.IPv4().IPProto(IPProtoSCTP) }

// SCTPv6 matches SCTP over IPv6 (sctp6).
func (m Match) SCTPv6() Match { return m.IPv6().IPProto(IPProtoSCTP) }

// IP protocol numbers dvrflow matches on.
const (
	IPProtoICMP   = 1
	IPProtoTCP    = 6
	IPProtoUDP    = 17
	IPProtoICMPv6 = 58
	IPProtoSCTP   = 132
)

// isIPv6 reports whether the match is on IPv6 packets.
func (m Match) isIPv6() bool {
	v, _, ok := m.get(FieldEthType)
	return ok && beUint(v) == EthTypeIPv6
}

// ICMPType matches the ICMP (v4) or ICMPv6 type, whichever protocol the match has.
func (m Match) ICMPType(t uint8) Match {
	if m.isIPv6() {
		return m.with(FieldICMPv6Type, []byte{t}, nil)
	}
	return m.with(FieldICMPv4Type, []byte{t}, nil)
}

// ICMPCode matches the ICMP (v4) or ICMPv6 code, whichever protocol the match has.
func (m Match) ICMPCode(c uint8) Match {
	if m.isIPv6() {
		return m.with(FieldICMPv6Code, []byte{c}, nil)
	}
	return m.with(FieldICMPv4Code, []byte{c}, nil)
}

// ARPOp matches the ARP opcode (1 request, 2 reply).
func (m Match) ARPOp(op uint16) Match { return m.with(FieldARPOp, putBE(uint64(op), 2), nil) }

// ARPSPA matches the ARP sender IPv4 address or prefix.
func (m Match) ARPSPA(p netip.Prefix) Match { return m.withPrefix(FieldARPSPA, p) }

// ARPTPA matches the ARP target IPv4 address or prefix.
func (m Match) ARPTPA(p netip.Prefix) Match { return m.withPrefix(FieldARPTPA, p) }

// ARPSHA matches the ARP sender hardware address.
func (m Match) ARPSHA(mac net.HardwareAddr) Match { return m.with(FieldARPSHA, mac6(mac), nil) }

// ARPTHA matches the ARP target hardware address.
func (m Match) ARPTHA(mac net.HardwareAddr) Match { return m.with(FieldARPTHA, mac6(mac), nil) }

// IPv4Src matches the IPv4 source address or prefix (nw_src).
func (m Match) IPv4Src(p netip.Prefix) Match { return m.withPrefix(FieldIPv4Src, p) }

// IPv4Dst matches the IPv4 destination address or prefix (nw_dst).
func (m Match) IPv4Dst(p netip.Prefix) Match { return m.withPrefix(FieldIPv4Dst, p) }

// IPv6Src matches the IPv6 source address or prefix.
func (m Match) IPv6Src(p netip.Prefix) Match { return m.withPrefix(FieldIPv6Src, p) }

// IPv6Dst matches the IPv6 destination address or prefix.
func (m Match) IPv6Dst(p netip.Prefix) Match { return m.withPrefix(FieldIPv6Dst, p) }

// NDTarget matches the IPv6 neighbour discovery target address or prefix.
func (m Match) NDTarget(p netip.Prefix) Match { return m.withPrefix(FieldNDTarget, p) }

// UDPSrc matches the UDP source port.
func (m Match) UDPSrc(port uint16) Match { return m.with(FieldUDPSrc, putBE(uint64(port), 2), nil) }

// UDPDst matches the UDP destination port.
func (m Match) UDPDst(port uint16) Match { return m.with(FieldUDPDst, putBE(uint64(port), 2), nil) }

// UDPSrcMasked matches the UDP source ports value/mask (a port range, as Neutron splits
// one into masks: tp_src=0x1f40/0xffc0).
func (m Match) UDPSrcMasked(value, mask uint16) Match {
	return m.with(FieldUDPSrc, putBE(uint64(value), 2), putBE(uint64(mask), 2))
}

// UDPDstMasked matches the UDP destination ports value/mask.
func (m Match) UDPDstMasked(value, mask uint16) Match {
	return m.with(FieldUDPDst, putBE(uint64(value), 2), putBE(uint64(mask), 2))
}

// TCPSrc matches the TCP source port.
func (m Match) TCPSrc(port uint16) Match { return m.with(FieldTCPSrc, putBE(uint64(port), 2), nil) }

// TCPDst matches the TCP destination port.
func (m Match) TCPDst(port uint16) Match { return m.with(FieldTCPDst, putBE(uint64(port), 2), nil) }

// TCPSrcMasked matches the TCP source ports value/mask.
func (m Match) TCPSrcMasked(value, mask uint16) Match {
	return m.with(FieldTCPSrc, putBE(uint64(value), 2), putBE(uint64(mask), 2))
}

// TCPDstMasked matches the TCP destination ports value/mask (tp_dst=0x1f40/0xffc0).
func (m Match) TCPDstMasked(value, mask uint16) Match {
	return m.with(FieldTCPDst, putBE(uint64(value), 2), putBE(uint64(mask), 2))
}

// SCTPSrc matches the SCTP source port.
func (m Match) SCTPSrc(port uint16) Match {
	return m.with(FieldSCTPSrc, putBE(uint64(port), 2), nil)
}

// SCTPDst matches the SCTP destination port.
func (m Match) SCTPDst(port uint16) Match {
	return m.with(FieldSCTPDst, putBE(uint64(port), 2), nil)
}

// SCTPSrcMasked matches the SCTP source ports value/mask.
func (m Match) SCTPSrcMasked(value, mask uint16) Match {
	return m.with(FieldSCTPSrc, putBE(uint64(value), 2), putBE(uint64(mask), 2))
}

// SCTPDstMasked matches the SCTP destination ports value/mask.
func (m Match) SCTPDstMasked(value, mask uint16) Match {
	return m.with(FieldSCTPDst, putBE(uint64(value), 2), putBE(uint64(mask), 2))
}

// CTState is a set of connection tracking state flags (NXM_NX_CT_STATE), as the ct action
// leaves them for the table it recirculates to.
type CTState uint32

// The conntrack state flags, in OVS's bit order (which is the order ovs-ofctl prints them).
const (
	CTNew CTState = 0x01 // new: the packet starts a connection
	CTEst CTState = 0x02 // est: part of an established connection
	CTRel CTState = 0x04 // rel: related to an established connection (ICMP errors, FTP data)
	CTRpl CTState = 0x08 // rpl: in the reply direction
	CTInv CTState = 0x10 // inv: invalid (conntrack could not make sense of it)
	CTTrk CTState = 0x20 // trk: went through conntrack
)

// CTState matches conntrack state flags: those in set must be on, those in clear off, the
// others are not looked at (ovs-ofctl: ct_state=+est-rel-rpl). A flag in both is set; at
// least one flag must be given.
func (m Match) CTState(set, clear CTState) Match {
	if set|clear == 0 {
		panic("flows: ct_state match without any flag")
	}
	return m.with(FieldCTState, putBE(uint64(set), 4), putBE(uint64(set|clear), 4))
}

// CTZone matches the conntrack zone the packet was tracked in.
func (m Match) CTZone(z uint16) Match { return m.with(FieldCTZone, putBE(uint64(z), 2), nil) }

// CTMark matches the whole 32-bit mark of the packet's connection.
func (m Match) CTMark(v uint32) Match { return m.with(FieldCTMark, putBE(uint64(v), 4), nil) }

// ConjID matches packets that satisfied every clause of conjunction id (the flows with
// Conjunction actions of that id).
func (m Match) ConjID(id uint32) Match { return m.with(FieldConjID, putBE(uint64(id), 4), nil) }

// TunnelID matches the tunnel key (VNI / GRE key).
func (m Match) TunnelID(id uint64) Match { return m.with(FieldTunnelID, putBE(id, 8), nil) }

// Reg matches the whole 32-bit register regN.
func (m Match) Reg(n int, value uint32) Match {
	return m.with(Reg(n), putBE(uint64(value), 4), nil)
}

// RegMasked matches register regN under a mask.
func (m Match) RegMasked(n int, value, mask uint32) Match {
	return m.with(Reg(n), putBE(uint64(value), 4), putBE(uint64(mask), 4))
}

func (m Match) withPrefix(f *Field, p netip.Prefix) Match {
	addr := p.Addr()
	var raw []byte
	if f.format == formatIPv4 {
		if !addr.Is4() {
			panic(fmt.Sprintf("flows: %s needs an IPv4 prefix, got %s", f.name, p))
		}
		a := addr.As4()
		raw = a[:]
	} else {
		if !addr.Is6() || addr.Is4In6() {
			panic(fmt.Sprintf("flows: %s needs an IPv6 prefix, got %s", f.name, p))
		}
		a := addr.As16()
		raw = a[:]
	}
	var mask []byte
	var maskBuf [16]byte
	if bits := p.Bits(); bits >= 0 && bits < len(raw)*8 {
		mask = maskBuf[:len(raw)]
		for i := range mask {
			switch {
			case bits >= 8:
				mask[i] = 0xff
				bits -= 8
			case bits > 0:
				mask[i] = byte(0xff << (8 - bits))
				bits = 0
			}
		}
	}
	return m.with(f, raw, mask)
}

const ofpVIDPresent = 0x1000

// Ethernet types dvrflow matches on.
const (
	EthTypeIPv4 = 0x0800
	EthTypeARP  = 0x0806
	EthTypeIPv6 = 0x86dd
)

func mac6(mac net.HardwareAddr) []byte {
	if len(mac) != 6 {
		panic(fmt.Sprintf("flows: %q is not a 48-bit MAC address", mac))
	}
	return []byte(mac)
}

// parseTLVs splits OXM/NXM match bytes into fields. The fields' values and masks point
// into b.
func parseTLVs(b []byte) ([]tlv, error) { return appendParsedTLVs(nil, b) }

// appendParsedTLVs is parseTLVs appending to out (pass a stack array's slice to parse
// without allocating).
func appendParsedTLVs(out []tlv, b []byte) ([]tlv, error) {
	for len(b) > 0 {
		if len(b) < 4 {
			return out, fmt.Errorf("truncated OXM header (%d bytes left)", len(b))
		}
		h := binary.BigEndian.Uint32(b)
		n := int(h & 0xff)
		hdr := 4
		if h>>16 == 0xffff {
			hdr = 8 // experimenter OXM carries a 4-byte experimenter id
			n -= 4
		}
		if n < 0 || len(b) < hdr+n {
			return out, fmt.Errorf("truncated OXM field 0x%08x", h)
		}
		body := b[hdr : hdr+n]
		t := tlv{header: h, field: fieldsByHeader[h&^0x1ff]}
		if h&0x100 != 0 {
			if n%2 != 0 {
				return out, fmt.Errorf("OXM field 0x%08x: a value and mask of %d bytes in all", h, n)
			}
			t.value, t.mask = body[:n/2], body[n/2:]
		} else {
			t.value = body
		}
		if t.field != nil && h>>16 != 0xffff && len(t.value) != t.field.bytes {
			return out, fmt.Errorf("OXM field %s: %d bytes, want %d", t.field.name, len(t.value), t.field.bytes)
		}
		if h>>16 == 0xffff {
			t.value = b[4 : hdr+n] // keep the experimenter id in the value: it is part of the identity
			t.mask = nil
		}
		out = append(out, t)
		b = b[hdr+n:]
	}
	return out, nil
}

// appendTLVs is parseTLVs over a Match's bytes, appending to dst (pass a stack array to
// parse without allocating). The values and masks point into oxm and must not be modified.
func appendTLVs(dst []tlv, oxm string) ([]tlv, error) {
	return appendParsedTLVs(dst, readOnlyBytes(oxm))
}

// readOnlyBytes returns the bytes of s without copying them. The result must never be
// written to: it aliases the string's (immutable) memory.
func readOnlyBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }

func encodeTLVs(tlvs []tlv) string {
	slices.SortStableFunc(tlvs, func(a, b tlv) int { return cmp.Compare(a.key(), b.key()) })
	n := 0
	for _, t := range tlvs {
		n += 4 + len(t.value) + len(t.mask)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, t := range tlvs {
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], t.header)
		sb.Write(h[:])
		sb.Write(t.value)
		sb.Write(t.mask)
	}
	return sb.String()
}

// CanonicalMatch turns the OXM bytes of a match as a switch reports them (any field order)
// into the canonical Match dvrflow builds, so installed and desired flows compare equal.
// The result never points into oxm.
func CanonicalMatch(oxm []byte) (Match, error) {
	var arr [maxParsedTLVs]tlv
	tlvs, err := appendParsedTLVs(arr[:0], oxm)
	if err != nil {
		return Match{}, err
	}
	for i := range tlvs {
		// Drop masks that are all ones (the same as exact).
		if tlvs[i].mask != nil && allOnes(tlvs[i].mask) && tlvs[i].field != nil {
			tlvs[i].header = tlvs[i].field.header(false)
			tlvs[i].mask = nil
		}
	}
	return Match{oxm: encodeTLVs(tlvs)}, nil
}
