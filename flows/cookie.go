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

// The flow categories, named after what Neutron's agent calls the same work.
const (
	CategoryUnknown         Category = iota
	CategoryBaseline                 // setup_default_table: per-bridge defaults
	CategoryPhysicalPatch            // per physnet patch-port flows
	CategoryLocalVLAN                // provision_local_vlan: per network
	CategoryPort                     // port binding, dead ports
	CategorySpoofing                 // ARP/MAC/ND spoofing protection, per port
	CategoryDVRMAC                   // add_dvr_mac_*: per DVR MAC
	CategoryDVRRouterPort            // install_dvr_process / dst_mac_for_arp: per router interface
	CategoryDVRServicedPort          // install_dvr_to_src_mac: per DVR-serviced port
	CategoryTunnelPort               // setup_tunnel_port: per tunnel port
	CategoryFlood                    // install_flood_to_tun: per network
	CategoryL2popUnicast             // install_unicast_to_tun: per remote port
	CategoryARPResponder             // install_arp_responder: per remote IP
	CategoryTest                     // flows written by tests and benchmarks
)

var categoryNames = [...]string{
	CategoryUnknown: "unknown", CategoryBaseline: "baseline", CategoryPhysicalPatch: "physical-patch",
	CategoryLocalVLAN: "local-vlan", CategoryPort: "port", CategorySpoofing: "spoofing",
	CategoryDVRMAC: "dvr-mac", CategoryDVRRouterPort: "dvr-router-port",
	CategoryDVRServicedPort: "dvr-serviced-port", CategoryTunnelPort: "tunnel-port",
	CategoryFlood: "flood", CategoryL2popUnicast: "l2pop-unicast", CategoryARPResponder: "arp-responder",
	CategoryTest: "test",
}

func (c Category) String() string {
	if int(c) < len(categoryNames) && categoryNames[c] != "" {
		return categoryNames[c]
	}
	return fmt.Sprintf("category-%d", uint8(c))
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
