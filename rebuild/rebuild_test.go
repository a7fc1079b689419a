package rebuild

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"testing/fstest"
	"time"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/service"
)

// hostService writes the service web, a common directory and things
// beside them into a new directory, every file dated old, and returns
// the directory.
func hostService(t *testing.T, old time.Time) string {
	t.Helper()
	dir := t.TempDir()
	for p, data := range map[string]string{
		"web/etc/rc":          ". /etc/include/basicrc\nhttpd\n",
		"web/etc/httpd.conf":  "port 80\n",
		"web/service.conf":    "sets=rescue\nsize=20\n",
		"web/postinst/10.sh":  "echo hi\n",
		"web/README":          "notes\n",
		"common/basicrc":      "mount -a\n",
		"db/etc/rc":           ". /etc/include/basicrc\nhttpd\n",
		"db/etc/httpd.conf":   "port 80\n",
		"db/service.conf":     "sets=rescue\nsize=20\n",
		"db/postinst/10.sh":   "echo hi\n",
		"nocommon/web/etc/rc": "httpd\n",
	} {
		p = filepath.Join(dir, p)
		os.MkdirAll(filepath.Dir(p), 0o755)
		write(t, p, data)
	}
	filepath.Walk(dir, func(p string, _ fs.FileInfo, err error) error {
		if err == nil {
			os.Chtimes(p, old, old)
		}
		return err
	})
	return dir
}

