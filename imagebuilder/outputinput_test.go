package imagebuilder_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

// TestOutputIsInput: every builder refuses an image that is one of its
// own inputs (a set file, also through a link) or lies inside an input
// directory (a set directory, a data image's directory), naming both,
// and leaves the input as it was. Without it a set was replaced by the
// image made of it, and a directory's image was read into the next
// image built there, growing with each build.
func TestOutputIsInput(t *testing.T) {
	svc := loadService(t, "rescue", "")
	type paths struct{ set, setDir, data string }
	for _, tc := range []struct {
		name  string
		input func(p paths) string // the input the error names
		out   func(p paths) string
		build func(p paths, out string) error
		inDir bool
	}{
		{"Build over its set", func(p paths) string { return p.set }, func(p paths) string { return p.set },
			func(p paths, out string) error {
				return imagebuilder.Build(context.Background(), imagebuilder.Config{Sets: []string{p.set}, Service: svc, Force: true}, out)
			}, false},
		{"Build over a link to its set", func(p paths) string { return p.set }, func(p paths) string {
			l := filepath.Join(filepath.Dir(p.setDir), "link.img")
			if err := os.Symlink(p.set, l); err != nil {
				t.Fatal(err)
			}
			return l
		}, func(p paths, out string) error {
			return imagebuilder.Build(context.Background(), imagebuilder.Config{Sets: []string{p.set}, Service: svc, Force: true}, out)
		}, false},
		{"Build inside its set directory", func(p paths) string { return p.setDir }, func(p paths) string { return filepath.Join(p.setDir, "root.img") },
			func(p paths, out string) error {
				return imagebuilder.Build(context.Background(), imagebuilder.Config{Sets: []string{p.setDir}, Service: svc, Force: true}, out)
			}, true},
		{"WriteImage over its set", func(p paths) string { return p.set }, func(p paths) string { return p.set },
			func(p paths, out string) error {
				return imagebuilder.WriteImage(fstree.New(), imagebuilder.Config{Sets: []string{p.set}, Service: svc, Force: true}, out)
			}, false},
		{"WriteImage in a subdirectory of its set directory", func(p paths) string { return p.setDir }, func(p paths) string { return filepath.Join(p.setDir, "sub", "root.img") },
			func(p paths, out string) error {
				return imagebuilder.WriteImage(fstree.New(), imagebuilder.Config{Sets: []string{p.setDir}, Service: svc, Force: true}, out)
			}, true},
		{"BuildDataImage inside its directory", func(p paths) string { return p.data }, func(p paths) string { return filepath.Join(p.data, "data.img") },
			func(p paths, out string) error {
				return imagebuilder.BuildDataImage(p.data, out, imagebuilder.DataFAT32)
			}, true},
		{"BuildDataImageContext through a linked directory", func(p paths) string { return p.data }, func(p paths) string {
			l := filepath.Join(filepath.Dir(p.setDir), "datalink")
			if err := os.Symlink(p.data, l); err != nil {
				t.Fatal(err)
			}
			return filepath.Join(l, "sub", "data.img")
		}, func(p paths, out string) error {
			return imagebuilder.BuildDataImageContext(context.Background(), p.data, out, imagebuilder.DataISO9660, 0)
		}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			p := paths{set: filepath.Join(root, "sets", "rescue.tar"), setDir: filepath.Join(root, "sets"), data: filepath.Join(root, "share")}
			for _, d := range []string{p.setDir, filepath.Join(p.setDir, "sub"), filepath.Join(p.data, "sub")} {
				if err := os.MkdirAll(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			set, err := testsets.Bytes(testsets.Rescue(10_000), "tar")
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p.set, set, 0o644); err != nil {
				t.Fatal(err)
			}
			out := tc.out(p)
			err = tc.build(p, out)
			var oe *imagebuilder.OutputIsInputError
			if !errors.Is(err, imagebuilder.ErrOutputIsInput) || !errors.As(err, &oe) {
				t.Fatalf("err = %v, want an OutputIsInputError", err)
			}
			if oe.Image != out || oe.Input != tc.input(p) || oe.InDir != tc.inDir {
				t.Errorf("error %+v, want image %s, input %s, in the directory %v", *oe, out, tc.input(p), tc.inDir)
			}
			if msg := err.Error(); !strings.Contains(msg, out) || !strings.Contains(msg, tc.input(p)) {
				t.Errorf("error %q does not name both %s and %s", msg, out, tc.input(p))
			}
			if got, err := os.ReadFile(p.set); err != nil || !bytes.Equal(got, set) {
				t.Errorf("set file changed: %q, %v", got, err)
			}
			if _, err := os.Stat(filepath.Join(p.data, "data.img")); err == nil {
				t.Error("data image written inside its directory")
			}
		})
	}
}

