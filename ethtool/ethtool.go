// Package ethtool sets the one NIC offload the userspace datapath needs off: TX checksum
// offload on veths (the SIOCETHTOOL ioctl, as `ethtool -K IFNAME tx off`).
//
// The userspace datapath reads packets from a veth with AF_PACKET and forwards them as they
// are, so a TCP or UDP checksum left for the NIC to fill in would reach the other end
// unfilled and be dropped as bad (ICMP, checksummed in software, still works). With TX
// checksum offload off, the sending kernel computes every checksum itself.
package ethtool

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// DisableTxChecksum turns TX checksum offload off on ifname in the calling thread's network
// namespace, and checks that it is off.
func DisableTxChecksum(ifname string) error {
	if on, err := value(ifname, unix.ETHTOOL_GTXCSUM, 0); err == nil && on == 0 {
		return nil
	}
	if _, err := value(ifname, unix.ETHTOOL_STXCSUM, 0); err != nil {
		return fmt.Errorf("disable TX checksum offload on %s: %w", ifname, err)
	}
	on, err := value(ifname, unix.ETHTOOL_GTXCSUM, 0)
	if err != nil || on != 0 {
		return fmt.Errorf("TX checksum offload on %s still on (%d): %v", ifname, on, err)
	}
	return nil
}

// ifreqData is struct ifreq carrying a pointer (SIOCETHTOOL); the pointer stays an
// unsafe.Pointer so the garbage collector sees it.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unix.SizeofPtr]byte
}

// ethtoolValue is struct ethtool_value.
type ethtoolValue struct{ cmd, data uint32 }

// value runs a SIOCETHTOOL get/set-value command on ifname.
func value(ifname string, cmd, data uint32) (uint32, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	v := ethtoolValue{cmd: cmd, data: data}
	var ifr ifreqData
	copy(ifr.name[:unix.IFNAMSIZ-1], ifname)
	ifr.data = unsafe.Pointer(&v)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr))); errno != 0 {
		return 0, errno
	}
	return v.data, nil
}
