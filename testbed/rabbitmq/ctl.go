package rabbitmq

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"strings"
)

// Ctl runs rabbitmqctl against the node (never against another node: the node name, cookie
// and epmd port are the node's own) and returns its standard output.
func (n *Node) Ctl(ctx context.Context, args ...string) ([]byte, error) {
	full := append([]string{"-n", n.name}, args...)
	cmd := exec.CommandContext(ctx, ctlBinary, full...)
	cmd.Dir = n.dir
	cmd.Env = n.env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("rabbitmqctl %s: %w\n%s%s", strings.Join(args, " "), err,
			lastLines(stderr.String(), 10), lastLines(stdout.String(), 10))
	}
	return stdout.Bytes(), nil
}

// Queue is a queue as rabbitmqctl list_queues reports it.
type Queue struct {
	Name       string    `json:"name"`
	Durable    bool      `json:"durable"`
	AutoDelete bool      `json:"auto_delete"`
	Exclusive  bool      `json:"exclusive"`
	Arguments  Arguments `json:"arguments"`
	Messages   int       `json:"messages"`
	Consumers  int       `json:"consumers"`
}

// Arguments are the x-arguments of a queue or exchange. rabbitmqctl's JSON spells them as a
// list of [name, type, value] triples; values are JSON numbers, strings or booleans.
type Arguments map[string]any

// UnmarshalJSON decodes rabbitmqctl's [[name, type, value], ...] form.
func (a *Arguments) UnmarshalJSON(b []byte) error {
	var triples [][]any
	if err := json.Unmarshal(b, &triples); err != nil {
		return fmt.Errorf("arguments: %w", err)
	}
	*a = Arguments{}
	for _, t := range triples {
		if len(t) != 3 {
			return fmt.Errorf("arguments: want [name, type, value], got %v", t)
		}
		name, ok := t[0].(string)
		if !ok {
			return fmt.Errorf("arguments: name %v is not a string", t[0])
		}
		(*a)[name] = t[2]
	}
	return nil
}

// Int returns the numeric argument name, and whether it is there and a number.
func (a Arguments) Int(name string) (int64, bool) {
	f, ok := a[name].(float64)
	return int64(f), ok
}

// Exchange is an exchange as rabbitmqctl list_exchanges reports it.
type Exchange struct {
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Durable    bool      `json:"durable"`
	AutoDelete bool      `json:"auto_delete"`
	Internal   bool      `json:"internal"`
	Arguments  Arguments `json:"arguments"`
}

// Binding is a binding as rabbitmqctl list_bindings reports it.
type Binding struct {
	Source          string `json:"source_name"`
	Destination     string `json:"destination_name"`
	DestinationKind string `json:"destination_kind"`
	RoutingKey      string `json:"routing_key"`
}

// Connection is a client connection as rabbitmqctl list_connections reports it.
type Connection struct {
	Name  string `json:"name"`
	User  string `json:"user"`
	State string `json:"state"`
}

// ListQueues lists the queues of vhost "/" with their flags and arguments.
func (n *Node) ListQueues(ctx context.Context) ([]Queue, error) {
	var qs []Queue
	err := n.listJSON(ctx, &qs, "list_queues", "name", "durable", "auto_delete", "exclusive", "arguments", "messages", "consumers")
	return qs, err
}

// ListExchanges lists the exchanges of vhost "/" with their flags and arguments.
func (n *Node) ListExchanges(ctx context.Context) ([]Exchange, error) {
	var xs []Exchange
	err := n.listJSON(ctx, &xs, "list_exchanges", "name", "type", "durable", "auto_delete", "internal", "arguments")
	return xs, err
}

// ListBindings lists the bindings of vhost "/".
func (n *Node) ListBindings(ctx context.Context) ([]Binding, error) {
	var bs []Binding
	err := n.listJSON(ctx, &bs, "list_bindings", "source_name", "destination_name", "destination_kind", "routing_key")
	return bs, err
}

// ListConnections lists the client connections of the node.
func (n *Node) ListConnections(ctx context.Context) ([]Connection, error) {
	var cs []Connection
	err := n.listJSON(ctx, &cs, "list_connections", "name", "user", "state")
	return cs, err
}

// CloseAllConnections closes every client connection from the broker side (the clients get
// connection.close 320 CONNECTION_FORCED with reason).
func (n *Node) CloseAllConnections(ctx context.Context, reason string) error {
	_, err := n.Ctl(ctx, "close_all_connections", reason)
	return err
}

func (n *Node) listJSON(ctx context.Context, into any, args ...string) error {
	out, err := n.Ctl(ctx, append(append([]string{}, args...), "--quiet", "--formatter", "json")...)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(out, into); err != nil {
		return fmt.Errorf("rabbitmqctl %s: decode its JSON: %w\n%s", args[0], err, lastLines(string(out), 10))
	}
	return nil
}
