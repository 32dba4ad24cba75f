package oslo_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/dvrflow/dvrflow/neutron/oslo"
	"github.com/dvrflow/dvrflow/testbed/rabbitmq"
)

// One private RabbitMQ for the whole package (with a TLS listener as well), started by the
// first test that needs it.
var broker = rabbitmq.Shared{Options: rabbitmq.Options{TLS: true}}

func TestMain(m *testing.M) {
	code := m.Run()
	broker.Close()
	os.Exit(code)
}

// testClient is a client with its log kept for assertions.
type testClient struct {
	*oslo.Client
	logs *observer.ObservedLogs
}

// newClient connects a client to node (fast reconnection pacing, so restarts are quick to
// recover from) and closes it when the test ends.
func newClient(t *testing.T, node *rabbitmq.Node, change func(*oslo.Transport)) *testClient {
	t.Helper()
	return newClientWith(t, map[string]string{"transport_url": node.TransportURL()}, nil, change)
}

// newClientWith is newClient configured from raw [DEFAULT] and [oslo_messaging_rabbit]
// options.
func newClientWith(t *testing.T, defaults, rabbit map[string]string, change func(*oslo.Transport)) *testClient {
	t.Helper()
	tr, err := oslo.ParseTransport(defaults, rabbit)
	if err != nil {
		t.Fatal(err)
	}
	tr.Rabbit.RetryInterval, tr.Rabbit.RetryBackoff, tr.Rabbit.IntervalMax = 100*time.Millisecond, 100*time.Millisecond, 500*time.Millisecond
	tr.Rabbit.ReconnectDelay = 100 * time.Millisecond
	if change != nil {
		change(&tr)
	}
	core, logs := observer.New(zap.DebugLevel)
	log := zap.New(zapcore.NewTee(zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)).Core(), core))
	c, err := oslo.New(oslo.Config{Transport: tr, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	return &testClient{Client: c, logs: logs}
}

// inbox collects what a server's handler receives.
type inbox struct {
	mu  sync.Mutex
	got []oslo.Incoming
}

func (b *inbox) handle(_ context.Context, in oslo.Incoming) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.got = append(b.got, in)
}

