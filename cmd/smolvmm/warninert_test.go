package main

import (
	"strings"
	"testing"
)

// TestBuildLogWarningsInert: the image builder's warnings (mkimg's and
// up's) may name a set's entries, any bytes a set's maker chose: they
// are written as the CLI's other notices, control characters escaped, so
// that a name cannot act on the terminal or forge a line of smolvmm's.
func TestBuildLogWarningsInert(t *testing.T) {
	tests := []struct {
		command, msg, want string
	}{
		{"mkimg", "service web: options.mk is not read", "smolvmm mkimg: warning: service web: options.mk is not read\n"},
		{"mkimg", "entry ./a\x1b]0;pwned\x07\nsmolvmm mkimg: wrote x.img", `smolvmm mkimg: warning: entry ./a\x1b]0;pwned\a\nsmolvmm mkimg: wrote x.img` + "\n"},
		{"up", "entry \r./b", `smolvmm up: warning: entry \r./b` + "\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		w := newBuildLog(&b, tt.command).(buildLog)
		w.Warn(tt.msg)
		if b.String() != tt.want {
			t.Errorf("Warn(%q) wrote %q, want %q", tt.msg, b.String(), tt.want)
		}
	}
}
