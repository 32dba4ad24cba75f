package controller

import (
	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
)

// Preview is what the agent would install on a node, computed read-only by the code of a
// reconcile: the validated model, the flows per bridge and the binding, for the switch as
// an OVSDB inventory shows it. Local VLANs are recovered from the ports' tags, as the
// agent does when it restarts. Nothing is written.
type Preview struct {
	Model    *northbound.Model
	Problems []northbound.Problem
	Flows    map[string][]flows.Flow
	Binding  Binding
	// Waiting are the ports the flows leave out because they have no ofport yet.
	Waiting []string
	// TunnelErrors are tunnel ports that could not be made.
	TunnelErrors []error
}

// PreviewFlows computes a Preview of cfg and the snapshot on the switch inv holds.
func PreviewFlows(cfg *config.Config, snap *northbound.Snapshot, inv *ovsdb.Inventory) *Preview {
	valid, problems := northbound.Validate(*snap, cfg.Env())
	obs := observeInventory(cfg, inv)
	p, errs := computePlan(cfg, valid, nil, obs, NewLocalVLANs())
	for _, fs := range p.desired {
		flows.Sort(fs)
	}
	return &Preview{Model: valid, Problems: problems, Flows: p.desired, Binding: p.binding, Waiting: p.waiting, TunnelErrors: errs}
}

// observeInventory is observe (reconcile.go) on an inventory instead of the live cache.
func observeInventory(c *config.Config, inv *ovsdb.Inventory) Observed {
	obs := Observed{PortTags: map[string]int{}, IntPorts: map[string]uint32{}, PhyPorts: map[string]uint32{}, Ofports: map[string]int{}}
	for _, b := range inv.Bridges {
		for _, p := range b.Ports {
			obs.Ofports[p.Name] = p.Ofport
			if b.Name == c.IntegrationBridge {
				if p.Tag != 0 {
					obs.PortTags[p.Name] = p.Tag
				}
				if id := p.IfaceID(); id != "" {
					obs.VIFs = append(obs.VIFs, ovsdb.VIF{Name: p.Name, IfaceID: id, MAC: p.AttachedMAC(), Bridge: b.Name, Ofport: p.Ofport})
				}
			}
			if b.Name == c.TunnelBridge && c.TunnelingEnabled() {
				obs.TunnelBridgePorts = append(obs.TunnelBridgePorts, ovsdb.PortInfo{Name: p.Name, Type: p.Type, Options: p.Options, Ofport: p.Ofport})
			}
		}
	}
	valid := func(name string) uint32 { return uint32(max(obs.Ofports[name], 0)) }
	for _, physnet := range c.Physnets() {
		br := c.BridgeMappings[physnet]
		obs.IntPorts[physnet], obs.PhyPorts[physnet] = valid(IntPatchName(br)), valid(PhyPatchName(br))
	}
	if c.TunnelingEnabled() {
		obs.PatchTun, obs.PatchInt = valid(c.IntPeerPatchPort), valid(c.TunPeerPatchPort)
	}
	return obs
}
