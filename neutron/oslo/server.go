package oslo

import (
	"context"
	"fmt"
	"runtime/debug"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// Incoming is a message a Server received.
type Incoming struct {
	// Queue is the queue it arrived on (TOPIC, TOPIC.HOST or TOPIC_fanout_<uuid>).
	Queue string
	Message
}

// Handler handles the messages of a Server, one at a time per queue, in the order of the
// queue. ctx ends when the server stops. A handler that panics is logged; the server goes on.
type Handler func(ctx context.Context, in Incoming)

// Server is the consumer side of an oslo RPC server, Target(topic=TOPIC, server=HOST): the
// three queues TOPIC and TOPIC.HOST on the control exchange and TOPIC_fanout_<uuid> on
// exchange TOPIC_fanout, declared with oslo's flags and declared again after every
// reconnection (the fanout queue keeps its name). Messages are acknowledged before they are
// handled, as oslo does; a message whose _unique_id was seen recently is dropped; a message
// that cannot be decoded is logged with its queue and dropped.
type Server struct {
	client      *Client
	topic, host string
	fanoutQueue string
	handler     Handler
	ids         *uniqueIDs
	tagSuffix   string // consumer tags must be unique on the channel, even for a topic served twice
	ctx         context.Context
	cancel      context.CancelFunc
	log         *zap.Logger
}

// Serve starts consuming topic for host. If the client is connected, the queues are declared
// before Serve returns (a declaration the broker refuses is returned as an error and the
// server is not registered); otherwise they are declared on the next connection. The server
// stops when ctx ends or Stop is called.
func (c *Client) Serve(ctx context.Context, topic, host string, h Handler) (*Server, error) {
	if topic == "" || host == "" {
		return nil, fmt.Errorf("serve: topic %q and host %q must both be set", topic, host)
	}
	srv := &Server{
		client: c, topic: topic, host: host, handler: h,
		fanoutQueue: topic + "_fanout_" + uuidHex(),
		ids:         newUniqueIDs(4096),
		tagSuffix:   uuidHex()[:8],
		log:         c.log.With(zap.String("topic", topic), zap.String("host", host)),
	}
	srv.ctx, srv.cancel = context.WithCancel(ctx)
	c.mu.Lock()
	if c.isClosing() {
		c.mu.Unlock()
		srv.cancel()
		return nil, ErrClosed
	}
	c.servers[srv] = struct{}{}
	if s := c.session; s != nil {
		if err := srv.declare(s); err != nil {
			delete(c.servers, srv)
			c.mu.Unlock()
			srv.cancel()
			s.markLost(err)
			return nil, fmt.Errorf("serve %s for %s: %w", topic, host, err)
		}
	}
	c.mu.Unlock()
	go func() {
		<-srv.ctx.Done()
		srv.Stop()
	}()
	return srv, nil
}

// Queues are the names of the server's three queues.
func (s *Server) Queues() []string {
	return []string{s.topic, s.topic + "." + s.host, s.fanoutQueue}
}

// Stop cancels the server's consumers; its handler is not called any more. The queues stay
// (oslo's do as well; the fanout queue expires after rabbit_transient_queues_ttl).
func (s *Server) Stop() {
	s.cancel()
	c := s.client
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.servers[s]; !ok {
		return
	}
	delete(c.servers, s)
	if sess := c.session; sess != nil {
		for _, q := range s.Queues() {
			_ = sess.consume.Cancel(s.consumerTag(q), false)
		}
	}
}

func (s *Server) consumerTag(queue string) string { return "dvrflow-" + queue + "-" + s.tagSuffix }

// declare declares the server's exchanges, queues and bindings on a session and starts
// consuming. The caller holds the client's mutex.
func (s *Server) declare(sess *session) error {
	c := s.client
	r := c.transport.Rabbit
	if err := c.controlExchange(sess.consume); err != nil {
		return err
	}
	for _, q := range []string{s.topic, s.topic + "." + s.host} {
		if err := c.declareQueue(sess, q, c.queueArgs(), r.DurableQueues, r.AutoDelete); err != nil {
			return err
		}
		if err := sess.consume.QueueBind(q, q, c.transport.ControlExchange, false, nil); err != nil {
			return fmt.Errorf("bind queue %s to exchange %s: %w", q, c.transport.ControlExchange, err)
		}
	}
	fanoutExchange := s.topic + "_fanout"
	if err := c.declareExchange(sess.consume, fanoutExchange, amqp.ExchangeFanout, false, true); err != nil {
		return err
	}
	if err := c.declareQueue(sess, s.fanoutQueue, c.transientQueueArgs(), false, false); err != nil {
		return err
	}
	if err := sess.consume.QueueBind(s.fanoutQueue, s.topic, fanoutExchange, false, nil); err != nil {
		return fmt.Errorf("bind queue %s to exchange %s: %w", s.fanoutQueue, fanoutExchange, err)
	}
	for _, q := range s.Queues() {
		if err := c.startConsumerTagged(sess, q, s.consumerTag(q), s.handle); err != nil {
			return err
		}
	}
	return nil
}

// handle decodes, de-duplicates and dispatches one delivery.
func (s *Server) handle(queue string, body []byte) {
	if s.ctx.Err() != nil {
		return
	}
	m, err := DecodeMessage(body)
	if err != nil {
		s.log.Warn("dropping a malformed message", zap.Error(&MalformedError{Queue: queue, Err: err}),
			zap.String("queue", queue), zap.ByteString("body", truncate(body)))
		return
	}
	if !s.ids.firstTime(m.UniqueID) {
		s.log.Info("dropping a duplicate message", zap.String("queue", queue), zap.String("method", m.Method),
			zap.String("unique_id", m.UniqueID))
		return
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("handler panicked; message dropped", zap.String("queue", queue), zap.String("method", m.Method),
				zap.Any("panic", p), zap.ByteString("stack", debug.Stack()))
		}
	}()
	s.handler(s.ctx, Incoming{Queue: queue, Message: m})
}
