package sandbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// StartForTest starts a host for a test, named name plus a random suffix so
// that parallel test packages never collide, and stops it when the test ends
// (keeping its run directory, and logging where, if the test failed). It
// calls t.Fatal, never t.Skip, when it is not root or Open vSwitch cannot be
// made available: the real switch is mandatory.
func StartForTest(t testing.TB, name string) *Host {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := EnsurePackages(ctx, log); err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	var b [3]byte
	_, _ = rand.Read(b[:])
	h, err := Start(ctx, name+"-"+hex.EncodeToString(b[:]), Options{Log: log})
	if err != nil {
		t.Fatalf("sandbox: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if t.Failed() {
			h.mu.Lock()
			h.opts.KeepRunDir = true
			h.mu.Unlock()
			t.Logf("sandbox host %s failed test: run dir kept at %s", h.Name(), h.RunDir())
		}
		if err := h.Stop(ctx); err != nil {
			t.Errorf("sandbox: %v", err)
		}
	})
	return h
}

// SkipIfShort skips a test that needs the real switch when the tests run with -short (a
// quick local run), and fails it instead under CI=true: CI must never pass by skipping
// the real parts.
func SkipIfShort(t testing.TB, what string) {
	t.Helper()
	if !testing.Short() {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s: -short is not allowed in CI (CI=true), the real switch is mandatory", what)
	}
	t.Skipf("%s: skipped with -short", what)
}