// TestServiceDigest: the digest is of the service's name and of what
// enters its image (etc/, postinst/, service.conf, common/), by content,
// for a service of files too; it named a built-in service's files only,
// and a service of files was dated by every file of its directory.
func TestServiceDigest(t *testing.T) {
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	now := time.Now()
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		load   string // the service loaded after the change; "" is web
		same   bool
	}{
		{"nothing", func(*testing.T, string) {}, "", true},
		{"every file touched", func(t *testing.T, dir string) {
			filepath.Walk(dir, func(p string, _ fs.FileInfo, err error) error {
				if err == nil {
					os.Chtimes(p, now, now)
				}
				return err
			})
		}, "", true},
		{"a README edited", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "README"), "more notes\n") }, "", true},
		{"an image written in the service's directory", func(t *testing.T, dir string) {
			writeImage(t, filepath.Join(dir, "web", "web.img"), "image")
		}, "", true},
		{"a file beside the services", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "notes"), "x") }, "", true},
		{"etc/rc edited", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "etc", "rc"), "sh\n") }, "", false},
		{"etc/rc's mode", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "web", "etc", "rc"), 0o755) }, "", false},
		{"a file added to etc/", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "etc", "motd"), "") }, "", false},
		{"a directory added to etc/", func(t *testing.T, dir string) { os.Mkdir(filepath.Join(dir, "web", "etc", "ssh"), 0o700) }, "", false},
		{"a symlink added to etc/", func(t *testing.T, dir string) { os.Symlink("/tmp", filepath.Join(dir, "web", "etc", "tmp")) }, "", false},
		{"a postinst script edited", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "postinst", "10.sh"), "echo ho\n") }, "", false},
		{"a postinst script added", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "postinst", "20.sh"), "echo ho\n") }, "", false},
		{"a postinst script removed", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "web", "postinst", "10.sh")) }, "", false},
		// What the build does not read: a README or an editor's swap
		// file in postinst/ runs not, nor is read, even unreadable; a
		// script runs as sh's argument, whatever its mode; /etc keeps
		// the sets' mode.
		{"a README in postinst/", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "postinst", "README"), "notes\n") }, "", true},
		{"a swap file in postinst/", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "web", "postinst", ".10.sh.swp"), "swap")
		}, "", true},
		{"an unreadable file in postinst/", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "web", "postinst", "notes.txt"), "notes\n")
			os.Chmod(filepath.Join(dir, "web", "postinst", "notes.txt"), 0)
		}, "", true},
		{"a postinst script's mode", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "web", "postinst", "10.sh"), 0o755) }, "", true},
		{"etc/'s own mode", func(t *testing.T, dir string) { os.Chmod(filepath.Join(dir, "web", "etc"), 0o700) }, "", true},
		{"service.conf edited", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "web", "service.conf"), "sets=base\n") }, "", false},
		{"service.conf removed", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, "web", "service.conf")) }, "", false},
		{"a comment added to service.conf", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "web", "service.conf"), "# the web server\nsets=rescue\nsize=20\n")
		}, "", true},
		{"a common file edited", func(t *testing.T, dir string) { write(t, filepath.Join(dir, "common", "basicrc"), "mount -a -t ffs\n") }, "", false},
		{"a file moved from etc/ to common/", func(t *testing.T, dir string) {
			os.Rename(filepath.Join(dir, "web", "etc", "httpd.conf"), filepath.Join(dir, "common", "httpd.conf"))
		}, "", false},
		{"etc/rc linked to another file", func(t *testing.T, dir string) {
			write(t, filepath.Join(dir, "web", "rc.real"), ". /etc/include/basicrc\nhttpd\n")
			os.Remove(filepath.Join(dir, "web", "etc", "rc"))
			os.Symlink("../rc.real", filepath.Join(dir, "web", "etc", "rc"))
		}, "", false},
		// The same files under another name: what a guest wrote to one
		// service's image is no image of another.
		{"another service with the same files", func(*testing.T, string) {}, "db", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := hostService(t, old)
			load := func(name string) *service.Service {
				t.Helper()
				s, err := service.Load(name, dir)
				if err != nil {
					t.Fatal(err)
				}
				return s
			}
			base, err := ServiceDigest(load("web"))
			if err != nil || len(base) != 64 {
				t.Fatalf("digest %q, %v; want 64 hex digits", base, err)
			}
			tt.change(t, dir)
			name := tt.load
			if name == "" {
				name = "web"
			}
			got, err := ServiceDigest(load(name))
			if err != nil {
				t.Fatal(err)
			}
			if (got == base) != tt.same {
				t.Errorf("digest %s, before %s: want same = %v", got, base, tt.same)
			}
		})
	}

	// A linked etc/rc's file is part of the image: an edit of it, not
	// of the link, changes the digest too.
	dir := hostService(t, old)
	write(t, filepath.Join(dir, "web", "rc.real"), "httpd\n")
	os.Remove(filepath.Join(dir, "web", "etc", "rc"))
	os.Symlink("../rc.real", filepath.Join(dir, "web", "etc", "rc"))
	s, err := service.Load("web", dir)
	if err != nil {
		t.Fatal(err)
	}
	before, _ := ServiceDigest(s)
	write(t, filepath.Join(dir, "web", "rc.real"), "httpd -s\n")
	newest := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(filepath.Join(dir, "web", "rc.real"), newest, newest)
	// Where no stamp records the digest, its time dates the image.
	if at, after, err := ServiceDate(s); err != nil || after == before || !at.Equal(newest) {
		t.Errorf("linked etc/rc's file edited: ServiceDate = %v, %s, %v; want %v and not the digest %s", at, after, err, newest, before)
	}
	// A build takes the sets and size from s.Config, read by Load, and
	// the files as they are when it reads them: the digest of a loaded
	// service follows an edit of etc/rc, not one of service.conf.
	before, _ = ServiceDigest(s)
	write(t, filepath.Join(dir, "web", "service.conf"), "sets=base\n")
	if after, err := ServiceDigest(s); err != nil || after != before {
		t.Errorf("service.conf edited after Load: digest %s, %v; want %s, of the Config loaded", after, err, before)
	}
	write(t, filepath.Join(dir, "web", "rc.real"), "httpd -v\n")
	if after, err := ServiceDigest(s); err != nil || after == before {
		t.Errorf("etc/rc's file edited after Load: digest %s, %v; want other than %s", after, err, before)
	}

	// The image's /etc/rc takes the file's mode (a setuid bit too): a
	// chmod of it, not of the link, changes the digest. It hashed the
	// link's mode only.
	before, _ = ServiceDigest(s)
	if err := os.Chmod(filepath.Join(dir, "web", "rc.real"), 0o4664); err != nil {
		t.Fatal(err)
	}
	if after, err := ServiceDigest(s); err != nil || after == before {
		t.Errorf("linked etc/rc's file's mode changed: digest %s, %v; want other than %s", after, err, before)
	}
}

