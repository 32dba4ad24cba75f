package flows

import "strconv"

// The tables of each kind of bridge have their own Go type, so that a flow cannot be given a
// table of another kind of bridge: br-int's are IntTable, br-tun's TunTable, a physical
// bridge's PhysTable. The numbers are Neutron's (neutron_lib.plugins.ml2.ovs_constants) and
// overlap between kinds (table 1 is DVR_TO_SRC_MAC on br-int, DVR_PROCESS on br-tun and
// DVR_PROCESS_PHYSICAL on a physical bridge); the types keep them apart.
type (
	// IntTable is a table of the integration bridge (br-int).
	IntTable uint8
	// TunTable is a table of the tunnel bridge (br-tun).
	TunTable uint8
	// PhysTable is a table of a physical bridge (br-vlan, br-ex, ...).
	PhysTable uint8
)

// BridgeTable is the table type of one kind of bridge.
type BridgeTable interface {
	IntTable | TunTable | PhysTable
}

// br-int's tables.
const (
	IntLocalSwitching              IntTable = 0
	IntDVRToSrcMAC                 IntTable = 1
	IntDVRToSrcMACPhysical         IntTable = 2
	IntARPDVRMACToDstMAC           IntTable = 3
	IntARPDVRMACToDstMACPhysical   IntTable = 4
	IntCanary                      IntTable = 23
	IntARPSpoof                    IntTable = 24
	IntMACSpoof                    IntTable = 25
	IntLocalEgress                 IntTable = 30
	IntLocalIP                     IntTable = 31
	IntPacketRateLimit             IntTable = 59
	IntTransient                   IntTable = 60
	IntLocalMACDirect              IntTable = 61
	IntTransientEgress             IntTable = 62
	IntBaseEgress                  IntTable = 71
	IntRulesEgress                 IntTable = 72
	IntAcceptOrIngress             IntTable = 73
	IntDHCPIPv4                    IntTable = 77
	IntDHCPIPv6                    IntTable = 78
	IntBaseIngress                 IntTable = 81
	IntRulesIngress                IntTable = 82
	IntAcceptedEgressTraffic       IntTable = 91
	IntAcceptedIngressTraffic      IntTable = 92
	IntDroppedTraffic              IntTable = 93
	IntAcceptedEgressTrafficNormal IntTable = 94
)

// br-tun's tables.
const (
	TunLocalSwitching  TunTable = 0
	TunDVRProcess      TunTable = 1
	TunPatchLVToTun    TunTable = 2
	TunGRETunToLV      TunTable = 3
	TunVXLANTunToLV    TunTable = 4
	TunGeneveTunToLV   TunTable = 6
	TunDVRNotLearn     TunTable = 9
	TunLearnFromTun    TunTable = 10
	TunUcastToTun      TunTable = 20
	TunARPResponder    TunTable = 21
	TunFloodToTun      TunTable = 22
	TunBagpipeFloodBcs TunTable = 222
)

// A physical bridge's tables.
const (
	PhysLocalSwitching       PhysTable = 0
	PhysDVRProcess           PhysTable = 1 // Neutron's DVR_PROCESS_PHYSICAL
	PhysLocalVLANTranslation PhysTable = 2
	PhysDVRNotLearn          PhysTable = 3 // Neutron's DVR_NOT_LEARN_PHYSICAL
	PhysFloodToTun           PhysTable = 22
)

// Table is one OpenFlow table of a bridge's pipeline: Neutron's number and constant name.
// The names are also written into OVSDB (Flow_Table) so that plain
// `ovs-ofctl dump-flows --names` and `ofproto/trace` print them. The catalogue speaks the
// switch's language (plain numbers): it names tables, it does not build flows.
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

// name returns the name of table n, or its number when the catalogue does not list it.
func (p Pipeline) name(n uint8) string {
	if t, ok := p.Lookup(n); ok {
		return t.Name
	}
	return strconv.Itoa(int(n))
}

// String returns the table's Neutron name (LOCAL_SWITCHING), or its number if it has none.
func (t IntTable) String() string { return IntegrationPipeline.name(uint8(t)) }

// String returns the table's Neutron name (DVR_PROCESS), or its number if it has none.
func (t TunTable) String() string { return TunnelPipeline.name(uint8(t)) }

// String returns the table's Neutron name (DVR_PROCESS_PHYSICAL), or its number if it has
// none.
func (t PhysTable) String() string { return PhysicalPipeline.name(uint8(t)) }

