package controller

import (
	"context"
	"os"
	"path/filepath"
	"sync"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
)

// FlowPrefetch reads the flows installed on the bridges an agent is going to manage while
// the agent is still starting (connecting to OVSDB, decoding its topology), so that its
// first reconcile need not read them (see [flows.Bridge.Prefetch]). On a restart, or on a
// start where the bridges already exist, their management sockets are there before OVSDB
// is; on a cold node there is nothing to read and the first reconcile works as without it.
//
// startup.Bootstrap starts one while OVSDB connects and the topology decodes; the agent takes it
// with Agent.UsePrefetch before Setup.
//
// A FlowPrefetch is safe for concurrent use.
type FlowPrefetch struct {
	log *zap.Logger

	mu      sync.Mutex
	writers map[string]prefetched // by bridge name; until UsePrefetch takes them
}

// prefetched is a write path whose first read was started early, with the management
// socket it reads.
type prefetched struct {
	w      *flows.Bridge
	socket string
}

// NewFlowPrefetch returns an empty prefetch; log may be nil.
func NewFlowPrefetch(log *zap.Logger) *FlowPrefetch {
	if log == nil {
		log = zap.NewNop()
	}
	return &FlowPrefetch{log: log, writers: map[string]prefetched{}}
}

// Start begins reading, in the background, the installed flows of every bridge cfg names
// (integration, physical, and with tunnelling the tunnel bridge) whose management socket
// exists and that is not being read yet, and returns at once. cfg need not be complete nor
// validated: Start may be called with the config known before the topology is decoded and
// again with the effective one; a bridge the agent ends up not managing was only read.
func (p *FlowPrefetch) Start(ctx context.Context, cfg *config.Config) {
	rundir := cfg.SocketDir()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, name := range cfg.ManagedBridges() {
		if name == "" {
			continue
		}
		socket := filepath.Join(rundir, name+".mgmt")
		if cur, ok := p.writers[name]; ok {
			if cur.socket == socket {
				continue
			}
			_ = cur.w.Close()
			delete(p.writers, name)
		}
		if _, err := os.Stat(socket); err != nil {
			continue // no such bridge yet: the first reconcile creates it
		}
		w := flows.NewBridge(name, socket, p.log)
		w.SetInactivityProbe(cfg.InactivityProbe())
		w.Prefetch(ctx)
		p.writers[name] = prefetched{w: w, socket: socket}
		p.log.Debug("reading installed flows ahead of the first reconcile", zap.String("bridge", name))
	}
}

// take hands over the write path of bridge name reading socket, if there is one.
func (p *FlowPrefetch) take(name, socket string) *flows.Bridge {
	p.mu.Lock()
	defer p.mu.Unlock()
	cur, ok := p.writers[name]
	if !ok || cur.socket != socket {
		return nil
	}
	delete(p.writers, name)
	return cur.w
}

// Close drops what no agent took: the reads are cancelled, the connections closed.
func (p *FlowPrefetch) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for name, cur := range p.writers {
		_ = cur.w.Close()
		delete(p.writers, name)
	}
}

// UsePrefetch makes the agent use the write paths p started for the bridges it manages, so
// that the first reconcile takes their prefetched flows; the others are closed (p is
// empty afterwards). Call it before Setup: Setup resets the write path of a bridge it
// creates, and a bridge it only adopts keeps what was prefetched.
func (a *Agent) UsePrefetch(p *FlowPrefetch) {
	rundir := a.cfg.SocketDir()
	for _, name := range a.cfg.ManagedBridges() {
		if w := p.take(name, filepath.Join(rundir, name+".mgmt")); w != nil {
			a.brs.use(name, w)
		}
	}
	p.Close()
}
