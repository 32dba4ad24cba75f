package neutron

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// ownerFile names, in a test bed's directory, the process that started it ("PID STARTTIME").
const ownerFile = "owner"

// writeOwner records this process as the owner of the test bed in dir.
func writeOwner(dir string) error {
	pid := os.Getpid()
	_, start, _, err := procStat(pid)
	if err != nil {
		return fmt.Errorf("record owner: %w", err)
	}
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(fmt.Sprintf("%d %d\n", pid, start)), 0o644)
}

// readRecord parses a "PID STARTTIME" record.
func readRecord(path string) (pid int, start uint64, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, err
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("%s: want PID STARTTIME, have %q", path, b)
	}
	if pid, err = strconv.Atoi(f[0]); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	if start, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return 0, 0, fmt.Errorf("%s: %w", path, err)
	}
	return pid, start, nil
}

// stopLeftovers stops the recorded daemons (MariaDB, neutron-server, agents) of test beds
// whose owning process is gone (a test run that was killed), by their records only, and
// marks those directories done by removing their owner file; the directories stay for
// post-mortems. Test beds of live processes (another test package running now) are left
// alone. A leftover RabbitMQ node is testbed/rabbitmq's and is only reported.
func stopLeftovers(ctx context.Context, log *zap.Logger) {
	owners, _ := filepath.Glob(filepath.Join(os.TempDir(), "dvrflow-neutron-*", ownerFile))
	for _, owner := range owners {
		pid, start, err := readRecord(owner)
		if err != nil {
			continue
		}
		if state, s, _, err := procStat(pid); err == nil && state != 'Z' && s == start {
			continue // its test run is alive
		}
		dir := filepath.Dir(owner)
		recs, _ := filepath.Glob(filepath.Join(dir, "run", "*.pid"))
		for _, rec := range recs {
			pid, start, err := readRecord(rec)
			if err != nil {
				continue
			}
			p := &process{name: strings.TrimSuffix(filepath.Base(rec), ".pid"), pid: pid, start: start}
			if !p.running() {
				continue
			}
			if !p.alive() && start != 0 {
				// The leader is gone; its group lives on only if the kernel kept the id.
				log.Warn("leftover process group without its leader", zap.String("name", p.name), zap.Int("pgid", pid))
			}
			if err := p.stop(ctx, 5*time.Second); err != nil {
				log.Warn("cannot stop leftover", zap.String("name", p.name), zap.Error(err))
				continue
			}
			log.Info("stopped a leftover of a killed test run", zap.String("dir", dir), zap.String("name", p.name), zap.Int("pid", pid))
		}
		if _, err := os.Stat(filepath.Join(dir, "rabbitmq")); err == nil {
			log.Warn("a killed test run may have left its RabbitMQ node running", zap.String("dir", filepath.Join(dir, "rabbitmq")))
		}
		_ = os.Remove(owner)
	}
}
