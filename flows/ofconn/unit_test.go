package ofconn

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	of13 "antrea.io/libOpenflow/openflow13"
)

// Our hand-written BUNDLE_ADD envelope is what libOpenflow would encode.
func TestBundleAddHeaderMatchesLibOpenflow(t *testing.T) {
	fm := arpResponderFlow(t, 0x42)
	inner, err := encode(fm)
	if err != nil {
		t.Fatal(err)
	}
	const id, xid = 7, 0x1234
	ba := of13.NewBundleAdd(&of13.BundleAdd{BundleID: id, Flags: of13.OFPBCT_ATOMIC, Message: fm})
	ba.Header.Xid = xid
	fm.Header.Xid = xid
	want, err := ba.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	var env [bundleAddHdrLen]byte
	putBundleAddHeader(env[:], id, xid, len(inner))
	w.Write(env[:])
	writeMsg(w, inner, xid)
	w.Flush()
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("bundle add\n got %x\nwant %x", buf.Bytes(), want)
	}
}

func TestParseFlowStatsRejectsMalformed(t *testing.T) {
	good := make([]byte, 64)
	binary.BigEndian.PutUint16(good[0:], 64)
	good[2] = 3
	binary.BigEndian.PutUint16(good[12:], 7)
	binary.BigEndian.PutUint64(good[24:], 0xabc)
	binary.BigEndian.PutUint16(good[48:], 1)  // OXM
	binary.BigEndian.PutUint16(good[50:], 12) // header + one 8-byte OXM
	copy(good[52:], []byte{0x80, 0, 0, 4, 0, 0, 0, 9})
	fs, err := parseFlowStats(nil, good)
	if err != nil || len(fs) != 1 || fs[0].TableID != 3 || fs[0].Priority != 7 || fs[0].Cookie != 0xabc ||
		!bytes.Equal(fs[0].Match, []byte{0x80, 0, 0, 4, 0, 0, 0, 9}) || len(fs[0].Instructions) != 0 {
		t.Fatalf("parse good entry: %+v, %v", fs, err)
	}
	if cap(fs[0].Match) != len(fs[0].Match) {
		t.Error("Match is not capped: appending to it would overwrite the instructions")
	}
	for name, mutate := range map[string]func(b []byte){
		"short length": func(b []byte) { binary.BigEndian.PutUint16(b[0:], 8) },
		"long length":  func(b []byte) { binary.BigEndian.PutUint16(b[0:], 200) },
		"match type":   func(b []byte) { binary.BigEndian.PutUint16(b[48:], 0) },
		"match length": func(b []byte) { binary.BigEndian.PutUint16(b[50:], 60) },
	} {
		b := bytes.Clone(good)
		mutate(b)
		if _, err := parseFlowStats(nil, b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	if _, err := parseFlowStats(nil, good[:40]); err == nil {
		t.Error("truncated entry: no error")
	}
}

func TestParseOXMsAndEqualMatch(t *testing.T) {
	// in_port=1, reg0=0x12340000/0xffff0000
	a := []byte{0x80, 0, 0, 4, 0, 0, 0, 1, 0, 1, 1, 8, 0x12, 0x34, 0, 0, 0xff, 0xff, 0, 0}
	oxms, err := ParseOXMs(a)
	if err != nil || len(oxms) != 2 {
		t.Fatalf("ParseOXMs: %+v, %v", oxms, err)
	}
	if oxms[0].Header() != 0x80000004 || oxms[1].Header() != 0x00010108 || !oxms[1].HasMask ||
		!bytes.Equal(oxms[1].Value, []byte{0x12, 0x34, 0, 0}) || !bytes.Equal(oxms[1].Mask, []byte{0xff, 0xff, 0, 0}) {
		t.Errorf("ParseOXMs = %+v", oxms)
	}
	b := append(bytes.Clone(a[8:]), a[:8]...)
	if !EqualMatch(a, b) {
		t.Error("EqualMatch is order-sensitive")
	}
	c := bytes.Clone(b)
	c[len(c)-1] = 2
	if EqualMatch(a, c) {
		t.Error("EqualMatch ignores values")
	}
	if _, err := ParseOXMs(a[:10]); err == nil {
		t.Error("ParseOXMs accepted a truncated TLV")
	}
}

func TestMessageErrorNames(t *testing.T) {
	msg := []byte{4, 1, 0, 16, 0, 0, 0, 9, 0, 3, 0, 2, 1, 2, 3, 4}
	me := parseError(msg)
	if me.Name() != "OFPBIC_BAD_TABLE_ID" || me.Xid != 9 || !bytes.Equal(me.Data, []byte{1, 2, 3, 4}) {
		t.Errorf("parseError = %+v (%s)", me, me.Name())
	}
	exp := []byte{4, 1, 0, 16, 0, 0, 0, 9, 0xff, 0xff, 0x09, 0x09, 0x4f, 0x4e, 0x46, 0x00}
	me = parseError(exp)
	if me.Name() != "OFPBFC_MSG_FAILED" || me.ExpType != 2313 || me.Code != 0 || me.Experimenter != onfExperimenterID {
		t.Errorf("parseError(experimenter) = %+v (%s)", me, me.Name())
	}
	nx := []byte{4, 1, 0, 16, 0, 0, 0, 9, 0xff, 0xff, 0, 3, 0, 0, 0x23, 0x20}
	if me = parseError(nx); me.Name() != "NXBRC_NXM_BAD_TYPE" {
		t.Errorf("parseError(nx) = %+v (%s)", me, me.Name())
	}
	be := &BundleError{Errors: []MessageError{{Index: 4, Type: 3, Code: 2}}}
	var got MessageError
	if !errors.As(error(be), &got) || got.Index != 4 {
		t.Errorf("errors.As(BundleError, MessageError) = %+v", got)
	}
}
