package imagebuilder_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	diskfs "github.com/diskfs/go-diskfs"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/testsets"
)

func shareDir(t *testing.T) (string, map[string][]byte) {
	dir := t.TempDir()
	files := map[string][]byte{
		"hello.txt":                       []byte("hello from the host\n"),
		"sub/deeper/A Long File Name.dat": testsets.Blob(4, 300_000),
		"sub/empty":                       nil,
	}
	for p, b := range files {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0755)
		os.WriteFile(filepath.Join(dir, p), b, 0644)
	}
	os.Mkdir(filepath.Join(dir, "emptydir"), 0755)
	return dir, files
}

func TestBuildDataImage(t *testing.T) {
	for _, fsType := range []string{"fat32", "iso9660"} {
		t.Run(fsType, func(t *testing.T) {
			dir, files := shareDir(t)
			img := filepath.Join(t.TempDir(), "data.img")
			if err := imagebuilder.BuildDataImage(dir, img, fsType); err != nil {
				t.Fatal(err)
			}
			fsys := imageFS(t, img)
			for p, want := range files {
				if len(want) == 0 {
					// An empty file has start cluster 0 (as FAT wants),
					// which go-diskfs cannot open: check its entry instead.
					st, err := fs.Stat(fsys, p)
					if err != nil || st.Size() != 0 || st.IsDir() {
						t.Errorf("stat %s: %v %v", p, st, err)
					}
					continue
				}
				f, err := fsys.OpenFile("/"+p, os.O_RDONLY)
				if err != nil {
					t.Errorf("open /%s: %v", p, err)
					continue
				}
				got, err := io.ReadAll(f)
				if err != nil || !bytes.Equal(got, want) {
					t.Errorf("/%s: read %d bytes (%v), want %d", p, len(got), err, len(want))
				}
			}
			es, err := fsys.ReadDir(".")
			var names []string
			for _, e := range es {
				names = append(names, strings.ToLower(e.Name()))
			}
			if err != nil || !strings.Contains(fmt.Sprint(names), "emptydir") {
				t.Errorf("root directory: %v %v", names, err)
			}
			// The kernel's own reading of the image, as a subtest: when it
			// cannot run here it shows as skipped, and says why.
			t.Run("mounted", func(t *testing.T) { loopCheck(t, img, fsType, files) })
			// A reader other than go-diskfs (which wrote the image) and
			// the kernel (whose vfat and iso9660 loop mounts fail on
			// some hosts, CI's among them): xorriso or mtools.
			t.Run(extractTool[fsType], func(t *testing.T) { extractCheck(t, img, fsType, files) })
			if fsType != "fat32" {
				return
			}
			checkFATFixes(t, img)
			// dosfstools' own check, as a subtest that shows as skipped
			// where it is not installed (CI installs it).
			t.Run("fsck.fat", func(t *testing.T) {
				fsck, err := exec.LookPath("fsck.fat")
				if err != nil {
					t.Skip("fsck.fat (dosfstools) not installed: FAT32 checked by checkFATFixes only")
				}
				if out, err := exec.Command(fsck, "-n", img).CombinedOutput(); err != nil || strings.Count(string(out), "\n") > 2 {
					t.Errorf("fsck.fat -n: %v\n%s", err, out)
				}
			})
		})
	}
}

