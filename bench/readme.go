package main

import (
	"fmt"
	"os"
	"strings"
)

// The README's Benchmarks section holds the latest summary between these markers.
const (
	readmeBegin = "<!-- bench:begin -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme replaces what lies between the bench markers of the README with this run's
// summary table.
func updateReadme(path string, r *results) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	text := string(data)
	i, j := strings.Index(text, readmeBegin), strings.Index(text, readmeEnd)
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %s … %s markers in the Benchmarks section", path, readmeBegin, readmeEnd)
	}
	body := fmt.Sprintf("%s\n%s on %s:\n\n%s%s", readmeBegin, r.Date.UTC().Format("2006-01-02"), r.Machine, r.summary(), readmeEnd)
	text = text[:i] + body + text[j+len(readmeEnd):]
	return os.WriteFile(path, []byte(text), 0o644)
}
