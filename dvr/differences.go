package dvr

import (
	"regexp"
	"slices"
)

// Bridge roles of a Difference: bridge names are configurable, roles are not.
const (
	RoleIntegration = "integration" // br-int
	RoleTunnel      = "tunnel"      // br-tun
	RolePhysical    = "physical"    // every bridge of bridge_mappings (br-vlan, br-ex, ...)
)

// Difference is one deliberate difference between the flows Neutron 21's agent installs and
// the flows dvrflow installs, stated on dump lines: `ovs-ofctl -O OpenFlow13 --no-stats
// --no-names dump-flows` output with the cookie blanked to "cookie=COOKIE, " (or removed),
// local VLANs and port numbers as they appear in the dump. docs/neutron-differences.md gives
// the reason for each and the test that pins it.
type Difference struct {
	// Name is the difference's heading in docs/neutron-differences.md.
	Name string
	// Bridge is the role of the bridge the lines are on: RoleIntegration, RoleTunnel or
	// RolePhysical.
	Bridge string
	// Neutron is an anchored regular expression for a line Neutron installs and dvrflow
	// does not.
	Neutron string
	// Ours is the line dvrflow installs in its place, as a regexp.Expand template over the
	// submatches of Neutron (${cookie}, ${vlan}, ...); empty when dvrflow installs nothing
	// in its place.
	Ours string
	// AfterRemoval marks a line Neutron leaves behind once its object is gone: it only
	// explains a dump taken after such a removal, never a freshly programmed node.
	AfterRemoval bool
}

// Pieces of the patterns below.
const (
	reCookie = `^(?P<cookie>cookie=COOKIE, )?`
	reMAC    = `[0-9a-f]{2}(?::[0-9a-f]{2}){5}`
	reIPv4   = `\d{1,3}(?:\.\d{1,3}){3}`
	// reVLAN is a VLAN id, or a local VLAN a parity test has replaced by its network
	// ("LV(network-id)"), which makes dumps of two switches comparable.
	reVLAN = `(?:\d+|LV\([^)]+\))`
)

// NeutronDifferences are the accepted differences from Neutron 21 in the DVR flows, for
// parity tests against Neutron's own dumps (see Explain).
var NeutronDifferences = []Difference{
	{
		Name:    "Gateway ARP drop on physical bridges is in table 1",
		Bridge:  RolePhysical,
		Neutron: reCookie + `table=22, priority=3,arp,dl_vlan=(?P<vlan>` + reVLAN + `),arp_tpa=(?P<ip>` + reIPv4 + `) actions=drop$`,
		Ours:    `${cookie}table=1, priority=3,arp,dl_vlan=${vlan},arp_tpa=${ip} actions=drop`,
	},
	{
		Name:    "Router advertisement drop on physical bridges is in table 1",
		Bridge:  RolePhysical,
		Neutron: reCookie + `table=22, priority=3,icmp6,dl_vlan=(?P<vlan>` + reVLAN + `),dl_src=(?P<mac>` + reMAC + `),icmp_type=134 actions=drop$`,
		Ours:    `${cookie}table=1, priority=3,icmp6,dl_vlan=${vlan},dl_src=${mac},icmp_type=134 actions=drop`,
	},
	{
		Name:         "Tables 3/4 flows go with their router interface",
		Bridge:       RoleIntegration,
		Neutron:      reCookie + `table=[34], priority=5,dl_vlan=` + reVLAN + `,dl_dst=` + reMAC + ` actions=set_field:` + reMAC + `->eth_dst,pop_vlan,output:\S+$`,
		AfterRemoval: true,
	},
}

var differencePatterns = func() []*regexp.Regexp {
	res := make([]*regexp.Regexp, len(NeutronDifferences))
	for i, d := range NeutronDifferences {
		res[i] = regexp.MustCompile(d.Neutron)
	}
	return res
}()

// Explain accounts for the lines of one bridge that only Neutron's dump has (neutronOnly)
// and that only dvrflow's has (oursOnly) through NeutronDifferences, and returns the lines
// no difference explains. A Neutron line is explained by a difference of the bridge's role
// whose Neutron pattern it matches, provided the difference's Ours line, expanded from that
// match, is among oursOnly (each of our lines explains one Neutron line). AfterRemoval
// differences count only when afterRemoval is set. Both results keep the input order.
func Explain(role string, neutronOnly, oursOnly []string, afterRemoval bool) (neutronLeft, oursLeft []string) {
	oursLeft = slices.Clone(oursOnly)
	for _, line := range neutronOnly {
		if !explainOne(role, line, &oursLeft, afterRemoval) {
			neutronLeft = append(neutronLeft, line)
		}
	}
	return neutronLeft, oursLeft
}

func explainOne(role, line string, ours *[]string, afterRemoval bool) bool {
	for i, d := range NeutronDifferences {
		if d.Bridge != role || (d.AfterRemoval && !afterRemoval) {
			continue
		}
		re := differencePatterns[i]
		m := re.FindStringSubmatchIndex(line)
		if m == nil {
			continue
		}
		if d.Ours == "" {
			return true
		}
		want := string(re.ExpandString(nil, d.Ours, line, m))
		if j := slices.Index(*ours, want); j >= 0 {
			*ours = slices.Delete(*ours, j, j+1)
			return true
		}
	}
	return false
}
