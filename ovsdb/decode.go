package ovsdb

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/dvrflow/dvrflow/ovsdb/vswitchd"
)

// decodeUpdates decodes table-updates (RFC 7047 section 4.1.6: a monitor reply or the
// table-updates of an update notification) in one pass over the bytes: the initial copy
// of 10,000 ports' rows is megabytes, and a generic JSON decoder would scan every value
// several times. Tables and columns dvrflow does not monitor, and each row's "old", are
// skipped.
func decodeUpdates(b []byte) (*tableUpdates, error) {
	s := &scanner{b: b}
	u := &tableUpdates{}
	s.object(func(table string) {
		switch table {
		case vswitchd.OpenvSwitchTable:
			u.Root = rowsOf(s, u.Root, rootColumns)
		case vswitchd.BridgeTable:
			u.Bridges = rowsOf(s, u.Bridges, bridgeColumns)
		case vswitchd.PortTable:
			u.Ports = rowsOf(s, u.Ports, portColumns)
		case vswitchd.InterfaceTable:
			u.Ifaces = rowsOf(s, u.Ifaces, ifaceColumns)
		case vswitchd.FlowTableTable:
			u.FlowTables = rowsOf(s, u.FlowTables, flowTableColumns)
		default:
			s.skip()
		}
	})
	s.ws()
	if s.err == nil && s.i != len(s.b) {
		s.fail("trailing data")
	}
	if s.err != nil {
		return nil, s.err
	}
	return u, nil
}

// rowsOf decodes one table's {uuid: {"new": row, "old": row}} into m.
func rowsOf[T any](s *scanner, m map[string]rowUpdate[T], cols columns[T]) map[string]rowUpdate[T] {
	if m == nil {
		m = map[string]rowUpdate[T]{}
	}
	s.object(func(uuid string) {
		var up rowUpdate[T]
		s.object(func(key string) {
			if key != "new" {
				s.skip()
				return
			}
			up.New = new(T)
			s.object(func(column string) { cols.decode(s, up.New, column) })
		})
		m[uuid] = up
	})
	return m
}

// columns decodes the monitored columns of one table's rows, by column name. The tables
// below are the one list of what dvrflow monitors: the monitor request asks for exactly
// their columns (monitorRequests) and the decoder reads those. Columns dvrflow only writes
// (Port.vlan_mode and trunks, Interface.ofport_request) are not monitored.
type columns[T any] map[string]func(*scanner, *T)

// decode reads one column of a row, skipping a column it does not know.
func (c columns[T]) decode(s *scanner, r *T, column string) {
	if f, ok := c[column]; ok {
		f(s, r)
		return
	}
	s.skip()
}

var (
	rootColumns = columns[rootRow]{
		"bridges":  func(s *scanner, r *rootRow) { r.Bridges = s.uuidSet() },
		"next_cfg": func(s *scanner, r *rootRow) { r.NextCfg = s.integer() },
		"cur_cfg":  func(s *scanner, r *rootRow) { r.CurCfg = s.integer() },
	}
	bridgeColumns = columns[bridgeRow]{
		"name":          func(s *scanner, r *bridgeRow) { r.Name = s.str() },
		"ports":         func(s *scanner, r *bridgeRow) { r.Ports = s.uuidSet() },
		"datapath_type": func(s *scanner, r *bridgeRow) { r.DatapathType = s.str() },
		"fail_mode":     func(s *scanner, r *bridgeRow) { r.FailMode = s.optString() },
		"protocols":     func(s *scanner, r *bridgeRow) { r.Protocols = s.stringSet() },
		"other_config":  func(s *scanner, r *bridgeRow) { r.OtherConfig = s.stringMap() },
		"flow_tables":   func(s *scanner, r *bridgeRow) { r.FlowTables = s.intUUIDMap() },
	}
	portColumns = columns[portRow]{
		"name":       func(s *scanner, r *portRow) { r.Name = s.str() },
		"interfaces": func(s *scanner, r *portRow) { r.Interfaces = s.uuidSet() },
		"tag":        func(s *scanner, r *portRow) { r.Tag = s.optInt() },
	}
	ifaceColumns = columns[ifaceRow]{
		"name": func(s *scanner, r *ifaceRow) { r.Name = s.str() },
		"type": func(s *scanner, r *ifaceRow) { r.Type = s.common() },
		"ofport": func(s *scanner, r *ifaceRow) {
			if n := s.optInt(); n != nil {
				r.Ofport = *n
			}
		},
		"error": func(s *scanner, r *ifaceRow) {
			if e := s.optString(); e != nil {
				r.Error = *e
			}
		},
		"external_ids": func(s *scanner, r *ifaceRow) { r.ExternalIDs = s.stringPairs() },
		"options":      func(s *scanner, r *ifaceRow) { r.Options = s.stringPairs() },
	}
	flowTableColumns = columns[flowTableRow]{
		"name": func(s *scanner, r *flowTableRow) { r.Name = s.optString() },
	}
)

