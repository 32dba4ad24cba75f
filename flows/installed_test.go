package flows

import (
	"fmt"
	"strings"
	"testing"
)

// planSummary renders what a plan would send, one line per flow-mod.
func planSummary(ops []op) []string {
	var out []string
	for _, o := range ops {
		kind := [...]string{"add", "modify", "delete"}[o.kind]
		if o.hasOld {
			kind = fmt.Sprintf("replace %#x", o.oldCk)
		}
		out = append(out, kind+" "+o.flow.String())
	}
	return out
}

// installAll records fs as installed, as a Sync that committed them would.
func installAll(t *testing.T, s *installedSet, fs []Flow) {
	t.Helper()
	var scratch []byte
	ops, _, err := s.plan("br0", fs, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	s.apply(ops)
}

// The diff against the installed record: adds what is missing, modifies exactly the flows
// whose actions (so instructions) changed, replaces foreign flows with the same key,
// deletes our flows that are no longer desired and spares foreign ones; and an unchanged
// set plans nothing, however often it is planned.
func TestPlan(t *testing.T) {
	ours := Cookie(CategoryTest, "plan")
	base := manyFlows(60, ours)
	s := newInstalledSet(0)
	installAll(t, s, base)
	foreign := Flow{Table: 60, Priority: 77, Cookie: 0x99, Match: Match{}.InPort(3)}
	taken := Flow{Table: 61, Priority: 5, Cookie: 0x98, Match: Match{}.InPort(2), Actions: []Action{Normal()}}
	var scratch []byte
	for _, f := range []Flow{foreign, taken} {
		in, _ := f.Instructions()
		s.put(f.Key(), f.Cookie, internInstructions(in))
	}

	for i := range 3 { // repeated plans of the same set stay empty (the diff's marks reset)
		ops, unchanged, err := s.plan("br0", base, &scratch)
		if err != nil || len(ops) != 0 || unchanged != len(base) {
			t.Fatalf("plan %d of the installed set: %v, %d unchanged, %v; want nothing", i, planSummary(ops), unchanged, err)
		}
	}

	next := append([]Flow(nil), base[:50]...) // 10 of ours dropped
	next[3].Actions = []Action{Output{Port: PortNormal}}
	next[7].Actions = append([]Action{Output{Port: 9}}, next[7].Actions...) // one more action
	next[8].Actions = nil                                                   // now a drop
	next[9].Cookie = Cookie(CategoryTest, "other")                          // same flow, new owner
	added := Flow{Table: 70, Priority: 1, Cookie: ours, Match: Match{}.InPort(1), Actions: []Action{GotoTable{Table: 71}}}
	replacing := Flow{Table: 61, Priority: 5, Cookie: ours, Match: Match{}.InPort(2), Actions: []Action{Normal()}}
	next = append(next, added, replacing)

	ops, unchanged, err := s.plan("br0", next, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, i := range []int{3, 7, 8} {
		want = append(want, "modify "+next[i].String())
	}
	want = append(want, fmt.Sprintf("replace %#x %s", ours, next[9]), "add "+added.String(), fmt.Sprintf("replace %#x %s", uint64(0x98), replacing))
	got := planSummary(ops)
	gotAddsMods, gotDeletes := got, []string(nil)
	for i, l := range got {
		if strings.HasPrefix(l, "delete ") {
			gotAddsMods, gotDeletes = got[:i], got[i:]
			break
		}
	}
	if strings.Join(gotAddsMods, "\n") != strings.Join(want, "\n") {
		t.Errorf("adds and modifies:\n%s\nwant\n%s", strings.Join(gotAddsMods, "\n"), strings.Join(want, "\n"))
	}
	if len(gotDeletes) != 10 {
		t.Errorf("deletes %d, want the 10 flows of ours no longer desired (not the foreign one):\n%s", len(gotDeletes), strings.Join(gotDeletes, "\n"))
	}
	for _, l := range gotDeletes {
		if strings.Contains(l, "table=60, priority=77,in_port=3 ") {
			t.Errorf("the foreign flow is deleted: %s", l)
		}
	}
	if unchanged != 50-4 {
		t.Errorf("unchanged = %d, want 46", unchanged)
	}

	// Committed: the record follows, and the next plan of the same set is empty; the
	// previous set is the difference again.
	s.apply(ops)
	if ops, _, err := s.plan("br0", next, &scratch); err != nil || len(ops) != 0 {
		t.Fatalf("after apply: %v, %v; want nothing", planSummary(ops), err)
	}
	if s.Len() != len(next)+1 { // + the foreign flow
		t.Errorf("%d installed, want %d", s.Len(), len(next)+1)
	}
	back, _, err := s.plan("br0", base, &scratch)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range back {
		kinds[strings.Fields(planSummary([]op{o})[0])[0]]++
	}
	if kinds["add"] != 10 || kinds["modify"] != 3 || kinds["replace"] != 1 || kinds["delete"] != 2 {
		t.Errorf("back to the first set: %v, want 10 added, 3 modified, 1 replaced, 2 deleted", kinds)
	}
}

// Flows whose instructions differ only slightly must still differ: the record compares
// every byte of the encoded instructions, not a summary.
func TestPlanSeesEveryActionChange(t *testing.T) {
	cookie := Cookie(CategoryTest, "actions")
	m := Match{}.InPort(1)
	variants := [][]Action{
		nil,
		{Output{Port: 1}},
		{Output{Port: 2}},
		{Output{Port: 1}, Output{Port: 2}},
		{Output{Port: 2}, Output{Port: 1}},
		{GotoTable{Table: 2}},
		{GotoTable{Table: 3}},
		{Output{Port: 1}, GotoTable{Table: 2}},
		{SetVLANVID(1), Normal()},
		{SetVLANVID(2), Normal()},
		{SetEthSrc(mac("fa:16:3e:00:00:01")), Normal()},
		{SetEthSrc(mac("fa:16:3e:00:00:02")), Normal()},
		{Load{Value: 1, Dst: Whole(Reg(6))}, Resubmit{Table: 61}},
		{Load{Value: 2, Dst: Whole(Reg(6))}, Resubmit{Table: 61}},
		{Load{Value: 1, Dst: Whole(Reg(6))}, Resubmit{Table: 62}},
		{PushVLAN{}, SetVLANVID(1), Output{Port: 1}},
		{PopVLAN{}, Output{Port: 1}},
	}
	for i, from := range variants {
		for j, to := range variants {
			s := newInstalledSet(0)
			installAll(t, s, []Flow{{Cookie: cookie, Match: m, Actions: from}})
			var scratch []byte
			ops, _, err := s.plan("br0", []Flow{{Cookie: cookie, Match: m, Actions: to}}, &scratch)
			if err != nil {
				t.Fatal(err)
			}
			if wantModify := i != j; wantModify != (len(ops) == 1 && ops[0].kind == 1) || (!wantModify && len(ops) != 0) {
				t.Errorf("%v → %v: plan %v", from, to, planSummary(ops))
			}
		}
	}
}

func TestPlanRefusesDuplicatesAndBadFlows(t *testing.T) {
	cookie := Cookie(CategoryTest, "dup")
	a := Flow{Table: 1, Priority: 2, Cookie: cookie, Match: Match{}.InPort(1), Actions: []Action{Normal()}}
	b := a
	b.Actions = []Action{Output{Port: 4}}
	bad := Flow{Table: 1, Priority: 3, Cookie: cookie, Actions: []Action{GotoTable{Table: 2}, Normal()}}
	for name, tc := range map[string]struct {
		installed, desired []Flow
		want               string
	}{
		"duplicate not installed": {nil, []Flow{a, b}, "two desired flows"},
		"duplicate installed":     {[]Flow{a}, []Flow{a, b}, "two desired flows"},
		"unencodable":             {nil, []Flow{a, bad}, "goto_table:2 must be the last action"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newInstalledSet(0)
			installAll(t, s, tc.installed)
			var scratch []byte
			_, _, err := s.plan("br0", tc.desired, &scratch)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("plan: %v, want an error with %q", err, tc.want)
			}
			// The failed plan leaves no marks behind: the installed flows plan normally.
			ops, unchanged, err := s.plan("br0", tc.installed, &scratch)
			if err != nil || len(ops) != 0 || unchanged != len(tc.installed) {
				t.Errorf("after the failed plan: %v, %d unchanged, %v", planSummary(ops), unchanged, err)
			}
		})
	}
}

