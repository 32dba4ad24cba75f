package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

const schema = `{"name": "DB", "version": "1.0.0", "cksum": "1 2", "tables": {
  "A": {"columns": {"name": {"type": "string"}, "x": {"type": "integer"}, "y": {"type": "boolean"}},
        "indexes": [["name"], ["x", "y"]], "isRoot": true},
  "B": {"columns": {"z": {"type": "string"}}}}}`

func TestNarrow(t *testing.T) {
	out, err := narrow([]byte(schema), map[string][]string{"A": {"name", "x"}})
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Name   string `json:"name"`
		Cksum  *string
		Tables map[string]struct {
			Columns map[string]json.RawMessage `json:"columns"`
			Indexes [][]string                 `json:"indexes"`
			IsRoot  bool                       `json:"isRoot"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if got.Name != "DB" || got.Cksum != nil {
		t.Errorf("name %q, cksum %v: want DB and no checksum", got.Name, got.Cksum)
	}
	a, ok := got.Tables["A"]
	if len(got.Tables) != 1 || !ok {
		t.Fatalf("tables %v, want A only", got.Tables)
	}
	var x bytes.Buffer
	if len(a.Columns) != 2 || json.Compact(&x, a.Columns["x"]) != nil || x.String() != `{"type":"integer"}` || a.Columns["name"] == nil {
		t.Errorf("columns of A: %s", out)
	}
	if len(a.Indexes) != 1 || strings.Join(a.Indexes[0], ",") != "name" {
		t.Errorf("indexes of A = %v, want [[name]] (x,y loses y)", a.Indexes)
	}
	if !a.IsRoot {
		t.Error("isRoot dropped")
	}
}

func TestNarrowRejectsUnknownNames(t *testing.T) {
	for _, keep := range []map[string][]string{{"C": {"z"}}, {"A": {"name", "nope"}}} {
		if _, err := narrow([]byte(schema), keep); err == nil {
			t.Errorf("narrow(%v): no error", keep)
		}
	}
	for _, args := range [][]string{{"A"}, {"A="}, {"=x"}, {"A=x", "A=y"}} {
		if _, err := parseSpecs(args); err == nil {
			t.Errorf("parseSpecs(%q): no error", args)
		}
	}
}
