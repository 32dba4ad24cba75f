package tunnels

import (
	"crypto/sha1"
	"encoding/base32"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
)

// deviceNameMaxLen is the longest OVS port / Linux interface name (15 characters plus the
// terminating NUL), neutron-lib's DEVICE_NAME_MAX_LEN.
const deviceNameMaxLen = 15

// DefaultVXLANUDPPort is the IANA VXLAN port; Neutron only sets dst_port for another one.
const DefaultVXLANUDPPort = 4789

// PortName returns the name Neutron gives the tunnel port of type tunnelType towards
// remoteIP (its agent's get_tunnel_name): "<type>-<hash>", at most 15 characters. For an
// IPv4 peer the hash is the address in 8 lower-case hex digits (vxlan-c0a8010a for
// 192.168.1.10); for an IPv6 peer it is the lower-case base32 of the SHA-1 of the address
// text, cut to what fits (vxlan-pehtjzksi for 2001:db8::2).
//
// Neutron hashes the address text as the server sent it; dvrflow hashes the canonical form
// (RFC 5952, what netip prints), so a peer whose local_ip was configured in another spelling
// (leading zeros, no "::") gets another name than Neutron would give it. It returns "" for
// an invalid address.
func PortName(tunnelType northbound.NetworkType, remoteIP netip.Addr) string {
	switch {
	case !remoteIP.IsValid():
		return ""
	case remoteIP.Is4():
		a := remoteIP.As4()
		return fmt.Sprintf("%s-%02x%02x%02x%02x", tunnelType, a[0], a[1], a[2], a[3])
	}
	sum := sha1.Sum([]byte(remoteIP.String()))
	hash := strings.ToLower(base32.StdEncoding.EncodeToString(sum[:]))
	return string(tunnelType) + "-" + hash[:max(0, deviceNameMaxLen-len(tunnelType)-1)]
}

// PortSettings are the agent options that shape a tunnel port's OVSDB Interface (Neutron's
// [ovs] local_ip and [agent] vxlan_udp_port, dont_fragment, tunnel_csum, dscp,
// dscp_inherit), plus one fact about the switch. The zero value is not Neutron's default:
// set DontFragment (default true) explicitly.
type PortSettings struct {
	// LocalIP is the tunnel endpoint of this host.
	LocalIP netip.Addr
	// VXLANUDPPort is the VXLAN destination port; 0 or 4789 means the default (no dst_port).
	VXLANUDPPort int
	// DontFragment sets df_default.
	DontFragment bool
	// TunnelCsum sets csum=true.
	TunnelCsum bool
	// DSCP is the tunnels' DSCP (0–63), nil when unset; as in Neutron, 0 sets no tos.
	DSCP *int
	// DSCPInherit copies the inner packet's DSCP (tos=inherit); it wins over DSCP.
	DSCPInherit bool
	// HWOffload is OVS's other_config:hw-offload=true, under which Neutron leaves out
	// egress_pkt_mark (packet marks are not offloaded).
	HWOffload bool
}

// PortOptions returns the OVSDB Interface type and options Neutron's add_tunnel_port sets
// for a tunnel port of tunnelType (vxlan, gre, geneve) towards remoteIP: type vxlan, gre
// (ip6gre when either endpoint is IPv6, with packet_type=legacy_l2) or geneve; options
// remote_ip, local_ip, in_key=flow, out_key=flow, df_default, dst_port (VXLAN on a
// non-default port only), egress_pkt_mark=0 (unless hardware offload), csum=true (only with
// tunnel_csum) and tos (inherit, or dscp<<2).
//
// It fails where Neutron creates no port: an unknown tunnel type, an invalid address, or
// local and remote endpoints of different IP versions.
func PortOptions(tunnelType northbound.NetworkType, remoteIP netip.Addr, s PortSettings) (ifaceType string, options map[string]string, err error) {
	if _, ok := tunnelTable(tunnelType); !ok {
		return "", nil, fmt.Errorf("tunnel type %q is not one of vxlan, gre, geneve", tunnelType)
	}
	if !remoteIP.IsValid() || !s.LocalIP.IsValid() {
		return "", nil, fmt.Errorf("%s tunnel needs a valid local and remote IP (local %s, remote %s)", tunnelType, s.LocalIP, remoteIP)
	}
	if remoteIP.Is4() != s.LocalIP.Is4() {
		return "", nil, fmt.Errorf("IP version mismatch, cannot create %s tunnel: local_ip %s, remote_ip %s", tunnelType, s.LocalIP, remoteIP)
	}
	ifaceType = string(tunnelType)
	options = map[string]string{
		"df_default": strconv.FormatBool(s.DontFragment),
		"remote_ip":  remoteIP.String(),
		"local_ip":   s.LocalIP.String(),
		"in_key":     "flow",
		"out_key":    "flow",
	}
	if tunnelType == northbound.VXLAN && s.VXLANUDPPort != 0 && s.VXLANUDPPort != DefaultVXLANUDPPort {
		options["dst_port"] = strconv.Itoa(s.VXLANUDPPort)
	}
	if !s.HWOffload {
		options["egress_pkt_mark"] = "0"
	}
	if s.TunnelCsum {
		options["csum"] = "true"
	}
	switch {
	case s.DSCPInherit:
		options["tos"] = "inherit"
	case s.DSCP != nil && *s.DSCP != 0:
		options["tos"] = strconv.Itoa(*s.DSCP << 2)
	}
	if tunnelType == northbound.GRE && remoteIP.Is6() {
		ifaceType = "ip6gre"
		options["packet_type"] = "legacy_l2"
	}
	return ifaceType, options, nil
}

// tunnelTable returns the br-tun table that maps a tunnel type's key to a local VLAN
// (Neutron's TUN_TABLE).
func tunnelTable(tunnelType northbound.NetworkType) (flows.TunTable, bool) {
	switch tunnelType {
	case northbound.GRE:
		return flows.TunGRETunToLV, true
	case northbound.VXLAN:
		return flows.TunVXLANTunToLV, true
	case northbound.Geneve:
		return flows.TunGeneveTunToLV, true
	}
	return 0, false
}