// checkFATFixes reads the FAT32 image raw and checks what go-diskfs gets
// wrong and the builder mends (without fsck.fat, nothing else would): ".."
// of a directory in the root names cluster 0, an empty file owns no
// cluster, and FSInfo holds the true free-cluster count.
func checkFATFixes(t *testing.T, img string) {
	b, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	le := binary.LittleEndian
	bps, spc := int(le.Uint16(b[11:])), int(b[13])
	reserved, nfats, fatSectors := int(le.Uint16(b[14:])), int(b[16]), int(le.Uint32(b[36:]))
	fat := b[reserved*bps : (reserved+fatSectors)*bps]
	dataStart := (reserved + nfats*fatSectors) * bps
	// entries returns the short-name entries in the first cluster of a directory.
	entries := func(cl uint32) map[string][]byte {
		es := map[string][]byte{}
		c := b[dataStart+int(cl-2)*spc*bps:][:spc*bps]
		for i := 0; i+32 <= len(c) && c[i] != 0; i += 32 {
			if e := c[i : i+32]; e[11] != 0x0f && e[0] != 0xe5 {
				es[string(e[:11])] = e
			}
		}
		return es
	}
	cluster := func(e []byte) uint32 { return uint32(le.Uint16(e[20:]))<<16 | uint32(le.Uint16(e[26:])) }
	root := entries(le.Uint32(b[44:]))
	for _, d := range []string{"SUB        ", "EMPTYDIR   "} {
		e := root[d]
		if e == nil {
			t.Fatalf("no entry %q in the root directory", d)
		}
		if dotdot := entries(cluster(e))["..         "]; dotdot == nil || cluster(dotdot) != 0 {
			t.Errorf("%q: \"..\" entry %v, want one naming cluster 0 (the root)", d, dotdot)
		}
	}
	if e := entries(cluster(root["SUB        "]))["EMPTY      "]; e == nil || cluster(e) != 0 || le.Uint32(e[28:]) != 0 {
		t.Errorf("sub/empty: entry %v, want size 0 and cluster 0", e)
	}
	total := int(le.Uint32(b[32:]))
	nclusters := (total-reserved-nfats*fatSectors)/spc + 2
	var free uint32
	for c := 2; c < nclusters; c++ {
		if le.Uint32(fat[4*c:])&0x0fffffff == 0 {
			free++
		}
	}
	info := b[int(le.Uint16(b[48:]))*bps:]
	if got := le.Uint32(info[488:]); got != free {
		t.Errorf("FSInfo free clusters %#x, want %d (counted in the FAT)", got, free)
	}
}

// extractTool names the program that reads each data file system back.
var extractTool = map[string]string{"fat32": "mcopy", "iso9660": "xorriso"}

// extractCheck copies every file and directory out of the image with
// mtools (FAT32) or xorriso (ISO 9660 with Rock Ridge), without a kernel
// mount, and compares them with the shared directory: the same names, no
// more and no fewer, and the same bytes.
func extractCheck(t *testing.T, img, fsType string, files map[string][]byte) {
	tool := extractTool[fsType]
	path, err := exec.LookPath(tool)
	if err != nil {
		t.Skipf("%s not installed (Debian: %s): the image is read back by go-diskfs only", tool, map[string]string{"mcopy": "mtools", "xorriso": "xorriso"}[tool])
	}
	out := t.TempDir()
	var cmd *exec.Cmd
	if fsType == "fat32" {
		cmd = exec.Command(path, "-s", "-n", "-i", img, "::/", out)
	} else {
		cmd = exec.Command(path, "-osirrox", "on", "-indev", img, "-extract", "/", out)
	}
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	want := map[string]string{"emptydir": "dir", "sub": "dir", "sub/deeper": "dir"}
	for p, b := range files {
		want[p] = string(b)
	}
	got := map[string]string{}
	err = filepath.WalkDir(out, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == out {
			return err
		}
		rel, _ := filepath.Rel(out, p)
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir():
			got[rel] = "dir"
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			got[rel] = string(b)
			return err
		default:
			t.Errorf("%s extracted %s as a %v", tool, rel, d.Type())
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		switch g, ok := got[p]; {
		case !ok:
			t.Errorf("%s: /%s is not in the image", tool, p)
		case (g == "dir") != (w == "dir"):
			t.Errorf("%s: /%s is a directory in only one of the image and the directory shared", tool, p)
		case g != w:
			t.Errorf("%s: /%s holds %d bytes that differ from the shared file's %d", tool, p, len(g), len(w))
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: the image has /%s, which the directory has not", tool, p)
		}
	}
}

