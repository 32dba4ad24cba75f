package namespace

// The two allocations a DVR host keeps for its floating IPs, persisted so that an agent
// restart finds every namespace as it left it (Neutron's dvr_fip_ns.FipNamespace keeps them
// in its state_path for the same reason: a renumbered link or rule would cut connections):
//
//   - a /31 per router from 169.254.64.0/18 (Neutron's LinkLocalAllocator, file
//     fip-linklocal-networks) for the rfp-/fpr- veth pair between qrouter-<router> and
//     fip-<external network>;
//   - a rule priority per floating IP from [32768, 72768) (Neutron's
//     FipRulePriorityAllocator, file fip-priorities) for the "from <fixed IP> lookup 16" rule
//     in qrouter-<router>.
//
// # File format
//
// Neutron's ItemAllocator format, so that a host moving from Neutron's L3 agent to dvrflow
// (or back) keeps its pairs and priorities: one "key,value" line per allocation, the key a
// router id (link-local) or a floating IP address (priorities), the value "169.254.64.0/31"
// or "32768". dvrflow writes the lines sorted by key (Neutron writes them in its dicts'
// order; neither cares when reading).
//
// # Differences from Neutron's allocator, on purpose
//
//   - Deterministic: a new allocation is the lowest free item (Neutron pops an arbitrary one
//     from a Python set), so the same keys and the same file always give the same result.
//   - A line that does not parse, whose value is outside the pool, or that repeats a key or a
//     value already read is reported and skipped (Neutron accepts any value its type parses,
//     and two keys with the same value would share a pair), and the file is rewritten
//     without it, as Neutron rewrites a file with unreadable lines.
//   - Writes are atomic (a temporary file in the same directory, synced, then renamed over
//     the file; the directory synced), and an allocation is returned only once it is on
//     disk: a crash never leaves a torn file or hands out an item the file does not hold.
//   - Sync makes the allocations exactly a given key set (what the manager wants after
//     computing the desired state), releasing every other key: a router deleted or a
//     floating IP disassociated while the agent was down does not hold its item forever.
//
// # Concurrency
//
// Every method of both allocators is safe for concurrent use (one mutex per allocator; the
// file is written under it). An allocator assumes it is the only writer of its file: open
// each file once per process, and never let two agents (dvrflow and Neutron's L3 agent
// included) use the same directory at the same time.

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
)

const (
	// LinkLocalFile is the file, in the state directory, of the routers' link-local pairs
	// (Neutron's name, under its state_path).
	LinkLocalFile = "fip-linklocal-networks"
	// FIPPriorityFile is the file, in the state directory, of the floating IPs' rule
	// priorities (Neutron's name).
	FIPPriorityFile = "fip-priorities"

	// FIPRulePriorityStart is the first priority of a floating IP's rule (Neutron's
	// dvr_fip_ns.FIP_PR_START).
	FIPRulePriorityStart = 32768
	// FIPRulePriorityEnd is one past the last (Neutron's FIP_PR_END = FIP_PR_START + 40000).
	FIPRulePriorityEnd = FIPRulePriorityStart + 40000
)

// LinkLocalPool is the pool of the rfp-/fpr- pairs, cut into /31s (Neutron's
// neutron_lib.constants.DVR_FIP_LL_CIDR): 8192 pairs.
var LinkLocalPool = netip.MustParsePrefix("169.254.64.0/18")

// ErrPoolFull is wrapped by the error of an allocation that found no free item.
var ErrPoolFull = errors.New("allocation pool full")

// LinkLocalPair is one /31 of [LinkLocalPool], the addresses of a router's veth pair to its
// fip- namespace.
type LinkLocalPair struct {
	// Net is the /31 (its first address), as the file holds it.
	Net netip.Prefix
}

// RouterEnd is the address of rfp- (in qrouter-): the first address of the /31, with the
// prefix length (Neutron's LinkLocalAddressPair.get_pair()[0], "rtr_2_fip").
func (p LinkLocalPair) RouterEnd() netip.Prefix { return p.Net.Masked() }

