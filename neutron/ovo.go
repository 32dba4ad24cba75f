package neutron

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// The OVO push topics the agent consumes (reference §5): the server pushes the Port and
// Network objects, in the versions DefaultResourceVersions reports, on
// neutron-vo-<Type>-<Version>_fanout with method push.
const (
	topicPortPush    = "neutron-vo-Port-1.7"
	topicNetworkPush = "neutron-vo-Network-1.1"
)

// Event types of a push.
const (
	pushCreated = "created"
	pushUpdated = "updated"
	pushDeleted = "deleted"
)

// pushArgs are push's arguments (ResourcesPushRpcApi 1.1).
type pushArgs struct {
	ResourceList []json.RawMessage `json:"resource_list"`
	EventType    string            `json:"event_type"`
}

// ovo is an oslo.versionedobjects primitive holding T.
type ovo[T any] struct {
	Name    string `json:"versioned_object.name"`
	Version string `json:"versioned_object.version"`
	Data    T      `json:"versioned_object.data"`
}

// ovoHeader is a primitive's name and version, its data left raw.
type ovoHeader = ovo[json.RawMessage]

// ovoPort is the part of a Port 1.7 primitive the agent reads.
type ovoPort struct {
	ID                  string                   `json:"id"`
	NetworkID           string                   `json:"network_id"`
	MACAddress          string                   `json:"mac_address"`
	AdminStateUp        *bool                    `json:"admin_state_up"`
	SecurityGroupIDs    []string                 `json:"security_group_ids"`
	DeviceOwner         string                   `json:"device_owner"`
	DeviceID            string                   `json:"device_id"`
	RevisionNumber      *int64                   `json:"revision_number"`
	FixedIPs            []ovo[ovoIPAllocation]   `json:"fixed_ips"`
	AllowedAddressPairs []ovo[AddrPair]          `json:"allowed_address_pairs"`
	Security            *ovo[ovoPortSecurity]    `json:"security"`
	Bindings            []ovo[ovoPortBinding]    `json:"bindings"`
	DistributedBindings []ovo[ovoPortBinding]    `json:"distributed_bindings"`
	BindingLevels       []ovo[ovoPortBindingLvl] `json:"binding_levels"`
}

type ovoIPAllocation struct {
	SubnetID  string `json:"subnet_id"`
	IPAddress string `json:"ip_address"`
}

type ovoPortSecurity struct {
	PortSecurityEnabled *bool `json:"port_security_enabled"`
}

// ovoPortBinding is a PortBinding or a DistributedPortBinding.
type ovoPortBinding struct {
	Host    string `json:"host"`
	VIFType string `json:"vif_type"`
	Status  string `json:"status"`
}

type ovoPortBindingLvl struct {
	Host    string               `json:"host"`
	Level   int                  `json:"level"`
	Segment *ovo[ovoNetworkSegm] `json:"segment"`
}

type ovoNetworkSegm struct {
	NetworkType     string  `json:"network_type"`
	SegmentationID  *int64  `json:"segmentation_id"`
	PhysicalNetwork *string `json:"physical_network"`
}

// ovoNetwork is the part of a Network 1.1 primitive the agent reads.
type ovoNetwork struct {
	ID             string `json:"id"`
	MTU            *int   `json:"mtu"`
	RevisionNumber *int64 `json:"revision_number"`
}

// Binding states that are no binding.
const (
	vifTypeUnbound       = "unbound"
	vifTypeBindingFailed = "binding_failed"
	bindingInactive      = "INACTIVE"
)

