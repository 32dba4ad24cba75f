package nat

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/dvrflow/dvrflow/nsthread"
)

// The lab: three network namespaces the test creates (and always deletes), joined by veth
// pairs, standing for a VM, its router and the outside world:
//
//	inside (eth0: 10.0.0.2/24, 10.0.0.3/24, default via 10.0.0.1)
//	  └─ router (qr-in: 10.0.0.1/24; qg-out: 203.0.113.1/24; forwarding on)
//	       └─ outside (eth0: 203.0.113.100/24; routes to 10.0.0.0/24 and 203.0.113.10 via .1)
//
// The outside routes back to the inside subnet, so that a datagram from inside arrives
// whether or not it is NATed, and its source address shows which NAT (if any) it got.
// 203.0.113.10 is the floating IP; it is no address anywhere, only the router's DNAT makes
// it reach 10.0.0.2.
var (
	vm      = netip.MustParseAddr("10.0.0.2")
	vm2     = netip.MustParseAddr("10.0.0.3")
	subnet  = netip.MustParsePrefix("10.0.0.0/24")
	gateway = netip.MustParseAddr("203.0.113.1")
	fip     = netip.MustParseAddr("203.0.113.10")
	world   = netip.MustParseAddr("203.0.113.100")
)

const (
	gwDevice = "qg-out"
	// receiveTimeout bounds every wait for a datagram that must arrive.
	receiveTimeout = 5 * time.Second
)

type node struct {
	name string
	path string
	ns   netns.NsHandle
}

type lab struct {
	inside, router, outside *node
}

// newNode creates a named network namespace, deleted when the test ends (also when it
// fails).
func newNode(t *testing.T, name string) *node {
	t.Helper()
	n := &node{name: name, path: filepath.Join("/run/netns", name), ns: netns.None()}
	t.Cleanup(func() {
		if n.ns.IsOpen() {
			n.ns.Close()
		}
		if err := netns.DeleteNamed(name); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("delete network namespace %s: %v", name, err)
		}
	})
	err := nsthread.Run(func() error {
		ns, err := netns.NewNamed(name)
		n.ns = ns
		return err
	})
	if err != nil {
		t.Fatalf("create network namespace %s: %v", name, err)
	}
	return n
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("these tests create network namespaces: run them as root")
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "dvrflownat-" + hex.EncodeToString(b[:]) + "-"
	l := &lab{inside: newNode(t, prefix+"inside"), router: newNode(t, prefix+"router"), outside: newNode(t, prefix+"outside")}

	l.router.veth(t, "qr-in", l.inside, "eth0")
	l.router.veth(t, gwDevice, l.outside, "eth0")
	l.inside.addr(t, "eth0", "10.0.0.2/24", "10.0.0.3/24")
	l.inside.route(t, "0.0.0.0/0", "10.0.0.1")
	l.router.addr(t, "qr-in", "10.0.0.1/24")
	l.router.addr(t, gwDevice, "203.0.113.1/24")
	l.router.sysctl(t, "net/ipv4/ip_forward", "1")
	l.outside.addr(t, "eth0", "203.0.113.100/24")
	l.outside.route(t, "10.0.0.0/24", "203.0.113.1")
	l.outside.route(t, "203.0.113.10/32", "203.0.113.1")
	return l
}

func (n *node) handle(t *testing.T) *netlink.Handle {
	t.Helper()
	h, err := netlink.NewHandleAt(n.ns)
	if err != nil {
		t.Fatalf("%s: netlink: %v", n.name, err)
	}
	t.Cleanup(h.Close)
	return h
}

// veth joins n's device name to peer's device peerName, both up (loopbacks too).
func (n *node) veth(t *testing.T, name string, peer *node, peerName string) {
	t.Helper()
	h := n.handle(t)
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: peerName, PeerNamespace: netlink.NsFd(int(peer.ns))}
	if err := h.LinkAdd(v); err != nil {
		t.Fatalf("%s: add veth %s/%s: %v", n.name, name, peerName, err)
	}
	for _, end := range []struct {
		n    *node
		name string
	}{{n, name}, {peer, peerName}, {n, "lo"}, {peer, "lo"}} {
		eh := end.n.handle(t)
		link, err := eh.LinkByName(end.name)
		if err == nil {
			err = eh.LinkSetUp(link)
		}
		if err != nil {
			t.Fatalf("%s: set %s up: %v", end.n.name, end.name, err)
		}
	}
}

func (n *node) addr(t *testing.T, dev string, prefixes ...string) {
	t.Helper()
	h := n.handle(t)
	link, err := h.LinkByName(dev)
	if err != nil {
		t.Fatalf("%s: %s: %v", n.name, dev, err)
	}
	for _, p := range prefixes {
		a, err := netlink.ParseAddr(p)
		if err == nil {
			// No duplicate address detection: the address is usable at once.
			a.Flags = 0
			err = h.AddrAdd(link, a)
		}
		if err != nil {
			t.Fatalf("%s: add %s to %s: %v", n.name, p, dev, err)
		}
	}
}

