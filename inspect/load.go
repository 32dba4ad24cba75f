package inspect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/explain"
	"github.com/dvrflow/dvrflow/flows/dumptext"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/topology"
)

// Options say where a node is: the agent's own flags (same meaning and defaults), or a
// directory holding a dump of it.
type Options struct {
	ConfigFiles     []string
	Topology        string
	OVSDBConnection string
	OVSRundir       string
	// FromDir reads DIR/BRIDGE.flows (`ovs-ofctl -O OpenFlow13 dump-flows` output, with or
	// without stats and names), DIR/ovsdb.json (`ovsdb-client dump -f json`, optional) and
	// DIR/topology.yaml or DIR/topology.json (optional) instead of a live switch.
	FromDir string
	// Bridges limits the bridges read; empty: every bridge of the node.
	Bridges []string
	// SkipFlows reads no flows: only the config, the topology and the inventory (what a
	// trace needs).
	SkipFlows bool
	// Defaults, when set, adjusts the config read from ConfigFiles (or Neutron's defaults)
	// before the topology and the flags apply: the running agent's view of the node, when
	// the CLI is given no config file.
	Defaults func(*config.Config)
}

// Node is one node read without writing: its config, topology, OVSDB inventory and every
// bridge's installed flows.
type Node struct {
	Config *config.Config
	// Snapshot is the topology as read, nil when none was given; Model is its objects
	// validated against the config as the agent validates them (invalid objects left out,
	// derived values such as subnets' gateway MACs filled in), nil without a topology.
	Snapshot  *northbound.Snapshot
	Model     *northbound.Model
	Inventory *ovsdb.Inventory
	Explainer *explain.Explainer
	// Bridges are the bridges read, in name order; Flows their installed flows (canonical:
	// ports and tables by number), in dump order.
	Bridges []string
	Flows   map[string][]dumptext.Flow
	// Warnings are problems that did not stop the reading (an unparsable config option,
	// a config check a debugging tool does not need to enforce).
	Warnings []string
	refs     map[string]*refNames
}

// Load reads a node.
func Load(ctx context.Context, o Options) (*Node, error) {
	n := &Node{Flows: map[string][]dumptext.Flow{}, refs: map[string]*refNames{}}
	cfg, warnings, err := config.LoadConfig(o.ConfigFiles...)
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		n.Warnings = append(n.Warnings, w.String())
	}
	if o.Defaults != nil {
		o.Defaults(cfg)
	}
	topoFile := o.Topology
	if topoFile == "" && o.FromDir != "" {
		for _, name := range []string{"topology.yaml", "topology.yml", "topology.json"} {
			if p := filepath.Join(o.FromDir, name); fileExists(p) {
				topoFile = p
				break
			}
		}
	}
	if topoFile == "" {
		topoFile = cfg.TopologyFile
	}
	if topoFile != "" {
		f, err := topology.Load(topoFile)
		if err != nil {
			return nil, err
		}
		n.Snapshot = f.Snapshot()
		cfg.ApplyHost(n.Snapshot.Host)
	}
	if o.OVSDBConnection != "" {
		cfg.OVSDBConnection = o.OVSDBConnection
	}
	if o.OVSRundir != "" {
		cfg.OVSRundir = o.OVSRundir
		// Without an explicit OVSDB endpoint, the run directory's db.sock (where a private
		// ovsdb-server listens) is preferred to Neutron's default TCP endpoint.
		sock := filepath.Join(o.OVSRundir, "db.sock")
		if o.OVSDBConnection == "" && cfg.OVSDBConnection == config.DefaultConfig().OVSDBConnection && fileExists(sock) {
			cfg.OVSDBConnection = "unix:" + sock
		}
	}
	if err := cfg.Validate(); err != nil {
		n.Warnings = append(n.Warnings, "config: "+err.Error())
	}
	n.Config = cfg

	switch {
	case o.FromDir != "":
		err = n.loadDir(o.FromDir, o.Bridges)
	case o.SkipFlows:
		if n.Inventory, err = ovsdb.ReadInventory(ctx, n.Config.OVSDBConnection); err != nil {
			err = fmt.Errorf("%w (give --ovsdb-connection or --ovs-rundir)", err)
		}
	default:
		err = n.loadLive(ctx, o.Bridges)
	}
	if err != nil {
		return nil, err
	}
	n.explain()
	return n, nil
}

