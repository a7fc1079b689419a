package netback

import (
	"testing"
)

// FuzzParseForward checks that any -p value either fails with
// ErrBadForward or parses to a forward that prints and parses back to
// itself.
func FuzzParseForward(f *testing.F) {
	for _, s := range []string{"8080:80", "udp:0.0.0.0:5353:53", "[::1]:1:2", "tcp:localhost:80:80", ":", "[:]:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		fw, err := ParseForward(s)
		if err != nil {
			return
		}
		back, err := ParseForward(fw.String())
		if err != nil || back != fw {
			t.Fatalf("ParseForward(%q) = %+v; its String %q parses to %+v, %v", s, fw, fw.String(), back, err)
		}
		if fw.HostPort == 0 || fw.GuestPort == 0 || (fw.Proto != "tcp" && fw.Proto != "udp") {
			t.Fatalf("ParseForward(%q) = %+v: invalid result accepted", s, fw)
		}
	})
}
