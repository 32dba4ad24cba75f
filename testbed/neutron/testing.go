package neutron

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// StartForTest starts a test bed for a test (installing what is missing) and closes it when
// the test ends; if the test failed, the directory (configuration, every log, the database)
// is kept and its path logged. It calls t.Fatal when the test bed cannot start.
func StartForTest(t testing.TB, opts Options) *Cloud {
	t.Helper()
	if opts.Log == nil {
		opts.Log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	c, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("neutron test bed: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if t.Failed() {
			c.KeepDir()
			t.Logf("neutron test bed: test failed, files kept in %s (logs in %s)", c.Dir(), c.LogDir())
		}
		if err := c.Close(ctx); err != nil {
			t.Errorf("neutron test bed: %v", err)
		}
	})
	return c
}
