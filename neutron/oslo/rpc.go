package oslo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
	"go.uber.org/zap"
)

// properties are those oslo's messages carry (reference §2.3).
func properties(body []byte) amqp.Publishing {
	return amqp.Publishing{
		ContentType:     "application/json",
		ContentEncoding: "utf-8",
		DeliveryMode:    amqp.Persistent,
		Priority:        0,
		Headers:         amqp.Table{},
		Body:            body,
	}
}

// requestContext is the oslo context of a message: the one attached to ctx with
// WithRequestContext, or a fresh admin context.
func requestContext(ctx context.Context) Context {
	if rc, ok := ctx.Value(requestContextKey{}).(Context); ok {
		return rc
	}
	return AdminContext(time.Now())
}

type requestContextKey struct{}

// WithRequestContext attaches the oslo request context that calls and casts made with the
// returned context carry.
func WithRequestContext(ctx context.Context, rc Context) context.Context {
	return context.WithValue(ctx, requestContextKey{}, rc)
}

func marshalArgs(method string, args any) (json.RawMessage, error) {
	switch a := args.(type) {
	case nil:
		return json.RawMessage("{}"), nil
	case json.RawMessage:
		return a, nil
	}
	b, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("method %s: encode args: %w", method, err)
	}
	return b, nil
}

// Cast sends a one-way message: to TOPIC or TOPIC.SERVER on the control exchange, or, with
// target.Fanout, to exchange TOPIC_fanout. args must encode to a JSON object (a struct or a
// map of keyword arguments), or be nil.
func (c *Client) Cast(ctx context.Context, target Target, method string, args any) error {
	rawArgs, err := marshalArgs(method, args)
	if err != nil {
		return err
	}
	body, err := EncodeMessage(Message{
		Method: method, Args: rawArgs, Version: target.Version, Namespace: target.Namespace,
		UniqueID: uuidHex(), Context: requestContext(ctx),
	})
	if err != nil {
		return err
	}
	if target.Fanout {
		exchange := target.Topic + "_fanout"
		err = c.publish(ctx, exchange, func(ch *amqp.Channel) error {
			return c.declareExchange(ch, exchange, amqp.ExchangeFanout, false, true)
		}, "", properties(body))
	} else {
		err = c.publish(ctx, c.transport.ControlExchange, c.controlExchange, target.routingKey(), properties(body))
	}
	if err != nil {
		return fmt.Errorf("cast %s to %s: %w", method, c.describe(target), err)
	}
	return nil
}

func (c *Client) describe(t Target) string {
	if t.Fanout {
		return t.Topic + "_fanout"
	}
	return t.routingKey()
}

