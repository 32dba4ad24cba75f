package oslo

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EnvelopeVersion is the only envelope oslo.messaging has sent since 2013: the body is
// {"oslo.version": "2.0", "oslo.message": "<the message as a JSON string>"}.
const EnvelopeVersion = "2.0"

const (
	keyEnvelopeVersion = "oslo.version"
	keyEnvelopeMessage = "oslo.message"
	keyMsgID           = "_msg_id"
	keyReplyQueue      = "_reply_q"
	keyCallTimeout     = "_timeout"
	keyUniqueID        = "_unique_id"
	contextPrefix      = "_context_"
)

// Context is an oslo request context (neutron_lib.context.Context.to_dict()). On the wire
// each key k travels flattened as a top-level "_context_k" of the message.
type Context map[string]any

// AdminContext is the context Neutron's agents send: an admin context without user or
// project, with a fresh request id and the current time.
func AdminContext(now time.Time) Context {
	return Context{
		"is_admin": true, "request_id": "req-" + uuidString(), "timestamp": now.UTC().Format("2006-01-02 15:04:05.000000"),
		"user_id": nil, "project_id": nil, "tenant_id": nil, "roles": []string{},
		"user_identity": "- - - - -", "is_admin_project": true, "read_only": false, "show_deleted": false,
		"auth_token": nil, "global_request_id": nil, "user": nil, "project": nil, "domain": nil,
		"user_domain": nil, "project_domain": nil, "system_scope": nil, "resource_uuid": nil,
		"tenant_name": nil, "project_name": nil, "user_name": nil,
	}
}

// Message is one RPC request (a call or a cast) as it travels inside the envelope.
type Message struct {
	Method string
	// Args are the keyword arguments, a JSON object ({} when there are none).
	Args json.RawMessage
	// Version is the "major.minor" the caller requires; "" means oslo's "1.0".
	Version string
	// Namespace is the target's namespace; Neutron's are all None, so it is usually "".
	Namespace string
	// MsgID and ReplyQueue are set on calls only: where the reply goes and how it is
	// recognised.
	MsgID      string
	ReplyQueue string
	// CallTimeout is "_timeout", the call-monitor timeout in seconds (nil: none, as Neutron).
	CallTimeout *float64
	// UniqueID identifies the message for de-duplication of re-deliveries.
	UniqueID string
	Context  Context
}

// IsCall reports whether the sender waits for a reply.
func (m Message) IsCall() bool { return m.MsgID != "" && m.ReplyQueue != "" }

// EncodeMessage returns the AMQP body of m: the 2.0 envelope around the flattened message.
func EncodeMessage(m Message) ([]byte, error) {
	if m.Method == "" {
		return nil, errors.New("encode message: empty method")
	}
	inner := map[string]any{"method": m.Method}
	args := m.Args
	if len(bytes.TrimSpace(args)) == 0 {
		args = json.RawMessage("{}")
	}
	if !json.Valid(args) || bytes.TrimSpace(args)[0] != '{' {
		return nil, fmt.Errorf("encode message %s: args are not a JSON object", m.Method)
	}
	inner["args"] = args
	if m.Version != "" {
		inner["version"] = m.Version
	}
	if m.Namespace != "" {
		inner["namespace"] = m.Namespace
	}
	if m.MsgID != "" {
		inner[keyMsgID] = m.MsgID
		inner[keyReplyQueue] = m.ReplyQueue
		inner[keyCallTimeout] = m.CallTimeout
	}
	if m.UniqueID != "" {
		inner[keyUniqueID] = m.UniqueID
	}
	for k, v := range m.Context {
		inner[contextPrefix+k] = v
	}
	return wrapEnvelope(inner, m.Method)
}

func wrapEnvelope(inner any, what string) ([]byte, error) {
	b, err := json.Marshal(inner)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", what, err)
	}
	return json.Marshal(map[string]string{keyEnvelopeVersion: EnvelopeVersion, keyEnvelopeMessage: string(b)})
}