// FIPEnd is the address of fpr- (in fip-): the second address of the /31 (get_pair()[1],
// "fip_2_rtr"), the next hop of the router's floating IP table.
func (p LinkLocalPair) FIPEnd() netip.Prefix {
	return netip.PrefixFrom(p.Net.Masked().Addr().Next(), p.Net.Bits())
}

// FIPTable is the route table, and the priority of its rule, that the fip- namespace uses
// for what arrives from this router's fpr-: the fpr- address as a 32-bit number (Neutron's
// DvrLocalRouter._get_snat_idx of fip_2_rtr, an IPv4 address's numeric value).
func (p LinkLocalPair) FIPTable() uint32 {
	a := p.FIPEnd().Addr().As4()
	return binary.BigEndian.Uint32(a[:])
}

// IsValid reports whether the pair is a /31 of LinkLocalPool.
func (p LinkLocalPair) IsValid() bool {
	_, err := linkLocalIndex(p.Net)
	return err == nil
}

func (p LinkLocalPair) String() string { return p.Net.String() }

func linkLocalBase() uint32 {
	a := LinkLocalPool.Addr().As4()
	return binary.BigEndian.Uint32(a[:])
}

// linkLocalSize is the number of /31s in the pool.
func linkLocalSize() int { return 1 << (31 - LinkLocalPool.Bits()) }

func linkLocalAt(i int) LinkLocalPair {
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], linkLocalBase()+2*uint32(i))
	return LinkLocalPair{Net: netip.PrefixFrom(netip.AddrFrom4(a), 31)}
}

func linkLocalIndex(p netip.Prefix) (int, error) {
	switch {
	case !p.IsValid() || !p.Addr().Is4():
		return 0, fmt.Errorf("%q is not an IPv4 prefix", p)
	case p.Bits() != 31:
		return 0, fmt.Errorf("%s is not a /31", p)
	case p.Masked() != p:
		return 0, fmt.Errorf("%s is not the first address of its /31", p)
	case !LinkLocalPool.Contains(p.Addr()):
		return 0, fmt.Errorf("%s is outside %s", p, LinkLocalPool)
	}
	a := p.Addr().As4()
	return int((binary.BigEndian.Uint32(a[:]) - linkLocalBase()) / 2), nil
}

// AllocationLineError is a line of an allocation file that was skipped.
type AllocationLineError struct {
	Path string
	// Line is 1-based.
	Line   int
	Text   string
	Reason string
}

func (e *AllocationLineError) Error() string {
	return fmt.Sprintf("%s:%d: %q skipped: %s", e.Path, e.Line, e.Text, e.Reason)
}

// LinkLocalAllocator hands out the routers' link-local pairs, keyed by router id, and keeps
// them in [LinkLocalFile]. Safe for concurrent use.
type LinkLocalAllocator struct{ f *allocFile }

// OpenLinkLocalAllocator reads dir/fip-linklocal-networks (an absent file is an empty one;
// dir is created if missing). The skipped lines are returned, each an
// *AllocationLineError, after the file was rewritten without them; err is an I/O error
// (reading, or that rewrite), and then there is no allocator.
func OpenLinkLocalAllocator(dir string) (a *LinkLocalAllocator, skipped []error, err error) {
	f, skipped, err := openAllocFile(dir, LinkLocalFile, allocPool{
		name: fmt.Sprintf("link-local pool %s (%d /31 pairs)", LinkLocalPool, linkLocalSize()),
		size: linkLocalSize(),
		format: func(i int) string {
			return linkLocalAt(i).Net.String()
		},
		parse: func(s string) (int, error) {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return 0, err
			}
			return linkLocalIndex(p)
		},
	})
	if err != nil {
		return nil, skipped, err
	}
	return &LinkLocalAllocator{f}, skipped, nil
}

// Path is the allocator's file.
func (a *LinkLocalAllocator) Path() string { return a.f.path }

