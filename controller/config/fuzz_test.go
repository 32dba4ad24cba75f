package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzLoadConfig feeds arbitrary ini files to the loader and the start-up checks: nothing
// panics, a refused file is named in its error, and a loaded config can be checked and
// listed for what it does not honour. Seeds: Neutron's shipped ini and operator-style files.
func FuzzLoadConfig(f *testing.F) {
	shipped, err := os.ReadFile(neutronIni)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(shipped))
	for _, s := range []string{"", "[ovs]\nbridge_mappings = physnet1:br-vlan,extnet:br-ex\nlocal_ip = 192.0.2.7\n",
		"[agent]\ntunnel_types = vxlan, GRE\nl2_population = yes\ndscp = 46\n",
		"[dvrflow]\nagent_mode = dvr\ndvr_mac = fa:16:3f:00:00:07\nverify_interval = 30\n",
		"[securitygroup]\nfirewall_driver = openvswitch\n[dvrflow]\nallow_unfiltered_ports = true\n",
		"[ovs\nbridge_mappings = :\n"} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		path := filepath.Join(dir, "fuzz.ini")
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		c, warnings, err := LoadConfig(path)
		for _, w := range warnings {
			if w.File != path || w.Reason == "" {
				t.Fatalf("a warning that names nothing: %+v", w)
			}
		}
		if err != nil {
			if !strings.Contains(err.Error(), path) {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		c.Host = "fuzz"
		_ = c.Validate()
		for _, u := range c.Unhonoured() {
			if u.Option == "" || u.Reason == "" {
				t.Fatalf("an unhonoured option that names nothing: %+v", u)
			}
		}
	})
}
