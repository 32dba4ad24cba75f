package namespace

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func llPair(s string) LinkLocalPair { return LinkLocalPair{Net: netip.MustParsePrefix(s)} }

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func openLinkLocal(t *testing.T, dir string) *LinkLocalAllocator {
	t.Helper()
	a, skipped, err := OpenLinkLocalAllocator(dir)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("OpenLinkLocalAllocator: %v, skipped %v", err, skipped)
	}
	return a
}

func openPriorities(t *testing.T, dir string) *FIPPriorityAllocator {
	t.Helper()
	a, skipped, err := OpenFIPPriorityAllocator(dir)
	if err != nil || len(skipped) > 0 {
		t.Fatalf("OpenFIPPriorityAllocator: %v, skipped %v", err, skipped)
	}
	return a
}

// noTempFiles fails if a write left its temporary file behind.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp-*"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// TestLinkLocalPair checks the pool and the pair's ends against values computed by hand
// from Neutron's code: LinkLocalAllocator cuts 169.254.64.0/18 into /31s;
// LinkLocalAddressPair.get_pair() gives (network, last) = (rtr_2_fip for rfp-, fip_2_rtr for
// fpr-); DvrLocalRouter._get_snat_idx(fip_2_rtr) is the IPv4 address's numeric value.
func TestLinkLocalPair(t *testing.T) {
	for _, c := range []struct {
		index     int
		pair      string
		router    string
		fip       string
		fipTable  uint32
		inNeutron string // how Neutron writes it in fip-linklocal-networks
	}{
		// 169.254.64.1 = 169<<24 + 254<<16 + 64<<8 + 1 = 2835349504 + 16646144 + 16384 + 1.
		{0, "169.254.64.0/31", "169.254.64.0/31", "169.254.64.1/31", 2852012033, "169.254.64.0/31"},
		{1, "169.254.64.2/31", "169.254.64.2/31", "169.254.64.3/31", 2852012035, "169.254.64.2/31"},
		// 128 pairs per /24: index 128 starts 169.254.65.0.
		{128, "169.254.65.0/31", "169.254.65.0/31", "169.254.65.1/31", 2852012289, "169.254.65.0/31"},
		// 169.254.93.147 = 2851995648 + 93<<8 (23808) + 147; index (29*256 + 146)/2 = 3785.
		{3785, "169.254.93.146/31", "169.254.93.146/31", "169.254.93.147/31", 2852019603, "169.254.93.146/31"},
		// The last of 8192: 169.254.127.254/31.
		{8191, "169.254.127.254/31", "169.254.127.254/31", "169.254.127.255/31", 2852028415, "169.254.127.254/31"},
	} {
		p := linkLocalAt(c.index)
		if p.String() != c.pair || p.String() != c.inNeutron {
			t.Errorf("pair %d = %s, want %s", c.index, p, c.pair)
		}
		if p.RouterEnd().String() != c.router || p.FIPEnd().String() != c.fip {
			t.Errorf("pair %s: rfp- %s, fpr- %s; want %s, %s", p, p.RouterEnd(), p.FIPEnd(), c.router, c.fip)
		}
		if p.FIPTable() != c.fipTable {
			t.Errorf("pair %s: FIPTable %d, want %d", p, p.FIPTable(), c.fipTable)
		}
		if i, err := linkLocalIndex(p.Net); err != nil || i != c.index || !p.IsValid() {
			t.Errorf("linkLocalIndex(%s) = %d, %v", p, i, err)
		}
	}
	if linkLocalSize() != 8192 {
		t.Errorf("pool size %d, want 8192 /31s in a /18", linkLocalSize())
	}
	for _, bad := range []string{"169.254.64.1/31", "169.254.64.0/30", "169.254.128.0/31", "169.254.63.254/31", "10.0.0.0/31", "::/127"} {
		if llPair(bad).IsValid() {
			t.Errorf("%s accepted as a pair", bad)
		}
	}
	if (LinkLocalPair{}).IsValid() {
		t.Error("zero pair valid")
	}
}