// TestServiceDigestCommon: a service directory without common/ gets the
// embedded one, which a smolvmm upgrade may change; the digest follows
// it. (It dated such a service by its own files' times alone.)
func TestServiceDigestCommon(t *testing.T) {
	dir := hostService(t, time.Now().Add(-time.Hour))
	s, err := service.Load("web", filepath.Join(dir, "nocommon"))
	if err != nil {
		t.Fatal(err)
	}
	embedded, err := ServiceDigest(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, common := range []fstest.MapFS{
		{"basicrc": {Data: []byte("an upgraded basicrc\n")}},
		{"basicrc": {Data: []byte("mount -a\n")}, "netrc": {Data: []byte("dhcpcd\n")}},
		{},
	} {
		up := *s
		up.Common = common
		if got, err := ServiceDigest(&up); err != nil || got == embedded {
			t.Errorf("common %v: digest %s, %v; the embedded common's gave the same", common, got, err)
		}
	}
}

// TestStamp: a stamp speaks only for the image file it was recorded for.
func TestStamp(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s Stamp, image string)
		other bool // Other(image, "v2")
	}{
		{"recorded for another digest", func(t *testing.T, s Stamp, image string) { record(t, s, image, "v1") }, true},
		{"recorded for this digest", func(t *testing.T, s Stamp, image string) { record(t, s, image, "v2") }, false},
		{"recorded without a digest", func(t *testing.T, s Stamp, image string) { record(t, s, image, FilesDigest) }, true},
		{"no stamp", func(*testing.T, Stamp, string) {}, false},
		{"image replaced after the stamp", func(t *testing.T, s Stamp, image string) {
			record(t, s, image, "v1")
			// Another file under the image's name (a copy, mkimg): even
			// with the old inode number free, its birth time differs.
			os.Remove(image)
			write(t, image, "copy")
		}, false},
		{"image written to after the stamp", func(t *testing.T, s Stamp, image string) {
			record(t, s, image, "v1")
			f, err := os.OpenFile(image, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteString("the guest's writes")
			f.Close()
		}, true},
		{"image removed", func(t *testing.T, s Stamp, image string) {
			record(t, s, image, "v1")
			os.Remove(image)
		}, false},
		{"stamp garbled", func(t *testing.T, s Stamp, image string) {
			record(t, s, image, "v1")
			write(t, string(s), "v1\n")
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			image := filepath.Join(dir, "rescue.img")
			write(t, image, "image")
			s := Stamp(filepath.Join(dir, "cache", "images", "x.service"))
			tt.setup(t, s, image)
			if got := s.Other(image, "v2"); got != tt.other {
				t.Errorf("Other = %v, want %v", got, tt.other)
			}
			// Whatever digest it names, a stamp describes the file it
			// was recorded for (up built it) as long as that file stays.
			if got, want := s.Describes(image), tt.other || tt.name == "recorded for this digest"; got != want {
				t.Errorf("Describes = %v, want %v", got, want)
			}
		})
	}
	if err := Stamp(filepath.Join(t.TempDir(), "x")).Record(filepath.Join(t.TempDir(), "none.img"), "v1", 1, ""); err == nil || !strings.Contains(err.Error(), "none.img") {
		t.Errorf("Record for a missing image: %v, want an error naming it", err)
	}
}

// TestReleaseKey: the key tells releases, ports and set lists apart.
func TestReleaseKey(t *testing.T) {
	set := func(name, sum string) fetch.File { return fetch.File{Name: name, SHA512: sum} }
	base := &fetch.Release{Version: "9.3", Arch: "i386", Sets: []fetch.File{set("rescue.tgz", "aa")}}
	for _, r := range []*fetch.Release{
		{Version: "9.3", Arch: "amd64", Sets: base.Sets},
		{Version: "10.0", Arch: "i386", Sets: base.Sets},
		{Version: "9.3", Arch: "i386", Sets: []fetch.File{set("rescue.tgz", "bb")}},
		{Version: "9.3", Arch: "i386", Sets: []fetch.File{set("rescue.tgz", "aa"), set("base.tgz", "cc")}},
	} {
		if ReleaseKey(r) == ReleaseKey(base) {
			t.Errorf("%s/%s %v has the key of %s/%s %v", r.Version, r.Arch, r.Sets, base.Version, base.Arch, base.Sets)
		}
	}
	if k := ReleaseKey(&fetch.Release{Version: "9.3", Arch: "i386", Sets: []fetch.File{set("rescue.tgz", "aa")}}); k != ReleaseKey(base) || strings.ContainsAny(k, " \t\n") {
		t.Errorf("the same release has keys %q and %q", k, ReleaseKey(base))
	}
}

