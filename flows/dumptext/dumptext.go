// Package dumptext reads the text `ovs-ofctl dump-flows` prints: one flow per line with its
// cookie, table, counters, priority, match and actions, with or without statistics
// (--no-stats) and with or without names (--names: tables and ports by name). It is how the
// CLI reads a switch (live, or a dump attached to a bug report) in the same form as
// Neutron's reference dumps; it knows nothing about what the flows mean.
package dumptext

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// DefaultPriority is OpenFlow's priority when the text names none.
const DefaultPriority = 0x8000

// Flow is one dumped flow.
type Flow struct {
	Cookie uint64
	// Table is the table number; TableName is the name ovs-ofctl printed instead of a number
	// (--names and a named table), "" when it printed a number. A name that Parse could not
	// resolve leaves Table 0 and TableResolved false.
	Table         uint8
	TableName     string
	TableResolved bool
	Priority      uint16
	// Match holds the match fields in the order printed, without priority; a protocol
	// keyword ("arp", "icmp6") is a field with an empty Value and no '='.
	Match []Field
	// Actions are the top-level actions in order ("drop" for none).
	Actions []string
	// Packets and Bytes are the counters; HasStats says the line carried them.
	Packets, Bytes uint64
	HasStats       bool
	// Extra holds the other header fields (idle_timeout=..., importance=...), as printed.
	Extra []string
}

// Field is one match field: "dl_vlan=196" is {Name: "dl_vlan", Value: "196"}.
type Field struct {
	Name  string
	Value string
	// Bare is set for keywords printed without '=' ("arp", "ip").
	Bare bool
	// Quoted is set for a value printed in double quotes (ovs-ofctl --names quotes a port
	// name that is not a letter followed by letters and digits); Value is without them.
	Quoted bool
}

// String renders the field as ovs-ofctl does.
func (f Field) String() string {
	if f.Bare {
		return f.Name
	}
	if f.Quoted || strings.ContainsAny(f.Value, ",\"() \t\n\r\v\f") {
		return f.Name + "=" + strconv.Quote(f.Value)
	}
	return f.Name + "=" + f.Value
}

// Get returns the value of the first match field with that name.
func (f *Flow) Get(name string) (string, bool) {
	for _, m := range f.Match {
		if m.Name == name {
			return m.Value, true
		}
	}
	return "", false
}

// Has reports whether the match has a field (or keyword) of that name.
func (f *Flow) Has(name string) bool {
	_, ok := f.Get(name)
	return ok
}

// MatchText is the match as ovs-ofctl prints it, without the priority.
func (f *Flow) MatchText() string {
	parts := make([]string, len(f.Match))
	for i, m := range f.Match {
		parts[i] = m.String()
	}
	return strings.Join(parts, ",")
}

// ActionsText is the action list as ovs-ofctl prints it.
func (f *Flow) ActionsText() string { return strings.Join(f.Actions, ",") }

// Text is the flow without cookie, table and statistics: "priority=N,MATCH actions=A", as
// `ovs-ofctl --no-stats` prints it after the table.
func (f *Flow) Text() string {
	var b strings.Builder
	if f.Priority != DefaultPriority {
		b.WriteString("priority=")
		b.WriteString(strconv.Itoa(int(f.Priority)))
		if len(f.Match) > 0 {
			b.WriteByte(',')
		}
	}
	b.WriteString(f.MatchText())
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString("actions=")
	b.WriteString(f.ActionsText())
	return b.String()
}

// headerFields are the fields ovs-ofctl prints before the priority, separated by ", ".
var headerFields = map[string]bool{
	"cookie": true, "duration": true, "table": true, "n_packets": true, "n_bytes": true,
	"idle_age": true, "hard_age": true, "idle_timeout": true, "hard_timeout": true,
	"importance": true, "send_flow_rem": true, "reset_counts": true, "no_packet_counts": true,
	"no_byte_counts": true, "check_overlap": true, "out_port": true, "out_group": true,
}

// flagFields are the flow flags ovs-ofctl prints, each as a bare word followed by a space,
// between the header fields and the priority (ofp-flow.c, ofputil_flow_stats_format).
var flagFields = map[string]bool{
	"send_flow_rem": true, "check_overlap": true, "reset_counts": true, "no_packet_counts": true,
	"no_byte_counts": true,
}

// Tables resolves a table name to its number; nil resolves none.
type Tables func(name string) (uint8, bool)

// Parse reads a dump: every line that is a flow; blank lines, '#' comments and ovs-ofctl's
// reply headers ("OFPST_FLOW reply ...", "NXST_FLOW ...") are skipped. tables resolves table
// names (--names dumps). An unparsable line is an error naming its line number.
func Parse(r io.Reader, tables Tables) ([]Flow, error) {
	var out []Flow
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 16*1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "OFPST_") || strings.HasPrefix(line, "NXST_") {
			continue
		}
		f, err := ParseLine(line, tables)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// ParseLine parses one flow line.
