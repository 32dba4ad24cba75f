// Command dvrflow-topogen writes a benchmark topology file: one DVR compute node with N VM
// ports spread over M VLAN networks (one subnet each, a distributed router interface on
// every subnet) and K other hosts' DVR MACs, in the scenarios' format (JSON).
//
//	dvrflow-topogen -ports 1000 [-networks 50] [-other-hosts 50] [-o topology.json]
//
// `make bench` uses the same generator (package bench/topogen) in-process.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/dvrflow/dvrflow/bench/topogen"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "dvrflow-topogen:", err)
		os.Exit(2)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("dvrflow-topogen", flag.ContinueOnError)
	ports := fs.Int("ports", 100, "`N`: VM ports bound to this host")
	networks := fs.Int("networks", 0, "`M`: VLAN networks, one subnet and one distributed router interface each (default N/20, at least 1)")
	others := fs.Int("other-hosts", 50, "`K`: other hosts, each with a DVR MAC")
	out := fs.String("o", "", "output `file` (default standard output)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	m := *networks
	if m == 0 {
		m = max(1, *ports/20)
	}
	topo, err := topogen.Generate(topogen.Params{Ports: *ports, Networks: m, OtherHosts: *others})
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(topo, "", " ")
	if err != nil {
		return fmt.Errorf("encode topology: %w", err)
	}
	data = append(data, '\n')
	if *out == "" {
		_, err = os.Stdout.Write(data)
		return err
	}
	if err := os.WriteFile(*out, data, 0o644); err != nil {
		return fmt.Errorf("write topology: %w", err)
	}
	return nil
}