// The epoch of the marks wraps around without a flow looking desired by an old diff.
func TestPlanEpochWraps(t *testing.T) {
	cookie := Cookie(CategoryTest, "epoch")
	fs := manyFlows(5, cookie)
	s := newInstalledSet(0)
	installAll(t, s, fs)
	s.epoch = ^uint32(0) - 1
	var scratch []byte
	for i := range 4 {
		desired := fs
		if i%2 == 1 {
			desired = fs[:4]
		}
		ops, _, err := s.plan("br0", desired, &scratch)
		if err != nil {
			t.Fatal(err)
		}
		if want := i % 2; len(ops) != want {
			t.Errorf("plan %d (epoch %d): %v, want %d delete", i, s.epoch, planSummary(ops), want)
		}
	}
}

// BenchmarkPlanUnchanged is Sync's diff without a switch: n desired flows, all installed
// as they are.
func BenchmarkPlanUnchanged(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		fs := manyFlows(n, Cookie(CategoryTest, "bench"))
		s := newInstalledSet(0)
		var scratch []byte
		ops, _, err := s.plan("br0", fs, &scratch)
		if err != nil {
			b.Fatal(err)
		}
		s.apply(ops)
		b.Run(fmt.Sprintf("flows=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if ops, _, err := s.plan("br0", fs, &scratch); err != nil || len(ops) != 0 {
					b.Fatalf("%d ops, %v", len(ops), err)
				}
			}
		})
	}
}
