package net

import (
	"testing"
)

// FuzzParseMAC checks that any --mac value either fails with ErrBadMAC or
// gives a unicast, non-zero 6-byte address that prints and parses back.
func FuzzParseMAC(f *testing.F) {
	for _, s := range []string{"52:54:00:12:34:56", "52-54-00-ab-cd-ef", "0000.5e00.5301", "01:00:5e:00:00:01", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMAC(s)
		if err != nil {
			return
		}
		if len(m) != 6 || m[0]&1 != 0 || m.String() == "00:00:00:00:00:00" {
			t.Fatalf("ParseMAC(%q) = %s: invalid address accepted", s, m)
		}
		if back, err := ParseMAC(m.String()); err != nil || back.String() != m.String() {
			t.Fatalf("ParseMAC(%q) = %s does not round-trip: %v", s, m, err)
		}
	})
}
