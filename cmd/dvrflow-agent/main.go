// Command dvrflow-agent is the Open vSwitch agent of a DVR node: it owns br-int, br-tun and
// the physical bridges and keeps their OpenFlow pipeline equal to Neutron's for the state
// it is given: by neutron-server over its RPC (Neutron mode, [DEFAULT] transport_url), or by
// a topology file (standalone).
//
//	dvrflow-agent --config-file /etc/neutron/neutron.conf \
//	    --config-file /etc/neutron/plugins/ml2/openvswitch_agent.ini
//	dvrflow-agent --config-file /etc/neutron/plugins/ml2/openvswitch_agent.ini \
//	    --topology /etc/dvrflow/topology.yaml [--once]
//
// With --once it converges, reads every bridge back from the switch, and exits 0 when all
// of them equal the desired state (non-zero with the differences otherwise). Without it, it
// runs until SIGTERM and reacts to OVSDB events, topology file changes and ovs-vswitchd
// restarts within milliseconds.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/agentapi"
	"github.com/dvrflow/dvrflow/controller"
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/dvr/namespace"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/metrics"
	"github.com/dvrflow/dvrflow/startup"
)

// options are the command-line flags. Flags that override config options are applied
// only when given (see apply).
type options struct {
	configFiles     []string
	topology        string
	ovsdbConnection string
	ovsRundir       string
	datapathType    string
	manageRouterNS  string
	statePath       string
	once            bool
	printDesired    string
	portWait        time.Duration
	logLevel        string
	set             map[string]bool
}

type fileList []string

func (f *fileList) String() string     { return strings.Join(*f, ",") }
func (f *fileList) Set(v string) error { *f = append(*f, v); return nil }

func parseFlags(args []string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("dvrflow-agent", flag.ContinueOnError)
	fs.Var((*fileList)(&o.configFiles), "config-file", "Neutron `ini` file (openvswitch_agent.ini format); repeatable, later files override earlier ones")
	fs.StringVar(&o.topology, "topology", "", "standalone topology `file` (YAML or JSON); overrides [dvrflow] topology_file")
	fs.StringVar(&o.ovsdbConnection, "ovsdb-connection", "", "OVSDB endpoint, unix:PATH or tcp:IP:PORT (Neutron's [ovs] ovsdb_connection)")
	fs.StringVar(&o.ovsRundir, "ovs-rundir", "", "`directory` holding the bridges' BRIDGE.mgmt sockets ([dvrflow] ovs_rundir; default "+config.DefaultOVSRundir+")")
	fs.StringVar(&o.datapathType, "datapath-type", "", "datapath of the bridges: system or netdev ([ovs] datapath_type)")
	fs.StringVar(&o.manageRouterNS, "manage-router-namespaces", "", "create the DVR router namespaces (true|false; default: true in standalone mode)")
	fs.StringVar(&o.statePath, "state-path", "", "`directory` of the agent's persistent state: the floating IP allocations of the router namespaces ([DEFAULT] state_path; default "+config.DefaultStatePath+", Neutron's)")
	fs.BoolVar(&o.once, "once", false, "converge once, verify every bridge against the switch, and exit (0 when equal)")
	fs.StringVar(&o.printDesired, "print-desired", "", "after converging, write each bridge's desired flows to `DIR`/BRIDGE.flows (ovs-ofctl add-flows format)")
	fs.DurationVar(&o.portWait, "port-wait", 10*time.Second, "with --once: how long to wait for plugged VIFs and the agent's tunnel and patch ports to get an ofport")
	fs.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	return o, nil
}

// apply overrides cfg with the flags that were given (flags win over everything).
func (o *options) apply(cfg *config.Config) error {
	if o.set["topology"] {
		cfg.TopologyFile = o.topology
	}
	if o.set["ovsdb-connection"] {
		cfg.OVSDBConnection = o.ovsdbConnection
	}
	if o.set["ovs-rundir"] {
		cfg.OVSRundir = o.ovsRundir
	}
	if o.set["datapath-type"] {
		cfg.DatapathType = o.datapathType
	}
	if o.set["state-path"] {
		cfg.StatePath = o.statePath
	}
	if o.set["manage-router-namespaces"] {
		v, err := strconv.ParseBool(o.manageRouterNS)
		if err != nil {
			return fmt.Errorf("--manage-router-namespaces %q: want true or false", o.manageRouterNS)
		}
		cfg.ManageRouterNamespaces = &v
	}
	return nil
}

func main() {
	o, err := parseFlags(os.Args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "dvrflow-agent:", err)
		os.Exit(2)
	}
	log, err := newLogger(o.logLevel)
	if err != nil {
		fmt.Fprintln(os.Stderr, "dvrflow-agent:", err)
		os.Exit(2)
	}
	defer func() { _ = log.Sync() }()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, log); err != nil {
		log.Error("dvrflow-agent failed", zap.Error(err))
		os.Exit(1)
	}
}

