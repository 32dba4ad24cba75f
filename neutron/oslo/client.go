// Package oslo is an oslo.messaging client for the rabbit driver, over AMQP 0.9.1: what
// Neutron's agents use to talk to neutron-server. It implements the wire protocol as
// oslo.messaging 14 (OpenStack Zed) sends it: envelope 2.0, calls with a per-process reply
// queue, casts to a topic, a host topic or a fanout exchange, and the three-queue consumers of
// an oslo RPC server, with the exact exchange and queue flags, reconnection to a list of
// brokers and re-declaration of everything after a broker restart or a lost channel.
//
// It knows nothing of Neutron's methods; see docs/neutron-messaging.md.
package oslo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// Config configures a Client.
type Config struct {
	Transport Transport
	Log       *zap.Logger
	// OnEvent, if set, is told of every connection change. It runs on the client's connection
	// goroutine and must not block.
	OnEvent func(Event)
	// Policy, if set, replaces the back-off built from the transport's rpc_response_timeout
	// and rpc_response_max_timeout (to share one policy between clients).
	Policy *TimeoutPolicy
}

// EventKind says what happened to the connection.
type EventKind int

const (
	// Connected: a broker accepted the connection and everything is declared again.
	Connected EventKind = iota + 1
	// Disconnected: the connection or one of its channels was lost; reconnecting.
	Disconnected
	// ConnectFailed: a round over all brokers failed; retrying after Event.Retry.
	ConnectFailed
)

func (k EventKind) String() string {
	switch k {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case ConnectFailed:
		return "connect failed"
	}
	return "event(" + strconv.Itoa(int(k)) + ")"
}

// Event is a change of the client's connection.
type Event struct {
	Kind   EventKind
	Broker string // user@host:port, no password
	Err    error
	Retry  time.Duration
	// Generation counts successful connections, starting at 1.
	Generation uint64
}

// Target is where a call or cast goes, like oslo's Target.
type Target struct {
	// Topic, e.g. "q-plugin".
	Topic string
	// Server, if set, directs the message to TOPIC.SERVER (a host).
	Server string
	// Fanout sends a cast to every consumer of the topic (exchange TOPIC_fanout).
	Fanout bool
	// Version is the "major.minor" API version the method needs ("" = "1.0").
	Version string
	// Namespace of the endpoint; Neutron's are all empty.
	Namespace string
}

func (t Target) routingKey() string {
	if t.Server != "" {
		return t.Topic + "." + t.Server
	}
	return t.Topic
}

// Client is a connection to RabbitMQ that calls, casts and consumes as oslo.messaging does.
// It connects in the background and reconnects by itself; it is safe for concurrent use.
type Client struct {
	transport  Transport
	log        *zap.Logger
	onEvent    func(Event)
	policy     *TimeoutPolicy
	replyQueue string
	replyIDs   *uniqueIDs

	closing   chan struct{}
	done      chan struct{}
	closeOnce sync.Once

	mu          sync.Mutex
	session     *session               // nil while disconnected
	connectedCh chan struct{}          // closed while connected
	generation  uint64                 // successful connections so far
	servers     map[*Server]struct{}   // consumers, declared again on every connection
	waiters     map[string]*callWaiter // by _msg_id
}

// session is one AMQP connection with its two channels.
type session struct {
	conn    *amqp.Connection
	broker  Broker
	consume *amqp.Channel // every consumer and the declarations
	// publishing, and the exchanges declared on this connection so far (oslo declares an
	// exchange before its first publish on each connection)
	pubMu     sync.Mutex
	publish   *amqp.Channel
	exchanges map[string]bool
	// lost is closed (once) when the connection or a channel fails, or a consumer is
	// cancelled by the broker.
	lost     chan struct{}
	lostOnce sync.Once
	lostWhy  error
}

func (s *session) markLost(why error) {
	s.lostOnce.Do(func() {
		s.lostWhy = why
		close(s.lost)
	})
}

type callWaiter struct {
	replies chan Reply
}

