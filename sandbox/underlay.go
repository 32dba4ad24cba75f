package sandbox

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"go.uber.org/zap"
)

// UnderlaySpec describes a host's tunnel underlay: a netdev bridge of its own holding the
// uplink (one end of a Link), whose internal port carries the host's tunnel endpoint
// address. This is how tunnels work in the userspace datapath: ovs-vswitchd encapsulates
// in software and finds the way to a remote endpoint from the namespace's routing table,
// which the address on the bridge's internal port provides.
type UnderlaySpec struct {
	// Bridge is the underlay bridge, e.g. "br-phy"; created with datapath_type=netdev.
	Bridge string
	// Uplink is an interface of the host (e.g. made by Link) added to Bridge.
	Uplink string
	// CIDR is the tunnel endpoint address with its prefix, e.g. "192.168.50.1/24".
	CIDR string
}

// AddUnderlay creates spec.Bridge (netdev) with spec.Uplink as a port, puts spec.CIDR on
// the bridge's internal interface and brings it up. It waits until ovs-vswitchd knows the
// route to the endpoint's subnet, so that tunnel ports can send at once.
func (h *Host) AddUnderlay(ctx context.Context, spec UnderlaySpec) error {
	pfx, err := netip.ParsePrefix(spec.CIDR)
	if err != nil {
		return fmt.Errorf("underlay on host %s: %w", h.name, err)
	}
	if !validIfName.MatchString(spec.Bridge) || !validIfName.MatchString(spec.Uplink) {
		return fmt.Errorf("underlay on host %s: invalid bridge %q or uplink %q (≤ 15 chars)", h.name, spec.Bridge, spec.Uplink)
	}
	if _, err := h.Vsctl(ctx, "--may-exist", "add-br", spec.Bridge, "--", "set", "Bridge", spec.Bridge, "datapath_type=netdev",
		"--", "--may-exist", "add-port", spec.Bridge, spec.Uplink); err != nil {
		return fmt.Errorf("underlay on host %s: %w", h.name, err)
	}
	for _, step := range [][]string{
		{"ip", "addr", "replace", spec.CIDR, "dev", spec.Bridge},
		{"ip", "link", "set", spec.Bridge, "up"},
	} {
		if _, err := h.Run(ctx, step[0], step[1:]...); err != nil {
			return fmt.Errorf("underlay on host %s: %w", h.name, err)
		}
	}
	// vswitchd reads routes from netlink notifications; wait until it has this one.
	want := pfx.Masked().String()
	for {
		out, err := h.Appctl(ctx, "vswitchd", "ovs/route/show")
		if err == nil && strings.Contains(out, want+" dev "+spec.Bridge) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("underlay on host %s: ovs-vswitchd never learnt the route to %s: %w (routes: %s)", h.name, want, ctx.Err(), out)
		case <-time.After(50 * time.Millisecond):
		}
	}
	h.log.Info("sandbox underlay added", zap.String("bridge", spec.Bridge), zap.String("uplink", spec.Uplink), zap.String("cidr", spec.CIDR))
	return nil
}
