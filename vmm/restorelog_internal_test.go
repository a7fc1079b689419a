package vmm

import (
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
)

// TestRestoreLogInert: -v's restore line names each disk image by a path
// the user gave or the snapshot recorded, and wrote it raw: a path with an
// escape sequence and a newline acted on the terminal and forged a line
// of smolvmm's. It is one line, the paths' control characters written as
// Go escapes, as the device log writes them.
func TestRestoreLogInert(t *testing.T) {
	const evil = "/d/a\x1b]0;pwned\x07\nsmolvmm: fake.img"
	const escaped = `/d/a\x1b]0;pwned\a\nsmolvmm: fake.img`
	tests := []struct {
		name   string
		copied bool
		want   string
	}{
		{"as the snapshot saw it", false, ", ld0 " + escaped + " (read-only) as the snapshot saw it"},
		{"another file", true, ", ld0 " + escaped + " (read-only) with the content the snapshot saw"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var log strings.Builder
			m := &Machine{cfg: Config{Log: &log, Disks: []blk.Spec{{Path: evil, Options: blk.Options{ReadOnly: true}}}}, diskCopies: []bool{tt.copied}}
			m.logRestore("/s/x\n.snap", &machineState{MemoryMiB: 16})
			line, ok := strings.CutSuffix(log.String(), "\n")
			if !ok || strings.ContainsFunc(line, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Errorf("not one inert line: %q", log.String())
			}
			for _, w := range []string{`smolvmm: restored /s/x\n.snap: 16 MiB`, tt.want} {
				if !strings.Contains(line, w) {
					t.Errorf("line lacks %q: %q", w, line)
				}
			}
		})
	}
}
