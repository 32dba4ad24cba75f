package ofconn

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"go.uber.org/zap"
)

// The ONF flow monitor (EXT-187), which Open vSwitch implements for OpenFlow 1.3 as an ONF
// experimenter multipart request and reply. The request body (as ovs-ofctl -O OpenFlow13
// monitor sends it, checked byte for byte against Open vSwitch 3.1):
//
//	id u32, flags u16, match_len u16, out_port u32, table_id u8, zeros[3], ofp_match
//
// Updates arrive, for as long as the connection lives, as multipart replies with xid 0 (the
// initial reply, if any, carries the request's); each holds update entries:
//
//	length u16, event u16 (0 added, 1 deleted, 2 modified, 3 abbreviated),
//	reason u16, priority u16, idle_timeout u16, hard_timeout u16, match_len u16,
//	table_id u8, pad u8, cookie u64, ofp_match (padded to 8), instructions
//
// When its buffer for a slow controller fills, the switch stops sending updates and says
// so with an ONF experimenter message (PAUSED), and RESUMED once it has caught up.
const (
	ofpmpExperimenter     = 0xffff
	onfFlowMonitor        = 1870 // ONFMP_FLOW_MONITOR
	onfFlowMonitorPaused  = 1871 // ONFT_FLOW_MONITOR_PAUSED
	onfFlowMonitorResumed = 1872 // ONFT_FLOW_MONITOR_RESUMED

	monitorAdd     = 1 << 1
	monitorDelete  = 1 << 2
	monitorModify  = 1 << 3
	monitorActions = 1 << 4

	flowUpdateFullLen = 24
)

// FlowEvent is what happened to a flow.
type FlowEvent uint8

// Flow events, as the switch numbers them.
const (
	FlowAdded FlowEvent = iota
	FlowDeleted
	FlowModified
)

func (e FlowEvent) String() string {
	switch e {
	case FlowAdded:
		return "added"
	case FlowDeleted:
		return "deleted"
	case FlowModified:
		return "modified"
	}
	return fmt.Sprintf("FlowEvent(%d)", uint8(e))
}

// FlowUpdate is one change of a flow made by another OpenFlow client (or by a learn
// action, or by expiry). Match and Instructions point into the connection's read buffer
// and are valid only during the call: copy what you keep.
type FlowUpdate struct {
	Event       FlowEvent
	Reason      uint16 // OFPRR_* for deletions
	TableID     uint8
	Priority    uint16
	Cookie      uint64
	IdleTimeout uint16
	HardTimeout uint16
	// Match holds the OXM fields, as FlowStat.Match does.
	Match []byte
	// Instructions are the flow's instructions (empty for a deletion).
	Instructions []byte
}

// MonitorFlows asks the switch to report every flow added, deleted or modified on the
// bridge by anyone but this connection (whose own changes are not reported), in every
// table, with the flows' instructions. onUpdate receives each change; onPause(true) says
// the switch paused the updates (some were lost), onPause(false) that it resumed them.
// Both run on the connection's reader goroutine and must not block. It returns once the
// switch has accepted the request (a barrier confirms it), or its refusal; the monitor
// then runs until the connection ends.
func (c *Conn) MonitorFlows(ctx context.Context, onUpdate func(*FlowUpdate), onPause func(paused bool)) error {
	xid := c.nextXids(1)
	refused := make(chan error, 1)
	h := &onfHandler{update: onUpdate, paused: onPause, log: c.log}
	c.register(xid, 1, func(_ uint32, msg []byte) {
		switch msg[1] {
		case ofptError:
			me := parseError(msg)
			me.Index, me.Request = -1, "flow monitor request"
			select {
			case refused <- me:
			default:
			}
		case ofptMultipartReply:
			h.updates(msg)
		}
	})
	c.onMonitor.Store(h)
	if err := c.write(ctx, func(w *bufio.Writer) error {
		writeMsg(w, monitorRequest(), xid)
		return nil
	}); err != nil {
		return fmt.Errorf("ofconn: flow monitor: %w", err)
	}
	if err := c.Barrier(ctx); err != nil {
		return fmt.Errorf("ofconn: flow monitor: %w", err)
	}
	select {
	case err := <-refused:
		return fmt.Errorf("ofconn: the switch refused the flow monitor: %w", err)
	default:
		return nil
	}
}

