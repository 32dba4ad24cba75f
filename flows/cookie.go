package flows

import (
	"fmt"
)

// Cookies say who made a flow and why. Layout of the 64 bits:
//
//	63..48  owner mark: OwnerMark for every flow dvrflow writes
//	47..40  category: the generator that made the flow (Category)
//	39..0   object: 40-bit FNV-1a hash of the owning object's id (port, network, MAC, ...)
//
// The agent only ever deletes flows that carry OwnerMark, so flows written by anyone else
// survive. The CLI maps category and object back to names.
const (
	OwnerMark  uint64 = 0xd7f1 << 48
	OwnerMask  uint64 = 0xffff << 48
	objectMask uint64 = 1<<40 - 1
)

// Category names the generator of a flow. Values are stable: they are written into switches.
type Category uint8

// The flow categories, named after what Neutron's agent calls the same work. Each comment
// says what the cookie's object is (Category.Object).
const (
	CategoryUnknown         Category = iota
	CategoryBaseline                 // setup_default_table: per-bridge defaults; object: bridge name
	CategoryPhysicalPatch            // per physnet patch-port flows; object: physnet
	CategoryLocalVLAN                // provision_local_vlan: object: network id
	CategoryPort                     // port binding, dead ports; object: port id
	CategorySpoofing                 // ARP/MAC/ND spoofing protection; object: port id
	CategoryDVRMAC                   // add_dvr_mac_*: object: DVR MAC
	CategoryDVRRouterPort            // install_dvr_process / dst_mac_for_arp: object: router interface port id
	CategoryDVRServicedPort          // install_dvr_to_src_mac: object: DVR-serviced port id
	CategoryTunnelPort               // setup_tunnel_port: object: tunnel port name
	CategoryFlood                    // install_flood_to_tun: object: network id
	CategoryL2popUnicast             // install_unicast_to_tun: object: "network id/MAC"
	CategoryARPResponder             // install_arp_responder: object: "network id/IP"
	CategoryTest                     // flows written by tests and benchmarks
	// Appended after CategoryTest: values already written into switches stay as they are.
	CategoryFirewall       // Neutron's OVS firewall, one port's flows (tables 60–94); object: port id
	CategoryFirewallRemote // a remote security group's or address group's addresses on one network, shared by the ports that use it; object: "network id/group id"
)

// categories holds each category's name and what its cookie's object is.
var categories = [...]struct{ name, object string }{
	CategoryUnknown:         {"unknown", "object"},
	CategoryBaseline:        {"baseline", "bridge"},
	CategoryPhysicalPatch:   {"physical-patch", "physnet"},
	CategoryLocalVLAN:       {"local-vlan", "network"},
	CategoryPort:            {"port", "port"},
	CategorySpoofing:        {"spoofing", "port"},
	CategoryDVRMAC:          {"dvr-mac", "DVR MAC"},
	CategoryDVRRouterPort:   {"dvr-router-port", "router interface"},
	CategoryDVRServicedPort: {"dvr-serviced-port", "port"},
	CategoryTunnelPort:      {"tunnel-port", "tunnel port"},
	CategoryFlood:           {"flood", "network"},
	CategoryL2popUnicast:    {"l2pop-unicast", "network/MAC"},
	CategoryARPResponder:    {"arp-responder", "network/IP"},
	CategoryTest:            {"test", "test object"},
	CategoryFirewall:        {"firewall", "port"},
	CategoryFirewallRemote:  {"firewall-remote", "network/remote group"},
}

// String returns the category's name ("dvr-mac"), or "category-N" for a value this
// version does not know.
func (c Category) String() string {
	if int(c) < len(categories) && categories[c].name != "" {
		return categories[c].name
	}
	return fmt.Sprintf("category-%d", uint8(c))
}

// Object says what kind of object the cookies of this category hash ("network", "DVR
// MAC", ...): whose id to hash to find the owner of a flow.
func (c Category) Object() string {
	if int(c) < len(categories) && categories[c].object != "" {
		return categories[c].object
	}
	return "object"
}

// Cookie returns the cookie for a flow of category c owned by the object with id object.
func Cookie(c Category, object string) uint64 {
	return OwnerMark | uint64(c)<<40 | ObjectHash(object)
}

// ObjectHash is the 40-bit hash of an object id stored in cookies.
func ObjectHash(object string) uint64 {
	// FNV-1a, 64 bits (hash/fnv's New64a, without its allocations).
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	for i := 0; i < len(object); i++ {
		h ^= uint64(object[i])
		h *= prime64
	}
	return h & objectMask
}

// IsOurs reports whether a cookie carries dvrflow's owner mark.
func IsOurs(cookie uint64) bool { return cookie&OwnerMask == OwnerMark }

// CookieCategory returns the category encoded in one of our cookies.
func CookieCategory(cookie uint64) Category { return Category(cookie >> 40 & 0xff) }

// CookieObject returns the object hash encoded in a cookie.
func CookieObject(cookie uint64) uint64 { return cookie & objectMask }

// CookieInfo is what a flow's cookie says: whether dvrflow wrote the flow, and if so which
// generator made it (Category) for which object (ObjectHash, the 40-bit hash of the
// object's id; ObjectNames turns it back into a name).
type CookieInfo struct {
	Cookie     uint64
	Ours       bool     // the cookie carries OwnerMark; the other fields are zero otherwise
	Category   Category // the generator
	ObjectHash uint64   // ObjectHash of the owning object's id
}

// DescribeCookie decodes a cookie.
func DescribeCookie(cookie uint64) CookieInfo {
	if !IsOurs(cookie) {
		return CookieInfo{Cookie: cookie}
	}
	return CookieInfo{Cookie: cookie, Ours: true, Category: CookieCategory(cookie), ObjectHash: CookieObject(cookie)}
}

// Text renders the cookie for people: the category and the object's name from names
// ("dvr-mac fa:16:3f:00:00:02 (compute2)"), or the kind of object and its hash when names
// lacks it ("dvr-mac DVR MAC 0x9a3c51f2e7"); a cookie without our mark is "foreign
// 0x...". names may be nil.
func (i CookieInfo) Text(names ObjectNames) string {
	if !i.Ours {
		return fmt.Sprintf("foreign %#x", i.Cookie)
	}
	if name, ok := names[i.ObjectHash]; ok {
		return i.Category.String() + " " + name
	}
	return fmt.Sprintf("%s %s %#x", i.Category, i.Category.Object(), i.ObjectHash)
}

// String is Text without names.
func (i CookieInfo) String() string { return i.Text(nil) }

// ObjectNames maps the object hashes of cookies back to readable names. Cookies hold only a
// hash, so whoever shows flows builds one from the objects it knows (ports, networks,
// bridges, DVR MACs).
type ObjectNames map[uint64]string

// Add names the object with the given id (what the generator hashed: a port id, a
// bridge name, a DVR MAC in lower case, ...).
func (n ObjectNames) Add(id, name string) { n[ObjectHash(id)] = name }
