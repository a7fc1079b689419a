package main

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestCLISnapshotKeyFileMoved: under the seccomp filter (the broker
// renames), a Ctrl-A s after the --snapshot file was moved away is
// refused, saying so and what to do, and so is one after another file
// was put in its place; neither the moved file nor the one put there is
// written or replaced. Put back, the file gets the next snapshot; so
// with the spare moved away and back, refused meanwhile with advice to
// put the spare back (not the file, which is in place). Before,
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
	// The spare moved away (through the broker's answer): advice to
	// put it back, not FILE, which is in place; back, snapshots go on.
	spares, err := filepath.Glob(filepath.Join(dir, ".m.snap.*.tmp"))
	if err != nil || len(spares) != 1 {
		t.Fatalf("spares %q, %v; want one", spares, err)
	}
	if err := os.Rename(spares[0], kept); err != nil {
		t.Fatal(err)
	}
	if l := press(); !strings.Contains(l, "That is the temporary file beside "+snap) || !strings.Contains(l, "put that temporary back at its name") || strings.Contains(l, "put the snapshot last written back") {
		t.Fatalf("after the spare was moved away: %q; want advice to put it back", l)
	}
	if err := os.Rename(kept, spares[0]); err != nil {
		t.Fatal(err)
	}
	written("once the spare is back")
	// The spare removed (as a cleaner of old files in /tmp may): no
	// more snapshots, said so, rather than advice to put the file
	// back, which it is.
	spares, err = filepath.Glob(filepath.Join(dir, ".m.snap.*.tmp"))
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

// answerRenamer is a Renamer whose errors come back as the broker's
// answers do (answerCode, then brokerError).
type answerRenamer struct{ r snapshot.Renamer }

func (a answerRenamer) answer(err error) error {
	if err == nil {
		return nil
	}
	return &brokerError{msg: err.Error(), code: answerCode(err)}
}
func (a answerRenamer) Check() error   { return a.answer(a.r.Check()) }
func (a answerRenamer) Commit() error  { return a.answer(a.r.Commit()) }
func (a answerRenamer) Discard() error { return a.answer(a.r.Discard()) }

// TestSnapshotWriteAdviceTemp: a snapshot refused because the temporary
// beside the --snapshot file (the spare, after the first) was moved
// away, linked elsewhere and unlinked, or linked elsewhere, says so and
// to put that temporary back at its name (or that the run can take no
// more); removed, that the run can take no more; neither advises
// putting the snapshot back at FILE, where it is. The same through the
// broker's answers. Before, all but the removal got the advice to "put
// the snapshot last written back at FILE".
func TestSnapshotWriteAdviceTemp(t *testing.T) {
	for _, tt := range []struct {
		act  string
		want []string
	}{
		{"rm", []string{snapshot.ErrTempRemoved.Error(), "it can take no more snapshots"}},
		{"mv", []string{"moved or removed", "That is the temporary file beside ", "put that temporary back at its name", "else this run can take no more snapshots"}},
		{"ln+rm", []string{"moved or removed", "That is the temporary file beside ", "put that temporary back at its name"}},
		{"ln", []string{"it has 2 names", "That is the temporary file beside ", "with no other link to it"}},
	} {
		for _, commits := range []int{0, 2} {
			for _, broker := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d commits/broker %v", tt.act, commits, broker), func(t *testing.T) {
					dir := t.TempDir()
					path := filepath.Join(dir, "f.snap")
					tg, err := snapshot.OpenTarget(path)
					if err != nil {
						t.Fatal(err)
					}
					defer tg.Close()
					d, files, ok := tg.Names()
					if !ok {
						t.Fatal("Names: not held")
					}
					if broker {
						fd, err := unix.Dup(int(d.Fd()))
						if err != nil {
							t.Fatal(err)
						}
						r := snapshot.NewDirRenamer(os.NewFile(uintptr(fd), d.Name()), files)
						defer r.Close()
						tg.UseRenamer(answerRenamer{r})
					}
					for range commits {
						if err := tg.Write(func(w io.Writer) error { _, err := io.WriteString(w, "s"); return err }); err != nil {
							t.Fatal(err)
						}
					}
					temp := filepath.Join(dir, files.Temps[0])
					if commits > 0 {
						temp = filepath.Join(dir, files.Temps[1])
					}
					kept := filepath.Join(dir, "keep")
					var errs []error
					switch tt.act {
					case "rm":
						errs = append(errs, os.Remove(temp))
					case "mv":
						errs = append(errs, os.Rename(temp, kept))
					case "ln+rm":
						errs = append(errs, os.Link(temp, kept), os.Remove(temp))
					case "ln":
						errs = append(errs, os.Link(temp, kept))
					}
					if err := errors.Join(errs...); err != nil {
						t.Fatal(err)
					}
					err = tg.Write(func(w io.Writer) error { return nil })
					msg := snapshotWriteAdvice(tg, err).Error()
					for _, want := range append(tt.want, "--snapshot "+path+": ", filepath.Base(temp)) {
						if !strings.Contains(msg, want) {
							t.Errorf("%q; want it to say %q", msg, want)
						}
					}
					if strings.Contains(msg, "put the snapshot last written back") {
						t.Errorf("%q; advises putting back a file that is there", msg)
					}
				})
			}
		}
	}
}
