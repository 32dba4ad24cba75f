package firewall

// portMask is one masked transport-port match: the ports p with p&Mask == Value.
type portMask struct {
	Value, Mask uint16
}

// exact reports whether the match is one port (printed as a decimal port by ovs-ofctl).
func (m portMask) exact() bool { return m.Mask == 0xffff }

// portRangeMasks covers the inclusive range [lo, hi] with the fewest value/mask matches
// (aligned power-of-two blocks, largest first), the set Neutron's port_rule_masking
// returns: [8000, 8080] is 0x1f40/0xffc0, 0x1f80/0xfff0 and 8080. lo must not exceed hi.
func portRangeMasks(lo, hi uint16) []portMask {
	var out []portMask
	for p := uint32(lo); p <= uint32(hi); {
		// The largest block starting at p that is aligned on its size and stays in range.
		size := uint32(1)
		for p&(size<<1-1) == 0 && p+size<<1-1 <= uint32(hi) && size < 1<<16 {
			size <<= 1
		}
		out = append(out, portMask{Value: uint16(p), Mask: uint16(^(size - 1))})
		p += size
	}
	return out
}
