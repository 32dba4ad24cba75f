package oslo

import (
	"math/rand/v2"
	"sync"
	"time"
)

// TimeoutPolicy is Neutron's back-off for call timeouts (neutron_lib.rpc
// _BackingOffContextWrapper), per method:
//
//   - a method's first call waits rpc_response_timeout for its reply;
//   - each time a call of the method times out, the method's timeout doubles, up to
//     rpc_response_max_timeout; it never shrinks again (Neutron: "Restart the agent to restore
//     it to the default value");
//   - before the caller retries, Neutron's agents pause a random time in
//     [0, min(method timeout, rpc_response_timeout)); Wait returns such a pause.
//
// Methods are keyed by "namespace.method" (just "method" without namespace), as Neutron does.
// It applies to calls whose context carries no deadline of its own.
type TimeoutPolicy struct {
	initial, max time.Duration

	mu       sync.Mutex
	timeouts map[string]time.Duration
}

// NewTimeoutPolicy returns the policy for rpc_response_timeout = initial and
// rpc_response_max_timeout = max.
func NewTimeoutPolicy(initial, max time.Duration) *TimeoutPolicy {
	if max < initial {
		max = initial
	}
	return &TimeoutPolicy{initial: initial, max: max, timeouts: map[string]time.Duration{}}
}

// Timeout is the timeout of the method's next call.
func (p *TimeoutPolicy) Timeout(method string) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.timeouts[method]; ok {
		return t
	}
	return p.initial
}

// TimedOut records that a call of method with timeout used timed out, and returns the
// method's next timeout.
func (p *TimeoutPolicy) TimedOut(method string, used time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	current, ok := p.timeouts[method]
	if !ok {
		current = p.initial
	}
	next := min(used*2, p.max)
	if next > current {
		p.timeouts[method] = next
		return next
	}
	return current
}

// Wait is the random pause before retrying a method that timed out.
func (p *TimeoutPolicy) Wait(method string) time.Duration {
	limit := min(p.Timeout(method), p.initial)
	if limit <= 0 {
		return 0
	}
	return time.Duration(rand.Int64N(int64(limit)))
}
