package rabbitmq

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestNodeLifeCycle starts a private node, checks that it listens on 127.0.0.1 only, that
// rabbitmqctl reaches it, that a broker restart keeps durable data, that closing connections
// from the broker side reaches a client, and that Close (called again by the test's cleanup,
// which must be harmless) leaves nothing behind.
func TestNodeLifeCycle(t *testing.T) {
	n := StartForTestWith(t, Options{TLS: true})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	checkLoopbackOnly(t, n)
	checkTLS(t, n)

	conn, err := amqp.Dial(n.URL())
	if err != nil {
		t.Fatalf("dial %s: %v", n.URL(), err)
	}
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("kept", true, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.QueueDeclare("transient", false, false, false, false, amqp.Table{"x-expires": int32(1800000)}); err != nil {
		t.Fatal(err)
	}
	qs, err := n.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Queue{}
	for _, q := range qs {
		byName[q.Name] = q
	}
	if q := byName["kept"]; !q.Durable || q.AutoDelete || q.Exclusive {
		t.Errorf("queue kept: got %+v, want durable", q)
	}
	if q := byName["transient"]; q.Durable || !hasInt(q.Arguments, "x-expires", 1800000) {
		t.Errorf("queue transient: got %+v, want non-durable with x-expires 1800000", q)
	}

	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	if err := n.CloseAllConnections(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	select {
	case e := <-closed:
		if e == nil || e.Code != amqp.ConnectionForced {
			t.Errorf("close from the broker: got %v, want 320 CONNECTION_FORCED", e)
		}
	case <-ctx.Done():
		t.Fatal("the client never saw its connection closed by the broker")
	}

	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	qs, err = n.ListQueues(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, q := range qs {
		names = append(names, q.Name)
	}
	if strings.Join(names, ",") != "kept" {
		t.Errorf("queues after restart: got %v, want only the durable one (kept)", names)
	}

	server, epmd := n.server, n.epmd
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if server.alive() || epmd.alive() {
		t.Errorf("processes left after Close: server %v, epmd %v", server.alive(), epmd.alive())
	}
	if _, err := os.Stat(n.Dir()); !os.IsNotExist(err) {
		t.Errorf("directory %s left after Close (%v)", n.Dir(), err)
	}
	if !blockFree(n.Ports().AMQP, 1) {
		t.Errorf("AMQP port %d still bound after Close", n.Ports().AMQP)
	}
}

// checkLoopbackOnly checks, in /proc/net/tcp and tcp6, that the node's ports (AMQP, AMQPS,
// epmd, distribution) listen on 127.0.0.1 and nowhere else.
func checkLoopbackOnly(t *testing.T, n *Node) {
	t.Helper()
	ports := map[int]bool{n.ports.AMQP: true, n.ports.AMQPS: true, n.ports.EPMD: true, n.ports.Distribution: true}
	seen := 0
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(table)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 4 || f[3] != "0A" { // 0A: LISTEN
				continue
			}
			addr, portHex, _ := strings.Cut(f[1], ":")
			port, err := strconv.ParseInt(portHex, 16, 32)
			if err != nil || !ports[int(port)] {
				continue
			}
			seen++
			if addr != "0100007F" { // 127.0.0.1, little-endian
				t.Errorf("port %d listens on %s (%s), want 127.0.0.1 only", port, addr, table)
			}
		}
	}
	if seen != len(ports) {
		t.Errorf("found %d listeners on the node's ports, want %d (AMQP, AMQPS, epmd, distribution)", seen, len(ports))
	}
}

// checkTLS dials the AMQPS listener, verifying the certificate with the node's CA.
func checkTLS(t *testing.T, n *Node) {
	t.Helper()
	files, ok := n.TLSFiles()
	if !ok {
		t.Fatal("no TLS files")
	}
	pemCA, err := os.ReadFile(files.CACert)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemCA)
	url := fmt.Sprintf("amqps://%s:%s@localhost:%d/", User, Password, n.Ports().AMQPS)
	conn, err := amqp.DialTLS(url, &tls.Config{RootCAs: roots, ServerName: "localhost"})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	_ = conn.Close()
}

func hasInt(a Arguments, name string, want int64) bool {
	got, ok := a.Int(name)
	return ok && got == want
}