// New returns a client and starts connecting in the background. Use WaitConnected to wait
// for the first connection; calls and casts fail with ErrNotConnected until then.
func New(cfg Config) (*Client, error) {
	t := cfg.Transport
	if len(t.Brokers) == 0 {
		return nil, errors.New("oslo: no broker in the transport")
	}
	if t.ControlExchange == "" {
		return nil, errors.New("oslo: empty control_exchange")
	}
	c := &Client{
		transport:   t,
		log:         cfg.Log,
		onEvent:     cfg.OnEvent,
		policy:      cfg.Policy,
		replyQueue:  "reply_" + uuidHex(),
		replyIDs:    newUniqueIDs(1024),
		closing:     make(chan struct{}),
		done:        make(chan struct{}),
		connectedCh: make(chan struct{}),
		servers:     map[*Server]struct{}{},
		waiters:     map[string]*callWaiter{},
	}
	if c.log == nil {
		c.log = zap.NewNop()
	}
	if c.policy == nil {
		c.policy = NewTimeoutPolicy(t.ResponseTimeout, t.ResponseMaxTimeout)
	}
	go c.run()
	return c, nil
}

// ReplyQueue is the name of the client's reply queue (reply_<uuid hex>).
func (c *Client) ReplyQueue() string { return c.replyQueue }

// Policy is the client's call-timeout back-off.
func (c *Client) Policy() *TimeoutPolicy { return c.policy }

// Connected reports whether the client has a connection with everything declared.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.session != nil
}

// Generation counts the client's successful connections (1 after the first).
func (c *Client) Generation() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.generation
}

// WaitConnected waits until the client is connected, ctx ends or the client is closed.
func (c *Client) WaitConnected(ctx context.Context) error {
	c.mu.Lock()
	ch := c.connectedCh
	c.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-c.closing:
		return ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("waiting for a broker connection: %w", ctx.Err())
	}
}

// Close stops the client: consumers end, pending calls fail with ErrClosed, the connection
// is closed.
func (c *Client) Close() error {
	c.closeOnce.Do(func() { close(c.closing) })
	<-c.done
	return nil
}

// run is the connection supervisor: connect, declare, wait for a loss, repeat.
func (c *Client) run() {
	defer close(c.done)
	defer c.failWaiters()
	failedRounds := 0
	for {
		s, err := c.connect()
		if err != nil {
			if c.isClosing() {
				return
			}
			r := c.transport.Rabbit
			wait := min(r.RetryInterval+time.Duration(failedRounds)*r.RetryBackoff, r.IntervalMax)
			failedRounds++
			c.log.Warn("cannot connect to any RabbitMQ broker; retrying", zap.Error(err), zap.Duration("retry_in", wait))
			c.emit(Event{Kind: ConnectFailed, Err: err, Retry: wait})
			if !c.sleep(wait) {
				return
			}
			continue
		}
		failedRounds = 0
		c.mu.Lock()
		c.session = s
		c.generation++
		gen := c.generation
		close(c.connectedCh)
		c.mu.Unlock()
		c.log.Info("connected to RabbitMQ", zap.Stringer("broker", s.broker), zap.Uint64("generation", gen),
			zap.String("reply_queue", c.replyQueue))
		c.emit(Event{Kind: Connected, Broker: s.broker.String(), Generation: gen})

		select {
		case <-s.lost:
		case <-c.closing:
		}
		c.mu.Lock()
		c.session = nil
		c.connectedCh = make(chan struct{})
		c.mu.Unlock()
		_ = s.conn.Close()
		if c.isClosing() {
			c.log.Info("closed the RabbitMQ connection", zap.Stringer("broker", s.broker))
			return
		}
		c.log.Warn("lost the RabbitMQ connection; reconnecting", zap.Stringer("broker", s.broker), zap.Error(s.lostWhy))
		c.emit(Event{Kind: Disconnected, Broker: s.broker.String(), Err: s.lostWhy})
		var cancelled *consumerCancelledError
		if errors.As(s.lostWhy, &cancelled) && !c.sleep(c.transport.Rabbit.ReconnectDelay) {
			return
		}
	}
}

func (c *Client) isClosing() bool {
	select {
	case <-c.closing:
		return true
	default:
		return false
	}
}

// sleep waits d; false if the client is closing.
func (c *Client) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.closing:
		return false
	}
}

func (c *Client) emit(e Event) {
	if c.onEvent != nil {
		c.onEvent(e)
	}
}

