package ofconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"sync"

	of13 "antrea.io/libOpenflow/openflow13"
	"antrea.io/libOpenflow/util"
)

// TableAll selects every table in FlowStats (OFPTT_ALL).
const TableAll = of13.OFPTT_ALL

const (
	ofpmpFlow          = 1 // OFPMP_FLOW
	ofpmpfReplyMore    = 1 // OFPMPF_REPLY_MORE
	multipartHdrLen    = 16
	flowStatsFixedLen  = 48 // ofp_flow_stats up to its ofp_match
	ofpMatchTypeOXM    = 1
	ofpMatchHdrLen     = 4
	minFlowStatsLength = flowStatsFixedLen + 8 // fixed part + an empty, padded match
)

// FlowStat is one entry of an OFPMP_FLOW reply (struct ofp_flow_stats), parsed
// by hand.
type FlowStat struct {
	TableID     uint8
	Priority    uint16
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16
	// Flags are the OFPFF_* flags the flow was added with.
	Flags       uint16
	PacketCount uint64
	ByteCount   uint64
	DurationSec uint32
	// Match holds the OXM fields only: the payload of ofp_match after its
	// 4-byte type+length header, without the trailing padding; that is, a
	// concatenation of OXM TLVs, in the order the switch reports them.
	Match []byte
	// Instructions is the raw instruction list exactly as the switch sent it.
	Instructions []byte
}

// FlowStats dumps the flows of one table, or of every table with TableAll,
// whose cookie matches cookie under cookieMask (cookieMask 0 matches all),
// with out_port and out_group ANY. It gathers every reply message until one
// arrives without OFPMPF_REPLY_MORE. The Match and Instructions slices of the
// result share a few large buffers (one per reply message); they are capped,
// so appending to one never overwrites another.
func (c *Conn) FlowStats(ctx context.Context, table uint8, cookie, cookieMask uint64) ([]FlowStat, error) {
	d := &flowDump{done: make(chan struct{})}
	if err := c.dumpFlows(ctx, table, cookie, cookieMask, d); err != nil {
		return nil, err
	}
	return d.flows, nil
}

// EachFlowStat dumps flows like FlowStats but hands each entry to fn as it is read,
// without keeping any: fn runs on the connection's reader goroutine, must not block, and
// must copy what it keeps of the entry's Match and Instructions, which point into the
// connection's read buffer and are valid only during the call. If fn returns an error,
// the dump stops calling it and EachFlowStat returns that error once the switch has sent
// the rest. fn is never called after EachFlowStat returned. Reading a large flow table this
// way needs no memory beyond what fn keeps.
func (c *Conn) EachFlowStat(ctx context.Context, table uint8, cookie, cookieMask uint64, fn func(*FlowStat) error) error {
	d := &flowDump{done: make(chan struct{}), each: fn}
	defer d.finish()
	return c.dumpFlows(ctx, table, cookie, cookieMask, d)
}

// dumpFlows sends one flow stats request and waits until d has every reply.
func (c *Conn) dumpFlows(ctx context.Context, table uint8, cookie, cookieMask uint64, d *flowDump) error {
	req := of13.NewFlowStatsRequest()
	req.TableId = table
	req.Cookie = cookie
	req.CookieMask = cookieMask
	mp := &of13.MultipartRequest{Header: of13.NewOfp13Header(), Type: of13.MultipartType_Flow, Body: []util.Message{req}}
	mp.Header.Type = ofptMultipartReq

	xid := c.nextXids(1)
	defer c.register(xid, 1, d.onMsg)()
	if err := c.write(ctx, func(w *bufio.Writer) error {
		data, err := encode(mp)
		if err != nil {
			return err
		}
		writeMsg(w, data, xid)
		return nil
	}); err != nil {
		return fmt.Errorf("ofconn: flow stats: %w", err)
	}
	if err := c.wait(ctx, d.done); err != nil {
		return fmt.Errorf("ofconn: flow stats: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return fmt.Errorf("ofconn: flow stats: %w", d.err)
	}
	return nil
}

// flowDump gathers the reply messages of one flow dump: into flows, or through each.
type flowDump struct {
	mu    sync.Mutex
	flows []FlowStat
	// each, when set, receives every entry instead of flows (EachFlowStat).
	each func(*FlowStat) error
	// finished is set when the caller has returned: each must not run any more.
	finished bool
	err      error
	done     chan struct{}
}

// finish stops further calls of each; it waits for a call in progress.
func (d *flowDump) finish() {
	d.mu.Lock()
	d.finished = true
	d.mu.Unlock()
}

func (d *flowDump) onMsg(xid uint32, msg []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.done:
		return // finished (an error or the last reply); ignore stragglers
	default:
	}
	if d.finished {
		return
	}
	switch msg[1] {
	case ofptError:
		me := parseError(msg)
		me.Index, me.Request = -1, "flow stats request"
		d.err = me
	case ofptMultipartReply:
		if len(msg) < multipartHdrLen {
			d.err = fmt.Errorf("multipart reply of %d bytes", len(msg))
			break
		}
		if typ := binary.BigEndian.Uint16(msg[8:10]); typ != ofpmpFlow {
			d.err = fmt.Errorf("multipart reply of type %d, want OFPMP_FLOW", typ)
			break
		}
		more := binary.BigEndian.Uint16(msg[10:12])&ofpmpfReplyMore != 0
		if d.each != nil {
			if d.err == nil {
				d.err = eachFlowStat(msg[multipartHdrLen:], d.each)
			}
			if more {
				return // the rest is read (and, after an error, ignored) before returning
			}
			break
		}
		// Copy the body once: the FlowStats point into it.
		body := append([]byte(nil), msg[multipartHdrLen:]...)
		flows, err := parseFlowStats(d.flows, body)
		d.flows = flows
		if err != nil {
			d.err = err
			break
		}
		if more {
			return // more to come
		}
	default:
		return
	}
	close(d.done)
}

