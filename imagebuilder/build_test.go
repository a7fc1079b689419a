package imagebuilder_test

import (
	"archive/tar"
	"bytes"
	"context"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/imagecheck"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
	"github.com/smolvmm/smolvmm/service"
)

const ts = 1700000000

// tarSet writes the entries as a tar set in a directory of its own and
// returns its path.
func tarSet(t testing.TB, es []testsets.Entry) string {
	t.Helper()
	b, err := testsets.Bytes(es, "tar")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "set.tar")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// rescueSet writes a rescue-like set in the given format and returns its path.
func rescueSet(t testing.TB, format string) string {
	t.Helper()
	b, err := testsets.Bytes(testsets.Rescue(1_500_000), format)
	if err != nil {
		t.Fatal(err)
	}
	ext := map[string]string{"tgz": ".tgz", "txz": ".tar.xz", "tar": ".tar"}[format]
	p := filepath.Join(t.TempDir(), "rescue"+ext)
	if err := os.WriteFile(p, b, 0644); err != nil {
		t.Fatal(err)
	}
	return p
}

func loadService(t testing.TB, name, dir string) *service.Service {
	t.Helper()
	s, err := service.Load(name, dir)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuildRescue(t *testing.T) {
	set := rescueSet(t, "txz")
	cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts}
	tree, err := imagebuilder.BuildTree(context.Background(), &cfg)
	if err != nil {
		t.Fatal(err)
	}
	img := filepath.Join(t.TempDir(), "root.img")
	if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(img); st.Size() != 10<<20 {
		t.Errorf("image is %d bytes, want 10 MiB", st.Size())
	}
	imagecheck.Fsck(t, img)
	for req, want := range map[string]string{
		"cat /etc/fstab":            imagebuilder.Fstab,
		"cat /etc/ttys":             imagebuilder.Ttys,
		"stat /sbin/init":           "Links: 153",
		"stat /dev/console":         "Device major/minor number: 00:00",
		"stat /dev/ld1a":            "Device major/minor number: 19:08",
		"stat /dev/ksyms":           "Device major/minor number: 101:00",
		"cat /etc/include/basicrc":  "nameserver 10.0.2.3",
		"cat /etc/rc":               ". /etc/include/basicrc",
		"stat /dev/tty00":           "Device major/minor number: 08:00",
		"cat /etc/mtree/set.rescue": "./rescue/sh",
		"stat /etc/rc":              "Mode:  0755",
		"stat /tmp":                 "Mode:  01777",
	} {
		if got := imagecheck.Debugfs(t, img, req); !strings.Contains(got, want) {
			t.Errorf("debugfs %q: want %q in\n%s", req, want, got)
		}
	}
	imagecheck.Compare(t, imagecheck.Describe(tree, ts), imagecheck.Mounted(t, img))
}

// TestBuildDiskNodes reads the disk nodes back from images of both
// ports: ld0-ld3, partitions a and d (RAW_PART), block 19 and raw 69;
// minors unit*8+part on i386 (its old encoding for a-h) and unit*16+part
// on amd64. Only ld0a, ld1a, rld0a and rld1a existed, i386's on both.
func TestBuildDiskNodes(t *testing.T) {
	imagecheck.Need(t, "debugfs")
	set := rescueSet(t, "tar")
	for _, tc := range []struct {
		arch string
		want map[string]string
	}{
		{imagebuilder.ArchI386, map[string]string{"ld0a": "19:00", "ld0d": "19:03", "rld0d": "69:03", "ld1a": "19:08",
			"ld2d": "19:19", "rld2a": "69:16", "ld3a": "19:24", "ld3d": "19:27", "rld3d": "69:27", "ksyms": "101:00"}},
		{imagebuilder.ArchAMD64, map[string]string{"ld0a": "19:00", "ld0d": "19:03", "rld0d": "69:03", "ld1a": "19:16",
			"ld2d": "19:35", "rld2a": "69:32", "ld3a": "19:48", "ld3d": "19:51", "rld3d": "69:51", "ksyms": "85:00"}},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "root.img")
			cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "rescue", ""), Arch: tc.arch, Timestamp: ts}
			if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
				t.Fatal(err)
			}
			for name, want := range tc.want {
				got := imagecheck.Debugfs(t, img, "stat /dev/"+name)
				if !strings.Contains(got, "Device major/minor number: "+want+" ") {
					t.Errorf("/dev/%s: want %s in\n%s", name, want, got)
				}
			}
		})
	}
}

