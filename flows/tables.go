package flows

// Table is one OpenFlow table of a bridge's pipeline: Neutron's number and constant name.
// The names are also written into OVSDB (Flow_Table) so that plain
// `ovs-ofctl dump-flows --names` and `ofproto/trace` print them.
type Table struct {
	Number  uint8
	Name    string
	Purpose string
}

// Pipeline is the ordered table catalogue of one kind of bridge.
type Pipeline []Table

// Names returns number → name, for Names.Tables and for OVSDB.
func (p Pipeline) Names() map[uint8]string {
	m := make(map[uint8]string, len(p))
	for _, t := range p {
		m[t.Number] = t.Name
	}
	return m
}

// Lookup returns the table with the given number.
func (p Pipeline) Lookup(n uint8) (Table, bool) {
	for _, t := range p {
		if t.Number == n {
			return t, true
		}
	}
	return Table{}, false
}

// Neutron's table numbers (neutron_lib.plugins.ml2.ovs_constants).
const (
	LocalSwitching             uint8 = 0
	DVRToSrcMAC                uint8 = 1
	DVRToSrcMACPhysical        uint8 = 2
	ARPDVRMACToDstMAC          uint8 = 3
	ARPDVRMACToDstMACPhysical  uint8 = 4
	CanaryTable                uint8 = 23
	ARPSpoofTable              uint8 = 24
	MACSpoofTable              uint8 = 25
	LocalEgressTable           uint8 = 30
	LocalIPTable               uint8 = 31
	PacketRateLimit            uint8 = 59
	TransientTable             uint8 = 60
	LocalMACDirect             uint8 = 61
	TransientEgressTable       uint8 = 62
	BaseEgressTable            uint8 = 71
	RulesEgressTable           uint8 = 72
	AcceptOrIngressTable       uint8 = 73
	DHCPIPv4Table              uint8 = 77
	DHCPIPv6Table              uint8 = 78
	BaseIngressTable           uint8 = 81
	RulesIngressTable          uint8 = 82
	AcceptedEgressTraffic      uint8 = 91
	AcceptedIngressTraffic     uint8 = 92
	DroppedTraffic             uint8 = 93
	AcceptedEgressTrafficNorml uint8 = 94

	DVRProcess      uint8 = 1
	PatchLVToTun    uint8 = 2
	GRETunToLV      uint8 = 3
	VXLANTunToLV    uint8 = 4
	GeneveTunToLV   uint8 = 6
	DVRNotLearn     uint8 = 9
	LearnFromTun    uint8 = 10
	UcastToTun      uint8 = 20
	ARPResponder    uint8 = 21
	FloodToTun      uint8 = 22
	BagpipeFloodBcs uint8 = 222

	DVRProcessPhysical   uint8 = 1
	LocalVLANTranslation uint8 = 2
	DVRNotLearnPhysical  uint8 = 3
)

