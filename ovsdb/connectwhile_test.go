package ovsdb

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestConnectWhile: the client comes back connected after the work, and a failed work
// returns its own error with no client.
func TestConnectWhile(t *testing.T) {
	e := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ran := false
	c, err := ConnectWhile(ctx, e.h.DBEndpoint(), zaptest.NewLogger(t), func() error { ran = true; return nil })
	if err != nil {
		t.Fatalf("ConnectWhile: %v", err)
	}
	defer c.Close()
	if !ran {
		t.Error("work did not run")
	}
	if _, err := c.root(); err != nil {
		t.Errorf("connected client has no Open_vSwitch row in its cache: %v", err)
	}

	bad := errors.New("topology broken")
	c2, err := ConnectWhile(ctx, e.h.DBEndpoint(), zaptest.NewLogger(t), func() error { return bad })
	if !errors.Is(err, bad) || c2 != nil {
		t.Errorf("failed work: got client %v, error %v; want no client and %v", c2, err, bad)
	}
}
