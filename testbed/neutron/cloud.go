package neutron

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/testbed/rabbitmq"
)

// Options configure a Cloud. The zero value is the test bed of
// ../shared/tools/neutron-testbed.sh plus a VLAN range on physnet1.
type Options struct {
	// Log receives the life cycle and timings; nil means no logging.
	Log *zap.Logger
	// TenantNetworkTypes are ML2's tenant_network_types; default vxlan.
	TenantNetworkTypes []string
	// FlatNetworks are the physical networks flat networks may use; default physnet1 and
	// external.
	FlatNetworks []string
	// NetworkVLANRanges are ML2's network_vlan_ranges; default physnet1:100:199.
	NetworkVLANRanges []string
	// VNIRanges are the VXLAN VNI ranges; default 1000:1999.
	VNIRanges []string
	// FirewallDriver is the server's [securitygroup] firewall_driver; default openvswitch.
	FirewallDriver string
	// AgentDownTime is neutron-server's agent_down_time in seconds; default 75.
	AgentDownTime int
}

// Timings are how long the steps of Start took. Install is zero when every package was
// there already; Database includes initialising its data directory.
type Timings struct {
	Install, RabbitMQ, Database, DBUpgrade, Server time.Duration
}

// serverStopGrace is how long neutron-server gets after SIGTERM before its process group is
// killed: its RPC worker needs about 1.5 s per RPC server, graceful_shutdown_timeout is 5.
const serverStopGrace = 7 * time.Second

// readyTimeout bounds each wait for a service to answer.
const readyTimeout = 2 * time.Minute

// rpcTopics are the queues neutron-server's RPC worker consumes that an L2 agent and the
// L3 stand-in call: once each has a consumer, the server answers RPC.
var rpcTopics = []string{"q-plugin", "q-reports-plugin", "q-l3-plugin"}

// Cloud is a running Neutron control plane: a private RabbitMQ and MariaDB and a
// neutron-server (noauth) on 127.0.0.1, plus the agent hosts added to it. Its methods are
// safe for concurrent use.
type Cloud struct {
	opts   Options
	log    *zap.Logger
	dir    string // everything: etc/, logs/, run/, state/, mysql/, rabbitmq/
	etc    string
	logs   string
	run    string
	config ServerConfig

	// Client is the REST client of the API.
	Client *Client

	rabbit *rabbitmq.Node
	db     *mariaDB

	mu       sync.Mutex
	server   *process
	timings  Timings
	keep     bool
	fabric   *fabric
	physnets []string // physical networks in the order hosts first mapped them
	hosts    []*AgentHost
	closed   bool
}

