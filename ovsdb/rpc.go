package ovsdb

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// errDisconnected fails the calls pending on a connection that was lost or closed.
var errDisconnected = errors.New("ovsdb connection lost")

// rpcConn is one JSON-RPC 1.0 session with ovsdb-server (RFC 7047 section 4): requests
// with their replies matched by id, the server's notifications, and its echo requests,
// which it answers itself. One goroutine reads the connection and handles every incoming
// message in the order the server sent it; a call's reply handler runs on that goroutine,
// so whatever the server sent before a reply (the monitor updates of a transaction, say) is
// handled before the reply is.
type rpcConn struct {
	conn   net.Conn
	notify func(method string, params json.RawMessage) // runs on the read goroutine

	wmu sync.Mutex // serialises writes

	mu      sync.Mutex
	nextID  uint64
	pending map[uint64]*rpcCall
	err     error // why the connection ended; set once

	lastRead atomic.Int64  // unix nanoseconds of the last message read
	done     chan struct{} // closed when the read goroutine ends
}

// rpcCall is a request waiting for its reply.
type rpcCall struct {
	onReply func(result json.RawMessage) error // runs on the read goroutine; may be nil
	done    chan error                         // capacity 1
}

// rpcMessage is any JSON-RPC message: a request or notification (Method set) or a reply.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method,omitempty"`
	Params json.RawMessage `json:"params,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
	Error  json.RawMessage `json:"error,omitempty"`
}

// dialRPC connects to endpoint ("unix:PATH" or "tcp:HOST:PORT") and starts reading.
func dialRPC(ctx context.Context, endpoint string, notify func(string, json.RawMessage)) (*rpcConn, error) {
	network, addr, ok := strings.Cut(endpoint, ":")
	if !ok || (network != "unix" && network != "tcp") {
		return nil, fmt.Errorf("endpoint %q: want unix:PATH or tcp:HOST:PORT", endpoint)
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	r := &rpcConn{conn: conn, notify: notify, pending: map[uint64]*rpcCall{}, done: make(chan struct{})}
	r.lastRead.Store(time.Now().UnixNano())
	go r.read()
	return r, nil
}

// close ends the session; pending calls fail with errDisconnected.
func (r *rpcConn) close() {
	r.conn.Close()
	<-r.done
}

// idle returns how long nothing has been read.
func (r *rpcConn) idle() time.Duration {
	return time.Since(time.Unix(0, r.lastRead.Load()))
}

// call sends a request and waits for its reply; onReply (if not nil) decodes the result on
// the read goroutine before call returns. It fails with errDisconnected if the connection
// ends first, with the server's error if the server replied with one, or with ctx's error
// (the reply, if it still comes, is then dropped).
func (r *rpcConn) call(ctx context.Context, method string, params any, onReply func(json.RawMessage) error) error {
	c := &rpcCall{onReply: onReply, done: make(chan error, 1)}
	r.mu.Lock()
	if r.err != nil {
		r.mu.Unlock()
		return r.err
	}
	r.nextID++
	id := r.nextID
	r.pending[id] = c
	r.mu.Unlock()
	forget := func() {
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
	}
	if err := r.send(rpcRequest{ID: id, Method: method, Params: params}); err != nil {
		forget()
		return fmt.Errorf("send %s: %w", method, err)
	}
	select {
	case err := <-c.done:
		return err
	case <-ctx.Done():
		forget()
		return ctx.Err()
	}
}

// rpcRequest is an outgoing request.
type rpcRequest struct {
	ID     uint64 `json:"id"`
	Method string `json:"method"`
	Params any    `json:"params"`
}

// rpcReply is an outgoing reply (to the server's echo).
type rpcReply struct {
	ID     json.RawMessage `json:"id"`
	Result json.RawMessage `json:"result"`
	Error  any             `json:"error"`
}

// send writes one message. A write that fails closes the connection, so the read goroutine
// fails every pending call.
func (r *rpcConn) send(msg any) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	r.wmu.Lock()
	defer r.wmu.Unlock()
	if _, err := r.conn.Write(b); err != nil {
		r.conn.Close()
		return err
	}
	return nil
}

// read handles incoming messages until the connection ends.
func (r *rpcConn) read() {
	defer close(r.done)
	dec := json.NewDecoder(r.conn)
	var err error
	for {
		var msg rpcMessage
		if err = dec.Decode(&msg); err != nil {
			break
		}
		r.lastRead.Store(time.Now().UnixNano())
		if msg.Method != "" {
			r.handleRequest(msg)
		} else {
			r.handleReply(msg)
		}
		if len(msg.Result)+len(msg.Params) > 1<<20 {
			// The decoder keeps its largest buffer (the initial dump: megabytes at 10,000
			// ports) for the connection's life: go on with a fresh one, which first reads
			// what the old one had buffered beyond this message.
			rest, _ := io.ReadAll(dec.Buffered())
			dec = json.NewDecoder(io.MultiReader(bytes.NewReader(rest), r.conn))
		}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) {
		err = errDisconnected
	} else {
		err = fmt.Errorf("%w: %w", errDisconnected, err)
	}
	r.conn.Close()
	r.mu.Lock()
	r.err = err
	pending := r.pending
	r.pending = nil
	r.mu.Unlock()
	for _, c := range pending {
		c.done <- err
	}
}

// handleRequest answers an echo and hands notifications on.
func (r *rpcConn) handleRequest(msg rpcMessage) {
	switch {
	case msg.Method == "echo":
		// The server's inactivity probe: reply with the same params.
		if err := r.send(rpcReply{ID: msg.ID, Result: msg.Params}); err != nil {
			return
		}
	case len(msg.ID) == 0 || string(msg.ID) == "null":
		if r.notify != nil {
			r.notify(msg.Method, msg.Params)
		}
	default:
		// A request dvrflow does not serve.
		_ = r.send(rpcReply{ID: msg.ID, Result: json.RawMessage("null"), Error: "unknown method " + msg.Method})
	}
}

// handleReply completes the call the reply answers.
func (r *rpcConn) handleReply(msg rpcMessage) {
	id, err := strconv.ParseUint(string(msg.ID), 10, 64)
	if err != nil {
		return // not one of ours
	}
	r.mu.Lock()
	c := r.pending[id]
	delete(r.pending, id)
	r.mu.Unlock()
	if c == nil {
		return // abandoned by its caller
	}
	if len(msg.Error) > 0 && string(msg.Error) != "null" {
		c.done <- fmt.Errorf("ovsdb-server: %s", msg.Error)
		return
	}
	if c.onReply != nil {
		c.done <- c.onReply(msg.Result)
		return
	}
	c.done <- nil
}
