package imagebuilder_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode/utf16"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// rawFATDir is one directory of a FAT32 image as its bytes hold it.
type rawFATDir struct {
	entries []rawFATEntry
}

// rawFATEntry is a short-name entry and the long-name entries just
// before it, in the order stored.
type rawFATEntry struct {
	short []byte   // the 32-byte short-name entry
	lfn   [][]byte // the 32-byte long-name entries before it, not deleted
}

// readRawFATDir reads the directory at path (names of directories from
// the root, each matched by its long name as decoded by lfnName) straight
// from the image's bytes: boot sector, FAT, clusters.
func readRawFATDir(t *testing.T, img string, path ...string) rawFATDir {
	t.Helper()
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	bps, spc := int(le.Uint16(b[11:])), int(b[13])
	reserved, nfats, fatSectors := int(le.Uint16(b[14:])), int(b[16]), int(le.Uint32(b[36:]))
	fat := b[reserved*bps : (reserved+fatSectors)*bps]
	data := (reserved + nfats*fatSectors) * bps
	read := func(c uint32) rawFATDir {
		var dir []byte
		for ; c >= 2 && c < 0x0ffffff8; c = le.Uint32(fat[4*c:]) & 0x0fffffff {
			off := data + int(c-2)*spc*bps
			dir = append(dir, b[off:off+spc*bps]...)
		}
		var d rawFATDir
		var lfn [][]byte
		for i := 0; i+32 <= len(dir) && dir[i] != 0; i += 32 {
			e := dir[i : i+32]
			switch {
			case e[0] == 0xe5:
				lfn = nil
			case e[11] == 0x0f:
				lfn = append(lfn, e)
			default:
				d.entries = append(d.entries, rawFATEntry{short: e, lfn: lfn})
				lfn = nil
			}
		}
		return d
	}
	d := read(le.Uint32(b[44:]))
next:
	for _, name := range path {
		for _, e := range d.entries {
			u, _ := lfnName(e)
			if i := slices.Index(u, 0); i >= 0 {
				u = u[:i]
			}
			if string(utf16.Decode(u)) == name {
				d = read(uint32(le.Uint16(e.short[20:]))<<16 | uint32(le.Uint16(e.short[26:])))
				continue next
			}
		}
		t.Fatalf("no directory %q in the image", name)
	}
	return d
}

// lfnName decodes e's long-name entries by the FAT spec: at most 20, the
// first stored with ordinal n|0x40, the next n-1 down to 1, each with the
// checksum of the short name. It returns all 13n units, and the first
// thing found wrong.
func lfnName(e rawFATEntry) ([]uint16, error) {
	var sum byte
	for _, c := range e.short[:11] {
		sum = (sum&1)<<7 + sum>>1 + c
	}
	n := len(e.lfn)
	var bad error
	if n > 20 {
		bad = fmt.Errorf("%d entries, past the 20 of a 255-character name", n)
	}
	var units []uint16
	for k := 1; k <= n; k++ {
		s := e.lfn[n-k]
		want := byte(k)
		if k == n {
			want |= 0x40
		}
		if s[0] != want && bad == nil {
			bad = fmt.Errorf("entry %d has ordinal %#x, want %#x", k, s[0], want)
		}
		if s[13] != sum && bad == nil {
			bad = fmt.Errorf("entry %d has checksum %#x, the short name's is %#x", k, s[13], sum)
		}
		for _, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
			units = append(units, binary.LittleEndian.Uint16(s[off:]))
		}
	}
	return units, bad
}

