package dumptext

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParseLine feeds arbitrary text (a dump attached to a bug report is outside input) to
// the dump-flows parser: it never panics, and a line it accepts renders back to text that
// parses to the same match and actions.
func FuzzParseLine(f *testing.F) {
	files, _ := filepath.Glob("../../testdata/neutron/scenarios/*.flows")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "cookie=") {
				f.Add(strings.Replace(l, "COOKIE", "0x1", -1))
			}
		}
	}
	f.Add(` cookie=0x0, duration=0.05s, table="LOCAL_SWITCHING", n_packets=0, n_bytes=0, priority=3,in_port="int-br-vlan",dl_vlan=5 actions=set_field:4099->vlan_vid,resubmit(,TRANSIENT)`)
	f.Fuzz(func(t *testing.T, line string) {
		fl, err := ParseLine(line, nil)
		if err != nil {
			return
		}
		again, err := ParseLine(fl.Text(), nil)
		if err != nil {
			t.Fatalf("%q parsed, its text %q does not: %v", line, fl.Text(), err)
		}
		if again.MatchText() != fl.MatchText() || again.ActionsText() != fl.ActionsText() || again.Priority != fl.Priority {
			t.Fatalf("%q: text %q parses to %q", line, fl.Text(), again.Text())
		}
	})
}
