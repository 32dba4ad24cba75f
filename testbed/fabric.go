package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/dvrflow/dvrflow/ethtool"
	"github.com/dvrflow/dvrflow/nsthread"
	"github.com/dvrflow/dvrflow/sandbox"
)

// Fabric is the physical network between sandbox hosts: a sandbox host of its own whose
// Linux bridges act as switches (a VLAN trunk needs nothing more: a bridge without
// vlan_filtering passes tagged frames), and whose network namespaces play machines outside
// the cloud (an external host on the external network). Every switch port is one end of a
// veth pair whose other end is in an agent host, where the test puts it on an OVS bridge.
// Its methods are safe for concurrent use.
type Fabric struct {
	host *sandbox.Host

	mu        sync.Mutex
	switches  map[string]bool
	links     int // veth pairs made so far, for unique switch port names
	endpoints map[string]*Endpoint
}

// StartFabric starts the fabric's sandbox host, named name plus a random suffix.
func StartFabric(ctx context.Context, name string, opts sandbox.Options) (*Fabric, error) {
	var b [3]byte
	_, _ = rand.Read(b[:])
	h, err := sandbox.Start(ctx, name+"-"+hex.EncodeToString(b[:]), opts)
	if err != nil {
		return nil, fmt.Errorf("start fabric: %w", err)
	}
	return newFabric(h), nil
}

// StartFabricForTest starts a fabric for a test and, when the test ends, deletes its
// endpoints and stops it (switches go with its namespaces); it fails the test when the host
// does not start.
func StartFabricForTest(t testing.TB, name string) *Fabric {
	t.Helper()
	f := newFabric(sandbox.StartForTest(t, name))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		f.mu.Lock()
		eps := maps.Clone(f.endpoints)
		f.mu.Unlock()
		for _, e := range eps {
			if err := e.Remove(ctx); err != nil {
				t.Errorf("fabric: %v", err)
			}
		}
	})
	return f
}

func newFabric(h *sandbox.Host) *Fabric {
	return &Fabric{host: h, switches: map[string]bool{}, endpoints: map[string]*Endpoint{}}
}

// Host returns the fabric's sandbox host: captures on a switch port run there.
func (f *Fabric) Host() *sandbox.Host { return f.host }

// Close stops the fabric's host (endpoints and switches go with its namespaces).
func (f *Fabric) Close(ctx context.Context) error { return f.host.Stop(ctx) }

