package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLISnapshotNotASnapshotRefused: an existing --snapshot file that is
// not empty and does not start with the snapshot magic (a typo naming a
// document, this program itself, through a symlink too) is refused with
// status 2 before the VM starts, left as it was (content and mode); an
// empty file and an existing snapshot, even a damaged one, are replaced.
// Before, any file was silently replaced (a README became a snapshot,
// mode 0644 turned 0600), the running smolvmm binary too.
func TestCLISnapshotNotASnapshotRefused(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	counter := guests.ForTest(t, "counter")
	dir := t.TempDir()
	// A copy of the program, run as itself: --snapshot names the
	// running binary.
	bin := filepath.Join(dir, "smolvmm-copy")
	b, err := os.ReadFile(smolvmmBin(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(snapshot.Magic), bytes.Repeat([]byte{0xff}, 100)...)
	tests := []struct {
		name    string
		content []byte // the file at --snapshot; nil: none
		mode    os.FileMode
		arg     string // --snapshot's argument, if not the file's path
		run     string // the program run, if not the test's smolvmm
		want    string // in stderr, refused with status 2; "": replaced
	}{
		{name: "a document", content: []byte("# notes worth keeping\n"), mode: 0o644, want: "is not a snapshot"},
		{name: "a document through a symlink", content: []byte("# notes worth keeping\n"), mode: 0o644, arg: "link", want: "is not a snapshot"},
		{name: "a part of the magic", content: []byte(snapshot.Magic[:4]), mode: 0o600, want: "is not a snapshot"},
		{name: "this program", content: b, mode: 0o755, arg: bin, run: bin, want: "is this smolvmm program"},
		{name: "an empty file", content: []byte{}, mode: 0o644},
		{name: "a damaged snapshot", content: damaged, mode: 0o600},
		{name: "no file", mode: 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "s.snap")
			if tt.content != nil && tt.arg != bin {
				if err := os.WriteFile(file, tt.content, tt.mode); err != nil {
					t.Fatal(err)
				}
			}
			arg := file
			switch tt.arg {
			case "":
			case "link":
				arg = filepath.Join(filepath.Dir(file), "link.snap")
				if err := os.Symlink(file, arg); err != nil {
					t.Fatal(err)
				}
			default:
				arg, file = tt.arg, tt.arg
			}
			args := []string{"run", "-k", counter, "-m", "16", "-a", "n=120 at=100", "--net", "none", "--snapshot", arg, "--snapshot-exit"}
			var stderr string
			var status int
			if tt.run == "" {
				_, stderr, status = runCLI(t, args...)
			} else {
				_, stderr, status = runProgram(t, tt.run, args...)
			}
			if tt.want == "" {
				if status != 0 {
					t.Fatalf("status %d, stderr %q; want the file replaced by a snapshot", status, stderr)
				}
				f, err := snapshot.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				f.Close()
				return
			}
			if status != 2 || !strings.Contains(stderr, "--snapshot "+arg+" "+tt.want) || strings.Contains(stderr, "ready") {
				t.Fatalf("status %d, stderr %q; want 2, refused: --snapshot %s %s", status, stderr, arg, tt.want)
			}
			got, err := os.ReadFile(file)
			if err != nil || !bytes.Equal(got, tt.content) {
				t.Fatalf("%s after the refusal: %d bytes, %v; want it as it was", file, len(got), err)
			}
			if st, err := os.Stat(file); err != nil || st.Mode().Perm() != tt.mode {
				t.Fatalf("%s after the refusal: %v, %v; want mode %v", file, st.Mode(), err, tt.mode)
			}
		})
	}
}

// runProgram runs prog with args: its stdout, stderr and exit status.
func runProgram(t *testing.T, prog string, args ...string) (string, string, int) {
	t.Helper()
	return runProgramIn(t, "", prog, args...)
}