// IntegrationPipeline is br-int's table catalogue.
var IntegrationPipeline = Pipeline{
	{uint8(IntLocalSwitching), "LOCAL_SWITCHING", "classify: dead VLAN, ingress VLAN translation, spoofing redirects, DVR MAC steering"},
	{uint8(IntDVRToSrcMAC), "DVR_TO_SRC_MAC", "DVR from tunnels: rewrite source MAC to the gateway MAC"},
	{uint8(IntDVRToSrcMACPhysical), "DVR_TO_SRC_MAC_PHYSICAL", "DVR from vlan/flat: rewrite source MAC to the gateway MAC"},
	{uint8(IntARPDVRMACToDstMAC), "ARP_DVR_MAC_TO_DST_MAC", "DVR from tunnels: unicast to this host's DVR MAC → router port"},
	{uint8(IntARPDVRMACToDstMACPhysical), "ARP_DVR_MAC_TO_DST_MAC_PHYSICAL", "DVR from vlan/flat: unicast to this host's DVR MAC → router port"},
	{uint8(IntCanary), "CANARY", "one drop flow; its absence means ovs-vswitchd restarted"},
	{uint8(IntARPSpoof), "ARP_SPOOF", "allowed ARP sender IPs and ND targets per port"},
	{uint8(IntMACSpoof), "MAC_SPOOF", "allowed source MACs per port"},
	{uint8(IntLocalEgress), "LOCAL_EGRESS", "local-IP egress hook"},
	{uint8(IntLocalIP), "LOCAL_IP", "local-IP translation"},
	{uint8(IntPacketRateLimit), "PACKET_RATE_LIMIT", "packet-rate meters"},
	{uint8(IntTransient), "TRANSIENT", "final decision: NORMAL, or DVR direct output"},
	{uint8(IntLocalMACDirect), "LOCAL_MAC_DIRECT", "explicit egress direct output (ingress)"},
	{uint8(IntTransientEgress), "TRANSIENT_EGRESS", "explicit egress direct output (egress)"},
	{uint8(IntBaseEgress), "BASE_EGRESS", "OVS firewall"},
	{uint8(IntRulesEgress), "RULES_EGRESS", "OVS firewall"},
	{uint8(IntAcceptOrIngress), "ACCEPT_OR_INGRESS", "OVS firewall"},
	{uint8(IntDHCPIPv4), "DHCP_IPV4", "OpenFlow DHCP (IPv4)"},
	{uint8(IntDHCPIPv6), "DHCP_IPV6", "OpenFlow DHCP (IPv6)"},
	{uint8(IntBaseIngress), "BASE_INGRESS", "OVS firewall"},
	{uint8(IntRulesIngress), "RULES_INGRESS", "OVS firewall"},
	{uint8(IntAcceptedEgressTraffic), "ACCEPTED_EGRESS_TRAFFIC", "OVS firewall"},
	{uint8(IntAcceptedIngressTraffic), "ACCEPTED_INGRESS_TRAFFIC", "OVS firewall"},
	{uint8(IntDroppedTraffic), "DROPPED_TRAFFIC", "OVS firewall"},
	{uint8(IntAcceptedEgressTrafficNormal), "ACCEPTED_EGRESS_TRAFFIC_NORMAL", "OVS firewall final NORMAL"},
}

// TunnelPipeline is br-tun's table catalogue.
var TunnelPipeline = Pipeline{
	{uint8(TunLocalSwitching), "LOCAL_SWITCHING", "classify by in_port: from br-int or from a tunnel"},
	{uint8(TunDVRProcess), "DVR_PROCESS", "DVR: drop to the local router MAC, rewrite router source MAC to the DVR MAC"},
	{uint8(TunPatchLVToTun), "PATCH_LV_TO_TUN", "from br-int: ARP broadcast, unicast, flood"},
	{uint8(TunGRETunToLV), "GRE_TUN_TO_LV", "GRE key → local VLAN"},
	{uint8(TunVXLANTunToLV), "VXLAN_TUN_TO_LV", "VNI → local VLAN"},
	{uint8(TunGeneveTunToLV), "GENEVE_TUN_TO_LV", "Geneve VNI → local VLAN"},
	{uint8(TunDVRNotLearn), "DVR_NOT_LEARN", "DVR: frames from remote DVR MACs skip learning"},
	{uint8(TunLearnFromTun), "LEARN_FROM_TUN", "learn remote MAC → tunnel port"},
	{uint8(TunUcastToTun), "UCAST_TO_TUN", "known unicast to tunnels"},
	{uint8(TunARPResponder), "ARP_RESPONDER", "local ARP replies (l2population)"},
	{uint8(TunFloodToTun), "FLOOD_TO_TUN", "flood to the network's tunnels"},
}

// PhysicalPipeline is the table catalogue of a physical bridge (br-vlan, br-ex, ...).
var PhysicalPipeline = Pipeline{
	{uint8(PhysLocalSwitching), "LOCAL_SWITCHING", "VLAN translation (legacy) or split by in_port (DVR)"},
	{uint8(PhysDVRProcess), "DVR_PROCESS_PHYSICAL", "DVR: drop to the gateway, rewrite router source MAC to the DVR MAC"},
	{uint8(PhysLocalVLANTranslation), "LOCAL_VLAN_TRANSLATION", "DVR: local VLAN → provider VLAN"},
	{uint8(PhysDVRNotLearn), "DVR_NOT_LEARN_PHYSICAL", "DVR: frames from remote DVR MACs straight to br-int"},
	{uint8(PhysFloodToTun), "FLOOD_TO_TUN", "Neutron's gateway ARP/RA drops (unreached on physical bridges)"},
}
