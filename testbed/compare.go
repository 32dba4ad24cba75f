package testbed

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/dvrflow/dvrflow/sandbox"
)

// Reference is a scenario's .flows file: what Neutron's own agent installed.
type Reference struct {
	// LocalVLANs maps a local VLAN id to its network id (the "# local_vlan" lines).
	LocalVLANs map[int]string
	// Bridges are the dumps by bridge name.
	Bridges map[string]*BridgeDump
	// Order is the bridges' order in the file.
	Order []string
}

// BridgeDump is one bridge's flows with its port numbering.
type BridgeDump struct {
	// Ofports maps an ofport to the port name (the "# ofports:" line).
	Ofports map[int]string
	// Lines are the flows as ovs-ofctl prints them.
	Lines []string
}

var (
	localVLANLine = regexp.MustCompile(`^# local_vlan (\d+): network (\S+)`)
	bridgeLine    = regexp.MustCompile(`^## bridge (\S+):`)
	ofportsLine   = regexp.MustCompile(`^# ofports:(.*)$`)
)

// ParseReference reads a scenario's .flows file.
func ParseReference(path string) (*Reference, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read reference %s: %w", path, err)
	}
	defer f.Close()
	ref := &Reference{LocalVLANs: map[int]string{}, Bridges: map[string]*BridgeDump{}}
	var cur *BridgeDump
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "":
		case localVLANLine.MatchString(line):
			m := localVLANLine.FindStringSubmatch(line)
			v, _ := strconv.Atoi(m[1])
			ref.LocalVLANs[v] = m[2]
		case bridgeLine.MatchString(line):
			name := bridgeLine.FindStringSubmatch(line)[1]
			cur = &BridgeDump{Ofports: map[int]string{}}
			ref.Bridges[name] = cur
			ref.Order = append(ref.Order, name)
		case ofportsLine.MatchString(line):
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: ofports before any bridge", path, n)
			}
			for _, kv := range strings.Fields(ofportsLine.FindStringSubmatch(line)[1]) {
				k, v, ok := strings.Cut(kv, "=")
				port, err := strconv.Atoi(k)
				if !ok || err != nil {
					return nil, fmt.Errorf("%s:%d: bad ofport entry %q", path, n, kv)
				}
				cur.Ofports[port] = v
			}
		case strings.HasPrefix(line, "#"):
		default:
			if cur == nil {
				return nil, fmt.Errorf("%s:%d: flow before any bridge", path, n)
			}
			cur.Lines = append(cur.Lines, line)
		}
	}
	return ref, sc.Err()
}

// DumpFlows reads a bridge's flows from the real switch, as the reference was dumped.
func DumpFlows(ctx context.Context, h *sandbox.Host, bridge string) ([]string, error) {
	out, err := h.Ofctl(ctx, "-O", "OpenFlow13", "--no-stats", "--no-names", "dump-flows", bridge)
	if err != nil {
		return nil, err
	}
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "OFPST_FLOW") {
			lines = append(lines, l)
		}
	}
	return lines, nil
}

// BridgeOfports returns a bridge's ofport → interface name map from OVSDB.
func BridgeOfports(ctx context.Context, h *sandbox.Host, bridge string) (map[int]string, error) {
	out, err := h.Vsctl(ctx, "list-ifaces", bridge)
	if err != nil {
		return nil, err
	}
	ports := map[int]string{}
	for _, name := range strings.Fields(out) {
		v, err := h.Vsctl(ctx, "get", "Interface", name, "ofport")
		if err != nil {
			return nil, err
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
			ports[n] = name
		}
	}
	return ports, nil
}

var (
	cookieRe  = regexp.MustCompile(`cookie=0x[0-9a-f]+`)
	inPortRe  = regexp.MustCompile(`\bin_port=(\d+)`)
	outputRe  = regexp.MustCompile(`\boutput:(\d+)`)
	dlVLANRe  = regexp.MustCompile(`\bdl_vlan=(\d+)`)
	setVIDRe  = regexp.MustCompile(`\bset_field:(\d+)->vlan_vid`)
	modVIDRe  = regexp.MustCompile(`\bmod_vlan_vid:(\d+)`)
	loadVIDRe = regexp.MustCompile(`\bload:0x([0-9a-f]+)->NXM_OF_VLAN_TCI\[0\.\.11\]`)
)

// Normalize makes a flow line comparable across switches: cookies become COOKIE, port
// numbers become port names (ports), and local VLAN ids become "LV(network)" (vlans maps a
// local VLAN to its network). Provider VLANs and VNIs are left as they are.
func Normalize(line string, ports map[int]string, vlans map[int]string) string {
	line = cookieRe.ReplaceAllString(line, "cookie=COOKIE")
	port := func(re *regexp.Regexp, prefix string) {
		line = re.ReplaceAllStringFunc(line, func(m string) string {
			n, _ := strconv.Atoi(re.FindStringSubmatch(m)[1])
			if name, ok := ports[n]; ok {
				return prefix + name
			}
			return prefix + "?" + strconv.Itoa(n)
		})
	}
	port(inPortRe, "in_port=")
	port(outputRe, "output:")
	vlan := func(re *regexp.Regexp, base int, hex bool, render func(string) string) {
		line = re.ReplaceAllStringFunc(line, func(m string) string {
			s := re.FindStringSubmatch(m)[1]
			var n int64
			if hex {
				n, _ = strconv.ParseInt(s, 16, 32)
			} else {
				n, _ = strconv.ParseInt(s, 10, 32)
			}
			if net, ok := vlans[int(n)-base]; ok {
				return render("LV(" + net + ")")
			}
			return m
		})
	}
	vlan(dlVLANRe, 0, false, func(v string) string { return "dl_vlan=" + v })
	vlan(setVIDRe, 4096, false, func(v string) string { return "set_field:" + v + "->vlan_vid" })
	vlan(modVIDRe, 0, false, func(v string) string { return "mod_vlan_vid:" + v })
	vlan(loadVIDRe, 0, true, func(v string) string { return "load:" + v + "->NXM_OF_VLAN_TCI[0..11]" })
	return line
}

// Diff compares two normalised flow sets and returns the lines only in want (missing) and
// only in got (extra), each sorted. Duplicates count.
func Diff(want, got []string) (missing, extra []string) {
	count := map[string]int{}
	for _, l := range want {
		count[l]++
	}
	for _, l := range got {
		count[l]--
	}
	for l, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, l)
		}
		for ; n < 0; n++ {
			extra = append(extra, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	return missing, extra
}
