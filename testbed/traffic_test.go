package testbed

import (
	"context"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/sandbox"
)

// TestProbes: between two namespaces of a fabric, TCP and UDP probes are answered by an
// echo server, refused by a port nobody listens on, and silent towards an address whose
// frames go nowhere; a datagram sent from a second address of the namespace arrives with
// that source.
func TestProbes(t *testing.T) {
	sandbox.SkipIfShort(t, "probes between namespaces of a sandbox host")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	f := StartFabricForTest(t, "probe-test")
	a, err := f.AddEndpoint(ctx, EndpointSpec{Name: "a", Switch: "sw", CIDR: "198.51.100.1/24"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := f.AddEndpoint(ctx, EndpointSpec{Name: "b", Switch: "sw", CIDR: "198.51.100.2/24"})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ServeEcho(b.nsPath(), []int{80}, []int{53})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	// 198.51.100.9 has a MAC nobody holds: what goes there is never answered.
	if _, err := a.Run(ctx, "ip", "neigh", "add", "198.51.100.9", "lladdr", "fa:16:3e:99:99:99", "dev", EndpointInterface, "nud", "permanent"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Run(ctx, "ip", "addr", "add", "198.51.100.77/32", "dev", EndpointInterface); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		proto, from, to string
		want            Outcome
	}{
		{"tcp", "", "198.51.100.2:80", Answered},
		{"tcp", "198.51.100.77", "198.51.100.2:80", Answered},
		{"tcp", "", "198.51.100.2:81", Refused},
		{"tcp", "", "198.51.100.9:80", Silent},
		{"udp", "", "198.51.100.2:53", Answered},
		{"udp", "", "198.51.100.2:54", Refused},
		{"udp", "", "198.51.100.9:53", Silent},
	} {
		probe := ProbeTCP
		if c.proto == "udp" {
			probe = ProbeUDP
		}
		if got, err := probe(ctx, a.nsPath(), c.from, c.to, time.Second); got != c.want {
			t.Errorf("%s from %q to %s: %s (%v), want %s", c.proto, c.from, c.to, got, err, c.want)
		}
	}
	if err := SendUDP(a.nsPath(), "198.51.100.77", "198.51.100.2:53", []byte("x")); err != nil {
		t.Error(err)
	}
	if err := srv.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	if got, _ := ProbeTCP(ctx, a.nsPath(), "", "198.51.100.2:80", time.Second); got != Refused {
		t.Errorf("tcp to the closed echo server: %s, want refused", got)
	}
}
