// Package ofconn is a thin OpenFlow 1.3 connection to one Open vSwitch bridge.
//
// It speaks to a bridge's management socket (RUNDIR/BRIDGE.mgmt). Outgoing
// messages are encoded by antrea.io/libOpenflow; incoming messages are read by
// hand (the 8-byte OpenFlow header, then only the fields this package needs),
// because libOpenflow's decoder panics on flow stats containing pop_vlan and
// decodes set_field:…->eth_src wrong.
//
// One reader goroutine drains the socket at all times: it answers ECHO_REQUEST,
// hands replies to the waiting call by xid and attributes OpenFlow errors to
// the message that caused them. Writers stream through one buffered writer, so
// a batch of 100,000 flow-mods costs a few hundred write(2) calls and never
// deadlocks against the switch's replies.
//
// A Conn is safe for concurrent use. Each call that writes holds the write lock
// for its whole batch, so the messages of two concurrent calls never interleave.
package ofconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"antrea.io/libOpenflow/common"
	"go.uber.org/zap"
)

// OpenFlow 1.3 protocol constants used by this package.
const (
	ofVersion = 4 // OpenFlow 1.3 on the wire

	ofptHello          = 0
	ofptError          = 1
	ofptEchoRequest    = 2
	ofptEchoReply      = 3
	ofptExperimenter   = 4
	ofptMultipartReq   = 18
	ofptMultipartReply = 19
	ofptBarrierRequest = 20
	ofptBarrierReply   = 21

	headerLen = 8
	maxMsgLen = 0xffff

	onfExperimenterID = 0x4f4e4600
	nxExperimenterID  = 0x00002320
)

const (
	readBufferSize  = 256 << 10 // ≥ one maximal OpenFlow message, so Peek never copies
	writeBufferSize = 512 << 10
	// defaultHandshakeTimeout bounds Dial when ctx has no deadline.
	defaultHandshakeTimeout = 10 * time.Second
	// writeGrace is how long a write may stay blocked after its ctx ended.
	writeGrace = time.Second
)

// ErrClosed is the reason Err reports after Close.
var ErrClosed = errors.New("ofconn: connection closed")

// Conn is an OpenFlow 1.3 session with one bridge. Create it with Dial.
type Conn struct {
	nc   net.Conn
	path string
	log  *zap.Logger

	xid      atomic.Uint32 // last xid handed out
	bundleID atomic.Uint32 // last bundle id handed out

	// Writing. wmu serialises whole batches; bw is only touched under wmu.
	wmu sync.Mutex
	bw  *bufio.Writer

	// Write deadlines armed from a caller's context (see write).
	dlMu  sync.Mutex
	dlGen uint64

	// Reading. Replies go to the pending operation whose xid range holds them.
	br      *bufio.Reader
	pendMu  sync.Mutex
	pending []*pending
	echoCh  chan []byte
	// onMonitor receives the flow monitor's updates and notices (MonitorFlows).
	onMonitor atomic.Pointer[onfHandler]

	done      chan struct{}
	closeOnce sync.Once
	errMu     sync.Mutex
	err       error
}

// pending is one in-flight operation: it owns the xids [base, base+n) and
// receives, on the reader goroutine, every message that carries one of them.
type pending struct {
	base, n uint32
	// onMsg handles msg (valid only during the call; copy what you keep).
	// It runs on the reader goroutine and must not block.
	onMsg func(xid uint32, msg []byte)
}

func (p *pending) owns(xid uint32) bool { return xid-p.base < p.n }

// Dial connects to a bridge's management socket (a unix socket path such as
// RUNDIR/br-int.mgmt), exchanges HELLO advertising only OpenFlow 1.3 and checks
// that the switch accepts 1.3. It then starts the reader goroutine, which runs
// until the connection is lost or closed (see Done). ctx bounds the connect and
// the handshake only; without a deadline the handshake gives up after 10 s.
// log may be nil.
func Dial(ctx context.Context, socketPath string, log *zap.Logger) (*Conn, error) {
	if log == nil {
		log = zap.NewNop()
	}
	var d net.Dialer
	nc, err := d.DialContext(ctx, "unix", socketPath)
	if err != nil {
		return nil, fmt.Errorf("ofconn: dial %s: %w", socketPath, err)
	}
	c := &Conn{
		nc:     nc,
		path:   socketPath,
		log:    log.With(zap.String("socket", socketPath)),
		bw:     bufio.NewWriterSize(nc, writeBufferSize),
		br:     bufio.NewReaderSize(nc, readBufferSize),
		echoCh: make(chan []byte, 16),
		done:   make(chan struct{}),
	}
	if err := c.handshake(ctx); err != nil {
		nc.Close()
		return nil, fmt.Errorf("ofconn: %s: %w", socketPath, err)
	}
	go c.readLoop()
	go c.echoLoop()
	c.log.Debug("OpenFlow 1.3 session established")
	return c, nil
}

