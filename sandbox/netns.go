package sandbox

import (
	"context"
	"fmt"
	"net"

	"github.com/dvrflow/dvrflow/ethtool"
	"github.com/dvrflow/dvrflow/nsthread"
)

// inNetns runs f on an OS thread that has entered the network namespace at nsPath
// (e.g. /proc/HOLDER/root/run/netns/VM); see [nsthread.In].
func inNetns(nsPath string, f func() error) error { return nsthread.In(nsPath, f) }

// disableTxChecksum is `ethtool -K IFNAME tx off` inside the network namespace at nsPath
// (why: package ethtool).
func disableTxChecksum(nsPath, ifname string) error {
	return inNetns(nsPath, func() error { return ethtool.DisableTxChecksum(ifname) })
}

// Dial connects to address from inside the host's network namespace (the socket stays in
// it): a test reaches a listener the agent opened on the host's loopback this way.
func (h *Host) Dial(ctx context.Context, network, address string) (net.Conn, error) {
	var c net.Conn
	err := inNetns(h.netnsPath(), func() error {
		var d net.Dialer
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s in host %s: %w", address, h.name, err)
	}
	return c, nil
}
