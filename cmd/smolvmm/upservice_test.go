package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/rebuild"
)

// writeUpService writes service name into dir, etc/rc holding rc, its
// files and directories dated an hour ago: a service made before its
// image.
func writeUpService(t *testing.T, dir, name, rc string) {
	t.Helper()
	p := filepath.Join(dir, name, "etc", "rc")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(rc), 0o644); err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-time.Hour)
	for _, q := range []string{p, filepath.Dir(p), filepath.Join(dir, name)} {
		os.Chtimes(q, old, old)
	}
}

// guestWrites writes to image as a running guest does: its mtime moves
// past whatever was edited before. A clock tick (up to 10 ms) passes
// first, or the write may carry the edit's time.
func guestWrites(t *testing.T, image string) {
	t.Helper()
	time.Sleep(20 * time.Millisecond)
	f, err := os.OpenFile(image, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("written by the guest"), 100); err != nil {
		t.Fatal(err)
	}
}

// TestUpServiceFilesDecide: for a --service-dir service, what the image
// was built from (its stamp) decides, not its mtime, which the guest's
// writes move: etc/rc edited while the VM ran was older than the image
// when it stopped, and up booted the old image as "up to date". Only
// what enters the image counts: an image or a README in the service's
// directory (cd svcdir/web && up --service-dir .. web) rebuilt the image,
// and lost what the guest wrote, on every run.
func TestUpServiceFilesDecide(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, dir, image string)
		calls  string
	}{
		{"nothing changed", func(*testing.T, string, string) {}, "service fetch run"},
		{"the guest wrote to the image", func(t *testing.T, _, image string) { guestWrites(t, image) }, "service fetch run"},
		{"etc/rc edited while the guest ran", func(t *testing.T, dir, image string) {
			os.WriteFile(filepath.Join(dir, "web", "etc", "rc"), []byte("httpd -s\n"), 0o644)
			guestWrites(t, image)
		}, "service fetch build run"},
		{"a postinst script added while the guest ran", func(t *testing.T, dir, image string) {
			os.Mkdir(filepath.Join(dir, "web", "postinst"), 0o755)
			os.WriteFile(filepath.Join(dir, "web", "postinst", "10.sh"), []byte("echo hi\n"), 0o644)
			guestWrites(t, image)
		}, "service fetch build run"},
		{"a common directory added while the guest ran", func(t *testing.T, dir, image string) {
			os.Mkdir(filepath.Join(dir, "common"), 0o755)
			os.WriteFile(filepath.Join(dir, "common", "basicrc"), []byte("mount -a\n"), 0o644)
			guestWrites(t, image)
		}, "service fetch build run"},
		{"etc/rc touched, not changed", func(t *testing.T, dir, _ string) {
			now := time.Now().Add(time.Minute)
			os.Chtimes(filepath.Join(dir, "web", "etc", "rc"), now, now)
		}, "service fetch run"},
		{"a README written in the service's directory", func(t *testing.T, dir, _ string) {
			os.WriteFile(filepath.Join(dir, "web", "README"), []byte("notes\n"), 0o644)
		}, "service fetch run"},
	}
	for _, where := range []string{"beside", "in the service's directory"} {
		for _, tt := range tests {
			t.Run(where+"/"+tt.name, func(t *testing.T) {
				f := newFakeUp(t)
				f.load = true
				dir := t.TempDir()
				writeUpService(t, dir, "web", "httpd\n")
				image := filepath.Join(t.TempDir(), "web.img")
				if where != "beside" {
					image = filepath.Join(dir, "web", "web.img")
				}
				opts := upOptions{Service: "web", ServiceDir: dir, Image: image}
				upAgain(t, f, opts, "service fetch strip build run", "")
				tt.change(t, dir, image)
				upAgain(t, f, opts, tt.calls, "from other files of this one")
				// Once rebuilt, or not, it stays.
				upAgain(t, f, opts, "service fetch run", "")
			})
		}
	}
}