// eachFlowStat parses the ofp_flow_stats entries in body one by one and calls fn with
// each; the entry's slices point into body.
func eachFlowStat(body []byte, fn func(*FlowStat) error) error {
	var one [1]FlowStat
	for off := 0; off < len(body); {
		fs, n, err := parseFlowStat(one[:0], body, off)
		if err != nil {
			return err
		}
		if err := fn(&fs[0]); err != nil {
			return err
		}
		off += n
	}
	return nil
}

// parseFlowStats appends the ofp_flow_stats entries in body to flows. The
// returned Match and Instructions slices point into body.
func parseFlowStats(flows []FlowStat, body []byte) ([]FlowStat, error) {
	for off := 0; off < len(body); {
		var n int
		var err error
		if flows, n, err = parseFlowStat(flows, body, off); err != nil {
			return flows, err
		}
		off += n
	}
	return flows, nil
}

// parseFlowStat appends the ofp_flow_stats entry at offset off of body to flows and
// returns its length.
func parseFlowStat(flows []FlowStat, body []byte, off int) ([]FlowStat, int, error) {
	rest := body[off:]
	if len(rest) < minFlowStatsLength {
		return flows, 0, fmt.Errorf("truncated flow stats entry at offset %d (%d bytes left)", off, len(rest))
	}
	l := int(binary.BigEndian.Uint16(rest[0:2]))
	if l < minFlowStatsLength || l > len(rest) {
		return flows, 0, fmt.Errorf("flow stats entry at offset %d has bad length %d", off, l)
	}
	e := rest[:l:l]
	if mt := binary.BigEndian.Uint16(e[48:50]); mt != ofpMatchTypeOXM {
		return flows, 0, fmt.Errorf("flow stats entry at offset %d has match type %d, want OXM", off, mt)
	}
	ml := int(binary.BigEndian.Uint16(e[50:52])) // includes the 4-byte header, not the padding
	padded := (ml + 7) / 8 * 8
	if ml < ofpMatchHdrLen || flowStatsFixedLen+padded > l {
		return flows, 0, fmt.Errorf("flow stats entry at offset %d has bad match length %d", off, ml)
	}
	mEnd := flowStatsFixedLen + ml
	flows = append(flows, FlowStat{
		TableID:      e[2],
		DurationSec:  binary.BigEndian.Uint32(e[4:8]),
		Priority:     binary.BigEndian.Uint16(e[12:14]),
		IdleTimeout:  binary.BigEndian.Uint16(e[14:16]),
		HardTimeout:  binary.BigEndian.Uint16(e[16:18]),
		Flags:        binary.BigEndian.Uint16(e[18:20]),
		Cookie:       binary.BigEndian.Uint64(e[24:32]),
		PacketCount:  binary.BigEndian.Uint64(e[32:40]),
		ByteCount:    binary.BigEndian.Uint64(e[40:48]),
		Match:        e[flowStatsFixedLen+ofpMatchHdrLen : mEnd : mEnd],
		Instructions: e[flowStatsFixedLen+padded:],
	})
	return flows, l, nil
}
