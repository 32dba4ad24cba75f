// Command narrow writes a copy of an OVSDB schema that keeps only the named tables and
// columns, so that modelgen generates models holding nothing else (see ../../gen.go).
//
//	narrow -o OUT SCHEMA TABLE=COLUMN,COLUMN,... [TABLE=...]
//
// A table or column missing from SCHEMA is an error (a typo would otherwise drop a column
// silently). An index is kept only when all its columns are; everything else about a kept
// table and column (types, constraints, isRoot, maxRows) is copied unchanged.
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"strings"
)

func main() {
	out := flag.String("o", "", "output file")
	flag.Parse()
	if *out == "" || flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: narrow -o OUT SCHEMA TABLE=COLUMN,... [TABLE=...]")
		os.Exit(2)
	}
	if err := run(*out, flag.Arg(0), flag.Args()[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "narrow:", err)
		os.Exit(1)
	}
}

func run(out, in string, specs []string) error {
	data, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	keep, err := parseSpecs(specs)
	if err != nil {
		return err
	}
	narrowed, err := narrow(data, keep)
	if err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	return os.WriteFile(out, narrowed, 0o644)
}

// parseSpecs parses TABLE=COLUMN,COLUMN arguments.
func parseSpecs(specs []string) (map[string][]string, error) {
	keep := map[string][]string{}
	for _, s := range specs {
		table, cols, ok := strings.Cut(s, "=")
		if !ok || table == "" || cols == "" {
			return nil, fmt.Errorf("bad argument %q: want TABLE=COLUMN,COLUMN", s)
		}
		if _, dup := keep[table]; dup {
			return nil, fmt.Errorf("table %s named twice", table)
		}
		keep[table] = strings.Split(cols, ",")
	}
	return keep, nil
}

// narrow returns the schema in data with only the tables and columns of keep.
func narrow(data []byte, keep map[string][]string) ([]byte, error) {
	var schema map[string]json.RawMessage
	if err := json.Unmarshal(data, &schema); err != nil {
		return nil, err
	}
	var tables map[string]map[string]json.RawMessage
	if err := json.Unmarshal(schema["tables"], &tables); err != nil {
		return nil, fmt.Errorf("tables: %w", err)
	}
	kept := map[string]map[string]json.RawMessage{}
	var errs []error
	for name, cols := range keep {
		table, ok := tables[name]
		if !ok {
			errs = append(errs, fmt.Errorf("no table %s", name))
			continue
		}
		t, err := narrowTable(table, cols)
		if err != nil {
			errs = append(errs, fmt.Errorf("table %s: %w", name, err))
			continue
		}
		kept[name] = t
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	schema["tables"] = raw
	delete(schema, "cksum") // no longer the checksum of this text
	out, err := json.Marshal(schema)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := json.Indent(&buf, out, "", "  "); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// narrowTable keeps the named columns of one table and the indexes made of them only.
func narrowTable(table map[string]json.RawMessage, keep []string) (map[string]json.RawMessage, error) {
	var columns map[string]json.RawMessage
	if err := json.Unmarshal(table["columns"], &columns); err != nil {
		return nil, fmt.Errorf("columns: %w", err)
	}
	kept := map[string]json.RawMessage{}
	for _, c := range keep {
		col, ok := columns[c]
		if !ok {
			return nil, fmt.Errorf("no column %s", c)
		}
		kept[c] = col
	}
	out := map[string]json.RawMessage{}
	for k, v := range table {
		out[k] = v
	}
	raw, err := json.Marshal(kept)
	if err != nil {
		return nil, err
	}
	out["columns"] = raw
	if idx, ok := table["indexes"]; ok {
		var indexes [][]string
		if err := json.Unmarshal(idx, &indexes); err != nil {
			return nil, fmt.Errorf("indexes: %w", err)
		}
		var keptIdx [][]string
		for _, index := range indexes {
			if !slices.ContainsFunc(index, func(c string) bool { _, ok := kept[c]; return !ok }) {
				keptIdx = append(keptIdx, index)
			}
		}
		delete(out, "indexes")
		if len(keptIdx) > 0 {
			if out["indexes"], err = json.Marshal(keptIdx); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}
