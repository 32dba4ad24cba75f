package flows

import (
	"hash/fnv"
	"testing"
)

// ObjectHash is FNV-1a 64 masked to 40 bits: cookies already written into switches must
// keep decoding to the same objects.
func TestObjectHashIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "br-int", "c0000001-0000-4000-8000-000000000001", "fa:16:3f:00:00:01", "physnet1", "\xff\x00é"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := ObjectHash(s), h.Sum64()&objectMask; got != want {
			t.Errorf("ObjectHash(%q) = %#x, want %#x", s, got, want)
		}
	}
}
