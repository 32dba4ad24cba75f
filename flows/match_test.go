package flows

import (
	"math/rand/v2"
	"net/netip"
	"sort"
	"testing"
)

// referenceWith is how a Match gained a field before it was spliced in place: parse every
// TLV, replace the field's or append it, sort by field, encode.
func referenceWith(m Match, f *Field, value, mask []byte) Match {
	if mask != nil && allOnes(mask) {
		mask = nil
	}
	if mask != nil {
		v := make([]byte, len(value))
		for i := range value {
			v[i] = value[i] & mask[i]
		}
		value = v
	}
	t := tlv{field: f, header: f.header(mask != nil), value: value, mask: mask}
	tlvs, _ := parseTLVs([]byte(m.oxm))
	replaced := false
	for i := range tlvs {
		if tlvs[i].key() == t.key() {
			tlvs[i], replaced = t, true
		}
	}
	if !replaced {
		tlvs = append(tlvs, t)
	}
	sort.SliceStable(tlvs, func(i, j int) bool { return tlvs[i].key() < tlvs[j].key() })
	var b []byte
	for _, t := range tlvs {
		b = append(b, byte(t.header>>24), byte(t.header>>16), byte(t.header>>8), byte(t.header))
		b = append(b, t.value...)
		b = append(b, t.mask...)
	}
	return Match{oxm: string(b)}
}

// Adding fields in any order, masked or exact, replacing some, gives the reference bytes,
// and whatever the order, the same match gives the same bytes.
func TestMatchWithEqualsReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	fields := []*Field{FieldInPort, FieldVLANVID, FieldEthSrc, FieldEthDst, FieldEthType, FieldIPProto,
		FieldARPSPA, FieldIPv6Dst, FieldNDTarget, FieldTunnelID, Reg(0), Reg(6), FieldMetadata, FieldVLANTCI}
	for round := range 2000 {
		var got, want Match
		for range 1 + rng.IntN(8) {
			f := fields[rng.IntN(len(fields))]
			value := make([]byte, f.bytes)
			for i := range value {
				value[i] = byte(rng.Uint32())
			}
			var mask []byte
			if f.maskable && rng.IntN(3) == 0 {
				mask = make([]byte, f.bytes)
				for i := range mask {
					mask[i] = []byte{0xff, 0x00, 0xf0, byte(rng.Uint32())}[rng.IntN(4)]
				}
			}
			got, want = got.with(f, value, mask), referenceWith(want, f, value, mask)
			if got != want {
				t.Fatalf("round %d: adding %s: %x, want %x", round, f.name, got.oxm, want.oxm)
			}
		}
		// Canonical: the switch's order (any) canonicalises to the same bytes.
		tlvs, _ := parseTLVs([]byte(got.oxm))
		rng.Shuffle(len(tlvs), func(i, j int) { tlvs[i], tlvs[j] = tlvs[j], tlvs[i] })
		var shuffled []byte
		for _, t := range tlvs {
			shuffled = append(shuffled, byte(t.header>>24), byte(t.header>>16), byte(t.header>>8), byte(t.header))
			shuffled = append(shuffled, t.value...)
			shuffled = append(shuffled, t.mask...)
		}
		if c, err := CanonicalMatch(shuffled); err != nil || c != got {
			t.Fatalf("round %d: canonical form of the shuffled TLVs %x = %x, %v; want %x", round, shuffled, c.oxm, err, got.oxm)
		}
	}
}

// Prefix builders mask the address; a full-length prefix is exact.
func TestMatchPrefixes(t *testing.T) {
	for _, tc := range []struct {
		m    Match
		want string
	}{
		{Match{}.ARP().ARPSPA(netip.MustParsePrefix("10.1.2.3/32")), "arp,arp_spa=10.1.2.3"},
		{Match{}.ARP().ARPSPA(netip.MustParsePrefix("10.1.2.3/20")), "arp,arp_spa=10.1.0.0/20"},
		{Match{}.IPv6().IPv6Dst(netip.MustParsePrefix("2001:db8::1/61")), "ipv6,ipv6_dst=2001:db8::/61"},
		{Match{}.ICMPv6().ICMPType(136).NDTarget(netip.MustParsePrefix("fe80::1/128")), "icmp6,icmp_type=136,nd_target=fe80::1"},
	} {
		var w textWriter
		tc.m.appendText(&w, 0x8000, nil)
		if got := w.String(); got != tc.want {
			t.Errorf("%x renders %q, want %q", tc.m.oxm, got, tc.want)
		}
	}
}
