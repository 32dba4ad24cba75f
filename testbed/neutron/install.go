package neutron

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"go.uber.org/zap"
)

// Packages are the Debian 12 packages the harness needs, as ../shared/tools/neutron-testbed.sh
// installs them: neutron-server 21 (Zed) with its ML2 plugin (neutron-common, python3-neutron),
// Neutron's Open vSwitch agent (the reference agent the acceptance tests run beside
// dvrflow-agent) with iptables for its iptables_hybrid firewall, MariaDB with the Python driver neutron-server uses, RabbitMQ, and Open
// vSwitch for the simulated hosts. python3-oslo.messaging comes with python3-neutron; the L3
// stand-in (l3_agent_rpc.py) needs nothing more.
var Packages = []string{
	"neutron-server", "neutron-common", "python3-neutron", "neutron-openvswitch-agent",
	"mariadb-server", "python3-pymysql",
	"rabbitmq-server",
	"openvswitch-switch", "iproute2",
	"iptables", // the iptables_hybrid firewall driver of Neutron's agent
}

// policyRCD is Debian's hook that decides whether a package may start its service on install.
const policyRCD = "/usr/sbin/policy-rc.d"

// EnsurePackages installs those of [Packages] that are missing, in one apt-get call, and does
// nothing when all are present. Packages already installed are never upgraded. While apt-get
// runs, a policy-rc.d that forbids service starts is put in place (unless the machine has one),
// so that Debian does not start a system-wide RabbitMQ on 0.0.0.0, MariaDB, Open vSwitch or
// the agent. If the install fails it refreshes the package lists once and retries.
func EnsurePackages(ctx context.Context, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	if os.Geteuid() != 0 {
		return errors.New("neutron test bed needs root (namespaces, Open vSwitch, package install): run as root")
	}
	missing := missingPackages(ctx, Packages)
	if len(missing) == 0 {
		log.Debug("neutron test bed packages present")
		return nil
	}
	start := time.Now()
	log.Info("installing Debian packages for the neutron test bed", zap.Strings("packages", missing))
	if _, err := os.Stat(policyRCD); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policyRCD, []byte("#!/bin/sh\n# written by dvrflow's neutron test bed while apt-get runs\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("install packages: write %s: %w", policyRCD, err)
		}
		defer os.Remove(policyRCD)
	}
	install := append([]string{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=600"}, missing...)
	err := aptGet(ctx, install...)
	if err != nil {
		log.Warn("apt-get install failed; refreshing the package lists and retrying once", zap.Error(err))
		if uerr := aptGet(ctx, "update", "-o", "DPkg::Lock::Timeout=600"); uerr != nil {
			return fmt.Errorf("install packages: %w; apt-get update: %w", err, uerr)
		}
		err = aptGet(ctx, install...)
	}
	if err != nil {
		return fmt.Errorf("install packages: %w", err)
	}
	if still := missingPackages(ctx, missing); len(still) > 0 {
		return fmt.Errorf("install packages: still missing after apt-get: %s", strings.Join(still, " "))
	}
	log.Info("installed Debian packages for the neutron test bed", zap.Strings("packages", missing),
		zap.Duration("took", time.Since(start).Round(time.Millisecond)))
	return nil
}

func aptGet(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 30))
	}
	return nil
}

// missingPackages returns the packages dpkg does not list as installed.
func missingPackages(ctx context.Context, pkgs []string) []string {
	var missing []string
	for _, p := range pkgs {
		out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Status}", p).Output()
		if err != nil || !strings.Contains(string(out), "install ok installed") {
			missing = append(missing, p)
		}
	}
	return missing
}

// lastLines returns the last n lines of s.
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