// TestOutputBesideInput: an image whose path only starts like an input
// directory's (sets.img beside sets/) is no input.
func TestOutputBesideInput(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "share")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := imagebuilder.BuildDataImage(dir, dir+".img", imagebuilder.DataFAT32); err != nil {
		t.Fatal(err)
	}
	if err := imagebuilder.CheckOutputNotInput(filepath.Join(root, "x.img"), dir, filepath.Join(root, "missing")); err != nil {
		t.Fatal(err)
	}
}

// TestOutputInService: Build and WriteImage refuse an image among what
// the build of a host service reads (its etc/, postinst/, service.conf,
// its services directory's common/), naming both, and write nothing
// there. Without it an image in etc/ (with Force) was read into /etc of
// the next image built, which grew with each build; one over
// service.conf replaced it. An image elsewhere in the service's
// directory is taken.
func TestOutputInService(t *testing.T) {
	root := t.TempDir()
	sd := filepath.Join(root, "svcs")
	for _, d := range []string{"t/etc/sub", "t/postinst", "common"} {
		if err := os.MkdirAll(filepath.Join(sd, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	conf := []byte("sets=rescue\n")
	for name, b := range map[string][]byte{"t/etc/rc": []byte("sh\n"), "t/service.conf": conf} {
		if err := os.WriteFile(filepath.Join(sd, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := testsets.Bytes(testsets.Rescue(10_000), "tar")
	if err != nil {
		t.Fatal(err)
	}
	setPath := filepath.Join(root, "rescue.tar")
	if err := os.WriteFile(setPath, set, 0o644); err != nil {
		t.Fatal(err)
	}
	svc := loadService(t, "t", sd)
	cfg := imagebuilder.Config{Sets: []string{setPath}, Service: svc, Force: true}
	builders := map[string]func(out string) error{
		"Build":      func(out string) error { return imagebuilder.Build(context.Background(), cfg, out) },
		"WriteImage": func(out string) error { return imagebuilder.WriteImage(fstree.New(), cfg, out) },
	}
	for _, tc := range []struct {
		name, out string
		input     string // the input named, "" when taken
		inDir     bool
	}{
		{"in etc/", "t/etc/root.img", "t/etc", true},
		{"under etc/", "t/etc/sub/root.img", "t/etc", true},
		{"in postinst/", "t/postinst/root.img", "t/postinst", true},
		{"service.conf", "t/service.conf", "t/service.conf", false},
		{"in common/", "common/root.img", "common", true},
		{"in the service's directory", "t/root.img", "", false},
	} {
		for bname, build := range builders {
			t.Run(bname+" "+tc.name, func(t *testing.T) {
				out := filepath.Join(sd, tc.out)
				err := build(out)
				if tc.input == "" {
					if err != nil {
						t.Fatalf("%v, want the image taken", err)
					}
					return
				}
				var oe *imagebuilder.OutputIsInputError
				if !errors.Is(err, imagebuilder.ErrOutputIsInput) || !errors.As(err, &oe) {
					t.Fatalf("err = %v, want an OutputIsInputError", err)
				}
				if want := filepath.Join(sd, tc.input); oe.Image != out || oe.Input != want || oe.InDir != tc.inDir {
					t.Errorf("error %+v, want image %s, input %s, in the directory %v", *oe, out, want, tc.inDir)
				}
				if tc.inDir {
					if _, err := os.Stat(out); err == nil {
						t.Errorf("%s was written", out)
					}
				}
				if got, err := os.ReadFile(filepath.Join(sd, "t/service.conf")); err != nil || !bytes.Equal(got, conf) {
					t.Errorf("service.conf changed: %q, %v", got, err)
				}
			})
		}
	}
	if err := imagebuilder.CheckOutputNotInService(filepath.Join(sd, "common/x.img"), loadService(t, "rescue", "")); err != nil {
		t.Errorf("embedded service: %v, want nothing of the host read", err)
	}
	if err := imagebuilder.CheckOutputNotInService(filepath.Join(sd, "common/x.img"), nil); err != nil {
		t.Errorf("no service: %v", err)
	}
}

// TestBuildDataImageTemporary: a temporary image inside the directory it
// holds (run --share /tmp, TMPDIR in the directory shared), new and
// empty while the directory is read, is left out of the image rather
// than refused; one holding anything is refused still, and so is an
// empty one given to BuildDataImageContext. run --share /tmp was refused.
// The run's other temporaries named to leave out (an earlier share's
// image, in a directory of its own) are left out with what they hold:
// run --share DIR/a --share DIR copied the first image into the second.
func TestBuildDataImageTemporary(t *testing.T) {
	for _, tc := range []struct {
		name      string
		content   []byte // the output's, before the build; nil: none
		temporary bool
		leaveOut  bool // an earlier image's directory, tmp/run-1, named
		refused   bool
	}{
		{"empty", []byte{}, true, false, false},
		{"absent", nil, true, false, false},
		{"absent, an earlier image left out", nil, true, true, false},
		{"holding a previous image", []byte("an image"), true, false, true},
		{"empty, not temporary", []byte{}, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(filepath.Join(dir, "tmp"), 0o755); err != nil {
				t.Fatal(err)
			}
			out := filepath.Join(dir, "tmp", "smolvmm-share-1.img")
			if tc.content != nil {
				if err := os.WriteFile(out, tc.content, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var leaveOut []string
			if tc.leaveOut {
				earlier := filepath.Join(dir, "tmp", "run-1")
				if err := os.Mkdir(earlier, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(earlier, "share.img"), []byte("an earlier image"), 0o600); err != nil {
					t.Fatal(err)
				}
				leaveOut = append(leaveOut, earlier)
			}
			var err error
			if tc.temporary {
				err = imagebuilder.BuildDataImageTemporary(context.Background(), dir, out, imagebuilder.DataFAT32, 0, leaveOut...)
			} else {
				err = imagebuilder.BuildDataImageContext(context.Background(), dir, out, imagebuilder.DataFAT32, 0)
			}
			if tc.refused {
				if !errors.Is(err, imagebuilder.ErrOutputIsInput) {
					t.Errorf("err = %v, want an OutputIsInputError", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fsys := imageFS(t, out)
			var names []string
			for _, d := range []string{".", "tmp"} {
				es, err := fsys.ReadDir(d)
				if err != nil {
					t.Fatal(err)
				}
				for _, e := range es {
					names = append(names, d+" "+strings.ToLower(e.Name()))
				}
			}
			if got, want := strings.Join(names, ", "), ". f, . tmp"; got != want {
				t.Errorf("image holds %s, want %s", got, want)
			}
		})
	}
	if err := imagebuilder.BuildDataImageTemporary(context.Background(), t.TempDir(), filepath.Join(t.TempDir(), "x.img"), imagebuilder.DataFAT32, 0, filepath.Join(t.TempDir(), "gone")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a temporary to leave out that does not exist: err = %v, want one matching fs.ErrNotExist", err)
	}
}