func TestBuildDeterministic(t *testing.T) {
	set := rescueSet(t, "tgz")
	var imgs [][]byte
	for i := 0; i < 2; i++ {
		img := filepath.Join(t.TempDir(), "root.img")
		cfg := imagebuilder.Config{Sets: []string{set}, Service: loadService(t, "rescue", ""), SizeMB: 0, Timestamp: ts}
		if err := imagebuilder.Build(context.Background(), cfg, img); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(img)
		imgs = append(imgs, b)
	}
	if !bytes.Equal(imgs[0], imgs[1]) {
		t.Fatal("two builds with the same inputs and timestamp differ")
	}
}

func TestBuildErrors(t *testing.T) {
	set := rescueSet(t, "tgz")
	dir := t.TempDir()
	existing := filepath.Join(dir, "exists.img")
	os.WriteFile(existing, []byte("keep me"), 0644)
	corrupt := filepath.Join(dir, "corrupt.tgz")
	b, _ := os.ReadFile(set)
	os.WriteFile(corrupt, b[:len(b)/2], 0644)
	svc := loadService(t, "rescue", "")
	for _, tc := range []struct {
		name string
		cfg  imagebuilder.Config
		out  string
		want string
	}{
		{"exists", imagebuilder.Config{Sets: []string{set}, Service: svc, SizeMB: 10}, existing, "already exists: remove it, or set Config.Force"},
		{"too small", imagebuilder.Config{Sets: []string{set}, Service: svc, SizeMB: 1}, filepath.Join(dir, "small.img"), "too small for its content: it needs at least 2 MiB"},
		{"corrupt set", imagebuilder.Config{Sets: []string{corrupt}, Service: svc, SizeMB: 10}, filepath.Join(dir, "c.img"), "truncated"},
		{"missing set", imagebuilder.Config{Sets: []string{filepath.Join(dir, "nope.tgz")}, Service: svc, SizeMB: 10}, filepath.Join(dir, "m.img"), "no such file"},
		{"no sets", imagebuilder.Config{Service: svc}, filepath.Join(dir, "n.img"), "no sets given"},
		// A device was read as an archive (and a FIFO, below, blocked).
		{"device set", imagebuilder.Config{Sets: []string{"/dev/null"}, Service: svc, SizeMB: 10}, filepath.Join(dir, "d.img"), "set /dev/null is a character device: not a regular file or a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := imagebuilder.Build(context.Background(), tc.cfg, tc.out)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Error("the existing image was changed")
	}
	es, _ := os.ReadDir(dir)
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	if fmt.Sprint(names) != "[corrupt.tgz exists.img]" {
		t.Errorf("files left behind after failures: %v", names)
	}
	cfg := imagebuilder.Config{Sets: []string{set}, Service: svc, SizeMB: 10, Force: true, Timestamp: ts}
	if err := imagebuilder.Build(context.Background(), cfg, existing); err != nil {
		t.Errorf("with Force: %v", err)
	}
}

// TestBuildFIFOSet: a FIFO given as a set is refused, naming it and its
// kind, without waiting for a writer (os.Open of it blocked Build for
// ever).
// TestBuildWarnsClampedTimes: a set's modification time ext2 cannot
// store is clamped, and Config.Log told once for the set, naming an entry.
func TestBuildWarnsClampedTimes(t *testing.T) {
	var set bytes.Buffer
	tw := tar.NewWriter(&set)
	for _, name := range []string{"./late1", "./late2"} {
		tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, ModTime: time.Unix(4000000000, 0)})
	}
	tw.Close()
	late := filepath.Join(t.TempDir(), "late.tar")
	if err := os.WriteFile(late, set.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cfg := imagebuilder.Config{Sets: []string{rescueSet(t, "tar"), late}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts, Log: &log}
	if _, err := imagebuilder.BuildTree(context.Background(), &cfg); err != nil {
		t.Fatal(err)
	}
	want := "warning: set " + late + ": 2 entries have modification times ext2 cannot store (it stores 1901-12-13T20:45:52Z to 2038-01-19T03:14:07Z); each is stored as the nearest it can: ./late1's 2096-10-02T07:06:40Z as 2038-01-19T03:14:07Z\n"
	if got := log.String(); strings.Count(got, "warning: ") != 1 || !strings.Contains(got, want) {
		t.Errorf("log:\n%s\nwant one warning: %q", got, want)
	}
}