// connect makes one round over the brokers (in order, or shuffled) and sets up the first
// that accepts: channels, the reply queue and every registered consumer.
func (c *Client) connect() (*session, error) {
	brokers := append([]Broker(nil), c.transport.Brokers...)
	if c.transport.Rabbit.FailoverStrategy == "shuffle" {
		rand.Shuffle(len(brokers), func(i, j int) { brokers[i], brokers[j] = brokers[j], brokers[i] })
	}
	var errs []error
	for _, b := range brokers {
		if c.isClosing() {
			return nil, ErrClosed
		}
		s, err := c.dial(b)
		if err == nil {
			err = c.setup(s)
			if err != nil {
				_ = s.conn.Close()
			}
		}
		if err == nil {
			return s, nil
		}
		c.log.Warn("RabbitMQ broker refused or failed", zap.Stringer("broker", b), zap.Error(err))
		errs = append(errs, fmt.Errorf("%s: %w", b, err))
	}
	return nil, errors.Join(errs...)
}

func (c *Client) dial(b Broker) (*session, error) {
	r := c.transport.Rabbit
	heartbeat := r.HeartbeatTimeout
	if heartbeat <= 0 {
		// Threshold 0: take the broker's interval (the lower of the two wins; 0 would make the
		// library ask for its own 10 s). With a broker that disables heartbeats, 18 h.
		heartbeat = 65535 * time.Second
	}
	cfg := amqp.Config{
		Vhost:     c.transport.VirtualHost,
		Heartbeat: heartbeat,
		Locale:    "en_US",
		Dial:      amqp.DefaultDial(30 * time.Second),
		Properties: amqp.Table{
			"product":         "dvrflow",
			"connection_name": "dvrflow:" + c.replyQueue,
		},
	}
	switch r.LoginMethod {
	case "PLAIN":
		cfg.SASL = []amqp.Authentication{&amqp.PlainAuth{Username: b.User, Password: b.Password}}
	case "EXTERNAL":
		cfg.SASL = []amqp.Authentication{&amqp.ExternalAuth{}}
	default:
		cfg.SASL = []amqp.Authentication{&amqp.AMQPlainAuth{Username: b.User, Password: b.Password}}
	}
	scheme := "amqp"
	if r.SSL {
		tlsCfg, err := r.tlsConfig(b)
		if err != nil {
			return nil, err
		}
		cfg.TLSClientConfig = tlsCfg
		scheme = "amqps"
	}
	conn, err := amqp.DialConfig(scheme+"://"+b.Address()+"/", cfg)
	if err != nil {
		return nil, err
	}
	s := &session{conn: conn, broker: b, exchanges: map[string]bool{}, lost: make(chan struct{})}
	watch := func(ch chan *amqp.Error, what string) {
		go func() {
			if e, ok := <-ch; ok && e != nil {
				s.markLost(fmt.Errorf("%s closed: %w", what, e))
			} else {
				s.markLost(fmt.Errorf("%s closed", what))
			}
		}()
	}
	watch(conn.NotifyClose(make(chan *amqp.Error, 1)), "connection")
	blocked := conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	go func() {
		for state := range blocked {
			if state.Active {
				c.log.Warn("the broker blocks publishing (resource alarm)", zap.Stringer("broker", b), zap.String("reason", state.Reason))
			} else {
				c.log.Info("the broker unblocked publishing", zap.Stringer("broker", b))
			}
		}
	}()
	if s.consume, err = conn.Channel(); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open consumer channel: %w", err)
	}
	watch(s.consume.NotifyClose(make(chan *amqp.Error, 1)), "consumer channel")
	cancelled := s.consume.NotifyCancel(make(chan string, 16))
	go func() {
		if tag, ok := <-cancelled; ok {
			s.markLost(&consumerCancelledError{tag: tag})
		}
	}()
	if s.publish, err = conn.Channel(); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("open publisher channel: %w", err)
	}
	watch(s.publish.NotifyClose(make(chan *amqp.Error, 1)), "publisher channel")
	if r.PrefetchCount > 0 {
		if err := s.consume.Qos(r.PrefetchCount, 0, false); err != nil {
			_ = conn.Close()
			return nil, fmt.Errorf("basic.qos prefetch %d: %w", r.PrefetchCount, err)
		}
	}
	return s, nil
}

type consumerCancelledError struct{ tag string }

