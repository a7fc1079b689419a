package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestTargetFileMoved: once the file a Target wrote is moved, removed,
// replaced by another or linked elsewhere while it is open, its next
// snapshots are refused (ErrMoved) before anything is written, and the
// file moved away, the one put in its place and their content are left
// as they are (before, the next exchange failed with ENOENT, and with a
// file put in place one snapshot swapped it in and the next was written
// into the moved file's inode); with the file back at its name,
// snapshots go on. Before the first commit, the file that was there
// moved away is no loss (the snapshot is written in its place), a file
// put there is refused. The same with the renames in another
// DirRenamer (as a broker process does them).
func TestTargetFileMoved(t *testing.T) {
	mv := func(from, to string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Rename(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	put := func(name, s string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			if err := os.WriteFile(filepath.Join(dir, name), []byte(s), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	rm := func(name string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Remove(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	ln := func(from, to string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			t.Helper()
			if err := os.Link(filepath.Join(dir, from), filepath.Join(dir, to)); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		old     bool // f.snap holds "old" before OpenTarget
		commits int  // snapshots written ("s0", "s1", ...) before the user acts
		acts    []func(t *testing.T, dir string)
		during  bool // the acts come while the next snapshot is written
		ok      int  // snapshots that still succeed after the acts
		fine    bool // and none is refused
		undo    []func(t *testing.T, dir string)
		want    map[string]string // the files at the end, by name, with their content
	}{
		{name: "moved away", commits: 1, acts: seq(mv("f.snap", "keep.snap")),
			want: map[string]string{"keep.snap": "s0"}},
		{name: "moved away and back", commits: 2, acts: seq(mv("f.snap", "keep.snap")), undo: seq(mv("keep.snap", "f.snap")),
			want: map[string]string{"f.snap": "after"}},
		{name: "moved away, another file put there", commits: 2, acts: seq(mv("f.snap", "keep.snap"), put("f.snap", "")),
			want: map[string]string{"keep.snap": "s1", "f.snap": ""}},
		{name: "removed", commits: 1, acts: seq(rm("f.snap")), want: map[string]string{}},
		{name: "replaced by the user", commits: 1, acts: seq(put("new.snap", "mine"), mv("new.snap", "f.snap")),
			want: map[string]string{"f.snap": "mine"}},
		// The exchange after the link is harmless; the snapshot after
		// it would be written over the linked one.
		{name: "linked", commits: 2, acts: seq(ln("f.snap", "keep.snap")), ok: 1,
			want: map[string]string{"keep.snap": "s1", "f.snap": "x0"}},
		{name: "linked, link removed", commits: 2, acts: seq(ln("f.snap", "keep.snap")), ok: 1, undo: seq(rm("keep.snap")),
			want: map[string]string{"f.snap": "after"}},
		{name: "moved while written", commits: 1, acts: seq(mv("f.snap", "keep.snap")), during: true,
			want: map[string]string{"keep.snap": "s0"}},
		{name: "replaced while written", commits: 2, acts: seq(mv("f.snap", "keep.snap"), put("f.snap", "")), during: true,
			want: map[string]string{"keep.snap": "s1", "f.snap": ""}},
		{name: "before the first, moved away", old: true, acts: seq(mv("f.snap", "keep.snap")), ok: 2, fine: true,
			want: map[string]string{"keep.snap": "old", "f.snap": "x1"}},
		{name: "before the first, another file put there", old: true, acts: seq(mv("f.snap", "keep.snap"), put("f.snap", "mine")),
			want: map[string]string{"keep.snap": "old", "f.snap": "mine"}},
		{name: "before the first, a file put where there was none", acts: seq(put("f.snap", "mine")),
			undo: seq(rm("f.snap")), want: map[string]string{"f.snap": "after"}},
		{name: "before the first, replaced while written", old: true, acts: seq(mv("f.snap", "keep.snap"), put("f.snap", "mine")), during: true,
			want: map[string]string{"keep.snap": "old", "f.snap": "mine"}},
	}
	for _, handed := range []bool{false, true} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/renamer handed off %v", tt.name, handed), func(t *testing.T) {
				dir := t.TempDir()
				path := filepath.Join(dir, "f.snap")
				if tt.old {
					if err := os.WriteFile(path, []byte("old"), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				tg := targetWithSnapshots(t, path, handed, tt.commits)
				act := func() {
					for _, a := range tt.acts {
						a(t, dir)
					}
				}
				if !tt.during {
					act()
				}
				for i := range tt.ok {
					s := fmt.Sprint("x", i)
					if err := tg.Write(writeString(s)); err != nil {
						t.Fatalf("snapshot %d after the change: %v; want it written", i, err)
					}
					if tt.during && i == 0 {
						t.Fatal("bad test: ok with during")
					}
				}
				// Twice: a refusal changes nothing a second one would find.
				for i := range 2 {
					if tt.fine {
						break
					}
					called := false
					err := tg.Write(func(w io.Writer) error {
						called = true
						if tt.during && i == 0 {
							act()
						}
						return writeString("refused")(w)
					})
					if !errors.Is(err, ErrMoved) {
						t.Fatalf("snapshot %d after the change: %v; want ErrMoved", i, err)
					}
					if called && (!tt.during || i > 0) {
						t.Fatalf("snapshot %d after the change: written before the refusal", i)
					}
				}
				if tt.undo != nil {
					for _, u := range tt.undo {
						u(t, dir)
					}
					if err := tg.Write(writeString("after")); err != nil {
						t.Fatalf("after the change was undone: %v; want the snapshot written", err)
					}
				}
				tg.Close()
				got := map[string]string{}
				for _, n := range dirNames(t, dir) {
					got[n] = mustRead(t, filepath.Join(dir, n))
				}
				if !mapsEqual(got, tt.want) {
					t.Fatalf("at the end the directory holds %q; want %q", got, tt.want)
				}
			})
		}
	}
}

// handOff has tg's renames done by a DirRenamer of its own, as in a
// process that holds the directory.
func handOff(t *testing.T, tg *Target) {
	t.Helper()
	d, files, ok := tg.Names()
	if !ok {
		t.Fatal("Names: not held")
	}
	fd, err := unix.Dup(int(d.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	r := NewDirRenamer(os.NewFile(uintptr(fd), d.Name()), files)
	t.Cleanup(func() { r.Close() })
	tg.UseRenamer(r)
}

func seq(fs ...func(t *testing.T, dir string)) []func(t *testing.T, dir string) { return fs }

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	ka := make([]string, 0, len(a))
	for k := range a {
		ka = append(ka, k)
	}
	sort.Strings(ka)
	for _, k := range ka {
		if v, ok := b[k]; !ok || v != a[k] {
			return false
		}
	}
	return true
}

// TestTargetTempRemoved: once the temporary a Target writes next is
// removed (a cleaner of old files in /tmp may remove the spare), its
// snapshots are refused with ErrTempRemoved, which says so and that no
// more can be written, and ErrMoved; the file keeps the last snapshot.
// Before, the refusal said only "moved or removed", as for a file that
// could be put back.
func TestTargetTempRemoved(t *testing.T) {
	for _, tt := range []struct {
		name    string
		commits int
		during  bool // removed while the next snapshot is written
		what    string
		want    map[string]string
	}{
		{"the spare", 1, false, "(the previous snapshot, which the next is written over)", map[string]string{"f.snap": "s0"}},
		{"the spare, while written", 2, true, "(the previous snapshot, which the next is written over)", map[string]string{"f.snap": "s1"}},
		{"before the first", 0, false, "(the snapshot's temporary)", map[string]string{}},
	} {
		for _, handed := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/renamer handed off %v", tt.name, handed), func(t *testing.T) {
				dir := t.TempDir()
				tg := targetWithSnapshots(t, filepath.Join(dir, "f.snap"), handed, tt.commits)
				temp := filepath.Join(dir, tg.spareName())
				rm := func() {
					if err := os.Remove(temp); err != nil {
						t.Fatal(err)
					}
				}
				if !tt.during {
					rm()
				}
				for i := range 2 {
					err := tg.Write(func(w io.Writer) error {
						if tt.during && i == 0 {
							rm()
						}
						return writeString("refused")(w)
					})
					if !errors.Is(err, ErrTempRemoved) || !errors.Is(err, ErrMoved) {
						t.Fatalf("snapshot %d: %v; want ErrTempRemoved and ErrMoved", i, err)
					}
					if want := filepath.Base(temp) + " " + tt.what + ": " + ErrMoved.Error() + ": " + ErrTempRemoved.Error(); !strings.Contains(err.Error(), want) {
						t.Fatalf("snapshot %d: %v; want it to say %q", i, err, want)
					}
				}
				tg.Close()
				got := map[string]string{}
				for _, n := range dirNames(t, dir) {
					got[n] = mustRead(t, filepath.Join(dir, n))
				}
				if !mapsEqual(got, tt.want) {
					t.Fatalf("at the end the directory holds %q; want %q", got, tt.want)
				}
			})
		}
	}
}

// TestTargetTempMoved: once the temporary a Target writes next is moved
// away, linked elsewhere and unlinked from its name, or linked
// elsewhere while still at its name, its snapshots are refused with
// ErrTempMoved and ErrMoved, not ErrTempRemoved (it still has a name);
// removed, with ErrTempRemoved, whose text says whether the file keeps
// a snapshot (before the first commit, none was written). Put back at
// its name alone, snapshots go on. Before, the moved or linked
// temporary got the bare ErrMoved of a file to put back at the
// target's path, where it already was, and a removal before the first
// commit said the file kept the last snapshot written.
func TestTargetTempMoved(t *testing.T) {
	for _, tt := range []struct {
		name    string
		act     string // "rm", "mv", "ln+rm", "ln"
		removed bool   // ErrTempRemoved rather than ErrTempMoved
	}{
		{"removed", "rm", true},
		{"moved away", "mv", false},
		{"linked elsewhere, unlinked", "ln+rm", false},
		{"linked elsewhere", "ln", false},
	} {
		for _, commits := range []int{0, 1, 2} {
			for _, handed := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%d commits/renamer handed off %v", tt.name, commits, handed), func(t *testing.T) {
					dir := t.TempDir()
					tg, err := OpenTarget(filepath.Join(dir, "f.snap"))
					if err != nil {
						t.Fatal(err)
					}
					defer tg.Close()
					if handed {
						handOff(t, tg)
					}
					for i := range commits {
						if err := tg.Write(writeString(fmt.Sprint("s", i))); err != nil {
							t.Fatal(err)
						}
					}
					temp := filepath.Join(dir, tg.spareName())
					kept := filepath.Join(dir, "keep")
					do := func(f func(string, string) error, a, b string) {
						t.Helper()
						if err := f(a, b); err != nil {
							t.Fatal(err)
						}
					}
					remove := func(a, _ string) error { return os.Remove(a) }
					switch tt.act {
					case "rm":
						do(remove, temp, "")
					case "mv":
						do(os.Rename, temp, kept)
					case "ln+rm":
						do(os.Link, temp, kept)
						do(remove, temp, "")
					case "ln":
						do(os.Link, temp, kept)
					}
					for i := range 2 {
						err := tg.Write(writeString("refused"))
						if !errors.Is(err, ErrMoved) {
							t.Fatalf("snapshot %d: %v; want ErrMoved", i, err)
						}
						if errors.Is(err, ErrTempRemoved) != tt.removed || errors.Is(err, ErrTempMoved) == tt.removed {
							t.Fatalf("snapshot %d: %v; want ErrTempRemoved %v, ErrTempMoved %v", i, err, tt.removed, !tt.removed)
						}
						if !strings.Contains(err.Error(), filepath.Base(temp)) {
							t.Fatalf("snapshot %d: %v; want it to name %s", i, err, filepath.Base(temp))
						}
						if tt.removed {
							want, wrong := "none was written to its file", "keeps the last one written"
							if commits > 0 {
								want, wrong = wrong, want
							}
							if !strings.Contains(err.Error(), want) || strings.Contains(err.Error(), wrong) {
								t.Fatalf("snapshot %d: %v; want it to say %q", i, err, want)
							}
						}
					}
					if tt.removed {
						return
					}
					// Back at its name, alone: snapshots go on.
					if tt.act == "ln" {
						do(remove, kept, "")
					} else {
						do(os.Rename, kept, temp)
					}
					if err := tg.Write(writeString("after")); err != nil {
						t.Fatalf("with the temporary back: %v; want the snapshot written", err)
					}
					if got := mustRead(t, filepath.Join(dir, "f.snap")); got != "after" {
						t.Fatalf("f.snap holds %q; want %q", got, "after")
					}
				})
			}
		}
	}
}

// targetWithSnapshots opens a Target for path, closed at the end of the test,
// its renames handed off (as to a broker) when handed, and writes
// commits snapshots to it.
func targetWithSnapshots(t *testing.T, path string, handed bool, commits int) *Target {
	t.Helper()
	tg, err := OpenTarget(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tg.Close() })
	if handed {
		handOff(t, tg)
	}
	for i := range commits {
		if err := tg.Write(writeString(fmt.Sprint("s", i))); err != nil {
			t.Fatal(err)
		}
	}
	return tg
}