// TestFAT32LongNamesPastASCII: a long name with characters past ASCII,
// followed by another entry in its directory, is stored in exactly as
// many long-name entries as its UTF-16 units need (go-diskfs counts UTF-8
// bytes, and then keeps the 0xFFFF padding as characters), ended with
// 0x0000 and padded with 0xFFFF unless it fills its last entry; mtools
// lists and opens it by that name, and fsck.fat finds nothing. A name
// past U+FFFF (a UTF-16 surrogate pair), which go-diskfs cannot write, is
// refused by name.
func TestFAT32LongNamesPastASCII(t *testing.T) {
	const sub = "Ünïcödé dir"
	subsub := sub + "/Ünïcödé sub"
	names := []struct {
		what, dir, name string
		units           int  // UTF-16 units
		isDir           bool // else a file holding what
	}{
		{"accented", "", "Résumé 2.pdf", 12, false},
		{"accented, three entries", "", "long name with spaces and ünïcödé.txt", 37, false},
		{"CJK (3-byte UTF-8)", "", "日本語の文書.txt", 10, false},
		{"exactly 13 units", "", "Ça-13-units.c", 13, false},
		{"exactly 26 units", "", "Ça-twenty-six-units-é.text", 26, false},
		// go-diskfs cannot find these by their long names as it
		// stores them: the builder reaches them by their short names.
		{"directory", "", sub, 11, true},
		{"in a directory", sub, "ça.txt", 6, false},
		{"directory in a directory", sub, "Ünïcödé sub", 11, true},
		{"in a directory in a directory", subsub, "ça.txt", 6, false},
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, subsub), 0o755); err != nil {
		t.Fatal(err)
	}
	// The last names of each directory: every name above has one after it.
	for _, p := range []string{"龍 last.txt", filepath.Join(sub, "龍 last.txt"), filepath.Join(subsub, "龍 last.txt")} {
		if err := os.WriteFile(filepath.Join(dir, p), []byte("last"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range names {
		if n.isDir {
			continue
		}
		if err := os.WriteFile(filepath.Join(dir, n.dir, n.name), []byte(n.what), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	img := filepath.Join(t.TempDir(), "data.img")
	if err := imagebuilder.BuildDataImage(dir, img, "fat32"); err != nil {
		t.Fatal(err)
	}
	mtools := func(t *testing.T, tool string, args ...string) string {
		t.Helper()
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed (Debian: mtools)", tool)
		}
		cmd := exec.Command(p, append([]string{"-i", img}, args...)...)
		// mtools takes names in the locale's character set.
		cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%.500s", cmd, err, out)
		}
		return string(out)
	}
	for _, n := range names {
		t.Run(n.what, func(t *testing.T) {
			if got := len(utf16.Encode([]rune(n.name))); got != n.units {
				t.Fatalf("%q has %d UTF-16 units, the case wants %d", n.name, got, n.units)
			}
			var d rawFATDir
			if n.dir == "" {
				d = readRawFATDir(t, img)
			} else {
				d = readRawFATDir(t, img, strings.Split(n.dir, "/")...)
			}
			want := utf16.Encode([]rune(n.name))
			found := false
			for i, e := range d.entries {
				units, err := lfnName(e)
				if len(units) < len(want) || string(utf16.Decode(units[:len(want)])) != n.name {
					continue
				}
				found = true
				if err != nil {
					t.Errorf("long-name entries: %v", err)
				}
				if i == len(d.entries)-1 {
					t.Errorf("no entry after it in its directory: the case does not test what it says")
				}
				slots := (len(want) + 12) / 13
				if len(e.lfn) != slots {
					t.Errorf("%d long-name entries, want %d for %d UTF-16 units", len(e.lfn), slots, len(want))
				}
				rest := units[len(want):]
				for j, u := range rest {
					if wantU := uint16(0xffff); j == 0 && u != 0 || j > 0 && u != wantU {
						t.Errorf("unit %d after the name is %#04x, want 0x0000 then 0xFFFF: % x", j, u, rest)
						break
					}
				}
			}
			if !found {
				t.Fatalf("no long name %q in the directory", n.name)
			}
			p := "::/" + n.name
			if n.dir != "" {
				p = "::/" + n.dir + "/" + n.name
			}
			if n.isDir {
				if out := mtools(t, "mdir", p); !strings.Contains(out, " 龍 last.txt\n") {
					t.Errorf("mdir %s does not list 龍 last.txt:\n%s", p, out)
				}
			} else if out := mtools(t, "mtype", p); out != n.what {
				t.Errorf("mtype %s = %q, want %q", p, out, n.what)
			}
			parent := "::/" + n.dir
			if out := mtools(t, "mdir", parent); !strings.Contains(out, " "+n.name+"\n") {
				t.Errorf("mdir %s does not list %q:\n%s", parent, n.name, out)
			}
		})
	}
	t.Run("fsck.fat", func(t *testing.T) {
		fsck, err := exec.LookPath("fsck.fat")
		if err != nil {
			t.Skip("fsck.fat (dosfstools) not installed")
		}
		if out, err := exec.Command(fsck, "-n", img).CombinedOutput(); err != nil || strings.Count(string(out), "\n") > 2 {
			t.Errorf("fsck.fat -n: %v\n%s", err, out)
		}
	})
	t.Run("emoji (surrogate pair) refused", func(t *testing.T) {
		dir := t.TempDir()
		for _, n := range []string{"photo 😀.jpg", "zz.txt"} {
			if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		err := imagebuilder.BuildDataImage(dir, filepath.Join(t.TempDir(), "data.img"), "fat32")
		var ne *imagebuilder.FATNameError
		if !errors.As(err, &ne) || !strings.Contains(err.Error(), "photo 😀.jpg") || !strings.Contains(err.Error(), "U+1F600") {
			t.Errorf("BuildDataImage = %v, want a FATNameError naming photo 😀.jpg and U+1F600", err)
		}
	})
}

// TestFixDirLongNamesSurrogatePairs: names past U+FFFF, stored as UTF-16
// surrogate pairs, which go-diskfs cannot write (fatNameProblem refuses
// them), are mended like any other: in a directory laid out as go-diskfs
// lays one after adding an entry (the name, 13 units of 0xFFFF read back
// as characters, 0x0000, padding, in as many entries as the UTF-8 bytes
// of that need), each name is left in as many entries as its UTF-16 units
// need, pairs whole, ended and padded as the spec has it, the entries
// left over deleted.
func TestFixDirLongNamesSurrogatePairs(t *testing.T) {
	tests := []struct {
		name  string
		short string
		units int
	}{
		{"photo 😀.jpg", "PHOTO_~1JPG", 12},
		{"a😀bcdefghijk", "A_BCDE~1   ", 13},
		{"abcdefghijkl😀.txt", "ABCDEF~1TXT", 18}, // the pair across two entries
		{"😀😀😀😀😀😀😀😀😀😀😀😀😀", "_______1   ", 26},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := utf16.Encode([]rune(tt.name))
			if len(name) != tt.units {
				t.Fatalf("%q has %d UTF-16 units, the case wants %d", tt.name, len(name), tt.units)
			}
			var sum byte
			for _, c := range []byte(tt.short) {
				sum = (sum&1)<<7 + sum>>1 + c
			}
			stored := append(append([]uint16{}, name...), slices.Repeat([]uint16{0xffff}, 13)...)
			slots := (len(tt.name) + 13*3 + 12) / 13 // go-diskfs: UTF-8 bytes
			padded := append(append(stored, 0), slices.Repeat([]uint16{0xffff}, 13*slots)...)
			var dir []byte
			for k := slots; k >= 1; k-- {
				e := make([]byte, 32)
				e[0] = byte(k)
				if k == slots {
					e[0] |= 0x40
				}
				e[11], e[13] = 0x0f, sum
				for j, off := range []int{1, 3, 5, 7, 9, 14, 16, 18, 20, 22, 24, 28, 30} {
					binary.LittleEndian.PutUint16(e[off:], padded[13*(k-1)+j])
				}
				dir = append(dir, e...)
			}
			dir = append(dir, []byte(tt.short)...)
			dir = append(dir, make([]byte, 21)...)
			dir = append(dir, []byte("ZZ      TXT")...)
			dir = append(dir, make([]byte, 21+32)...)

			changed, err := imagebuilder.FixDirLongNames(dir)
			if err != nil || !changed {
				t.Fatalf("FixDirLongNames = %v, %v; want true, nil", changed, err)
			}
			var d rawFATDir
			var lfn [][]byte
			deleted := 0
			for i := 0; i+32 <= len(dir) && dir[i] != 0; i += 32 {
				switch e := dir[i : i+32]; {
				case e[0] == 0xe5:
					deleted++
				case e[11] == 0x0f:
					lfn = append(lfn, e)
				default:
					d.entries = append(d.entries, rawFATEntry{short: e, lfn: lfn})
					lfn = nil
				}
			}
			want := (tt.units + 12) / 13
			if len(d.entries) != 2 || len(d.entries[0].lfn) != want {
				t.Fatalf("after the fix: %d entries, the first with %d long-name entries; want 2, %d", len(d.entries), len(d.entries[0].lfn), want)
			}
			if deleted != slots-want {
				t.Errorf("%d entries deleted, want the %d left over", deleted, slots-want)
			}
			units, err := lfnName(d.entries[0])
			if err != nil {
				t.Errorf("long-name entries: %v", err)
			}
			if !slices.Equal(units[:len(name)], name) {
				t.Errorf("name units % x, want % x", units[:len(name)], name)
			}
			for j, u := range units[len(name):] {
				if j == 0 && u != 0 || j > 0 && u != 0xffff {
					t.Errorf("units after the name % x, want 0x0000 then 0xFFFF", units[len(name):])
					break
				}
			}
			if len(d.entries[1].lfn) != 0 || string(d.entries[1].short[:11]) != "ZZ      TXT" {
				t.Errorf("the entry after it changed: %q with %d long-name entries", d.entries[1].short[:11], len(d.entries[1].lfn))
			}
		})
	}
}
