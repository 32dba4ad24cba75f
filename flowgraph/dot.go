package flowgraph

import (
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Colours of the picture, one per kind of edge and node.
const (
	tableFill      = "#eef3fb"
	emptyTableFill = "#ffffff"
	exitFill       = "#fdf1dc"
	patchColour    = "#c05000"
	resubmitColour = "#2f6fb0"
	ctColour       = "#7a3fb0"
	outputColour   = "#707070"
)

// WriteDOT writes the graph in Graphviz's DOT language: one cluster per bridge, tables left
// to right. The text depends only on the graph, so it can be compared with a golden file.
func (g *Graph) WriteDOT(w io.Writer) error {
	d := &dotWriter{w: w}
	d.line("digraph pipeline {")
	d.line(`  graph [rankdir=LR, fontname="Helvetica", fontsize=12, nodesep=0.25, ranksep=0.6];`)
	d.line(`  node [shape=box, style="rounded,filled", fillcolor=%s, fontname="Helvetica", fontsize=10];`, quote(tableFill))
	d.line(`  edge [fontname="Helvetica", fontsize=9, color=%s];`, quote(outputColour))
	for _, b := range g.Bridges {
		d.line("  subgraph %s {", quote("cluster_"+b.Name))
		d.line("    label=%s;", quote(bridgeLabel(b)))
		d.line(`    style="rounded"; color="#9aa5b1";`)
		for _, t := range b.Tables {
			attrs := "label=" + quote(tableLabel(t))
			if t.Flows == 0 {
				attrs += `, style="rounded,dashed,filled", fillcolor=` + quote(emptyTableFill)
			}
			d.line("    %s [%s];", quote(t.ID), attrs)
		}
		for _, e := range b.Exits {
			d.line("    %s [label=%s, shape=ellipse, style=filled, fillcolor=%s];", quote(e.ID), quote(e.Label), quote(exitFill))
		}
		d.line("  }")
	}
	for _, e := range g.Edges {
		d.line("  %s -> %s [%s];", quote(e.From), quote(e.To), edgeAttrs(e))
	}
	d.line("}")
	return d.err
}

// DOT returns the graph in the DOT language.
func (g *Graph) DOT() string {
	var b strings.Builder
	_ = g.WriteDOT(&b) // a strings.Builder does not fail
	return b.String()
}

func bridgeLabel(b Bridge) string {
	label := b.Name + " — " + plural(b.Flows, "flow")
	if b.Packets > 0 {
		label += ", " + plural64(b.Packets, "packet")
	}
	return label
}

func tableLabel(t Table) string {
	title := strconv.Itoa(int(t.Number))
	if t.Name != "" {
		title += " " + t.Name
	}
	counts := plural(t.Flows, "flow")
	if t.Flows == 0 {
		counts = "no flows"
	}
	if t.Packets > 0 {
		counts += ", " + plural64(t.Packets, "pkt")
	}
	return title + "\n" + counts
}

func edgeAttrs(e Edge) string {
	label := strconv.Itoa(e.Flows)
	if e.Flows == 0 {
		label = ""
	}
	if e.Packets > 0 {
		label += " (" + plural64(e.Packets, "pkt") + ")"
	}
	attrs := []string{}
	switch e.Kind {
	case EdgePatch:
		label = strings.TrimSuffix(e.Port+"\n"+label, "\n")
		attrs = append(attrs, "color="+quote(patchColour), "fontcolor="+quote(patchColour), "penwidth=2")
	case EdgeResubmit:
		label = "resubmit " + label
		attrs = append(attrs, "color="+quote(resubmitColour), "style=dashed")
	case EdgeConntrack:
		label = "ct " + label
		attrs = append(attrs, "color="+quote(ctColour), "style=dashed")
	case EdgeGoto:
		attrs = append(attrs, `color="#333333"`)
	}
	return strings.Join(append([]string{"label=" + quote(label)}, attrs...), ", ")
}

func plural(n int, unit string) string { return plural64(uint64(n), unit) }

func plural64(n uint64, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.FormatUint(n, 10) + " " + unit + "s"
}

// quote makes a DOT double-quoted string: quotes and backslashes escaped, line breaks as
// DOT's centred-line escape \n. Every identifier and label goes through it, so a table or
// port name cannot break out of its string.
func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

type dotWriter struct {
	w   io.Writer
	err error
}

func (d *dotWriter) line(format string, args ...any) {
	if d.err != nil {
		return
	}
	_, d.err = fmt.Fprintf(d.w, format+"\n", args...)
}
