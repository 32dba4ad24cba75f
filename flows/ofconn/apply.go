package ofconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	of13 "antrea.io/libOpenflow/openflow13"
	"antrea.io/libOpenflow/util"
	"go.uber.org/zap"
)

// ONF EXT-230 bundle messages in OpenFlow 1.3 (experimenter ONF, exp_type
// 2300 for control, 2301 for add).
const (
	onfBundleControl = 2300
	onfBundleAdd     = 2301
	bundleAddHdrLen  = 24 // ofp_header + experimenter + exp_type + bundle_id + pad + flags
	bundleFlags      = of13.OFPBCT_ATOMIC
	ctxCheckEvery    = 1024 // messages between ctx checks while streaming
)

// Barrier sends OFPT_BARRIER_REQUEST and waits for its reply: every message
// sent before it has then been processed by the switch.
func (c *Conn) Barrier(ctx context.Context) error {
	if err := c.request(ctx, "barrier", ofptBarrierRequest); err != nil {
		return fmt.Errorf("ofconn: barrier: %w", err)
	}
	return nil
}

// Echo sends OFPT_ECHO_REQUEST and returns the round-trip time when the reply
// arrives. Since the switch answers in order, the time includes any work
// queued before it; use it as a liveness probe with a generous ctx.
func (c *Conn) Echo(ctx context.Context) (time.Duration, error) {
	start := time.Now()
	if err := c.request(ctx, "echo", ofptEchoRequest); err != nil {
		return 0, fmt.Errorf("ofconn: echo: %w", err)
	}
	return time.Since(start), nil
}

// request sends a header-only message of type typ and waits for its reply
// (or error).
func (c *Conn) request(ctx context.Context, name string, typ uint8) error {
	xid := c.nextXids(1)
	b := &batch{}
	reply := b.addCtrl(name, xid)
	defer c.register(xid, 1, b.onMsg)()
	if err := c.write(ctx, func(w *bufio.Writer) error {
		var m [headerLen]byte
		putHeader(m[:], typ, headerLen, xid)
		_, err := w.Write(m[:])
		return err
	}); err != nil {
		return err
	}
	if err := c.wait(ctx, reply.done); err != nil {
		return err
	}
	return b.firstError()
}

// Apply sends msgs (OpenFlow 1.3 messages such as flow-mods built with
// libOpenflow) in order, then a barrier, and waits for the barrier reply. It
// streams: 100,000 flow-mods go out in large writes while the reader keeps
// draining replies. The connection assigns the xids as it writes; the
// messages and the bytes their MarshalBinary returns are not modified, and
// their own Xid fields are ignored.
//
// It returns nil if the switch accepted every message, or an *ApplyError
// listing every OpenFlow error received, each attributed to the index of the
// message that caused it. Messages without an error were applied: unlike
// Bundle, Apply is not atomic.
func (c *Conn) Apply(ctx context.Context, msgs []util.Message) error {
	n := uint32(len(msgs))
	base := c.nextXids(n + 1)
	b := &batch{first: base, n: n}
	barrier := b.addCtrl("barrier", base+n)
	defer c.register(base, n+1, b.onMsg)()

	sent := 0
	var encErr error
	err := c.write(ctx, func(w *bufio.Writer) error {
		for i, m := range msgs {
			if i%ctxCheckEvery == ctxCheckEvery-1 && ctx.Err() != nil {
				return ctx.Err()
			}
			data, err := encode(m)
			if err != nil {
				encErr = fmt.Errorf("message %d: %w", i, err)
				break
			}
			writeMsg(w, data, base+uint32(i))
			sent++
		}
		return writeBarrier(w, base+n)
	})
	if err != nil {
		return fmt.Errorf("ofconn: apply interrupted after %d of %d messages: %w", sent, n, err)
	}
	if err := c.wait(ctx, barrier.done); err != nil {
		return fmt.Errorf("ofconn: apply: waiting for the barrier after %d messages: %w", sent, err)
	}
	errs := b.errors()
	if len(errs) == 0 && encErr == nil {
		return nil
	}
	return &ApplyError{Errors: errs, Sent: sent, Cause: encErr}
}

