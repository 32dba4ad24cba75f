// Package rabbitmq runs a private RabbitMQ node for tests: Debian's rabbitmq-server, installed
// when missing, started as a node of its own (own node name, Erlang cookie, epmd, ports, data
// and log directories under one directory) that listens on 127.0.0.1 only. A system-wide
// RabbitMQ, if there is one, is never touched: every process is started here, in its own
// process group, and stopped by that group's id.
//
// It is test harness code; the product never imports it.
package rabbitmq

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// User and Password are the credentials of the node's default user. RabbitMQ lets guest log
// in from the loopback interface only, which is where the node listens.
const (
	User     = "guest"
	Password = "guest"
)

// ctlPortCount is how many distribution ports above the node's the rabbitmqctl runs may use.
const ctlPortCount = 10

// Options configure a node. The zero value is a node with a random name in a new temporary
// directory on free ports.
type Options struct {
	// Dir holds everything of the node (data, logs, cookie, configuration). Empty: a new
	// temporary directory, deleted by Close.
	Dir string
	// Log receives the node's life cycle (start, timings, stop). Nil: no logging.
	Log *zap.Logger
	// StartTimeout bounds a start, until the node accepts AMQP. Zero: 2 minutes.
	StartTimeout time.Duration
	// TLS adds an AMQPS listener (Ports.AMQPS) with a certificate for localhost and
	// 127.0.0.1, signed by a CA made for the node (Node.TLSFiles).
	TLS bool
}

// Ports are the TCP ports of a node, all on 127.0.0.1.
type Ports struct {
	AMQP int
	EPMD int
	// Distribution is the Erlang distribution port of the node; rabbitmqctl runs use the
	// ctlPortCount ports above it.
	Distribution int
	// AMQPS is the TLS listener, when Options.TLS asked for one (0 otherwise).
	AMQPS int
}

// Node is a private RabbitMQ node. It can be stopped and started again with its data (a
// broker restart as tests need it), and closed for good.
type Node struct {
	name     string // Erlang node name, name@localhost
	dir      string
	ownsDir  bool
	ports    Ports
	tls      *TLSFiles
	log      *zap.Logger
	startMax time.Duration

	mu     sync.Mutex
	epmd   *group
	server *group
}

// Start starts a new private node and waits until it accepts AMQP connections. On failure
// everything started is stopped again.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if err := EnsureInstalled(ctx, opts.Log); err != nil {
		return nil, err
	}
	n := &Node{dir: opts.Dir, log: opts.Log, startMax: opts.StartTimeout}
	if n.log == nil {
		n.log = zap.NewNop()
	}
	if n.startMax == 0 {
		n.startMax = 2 * time.Minute
	}
	if n.dir == "" {
		dir, err := os.MkdirTemp("", "dvrflow-rabbitmq-")
		if err != nil {
			return nil, fmt.Errorf("rabbitmq: temporary directory: %w", err)
		}
		n.dir, n.ownsDir = dir, true
	}
	var suffix [4]byte
	_, _ = rand.Read(suffix[:])
	n.name = "dvrflow-" + hex.EncodeToString(suffix[:]) + "@localhost"
	ports, err := pickPorts()
	if err != nil {
		n.removeDir()
		return nil, err
	}
	n.ports = ports
	if opts.TLS {
		files, err := writeTLSFiles(n.dir)
		if err != nil {
			n.removeDir()
			return nil, fmt.Errorf("rabbitmq node %s: TLS files: %w", n.name, err)
		}
		n.tls = &files
	} else {
		n.ports.AMQPS = 0
	}
	if err := n.writeConfig(); err != nil {
		n.removeDir()
		return nil, err
	}
	if err := n.startEPMD(); err != nil {
		n.removeDir()
		return nil, err
	}
	if err := n.StartBroker(ctx); err != nil {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = n.Close(stopCtx)
		return nil, err
	}
	return n, nil
}

// Name is the Erlang node name (NAME@localhost).
func (n *Node) Name() string { return n.name }

// Dir is the directory holding the node's data, logs and configuration.
func (n *Node) Dir() string { return n.dir }

// Ports are the node's TCP ports.
func (n *Node) Ports() Ports { return n.ports }

// URL is the amqp:// URL of the node for amqp091-go, with the default user and vhost "/".
func (n *Node) URL() string {
	return fmt.Sprintf("amqp://%s:%s@127.0.0.1:%d/", User, Password, n.ports.AMQP)
}

// TLSFiles are the CA and server certificate of the TLS listener; ok is false without one.
func (n *Node) TLSFiles() (files TLSFiles, ok bool) {
	if n.tls == nil {
		return TLSFiles{}, false
	}
	return *n.tls, true
}

// TransportURL is the node's address as oslo.messaging's [DEFAULT] transport_url spells it.
func (n *Node) TransportURL() string {
	return fmt.Sprintf("rabbit://%s:%s@127.0.0.1:%d/", User, Password, n.ports.AMQP)
}

