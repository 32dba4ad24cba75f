package rabbitmq

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/dvrflow/dvrflow/sandbox"
)

// StartForTest starts a node of its own for one test and closes it when the test ends
// (keeping its directory, and saying where, if the test failed). It skips the test under
// -short (and fails it under CI=true, which must never pass by skipping the real parts).
func StartForTest(t testing.TB) *Node {
	t.Helper()
	return StartForTestWith(t, Options{})
}

// StartForTestWith is StartForTest with options (Dir and Log are the test's own).
func StartForTestWith(t testing.TB, opts Options) *Node {
	t.Helper()
	sandbox.SkipIfShort(t, "rabbitmq")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	opts.Dir, opts.Log = "", zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	n, err := Start(ctx, opts)
	if err != nil {
		t.Fatalf("rabbitmq: %v", err)
	}
	t.Cleanup(func() { closeAfterTest(t, n) })
	return n
}

func closeAfterTest(t testing.TB, n *Node) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if t.Failed() {
		n.KeepDir()
		t.Logf("rabbitmq node %s: test failed, its directory (logs) is kept at %s", n.Name(), n.Dir())
	}
	if err := n.Close(ctx); err != nil {
		t.Errorf("rabbitmq: %v", err)
	}
}

// Shared is one node for all the tests of a package, started by the first test that asks for
// it, so a package pays the broker's start-up once. Close it from TestMain after m.Run:
//
//	var broker rabbitmq.Shared
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		broker.Close()
//		os.Exit(code)
//	}
type Shared struct {
	// Options are those of the node (Dir and Log are the Shared's own).
	Options Options

	mu     sync.Mutex
	node   *Node
	err    error
	failed bool
}

// Node returns the shared node, starting it on first use. It skips the test under -short (see
// StartForTest) and fails it if the node cannot start. Tests that restart the broker must
// leave it running when they end.
func (s *Shared) Node(t testing.TB) *Node {
	t.Helper()
	sandbox.SkipIfShort(t, "rabbitmq")
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil && s.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		log, _ := zap.NewDevelopment(zap.IncreaseLevel(zap.InfoLevel))
		opts := s.Options
		opts.Dir, opts.Log = "", log.Named("rabbitmq")
		s.node, s.err = Start(ctx, opts)
	}
	if s.err != nil {
		t.Fatalf("rabbitmq: %v", s.err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			s.mu.Lock()
			s.failed = true
			s.mu.Unlock()
		}
	})
	return s.node
}

// Close closes the shared node if it was started, keeping its directory when a test that used
// it failed.
func (s *Shared) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if s.failed {
		s.node.KeepDir()
		fmt.Fprintf(os.Stderr, "rabbitmq node %s: a test failed, its directory (logs) is kept at %s\n", s.node.Name(), s.node.Dir())
	}
	if err := s.node.Close(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "rabbitmq: %v\n", err)
	}
	s.node = nil
}