// loopCheck mounts the image read-only (as root) and compares content.
// A mount that fails is an error unless loop mounts of that file system
// fail here for any image: then a reference image made by another tool
// (mkfs.fat, xorriso, genisoimage) fails too, and the test is skipped
// saying so. Without a reference image (no tool, or it failed) the failed
// mount is an error.
func loopCheck(t *testing.T, img, fsType string, files map[string][]byte) {
	if os.Geteuid() != 0 {
		t.Skip("loop mounts need root")
	}
	typ := map[string]string{"fat32": "vfat", "iso9660": "iso9660"}[fsType]
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", typ, "-o", "ro,loop", img, mnt).CombinedOutput(); err != nil {
		why, refErr := loopMountFails(t, typ)
		if refErr != nil {
			t.Fatalf("mount -t %s -o ro,loop: %v %s; and no reference image tells a bad image from a host that cannot mount: %v", typ, err, out, refErr)
		}
		if why != "" {
			t.Skipf("loop mounts of %s fail here whatever the image: %s", typ, why)
		}
		t.Fatalf("mount -t %s -o ro,loop: %v %s (a reference %s image mounts)", typ, err, out, typ)
	}
	defer exec.Command("umount", mnt).Run()
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(mnt, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("mounted %s: /%s read %d bytes (%v), want %d", typ, p, len(got), err, len(want))
		}
	}
}

// loopMountFails mounts a reference image of file system typ made by
// another tool: "" when that works, else the mount's error. The error is
// for no reference image made (no tool, or it failed): that says nothing
// of the host's mounts, so it is no reason to skip (CI has the tools).
func loopMountFails(t *testing.T, typ string) (string, error) {
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.img")
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o644)
	var mk *exec.Cmd
	switch typ {
	case "vfat":
		if p, err := exec.LookPath("mkfs.fat"); err == nil {
			mk = exec.Command(p, "-C", ref, "1024")
		}
	case "iso9660":
		if p, err := exec.LookPath("xorriso"); err == nil {
			mk = exec.Command(p, "-as", "mkisofs", "-quiet", "-o", ref, src)
		} else if p, err := exec.LookPath("genisoimage"); err == nil {
			mk = exec.Command(p, "-quiet", "-o", ref, src)
		}
	}
	if mk == nil {
		return "", fmt.Errorf("no tool here makes a %s image (mkfs.fat for vfat; xorriso or genisoimage for iso9660): install one", typ)
	}
	if out, err := mk.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%s: %w %s", mk.Path, err, bytes.TrimSpace(out))
	}
	mnt := filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	out, err := exec.Command("mount", "-t", typ, "-o", "ro,loop", ref, mnt).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("the reference image made by %s: %v %s", filepath.Base(mk.Path), err, bytes.TrimSpace(out)), nil
	}
	exec.Command("umount", mnt).Run()
	return "", nil
}

func TestBuildDataImageErrors(t *testing.T) {
	dir, _ := shareDir(t)
	os.Symlink("hello.txt", filepath.Join(dir, "link"))
	out := filepath.Join(t.TempDir(), "d.img")
	fifoDir, _ := shareDir(t)
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "pipe"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ dir, fs, want string }{
		{dir, "fat32", "is a symlink: data disks (FAT32, ISO 9660) hold only files and directories; copy its target instead"},
		{fifoDir, "fat32", "is a FIFO: data disks (FAT32, ISO 9660) hold only files and directories; leave it out"},
		{dir, "ntfs", `data file system "ntfs"`},
		{filepath.Join(dir, "nope"), "fat32", "no such file"},
		{filepath.Join(dir, "hello.txt"), "fat32", "is not a directory"},
	} {
		if err := imagebuilder.BuildDataImage(tc.dir, out, tc.fs); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("BuildDataImage(%s, %s): got %v, want %q", tc.dir, tc.fs, err, tc.want)
		}
	}
	// Past go-diskfs's 16-bit FAT size (about 256 GiB), it writes a FAT
	// far too short for the volume; the volume was shrunk to it silently.
	clean, _ := shareDir(t)
	if err := imagebuilder.BuildDataImageSize(clean, out, "fat32", 300000); err == nil || !strings.Contains(err.Error(), "FAT32 volumes are made up to 262144 MiB") {
		t.Errorf("a FAT32 volume of 300000 MiB: got %v, want the limit", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a failed build left an image behind")
	}
}

