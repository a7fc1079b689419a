package ext2

import (
	"encoding/binary"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
)

// TestWriteTimestampZero: a Timestamp of 0 given with TimestampSet is
// 1970-01-01T00:00:00Z, in the superblock and on a file without a time of
// its own, read back from the image's bytes; without TimestampSet, 0 is
// still now. A 0 was always taken for now, so an image could not be
// stamped 0 (SOURCE_DATE_EPOCH=0).
func TestWriteTimestampZero(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	for _, tc := range []struct {
		name string
		opts Options
		want int64 // -1: now
	}{
		{"zero given", Options{Timestamp: 0, TimestampSet: true}, 0},
		{"zero not given", Options{}, -1},
		{"seconds", Options{Timestamp: ts}, ts},
		{"seconds given", Options{Timestamp: ts, TimestampSet: true}, ts},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := fstree.New()
			mustPut(t, tr, "f", fstree.NewFile(0644, []byte("x")))
			tc.opts.Size = 1 << 20
			before := time.Now().Unix()
			img := writeImage(t, tr, tc.opts)
			after := time.Now().Unix()
			ok := func(got int64) bool {
				if tc.want < 0 {
					return got >= before && got <= after
				}
				return got == tc.want
			}
			imagecheck.Fsck(t, img)
			raw, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			// s_wtime, s_lastcheck and s_mkfs_time.
			for _, off := range []int{48, 64, 264} {
				if got := int64(binary.LittleEndian.Uint32(raw[1024+off:])); !ok(got) {
					t.Errorf("superblock time at %d = %d, want %d", off, got, tc.want)
				}
			}
			out := imagecheck.Debugfs(t, img, "stat /f")
			for _, field := range []string{"ctime", "atime", "mtime"} {
				m := regexp.MustCompile(`(?m)^ *` + field + `: 0x([0-9a-f]{8})`).FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("no %s in\n%s", field, out)
				}
				got, _ := strconv.ParseInt(m[1], 16, 64)
				if !ok(got) {
					t.Errorf("/f %s = %d, want %s", field, got, fmt.Sprint(tc.want))
				}
			}
		})
	}
}
