package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"path/filepath"
	"time"

	"go.uber.org/zap"

	"github.com/dvrflow/dvrflow/flows"
)

// writePathResult compares the write path alone with ovs-ofctl on the same flows.
type writePathResult struct {
	Flows       int
	Sync, Ofctl []time.Duration
}

// writePath installs count distinct flows into an empty bridge, alternately through
// flows.Bridge.Sync (a new write path each time: connect, read the empty bridge, diff,
// encode, one checked bundle, commit confirmed) and through `ovs-ofctl --bundle add-flows`
// of the same flows rendered to a file, reps times each; between runs the flows are
// deleted, and after each the bridge is checked to hold exactly count flows.
func (b *bench) writePath(ctx context.Context, count, reps int) (*writePathResult, error) {
	h, err := b.startHost(ctx, "bench-writepath")
	if err != nil {
		return nil, err
	}
	defer b.stopHost(h)
	const br = "wp0"
	if _, err := h.Vsctl(ctx, "add-br", br, "--", "set", "Bridge", br, "datapath_type=netdev", "fail_mode=secure",
		"protocols=OpenFlow10,OpenFlow13"); err != nil {
		return nil, err
	}
	fs := distinctFlows(count)
	file := filepath.Join(b.workDir, "writepath.flows")
	if err := writeFlows(file, fs); err != nil {
		return nil, err
	}
	n := &node{host: h}
	check := func(what string) error {
		got, err := flowCount(ctx, n, br)
		if err != nil {
			return err
		}
		if got != count {
			return fmt.Errorf("write path: %s left %d flows on %s, want %d", what, got, br, count)
		}
		_, err = h.Ofctl(ctx, "del-flows", br)
		return err
	}
	res := &writePathResult{Flows: count}
	for i := 0; i < reps; i++ {
		w := flows.NewBridge(br, h.MgmtSocket(br), b.log.Named("writepath").WithOptions(zap.IncreaseLevel(zap.WarnLevel)))
		start := time.Now()
		sr, err := w.Sync(ctx, fs)
		took := time.Since(start)
		_ = w.Close()
		if err != nil {
			return nil, fmt.Errorf("write path: Sync: %w", err)
		}
		if len(sr.Added) != count {
			return nil, fmt.Errorf("write path: Sync added %d flows, want %d", len(sr.Added), count)
		}
		if err := check("Sync"); err != nil {
			return nil, err
		}
		res.Sync = append(res.Sync, took)

		cmd := exec.CommandContext(ctx, "ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows", "unix:"+h.MgmtSocket(br), file)
		start = time.Now()
		out, err := cmd.CombinedOutput()
		took = time.Since(start)
		if err != nil {
			return nil, fmt.Errorf("write path: ovs-ofctl: %w: %s", err, out)
		}
		if err := check("ovs-ofctl"); err != nil {
			return nil, err
		}
		res.Ofctl = append(res.Ofctl, took)
		b.log.Info("write path", zap.Int("flows", count), zap.Int("rep", i+1), zap.Duration("sync", res.Sync[i]), zap.Duration("ovs-ofctl", took))
	}
	return res, nil
}

// distinctFlows returns n distinct flows of the shapes the agent writes most: ARP and MAC
// spoofing protection per port and address, DVR source-MAC rewriting and final delivery per
// VLAN and MAC.
func distinctFlows(n int) []flows.Flow {
	out := make([]flows.Flow, 0, n)
	cookie := flows.Cookie(flows.CategoryTest, "bench-writepath")
	for i := 0; len(out) < n; i++ {
		m := net.HardwareAddr{0xfa, 0x16, 0x3e, byte(i >> 16), byte(i >> 8), byte(i)}
		ip := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		port := uint32(10 + i%4000)
		vid := uint16(1 + i%4000)
		var f flows.Flow
		switch i % 4 {
		case 0:
			f = flows.Flow{Table: 24, Priority: 2, Match: flows.Match{}.InPort(port).ARP().ARPSPA(netip.PrefixFrom(ip, 32)),
				Actions: []flows.Action{flows.GotoTable{Table: 25}}}
		case 1:
			f = flows.Flow{Table: 25, Priority: 2, Match: flows.Match{}.InPort(port).EthSrc(m),
				Actions: []flows.Action{flows.GotoTable{Table: 30}}}
		case 2:
			f = flows.Flow{Table: 2, Priority: 20, Match: flows.Match{}.VLAN(vid).EthDst(m),
				Actions: []flows.Action{flows.SetEthSrc(net.HardwareAddr{0xfa, 0x16, 0x3e, 0xf0, 0, byte(vid)}), flows.GotoTable{Table: 60}}}
		case 3:
			f = flows.Flow{Table: 60, Priority: 20, Match: flows.Match{}.VLAN(vid).EthDst(m),
				Actions: []flows.Action{flows.PopVLAN{}, flows.Output{Port: port}}}
		}
		f.Cookie = cookie
		out = append(out, f)
	}
	return out
}
