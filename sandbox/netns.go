package sandbox

import (
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