func TestLinkLocalAllocator(t *testing.T) {
	dir := t.TempDir()
	a := openLinkLocal(t, dir)
	if a.Path() != filepath.Join(dir, "fip-linklocal-networks") {
		t.Errorf("Path = %s", a.Path())
	}
	if _, err := os.Stat(a.Path()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a new allocator wrote its file: %v", err)
	}

	// New routers get the lowest free pairs in router id order, whatever the input order.
	got, err := a.Sync([]string{"r-b", "r-c", "r-a", "r-b", ""})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]LinkLocalPair{"r-a": llPair("169.254.64.0/31"), "r-b": llPair("169.254.64.2/31"), "r-c": llPair("169.254.64.4/31")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sync = %v, want %v", got, want)
	}
	const file1 = "r-a,169.254.64.0/31\nr-b,169.254.64.2/31\nr-c,169.254.64.4/31\n"
	if s := readFile(t, a.Path()); s != file1 {
		t.Errorf("file:\n%s\nwant:\n%s", s, file1)
	}

	// r-b goes (released), r-d comes: the lowest free pair is r-b's old one.
	got, err = a.Sync([]string{"r-d", "r-c", "r-a"})
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]LinkLocalPair{"r-a": llPair("169.254.64.0/31"), "r-c": llPair("169.254.64.4/31"), "r-d": llPair("169.254.64.2/31")}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sync after release = %v, want %v", got, want)
	}
	if _, ok := a.Lookup("r-b"); ok {
		t.Error("r-b still has a pair")
	}
	noTempFiles(t, dir)

	// Restart: the same file gives the same pairs, and the same keys write nothing.
	before, _ := os.Stat(a.Path())
	b := openLinkLocal(t, dir)
	if !reflect.DeepEqual(b.Allocations(), want) {
		t.Errorf("after restart: %v, want %v", b.Allocations(), want)
	}
	got, err = b.Sync([]string{"r-a", "r-c", "r-d"})
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Sync after restart = %v, %v; want %v", got, err, want)
	}
	after, _ := os.Stat(b.Path())
	if !os.SameFile(before, after) {
		t.Error("an unchanged Sync rewrote the file")
	}

	// Same inputs, same file → same result, twice from the same starting file.
	for range 2 {
		writeFile(t, filepath.Join(dir, LinkLocalFile), file1)
		c := openLinkLocal(t, dir)
		got, err := c.Sync([]string{"r-x", "r-b", "r-y"})
		want := map[string]LinkLocalPair{"r-b": llPair("169.254.64.2/31"), "r-x": llPair("169.254.64.0/31"), "r-y": llPair("169.254.64.4/31")}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Sync from file1 = %v, %v; want %v", got, err, want)
		}
	}

	// Allocate, Lookup, Release one at a time.
	c := openLinkLocal(t, t.TempDir())
	p1, err := c.Allocate("r1")
	if err != nil || p1 != llPair("169.254.64.0/31") {
		t.Errorf("Allocate r1 = %v, %v", p1, err)
	}
	p2, _ := c.Allocate("r2")
	if again, _ := c.Allocate("r1"); again != p1 || p2 != llPair("169.254.64.2/31") {
		t.Errorf("Allocate again = %v, r2 = %v", again, p2)
	}
	if err := c.Release("r1"); err != nil {
		t.Fatal(err)
	}
	if err := c.Release("r1"); err != nil {
		t.Errorf("second Release: %v", err)
	}
	if _, ok := c.Lookup("r1"); ok {
		t.Error("r1 still allocated")
	}
	if p, ok := c.Lookup("r2"); !ok || p != p2 {
		t.Errorf("Lookup r2 = %v %v", p, ok)
	}
	if s := readFile(t, c.Path()); s != "r2,169.254.64.2/31\n" {
		t.Errorf("file after release: %q", s)
	}
	for _, bad := range []string{"", "a,b", "a\nb", " a"} {
		if _, err := c.Allocate(bad); err == nil {
			t.Errorf("Allocate(%q) accepted", bad)
		}
	}
	if _, err := c.Sync([]string{"r2", "x,y"}); err == nil || !strings.Contains(err.Error(), "comma") {
		t.Errorf("Sync with a bad key: %v", err)
	}
}

