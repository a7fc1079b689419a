package imagebuilder

import (
	"encoding/binary"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
)

// goDiskfsFAT32 makes a FAT32 image of size bytes with go-diskfs alone: a
// directory in the root (/sub), an empty file in it, a file with data,
// three with names go-diskfs gives wrong short names (/.profile, /a+, /a=),
// and one whose long name it stores in too many entries (/Résumé 2.pdf),
// then others after it (/zz1 ... /zz4), each of which makes that name
// longer.
func goDiskfsFAT32(t *testing.T, size int64) string {
	t.Helper()
	img := filepath.Join(t.TempDir(), "raw.img")
	f, err := os.Create(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	fsys, err := fat32.Create(file.New(f, false), size, 0, 512, DataLabel, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.Mkdir("/sub"); err != nil {
		t.Fatal(err)
	}
	for p, data := range map[string]string{"/sub/empty": "", "/full": "data", "/.profile": "p", "/a+": "+", "/a=": "="} {
		w, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	for _, p := range []string{"/Résumé 2.pdf", "/zz1", "/zz2", "/zz3", "/zz4"} {
		w, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		w.Close()
	}
	return img
}

// lfnEntriesBefore counts the long-name entries just before the
// short-name entry name (8.3, space padded) in directory dir, all its
// clusters.
func lfnEntriesBefore(t *testing.T, v *fat32Volume, dir uint32, name string) int {
	t.Helper()
	cs, err := v.chain(dir)
	if err != nil {
		t.Fatal(err)
	}
	cb := v.spc * v.bps
	buf := make([]byte, int64(len(cs))*cb)
	for i, c := range cs {
		if _, err := v.f.ReadAt(buf[int64(i)*cb:int64(i+1)*cb], v.dataStart+int64(c-2)*cb); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	for i := 0; i+32 <= len(buf) && buf[i] != 0; i += 32 {
		switch e := buf[i : i+32]; {
		case e[0] == 0xe5:
			n = 0
		case e[11] == attrLFN:
			n++
		case string(e[:11]) == name:
			return n
		default:
			n = 0
		}
	}
	t.Fatalf("no entry %q in the directory at cluster %d", name, dir)
	return 0
}

// entryIn returns the short-name entry name (8.3, space padded) in the
// first cluster of directory dir.
func entryIn(t *testing.T, v *fat32Volume, dir uint32, name string) []byte {
	t.Helper()
	buf := make([]byte, v.spc*v.bps)
	if _, err := v.f.ReadAt(buf, v.dataStart+int64(dir-2)*v.spc*v.bps); err != nil {
		t.Fatal(err)
	}
	for i := 0; i+32 <= len(buf) && buf[i] != 0; i += 32 {
		if e := buf[i : i+32]; e[11] != attrLFN && string(e[:11]) == name {
			return e
		}
	}
	t.Fatalf("no entry %q in the directory at cluster %d", name, dir)
	return nil
}

// entriesIn counts the short-name entries name (8.3, space padded) in the
// first cluster of directory dir.
func entriesIn(t *testing.T, v *fat32Volume, dir uint32, name string) int {
	t.Helper()
	buf := make([]byte, v.spc*v.bps)
	if _, err := v.f.ReadAt(buf, v.dataStart+int64(dir-2)*v.spc*v.bps); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := 0; i+32 <= len(buf) && buf[i] != 0; i += 32 {
		if e := buf[i : i+32]; e[11] != attrLFN && string(e[:11]) == name {
			n++
		}
	}
	return n
}

// TestGoDiskfsFAT32Defects shows each defect fixFAT32 mends in go-diskfs's
// own output (and what fsck.fat says of it), then that its patch alone
// removes it. When a go-diskfs release writes one right, the test says so:
// delete that patch.
func TestGoDiskfsFAT32Defects(t *testing.T) {
	version := "(unknown version)"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/diskfs/go-diskfs" {
				version = d.Version
			}
		}
	}
	fsck, _ := exec.LookPath("fsck.fat")
	tests := []struct {
		defect string
		patch  func(*fat32Volume) error
		fsck   string // what fsck.fat -n says of the defect
		// present reports whether the volume has the defect.
		present func(t *testing.T, v *fat32Volume) bool
		size    int64 // of the volume: minFAT32 if 0
	}{
		{"'..' of a directory in the root names the root's cluster", (*fat32Volume).fixRootDotDot,
			"Invalid '..' entry", func(t *testing.T, v *fat32Volume) bool {
				sub := entryIn(t, v, v.root, "SUB        ")
				return entryCluster(entryIn(t, v, entryCluster(sub), "..         ")) != 0
			}, 0},
		{"an empty file owns a cluster", (*fat32Volume).fixEmptyFiles,
			"File size is 0 bytes, cluster chain length is > 0", func(t *testing.T, v *fat32Volume) bool {
				sub := entryIn(t, v, v.root, "SUB        ")
				return entryCluster(entryIn(t, v, entryCluster(sub), "EMPTY      ")) != 0
			}, 0},
		{"a dotfile's short name has an empty stem", (*fat32Volume).fixShortNames,
			"Bad short file name", func(t *testing.T, v *fat32Volume) bool {
				return entriesIn(t, v, v.root, "        PRO") != 0
			}, 0},
		{"two names get one short name", (*fat32Volume).fixShortNames,
			"Duplicate directory entry", func(t *testing.T, v *fat32Volume) bool {
				return entriesIn(t, v, v.root, "A_         ") > 1
			}, 0},
		{"a long name past ASCII gets too many entries", (*fat32Volume).fixLongNames,
			"A new long file name starts within an old one", func(t *testing.T, v *fat32Volume) bool {
				return lfnEntriesBefore(t, v, v.root, "R_SUM_2 PDF") != 1
			}, 0},
		{"FSInfo's free-cluster count is left unknown", (*fat32Volume).fixFreeCount,
			"Free cluster summary uninitialized", func(t *testing.T, v *fat32Volume) bool {
				var free uint32
				for c := uint32(2); c < v.nclusters; c++ {
					if v.next(c) == 0 {
						free++
					}
				}
				info := make([]byte, 512)
				if _, err := v.f.ReadAt(info, v.fsinfo*v.bps); err != nil {
					t.Fatal(err)
				}
				return binary.LittleEndian.Uint32(info[488:]) != free
			}, 0},
		{"the FAT has no entries for the last two clusters", (*fat32Volume).fixShortFAT,
			"FAT entries", func(t *testing.T, v *fat32Volume) bool {
				return int64(v.nclusters) > v.fatSectors*v.bps/4
			}, 4 << 30},
	}
	for _, tt := range tests {
		t.Run(tt.defect, func(t *testing.T) {
			size := tt.size
			if size == 0 {
				size = minFAT32
			}
			img := goDiskfsFAT32(t, size)
			check := func(wantDefect bool) {
				t.Helper()
				f, err := os.Open(img)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				v, err := readFAT32(f)
				if err != nil {
					t.Fatal(err)
				}
				if got := tt.present(t, v); got != wantDefect {
					t.Errorf("defect present = %v, want %v", got, wantDefect)
				}
				if fsck == "" {
					return
				}
				out, _ := exec.Command(fsck, "-n", img).CombinedOutput()
				if got := strings.Contains(string(out), tt.fsck); got != wantDefect {
					t.Errorf("fsck.fat -n says %q: %v, want %v:\n%s", tt.fsck, got, wantDefect, out)
				}
			}
			check(true)
			if t.Failed() {
				t.Fatalf("go-diskfs %s writes this right: delete its patch", version)
			}

			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			v, err := readFAT32(f)
			if err == nil {
				err = tt.patch(v)
			}
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			check(false)
		})
	}
}

// TestFixShortFATRefusesOthers: a FAT short by more than go-diskfs's two
// entries (its 16-bit FAT size wrapped, past 256 GiB) is an error, not a
// volume shrunk to what its FAT covers.
func TestFixShortFATRefusesOthers(t *testing.T) {
	img := goDiskfsFAT32(t, 300000<<20)
	f, err := os.OpenFile(img, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v, err := readFAT32(f)
	if err != nil {
		t.Fatal(err)
	}
	total := v.total
	if err := v.fixShortFAT(); err == nil || !strings.Contains(err.Error(), "entries for") {
		t.Errorf("fixShortFAT = %v, want an error naming the FAT's entries and the clusters", err)
	}
	if w, err := readFAT32(f); err != nil || w.total != total {
		t.Errorf("the boot sector now declares %d sectors (%v), want %d as before", w.total, err, total)
	}
}
