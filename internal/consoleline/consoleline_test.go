package consoleline

import (
	"strings"
	"testing"
)

// TestLine feeds console output and checks the lines it ends and the one
// left being written, under either line end NetBSD uses.
func TestLine(t *testing.T) {
	long := strings.Repeat("x", Max)
	tests := []struct {
		name  string
		in    string
		ended []string
		last  string
	}{
		{"\\n\\r line ends", "boot\n\rroot on ld0a\n\rlogin: ", []string{"boot", "root on ld0a"}, "login: "},
		{"\\r\\n line ends", "boot\r\nroot on ld0a\r\nlogin: ", []string{"boot", "root on ld0a"}, "login: "},
		{"\\n alone", "a\nb", []string{"a"}, "b"},
		{"\\r inside a line", "ab\rc", nil, "abc"},
		{"empty lines", "\n\r\n\r", []string{"", ""}, ""},
		{"past Max", long + "yz\nnext", []string{long}, "next"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l Line
			var ended []string
			for _, c := range []byte(tt.in) {
				switch l.Add(c) {
				case Ended:
					ended = append(ended, string(l.Bytes()))
				case Skipped:
					if c != '\r' && len(l.Bytes()) < Max {
						t.Fatalf("byte %q skipped on the line %q", c, l.Bytes())
					}
				case Grew:
					if got := l.Bytes(); got[len(got)-1] != c {
						t.Fatalf("byte %q added, but the line is %q", c, got)
					}
				}
			}
			if strings.Join(ended, "|") != strings.Join(tt.ended, "|") || len(ended) != len(tt.ended) {
				t.Errorf("ended lines %q, want %q", ended, tt.ended)
			}
			if got := string(l.Bytes()); got != tt.last {
				t.Errorf("line being written %q, want %q", got, tt.last)
			}
		})
	}
}
