package testbed

import (
	"slices"
	"testing"
)

// TestNormaliseConjunctions: the same firewall numbered two ways normalises to the same
// lines; a different firewall (one address changed) does not.
func TestNormaliseConjunctions(t *testing.T) {
	neutron := []string{
		"table=82, priority=73,conj_id=22,ct_state=+est-rel-rpl,ip,reg5=0x3 actions=set_field:0x16->reg7,output:3",
		"table=82, priority=73,conj_id=23,ct_state=+new-est,ip,reg5=0x3 actions=set_field:0x17->reg7,output:3",
		"table=82, priority=73,ct_state=+est-rel-rpl,ip,reg6=0x1,nw_src=10.0.0.1 actions=conjunction(22,1/2),conjunction(38,1/2)",
		"table=82, priority=73,ct_state=+est-rel-rpl,tcp,reg5=0x3,tp_dst=22 actions=conjunction(22,2/2)",
		"table=82, priority=73,ct_state=+est-rel-rpl,tcp,reg5=0x4,tp_dst=5432 actions=conjunction(38,2/2)",
		"table=82, priority=73,conj_id=38,ct_state=+est-rel-rpl,ip,reg5=0x4 actions=set_field:0x26->reg7,output:4",
	}
	ours := []string{
		"table=82, priority=73,conj_id=3520546262,ct_state=+est-rel-rpl,ip,reg5=0x3 actions=set_field:0xd1d745d6->reg7,output:3",
		"table=82, priority=73,conj_id=3520546263,ct_state=+new-est,ip,reg5=0x3 actions=set_field:0xd1d745d7->reg7,output:3",
		"table=82, priority=73,ct_state=+est-rel-rpl,ip,reg6=0x1,nw_src=10.0.0.1 actions=conjunction(1006,1/2),conjunction(3520546262,1/2)",
		"table=82, priority=73,ct_state=+est-rel-rpl,tcp,reg5=0x3,tp_dst=22 actions=conjunction(3520546262,2/2)",
		"table=82, priority=73,ct_state=+est-rel-rpl,tcp,reg5=0x4,tp_dst=5432 actions=conjunction(1006,2/2)",
		"table=82, priority=73,conj_id=1006,ct_state=+est-rel-rpl,ip,reg5=0x4 actions=set_field:0x3ee->reg7,output:4",
	}
	a, b := NormaliseConjunctions(neutron), NormaliseConjunctions(ours)
	slices.Sort(a)
	slices.Sort(b)
	if !slices.Equal(a, b) {
		t.Errorf("the same firewall numbered two ways:\n%q\n%q", a, b)
	}
	other := slices.Clone(ours)
	other[2] = "table=82, priority=73,ct_state=+est-rel-rpl,ip,reg6=0x1,nw_src=10.0.0.2 actions=conjunction(1006,1/2),conjunction(3520546262,1/2)"
	c := NormaliseConjunctions(other)
	slices.Sort(c)
	if slices.Equal(a, c) {
		t.Error("a different firewall normalised to the same lines")
	}
}
