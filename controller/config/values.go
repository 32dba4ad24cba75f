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