// TestLinkLocalNeutronFile reads a file as Neutron's ItemAllocator writes it (allocations
// first, then the remembered ones, in no particular order) and keeps every pair.
func TestLinkLocalNeutronFile(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "fip-linklocal-networks"),
		"9f0e1d2c-3b4a-4596-8877-665544332211,169.254.93.146/31\n"+
			"1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d,169.254.64.0/31\n")
	a := openLinkLocal(t, dir)
	got, err := a.Sync([]string{"1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d", "9f0e1d2c-3b4a-4596-8877-665544332211", "new-router"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]LinkLocalPair{
		"1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d": llPair("169.254.64.0/31"),
		"9f0e1d2c-3b4a-4596-8877-665544332211": llPair("169.254.93.146/31"),
		"new-router":                           llPair("169.254.64.2/31"),
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sync = %v, want %v", got, want)
	}
}

func TestLinkLocalCorruptFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LinkLocalFile)
	writeFile(t, path, strings.Join([]string{
		"garbage",                     // 1: no comma
		"r1,169.254.64.0/31",          // 2: good
		"r2,10.0.0.0/31",              // 3: outside the pool
		"r3,169.254.64.1/31",          // 4: not the first address of its /31
		"r4,169.254.64.0/31",          // 5: r1's pair
		"r1,169.254.64.8/31",          // 6: r1 again
		",169.254.64.10/31",           // 7: no key
		"r5,169.254.64.12/30",         // 8: not a /31
		"r6,169.254.64.14/31,extra",   // 9: three fields
		"",                            // 10: blank, ignored
		"  r7 , 169.254.64.16/31  \r", // 11: good (spaces and CR trimmed)
		"r8,not-an-address",           // 12
	}, "\n"))
	a, skipped, err := OpenLinkLocalAllocator(dir)
	if err != nil {
		t.Fatal(err)
	}
	var lines []int
	for _, e := range skipped {
		var le *AllocationLineError
		if !errors.As(e, &le) || le.Path != path {
			t.Fatalf("skipped %v is not an AllocationLineError on %s", e, path)
		}
		lines = append(lines, le.Line)
	}
	if !reflect.DeepEqual(lines, []int{1, 3, 4, 5, 6, 7, 8, 9, 12}) {
		t.Errorf("skipped lines %v:\n%v", lines, skipped)
	}
	for _, s := range []string{"169.254.64.0/31 already belongs to r1 (line 2)", "key r1 already has 169.254.64.0/31 (line 2)", "outside 169.254.64.0/18"} {
		if !strings.Contains(errors.Join(skipped...).Error(), s) {
			t.Errorf("no skipped line says %q:\n%v", s, skipped)
		}
	}
	want := map[string]LinkLocalPair{"r1": llPair("169.254.64.0/31"), "r7": llPair("169.254.64.16/31")}
	if !reflect.DeepEqual(a.Allocations(), want) {
		t.Errorf("Allocations = %v, want %v", a.Allocations(), want)
	}
	// Rewritten without the bad lines, so they are reported once.
	if s := readFile(t, path); s != "r1,169.254.64.0/31\nr7,169.254.64.16/31\n" {
		t.Errorf("file not rewritten: %q", s)
	}
	openLinkLocal(t, dir)
	noTempFiles(t, dir)

	// A temporary file left by a crash is removed; a file that cannot be read is an error.
	writeFile(t, filepath.Join(dir, "."+LinkLocalFile+".tmp-123"), "half")
	openLinkLocal(t, dir)
	noTempFiles(t, dir)
	bad := t.TempDir()
	if err := os.Mkdir(filepath.Join(bad, LinkLocalFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if a, _, err := OpenLinkLocalAllocator(bad); err == nil || a != nil {
		t.Errorf("unreadable file: %v, %v", a, err)
	}
}

func TestLinkLocalPoolExhaustion(t *testing.T) {
	dir := t.TempDir()
	a := openLinkLocal(t, dir)
	keys := make([]string, 8193)
	for i := range keys {
		keys[i] = fmt.Sprintf("r%05d", i)
	}
	got, err := a.Sync(keys)
	if !errors.Is(err, ErrPoolFull) {
		t.Fatalf("Sync of 8193 routers: %v", err)
	}
	for _, s := range []string{"link-local pool 169.254.64.0/18", "all 8192 in use", a.Path(), "nothing left for r08192"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not say %q", err, s)
		}
	}
	if len(got) != 8192 || got["r00000"] != llPair("169.254.64.0/31") || got["r08191"] != llPair("169.254.127.254/31") {
		t.Errorf("Sync returned %d pairs, r00000 %v, r08191 %v", len(got), got["r00000"], got["r08191"])
	}
	if _, err := a.Allocate("one-more"); !errors.Is(err, ErrPoolFull) {
		t.Errorf("Allocate on a full pool: %v", err)
	}
	// One router goes: the one left out gets its pair.
	got, err = a.Sync(append(keys[:17:17], keys[18:]...))
	if err != nil || got["r08192"] != llPair("169.254.64.34/31") {
		t.Errorf("after a release: r08192 = %v, %v", got["r08192"], err)
	}
	if n := strings.Count(readFile(t, a.Path()), "\n"); n != 8192 {
		t.Errorf("file has %d lines", n)
	}
}

