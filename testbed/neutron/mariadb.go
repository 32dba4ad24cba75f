package neutron

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// mariaDB is the test bed's private MariaDB: its own data directory, socket and port on
// 127.0.0.1, nothing read from /etc/mysql. Durability is traded for speed (no doublewrite,
// no flush per commit): a test bed's database outlives no test.
type mariaDB struct {
	dir  string // holds data/, the socket and the pid file
	port int
	proc *process
}

const (
	dbName     = "neutron"
	dbUser     = "neutron"
	dbPassword = "neutron"
)

func (m *mariaDB) socket() string { return filepath.Join(m.dir, "mysqld.sock") }

// url is the SQLAlchemy URL neutron-server connects with.
func (m *mariaDB) url() string {
	return fmt.Sprintf("mysql+pymysql://%s:%s@127.0.0.1:%d/%s", dbUser, dbPassword, m.port, dbName)
}

// start initialises the data directory (first time only), starts mariadbd, waits until it
// answers and creates the neutron database and user.
func (m *mariaDB) start(ctx context.Context, runDir, logDir string, log *zap.Logger) error {
	data := filepath.Join(m.dir, "data")
	if _, err := os.Stat(data); os.IsNotExist(err) {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return fmt.Errorf("mariadb: %w", err)
		}
		install := exec.CommandContext(ctx, "mariadb-install-db", "--no-defaults", "--user=root", "--datadir="+data,
			"--auth-root-authentication-method=normal", "--skip-test-db")
		if out, err := install.CombinedOutput(); err != nil {
			return fmt.Errorf("mariadb-install-db: %w\n%s", err, lastLines(string(out), 20))
		}
	}
	cmd := exec.Command("mariadbd", "--no-defaults", "--user=root", "--datadir="+data,
		"--bind-address=127.0.0.1", "--port="+strconv.Itoa(m.port), "--socket="+m.socket(),
		"--pid-file="+filepath.Join(m.dir, "mariadb.pid"), "--log-error="+filepath.Join(logDir, "mariadb.err"),
		"--innodb-buffer-pool-size=64M", "--skip-name-resolve", "--skip-log-bin",
		"--innodb-doublewrite=0", "--innodb-flush-log-at-trx-commit=0")
	p, err := startProcess("mariadb", cmd, runDir, filepath.Join(logDir, "mariadb.out"))
	if err != nil {
		return err
	}
	m.proc = p
	err = waitReady(ctx, p, 60*time.Second, "mariadb", func(ctx context.Context) error {
		out, err := exec.CommandContext(ctx, "mariadb-admin", "--no-defaults", "-S", m.socket(), "-uroot", "ping").CombinedOutput()
		if err != nil {
			return fmt.Errorf("mariadb-admin ping: %w: %s", err, lastLines(string(out), 3))
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%w%s", err, tailFile(filepath.Join(logDir, "mariadb.err"), 20))
	}
	sql := fmt.Sprintf("CREATE DATABASE IF NOT EXISTS %s CHARACTER SET utf8mb4; "+
		"CREATE USER IF NOT EXISTS '%s'@'127.0.0.1' IDENTIFIED BY '%s'; "+
		"GRANT ALL ON %s.* TO '%s'@'127.0.0.1';", dbName, dbUser, dbPassword, dbName, dbUser)
	if out, err := exec.CommandContext(ctx, "mariadb", "--no-defaults", "-S", m.socket(), "-uroot", "-e", sql).CombinedOutput(); err != nil {
		return fmt.Errorf("mariadb: create database: %w: %s", err, lastLines(string(out), 5))
	}
	log.Info("mariadb started", zap.Int("pid", p.pid), zap.Int("port", m.port), zap.String("socket", m.socket()))
	return nil
}

func (m *mariaDB) stop(ctx context.Context) error {
	return m.proc.stop(ctx, 20*time.Second)
}
