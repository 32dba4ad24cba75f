// Command dvrflow-demo brings up a sandbox host (a private ovsdb-server and ovs-vswitchd in
// their own namespaces), lets dvrflow create br-int and br-vlan with Neutron's options and
// patch ports, installs the baseline pipeline through the one write path, shows that a second
// sync sends nothing, prints the pipeline with table names and counters, and tears everything
// down, also on Ctrl-C or failure.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows"
	"github.com/dvrflow/dvrflow/l2"
	"github.com/dvrflow/dvrflow/ovsdb"
	"github.com/dvrflow/dvrflow/sandbox"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := zap.NewDevelopmentConfig()
	cfg.Level = zap.NewAtomicLevelAt(zap.InfoLevel)
	log, err := cfg.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := run(ctx, log); err != nil {
		log.Error("demo failed", zap.Error(err))
		os.Exit(1)
	}
}

func run(ctx context.Context, log *zap.Logger) error {
	if err := sandbox.EnsurePackages(ctx, log); err != nil {
		return err
	}
	host, err := sandbox.Start(ctx, "demo", sandbox.Options{Log: log})
	if err != nil {
		return err
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := host.Stop(stopCtx); err != nil {
			log.Error("stop sandbox host", zap.Error(err))
		}
	}()

	db, err := ovsdb.Connect(ctx, host.DBEndpoint(), log)
	if err != nil {
		return err
	}
	defer db.Close()

	section("1. bridges, as Neutron's agent configures them (datapath netdev: no kernel module here)")
	for _, b := range []struct {
		name     string
		pipeline flows.Pipeline
	}{{"br-int", flows.IntegrationPipeline}, {"br-vlan", flows.PhysicalPipeline}} {
		created, err := db.EnsureBridge(ctx, ovsdb.BridgeSpec{Name: b.name, DatapathType: "netdev", MACTableSize: 50000, TableNames: tableNames(b.pipeline)})
		if err != nil {
			return err
		}
		fmt.Printf("   %-8s created=%v\n", b.name, created)
	}
	if err := db.EnsurePatchPair(ctx, "br-int", "int-br-vlan", "br-vlan", "phy-br-vlan"); err != nil {
		return err
	}
	intPort, err := db.Ofport(ctx, "int-br-vlan")
	if err != nil {
		return err
	}
	phyPort, err := db.Ofport(ctx, "phy-br-vlan")
	if err != nil {
		return err
	}
	fmt.Printf("   patch ports: int-br-vlan=%d on br-int, phy-br-vlan=%d on br-vlan\n", intPort, phyPort)
	out, err := host.Vsctl(ctx, "--columns=name,datapath_type,fail_mode,protocols,other_config", "list", "Bridge")
	if err != nil {
		return err
	}
	fmt.Print(indent(out))

	integ, phys := l2.PhysicalBaseline(l2.PhysicalBridge{Physnet: "physnet1", Bridge: "br-vlan", IntPort: uint32(intPort), PhyPort: uint32(phyPort)}, false)
	desired := map[string][]flows.Flow{
		"br-int":  append(l2.IntegrationBaseline(), integ...),
		"br-vlan": phys,
	}
	bridges := map[string]*flows.Bridge{}
	for _, name := range []string{"br-int", "br-vlan"} {
		bridges[name] = flows.NewBridge(name, host.MgmtSocket(name), log)
		defer bridges[name].Close()
	}

	section("2. the one write path: desired set → diff → one bundle → commit confirmed")
	for _, round := range []string{"first sync", "second sync (nothing changed: zero flow-mods)"} {
		for _, name := range []string{"br-int", "br-vlan"} {
			res, err := bridges[name].Sync(ctx, desired[name])
			if err != nil {
				return err
			}
			fmt.Printf("   %-48s %s (%d flow-mods)\n", round+":", res, res.FlowMods())
		}
	}

	section("3. ofproto/trace: a VLAN-196 frame from the provider network, no network provisioned yet → dropped by I14")
	trace, err := host.Appctl(ctx, "vswitchd", "ofproto/trace", "br-int", "in_port=int-br-vlan,dl_vlan=196,dl_src=fa:16:3e:00:00:01,dl_dst=fa:16:3e:00:00:02")
	if err != nil {
		return err
	}
	fmt.Print(indent(trace))

	section("4. br-int and br-vlan as ovs-ofctl shows them (table names come from OVSDB)")
	for _, name := range []string{"br-int", "br-vlan"} {
		out, err := host.Ofctl(ctx, "-O", "OpenFlow13", "--names", "dump-flows", name)
		if err != nil {
			return err
		}
		fmt.Printf("   %s:\n%s", name, indent(out))
	}

	section("5. the same flows annotated by dvrflow: owner category and object of every cookie")
	for _, name := range []string{"br-int", "br-vlan"} {
		fs := append([]flows.Flow(nil), desired[name]...)
		flows.Sort(fs)
		pipeline := flows.IntegrationPipeline
		if name != "br-int" {
			pipeline = flows.PhysicalPipeline
		}
		names := &flows.Names{Tables: pipeline.Names(), Ports: map[uint32]string{uint32(intPort): "int-br-vlan"}}
		if name != "br-int" {
			names.Ports = map[uint32]string{uint32(phyPort): "phy-br-vlan"}
		}
		fmt.Printf("   %s:\n", name)
		for _, f := range fs {
			c := f.Cookie
			f.Cookie = 0
			fmt.Printf("     %-16s %s\n", "["+flows.CookieCategory(c).String()+"]", f.Format(names))
		}
	}
	if ctx.Err() != nil {
		return errors.New("interrupted")
	}
	section("demo done: stopping the sandbox host")
	return nil
}

func tableNames(p flows.Pipeline) map[int]string {
	m := map[int]string{}
	for n, name := range p.Names() {
		m[int(n)] = name
	}
	return m
}

func section(s string) { fmt.Printf("\n== %s\n", s) }

func indent(s string) string {
	out := ""
	for _, l := range splitLines(s) {
		out += "     " + l + "\n"
	}
	return out
}

func splitLines(s string) []string {
	var lines []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '\n' {
			lines = append(lines, s[start:i])
			start = i + 1
		}
	}
	if start < len(s) {
		lines = append(lines, s[start:])
	}
	return lines
}