// monitored returns the monitored tables and their columns.
func monitored() map[string][]string {
	return map[string][]string{
		vswitchd.OpenvSwitchTable: slices.Sorted(maps.Keys(rootColumns)),
		vswitchd.BridgeTable:      slices.Sorted(maps.Keys(bridgeColumns)),
		vswitchd.PortTable:        slices.Sorted(maps.Keys(portColumns)),
		vswitchd.InterfaceTable:   slices.Sorted(maps.Keys(ifaceColumns)),
		vswitchd.FlowTableTable:   slices.Sorted(maps.Keys(flowTableColumns)),
	}
}

// scanner reads JSON from b. The first error stops it: every later read returns a zero
// value, and err says where it went wrong.
type scanner struct {
	b   []byte
	i   int
	err error
}

func (s *scanner) fail(what string) {
	if s.err == nil {
		s.err = fmt.Errorf("decode table updates at byte %d: %s", s.i, what)
		s.i = len(s.b)
	}
}

// ws skips white space.
func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte without consuming it (0 at the end).
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// expect consumes c or fails.
func (s *scanner) expect(c byte) {
	if s.peek() != c {
		s.fail(fmt.Sprintf("want %q", c))
		return
	}
	s.i++
}

// more reports whether a list (object or array) has another element, consuming the comma
// or the closing byte.
func (s *scanner) more(close byte, first bool) bool {
	c := s.peek()
	switch {
	case c == close:
		s.i++
		return false
	case first:
		return s.err == nil
	case c == ',':
		s.i++
		return true
	}
	s.fail(fmt.Sprintf("want ',' or %q", close))
	return false
}

// object calls member for every key of an object; member must consume the value.
func (s *scanner) object(member func(key string)) {
	s.expect('{')
	for first := true; s.err == nil && s.more('}', first); first = false {
		key := s.str()
		s.expect(':')
		member(key)
	}
}

// array calls elem for every element of an array; elem must consume it.
func (s *scanner) array(elem func()) {
	s.expect('[')
	for first := true; s.err == nil && s.more(']', first); first = false {
		elem()
	}
}

// str reads a string.
func (s *scanner) str() string {
	raw, escaped := s.strRaw()
	if !escaped {
		return string(raw)
	}
	return s.unescape(raw)
}

// strRaw reads a string and returns the bytes between its quotes, and whether they hold an
// escape sequence.
func (s *scanner) strRaw() (raw []byte, escaped bool) {
	if s.peek() != '"' {
		s.fail("want a string")
		return nil, false
	}
	start := s.i + 1
	for s.i++; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '\\':
			escaped = true
			s.i++
		case c == '"':
			s.i++
			return s.b[start : s.i-1], escaped
		case c < 0x20:
			s.fail("control character in string")
			return nil, false
		}
	}
	s.fail("unterminated string")
	return nil, false
}

// unescape decodes the inside of a string with escape sequences.
func (s *scanner) unescape(raw []byte) string {
	quoted := make([]byte, 0, len(raw)+2)
	quoted = append(append(append(quoted, '"'), raw...), '"')
	var out string
	if err := json.Unmarshal(quoted, &out); err != nil {
		s.fail("bad string: " + err.Error())
	}
	return out
}

// common reads a string like str, but returns the one shared copy of the values every
// interface repeats (keys of external_ids, types) without allocating: 10,000 interfaces
// then hold one "iface-id" instead of 10,000.
func (s *scanner) common() string {
	raw, escaped := s.strRaw()
	if escaped {
		return s.unescape(raw)
	}
	switch string(raw) {
	case "":
		return ""
	case "iface-id":
		return "iface-id"
	case "attached-mac":
		return "attached-mac"
	case "iface-status":
		return "iface-status"
	case "vm-uuid":
		return "vm-uuid"
	case "active":
		return "active"
	case "peer":
		return "peer"
	case "patch":
		return "patch"
	case "internal":
		return "internal"
	}
	return string(raw)
}

