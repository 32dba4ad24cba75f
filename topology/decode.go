package topology

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"

	"sigs.k8s.io/yaml"

	"github.com/dvrflow/dvrflow/northbound"
)

// Load reads and decodes a topology file (YAML, or JSON, which is YAML). File-level
// errors name the path, and the line when the YAML decoder gives one: the file cannot be
// read, is not YAML, is not a mapping, lacks networks or ports, or has a host section or a
// top-level key of the wrong shape. An object of the wrong shape inside a list (say a
// string segmentation_id) is not a file-level error: it is left out and reported by
// [File.Snapshot], like any other invalid object.
func Load(path string) (*File, error) {
	f, _, err := load(path)
	return f, err
}

// load is [Load], also returning the file's content.
func load(path string) (*File, []byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read topology: %w", err)
	}
	f, err := Parse(data)
	if err != nil {
		return nil, nil, fmt.Errorf("topology %s: %w", path, err)
	}
	return f, data, nil
}

// Parse decodes a topology document; see [Load].
func Parse(data []byte) (*File, error) {
	doc := data
	if !json.Valid(data) { // JSON is YAML; only real YAML needs the (slower) conversion
		var err error
		if doc, err = yaml.YAMLToJSON(data); err != nil {
			return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
		}
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(doc, &top); err != nil || top == nil {
		return nil, errors.New("not a mapping with networks, ports, ... at the top level")
	}
	t := &File{}
	if err := decodeValue(top["name"], &t.Name); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	if err := decodeValue(top["description"], &t.Description); err != nil {
		return nil, fmt.Errorf("description: %w", err)
	}
	if raw := top["host"]; !isNull(raw) {
		t.Host = &Host{}
		if err := decodeValue(raw, t.Host); err != nil {
			return nil, fmt.Errorf("host: %w", err)
		}
	}
	for _, key := range []string{"networks", "ports"} {
		if isNull(top[key]) {
			return nil, fmt.Errorf("missing key %q (write %s: [] for none)", key, key)
		}
	}
	var errs []error
	collect := func(err error) { errs = append(errs, err) }
	t.OtherHosts = decodeList(t, top, "other_hosts", northbound.KindOtherHost, decodeOtherHost, collect)
	t.Networks = decodeList(t, top, "networks", northbound.KindNetwork, decodeNetwork, collect)
	t.Subnets = decodeList(t, top, "subnets", northbound.KindSubnet, decodeSubnet, collect)
	t.Ports = decodeList(t, top, "ports", northbound.KindPort, decodePort, collect)
	t.RemotePorts = decodeList(t, top, "remote_ports", northbound.KindRemotePort, decodeRemotePort, collect)
	t.L2popFDB = decodeList(t, top, "l2pop_fdb", northbound.KindL2popFDB, decodeFDB, collect)
	t.Routers = decodeList(t, top, "routers", northbound.KindRouter, decodeRouter, collect)
	t.FloatingIPs = decodeList(t, top, "floatingips", northbound.KindFloatingIP, decodeFloatingIP, collect)
	t.SecurityGroups = decodeList(t, top, "security_groups", northbound.KindSecurityGroup, decodeSecurityGroup, collect)
	t.AddressGroups = decodeList(t, top, "address_groups", northbound.KindAddressGroup, decodeAddressGroup, collect)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return t, nil
}

// decodeList decodes the list under key one object at a time. An object that cannot be
// decoded is recorded in t.undecodable; a key whose value is not a list is passed to fail.
// An absent list stays nil; an empty one is empty.
func decodeList[T any](t *File, top map[string]json.RawMessage, key string, kind northbound.Kind,
	decode func(json.RawMessage) (T, error), fail func(error)) []T {
	raw := top[key]
	if isNull(raw) {
		return nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		fail(fmt.Errorf("%s: not a list", key))
		return nil
	}
	out := make([]T, 0, len(items))
	for i, item := range items {
		v, err := decode(item)
		if err != nil {
			t.undecodable = append(t.undecodable, undecodableProblem(kind, key, i, item, err))
			continue
		}
		out = append(out, v)
	}
	return out
}

// decodeValue decodes one JSON value the lenient YAML way (a number or boolean given for a
// string field becomes a string), keeping whatever dst holds for absent keys. Well-typed
// values take the JSON decoder alone (the YAML conversion costs ten times as much); only a
// value the JSON decoder refuses goes through the lenient path, which then sets every key
// present, so the result is the same.
func decodeValue(raw json.RawMessage, dst any) error {
	if isNull(raw) {
		return nil
	}
	if err := json.Unmarshal(raw, dst); err == nil {
		return nil
	}
	if err := yaml.Unmarshal(raw, dst); err != nil {
		return typeError(raw, dst, err)
	}
	return nil
}

// typeError turns a decoding failure into a short error naming the field, when the JSON
// decoder can tell which one it was.
func typeError(raw json.RawMessage, dst any, err error) error {
	fresh := reflect.New(reflect.TypeOf(dst).Elem()).Interface()
	var te *json.UnmarshalTypeError
	if jerr := json.Unmarshal(raw, fresh); errors.As(jerr, &te) {
		return &fieldError{field: te.Field, reason: fmt.Sprintf("is a JSON %s, want %s", te.Value, kindWord(te.Type))}
	}
	return err
}

// fieldError is a decoding error about one field.
type fieldError struct{ field, reason string }

func (e *fieldError) Error() string {
	if e.field == "" {
		return e.reason
	}
	return "field " + e.field + ": " + e.reason
}

// kindWord names a Go type the way a topology author thinks of it.
func kindWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Pointer:
		return kindWord(t.Elem())
	default:
		return "a mapping"
	}
}

