package imagebuilder_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
)

// isoRRPaths reads an ISO 9660 image's directory tree from its bytes, by
// the Rock Ridge names of its records (NM entries, in the System Use Area
// and the continuation areas its CE entries point to), and returns every
// path in it.
func isoRRPaths(img []byte) ([]string, error) {
	const bs = 2048
	le := binary.LittleEndian
	if len(img) < 17*bs || string(img[16*bs+1:16*bs+6]) != "CD001" {
		return nil, fmt.Errorf("no primary volume descriptor")
	}
	block := func(loc, off, n uint32) ([]byte, error) {
		start := int64(loc)*bs + int64(off)
		if start+int64(n) > int64(len(img)) {
			return nil, fmt.Errorf("block %d offset %d length %d is past the image's end", loc, off, n)
		}
		return img[start : start+int64(n)], nil
	}
	// name collects the NM entries of a record's System Use entries.
	name := func(sua []byte) (string, error) {
		var nm []byte
		continues := false
		for hops := 0; ; hops++ {
			var next []byte
			for j := 0; j+4 <= len(sua) && sua[j+2] >= 4 && j+int(sua[j+2]) <= len(sua); j += int(sua[j+2]) {
				e := sua[j : j+int(sua[j+2])]
				switch string(e[:2]) {
				case "NM":
					nm = append(nm, e[5:]...)
					continues = e[4]&1 != 0
				case "CE":
					if len(e) < 28 {
						return "", fmt.Errorf("short CE entry")
					}
					if int(le.Uint32(e[12:]))+int(le.Uint32(e[20:])) > bs {
						return "", fmt.Errorf("continuation area crosses a block")
					}
					var err error
					if next, err = block(le.Uint32(e[4:]), le.Uint32(e[12:]), le.Uint32(e[20:])); err != nil {
						return "", err
					}
				}
			}
			if next == nil || hops > 16 {
				break
			}
			sua = next
		}
		if continues {
			return "", fmt.Errorf("name %q: its last NM entry continues", nm)
		}
		return string(nm), nil
	}
	var paths []string
	var walk func(dir string, loc, size uint32, depth int) error
	walk = func(dir string, loc, size uint32, depth int) error {
		if depth > 64 {
			return fmt.Errorf("%s: directories too deep", dir)
		}
		b, err := block(loc, 0, (size+bs-1)/bs*bs)
		if err != nil {
			return err
		}
		for blk := 0; blk < len(b); blk += bs {
			for i := blk; i < blk+bs && b[i] != 0; i += int(b[i]) {
				rec := b[i : i+int(b[i])]
				nl := int(rec[32])
				if nl == 1 && rec[33] <= 1 {
					continue // . and ..
				}
				n, err := name(rec[33+nl+(nl+1)%2:])
				if err != nil {
					return fmt.Errorf("%s: %w", dir, err)
				}
				if n == "" {
					return fmt.Errorf("%s: record %q has no Rock Ridge name", dir, rec[33:33+nl])
				}
				p := path.Join(dir, n)
				paths = append(paths, p)
				if rec[25]&2 != 0 {
					if err := walk(p, le.Uint32(rec[2:]), le.Uint32(rec[10:]), depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	root := img[16*bs+156:]
	return paths, walk("/", le.Uint32(root[2:]), le.Uint32(root[10:]), 0)
}

// TestISOLongNames builds ISO 9660 data images of files and directories
// with long names, whose Rock Ridge names need continuation areas (from
// about 137 bytes), and reads every name back from the image's bytes, and
// with xorriso where installed.
func TestISOLongNames(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	tests := []struct {
		name  string
		paths []string // files; their directories are made too
	}{
		{"one of 150 bytes", []string{long("a", 150)}},
		{"one of 255 bytes", []string{long("a", 255)}},
		{"around the limit", []string{long("a", 135), long("b", 136), long("c", 137), long("d", 138)}},
		{"many in a directory", func() []string {
			var ps []string
			for i := range 30 {
				ps = append(ps, "d/"+long(string(rune('A'+i%26)), 140+i*3)+fmt.Sprint(i))
			}
			return ps
		}()},
		{"long directories", []string{long("d", 200) + "/" + long("e", 180), long("d", 200) + "/" + long("f", 255) + "/g", "short/" + long("h", 160)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			want := map[string]bool{}
			for _, p := range tt.paths {
				for d := path.Dir(p); d != "."; d = path.Dir(d) {
					want["/"+d] = true
				}
				want["/"+p] = true
				if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, p), []byte(p), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			img := filepath.Join(t.TempDir(), "data.iso")
			if err := imagebuilder.BuildDataImage(dir, img, imagebuilder.DataISO9660); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(img)
			if err != nil {
				t.Fatal(err)
			}
			got, err := isoRRPaths(b)
			if err != nil {
				t.Fatalf("reading the image back: %v", err)
			}
			wantList := slices.Sorted(func(yield func(string) bool) {
				for p := range want {
					if !yield(p) {
						return
					}
				}
			})
			slices.Sort(got)
			if !slices.Equal(got, wantList) {
				t.Errorf("the image holds\n%q\nwant\n%q", got, wantList)
			}
			t.Run("xorriso", func(t *testing.T) {
				x, err := exec.LookPath("xorriso")
				if err != nil {
					t.Skip("xorriso not installed")
				}
				out, err := exec.Command(x, "-abort_on", "SORRY", "-indev", img, "-find", "/").CombinedOutput()
				if err != nil {
					t.Fatalf("xorriso: %v\n%s", err, out)
				}
				var xs []string
				for _, l := range strings.Split(string(out), "\n") {
					if strings.HasPrefix(l, "'/") && l != "'/'" {
						xs = append(xs, strings.Trim(l, "'"))
					}
				}
				slices.Sort(xs)
				if !slices.Equal(xs, wantList) {
					t.Errorf("xorriso reads\n%q\nwant\n%q", xs, wantList)
				}
			})
		})
	}
}
