package sandbox

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"go.uber.org/zap"
)

// StateDirEnv names the environment variable that overrides the directory
// where the sandbox records its hosts (default DefaultStateDir).
const StateDirEnv = "DVRFLOW_SANDBOX_DIR"

// DefaultStateDir is where host state files live unless StateDirEnv is set.
const DefaultStateDir = "/tmp/dvrflow-sandbox"

// ErrNotFound is returned by Open when no running host of that name is
// recorded in the state dir.
var ErrNotFound = errors.New("sandbox host not found")

// state is the per-host JSON file that lets a later run find and stop a host.
type state struct {
	Name     string `json:"name"`
	RunDir   string `json:"rundir"`
	Holder   record `json:"holder"`
	OVSDB    record `json:"ovsdb_server"`
	Vswitchd record `json:"ovs_vswitchd"`
}

func stateDir() string {
	if d := os.Getenv(StateDirEnv); d != "" {
		return d
	}
	return DefaultStateDir
}

func statePath(name string) string { return filepath.Join(stateDir(), name+".json") }

func readState(name string) (*state, error) {
	b, err := os.ReadFile(statePath(name))
	if err != nil {
		return nil, err
	}
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("parse state file %s: %w", statePath(name), err)
	}
	if st.Name != name {
		return nil, fmt.Errorf("state file %s records host %q", statePath(name), st.Name)
	}
	return &st, nil
}

// writeState writes the file atomically (temp file + rename).
func writeState(st *state) error {
	dir := stateDir()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create sandbox state dir: %w", err)
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, "."+st.Name+"-*.tmp")
	if err != nil {
		return fmt.Errorf("write state of host %s: %w", st.Name, err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write state of host %s: %w", st.Name, err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state of host %s: %w", st.Name, err)
	}
	if err := os.Rename(tmp.Name(), statePath(st.Name)); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write state of host %s: %w", st.Name, err)
	}
	return nil
}

// Recorded describes a host found in the sandbox state dir.
type Recorded struct {
	Name   string // host name
	RunDir string // its OVS run directory
	Pid    int    // holder pid
	Alive  bool   // whether the holder process is still running
}

// List returns the hosts recorded in the state dir, sorted by name.
func List() ([]Recorded, error) {
	entries, err := os.ReadDir(stateDir())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list sandbox hosts: %w", err)
	}
	var out []Recorded
	for _, e := range entries {
		name, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || strings.HasPrefix(name, ".") {
			continue
		}
		st, err := readState(name)
		if err != nil {
			continue
		}
		h := hostFromState(st, Options{})
		out = append(out, Recorded{Name: name, RunDir: st.RunDir, Pid: st.Holder.Pid, Alive: h.holderReady()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// Open returns the running host called name recorded in the state dir (for
// instance one brought up by `dvrflow-sandbox up`). The error wraps
// ErrNotFound if there is none.
func Open(name string, opts Options) (*Host, error) {
	st, err := readState(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("open host %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open host %s: %w", name, err)
	}
	h := hostFromState(st, opts)
	if !h.holderReady() {
		return nil, fmt.Errorf("open host %s: holder pid %d is gone: %w", name, st.Holder.Pid, ErrNotFound)
	}
	return h, nil
}

// StopRecorded stops the host called name recorded in the state dir, by the
// pids recorded there (each verified to still be ours before it is
// signalled), and removes its state file and, unless opts.KeepRunDir, its run
// directory. It returns nil if no such host is recorded.
func StopRecorded(ctx context.Context, name string, opts Options) error {
	st, err := readState(name)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		// An unreadable state file cannot name any pid; drop it.
		opts.logger().Warn("removing unreadable sandbox state file", zap.String("host", name), zap.Error(err))
		return os.Remove(statePath(name))
	}
	return hostFromState(st, opts).Stop(ctx)
}
