package neutron

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/nsthread"
)

// forwarder makes a TCP service of the machine's 127.0.0.1 reachable at the same address
// inside another network namespace: it listens there (the socket is made on a thread inside
// the namespace and stays in it) and relays every connection to the machine's address.
// When the service is down, an accepted connection is closed at once, as a refused one
// would be.
type forwarder struct {
	ln   net.Listener
	to   string
	log  *zap.Logger
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]struct{}
}

// forward listens on addr inside the network namespace nsPath and relays to addr here.
func forward(nsPath, addr string, log *zap.Logger) (*forwarder, error) {
	var ln net.Listener
	err := nsthread.In(nsPath, func() error {
		var err error
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("forward %s into %s: %w", addr, nsPath, err)
	}
	f := &forwarder{ln: ln, to: addr, log: log, conn: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.serve()
	return f, nil
}

func (f *forwarder) serve() {
	defer f.wg.Done()
	for {
		c, err := f.ln.Accept()
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				f.log.Warn("forwarder stopped accepting", zap.Error(err))
			}
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

func (f *forwarder) track(c net.Conn, add bool) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.conn == nil {
		return false
	}
	if add {
		f.conn[c] = struct{}{}
	} else {
		delete(f.conn, c)
	}
	return true
}

func (f *forwarder) relay(in net.Conn) {
	defer f.wg.Done()
	defer in.Close()
	out, err := net.DialTimeout("tcp", f.to, 5*time.Second)
	if err != nil {
		return
	}
	defer out.Close()
	if !f.track(in, true) || !f.track(out, true) {
		return
	}
	defer f.track(in, false)
	defer f.track(out, false)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		// Half-close so the other direction can finish; then both ends go.
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(out, in)
	go pipe(in, out)
	<-done
	// One side ended: give the other a moment to drain, then close both.
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
}

// close stops listening and cuts every relayed connection.
func (f *forwarder) close(ctx context.Context) error {
	err := f.ln.Close()
	f.mu.Lock()
	for c := range f.conn {
		c.Close()
	}
	f.conn = nil
	f.mu.Unlock()
	done := make(chan struct{})
	go func() { f.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("forwarder %s: %w", f.to, ctx.Err())
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("forwarder %s: %w", f.to, err)
	}
	return nil
}
