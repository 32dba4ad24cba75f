package main

import (
	"fmt"
	"strings"
)

// section starts a part of the narrative.
func section(s string) { fmt.Printf("\n== %s\n", s) }

// indent indents every line of s by five spaces.
func indent(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("     " + l + "\n")
	}
	return b.String()
}

// wrap indents a paragraph written with line breaks by three spaces.
func wrap(s string) string {
	var b strings.Builder
	for i, l := range strings.Split(s, "\n") {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString("   " + l)
	}
	return b.String()
}