// detailsFor is what get_devices_details_list_and_failed_devices would answer for the port
// on host (reference §5, "What an agent needs from a Port"): nil when the port is not
// bound to host (no binding of host with a bound vif_type, an inactive binding, or no
// binding level of host with a segment). MTU is left 0: it is the network's.
func (p *ovoPort) detailsFor(host string) *DeviceDetails {
	bindings := p.Bindings
	if p.DeviceOwner == ownerRouterInterfaceDistributed {
		bindings = p.DistributedBindings
	}
	bound := false
	for _, b := range bindings {
		if b.Data.Host != host || b.Data.VIFType == "" || b.Data.VIFType == vifTypeUnbound || b.Data.VIFType == vifTypeBindingFailed {
			continue
		}
		// A PortBinding's status is ACTIVE or INACTIVE (live migration); a distributed
		// binding's is the port's status on the host.
		if p.DeviceOwner != ownerRouterInterfaceDistributed && b.Data.Status == bindingInactive {
			continue
		}
		bound = true
	}
	if !bound {
		return nil
	}
	// The last bound level of the host carries the segment the agent wires.
	var seg *ovoNetworkSegm
	level := -1
	for _, l := range p.BindingLevels {
		if l.Data.Host == host && l.Data.Segment != nil && l.Data.Level > level {
			seg, level = &l.Data.Segment.Data, l.Data.Level
		}
	}
	if seg == nil || seg.NetworkType == "" {
		return nil
	}
	d := &DeviceDetails{Device: p.ID, PortID: p.ID, NetworkID: p.NetworkID, MACAddress: strings.ToLower(p.MACAddress),
		AdminStateUp: p.AdminStateUp, NetworkType: seg.NetworkType, SegmentationID: seg.SegmentationID,
		PhysicalNetwork: seg.PhysicalNetwork, DeviceOwner: p.DeviceOwner}
	for _, f := range p.FixedIPs {
		d.FixedIPs = append(d.FixedIPs, FixedIP{SubnetID: f.Data.SubnetID, IPAddress: f.Data.IPAddress})
	}
	for _, a := range p.AllowedAddressPairs {
		d.AllowedAddressPairs = append(d.AllowedAddressPairs, a.Data)
	}
	if p.Security != nil {
		d.PortSecurityEnabled = p.Security.Data.PortSecurityEnabled
	}
	return d
}

const ownerRouterInterfaceDistributed = "network:router_interface_distributed"

// pushed is the cache of the Port and Network objects the server pushed (reference §5,
// resource cache rules: an update older than the cached revision is ignored, a deletion is
// final). Of the ports it keeps only the details of those bound to this host.
type pushed struct {
	// ports are the details of the ports bound to this host, by id.
	ports map[string]*DeviceDetails
	// deviceIDs are the device_id of those ports (a router port's router).
	deviceIDs map[string]string
	// portRevisions and networkRevisions are the revision_number last applied, by id.
	portRevisions, networkRevisions map[string]int64
	// deletedPorts and deletedNetworks are the ids pushed as deleted.
	deletedPorts, deletedNetworks map[string]bool
	// mtus are the networks' MTU, by id.
	mtus map[string]int
}

func newPushed() *pushed {
	return &pushed{ports: map[string]*DeviceDetails{}, deviceIDs: map[string]string{}, portRevisions: map[string]int64{},
		networkRevisions: map[string]int64{}, deletedPorts: map[string]bool{}, deletedNetworks: map[string]bool{}, mtus: map[string]int{}}
}

// portChange is what a Port push changed for this host.
type portChange struct {
	id string
	// details are the port's details if it is bound here (nil: it is not, or deleted).
	details *DeviceDetails
	// deleted says the port was deleted.
	deleted bool
}

// pushBatch is one push: its event and the objects it carries, by type.
type pushBatch struct {
	event         string
	ports         []ovoPort
	networks      []ovoNetwork
	groups        []ovoSecurityGroup
	rules         []ovoSGRule
	addressGroups []ovoAddressGroup
}

// decodePush decodes a push's arguments into the primitives the agent consumes.
func decodePush(method string, raw json.RawMessage) (*pushBatch, error) {
	var a pushArgs
	if err := decodeArgs(method, raw, &a); err != nil {
		return nil, err
	}
	switch a.EventType {
	case pushCreated, pushUpdated, pushDeleted:
	default:
		return nil, fmt.Errorf("%s: event_type %q", method, a.EventType)
	}
	b := &pushBatch{event: a.EventType}
	if err := decodeObjects(a.ResourceList, b); err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	return b, nil
}