// Sync makes the allocations exactly routerIDs: each keeps its pair (from this run or from
// the file), each new one gets the lowest free pair, in router id order, and every other
// router's pair is released. It returns the pair of every router id (empty ids are
// ignored). When the pool cannot hold them all, the routers left without a pair are named
// in an error wrapping ErrPoolFull and every other one is still returned. When the file
// cannot be written, nothing changes: the error says why, and the routers that already had
// a pair are returned with it.
func (a *LinkLocalAllocator) Sync(routerIDs []string) (map[string]LinkLocalPair, error) {
	got, err := a.f.sync(slices.Sorted(slices.Values(routerIDs)))
	out := make(map[string]LinkLocalPair, len(got))
	for k, i := range got {
		out[k] = linkLocalAt(i)
	}
	return out, err
}

// Allocate returns the router's pair, allocating the lowest free one if it has none. When
// the pool is full it first takes back the pairs read from the file for routers no call
// has asked about since (as Neutron's ItemAllocator does), then fails with ErrPoolFull.
func (a *LinkLocalAllocator) Allocate(routerID string) (LinkLocalPair, error) {
	i, err := a.f.allocate(routerID)
	if err != nil {
		return LinkLocalPair{}, err
	}
	return linkLocalAt(i), nil
}

// Lookup returns the router's pair, if it has one.
func (a *LinkLocalAllocator) Lookup(routerID string) (LinkLocalPair, bool) {
	i, ok := a.f.lookup(routerID)
	if !ok {
		return LinkLocalPair{}, false
	}
	return linkLocalAt(i), true
}

// Release frees the router's pair; releasing a router without one does nothing.
func (a *LinkLocalAllocator) Release(routerID string) error { return a.f.release(routerID) }

// Allocations returns every router's pair.
func (a *LinkLocalAllocator) Allocations() map[string]LinkLocalPair {
	got := a.f.snapshot()
	out := make(map[string]LinkLocalPair, len(got))
	for k, i := range got {
		out[k] = linkLocalAt(i)
	}
	return out
}

// FIPPriorityAllocator hands out the priorities of the floating IPs' rules in qrouter-
// namespaces, keyed by floating IP address (as Neutron keys them), and keeps them in
// [FIPPriorityFile]. Safe for concurrent use.
type FIPPriorityAllocator struct{ f *allocFile }

// OpenFIPPriorityAllocator reads dir/fip-priorities, as OpenLinkLocalAllocator reads its
// file.
func OpenFIPPriorityAllocator(dir string) (a *FIPPriorityAllocator, skipped []error, err error) {
	f, skipped, err := openAllocFile(dir, FIPPriorityFile, allocPool{
		name:   fmt.Sprintf("floating IP rule priority pool %d-%d", FIPRulePriorityStart, FIPRulePriorityEnd-1),
		size:   FIPRulePriorityEnd - FIPRulePriorityStart,
		format: func(i int) string { return strconv.Itoa(FIPRulePriorityStart + i) },
		parse: func(s string) (int, error) {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return 0, errors.New("not a number")
			}
			if n < FIPRulePriorityStart || n >= FIPRulePriorityEnd {
				return 0, fmt.Errorf("%d is outside %d-%d", n, FIPRulePriorityStart, FIPRulePriorityEnd-1)
			}
			return int(n - FIPRulePriorityStart), nil
		},
	})
	if err != nil {
		return nil, skipped, err
	}
	return &FIPPriorityAllocator{f}, skipped, nil
}

// Path is the allocator's file.
func (a *FIPPriorityAllocator) Path() string { return a.f.path }