func newLogger(level string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	cfg := zap.NewProductionConfig()
	cfg.Encoding = "console"
	cfg.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	cfg.EncoderConfig.EncodeLevel = zapcore.CapitalLevelEncoder
	cfg.Level = zap.NewAtomicLevelAt(lvl)
	cfg.Sampling = nil
	return cfg.Build()
}

func run(ctx context.Context, o *options, log *zap.Logger) error {
	started := time.Now()
	base, warnings, err := config.LoadConfig(o.configFiles...)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		log.Warn("config", zap.String("warning", w.String()))
	}
	if o.once && base.NeutronMode() && !o.set["topology"] {
		return errors.New("--once converges on a topology file; in the Neutron mode ([DEFAULT] transport_url) the agent runs until stopped")
	}
	boot, err := startup.Bootstrap(ctx, base, o.apply, log)
	if err != nil {
		return err
	}
	defer boot.Close()
	cfg := boot.Config
	log = log.With(zap.String("host", cfg.Host))
	for _, u := range cfg.Unhonoured() {
		log.Warn("option not honoured", zap.String("section", u.Section), zap.String("option", u.Option),
			zap.String("value", u.Value), zap.String("reason", u.Reason))
	}
	northboundSource := "topology " + cfg.TopologyFile
	if cfg.NeutronMode() {
		northboundSource = "neutron-server"
	}
	log.Info("starting", zap.String("northbound", northboundSource), zap.String("ovsdb", cfg.OVSDBConnection),
		zap.String("datapath_type", cfg.DatapathType), zap.Bool("distributed", cfg.DistributedRoutingEnabled()),
		zap.Any("tunnel_types", cfg.TunnelTypes), zap.Bool("once", o.once))

	agent := controller.NewAgent(cfg, boot.DB, log)
	defer agent.Close()
	agent.UsePrefetch(boot.Prefetch)
	if cfg.RouterNamespacesManaged() {
		// The floating IP allocators, opened once, in Neutron's files under state_path.
		alloc, skipped, err := namespace.OpenFIPAllocators(cfg.StatePath)
		for _, s := range skipped {
			log.Warn("floating IP allocation file: line skipped", zap.Error(s))
		}
		if err != nil {
			return fmt.Errorf("floating IP allocations in [DEFAULT] state_path %s: %w", cfg.StatePath, err)
		}
		log.Info("floating IP allocations", zap.String("link_local_file", alloc.LinkLocal.Path()),
			zap.Int("link_local_pairs", len(alloc.LinkLocal.Allocations())),
			zap.String("priority_file", alloc.Priorities.Path()), zap.Int("rule_priorities", len(alloc.Priorities.Allocations())))
		rn := namespace.New(boot.DB, cfg.IntegrationBridge, log)
		defer rn.Close()
		agent.EnableRouterNamespaces(rn, alloc)
		log.Info("managing DVR router namespaces (standalone mode; --manage-router-namespaces=false to leave them to an L3 agent)")
	}
	if err := agent.Setup(ctx); err != nil {
		return err
	}
	agent.SetSnapshot(boot.TakeSnapshot())

	if o.once {
		if cfg.MetricsAddress != "" {
			log.Warn("option not honoured", zap.String("section", "dvrflow"), zap.String("option", "metrics_address"),
				zap.String("value", cfg.MetricsAddress), zap.String("reason", "no metrics listener in a one-shot run (--once)"))
		}
		if cfg.APISocket != nil && *cfg.APISocket != "" {
			log.Warn("option not honoured", zap.String("section", "dvrflow"), zap.String("option", "api_socket"),
				zap.String("value", *cfg.APISocket), zap.String("reason", "no API socket in a one-shot run (--once)"))
		}
		return runOnce(ctx, agent, o, log)
	}
	srv, onConverged, err := startHTTP(cfg, agent, boot.DB, started, log)
	if err != nil {
		return err
	}
	if srv != nil {
		defer func() {
			if err := srv.Close(); err != nil {
				log.Warn("HTTP server close", zap.Error(err))
			}
		}()
	}
	reload := make(chan os.Signal, 1)
	signal.Notify(reload, syscall.SIGHUP)
	defer signal.Stop(reload)
	updates, err := boot.Updates(ctx, o.configFiles, reload, log)
	if err != nil {
		return err
	}
	if o.printDesired != "" {
		written := false
		onConverged = append(onConverged, func(controller.Report) {
			if written {
				return
			}
			written = true
			if err := writeDesired(o.printDesired, agent.Desired()); err != nil {
				log.Error("print desired flows", zap.Error(err))
			}
		})
	}
	onConverged = append(onConverged, boot.Reconciled)
	agent.OnConverged(func(rep controller.Report) {
		for _, f := range onConverged {
			f(rep)
		}
	})
	err = agent.Run(ctx, updates, boot.Effective)
	log.Info("stopped")
	return err
}

