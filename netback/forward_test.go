package netback

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

func TestParseForward(t *testing.T) {
	lo := DefaultForwardAddr
	tests := []struct {
		in   string
		want Forward
		err  string // substring of the error; empty for success
	}{
		{in: "8080:80", want: Forward{"tcp", lo, 8080, 80}},
		{in: "tcp:8080:80", want: Forward{"tcp", lo, 8080, 80}},
		{in: "UDP:5353:53", want: Forward{"udp", lo, 5353, 53}},
		{in: "0.0.0.0:2222:22", want: Forward{"tcp", netip.MustParseAddr("0.0.0.0"), 2222, 22}},
		{in: "udp:192.168.1.2:69:69", want: Forward{"udp", netip.MustParseAddr("192.168.1.2"), 69, 69}},
		{in: "[::1]:8080:80", want: Forward{"tcp", netip.MustParseAddr("::1"), 8080, 80}},
		{in: "localhost:8080:80", want: Forward{"tcp", lo, 8080, 80}},
		{in: "65535:65535", want: Forward{"tcp", lo, 65535, 65535}},
		{in: "", err: "missing \":guestport\""},
		{in: "8080", err: "missing \":guestport\""},
		{in: "tcp:8080", err: "missing \":guestport\""},
		{in: "8080:", err: "empty guest port"},
		{in: ":80", err: "empty host port"},
		{in: "0:80", err: "host port \"0\" is not a number from 1 to 65535"},
		{in: "8080:65536", err: "guest port \"65536\" is not a number"},
		{in: "http:8080:80", err: "\"http\" is neither a protocol (tcp or udp) nor an IP address"},
		{in: "sctp:8080:80", err: "malformed port forward \"sctp:8080:80\": \"sctp\" is neither a protocol (tcp or udp) nor an IP address"},
		{in: "sctp:1:8080:80", err: "protocol \"sctp\" is not tcp or udp"},
		{in: "1.2.3:8080:80", err: "host address \"1.2.3\" is not an IP address"},
		{in: "::1:8080:80", err: "in brackets"},
		{in: "[::1:8080:80", err: `unbalanced brackets around the host address "[::1"`},
		{in: "[a\nb\x1b[2J:1:2", err: `unbalanced brackets around the host address "[a\nb\x1b[2J"`},
		{in: "[fe80::1%eth0]:8080:80", err: "zoned"},
		{in: "x:y", err: "host port \"x\""},
	}
	for _, tc := range tests {
		got, err := ParseForward(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadForward) {
				t.Errorf("ParseForward(%q) = %v, %v; want an ErrBadForward containing %q", tc.in, got, err, tc.err)
			}
			if err != nil && !strings.Contains(err.Error(), "the syntax is") {
				t.Errorf("ParseForward(%q) error %q does not show the syntax", tc.in, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseForward(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
		// String must parse back to the same forward.
		if back, err := ParseForward(got.String()); err != nil || back != got {
			t.Errorf("ParseForward(%q) = %+v, %v; want round trip of %+v", got.String(), back, err, got)
		}
	}
}

func ExampleParseForward() {
	f, err := ParseForward("8080:80")
	fmt.Println(f, err)
	f, err = ParseForward("udp:0.0.0.0:5353:53")
	fmt.Println(f, err)
	_, err = ParseForward("8080")
	fmt.Println(err)
	// Output:
	// tcp:127.0.0.1:8080:80 <nil>
	// udp:0.0.0.0:5353:53 <nil>
	// malformed port forward "8080": missing ":guestport"; the syntax is [tcp|udp:][hostaddr:]hostport:guestport, e.g. 8080:80, udp:5353:53 or 0.0.0.0:2222:22
}