// TestUpOtherServiceSameImage: an image up built from one service is
// rebuilt for another under the same path. A --service-dir service was
// stamped with no digest, which no check heeded: up --service-dir d rescue
// then up rescue booted d's rescue, and up -i vm.img web then db booted
// web's image. A copy of the same service elsewhere is the same service.
func TestUpOtherServiceSameImage(t *testing.T) {
	type svc struct{ name, dir string } // dir "": built in; else a key of dirs
	tests := []struct {
		name        string
		first, then svc
		calls       string
	}{
		{"a service directory's rescue, then the built-in one", svc{"rescue", "d"}, svc{"rescue", ""}, "service fetch build run"},
		{"the built-in rescue, then a service directory's", svc{"rescue", ""}, svc{"rescue", "d"}, "service fetch build run"},
		{"web, then db", svc{"web", "d"}, svc{"db", "d"}, "service fetch build run"},
		{"web, then another web", svc{"web", "d"}, svc{"web", "other"}, "service fetch build run"},
		{"web, then a copy of it", svc{"web", "d"}, svc{"web", "copy"}, "service fetch run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.load = true
			dirs := map[string]string{"": ""}
			for _, k := range []string{"d", "other", "copy"} {
				dirs[k] = t.TempDir()
			}
			for _, k := range []string{"d", "copy"} {
				writeUpService(t, dirs[k], "rescue", "echo my rescue\n")
				writeUpService(t, dirs[k], "web", "httpd\n")
				writeUpService(t, dirs[k], "db", "httpd\n") // web's files, another service
			}
			writeUpService(t, dirs["other"], "web", "httpd -s\n")
			image := filepath.Join(t.TempDir(), "vm.img")
			first := upOptions{Service: tt.first.name, ServiceDir: dirs[tt.first.dir], Image: image}
			then := upOptions{Service: tt.then.name, ServiceDir: dirs[tt.then.dir], Image: image}
			upAgain(t, f, first, "service fetch strip build run", "")
			upAgain(t, f, then, tt.calls, "up built it from another service")
			upAgain(t, f, then, "service fetch run", "")
			upAgain(t, f, first, tt.calls, "up built it from another service")
		})
	}
}