// Sync makes the allocations exactly floatingIPs, as LinkLocalAllocator.Sync does (new
// ones in address order). Invalid addresses are ignored.
func (a *FIPPriorityAllocator) Sync(floatingIPs []netip.Addr) (map[netip.Addr]uint32, error) {
	ips := slices.SortedFunc(slices.Values(floatingIPs), netip.Addr.Compare)
	keys := make([]string, 0, len(ips))
	for _, ip := range ips {
		if ip.IsValid() {
			keys = append(keys, ip.String())
		}
	}
	got, err := a.f.sync(keys)
	out := make(map[netip.Addr]uint32, len(got))
	for k, i := range got {
		out[netip.MustParseAddr(k)] = uint32(FIPRulePriorityStart + i)
	}
	return out, err
}

// Allocate returns the floating IP's priority, allocating the lowest free one if it has
// none (see LinkLocalAllocator.Allocate).
func (a *FIPPriorityAllocator) Allocate(floatingIP netip.Addr) (uint32, error) {
	if !floatingIP.IsValid() {
		return 0, errors.New("floating IP rule priority: invalid address")
	}
	i, err := a.f.allocate(floatingIP.String())
	if err != nil {
		return 0, err
	}
	return uint32(FIPRulePriorityStart + i), nil
}

// Lookup returns the floating IP's priority, if it has one.
func (a *FIPPriorityAllocator) Lookup(floatingIP netip.Addr) (uint32, bool) {
	i, ok := a.f.lookup(floatingIP.String())
	if !ok {
		return 0, false
	}
	return uint32(FIPRulePriorityStart + i), true
}

// Release frees the floating IP's priority; releasing one without a priority does nothing.
func (a *FIPPriorityAllocator) Release(floatingIP netip.Addr) error {
	return a.f.release(floatingIP.String())
}

// Allocations returns every priority by key. The keys are floating IP addresses, except for
// lines of a file written by someone else whose key is not one (kept until released, never
// handed out to anyone else).
func (a *FIPPriorityAllocator) Allocations() map[string]uint32 {
	got := a.f.snapshot()
	out := make(map[string]uint32, len(got))
	for k, i := range got {
		out[k] = uint32(FIPRulePriorityStart + i)
	}
	return out
}

// allocPool describes the items of one allocator as indexes 0..size-1.
type allocPool struct {
	// name says which pool, for errors.
	name   string
	size   int
	format func(int) string
	parse  func(string) (int, error)
}

// allocFile is an allocator of pool items to string keys, kept in a file.
type allocFile struct {
	mu   sync.Mutex
	path string
	pool allocPool
	// byKey maps each key to its item; owner is the reverse.
	byKey map[string]int
	owner map[int]string
	// asked are the keys some call asked about since the file was read; the others are
	// remembered from the file, and Allocate takes them back when the pool is full.
	asked map[string]bool
}

func openAllocFile(dir, name string, pool allocPool) (*allocFile, []error, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, fmt.Errorf("%s: state directory: %w", pool.name, err)
	}
	f := &allocFile{
		path:  filepath.Join(dir, name),
		pool:  pool,
		byKey: map[string]int{},
		owner: map[int]string{},
		asked: map[string]bool{},
	}
	// A temporary file left by a crash in the middle of a write.
	if stale, err := filepath.Glob(filepath.Join(dir, "."+name+".tmp-*")); err == nil {
		for _, s := range stale {
			_ = os.Remove(s)
		}
	}
	data, err := os.ReadFile(f.path)
	if errors.Is(err, os.ErrNotExist) {
		return f, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", pool.name, err)
	}
	var skipped []error
	skip := func(n int, text, format string, args ...any) {
		skipped = append(skipped, &AllocationLineError{Path: f.path, Line: n, Text: text, Reason: fmt.Sprintf(format, args...)})
	}
	lineOf := map[string]int{}
	for n, line := range strings.Split(string(data), "\n") {
		n++
		text := strings.TrimSpace(line)
		if text == "" {
			continue
		}
		fields := strings.Split(text, ",")
		if len(fields) != 2 {
			skip(n, text, "want key,value")
			continue
		}
		key, value := strings.TrimSpace(fields[0]), strings.TrimSpace(fields[1])
		if err := validAllocKey(key); err != nil {
			skip(n, text, "key: %v", err)
			continue
		}
		i, err := pool.parse(value)
		if err != nil {
			skip(n, text, "value: %v", err)
			continue
		}
		if _, dup := f.byKey[key]; dup {
			skip(n, text, "key %s already has %s (line %d)", key, pool.format(f.byKey[key]), lineOf[key])
			continue
		}
		if other, dup := f.owner[i]; dup {
			skip(n, text, "%s already belongs to %s (line %d)", pool.format(i), other, lineOf[other])
			continue
		}
		f.byKey[key], f.owner[i], lineOf[key] = i, key, n
	}
	if len(skipped) > 0 {
		if err := f.write(f.byKey); err != nil {
			return nil, skipped, fmt.Errorf("%s: rewriting %s without its bad lines: %w", pool.name, f.path, err)
		}
	}
	return f, skipped, nil
}

