package northbound

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// The value parsers of Neutron's attribute types, for the sources and the agent config. Each
// returns an error whose text completes "<field> <value>: ...", e.g. `"fa:16:3e:zz" is not
// a MAC address`.

// ParseMAC parses a 48-bit unicast MAC address in any form net.ParseMAC accepts.
func ParseMAC(s string) (net.HardwareAddr, error) {
	hw, err := net.ParseMAC(strings.TrimSpace(s))
	if err != nil || len(hw) != 6 {
		return nil, errors.New("is not a MAC address")
	}
	if hw[0]&1 == 1 {
		return nil, errors.New("is a multicast MAC address")
	}
	if hw.String() == "00:00:00:00:00:00" {
		return nil, errors.New("is the all-zero MAC address")
	}
	return hw, nil
}

// ParseIP parses an IPv4 or IPv6 address without a zone (an IPv4-mapped IPv6 address is
// its IPv4 address).
func ParseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, errors.New("is not an IP address")
	}
	return a.Unmap(), nil
}

// ParseCIDR parses a network in CIDR notation whose host bits are zero (Neutron refuses
// "10.0.0.1/24" and suggests "10.0.0.0/24").
func ParseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		return netip.Prefix{}, errors.New("is not a CIDR (address/length)")
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("has host bits set (did you mean %s?)", p.Masked())
	}
	return p, nil
}

// ParseIPOrCIDR parses an address (as a host prefix) or a prefix, host bits allowed, as
// Neutron's allowed_address_pairs take them.
func ParseIPOrCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("is not an IP address or CIDR")
		}
		return p, nil
	}
	a, err := ParseIP(s)
	if err != nil {
		return netip.Prefix{}, errors.New("is not an IP address or CIDR")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// ParseTunnelTypes parses a tunnel_types list: each item is checked and normalised (lower
// case, blanks trimmed), duplicates dropped.
func ParseTunnelTypes(types []string) ([]NetworkType, error) {
	out := []NetworkType{}
	for _, s := range types {
		t, err := ParseTunnelType(strings.ToLower(strings.TrimSpace(s)))
		if err != nil {
			return nil, fmt.Errorf("has a tunnel type %q that is not one of vxlan, gre, geneve", s)
		}
		if !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out, nil
}

// CheckBridgeMappings checks a bridge_mappings map (physical network → bridge): no empty
// names, no bridge used twice.
func CheckBridgeMappings(m map[string]string) error {
	byBridge := map[string]string{}
	for _, physnet := range slices.Sorted(maps.Keys(m)) {
		bridge := m[physnet]
		if physnet == "" || bridge == "" {
			return fmt.Errorf("has an entry %q:%q with an empty physical network or bridge", physnet, bridge)
		}
		if other, dup := byBridge[bridge]; dup {
			return fmt.Errorf("maps bridge %q twice (physical networks %q and %q)", bridge, other, physnet)
		}
		byBridge[bridge] = physnet
	}
	return nil
}