// startHTTP starts the agent's one HTTP server: the read-only API on api_socket (with
// /metrics, /healthz and /readyz beside it when metrics are on) and, with metrics_address,
// the metrics listener, which serves only those three. It returns a nil server when both
// are off, and what must see every reconcile.
func startHTTP(cfg *config.Config, agent *controller.Agent, db interface{ Connected() bool }, started time.Time,
	log *zap.Logger) (*agentapi.Server, []func(controller.Report), error) {
	socket := cfg.APISocketPath()
	if socket == "" && cfg.MetricsAddress == "" {
		return nil, nil, nil
	}
	conns := metrics.Agent{Agent: agent, DB: db}
	srv := agentapi.NewServer(log)
	var onConverged []func(controller.Report)
	var rec *metrics.Recorder
	if cfg.MetricsAddress != "" {
		rec = metrics.NewRecorder(conns)
		onConverged = append(onConverged, rec.Reconciled)
		mux := http.NewServeMux()
		rec.Mount(mux)
		if err := srv.ListenTCP(cfg.MetricsAddress, mux); err != nil {
			return nil, nil, fmt.Errorf("metrics_address %s: %w", cfg.MetricsAddress, err)
		}
	}
	if socket != "" {
		pub := agentapi.NewPublisher(agent, started)
		pub.Publish(nil) // before the first reconcile: what the agent already knows
		onConverged = append(onConverged, pub.Reconciled)
		mux := http.NewServeMux()
		pub.Mount(mux, conns)
		if rec != nil {
			rec.Mount(mux)
		}
		if err := srv.ListenUnix(socket, mux); err != nil {
			_ = srv.Close()
			return nil, nil, err
		}
	}
	srv.Start()
	for _, a := range srv.Addrs() {
		if a.Network() == "unix" {
			log.Info("serving the agent API (dvrflow status)", zap.String("api_socket", a.String()))
		} else {
			log.Info("serving metrics, /healthz and /readyz", zap.String("address", a.String()))
		}
	}
	return srv, onConverged, nil
}

func runOnce(ctx context.Context, agent *controller.Agent, o *options, log *zap.Logger) error {
	if waiting := agent.WaitForPorts(ctx, o.portWait); len(waiting) > 0 {
		log.Warn("ports still without an ofport, not bound in this run", zap.Strings("ports", waiting))
	}
	rep, err := agent.Converge(ctx, o.portWait)
	if err != nil {
		return err
	}
	if rep.RouterErr == nil && len(rep.Binding.Unbound) > 0 {
		// Router ports plugged by this run: bind them too.
		if waiting := agent.WaitForPorts(ctx, o.portWait); len(waiting) > 0 {
			log.Warn("router ports still without an ofport", zap.Strings("ports", waiting))
		}
		tagsCfg := rep.TagsCfg
		if rep, err = agent.Converge(ctx, o.portWait); err != nil {
			return err
		}
		rep.TagsCfg = max(rep.TagsCfg, tagsCfg)
	}
	if len(rep.Waiting) > 0 {
		return fmt.Errorf("ports still without an ofport after %s: %s", o.portWait, strings.Join(rep.Waiting, ", "))
	}
	if rep.RouterErr != nil {
		return fmt.Errorf("router namespaces: %w", rep.RouterErr)
	}
	if o.printDesired != "" {
		if err := writeDesired(o.printDesired, agent.Desired()); err != nil {
			return err
		}
	}
	if err := agent.WaitTagsApplied(ctx, rep); err != nil {
		return fmt.Errorf("tags not applied by ovs-vswitchd: %w", err)
	}
	if err := agent.Verify(ctx); err != nil {
		return fmt.Errorf("not converged: %w", err)
	}
	b := rep.Binding
	log.Info("converged and verified", zap.Int("flow_mods", rep.FlowMods()), zap.Int("ports_tagged", len(rep.Retagged)),
		zap.Int("ports_bound", len(b.Node.Ports)), zap.Int("ports_unbound", len(b.Unbound)),
		zap.Int("networks", len(b.Node.Networks)), zap.Duration("took", rep.Took))
	return nil
}

// writeDesired writes each bridge's flows to dir/BRIDGE.flows, loadable with
// `ovs-ofctl -O OpenFlow13 add-flows BRIDGE FILE`.
func writeDesired(dir string, desired map[string][]flows.Flow) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("print desired flows: %w", err)
	}
	for br, fs := range desired {
		var b strings.Builder
		for _, f := range fs {
			b.WriteString(f.String())
			b.WriteByte('\n')
		}
		path := filepath.Join(dir, br+".flows")
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return fmt.Errorf("print desired flows of %s: %w", br, err)
		}
	}
	return nil
}