// Bundle sends msgs inside one ONF EXT-230 bundle (OpenFlow 1.3 experimenter
// messages) and commits it only if the switch accepted every message:
//
//  1. BUNDLE_CONTROL OPEN (flags ATOMIC), one BUNDLE_ADD (flags ATOMIC) per
//     message with the inner xid equal to the outer one, then a BARRIER;
//  2. Open vSwitch checks each add as it arrives and rejects bad ones
//     individually, and would still commit the rest. So if any add was
//     rejected, Bundle sends DISCARD and returns a *BundleError (Stage "add")
//     naming each rejected index with its error: nothing is installed;
//  3. otherwise it sends COMMIT and waits for the commit reply. A failure at
//     commit time (OFPBFC_MSG_FAILED, preceded by the error of the offending
//     message) is returned as a *BundleError (Stage "commit"), attributed to
//     the message index; the switch has then installed nothing.
//
// Bundle returns nil only when the commit reply confirms. An empty msgs
// returns nil without sending anything. If ctx ends before the commit is
// sent, Bundle stops between two messages, sends a best-effort DISCARD and
// returns ctx's error; nothing is installed. (If the switch has stopped
// reading, a write blocked for more than a second after ctx ended fails the
// connection; the switch drops an uncommitted bundle when its connection
// goes.) If ctx ends while waiting for the commit reply, the outcome is
// unknown and the caller must read the flows back.
func (c *Conn) Bundle(ctx context.Context, msgs []util.Message) error {
	n := uint32(len(msgs))
	if n == 0 {
		return nil
	}
	id := c.bundleID.Add(1)
	// xids: open, msgs..., barrier, commit or discard.
	base := c.nextXids(n + 3)
	b := &batch{first: base + 1, n: n}
	open := b.addCtrl("bundle open", base)
	barrier := b.addCtrl("barrier", base+n+1)
	final := b.addCtrl("bundle commit", base+n+2)
	defer c.register(base, n+3, b.onMsg)()

	fail := func(stage string, cause error) error {
		return &BundleError{BundleID: id, Stage: stage, Errors: b.errors(), Cause: cause}
	}

	start := time.Now()
	var encErr error
	err := c.write(ctx, func(w *bufio.Writer) error {
		if err := writeBundleControl(w, id, of13.OFPBCT_OPEN_REQUEST, base); err != nil {
			return err
		}
		var env [bundleAddHdrLen]byte
		for i, m := range msgs {
			if i%ctxCheckEvery == ctxCheckEvery-1 && ctx.Err() != nil {
				return ctx.Err()
			}
			xid := base + 1 + uint32(i)
			data, err := encode(m)
			if err == nil && len(data)+bundleAddHdrLen > maxMsgLen {
				err = fmt.Errorf("%d bytes is too long to fit in a bundle add", len(data))
			}
			if err != nil {
				encErr = fmt.Errorf("message %d: %w", i, err)
				break
			}
			putBundleAddHeader(env[:], id, xid, len(data))
			w.Write(env[:])
			writeMsg(w, data, xid) // OVS requires the inner xid to equal the outer one
		}
		return writeBarrier(w, base+n+1)
	})
	if err != nil {
		c.discardAsync(id, base+n+2)
		return fmt.Errorf("ofconn: bundle %d interrupted while sending: %w", id, err)
	}
	sent := time.Since(start)
	if err := c.wait(ctx, barrier.done); err != nil {
		c.discardAsync(id, base+n+2)
		return fmt.Errorf("ofconn: bundle %d: waiting for the barrier: %w", id, err)
	}
	added := time.Since(start)

	if !open.ok() {
		return fail("open", nil)
	}
	if encErr != nil || len(b.errors()) > 0 {
		stage := "add"
		if encErr != nil {
			stage = "encode"
		}
		b.rename(final, "bundle discard")
		if err := c.write(ctx, func(w *bufio.Writer) error {
			return writeBundleControl(w, id, of13.OFPBCT_DISCARD_REQUEST, final.xid)
		}); err != nil {
			return fmt.Errorf("ofconn: bundle %d: sending discard: %w (after: %v)", id, err, fail(stage, encErr))
		}
		if err := c.wait(ctx, final.done); err != nil {
			return fmt.Errorf("ofconn: bundle %d: waiting for the discard reply: %w (after: %v)", id, err, fail(stage, encErr))
		}
		return fail(stage, encErr)
	}

	if err := c.write(ctx, func(w *bufio.Writer) error {
		return writeBundleControl(w, id, of13.OFPBCT_COMMIT_REQUEST, final.xid)
	}); err != nil {
		return fmt.Errorf("ofconn: bundle %d: sending commit: %w", id, err)
	}
	if err := c.wait(ctx, final.done); err != nil {
		// The commit may or may not have happened; the caller must re-read.
		return fmt.Errorf("ofconn: bundle %d: waiting for the commit reply (outcome unknown): %w", id, err)
	}
	if !final.ok() {
		return fail("commit", nil)
	}
	c.log.Debug("bundle committed", zap.Uint32("bundle", id), zap.Int("messages", len(msgs)),
		zap.Duration("sent", sent), zap.Duration("added", added), zap.Duration("committed", time.Since(start)))
	return nil
}

