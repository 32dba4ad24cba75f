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
	req := of13.NewFlowStatsRequest()
	req.TableId = table
	req.Cookie = cookie
	req.CookieMask = cookieMask
	mp := &of13.MultipartRequest{Header: of13.NewOfp13Header(), Type: of13.MultipartType_Flow, Body: []util.Message{req}}
	mp.Header.Type = ofptMultipartReq

	xid := c.nextXids(1)
	d := &flowDump{done: make(chan struct{})}
	defer c.register(xid, 1, d.onMsg)()
	if err := c.write(ctx, func(w *bufio.Writer) error {
		data, err := encode(mp)
		if err != nil {
			return err
		}
		writeMsg(w, data, xid)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("ofconn: flow stats: %w", err)
	}
	if err := c.wait(ctx, d.done); err != nil {
		return nil, fmt.Errorf("ofconn: flow stats: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil, fmt.Errorf("ofconn: flow stats: %w", d.err)
	}
	return d.flows, nil
}

// flowDump gathers the reply messages of one FlowStats call.
type flowDump struct {
	mu    sync.Mutex
	flows []FlowStat
	err   error
	done  chan struct{}
}

func (d *flowDump) onMsg(xid uint32, msg []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.done:
		return // finished (an error or the last reply); ignore stragglers
	default:
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
		// Copy the body once: the FlowStats point into it.
		body := append([]byte(nil), msg[multipartHdrLen:]...)
		flows, err := parseFlowStats(d.flows, body)
		d.flows = flows
		if err != nil {
			d.err = err
			break
		}
		if binary.BigEndian.Uint16(msg[10:12])&ofpmpfReplyMore != 0 {
			return // more to come
		}
	default:
		return
	}
	close(d.done)
}

// parseFlowStats appends the ofp_flow_stats entries in body to flows. The
// returned Match and Instructions slices point into body.
func parseFlowStats(flows []FlowStat, body []byte) ([]FlowStat, error) {
	for off := 0; off < len(body); {
		rest := body[off:]
		if len(rest) < minFlowStatsLength {
			return flows, fmt.Errorf("truncated flow stats entry at offset %d (%d bytes left)", off, len(rest))
		}
		l := int(binary.BigEndian.Uint16(rest[0:2]))
		if l < minFlowStatsLength || l > len(rest) {
			return flows, fmt.Errorf("flow stats entry at offset %d has bad length %d", off, l)
		}
		e := rest[:l:l]
		if mt := binary.BigEndian.Uint16(e[48:50]); mt != ofpMatchTypeOXM {
			return flows, fmt.Errorf("flow stats entry at offset %d has match type %d, want OXM", off, mt)
		}
		ml := int(binary.BigEndian.Uint16(e[50:52])) // includes the 4-byte header, not the padding
		padded := (ml + 7) / 8 * 8
		if ml < ofpMatchHdrLen || flowStatsFixedLen+padded > l {
			return flows, fmt.Errorf("flow stats entry at offset %d has bad match length %d", off, ml)
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
		off += l
	}
	return flows, nil
}
