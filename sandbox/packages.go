package sandbox

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"

	"go.uber.org/zap"
)

// requiredBinaries are the programs the sandbox runs.
var requiredBinaries = []string{
	"ovs-vswitchd", "ovsdb-server", "ovsdb-tool", "ovs-vsctl", "ovs-ofctl", "ovs-appctl",
	"ip", "ping", "arping", "tcpdump", "unshare", "nsenter", "mount", "bash",
}

// aptPackages provide requiredBinaries on Debian and Ubuntu.
var aptPackages = []string{"openvswitch-switch", "iproute2", "iputils-ping", "iputils-arping", "tcpdump", "util-linux", "mount"}

// Pid files of a system-wide OVS, as the Debian package's service starts it.
var systemOVSPidFiles = []string{"/var/run/openvswitch/ovs-vswitchd.pid", "/var/run/openvswitch/ovsdb-server.pid"}

// EnsurePackages checks that the process runs as root and that the programs
// the sandbox needs are on PATH; if some are missing it installs them with
// apt-get. If that install started a system-wide Open vSwitch, it is stopped
// again (a system OVS that was running before is never touched).
func EnsurePackages(ctx context.Context, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	if os.Geteuid() != 0 {
		return errors.New("sandbox needs root (namespaces, mounts, Open vSwitch): run as root, e.g. with sudo")
	}
	missing := missingBinaries()
	if len(missing) == 0 {
		return nil
	}
	log.Info("installing packages for the sandbox", zap.Strings("missing", missing), zap.Strings("packages", aptPackages))
	preexisting := map[string]bool{}
	for _, f := range systemOVSPidFiles {
		if _, err := os.Stat(f); err == nil {
			preexisting[f] = true
		}
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	for _, args := range [][]string{
		{"update"},
		append([]string{"install", "-y", "-o", "DPkg::Lock::Timeout=300"}, aptPackages...),
	} {
		cmd := exec.CommandContext(ctx, "apt-get", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 30))
		}
	}
	started := false
	for _, f := range systemOVSPidFiles {
		if _, err := os.Stat(f); err == nil && !preexisting[f] {
			started = true
		}
	}
	if started {
		log.Info("stopping the system Open vSwitch the package install started")
		cmd := exec.CommandContext(ctx, "/usr/share/openvswitch/scripts/ovs-ctl", "stop")
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("stop system Open vSwitch started by apt-get: %w\n%s", err, lastLines(string(out), 30))
		}
	}
	if missing := missingBinaries(); len(missing) > 0 {
		return fmt.Errorf("after installing %s still missing: %s", strings.Join(aptPackages, " "), strings.Join(missing, ", "))
	}
	return nil
}

func missingBinaries() []string {
	var missing []string
	for _, b := range requiredBinaries {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	return missing
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
