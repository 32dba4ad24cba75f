// Package controller owns dvrflow's desired state: the agent configuration, the northbound
// topology (networks, subnets, ports, other hosts, l2population FDB), its validation, and
// (later) the event loop that turns that state into calls to the pure flow generators.
//
// # Configuration precedence
//
// A setting can come from four places; the first one that sets it wins:
//
//  1. command-line flags (applied by the cmd, last, directly on the [Config] fields);
//  2. the topology file's host section ([Config.ApplyHost]);
//  3. the ini files given to [LoadConfig] (later files override earlier ones, like
//     oslo.config's repeated --config-file);
//  4. Neutron's defaults ([DefaultConfig]).
//
// The start-up sequence is therefore:
//
//	cfg, warnings, err := controller.LoadConfig(files...)   // defaults < ini
//	topo, err := controller.LoadTopology(path)
//	cfg.ApplyHost(topo.Host)                                 // < topology host
//	applyFlags(cfg)                                          // < flags (cmd)
//	err = cfg.Validate()                                     // refuse to start on error
//	valid, problems := controller.Validate(topo, cfg)        // program valid, log problems
//
// On a topology reload ([WatchTopology]) the cmd starts again from a [Config.Clone] of the
// ini-only config, so that a host setting removed from the file falls back to the ini.
//
// # Validation
//
// Bad input is refused loudly and nothing else is lost: [Validate] drops each invalid object
// (and the objects that depend on it) and reports it as a [Problem] naming the object and
// the field; every valid object is kept.
package controller