func TestReleaseStamp(t *testing.T) {
	cache := t.TempDir()
	r := &fetch.Release{Kernel: fetch.File{Path: filepath.Join(cache, "9.3", "i386", "kernel", "netbsd-GENERIC.gz")}}
	dir := t.TempDir()
	t.Chdir(dir)
	a := ReleaseStamp(r, "rescue.img")
	if want := filepath.Join(cache, "9.3", "i386", "images"); filepath.Dir(string(a)) != want {
		t.Errorf("stamp %s, want one in %s", a, want)
	}
	if b := ReleaseStamp(r, filepath.Join(dir, "rescue.img")); b != a {
		t.Errorf("the same image by its absolute path has stamp %s, by its relative one %s", b, a)
	}
	if c := ReleaseStamp(r, "base.img"); c == a {
		t.Errorf("two images share the stamp %s", a)
	}
}

func TestImageCheck(t *testing.T) {
	past := time.Now().Add(-time.Hour)
	future := time.Now().Add(time.Hour)
	tests := []struct {
		name  string
		setup func(t *testing.T, im *Image)
		want  Verdict
	}{
		{"newer than the service and its sets", func(t *testing.T, im *Image) { im.ServiceTime = past }, Fresh},
		{"built-in service, sets older", func(t *testing.T, im *Image) {}, Fresh},
		{"missing", func(t *testing.T, im *Image) { os.Remove(im.Path) }, Missing},
		{"service edited since", func(t *testing.T, im *Image) { im.ServiceTime = future }, Older},
		{"a set newer", func(t *testing.T, im *Image) { os.Chtimes(im.Sets[1], future, future) }, Older},
		{"a set gone", func(t *testing.T, im *Image) { os.Remove(im.Sets[0]) }, Fresh},
		{"built from another built-in service", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.Digest = "v2"
		}, ServiceChanged},
		{"built from another built-in service, and a set newer", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.Digest = "v2"
			os.Chtimes(im.Sets[0], future, future)
		}, ServiceChanged},
		{"built from this built-in service", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v2")
			im.Digest = "v2"
		}, Fresh},
		{"a service of files has no stamp to heed", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.ServiceTime = past
		}, Fresh},
		// A stamp that names no service (an older up's for a service of
		// files) does not tell which one built the image: up
		// --service-dir d rescue, then up rescue, booted d's image.
		{"stamped without a digest, now one to compare", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			im.Digest = "v2"
		}, ServiceChanged},
		// The stamp's digest decides, not the image's mtime, which the
		// guest's writes move: an edit made while the guest ran was
		// older than the image, and the old image booted.
		{"service edited, image written to since", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.Digest = "v2"
			im.ServiceTime = past
		}, ServiceChanged},
		{"service touched, not changed", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.Digest = "v1"
			im.ServiceTime = future
		}, Fresh},
		{"service touched, not changed, a set newer", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.Digest = "v1"
			im.ServiceTime = future
			os.Chtimes(im.Sets[0], future, future)
		}, Older},
		// Without a stamp that describes the image, its dates decide.
		{"no stamp, a digest, service newer", func(t *testing.T, im *Image) {
			im.Digest = "v1"
			im.ServiceTime = future
		}, Older},
		{"stamp of another file, a digest, service newer", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			os.Remove(im.Path)
			writeImage(t, im.Path, "the user's own image")
			im.Digest = "v1"
			im.ServiceTime = future
		}, Older},
		// A fresh file that is no ext2 image (a kernel written there:
		// kstrip -o rescue.img) was called up to date and booted as ld0.
		{"not an ext2 image", func(t *testing.T, im *Image) { write(t, im.Path, "\x7fELF a kernel") }, NotImage},
		{"not an ext2 image, and older", func(t *testing.T, im *Image) {
			write(t, im.Path, "\x7fELF a kernel")
			im.ServiceTime = future
		}, NotImage},
		{"empty", func(t *testing.T, im *Image) { write(t, im.Path, "") }, NotImage},
		{"a directory", func(t *testing.T, im *Image) { os.Remove(im.Path); os.Mkdir(im.Path, 0o755) }, NotImage},
		// An image up built with an older image builder (amd64 /dev
		// nodes before f032337) is rebuilt, whatever its dates.
		{"built by another builder revision", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			im.Builder = 2
			im.ServiceTime = past
		}, BuilderChanged},
		{"built by this builder revision", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			im.Builder = 1
		}, Fresh},
		{"stamped before revisions were recorded", func(t *testing.T, im *Image) {
			id, err := ImageID(im.Path)
			if err != nil {
				t.Fatal(err)
			}
			write(t, string(im.Stamp), "v2 "+id+"\n")
			im.Digest = "v2"
			im.Builder = 1
		}, BuilderChanged},
		{"built-in service changed and another builder", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, "v1")
			im.Digest = "v2"
			im.Builder = 2
		}, ServiceChanged},
		// Only an image the stamp describes has a known builder.
		{"no stamp, a builder revision to compare", func(t *testing.T, im *Image) { im.Builder = 2 }, Fresh},
		{"another file under the stamped image's name", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			os.Remove(im.Path)
			writeImage(t, im.Path, "the user's own image")
			im.Builder = 2
		}, Fresh},
		{"no builder revision to compare", func(t *testing.T, im *Image) { record(t, im.Stamp, im.Path, FilesDigest) }, Fresh},
		// One image path serves every release and port: an image the
		// release's stamp does not describe was called fresh by its
		// dates (an amd64 image booted by an i386 kernel). It was then
		// OtherRelease, rebuilt, and what the guest wrote to it lost,
		// when its stamp went with a cleared cache: nothing says the
		// caller built it, so it is no image to replace either.
		{"no stamp, a release to compare", func(t *testing.T, im *Image) { im.Release = "i386" }, NotRecorded},
		{"no stamp, a release to compare, a set newer", func(t *testing.T, im *Image) {
			im.Release = "i386"
			os.Chtimes(im.Sets[0], future, future)
		}, NotRecorded},
		{"stamp of another file, a release to compare", func(t *testing.T, im *Image) {
			recordRelease(t, im.Stamp, im.Path, "i386")
			os.Remove(im.Path)
			writeImage(t, im.Path, "built for amd64")
			im.Release = "i386"
		}, NotRecorded},
		// The device's number is no part of the file: a disk that comes
		// back under another one keeps its images' stamps.
		{"recorded on a device now numbered otherwise", func(t *testing.T, im *Image) {
			id, err := ImageID(im.Path)
			if err != nil {
				t.Fatal(err)
			}
			if !hasBirthTime(id) {
				t.Skipf("no birth time here (ImageID %s): the device's number tells the file", id)
			}
			_, rest, _ := strings.Cut(id, ":")
			write(t, string(im.Stamp), "v1 4095.1048575:"+rest+" 1 i386\n")
			im.Digest, im.Builder, im.Release = "v1", 1, "i386"
		}, Fresh},
		{"recorded for another release", func(t *testing.T, im *Image) {
			recordRelease(t, im.Stamp, im.Path, "amd64")
			im.Release = "i386"
		}, OtherRelease},
		{"recorded for this release", func(t *testing.T, im *Image) {
			recordRelease(t, im.Stamp, im.Path, "i386")
			im.Release = "i386"
		}, Fresh},
		// The release key holds each set's SHA512: a set downloaded
		// again with the same bytes (its cached copy was damaged), or
		// touched, is no other set, and rebuilding for its date threw
		// away what the guest wrote to the image.
		{"recorded for this release, a set downloaded again or touched", func(t *testing.T, im *Image) {
			recordRelease(t, im.Stamp, im.Path, "i386")
			im.Release = "i386"
			os.Chtimes(im.Sets[0], future, future)
		}, Fresh},
		{"recorded for this release, a set of other bytes", func(t *testing.T, im *Image) {
			r := &fetch.Release{Version: "9.3", Arch: "i386", Sets: []fetch.File{{Name: "rescue.tgz", SHA512: "aa"}}}
			recordRelease(t, im.Stamp, im.Path, ReleaseKey(r))
			r.Sets[0].SHA512 = "bb"
			im.Release = ReleaseKey(r)
			os.Chtimes(im.Sets[0], future, future)
		}, OtherRelease},
		// A release recorded but none to compare says nothing of the
		// sets: their dates decide.
		{"recorded for a release, none to compare, a set newer", func(t *testing.T, im *Image) {
			recordRelease(t, im.Stamp, im.Path, "i386")
			os.Chtimes(im.Sets[0], future, future)
		}, Older},
		{"stamped before releases were recorded, a set newer", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			im.Release = "i386"
			os.Chtimes(im.Sets[0], future, future)
		}, Older},
		// A cache that cannot be written keeps no stamp: every image
		// would be another release's, rebuilt (and what the guest
		// wrote to it lost) on every run. Its dates decide.
		{"no stamp, none can be recorded", func(t *testing.T, im *Image) {
			im.Release = "i386"
			im.Unrecorded = syscall.EROFS
		}, Fresh},
		{"no stamp, none can be recorded, a set newer", func(t *testing.T, im *Image) {
			im.Release = "i386"
			im.Unrecorded = syscall.EROFS
			os.Chtimes(im.Sets[0], future, future)
		}, Older},
		{"recorded for another release, none can be recorded now", func(t *testing.T, im *Image) {
			recordRelease(t, im.Stamp, im.Path, "amd64")
			im.Release = "i386"
			im.Unrecorded = syscall.EROFS
		}, OtherRelease},
		// A stamp from before releases were recorded lies in the
		// release's own directory: it speaks for that release.
		{"stamped before releases were recorded", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			im.Release = "i386"
		}, Fresh},
		{"not an ext2 image, built by another builder", func(t *testing.T, im *Image) {
			record(t, im.Stamp, im.Path, FilesDigest)
			im.Builder = 2
			f, err := os.OpenFile(im.Path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			f.WriteAt([]byte{0, 0}, 1080)
			f.Close()
		}, NotImage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			im := Image{Path: filepath.Join(dir, "rescue.img"), Stamp: Stamp(filepath.Join(dir, "stamp"))}
			for _, name := range []string{"rescue.tgz", "base.tgz"} {
				p := filepath.Join(dir, name)
				write(t, p, name)
				os.Chtimes(p, past, past)
				im.Sets = append(im.Sets, p)
			}
			writeImage(t, im.Path, "image")
			tt.setup(t, &im)
			got, err := im.Check()
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Check = %v, want %v", got, tt.want)
			}
		})
	}

	// An image path that cannot be looked at is an error, not a build.
	dir := t.TempDir()
	write(t, filepath.Join(dir, "file"), "")
	im := Image{Path: filepath.Join(dir, "file", "rescue.img")}
	if v, err := im.Check(); err == nil || !strings.Contains(err.Error(), im.Path) {
		t.Errorf("Check of %s = %v, %v; want an error naming it", im.Path, v, err)
	}
}

