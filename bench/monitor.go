package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// flowMonitor watches a bridge's flow table from the switch's side with
// `ovs-ofctl monitor BRIDGE watch:!initial` (OpenFlow flow monitoring): ovs-vswitchd
// reports every flow added or deleted once the change is committed. It records, per
// (event, table, MAC), when the first such report arrived.
type flowMonitor struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser

	mu   sync.Mutex
	seen map[monitorKey]time.Time
	err  error
	done chan struct{}
}

type monitorKey struct {
	event string // ADDED or DELETED
	table string // "25"
	mac   string // dl_src of the flow
}

// startFlowMonitor starts the monitor on a bridge's management socket, with its control
// socket in dir, and waits until it is connected.
func startFlowMonitor(ctx context.Context, mgmt, dir string) (*flowMonitor, error) {
	m := &flowMonitor{seen: map[monitorKey]time.Time{}, done: make(chan struct{})}
	// ovs-ofctl monitor holds its reports back unless its output is a terminal (stdbuf does
	// not help), so it runs under script(1), in a pseudo-terminal whose output is flushed as
	// it comes. Paths hold no spaces (sandbox run dirs and the work dir are mkdtemp names).
	monitor := fmt.Sprintf("ovs-ofctl --no-names --unixctl=%s monitor unix:%s watch:!initial", filepath.Join(dir, "ofctl-monitor.ctl"), mgmt)
	m.cmd = exec.CommandContext(ctx, "script", "--quiet", "--flush", "--return", "--command", monitor, "/dev/null")
	m.cmd.Cancel = func() error { return m.cmd.Process.Signal(syscall.SIGTERM) }
	out, err := m.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	// script ends its session at the end of its input: keep that open until stop.
	if m.stdin, err = m.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	if err := m.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start ovs-ofctl monitor: %w", err)
	}
	go func() {
		defer close(m.done)
		sc := bufio.NewScanner(out)
		sc.Buffer(make([]byte, 64*1024), 1024*1024)
		for sc.Scan() {
			at := time.Now()
			if k, ok := parseMonitorLine(sc.Text()); ok {
				m.mu.Lock()
				if _, dup := m.seen[k]; !dup {
					m.seen[k] = at
				}
				m.mu.Unlock()
			}
		}
		m.mu.Lock()
		m.err = fmt.Errorf("ovs-ofctl monitor ended: %v", m.cmd.Wait())
		m.mu.Unlock()
	}()
	// ovs-ofctl monitor prints nothing until a flow changes; give it time to connect and
	// register (it is started once, long before the first measurement).
	select {
	case <-time.After(300 * time.Millisecond):
	case <-m.done:
		return nil, m.err
	}
	return m, nil
}

// parseMonitorLine reads " event=ADDED table=25 cookie=0x... priority=2,in_port=7,dl_src=MAC actions=..."
// (DELETED events also carry reason=...).
func parseMonitorLine(line string) (monitorKey, bool) {
	var k monitorKey
	for _, f := range strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == ',' }) {
		switch {
		case strings.HasPrefix(f, "event="):
			k.event = strings.TrimPrefix(f, "event=")
		case strings.HasPrefix(f, "table="):
			k.table = strings.TrimPrefix(f, "table=")
		case strings.HasPrefix(f, "dl_src="):
			k.mac = strings.TrimPrefix(f, "dl_src=")
		}
	}
	return k, k.event != "" && k.table != "" && k.mac != ""
}

// when returns when the switch first reported the event for the table-25 (MAC spoofing) flow
// of a port with this MAC, waiting up to a second for the report to be read.
func (m *flowMonitor) when(event, mac string) (time.Time, error) {
	k := monitorKey{event: event, table: "25", mac: mac}
	deadline := time.Now().Add(time.Second)
	for {
		m.mu.Lock()
		at, ok := m.seen[k]
		err := m.err
		m.mu.Unlock()
		switch {
		case ok:
			return at, nil
		case err != nil:
			return time.Time{}, err
		case time.Now().After(deadline):
			return time.Time{}, fmt.Errorf("the switch reported no %s of the table 25 flow for %s", event, mac)
		}
		time.Sleep(time.Millisecond)
	}
}

// stop ends the monitor: SIGTERM to script, which ends ovs-ofctl with it.
func (m *flowMonitor) stop() {
	_ = m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(5 * time.Second):
		_ = m.cmd.Process.Kill()
		<-m.done
	}
}