// IntegrationPipeline is br-int's table catalogue.
var IntegrationPipeline = Pipeline{
	{LocalSwitching, "LOCAL_SWITCHING", "classify: dead VLAN, ingress VLAN translation, spoofing redirects, DVR MAC steering"},
	{DVRToSrcMAC, "DVR_TO_SRC_MAC", "DVR from tunnels: rewrite source MAC to the gateway MAC"},
	{DVRToSrcMACPhysical, "DVR_TO_SRC_MAC_PHYSICAL", "DVR from vlan/flat: rewrite source MAC to the gateway MAC"},
	{ARPDVRMACToDstMAC, "ARP_DVR_MAC_TO_DST_MAC", "DVR from tunnels: unicast to this host's DVR MAC → router port"},
	{ARPDVRMACToDstMACPhysical, "ARP_DVR_MAC_TO_DST_MAC_PHYSICAL", "DVR from vlan/flat: unicast to this host's DVR MAC → router port"},
	{CanaryTable, "CANARY", "one drop flow; its absence means ovs-vswitchd restarted"},
	{ARPSpoofTable, "ARP_SPOOF", "allowed ARP sender IPs and ND targets per port"},
	{MACSpoofTable, "MAC_SPOOF", "allowed source MACs per port"},
	{LocalEgressTable, "LOCAL_EGRESS", "local-IP egress hook"},
	{LocalIPTable, "LOCAL_IP", "local-IP translation"},
	{PacketRateLimit, "PACKET_RATE_LIMIT", "packet-rate meters"},
	{TransientTable, "TRANSIENT", "final decision: NORMAL, or DVR direct output"},
	{LocalMACDirect, "LOCAL_MAC_DIRECT", "explicit egress direct output (ingress)"},
	{TransientEgressTable, "TRANSIENT_EGRESS", "explicit egress direct output (egress)"},
	{BaseEgressTable, "BASE_EGRESS", "OVS firewall"},
	{RulesEgressTable, "RULES_EGRESS", "OVS firewall"},
	{AcceptOrIngressTable, "ACCEPT_OR_INGRESS", "OVS firewall"},
	{DHCPIPv4Table, "DHCP_IPV4", "OpenFlow DHCP (IPv4)"},
	{DHCPIPv6Table, "DHCP_IPV6", "OpenFlow DHCP (IPv6)"},
	{BaseIngressTable, "BASE_INGRESS", "OVS firewall"},
	{RulesIngressTable, "RULES_INGRESS", "OVS firewall"},
	{AcceptedEgressTraffic, "ACCEPTED_EGRESS_TRAFFIC", "OVS firewall"},
	{AcceptedIngressTraffic, "ACCEPTED_INGRESS_TRAFFIC", "OVS firewall"},
	{DroppedTraffic, "DROPPED_TRAFFIC", "OVS firewall"},
	{AcceptedEgressTrafficNorml, "ACCEPTED_EGRESS_TRAFFIC_NORMAL", "OVS firewall final NORMAL"},
}

// TunnelPipeline is br-tun's table catalogue.
var TunnelPipeline = Pipeline{
	{LocalSwitching, "LOCAL_SWITCHING", "classify by in_port: from br-int or from a tunnel"},
	{DVRProcess, "DVR_PROCESS", "DVR: drop to the local router MAC, rewrite router source MAC to the DVR MAC"},
	{PatchLVToTun, "PATCH_LV_TO_TUN", "from br-int: ARP broadcast, unicast, flood"},
	{GRETunToLV, "GRE_TUN_TO_LV", "GRE key → local VLAN"},
	{VXLANTunToLV, "VXLAN_TUN_TO_LV", "VNI → local VLAN"},
	{GeneveTunToLV, "GENEVE_TUN_TO_LV", "Geneve VNI → local VLAN"},
	{DVRNotLearn, "DVR_NOT_LEARN", "DVR: frames from remote DVR MACs skip learning"},
	{LearnFromTun, "LEARN_FROM_TUN", "learn remote MAC → tunnel port"},
	{UcastToTun, "UCAST_TO_TUN", "known unicast to tunnels"},
	{ARPResponder, "ARP_RESPONDER", "local ARP replies (l2population)"},
	{FloodToTun, "FLOOD_TO_TUN", "flood to the network's tunnels"},
}

// PhysicalPipeline is the table catalogue of a physical bridge (br-vlan, br-ex, ...).
var PhysicalPipeline = Pipeline{
	{LocalSwitching, "LOCAL_SWITCHING", "VLAN translation (legacy) or split by in_port (DVR)"},
	{DVRProcessPhysical, "DVR_PROCESS_PHYSICAL", "DVR: drop to the gateway, rewrite router source MAC to the DVR MAC"},
	{LocalVLANTranslation, "LOCAL_VLAN_TRANSLATION", "DVR: local VLAN → provider VLAN"},
	{DVRNotLearnPhysical, "DVR_NOT_LEARN_PHYSICAL", "DVR: frames from remote DVR MACs straight to br-int"},
	{FloodToTun, "FLOOD_TO_TUN", "Neutron's gateway ARP/RA drops (unreached on physical bridges)"},
}