// decodeObjects decodes OVO primitives (a push's resource_list, a bulk_pull's reply) into
// b, by type; an object without an id, or of a type not consumed, is an error.
func decodeObjects(list []json.RawMessage, b *pushBatch) error {
	for i, r := range list {
		var h ovoHeader
		if err := json.Unmarshal(r, &h); err != nil {
			return fmt.Errorf("resource_list[%d] %.200s: %w", i, r, err)
		}
		var err error
		switch h.Name {
		case "Port":
			b.ports, err = decodeObject(h, b.ports, func(p *ovoPort) string { return p.ID })
		case "Network":
			b.networks, err = decodeObject(h, b.networks, func(n *ovoNetwork) string { return n.ID })
		case "SecurityGroup":
			b.groups, err = decodeObject(h, b.groups, func(g *ovoSecurityGroup) string { return g.ID })
		case "SecurityGroupRule":
			b.rules, err = decodeObject(h, b.rules, func(r *ovoSGRule) string { return r.ID })
		case "AddressGroup":
			b.addressGroups, err = decodeObject(h, b.addressGroups, func(g *ovoAddressGroup) string { return g.ID })
		default:
			err = fmt.Errorf("object %q not consumed", h.Name)
		}
		if err != nil {
			return fmt.Errorf("resource_list[%d]: %w", i, err)
		}
	}
	return nil
}

// decodeObject decodes one primitive's data and appends it to list.
func decodeObject[T any](h ovoHeader, list []T, id func(*T) string) ([]T, error) {
	var v T
	if err := json.Unmarshal(h.Data, &v); err != nil || id(&v) == "" {
		return list, fmt.Errorf("%s %.200s: %v", h.Name, h.Data, orNoID(err))
	}
	return append(list, v), nil
}

func orNoID(err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("no id")
}

// applyPort applies a pushed Port; ok is false when the push is ignored (older than the
// cached revision, or the port was deleted).
func (c *pushed) applyPort(host, event string, p *ovoPort) (change portChange, ok bool) {
	if c.deletedPorts[p.ID] {
		return portChange{}, false
	}
	if event == pushDeleted {
		c.deletedPorts[p.ID] = true
		delete(c.ports, p.ID)
		delete(c.deviceIDs, p.ID)
		delete(c.portRevisions, p.ID)
		return portChange{id: p.ID, deleted: true}, true
	}
	if p.RevisionNumber != nil {
		if old, seen := c.portRevisions[p.ID]; seen && *p.RevisionNumber < old {
			return portChange{}, false
		}
		c.portRevisions[p.ID] = *p.RevisionNumber
	}
	d := p.detailsFor(host)
	if d == nil {
		delete(c.ports, p.ID)
		delete(c.deviceIDs, p.ID)
		return portChange{id: p.ID}, true
	}
	d.MTU = c.mtus[d.NetworkID]
	c.ports[p.ID] = d
	if p.DeviceID != "" {
		c.deviceIDs[p.ID] = p.DeviceID
	}
	return portChange{id: p.ID, details: d}, true
}

// applyNetwork applies a pushed Network; ok is false when the push is ignored.
func (c *pushed) applyNetwork(event string, n *ovoNetwork) (mtu int, ok bool) {
	if c.deletedNetworks[n.ID] {
		return 0, false
	}
	if event == pushDeleted {
		c.deletedNetworks[n.ID] = true
		delete(c.mtus, n.ID)
		delete(c.networkRevisions, n.ID)
		return 0, true
	}
	if n.RevisionNumber != nil {
		if old, seen := c.networkRevisions[n.ID]; seen && *n.RevisionNumber < old {
			return 0, false
		}
		c.networkRevisions[n.ID] = *n.RevisionNumber
	}
	if n.MTU == nil {
		return c.mtus[n.ID], true
	}
	c.mtus[n.ID] = *n.MTU
	for _, d := range c.ports {
		if d.NetworkID == n.ID {
			d.MTU = *n.MTU
		}
	}
	return *n.MTU, true
}

// clear forgets what was pushed (a resync: pushes may have been lost). The deletions stay:
// they are final.
func (c *pushed) clear() {
	clear(c.ports)
	clear(c.deviceIDs)
	clear(c.portRevisions)
	clear(c.networkRevisions)
}

// details returns a copy of a port's pushed details (nil: none).
func (c *pushed) details(id string) *DeviceDetails {
	d := c.ports[id]
	if d == nil {
		return nil
	}
	cp := *d
	cp.FixedIPs = slices.Clone(d.FixedIPs)
	cp.AllowedAddressPairs = slices.Clone(d.AllowedAddressPairs)
	return &cp
}