// TestStrippedNameKeysTheRevision: the stripped kernel's name names
// kstrip's revision too; it named the kernel and the keep list only, and a
// kernel stripped by a kstrip that decided otherwise was reused.
func TestStrippedNameKeysTheRevision(t *testing.T) {
	base := strippedName("abc", []string{"mainbus", "com"}, 1)
	for _, tt := range []struct {
		name     string
		sum      string
		keep     []string
		revision int
	}{
		{"another revision", "abc", []string{"mainbus", "com"}, 2},
		{"another kernel", "abd", []string{"mainbus", "com"}, 1},
		{"another keep list", "abc", []string{"mainbus"}, 1},
	} {
		if got := strippedName(tt.sum, tt.keep, tt.revision); got == base || len(got) != len(base) {
			t.Errorf("%s: name %s, first %s: want another of the same length", tt.name, got, base)
		}
	}
	if got, want := StrippedName("abc", []string{"mainbus", "com"}), strippedName("abc", []string{"mainbus", "com"}, kstrip.Revision); got != want {
		t.Errorf("StrippedName = %s, want %s (kstrip.Revision %d)", got, want, kstrip.Revision)
	}
	// A copy stripped by an earlier revision is not used.
	dir := t.TempDir()
	k := fetch.File{Path: filepath.Join(dir, "netbsd-GENERIC.gz"), SHA512: "abc"}
	write(t, k.Path, "kernel")
	old := filepath.Join(dir, strippedName(k.SHA512, []string{"com"}, kstrip.Revision-1))
	write(t, old, "stripped by an earlier kstrip")
	sum, err := fetch.HashFile(old)
	if err != nil {
		t.Fatal(err)
	}
	write(t, old+".sha512", sum+"\n")
	s, err := StripCached(k, []string{"com"}, func(in, out string, keep []string) (string, error) {
		return "stripped", os.WriteFile(out, []byte("stripped now"), 0o644)
	})
	if err != nil || s.Cached || s.Path == old {
		t.Errorf("StripCached = %+v, %v; want a new strip, not %s", s, err, old)
	}
}