// Call sends a request to TOPIC (or TOPIC.SERVER) and waits for its reply. The wait ends at
// ctx's deadline if it has one, else after the method's timeout from the back-off policy
// (which then doubles it for the next call). A failure the server sent back is a
// *RemoteError; no reply in time is a *TimeoutError; while disconnected the error wraps
// ErrNotConnected. A reply arriving after the call gave up is dropped.
func (c *Client) Call(ctx context.Context, target Target, method string, args any) (json.RawMessage, error) {
	if target.Fanout {
		return nil, fmt.Errorf("call %s: a call cannot be fanout", method)
	}
	rawArgs, err := marshalArgs(method, args)
	if err != nil {
		return nil, err
	}
	policyKey := method
	if target.Namespace != "" {
		policyKey = target.Namespace + "." + method
	}
	timeout := c.policy.Timeout(policyKey)
	fromPolicy := true
	if deadline, ok := ctx.Deadline(); ok {
		timeout, fromPolicy = time.Until(deadline), false
	}
	msgID := uuidHex()
	body, err := EncodeMessage(Message{
		Method: method, Args: rawArgs, Version: target.Version, Namespace: target.Namespace,
		MsgID: msgID, ReplyQueue: c.replyQueue, UniqueID: uuidHex(), Context: requestContext(ctx),
	})
	if err != nil {
		return nil, err
	}
	w := &callWaiter{replies: make(chan Reply, 4)}
	c.mu.Lock()
	c.waiters[msgID] = w
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.waiters, msgID)
		c.mu.Unlock()
	}()

	// A reply can only come back on the connection the call went out on: when that is
	// lost (a broker restart takes the reply queue with it), the call fails at once with
	// ErrNotConnected instead of waiting for its timeout, and the caller asks again.
	c.mu.Lock()
	var lost <-chan struct{}
	if c.session != nil {
		lost = c.session.lost
	}
	c.mu.Unlock()
	msg := properties(body)
	msg.Expiration = strconv.FormatInt(max(timeout.Milliseconds(), 1), 10)
	if err := c.publish(ctx, c.transport.ControlExchange, c.controlExchange, target.routingKey(), msg); err != nil {
		return nil, fmt.Errorf("call %s on %s: %w", method, target.routingKey(), err)
	}

	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var result json.RawMessage
	for {
		select {
		case r, ok := <-w.replies:
			if !ok {
				return nil, fmt.Errorf("call %s on %s: %w", method, target.routingKey(), ErrClosed)
			}
			if r.Failure != nil {
				return nil, &RemoteError{Topic: target.routingKey(), Method: method, Failure: *r.Failure}
			}
			if r.Result != nil {
				result = r.Result
			}
			if r.Ending {
				if result == nil {
					result = json.RawMessage("null")
				}
				return result, nil
			}
		case <-timer.C:
			return nil, c.timedOut(target, method, msgID, timeout, policyKey, fromPolicy)
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, c.timedOut(target, method, msgID, timeout, policyKey, fromPolicy)
			}
			return nil, fmt.Errorf("call %s on %s: %w", method, target.routingKey(), ctx.Err())
		case <-lost:
			return nil, fmt.Errorf("call %s on %s: the connection was lost before the reply: %w", method, target.routingKey(), ErrNotConnected)
		case <-c.closing:
			return nil, fmt.Errorf("call %s on %s: %w", method, target.routingKey(), ErrClosed)
		}
	}
}

func (c *Client) timedOut(target Target, method, msgID string, timeout time.Duration, policyKey string, fromPolicy bool) error {
	e := &TimeoutError{Topic: target.routingKey(), Method: method, MsgID: msgID, Timeout: timeout}
	if fromPolicy {
		e.NextTimeout = c.policy.TimedOut(policyKey, timeout)
		e.Wait = c.policy.Wait(policyKey)
	}
	c.log.Warn("RPC call timed out", zap.String("method", method), zap.String("topic", e.Topic),
		zap.String("msg_id", msgID), zap.Duration("timeout", timeout), zap.Duration("next_timeout", e.NextTimeout))
	return e
}

// handleReply routes a reply to its waiting call; replies nobody waits for (late, or
// duplicated) are dropped.
func (c *Client) handleReply(queue string, body []byte) {
	r, err := DecodeReply(body)
	if err != nil {
		c.log.Warn("dropping a malformed reply", zap.Error(&MalformedError{Queue: queue, Err: err}), zap.ByteString("body", truncate(body)))
		return
	}
	if !c.replyIDs.firstTime(r.UniqueID) {
		c.log.Debug("dropping a duplicate reply", zap.String("msg_id", r.MsgID), zap.String("unique_id", r.UniqueID))
		return
	}
	// Sent under c.mu: failWaiters closes the channels under it too.
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.waiters[r.MsgID]
	if w == nil {
		c.log.Info("dropping a reply nobody waits for (late, or not ours)", zap.String("queue", queue), zap.String("msg_id", r.MsgID))
		return
	}
	select {
	case w.replies <- r:
	default:
		c.log.Warn("dropping a reply: its call has too many unread", zap.String("msg_id", r.MsgID))
	}
}

// failWaiters ends every pending call with ErrClosed.
func (c *Client) failWaiters() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, w := range c.waiters {
		close(w.replies)
		delete(c.waiters, id)
	}
}

func truncate(b []byte) []byte {
	const limit = 512
	if len(b) > limit {
		return b[:limit]
	}
	return b
}
