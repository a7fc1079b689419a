package bootplan

import (
	"errors"
	"testing"
)

func TestParseProtocol(t *testing.T) {
	for _, p := range []Protocol{Auto, Multiboot, NetBSD} {
		got, err := ParseProtocol(p.String())
		if got != p || err != nil {
			t.Errorf("ParseProtocol(%q) = %v, %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "NetBSD", "pvh", "linux"} {
		if _, err := ParseProtocol(bad); !errors.Is(err, ErrProtocol) {
			t.Errorf("ParseProtocol(%q): %v, want ErrProtocol", bad, err)
		}
	}
	if s := (Region{Addr: 0x100000, Len: 0x1000, What: "segment 0"}).String(); s != "[0x00100000, 0x00101000) segment 0" {
		t.Errorf("Region.String() = %q", s)
	}
}