// discardAsync sends a best-effort DISCARD for a bundle abandoned because
// ctx ended; it does not wait for the reply.
func (c *Conn) discardAsync(id, xid uint32) {
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		err := c.write(ctx, func(w *bufio.Writer) error {
			return writeBundleControl(w, id, of13.OFPBCT_DISCARD_REQUEST, xid)
		})
		if err != nil {
			c.log.Debug("discarding an abandoned bundle", zap.Uint32("bundle", id), zap.Error(err))
		}
	}()
}

// encode marshals m with libOpenflow and checks that the result is one
// well-formed OpenFlow 1.3 message. The bytes are not modified (MarshalBinary
// may return a buffer the message keeps): writeMsg stamps the xid as it writes.
func encode(m util.Message) ([]byte, error) {
	data, err := m.MarshalBinary()
	if err != nil {
		return nil, err
	}
	if len(data) < headerLen {
		return nil, fmt.Errorf("encoded message is %d bytes long", len(data))
	}
	if data[0] != ofVersion {
		return nil, fmt.Errorf("encoded message has OpenFlow version %#x, want %#x (OpenFlow 1.3)", data[0], ofVersion)
	}
	if l := int(binary.BigEndian.Uint16(data[2:4])); l != len(data) {
		return nil, fmt.Errorf("encoded message says it is %d bytes long but is %d", l, len(data))
	}
	return data, nil
}

// writeMsg writes an encoded message with xid in place of its own. Write
// errors stick in w and are reported by its Flush.
func writeMsg(w *bufio.Writer, data []byte, xid uint32) {
	var h [headerLen]byte
	copy(h[:], data[:headerLen])
	binary.BigEndian.PutUint32(h[4:8], xid)
	w.Write(h[:])
	w.Write(data[headerLen:])
}

func putHeader(b []byte, typ uint8, length int, xid uint32) {
	b[0] = ofVersion
	b[1] = typ
	binary.BigEndian.PutUint16(b[2:4], uint16(length))
	binary.BigEndian.PutUint32(b[4:8], xid)
}

// putBundleAddHeader writes the envelope of an ONF BUNDLE_ADD that carries
// an inner message of innerLen bytes whose xid is xid (OVS requires the
// inner and outer xids to be equal). It is byte-identical to what
// libOpenflow's NewBundleAdd encodes, without re-marshalling the inner message.
func putBundleAddHeader(b []byte, bundleID, xid uint32, innerLen int) {
	putHeader(b, ofptExperimenter, bundleAddHdrLen+innerLen, xid)
	binary.BigEndian.PutUint32(b[8:12], onfExperimenterID)
	binary.BigEndian.PutUint32(b[12:16], onfBundleAdd)
	binary.BigEndian.PutUint32(b[16:20], bundleID)
	b[20], b[21] = 0, 0 // pad
	binary.BigEndian.PutUint16(b[22:24], bundleFlags)
}

