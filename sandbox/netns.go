package sandbox

import (
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"

	"github.com/dvrflow/dvrflow/ethtool"
)

// inNetns runs f on an OS thread that has entered the network namespace at
// nsPath (e.g. /proc/HOLDER/root/run/netns/VM). Sockets f creates belong to
// that namespace and keep working after f returns. The thread returns to its
// own namespace afterwards; if it cannot, it stays locked so that the Go
// runtime discards it rather than reusing it. (A locked thread is not
// always discarded: the main thread is only parked, which is why the
// namespace must be restored rather than the thread abandoned.)
func inNetns(nsPath string, f func() error) error {
	target, err := os.Open(nsPath)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	defer target.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		own, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer own.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter network namespace %s: %w", nsPath, err)
			return
		}
		ferr := f()
		if err := unix.Setns(int(own.Fd()), unix.CLONE_NEWNET); err != nil {
			// Stay locked: the thread is in the wrong namespace for good.
			errc <- errors.Join(ferr, fmt.Errorf("return from network namespace %s: %w", nsPath, err))
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// disableTxChecksum is `ethtool -K IFNAME tx off` inside the network
// namespace at nsPath. The userspace datapath reads packets from veths with
// AF_PACKET and forwards them as they are, so a partial checksum left for
// the NIC to fill in reaches the other VM unfilled and TCP/UDP are dropped
// as bad checksums (ICMP, checksummed in software, still works). With TX
// checksum offload off the VM's kernel fills in every checksum itself.
func disableTxChecksum(nsPath, ifname string) error {
	return inNetns(nsPath, func() error { return ethtool.DisableTxChecksum(ifname) })
}