// TestStripCached: a good stripped copy is used again, any other is
// stripped anew. A copy changed since it was made (a user's kstrip
// --enable on it) was stripped again without a word, silently undoing the
// edit; it is now reported as Changed, for the caller to say so.
func TestStripCached(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, first Stripped)
		keep    []string
		cached  bool
		changed bool
	}{
		{"again", func(*testing.T, Stripped) {}, []string{"mainbus", "com"}, true, false},
		{"another keep list", func(*testing.T, Stripped) {}, []string{"mainbus", "com", "ld"}, false, false},
		{"stripped copy corrupt", func(t *testing.T, s Stripped) { write(t, s.Path, "bad") }, []string{"mainbus", "com"}, false, true},
		{"stripped copy gone", func(t *testing.T, s Stripped) { os.Remove(s.Path) }, []string{"mainbus", "com"}, false, false},
		{"sidecar gone", func(t *testing.T, s Stripped) { os.Remove(s.Path + ".sha512") }, []string{"mainbus", "com"}, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			k := fetch.File{Path: filepath.Join(dir, "netbsd-GENERIC.gz"), SHA512: "abc"}
			write(t, k.Path, "kernel")
			strips := 0
			strip := func(in, out string, keep []string) (string, error) {
				strips++
				b, err := os.ReadFile(in)
				if err != nil {
					return "", err
				}
				return "stripped", os.WriteFile(out, append(b, " keeping "+strings.Join(keep, ",")...), 0o644)
			}
			first, err := StripCached(k, []string{"mainbus", "com"}, strip)
			if err != nil {
				t.Fatal(err)
			}
			if first.Cached || first.Summary != "stripped" || filepath.Dir(first.Path) != dir {
				t.Fatalf("first strip %+v, want a new copy beside the kernel", first)
			}
			tt.change(t, first)
			second, err := StripCached(k, tt.keep, strip)
			if err != nil {
				t.Fatal(err)
			}
			if second.Cached != tt.cached || second.Changed != tt.changed || strips != map[bool]int{true: 1, false: 2}[tt.cached] {
				t.Errorf("second %+v after %d strips, want cached = %v, changed = %v", second, strips, tt.cached, tt.changed)
			}
			want := "kernel keeping " + strings.Join(tt.keep, ",")
			if b, _ := os.ReadFile(second.Path); string(b) != want {
				t.Errorf("%s holds %q, want %q", second.Path, b, want)
			}
			if (second.Path == first.Path) != (strings.Join(tt.keep, ",") == "mainbus,com") {
				t.Errorf("paths %s and %s: a keep list has one copy of its own", first.Path, second.Path)
			}
		})
	}

	k := fetch.File{Path: filepath.Join(t.TempDir(), "netbsd-GENERIC.gz"), SHA512: "abc"}
	failed := errors.New("not a kernel")
	_, err := StripCached(k, nil, func(in, out string, keep []string) (string, error) { return "", failed })
	if !errors.Is(err, failed) || !strings.Contains(err.Error(), k.Path) {
		t.Errorf("a failed strip: %v, want it wrapped with the kernel's path", err)
	}
}