func TestBuildFIFOSet(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "set.fifo")
	if err := unix.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := imagebuilder.Config{Sets: []string{fifo}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts}
	done := make(chan error, 1)
	go func() { done <- imagebuilder.Build(context.Background(), cfg, filepath.Join(dir, "f.img")) }()
	var err error
	select {
	case err = <-done:
	case <-time.After(30 * time.Second):
		// Unblock the open so that the goroutine ends with the test.
		if w, werr := os.OpenFile(fifo, os.O_WRONLY, 0); werr == nil {
			w.Close()
		}
		t.Fatal("Build blocked on the FIFO set")
	}
	want := "set " + fifo + " is a FIFO: not a regular file or a directory"
	if err == nil || err.Error() != want || !errors.Is(err, imagebuilder.ErrSetKind) {
		t.Errorf("got %v, want %q matching ErrSetKind", err, want)
	}
}

func ExampleBuild() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	set, _ := testsets.Bytes(testsets.Rescue(100_000), "tgz")
	os.WriteFile(filepath.Join(dir, "rescue.tgz"), set, 0644)
	svc, _ := service.Load("rescue", "")
	cfg := imagebuilder.Config{Sets: []string{filepath.Join(dir, "rescue.tgz")}, Service: svc, SizeMB: 10, Timestamp: 1700000000}
	if err := imagebuilder.Build(context.Background(), cfg, filepath.Join(dir, "root.img")); err != nil {
		fmt.Println(err)
		return
	}
	// Read back: the superblock's magic, a file of the set and one the
	// service's overlay added, by a reader that shares nothing with the
	// writer (the tests' imagecheck.ReadFile).
	img, _ := os.ReadFile(filepath.Join(dir, "root.img"))
	mtree, err := imagecheck.ReadFile(img, "etc/mtree/set.rescue")
	if err != nil {
		fmt.Println(err)
		return
	}
	fstab, err := imagecheck.ReadFile(img, "etc/fstab")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d MiB, magic %#x\n", len(img)>>20, binary.LittleEndian.Uint16(img[1080:]))
	fmt.Printf("etc/mtree/set.rescue: %q\n", strings.SplitAfter(string(mtree), "\n")[0])
	fmt.Printf("etc/fstab: %q\n", fstab)
	// Output:
	// 10 MiB, magic 0xef53
	// etc/mtree/set.rescue: "#set rescue\n"
	// etc/fstab: "/dev/ld0a / ext2fs rw 1 1\n"
}

func ExampleOverlay() {
	t := fstree.New()
	t.Put("rescue/sh", fstree.NewFile(0555, []byte("crunched")))
	t.Link("rescue/init", "rescue/sh")
	t.Link("rescue/mount_ext2fs", "rescue/sh")
	svc, _ := service.Load("rescue", "")
	if err := imagebuilder.Overlay(t, svc, ""); err != nil {
		fmt.Println(err)
		return
	}
	init, _ := t.Get("sbin/init")
	sh, _ := t.Get("rescue/sh")
	con, _ := t.Get("dev/console")
	fmt.Println(init == sh, con.Type, con.Major, con.Minor)
	// Output: true char device 0 0
}