// ensureSwitch makes the Linux bridge sw (≤ 15 characters) unless it exists. f.mu is held.
func (f *Fabric) ensureSwitch(ctx context.Context, sw string) error {
	if f.switches[sw] {
		return nil
	}
	for _, step := range [][]string{
		{"ip", "link", "add", sw, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
		{"ip", "link", "set", sw, "up"},
	} {
		if _, err := f.host.Run(ctx, step[0], step[1:]...); err != nil {
			return fmt.Errorf("fabric switch %s: %w", sw, err)
		}
	}
	f.switches[sw] = true
	return nil
}

// Connect links host to switch sw (made on first use) with a veth pair whose end in host is
// named ifname (up, TX checksum offload off); the caller puts ifname on an OVS bridge. It
// returns the name of the switch port, the pair's end in the fabric.
func (f *Fabric) Connect(ctx context.Context, sw string, host *sandbox.Host, ifname string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.ensureSwitch(ctx, sw); err != nil {
		return "", err
	}
	f.links++
	port := "p" + strconv.Itoa(f.links)
	if err := sandbox.Link(ctx, f.host, port, host, ifname); err != nil {
		return "", fmt.Errorf("connect %s to fabric switch %s: %w", host.Name(), sw, err)
	}
	if _, err := f.host.Run(ctx, "ip", "link", "set", port, "master", sw); err != nil {
		return "", fmt.Errorf("connect %s to fabric switch %s: %w", host.Name(), sw, err)
	}
	return port, nil
}

// EndpointSpec describes a machine outside the cloud: a network namespace of the fabric
// whose interface EndpointInterface sits on a switch.
type EndpointSpec struct {
	Name    string // namespace name inside the fabric (≤ 15 characters)
	Switch  string // the switch it is plugged into (made on first use)
	MAC     string // its interface's MAC; the kernel picks one if empty
	CIDR    string // its address with prefix, e.g. "203.0.113.1/24"
	Gateway string // default route via this address; none if empty
}

// EndpointInterface is the name of an endpoint's interface inside its namespace.
const EndpointInterface = "eth0"

// Endpoint is a machine outside the cloud, on a fabric switch.
type Endpoint struct {
	fabric *Fabric
	spec   EndpointSpec
}

// AddEndpoint creates the endpoint's namespace and veth pair (the other end, named
// "e-"+Name, on the switch), with its address and route; on failure it removes what it
// made.
func (f *Fabric) AddEndpoint(ctx context.Context, spec EndpointSpec) (_ *Endpoint, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.endpoints[spec.Name]; dup || spec.Name == "" || len("e-"+spec.Name) > 15 {
		return nil, fmt.Errorf("fabric endpoint %q: empty, too long (> 13 characters) or already there", spec.Name)
	}
	if err := f.ensureSwitch(ctx, spec.Switch); err != nil {
		return nil, err
	}
	port := "e-" + spec.Name
	if _, err := f.host.Run(ctx, "ip", "netns", "add", spec.Name); err != nil {
		return nil, fmt.Errorf("fabric endpoint %s: %w", spec.Name, err)
	}
	defer func() {
		if err != nil {
			uctx := context.WithoutCancel(ctx)
			_, _ = f.host.Run(uctx, "ip", "netns", "delete", spec.Name)
			_, _ = f.host.Run(uctx, "ip", "link", "delete", port)
			err = fmt.Errorf("fabric endpoint %s: %w", spec.Name, err)
		}
	}()
	peer := []string{"type", "veth", "peer", "name", EndpointInterface}
	if spec.MAC != "" {
		peer = append(peer, "address", spec.MAC)
	}
	if _, err := f.host.Run(ctx, "ip", append(append([]string{"link", "add", port}, peer...), "netns", spec.Name)...); err != nil {
		return nil, err
	}
	e := &Endpoint{fabric: f, spec: spec}
	// TX checksum offload off on both ends, as for VMs: the userspace datapath does not
	// fill in checksums left to the NIC.
	if err := errors.Join(
		nsthread.In("/proc/"+strconv.Itoa(f.host.Pid())+"/ns/net", func() error { return ethtool.DisableTxChecksum(port) }),
		nsthread.In(e.nsPath(), func() error { return ethtool.DisableTxChecksum(EndpointInterface) }),
	); err != nil {
		return nil, err
	}
	steps := [][]string{{"ip", "link", "set", port, "master", spec.Switch}, {"ip", "link", "set", port, "up"}}
	for _, s := range steps {
		if _, err := f.host.Run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	inside := [][]string{{"ip", "link", "set", "lo", "up"}}
	if spec.CIDR != "" {
		inside = append(inside, []string{"ip", "addr", "add", spec.CIDR, "dev", EndpointInterface})
	}
	inside = append(inside, []string{"ip", "link", "set", EndpointInterface, "up"})
	if spec.Gateway != "" {
		inside = append(inside, []string{"ip", "route", "add", "default", "via", spec.Gateway})
	}
	for _, s := range inside {
		if _, err := e.Run(ctx, s[0], s[1:]...); err != nil {
			return nil, err
		}
	}
	f.endpoints[spec.Name] = e
	return e, nil
}

// Remove deletes the endpoint's namespace (its veth pair goes with it).
func (e *Endpoint) Remove(ctx context.Context) error {
	f := e.fabric
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.host.Run(ctx, "ip", "netns", "delete", e.spec.Name); err != nil {
		return err
	}
	delete(f.endpoints, e.spec.Name)
	return nil
}

// nsPath is the endpoint's network namespace file, seen from our mount namespace.
func (e *Endpoint) nsPath() string {
	return "/proc/" + strconv.Itoa(e.fabric.host.Pid()) + "/root/run/netns/" + e.spec.Name
}

// Name returns the endpoint's namespace name.
func (e *Endpoint) Name() string { return e.spec.Name }

// Netns returns the path of the endpoint's network namespace, for code that enters it
// (testbed.ProbeTCP and friends).
func (e *Endpoint) Netns() string { return e.nsPath() }

// Command returns a command that runs inside the endpoint's namespace.
func (e *Endpoint) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	return e.fabric.host.Command(ctx, "ip", append([]string{"netns", "exec", e.spec.Name, name}, args...)...)
}

// Run runs a command inside the endpoint and returns its combined output; the error carries
// the command line and output.
func (e *Endpoint) Run(ctx context.Context, name string, args ...string) (string, error) {
	return e.fabric.host.Run(ctx, "ip", append([]string{"netns", "exec", e.spec.Name, name}, args...)...)
}