// TestStripCachedReadOnlyCache: a stripped copy that cannot be stored in
// the cache (read-only, another user's: a cache filled by smolvmm fetch
// alone, or a new kstrip revision) matches fetch.ErrCacheNotWritable, so
// the caller can say what to do; it was a bare EROFS. A full cache
// matches fetch.ErrNoSpace, as a download into it does; it was a bare
// ENOSPC.
func TestStripCachedReadOnlyCache(t *testing.T) {
	for _, tt := range []struct {
		errno syscall.Errno
		want  error
	}{
		{syscall.EROFS, fetch.ErrCacheNotWritable},
		{syscall.EACCES, fetch.ErrCacheNotWritable},
		{syscall.EPERM, fetch.ErrCacheNotWritable},
		{syscall.ENOSPC, fetch.ErrNoSpace},
	} {
		t.Run(tt.errno.Error(), func(t *testing.T) {
			k := fetch.File{Path: filepath.Join(t.TempDir(), "netbsd-GENERIC.gz"), SHA512: "abc"}
			_, err := StripCached(k, nil, func(in, out string, keep []string) (string, error) {
				return "", &fs.PathError{Op: "write", Path: out + ".tmp", Err: tt.errno}
			})
			if !errors.Is(err, tt.want) || !errors.Is(err, tt.errno) || !strings.Contains(err.Error(), k.Path) {
				t.Errorf("StripCached = %v, want %v matching %v, naming %s", err, tt.errno, tt.want, k.Path)
			}
			if strings.Count(err.Error(), tt.errno.Error()) != 1 {
				t.Errorf("StripCached = %v, want %q said once", err, tt.errno.Error())
			}
		})
	}
	// Another failure of the strip is not the cache's.
	k := fetch.File{Path: filepath.Join(t.TempDir(), "netbsd-GENERIC.gz"), SHA512: "abc"}
	_, err := StripCached(k, nil, func(in, out string, keep []string) (string, error) { return "", errors.New("not a kernel") })
	if errors.Is(err, fetch.ErrCacheNotWritable) {
		t.Errorf("StripCached = %v, matching fetch.ErrCacheNotWritable", err)
	}
}

