package ext2

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

// TestWriteTimestampRange: a Timestamp outside fstree.MinTime..MaxTime
// is refused, naming the field and the range, before a byte of the image
// is written (a file given keeps what it held); the ends of the range are
// written as NetBSD reads them back, signed. It was stored truncated to 32
// bits: 2^31+100 as 0x80000064, which NetBSD reads as 1901.
func TestWriteTimestampRange(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	const rangeMsg = "is outside the times ext2 stores, -2147483648 (1901-12-13T20:45:52Z) to 2147483647 (2038-01-19T03:14:07Z)"
	for _, tc := range []struct {
		ts   int64
		want string // the inode's mtime as debugfs shows it, or "" if refused
	}{
		{fstree.MaxTime, "mtime: 0x7fffffff"},
		{fstree.MinTime, "mtime: 0x80000000"},
		{fstree.MaxTime + 1, ""},
		{1<<31 + 100, ""},
		{1 << 32, ""},
		{fstree.MinTime - 1, ""},
		{math.MaxInt64, ""},
		{math.MinInt64, ""},
	} {
		t.Run(fmt.Sprint(tc.ts), func(t *testing.T) {
			tr := fstree.New()
			mustPut(t, tr, "f", fstree.NewFile(0o644, []byte("x")))
			img := filepath.Join(t.TempDir(), "root.img")
			old := []byte("an image the refusal must leave alone")
			if err := os.WriteFile(img, old, 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(img, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = Write(f, tr, Options{Size: 4 << 20, Timestamp: tc.ts, TimestampSet: true})
			f.Close()
			if tc.want == "" {
				if want := fmt.Sprintf("Timestamp %d %s", tc.ts, rangeMsg); err == nil || err.Error() != want {
					t.Fatalf("got %v, want %q", err, want)
				}
				if got, err := os.ReadFile(img); err != nil || !bytes.Equal(got, old) {
					t.Errorf("the file given was changed by the refused Write (%v): %d bytes", err, len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			imagecheck.Fsck(t, img)
			if st := imagecheck.Debugfs(t, img, "stat /f"); !strings.Contains(st, tc.want) {
				t.Errorf("stat /f: want %q in\n%s", tc.want, st)
			}
		})
	}
}
