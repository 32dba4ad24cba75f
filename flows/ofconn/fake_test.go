package ofconn

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeSwitch accepts one connection on a unix socket, does the OpenFlow 1.3
// handshake, and hands the switch side of the connection to the test.
func fakeSwitch(t *testing.T) (c *Conn, sw net.Conn) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ofconn-fake")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "br.mgmt")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		s, err := l.Accept()
		if err != nil {
			close(accepted)
			return
		}
		hello := []byte{4, 0, 0, 16, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 1 << 4}
		s.Write(hello)
		accepted <- s
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err = Dial(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	sw = <-accepted
	if sw == nil {
		t.Fatal("fake switch: accept failed")
	}
	t.Cleanup(func() { sw.Close() })
	// Read the client's HELLO and check it offers exactly OpenFlow 1.3.
	msg := readFake(t, sw)
	if msg[0] != 4 || msg[1] != ofptHello || len(msg) != 16 ||
		binary.BigEndian.Uint16(msg[8:10]) != 1 || binary.BigEndian.Uint32(msg[12:16]) != 1<<4 {
		t.Fatalf("client HELLO = %x, want version 4 with a version bitmap of only 1<<4", msg)
	}
	return c, sw
}

func readFake(t *testing.T, sw net.Conn) []byte {
	t.Helper()
	sw.SetReadDeadline(time.Now().Add(5 * time.Second))
	hdr := make([]byte, 8)
	if _, err := io.ReadFull(sw, hdr); err != nil {
		t.Fatal(err)
	}
	msg := make([]byte, binary.BigEndian.Uint16(hdr[2:4]))
	copy(msg, hdr)
	if _, err := io.ReadFull(sw, msg[8:]); err != nil {
		t.Fatal(err)
	}
	return msg
}

func TestEchoRequestIsAnswered(t *testing.T) {
	c, sw := fakeSwitch(t)
	sw.Write([]byte{4, ofptEchoRequest, 0, 11, 0, 0, 0, 77, 'a', 'b', 'c'})
	reply := readFake(t, sw)
	if want := []byte{4, ofptEchoReply, 0, 11, 0, 0, 0, 77, 'a', 'b', 'c'}; !bytes.Equal(reply, want) {
		t.Fatalf("echo reply %x, want %x", reply, want)
	}
	select {
	case <-c.Done():
		t.Fatalf("connection ended: %v", c.Err())
	default:
	}
}

// A switch that stops reading must not hang a writer forever: once ctx has
// ended and the grace period passed, the blocked write fails the connection.
func TestBlockedWriteFailsConnection(t *testing.T) {
	c, _ := fakeSwitch(t) // the fake never reads again
	flows := ipFlows(100000, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := c.Apply(ctx, flows)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Apply = %v, want context.DeadlineExceeded", err)
	}
	if took := time.Since(start); took > 100*time.Millisecond+writeGrace+2*time.Second {
		t.Errorf("Apply took %v to give up", took)
	}
	t.Logf("Apply: %v", err)
	select {
	case <-c.Done():
	case <-time.After(time.Second):
		t.Fatalf("connection not failed after a cut write (Apply: %v)", err)
	}
}

// Replies are matched by xid: a stray error for an unknown xid neither ends
// the connection nor lands on a waiting call.
func TestStrayErrorIsIgnored(t *testing.T) {
	c, sw := fakeSwitch(t)
	done := make(chan error, 1)
	go func() { done <- c.Barrier(context.Background()) }()
	req := readFake(t, sw)
	if req[1] != ofptBarrierRequest {
		t.Fatalf("got message type %d, want BARRIER_REQUEST", req[1])
	}
	xid := binary.BigEndian.Uint32(req[4:8])
	stray := []byte{4, ofptError, 0, 12, 0, 0, 0, 0, 0, 3, 0, 2}
	binary.BigEndian.PutUint32(stray[4:], xid+1000)
	sw.Write(stray)
	sw.Write([]byte{4, ofptBarrierReply, 0, 8, req[4], req[5], req[6], req[7]})
	if err := <-done; err != nil {
		t.Fatalf("Barrier = %v", err)
	}
}

// Probe keeps a connection whose switch answers its echo requests, and fails one whose
// switch stops answering, naming of_inactivity_probe.
func TestProbeFailsASilentSwitch(t *testing.T) {
	c, sw := fakeSwitch(t)
	c.Probe(50 * time.Millisecond)
	for range 3 {
		req := readFake(t, sw)
		if req[1] != ofptEchoRequest {
			t.Fatalf("probe sent message type %d, want an echo request", req[1])
		}
		req[1] = ofptEchoReply
		if _, err := sw.Write(req); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-c.Done():
		t.Fatalf("connection failed although the switch answered: %v", c.Err())
	default:
	}
	// The switch goes silent: the next unanswered probe fails the connection.
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection still up 5 s after the switch stopped answering")
	}
	if err := c.Err(); err == nil || !strings.Contains(err.Error(), "of_inactivity_probe") {
		t.Errorf("Err = %v, want the probe named", err)
	}
}
