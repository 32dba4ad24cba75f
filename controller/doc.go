// Package controller is the agent: it binds the VIFs OVSDB reports to the ports of the
// northbound model (local VLANs, tags), and keeps the node's bridges, patch and tunnel
// ports and flows equal to what the model asks for, through one event loop.
//
// The agent takes [northbound.Snapshot]s and validates them against its config
// (package config); it does not know which source produced them (the topology file, or
// Neutron). Every change — a new snapshot, a VIF plugged, unplugged or given its ofport, one
// of its own ports given its ofport, a bridge deleted, ovs-vswitchd restarted — leads to the
// same reconcile ([Agent.Reconcile]):
//
//  1. observe: read the OVSDB cache (VIFs, tags, the ofports of patch and tunnel ports);
//  2. plan: compute everything — binding and local VLANs, tunnel ports, every bridge's
//     flows with the pure generators (package pipeline), the tags to change — before
//     anything is written;
//  3. apply, in the order that keeps traffic safe: bridges, patch and tunnel ports (one
//     OVSDB transaction, none when all is there); every bridge's flows (one bundle each,
//     confirmed by a barrier); the tags; the removal of tunnel ports no flow uses any more.
//
// Nothing in a reconcile waits for an ofport: a port without one is left out of the flows
// and reported in [Report.Waiting], and the loop reconciles again when OVSDB reports it.
// [Agent.Converge] does the same for one-shot runs. Router namespaces (dvr/namespace) are a
// separate applier fed from the same model.
package controller