// TestLinkLocalRemembered: like Neutron's ItemAllocator, Allocate on a full pool takes back
// the pairs the file remembered for routers nobody asked about.
func TestLinkLocalRemembered(t *testing.T) {
	dir := t.TempDir()
	var b strings.Builder
	for i := range 8192 {
		fmt.Fprintf(&b, "old%04d,%s\n", i, linkLocalAt(i))
	}
	writeFile(t, filepath.Join(dir, LinkLocalFile), b.String())
	a := openLinkLocal(t, dir)
	if p, err := a.Allocate("old0005"); err != nil || p != linkLocalAt(5) {
		t.Fatalf("Allocate old0005 = %v, %v", p, err)
	}
	p, err := a.Allocate("new")
	if err != nil || p != linkLocalAt(0) {
		t.Fatalf("Allocate new on a full pool = %v, %v; want %v", p, err, linkLocalAt(0))
	}
	want := map[string]LinkLocalPair{"new": linkLocalAt(0), "old0005": linkLocalAt(5)}
	if !reflect.DeepEqual(a.Allocations(), want) {
		t.Errorf("Allocations = %v", a.Allocations())
	}
}

// TestLinkLocalWriteFailure: when the file cannot be written nothing changes, and what was
// already on disk is still returned.
func TestLinkLocalWriteFailure(t *testing.T) {
	dir := t.TempDir()
	a := openLinkLocal(t, dir)
	if _, err := a.Sync([]string{"r1"}); err != nil {
		t.Fatal(err)
	}
	// A non-empty directory where the file was: the rename over it fails (even as root).
	if err := os.Remove(a.Path()); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(a.Path(), "x"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := a.Sync([]string{"r1", "r2"})
	if err == nil || !reflect.DeepEqual(got, map[string]LinkLocalPair{"r1": llPair("169.254.64.0/31")}) {
		t.Errorf("Sync with an unwritable file = %v, %v", got, err)
	}
	if _, err := a.Allocate("r3"); err == nil {
		t.Error("Allocate with an unwritable file succeeded")
	}
	if err := a.Release("r1"); err == nil {
		t.Error("Release with an unwritable file succeeded")
	}
	if !reflect.DeepEqual(a.Allocations(), map[string]LinkLocalPair{"r1": llPair("169.254.64.0/31")}) {
		t.Errorf("a failed write changed the allocations: %v", a.Allocations())
	}
	noTempFiles(t, dir)
}

func TestLinkLocalConcurrent(t *testing.T) {
	dir := t.TempDir()
	a := openLinkLocal(t, dir)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				key := fmt.Sprintf("g%d-r%d", g, i)
				if _, err := a.Allocate(key); err != nil {
					t.Error(err)
				}
				a.Lookup(key)
				if i%2 == 0 {
					if err := a.Release(key); err != nil {
						t.Error(err)
					}
				}
			}
		}()
	}
	wg.Wait()
	all := a.Allocations()
	if len(all) != 40 {
		t.Errorf("%d allocations, want 40", len(all))
	}
	seen := map[LinkLocalPair]string{}
	for k, p := range all {
		if other, dup := seen[p]; dup {
			t.Errorf("%s and %s share %s", k, other, p)
		}
		seen[p] = k
	}
	if b := openLinkLocal(t, dir); !maps.Equal(b.Allocations(), all) {
		t.Error("file differs from the allocations")
	}
}

