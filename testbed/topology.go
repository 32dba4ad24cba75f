package testbed

import (
	"fmt"

	"github.com/dvrflow/dvrflow/controller/config"
	"github.com/dvrflow/dvrflow/northbound"
	"github.com/dvrflow/dvrflow/topology"
)

// AgentTopology is a host's topology file (data, JSON or YAML) as the agent takes it: its
// host section over the default config (no ini files), the config checked, and the model
// validated against it. The error is a file that does not parse or a config the agent
// would refuse; problems are the objects the agent would drop and report, and the model
// holds the rest.
func AgentTopology(data []byte) (*config.Config, *northbound.Model, []northbound.Problem, error) {
	topo, err := topology.Parse(data)
	if err != nil {
		return nil, nil, nil, err
	}
	cfg := config.DefaultConfig()
	cfg.ApplyHost(topo.Snapshot().Host)
	if err := cfg.Validate(); err != nil {
		return nil, nil, nil, fmt.Errorf("host section: %w", err)
	}
	m, problems := topo.Validate(cfg.Env())
	return cfg, m, problems, nil
}
