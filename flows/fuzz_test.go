package flows

import (
	"testing"
)

// FuzzCanonicalMatch feeds arbitrary OXM bytes (as a switch reports a flow's match) to the
// parser that keys installed flows: it never panics, a match it accepts is in canonical
// form (parsing its own bytes again gives the same key), and it renders as text.
func FuzzCanonicalMatch(f *testing.F) {
	for _, m := range []Match{
		{}, Match{}.InPort(1), Match{}.InPort(2).VLAN(5), Match{}.Untagged(),
	} {
		f.Add(m.Bytes())
	}
	for _, fl := range everyKind(Cookie(CategoryTest, "fuzz")) {
		f.Add(fl.Match.Bytes())
	}
	f.Fuzz(func(t *testing.T, oxm []byte) {
		m, err := CanonicalMatch(oxm)
		if err != nil {
			return
		}
		again, err := CanonicalMatch(m.Bytes())
		if err != nil || again.Key() != m.Key() {
			t.Fatalf("%x parsed to %x, which parses to %x (%v)", oxm, m.Bytes(), again.Bytes(), err)
		}
		_ = Flow{Table: 1, Priority: 2, Match: m}.String()
	})
}