// TestUpOldServiceStamp: an image stamped by an older up for a
// --service-dir service (digest "-") does not say which service built it,
// and may be another's: it is rebuilt once, and then kept.
func TestUpOldServiceStamp(t *testing.T) {
	f := newFakeUp(t)
	f.load = true
	dir := t.TempDir()
	writeUpService(t, dir, "web", "httpd\n")
	opts := upOptions{Service: "web", ServiceDir: dir, Image: filepath.Join(t.TempDir(), "web.img")}
	res, err := up(context.Background(), io.Discard, f.deps(), opts)
	if err != nil {
		t.Fatal(err)
	}
	stamp := string(rebuild.ReleaseStamp(res.Release, res.Image))
	b, err := os.ReadFile(stamp)
	if err != nil {
		t.Fatal(err)
	}
	fields := strings.Fields(string(b))
	fields[0] = rebuild.FilesDigest
	if err := os.WriteFile(stamp, []byte(strings.Join(fields, " ")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	upAgain(t, f, opts, "service fetch build run", "or did not record which")
	upAgain(t, f, opts, "service fetch run", "")
}

// TestUpServiceEditedDuringFetch: the service's files are read by the
// build after the download, and the digest recorded is theirs then. It
// was taken before the download: etc/rc edited meanwhile was built in
// under the old digest, so the next up rebuilt for nothing, and one after
// the edit was undone booted the edited image as up to date; an up whose
// image was current booted it though etc/rc had changed. The sets and
// size are those loaded before the download: a service.conf edited
// during it is built in by the next up.
func TestUpServiceEditedDuringFetch(t *testing.T) {
	rc := func(text string) func(t *testing.T, dir string) {
		return func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "web", "etc", "rc"), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name   string
		during int // the up (0, 1) during whose download edit runs
		edit   func(t *testing.T, dir string)
		wantRc string // what the build read
		after  func(t *testing.T, dir string)
		then   string // the calls of the up after it
	}{
		{"etc/rc, during the first up", 0, rc("httpd -s\n"), "httpd -s\n", func(*testing.T, string) {}, "service fetch run"},
		{"etc/rc, during the first up, undone after", 0, rc("httpd -s\n"), "httpd -s\n", rc("httpd\n"), "service fetch build run"},
		{"etc/rc, during an up of a current image", 1, rc("httpd -s\n"), "httpd -s\n", func(*testing.T, string) {}, "service fetch run"},
		{"service.conf, during the first up", 0, func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "web", "service.conf"), []byte("size=20\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "httpd\n", func(*testing.T, string) {}, "service fetch build run"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.load = true
			dir := t.TempDir()
			writeUpService(t, dir, "web", "httpd\n")
			opts := upOptions{Service: "web", ServiceDir: dir, Image: filepath.Join(t.TempDir(), "web.img")}
			edit := func() { tt.edit(t, dir) }
			if tt.during == 0 {
				f.duringFetch = edit
			}
			upAgain(t, f, opts, "service fetch strip build run", "")
			f.duringFetch = nil
			if tt.during == 1 {
				f.duringFetch = edit
				upAgain(t, f, opts, "service fetch build run", "from other files of this one")
				f.duringFetch = nil
			}
			if got := f.rcs[len(f.rcs)-1]; got != tt.wantRc {
				t.Errorf("the build read etc/rc %q, want %q", got, tt.wantRc)
			}
			tt.after(t, dir)
			upAgain(t, f, opts, tt.then, "from other files of this one")
			upAgain(t, f, opts, "service fetch run", "")
		})
	}
}

// TestUpWarnsIgnoredPostinstWhenFresh: a file in postinst/ that is no
// script never runs; the build warned of it, but an up whose image was
// up to date said nothing (docs/images.md: "one warning names them"). It warns
// there too, once, before the step's summary.
func TestUpWarnsIgnoredPostinstWhenFresh(t *testing.T) {
	const warning = "smolvmm up: warning: service web: postinst/README not run: postinst/ runs only its *.sh scripts\n"
	tests := []struct {
		name  string
		files []string // in postinst/
		want  int      // warnings
	}{
		{"a README beside a script", []string{"10.sh", "README"}, 1},
		{"scripts and a dotfile", []string{"10.sh", ".10.sh.swp"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeUp(t)
			f.load = true
			dir := t.TempDir()
			writeUpService(t, dir, "web", "httpd\n")
			p := filepath.Join(dir, "web", "postinst")
			if err := os.Mkdir(p, 0o755); err != nil {
				t.Fatal(err)
			}
			old := time.Now().Add(-time.Hour)
			for _, name := range tt.files {
				if err := os.WriteFile(filepath.Join(p, name), []byte("true\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				os.Chtimes(filepath.Join(p, name), old, old)
			}
			os.Chtimes(p, old, old)
			opts := upOptions{Service: "web", ServiceDir: dir, Image: filepath.Join(t.TempDir(), "web.img")}
			if _, err := up(context.Background(), io.Discard, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			f.calls = nil
			var log bytes.Buffer
			if _, err := up(context.Background(), &log, f.deps(), opts); err != nil {
				t.Fatal(err)
			}
			out := log.String()
			if got := strings.Join(f.calls, " "); got != "service fetch run" {
				t.Fatalf("calls %q, want the image up to date\n%s", got, out)
			}
			if got := strings.Count(out, "warning:"); got != tt.want || tt.want > 0 && (!strings.Contains(out, warning) || strings.Index(out, warning) > strings.Index(out, "is up to date")) {
				t.Errorf("%d warnings, want %d: %q, before the summary\n%s", got, tt.want, warning, out)
			}
		})
	}
}