// handshake sends our HELLO and reads the switch's HELLO.
func (c *Conn) handshake(ctx context.Context) error {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultHandshakeTimeout)
	}
	c.nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	// common.NewHello advertises 1.0|1.5 whatever version it is given; send a
	// version bitmap with only bit 4 (OpenFlow 1.3) set.
	hello, err := common.NewHello(ofVersion)
	if err != nil {
		return err
	}
	vb := common.NewHelloElemVersionBitmap()
	vb.Bitmaps[0] = 1 << ofVersion
	hello.Elements = []common.HelloElem{vb}
	data, err := hello.MarshalBinary()
	if err != nil {
		return fmt.Errorf("encode hello: %w", err)
	}
	binary.BigEndian.PutUint32(data[4:8], c.nextXids(1))
	if _, err := c.nc.Write(data); err != nil { // not buffered: nothing else is written yet
		return fmt.Errorf("send hello: %w", err)
	}

	msg, err := c.readMsg()
	if err != nil {
		return fmt.Errorf("read hello: %w", ctxErr(ctx, err))
	}
	if msg[1] == ofptError {
		me := parseError(msg)
		me.Index, me.Request = -1, "hello"
		return fmt.Errorf("switch refused the session: %w", me)
	}
	if msg[1] != ofptHello {
		return fmt.Errorf("expected HELLO from the switch, got message type %d", msg[1])
	}
	if !helloAccepts13(msg) {
		// The switch follows its HELLO with an OFPET_HELLO_FAILED error and
		// hangs up; the usual cause is the bridge's protocols column.
		return fmt.Errorf("switch does not speak OpenFlow 1.3 (HELLO version %d); "+
			"check the bridge's protocols column", msg[0])
	}
	if !stop() {
		// ctx ended and its deadline may land after we clear it.
		return ctx.Err()
	}
	c.nc.SetDeadline(time.Time{})
	return nil
}

// helloAccepts13 reports whether a peer HELLO allows an OpenFlow 1.3 session:
// its version bitmap has bit 4 set, or, without a bitmap, its version is ≥ 1.3.
func helloAccepts13(msg []byte) bool {
	rest := msg[headerLen:]
	for len(rest) >= 4 {
		typ := binary.BigEndian.Uint16(rest[0:2])
		l := int(binary.BigEndian.Uint16(rest[2:4]))
		if l < 4 || l > len(rest) {
			break
		}
		if typ == common.HelloElemType_VersionBitmap && l >= 8 {
			return binary.BigEndian.Uint32(rest[4:8])&(1<<ofVersion) != 0
		}
		padded := (l + 7) / 8 * 8 // elements are padded to 8 bytes
		if padded >= len(rest) {
			break
		}
		rest = rest[padded:]
	}
	return msg[0] >= ofVersion
}

// readMsg reads one whole message. The returned slice points into the read
// buffer and is valid until the next read.
func (c *Conn) readMsg() ([]byte, error) {
	hdr, err := c.br.Peek(headerLen)
	if err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(hdr[2:4]))
	if n < headerLen {
		return nil, fmt.Errorf("ofconn: protocol error: message length %d", n)
	}
	msg, err := c.br.Peek(n)
	if err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	c.br.Discard(n)
	return msg, nil
}

// readLoop drains the socket until it fails, dispatching every message.
func (c *Conn) readLoop() {
	for {
		msg, err := c.readMsg()
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = errors.New("ofconn: connection closed by the switch (vswitchd stopped or bridge deleted)")
			} else {
				err = fmt.Errorf("ofconn: connection lost: %w", err)
			}
			c.fail(err)
			return
		}
		c.dispatch(msg)
	}
}

func (c *Conn) dispatch(msg []byte) {
	typ := msg[1]
	xid := binary.BigEndian.Uint32(msg[4:8])
	switch typ {
	case ofptEchoRequest:
		reply := append([]byte(nil), msg...)
		reply[1] = ofptEchoReply
		select {
		case c.echoCh <- reply:
		default: // the echo writer is far behind; the switch will ask again
		}
		return
	case ofptHello:
		return
	}
	if p := c.lookup(xid); p != nil {
		p.onMsg(xid, msg)
		return
	}
	if c.monitorMessage(msg) {
		return
	}
	if typ == ofptError && c.log.Core().Enabled(zap.DebugLevel) {
		// Late errors of a call that gave up (its ctx ended) land here, maybe
		// by the thousand: debug level only.
		me := parseError(msg)
		c.log.Debug("OpenFlow error for no pending request", zap.Uint32("xid", xid), zap.Error(me))
	}
}