// integer reads an integer.
func (s *scanner) integer() int {
	s.ws()
	start := s.i
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		s.i++
	}
	n, err := strconv.Atoi(string(s.b[start:s.i]))
	if err != nil {
		s.fail("want an integer")
	}
	return n
}

// skip consumes any value.
func (s *scanner) skip() {
	switch c := s.peek(); {
	case c == '{':
		s.object(func(string) { s.skip() })
	case c == '[':
		s.array(s.skip)
	case c == '"':
		s.str()
	default:
		start := s.i
		for s.i < len(s.b) {
			switch s.b[s.i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if s.i == start {
					s.fail("want a value")
				}
				return
			}
			s.i++
		}
		if s.i == start {
			s.fail("want a value")
		}
	}
}

// The OVSDB notation of the column types dvrflow reads (RFC 7047 section 5.1): a set of
// exactly one element may be sent as that bare atom, any set as ["set",[...]], a map as
// ["map",[[key,value],...]], a UUID as ["uuid","..."].

// tag reads the opening of ["tag", and returns the tag.
func (s *scanner) tag() string {
	s.expect('[')
	t := s.str()
	s.expect(',')
	return t
}

// uuid reads the rest of a UUID after its tag, up to the closing bracket.
func (s *scanner) uuidRest() string {
	u := s.str()
	s.expect(']')
	return u
}

// uuidAtom reads ["uuid","..."].
func (s *scanner) uuidAtom() string {
	if t := s.tag(); t != "uuid" {
		s.fail("want a uuid")
	}
	return s.uuidRest()
}

// uuidSet reads a set of UUIDs.
func (s *scanner) uuidSet() []string {
	switch t := s.tag(); t {
	case "uuid":
		return []string{s.uuidRest()}
	case "set":
		var out []string
		s.array(func() { out = append(out, s.uuidAtom()) })
		s.expect(']')
		return out
	default:
		s.fail("want a set of uuids")
		return nil
	}
}

// stringSet reads a set of strings.
func (s *scanner) stringSet() []string {
	if s.peek() == '"' {
		return []string{s.str()}
	}
	if s.tag() != "set" {
		s.fail("want a set of strings")
		return nil
	}
	var out []string
	s.array(func() { out = append(out, s.str()) })
	s.expect(']')
	return out
}

// optString reads a set of at most one string.
func (s *scanner) optString() *string {
	set := s.stringSet()
	switch len(set) {
	case 0:
		return nil
	case 1:
		return &set[0]
	}
	s.fail("want at most one string")
	return nil
}

// optInt reads a set of at most one integer.
func (s *scanner) optInt() *int {
	if s.peek() != '[' {
		n := s.integer()
		return &n
	}
	if s.tag() != "set" {
		s.fail("want a set of integers")
		return nil
	}
	var out []int
	s.array(func() { out = append(out, s.integer()) })
	s.expect(']')
	switch len(out) {
	case 0:
		return nil
	case 1:
		return &out[0]
	}
	s.fail("want at most one integer")
	return nil
}

// stringMap reads a map of strings to strings; nil when empty.
func (s *scanner) stringMap() map[string]string {
	if s.tag() != "map" {
		s.fail("want a map")
		return nil
	}
	var out map[string]string
	s.array(func() {
		s.expect('[')
		k := s.str()
		s.expect(',')
		v := s.str()
		s.expect(']')
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	})
	s.expect(']')
	return out
}

// stringPairs reads a map of strings to strings as flat pairs; nil when empty.
func (s *scanner) stringPairs() pairs {
	if s.tag() != "map" {
		s.fail("want a map")
		return nil
	}
	var out pairs
	s.array(func() {
		s.expect('[')
		k := s.common()
		s.expect(',')
		v := s.common()
		s.expect(']')
		out = append(out, k, v)
	})
	s.expect(']')
	return out
}

// intUUIDMap reads a map of integers to UUIDs; nil when empty.
func (s *scanner) intUUIDMap() map[int]string {
	if s.tag() != "map" {
		s.fail("want a map")
		return nil
	}
	var out map[int]string
	s.array(func() {
		s.expect('[')
		k := s.integer()
		s.expect(',')
		v := s.uuidAtom()
		s.expect(']')
		if out == nil {
			out = map[int]string{}
		}
		out[k] = v
	})
	s.expect(']')
	return out
}