// StartBroker starts the RabbitMQ server of the node (again, after StopBroker: the data
// directory is kept, so durable objects and users survive) and waits until it accepts AMQP.
func (n *Node) StartBroker(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.server != nil && n.server.alive() {
		return fmt.Errorf("rabbitmq node %s: already running (process group %d)", n.name, n.server.pid)
	}
	_ = os.Remove(filepath.Join(n.dir, "rabbitmq.pid"))
	out, err := os.OpenFile(filepath.Join(n.dir, "log", "rabbitmq-server.out"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("rabbitmq node %s: %w", n.name, err)
	}
	defer out.Close()
	cmd := exec.Command(serverBinary)
	cmd.Dir = n.dir // erl_crash.dump lands here
	cmd.Env = n.env()
	cmd.Stdout, cmd.Stderr = out, out
	started := time.Now()
	g, err := startGroup("rabbitmq-server "+n.name, cmd)
	if err != nil {
		return err
	}
	n.server = g
	ctx, cancel := context.WithTimeout(ctx, n.startMax)
	defer cancel()
	if err := n.waitAMQP(ctx); err != nil {
		return fmt.Errorf("rabbitmq node %s did not accept AMQP on 127.0.0.1:%d: %w (logs in %s)",
			n.name, n.ports.AMQP, err, filepath.Join(n.dir, "log"))
	}
	n.log.Info("rabbitmq node accepts AMQP", zap.String("node", n.name), zap.Int("amqp_port", n.ports.AMQP),
		zap.Int("pgid", g.pid), zap.Duration("start_time", time.Since(started)))
	return nil
}

// StopBroker stops the RabbitMQ server of the node (SIGTERM, a clean shutdown that closes
// every client connection with 320 CONNECTION_FORCED), keeping its data and its epmd.
func (n *Node) StopBroker(ctx context.Context) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.server == nil {
		return nil
	}
	started := time.Now()
	if err := n.server.stop(ctx, 20*time.Second); err != nil {
		return fmt.Errorf("rabbitmq node %s: %w", n.name, err)
	}
	n.log.Info("rabbitmq node stopped", zap.String("node", n.name), zap.Duration("stop_time", time.Since(started)))
	n.server = nil
	return nil
}

// Restart stops the broker and starts it again with the same data.
func (n *Node) Restart(ctx context.Context) error {
	if err := n.StopBroker(ctx); err != nil {
		return err
	}
	return n.StartBroker(ctx)
}

// Close stops the broker and the node's epmd and deletes the node's directory if Start made
// it. Call it once.
func (n *Node) Close(ctx context.Context) error {
	errs := []error{n.StopBroker(ctx)}
	n.mu.Lock()
	if n.epmd != nil {
		errs = append(errs, n.epmd.stop(ctx, 5*time.Second))
		n.epmd = nil
	}
	n.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("rabbitmq node %s: %w (directory kept: %s)", n.name, err, n.dir)
	}
	n.removeDir()
	return nil
}

// KeepDir makes Close leave the node's directory (its logs) in place.
func (n *Node) KeepDir() { n.ownsDir = false }

func (n *Node) removeDir() {
	if n.ownsDir {
		_ = os.RemoveAll(n.dir)
	}
}

// env is the environment of the node's server and of rabbitmqctl runs against it: nothing is
// read from /etc/rabbitmq or the caller's home (the cookie lives in our HOME).
func (n *Node) env() []string {
	d := n.dir
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"HOME=" + filepath.Join(d, "home"),
		"RABBITMQ_NODENAME=" + n.name,
		"RABBITMQ_NODE_IP_ADDRESS=127.0.0.1",
		"RABBITMQ_NODE_PORT=" + strconv.Itoa(n.ports.AMQP),
		"RABBITMQ_DIST_PORT=" + strconv.Itoa(n.ports.Distribution),
		"RABBITMQ_CTL_DIST_PORT_MIN=" + strconv.Itoa(n.ports.Distribution+1),
		"RABBITMQ_CTL_DIST_PORT_MAX=" + strconv.Itoa(n.ports.Distribution+ctlPortCount),
		"ERL_EPMD_ADDRESS=127.0.0.1",
		"ERL_EPMD_PORT=" + strconv.Itoa(n.ports.EPMD),
		"RABBITMQ_MNESIA_BASE=" + filepath.Join(d, "mnesia"),
		"RABBITMQ_LOG_BASE=" + filepath.Join(d, "log"),
		"RABBITMQ_ENABLED_PLUGINS_FILE=" + filepath.Join(d, "enabled_plugins"),
		"RABBITMQ_PID_FILE=" + filepath.Join(d, "rabbitmq.pid"),
		"RABBITMQ_CONFIG_FILE=" + filepath.Join(d, "rabbitmq.conf"),
		"RABBITMQ_ADVANCED_CONFIG_FILE=" + filepath.Join(d, "advanced.config"),
		"RABBITMQ_CONF_ENV_FILE=" + filepath.Join(d, "rabbitmq-env.conf"),
		"RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
		"RABBITMQ_CTL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}",
	}
	return env
}