func record(t *testing.T, s Stamp, image, digest string) {
	t.Helper()
	if err := s.Record(image, digest, 1, ""); err != nil {
		t.Fatal(err)
	}
}

func recordRelease(t *testing.T, s Stamp, image, release string) {
	t.Helper()
	if err := s.Record(image, FilesDigest, 1, release); err != nil {
		t.Fatal(err)
	}
}

// writeImage writes data as the start of a file that passes for an ext2
// image: the superblock's magic at offset 1080.
func writeImage(t *testing.T, path, data string) {
	t.Helper()
	b := make([]byte, 2048)
	copy(b, data)
	b[1080], b[1081] = 0x53, 0xEF
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func write(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestServiceDate: a service of files is dated by its newest input file
// (etc/, postinst/, service.conf, common/), not by other files of its
// directory (an image written there, a README: rebuilt on every run),
// and has a digest; a built-in one by its digest alone.
func TestServiceDate(t *testing.T) {
	old := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	newest := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		name   string
		newer  string // the file given the newest time
		wantAt time.Time
	}{
		{"newest in the service", "web/etc/rc", newest},
		{"newest in common", "common/basicrc", newest},
		{"newest is a directory", "web/etc", newest},
		{"newest is a postinst script", "web/postinst/10.sh", newest},
		{"newest is service.conf", "web/service.conf", newest},
		{"newest is a README", "web/README", old},
		{"newest is the service's directory", "web", old},
		{"newest is an image in the service's directory", "web/web.img", old},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := hostService(t, old)
			writeImage(t, filepath.Join(dir, "web", "web.img"), "image")
			os.Chtimes(filepath.Join(dir, "web", "web.img"), old, old)
			os.Chtimes(filepath.Join(dir, "web"), old, old)
			os.Chtimes(filepath.Join(dir, tt.newer), newest, newest)
			s, err := service.Load("web", dir)
			if err != nil {
				t.Fatal(err)
			}
			at, digest, err := ServiceDate(s)
			want, _ := ServiceDigest(s)
			if err != nil || !at.Equal(tt.wantAt) || digest != want || len(digest) != 64 {
				t.Errorf("ServiceDate = %v, %q, %v; want %v and the digest %q", at, digest, err, tt.wantAt, want)
			}
		})
	}

	rescue, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	base, err := service.Load("base", "")
	if err != nil {
		t.Fatal(err)
	}
	at, d1, err := ServiceDate(rescue)
	if err != nil || !at.IsZero() || len(d1) != 64 {
		t.Fatalf("built-in rescue: %v, %q, %v; want no time and a digest", at, d1, err)
	}
	want, _ := ServiceDigest(rescue)
	_, d2, _ := ServiceDate(base)
	if d1 != want || d2 == d1 {
		t.Errorf("digests: rescue %q (its files' %q), base %q", d1, want, d2)
	}
}
