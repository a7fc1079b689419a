package vmm

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/snapshot"
)

// TestDropFileDataShortFile: the SEEK_DATA walk takes "no more data"
// (ENXIO) for holes to the memory's end only when the file reaches it; a
// file cut short fails with errFileShort, since the pages past its end
// are not zero but gone.
func TestDropFileDataShortFile(t *testing.T) {
	const ps = snapshot.PageSize
	const base, pages = 2 * ps, 8
	for _, tc := range []struct {
		name     string
		size     int64 // the file's size; data is written to memory page 1
		wantErr  error
		wantZero []int // pages left in the set, when no error
	}{
		{"file covers memory, trailing hole", base + pages*ps, nil, []int{0, 2, 3, 4, 5, 6, 7}},
		{"file ends after the data", base + 3*ps, errFileShort, nil},
		{"file ends at the memory's start", base, errFileShort, nil},
		{"file ends a byte short", base + pages*ps - 1, errFileShort, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.Create(filepath.Join(t.TempDir(), "mem"))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt([]byte{1}, base+ps); err != nil {
				t.Fatal(err)
			}
			if err := f.Truncate(tc.size); err != nil {
				t.Fatal(err)
			}
			set := make(snapshot.PageSet, 1)
			set[0] = 1<<pages - 1
			err = dropFileData(set, f, base, pages*ps)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("dropFileData on a file of %d bytes (memory %d to %d) = %v; want %v", tc.size, base, base+pages*ps, err, tc.wantErr)
			}
			if err != nil {
				return
			}
			var want uint64
			for _, p := range tc.wantZero {
				want |= 1 << p
			}
			if set[0] != want {
				t.Errorf("pages left as holes %08b; want %08b", set[0], want)
			}
		})
	}
}
