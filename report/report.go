// Package report writes the one self-contained HTML page an operator attaches to a ticket
// about a node: the pipeline graph (inline SVG), a summary of the bridges and of the diff,
// every flow with its table, counters, rule and owner in a table that a small inline
// script filters as one types, and the diff (missing, extra and changed flows). The page
// loads nothing from anywhere: styles and script are embedded, and every piece of text
// from the switch is escaped by html/template. Pure: it writes to the io.Writer it is given.
package report

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/dvrflow/dvrflow/inspect"
)

// Input is what the page shows.
type Input struct {
	// Title names the node ("compute1"); it heads the page.
	Title string
	// Generated is when the data was read; the zero time leaves it out.
	Generated time.Time
	// Flows are the flow records per bridge.
	Flows map[string][]inspect.FlowRecord
	// GraphSVG is the pipeline graph as Graphviz renders it (flowgraph.Render), nil for
	// none.
	GraphSVG []byte
	// Diff is the comparison with what dvrflow would install, nil when it was not computed
	// (no topology).
	Diff *inspect.DiffResult
}

var (
	//go:embed page.html.tmpl
	pageTemplate string
	//go:embed page.css
	pageCSS string
	//go:embed filter.js
	filterJS string
)

var page = template.Must(template.New("page").Funcs(template.FuncMap{
	"cells": rowCells,
	"none":  noneIfEmpty,
}).Parse(pageTemplate))

// Write writes the page.
func Write(w io.Writer, in Input) error {
	svg, err := inlineSVG(in.GraphSVG)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := page.Execute(&buf, newView(in, svg)); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if _, err := w.Write(buf.Bytes()); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return nil
}

// view is what the template reads.
type view struct {
	Title     string
	Generated string
	CSS       template.CSS
	Script    template.JS
	Graph     template.HTML
	Bridges   []bridgeSummary
	Total     bridgeSummary
	Rows      []inspect.FlowRecord
	Columns   []string
	Choices   []choice
	Diff      *inspect.DiffResult
	DiffLine  string
}

type bridgeSummary struct {
	Name           string
	Flows, Tables  int
	Packets, Bytes uint64
}

// choice is one select of the filter: the distinct values of a column.
type choice struct {
	ID, Label string
	Values    []string
}

// Columns of the flow table, in order; rowCells gives a record's cells in the same order.
var columns = []string{"bridge", "table", "priority", "match", "actions", "packets", "bytes", "rule", "owner kind", "owner id", "owner name"}

// noneValue stands for an empty rule or owner in the filter's selects.
const noneValue = "(none)"

func newView(in Input, svg template.HTML) view {
	v := view{
		Title:   in.Title,
		CSS:     template.CSS(pageCSS),
		Script:  template.JS(filterJS),
		Graph:   svg,
		Columns: columns,
		Diff:    in.Diff,
	}
	if !in.Generated.IsZero() {
		v.Generated = in.Generated.UTC().Format(time.RFC3339)
	}
	bridges, rules, kinds := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, name := range slices.Sorted(maps.Keys(in.Flows)) {
		s := bridgeSummary{Name: name}
		tables := map[uint8]bool{}
		for _, r := range in.Flows[name] {
			s.Flows++
			s.Packets += r.Packets
			s.Bytes += r.Bytes
			tables[r.Table] = true
			v.Rows = append(v.Rows, r)
			rules[noneIfEmpty(r.Rule)] = true
			kinds[noneIfEmpty(ownerKind(r))] = true
		}
		s.Tables = len(tables)
		bridges[name] = true
		v.Bridges = append(v.Bridges, s)
		v.Total.Flows += s.Flows
		v.Total.Tables += s.Tables
		v.Total.Packets += s.Packets
		v.Total.Bytes += s.Bytes
	}
	v.Choices = []choice{
		{ID: "bridge", Label: "bridge", Values: slices.Sorted(maps.Keys(bridges))},
		{ID: "rule", Label: "rule", Values: slices.Sorted(maps.Keys(rules))},
		{ID: "kind", Label: "owner kind", Values: slices.Sorted(maps.Keys(kinds))},
	}
	v.DiffLine = diffLine(in.Diff)
	return v
}

func diffLine(d *inspect.DiffResult) string {
	switch {
	case d == nil:
		return "not computed (no topology to compare with)"
	case d.Equal:
		return "equal: the switch holds exactly the flows dvrflow would install"
	}
	return fmt.Sprintf("different: %d missing, %d extra, %d changed", len(d.Missing), len(d.Extra), len(d.Changed))
}

// rowCells are a record's cells in the flow table, as the page shows them and as its
// filter searches them.
func rowCells(r inspect.FlowRecord) []string {
	table := strconv.Itoa(int(r.Table))
	if r.TableName != "" {
		table += " " + r.TableName
	}
	var kind, id, name string
	if r.Owner != nil {
		kind, id, name = r.Owner.Kind, r.Owner.ID, r.Owner.Name
	}
	return []string{
		r.Bridge, table, strconv.Itoa(int(r.Priority)), r.Match, r.Actions,
		strconv.FormatUint(r.Packets, 10), strconv.FormatUint(r.Bytes, 10),
		r.Rule, kind, id, name,
	}
}

func ownerKind(r inspect.FlowRecord) string {
	if r.Owner == nil {
		return ""
	}
	return r.Owner.Kind
}

func noneIfEmpty(s string) string {
	if s == "" {
		return noneValue
	}
	return s
}

// inlineSVG makes Graphviz's SVG document an element the page can hold: the XML prolog and
// doctype are cut. Graphviz escapes every label it writes, so the SVG carries no markup
// from the flows; an SVG with a script or foreign content is refused all the same.
func inlineSVG(svg []byte) (template.HTML, error) {
	if len(svg) == 0 {
		return "", nil
	}
	s := string(svg)
	start := strings.Index(s, "<svg")
	if start < 0 {
		return "", errors.New("report: the graph is not an SVG document")
	}
	s = s[start:]
	lower := strings.ToLower(s)
	for _, bad := range []string{"<script", "<foreignobject", "javascript:", "<iframe"} {
		if strings.Contains(lower, bad) {
			return "", fmt.Errorf("report: the graph SVG contains %s", bad)
		}
	}
	return template.HTML(s), nil // #nosec G203 -- checked above; Graphviz escaped the labels
}