// unwrapEnvelope returns the inner message object of an AMQP body. Like oslo it accepts a
// bare object without envelope (the pre-envelope "1.0" form); it refuses another envelope
// version and anything that is not a JSON object.
func unwrapEnvelope(body []byte) (map[string]json.RawMessage, error) {
	var outer map[string]json.RawMessage
	if err := json.Unmarshal(body, &outer); err != nil {
		return nil, fmt.Errorf("body is not a JSON object: %w", err)
	}
	rawVersion, hasVersion := outer[keyEnvelopeVersion]
	rawMessage, hasMessage := outer[keyEnvelopeMessage]
	if !hasVersion || !hasMessage {
		return outer, nil
	}
	var version, message string
	if err := json.Unmarshal(rawVersion, &version); err != nil {
		return nil, fmt.Errorf("%s is not a string: %w", keyEnvelopeVersion, err)
	}
	if version != EnvelopeVersion {
		return nil, fmt.Errorf("envelope version %q not supported (want %s)", version, EnvelopeVersion)
	}
	if err := json.Unmarshal(rawMessage, &message); err != nil {
		return nil, fmt.Errorf("%s is not a JSON string: %w", keyEnvelopeMessage, err)
	}
	var inner map[string]json.RawMessage
	if err := json.Unmarshal([]byte(message), &inner); err != nil {
		return nil, fmt.Errorf("%s does not hold a JSON object: %w", keyEnvelopeMessage, err)
	}
	return inner, nil
}

// DecodeMessage parses the AMQP body of a call or cast.
func DecodeMessage(body []byte) (Message, error) {
	inner, err := unwrapEnvelope(body)
	if err != nil {
		return Message{}, err
	}
	var m Message
	if err := stringField(inner, "method", &m.Method); err != nil {
		return Message{}, err
	}
	if m.Method == "" {
		return Message{}, errors.New("message has no method")
	}
	m.Args = inner["args"]
	if len(m.Args) == 0 || string(m.Args) == "null" {
		m.Args = json.RawMessage("{}")
	} else if bytes.TrimSpace(m.Args)[0] != '{' {
		return Message{}, fmt.Errorf("message %s: args are not a JSON object", m.Method)
	}
	for key, into := range map[string]*string{
		"version": &m.Version, "namespace": &m.Namespace, keyMsgID: &m.MsgID, keyReplyQueue: &m.ReplyQueue, keyUniqueID: &m.UniqueID,
	} {
		if err := stringField(inner, key, into); err != nil {
			return Message{}, fmt.Errorf("message %s: %w", m.Method, err)
		}
	}
	if raw, ok := inner[keyCallTimeout]; ok && string(raw) != "null" {
		var t float64
		if err := json.Unmarshal(raw, &t); err != nil {
			return Message{}, fmt.Errorf("message %s: %s is not a number", m.Method, keyCallTimeout)
		}
		m.CallTimeout = &t
	}
	m.Context = Context{}
	for k, raw := range inner {
		if name, ok := strings.CutPrefix(k, contextPrefix); ok {
			var v any
			if err := json.Unmarshal(raw, &v); err != nil {
				return Message{}, fmt.Errorf("message %s: context key %s: %w", m.Method, name, err)
			}
			m.Context[name] = v
		}
	}
	return m, nil
}

// stringField reads an optional string field; null counts as absent.
func stringField(obj map[string]json.RawMessage, key string, into *string) error {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return nil
	}
	if err := json.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("%s is not a string", key)
	}
	return nil
}

// Reply is the answer to a call, published to the default exchange with the caller's reply
// queue as routing key.
type Reply struct {
	MsgID string
	// Result is the JSON result (null when Failure is set).
	Result json.RawMessage
	// Failure is the serialized remote exception; nil on success.
	Failure *Failure
	// Ending is false only on call-monitor heartbeats and on the first half of the old
	// two-message replies.
	Ending   bool
	UniqueID string
}

// Failure is an exception as oslo serializes it into a reply's "failure" JSON string.
type Failure struct {
	Class     string          `json:"class"`
	Module    string          `json:"module"`
	Message   string          `json:"message"`
	Traceback []string        `json:"tb"`
	Args      json.RawMessage `json:"args,omitempty"`
	Kwargs    json.RawMessage `json:"kwargs,omitempty"`
}

