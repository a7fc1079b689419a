package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ulikunitz/xz"

	"github.com/smolvmm/smolvmm/guests"
)

// setTar is a small tar archive in ustar format, as a NetBSD set is.
func setTar(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	body := []byte("#!/bin/sh\n")
	if err := tw.WriteHeader(&tar.Header{Name: "./etc/rc", Mode: 0o755, Size: int64(len(body)), Format: tar.FormatUSTAR}); err != nil {
		t.Fatal(err)
	}
	if _, err := tw.Write(body); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// elfFile is the start of an ELF file, as a kernel's, in whole sectors.
func elfFile() []byte {
	b := make([]byte, 2048)
	copy(b, "\x7fELF\x01\x01\x01")
	return b
}

func gzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// xzed is b compressed by xz with dictCap, the dictionary its block
// header declares.
func xzed(t *testing.T, b []byte, dictCap int) []byte {
	t.Helper()
	var out bytes.Buffer
	zw, err := xz.WriterConfig{DictCap: dictCap}.NewWriter(&out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// bzipped is b compressed by bzip2(1), which Go cannot write.
func bzipped(t *testing.T, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("needs bzip2 (the bzip2 package) to make a bzip2 file")
	}
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSetOrKernelAsDisk: a NetBSD set or a kernel, compressed, given as -d
// was advised decompressed and given as -d again, where the tar archive
// or ELF file then became ld0, read-write, without a word. The refusal now
// says what the file holds: a set is built into a root image with mkimg,
// a kernel is given with -k. A compressed file of anything else keeps the
// advice to decompress it.
func TestSetOrKernelAsDisk(t *testing.T) {
	bad := guests.ForTest(t, "bad")
	set := setTar(t)
	run := []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}
	bench := []string{"bench", "-k", bad, "-a", "halt", "--net", "none", "-n", "1", "--warmup", "0"}
	tests := []struct {
		name, file string
		content    func(t *testing.T) []byte
		cmd        []string
		opts       string // after the -d path
		want       string // after "smolvmm CMD: "
	}{
		{"gzip set", "sets/rescue.tgz", func(t *testing.T) []byte { return gzipped(t, set) }, run, "",
			"disk image sets/rescue.tgz: gzip-compressed, not a raw disk image (it starts with gzip's signature; the guest would see the file's bytes as its sectors) (decompressed, it is a tar archive, such as a NetBSD set: build a root image from it with: smolvmm mkimg -x sets/rescue.tgz -i rescue.img, and give -d rescue.img)"},
		{"gzip set read-only", "sets/rescue.tgz", func(t *testing.T) []byte { return gzipped(t, set) }, run, ",ro",
			"disk image sets/rescue.tgz: gzip-compressed, not a raw disk image (it starts with gzip's signature; the guest would see the file's bytes as its sectors) (decompressed, it is a tar archive, such as a NetBSD set: build a root image from it with: smolvmm mkimg -x sets/rescue.tgz -i rescue.img, and give -d rescue.img,ro)"},
		{"xz set", "sets/base.tar.xz", func(t *testing.T) []byte { return xzed(t, set, 8<<20) }, run, "",
			"disk image sets/base.tar.xz: xz-compressed, not a raw disk image (it starts with xz's signature; the guest would see the file's bytes as its sectors) (decompressed, it is a tar archive, such as a NetBSD set: build a root image from it with: smolvmm mkimg -x sets/base.tar.xz -i base.img, and give -d base.img)"},
		// mkimg reads no bzip2: the tar is given it decompressed.
		{"bzip2 set", "sets/base.tar.bz2", func(t *testing.T) []byte { return bzipped(t, set) }, run, "",
			"disk image sets/base.tar.bz2: bzip2-compressed, not a raw disk image (it starts with bzip2's signature; the guest would see the file's bytes as its sectors) (decompressed, it is a tar archive, such as a NetBSD set: decompress it, keeping the original, with: bunzip2 -k sets/base.tar.bz2, build a root image from the tar with: smolvmm mkimg -x sets/base.tar -i base.img, and give -d base.img)"},
		// smolvmm run -k reads a gzipped kernel as it is.
		{"gzip kernel", "sets/netbsd-GENERIC.gz", func(t *testing.T) []byte { return gzipped(t, elfFile()) }, run, "",
			"disk image sets/netbsd-GENERIC.gz: gzip-compressed, not a raw disk image (it starts with gzip's signature; the guest would see the file's bytes as its sectors) (decompressed, it is an ELF file, such as a NetBSD kernel: give the kernel to run or bench with -k sets/netbsd-GENERIC.gz, not -d)"},
		// xz -9's 64 MiB dictionary is not allocated to read a sector.
		{"xz kernel", "netbsd.xz", func(t *testing.T) []byte { return xzed(t, elfFile(), 64<<20) }, run, "",
			"disk image netbsd.xz: xz-compressed, not a raw disk image (it starts with xz's signature; the guest would see the file's bytes as its sectors) (decompressed, it is an ELF file, such as a NetBSD kernel: decompress it, keeping the original, with: xz -dk netbsd.xz, and give the kernel to run or bench with -k netbsd, not -d)"},
		{"gzip disk", "disk.img.gz", func(t *testing.T) []byte { return gzipped(t, make([]byte, 4096)) }, run, "",
			"disk image disk.img.gz: gzip-compressed, not a raw disk image (it starts with gzip's signature; the guest would see the file's bytes as its sectors) (decompress it, keeping the original, with: gunzip -k disk.img.gz, and give -d disk.img)"},
		{"bench gzip set", "sets/rescue.tgz", func(t *testing.T) []byte { return gzipped(t, set) }, bench, ",ro",
			"ld0: disk image sets/rescue.tgz: gzip-compressed, not a raw disk image (it starts with gzip's signature; the guest would see the file's bytes as its sectors) (decompressed, it is a tar archive, such as a NetBSD set: build a root image from it with: smolvmm mkimg -x sets/rescue.tgz -i rescue.img, and give -d rescue.img,ro)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			content := tt.content(t)
			img := filepath.Join(dir, tt.file)
			if err := os.MkdirAll(filepath.Dir(img), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(img, content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, status := runCLIIn(t, dir, append(tt.cmd, "-d", tt.file+tt.opts)...)
			want := "smolvmm " + tt.cmd[0] + ": " + tt.want + "\n"
			if status != 1 || stderr != want {
				t.Errorf("status %d, stderr\n%s\nwant status 1, stderr\n%s", status, stderr, want)
			}
			if got, _ := os.ReadFile(img); !bytes.Equal(got, content) {
				t.Error("the file changed")
			}
		})
	}
}

// TestSetOrKernelAsRawDisk: an uncompressed tar archive or ELF file given
// as -d is used, as any raw disk is (a guest may have written a tar
// archive to its disk itself), but run and bench warn, once, of what it
// looks like and what to do with it instead. A disk of zeros gets no
// such warning.
func TestSetOrKernelAsRawDisk(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	bad := guests.ForTest(t, "bad")
	set := setTar(t)
	set = append(set, make([]byte, (-len(set))&511)...) // whole sectors: no tail warning
	run := []string{"run", "-m", "32", "--net", "none", "-k", bad, "-a", "halt"}
	bench := []string{"bench", "-k", bad, "-a", "halt", "--net", "none", "-n", "1", "--warmup", "0"}
	tests := []struct {
		name, file string
		content    []byte
		cmd        []string
		opts       string
		want       string // "" for no warning
	}{
		{"run set", "sets/base.tar", set, run, "",
			"smolvmm run: warning: -d sets/base.tar: it starts with a tar header (ustar), as a tar archive such as a NetBSD set does, not a disk image: the guest sees the archive's bytes as its disk and may write over them; build a root image from it with: smolvmm mkimg -x sets/base.tar -i base.img, and give -d base.img\n"},
		{"run set read-only", "rescue.tar", set, run, ",ro",
			"smolvmm run: warning: -d rescue.tar: it starts with a tar header (ustar), as a tar archive such as a NetBSD set does, not a disk image: the guest sees the archive's bytes as its disk; build a root image from it with: smolvmm mkimg -x rescue.tar -i rescue.img, and give -d rescue.img,ro\n"},
		{"run kernel", "netbsd", elfFile(), run, "",
			"smolvmm run: warning: -d netbsd: it starts with an ELF header, as a kernel does, not a disk image: the guest sees the file's bytes as its disk and may write over them; give the kernel to run or bench with -k netbsd, not -d\n"},
		{"bench set", "sets/base.tar", set, bench, ",ro",
			"smolvmm bench: warning: -d sets/base.tar: it starts with a tar header (ustar), as a tar archive such as a NetBSD set does, not a disk image: the guest sees the archive's bytes as its disk; build a root image from it with: smolvmm mkimg -x sets/base.tar -i base.img, and give -d base.img,ro\n"},
		{"run zeros", "disk.img", make([]byte, 4096), run, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			img := filepath.Join(dir, tt.file)
			if err := os.MkdirAll(filepath.Dir(img), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(img, tt.content, 0o644); err != nil {
				t.Fatal(err)
			}
			_, stderr, status := runCLIIn(t, dir, append(tt.cmd, "-d", tt.file+tt.opts)...)
			const head = "warning: -d"
			if tt.want == "" {
				if strings.Contains(stderr, head) {
					t.Errorf("warned of a disk of zeros:\n%s", stderr)
				}
				return
			}
			if n := strings.Count(stderr, tt.want); n != 1 {
				t.Errorf("stderr has the warning %d times, want once (status %d); want\n%s\ngot\n%s", n, status, tt.want, stderr)
			}
			if n := strings.Count(stderr, head); n != 1 {
				t.Errorf("%d disk warnings, want 1:\n%s", n, stderr)
			}
			if strings.Contains(stderr, "smolvmm "+tt.cmd[0]+": ld0") {
				t.Errorf("the disk was refused; a warning was wanted:\n%s", stderr)
			}
		})
	}
}

// TestSetImageName: the image mkimg is advised to build from a set is
// named after the set, in the current directory, and is never the set.
func TestSetImageName(t *testing.T) {
	for in, want := range map[string]string{
		"sets/rescue.tgz":   "rescue.img",
		"base.tar.xz":       "base.img",
		"/x/etc.tar.gz":     "etc.img",
		"sets/base.tar.bz2": "base.img",
		"s.tar":             "s.img",
		"data.gz":           "data.img",
		"root.img":          "root-root.img",
		"disk.img.gz":       "disk.img",
		"my set.tgz":        "my set.img",
	} {
		if got := setImageName(in); got != want {
			t.Errorf("setImageName(%q) = %q, want %q", in, got, want)
		}
	}
}
