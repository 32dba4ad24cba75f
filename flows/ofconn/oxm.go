package ofconn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
)

// OXMClassExperimenter is the OXM class whose TLVs carry a 4-byte
// experimenter id before the value.
const OXMClassExperimenter = 0xffff

// OXM is one OXM (or NXM) TLV of a match, as found in FlowStat.Match.
type OXM struct {
	Class   uint16
	Field   uint8 // without the has-mask bit
	HasMask bool
	// Experimenter is set for class OXMClassExperimenter only.
	Experimenter uint32
	// Value and Mask (nil unless HasMask) point into the parsed bytes.
	Value, Mask []byte
}

// Header returns the 32-bit OXM header (class, field, has-mask, length) as it
// appears on the wire, which names the field, e.g. 0x80000004 for in_port.
func (o OXM) Header() uint32 {
	n := len(o.Value) + len(o.Mask)
	if o.Class == OXMClassExperimenter {
		n += 4
	}
	h := uint32(o.Class)<<16 | uint32(o.Field)<<9 | uint32(n)
	if o.HasMask {
		h |= 1 << 8
	}
	return h
}

// ParseOXMs splits a concatenation of OXM TLVs (FlowStat.Match) into fields,
// in order. It fails on a truncated TLV or a masked TLV of odd length.
func ParseOXMs(b []byte) ([]OXM, error) {
	var out []OXM
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return out, fmt.Errorf("ofconn: truncated OXM header at offset %d", off)
		}
		h := binary.BigEndian.Uint32(b[off:])
		n := int(h & 0xff)
		if len(b)-off-4 < n {
			return out, fmt.Errorf("ofconn: OXM %#08x at offset %d needs %d bytes, has %d", h, off, n, len(b)-off-4)
		}
		o := OXM{Class: uint16(h >> 16), Field: uint8(h>>9) & 0x7f, HasMask: h&(1<<8) != 0}
		payload := b[off+4 : off+4+n : off+4+n]
		if o.Class == OXMClassExperimenter {
			if n < 4 {
				return out, fmt.Errorf("ofconn: experimenter OXM %#08x at offset %d is too short", h, off)
			}
			o.Experimenter = binary.BigEndian.Uint32(payload)
			payload = payload[4:]
		}
		if o.HasMask {
			if len(payload)%2 != 0 {
				return out, fmt.Errorf("ofconn: masked OXM %#08x at offset %d has odd length", h, off)
			}
			half := len(payload) / 2
			o.Value, o.Mask = payload[:half:half], payload[half:]
		} else {
			o.Value = payload
		}
		out = append(out, o)
		off += 4 + n
	}
	return out, nil
}

// EqualMatch reports whether a and b, two concatenations of OXM TLVs, hold the
// same TLVs in any order. Open vSwitch echoes a match's fields in its own
// canonical order, not the order they were sent in, so compare an installed
// FlowStat.Match with the desired one this way. (It also drops all-ones masks
// and fields with all-zero masks, and turns NXM_OF_ fields into their OXM
// twins; a desired match must avoid those forms to compare equal.)
func EqualMatch(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	if bytes.Equal(a, b) {
		return true
	}
	ta, errA := splitTLVs(a)
	tb, errB := splitTLVs(b)
	if errA != nil || errB != nil || len(ta) != len(tb) {
		return false
	}
	slices.SortFunc(ta, bytes.Compare)
	slices.SortFunc(tb, bytes.Compare)
	for i := range ta {
		if !bytes.Equal(ta[i], tb[i]) {
			return false
		}
	}
	return true
}

// splitTLVs splits OXM TLVs into whole TLVs (header included).
func splitTLVs(b []byte) ([][]byte, error) {
	var out [][]byte
	for off := 0; off < len(b); {
		if len(b)-off < 4 {
			return nil, fmt.Errorf("truncated OXM header at offset %d", off)
		}
		end := off + 4 + int(b[off+3])
		if end > len(b) {
			return nil, fmt.Errorf("truncated OXM at offset %d", off)
		}
		out = append(out, b[off:end])
		off = end
	}
	return out, nil
}
