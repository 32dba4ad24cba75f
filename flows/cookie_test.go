package flows

import (
	"fmt"
	"hash/fnv"
	"testing"
)

// ObjectHash is FNV-1a 64 masked to 40 bits: cookies already written into switches must
// keep decoding to the same objects.
func TestObjectHashIsFNV1a(t *testing.T) {
	for _, s := range []string{"", "a", "br-int", "c0000001-0000-4000-8000-000000000001", "fa:16:3f:00:00:01", "physnet1", "\xff\x00é"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := ObjectHash(s), h.Sum64()&objectMask; got != want {
			t.Errorf("ObjectHash(%q) = %#x, want %#x", s, got, want)
		}
	}
}

func TestDescribeCookie(t *testing.T) {
	names := ObjectNames{}
	names.Add("fa:16:3f:00:00:02", "fa:16:3f:00:00:02 (compute2)")
	names.Add("br-int", "br-int")
	mac := ObjectHash("fa:16:3f:00:00:02")
	for _, tt := range []struct {
		name   string
		cookie uint64
		want   CookieInfo
		text   string // with names
		plain  string // String, without names
	}{
		{"dvr-mac, named", Cookie(CategoryDVRMAC, "fa:16:3f:00:00:02"),
			CookieInfo{Ours: true, Category: CategoryDVRMAC, ObjectHash: mac},
			"dvr-mac fa:16:3f:00:00:02 (compute2)", fmt.Sprintf("dvr-mac DVR MAC %#x", mac)},
		{"baseline, named", Cookie(CategoryBaseline, "br-int"),
			CookieInfo{Ours: true, Category: CategoryBaseline, ObjectHash: ObjectHash("br-int")},
			"baseline br-int", fmt.Sprintf("baseline bridge %#x", ObjectHash("br-int"))},
		{"object not named", Cookie(CategoryLocalVLAN, "net-1"),
			CookieInfo{Ours: true, Category: CategoryLocalVLAN, ObjectHash: ObjectHash("net-1")},
			fmt.Sprintf("local-vlan network %#x", ObjectHash("net-1")), fmt.Sprintf("local-vlan network %#x", ObjectHash("net-1"))},
		{"category of a later version", OwnerMark | 0xee<<40 | 5,
			CookieInfo{Ours: true, Category: 0xee, ObjectHash: 5},
			"category-238 object 0x5", "category-238 object 0x5"},
		{"foreign", 0x1234, CookieInfo{}, "foreign 0x1234", "foreign 0x1234"},
		{"zero", 0, CookieInfo{}, "foreign 0x0", "foreign 0x0"},
		{"another owner, our category bits", 0xd7f2<<48 | uint64(CategoryDVRMAC)<<40 | mac, CookieInfo{},
			fmt.Sprintf("foreign %#x", 0xd7f2<<48|uint64(CategoryDVRMAC)<<40|mac), fmt.Sprintf("foreign %#x", 0xd7f2<<48|uint64(CategoryDVRMAC)<<40|mac)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := DescribeCookie(tt.cookie)
			tt.want.Cookie = tt.cookie
			if got != tt.want {
				t.Errorf("DescribeCookie(%#x) = %+v, want %+v", tt.cookie, got, tt.want)
			}
			if s := got.Text(names); s != tt.text {
				t.Errorf("Text = %q, want %q", s, tt.text)
			}
			if s := got.String(); s != tt.plain {
				t.Errorf("String = %q, want %q", s, tt.plain)
			}
		})
	}
}

// Every category dvrflow writes has a name and says what its object is; names are unique
// (a CLI parses them back).
func TestCategoriesAreDescribed(t *testing.T) {
	seen := map[string]Category{}
	last := CategoryFirewallRemote // the last category this version knows
	for c := CategoryUnknown; c <= last; c++ {
		name := c.String()
		if name == fmt.Sprintf("category-%d", uint8(c)) || c.Object() == "" {
			t.Errorf("category %d has no name or object kind", uint8(c))
		}
		if other, dup := seen[name]; dup {
			t.Errorf("categories %d and %d are both called %q", uint8(other), uint8(c), name)
		}
		seen[name] = c
	}
	if got := Category(last + 1).String(); got != fmt.Sprintf("category-%d", uint8(last+1)) {
		t.Errorf("unknown category renders as %q", got)
	}
}

// Category values are written into switches: they never change. New ones are appended.
func TestCategoryValuesAreStable(t *testing.T) {
	for c, want := range map[Category]uint8{
		CategoryUnknown: 0, CategoryBaseline: 1, CategoryPort: 4, CategoryARPResponder: 12, CategoryTest: 13,
		CategoryFirewall: 14, CategoryFirewallRemote: 15,
	} {
		if uint8(c) != want {
			t.Errorf("category %s = %d, want %d", c, uint8(c), want)
		}
	}
	if CategoryFirewall.String() != "firewall" || CategoryFirewall.Object() != "port" {
		t.Errorf("firewall category: %q %q", CategoryFirewall, CategoryFirewall.Object())
	}
	if CategoryFirewallRemote.String() != "firewall-remote" || CategoryFirewallRemote.Object() != "network/remote group" {
		t.Errorf("firewall-remote category: %q %q", CategoryFirewallRemote, CategoryFirewallRemote.Object())
	}
}
