package main

import (
	"crypto/sha256"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLISnapshotKeyFileMoved: under the seccomp filter (the broker
// renames), a Ctrl-A s after the --snapshot file was moved away is
// refused, saying so and what to do, and so is one after another file
// was put in its place; neither the moved file nor the one put there is
// written or replaced. Put back, the file gets the next snapshot. Before,
// the first refusal was a bare "exchange ...: no such file or directory",
// and with a file put in its place the next Ctrl-A s swapped it in ("16.0
// MiB written") and the one after wrote into the moved file.
func TestCLISnapshotKeyFileMoved(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	dir := t.TempDir()
	snap := filepath.Join(dir, "m.snap")
	kept := filepath.Join(dir, "keep.snap")
	vm := startKeyedVM(t, snap)
	press := vm.press
	sum := func(p string) [32]byte {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(b)
	}
	written := func(what string) {
		t.Helper()
		if l := press(); !strings.HasPrefix(l, "smolvmm: snapshot "+snap+": 16.0 MiB written") {
			t.Fatalf("%s: %q; want the snapshot written\nstderr:\n%s", what, l, vm.log.String())
		}
		f, err := snapshot.Open(snap)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	refused := func(what, why string) {
		t.Helper()
		l := press()
		for _, want := range []string{"smolvmm: C-a s: --snapshot " + snap + ": ", why, "put the snapshot last written back at " + snap, "copy it rather than move"} {
			if !strings.Contains(l, want) {
				t.Fatalf("%s: %q; want it refused, saying %q", what, l, want)
			}
		}
	}
	written("first")
	written("second, an exchange")
	keptSum := sum(snap)
	if err := os.Rename(snap, kept); err != nil {
		t.Fatal(err)
	}
	refused("after the file was moved away", "moved or removed")
	if err := os.WriteFile(snap, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		refused("with another file put in its place", "another file is there")
		if sum(kept) != keptSum {
			t.Fatalf("after %d snapshots refused, the file moved away was written", i+1)
		}
		if b, err := os.ReadFile(snap); err != nil || len(b) != 0 {
			t.Fatalf("the file put in place of the snapshot: %d bytes, %v; want it left empty", len(b), err)
		}
	}
	if err := os.Remove(snap); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(kept, snap); err != nil {
		t.Fatal(err)
	}
	written("once the file is back")
	// The spare removed (as a cleaner of old files in /tmp may): no
	// more snapshots, said so, rather than advice to put the file
	// back, which it is.
	spares, err := filepath.Glob(filepath.Join(dir, ".m.snap.*.tmp"))
	if err != nil || len(spares) != 1 {
		t.Fatalf("spares %q, %v; want one", spares, err)
	}
	if err := os.Remove(spares[0]); err != nil {
		t.Fatal(err)
	}
	backSum := sum(snap)
	for range 2 {
		l := press()
		for _, want := range []string{"smolvmm: C-a s: --snapshot " + snap + ": ", snapshot.ErrTempRemoved.Error(), "this run creates no other: it can take no more snapshots", "--restore " + snap + " resumes from that one"} {
			if !strings.Contains(l, want) {
				t.Fatalf("after the spare was removed: %q; want it refused, saying %q", l, want)
			}
		}
		if strings.Contains(l, "put the snapshot last written back") {
			t.Fatalf("after the spare was removed: %q; advises putting back a file that is there", l)
		}
		if sum(snap) != backSum {
			t.Fatal("after the spare was removed, the file changed")
		}
	}
	vm.quit()
	if names := dirNames(t, dir); !slices.Equal(names, []string{"m.snap"}) {
		t.Fatalf("left in the directory: %q; want only m.snap", names)
	}
}
