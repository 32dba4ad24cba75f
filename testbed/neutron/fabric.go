package neutron

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"

	"github.com/dvrflow/dvrflow/sandbox"
)

// fabric is the physical network between the agent hosts: a sandbox host of its own whose
// Linux bridges act as switches, one for the tunnel underlay and one per physical network
// (a VLAN trunk: the bridge does not filter VLANs, so tagged frames pass). Every agent host
// gets a veth pair to the underlay switch and one per physical network it maps.
type fabric struct {
	host     *sandbox.Host
	switches map[string]bool // Linux bridges made so far
	links    int             // veth pairs made so far, for unique names
}

// underlaySwitch is the fabric's bridge for the tunnel underlay.
const underlaySwitch = "underlay"

func startFabric(ctx context.Context, opts sandbox.Options) (*fabric, error) {
	var b [3]byte
	_, _ = rand.Read(b[:])
	h, err := sandbox.Start(ctx, "nfab-"+hex.EncodeToString(b[:]), opts)
	if err != nil {
		return nil, fmt.Errorf("start fabric: %w", err)
	}
	return &fabric{host: h, switches: map[string]bool{}}, nil
}

// physnetSwitch names the fabric's bridge of a physical network (index i in the cloud's
// order, so any physnet name fits the 15 characters of an interface name).
func physnetSwitch(i int) string { return "physnet-" + strconv.Itoa(i) }

// connect links host to the fabric's switch sw with a veth pair whose end in host is named
// ifname, and returns nothing else: the caller puts ifname on an OVS bridge.
func (f *fabric) connect(ctx context.Context, sw string, host *sandbox.Host, ifname string) error {
	if !f.switches[sw] {
		for _, step := range [][]string{
			{"ip", "link", "add", sw, "type", "bridge", "stp_state", "0", "forward_delay", "0"},
			{"ip", "link", "set", sw, "up"},
		} {
			if _, err := f.host.Run(ctx, step[0], step[1:]...); err != nil {
				return fmt.Errorf("fabric switch %s: %w", sw, err)
			}
		}
		f.switches[sw] = true
	}
	f.links++
	port := "p" + strconv.Itoa(f.links)
	if err := sandbox.Link(ctx, f.host, port, host, ifname); err != nil {
		return fmt.Errorf("connect %s to fabric switch %s: %w", host.Name(), sw, err)
	}
	if _, err := f.host.Run(ctx, "ip", "link", "set", port, "master", sw); err != nil {
		return fmt.Errorf("connect %s to fabric switch %s: %w", host.Name(), sw, err)
	}
	return nil
}

func (f *fabric) close(ctx context.Context, keep bool) error {
	_ = keep // the fabric has no files worth keeping
	return f.host.Stop(ctx)
}
