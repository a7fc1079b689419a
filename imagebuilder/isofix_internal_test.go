package imagebuilder

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
)

// TestGoDiskfsISOContinuations shows the defect fixISOContinuations
// mends, in go-diskfs's own output: two files with long names in the
// root, whose CE entries (and the root's, for its ER) all point to one
// place. When a release fixes it, this fails: delete the patch then.
func TestGoDiskfsISOContinuations(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "raw.iso"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	const size = 4 << 20
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	fsys, err := iso9660.Create(file.New(f, false), size, 0, 2048, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"a", "b"} {
		out, err := fsys.OpenFile("/"+strings.Repeat(c, 150), os.O_CREATE|os.O_RDWR)
		if err != nil {
			t.Fatal(err)
		}
		out.Write([]byte(c))
		out.Close()
	}
	if err := fsys.Finalize(iso9660.FinalizeOptions{RockRidge: true, VolumeIdentifier: DataLabel}); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(f.Name())
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	root := img[16*2048+156:]
	dir := img[int64(le.Uint32(root[2:]))*2048:][:le.Uint32(root[10:])]
	type place struct{ loc, off uint32 }
	places := map[place]int{}
	n := 0
	for rest := dir; ; {
		i := bytes.Index(rest, []byte("CE\x1c\x01"))
		if i < 0 {
			break
		}
		ce := rest[i:]
		places[place{le.Uint32(ce[4:]), le.Uint32(ce[12:])}]++
		n++
		rest = rest[i+28:]
	}
	if n < 3 || len(places) != 1 {
		t.Errorf("go-diskfs wrote %d CE entries in the root directory, pointing to %d places: want 3 or more pointing to one (the defect); if a release fixed it, delete fixISOContinuations", n, len(places))
	}
}
