package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/bench/topogen"
	"github.com/dvrflow/dvrflow/sandbox"
	"github.com/dvrflow/dvrflow/topology"
)

// node is one benchmark node: a sandbox host whose br-int holds the topology's ports, as
// the hypervisor plugged them, before any agent ran.
type node struct {
	params   topogen.Params
	host     *sandbox.Host
	hv       *hypervisor
	topo     *topology.File
	topoFile string
	ports    []string // the plugged port names (router interfaces first, then VMs)
	// plugTook is how long ovs-vswitchd took from the one-transaction insert of every port
	// until the last one had its ofport.
	plugTook time.Duration
}

// nodeFor starts a host for p and plugs every port of the generated topology into br-int in
// one transaction. The bridges (br-int, br-vlan) exist beforehand, bare, as a hypervisor
// and an operator would have made them; the agent adopts them.
func (b *bench) nodeFor(ctx context.Context, p topogen.Params) (_ *node, err error) {
	topo, err := topogen.Generate(p)
	if err != nil {
		return nil, err
	}
	n := &node{params: p, topo: topo, topoFile: filepath.Join(b.workDir, fmt.Sprintf("topology-%d.json", p.Ports))}
	if err := writeJSON(n.topoFile, topo); err != nil {
		return nil, err
	}
	n.host, err = b.startHost(ctx, fmt.Sprintf("bench-%d", p.Ports))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			b.stopHost(n.host)
		}
	}()
	for _, br := range []string{topogen.IntBridge, topogen.PhysBridge} {
		if _, err := n.host.Vsctl(ctx, "add-br", br, "--", "set", "bridge", br, "datapath_type=netdev"); err != nil {
			return nil, err
		}
	}
	n.hv, err = dialHypervisor(ctx, n.host.DBEndpoint(), b.vifType, b.log)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	n.ports, err = n.hv.plug(ctx, topogen.IntBridge, firstVIFOfport, topo.Ports)
	if err != nil {
		return nil, err
	}
	if err := n.hv.waitOfports(ctx, n.ports, plugTimeout(len(n.ports))); err != nil {
		return nil, err
	}
	n.plugTook = time.Since(start)
	if err := b.waitQuiet(ctx, n); err != nil {
		return nil, err
	}
	b.log.Info("node ready", zap.Int("ports", len(n.ports)), zap.Duration("vswitchd_port_creation", n.plugTook))
	return n, nil
}

// firstVIFOfport leaves ofports 1..9 to patch ports, as on a real node.
const firstVIFOfport = 10

// plugTimeout allows ovs-vswitchd about 20 ms per port, at least a minute.
func plugTimeout(ports int) time.Duration {
	return max(time.Minute, time.Duration(ports)*20*time.Millisecond)
}

func (n *node) close(b *bench) {
	if n.hv != nil {
		n.hv.close()
	}
	b.stopHost(n.host)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