// count is how many messages with method arrived on queue ("" = any queue).
func (b *inbox) count(method, queue string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, in := range b.got {
		if in.Method == method && (queue == "" || in.Queue == queue) {
			n++
		}
	}
	return n
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stays checks that cond keeps holding for a while (for "nothing else arrives").
func stays(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rawPublisher publishes arbitrary bodies, as a misbehaving or foreign sender would.
type rawPublisher struct {
	mu sync.Mutex
	ch *amqp.Channel
}

func newRawPublisher(t *testing.T, node *rabbitmq.Node) *rawPublisher {
	t.Helper()
	conn, err := amqp.Dial(node.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	return &rawPublisher{ch: ch}
}

func (p *rawPublisher) publish(t *testing.T, exchange, key string, body []byte) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	err := p.ch.PublishWithContext(context.Background(), exchange, key, true, false,
		amqp.Publishing{ContentType: "application/json", ContentEncoding: "utf-8", Body: body})
	if err != nil {
		t.Fatal(err)
	}
}

// rpcServer is the test's stand-in for neutron-server: it serves topic on host and answers
// calls as oslo's dispatcher would (echo, an endpoint exception, NoSuchMethod), ignores
// method "ignore", and holds "late" until release is closed.
func rpcServer(t *testing.T, node *rabbitmq.Node, c *oslo.Client, topic, host string, release <-chan struct{}) {
	t.Helper()
	pub := newRawPublisher(t, node)
	reply := func(in oslo.Incoming, r oslo.Reply) {
		r.MsgID, r.Ending = in.MsgID, true
		body, err := oslo.EncodeReply(r)
		if err != nil {
			t.Error(err)
			return
		}
		pub.publish(t, "", in.ReplyQueue, body)
	}
	_, err := c.Serve(t.Context(), topic, host, func(_ context.Context, in oslo.Incoming) {
		if !in.IsCall() {
			return
		}
		switch in.Method {
		case "echo":
			reply(in, oslo.Reply{Result: in.Args})
		case "echo_twice": // the same reply delivered twice (same _unique_id): the second is a duplicate
			r := oslo.Reply{Result: in.Args, UniqueID: "dup-" + in.MsgID}
			reply(in, r)
			reply(in, r)
		case "tunnel_sync":
			reply(in, oslo.Reply{Failure: &oslo.Failure{Class: "AddrFormatError", Module: "netaddr.core",
				Message: "failed to detect a valid IP address from 'bogus'", Traceback: []string{"Traceback (most recent call last):\n", "…"}}})
		case "ignore":
		case "late":
			go func() {
				<-release
				reply(in, oslo.Reply{Result: json.RawMessage(`"too late"`)})
			}()
		default:
			reply(in, oslo.Reply{Failure: &oslo.Failure{Class: "NoSuchMethod", Module: "oslo_messaging.rpc.dispatcher",
				Message: "Endpoint does not support RPC method " + in.Method}})
		}
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCallReply(t *testing.T) {
	node := broker.Node(t)
	server := newClient(t, node, nil)
	client := newClient(t, node, func(tr *oslo.Transport) {
		tr.ResponseTimeout, tr.ResponseMaxTimeout = 300*time.Millisecond, time.Second
	})
	release := make(chan struct{})
	rpcServer(t, node, server.Client, "q-test-call", "server-1", release)
	// Calls that must succeed get a deadline of their own (a loaded machine may take longer
	// than the client's 300 ms rpc_response_timeout); only the policy test below goes without.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	for _, target := range []oslo.Target{{Topic: "q-test-call", Version: "1.4"}, {Topic: "q-test-call", Server: "server-1"}} {
		args := map[string]any{"tunnel_ip": "10.255.77.11", "host": "compute-1"}
		got, err := client.Call(ctx, target, "echo", args)
		if err != nil {
			t.Fatalf("echo via %+v: %v", target, err)
		}
		if string(got) != `{"host":"compute-1","tunnel_ip":"10.255.77.11"}` {
			t.Errorf("echo via %+v: got %s", target, got)
		}
	}

	got, err := client.Call(ctx, oslo.Target{Topic: "q-test-call"}, "echo_twice", map[string]int{"n": 1})
	if err != nil || string(got) != `{"n":1}` {
		t.Fatalf("echo_twice: %s, %v", got, err)
	}
	waitFor(t, 5*time.Second, "the duplicate reply is dropped and logged", func() bool {
		return client.logs.FilterMessage("dropping a duplicate reply").Len() == 1
	})

	_, err = client.Call(ctx, oslo.Target{Topic: "q-test-call"}, "tunnel_sync", map[string]string{"tunnel_ip": "bogus"})
	var remote *oslo.RemoteError
	if !errors.As(err, &remote) || remote.Exc() != "netaddr.core.AddrFormatError" || !strings.Contains(remote.Message, "bogus") ||
		len(remote.Traceback) != 2 {
		t.Errorf("remote failure: got %v (%#v)", err, remote)
	}
	if errors.Is(err, oslo.ErrNoSuchMethod) {
		t.Errorf("an endpoint exception is not NoSuchMethod: %v", err)
	}
	_, err = client.Call(ctx, oslo.Target{Topic: "q-test-call"}, "no_such_method", nil)
	if !errors.Is(err, oslo.ErrNoSuchMethod) || !errors.As(err, &remote) || remote.Exc() != "oslo_messaging.rpc.dispatcher.NoSuchMethod" {
		t.Errorf("no such method: got %v", err)
	}

	// Timeout from the caller's deadline: the policy is left alone.
	short, cancelShort := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = client.Call(short, oslo.Target{Topic: "q-test-call"}, "ignore", nil)
	cancelShort()
	var timeout *oslo.TimeoutError
	if !errors.As(err, &timeout) || !errors.Is(err, oslo.ErrTimeout) || timeout.NextTimeout != 0 {
		t.Errorf("deadline: got %v", err)
	}
	// Timeout from the policy (rpc_response_timeout 300ms): it doubles, capped at 1s.
	for _, want := range []time.Duration{600 * time.Millisecond, time.Second} {
		_, err = client.Call(t.Context(), oslo.Target{Topic: "q-test-call"}, "ignore", nil)
		if !errors.As(err, &timeout) || timeout.NextTimeout != want || timeout.Wait >= 300*time.Millisecond {
			t.Errorf("policy timeout: got %v (next %s, wait %s), want next %s", err, timeout.NextTimeout, timeout.Wait, want)
		}
	}
	if got := client.Policy().Timeout("ignore"); got != time.Second {
		t.Errorf("policy after two timeouts: %s, want the 1s ceiling", got)
	}

	// A reply that comes after its call gave up is dropped, and the next call still works.
	short, cancelShort = context.WithTimeout(ctx, 200*time.Millisecond)
	_, err = client.Call(short, oslo.Target{Topic: "q-test-call"}, "late", nil)
	cancelShort()
	if !errors.Is(err, oslo.ErrTimeout) {
		t.Fatalf("late: got %v, want a timeout", err)
	}
	close(release)
	waitFor(t, 5*time.Second, "the late reply is dropped and logged", func() bool {
		return client.logs.FilterMessage("dropping a reply nobody waits for (late, or not ours)").Len() == 1
	})
	if _, err := client.Call(ctx, oslo.Target{Topic: "q-test-call"}, "echo", nil); err != nil {
		t.Errorf("call after a late reply: %v", err)
	}
}

func TestCastsReachConsumers(t *testing.T) {
	node := broker.Node(t)
	const topic = "q-agent-notifier-test-update"
	sender := newClient(t, node, nil)
	agents := map[string]*inbox{}
	for _, host := range []string{"compute-1", "compute-2"} {
		agents[host] = &inbox{}
		c := newClient(t, node, nil)
		if _, err := c.Serve(t.Context(), topic, host, agents[host].handle); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	if err := sender.Cast(ctx, oslo.Target{Topic: topic, Server: "compute-2", Version: "1.0"}, "add_fdb_entries",
		map[string]any{"fdb_entries": map[string]any{}}); err != nil {
		t.Fatal(err)
	}
	if err := sender.Cast(ctx, oslo.Target{Topic: topic, Fanout: true}, "tunnel_update", map[string]string{"tunnel_ip": "10.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	if err := sender.Cast(ctx, oslo.Target{Topic: topic}, "shared", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "host cast on compute-2's host queue, fanout on both, shared cast on one", func() bool {
		return agents["compute-2"].count("add_fdb_entries", topic+".compute-2") == 1 &&
			agents["compute-1"].count("tunnel_update", "") == 1 && agents["compute-2"].count("tunnel_update", "") == 1 &&
			agents["compute-1"].count("shared", topic)+agents["compute-2"].count("shared", topic) == 1
	})
	stays(t, 300*time.Millisecond, "a message reached a consumer it was not for", func() bool {
		return agents["compute-1"].count("add_fdb_entries", "") == 0 &&
			agents["compute-1"].count("shared", "")+agents["compute-2"].count("shared", "") == 1
	})
	in := agents["compute-2"].got[0]
	if in.Method != "add_fdb_entries" || in.Version != "1.0" || in.Context["is_admin"] != true || string(in.Args) != `{"fdb_entries":{}}` {
		t.Errorf("received %+v", in)
	}
	for host, box := range agents {
		for _, in := range box.got {
			if in.Method == "tunnel_update" && !strings.HasPrefix(in.Queue, topic+"_fanout_") {
				t.Errorf("%s got the fanout cast on %s", host, in.Queue)
			}
		}
	}
}

// TestDeclaredFlags compares what the broker holds with reference/neutron-rpc.md §2.1 and §2.2.
func TestDeclaredFlags(t *testing.T) {
	node := broker.Node(t)
	const topic = "q-agent-notifier-flags"
	c := newClient(t, node, nil)
	srv, err := c.Serve(t.Context(), topic, "compute-1", (&inbox{}).handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cast(t.Context(), oslo.Target{Topic: topic, Fanout: true}, "x", nil); err != nil {
		t.Fatal(err)
	}
	fanoutQueue := srv.Queues()[2]
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	queues, err := node.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{topic: false, topic + ".compute-1": false, fanoutQueue: true, c.ReplyQueue(): true} // name → has x-expires
	for _, q := range queues {
		hasExpires, ours := want[q.Name]
		if !ours {
			continue
		}
		delete(want, q.Name)
		if q.Durable || q.AutoDelete || q.Exclusive {
			t.Errorf("queue %s: durable %v auto_delete %v exclusive %v, want all false", q.Name, q.Durable, q.AutoDelete, q.Exclusive)
		}
		expires, ok := q.Arguments.Int("x-expires")
		if hasExpires && (!ok || expires != 1800000) || !hasExpires && len(q.Arguments) != 0 {
			t.Errorf("queue %s: arguments %v, want x-expires=1800000: %v", q.Name, q.Arguments, hasExpires)
		}
		if q.Consumers != 1 {
			t.Errorf("queue %s: %d consumers, want 1", q.Name, q.Consumers)
		}
	}
	if len(want) > 0 {
		t.Errorf("queues not declared: %v", want)
	}
	if !strings.HasPrefix(c.ReplyQueue(), "reply_") || len(c.ReplyQueue()) != len("reply_")+32 ||
		!strings.HasPrefix(fanoutQueue, topic+"_fanout_") || len(fanoutQueue) != len(topic+"_fanout_")+32 {
		t.Errorf("queue names: %s, %s", c.ReplyQueue(), fanoutQueue)
	}

	exchanges, err := node.ListExchanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantX := map[string]rabbitmq.Exchange{
		"neutron":         {Name: "neutron", Type: "topic"},
		topic + "_fanout": {Name: topic + "_fanout", Type: "fanout", AutoDelete: true},
	}
	for _, x := range exchanges {
		w, ok := wantX[x.Name]
		if !ok {
			continue
		}
		delete(wantX, x.Name)
		if x.Type != w.Type || x.Durable || x.AutoDelete != w.AutoDelete || x.Internal || len(x.Arguments) != 0 {
			t.Errorf("exchange %s: got %+v, want %+v", x.Name, x, w)
		}
	}
	if len(wantX) > 0 {
		t.Errorf("exchanges not declared: %v", wantX)
	}

	bindings, err := node.ListBindings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []rabbitmq.Binding{
		{Source: "neutron", Destination: topic, DestinationKind: "queue", RoutingKey: topic},
		{Source: "neutron", Destination: topic + ".compute-1", DestinationKind: "queue", RoutingKey: topic + ".compute-1"},
		{Source: topic + "_fanout", Destination: fanoutQueue, DestinationKind: "queue", RoutingKey: topic},
	} {
		if !slices.Contains(bindings, w) {
			t.Errorf("binding %+v missing", w)
		}
	}
}

func TestDuplicateAndGarbageMessages(t *testing.T) {
	node := broker.Node(t)
	const topic = "q-agent-notifier-garbage"
	c := newClient(t, node, nil)
	box := &inbox{}
	srv, err := c.Serve(t.Context(), topic, "compute-1", box.handle)
	if err != nil {
		t.Fatal(err)
	}
	pub := newRawPublisher(t, node)
	good := func(method, uniqueID string) []byte {
		b, err := oslo.EncodeMessage(oslo.Message{Method: method, UniqueID: uniqueID, Context: oslo.Context{"is_admin": true}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// The same message twice (a re-delivery): handled once.
	pub.publish(t, "neutron", topic+".compute-1", good("once", "5f1d7c0a9b8e4d3c2b1a09f8e7d6c5b4"))
	pub.publish(t, "neutron", topic+".compute-1", good("once", "5f1d7c0a9b8e4d3c2b1a09f8e7d6c5b4"))
	pub.publish(t, "neutron", topic+".compute-1", good("after_duplicate", "6f1d7c0a9b8e4d3c2b1a09f8e7d6c5b4"))
	waitFor(t, 5*time.Second, "the message after the duplicate is handled", func() bool { return box.count("after_duplicate", "") == 1 })
	if n := box.count("once", ""); n != 1 {
		t.Errorf("a re-delivered _unique_id was handled %d times, want 1", n)
	}
	if c.logs.FilterMessage("dropping a duplicate message").Len() != 1 {
		t.Errorf("the duplicate was not logged")
	}

	// Garbage on each of the three queues, each followed by a good message.
	routes := []struct{ exchange, key, queue string }{
		{"neutron", topic, topic},
		{"neutron", topic + ".compute-1", topic + ".compute-1"},
		{topic + "_fanout", "", srv.Queues()[2]},
	}
	for i, r := range routes {
		pub.publish(t, r.exchange, r.key, []byte("\x00not json"))
		pub.publish(t, r.exchange, r.key, []byte(`{"oslo.version": "2.0", "oslo.message": "{\"args\": {}}"}`))
		pub.publish(t, r.exchange, r.key, good("good", "7f1d7c0a9b8e4d3c2b1a09f8e7d6c5b"+string(rune('0'+i))))
	}
	waitFor(t, 5*time.Second, "the good message after the garbage is handled on every queue", func() bool {
		for _, r := range routes {
			if box.count("good", r.queue) != 1 {
				return false
			}
		}
		return true
	})
	for _, r := range routes {
		n := c.logs.FilterMessage("dropping a malformed message").FilterField(zap.String("queue", r.queue)).Len()
		if n != 2 {
			t.Errorf("queue %s: %d malformed messages logged, want 2", r.queue, n)
		}
	}

	// Garbage on the reply queue does not disturb calls.
	pub.publish(t, "", c.ReplyQueue(), []byte("garbage"))
	waitFor(t, 5*time.Second, "garbage on the reply queue is logged", func() bool {
		return c.logs.FilterMessage("dropping a malformed reply").Len() == 1
	})
	rpcServer(t, node, c.Client, "q-test-garbage", "server-1", nil)
	if _, err := c.Call(t.Context(), oslo.Target{Topic: "q-test-garbage"}, "echo", nil); err != nil {
		t.Errorf("call after garbage on the reply queue: %v", err)
	}
}

// TestReconnect: after the broker closes the connection, after the broker restarts, and after
// a consumer's queue is deleted, the client reconnects by itself, declares everything again,
// and casts sent afterwards arrive; calls and casts while disconnected fail with
// ErrNotConnected.
func TestReconnect(t *testing.T) {
	node := broker.Node(t)
	const topic = "q-agent-notifier-reconnect"
	sender := newClient(t, node, nil)
	agent := newClient(t, node, nil)
	box := &inbox{}
	srv, err := agent.Serve(t.Context(), topic, "compute-1", box.handle)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// castsArrive waits until both clients have connected again since the disruption (their
	// generations were senderGen and agentGen before it), then checks that casts arrive.
	castsArrive := func(step string, senderGen, agentGen uint64) {
		t.Helper()
		method := "after_" + strings.ReplaceAll(step, " ", "_")
		waitFor(t, 30*time.Second, step+": both clients reconnected", func() bool {
			return sender.Connected() && agent.Connected() && agent.Generation() > agentGen && sender.Generation() > senderGen
		})
		if err := sender.Cast(ctx, oslo.Target{Topic: topic, Server: "compute-1"}, method, nil); err != nil {
			t.Fatalf("%s: host cast: %v", step, err)
		}
		if err := sender.Cast(ctx, oslo.Target{Topic: topic, Fanout: true}, method, nil); err != nil {
			t.Fatalf("%s: fanout cast: %v", step, err)
		}
		waitFor(t, 10*time.Second, step+": the casts sent afterwards arrive", func() bool {
			return box.count(method, topic+".compute-1") == 1 && box.count(method, srv.Queues()[2]) == 1
		})
	}

	senderGen, agentGen := sender.Generation(), agent.Generation()
	if err := node.CloseAllConnections(ctx, "test: closed by the broker"); err != nil {
		t.Fatal(err)
	}
	castsArrive("connection closed by the broker", senderGen, agentGen)

	senderGen, agentGen = sender.Generation(), agent.Generation()
	if err := node.StopBroker(ctx); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the clients notice the broker is gone", func() bool { return !sender.Connected() && !agent.Connected() })
	if err := sender.Cast(ctx, oslo.Target{Topic: topic, Fanout: true}, "lost", nil); !errors.Is(err, oslo.ErrNotConnected) {
		t.Errorf("cast while disconnected: got %v, want ErrNotConnected", err)
	}
	if _, err := sender.Call(ctx, oslo.Target{Topic: topic}, "lost", nil); !errors.Is(err, oslo.ErrNotConnected) {
		t.Errorf("call while disconnected: got %v, want ErrNotConnected", err)
	}
	if err := node.StartBroker(ctx); err != nil {
		t.Fatal(err)
	}
	castsArrive("broker restart", senderGen, agentGen)

	senderGen, agentGen = sender.Generation()-1, agent.Generation() // only the agent's consumer is cancelled
	if _, err := node.Ctl(ctx, "delete_queue", srv.Queues()[2]); err != nil {
		t.Fatal(err)
	}
	castsArrive("fanout queue deleted", senderGen, agentGen)
	if n := box.count("lost", ""); n != 0 {
		t.Errorf("a cast refused while disconnected arrived %d times", n)
	}
}

func TestFailoverToTheNextBroker(t *testing.T) {
	node := broker.Node(t)
	c := newClient(t, node, func(tr *oslo.Transport) {
		dead := oslo.Broker{Host: "127.0.0.1", Port: 1, User: "guest", Password: "guest"}
		tr.Brokers = append([]oslo.Broker{dead}, tr.Brokers...)
	})
	if !c.Connected() {
		t.Fatal("not connected through the second broker")
	}
	if c.logs.FilterMessage("RabbitMQ broker refused or failed").Len() == 0 {
		t.Error("the dead first broker was not tried first")
	}
}

// TestTLS connects over AMQPS as [oslo_messaging_rabbit] ssl options say: with the broker's
// CA (and host name verification), without a CA (oslo does not verify then), and with a CA
// that did not sign the broker's certificate (refused).
func TestTLS(t *testing.T) {
	node := broker.Node(t)
	files, ok := node.TLSFiles()
	if !ok {
		t.Fatal("the shared node has no TLS listener")
	}
	url := fmt.Sprintf("rabbit://%s:%s@127.0.0.1:%d/", rabbitmq.User, rabbitmq.Password, node.Ports().AMQPS)
	defaults := map[string]string{"transport_url": url}
	for name, rabbit := range map[string]map[string]string{
		"CA and host name": {"ssl": "true", "ssl_ca_file": files.CACert, "ssl_enforce_hostname_verification": "true", "ssl_version": "TLSv1_2"},
		"no CA":            {"ssl": "true"},
	} {
		t.Run(name, func(t *testing.T) {
			c := newClientWith(t, defaults, rabbit, nil)
			box := &inbox{}
			if _, err := c.Serve(t.Context(), "q-test-tls", "compute-1", box.handle); err != nil {
				t.Fatal(err)
			}
			if err := c.Cast(t.Context(), oslo.Target{Topic: "q-test-tls", Server: "compute-1"}, "over_tls", nil); err != nil {
				t.Fatal(err)
			}
			waitFor(t, 5*time.Second, "the cast over TLS arrives", func() bool { return box.count("over_tls", "") == 1 })
		})
	}

	t.Run("foreign CA", func(t *testing.T) {
		tr, err := oslo.ParseTransport(defaults, map[string]string{"ssl": "true", "ssl_ca_file": foreignCA(t)})
		if err != nil {
			t.Fatal(err)
		}
		failed := make(chan error, 16)
		c, err := oslo.New(oslo.Config{Transport: tr, Log: zaptest.NewLogger(t), OnEvent: func(e oslo.Event) {
			if e.Kind == oslo.ConnectFailed {
				select {
				case failed <- e.Err:
				default:
				}
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		select {
		case err := <-failed:
			if !strings.Contains(err.Error(), "certificate") {
				t.Errorf("connect failed, but not on the certificate: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("no connection failure reported")
		}
		if c.Connected() {
			t.Error("connected although the broker's certificate is not from the configured CA")
		}
	})
}

// foreignCA writes a self-signed CA certificate unrelated to the broker's.
func foreignCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "foreign CA"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "foreign-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQueueOptionsHonoured: amqp_durable_queues, rabbit_ha_queues, rabbit_transient_queues_ttl,
// rabbit_qos_prefetch_count and control_exchange change what is declared, as in oslo.
func TestQueueOptionsHonoured(t *testing.T) {
	node := broker.Node(t)
	const topic, exchange = "q-test-options", "neutron-options"
	c := newClientWith(t, map[string]string{"transport_url": node.TransportURL(), "control_exchange": exchange},
		map[string]string{"amqp_durable_queues": "true", "rabbit_ha_queues": "true", "rabbit_transient_queues_ttl": "60",
			"rabbit_qos_prefetch_count": "5"}, nil)
	box := &inbox{}
	srv, err := c.Serve(t.Context(), topic, "compute-1", box.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Cast(t.Context(), oslo.Target{Topic: topic, Server: "compute-1"}, "durable", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the cast through the durable exchange arrives", func() bool { return box.count("durable", "") == 1 })
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	queues, err := node.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	durable := map[string]bool{topic: true, topic + ".compute-1": true, srv.Queues()[2]: false, c.ReplyQueue(): false}
	for _, q := range queues {
		wantDurable, ours := durable[q.Name]
		if !ours {
			continue
		}
		delete(durable, q.Name)
		ha, _ := q.Arguments["x-ha-policy"].(string)
		expires, hasExpires := q.Arguments.Int("x-expires")
		if q.Durable != wantDurable || q.AutoDelete || ha != "all" || hasExpires != !wantDurable || hasExpires && expires != 60000 {
			t.Errorf("queue %s: durable %v auto_delete %v arguments %v; want durable %v, x-ha-policy all, x-expires 60000 on transient queues",
				q.Name, q.Durable, q.AutoDelete, q.Arguments, wantDurable)
		}
	}
	if len(durable) > 0 {
		t.Errorf("queues not found: %v", durable)
	}
	exchanges, err := node.ListExchanges(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(exchanges, func(x rabbitmq.Exchange) bool { return x.Name == exchange && x.Type == "topic" && x.Durable }) {
		t.Errorf("control exchange %s is not a durable topic exchange: %+v", exchange, exchanges)
	}
}

// TestHandlerPanicIsContained: a handler that panics is logged, and the next message is
// handled.
func TestHandlerPanicIsContained(t *testing.T) {
	node := broker.Node(t)
	const topic = "q-test-panic"
	c := newClient(t, node, nil)
	box := &inbox{}
	_, err := c.Serve(t.Context(), topic, "compute-1", func(ctx context.Context, in oslo.Incoming) {
		if in.Method == "explode" {
			panic("handler bug")
		}
		box.handle(ctx, in)
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, method := range []string{"explode", "after_panic"} {
		if err := c.Cast(t.Context(), oslo.Target{Topic: topic, Server: "compute-1"}, method, nil); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 5*time.Second, "the message after the panic is handled", func() bool { return box.count("after_panic", "") == 1 })
	if c.logs.FilterMessage("handler panicked; message dropped").Len() != 1 {
		t.Error("the panic was not logged")
	}
}