// Start installs what is missing ([EnsurePackages], and Open vSwitch for the agent hosts),
// then brings up RabbitMQ, MariaDB and neutron-server (after `neutron-db-manage upgrade
// head`) in a new temporary directory, and returns once the API answers and the RPC worker
// consumes its queues. If Start fails it stops what it started and keeps the directory (the
// error says where).
func Start(ctx context.Context, opts Options) (_ *Cloud, err error) {
	log := opts.Log
	if log == nil {
		log = zap.NewNop()
	}
	t := time.Now()
	if err := EnsurePackages(ctx, log); err != nil {
		return nil, err
	}
	if err := sandbox.EnsurePackages(ctx, log); err != nil {
		return nil, err
	}
	install := time.Since(t)
	if install < time.Second {
		install = 0 // only the checks ran
	}
	stopLeftovers(ctx, log)
	if opts.FlatNetworks == nil {
		opts.FlatNetworks = []string{"physnet1", "external"}
	}
	if opts.NetworkVLANRanges == nil {
		opts.NetworkVLANRanges = []string{"physnet1:100:199"}
	}
	dir, err := os.MkdirTemp("", "dvrflow-neutron-")
	if err != nil {
		return nil, fmt.Errorf("start neutron test bed: %w", err)
	}
	c := &Cloud{opts: opts, log: log.With(zap.String("testbed", filepath.Base(dir))), dir: dir,
		etc: filepath.Join(dir, "etc"), logs: filepath.Join(dir, "logs"), run: filepath.Join(dir, "run")}
	for _, d := range []string{c.etc, c.logs, c.run, filepath.Join(dir, "state"), filepath.Join(dir, "lock")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("start neutron test bed: %w", err)
		}
	}
	if err := writeOwner(dir); err != nil {
		return nil, fmt.Errorf("start neutron test bed: %w", err)
	}
	defer func() {
		if err != nil {
			c.KeepDir()
			if cerr := c.Close(context.WithoutCancel(ctx)); cerr != nil {
				err = errors.Join(err, fmt.Errorf("undo: %w", cerr))
			}
			err = fmt.Errorf("start neutron test bed (files kept in %s): %w", dir, err)
		}
	}()
	c.timings.Install = install
	total := time.Now()

	t = time.Now()
	c.rabbit, err = rabbitmq.Start(ctx, rabbitmq.Options{Dir: filepath.Join(dir, "rabbitmq"), Log: c.log})
	if err != nil {
		return c, err
	}
	c.timings.RabbitMQ = time.Since(t)

	t = time.Now()
	dbPort, err := freePort()
	if err != nil {
		return c, err
	}
	c.db = &mariaDB{dir: filepath.Join(dir, "mysql"), port: dbPort}
	if err := c.db.start(ctx, c.run, c.logs, c.log); err != nil {
		return c, err
	}
	c.timings.Database = time.Since(t)

	apiPort, err := freePort()
	if err != nil {
		return c, err
	}
	c.config = ServerConfig{
		APIPort: apiPort, TransportURL: c.rabbit.TransportURL(), DatabaseURL: c.db.url(),
		StateDir: filepath.Join(dir, "state"), LockDir: filepath.Join(dir, "lock"), LogDir: c.logs,
		TenantNetworkTypes: opts.TenantNetworkTypes, FlatNetworks: opts.FlatNetworks,
		NetworkVLANRanges: opts.NetworkVLANRanges, VNIRanges: opts.VNIRanges,
		FirewallDriver: opts.FirewallDriver, AgentDownTime: opts.AgentDownTime,
	}
	for name, text := range map[string]string{"neutron.conf": c.config.NeutronConf(), "ml2_conf.ini": c.config.ML2Conf()} {
		if err := os.WriteFile(filepath.Join(c.etc, name), []byte(text), 0o644); err != nil {
			return c, fmt.Errorf("write %s: %w", name, err)
		}
	}
	c.Client = &Client{BaseURL: c.APIURL()}

	t = time.Now()
	if err := c.upgradeDB(ctx); err != nil {
		return c, err
	}
	c.timings.DBUpgrade = time.Since(t)

	t = time.Now()
	if err := c.StartServer(ctx); err != nil {
		return c, err
	}
	c.timings.Server = time.Since(t)
	c.log.Info("neutron test bed up", zap.String("dir", dir), zap.String("api", c.APIURL()),
		zap.String("transport_url", c.TransportURL()),
		zap.Duration("install", c.timings.Install.Round(time.Millisecond)),
		zap.Duration("rabbitmq", c.timings.RabbitMQ.Round(time.Millisecond)),
		zap.Duration("database", c.timings.Database.Round(time.Millisecond)),
		zap.Duration("db_upgrade", c.timings.DBUpgrade.Round(time.Millisecond)),
		zap.Duration("server", c.timings.Server.Round(time.Millisecond)),
		zap.Duration("total", time.Since(total).Round(time.Millisecond)))
	return c, nil
}

// Dir is the test bed's directory: etc/ (neutron.conf, ml2_conf.ini, agent files), logs/,
// run/ (pid records), state/, mysql/, rabbitmq/.
func (c *Cloud) Dir() string { return c.dir }

// LogDir is where every service of the test bed logs.
func (c *Cloud) LogDir() string { return c.logs }

// APIURL is the REST API root, http://127.0.0.1:PORT/v2.0.
func (c *Cloud) APIURL() string { return fmt.Sprintf("http://127.0.0.1:%d/v2.0", c.config.APIPort) }

