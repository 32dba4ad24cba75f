package namespace

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/dvrflow/dvrflow/ethtool"
	"github.com/dvrflow/dvrflow/nsthread"
)

// netnsDir is where named network namespaces are bind-mounted, as `ip netns` does.
const netnsDir = "/run/netns"

// inNamespace runs f on a thread that has entered the network namespace ns.
func inNamespace(ns netns.NsHandle, f func() error) error {
	return nsthread.Run(func() error {
		if err := netns.Set(ns); err != nil {
			return fmt.Errorf("enter network namespace: %w", err)
		}
		return f()
	})
}

// listNamespaces returns the names in /run/netns that start with prefix.
func listNamespaces(prefix string) ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) && !e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// openNamespace opens the named namespace; ok is false when /run/netns has no such name.
func openNamespace(name string) (ns netns.NsHandle, ok bool, err error) {
	ns, err = netns.GetFromPath(filepath.Join(netnsDir, name))
	if errors.Is(err, unix.ENOENT) {
		return netns.None(), false, nil
	}
	if err != nil {
		return netns.None(), false, err
	}
	// A file left behind by a creation that failed before its bind mount is not a
	// namespace: treat it as absent (createNamespace replaces it).
	if !isNetns(ns) {
		ns.Close()
		return netns.None(), false, nil
	}
	return ns, true, nil
}

// isNetns reports whether fd refers to a network namespace (nsfs), not a plain file.
func isNetns(ns netns.NsHandle) bool {
	var st unix.Statfs_t
	return unix.Fstatfs(int(ns), &st) == nil && st.Type == unix.NSFS_MAGIC
}

// createNamespace creates the named network namespace the way `ip netns add` does: it makes
// /run/netns a shared mount point (so that the namespace mounts propagate to other mount
// namespaces), creates an empty file there, unshares a new network namespace on a locked
// thread and bind-mounts it onto the file. A leftover plain file of that name is replaced.
// It returns a handle on the new namespace.
func createNamespace(name string) (netns.NsHandle, error) {
	path := filepath.Join(netnsDir, name)
	if err := sharedNetnsDir(); err != nil {
		return netns.None(), err
	}
	if _, err := os.Lstat(path); err == nil {
		if ns, ok, _ := openNamespace(name); ok {
			ns.Close()
			return netns.None(), fmt.Errorf("%s already exists", path)
		}
		_ = os.Remove(path) // an unmounted leftover of a failed creation
	}
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if err != nil {
		return netns.None(), err
	}
	f.Close()
	err = nsthread.Run(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare network namespace: %w", err)
		}
		self := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(self, path, "none", unix.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mount network namespace on %s: %w", path, err)
		}
		return nil
	})
	if err != nil {
		_ = os.Remove(path)
		return netns.None(), err
	}
	ns, ok, err := openNamespace(name)
	if err == nil && !ok {
		err = fmt.Errorf("%s is not a network namespace after creation", path)
	}
	if err != nil {
		_ = deleteNamespace(name)
		return netns.None(), err
	}
	return ns, nil
}

// sharedNetnsDir makes /run/netns exist and be a shared mount point, as iproute2 does before
// adding a namespace: mount --make-shared, after bind-mounting it onto itself if it is not a
// mount point yet (EINVAL).
func sharedNetnsDir() error {
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return err
	}
	err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	if errors.Is(err, unix.EINVAL) {
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mount %s onto itself: %w", netnsDir, err)
		}
		err = unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
	}
	if err != nil {
		return fmt.Errorf("make %s a shared mount: %w", netnsDir, err)
	}
	return nil
}

// deleteNamespace unmounts and removes the named namespace, as `ip netns delete` does. The
// namespace itself goes away once nothing else holds it (processes, open handles).
func deleteNamespace(name string) error {
	path := filepath.Join(netnsDir, name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("unmount %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// sysctl is one /proc/sys/net setting of a router namespace.
type sysctl struct {
	path  string // under /proc/sys
	value string
	// optional settings are skipped when the file does not exist (IPv6 disabled).
	optional bool
	// same are other values that count as value when read back (a kernel rounding).
	same []string
}

// routerSysctls are what Neutron's L3 agent sets in a router namespace: forwarding; ARP
// replies only for addresses of the receiving interface (arp_ignore=1) and the best local
// source address in requests (arp_announce=2), which keeps each qr- device answering for its
// own subnet only; secondary addresses promoted when a primary goes. (Writing
// ipv6/conf/all/forwarding sets the default for later devices too.)
var routerSysctls = []sysctl{
	{path: "net/ipv4/ip_forward", value: "1"},
	{path: "net/ipv4/conf/all/arp_ignore", value: "1"},
	{path: "net/ipv4/conf/all/arp_announce", value: "2"},
	{path: "net/ipv4/conf/all/promote_secondaries", value: "1", optional: true},
	{path: "net/ipv6/conf/all/forwarding", value: "1", optional: true},
}

// snatSysctls are what Neutron's L3 agent sets in a snat namespace (SnatNamespace.create):
// a router namespace's, plus non-local binds allowed and conntrack's TCP pickup of
// connections seen mid-stream off (nf_conntrack_tcp_loose=0), so that SNAT never takes over a
// TCP connection it did not see begin.
var snatSysctls = append(slices.Clip(routerSysctls),
	sysctl{path: "net/ipv4/ip_nonlocal_bind", value: "1"},
	sysctl{path: "net/netfilter/nf_conntrack_tcp_loose", value: "0", optional: true},
)

// setSysctls writes the settings that differ, on a thread inside ns (/proc/sys/net shows the
// network namespace of the thread that opens it). It returns the settings it changed.
func setSysctls(ns netns.NsHandle, settings []sysctl) (changed []string, err error) {
	err = inNamespace(ns, func() error {
		for _, s := range settings {
			p := filepath.Join("/proc/sys", s.path)
			cur, err := os.ReadFile(p)
			if errors.Is(err, os.ErrNotExist) && s.optional {
				continue
			}
			if err != nil {
				return fmt.Errorf("sysctl %s: %w", s.path, err)
			}
			if v := strings.TrimSpace(string(cur)); v == s.value || slices.Contains(s.same, v) {
				continue
			}
			if err := os.WriteFile(p, []byte(s.value+"\n"), 0o644); err != nil {
				return fmt.Errorf("sysctl %s=%s: %w", s.path, s.value, err)
			}
			changed = append(changed, s.path+"="+s.value)
		}
		return nil
	})
	return changed, err
}

// disableTxChecksum is `ethtool -K IFNAME tx off` inside ns. The userspace datapath reads
// packets from a veth with AF_PACKET and forwards them as they are, so a TCP or UDP checksum
// left for the NIC to fill in would reach the VM unfilled; with TX checksum offload off the
// kernel computes every checksum itself. (The kernel datapath does not need it; it costs
// little.)
func disableTxChecksum(ns netns.NsHandle, ifname string) error {
	return inNamespace(ns, func() error { return ethtool.DisableTxChecksum(ifname) })
}