func writeBundleControl(w *bufio.Writer, bundleID uint32, typ uint16, xid uint32) error {
	m := of13.NewBundleControl(&of13.BundleControl{BundleID: bundleID, Type: typ, Flags: bundleFlags})
	data, err := encode(m)
	if err != nil {
		return err
	}
	writeMsg(w, data, xid)
	return nil
}

func writeBarrier(w *bufio.Writer, xid uint32) error {
	var m [headerLen]byte
	putHeader(m[:], ofptBarrierRequest, headerLen, xid)
	_, err := w.Write(m[:])
	return err
}

// batch collects the replies to one Apply, Bundle, Barrier or Echo: errors for
// the messages msgs[i] (xid first+i) and the replies to a few control messages.
// Its onMsg runs on the reader goroutine.
type batch struct {
	first, n uint32

	mu    sync.Mutex
	errs  []MessageError
	ctrls []*ctrl
}

// ctrl is a control message (barrier, bundle open/commit/discard, echo)
// awaiting its reply or error.
type ctrl struct {
	name    string
	xid     uint32
	done    chan struct{} // closed on reply or error
	replied bool          // a reply, not an error, arrived
}

func (c *ctrl) ok() bool {
	select {
	case <-c.done:
		return c.replied
	default:
		return false
	}
}

func (b *batch) addCtrl(name string, xid uint32) *ctrl {
	c := &ctrl{name: name, xid: xid, done: make(chan struct{})}
	b.mu.Lock()
	b.ctrls = append(b.ctrls, c)
	b.mu.Unlock()
	return c
}

func (b *batch) rename(c *ctrl, name string) {
	b.mu.Lock()
	c.name = name
	b.mu.Unlock()
}

func (b *batch) onMsg(xid uint32, msg []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	var cm *ctrl
	for _, c := range b.ctrls {
		if c.xid == xid {
			cm = c
		}
	}
	switch msg[1] {
	case ofptError:
		me := parseError(msg)
		if i := xid - b.first; i < b.n {
			me.Index = int(i)
		} else {
			me.Index = -1
			if cm != nil {
				me.Request = cm.name
			}
		}
		b.errs = append(b.errs, me)
		cm.finish(false)
	case ofptBarrierReply, ofptEchoReply:
		cm.finish(true)
	case ofptExperimenter:
		if len(msg) >= bundleAddHdrLen &&
			binary.BigEndian.Uint32(msg[8:12]) == onfExperimenterID &&
			binary.BigEndian.Uint32(msg[12:16]) == onfBundleControl {
			cm.finish(true) // OPEN_REPLY, COMMIT_REPLY or DISCARD_REPLY
		}
	}
}

// finish marks the control message answered; nil-safe, idempotent.
// Called with the batch lock held.
func (c *ctrl) finish(replied bool) {
	if c == nil {
		return
	}
	select {
	case <-c.done:
	default:
		c.replied = replied
		close(c.done)
	}
}

func (b *batch) errors() []MessageError {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]MessageError(nil), b.errs...)
}

func (b *batch) firstError() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) == 0 {
		return nil
	}
	return b.errs[0]
}

// Probe sends an echo request every interval while the connection lives and fails the
// connection when one is not answered within interval (the switch hung, or the way to it
// died without closing the socket): Done then reports it, and the connection's users
// reconnect. It is Neutron's [ovs] of_inactivity_probe; interval 0 disables it. Call it
// once per connection.
func (c *Conn) Probe(interval time.Duration) {
	if interval <= 0 {
		return
	}
	go func() {
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-c.done:
				return
			case <-t.C:
			}
			ctx, cancel := context.WithTimeout(context.Background(), interval)
			_, err := c.Echo(ctx)
			cancel()
			if err != nil && c.Err() == nil {
				c.fail(fmt.Errorf("ofconn: no echo reply within %s (of_inactivity_probe): %w", interval, err))
				return
			}
		}
	}()
}
