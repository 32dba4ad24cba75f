package pipeline

import (
	"math/rand/v2"
	"testing"

	"github.com/dvrflow/dvrflow/flows"
)

// referenceLastWins is the definition: for every key the flow added last, at the place
// its key was first added.
func referenceLastWins(fs []flows.Flow) []flows.Flow {
	index := map[flows.Key]int{}
	var kept []flows.Flow
	for _, f := range fs {
		if i, ok := index[f.Key()]; ok {
			kept[i] = f
			continue
		}
		index[f.Key()] = len(kept)
		kept = append(kept, f)
	}
	return kept
}

// lastWins equals the definition on sets full of repeated keys: the same match in other
// tables and priorities, the same key with other cookies and actions, many times over.
func TestLastWinsEqualsDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for round := range 50 {
		var fs []flows.Flow
		for i := range 200 + round*40 {
			fs = append(fs, flows.Flow{
				Table:    uint8(rng.IntN(3)),
				Priority: uint16(rng.IntN(3)),
				Cookie:   flows.OwnerMark | uint64(rng.IntN(4)),
				Match:    flows.Match{}.InPort(uint32(rng.IntN(40))),
				Actions:  []flows.Action{flows.Output{Port: uint32(i)}}, // tells the copies apart
			})
		}
		want := referenceLastWins(append([]flows.Flow(nil), fs...))
		got := lastWins(fs)
		if len(got) != len(want) {
			t.Fatalf("round %d: %d flows, want %d", round, len(got), len(want))
		}
		for i := range want {
			if got[i].String() != want[i].String() {
				t.Fatalf("round %d: flow %d is %s, want %s", round, i, got[i], want[i])
			}
		}
	}
}
