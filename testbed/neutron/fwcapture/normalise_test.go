package main

import (
	"slices"
	"testing"
)

func TestNormalise(t *testing.T) {
	got, perTable := normalise([]string{
		"cookie=0x5e1f, table=71, reset_counts priority=65,ct_state=-trk,ip,reg5=0x4 actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
		"cookie=0x5e1f, priority=0 actions=resubmit(,58)",
		"cookie=0x5e1f, table=60, priority=100,in_port=4 actions=load:0x4->NXM_NX_REG5[],load:0x1->NXM_NX_REG6[],resubmit(,71)",
		"cookie=0x5e1f, table=71, reset_counts priority=110,ct_state=+trk actions=ct_clear,resubmit(,71)",
		"cookie=0x5e1f, priority=65535,dl_vlan=4095 actions=drop",
		"cookie=0x1, table=71, priority=65,ct_state=-trk,ip,reg5=0x3 actions=learn(table=1,cookie=0xab,output:1)",
	})
	want := []string{
		"cookie=COOKIE, priority=65535,dl_vlan=4095 actions=drop",
		"cookie=COOKIE, priority=0 actions=resubmit(,58)",
		"cookie=COOKIE, table=60, priority=100,in_port=4 actions=load:0x4->NXM_NX_REG5[],load:0x1->NXM_NX_REG6[],resubmit(,71)",
		"cookie=COOKIE, table=71, reset_counts priority=110,ct_state=+trk actions=ct_clear,resubmit(,71)",
		"cookie=COOKIE, table=71, priority=65,ct_state=-trk,ip,reg5=0x3 actions=learn(table=1,cookie=COOKIE,output:1)",
		"cookie=COOKIE, table=71, reset_counts priority=65,ct_state=-trk,ip,reg5=0x4 actions=ct(table=72,zone=NXM_NX_REG6[0..15])",
	}
	if !slices.Equal(got, want) {
		t.Errorf("normalise:\n got %q\nwant %q", got, want)
	}
	if perTable[0] != 2 || perTable[60] != 1 || perTable[71] != 3 {
		t.Errorf("per table %v", perTable)
	}
}
