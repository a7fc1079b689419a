package netback

import (
	"strings"
	"testing"
	"time"
)

// TestJoinedLogInert: a refusal's message is the hub's own words, and a
// hub on a group's network is another user's: the VM's log and notices
// wrote it raw, so an escape sequence in it acted on the terminal and a
// newline forged a line ("smolvmm: all is well"). Each line is now one,
// its control characters written as Go escapes.
func TestJoinedLogInert(t *testing.T) {
	const refusal = `{"error":"\u001b]0;pwned\u0007\nsmolvmm: all is well"}`
	const escaped = `\x1b]0;pwned\a\nsmolvmm: all is well`
	tests := []struct {
		name   string
		status Refusal
		notef  bool // the line to check is Notef's, else Logf's
	}{
		{"permanent refusal, Logf", RefusedForward, false},
		{"lasting refusal, Notef", RefusedDuplicateMAC, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			record, lines := lineRecorder()
			o := JoinOptions{Name: "lab", Logf: record}
			if tt.notef {
				o = JoinOptions{Name: "lab", Notef: record, Lasting: func(error) bool { return true }}
			}
			_, ln, first, j := joinFakeHub(t, o)
			defer j.Close()
			defer ln.Close()
			first.Close()
			fakeHub(t, ln, hubVersion, byte(tt.status), refusal)
			var refused string
			for deadline := time.Now().Add(10 * time.Second); refused == ""; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("no line of the refusal after 10 s: %q", lines())
				}
				for _, l := range lines() {
					if strings.Contains(l, "cannot rejoin") {
						refused = l
					}
				}
			}
			if !strings.Contains(refused, escaped) {
				t.Errorf("the refusal's line lacks %q: %q", escaped, refused)
			}
			for _, l := range lines() {
				if strings.ContainsFunc(l, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
					t.Errorf("raw control character in %q", l)
				}
			}
		})
	}
}
