package oslo

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrNotConnected is returned (wrapped, naming the method) by calls and casts while the
// client has no broker connection; the client keeps reconnecting in the background.
var ErrNotConnected = errors.New("not connected to any RabbitMQ broker")

// ErrClosed is returned after Close.
var ErrClosed = errors.New("oslo client closed")

// Classes of the failures oslo's RPC dispatcher itself raises (module
// oslo_messaging.rpc.dispatcher). Match them with errors.Is.
var (
	// ErrNoSuchMethod: no endpoint of the server has the method.
	ErrNoSuchMethod = errors.New("NoSuchMethod")
	// ErrUnsupportedVersion: an endpoint has the method, none with a compatible version.
	ErrUnsupportedVersion = errors.New("UnsupportedVersion")
)

const dispatcherModule = "oslo_messaging.rpc.dispatcher"

// RemoteError is an exception the server raised while handling a call, as its reply's
// "failure" carried it.
type RemoteError struct {
	Topic, Method string
	Failure
}

// Exc is the exception's Python name, module.Class (e.g. "netaddr.core.AddrFormatError").
func (e *RemoteError) Exc() string {
	if e.Module == "" {
		return e.Class
	}
	return e.Module + "." + e.Class
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("call %s on %s: remote %s: %s", e.Method, e.Topic, e.Exc(), e.Message)
}

// Is matches ErrNoSuchMethod and ErrUnsupportedVersion by the dispatcher's class names.
func (e *RemoteError) Is(target error) bool {
	switch target {
	case ErrNoSuchMethod:
		return e.Module == dispatcherModule && e.Class == "NoSuchMethod"
	case ErrUnsupportedVersion:
		return e.Module == dispatcherModule && e.Class == "UnsupportedVersion"
	}
	return false
}

// TracebackText is the remote traceback as Python printed it.
func (e *RemoteError) TracebackText() string { return strings.Join(e.Traceback, "") }

// TimeoutError is a call that got no (complete) reply in time. It matches
// errors.Is(err, ErrTimeout).
type TimeoutError struct {
	Topic, Method, MsgID string
	Timeout              time.Duration
	// NextTimeout is the timeout the method's next call will get (the back-off policy
	// doubled it), and Wait the pause Neutron's agents make before retrying.
	NextTimeout time.Duration
	Wait        time.Duration
}

// ErrTimeout matches every TimeoutError.
var ErrTimeout = errors.New("timed out waiting for a reply")

func (e *TimeoutError) Error() string {
	return fmt.Sprintf("call %s on %s (msg_id %s): %v after %s", e.Method, e.Topic, e.MsgID, ErrTimeout, e.Timeout)
}

// Is matches ErrTimeout.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }

// MalformedError is a message or reply this client could not decode.
type MalformedError struct {
	Queue string
	Err   error
}

func (e *MalformedError) Error() string {
	return fmt.Sprintf("malformed message on queue %s: %v", e.Queue, e.Err)
}

func (e *MalformedError) Unwrap() error { return e.Err }
