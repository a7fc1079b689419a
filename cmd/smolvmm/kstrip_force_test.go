package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestKstripOutputNotAKernel: kstrip -o OUT replaced any existing
// regular file, whatever it held: a mistyped -o notes.txt, or -o
// rescue.img, an idle guest's disk, was lost to the stripped kernel,
// status 0. An existing OUT that is not empty and is no kernel (an ELF
// file, plain or gzipped) is now refused, status 1 and the file left as
// it is, unless -f is given; a kernel there is replaced as before.
func TestKstripOutputNotAKernel(t *testing.T) {
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	elfKernel := mustRead(t, kern)
	disk := make([]byte, 64<<10)
	copy(disk[1080:], []byte{0x53, 0xEF}) // an ext2 superblock's magic
	const refused = "holds something other than a kernel (an ELF file, plain or gzipped): kstrip would replace it with the kernel it writes; give -o another file, or pass -f to overwrite it"
	tests := []struct {
		name  string
		old   []byte // what OUT holds; nil: there is no OUT
		force bool
		code  int
		want  string // in stderr when code is not 0
	}{
		{"new file", nil, false, 0, ""},
		{"empty file", []byte{}, false, 0, ""},
		{"an ELF kernel", elfKernel, false, 0, ""},
		{"a gzipped kernel", gzipBytes(elfKernel), false, 0, ""},
		{"notes", []byte("notes\n"), false, 1, refused},
		{"a guest's disk", disk, false, 1, refused},
		{"gzipped notes", gzipBytes([]byte("notes\n")), false, 1, refused},
		{"a truncated gzip header", []byte{0x1f, 0x8b}, false, 1, refused},
		{"notes, -f", []byte("notes\n"), true, 0, ""},
		{"a guest's disk, -f", disk, true, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			if tt.old != nil {
				if err := os.WriteFile(out, tt.old, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"-o", out}
			if tt.force {
				args = append(args, "-f")
			}
			_, stderr, code := runKstripCLI(append(args, kern)...)
			got, _ := os.ReadFile(out)
			if tt.code != 0 {
				if code != tt.code || !strings.Contains(stderr, "-o "+out+" "+tt.want) {
					t.Errorf("exit %d, want %d and %q:\n%s", code, tt.code, tt.want, stderr)
				}
				if !bytes.Equal(got, tt.old) {
					t.Errorf("OUT was replaced: it holds %.20q", got)
				}
				return
			}
			if code != 0 || !bytes.HasPrefix(got, []byte("\x7fELF")) || bytes.Equal(got, elfKernel) {
				t.Errorf("exit %d, OUT holds %.20q; want 0 and the stripped kernel:\n%s", code, got, stderr)
			}
		})
	}
}

// TestKstripForceNeedsOutput: -f lets -o overwrite a file that is no
// kernel; without -o FILE it would be silently ignored, a command-line
// mistake (status 2) said before the kernel is read.
func TestKstripForceNeedsOutput(t *testing.T) {
	for _, args := range [][]string{{"-f", "k"}, {"-f", "-o", "-", "k"}} {
		_, stderr, code := runKstripCLI(args...)
		const want = "kstrip: -f lets -o OUT overwrite a file that is no kernel: drop -f, or give -o OUT"
		if code != 2 || !strings.Contains(stderr, want) {
			t.Errorf("kstrip %s: exit %d, want 2 and %q:\n%s", strings.Join(args, " "), code, want, stderr)
		}
	}
}
