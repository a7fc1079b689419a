package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/kstrip/kstriptest"
)

// TestInputFileAdvice: errors about an input file say what to change: a
// file that is no snapshot given to --restore (empty or shorter than the
// magic too: no snapshot cut short), an empty -x set, a --module that is
// no regular file (as for -k).
func TestInputFileAdvice(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	notSnap := filepath.Join(dir, "d.img")
	if err := os.WriteFile(notSnap, make([]byte, 4096), 0o644); err != nil {
		t.Fatal(err)
	}
	notes := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(notes, []byte("doc\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kern := testKernel(t, kstriptest.Options{Bits: 32})
	tests := []struct {
		name string
		args []string
		want string // all of stderr
	}{
		{"restore empty", []string{"run", "--restore", empty, "--net", "none"},
			"smolvmm run: restore: snapshot " + empty + ": not a smolvmm snapshot: the file is empty (give --restore a file written by --snapshot)"},
		// Shorter than the magic: no snapshot, not one cut short.
		{"restore a short text", []string{"run", "--restore", notes, "--net", "none"},
			"smolvmm run: restore: snapshot " + notes + `: not a smolvmm snapshot: bad magic "doc\n" (give --restore a file written by --snapshot)`},
		{"restore not a snapshot", []string{"run", "--restore", notSnap, "--net", "none"},
			"smolvmm run: restore: snapshot " + notSnap + `: not a smolvmm snapshot: bad magic "\x00\x00\x00\x00\x00\x00\x00\x00" (give --restore a file written by --snapshot)`},
		{"empty set", []string{"mkimg", "-x", empty, "-i", filepath.Join(dir, "x.img")},
			"smolvmm mkimg: -x " + empty + ": empty file, not a set: give a set archive (.tgz, .tar.xz, .tar) or a directory"},
		{"module directory", []string{"run", "-k", kern, "--net", "none", "--module", dir},
			"smolvmm run: --module " + dir + " is a directory: not a regular file (check the path given with --module)"},
		{"kernel directory", []string{"run", "-k", dir, "--net", "none"},
			"smolvmm run: read kernel: " + dir + " is a directory: not a regular file (check the path given with -k)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, status := runCLI(t, tt.args...)
			if msg := strings.TrimSpace(stderr); status != 1 || msg != tt.want {
				t.Errorf("status %d, stderr\n%s\nwant 1 and\n%s", status, msg, tt.want)
			}
		})
	}
}
