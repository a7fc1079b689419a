package imagebuilder

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
	"github.com/smolvmm/smolvmm/service"
)

// bombSet writes, in dir, a .tgz of a rescue set and n members of size
// bytes of 'A' (a few hundred KiB compressed), and returns its path.
func bombSet(t *testing.T, dir string, n int, size int64) string {
	t.Helper()
	p := filepath.Join(dir, "bomb.tgz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zw, _ := gzip.NewWriterLevel(f, gzip.BestSpeed)
	tw := tar.NewWriter(zw)
	for _, e := range testsets.Rescue(1_500_000) {
		e.Hdr.Size = int64(len(e.Data))
		if err := tw.WriteHeader(&e.Hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(e.Data); err != nil {
			t.Fatal(err)
		}
	}
	as := bytes.Repeat([]byte{'A'}, 1<<20)
	for i := range n {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "./a" + string(rune('1'+i)), Mode: 0644, Size: size}); err != nil {
			t.Fatal(err)
		}
		for left := size; left > 0; left -= int64(len(as)) {
			if _, err := tw.Write(as[:min(left, int64(len(as)))]); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestSetDataBounded: the sets' data, held in memory, is bounded as they
// are read: by the image's size when it is fixed (Build, or
// Config.FixedSize: the "too small" error, before the image is made,
// once the data passes twice the image and 64 MiB),
// else by MaxAutoData (lowered here) or the image's size when larger
// (up's, which may grow). Unbounded, a 458 KiB .tar.xz of
// three 1 GiB members of 'A' read for 39 s and took 5.5 GB before the
// 16 MiB image found itself too small.
func TestSetDataBounded(t *testing.T) {
	dir := t.TempDir()
	bomb := bombSet(t, dir, 3, 256<<20)
	svc, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func(was int64) { autoDataLimit = was }(autoDataLimit)
	autoDataLimit = 32 << 20
	tests := []struct {
		name      string
		sizeMB    int
		fixed     bool
		build     bool // Build, else BuildTree
		tooSmall  bool // a *ext2.TooSmallError, else ErrTooMuchData
		wantLimit int64
	}{
		{name: "Build of 16 MiB", sizeMB: 16, build: true, tooSmall: true, wantLimit: 96 << 20},
		{name: "BuildTree, 16 MiB fixed", sizeMB: 16, fixed: true, tooSmall: true, wantLimit: 96 << 20},
		{name: "BuildTree, 16 MiB that may grow", sizeMB: 16, wantLimit: 32 << 20},
		{name: "BuildTree, 64 MiB that may grow", sizeMB: 64, wantLimit: 64 << 20},
		{name: "BuildTree, sized to content", wantLimit: 32 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "bomb.img")
			cfg := Config{Sets: []string{bomb}, Service: svc, SizeMB: tt.sizeMB, FixedSize: tt.fixed, Timestamp: 1}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			if tt.build {
				err = Build(context.Background(), cfg, out)
			} else {
				_, err = BuildTree(context.Background(), &cfg)
			}
			runtime.ReadMemStats(&after)
			var small *ext2.TooSmallError
			var le *fstree.LimitError
			switch {
			case !errors.As(err, &le) || le.Limit != tt.wantLimit:
				t.Fatalf("%v; want an *fstree.LimitError of limit %d", err, tt.wantLimit)
			case tt.tooSmall && (!errors.As(err, &small) || small.Size != int64(tt.sizeMB)<<20 || small.Needed < 97<<20):
				t.Errorf("%v; want a *ext2.TooSmallError for 16 MiB needing 97 or more", err)
			case !tt.tooSmall && !errors.Is(err, ErrTooMuchData):
				t.Errorf("%v; want ErrTooMuchData", err)
			}
			if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 384<<20 {
				t.Errorf("refusing 768 MiB of data allocated %d MiB, want under 384 (the data kept grows by doubling)", alloc>>20)
			}
			if left, _ := os.ReadDir(filepath.Dir(out)); len(left) > 0 {
				t.Errorf("the build left %s in the image's directory", left[0].Name())
			}
		})
	}
	// A set within the limits still builds.
	out := filepath.Join(t.TempDir(), "rescue.img")
	small := bombSet(t, t.TempDir(), 1, 4<<20)
	if err := Build(context.Background(), Config{Sets: []string{small}, Service: svc, SizeMB: 16, Timestamp: 1}, out); err != nil {
		t.Errorf("Build of a set of 16 MiB that holds 6 MiB: %v", err)
	}
}

// TestUpSizeAboveAutoData: an image of a size given that may grow (up's:
// the service's size=, Config.FixedSize not set) reads the sets up to
// that size when it is above MaxAutoData (lowered here), and refuses
// them, saying so, only past it. A service of size=4096 whose sets held
// 2.5 GiB was refused with ErrTooMuchData at 2 GiB, its error saying an
// image of a size given holds up to its size.
func TestUpSizeAboveAutoData(t *testing.T) {
	svc, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	defer func(was int64) { autoDataLimit = was }(autoDataLimit)
	autoDataLimit = 32 << 20
	set := bombSet(t, t.TempDir(), 3, 16<<20) // 48 MiB of data and a rescue set
	tests := []struct {
		name   string
		sizeMB int
		want   string // the error's text, "" for an image written
	}{
		{name: "size holds the sets", sizeMB: 128},
		{name: "sets pass the size", sizeMB: 40, want: "the sets hold more file data than is read into memory to build the image (at most 40 MiB, the image's size): "},
		{name: "sized to content", want: "the sets hold more file data than is read into memory to build the image (at most 32 MiB, or for an image of a larger size given, its size): "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Sets: []string{set}, Service: svc, SizeMB: tt.sizeMB, Timestamp: 1}
			tree, err := BuildTree(context.Background(), &cfg)
			if tt.want != "" {
				var le *fstree.LimitError
				if !errors.Is(err, ErrTooMuchData) || !errors.As(err, &le) || le.Limit != max(32, int64(tt.sizeMB))<<20 || !strings.HasPrefix(err.Error(), tt.want) {
					t.Fatalf("%v; want ErrTooMuchData wrapping a LimitError, its error starting %q", err, tt.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildTree of 48 MiB of data for an image of %d MiB that may grow: %v", tt.sizeMB, err)
			}
			out := filepath.Join(t.TempDir(), "up.img")
			if err := WriteImageContext(context.Background(), tree, cfg, out); err != nil {
				t.Fatal(err)
			}
			if st, err := os.Stat(out); err != nil || st.Size() != int64(tt.sizeMB)<<20 {
				t.Errorf("%s: %v, want %d MiB", out, err, tt.sizeMB)
			}
		})
	}
}