func (n *node) route(t *testing.T, dst, via string) {
	t.Helper()
	_, d, err := net.ParseCIDR(dst)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.handle(t).RouteAdd(&netlink.Route{Dst: d, Gw: net.ParseIP(via)}); err != nil {
		t.Fatalf("%s: route %s via %s: %v", n.name, dst, via, err)
	}
}

func (n *node) sysctl(t *testing.T, key, value string) {
	t.Helper()
	err := nsthread.In(n.path, func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("%s: sysctl %s=%s: %v", n.name, key, value, err)
	}
}

// socket opens a UDP socket in n bound to addr (port chosen by the kernel), closed when the
// test ends.
func (n *node) socket(t *testing.T, addr netip.Addr) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := nsthread.In(n.path, func() (err error) {
		c, err = net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(addr, 0)))
		return err
	})
	if err != nil {
		t.Fatalf("%s: UDP socket on %s: %v", n.name, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// apply applies set in the router and checks the counts.
func (l *lab) apply(t *testing.T, set Set, added, removed int) Result {
	t.Helper()
	res, err := Apply(l.router.ns, set)
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if res.Added != added || res.Removed != removed {
		t.Fatalf("Apply: %d rules added, %d removed; want %d and %d", res.Added, res.Removed, added, removed)
	}
	return res
}

var sent int

// send writes a datagram with a payload never used before from c to dst, and returns the
// payload.
func send(t *testing.T, c *net.UDPConn, dst netip.AddrPort) string {
	t.Helper()
	sent++
	payload := fmt.Sprintf("datagram %d to %s", sent, dst)
	if _, err := c.WriteToUDPAddrPort([]byte(payload), dst); err != nil {
		t.Fatalf("send to %s: %v", dst, err)
	}
	return payload
}

// receive reads datagrams on c until one carries payload, and returns its source address
// and the payloads read before it. It fails the test after receiveTimeout.
func receive(t *testing.T, c *net.UDPConn, payload string) (netip.Addr, []string) {
	t.Helper()
	if err := c.SetReadDeadline(time.Now().Add(receiveTimeout)); err != nil {
		t.Fatal(err)
	}
	var before []string
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("waiting for %q on %s: %v (read before: %q)", payload, c.LocalAddr(), err, before)
		}
		if got := string(buf[:n]); got != payload {
			before = append(before, got)
			continue
		}
		return from.Addr().Unmap(), before
	}
}

// sourceSeen sends a datagram from c to the listener and returns the source address the
// listener sees.
func sourceSeen(t *testing.T, c *net.UDPConn, listener *net.UDPConn) netip.Addr {
	t.Helper()
	return sourceSeenVia(t, c, local(listener), listener)
}

// sourceSeenVia sends a datagram from c to dst, which must reach the listener, and returns
// the source address the listener sees.
func sourceSeenVia(t *testing.T, c *net.UDPConn, dst netip.AddrPort, listener *net.UDPConn) netip.Addr {
	t.Helper()
	p := send(t, c, dst)
	from, _ := receive(t, listener, p)
	return from
}

func local(c *net.UDPConn) netip.AddrPort { return c.LocalAddr().(*net.UDPAddr).AddrPort() }

func port(c *net.UDPConn) uint16 { return local(c).Port() }

// reaches reports whether a datagram from c to dst arrives at the listener: it sends it, then
// a marker datagram straight to the listener's own address over the same path, and reads
// until the marker.
func reaches(t *testing.T, c *net.UDPConn, dst netip.AddrPort, listener *net.UDPConn) bool {
	t.Helper()
	p := send(t, c, dst)
	marker := send(t, c, local(listener))
	_, before := receive(t, listener, marker)
	for _, b := range before {
		if b == p {
			return true
		}
	}
	// The marker overtook it (not expected on one path): give it one more chance.
	if err := listener.SetReadDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2048)
	n, _, err := listener.ReadFromUDPAddrPort(buf)
	return err == nil && string(buf[:n]) == p
}

// tableRules lists the rules of our table in n: chain → "object: spec" (or "foreign") in
// chain order; nil when there is no table.
func tableRules(t *testing.T, n *node) map[string][]string {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		t.Fatal(err)
	}
	table := &nftables.Table{Name: TableName, Family: nftables.TableFamilyIPv4}
	if !hasTable(t, n, TableName) {
		return nil
	}
	chains, err := conn.ListChainsOfTableFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range chains {
		if c.Table.Name != TableName {
			continue
		}
		out[c.Name] = []string{}
		rules, err := conn.GetRules(table, c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rules {
			if rule, ok := parseUserData(r.UserData); ok {
				out[c.Name] = append(out[c.Name], rule.String())
			} else {
				out[c.Name] = append(out[c.Name], "foreign")
			}
		}
	}
	return out
}

func hasTable(t *testing.T, n *node, name string) bool {
	t.Helper()
	conn, err := nftables.New(nftables.WithNetNSFd(int(n.ns)))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := conn.ListTablesOfFamily(nftables.TableFamilyIPv4)
	if err != nil {
		t.Fatal(err)
	}
	for _, tb := range tables {
		if tb.Name == name {
			return true
		}
	}
	return false
}

func join(rules []string) string { return strings.Join(rules, "\n") }
