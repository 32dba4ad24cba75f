package inspect

import (
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows/dumptext"
)

// refNames maps the port and table numbers of one bridge to names and back.
type refNames struct {
	portName  map[int]string
	portNum   map[string]int
	tableName map[uint8]string
	tableNum  map[string]uint8
}

// quoteName quotes a name as ovs-ofctl --names does: bare when it is a letter followed by
// letters and digits, in double quotes otherwise.
func quoteName(s string) string {
	if s == "" {
		return `""`
	}
	for i, c := range s {
		letter := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return strconv.Quote(s)
		}
	}
	return s
}

// rewrite replaces every port and table reference of the flow's match and actions
// (in_port=, output:, goto_table:, resubmit(PORT,TABLE)) using port and table.
func rewrite(f *dumptext.Flow, port func(string) string, table func(string) string) {
	for i := range f.Match {
		if f.Match[i].Name == "in_port" {
			v := port(f.Match[i].Value)
			unquoted, err := strconv.Unquote(v)
			f.Match[i].Quoted = err == nil && strings.HasPrefix(v, `"`)
			if f.Match[i].Quoted {
				v = unquoted
			}
			f.Match[i].Value = v
		}
	}
	for i, a := range f.Actions {
		switch {
		case strings.HasPrefix(a, "output:"):
			f.Actions[i] = "output:" + port(strings.TrimPrefix(a, "output:"))
		case strings.HasPrefix(a, "goto_table:"):
			f.Actions[i] = "goto_table:" + table(strings.TrimPrefix(a, "goto_table:"))
		case strings.HasPrefix(a, "learn(table=") && strings.HasSuffix(a, ")"):
			inner := strings.TrimPrefix(a, "learn(table=")
			t, rest, _ := cutOutsideQuotes(inner)
			f.Actions[i] = "learn(table=" + table(t) + "," + rest
		case strings.HasPrefix(a, "resubmit(") && strings.HasSuffix(a, ")"):
			inner := strings.TrimSuffix(strings.TrimPrefix(a, "resubmit("), ")")
			p, t, ok := cutOutsideQuotes(inner)
			if !ok {
				continue
			}
			if p != "" {
				p = port(p)
			}
			if t != "" {
				t = table(t)
			}
			f.Actions[i] = "resubmit(" + p + "," + t + ")"
		}
	}
}

// cutOutsideQuotes cuts s at its first comma outside double quotes.
func cutOutsideQuotes(s string) (before, after string, ok bool) {
	quoted := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			quoted = !quoted
		case ',':
			if !quoted {
				return s[:i], s[i+1:], true
			}
		}
	}
	return s, "", false
}

func unquoteName(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		if u, err := strconv.Unquote(s); err == nil {
			return u
		}
	}
	return s
}

// canonical rewrites names to numbers (the form Neutron's dumps and dvrflow's flow text
// use); references it cannot resolve stay as they are.
func (n *refNames) canonical(f *dumptext.Flow) {
	rewrite(f, func(p string) string {
		if num, ok := n.portNum[unquoteName(p)]; ok {
			return strconv.Itoa(num)
		}
		return p
	}, func(t string) string {
		if num, ok := n.tableNum[unquoteName(t)]; ok {
			return strconv.Itoa(int(num))
		}
		return t
	})
}

// named rewrites numbers to names as ovs-ofctl --names prints them: ports by their OVSDB
// names, tables by their Flow_Table names.
func (n *refNames) named(f *dumptext.Flow) {
	rewrite(f, func(p string) string {
		if num, err := strconv.Atoi(p); err == nil {
			if name, ok := n.portName[num]; ok {
				return quoteName(name)
			}
		}
		return p
	}, func(t string) string {
		if num, err := strconv.ParseUint(t, 10, 8); err == nil {
			if name, ok := n.tableName[uint8(num)]; ok {
				return quoteName(name)
			}
		}
		return t
	})
}
