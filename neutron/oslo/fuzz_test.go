package oslo

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeMessage feeds arbitrary AMQP bodies to the decoders of calls, casts and replies
// (what a consumer and the reply queue receive): they must return an error or a value, never
// panic, and what they accept must encode again.
func FuzzDecodeMessage(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.json"))
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"method": "x"}`))
	f.Add([]byte(`{"oslo.version": "2.0", "oslo.message": "{\"method\": \"x\", \"args\": null, \"_timeout\": 1.5}"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		if m, err := DecodeMessage(body); err == nil {
			if _, err := EncodeMessage(m); err != nil {
				t.Errorf("decoded %+v but cannot encode it again: %v", m, err)
			}
		}
		if r, err := DecodeReply(body); err == nil {
			if _, err := EncodeReply(r); err != nil {
				t.Errorf("decoded %+v but cannot encode it again: %v", r, err)
			}
		}
	})
}

// FuzzParseTransportURL: any transport_url is parsed or refused, never a panic, and a parsed
// one has at least one broker with a valid port.
func FuzzParseTransportURL(f *testing.F) {
	for _, s := range []string{"rabbit://guest:guest@127.0.0.1:19672/", "rabbit://a:b@h1:1,c:d@[::1]:2/v", "rabbit://", "amqp://x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		brokers, vhost, err := ParseTransportURL(raw)
		if err != nil {
			return
		}
		if len(brokers) == 0 || vhost == "" {
			t.Errorf("%q: %d brokers, vhost %q", raw, len(brokers), vhost)
		}
		for _, b := range brokers {
			if b.Port < 1 || b.Port > 65535 || b.Host == "" {
				t.Errorf("%q: broker %+v", raw, b)
			}
		}
	})
}