// NewNode makes a node of parts already read: the effective config, the topology (nil for
// none), the OVSDB inventory and each bridge's dump (`ovs-ofctl dump-flows` text).
func NewNode(cfg *config.Config, snap *northbound.Snapshot, inv *ovsdb.Inventory, dumps map[string][]byte) (*Node, error) {
	n := &Node{Config: cfg, Snapshot: snap, Inventory: inv, Flows: map[string][]dumptext.Flow{}, refs: map[string]*refNames{}}
	for _, br := range slices.Sorted(maps.Keys(dumps)) {
		if err := n.addDump(br, dumps[br]); err != nil {
			return nil, err
		}
	}
	n.explain()
	return n, nil
}

func (n *Node) explain() {
	cfg := n.Config
	if n.Snapshot != nil {
		n.Model, _ = northbound.Validate(*n.Snapshot, cfg.Env())
	}
	n.Explainer = explain.New(explain.Node{Inventory: n.Inventory, Model: n.Model, Host: cfg.Host, DVRMAC: cfg.DVRMAC,
		IntegrationBridge: cfg.IntegrationBridge, TunnelBridge: cfg.TunnelBridge, BridgeMappings: cfg.BridgeMappings})
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// loadLive reads the inventory from OVSDB and each bridge's flows through its management
// socket.
func (n *Node) loadLive(ctx context.Context, only []string) error {
	inv, err := ovsdb.ReadInventory(ctx, n.Config.OVSDBConnection)
	if err != nil {
		return fmt.Errorf("%w (give --ovsdb-connection or --ovs-rundir)", err)
	}
	n.Inventory = inv
	bridges, err := n.selectBridges(only, func(string) bool { return true })
	if err != nil {
		return err
	}
	for _, br := range bridges {
		text, err := dumpFlows(ctx, filepath.Join(n.Config.SocketDir(), br+".mgmt"))
		if err != nil {
			return fmt.Errorf("bridge %s: %w", br, err)
		}
		if err := n.addDump(br, text); err != nil {
			return err
		}
	}
	return nil
}

// dumpFlows runs ovs-ofctl on a bridge's management socket: its text is the one every
// operator and Neutron's reference dumps use, and OVS's own formatter renders every action
// any agent may have installed (docs/cli.md says why dvrflow does not render them itself).
func dumpFlows(ctx context.Context, socket string) ([]byte, error) {
	if _, err := os.Stat(socket); err != nil {
		return nil, fmt.Errorf("no management socket %s: is the bridge there and --ovs-rundir right?", socket)
	}
	cmd := exec.CommandContext(ctx, "ovs-ofctl", "-O", "OpenFlow13", "--no-names", "dump-flows", "unix:"+socket)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if errors.Is(err, exec.ErrNotFound) {
			return nil, errors.New("ovs-ofctl not found: dvrflow reads flows with Open vSwitch's own ovs-ofctl")
		}
		return nil, fmt.Errorf("ovs-ofctl dump-flows %s: %w: %s", socket, err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}

// loadDir reads a dump directory.
func (n *Node) loadDir(dir string, only []string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.flows"))
	if err != nil {
		return err
	}
	if len(files) == 0 {
		return fmt.Errorf("--from-dir %s: no BRIDGE.flows files", dir)
	}
	n.Inventory = &ovsdb.Inventory{}
	if p := filepath.Join(dir, "ovsdb.json"); fileExists(p) {
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		inv, err := ovsdb.ParseInventoryDump(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		n.Inventory = inv
	} else {
		n.Warnings = append(n.Warnings, fmt.Sprintf("no %s: ports, local VLANs and tunnels are not resolved", p))
	}
	have := map[string]string{}
	for _, f := range files {
		have[strings.TrimSuffix(filepath.Base(f), ".flows")] = f
	}
	bridges, err := n.selectBridges(only, func(br string) bool { _, ok := have[br]; return ok })
	if err != nil {
		return err
	}
	if len(only) == 0 {
		bridges = slices.Sorted(func(yield func(string) bool) {
			for br := range have {
				if !yield(br) {
					return
				}
			}
		})
	}
	for _, br := range bridges {
		text, err := os.ReadFile(have[br])
		if err != nil {
			return err
		}
		if err := n.addDump(br, text); err != nil {
			return err
		}
	}
	return nil
}

// selectBridges returns the requested bridges (each must exist), or every bridge.
func (n *Node) selectBridges(only []string, exists func(string) bool) ([]string, error) {
	var all []string
	for _, b := range n.Inventory.Bridges {
		all = append(all, b.Name)
	}
	if len(only) == 0 {
		return all, nil
	}
	for _, br := range only {
		_, inInventory := n.Inventory.Bridge(br)
		if !exists(br) || (len(all) > 0 && !inInventory && !exists(br)) {
			return nil, fmt.Errorf("no bridge %s on this node (bridges: %s)", br, strings.Join(all, ", "))
		}
	}
	return only, nil
}

// addDump parses a bridge's dump into canonical flows.
func (n *Node) addDump(br string, text []byte) error {
	refs := n.refNames(br)
	tables := func(name string) (uint8, bool) {
		num, ok := refs.tableNum[name]
		return num, ok
	}
	fs, err := dumptext.Parse(bytes.NewReader(text), tables)
	if err != nil {
		return fmt.Errorf("bridge %s: %w", br, err)
	}
	for i := range fs {
		if !fs[i].TableResolved {
			return fmt.Errorf("bridge %s: table %q is no table this node names", br, fs[i].TableName)
		}
		refs.canonical(&fs[i])
	}
	n.Flows[br] = fs
	n.Bridges = append(n.Bridges, br)
	sort.Strings(n.Bridges)
	return nil
}

// refNames builds a bridge's name maps from the inventory and the pipeline's table names.
func (n *Node) refNames(br string) *refNames {
	if r, ok := n.refs[br]; ok {
		return r
	}
	r := &refNames{portName: map[int]string{}, portNum: map[string]int{}, tableName: map[uint8]string{}, tableNum: map[string]uint8{}}
	if b, ok := n.Inventory.Bridge(br); ok {
		for _, p := range b.Ports {
			if p.Ofport > 0 {
				r.portName[p.Ofport], r.portNum[p.Name] = p.Name, p.Ofport
			}
		}
		for num, name := range b.Tables {
			r.tableName[num], r.tableNum[name] = name, num
		}
	}
	// A dump taken with --names on a dvrflow node names tables by the pipeline's names.
	for _, name := range pipelineTableNames(n.Config, br) {
		if _, ok := r.tableNum[name.name]; !ok {
			r.tableNum[name.name] = name.number
		}
	}
	n.refs[br] = r
	return r
}

// PatchPort is one end of a patch port pair: the port on Bridge whose peer is PeerPort on
// PeerBridge.
type PatchPort struct {
	Bridge, Port, PeerBridge, PeerPort string
}

// PatchPorts lists the switch's patch ports (interfaces of type patch whose options:peer
// is a port of a bridge), sorted by bridge and port.
func (n *Node) PatchPorts() []PatchPort {
	bridgeOf := map[string]string{} // port name → bridge
	for _, b := range n.Inventory.Bridges {
		for _, p := range b.Ports {
			bridgeOf[p.Name] = b.Name
		}
	}
	var out []PatchPort
	for _, b := range n.Inventory.Bridges {
		for _, p := range b.Ports {
			peer := p.Options["peer"]
			if p.Type != "patch" || peer == "" || bridgeOf[peer] == "" {
				continue
			}
			out = append(out, PatchPort{Bridge: b.Name, Port: p.Name, PeerBridge: bridgeOf[peer], PeerPort: peer})
		}
	}
	slices.SortFunc(out, func(a, b PatchPort) int {
		return strings.Compare(a.Bridge+"\x00"+a.Port, b.Bridge+"\x00"+b.Port)
	})
	return out
}