func (n *Node) writeConfig() error {
	for _, sub := range []string{"home", "mnesia", "log"} {
		if err := os.MkdirAll(filepath.Join(n.dir, sub), 0o755); err != nil {
			return fmt.Errorf("rabbitmq node %s: %w", n.name, err)
		}
	}
	var cookie [20]byte
	_, _ = rand.Read(cookie[:])
	files := []struct {
		name    string
		content string
		mode    os.FileMode
	}{
		{"home/.erlang.cookie", hex.EncodeToString(cookie[:]), 0o400},
		{"enabled_plugins", "[].\n", 0o644},
		{"advanced.config", "[].\n", 0o644},
		{"rabbitmq-env.conf", "", 0o644},
		{"rabbitmq.conf", n.rabbitmqConf(), 0o644},
	}
	for _, f := range files {
		path := filepath.Join(n.dir, f.name)
		if err := os.WriteFile(path, []byte(f.content), f.mode); err != nil {
			return fmt.Errorf("rabbitmq node %s: write %s: %w", n.name, path, err)
		}
	}
	return nil
}

func (n *Node) rabbitmqConf() string {
	conf := fmt.Sprintf("listeners.tcp.default = 127.0.0.1:%d\n", n.ports.AMQP)
	if n.tls != nil {
		conf += fmt.Sprintf("listeners.ssl.default = 127.0.0.1:%d\n", n.ports.AMQPS) +
			"ssl_options.cacertfile = " + n.tls.CACert + "\n" +
			"ssl_options.certfile = " + n.tls.ServerCert + "\n" +
			"ssl_options.keyfile = " + n.tls.ServerKey + "\n" +
			"ssl_options.verify = verify_none\n" +
			"ssl_options.fail_if_no_peer_cert = false\n"
	}
	return conf
}

// startEPMD starts the node's own Erlang port mapper on 127.0.0.1 only. epmd gets its
// listening socket ready-made (systemd socket activation), because given an address it would
// always listen on [::1] as well.
func (n *Node) startEPMD() error {
	l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(n.ports.EPMD))
	if err != nil {
		return fmt.Errorf("rabbitmq node %s: epmd port: %w", n.name, err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		return fmt.Errorf("rabbitmq node %s: epmd socket: %w", n.name, err)
	}
	defer f.Close()
	out, err := os.Create(filepath.Join(n.dir, "log", "epmd.out"))
	if err != nil {
		return fmt.Errorf("rabbitmq node %s: %w", n.name, err)
	}
	defer out.Close()
	// The shell's pid is epmd's after exec, which is what LISTEN_PID must name.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec epmd -systemd -port "$0"`, strconv.Itoa(n.ports.EPMD))
	cmd.ExtraFiles = []*os.File{f} // fd 3
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	cmd.Stdout, cmd.Stderr = out, out
	g, err := startGroup("epmd "+n.name, cmd)
	if err != nil {
		return fmt.Errorf("rabbitmq node %s: %w", n.name, err)
	}
	n.epmd = g
	return nil
}

// waitAMQP dials the node until an AMQP handshake succeeds, the server process is gone, or
// ctx ends.
func (n *Node) waitAMQP(ctx context.Context) error {
	for {
		conn, err := amqp.DialConfig(n.URL(), amqp.Config{Dial: amqp.DefaultDial(time.Second)})
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if n.server.leaderExited() {
			return fmt.Errorf("rabbitmq-server exited: %s", lastLines(n.readLog("rabbitmq-server.out"), 15))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last error: %v", ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (n *Node) readLog(name string) string {
	b, _ := os.ReadFile(filepath.Join(n.dir, "log", name))
	return string(b)
}

// pickPorts finds a block of free ports on 127.0.0.1: AMQP, epmd, the distribution port and
// the ctlPortCount ports above it for rabbitmqctl, then AMQPS. Ports are picked at random in
// [20000, 50000) so that parallel test binaries rarely meet; each is checked by binding it.
func pickPorts() (Ports, error) {
	const size = 4 + ctlPortCount
	for attempt := 0; attempt < 100; attempt++ {
		r, err := rand.Int(rand.Reader, big.NewInt(30000-size))
		if err != nil {
			return Ports{}, err
		}
		base := 20000 + int(r.Int64())
		if blockFree(base, size) {
			return Ports{AMQP: base, EPMD: base + 1, Distribution: base + 2, AMQPS: base + 3 + ctlPortCount}, nil
		}
	}
	return Ports{}, errors.New("rabbitmq: no free block of ports on 127.0.0.1 in [20000, 50000)")
}

func blockFree(base, size int) bool {
	for p := base; p < base+size; p++ {
		l, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		l.Close()
	}
	return true
}
