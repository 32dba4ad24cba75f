package trace

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary text to the ofproto/trace parser (ovs-vswitchd's answer, and
// whatever a version of OVS prints): it never panics.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.txt"))
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(data))
	}
	f.Fuzz(func(t *testing.T, text string) {
		_, _ = Parse(text)
	})
}