// TransportURL is oslo.messaging's URL of the test bed's RabbitMQ; inside an agent host the
// same URL reaches it (through the host's forwarder).
func (c *Cloud) TransportURL() string { return c.rabbit.TransportURL() }

// AMQPURL is the amqp:// URL of the test bed's RabbitMQ (for amqp091-go), valid on the
// machine and inside every agent host.
func (c *Cloud) AMQPURL() string { return c.rabbit.URL() }

// RabbitMQ is the test bed's broker node (rabbitmqctl queries, connection kills).
func (c *Cloud) RabbitMQ() *rabbitmq.Node { return c.rabbit }

// AgentDownTime is neutron-server's agent_down_time: how long after its last report an
// agent counts as dead.
func (c *Cloud) AgentDownTime() time.Duration {
	return time.Duration(orInt(c.opts.AgentDownTime, 75)) * time.Second
}

// Timings returns how long the steps of Start took.
func (c *Cloud) Timings() Timings {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.timings
}

// ConfigFiles are the paths of neutron.conf and ml2_conf.ini.
func (c *Cloud) ConfigFiles() []string {
	return []string{filepath.Join(c.etc, "neutron.conf"), filepath.Join(c.etc, "ml2_conf.ini")}
}

func (c *Cloud) upgradeDB(ctx context.Context) error {
	args := []string{}
	for _, f := range c.ConfigFiles() {
		args = append(args, "--config-file", f)
	}
	cmd := exec.CommandContext(ctx, "neutron-db-manage", append(args, "upgrade", "head")...)
	logPath := filepath.Join(c.logs, "neutron-db-manage.log")
	out, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("neutron-db-manage: %w", err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("neutron-db-manage upgrade head: %w%s", err, tailFile(logPath, 20))
	}
	c.log.Info("neutron database upgraded", zap.String("log", logPath))
	return nil
}

// StartServer starts neutron-server (again, after StopServer: same configuration and
// database) and returns once the API answers and the RPC worker consumes its queues.
func (c *Cloud) StartServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.server.running() {
		return errors.New("start neutron-server: it runs already")
	}
	t := time.Now()
	args := []string{}
	for _, f := range c.ConfigFiles() {
		args = append(args, "--config-file", f)
	}
	p, err := startProcess("neutron-server", exec.Command("neutron-server", args...), c.run, filepath.Join(c.logs, "neutron-server.out"))
	if err != nil {
		return err
	}
	c.server = p
	if err := waitReady(ctx, p, readyTimeout, "neutron-server API", c.apiAnswers); err != nil {
		return fmt.Errorf("%w%s", err, tailFile(filepath.Join(c.logs, "neutron-server.log"), 30))
	}
	api := time.Since(t)
	if err := waitReady(ctx, p, readyTimeout, "neutron-server RPC", c.rpcConsumed); err != nil {
		return fmt.Errorf("%w%s", err, tailFile(filepath.Join(c.logs, "neutron-server.log"), 30))
	}
	c.log.Info("neutron-server started", zap.Int("pid", p.pid), zap.String("api", c.APIURL()),
		zap.Duration("api_after", api.Round(time.Millisecond)), zap.Duration("rpc_after", time.Since(t).Round(time.Millisecond)))
	return nil
}

// apiAnswers is nil once GET /networks answers 200.
func (c *Cloud) apiAnswers(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.APIURL()+"/networks", nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET /networks: HTTP %d", resp.StatusCode)
	}
	return nil
}

// rpcConsumed is nil once each of rpcTopics has a consumer (a passive queue declare tells).
func (c *Cloud) rpcConsumed(ctx context.Context) error {
	conn, err := amqp.DialConfig(c.rabbit.URL(), amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return fmt.Errorf("connect to RabbitMQ: %w", err)
	}
	defer conn.Close()
	for _, topic := range rpcTopics {
		ch, err := conn.Channel()
		if err != nil {
			return fmt.Errorf("open AMQP channel: %w", err)
		}
		q, err := ch.QueueDeclarePassive(topic, false, false, false, false, nil)
		if err != nil {
			return fmt.Errorf("queue %s: %w", topic, err)
		}
		ch.Close()
		if q.Consumers == 0 {
			return fmt.Errorf("queue %s has no consumer", topic)
		}
	}
	return nil
}

