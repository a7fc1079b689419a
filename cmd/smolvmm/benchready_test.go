package main

import (
	"regexp"
	"testing"
)

// TestConsoleLineMatches: restoreReadyNote finds the ready line as the
// bench and the machine do: a pattern with $ waits for the line's end, so
// it does not match on a prefix of a longer line.
func TestConsoleLineMatches(t *testing.T) {
	tests := []struct {
		pattern, out string
		want         bool
	}{
		{`port 80$`, "listening on port 8080\r\n", false},
		{`port 80$`, "listening on port 80\r\n", true},
		{`login: `, "boot\r\nlogin: ", true},
		{`login: $`, "boot\r\nlogin: ", false},
		{`^root on`, "boot\n\rroot on ld0a\n\r", true},
		{`login: `, "log\r\nin: ", false},
	}
	for _, tt := range tests {
		if got := consoleLineMatches([]byte(tt.out), regexp.MustCompile(tt.pattern)); got != tt.want {
			t.Errorf("consoleLineMatches(%q, %q) = %v, want %v", tt.out, tt.pattern, got, tt.want)
		}
	}
}
