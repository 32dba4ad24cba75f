package ofconn

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// ErrorTypeExperimenter is the OpenFlow error type of experimenter errors
// (OFPET_EXPERIMENTER). In OpenFlow 1.3, Open vSwitch reports Nicira (NX) and
// ONF-extension errors, bundle errors included, with this type.
const ErrorTypeExperimenter = 0xffff

// MessageError is one OpenFlow error (OFPT_ERROR) sent by the switch, attributed
// to the request that caused it.
type MessageError struct {
	// Index is the position of the offending message in the slice given to
	// Apply or Bundle. It is -1 when the error concerns a control message the
	// connection sent itself (named by Request).
	Index int
	// Request names the control message for Index -1 ("bundle open", "bundle
	// commit", "bundle discard", "barrier", "flow stats", …); empty otherwise.
	Request string
	// Xid is the transaction id of the offending message.
	Xid uint32
	// Type and Code are the OpenFlow error type and code (ofp_error_msg).
	// For experimenter errors (Type == ErrorTypeExperimenter), Code is 0 and
	// the error is identified by Experimenter and ExpType.
	Type, Code uint16
	// ExpType and Experimenter identify an experimenter error: for example
	// ExpType 2313 from ONF (0x4f4e4600) is OFPBFC_MSG_FAILED.
	ExpType      uint16
	Experimenter uint32
	// Data is the start of the offending message as the switch echoed it
	// (at least 64 bytes of it, or all of it).
	Data []byte
}

// Name returns the symbolic name Open vSwitch uses for the error, such as
// "OFPBIC_BAD_TABLE_ID" or "NXBRC_NXM_BAD_TYPE", or "" if it is not known here.
func (e MessageError) Name() string {
	if e.Type == ErrorTypeExperimenter {
		return expErrorNames[expKey{e.Experimenter, e.ExpType}]
	}
	return errorCodeNames[uint32(e.Type)<<16|uint32(e.Code)]
}

// TypeName returns the name of the error type, such as "OFPET_BAD_INSTRUCTION".
func (e MessageError) TypeName() string {
	if n, ok := errorTypeNames[e.Type]; ok {
		return n
	}
	return fmt.Sprintf("OFPET_%d", e.Type)
}

// Error describes the error and which request caused it, for example
// "message 4 (xid 0x2a): OFPBIC_BAD_TABLE_ID (type 3, code 2)".
func (e MessageError) Error() string {
	var b strings.Builder
	if e.Index >= 0 {
		fmt.Fprintf(&b, "message %d", e.Index)
	} else {
		b.WriteString(e.Request)
	}
	fmt.Fprintf(&b, " (xid %#x): ", e.Xid)
	name := e.Name()
	if e.Type == ErrorTypeExperimenter {
		if name == "" {
			name = "experimenter error"
		}
		fmt.Fprintf(&b, "%s (experimenter %#08x, exp_type %d)", name, e.Experimenter, e.ExpType)
	} else {
		if name == "" {
			name = e.TypeName()
		}
		fmt.Fprintf(&b, "%s (type %d, code %d)", name, e.Type, e.Code)
	}
	return b.String()
}

// parseError decodes an OFPT_ERROR message. Index is left 0; callers set it.
func parseError(msg []byte) MessageError {
	e := MessageError{Xid: binary.BigEndian.Uint32(msg[4:8])}
	if len(msg) < 12 {
		return e
	}
	e.Type = binary.BigEndian.Uint16(msg[8:10])
	data := msg[12:]
	if e.Type == ErrorTypeExperimenter && len(msg) >= 16 {
		// ofp_error_experimenter_msg: type, exp_type, experimenter, data.
		e.ExpType = binary.BigEndian.Uint16(msg[10:12])
		e.Experimenter = binary.BigEndian.Uint32(msg[12:16])
		data = msg[16:]
	} else {
		e.Code = binary.BigEndian.Uint16(msg[10:12])
	}
	e.Data = append([]byte(nil), data...)
	return e
}

// ApplyError reports the OpenFlow errors the switch returned for the messages
// of one Apply call. Messages without an error were applied.
type ApplyError struct {
	// Errors lists each error in the order received, attributed by Index.
	Errors []MessageError
	// Sent is how many of the messages were sent: all of them, unless one
	// could not be encoded (then msgs[Sent] is that message, the ones after
	// it were not sent either, and Cause says why).
	Sent int
	// Cause is the encode error that stopped sending early, or nil.
	Cause error
}

