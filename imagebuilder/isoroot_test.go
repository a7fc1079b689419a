package imagebuilder_test

import (
	"encoding/binary"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// isoModes returns the Rock Ridge modes (PX entries) of the root
// directory's own record (".") and of each record in it, by name as
// ISO 9660 stores it.
func isoModes(img []byte) (map[string]uint32, error) {
	const bs = 2048
	le := binary.LittleEndian
	if len(img) < 17*bs || string(img[16*bs+1:16*bs+6]) != "CD001" {
		return nil, fmt.Errorf("no primary volume descriptor")
	}
	root := img[16*bs+156:]
	loc, size := int64(le.Uint32(root[2:])), int64(le.Uint32(root[10:]))
	if (loc+1)*bs > int64(len(img)) || size > bs {
		return nil, fmt.Errorf("root directory at block %d, %d bytes: not one block of the image", loc, size)
	}
	b := img[loc*bs : (loc+1)*bs]
	modes := map[string]uint32{}
	for i := 0; i < len(b) && b[i] != 0; i += int(b[i]) {
		rec := b[i : i+int(b[i])]
		nl := int(rec[32])
		name := string(rec[33 : 33+nl])
		switch {
		case nl == 1 && rec[33] == 0:
			name = "."
		case nl == 1 && rec[33] == 1:
			name = ".."
		}
		sua := rec[33+nl+(nl+1)%2:]
		for j := 0; j+4 <= len(sua) && sua[j+2] >= 4 && j+int(sua[j+2]) <= len(sua); j += int(sua[j+2]) {
			if e := sua[j : j+int(sua[j+2])]; string(e[:2]) == "PX" && len(e) >= 12 {
				modes[name] = le.Uint32(e[4:])
			}
		}
	}
	return modes, nil
}

// TestISORootMode: an ISO 9660 data image's root directory had mode
// 0700, that of the temporary directory go-diskfs builds it from, so no
// user but root could read the shared files in the guest. It is 0755, as
// the directories below it are.
func TestISORootMode(t *testing.T) {
	for _, srcMode := range []os.FileMode{0o700, 0o755, 0o777} {
		t.Run(fmt.Sprintf("%04o", srcMode), func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "sub", "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(dir, srcMode); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(t.TempDir(), "data.iso")
			if err := imagebuilder.BuildDataImage(dir, out, imagebuilder.DataISO9660); err != nil {
				t.Fatal(err)
			}
			img, err := os.ReadFile(out)
			if err != nil {
				t.Fatal(err)
			}
			modes, err := isoModes(img)
			if err != nil {
				t.Fatal(err)
			}
			for _, name := range []string{".", "SUB"} {
				if m, ok := modes[name]; !ok || m != 0o40755 {
					t.Errorf("%s: Rock Ridge mode %#o (found %v), want 040755; all: %v", name, m, ok, modes)
				}
			}
		})
	}
}

// TestISOModesUmask: go-diskfs makes an ISO 9660 image's directories and
// files in a work tree with modes 0755 and 0644 less the process umask,
// and Rock Ridge takes them from there: under umask 077 they were 0700
// and 0600, unreadable to the guest's users. They are 0755 and 0644
// whatever the umask.
func TestISOModesUmask(t *testing.T) {
	for _, umask := range []int{0o022, 0o077, 0o277} {
		t.Run(fmt.Sprintf("%04o", umask), func(t *testing.T) {
			dir := writeTree(t, []string{"top", "sub/f", "sub/deep/g"})
			out := filepath.Join(t.TempDir(), "data.iso")
			old := syscall.Umask(umask)
			err := imagebuilder.BuildDataImage(dir, out, imagebuilder.DataISO9660)
			syscall.Umask(old)
			if err != nil {
				t.Fatal(err)
			}
			fsys := imageFS(t, out)
			for name, want := range map[string]os.FileMode{
				"top": 0o644, "sub": os.ModeDir | 0o755, "sub/f": 0o644,
				"sub/deep": os.ModeDir | 0o755, "sub/deep/g": 0o644,
			} {
				st, err := fs.Stat(fsys, name)
				if err != nil {
					t.Errorf("%s: %v", name, err)
					continue
				}
				if st.Mode() != want {
					t.Errorf("%s: mode %v, want %v", name, st.Mode(), want)
				}
			}
		})
	}
}

// TestDataImageModeUmask: a new data image was 0644 whatever the umask,
// so under umask 077 other users could read it (and lock it); it is now
// 0644 less the umask, as a file the user makes otherwise.
func TestDataImageModeUmask(t *testing.T) {
	for _, fsType := range []string{imagebuilder.DataFAT32, imagebuilder.DataISO9660} {
		for umask, want := range map[int]os.FileMode{0o077: 0o600, 0o022: 0o644} {
			t.Run(fmt.Sprintf("%s %04o", fsType, umask), func(t *testing.T) {
				dir := writeTree(t, []string{"f"})
				out := filepath.Join(t.TempDir(), "data.img")
				old := syscall.Umask(umask)
				err := imagebuilder.BuildDataImage(dir, out, fsType)
				syscall.Umask(old)
				if err != nil {
					t.Fatal(err)
				}
				st, err := os.Stat(out)
				if err != nil {
					t.Fatal(err)
				}
				if st.Mode().Perm() != want {
					t.Errorf("image mode %v, want %v", st.Mode().Perm(), want)
				}
			})
		}
	}
}
