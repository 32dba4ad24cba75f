package topology

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/northbound"
)

// watchDebounce is how long the watcher waits after the last file-system event before it
// reads the file, so that an editor's write-rename-chmod sequence gives one load.
const watchDebounce = 20 * time.Millisecond

// Watch loads the topology file at path and then reloads it whenever it changes, sending
// each result on the returned channel as a snapshot, or the error that kept the file from
// loading (the consumer keeps the state in force): first the initial load, then one update per
// change of the file's content (or of the load error). It watches the file's directory with
// inotify (no polling), so that editors that write a new file and rename it over the old
// one, and "mv tmp file", are seen; events are debounced by ~20 ms. If the consumer is slow,
// only the newest pending update is kept. The channel is closed when ctx is done. The error
// is about setting up the watch (e.g. the directory does not exist).
func Watch(ctx context.Context, path string, log *zap.Logger) (<-chan *northbound.Update, error) {
	return watch(ctx, path, nil, log)
}

// Loaded is a topology file as it was read once, at start: its snapshot, and the content
// a later [Loaded.Watch] compares against.
type Loaded struct {
	Path     string
	Snapshot *northbound.Snapshot
	data     []byte
}

// LoadSnapshot reads, decodes and parses the topology file at path once.
func LoadSnapshot(path string) (*Loaded, error) {
	f, data, err := load(path)
	if err != nil {
		return nil, err
	}
	return &Loaded{Path: path, Snapshot: f.Snapshot(), data: data}, nil
}

// Watch watches the file as [Watch] does, but sends only what changed since it was loaded:
// nothing at first when the file is still as it was read.
func (l *Loaded) Watch(ctx context.Context, log *zap.Logger) (<-chan *northbound.Update, error) {
	return watch(ctx, l.Path, l.data, log)
}

// watch starts the watch of path; loaded is the content already read (nil: none).
func watch(ctx context.Context, path string, loaded []byte, log *zap.Logger) (<-chan *northbound.Update, error) {
	if log == nil {
		log = zap.NewNop()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("watch topology %s: %w", path, err)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("watch topology %s: %w", path, err)
	}
	if err := w.Add(filepath.Dir(abs)); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("watch topology %s: directory %s: %w", path, filepath.Dir(abs), err)
	}
	out := make(chan *northbound.Update)
	tw := &topologyWatcher{path: path, log: log.With(zap.String("topology", path)), data: loaded, haveData: loaded != nil}
	go tw.run(ctx, w, out)
	return out, nil
}

// topologyWatcher is the state of one watch, owned by its goroutine.
type topologyWatcher struct {
	path string
	log  *zap.Logger
	// data and readErr describe the last read: its content or why it failed.
	data     []byte
	haveData bool
	readErr  string
}

// run is the watch loop: events restart the debounce timer, the timer reloads, and a
// pending update is offered to the consumer until it takes it or a newer one replaces it.
func (tw *topologyWatcher) run(ctx context.Context, w *fsnotify.Watcher, out chan<- *northbound.Update) {
	defer close(out)
	defer func() { _ = w.Close() }()
	timer := time.NewTimer(0) // the initial load (or the check that nothing changed since)
	defer timer.Stop()
	var pending *northbound.Update
	for {
		var send chan<- *northbound.Update
		if pending != nil {
			send = out
		}
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.Events:
			if !ok {
				return
			}
			tw.log.Debug("topology directory event", zap.Stringer("event", ev))
			timer.Reset(watchDebounce)
		case err, ok := <-w.Errors:
			if !ok {
				return
			}
			tw.log.Warn("watching topology file", zap.Error(err))
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				timer.Reset(watchDebounce) // events were lost: look again
			}
		case <-timer.C:
			if u := tw.reload(); u != nil {
				pending = u
			}
		case send <- pending:
			pending = nil
		}
	}
}

// reload reads the file and returns an update, or nil when neither the content nor the
// read error changed since the last time.
func (tw *topologyWatcher) reload() *northbound.Update {
	data, err := os.ReadFile(tw.path)
	if err != nil {
		if err.Error() == tw.readErr {
			return nil
		}
		tw.readErr, tw.data, tw.haveData = err.Error(), nil, false
		err = fmt.Errorf("read topology: %w", err)
		tw.log.Warn("topology not loaded; keeping the previous one", zap.Error(err))
		return &northbound.Update{Err: err}
	}
	if tw.haveData && tw.readErr == "" && bytes.Equal(data, tw.data) {
		return nil
	}
	tw.readErr, tw.data, tw.haveData = "", data, true
	t, err := Parse(data)
	if err != nil {
		err = fmt.Errorf("topology %s: %w", tw.path, err)
		tw.log.Warn("topology not loaded; keeping the previous one", zap.Error(err))
		return &northbound.Update{Err: err}
	}
	tw.log.Info("topology loaded", zap.Int("networks", len(t.Networks)), zap.Int("ports", len(t.Ports)))
	return &northbound.Update{Snapshot: t.Snapshot()}
}
