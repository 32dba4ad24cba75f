package testbed

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/dvrflow/dvrflow/nsthread"
	"github.com/dvrflow/dvrflow/sandbox"
)

// Test traffic from Go, inside the network namespaces of VMs: a socket belongs to the
// namespace it was made in, so the test process opens it there (on a thread that entered
// the namespace, see package nsthread) and then uses it like any other. No tool runs in the
// VM, nothing is parsed from a tool's output, and a probe says exactly how it ended: an
// answer, a refusal, or silence (what a firewall that drops gives).

// VMNetns returns the network namespace file of vm, a VM of host h, seen from the test's
// mount namespace.
func VMNetns(h *sandbox.Host, vm *sandbox.VM) string {
	return "/proc/" + strconv.Itoa(h.Pid()) + "/root/run/netns/" + vm.Name()
}

// EchoServer answers on TCP and UDP ports inside a namespace: every TCP connection gets
// back what it sends, every UDP datagram is sent back to its source.
type EchoServer struct {
	mu        sync.Mutex
	closed    bool
	listeners []net.Listener
	packets   []net.PacketConn
	conns     map[net.Conn]bool
	wg        sync.WaitGroup
}

// ServeEcho starts echo servers on every address of the namespace at ns, on tcpPorts and
// udpPorts. On failure it closes what it opened.
func ServeEcho(ns string, tcpPorts, udpPorts []int) (*EchoServer, error) {
	s := &EchoServer{conns: map[net.Conn]bool{}}
	err := nsthread.In(ns, func() error {
		for _, p := range tcpPorts {
			l, err := net.Listen("tcp4", ":"+strconv.Itoa(p))
			if err != nil {
				return err
			}
			s.listeners = append(s.listeners, l)
		}
		for _, p := range udpPorts {
			c, err := net.ListenPacket("udp4", ":"+strconv.Itoa(p))
			if err != nil {
				return err
			}
			s.packets = append(s.packets, c)
		}
		return nil
	})
	if err != nil {
		_ = s.Close()
		return nil, fmt.Errorf("echo servers in %s: %w", ns, err)
	}
	for _, l := range s.listeners {
		s.wg.Add(1)
		go s.accept(l)
	}
	for _, c := range s.packets {
		s.wg.Add(1)
		go s.echoPackets(c)
	}
	return s, nil
}

func (s *EchoServer) accept(l net.Listener) {
	defer s.wg.Done()
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.conns[c] = true
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			_, _ = io.Copy(c, c)
			c.Close()
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
		}()
	}
}

func (s *EchoServer) echoPackets(c net.PacketConn) {
	defer s.wg.Done()
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		_, _ = c.WriteTo(buf[:n], from)
	}
}

// Close stops the servers and closes their connections, and waits for their goroutines.
func (s *EchoServer) Close() error {
	s.mu.Lock()
	s.closed = true
	var errs []error
	for _, l := range s.listeners {
		errs = append(errs, l.Close())
	}
	for _, c := range s.packets {
		errs = append(errs, c.Close())
	}
	for c := range s.conns {
		errs = append(errs, c.Close())
	}
	s.mu.Unlock()
	s.wg.Wait()
	return errors.Join(errs...)
}

// Outcome is how a probe ended.
type Outcome int

// Outcomes of a probe.
const (
	// Answered: the peer's answer came back (TCP: connected and echoed; UDP: echoed).
	Answered Outcome = iota
	// Refused: the peer (or something on the way) said no: a TCP reset, an ICMP
	// unreachable. A firewall that drops never refuses.
	Refused
	// Silent: nothing came back before the timeout, as when a firewall drops.
	Silent
	// Broken: anything else (the probe itself failed); the error says what.
	Broken
)

func (o Outcome) String() string {
	switch o {
	case Answered:
		return "answered"
	case Refused:
		return "refused"
	case Silent:
		return "silent (timed out)"
	}
	return "broken"
}

// ProbeTCP connects from the namespace at ns to address ("ip:port"), from the local
// address from when it is not empty, sends a line and waits for it to come back; all
// within timeout.
func ProbeTCP(ctx context.Context, ns, from, address string, timeout time.Duration) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := DialTCP(ctx, ns, from, address)
	if err != nil {
		return classify(err), err
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := RoundTrip(c, []byte("probe "+address+"\n"), deadline); err != nil {
		return classify(err), err
	}
	return Answered, nil
}

// DialTCP opens a TCP connection from the namespace at ns to address, from the local
// address from when it is not empty, within ctx.
func DialTCP(ctx context.Context, ns, from, address string) (net.Conn, error) {
	return dialIn(ctx, ns, "tcp4", from, address)
}

// dialIn dials network ("tcp4", "udp4") from the namespace at ns to address, from the
// local address from when it is not empty.
func dialIn(ctx context.Context, ns, network, from, address string) (net.Conn, error) {
	d := net.Dialer{}
	if from != "" {
		ip, err := netip.ParseAddr(from)
		if err != nil {
			return nil, fmt.Errorf("local address: %w", err)
		}
		if network == "udp4" {
			d.LocalAddr = &net.UDPAddr{IP: ip.AsSlice()}
		} else {
			d.LocalAddr = &net.TCPAddr{IP: ip.AsSlice()}
		}
	}
	var c net.Conn
	err := nsthread.In(ns, func() error {
		var err error
		c, err = d.DialContext(ctx, network, address)
		return err
	})
	return c, err
}

// RoundTrip writes msg on c and reads it back, both before deadline.
func RoundTrip(c net.Conn, msg []byte, deadline time.Time) error {
	if err := c.SetDeadline(deadline); err != nil {
		return err
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		return err
	}
	if !bytes.Equal(got, msg) {
		return fmt.Errorf("echo %q, sent %q", got, msg)
	}
	return nil
}

// ProbeUDP sends a datagram from the namespace at ns to address ("ip:port"), from the
// local address from when it is not empty, every 250 ms until it comes back or timeout
// passes.
func ProbeUDP(ctx context.Context, ns, from, address string, timeout time.Duration) (Outcome, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	c, err := dialIn(ctx, ns, "udp4", from, address)
	if err != nil {
		return Broken, err
	}
	defer c.Close()
	msg := []byte("probe " + address)
	buf := make([]byte, 2048)
	for {
		if _, err := c.Write(msg); err != nil {
			return classify(err), err
		}
		next := time.Now().Add(250 * time.Millisecond)
		if d, _ := ctx.Deadline(); d.Before(next) {
			next = d
		}
		if err := c.SetReadDeadline(next); err != nil {
			return Broken, err
		}
		n, err := c.Read(buf)
		switch {
		case err == nil && bytes.Equal(buf[:n], msg):
			return Answered, nil
		case err == nil:
			continue
		case !isTimeout(err):
			// A connected UDP socket reports an ICMP unreachable on the next read.
			return classify(err), err
		}
		if ctx.Err() != nil {
			return Silent, fmt.Errorf("no echo from %s within %s", address, timeout)
		}
	}
}

// SendUDP sends one datagram of payload from the namespace at ns to address, from the
// local address from (which must be an address of the namespace) when it is not empty.
func SendUDP(ns, from, address string, payload []byte) error {
	c, err := dialIn(context.Background(), ns, "udp4", from, address)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write(payload)
	return err
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) ||
		(errors.As(err, &ne) && ne.Timeout())
}

// classify says what a probe's error means.
func classify(err error) Outcome {
	switch {
	case err == nil:
		return Answered
	case isTimeout(err):
		return Silent
	case errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return Refused
	}
	return Broken
}