// TestBuildWarnsOptionsMk: a smolBSD service's options.mk (IMGSIZE=512,
// ADDSETS=base,etc) was ignored without a word, the image built from the
// defaults. The build's log says it is not read and which service.conf
// keys to use; a service without one gets no such warning. Without
// service.conf, it said the build took the defaults (size=10) also when
// the build was given another size or other sets.
func TestBuildWarnsOptionsMk(t *testing.T) {
	const noConf = "warning: service svc: options.mk is not read (smolBSD's make settings): there is no service.conf, and options.mk's size and sets do not apply; put its settings in service.conf instead: size=MiB for IMGSIZE, sets=rescue,base,... for the sets (ADDSETS included)\n"
	for _, tc := range []struct {
		files  map[string]string
		sizeMB int
		want   string // in the log; "" for no warning
	}{
		{map[string]string{"options.mk": "IMGSIZE=512\nADDSETS=base,etc\n"}, 10, noConf},
		{map[string]string{"options.mk": "IMGSIZE=512\n"}, 512, noConf},
		{map[string]string{"options.mk": "IMGSIZE=512\n", "service.conf": "size=auto\n"}, 0,
			"warning: service svc: options.mk is not read (smolBSD's make settings): this build uses service.conf; put its settings in service.conf instead"},
		{map[string]string{"service.conf": "size=auto\n"}, 0, ""},
	} {
		dir := postinstService(t, nil)
		for name, body := range tc.files {
			if err := os.WriteFile(filepath.Join(dir, "svc", name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		var log bytes.Buffer
		cfg := imagebuilder.Config{Sets: []string{rescueSet(t, "tar")}, Service: loadService(t, "svc", dir), SizeMB: tc.sizeMB, Timestamp: ts, Log: &log}
		if _, err := imagebuilder.BuildTree(context.Background(), &cfg); err != nil {
			t.Fatal(err)
		}
		switch got := log.String(); {
		case tc.want == "" && strings.Contains(got, "warning: "):
			t.Errorf("%v: log %q, want no warning", tc.files, got)
		case tc.want != "" && (strings.Count(got, "warning: ") != 1 || !strings.Contains(got, tc.want)):
			t.Errorf("%v: log %q, want one warning: %q", tc.files, got, tc.want)
		}
	}
}

// TestBuildShell: NetBSD's init runs /etc/rc with its shell, /bin/sh, or
// /rescue/sh for the rescue set's init (built with RESCUEDIR), and without
// it starts neither /etc/rc nor a single-user shell. A set with init and
// no such shell built an image that never got past init; it is refused,
// naming the shell, and nothing is written. The shell is followed
// through symlinks inside the image, as init's execv follows them.
//
// NetBSD's init is told by the C string "/etc/rc" in it (its
// _PATH_RUNCOM): an init of the user's own without it, which may need no
// shell and built before the check, still builds.
func TestBuildShell(t *testing.T) {
	prog := testsets.ELF(elf.ELFCLASS32, elf.ELFDATA2LSB, elf.EM_386, 100)
	file := func(name string, data []byte) testsets.Entry {
		return testsets.Entry{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o555, Size: int64(len(data))}, Data: data}
	}
	exe := func(name string) testsets.Entry { return file(name, prog) }
	// NetBSD's init: a program holding "/etc/rc" as a C string.
	netbsdInit := append(append([]byte(nil), prog...), "\x00/etc/rc\x00"...)
	initExe := func(name string) testsets.Entry { return file(name, netbsdInit) }
	script := []byte("#!/bin/sh\n")
	link := func(name, target string) testsets.Entry {
		return testsets.Entry{Hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
	}
	hard := func(name, target string) testsets.Entry {
		return testsets.Entry{Hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o555}}
	}
	for _, tc := range []struct {
		name    string
		set     []testsets.Entry
		init    string // the init the image starts
		shell   string // the shell init runs /etc/rc with; "" for a set that is accepted
		problem string
	}{
		{"base init alone", []testsets.Entry{initExe("./sbin/init")}, "/sbin/init", "/bin/sh", "not found"},
		{"base init, /bin/sh a link to /rescue/sh", []testsets.Entry{initExe("./sbin/init"), exe("./rescue/sh"), link("./bin/sh", "/rescue/sh")}, "", "", ""},
		{"base init, /bin a link to /rescue", []testsets.Entry{initExe("./sbin/init"), exe("./rescue/sh"), link("./bin", "rescue")}, "", "", ""},
		{"base init, /bin/sh a dangling link", []testsets.Entry{initExe("./sbin/init"), link("./bin/sh", "/rescue/sh")}, "/sbin/init", "/bin/sh", "/rescue not found"},
		{"base init, /bin/sh not executable", []testsets.Entry{initExe("./sbin/init"),
			{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./bin/sh", Mode: 0o644, Size: 1}, Data: []byte("x")}}, "/sbin/init", "/bin/sh", "not executable (mode 0644)"},
		{"base init, /bin/sh a directory", []testsets.Entry{initExe("./sbin/init"), {Hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./bin/sh", Mode: 0o755}}}, "/sbin/init", "/bin/sh", "a directory"},
		{"base init beside the rescue one, no /rescue/sh", []testsets.Entry{initExe("./sbin/init"), exe("./bin/sh"), initExe("./rescue/init")}, "", "", ""},
		{"rescue init alone", []testsets.Entry{initExe("./rescue/init")}, "/sbin/init", "/rescue/sh", "not found"},
		{"rescue init with /bin/sh, no /rescue/sh", []testsets.Entry{initExe("./rescue/init"), exe("./bin/sh")}, "/sbin/init", "/rescue/sh", "not found"},
		{"/sbin/init a link to the rescue one", []testsets.Entry{initExe("./rescue/init"), exe("./bin/sh"), link("./sbin/init", "/rescue/init")}, "/sbin/init", "/rescue/sh", "not found"},
		{"rescue init and its sh", []testsets.Entry{exe("./rescue/sh"), hard("./rescue/init", "./rescue/sh")}, "", "", ""},
		{"rescue set", testsets.Rescue(1000), "", "", ""},
		// An init of the user's own, which need not run /etc/rc.
		{"custom init", []testsets.Entry{exe("./sbin/init")}, "", "", ""},
		{"custom init naming /etc/rc.local", []testsets.Entry{file("./sbin/init", append(append([]byte(nil), prog...), "/etc/rc.local\x00"...))}, "", "", ""},
		{"custom rescue init", []testsets.Entry{exe("./rescue/init")}, "", "", ""},
		// The kernel runs a "#!" init through its interpreter: it is
		// not NetBSD's init, which runs /etc/rc.
		{"script init", []testsets.Entry{{Hdr: tar.Header{Typeflag: tar.TypeReg, Name: "./sbin/init", Mode: 0o555, Size: int64(len(script))}, Data: script}}, "", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := tarSet(t, tc.set)
			out := filepath.Join(t.TempDir(), "root.img")
			cfg := imagebuilder.Config{Sets: []string{p}, Service: loadService(t, "rescue", ""), SizeMB: 10, Timestamp: ts}
			err := imagebuilder.Build(context.Background(), cfg, out)
			if tc.shell == "" {
				if err != nil {
					t.Fatalf("Build: %v", err)
				}
				return
			}
			var se *imagebuilder.ShellError
			if !errors.As(err, &se) || se.Init != tc.init || se.Shell != tc.shell || se.Problem != tc.problem {
				t.Fatalf("Build: %v (%#v), want a ShellError for init %s, shell %s: %s", err, se, tc.init, tc.shell, tc.problem)
			}
			if !errors.Is(err, imagebuilder.ErrNoShell) {
				t.Errorf("Build: %v, want it to match ErrNoShell", err)
			}
			if !strings.Contains(err.Error(), tc.shell+": "+tc.problem) {
				t.Errorf("Build: %v, want it to say %s: %s", err, tc.shell, tc.problem)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("an image was written: %v", err)
			}
		})
	}
}