func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ofconn: %d of %d messages rejected", len(e.Errors), e.Sent)
	if e.Cause != nil {
		fmt.Fprintf(&b, " (sending stopped: %v)", e.Cause)
	}
	writeErrorList(&b, e.Errors)
	return b.String()
}

// Unwrap returns each MessageError, so errors.As(err, &ofconn.MessageError{})
// finds the first one.
func (e *ApplyError) Unwrap() []error { return unwrapAll(e.Errors, e.Cause) }

// BundleError reports why a Bundle was not committed. Nothing from the
// bundle was installed.
type BundleError struct {
	// BundleID is the ONF bundle id used on the wire.
	BundleID uint32
	// Stage is where the bundle failed: "open", "add" (some messages were
	// rejected as they were added; the bundle was discarded), "commit" (the
	// switch refused the commit, e.g. OFPBFC_MSG_FAILED after the error of
	// the offending message), or "encode" (a message could not be encoded;
	// the bundle was discarded).
	Stage string
	// Errors lists every error received for the bundle, in order, attributed
	// to message indexes (Index -1 for the bundle control messages).
	Errors []MessageError
	// Cause is the encode error for Stage "encode".
	Cause error
}

func (e *BundleError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "ofconn: bundle %d failed at %s, nothing installed", e.BundleID, e.Stage)
	if e.Cause != nil {
		fmt.Fprintf(&b, ": %v", e.Cause)
	}
	writeErrorList(&b, e.Errors)
	return b.String()
}

// Unwrap returns each MessageError, so errors.As(err, &ofconn.MessageError{})
// finds the first one.
func (e *BundleError) Unwrap() []error { return unwrapAll(e.Errors, e.Cause) }

// Rejected returns the indexes of the messages the switch rejected, in order,
// without duplicates.
func (e *BundleError) Rejected() []int { return rejected(e.Errors) }

// Rejected returns the indexes of the messages the switch rejected, in order,
// without duplicates.
func (e *ApplyError) Rejected() []int { return rejected(e.Errors) }

func rejected(errs []MessageError) []int {
	var out []int
	seen := map[int]bool{}
	for _, me := range errs {
		if me.Index >= 0 && !seen[me.Index] {
			seen[me.Index] = true
			out = append(out, me.Index)
		}
	}
	return out
}

const maxListedErrors = 10

