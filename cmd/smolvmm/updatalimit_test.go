package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/service"
)

// TestUpTooMuchDataAdvice: up passed imagebuilder.ErrTooMuchData on with
// no word of what raises the limit, which for up is the service's size=
// (an image of a larger size reads more of the sets), or mkimg's -m.
func TestUpTooMuchDataAdvice(t *testing.T) {
	dir := t.TempDir()
	write := func(p, content string) {
		t.Helper()
		p = filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("big/etc/rc", "sh\n")
	write("big/service.conf", "sets=base\nsize=4096\n")
	write("plain/etc/rc", "sh\n")
	cause := fmt.Errorf("%w (at most 4096 MiB, the image's size): the files read so far hold more", imagebuilder.ErrTooMuchData)
	const lib = "the sets hold more file data than is read into memory to build the image (at most 4096 MiB, the image's size): the files read so far hold more"
	for _, tc := range []struct{ service, dir, want string }{
		{"big", dir, lib + " (give the service a larger size= in " + filepath.Join(dir, "big", "service.conf") + ", or build with mkimg -m)"},
		{"plain", dir, lib + " (give the service a larger size= in " + filepath.Join(dir, "plain", "service.conf") + ", or build with mkimg -m)"},
		{"rescue", "", lib + " (copy the built-in rescue into a --service-dir and give it a larger size= in its service.conf, or build with mkimg -m)"},
	} {
		s, err := service.Load(tc.service, tc.dir)
		if err != nil {
			t.Fatal(err)
		}
		err = tooMuchDataAdvice(cause, s)
		if err.Error() != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.service, err, tc.want)
		}
		if !errors.Is(err, imagebuilder.ErrTooMuchData) {
			t.Errorf("%s: %v does not match ErrTooMuchData", tc.service, err)
		}
	}
}