func TestFIPPriorityAllocator(t *testing.T) {
	dir := t.TempDir()
	a := openPriorities(t, dir)
	if a.Path() != filepath.Join(dir, "fip-priorities") {
		t.Errorf("Path = %s", a.Path())
	}
	ip := netip.MustParseAddr
	// New floating IPs get priorities from FIP_PR_START = 32768 up, in address order.
	got, err := a.Sync([]netip.Addr{ip("203.0.113.10"), ip("203.0.113.9"), ip("198.51.100.7"), {}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[netip.Addr]uint32{ip("198.51.100.7"): 32768, ip("203.0.113.9"): 32769, ip("203.0.113.10"): 32770}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Sync = %v, want %v", got, want)
	}
	const file1 = "198.51.100.7,32768\n203.0.113.10,32770\n203.0.113.9,32769\n"
	if s := readFile(t, a.Path()); s != file1 {
		t.Errorf("file %q, want %q", s, file1)
	}
	// Restart keeps them; one goes and a new one takes its priority.
	b := openPriorities(t, dir)
	got, err = b.Sync([]netip.Addr{ip("203.0.113.10"), ip("198.51.100.7"), ip("192.0.2.1")})
	want = map[netip.Addr]uint32{ip("198.51.100.7"): 32768, ip("203.0.113.10"): 32770, ip("192.0.2.1"): 32769}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("Sync after restart = %v, %v; want %v", got, err, want)
	}
	if p, ok := b.Lookup(ip("203.0.113.9")); ok {
		t.Errorf("released floating IP still has %d", p)
	}
	if p, err := b.Allocate(ip("192.0.2.2")); err != nil || p != 32771 {
		t.Errorf("Allocate = %d, %v", p, err)
	}
	if err := b.Release(ip("192.0.2.2")); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Allocate(netip.Addr{}); err == nil {
		t.Error("Allocate(invalid) accepted")
	}
}

// TestFIPPriorityNeutronFile reads Neutron's fip-priorities: "floating IP,priority" lines
// (FipPriority's repr is the bare number), with corrupt lines among them.
func TestFIPPriorityNeutronFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, FIPPriorityFile)
	writeFile(t, path, "172.24.4.10,32768\n172.24.4.3,40001\n"+
		"172.24.4.4,32767\n"+ // below FIP_PR_START
		"172.24.4.5,72768\n"+ // FIP_PR_END is not in the range
		"172.24.4.6,abc\n"+
		"172.24.4.7,40001\n"+ // 172.24.4.3's
		"172.24.4.8,72767\n") // the last one
	a, skipped, err := OpenFIPPriorityAllocator(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(skipped) != 4 {
		t.Errorf("skipped %v, want lines 3-6", skipped)
	}
	want := map[string]uint32{"172.24.4.10": 32768, "172.24.4.3": 40001, "172.24.4.8": 72767}
	if !reflect.DeepEqual(a.Allocations(), want) {
		t.Errorf("Allocations = %v, want %v", a.Allocations(), want)
	}
	ip := netip.MustParseAddr
	got, err := a.Sync([]netip.Addr{ip("172.24.4.3"), ip("172.24.4.10"), ip("172.24.4.11")})
	wantSync := map[netip.Addr]uint32{ip("172.24.4.10"): 32768, ip("172.24.4.3"): 40001, ip("172.24.4.11"): 32769}
	if err != nil || !reflect.DeepEqual(got, wantSync) {
		t.Errorf("Sync = %v, %v; want %v", got, err, wantSync)
	}
}

func TestFIPPriorityExhaustion(t *testing.T) {
	a := openPriorities(t, t.TempDir())
	ips := make([]netip.Addr, 40001)
	base := netip.MustParseAddr("10.0.0.0")
	for i := range ips {
		ips[i] = base
		base = base.Next()
	}
	got, err := a.Sync(ips)
	if !errors.Is(err, ErrPoolFull) || !strings.Contains(err.Error(), "floating IP rule priority pool 32768-72767") ||
		!strings.Contains(err.Error(), "nothing left for "+ips[40000].String()) {
		t.Fatalf("Sync of 40001 floating IPs: %v", err)
	}
	if len(got) != 40000 || got[ips[0]] != 32768 || got[ips[39999]] != 72767 {
		t.Errorf("%d priorities, first %d, last %d", len(got), got[ips[0]], got[ips[39999]])
	}
}