// EncodeReply returns the AMQP body of r (inside the 2.0 envelope, as oslo sends replies).
func EncodeReply(r Reply) ([]byte, error) {
	result := r.Result
	if len(result) == 0 {
		result = json.RawMessage("null")
	}
	inner := map[string]any{"result": result, "failure": nil, "ending": r.Ending, keyMsgID: r.MsgID}
	if r.UniqueID != "" {
		inner[keyUniqueID] = r.UniqueID
	}
	if r.Failure != nil {
		f, err := json.Marshal(r.Failure)
		if err != nil {
			return nil, fmt.Errorf("encode reply %s: %w", r.MsgID, err)
		}
		inner["failure"] = string(f)
		inner["result"] = nil
	}
	return wrapEnvelope(inner, "reply "+r.MsgID)
}

// DecodeReply parses the AMQP body of a reply. A failure that is not valid JSON is kept as
// the message of a Failure without class.
func DecodeReply(body []byte) (Reply, error) {
	inner, err := unwrapEnvelope(body)
	if err != nil {
		return Reply{}, err
	}
	var r Reply
	if err := stringField(inner, keyMsgID, &r.MsgID); err != nil {
		return Reply{}, fmt.Errorf("reply: %w", err)
	}
	if r.MsgID == "" {
		return Reply{}, errors.New("reply has no _msg_id")
	}
	if err := stringField(inner, keyUniqueID, &r.UniqueID); err != nil {
		return Reply{}, fmt.Errorf("reply %s: %w", r.MsgID, err)
	}
	if raw, ok := inner["result"]; ok && string(raw) != "null" {
		r.Result = raw
	}
	if raw, ok := inner["ending"]; ok {
		if err := json.Unmarshal(raw, &r.Ending); err != nil {
			return Reply{}, fmt.Errorf("reply %s: ending is not a boolean", r.MsgID)
		}
	}
	if raw, ok := inner["failure"]; ok && string(raw) != "null" {
		f, err := decodeFailure(raw)
		if err != nil {
			return Reply{}, fmt.Errorf("reply %s: %w", r.MsgID, err)
		}
		r.Failure = f
	}
	return r, nil
}

// decodeFailure reads the "failure" field: a JSON string holding the serialized exception
// (oslo), or, liberally, the object itself.
func decodeFailure(raw json.RawMessage) (*Failure, error) {
	text := []byte(raw)
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		text = []byte(s)
	}
	var f Failure
	if err := json.Unmarshal(text, &f); err != nil {
		if len(raw) > 0 && raw[0] == '"' {
			return &Failure{Message: s}, nil
		}
		return nil, fmt.Errorf("failure is neither a JSON string nor an object: %w", err)
	}
	return &f, nil
}

// uuidString returns a random UUID4 in its usual 8-4-4-4-12 form.
func uuidString() string {
	h := uuidHex()
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// uuidHex returns a random UUID4 as 32 hex digits (Python's uuid.uuid4().hex), the form of
// _msg_id, _unique_id and queue suffixes.
func uuidHex() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:])
}

// VersionCompatible is oslo's dispatch rule (reference §2.6): an endpoint at version
// "major.minor" serves a message that asks for requested if the majors are equal and the
// requested minor is not above the endpoint's. An empty requested version means "1.0".
// Malformed versions are never compatible.
func VersionCompatible(endpoint, requested string) bool {
	if requested == "" {
		requested = "1.0"
	}
	eMajor, eMinor, ok1 := parseVersion(endpoint)
	rMajor, rMinor, ok2 := parseVersion(requested)
	return ok1 && ok2 && eMajor == rMajor && rMinor <= eMinor
}

// parseVersion reads "major" or "major.minor" (oslo allows a missing minor, meaning 0).
func parseVersion(v string) (major, minor int, ok bool) {
	majorText, minorText, hasMinor := strings.Cut(v, ".")
	major, err := strconv.Atoi(majorText)
	if err != nil || major < 0 {
		return 0, 0, false
	}
	if hasMinor {
		if minor, err = strconv.Atoi(minorText); err != nil || minor < 0 {
			return 0, 0, false
		}
	}
	return major, minor, true
}