// TestBuildDataImageSizes builds FAT32 data disks of sizes at which
// go-diskfs sizes the FAT two entries short (4 GiB, 32 GiB), one at which it
// does not, and the largest: each must be a volume fsck.fat passes.
func TestBuildDataImageSizes(t *testing.T) {
	dir, _ := shareDir(t)
	for _, mb := range []int{1024, 4096, 32768, 262144} {
		t.Run(fmt.Sprintf("%dM", mb), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "data.img")
			if err := imagebuilder.BuildDataImageSize(dir, img, "fat32", mb); err != nil {
				t.Fatal(err)
			}
			st, err := os.Stat(img)
			if err != nil || st.Size() != int64(mb)<<20 {
				t.Fatalf("image: %v, want %d MiB", err, mb)
			}
			// go-diskfs writes both FATs whole, zeros included (64 MiB
			// at 256 GiB); the builder leaves holes under their zeros.
			// (The content is 300 KB, in a few clusters.)
			if got := st.Sys().(*syscall.Stat_t).Blocks * 512; got > 1<<20 && keepsHoles(t) {
				t.Errorf("a %d MiB image of 300 KB takes %d KiB on disk, want at most 1 MiB", mb, got>>10)
			}
			fsck, err := exec.LookPath("fsck.fat")
			if err != nil {
				t.Skip("fsck.fat (dosfstools) not installed") // checkFATFixes would read the whole image
			}
			if out, err := exec.Command(fsck, "-n", img).CombinedOutput(); err != nil || strings.Count(string(out), "\n") > 2 {
				t.Errorf("fsck.fat -n: %v\n%s", err, out)
			}
		})
	}
}

// keepsHoles tells whether the file system of the test's files leaves an
// extended file's new end unallocated.
func keepsHoles(t *testing.T) bool {
	probe := filepath.Join(t.TempDir(), "probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(probe, 1<<20); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(probe)
	return err == nil && st.Sys().(*syscall.Stat_t).Blocks == 0
}

func ExampleBuildDataImage() {
	dir, _ := os.MkdirTemp("", "share")
	defer os.RemoveAll(dir)
	os.WriteFile(filepath.Join(dir, "input.txt"), []byte("data for the guest"), 0644)
	img := filepath.Join(dir, "..", filepath.Base(dir)+".img")
	defer os.Remove(img)
	if err := imagebuilder.BuildDataImage(dir, img, "fat32"); err != nil {
		fmt.Println(err)
		return
	}
	// Read back: the boot sector's file system type, and the file.
	raw, _ := os.ReadFile(img)
	if len(raw) < 512 {
		fmt.Println("no boot sector")
		return
	}
	fmt.Printf("%q\n", raw[82:90])
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		fmt.Println(err)
		return
	}
	f, err := fsys.OpenFile("/input.txt", os.O_RDONLY)
	if err != nil {
		fmt.Println(err)
		return
	}
	b, err := io.ReadAll(f)
	fmt.Printf("input.txt: %q %v\n", b, err)
	// Output:
	// "FAT32   "
	// input.txt: "data for the guest" <nil>
}

// FAT32 names ignore case: of two names that differ only in case, one
// would silently replace the other.
func TestBuildDataImageCaseCollision(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  []string // in the error; none: the build succeeds
	}{
		{"top level", []string{"A.txt", "a.txt"}, []string{"A.txt", "a.txt", "differ only in case"}},
		{"in a subdirectory", []string{"sub/Read.me", "sub/READ.ME"}, []string{"READ.ME", "Read.me"}},
		{"directory and file", []string{"Docs/x", "docs"}, []string{"Docs", "docs"}},
		{"same name in two directories", []string{"a/x", "b/x", "a/y"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			out := filepath.Join(t.TempDir(), "d.img")
			err := imagebuilder.BuildDataImage(dir, out, imagebuilder.DataFAT32)
			if tt.want == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("built an image that lost a file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
			if _, err := os.Stat(out); err == nil {
				t.Error("a refused build left an image behind")
			}
		})
	}
}