func writeErrorList(b *strings.Builder, errs []MessageError) {
	for i, me := range errs {
		if i == maxListedErrors {
			fmt.Fprintf(b, "; … and %d more", len(errs)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(me.Error())
	}
}

func unwrapAll(errs []MessageError, cause error) []error {
	out := make([]error, 0, len(errs)+1)
	for _, me := range errs {
		out = append(out, me)
	}
	if cause != nil {
		out = append(out, cause)
	}
	return out
}

var errorTypeNames = map[uint16]string{
	0:      "OFPET_HELLO_FAILED",
	1:      "OFPET_BAD_REQUEST",
	2:      "OFPET_BAD_ACTION",
	3:      "OFPET_BAD_INSTRUCTION",
	4:      "OFPET_BAD_MATCH",
	5:      "OFPET_FLOW_MOD_FAILED",
	6:      "OFPET_GROUP_MOD_FAILED",
	7:      "OFPET_PORT_MOD_FAILED",
	8:      "OFPET_TABLE_MOD_FAILED",
	9:      "OFPET_QUEUE_OP_FAILED",
	10:     "OFPET_SWITCH_CONFIG_FAILED",
	11:     "OFPET_ROLE_REQUEST_FAILED",
	12:     "OFPET_METER_MOD_FAILED",
	13:     "OFPET_TABLE_FEATURES_FAILED",
	0xffff: "OFPET_EXPERIMENTER",
}

// errorCodeNames maps type<<16|code to the name Open vSwitch gives the
// error in OpenFlow 1.3 (include/openvswitch/ofp-errors.h).
var errorCodeNames = func() map[uint32]string {
	byType := map[uint16][]string{
		0: {"OFPHFC_INCOMPATIBLE", "OFPHFC_EPERM"},
		1: {"OFPBRC_BAD_VERSION", "OFPBRC_BAD_TYPE", "OFPBRC_BAD_MULTIPART", "OFPBRC_BAD_EXPERIMENTER",
			"OFPBRC_BAD_EXP_TYPE", "OFPBRC_EPERM", "OFPBRC_BAD_LEN", "OFPBRC_BUFFER_EMPTY",
			"OFPBRC_BUFFER_UNKNOWN", "OFPBRC_BAD_TABLE_ID", "OFPBRC_IS_SLAVE", "OFPBRC_BAD_PORT",
			"OFPBRC_BAD_PACKET", "OFPBRC_MULTIPART_BUFFER_OVERFLOW"},
		2: {"OFPBAC_BAD_TYPE", "OFPBAC_BAD_LEN", "OFPBAC_BAD_EXPERIMENTER", "OFPBAC_BAD_EXP_TYPE",
			"OFPBAC_BAD_OUT_PORT", "OFPBAC_BAD_ARGUMENT", "OFPBAC_EPERM", "OFPBAC_TOO_MANY",
			"OFPBAC_BAD_QUEUE", "OFPBAC_BAD_OUT_GROUP", "OFPBAC_MATCH_INCONSISTENT",
			"OFPBAC_UNSUPPORTED_ORDER", "OFPBAC_BAD_TAG", "OFPBAC_BAD_SET_TYPE", "OFPBAC_BAD_SET_LEN",
			"OFPBAC_BAD_SET_ARGUMENT"},
		3: {"OFPBIC_UNKNOWN_INST", "OFPBIC_UNSUP_INST", "OFPBIC_BAD_TABLE_ID", "OFPBIC_UNSUP_METADATA",
			"OFPBIC_UNSUP_METADATA_MASK", "OFPBIC_BAD_EXPERIMENTER", "OFPBIC_BAD_EXP_TYPE",
			"OFPBIC_BAD_LEN", "OFPBIC_EPERM"},
		4: {"OFPBMC_BAD_TYPE", "OFPBMC_BAD_LEN", "OFPBMC_BAD_TAG", "OFPBMC_BAD_DL_ADDR_MASK",
			"OFPBMC_BAD_NW_ADDR_MASK", "OFPBMC_BAD_WILDCARDS", "OFPBMC_BAD_FIELD", "OFPBMC_BAD_VALUE",
			"OFPBMC_BAD_MASK", "OFPBMC_BAD_PREREQ", "OFPBMC_DUP_FIELD", "OFPBMC_EPERM"},
		5: {"OFPFMFC_UNKNOWN", "OFPFMFC_TABLE_FULL", "OFPFMFC_BAD_TABLE_ID", "OFPFMFC_OVERLAP",
			"OFPFMFC_EPERM", "OFPFMFC_BAD_TIMEOUT", "OFPFMFC_BAD_COMMAND", "OFPFMFC_BAD_FLAGS"},
		6: {"OFPGMFC_GROUP_EXISTS", "OFPGMFC_INVALID_GROUP", "OFPGMFC_WEIGHT_UNSUPPORTED",
			"OFPGMFC_OUT_OF_GROUPS", "OFPGMFC_OUT_OF_BUCKETS", "OFPGMFC_CHAINING_UNSUPPORTED",
			"OFPGMFC_WATCH_UNSUPPORTED", "OFPGMFC_LOOP", "OFPGMFC_UNKNOWN_GROUP", "OFPGMFC_CHAINED_GROUP",
			"OFPGMFC_BAD_TYPE", "OFPGMFC_BAD_COMMAND", "OFPGMFC_BAD_BUCKET", "OFPGMFC_BAD_WATCH",
			"OFPGMFC_EPERM"},
		7:  {"OFPPMFC_BAD_PORT", "OFPPMFC_BAD_HW_ADDR", "OFPPMFC_BAD_CONFIG", "OFPPMFC_BAD_ADVERTISE", "OFPPMFC_EPERM"},
		8:  {"OFPTMFC_BAD_TABLE", "OFPTMFC_BAD_CONFIG", "OFPTMFC_EPERM"},
		9:  {"OFPQOFC_BAD_PORT", "OFPQOFC_BAD_QUEUE", "OFPQOFC_EPERM"},
		10: {"OFPSCFC_BAD_FLAGS", "OFPSCFC_BAD_LEN", "OFPSCFC_EPERM"},
		11: {"OFPRRFC_STALE", "OFPRRFC_UNSUP", "OFPRRFC_BAD_ROLE"},
		12: {"OFPMMFC_UNKNOWN", "OFPMMFC_METER_EXISTS", "OFPMMFC_INVALID_METER", "OFPMMFC_UNKNOWN_METER",
			"OFPMMFC_BAD_COMMAND", "OFPMMFC_BAD_FLAGS", "OFPMMFC_BAD_RATE", "OFPMMFC_BAD_BURST",
			"OFPMMFC_BAD_BAND", "OFPMMFC_BAD_BAND_VALUE", "OFPMMFC_OUT_OF_METERS", "OFPMMFC_OUT_OF_BANDS"},
		13: {"OFPTFFC_BAD_TABLE", "OFPTFFC_BAD_METADATA", "OFPTFFC_BAD_TYPE", "OFPTFFC_BAD_LEN",
			"OFPTFFC_BAD_ARGUMENT", "OFPTFFC_EPERM"},
	}
	m := make(map[uint32]string)
	for typ, names := range byType {
		for code, name := range names {
			m[uint32(typ)<<16|uint32(code)] = name
		}
	}
	return m
}()

type expKey struct {
	experimenter uint32
	expType      uint16
}

// expErrorNames names the experimenter errors Open vSwitch sends in
// OpenFlow 1.3 ("NX1.2+" and "ONF1.3" in ofp-errors.h).
var expErrorNames = func() map[expKey]string {
	m := map[expKey]string{}
	nx := map[uint16]string{
		2: "NXBRC_NXM_INVALID", 3: "NXBRC_NXM_BAD_TYPE", 4: "NXBRC_MUST_BE_ZERO",
		5: "NXBRC_BAD_REASON", 6: "OFPMOFC_MONITOR_EXISTS", 7: "OFPMOFC_BAD_FLAGS",
		8: "OFPMOFC_UNKNOWN_MONITOR", 9: "NXBRC_FM_BAD_EVENT", 10: "NXBRC_UNENCODABLE_ERROR",
		11: "NXBAC_MUST_BE_ZERO", 12: "NXFMFC_HARDWARE", 13: "NXFMFC_BAD_TABLE_ID",
		15: "NXBAC_BAD_CONJUNCTION", 16: "NXTTMFC_BAD_COMMAND", 17: "NXTTMFC_BAD_OPT_LEN",
		18: "NXTTMFC_BAD_FIELD_IDX", 19: "NXTTMFC_TABLE_FULL", 20: "NXTTMFC_ALREADY_MAPPED",
		21: "NXTTMFC_DUP_ENTRY", 34: "NXR_NOT_SUPPORTED", 35: "NXR_STALE", 36: "NXST_NOT_CONFIGURED",
	}
	for k, v := range nx {
		m[expKey{nxExperimenterID, k}] = v
	}
	onf := map[uint16]string{
		2300: "OFPBFC_UNKNOWN", 2301: "OFPBFC_EPERM", 2302: "OFPBFC_BAD_ID",
		2303: "OFPBFC_BUNDLE_EXIST", 2304: "OFPBFC_BUNDLE_CLOSED", 2305: "OFPBFC_OUT_OF_BUNDLES",
		2306: "OFPBFC_BAD_TYPE", 2307: "OFPBFC_BAD_FLAGS", 2308: "OFPBFC_MSG_BAD_LEN",
		2309: "OFPBFC_MSG_BAD_XID", 2310: "OFPBFC_MSG_UNSUP", 2311: "OFPBFC_MSG_CONFLICT",
		2312: "OFPBFC_MSG_TOO_MANY", 2313: "OFPBFC_MSG_FAILED", 2314: "OFPBFC_TIMEOUT",
		2315: "OFPBFC_BUNDLE_IN_PROGRESS", 2600: "OFPBIC_DUP_INST", 4250: "OFPBAC_BAD_SET_MASK",
		4443: "OFPBPC_TOO_MANY", 4444: "OFPBPC_DUP_TYPE", 4445: "OFPBPC_BAD_EXPERIMENTER",
		4446: "OFPBPC_BAD_EXP_TYPE", 4447: "OFPBPC_BAD_EXP_VALUE", 4448: "OFPBPC_EPERM",
	}
	for k, v := range onf {
		m[expKey{onfExperimenterID, k}] = v
	}
	return m
}()
