package e2e

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/testbed/neutron"
)

// neutronBed is the one Neutron test bed (RabbitMQ, MariaDB, neutron-server) the package's
// Neutron tests share: it starts on first use and stops when the package's tests end
// (TestMain). Each test adds agent hosts of its own, with names and underlay addresses no
// other test uses; tests that restart a service restart it for everyone after them, and
// wait until it serves again before they end.
var neutronBed struct {
	once   sync.Once
	cloud  *neutron.Cloud
	err    error
	failed atomic.Bool
}

// neutronCloud returns the shared test bed, starting it if needed.
func neutronCloud(t *testing.T) *neutron.Cloud {
	t.Helper()
	neutronBed.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		log, _ := zap.NewDevelopment(zap.IncreaseLevel(zap.InfoLevel))
		// agent_down_time 30 s (3 report intervals of the test bed's agents) instead of 75:
		// a test can make the server count an agent dead, then revived, in CI time.
		neutronBed.cloud, neutronBed.err = neutron.Start(ctx, neutron.Options{Log: log, AgentDownTime: 30})
	})
	if neutronBed.err != nil {
		t.Fatalf("neutron test bed: %v", neutronBed.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			neutronBed.failed.Store(true)
		}
	})
	return neutronBed.cloud
}

// closeNeutronCloud stops the shared test bed, keeping its files when a test failed.
func closeNeutronCloud() {
	c := neutronBed.cloud
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if neutronBed.failed.Load() {
		c.KeepDir()
		fmt.Fprintf(os.Stderr, "neutron test bed: a test failed, files kept in %s (logs in %s)\n", c.Dir(), c.LogDir())
	}
	if err := c.Close(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "neutron test bed:", err)
	}
}
