package topology

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/northbound"
)

// topologyText is a minimal valid topology whose one network is called name.
func topologyText(name string) string {
	return "name: " + name + "\nnetworks: [{id: " + name + ", network_type: local}]\nports: []\n"
}

// networkOf names the one network of an update's snapshot; empty without a snapshot.
func networkOf(u *northbound.Update) string {
	if u.Snapshot == nil || len(u.Snapshot.Model.Networks) != 1 {
		return ""
	}
	return u.Snapshot.Model.Networks[0].ID
}

// replaceFile writes text to a temporary file beside path and renames it over path, the way
// editors and "mv tmp file" do.
func replaceFile(t *testing.T, path, text string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// nextUpdate waits up to a second for an update.
func nextUpdate(t *testing.T, ch <-chan *northbound.Update) *northbound.Update {
	t.Helper()
	select {
	case u, ok := <-ch:
		if !ok {
			t.Fatal("update channel closed")
		}
		return u
	case <-time.After(time.Second):
		t.Fatal("no update within a second")
	}
	return nil
}

// noUpdate checks that nothing arrives for a while.
func noUpdate(t *testing.T, ch <-chan *northbound.Update) {
	t.Helper()
	select {
	case u := <-ch:
		t.Fatalf("unexpected update %+v", u)
	case <-time.After(150 * time.Millisecond):
	}
}

func TestWatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, []byte(topologyText("v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := Watch(ctx, path, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	expect := func(step, name string) {
		t.Helper()
		u := nextUpdate(t, ch)
		if u.Err != nil || networkOf(u) != name {
			t.Fatalf("%s: update %+v, want topology %s", step, u, name)
		}
	}
	expect("initial load", "v1")

	replaceFile(t, path, topologyText("v2"))
	expect("write then rename", "v2")

	replaceFile(t, path, "networks: [\n")
	u := nextUpdate(t, ch)
	if u.Err == nil || u.Snapshot != nil {
		t.Fatalf("broken file: update %+v, want an error and no snapshot", u)
	}
	t.Logf("broken file reported as: %v", u.Err)

	if err := os.WriteFile(path, []byte(topologyText("v3")), 0o644); err != nil {
		t.Fatal(err)
	}
	expect("write in place", "v3")

	replaceFile(t, path, topologyText("v3")) // same content
	noUpdate(t, ch)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if u := nextUpdate(t, ch); u.Err == nil || u.Snapshot != nil {
		t.Fatalf("removed file: update %+v", u)
	}
	replaceFile(t, path, topologyText("v3"))
	expect("file back", "v3")

	cancel()
	select {
	case _, ok := <-ch:
		if ok {
			t.Fatal("update after cancel")
		}
	case <-time.After(time.Second):
		t.Fatal("channel not closed after cancel")
	}
}

func TestWatchErrors(t *testing.T) {
	_, err := Watch(context.Background(), filepath.Join(t.TempDir(), "nodir", "t.yaml"), nil)
	if err == nil {
		t.Fatal("watching a file in a missing directory: no error")
	}
	// A file that is broken from the start: an error without a topology.
	path := filepath.Join(t.TempDir(), "t.yaml")
	if err := os.WriteFile(path, []byte("ports: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := Watch(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if u := nextUpdate(t, ch); u.Err == nil || u.Snapshot != nil {
		t.Fatalf("update %+v, want an error and no topology", u)
	}
}

// A watch started from a loaded file sends nothing while the file is as it was read (the
// agent reconciles its first snapshot once), then one update per change.
func TestLoadedWatchSendsOnlyChanges(t *testing.T) {
	path := filepath.Join(t.TempDir(), "topology.yaml")
	if err := os.WriteFile(path, []byte(topologyText("v1")), 0o644); err != nil {
		t.Fatal(err)
	}
	loaded, err := LoadSnapshot(path)
	if err != nil {
		t.Fatal(err)
	}
	if n := loaded.Snapshot.Model.Networks; len(n) != 1 || n[0].ID != "v1" {
		t.Fatalf("loaded snapshot networks = %+v", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := loaded.Watch(ctx, zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	noUpdate(t, ch)
	replaceFile(t, path, topologyText("v2"))
	if u := nextUpdate(t, ch); u.Err != nil || networkOf(u) != "v2" {
		t.Fatalf("after a change: update %+v, want v2", u)
	}
	if _, err := LoadSnapshot(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !strings.Contains(err.Error(), "none.yaml") {
		t.Errorf("loading a missing file: err = %v, want one naming it", err)
	}
}
