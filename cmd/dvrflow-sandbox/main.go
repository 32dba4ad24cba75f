// Command dvrflow-sandbox brings simulated hosts (namespaces with their own
// Open vSwitch, see package sandbox) up and down from the shell.
//
//	dvrflow-sandbox up NAME              start host NAME; prints KEY=VALUE lines
//	dvrflow-sandbox down NAME            stop host NAME (exit 0 if already gone)
//	dvrflow-sandbox down-all             stop every recorded host
//	dvrflow-sandbox exec NAME -- CMD...  run CMD inside host NAME with its OVS environment
//	dvrflow-sandbox list                 list recorded hosts
//
// Hosts are recorded in /tmp/dvrflow-sandbox, or $DVRFLOW_SANDBOX_DIR.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/sandbox"
)

func main() {
	os.Exit(run())
}

func usage() {
	fmt.Fprintf(flag.CommandLine.Output(), `usage: dvrflow-sandbox [flags] COMMAND
  up NAME              start host NAME, print RUNDIR, DB, PID, ... as KEY=VALUE
  down NAME            stop host NAME (exit 0 if already gone)
  down-all             stop every host recorded in the state dir
  exec NAME -- CMD...  run CMD inside host NAME with its OVS environment
  list                 list recorded hosts
flags:
`)
	flag.PrintDefaults()
}

func run() int {
	keep := flag.Bool("keep-rundir", false, "keep the run directory (db, logs) on down")
	verbose := flag.Bool("v", false, "log progress to stderr")
	flag.Usage = usage
	flag.Parse()
	args := flag.Args()
	if len(args) == 0 {
		usage()
		return 2
	}

	log := zap.NewNop()
	if *verbose {
		cfg := zap.NewDevelopmentConfig()
		cfg.DisableStacktrace = true
		l, err := cfg.Build()
		if err != nil {
			fmt.Fprintln(os.Stderr, "dvrflow-sandbox:", err)
			return 1
		}
		log = l
		defer func() { _ = log.Sync() }()
	}
	opts := sandbox.Options{Log: log, KeepRunDir: *keep}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "dvrflow-sandbox:", err)
		return 1
	}
	need := func(n int) bool {
		if len(args) != n {
			usage()
			return false
		}
		return true
	}

	switch args[0] {
	case "up":
		if !need(2) {
			return 2
		}
		if err := sandbox.EnsurePackages(ctx, log); err != nil {
			return fail(err)
		}
		h, err := sandbox.Start(ctx, args[1], opts)
		if err != nil {
			return fail(err)
		}
		fmt.Printf("NAME=%s\nRUNDIR=%s\nDB=%s\nPID=%d\nOVSDB_PID=%d\nVSWITCHD_PID=%d\n",
			h.Name(), h.RunDir(), h.DBEndpoint(), h.Pid(), h.OVSDBPid(), h.VswitchdPid())
	case "down":
		if !need(2) {
			return 2
		}
		if err := sandbox.StopRecorded(ctx, args[1], opts); err != nil {
			return fail(err)
		}
	case "down-all":
		if !need(1) {
			return 2
		}
		hosts, err := sandbox.List()
		if err != nil {
			return fail(err)
		}
		var errs []error
		for _, r := range hosts {
			errs = append(errs, sandbox.StopRecorded(ctx, r.Name, opts))
		}
		if err := errors.Join(errs...); err != nil {
			return fail(err)
		}
	case "exec":
		if len(args) < 4 || args[2] != "--" {
			usage()
			return 2
		}
		h, err := sandbox.Open(args[1], opts)
		if err != nil {
			return fail(err)
		}
		cmd := h.Command(ctx, args[3], args[4:]...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
		if err := cmd.Run(); err != nil {
			if ee, ok := errors.AsType[*exec.ExitError](err); ok {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					return 128 + int(ws.Signal())
				}
				if ee.ExitCode() > 0 {
					return ee.ExitCode()
				}
			}
			return fail(err)
		}
	case "list":
		if !need(1) {
			return 2
		}
		hosts, err := sandbox.List()
		if err != nil {
			return fail(err)
		}
		for _, r := range hosts {
			state := "running"
			if !r.Alive {
				state = "gone"
			}
			fmt.Printf("%s\tpid=%d\t%s\t%s\n", r.Name, r.Pid, state, r.RunDir)
		}
	default:
		usage()
		return 2
	}
	return 0
}
