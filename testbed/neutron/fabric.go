package neutron

import (
	"context"
	"strconv"

	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed"
)

// fabric is the physical network between the agent hosts ([testbed.Fabric]): one switch for
// the tunnel underlay and one per physical network. Every agent host gets a veth pair to the
// underlay switch and one per physical network it maps.
type fabric struct{ *testbed.Fabric }

// underlaySwitch is the fabric's bridge for the tunnel underlay.
const underlaySwitch = "underlay"

func startFabric(ctx context.Context, opts sandbox.Options) (*fabric, error) {
	f, err := testbed.StartFabric(ctx, "nfab", opts)
	if err != nil {
		return nil, err
	}
	return &fabric{f}, nil
}

// physnetSwitch names the fabric's bridge of a physical network (index i in the cloud's
// order, so any physnet name fits the 15 characters of an interface name).
func physnetSwitch(i int) string { return "physnet-" + strconv.Itoa(i) }

// connect links host to the fabric's switch sw with a veth pair whose end in host is named
// ifname; the caller puts ifname on an OVS bridge.
func (f *fabric) connect(ctx context.Context, sw string, host *sandbox.Host, ifname string) error {
	_, err := f.Connect(ctx, sw, host, ifname)
	return err
}

func (f *fabric) close(ctx context.Context, keep bool) error {
	_ = keep // the fabric has no files worth keeping
	return f.Close(ctx)
}