// StopServer stops neutron-server (SIGTERM, then its process group after 7 s). Agents keep
// running; their calls wait in RabbitMQ or time out.
func (c *Cloud) StopServer(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := time.Now()
	if err := c.server.stop(ctx, serverStopGrace); err != nil {
		return err
	}
	c.log.Info("neutron-server stopped", zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	return nil
}

// StopRabbitMQ stops the broker, keeping its data; every client loses its connection.
func (c *Cloud) StopRabbitMQ(ctx context.Context) error {
	t := time.Now()
	if err := c.rabbit.StopBroker(ctx); err != nil {
		return fmt.Errorf("stop RabbitMQ: %w", err)
	}
	c.log.Info("RabbitMQ stopped", zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	return nil
}

// StartRabbitMQ starts the broker again on the same port and data, and returns once
// neutron-server has reconnected (its RPC worker consumes again) if it runs.
func (c *Cloud) StartRabbitMQ(ctx context.Context) error {
	t := time.Now()
	if err := c.rabbit.StartBroker(ctx); err != nil {
		return fmt.Errorf("start RabbitMQ: %w", err)
	}
	broker := time.Since(t)
	c.mu.Lock()
	server := c.server
	c.mu.Unlock()
	if server.running() {
		if err := waitReady(ctx, server, readyTimeout, "neutron-server reconnect to RabbitMQ", c.rpcConsumed); err != nil {
			return err
		}
	}
	c.log.Info("RabbitMQ started", zap.Duration("broker", broker.Round(time.Millisecond)),
		zap.Duration("server_reconnected_after", time.Since(t).Round(time.Millisecond)))
	return nil
}

// KeepDir keeps the test bed's directory (logs, configuration, database) when it closes,
// e.g. because a test failed; Close then logs where it is.
func (c *Cloud) KeepDir() {
	c.mu.Lock()
	c.keep = true
	c.mu.Unlock()
	if c.rabbit != nil {
		c.rabbit.KeepDir()
	}
}

// Close stops everything in order (agent hosts, neutron-server, RabbitMQ, MariaDB) by pid
// and removes the directory unless KeepDir was called or a stop failed. Close is idempotent.
func (c *Cloud) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	hosts, fab, server := c.hosts, c.fabric, c.server
	c.hosts, c.fabric = nil, nil
	keep := c.keep
	c.mu.Unlock()

	// Agents, their hosts and neutron-server first, in parallel (each takes a few seconds
	// after SIGTERM), then the fabric, RabbitMQ and the database.
	var (
		wg    sync.WaitGroup
		errMu sync.Mutex
		errs  []error
	)
	collect := func(err error) {
		if err != nil {
			errMu.Lock()
			errs = append(errs, err)
			errMu.Unlock()
		}
	}
	for _, h := range hosts {
		wg.Add(1)
		go func() { defer wg.Done(); collect(h.close(ctx, keep)) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); collect(server.stop(ctx, serverStopGrace)) }()
	wg.Wait()
	if fab != nil {
		collect(fab.close(ctx, keep))
	}
	if c.rabbit != nil {
		if err := c.rabbit.Close(ctx); err != nil {
			errs = append(errs, fmt.Errorf("close RabbitMQ: %w", err))
		}
	}
	if c.db != nil {
		if err := c.db.stop(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	err := errors.Join(errs...)
	if keep || err != nil {
		c.log.Info("neutron test bed stopped; files kept", zap.String("dir", c.dir), zap.String("logs", c.logs))
	} else if rerr := os.RemoveAll(c.dir); rerr != nil {
		err = errors.Join(err, rerr)
	} else {
		c.log.Info("neutron test bed stopped and removed")
	}
	if err != nil {
		return fmt.Errorf("close neutron test bed: %w", err)
	}
	return nil
}

// sandboxOptions are the options of the test bed's sandbox hosts.
func (c *Cloud) sandboxOptions() sandbox.Options { return sandbox.Options{Log: c.log} }
