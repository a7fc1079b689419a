package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/fetch/fetchtest"
	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/service"
)

// fakeFlags stands in for cli.Context in mkimg tests.
type fakeFlags map[string]any

func (f fakeFlags) String(n string) string {
	if v, ok := f[n].(string); ok {
		return v
	}
	if n == "service" {
		return "rescue"
	}
	if n == "fs" {
		return "fat32"
	}
	return ""
}
func (f fakeFlags) StringSlice(n string) []string { v, _ := f[n].([]string); return v }
func (f fakeFlags) Bool(n string) bool            { v, _ := f[n].(bool); return v }
func (f fakeFlags) IsSet(n string) bool           { _, ok := f[n]; return ok }

// inSetDir changes to a temporary directory holding rescue.tgz.
func inSetDir(t *testing.T) string {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // no set from a real cache
	b, err := testsets.Bytes(testsets.Rescue(1_000_000), "tgz")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("rescue.tgz", b, 0644)
	return dir
}

// writeELFSet writes at path a rescue-like set whose crunched binary, and
// so /rescue/init, is an ELF program for machine.
func writeELFSet(t *testing.T, path string, class elf.Class, machine elf.Machine) {
	t.Helper()
	es := testsets.Rescue(0)
	es[0].Data = testsets.ELF(class, elf.ELFDATA2LSB, machine, 100_000)
	es[0].Hdr.Size = int64(len(es[0].Data))
	b, err := testsets.Bytes(es, "tgz")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestMkimgDefaults(t *testing.T) {
	inSetDir(t)
	var log bytes.Buffer
	if err := mkimg(context.Background(), fakeFlags{"timestamp": "1700000000"}, &log); err != nil {
		t.Fatal(err)
	}
	// The rescue service's size=auto: ~1 MiB of content plus 4 MiB.
	st, err := os.Stat("root.img")
	if err != nil || st.Size() != 6<<20 {
		t.Fatalf("root.img: %v, size %d, want 6 MiB", err, st.Size())
	}
	// Progress is prefixed as errors are ("smolvmm mkimg: "); it said
	// "mkimg: wrote ...".
	if !regexp.MustCompile(`(?m)^smolvmm mkimg: read rescue.tgz and service rescue in .*s\nsmolvmm mkimg: wrote root.img \(6 MiB\) in `).MatchString(log.String()) {
		t.Errorf("log: %q", log.String())
	}
	if _, err := exec.LookPath("e2fsck"); err == nil {
		if out, err := exec.Command("e2fsck", "-fn", "root.img").CombinedOutput(); err != nil {
			t.Errorf("e2fsck: %v\n%s", err, out)
		}
	}
	first, _ := os.ReadFile("root.img")
	err = mkimg(context.Background(), fakeFlags{"timestamp": "1700000000"}, &log)
	if err == nil || !strings.Contains(err.Error(), "already exists: remove it or pass -f") {
		t.Errorf("second run without -f: %v", err)
	}
	if err := mkimg(context.Background(), fakeFlags{"timestamp": "2023-11-14T22:13:20Z", "force": true}, &log); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile("root.img")
	if !bytes.Equal(first, second) {
		t.Error("same sets and --timestamp (as seconds and as RFC 3339) gave different images")
	}
}

// TestMkimgLargerRescue: a rescue set whose crunched binary alone is over
// 10 MiB still builds with the rescue service's defaults (size=auto); its
// fixed size=10 made mkimg fail "too small" without -m.
func TestMkimgLargerRescue(t *testing.T) {
	t.Chdir(t.TempDir())
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	b, err := testsets.Bytes(testsets.Rescue(11<<20), "tgz")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("rescue.tgz", b, 0644)
	if err := mkimg(context.Background(), fakeFlags{"timestamp": "1700000000"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat("root.img"); err != nil || st.Size() < 11<<20 {
		t.Fatalf("root.img: %v, want more than 11 MiB", err)
	}
}

func TestMkimgOptions(t *testing.T) {
	dir := inSetDir(t)
	writeELFSet(t, "amd64.tgz", elf.ELFCLASS64, elf.EM_X86_64)
	writeELFSet(t, "arm64.tgz", elf.ELFCLASS64, elf.EM_AARCH64)
	share := filepath.Join(dir, "share")
	os.Mkdir(share, 0755)
	os.WriteFile(filepath.Join(share, "f"), []byte("x"), 0644)
	os.Mkdir("a,b", 0o755)
	os.Link("rescue.tgz", "a,b/rescue.tgz")
	os.Mkdir("sets", 0o755)
	os.Link("rescue.tgz", "sets/extra.tar.xz")
	for _, tc := range []struct {
		name  string
		flags fakeFlags
		want  string // error substring, or "" for success
		out   string
		size  int64
	}{
		{"auto", fakeFlags{"megabytes": "auto", "image": "a.img"}, "", "a.img", 6 << 20},
		{"explicit", fakeFlags{"megabytes": "3", "image": "b.img", "sets": []string{"rescue.tgz"}}, "", "b.img", 3 << 20},
		{"too small", fakeFlags{"megabytes": "1", "image": "c.img"}, "too small for its content: it needs at least 2 MiB (the size is -m 1: give -m 2 or more, or -m auto)", "c.img", 0},
		{"bad size", fakeFlags{"megabytes": "ten"}, `-m "ten": want a size in MiB`, "", 0},
		{"bad timestamp", fakeFlags{"timestamp": "yesterday"}, "want Unix seconds or an RFC 3339 time", "", 0},
		// Echoed as given; it said "--timestamp 32503680000".
		{"timestamp past 2038", fakeFlags{"timestamp": "3000-01-01T00:00:00Z", "image": "t.img"}, "--timestamp 3000-01-01T00:00:00Z: ext2 stores times from 1970-01-01T00:00:00Z to 2038-01-19T03:14:07Z (Unix seconds 0 to 2147483647)", "t.img", 0},
		{"timestamp before 1970", fakeFlags{"timestamp": "1969-12-31T23:59:59Z", "image": "t.img"}, "--timestamp 1969-12-31T23:59:59Z: ext2 stores times", "t.img", 0},
		{"timestamp -1", fakeFlags{"timestamp": "-1", "image": "t.img"}, "--timestamp -1: ext2 stores times", "t.img", 0},
		{"missing set", fakeFlags{"service": "base", "image": "d.img"}, "sets \"base\", \"etc\": no base.tgz or base.tar.xz, nor etc.tgz or etc.tar.xz, in the current directory, in sets/ or in ", "d.img", 0},
		{"unknown service", fakeFlags{"service": "web"}, `no service "web"`, "", 0},
		{"bad set list", fakeFlags{"sets": []string{"rescue.tgz,nope.tgz"}, "image": "e.img"}, "-x nope.tgz: no such file or directory (check the path given with -x); -x splits its value at commas: a path with a comma in it must be renamed, or given as a symlink whose path has none", "e.img", 0},
		// It said only "-x a: no such file or directory".
		{"comma in a set's path", fakeFlags{"sets": []string{"a,b/rescue.tgz"}, "image": "e.img"}, "-x a: no such file or directory: -x splits its value at commas, so a,b/rescue.tgz, which exists, was read as 2 paths; rename it, or give -x a symlink to it whose path has no comma", "e.img", 0},
		// A set's name, as sets= in service.conf takes it, said only
		// "no such file or directory".
		{"set name to -x", fakeFlags{"sets": []string{"rescue"}, "image": "e.img"}, "-x rescue: no such file or directory (check the path given with -x); -x takes paths, and the set named rescue is rescue.tgz: give -x rescue.tgz", "e.img", 0},
		{"set name in sets/ to -x", fakeFlags{"sets": []string{"rescue.tgz,extra"}, "image": "e.img"}, "-x extra: no such file or directory (check the path given with -x); -x takes paths, and the set named extra is " + filepath.Join("sets", "extra.tar.xz") + ": give -x " + filepath.Join("sets", "extra.tar.xz"), "e.img", 0},
		{"no set of that name", fakeFlags{"sets": []string{"nope"}, "image": "e.img"}, "-x nope: no such file or directory (check the path given with -x)", "e.img", 0},
		{"data", fakeFlags{"data": share}, "", "data.img", 34 << 20},
		{"data exists", fakeFlags{"data": share}, "data.img already exists", "", 0},
		{"data force", fakeFlags{"data": share, "force": true}, "", "data.img", 34 << 20},
		{"data iso", fakeFlags{"data": share, "fs": "iso9660", "image": "d.iso"}, "", "d.iso", -1},
		{"data too small", fakeFlags{"data": share, "megabytes": "1", "image": "s.img"}, "-m 1: a FAT32 data image is at least 34 MiB", "s.img", 0},
		// Flags of the other kind of image are refused, not ignored.
		{"no output directory", fakeFlags{"image": "nodir/r.img"}, "no directory nodir to write it in", "", 0},
		{"no data output directory", fakeFlags{"data": share, "image": "nodir/d.img"}, "no directory nodir to write it in", "", 0},
		{"fs without data", fakeFlags{"fs": "iso9660", "image": "f.img"}, "--fs is for data disks: use it with --data DIR", "f.img", 0},
		{"data with sets", fakeFlags{"data": share, "sets": []string{"rescue.tgz"}, "image": "g.img"}, "-x is for root images", "g.img", 0},
		{"data with service", fakeFlags{"data": share, "service": "rescue", "image": "h.img"}, "-s is for root images", "h.img", 0},
		{"unknown arch", fakeFlags{"arch": "sparc64", "image": "j.img"}, `--arch "sparc64": images can be built for i386 and amd64 only`, "j.img", 0},
		// An amd64 set given as i386's got i386's /dev numbers.
		{"arch not the sets'", fakeFlags{"arch": "i386", "sets": []string{"amd64.tgz"}, "image": "l.img"},
			"--arch i386: the sets are for amd64, not i386: their init /rescue/init is an ELF program for machine EM_X86_64 (62): drop --arch to build the image for amd64, or give sets for i386", "l.img", 0},
		{"sets of another machine", fakeFlags{"sets": []string{"arm64.tgz"}, "image": "m.img"},
			"the sets are for no port images can be built for (i386 or amd64): their init /rescue/init is an ELF program for machine EM_AARCH64 (183): give sets for i386 or amd64", "m.img", 0},
		{"data with arch", fakeFlags{"data": share, "arch": "amd64", "image": "k.img"}, "--arch is for root images", "k.img", 0},
		{"data with a timestamp", fakeFlags{"data": share, "timestamp": "2023-11-14T22:13:20Z", "image": "ts.img"}, "", "ts.img", 34 << 20},
		{"data with a bad timestamp", fakeFlags{"data": share, "timestamp": "yesterday", "image": "tb.img"}, "--timestamp \"yesterday\": want Unix seconds or an RFC 3339 time", "tb.img", 0},
		{"iso with a size", fakeFlags{"data": share, "fs": "iso9660", "megabytes": "50", "image": "i.iso"}, "-m 50: an ISO 9660 image is as large as its content", "i.iso", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := mkimg(context.Background(), tc.flags, &bytes.Buffer{})
			if tc.want != "" {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, want %q", err, tc.want)
				}
				if tc.out != "" {
					if _, err := os.Stat(tc.out); err == nil {
						t.Errorf("%s left behind after a failure", tc.out)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(tc.out)
			if err != nil || (tc.size > 0 && st.Size() != tc.size) {
				t.Errorf("%s: %v size %d, want %d", tc.out, err, st.Size(), tc.size)
			}
		})
	}
	es, _ := os.ReadDir(dir)
	for _, e := range es {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

// TestMkimgTooSmallAdvice: a root image too small for its content says
// what -m to give and where the size came from, as --data and up do; it
// passed the library's "too small" on bare.
func TestMkimgTooSmallAdvice(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	b, err := testsets.Bytes(testsets.Rescue(11<<20), "tgz")
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile("rescue.tgz", b, 0o644)
	for name, conf := range map[string]string{"sized": "size=3\n", "noconf": ""} {
		os.MkdirAll(filepath.Join("svcs", name, "etc"), 0o755)
		os.WriteFile(filepath.Join("svcs", name, "etc", "rc"), []byte("sh\n"), 0o644)
		if conf != "" {
			os.WriteFile(filepath.Join("svcs", name, "service.conf"), []byte(conf), 0o644)
		}
	}
	conf := func(name string) string { return filepath.Join("svcs", name, "service.conf") }
	for _, tc := range []struct {
		name  string
		flags fakeFlags
		want  string
	}{
		{"-m", fakeFlags{"megabytes": "5"}, "(the size is -m 5: give -m 12 or more, or -m auto)"},
		{"service.conf", fakeFlags{"service": "sized", "service-dir": "svcs"},
			"(the size is size=3 in " + conf("sized") + ": give -m 12 or more, or -m auto, or raise size= there)"},
		{"no service.conf", fakeFlags{"service": "noconf", "service-dir": "svcs"},
			"(10 MiB is the size of a service without service.conf: give -m 12 or more, or -m auto, or write size=auto in " + conf("noconf") + ")"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.flags["image"] = "r.img"
			err := mkimg(context.Background(), tc.flags, io.Discard)
			if err == nil || !strings.HasSuffix(err.Error(), "it needs at least 12 MiB "+tc.want) {
				t.Errorf("got %v, want an error ending %q", err, "it needs at least 12 MiB "+tc.want)
			}
			var small *ext2.TooSmallError
			if !errors.As(err, &small) {
				t.Errorf("%v does not wrap the TooSmallError", err)
			}
		})
	}
}

// TestMkimgEarlyTooSmallAdvice: the "too small" of sets read only
// until their data passed the image's room limit (twice it and 64 MiB)
// offers -m auto only when what they need by then is within what -m
// auto reads (imagebuilder.MaxAutoData): above an -m of 992 MiB the room
// limit is past it, and -m auto offered there was refused in turn. The
// error is built as imagebuilder.BuildTree builds it: reading 2 GiB of
// sets for it would take as much memory.
func TestMkimgEarlyTooSmallAdvice(t *testing.T) {
	svc, err := service.Load("rescue", "")
	if err != nil {
		t.Fatal(err)
	}
	const mib = 1 << 20
	early := func(sizeMB, neededMB int64) error {
		le := &fstree.LimitError{Room: true, Limit: 2*sizeMB*mib + 64*mib, Have: neededMB * mib}
		return fmt.Errorf("%w (%w)", &ext2.TooSmallError{Size: sizeMB * mib, Needed: neededMB * mib}, fmt.Errorf("set.tgz: %w", le))
	}
	for _, tc := range []struct {
		name string
		m    string
		err  error
		want string
	}{
		{"within -m auto's", "16", early(16, 97),
			"(the size is -m 16: give -m auto, or a larger -m: the sets were read only until their data passed the image's size, so they need 97 MiB or more)"},
		{"at -m auto's", "992", early(992, 2048),
			"(the size is -m 992: give -m auto, or a larger -m: the sets were read only until their data passed the image's size, so they need 2048 MiB or more)"},
		{"past -m auto's", "1500", early(1500, 3065),
			"(the size is -m 1500: give a larger -m: the sets were read only until their data passed the image's size, so they need 3065 MiB or more, past the 2048 MiB -m auto reads)"},
		{"read whole", "5", &ext2.TooSmallError{Size: 5 * mib, Needed: 12 * mib},
			"(the size is -m 5: give -m 12 or more, or -m auto)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tooSmallAdvice(tc.err, fakeFlags{"megabytes": tc.m}, svc)
			if err == nil || !strings.HasSuffix(err.Error(), tc.want) {
				t.Errorf("got %v, want an error ending %q", err, tc.want)
			}
			var small *ext2.TooSmallError
			if !errors.As(err, &small) {
				t.Errorf("%v does not wrap the TooSmallError", err)
			}
		})
	}
}

// TestMkimgArch: --arch decides the /dev numbers in the image (ksyms is
// char 101 on i386 and 85 on amd64, NetBSD 9.1's majors.i386 and
// majors.amd64); without it, the port of the sets' init program does, and
// i386 when that is no ELF program (the test sets' is not). Sets with an
// amd64 init got i386's numbers.
func TestMkimgArch(t *testing.T) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs (e2fsprogs) is not installed: the image cannot be read")
	}
	inSetDir(t)
	writeELFSet(t, "amd64.tgz", elf.ELFCLASS64, elf.EM_X86_64)
	writeELFSet(t, "i386.tgz", elf.ELFCLASS32, elf.EM_386)
	for _, tc := range []struct {
		flags fakeFlags
		want  string
		read  string // the log's "read" line
	}{
		{fakeFlags{"image": "default.img"}, "101:00", "read rescue.tgz and service"},
		{fakeFlags{"image": "i386.img", "arch": "i386"}, "101:00", "read rescue.tgz and service"},
		{fakeFlags{"image": "amd64.img", "arch": "amd64"}, "85:00", "read rescue.tgz and service"},
		{fakeFlags{"image": "amd64-found.img", "sets": []string{"amd64.tgz"}}, "85:00", "read amd64.tgz (amd64, the port of their init) and service"},
		{fakeFlags{"image": "amd64-given.img", "sets": []string{"amd64.tgz"}, "arch": "amd64"}, "85:00", "read amd64.tgz and service"},
		{fakeFlags{"image": "i386-found.img", "sets": []string{"i386.tgz"}}, "101:00", "read i386.tgz (i386, the port of their init) and service"},
	} {
		var log bytes.Buffer
		if err := mkimg(context.Background(), tc.flags, &log); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(log.String(), tc.read) {
			t.Errorf("%v: log %q, want %q", tc.flags, log.String(), tc.read)
		}
		out, err := exec.Command("debugfs", "-R", "stat /dev/ksyms", tc.flags["image"].(string)).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Device major/minor number: "+tc.want) {
			t.Errorf("%v: /dev/ksyms: %v\n%s\nwant %s", tc.flags, err, out, tc.want)
		}
	}
}

// TestMkimgForceKeepsAnImageInUse: -f does not replace an image a running
// VM holds (its flock).
func TestMkimgForceKeepsAnImageInUse(t *testing.T) {
	inSetDir(t)
	if err := mkimg(context.Background(), fakeFlags{"image": "r.img"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	vm, err := os.Open("r.img")
	if err != nil {
		t.Fatal(err)
	}
	defer vm.Close()
	if err := unix.Flock(int(vm.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	err = mkimg(context.Background(), fakeFlags{"image": "r.img", "force": true}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "image r.img is in use by a running VM") {
		t.Fatalf("err = %v, want the image in use", err)
	}
	vm.Close()
	if err := mkimg(context.Background(), fakeFlags{"image": "r.img", "force": true}, io.Discard); err != nil {
		t.Errorf("after the VM ended: %v", err)
	}
}

// TestFindSet resolves set names to archives in the current directory, in
// sets/ (the layout of mkimg.sh) and in the fetch cache of the default
// release, where a copy that no longer matches its SHA512 is refused; and
// only then to a directory of the name, in the current directory or in
// sets/. A directory in the current directory was taken before any
// archive: with --service-dir ., the service directory rescue/ was read as
// the set rescue beside sets/rescue.tgz. A name with its extension
// (sets=rescue.tgz) was found in the cache only, mkimg looking for
// rescue.tgz.tgz elsewhere.
func TestFindSet(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	cache := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", cache)
	sets := filepath.Join(cache, "smolvmm", fetch.DefaultVersion, fetch.DefaultArch, "sets")
	os.MkdirAll(sets, 0755)
	os.Mkdir("sets", 0755)
	os.WriteFile("etc.tgz", []byte("etc"), 0644)
	os.MkdirAll(filepath.Join("rescue", "etc"), 0755) // a service directory
	os.WriteFile(filepath.Join("sets", "rescue.tgz"), []byte("rescue"), 0644)
	os.Mkdir("base", 0755)
	os.Mkdir("mine", 0755)
	os.Mkdir(filepath.Join("sets", "misc"), 0755)
	os.WriteFile("notadir", []byte("x"), 0644)
	base, comp := []byte("base set"), []byte("comp set")
	os.WriteFile(filepath.Join(sets, "base.tar.xz"), base, 0644)
	os.WriteFile(filepath.Join(sets, "comp.tgz"), []byte("tampered"), 0644)
	os.WriteFile(filepath.Join(sets, "SHA512"), fetchtest.DigestFile(map[string][]byte{"base.tar.xz": base, "comp.tgz": comp}), 0644)
	for _, tc := range []struct {
		name, want, arch, err string
	}{
		{"etc", "etc.tgz", "", ""},
		{"etc.tgz", "etc.tgz", "", ""},
		{"rescue.tgz", filepath.Join("sets", "rescue.tgz"), "", ""},
		{"base.tar.xz", filepath.Join(sets, "base.tar.xz"), "", ""},
		{"games.tgz", "", "", `no games.tgz in the current directory, in sets/ or in ` + sets},
		{"rescue", filepath.Join("sets", "rescue.tgz"), "", ""},
		{"base", filepath.Join(sets, "base.tar.xz"), "", ""},
		{"mine", "mine", "", ""},
		{"misc", filepath.Join("sets", "misc"), "", ""},
		{"comp", "", "", "does not match its SHA512"},
		{"base", "base", "amd64", ""},
		{"kern", "", "amd64", `set "kern": no kern.tgz or kern.tar.xz in the current directory, in sets/ or in ` + filepath.Join(cache, "smolvmm", fetch.DefaultVersion, "amd64", "sets") + `, and no directory kern in the current directory or in sets/: pass -x PATH, or fetch the set first (smolvmm fetch --arch amd64 kern)`},
		{"games", "", "", `no games.tgz or games.tar.xz in the current directory, in sets/ or in ` + sets},
		{"notadir", "", "", `no directory notadir in the current directory or in sets/`},
	} {
		got, err := findSet(tc.name, tc.arch)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: got %q, %v; want an error containing %q", tc.name, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// TestMkimgSetNotServiceDir: with --service-dir . holding the service
// rescue/ and sets/rescue.tgz, mkimg reads the archive and says so; it
// read the service directory as the set and failed "no init".
func TestMkimgSetNotServiceDir(t *testing.T) {
	inSetDir(t)
	os.Mkdir("sets", 0o755)
	if err := os.Rename("rescue.tgz", filepath.Join("sets", "rescue.tgz")); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join("rescue", "etc"), 0o755)
	os.WriteFile(filepath.Join("rescue", "etc", "rc"), []byte("sh\n"), 0o644)
	var log bytes.Buffer
	if err := mkimg(context.Background(), fakeFlags{"service-dir": ".", "image": "r.img"}, &log); err != nil {
		t.Fatal(err)
	}
	if want := "read " + filepath.Join("sets", "rescue.tgz") + " and service rescue"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q, want %q", log.String(), want)
	}
	// A set that is a directory is shown as one.
	os.MkdirAll(filepath.Join("tree", "rescue"), 0o755)
	os.WriteFile(filepath.Join("tree", "rescue", "init"), []byte("#!/bin/sh\n"), 0o755)
	log.Reset()
	if err := mkimg(context.Background(), fakeFlags{"sets": []string{"tree"}, "image": "t.img"}, &log); err != nil {
		t.Fatal(err)
	}
	if want := "read tree" + string(filepath.Separator) + " and service rescue"; !strings.Contains(log.String(), want) {
		t.Errorf("log %q, want %q", log.String(), want)
	}
}

// TestMkimgSignalAtCommit: a signal that came once the image was written
// (during its fsync, or just before the rename) did not stop the rename:
// mkimg -f ended 0 with the old image replaced. The writer now looks
// right before the rename, so such a signal ends mkimg 130 with the old
// image kept and no temporary file; one after the rename, too late to
// stop anything, leaves status 0 and a line that says the new image was
// written and kept.
func TestMkimgSignalAtCommit(t *testing.T) {
	tests := []struct {
		name  string
		data  bool
		stage string
		stop  bool // status 130, the old image kept
	}{
		{"root image, before the rename", false, atomicfile.CommitRename, true},
		{"root image, after the rename", false, atomicfile.CommitRenamed, false},
		{"data image, before the rename", true, atomicfile.CommitRename, true},
		{"data image, after the rename", true, atomicfile.CommitRenamed, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := inSetDir(t)
			flags := fakeFlags{"image": "r.img", "force": true}
			if tt.data {
				if err := os.Mkdir("d", 0o755); err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join("d", "f"), []byte("data"), 0o644)
				flags["data"] = "d"
			}
			if err := os.WriteFile("r.img", []byte("the old image"), 0o644); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			atomicfile.CommitHook = func(stage string) {
				if stage == tt.stage {
					cancel(signalCause{unix.SIGINT})
				}
			}
			defer func() { atomicfile.CommitHook = nil }()
			var log bytes.Buffer
			err := interrupted(ctx, mkimg(ctx, flags, &log))
			old, _ := os.ReadFile("r.img")
			if tt.stop {
				if exitCode(err) != 130 || err.Error() != "interrupted by SIGINT" || string(old) != "the old image" {
					t.Errorf("err %v (status %d), image %.20q; want 130, interrupted by SIGINT and the old image", err, exitCode(err), old)
				}
			} else if err != nil || string(old) == "the old image" || !strings.Contains(log.String(), "smolvmm mkimg: wrote r.img (") ||
				!strings.Contains(log.String(), "; SIGINT came after it was written, too late to stop it: the new image is kept\n") {
				t.Errorf("err %v, image %.20q, log %q; want status 0, the new image and a line saying so", err, old, log.String())
			}
			if left, _ := filepath.Glob(filepath.Join(dir, ".r.img.tmp-*")); len(left) != 0 {
				t.Errorf("temporary files left: %v", left)
			}
		})
	}
}

// TestMkimgWarningsNamed: the image builder's warnings (a service's
// options.mk that is not read, a file of postinst/ that does not run) are
// said as "smolvmm mkimg: warning: ...", as every other; they came as
// bare "warning: ..." lines. A postinst script's own output, a line
// starting "warning: " included, is written as the script wrote it.
func TestMkimgWarningsNamed(t *testing.T) {
	inSetDir(t)
	svc := filepath.Join("svcs", "web")
	for _, d := range []string{filepath.Join(svc, "etc"), filepath.Join(svc, "postinst")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range map[string]string{
		"service.conf":    "sets=rescue\nsize=auto\n",
		"options.mk":      "IMGSIZE=20\n",
		"etc/rc":          "#!/bin/sh\n",
		"postinst/README": "notes\n",
		"postinst/a.sh":   "echo 'warning: the script says this'\n",
	} {
		if err := os.WriteFile(filepath.Join(svc, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	if err := mkimg(context.Background(), fakeFlags{"service": "web", "service-dir": "svcs", "image": "w.img", "timestamp": "1700000000"}, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	out := log.String()
	for _, want := range []string{
		"\nsmolvmm mkimg: warning: service web: options.mk is not read",
		"\nsmolvmm mkimg: warning: service web: postinst/README not run",
		"\nwarning: the script says this\n",
	} {
		if !strings.Contains("\n"+out, want) {
			t.Errorf("log lacks %q:\n%s", want[1:], out)
		}
	}
	if strings.Contains(out, "smolvmm mkimg: warning: the script") {
		t.Errorf("the script's output was changed:\n%s", out)
	}
}

// TestMkimgTimestampZero: --timestamp 0, its RFC 3339 form and
// SOURCE_DATE_EPOCH=0 stamp the image 1970-01-01T00:00:00Z (read back
// from /etc/fstab, which has no time of its own). They were refused as
// times ext2 cannot store, as 0 was taken for "now" further down.
func TestMkimgTimestampZero(t *testing.T) {
	if _, err := exec.LookPath("debugfs"); err != nil {
		t.Skip("debugfs (e2fsprogs) is not installed: the image cannot be read")
	}
	for _, tc := range []struct {
		name, flag, env string
	}{
		{"flag", "0", ""},
		{"RFC 3339", "1970-01-01T00:00:00Z", ""},
		{"SOURCE_DATE_EPOCH", "", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inSetDir(t)
			t.Setenv("SOURCE_DATE_EPOCH", tc.env)
			if err := mkimg(context.Background(), fakeFlags{"timestamp": tc.flag, "image": "z.img"}, io.Discard); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("debugfs", "-R", "stat /etc/fstab", "z.img").CombinedOutput()
			if err != nil {
				t.Fatalf("debugfs: %v\n%s", err, out)
			}
			for _, field := range []string{"ctime", "atime", "mtime"} {
				if !regexp.MustCompile(`(?m)^ *` + field + `: 0x00000000 `).Match(out) {
					t.Errorf("/etc/fstab %s: want 0 in\n%s", field, out)
				}
			}
		})
	}
}
