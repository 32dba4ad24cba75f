// Command dvrflow-demo shows dvrflow's distributed virtual routing with real packets: a
// network node (agent_mode dvr_snat) and two compute hosts, each a private ovsdb-server and
// ovs-vswitchd in its own namespaces, joined by a fabric (testbed.Fabric) with a VLAN trunk
// and a flat external network where an external host lives; one dvrflow-agent per host; a
// distributed router with two subnets on two provider VLAN networks and its gateway on the
// external network; VMs on both compute hosts and both subnets, one with a floating IP.
//
// East-west, it pings between the VMs (switched and routed, within and across hosts),
// captures the trunk to show what a routed frame looks like on the wire (the sending host's
// DVR MAC, the provider VLAN) and shows that ARP for a gateway never leaves its host.
// North-south, a VM without a floating IP pings the external host through SNAT on the
// network node (captured there: un-NATed on the trunk, from the gateway IP on the external
// network, and on no compute host's external uplink), and the external host pings a VM's
// floating IP, served by that VM's own compute host (captured on its external uplink, with
// its fg- MAC), while the VM's own traffic leaves with the floating IP as source. Then it
// prints the pipeline of one host with table names, owners and packet counters, and tears
// everything down, also on Ctrl-C or failure. Every check that does not hold makes it exit
// 1.
//
// Run it with `make demo` (as root; it installs Open vSwitch, iproute2, tcpdump and arping
// when missing).
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"go.uber.org/zap"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "dvrflow-demo-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "dvrflow-demo:", err)
		os.Exit(1)
	}
	log, err := newLogger(filepath.Join(dir, "demo.log"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "dvrflow-demo:", err)
		os.Exit(1)
	}
	d := &demo{dir: dir, log: log, start: time.Now()}
	err = d.run(ctx)
	_ = log.Sync()
	if err != nil {
		if ctx.Err() != nil {
			err = errors.Join(errors.New("interrupted"), err)
		}
		fmt.Printf("\ndemo FAILED after %s: %v\n", time.Since(d.start).Round(100*time.Millisecond), err)
		fmt.Printf("logs kept in %s\n", dir)
		os.Exit(1)
	}
	fmt.Printf("\ndemo done in %s; logs kept in %s\n", time.Since(d.start).Round(100*time.Millisecond), dir)
}

// newLogger logs the sandbox's progress to path, keeping the terminal for the narrative.
func newLogger(path string) (*zap.Logger, error) {
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	cfg.OutputPaths = []string{path}
	cfg.ErrorOutputPaths = []string{path}
	return cfg.Build()
}
