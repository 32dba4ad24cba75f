package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// rpcWatch sees the agents' calls to neutron-server from the broker's side: a private queue
// bound to the `neutron` exchange with the routing key `q-plugin` receives a copy of every
// call the agents send to the server's RPC worker (a topic exchange delivers a message to
// every queue bound with its key; the server's own q-plugin queue is not touched). Each
// copy is stamped when the bench receives it, a fraction of a millisecond after the
// broker routed it.
type rpcWatch struct {
	conn *amqp.Connection

	mu       sync.Mutex
	up       map[string]time.Time // device → first update_device_list that reported it up
	asked    map[string]time.Time // device → first get_devices_details_list_and_failed_devices
	bound    map[string]time.Time // port → first Port push that carried a binding to a host
	calls    []rpcCall
	last     time.Time     // the last call seen
	changed  chan struct{} // closed and replaced at every call
	consumed chan struct{} // closed when the consumer stops
}

// rpcCall is one call an agent made to q-plugin.
type rpcCall struct {
	At     time.Time
	Method string
	Host   string   // args.host, when the call has it
	Up     []string // update_device_list: devices_up
	Asked  []string // get_devices_details_list_and_failed_devices: devices
}

// oslo envelope 2.0 (reference §2): the message is a JSON string inside the body.
type osloEnvelope struct {
	Message *string `json:"oslo.message"`
}

type osloCall struct {
	Method string `json:"method"`
	Args   struct {
		Host      string   `json:"host"`
		DevicesUp []string `json:"devices_up"`
		Devices   []string `json:"devices"`
	} `json:"args"`
}

// parseRPCCall decodes an oslo.messaging call (enveloped or not).
func parseRPCCall(body []byte) (rpcCall, error) {
	var env osloEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return rpcCall{}, fmt.Errorf("oslo envelope: %w", err)
	}
	inner := body
	if env.Message != nil {
		inner = []byte(*env.Message)
	}
	var c osloCall
	if err := json.Unmarshal(inner, &c); err != nil {
		return rpcCall{}, fmt.Errorf("oslo message: %w", err)
	}
	if c.Method == "" {
		return rpcCall{}, fmt.Errorf("oslo message without a method")
	}
	call := rpcCall{Method: c.Method, Host: c.Args.Host}
	switch c.Method {
	case "update_device_list":
		call.Up = c.Args.DevicesUp
	case "get_devices_details_list_and_failed_devices":
		call.Asked = c.Args.Devices
	}
	return call, nil
}

// watchRPC connects to the broker at amqpURL and starts copying q-plugin's calls.
func watchRPC(ctx context.Context, amqpURL string) (*rpcWatch, error) {
	conn, err := amqp.Dial(amqpURL)
	if err != nil {
		return nil, fmt.Errorf("rpc watch: connect: %w", err)
	}
	w := &rpcWatch{conn: conn, up: map[string]time.Time{}, asked: map[string]time.Time{}, bound: map[string]time.Time{},
		changed: make(chan struct{}), consumed: make(chan struct{})}
	ch, err := conn.Channel()
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc watch: channel: %w", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc watch: declare its queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "q-plugin", "neutron", false, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc watch: bind to neutron/q-plugin: %w", err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "dvrflow-bench", true, true, false, false, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("rpc watch: consume: %w", err)
	}
	go func() {
		defer close(w.consumed)
		for d := range deliveries {
			at := time.Now()
			call, err := parseRPCCall(d.Body)
			if err != nil {
				continue // not a call of an agent (nothing else is published with this key)
			}
			call.At = at
			w.record(call)
		}
	}()
	return w, nil
}

func (w *rpcWatch) record(c rpcCall) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.calls = append(w.calls, c)
	w.last = c.At
	for _, d := range c.Up {
		if _, seen := w.up[d]; !seen {
			w.up[d] = c.At
		}
	}
	for _, d := range c.Asked {
		if _, seen := w.asked[d]; !seen {
			w.asked[d] = c.At
		}
	}
	close(w.changed)
	w.changed = make(chan struct{})
}

// portPushExchange is the fanout exchange of the server's Port pushes (reference §5).
const portPushExchange = "neutron-vo-Port-1.7_fanout"

