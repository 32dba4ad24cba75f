package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/northbound"
)

// Value parsers of the ini loader and Config.Validate (northbound has those of Neutron's
// attribute types). Each returns an error whose text completes "<option> <value>: ...".

// parseBool parses a boolean the way oslo.config does: true/false, yes/no, 1/0, on/off,
// case-insensitive, surrounding blanks ignored.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "1", "on":
		return true, nil
	case "false", "no", "0", "off":
		return false, nil
	}
	return false, errors.New("is not a boolean (true/false, yes/no, 1/0, on/off)")
}

// parseInt parses a decimal integer in [min, max].
func parseInt(s string, min, max int64) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil {
		return 0, errors.New("is not an integer")
	}
	if n < min || n > max {
		return 0, fmt.Errorf("is outside %d–%d", min, max)
	}
	return n, nil
}

// parseFloat parses a non-negative decimal number.
func parseFloat(s string) (float64, error) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f < 0 {
		return 0, errors.New("is not a non-negative number")
	}
	return f, nil
}

// parseList splits an oslo.config list value: comma separated, blanks around items trimmed,
// empty items dropped (so "" and "a," are valid).
func parseList(s string) []string {
	out := []string{}
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

// parseBridgeMappings parses Neutron's bridge_mappings list ("physnet:bridge,...") with
// the checks of neutron's parse_mappings(unique_values=True): every entry has a ':', both
// sides are non-empty, and no physnet or bridge appears twice.
func parseBridgeMappings(s string) (map[string]string, error) {
	m := map[string]string{}
	for _, entry := range parseList(s) {
		physnet, bridge, ok := strings.Cut(entry, ":")
		physnet, bridge = strings.TrimSpace(physnet), strings.TrimSpace(bridge)
		if !ok {
			return nil, fmt.Errorf("has an entry %q that is not <physical_network>:<bridge>", entry)
		}
		if physnet == "" || bridge == "" {
			return nil, fmt.Errorf("has an entry %q with an empty physical network or bridge", entry)
		}
		if _, dup := m[physnet]; dup {
			return nil, fmt.Errorf("maps physical network %q twice", physnet)
		}
		m[physnet] = bridge
	}
	return m, northbound.CheckBridgeMappings(m)
}

// oneOf checks that s is one of the allowed values.
func oneOf(s string, allowed ...string) error {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return fmt.Errorf("is not one of %s", strings.Join(allowed, ", "))
}

// sortedKeys returns the keys of m in ascending order.
func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// parseEthertypes parses [securitygroup] permitted_ethertypes: a list of ethertypes in
// hexadecimal starting with 0x, as Neutron's openvswitch firewall takes them ("0x4008" for
// InfiniBand), returned sorted without duplicates. Neutron skips an item it cannot read
// with a warning; dvrflow refuses it, naming it, as it refuses the ethertypes the security
// groups filter (see checkEthertype).
func parseEthertypes(s string) ([]uint16, error) {
	out := []uint16{}
	for _, item := range parseList(s) {
		digits, ok := strings.CutPrefix(item, "0x")
		if !ok {
			digits, ok = strings.CutPrefix(item, "0X")
		}
		n, err := strconv.ParseUint(digits, 16, 64)
		if !ok || err != nil || strings.ContainsAny(digits, "+-_") {
			return nil, fmt.Errorf("has an item %q that is not a hexadecimal ethertype starting with 0x (as 0x4008)", item)
		}
		if n > 0xffff {
			return nil, fmt.Errorf("has an item %q that is not an ethertype (0x0600–0xffff)", item)
		}
		if err := checkEthertype(uint16(n)); err != nil {
			return nil, fmt.Errorf("has an item %q that %v", item, err)
		}
		out = append(out, uint16(n))
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// filteredEthertypes are the ethertypes the openvswitch firewall filters by the security
// groups (and its spoofing protection): permitting one would let it through unfiltered.
var filteredEthertypes = map[uint16]string{0x0800: "IPv4", 0x0806: "ARP", 0x86dd: "IPv6"}

// checkEthertype accepts a value permitted_ethertypes may hold: an ethertype (0x0600 and
// up: below are 802.3 lengths, which no frame carries as its type) the security groups do
// not filter. Its error completes "<item> ...".
func checkEthertype(e uint16) error {
	if e < 0x0600 {
		return errors.New("is not an ethertype (0x0600–0xffff; smaller values are 802.3 frame lengths)")
	}
	if name, ok := filteredEthertypes[e]; ok {
		return fmt.Errorf("is %s, which the security groups filter: permitting it would let every %s packet through unfiltered", name, name)
	}
	return nil
}

// formatEthertypes writes ethertypes as permitted_ethertypes lists them.
func formatEthertypes(es []uint16) string {
	s := make([]string, len(es))
	for i, e := range es {
		s[i] = fmt.Sprintf("%#04x", e)
	}
	return strings.Join(s, ",")
}
