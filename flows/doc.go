// Package flows is dvrflow's model of OpenFlow flows and its one write path to a switch:
// the flow model (Flow, Match, Action) with its OpenFlow 1.3 encoding and ovs-ofctl text,
// the table catalogue of every kind of bridge, cookies and their human meaning, and
// Bridge, which turns a desired flow set into one bundle of differences.
//
// # Tables are typed per kind of bridge
//
// Neutron numbers the tables of br-int, br-tun and the physical bridges independently, and
// the numbers overlap: table 1 is DVR_TO_SRC_MAC on br-int, DVR_PROCESS on br-tun and
// DVR_PROCESS_PHYSICAL on br-vlan. So each kind has its own table type — IntTable, TunTable,
// PhysTable, named uint8 types whose constants carry the kind in their name (IntCanary,
// TunDVRProcess, PhysLocalVLANTranslation) — and its own catalogue (IntegrationPipeline,
// TunnelPipeline, PhysicalPipeline) for names.
//
// Generators never build a Flow directly. They build a TableFlow of the bridge's kind
// (IntFlow, TunFlow, PhysFlow: a Flow whose Table has that kind's type) and add it through
// the bridge's Target (IntTarget, TunTarget, PhysTarget over the bridge's flow list), whose
// Add accepts only flows of that kind. A br-tun table on a physical bridge therefore does
// not compile:
//
//	phys.Add(flows.PhysFlow{Table: flows.TunDVRProcess}) // cannot use TunTable as PhysTable
//
// goto_table and resubmit take typed tables too (Goto, ResubmitTo: a bare number does not
// compile), so every table a generator names says which kind of bridge it belongs to.
// Which flow list is which bridge is decided once, where a generator makes its Targets.
//
// Below the Targets — the diff, the bundle, the text, the switch's catalogue names — a
// table is what the switch sees, a plain number (Flow.Table, GotoTable.Table): that side
// reads flows back from switches and must take any number.
package flows
