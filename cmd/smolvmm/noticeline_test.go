package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
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
			checkInertLine(t, stderr, "smolvmm run: warning: --restore ", tt.want...)
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

// TestDiskWarningsInert: -d's warnings wrote the image's path raw (the
// truncate advice's single quotes stop a shell, not a terminal): a file
// named with an OSC sequence and a newline set the terminal's title and
// forged a line of smolvmm's. Each warning is now one line, the path's
// control characters written as Go escapes.
func TestDiskWarningsInert(t *testing.T) {
	const name = "a\x1b]0;pwned\x07\nsmolvmm run: fake.img"
	const escaped = `a\x1b]0;pwned\a\nsmolvmm run: fake.img`
	tests := []struct {
		name    string
		content []byte
		ro      bool
		want    string
	}{
		{"partial sector", make([]byte, 1000), false, "the image is 1000 bytes"},
		{"tar", setTar(t), false, "it starts with a tar header"},
		{"ELF", elfFile(), true, "it starts with an ELF header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), name)
			if err := os.WriteFile(img, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			var w bytes.Buffer
			warnDiskTail(&w, "run", blk.Spec{Path: img, Options: blk.Options{ReadOnly: tt.ro}})
			checkInertLine(t, w.String(), "smolvmm run: warning: -d ", escaped, tt.want)
		})
	}
}

// TestNetworkNoticesInert: a shared network's notices and -v log lines
// may carry its hub's words (a refusal's message), and a hub may be
// another user's: they were written raw, so a newline in them forged a
// line of smolvmm's and an escape sequence acted on the terminal. Each is
// one line, its control characters written as Go escapes.
func TestNetworkNoticesInert(t *testing.T) {
	hub := errors.New("refused: \x1b]0;pwned\x07\nsmolvmm: all is well")
	const escaped = `refused: \x1b]0;pwned\a\nsmolvmm: all is well`
	tests := []struct {
		name string
		say  func(t *testing.T) string // what the line is written as
	}{
		{"notice", func(t *testing.T) string {
			var out bytes.Buffer
			saved := stderrOut
			stderrOut = &out
			t.Cleanup(func() { stderrOut = saved })
			stderrNotef()("shared network %s: cannot rejoin: %v", "lab", hub)
			return out.String()
		}},
		{"-v log", func(t *testing.T) string {
			var log bytes.Buffer
			app := &cli.App{Name: "smolvmm", Flags: append(append(runFlags(), netFlags()...), snapshotFlags()...), Action: func(c *cli.Context) error {
				nc, ok, err := nicSetup(c, &vmm.Config{Log: &log})
				if !ok || err != nil || nc.Logf == nil {
					t.Fatalf("nicSetup: %v %v, Logf %v", ok, err, nc.Logf != nil)
				}
				nc.Logf("shared network %s: cannot rejoin: %v", "lab", hub)
				return nil
			}}
			if err := app.Run([]string{"smolvmm", "--net", "user", "-v"}); err != nil {
				t.Fatal(err)
			}
			return log.String()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkInertLine(t, tt.say(t), "smolvmm: shared network lab: cannot rejoin: ", escaped)
		})
	}
}
