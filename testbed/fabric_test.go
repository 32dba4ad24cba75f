package testbed

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// TestFabricEndpoints: two endpoints on one switch of a fabric reach each other; a removed
// endpoint's namespace is gone.
func TestFabricEndpoints(t *testing.T) {
	sandbox.SkipIfShort(t, "fabric on a sandbox host")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := StartFabricForTest(t, "fab-test")
	a, err := f.AddEndpoint(ctx, EndpointSpec{Name: "a", Switch: "sw", MAC: "fa:16:3e:00:00:0a", CIDR: "198.51.100.1/24"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.AddEndpoint(ctx, EndpointSpec{Name: "b", Switch: "sw", CIDR: "198.51.100.2/24", Gateway: "198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.AddEndpoint(ctx, EndpointSpec{Name: "a", Switch: "sw"}); err == nil {
		t.Error("a second endpoint named a was made")
	}
	if out, err := b.Run(ctx, "ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "198.51.100.1"); err != nil {
		t.Fatalf("b → a: %v", err)
	} else if !strings.Contains(out, "2 received") {
		t.Errorf("b → a: %s", out)
	}
	if out, err := a.Run(ctx, "ip", "link", "show", EndpointInterface); err != nil || !strings.Contains(out, "fa:16:3e:00:00:0a") {
		t.Errorf("a's interface has not the MAC asked for (%v): %s", err, out)
	}
	if err := b.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := f.Host().Run(ctx, "ip", "netns", "list")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if fs := strings.Fields(l); len(fs) > 0 {
			names = append(names, fs[0])
		}
	}
	if strings.Join(names, " ") != "a" {
		t.Errorf("namespaces of the fabric after removing b: %q, want [a]", names)
	}
}
