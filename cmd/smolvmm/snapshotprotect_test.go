package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/snapshot"
)

// TestSnapshotWriteProtected: run --snapshot and up --snapshot replaced
// an existing snapshot its owner made read-only (chmod a-w, mode 0444),
// leaving a new one of mode 0600, where every other output of smolvmm is
// kept (checkWriteProtected). They now refuse it before the VM boots
// (up: before the download), status 1, and the file is left as it was;
// Ctrl-A s writes to the same target, refused with it.
func TestSnapshotWriteProtected(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm: the refusal is to come before a boot that would replace the file")
	}
	kernel := guests.ForTest(t, "counter")
	dir := t.TempDir()
	// A file checkIsSnapshot takes for a snapshot: the write protection
	// is the only reason to keep it.
	content := []byte(snapshot.Magic + " kept")
	ro := filepath.Join(dir, "ro.snap")
	if err := os.WriteFile(ro, content, 0o444); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link.snap")
	if err := os.Symlink("ro.snap", link); err != nil {
		t.Fatal(err)
	}
	run := func(snap string) []string {
		return []string{"run", "-k", kernel, "-m", "16", "-a", "n=5 at=2", "--net", "none", "--snapshot", snap, "--snapshot-exit"}
	}
	up := func(snap string) []string {
		return []string{"up", "--cache", t.TempDir(), "--mirror", "http://127.0.0.1:1/pub", "-i", filepath.Join(dir, "up.img"), "--snapshot", snap, "rescue"}
	}
	refusal := func(cmd, snap string) string {
		return "smolvmm " + cmd + ": --snapshot " + snap + " is write-protected (mode 0444): " + cmd + " does not replace it; give --snapshot another file, or make it writable first (chmod u+w " + snap + ")\n"
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"run", run(ro), refusal("run", ro)},
		{"run through a symlink", run(link), refusal("run", link)},
		{"up", up(ro), refusal("up", ro)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, err := os.Lstat(ro)
			if err != nil {
				t.Fatal(err)
			}
			out, stderr, status := runCLI(t, tt.args...)
			if status != 1 || out != "" || stderr != tt.want {
				t.Errorf("status %d, stdout %q, stderr %q; want 1, nothing and %q", status, out, stderr, tt.want)
			}
			sameNode(t, ro, before) // output_test.go
			if b, err := os.ReadFile(ro); err != nil || string(b) != string(content) {
				t.Errorf("%s holds %d bytes (%v); want its %q kept", ro, len(b), err, content)
			}
		})
	}
}
