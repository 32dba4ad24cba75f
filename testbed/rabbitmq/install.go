package rabbitmq

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// Where Debian's rabbitmq-server package puts the programs the node needs. The scripts under
// /usr/lib/rabbitmq/bin run as the calling user (the /usr/sbin wrappers would switch to the
// rabbitmq user and read the system configuration).
const (
	serverBinary = "/usr/lib/rabbitmq/bin/rabbitmq-server"
	ctlBinary    = "/usr/lib/rabbitmq/bin/rabbitmqctl"
	epmdBinary   = "epmd"
)

// aptPackage provides the binaries above on Debian and Ubuntu (Erlang comes as a dependency).
const aptPackage = "rabbitmq-server"

// policyRCPath is Debian's hook that decides whether a package install may start its
// service. While it exits 101 nothing is started: without it, installing rabbitmq-server
// would start a system-wide broker listening on every address.
const policyRCPath = "/usr/sbin/policy-rc.d"

// installLock serialises installs between test binaries that run in parallel (go test runs
// packages concurrently); apt's own locks would make the second one fail.
const installLock = "/tmp/dvrflow-rabbitmq-install.lock"

// EnsureInstalled installs Debian's rabbitmq-server with apt-get when its programs are
// missing, without starting the system service, and logs what it did and how long it took.
// It needs root only when something has to be installed.
func EnsureInstalled(ctx context.Context, log *zap.Logger) error {
	if log == nil {
		log = zap.NewNop()
	}
	if len(missingBinaries()) == 0 {
		return nil
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("rabbitmq-server is not installed (missing %s) and installing it needs root",
			strings.Join(missingBinaries(), ", "))
	}
	unlock, err := lockFile(ctx, installLock)
	if err != nil {
		return err
	}
	defer unlock()
	missing := missingBinaries() // another test binary may have installed it meanwhile
	if len(missing) == 0 {
		return nil
	}
	log.Info("installing rabbitmq-server with apt-get", zap.Strings("missing", missing))
	started := time.Now()
	if _, err := os.Stat(policyRCPath); errors.Is(err, os.ErrNotExist) {
		if err := os.WriteFile(policyRCPath, []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
			return fmt.Errorf("write %s to keep apt from starting a system RabbitMQ: %w", policyRCPath, err)
		}
		defer os.Remove(policyRCPath)
	}
	install := []string{"install", "-y", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300", aptPackage}
	if err := aptGet(ctx, install...); err != nil {
		// The package lists may be stale or absent (a fresh machine): refresh once, retry.
		log.Info("apt-get install failed; refreshing the package lists and retrying", zap.Error(err))
		if err := aptGet(ctx, "update"); err != nil {
			return err
		}
		if err := aptGet(ctx, install...); err != nil {
			return err
		}
	}
	if missing := missingBinaries(); len(missing) > 0 {
		return fmt.Errorf("after installing %s still missing: %s", aptPackage, strings.Join(missing, ", "))
	}
	log.Info("installed rabbitmq-server", zap.Duration("took", time.Since(started)))
	return nil
}

func aptGet(ctx context.Context, args ...string) error {
	cmd := exec.CommandContext(ctx, "apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("apt-get %s: %w\n%s", strings.Join(args, " "), err, lastLines(string(out), 20))
	}
	return nil
}

func missingBinaries() []string {
	var missing []string
	for _, b := range []string{serverBinary, ctlBinary, epmdBinary} {
		if _, err := exec.LookPath(b); err != nil {
			missing = append(missing, b)
		}
	}
	return missing
}

// lockFile takes an exclusive flock on path, polling until ctx ends.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open install lock %s: %w", path, err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { _ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN); f.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, fmt.Errorf("waiting for install lock %s: %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
