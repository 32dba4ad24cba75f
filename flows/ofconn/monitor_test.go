package ofconn

import (
	"bytes"
	"context"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"antrea.io/libOpenflow/util"
)

// unhex decodes a hex dump with blanks.
func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The request is what ovs-ofctl -O OpenFlow13 monitor sends (captured from Open vSwitch
// 3.1's ovs-ofctl), but for the monitor id and the flags: added, deleted, modified and
// actions, without the initial dump and without this connection's own changes.
func TestMonitorRequestBytes(t *testing.T) {
	ovsOfctl := unhex(t, `04 12 00 30 00 00 00 06 ff ff 00 00 00 00 00 00 4f 4e 46 00 00 00 07 4e
		00 00 00 00 00 3f 00 04 ff ff ff ff ff 00 00 00 00 01 00 04 00 00 00 00`)
	want := bytes.Clone(ovsOfctl)
	copy(want[4:8], []byte{0, 0, 0, 0})   // xid: filled in when written
	copy(want[24:28], []byte{0, 0, 0, 1}) // monitor id 1
	copy(want[28:30], []byte{0, 0x1e})    // add | delete | modify | actions
	if got := monitorRequest(); !bytes.Equal(got, want) {
		t.Errorf("monitor request\n got %x\nwant %x", got, want)
	}
}

// The updates are what Open vSwitch 3.1 sent to ovs-ofctl: the initial NORMAL flow with its
// instructions, and a flow added by another client (table 3, priority 7, cookie 0x2a,
// in_port=1, drop).
func TestEachFlowUpdate(t *testing.T) {
	header := "04 13 00 00 00 00 00 06 ff ff 00 00 00 00 00 00 4f 4e 46 00 00 00 07 4e"
	normal := `00 38 00 00 00 00 00 00 00 00 00 00 00 04 00 00 00 00 00 00 00 00 00 00
		00 01 00 04 00 00 00 00 00 04 00 18 00 00 00 00 00 00 00 10 ff ff ff fa 00 00 00 00 00 00 00 00`
	added := `00 28 00 00 00 00 00 07 00 00 00 00 00 0c 03 00 00 00 00 00 00 00 00 2a
		00 01 00 0c 80 00 00 04 00 00 00 01 00 00 00 00`
	var got []FlowUpdate
	err := eachFlowUpdate(unhex(t, header+normal+added), func(u *FlowUpdate) {
		c := *u
		c.Match, c.Instructions = bytes.Clone(u.Match), bytes.Clone(u.Instructions)
		got = append(got, c)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 {
		t.Fatalf("%d updates, want 2", len(got))
	}
	if u := got[0]; u.Event != FlowAdded || u.TableID != 0 || u.Priority != 0 || len(u.Match) != 0 ||
		!bytes.Equal(u.Instructions, unhex(t, "00 04 00 18 00 00 00 00 00 00 00 10 ff ff ff fa 00 00 00 00 00 00 00 00")) {
		t.Errorf("first update %+v", u)
	}
	if u := got[1]; u.Event != FlowAdded || u.TableID != 3 || u.Priority != 7 || u.Cookie != 0x2a ||
		!bytes.Equal(u.Match, unhex(t, "80 00 00 04 00 00 00 01")) || len(u.Instructions) != 0 {
		t.Errorf("second update %+v", u)
	}
	for _, bad := range []string{
		header + "00 02",             // a truncated entry
		header + "00 30" + added[5:], // a length beyond the message
		header + "00 28 00 00 00 00 00 07 00 00 00 00 00 40 03 00 00 00 00 00 00 00 00 2a 00 01 00 0c 80 00 00 04 00 00 00 01 00 00 00 00", // match longer than the entry
		"04 13 00 00 00 00 00 06 00 01 00 00 00 00 00 00 4f 4e 46 00 00 00 07 4e",                                                          // a flow stats reply
	} {
		if err := eachFlowUpdate(unhex(t, bad), func(*FlowUpdate) { t.Error("update from a malformed message") }); err == nil {
			t.Errorf("no error for %s", bad)
		}
	}
}

// On a real switch: changes made with ovs-ofctl are reported with their table, priority,
// cookie, match and instructions; this connection's own changes are not.
func TestMonitorFlowsOnSwitch(t *testing.T) {
	o := startOVS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := Dial(ctx, o.mgmt(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	updates := make(chan FlowUpdate, 16)
	if err := c.MonitorFlows(ctx, func(u *FlowUpdate) {
		cp := *u
		cp.Match, cp.Instructions = bytes.Clone(u.Match), bytes.Clone(u.Instructions)
		updates <- cp
	}, func(bool) {}); err != nil {
		t.Fatal(err)
	}
	next := func(what string) FlowUpdate {
		t.Helper()
		select {
		case u := <-updates:
			return u
		case <-ctx.Done():
			t.Fatalf("no update for %s", what)
		}
		return FlowUpdate{}
	}
	o.ofctl(t, "add-flow", "br0", "table=3,priority=7,cookie=0x2a,in_port=1,actions=drop")
	if u := next("add-flow"); u.Event != FlowAdded || u.TableID != 3 || u.Priority != 7 || u.Cookie != 0x2a || len(u.Match) == 0 {
		t.Errorf("add-flow reported as %+v", u)
	}
	o.ofctl(t, "mod-flows", "br0", "table=3,in_port=1,actions=NORMAL")
	if u := next("mod-flows"); u.Event != FlowModified || u.TableID != 3 || len(u.Instructions) == 0 {
		t.Errorf("mod-flows reported as %+v", u)
	}
	// Our own flow-mod is not reported: the next update is the deletion by ovs-ofctl.
	if err := c.Bundle(ctx, []util.Message{classifyFlow(0xd7f1)}); err != nil {
		t.Fatal(err)
	}
	o.ofctl(t, "del-flows", "br0", "table=3")
	if u := next("del-flows"); u.Event != FlowDeleted || u.TableID != 3 || u.Priority != 7 {
		t.Errorf("del-flows reported as %+v (our own bundle must not be)", u)
	}
}