func (e *consumerCancelledError) Error() string {
	return "the broker cancelled consumer " + e.tag + " (its queue was deleted?)"
}

// setup declares the reply queue and every registered consumer on a new session. It holds
// c.mu, so no consumer is added or removed meanwhile.
func (c *Client) setup(s *session) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.declareQueue(s, c.replyQueue, c.transientQueueArgs(), false, false); err != nil {
		return err
	}
	if err := c.startConsumer(s, c.replyQueue, c.handleReply); err != nil {
		return err
	}
	for srv := range c.servers {
		if err := srv.declare(s); err != nil {
			return err
		}
	}
	return nil
}

// queueArgs are the arguments of every queue (x-ha-policy when rabbit_ha_queues is set).
func (c *Client) queueArgs() amqp.Table {
	t := amqp.Table{}
	if c.transport.Rabbit.HAQueues {
		t["x-ha-policy"] = "all"
	}
	return t
}

// transientQueueArgs are those of the reply and fanout queues: x-expires as well.
func (c *Client) transientQueueArgs() amqp.Table {
	t := c.queueArgs()
	t["x-expires"] = int32(c.transport.Rabbit.TransientQueuesTTL / time.Millisecond)
	return t
}

func (c *Client) declareQueue(s *session, name string, args amqp.Table, durable, autoDelete bool) error {
	if len(args) == 0 {
		args = nil
	}
	if _, err := s.consume.QueueDeclare(name, durable, autoDelete, false, false, args); err != nil {
		return fmt.Errorf("declare queue %s: %w", name, err)
	}
	return nil
}

func (c *Client) declareExchange(ch *amqp.Channel, name, kind string, durable, autoDelete bool) error {
	if err := ch.ExchangeDeclare(name, kind, durable, autoDelete, false, false, nil); err != nil {
		return fmt.Errorf("declare %s exchange %s: %w", kind, name, err)
	}
	return nil
}

// controlExchange declares (on ch) the topic exchange of calls and casts.
func (c *Client) controlExchange(ch *amqp.Channel) error {
	r := c.transport.Rabbit
	return c.declareExchange(ch, c.transport.ControlExchange, amqp.ExchangeTopic, r.DurableQueues, r.AutoDelete)
}

// startConsumer consumes queue on the session's consumer channel; handle runs for each
// delivery, in order, after the delivery has been acknowledged (oslo acks before it
// dispatches).
func (c *Client) startConsumer(s *session, queue string, handle func(queue string, body []byte)) error {
	return c.startConsumerTagged(s, queue, "", handle)
}

// startConsumerTagged is startConsumer with a consumer tag ("" lets the library pick one).
func (c *Client) startConsumerTagged(s *session, queue, tag string, handle func(queue string, body []byte)) error {
	var args amqp.Table
	if c.transport.Rabbit.CancelOnFailover {
		args = amqp.Table{"x-cancel-on-ha-failover": true}
	}
	deliveries, err := s.consume.Consume(queue, tag, false, false, false, false, args)
	if err != nil {
		return fmt.Errorf("consume queue %s: %w", queue, err)
	}
	go func() {
		for d := range deliveries {
			if err := d.Ack(false); err != nil {
				c.log.Warn("cannot acknowledge a message", zap.String("queue", queue), zap.Error(err))
			}
			handle(queue, d.Body)
		}
	}()
	return nil
}

// publish sends body on the current session; exchange is declared first when it was not yet
// on this connection.
func (c *Client) publish(ctx context.Context, exchange string, declare func(*amqp.Channel) error, key string, msg amqp.Publishing) error {
	c.mu.Lock()
	s := c.session
	c.mu.Unlock()
	if s == nil {
		if c.isClosing() {
			return ErrClosed
		}
		return ErrNotConnected
	}
	s.pubMu.Lock()
	defer s.pubMu.Unlock()
	if !s.exchanges[exchange] && declare != nil {
		if err := declare(s.publish); err != nil {
			s.markLost(err)
			return err
		}
		s.exchanges[exchange] = true
	}
	if err := s.publish.PublishWithContext(ctx, exchange, key, false, false, msg); err != nil {
		s.markLost(err)
		return fmt.Errorf("publish to exchange %q key %q: %w", exchange, key, err)
	}
	return nil
}
