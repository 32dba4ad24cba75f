package ovsdb

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/ovn-kubernetes/libovsdb/ovsdb"
)

// appendTransact appends the params of a transact request, ["Open_vSwitch", op, ...], as
// JSON. It writes the operations dvrflow builds directly: a cold node's tag transaction
// is 10,000 updates, and encoding/json spends most of its time in the wire types' own
// MarshalJSON methods and in re-validating what they return. The output is what
// json.Marshal of the same operations gives, up to the order of object keys.
func appendTransact(b []byte, ops []ovsdb.Operation) ([]byte, error) {
	b = append(b, `["Open_vSwitch"`...)
	for i := range ops {
		b = append(b, ',')
		var err error
		if b, err = appendOp(b, &ops[i]); err != nil {
			return nil, fmt.Errorf("op %d (%s %s): %w", i, ops[i].Op, ops[i].Table, err)
		}
	}
	return append(b, ']'), nil
}

func appendOp(b []byte, op *ovsdb.Operation) ([]byte, error) {
	var err error
	b = append(b, `{"op":`...)
	b = appendString(b, op.Op)
	if op.Table != "" {
		b = append(b, `,"table":`...)
		b = appendString(b, op.Table)
	}
	if op.Where != nil || op.Op == ovsdb.OperationSelect {
		b = append(b, `,"where":[`...)
		for i, c := range op.Where {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendString(b, c.Column)
			b = append(b, ',')
			b = appendString(b, string(c.Function))
			b = append(b, ',')
			if b, err = appendValue(b, c.Value); err != nil {
				return nil, err
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if op.Row != nil {
		b = append(b, `,"row":`...)
		if b, err = appendRow(b, op.Row); err != nil {
			return nil, err
		}
	}
	if op.Rows != nil {
		b = append(b, `,"rows":[`...)
		for i, r := range op.Rows {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = appendRow(b, r); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	if op.Columns != nil {
		b = append(b, `,"columns":[`...)
		for i, c := range op.Columns {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, c)
		}
		b = append(b, ']')
	}
	if op.Mutations != nil {
		b = append(b, `,"mutations":[`...)
		for i, m := range op.Mutations {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			b = appendString(b, m.Column)
			b = append(b, ',')
			b = appendString(b, string(m.Mutator))
			b = append(b, ',')
			if b, err = appendValue(b, m.Value); err != nil {
				return nil, err
			}
			b = append(b, ']')
		}
		b = append(b, ']')
	}
	if op.Timeout != nil {
		b = append(b, `,"timeout":`...)
		b = strconv.AppendInt(b, int64(*op.Timeout), 10)
	}
	if op.Until != "" {
		b = append(b, `,"until":`...)
		b = appendString(b, op.Until)
	}
	if op.UUIDName != "" {
		b = append(b, `,"uuid-name":`...)
		b = appendString(b, op.UUIDName)
	}
	if op.Durable != nil || op.Comment != nil || op.Lock != nil || op.UUID != "" {
		return nil, fmt.Errorf("operation fields dvrflow does not write")
	}
	return append(b, '}'), nil
}

// appendRow writes a row's columns in sorted order.
func appendRow(b []byte, row ovsdb.Row) ([]byte, error) {
	b = append(b, '{')
	for i, col := range slices.Sorted(maps.Keys(row)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, col)
		b = append(b, ':')
		var err error
		if b, err = appendValue(b, row[col]); err != nil {
			return nil, fmt.Errorf("column %s: %w", col, err)
		}
	}
	return append(b, '}'), nil
}

// appendValue writes an OVSDB value: an atom, a UUID, a set or a map.
func appendValue(b []byte, v any) ([]byte, error) {
	switch v := v.(type) {
	case string:
		return appendString(b, v), nil
	case int:
		return strconv.AppendInt(b, int64(v), 10), nil
	case bool:
		return strconv.AppendBool(b, v), nil
	case ovsdb.UUID:
		tag := `["named-uuid",`
		if isUUID(v.GoUUID) {
			tag = `["uuid",`
		}
		return append(appendString(append(b, tag...), v.GoUUID), ']'), nil
	case ovsdb.OvsSet:
		if len(v.GoSet) == 1 {
			return appendValue(b, v.GoSet[0])
		}
		b = append(b, `["set",[`...)
		for i, e := range v.GoSet {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendValue(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, "]]"...), nil
	case ovsdb.OvsMap:
		b = append(b, `["map",[`...)
		keys := make([]any, 0, len(v.GoMap))
		for k := range v.GoMap {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, func(x, y any) int { return compareAtoms(x, y) })
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '[')
			var err error
			if b, err = appendValue(b, k); err != nil {
				return nil, err
			}
			b = append(b, ',')
			if b, err = appendValue(b, v.GoMap[k]); err != nil {
				return nil, err
			}
			b = append(b, ']')
		}
		return append(b, "]]"...), nil
	}
	// Anything else (a float, say) the way encoding/json writes it.
	out, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, out...), nil
}

// compareAtoms orders map keys (strings or integers) so the output is stable.
func compareAtoms(x, y any) int {
	xs, xok := x.(string)
	ys, yok := y.(string)
	if xok && yok {
		switch {
		case xs < ys:
			return -1
		case xs > ys:
			return 1
		}
		return 0
	}
	xi, xok := x.(int)
	yi, yok := y.(int)
	if xok && yok {
		return xi - yi
	}
	return 0
}

// appendString writes s as a JSON string.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x7f {
			out, _ := json.Marshal(s) // escapes, and replaces invalid UTF-8, as JSON wants
			return append(b, out...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// isUUID reports whether s is a UUID in its canonical text form (8-4-4-4-12 hex digits),
// rather than the name of a row inserted by the same transaction.
func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