// go-diskfs writes a FAT32 name as it is told only within limits: it
// stores one 16-bit unit per character (an emoji becomes another
// character), finds an existing entry by its long or short name ignoring
// case (and then overwrites it), fails on some characters outside Latin-1
// and on a file named as the volume label, and writes no long name for a
// dotfile in capitals (.ABC) whose short name is invalid. Each such name is
// refused, named, before an image is written. The others are stored as
// given, and read back by name; the short names go-diskfs gets wrong
// (dotfiles, names that share one) are mended, so fsck.fat finds nothing.
func TestBuildDataImageFATNames(t *testing.T) {
	tests := []struct {
		name  string
		files []string
		want  []string // in the error; none: the build succeeds
	}{
		{"two emoji", []string{"a😀.txt", "a😃.txt"}, []string{"a😀.txt", "U+1F600", "ISO 9660"}},
		{"emoji beside plain", []string{"b😀.txt", "b.txt"}, []string{"b😀.txt", "U+1F600"}},
		{"emoji alone", []string{"émoji-😀.txt"}, []string{"émoji-😀.txt", "U+1F600"}},
		{"U+FFFF", []string{"x￿"}, []string{"U+FFFF"}},
		{"invalid UTF-8", []string{"\xffa", "\xfeb"}, []string{"not valid UTF-8", `\xfeb`}},
		{"one short name", []string{"a+.txt", "a=.txt"}, nil},
		{"short name of a plain name", []string{"A_.TXT", "a+.txt"}, nil},
		{"dotfiles", []string{".profile", ".gitignore", ".github/x", ".git/HEAD", ".bashrc", ".bash_logout", "a+.txt", "a=.txt", ".x"}, nil},
		{"trailing dot", []string{"a", "a."}, []string{"a.", "ends in a dot or a space", "NetBSD"}},
		{"trailing space", []string{"a", "a "}, []string{"a ", "ends in a dot or a space"}},
		{"a space alone", []string{" "}, []string{"ends in a dot or a space"}},
		{"eleven names with one short name", []string{"abcdef+", "abcdef=", "abcdef,", "abcdef;", "abcdef[", "abcdef]", "abcdefé", "abcdefè", "abcdefê", "abcdefë", "abcdefà"}, nil},
		{"dotfile in capitals", []string{".ABC"}, []string{".ABC", "nothing before the dot"}},
		{"name equal to a dotfile's short name", []string{".b+c", ".b_c"}, []string{".b+c", ".b_c", "short name is .B_C"}},
		{"name equal to a short name", []string{"a b.txt", "ab.txt"}, []string{"a b.txt", "ab.txt", "one name"}},
		{"dotted name equal to a short name", []string{"a.b.txt", "ab.txt"}, []string{"a.b.txt", "ab.txt"}},
		{"long s folds to s", []string{"ſ.txt", "s.txt"}, []string{"ſ.txt", "s.txt"}},
		{"character go-diskfs cannot write", []string{"ж.txt"}, []string{"ж.txt", "U+0436"}},
		{"such a character where a long stem is cut", []string{"abcdeжzzz.txt"}, []string{"abcdeжzzz.txt", "U+0436"}},
		{"such a character cut off", []string{"abcdefghж.txt"}, nil},
		{"the volume label's name", []string{"smolvmm"}, []string{"smolvmm", "volume label"}},
		{"the volume label's name in another case", []string{"SmolVMM"}, []string{"SmolVMM", "volume label"}},
		{"the volume label's short name, or its name below the root", []string{"smol vmm", "d/smolvmm"}, nil},
		{"in a subdirectory", []string{"d/a+", "d/a=", "d/.profile"}, nil},
		{"refused in a subdirectory", []string{"d/.ABC"}, []string{filepath.Join("d", ".ABC")}},
		{"Latin-1 and Cyrillic capitals", []string{"é.txt", "e.txt", "Ж/x"}, nil},
		{"cut names get tails", []string{"long name one.txt", "long name two.txt", "other"}, nil},
		{"same short name in two directories", []string{"a/x+", "b/x=", "a/y"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := writeTree(t, tt.files)
			out := filepath.Join(t.TempDir(), "d.img")
			err := imagebuilder.BuildDataImage(dir, out, imagebuilder.DataFAT32)
			if tt.want != nil {
				if err == nil {
					t.Fatal("built an image that changes or loses a name")
				}
				for _, w := range tt.want {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not say %q", err, w)
					}
				}
				var fe *imagebuilder.FATNameError
				if !errors.As(err, &fe) {
					t.Errorf("error %v is no *FATNameError", err)
				}
				if tt.name != "long s folds to s" && strings.Contains(err.Error(), "differ only in case") {
					t.Errorf("error %q blames case", err)
				}
				if _, err := os.Stat(out); err == nil {
					t.Error("a refused build left an image behind")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			fsys := imageFS(t, out)
			for _, f := range tt.files {
				got, err := fs.ReadFile(fsys, f)
				if err != nil || string(got) != f {
					t.Errorf("%s in the image: %q, %v", f, got, err)
				}
			}
			if fsck, err := exec.LookPath("fsck.fat"); err == nil {
				if out, err := exec.Command(fsck, "-n", out).CombinedOutput(); err != nil || strings.Count(string(out), "\n") > 2 {
					t.Errorf("fsck.fat -n: %v\n%s", err, out)
				}
			}
		})
	}
}

// A stopped build returns ctx's error and leaves neither the image nor a
// temporary file.
func TestBuildDataImageContextStopped(t *testing.T) {
	dir, _ := shareDir(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	outDir := t.TempDir()
	err := imagebuilder.BuildDataImageContext(ctx, dir, filepath.Join(outDir, "d.img"), imagebuilder.DataFAT32, 0)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(outDir); len(left) != 0 {
		t.Errorf("left %v", left)
	}
}

// TestDataFileTooLarge: a file of 4 GiB or more (sparse here) is refused
// before any image is written, for both data file systems, whose 32-bit
// sizes would wrap it.
func TestDataFileTooLarge(t *testing.T) {
	for _, fsType := range []string{imagebuilder.DataFAT32, imagebuilder.DataISO9660} {
		t.Run(fsType, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Truncate(createFile(t, filepath.Join(dir, "big")), 1<<32); err != nil {
				t.Fatal(err)
			}
			img := filepath.Join(t.TempDir(), "d.img")
			err := imagebuilder.BuildDataImage(dir, img, fsType)
			if !errors.Is(err, imagebuilder.ErrDataFileTooLarge) || !strings.Contains(err.Error(), "big is 4294967296 bytes") {
				t.Fatalf("BuildDataImage: %v, want ErrDataFileTooLarge naming big and its size", err)
			}
			if _, err := os.Stat(img); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("an image was left: %v", err)
			}
		})
	}
}

// writeTree makes a directory holding files (slash-separated paths), each
// holding its own path.
func writeTree(t *testing.T, files []string) string {
	t.Helper()
	dir := t.TempDir()
	for _, f := range files {
		p := filepath.Join(dir, filepath.FromSlash(f))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// imageFS is the file system of the data image img, closed with the test.
func imageFS(t *testing.T, img string) filesystem.FileSystem {
	t.Helper()
	d, err := diskfs.Open(img, diskfs.WithOpenMode(diskfs.ReadOnly))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	fsys, err := d.GetFilesystem(0)
	if err != nil {
		t.Fatal(err)
	}
	return fsys
}

func createFile(t *testing.T, path string) string {
	t.Helper()
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}
