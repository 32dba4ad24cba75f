package controller

import "testing"

func TestLocalVLANs(t *testing.T) {
	a := NewLocalVLANs()
	mustAlloc := func(net string, want uint16) {
		t.Helper()
		got, err := a.Allocate(net)
		if err != nil || got != want {
			t.Fatalf("Allocate(%s) = %d, %v; want %d", net, got, err, want)
		}
	}
	// Recovered allocations are kept; new networks get the lowest free id around them.
	if !a.Recover("n3", 3) {
		t.Fatal("Recover(n3, 3) refused on an empty allocator")
	}
	if a.Recover("n4", 3) {
		t.Error("Recover gave VLAN 3 to a second network")
	}
	if a.Recover("n3", 5) {
		t.Error("Recover moved a network to a second VLAN")
	}
	if a.Recover("n9", 4095) || a.Recover("n9", 0) {
		t.Error("Recover accepted a VLAN outside 1..4094")
	}
	mustAlloc("n1", 1)
	mustAlloc("n2", 2)
	mustAlloc("n5", 4)
	mustAlloc("n1", 1) // stable
	a.Release("n2")
	mustAlloc("n6", 2) // lowest free again
	if _, ok := a.Get("n2"); ok {
		t.Error("released network still has a VLAN")
	}
	if got := a.Networks(); len(got) != 4 || got[0] != "n1" {
		t.Errorf("Networks() = %v", got)
	}
}

func TestLocalVLANsExhausted(t *testing.T) {
	a := NewLocalVLANs()
	for i := MinLocalVLAN; i <= MaxLocalVLAN; i++ {
		if _, err := a.Allocate(string(rune(0x1000 + i))); err != nil {
			t.Fatalf("allocation %d: %v", i, err)
		}
	}
	if _, err := a.Allocate("one-too-many"); err == nil {
		t.Fatal("allocated more than 4094 local VLANs")
	}
}
