package main

import (
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// checkInertLine fails t unless out is one line, ended by its newline,
// with no raw control byte (C0, DEL) in it, that starts with prefix and
// holds each of want: the escapes a hostile name is written as.
func checkInertLine(t *testing.T, out, prefix string, want ...string) {
	t.Helper()
	line, ok := strings.CutSuffix(out, "\n")
	if !ok || strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		t.Errorf("not one inert line: %q", out)
	}
	if !strings.HasPrefix(line, prefix) {
		t.Errorf("line does not start with %q: %q", prefix, out)
	}
	for _, w := range want {
		if !strings.Contains(line, w) {
			t.Errorf("line lacks %q: %q", w, out)
		}
	}
}

// TestRestoreNetWarningsInert: the network a snapshot records is anyone's
// bytes (a snapshot is a file any user may hand over), and its warnings
// wrote its name raw: an OSC sequence set the terminal's title, a newline
// forged a line of smolvmm's. Each is now one line, the name's control
// characters written as Go escapes.
func TestRestoreNetWarningsInert(t *testing.T) {
	dir := t.TempDir()
	osc := writeNetSnapshot(t, dir, "osc", true, snapshot.Network{Kind: snapshot.NetShared, Name: "\x1b]0;pwned\x07", Addr: addr16})
	tap := writeNetSnapshot(t, dir, "tap", true, snapshot.Network{Kind: snapshot.NetTap, Name: "x\nsmolvmm: ok"})
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"another network given", []string{"--restore", osc, "--net", "user"}, []string{`--net user:\x1b]0;pwned\a`}},
		{"tap created", []string{"--restore", tap}, []string{`--net tap:x\nsmolvmm: ok`, `no tap x\nsmolvmm: ok here`}},
		{"tap, another network given", []string{"--restore", tap, "--net", "user"}, []string{`--net tap:x\nsmolvmm: ok`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err, stderr := runRestoreNet(t, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			checkInertLine(t, stderr, "smolvmm smolvmm: warning: --restore ", tt.want...)
		})
	}
}

// TestNoticeLine: a warning's or note's message is escaped whole, its
// prefix as errorLine's, with or without a command or kind.
func TestNoticeLine(t *testing.T) {
	tests := []struct{ command, kind, msg, want string }{
		{"run", "warning", "-d a.img: short", "smolvmm run: warning: -d a.img: short"},
		{"bench", "note", "a\x1b[2J\nb", `smolvmm bench: note: a\x1b[2J\nb`},
		{"", "", "shared network lab lost", "smolvmm: shared network lab lost"},
		{"", "", "x\r\nsmolvmm: ok", `smolvmm: x\r\nsmolvmm: ok`},
	}
	for _, tt := range tests {
		if got := noticeLine(tt.command, tt.kind, tt.msg); got != tt.want {
			t.Errorf("noticeLine(%q, %q, %q) = %q; want %q", tt.command, tt.kind, tt.msg, got, tt.want)
		}
	}
}
