package ofconn

import (
	"encoding/hex"
	"strings"
	"testing"
)

func fuzzHex(s string) []byte {
	b, err := hex.DecodeString(strings.Join(strings.Fields(s), ""))
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzParseFlowStats feeds arbitrary flow stats bodies to the parser: it never panics,
// and every entry it returns has a match whose OXM fields can be walked.
func FuzzParseFlowStats(f *testing.F) {
	// One entry: table 3, priority 7, cookie 0x2a, in_port=1, no instructions.
	f.Add(fuzzHex(`00 48 03 00 00 00 00 05 00 00 00 00 00 07 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 2a
		00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 0c 80 00 00 04 00 00 00 01 00 00 00 00
		00 04 00 08 00 00 00 00`))
	f.Add([]byte{})
	f.Add(fuzzHex("00 08 00 00"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fs, err := parseFlowStats(nil, body)
		if err != nil {
			return
		}
		for _, s := range fs {
			_, _ = ParseOXMs(s.Match)
		}
	})
}

// FuzzFlowMonitorUpdates feeds arbitrary flow monitor replies to the update parser: it
// never panics, and every update it reports lies within the message.
func FuzzFlowMonitorUpdates(f *testing.F) {
	header := fuzzHex("04 13 00 00 00 00 00 00 ff ff 00 00 00 00 00 00 4f 4e 46 00 00 00 07 4e")
	f.Add(fuzzHex(`00 28 00 00 00 00 00 07 00 00 00 00 00 0c 03 00 00 00 00 00 00 00 00 2a
		00 01 00 0c 80 00 00 04 00 00 00 01 00 00 00 00`))
	f.Add(fuzzHex(`00 08 00 03 00 00 00 07`))
	f.Fuzz(func(t *testing.T, entries []byte) {
		msg := append(append([]byte(nil), header...), entries...)
		_ = eachFlowUpdate(msg, func(u *FlowUpdate) {
			if len(u.Match)+len(u.Instructions) > len(entries) {
				t.Fatalf("an update larger than the message: %+v", u)
			}
			_, _ = ParseOXMs(u.Match)
		})
	})
}

// FuzzParseError feeds arbitrary error messages (after an OpenFlow header) to the decoder.
func FuzzParseError(f *testing.F) {
	f.Add(fuzzHex("00 05 00 06 de ad"))
	f.Add(fuzzHex("ff ff 09 14 4f 4e 46 00"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		msg := append([]byte{4, ofptError, 0, 0, 0, 0, 0, 9}, body...)
		e := parseError(msg)
		if e.Xid != 9 || e.Error() == "" {
			t.Fatalf("decoded %+v", e)
		}
	})
}