func ParseLine(line string, tables Tables) (Flow, error) {
	f := Flow{Priority: DefaultPriority, TableResolved: true}
	line = strings.TrimSpace(line)
	head, actions, ok := cutActions(line)
	if !ok {
		return f, fmt.Errorf("no actions= in %q", line)
	}
	f.Actions = SplitActions(actions)
	if len(f.Actions) == 0 {
		return f, fmt.Errorf("empty actions in %q", line)
	}
	tokens, closed := splitQuoted(head)
	if !closed {
		return f, fmt.Errorf("unbalanced quotes in %q", head)
	}
	for _, tok := range tokens {
		tok = strings.TrimSpace(tok)
		// Flow flags are printed as bare words ended by a space, not a comma:
		// "table=71, reset_counts priority=110,ct_state=+trk actions=...".
		for tok != "" {
			word, rest, _ := strings.Cut(tok, " ")
			if !flagFields[word] {
				break
			}
			f.Extra = append(f.Extra, word)
			tok = strings.TrimSpace(rest)
		}
		if tok == "" {
			continue
		}
		name, value, hasValue := strings.Cut(tok, "=")
		if !isFieldName(strings.SplitN(name, ":", 2)[0]) {
			return f, fmt.Errorf("%q is not a field name in %q", name, line)
		}
		if !hasValue {
			name, value, hasValue = strings.Cut(tok, ":") // e.g. "importance:5" never; keep bare
			if hasValue && headerFields[name] {
				f.Extra = append(f.Extra, tok)
				continue
			}
			f.Match = append(f.Match, Field{Name: tok, Bare: true})
			continue
		}
		quoted := strings.HasPrefix(value, `"`)
		if value, ok = unquote(value); !ok {
			return f, fmt.Errorf("%s: stray quote in %q", name, value)
		}
		switch {
		case name == "cookie":
			c, err := strconv.ParseUint(strings.TrimPrefix(value, "0x"), 16, 64)
			if err != nil {
				return f, fmt.Errorf("cookie %q: %w", value, err)
			}
			f.Cookie = c
		case name == "table":
			if n, err := strconv.ParseUint(value, 10, 8); err == nil {
				f.Table = uint8(n)
				break
			}
			f.TableName = value
			f.TableResolved = false
			if tables != nil {
				if n, ok := tables(value); ok {
					f.Table, f.TableResolved = n, true
				}
			}
		case name == "n_packets":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return f, fmt.Errorf("n_packets %q: %w", value, err)
			}
			f.Packets, f.HasStats = n, true
		case name == "n_bytes":
			n, err := strconv.ParseUint(value, 10, 64)
			if err != nil {
				return f, fmt.Errorf("n_bytes %q: %w", value, err)
			}
			f.Bytes, f.HasStats = n, true
		case name == "priority":
			n, err := strconv.ParseUint(value, 10, 16)
			if err != nil {
				return f, fmt.Errorf("priority %q: %w", value, err)
			}
			f.Priority = uint16(n)
		case headerFields[name]:
			if name != "duration" && name != "idle_age" && name != "hard_age" {
				f.Extra = append(f.Extra, tok)
			}
		default:
			f.Match = append(f.Match, Field{Name: name, Value: value, Quoted: quoted})
		}
	}
	return f, nil
}

// isFieldName reports whether s is spelled like an OpenFlow match or header field name
// ("nw_src", "reg5", "NXM_NX_REG0", "tun_metadata0"): letters, digits, '_' and '.'.
func isFieldName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// cutActions splits a line at its first "actions=" that starts the line or follows a space or
// a comma: the match part cannot contain it, the actions may contain anything.
func cutActions(line string) (head, actions string, ok bool) {
	for i := strings.Index(line, "actions="); i >= 0; {
		if i == 0 || line[i-1] == ' ' || line[i-1] == ',' {
			return strings.TrimRight(line[:i], " ,"), strings.TrimSpace(line[i+len("actions="):]), true
		}
		next := strings.Index(line[i+1:], "actions=")
		if next < 0 {
			break
		}
		i += 1 + next
	}
	return "", "", false
}

// SplitActions splits an action list at its top-level commas: "learn(a,b),output:2" is
// ["learn(a,b)", "output:2"].
func SplitActions(s string) []string {
	var out []string
	for _, a := range splitTopLevel(s) {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// splitTopLevel splits at commas outside parentheses and quotes.
func splitTopLevel(s string) []string {
	out, _ := splitQuoted(s)
	return out
}

// splitQuoted splits at commas outside parentheses and double quotes (in which a backslash
// escapes the next byte); closed is false when a quote is left open.
func splitQuoted(s string) (out []string, closed bool) {
	depth, start, quoted := 0, 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted = !quoted
		case quoted && c == '\\':
			i++
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			if depth > 0 {
				depth--
			}
		case c == ',' && depth == 0:
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:]), !quoted
}

// unquote removes the double quotes ovs-ofctl puts around some names (with C escapes inside);
// ok is false for a value with a quote anywhere else.
func unquote(s string) (string, bool) {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		u, err := strconv.Unquote(s)
		return u, err == nil
	}
	return s, !strings.Contains(s, `"`)
}