// monitorRequest is the ONF flow monitor request: every table, any out_port, added,
// deleted and modified flows with their instructions; the xid is filled in by writeMsg.
func monitorRequest() []byte {
	b := make([]byte, 48)
	putHeader(b, ofptMultipartReq, len(b), 0)
	binary.BigEndian.PutUint16(b[8:10], ofpmpExperimenter)
	binary.BigEndian.PutUint32(b[16:20], onfExperimenterID)
	binary.BigEndian.PutUint32(b[20:24], onfFlowMonitor)
	body := b[24:]
	binary.BigEndian.PutUint32(body[0:4], 1) // monitor id
	binary.BigEndian.PutUint16(body[4:6], monitorAdd|monitorDelete|monitorModify|monitorActions)
	binary.BigEndian.PutUint16(body[6:8], 4)           // match_len: an empty OXM ofp_match
	binary.BigEndian.PutUint32(body[8:12], 0xffffffff) // out_port: any
	body[12] = 0xff                                    // every table
	binary.BigEndian.PutUint16(body[16:18], 1)         // ofp_match type OXM
	binary.BigEndian.PutUint16(body[18:20], 4)         // ofp_match length: no fields
	return b
}

// eachFlowUpdate calls fn for every full update of a flow monitor reply.
func eachFlowUpdate(msg []byte, fn func(*FlowUpdate)) error {
	if len(msg) < 24 || binary.BigEndian.Uint16(msg[8:10]) != ofpmpExperimenter ||
		binary.BigEndian.Uint32(msg[16:20]) != onfExperimenterID || binary.BigEndian.Uint32(msg[20:24]) != onfFlowMonitor {
		return errors.New("not an ONF flow monitor reply")
	}
	rest := msg[24:]
	var u FlowUpdate
	for len(rest) > 0 {
		if len(rest) < 4 {
			return fmt.Errorf("flow update of %d bytes", len(rest))
		}
		n := int(binary.BigEndian.Uint16(rest[0:2]))
		event := binary.BigEndian.Uint16(rest[2:4])
		if n < 4 || n > len(rest) {
			return fmt.Errorf("flow update length %d of %d bytes left", n, len(rest))
		}
		e := rest[:n]
		rest = rest[n:]
		if event > uint16(FlowModified) {
			continue // abbreviated: only for this connection's own changes, which we do not ask for
		}
		if n < flowUpdateFullLen+4 {
			return fmt.Errorf("flow update of %d bytes", n)
		}
		matchLen := int(binary.BigEndian.Uint16(e[12:14]))
		padded := (matchLen + 7) / 8 * 8
		if matchLen < 4 || flowUpdateFullLen+padded > n {
			return fmt.Errorf("flow update with match length %d in %d bytes", matchLen, n)
		}
		m := e[flowUpdateFullLen:]
		if binary.BigEndian.Uint16(m[0:2]) != 1 || int(binary.BigEndian.Uint16(m[2:4])) != matchLen {
			return fmt.Errorf("flow update with a match of type %d, length %d", binary.BigEndian.Uint16(m[0:2]), binary.BigEndian.Uint16(m[2:4]))
		}
		u = FlowUpdate{
			Event:        FlowEvent(event),
			Reason:       binary.BigEndian.Uint16(e[4:6]),
			Priority:     binary.BigEndian.Uint16(e[6:8]),
			IdleTimeout:  binary.BigEndian.Uint16(e[8:10]),
			HardTimeout:  binary.BigEndian.Uint16(e[10:12]),
			TableID:      e[14],
			Cookie:       binary.BigEndian.Uint64(e[16:24]),
			Match:        m[4:matchLen],
			Instructions: e[flowUpdateFullLen+padded:],
		}
		fn(&u)
	}
	return nil
}

// onfHandler receives a flow monitor's updates and pause notices.
type onfHandler struct {
	update func(*FlowUpdate)
	paused func(bool)
	log    *zap.Logger
}

// updates hands a monitor reply's updates over; an unreadable one counts as lost updates.
func (h *onfHandler) updates(msg []byte) {
	if err := eachFlowUpdate(msg, h.update); err != nil {
		h.log.Warn("unreadable flow monitor update; treating it as lost", zap.Error(err))
		h.paused(true)
	}
}

// monitorMessage handles a message no request owns when it is the flow monitor's (an
// update, or a pause notice); it reports whether it was.
func (c *Conn) monitorMessage(msg []byte) bool {
	h := c.onMonitor.Load()
	if h == nil || len(msg) < 16 {
		return false
	}
	switch msg[1] {
	case ofptMultipartReply:
		if len(msg) < 24 || binary.BigEndian.Uint16(msg[8:10]) != ofpmpExperimenter ||
			binary.BigEndian.Uint32(msg[16:20]) != onfExperimenterID || binary.BigEndian.Uint32(msg[20:24]) != onfFlowMonitor {
			return false
		}
		h.updates(msg)
		return true
	case ofptExperimenter:
		if binary.BigEndian.Uint32(msg[8:12]) != onfExperimenterID {
			return false
		}
		switch binary.BigEndian.Uint32(msg[12:16]) {
		case onfFlowMonitorPaused:
			h.paused(true)
		case onfFlowMonitorResumed:
			h.paused(false)
		default:
			return false
		}
		return true
	}
	return false
}
