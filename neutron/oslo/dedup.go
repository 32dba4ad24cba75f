package oslo

import "sync"

// uniqueIDs remembers the last few _unique_id values seen, to drop re-deliveries of a message
// (oslo keeps the last 16 per listener; we keep more, still bounded).
type uniqueIDs struct {
	mu   sync.Mutex
	ring []string
	next int
	seen map[string]struct{}
}

func newUniqueIDs(size int) *uniqueIDs {
	return &uniqueIDs{ring: make([]string, size), seen: make(map[string]struct{}, size)}
}

// firstTime records id and reports whether it was new. An empty id (an old sender) is
// always new.
func (u *uniqueIDs) firstTime(id string) bool {
	if id == "" {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if _, dup := u.seen[id]; dup {
		return false
	}
	if old := u.ring[u.next]; old != "" {
		delete(u.seen, old)
	}
	u.ring[u.next] = id
	u.next = (u.next + 1) % len(u.ring)
	u.seen[id] = struct{}{}
	return true
}