// validAllocKey refuses a key the file format cannot hold.
func validAllocKey(key string) error {
	switch {
	case key == "":
		return errors.New("empty")
	case strings.ContainsAny(key, ",\n\r"):
		return fmt.Errorf("%q contains a comma or a line break", key)
	case strings.TrimSpace(key) != key:
		return fmt.Errorf("%q starts or ends with a space", key)
	}
	return nil
}

func (f *allocFile) lookup(key string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.byKey[key]
	return i, ok
}

func (f *allocFile) snapshot() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.byKey)
}

// lowestFree returns the lowest item from start on that is not in used, or -1.
func (f *allocFile) lowestFree(used map[int]string, start int) int {
	for i := start; i < f.pool.size; i++ {
		if _, taken := used[i]; !taken {
			return i
		}
	}
	return -1
}

func (f *allocFile) full(keys []string) error {
	return fmt.Errorf("%w: %s is full (all %d in use, file %s): nothing left for %s",
		ErrPoolFull, f.pool.name, f.pool.size, f.path, strings.Join(keys, ", "))
}

// sync makes the allocations exactly keys; new keys get the lowest free items in the order
// of keys (the callers sort them).
func (f *allocFile) sync(keys []string) (map[string]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var errs []error
	want := map[string]bool{}
	var ordered []string
	for _, k := range keys {
		if k == "" || want[k] {
			continue
		}
		if err := validAllocKey(k); err != nil {
			errs = append(errs, fmt.Errorf("%s: key %v", f.pool.name, err))
			continue
		}
		want[k] = true
		ordered = append(ordered, k)
	}
	next := map[string]int{}
	used := map[int]string{}
	var fresh []string
	for _, k := range ordered {
		if i, ok := f.byKey[k]; ok {
			next[k], used[i] = i, k
		} else {
			fresh = append(fresh, k)
		}
	}
	var left []string
	cursor := 0
	for _, k := range fresh {
		i := f.lowestFree(used, cursor)
		if i < 0 {
			left = append(left, k)
			continue
		}
		next[k], used[i], cursor = i, k, i+1
	}
	if len(left) > 0 {
		errs = append(errs, f.full(left))
	}
	if !maps.Equal(next, f.byKey) {
		if err := f.write(next); err != nil {
			kept := map[string]int{}
			for k := range want {
				if i, ok := f.byKey[k]; ok {
					kept[k] = i
				}
			}
			return kept, errors.Join(append(errs, err)...)
		}
		f.commit(next)
	}
	for k := range next {
		f.asked[k] = true
	}
	return maps.Clone(next), errors.Join(errs...)
}

