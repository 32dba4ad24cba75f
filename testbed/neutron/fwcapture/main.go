// Command fwcapture captures the reference for dvrflow's Open vSwitch firewall: the br-int
// flows Neutron's own agent (neutron-openvswitch-agent 21, firewall_driver = openvswitch)
// installs for a set of security-group scenarios, each on a fresh simulated host of the
// Neutron test bed (testbed/neutron), with the objects created over the REST API and the VM
// ports plugged as os-vif plugs them. For each scenario it writes NAME.flows (the dump,
// cookies blanked, sorted as testdata/neutron/scenarios' dumps) and NAME.json (the same
// objects in dvrflow's topology format, with the ids, MACs and addresses Neutron assigned).
//
//	go run ./testbed/neutron/fwcapture -out testdata/neutron/firewall
//
// It needs root and installs the test bed's Debian packages when they are missing;
// testdata/neutron/firewall/README.md says what the files hold.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/dvrflow/dvrflow/testbed/neutron"
)

func main() {
	out := flag.String("out", "testdata/neutron/firewall", "directory the NAME.flows and NAME.json files are written to")
	only := flag.String("only", "", "comma-separated scenario names to capture (default: all)")
	keep := flag.Bool("keep", false, "keep the test bed's directory (logs, configuration) after the run")
	list := flag.Bool("list", false, "list the scenarios and exit")
	flag.Parse()
	if *list {
		for _, s := range scenarios {
			fmt.Printf("%-22s %s\n", s.name, s.description)
		}
		return
	}
	if err := captureAll(*out, *only, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "fwcapture:", err)
		os.Exit(1)
	}
}

func captureAll(out, only string, keep bool) (err error) {
	chosen := scenarios
	if only != "" {
		chosen = nil
		for _, name := range strings.Split(only, ",") {
			i := slices.IndexFunc(scenarios, func(s *scenario) bool { return s.name == strings.TrimSpace(name) })
			if i < 0 {
				return fmt.Errorf("no scenario %q (-list lists them)", name)
			}
			chosen = append(chosen, scenarios[i])
		}
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	lc := zap.NewDevelopmentConfig()
	lc.Level = zap.NewAtomicLevelAt(zapcore.InfoLevel)
	log, err := lc.Build()
	if err != nil {
		return err
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 45*time.Minute)
	defer cancel()

	begin := time.Now()
	cloud, err := neutron.Start(ctx, neutron.Options{Log: log, FirewallDriver: "openvswitch"})
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || keep {
			cloud.KeepDir()
		}
		cctx, ccancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer ccancel()
		if cerr := cloud.Close(cctx); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()
	log.Info("test bed up", zap.Duration("after", time.Since(begin).Round(time.Millisecond)))

	// A scenario that fails is reported at the end; the others are still captured.
	c := &capture{cloud: cloud, log: log, out: out}
	var failed []error
	for i, s := range chosen {
		t := time.Now()
		res, err := c.scenario(ctx, s)
		if errors.Is(err, errSkip) {
			log.Warn("scenario skipped", zap.String("scenario", s.name), zap.Error(err))
			continue
		}
		if err != nil {
			log.Error("scenario failed", zap.String("scenario", s.name), zap.Error(err))
			failed = append(failed, fmt.Errorf("scenario %s: %w", s.name, err))
			if ctx.Err() != nil {
				break
			}
			continue
		}
		log.Info("scenario captured", zap.String("scenario", s.name), zap.Int("n", i+1), zap.Int("of", len(chosen)),
			zap.Int("flows", res.flows), zap.String("per_table", res.perTable),
			zap.Duration("took", time.Since(t).Round(time.Millisecond)))
	}
	log.Info("done", zap.Duration("took", time.Since(begin).Round(time.Second)), zap.Int("failed", len(failed)))
	return errors.Join(failed...)
}
