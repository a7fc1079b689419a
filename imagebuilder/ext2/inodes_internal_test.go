package ext2

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

// TestSpareInodes: an image of MinSize has a quarter more inodes than its
// content takes, however many small files it holds; a size given needs
// room only for the content's own inodes, and TooSmallError names that
// size, not MinSize's. That size is 17 MiB for 20,000 empty files, as
// before spare inodes were a quarter (they made it 18 MiB, and a 17 MiB
// image that had built was refused); an image of a size given between it
// and MinSize gets as many of the spare inodes as fit.
func TestSpareInodes(t *testing.T) {
	tr := fstree.New()
	for i := range 20000 {
		mustPut(t, tr, fmt.Sprintf("d%02d/f%05d", i%20, i), fstree.NewFile(0o644, nil))
	}
	opts := Options{Timestamp: ts}
	spare, err := MinSize(tr, &opts)
	if err != nil {
		t.Fatal(err)
	}
	bare, err := minSize(tr, &opts, false)
	if err != nil {
		t.Fatal(err)
	}
	if bare >= spare {
		t.Errorf("%d MiB hold the files' inodes and %d MiB a quarter more: want the first smaller", bare>>20, spare>>20)
	}
	if bare != 17<<20 {
		t.Errorf("a size given needs %d MiB for the files' inodes, want 17 MiB as before spare inodes were a quarter", bare>>20)
	}
	for _, tc := range []struct {
		name      string
		size      int64
		wantSpare bool // a quarter of the used inodes free
		minFree   uint32
	}{
		{"MinSize", spare, true, 0},
		{"the content's inodes only", bare, false, 0},
		// Between the two: more than the content's own inodes, fewer
		// than a quarter more.
		{"some spare inodes", (bare + spare) / 2 &^ (1<<20 - 1), false, 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			img := writeImage(t, tr, Options{Size: tc.size, Timestamp: ts})
			imagecheck.Fsck(t, img)
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			count, free := binary.LittleEndian.Uint32(b[1024:]), binary.LittleEndian.Uint32(b[1024+16:])
			used := count - free
			if used < 20000 {
				t.Fatalf("%d inodes used: not the image written", used)
			}
			if got := free >= used/4; got != tc.wantSpare {
				t.Errorf("%d MiB: %d of %d inodes free, %d used: a quarter free is %v, want %v", tc.size>>20, free, count, used, got, tc.wantSpare)
			}
			if free < tc.minFree {
				t.Errorf("%d MiB: %d of %d inodes free, want at least %d", tc.size>>20, free, count, tc.minFree)
			}
		})
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "small.img"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var small *TooSmallError
	if err := Write(f, tr, Options{Size: bare - 1<<20, Timestamp: ts}); !errors.As(err, &small) || small.Needed != bare {
		t.Errorf("one MiB below %d MiB: %v, want a TooSmallError needing %d MiB", bare>>20, err, bare>>20)
	}
}