func (c *Conn) lookup(xid uint32) *pending {
	c.pendMu.Lock()
	defer c.pendMu.Unlock()
	for _, p := range c.pending {
		if p.owns(xid) {
			return p
		}
	}
	return nil
}

// register routes replies for the xids [base, base+n) (reserved with
// nextXids) to onMsg until the returned function is called. Anything onMsg
// reads must be set up before register is called.
func (c *Conn) register(base, n uint32, onMsg func(xid uint32, msg []byte)) (unregister func()) {
	p := &pending{base: base, n: n, onMsg: onMsg}
	c.pendMu.Lock()
	c.pending = append(c.pending, p)
	c.pendMu.Unlock()
	return func() {
		c.pendMu.Lock()
		defer c.pendMu.Unlock()
		for i, q := range c.pending {
			if q == p {
				// slices.Delete clears the vacated slot: a finished operation must not stay
				// reachable from the backing array (a flow dump holds every flow it read).
				c.pending = slices.Delete(c.pending, i, i+1)
				return
			}
		}
	}
}

// nextXids reserves n consecutive xids and returns the first.
func (c *Conn) nextXids(n uint32) uint32 { return c.xid.Add(n) - n + 1 }

func (c *Conn) echoLoop() {
	for {
		select {
		case <-c.done:
			return
		case reply := <-c.echoCh:
			// Best effort: a failed write fails the connection in write.
			_ = c.write(context.Background(), func(w *bufio.Writer) error {
				_, err := w.Write(reply)
				return err
			})
		}
	}
}

// write runs fill with the buffered writer under the write lock and flushes.
// fill should check ctx now and then and stop between two messages when it
// has ended; what it wrote is then flushed and the connection stays usable.
// If a write is still blocked writeGrace after ctx ended (the switch stopped
// reading), it is interrupted, and since a message may then be cut in half,
// the connection is failed.
func (c *Conn) write(ctx context.Context, fill func(w *bufio.Writer) error) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := c.Err(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}

	c.dlMu.Lock()
	c.dlGen++
	gen := c.dlGen
	c.dlMu.Unlock()
	stop := context.AfterFunc(ctx, func() {
		c.dlMu.Lock()
		defer c.dlMu.Unlock()
		if c.dlGen == gen {
			c.nc.SetWriteDeadline(time.Now().Add(writeGrace))
		}
	})

	fillErr := fill(c.bw)
	flushErr := c.bw.Flush()

	stopped := stop()
	c.dlMu.Lock()
	c.dlGen++
	if !stopped {
		c.nc.SetWriteDeadline(time.Time{})
	}
	c.dlMu.Unlock()

	if flushErr != nil {
		err := fmt.Errorf("ofconn: write: %w", ctxErr(ctx, flushErr))
		c.fail(err)
		return err
	}
	return fillErr
}

// ctxErr returns ctx's error instead of err when err is the timeout that a
// deadline armed from ctx caused.
func ctxErr(ctx context.Context, err error) error {
	var ne net.Error
	if ctx.Err() != nil && errors.As(err, &ne) && ne.Timeout() {
		return ctx.Err()
	}
	return err
}

// fail records why the connection ended, closes it and releases all waiters.
func (c *Conn) fail(err error) {
	c.closeOnce.Do(func() {
		c.errMu.Lock()
		c.err = err
		c.errMu.Unlock()
		close(c.done)
		c.nc.Close()
		if err != ErrClosed {
			c.log.Warn("OpenFlow connection lost", zap.Error(err))
		}
	})
}

// Close closes the connection. Calls waiting for replies return ErrClosed.
// Close is idempotent.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

// Done returns a channel that is closed when the connection ends: lost (the
// switch hung up because vswitchd stopped or the bridge was deleted, or a
// protocol or write error) or closed with Close. Err then says why.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err returns nil while the connection is up, and afterwards the reason it
// ended (ErrClosed after Close).
func (c *Conn) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// SocketPath returns the management socket path given to Dial.
func (c *Conn) SocketPath() string { return c.path }

// wait blocks until sig fires, ctx ends or the connection ends.
func (c *Conn) wait(ctx context.Context, sig <-chan struct{}) error {
	select {
	case <-sig:
		return nil
	default:
	}
	select {
	case <-sig:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.done:
		select {
		case <-sig: // the reply arrived just before the end
			return nil
		default:
		}
		return c.Err()
	}
}
