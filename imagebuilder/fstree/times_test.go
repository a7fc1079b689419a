package fstree_test

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/hostdir"
)

// TestClampedTimes: a set's modification time outside what ext2 stores
// was mangled without a word: 4000000000 (2096) wrapped to 1960 in the
// image, and any time before 1970 was replaced by the build's timestamp.
// Times from 1901 to 2038 are kept; others get the nearest of the two
// ends, and the tree holds one warning for the set, naming the first.
func TestClampedTimes(t *testing.T) {
	tests := []struct {
		name  string
		times map[string]int64 // mtime of each file of the set
		want  map[string]int64 // Node.Mtime of each
		warn  string           // in the one warning; "" for none
	}{
		{"in range", map[string]int64{"a": 1600000000, "b": -100, "c": fstree.MinTime, "d": fstree.MaxTime},
			map[string]int64{"a": 1600000000, "b": -100, "c": fstree.MinTime, "d": fstree.MaxTime}, ""},
		{"after 2038", map[string]int64{"a": 1600000000, "b": 4000000000},
			map[string]int64{"a": 1600000000, "b": fstree.MaxTime},
			"1 entry has a modification time ext2 cannot store (it stores 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z); each is stored as the nearest it can: ./b's 2096-10-02T07:06:40Z as 2038-01-19T03:14:07Z"},
		{"after 2038, five", map[string]int64{"a": 4000000000, "b": 4000000001, "c": 1 << 32, "d": fstree.MaxTime + 1, "e": 1 << 33, "f": 1},
			map[string]int64{"a": fstree.MaxTime, "b": fstree.MaxTime, "c": fstree.MaxTime, "d": fstree.MaxTime, "e": fstree.MaxTime, "f": 1},
			"5 entries have modification times ext2 cannot store (it stores 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z); each is stored as the nearest it can: ./a's 2096-10-02T07:06:40Z as 2038-01-19T03:14:07Z"},
		{"both ends", map[string]int64{"a": -3000000000, "b": 1 << 40, "c": fstree.MaxTime + 1},
			map[string]int64{"a": fstree.MinTime, "b": fstree.MaxTime, "c": fstree.MaxTime},
			"3 entries have modification times ext2 cannot store (it stores 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z); each is stored as the nearest it can: ./a's 1874-12-07T18:40:00Z as 1901-12-13T20:45:52Z"},
		// The set's bytes reach the terminal escaped, not as they are.
		{"control bytes in the name", map[string]int64{"a\x1b[2J": 4000000000},
			map[string]int64{"a\x1b[2J": fstree.MaxTime},
			`1 entry has a modification time ext2 cannot store (it stores 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z); each is stored as the nearest it can: "./a\x1b[2J"'s 2096-10-02T07:06:40Z as 2038-01-19T03:14:07Z`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := make([]string, 0, len(tt.times))
			for name := range tt.times {
				names = append(names, name)
			}
			slices.Sort(names)
			var set bytes.Buffer
			tw := tar.NewWriter(&set)
			dir, hostKeeps := t.TempDir(), true
			for _, name := range names {
				h := &tar.Header{Typeflag: tar.TypeReg, Name: "./" + name, Mode: 0o644, ModTime: time.Unix(tt.times[name], 0), Format: tar.FormatPAX}
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
				hp := filepath.Join(dir, name)
				if err := os.WriteFile(hp, nil, 0o644); err != nil {
					t.Fatal(err)
				}
				// Not os.Chtimes and os.Stat, which on a 32-bit host cut
				// a time past 2038.
				ts := hostdir.Timespec{Sec: tt.times[name]}
				if err := hostdir.Lutimes(hp, ts, ts); err != nil {
					t.Fatal(err)
				}
				if st, err := hostdir.LstatPath(hp); err != nil || st.Mtim != ts {
					hostKeeps = false // ext4 keeps 1901 to 2446
				}
			}
			if err := tw.Close(); err != nil {
				t.Fatal(err)
			}
			for _, from := range []string{"tar", "dir"} {
				if from == "dir" && !hostKeeps {
					t.Log("the host's file system does not keep these times: not read from a directory")
					continue
				}
				tr := fstree.New()
				var err error
				setName := "set.tar"
				if from == "tar" {
					err = tr.AddArchive(bytes.NewReader(set.Bytes()), setName)
				} else {
					setName = dir
					err = tr.AddDir(dir)
				}
				if err != nil {
					t.Fatal(err)
				}
				// Not the one a user other than root gets for a directory
				// of their own files (TestAddDirWarnsUserOwned).
				warnings := slices.DeleteFunc(tr.Warnings, func(w string) bool { return strings.Contains(w, "the user building the image") })
				for name, want := range tt.want {
					if n, err := tr.Get(name); err != nil || n.Mtime != want {
						t.Errorf("from a %s: %s: %+v %v, want mtime %d", from, name, n, err, want)
					}
				}
				want := tt.warn
				if from == "dir" {
					want = strings.ReplaceAll(want, "./", dir+"/")
				}
				switch {
				case want == "" && len(warnings) > 0:
					t.Errorf("from a %s: warnings %q, want none", from, warnings)
				case want != "" && (len(warnings) != 1 || warnings[0] != setName+": "+want):
					t.Errorf("from a %s: warnings %q, want one: %q", from, warnings, setName+": "+want)
				}
			}
		})
	}
}

// TestZeroMtimeGiven: a set entry of mtime 0 (1970-01-01, as in a set
// built with SOURCE_DATE_EPOCH=0) was taken for one without a time, and
// the image writer gave it the build's timestamp. Read from a tar or a
// directory, it has a time of its own; a node made without one has none.
func TestZeroMtimeGiven(t *testing.T) {
	var set bytes.Buffer
	tw := tar.NewWriter(&set)
	for _, h := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "./d/", Mode: 0o755, ModTime: time.Unix(0, 0)},
		{Typeflag: tar.TypeReg, Name: "./d/f", Mode: 0o644, ModTime: time.Unix(0, 0)},
	} {
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "d/f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"d/f", "d"} {
		if err := os.Chtimes(filepath.Join(dir, p), time.Unix(0, 0), time.Unix(0, 0)); err != nil {
			t.Fatal(err)
		}
	}
	fromTar, fromDir := fstree.New(), fstree.New()
	if err := fromTar.AddArchive(bytes.NewReader(set.Bytes()), "set.tar"); err != nil {
		t.Fatal(err)
	}
	if err := fromDir.AddDir(dir); err != nil {
		t.Fatal(err)
	}
	for from, tr := range map[string]*fstree.Tree{"tar": fromTar, "dir": fromDir} {
		for _, p := range []string{"d", "d/f"} {
			if n, err := tr.Get(p); err != nil || n.Mtime != 0 || !n.HasMtime() {
				t.Errorf("from a %s: %s: %+v %v, want mtime 0, given", from, p, n, err)
			}
		}
	}
	if n := fstree.NewFile(0o644, nil); n.HasMtime() {
		t.Errorf("a new node has a time of its own: %+v", n)
	}
}
