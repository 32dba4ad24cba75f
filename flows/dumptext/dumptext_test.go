package dumptext

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestParseLine(t *testing.T) {
	names := func(n string) (uint8, bool) {
		v, ok := map[string]uint8{"LOCAL_SWITCHING": 0, "DVR_TO_SRC_MAC": 1}[n]
		return v, ok
	}
	for _, tc := range []struct {
		line                 string
		table                uint8
		tableName            string
		resolved             bool
		cookie               uint64
		priority             uint16
		match                string
		actions              []string
		packets, bytes       uint64
		stats                bool
		getField, fieldValue string
	}{
		{
			line:  " cookie=0xd7f1040000000001, duration=3.2s, table=0, n_packets=7, n_bytes=588, idle_age=1, priority=3,in_port=1,dl_vlan=196 actions=set_field:4097->vlan_vid,goto_table:59",
			table: 0, resolved: true, cookie: 0xd7f1040000000001, priority: 3, match: "in_port=1,dl_vlan=196",
			actions: []string{"set_field:4097->vlan_vid", "goto_table:59"}, packets: 7, bytes: 588, stats: true,
			getField: "dl_vlan", fieldValue: "196",
		},
		{
			line:  `cookie=0x1, table="DVR_TO_SRC_MAC", priority=20,dl_vlan=196,dl_dst=fa:16:3e:00:01:11 actions=set_field:fa:16:3e:aa:01:01->eth_src,goto_table:TRANSIENT`,
			table: 1, tableName: "DVR_TO_SRC_MAC", resolved: true, cookie: 1, priority: 20, match: "dl_vlan=196,dl_dst=fa:16:3e:00:01:11",
			actions: []string{"set_field:fa:16:3e:aa:01:01->eth_src", "goto_table:TRANSIENT"},
		},
		{
			line:      "cookie=0x2, table=UNKNOWN_NAME, priority=1 actions=drop",
			tableName: "UNKNOWN_NAME", cookie: 2, priority: 1, actions: []string{"drop"},
		},
		{
			line:  "cookie=0x3, table=10, priority=1 actions=learn(table=20,hard_timeout=300,priority=1,cookie=0x3,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[]),output:1",
			table: 10, resolved: true, cookie: 3, priority: 1,
			actions: []string{"learn(table=20,hard_timeout=300,priority=1,cookie=0x3,NXM_OF_VLAN_TCI[0..11],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],load:0->NXM_OF_VLAN_TCI[],load:NXM_NX_TUN_ID[]->NXM_NX_TUN_ID[],output:OXM_OF_IN_PORT[])", "output:1"},
		},
		{
			line:     `cookie=0x4, priority=10,arp,in_port="tap d1" actions=goto_table:24`,
			resolved: true, cookie: 4, priority: 10, match: `arp,in_port="tap d1"`, actions: []string{"goto_table:24"},
			getField: "in_port", fieldValue: "tap d1",
		},
		{
			line:     "cookie=0x5, actions=NORMAL",
			resolved: true, cookie: 5, priority: DefaultPriority, actions: []string{"NORMAL"},
		},
		{
			// Neutron's openvswitch firewall adds its flows with ovs-ofctl, which sets
			// reset_counts; ovs-ofctl prints flags ended by a space, not a comma.
			line:  "cookie=0x6, table=71, reset_counts priority=110,ct_state=+trk actions=ct_clear,resubmit(,71)",
			table: 71, resolved: true, cookie: 6, priority: 110, match: "ct_state=+trk",
			actions:  []string{"ct_clear", "resubmit(,71)"},
			getField: "ct_state", fieldValue: "+trk",
		},
		{
			line:     "cookie=0x7, send_flow_rem check_overlap reset_counts priority=1 actions=drop",
			resolved: true, cookie: 7, priority: 1, actions: []string{"drop"},
		},
	} {
		t.Run(tc.line[:20], func(t *testing.T) {
			f, err := ParseLine(tc.line, names)
			if err != nil {
				t.Fatal(err)
			}
			if f.Table != tc.table || f.TableName != tc.tableName || f.TableResolved != tc.resolved {
				t.Errorf("table = %d %q %v, want %d %q %v", f.Table, f.TableName, f.TableResolved, tc.table, tc.tableName, tc.resolved)
			}
			if f.Cookie != tc.cookie || f.Priority != tc.priority {
				t.Errorf("cookie, priority = %#x %d, want %#x %d", f.Cookie, f.Priority, tc.cookie, tc.priority)
			}
			if got := f.MatchText(); got != tc.match {
				t.Errorf("match = %q, want %q", got, tc.match)
			}
			if strings.Join(f.Actions, "|") != strings.Join(tc.actions, "|") {
				t.Errorf("actions = %q, want %q", f.Actions, tc.actions)
			}
			if f.Packets != tc.packets || f.Bytes != tc.bytes || f.HasStats != tc.stats {
				t.Errorf("stats = %d %d %v, want %d %d %v", f.Packets, f.Bytes, f.HasStats, tc.packets, tc.bytes, tc.stats)
			}
			if tc.getField != "" {
				if v, ok := f.Get(tc.getField); !ok || v != tc.fieldValue {
					t.Errorf("Get(%s) = %q %v, want %q", tc.getField, v, ok, tc.fieldValue)
				}
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, line := range []string{"priority=1,in_port=1", "cookie=0xzz, actions=drop", "priority=70000 actions=drop", "priority=1 actions="} {
		if _, err := ParseLine(line, nil); err == nil {
			t.Errorf("ParseLine(%q) accepted it", line)
		}
	}
	if _, err := Parse(strings.NewReader("OFPST_FLOW reply (OF1.3) (xid=0x2):\n cookie=0x0, actions=drop\nbad line\n"), nil); err == nil || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("Parse error = %v, want one naming line 3", err)
	}
}

// TestRoundTripNeutronDumps parses every flow of Neutron's reference dumps (the
// scenarios, and the OVS firewall's: conntrack, conjunctions, reset_counts) and renders it
// back: the text must equal the line without its cookie, table and flags, so nothing is
// lost.
func TestRoundTripNeutronDumps(t *testing.T) {
	files, _ := filepath.Glob("../../testdata/neutron/scenarios/*.flows")
	firewall, _ := filepath.Glob("../../testdata/neutron/firewall/*.flows")
	if len(files) == 0 || len(firewall) == 0 {
		t.Fatal("no reference dumps found")
	}
	files = append(files, firewall...)
	strip := regexp.MustCompile(`^cookie=[^,]+, (table=\d+, )?(reset_counts )?`)
	n := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			line = strings.Replace(line, "cookie=COOKIE", "cookie=0x0", 1)
			f, err := ParseLine(line, nil)
			if err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if want := strip.ReplaceAllString(line, ""); f.Text() != want {
				t.Errorf("%s:\n got %s\nwant %s", filepath.Base(file), f.Text(), want)
			}
			n++
		}
	}
	if n < 800 {
		t.Fatalf("only %d flows read", n)
	}
}
