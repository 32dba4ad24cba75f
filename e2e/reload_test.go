package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// TestSIGHUPReloadsConfig: SIGHUP makes the running agent read its config files (and the
// topology) again and apply what changed: turning prevent_arp_spoofing off removes the
// port's spoofing protection; an ini that no longer loads is refused and changes nothing.
func TestSIGHUPReloadsConfig(t *testing.T) {
	needsSwitch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	topo, ini := oneHostWithIni(t, "[dvrflow]\nprevent_arp_spoofing = true\n")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	h := sandbox.StartForTest(t, "sighup")
	a := startAgent(t, h, topo, "--config-file", ini)
	waitFor(t, 20*time.Second, "the agent creates br-int", func() error { return bridgeExists(ctx, h, "br-int") })
	if _, err := h.AddVM(ctx, sandbox.VMSpec{Name: "p1", Bridge: "br-int", PortName: "tap" + portIDs["p1"][:11],
		IfaceID: portIDs["p1"], MAC: "fa:16:3e:00:00:01", CIDR: "10.0.0.1/24"}); err != nil {
		t.Fatal(err)
	}
	spoofing := func() (int, error) {
		hits, err := flowsWith(ctx, h, "br-int", "table=24,", "in_port=")
		return len(hits), err
	}
	waitFor(t, 20*time.Second, "the port's ARP spoofing protection", func() error {
		if n, err := spoofing(); err != nil || n == 0 {
			return fmt.Errorf("%d table 24 flows (%v)", n, err)
		}
		return nil
	})

	// An ini that does not load: refused, nothing changes.
	write("[dvrflow]\nprevent_arp_spoofing = maybe\n")
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the refusal of the broken ini", func() error {
		if !strings.Contains(a.Log(), "config not changed") {
			return fmt.Errorf("not logged yet")
		}
		return nil
	})
	if n, err := spoofing(); err != nil || n == 0 {
		t.Fatalf("the broken ini changed the flows: %d table 24 flows (%v)", n, err)
	}

	write("[dvrflow]\nprevent_arp_spoofing = false\n")
	if err := a.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the spoofing protection removed after SIGHUP", func() error {
		if n, err := spoofing(); err != nil || n != 0 {
			return fmt.Errorf("%d table 24 flows of ports left (%v)", n, err)
		}
		return nil
	})
}

// oneHostWithIni writes oneHostTopology with port p1 and an ini file holding text, and
// returns their paths.
func oneHostWithIni(t *testing.T, text string) (topo, ini string) {
	t.Helper()
	dir := t.TempDir()
	topo, ini = filepath.Join(dir, "topology.yaml"), filepath.Join(dir, "agent.ini")
	writeFileAtomic(t, topo, []byte(oneHostTopology(false, "p1")))
	if err := os.WriteFile(ini, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return topo, ini
}
