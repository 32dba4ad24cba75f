package ofconn

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// testOVS is a sandbox host (its own namespaces, ovsdb-server and
// ovs-vswitchd, stopped by pid when the test ends) with one bridge, br0:
// datapath_type=netdev, fail_mode=secure, OpenFlow 1.0 and 1.3.
type testOVS struct {
	h *sandbox.Host
}

func startOVS(t testing.TB) *testOVS {
	t.Helper()
	sandbox.SkipIfShort(t, "real Open vSwitch")
	o := &testOVS{h: sandbox.StartForTest(t, "ofconn")}
	o.vsctl(t, "add-br", "br0", "--", "set", "bridge", "br0", "datapath_type=netdev",
		"fail_mode=secure", "protocols=OpenFlow10,OpenFlow13")
	return o
}

// mgmt returns the management socket of a bridge, br0 by default.
func (o *testOVS) mgmt(bridge ...string) string {
	if len(bridge) > 0 {
		return o.h.MgmtSocket(bridge[0])
	}
	return o.h.MgmtSocket("br0")
}

func cmdCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 60*time.Second)
}

func (o *testOVS) vsctl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := cmdCtx()
	defer cancel()
	out, err := o.h.Vsctl(ctx, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (o *testOVS) ofctl(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := cmdCtx()
	defer cancel()
	out, err := o.h.Ofctl(ctx, append([]string{"-O", "OpenFlow13"}, args...)...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// flowCount returns flow_count from ovs-ofctl dump-aggregate br0.
func (o *testOVS) flowCount(t testing.TB) int {
	t.Helper()
	out := o.ofctl(t, "dump-aggregate", "br0")
	i := strings.Index(out, "flow_count=")
	if i < 0 {
		t.Fatalf("dump-aggregate: no flow_count in %q", out)
	}
	n, err := strconv.Atoi(strings.TrimSpace(out[i+len("flow_count="):]))
	if err != nil {
		t.Fatalf("dump-aggregate: %v in %q", err, out)
	}
	return n
}