// watchPortPushes starts receiving a copy of the server's Port pushes, to know when a port's
// binding has reached the agents. The exchange exists once an agent consumes the pushes.
func (w *rpcWatch) watchPortPushes(ctx context.Context) error {
	ch, err := w.conn.Channel()
	if err != nil {
		return fmt.Errorf("rpc watch: channel: %w", err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return fmt.Errorf("rpc watch: declare the push queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, "", portPushExchange, false, nil); err != nil {
		return fmt.Errorf("rpc watch: bind to %s: %w", portPushExchange, err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "dvrflow-bench-pushes", true, true, false, false, nil)
	if err != nil {
		return fmt.Errorf("rpc watch: consume the pushes: %w", err)
	}
	go func() {
		for d := range deliveries {
			at := time.Now()
			ids, err := parseBoundPortPush(d.Body)
			if err != nil {
				continue
			}
			w.mu.Lock()
			for _, id := range ids {
				if _, seen := w.bound[id]; !seen {
					w.bound[id] = at
				}
			}
			close(w.changed)
			w.changed = make(chan struct{})
			w.mu.Unlock()
		}
	}()
	return nil
}

// parseBoundPortPush returns the ids of the ports of a Port push that are bound to a host:
// a binding with the host and a vif_type (what Nova reads before it plugs the VIF) and a
// binding level with its segment.
func parseBoundPortPush(body []byte) ([]string, error) {
	var env osloEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("oslo envelope: %w", err)
	}
	inner := body
	if env.Message != nil {
		inner = []byte(*env.Message)
	}
	var push struct {
		Method string `json:"method"`
		Args   struct {
			Resources []struct {
				Data struct {
					ID       string          `json:"id"`
					Bindings []pushedBinding `json:"bindings"`
					Levels   []pushedLevel   `json:"binding_levels"`
				} `json:"versioned_object.data"`
			} `json:"resource_list"`
		} `json:"args"`
	}
	if err := json.Unmarshal(inner, &push); err != nil {
		return nil, fmt.Errorf("oslo message: %w", err)
	}
	if push.Method != "push" {
		return nil, fmt.Errorf("not a push: %q", push.Method)
	}
	var ids []string
	for _, r := range push.Args.Resources {
		if boundWithSegment(r.Data.Bindings, r.Data.Levels) {
			ids = append(ids, r.Data.ID)
		}
	}
	return ids, nil
}

// pushedBinding and pushedLevel are the parts of a pushed Port the bench reads.
type pushedBinding struct {
	Data struct {
		Host    string `json:"host"`
		VIFType string `json:"vif_type"`
	} `json:"versioned_object.data"`
}

type pushedLevel struct {
	Data struct {
		Host    string          `json:"host"`
		Segment json.RawMessage `json:"segment"`
	} `json:"versioned_object.data"`
}

// boundWithSegment reports whether a pushed port has a binding to a host with a vif_type
// other than unbound or binding_failed, and a binding level of that host with a segment.
func boundWithSegment(bindings []pushedBinding, levels []pushedLevel) bool {
	for _, b := range bindings {
		if b.Data.Host == "" || b.Data.VIFType == "" || b.Data.VIFType == "unbound" || b.Data.VIFType == "binding_failed" {
			continue
		}
		for _, l := range levels {
			if l.Data.Host == b.Data.Host && len(l.Data.Segment) > 0 && string(l.Data.Segment) != "null" {
				return true
			}
		}
	}
	return false
}

// boundPushed waits up to timeout for a push of the port bound to a host; false if none came.
func (w *rpcWatch) boundPushed(ctx context.Context, port string, timeout time.Duration) (bool, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		_, ok := w.bound[port]
		changed := w.changed
		w.mu.Unlock()
		if ok {
			return true, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return false, nil
		case <-ctx.Done():
			return false, ctx.Err()
		}
	}
}

func (w *rpcWatch) close() {
	w.conn.Close()
	<-w.consumed
}

// reportedUp returns when the first update_device_list that reported each device up was
// seen, waiting up to timeout for all of them.
func (w *rpcWatch) reportedUp(ctx context.Context, devices []string, timeout time.Duration) ([]time.Time, error) {
	deadline := time.After(timeout)
	for {
		w.mu.Lock()
		ats := make([]time.Time, len(devices))
		missing := 0
		for i, d := range devices {
			if at, ok := w.up[d]; ok {
				ats[i] = at
			} else {
				missing++
			}
		}
		changed := w.changed
		w.mu.Unlock()
		if missing == 0 {
			return ats, nil
		}
		select {
		case <-changed:
		case <-deadline:
			return nil, fmt.Errorf("%d of %d devices not reported up (update_device_list) within %s", missing, len(devices), timeout)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// askedAt is when the device's details were first asked for
// (get_devices_details_list_and_failed_devices), if they were.
func (w *rpcWatch) askedAt(device string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.asked[device]
	return at, ok
}

// quiet waits until no agent has called q-plugin for d (at most limit): the agent that was
// just given a port has finished with it (Neutron's agent reports a device up a second
// time 1–2 s after the first).
func (w *rpcWatch) quiet(ctx context.Context, d, limit time.Duration) error {
	end := time.Now().Add(limit)
	for {
		w.mu.Lock()
		last := w.last
		w.mu.Unlock()
		now := time.Now()
		if now.Sub(last) >= d || now.After(end) {
			return nil
		}
		select {
		case <-time.After(d - now.Sub(last)):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// methodsBetween counts the calls per method seen in [from, to].
func (w *rpcWatch) methodsBetween(from, to time.Time) map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]int{}
	for _, c := range w.calls {
		if !c.At.Before(from) && !c.At.After(to) {
			out[c.Method]++
		}
	}
	return out
}