func (f *allocFile) allocate(key string) (int, error) {
	if err := validAllocKey(key); err != nil {
		return 0, fmt.Errorf("%s: key %v", f.pool.name, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked[key] = true
	if i, ok := f.byKey[key]; ok {
		return i, nil
	}
	next := maps.Clone(f.byKey)
	i := f.lowestFree(f.owner, 0)
	if i < 0 {
		// Neutron's "desperate times": forget what the file remembered for keys nobody
		// asked about.
		used := map[int]string{}
		for k, j := range f.byKey {
			if f.asked[k] {
				used[j] = k
			} else {
				delete(next, k)
			}
		}
		if i = f.lowestFree(used, 0); i < 0 {
			return 0, f.full([]string{key})
		}
	}
	next[key] = i
	if err := f.write(next); err != nil {
		return 0, err
	}
	f.commit(next)
	return i, nil
}

func (f *allocFile) release(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.byKey[key]; !ok {
		return nil
	}
	next := maps.Clone(f.byKey)
	delete(next, key)
	if err := f.write(next); err != nil {
		return err
	}
	f.commit(next)
	return nil
}

// commit makes next the allocations (after it was written).
func (f *allocFile) commit(next map[string]int) {
	f.byKey = next
	f.owner = make(map[int]string, len(next))
	for k, i := range next {
		f.owner[i] = k
	}
	for k := range f.asked {
		if _, ok := next[k]; !ok {
			delete(f.asked, k)
		}
	}
}

// write replaces the file with allocs, atomically: a temporary file in the same directory,
// synced, renamed over the file, then the directory synced.
func (f *allocFile) write(allocs map[string]int) (err error) {
	type line struct {
		key   string
		value string
	}
	lines := make([]line, 0, len(allocs))
	for k, i := range allocs {
		lines = append(lines, line{k, f.pool.format(i)})
	}
	slices.SortFunc(lines, func(a, b line) int { return cmp.Compare(a.key, b.key) })
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l.key + "," + l.value + "\n")
	}

	dir, name := filepath.Dir(f.path), filepath.Base(f.path)
	tmp, err := os.CreateTemp(dir, "."+name+".tmp-*")
	if err != nil {
		return fmt.Errorf("%s: write %s: %w", f.pool.name, f.path, err)
	}
	defer func() {
		if err != nil {
			_ = os.Remove(tmp.Name())
			err = fmt.Errorf("%s: write %s: %w", f.pool.name, f.path, err)
		}
	}()
	if _, err := tmp.WriteString(b.String()); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), f.path); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return nil
}

// FIPAllocators are a host's two floating IP allocators, opened once per agent on its
// state directory.
type FIPAllocators struct {
	LinkLocal  *LinkLocalAllocator
	Priorities *FIPPriorityAllocator
}

// OpenFIPAllocators opens both allocators' files in dir (see OpenLinkLocalAllocator): the
// skipped lines of both files are returned (each an *AllocationLineError naming file and
// line); err is an I/O error, and then there are no allocators.
func OpenFIPAllocators(dir string) (*FIPAllocators, []error, error) {
	ll, skipped, err := OpenLinkLocalAllocator(dir)
	if err != nil {
		return nil, skipped, err
	}
	pr, more, err := OpenFIPPriorityAllocator(dir)
	skipped = append(skipped, more...)
	if err != nil {
		return nil, skipped, err
	}
	return &FIPAllocators{LinkLocal: ll, Priorities: pr}, skipped, nil
}

// Allocate fills in in.LinkLocal and in.Priorities for DesiredFIP: both allocators synced
// to exactly FIPAllocationKeys(*in), so that what is no longer served here is released.
// The error names the routers or floating IPs left without an allocation (a pool full) or
// the file that could not be written; everything allocated is still filled in, and
// DesiredFIP makes a Problem of each router or floating IP left out.
func (al *FIPAllocators) Allocate(in *FIPInput) error {
	routers, fips := FIPAllocationKeys(*in)
	var errs []error
	pairs, err := al.LinkLocal.Sync(routers)
	if err != nil {
		errs = append(errs, fmt.Errorf("routers' link-local pairs: %w", err))
	}
	prios, err := al.Priorities.Sync(fips)
	if err != nil {
		errs = append(errs, fmt.Errorf("floating IPs' rule priorities: %w", err))
	}
	in.LinkLocal, in.Priorities = pairs, prios
	return errors.Join(errs...)
}
