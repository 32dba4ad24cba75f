// Package config is the agent configuration: Neutron's openvswitch_agent.ini options (same
// names, same defaults) and dvrflow's own [dvrflow] section, parsed once into typed values
// (addresses, MACs, tunnel types, the agent mode), with the checks Neutron's agent makes at
// start-up.
//
// # Precedence
//
// A setting can come from four places; the first one that sets it wins:
//
//  1. command-line flags (applied by the cmd, last, directly on the [Config] fields);
//  2. the host settings of the northbound source (the topology file's host section),
//     [Config.ApplyHost];
//  3. the ini files given to [LoadConfig] (later files override earlier ones, like
//     oslo.config's repeated --config-file);
//  4. Neutron's defaults ([DefaultConfig]).
//
// The start-up sequence (package startup) is therefore:
//
//	base, warnings, err := config.LoadConfig(files...)   // defaults < ini
//	snapshot := <the source's first snapshot>
//	cfg := base.Clone(); cfg.ApplyHost(snapshot.Host)    // < host settings
//	applyFlags(cfg)                                      // < flags (cmd)
//	err = cfg.Validate()                                 // refuse to start on error
//
// On every later snapshot the agent starts again from a clone of the ini-only config, so
// that a host setting removed from the file falls back to the ini.
package config
