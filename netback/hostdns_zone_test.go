package netback

import (
	"net"
	"slices"
	"testing"
)

// TestResolveZones: a zoned nameserver's zone becomes its interface's
// index (a number is one already); one naming no interface is left out;
// others pass unchanged.
func TestResolveZones(t *testing.T) {
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		t.Skipf("no interface lo: %v", err)
	}
	tests := []struct {
		server string
		kept   bool
		index  int // 0: not zoned
	}{
		{"192.0.2.1:53", true, 0},
		{"[2001:db8::1]:53", true, 0},
		{"[fe80::1%lo]:53", true, lo.Index},
		{"[fe80::1%7]:53", true, 7},
		{"[fe80::1%nosuchif0]:53", false, 0},
	}
	for _, tt := range tests {
		r := &hostConf{}
		kept := r.resolveZones([]string{tt.server})
		if got := slices.Contains(kept, tt.server); got != tt.kept {
			t.Errorf("%s: kept %v, want %v", tt.server, got, tt.kept)
		}
		sa, zoned := r.zoned[tt.server]
		switch {
		case zoned != (tt.index != 0):
			t.Errorf("%s: zoned %v, want %v", tt.server, zoned, tt.index != 0)
		case zoned && (int(sa.ZoneId) != tt.index || sa.Port != 53):
			t.Errorf("%s: zone index %d port %d, want %d and 53", tt.server, sa.ZoneId, sa.Port, tt.index)
		}
	}
}