// undecodableProblem describes an object that could not be decoded, naming it by its id
// when it has a readable one.
func undecodableProblem(kind northbound.Kind, key string, i int, raw json.RawMessage, err error) northbound.Problem {
	var ids struct {
		ID, Name, Host, NetworkID, RemoteIP any
	}
	_ = json.Unmarshal(raw, &ids)
	str := func(v any) string { s, _ := v.(string); return s }
	var id string
	switch kind {
	case northbound.KindOtherHost:
		id = str(ids.Name)
	case northbound.KindRemotePort:
		if str(ids.ID) != "" {
			id = str(ids.Host) + "/" + str(ids.ID)
		}
	case northbound.KindL2popFDB:
		if str(ids.NetworkID) != "" {
			id = str(ids.NetworkID) + "/" + str(ids.RemoteIP)
		}
	default:
		id = str(ids.ID)
	}
	if id == "" {
		id = fmt.Sprintf("%s[%d]", key, i)
	}
	p := northbound.Problem{Kind: kind, ID: id, Reason: err.Error()}
	var fe *fieldError
	if errors.As(err, &fe) {
		p.Field, p.Reason = fe.field, fe.reason
	}
	return p
}

// isNull reports whether a raw value is absent or JSON null.
func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(raw) == "null"
}

// networkAliases are the "provider:" spellings of Neutron's provider extension.
type networkAliases struct {
	NetworkType     string `json:"provider:network_type"`
	PhysicalNetwork string `json:"provider:physical_network"`
	SegmentationID  int64  `json:"provider:segmentation_id"`
}

// macAlias is Neutron's name for a port's MAC.
type macAlias struct {
	MACAddress string `json:"mac_address"`
}

// The aliases are decoded separately rather than through a struct embedding the public
// type, because sigs.k8s.io/yaml's lenient scalar conversion does not reach into embedded
// structs.

func decodeNetwork(raw json.RawMessage) (Network, error) {
	var n Network
	var a networkAliases
	if err := errors.Join(decodeValue(raw, &n), decodeValue(raw, &a)); err != nil {
		return Network{}, err
	}
	n.NetworkType = firstNonZero(n.NetworkType, a.NetworkType)
	n.PhysicalNetwork = firstNonZero(n.PhysicalNetwork, a.PhysicalNetwork)
	n.SegmentationID = firstNonZero(n.SegmentationID, a.SegmentationID)
	return n, nil
}

func decodePort(raw json.RawMessage) (Port, error) {
	p := Port{DeviceOwner: northbound.OwnerCompute, PortSecurityEnabled: true, AdminStateUp: true}
	var a macAlias
	if err := errors.Join(decodeValue(raw, &p), decodeValue(raw, &a)); err != nil {
		return Port{}, err
	}
	p.MAC = firstNonZero(p.MAC, a.MACAddress)
	return p, nil
}

func decodeRemotePort(raw json.RawMessage) (RemotePort, error) {
	p := RemotePort{DeviceOwner: northbound.OwnerCompute}
	var a macAlias
	if err := errors.Join(decodeValue(raw, &p), decodeValue(raw, &a)); err != nil {
		return RemotePort{}, err
	}
	p.MAC = firstNonZero(p.MAC, a.MACAddress)
	return p, nil
}

func decodeSubnet(raw json.RawMessage) (Subnet, error) {
	var s Subnet
	return s, decodeValue(raw, &s)
}

func decodeOtherHost(raw json.RawMessage) (OtherHost, error) {
	var h OtherHost
	return h, decodeValue(raw, &h)
}

func decodeFDB(raw json.RawMessage) (FDB, error) {
	f := FDB{Flood: true}
	return f, decodeValue(raw, &f)
}

// gatewayPresence tells which of a router's optional gateway keys the document gives.
type gatewayPresence struct {
	ExternalGatewayInfo *struct {
		EnableSNAT *bool `json:"enable_snat"`
	} `json:"external_gateway_info"`
}

func decodeRouter(raw json.RawMessage) (Router, error) {
	r := Router{Distributed: true}
	var given gatewayPresence
	if err := errors.Join(decodeValue(raw, &r), decodeValue(raw, &given)); err != nil {
		return Router{}, err
	}
	if g := given.ExternalGatewayInfo; g != nil && g.EnableSNAT == nil {
		r.ExternalGatewayInfo.EnableSNAT = true
	}
	return r, nil
}

func decodeFloatingIP(raw json.RawMessage) (FloatingIP, error) {
	var f FloatingIP
	return f, decodeValue(raw, &f)
}

// ruleDefaults tells which of a rule's defaulted keys the document gives.
type ruleDefaults struct {
	Rules []struct {
		EtherType *string `json:"ethertype"`
	} `json:"security_group_rules"`
}

func decodeSecurityGroup(raw json.RawMessage) (SecurityGroup, error) {
	g := SecurityGroup{Stateful: true}
	var given ruleDefaults
	if err := errors.Join(decodeValue(raw, &g), decodeValue(raw, &given)); err != nil {
		return SecurityGroup{}, err
	}
	for i := range g.Rules {
		if i < len(given.Rules) && given.Rules[i].EtherType == nil {
			g.Rules[i].EtherType = string(northbound.IPv4)
		}
	}
	return g, nil
}

func decodeAddressGroup(raw json.RawMessage) (AddressGroup, error) {
	var g AddressGroup
	return g, decodeValue(raw, &g)
}

// firstNonZero returns a unless it is the zero value, else b.
func firstNonZero[T comparable](a, b T) T {
	var zero T
	if a != zero {
		return a
	}
	return b
}
