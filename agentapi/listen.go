package agentapi

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Server is the agent's one HTTP server. Each listener it serves has its own handler: the
// API's unix socket serves the API (and whatever else is mounted beside it), a TCP
// listener only what it is given (the metrics), so the API never reaches the network.
type Server struct {
	log       *zap.Logger
	srv       *http.Server
	listeners []net.Listener
	// socket is the unix socket file this server made, and its identity, removed by Close
	// if it is still that file.
	socket     string
	socketInfo os.FileInfo
	served     sync.WaitGroup
}

// NewServer returns a server with no listener yet.
func NewServer(log *zap.Logger) *Server {
	s := &Server{log: log}
	s.srv = &http.Server{
		Handler:           http.HandlerFunc(serveByListener),
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*handlerConn); ok {
				return context.WithValue(ctx, handlerKey{}, tc.handler)
			}
			return ctx
		},
	}
	return s
}

// handlerKey keys a connection's handler in its requests' context.
type handlerKey struct{}

// serveByListener hands a request to the handler of the listener its connection came in
// on.
func serveByListener(w http.ResponseWriter, r *http.Request) {
	h, ok := r.Context().Value(handlerKey{}).(http.Handler)
	if !ok {
		http.NotFound(w, r)
		return
	}
	h.ServeHTTP(w, r)
}

// handlerListener tags every connection it accepts with its handler.
type handlerListener struct {
	net.Listener
	handler http.Handler
}

func (l handlerListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &handlerConn{Conn: c, handler: l.handler}, nil
}

type handlerConn struct {
	net.Conn
	handler http.Handler
}

// ListenUnix makes the unix socket path, readable and writable by the agent's user only
// (0600: the API is read-only, but it shows the whole node), to serve h. A stale socket
// file (nothing listening) is replaced; a socket another process serves is an error, and
// so is a file that is not a socket. The socket is bound under a temporary name, restricted,
// then renamed into place, so that it is never reachable with wider permissions.
func (s *Server) ListenUnix(path string, h http.Handler) error {
	if s.socket != "" {
		return fmt.Errorf("api_socket %s: already serving %s", path, s.socket)
	}
	if err := removeStaleSocket(path); err != nil {
		return fmt.Errorf("api_socket %s: %w", path, err)
	}
	tmp := path + "~"
	if len(tmp) > len(syscall.RawSockaddrUnix{}.Path)-1 {
		tmp = path // no room for a temporary name: bind in place, restrict right after
	} else if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("api_socket %s: remove leftover %s: %w", path, tmp, err)
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: tmp, Net: "unix"})
	if err != nil {
		return fmt.Errorf("api_socket %s: %w", path, err)
	}
	l.SetUnlinkOnClose(false) // Close removes path, and only if it is still ours
	fail := func(err error) error {
		_ = l.Close()
		_ = os.Remove(tmp)
		return fmt.Errorf("api_socket %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return fail(err)
	}
	if tmp != path {
		if err := os.Rename(tmp, path); err != nil {
			return fail(err)
		}
	}
	info, err := os.Lstat(path)
	if err != nil {
		return fail(err)
	}
	s.socket, s.socketInfo = path, info
	s.listeners = append(s.listeners, handlerListener{Listener: l, handler: h})
	return nil
}

// removeStaleSocket removes a socket file nothing listens on.
func removeStaleSocket(path string) error {
	info, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if info.Mode().Type() != fs.ModeSocket {
		return errors.New("exists and is not a socket; not removing it")
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = c.Close()
		return errors.New("another process serves this socket (another dvrflow-agent on this switch?)")
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("check whether the existing socket is in use: %w", err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// ListenTCP listens on address (host:port) to serve h.
func (s *Server) ListenTCP(address string, h http.Handler) error {
	l, err := net.Listen("tcp", address)
	if err != nil {
		return err
	}
	s.listeners = append(s.listeners, handlerListener{Listener: l, handler: h})
	return nil
}

// Addrs are the listeners' addresses, in the order they were added.
func (s *Server) Addrs() []net.Addr {
	addrs := make([]net.Addr, len(s.listeners))
	for i, l := range s.listeners {
		addrs[i] = l.Addr()
	}
	if s.socket != "" { // the unix listener was bound under a temporary name
		for i, a := range addrs {
			if a.Network() == "unix" {
				addrs[i] = &net.UnixAddr{Name: s.socket, Net: "unix"}
			}
		}
	}
	return addrs
}

// Start serves every listener in the background until Close.
func (s *Server) Start() {
	for _, l := range s.listeners {
		s.served.Add(1)
		go func() {
			defer s.served.Done()
			if err := s.srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("HTTP listener stopped", zap.Stringer("address", l.Addr()), zap.Error(err))
			}
		}()
	}
}

// Close stops serving (requests in flight get up to two seconds), closes the listeners
// and removes the unix socket file if it is still the one this server made.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	for _, l := range s.listeners {
		_ = l.Close() // not served yet (Start not called): Shutdown does not know them
	}
	s.served.Wait()
	if s.socket != "" {
		if info, statErr := os.Lstat(s.socket); statErr == nil && os.SameFile(info, s.socketInfo) {
			if rmErr := os.Remove(s.socket); rmErr != nil {
				err = errors.Join(err, fmt.Errorf("remove api_socket %s: %w", s.socket, rmErr))
			}
		}
	}
	return err
}
