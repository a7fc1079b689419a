package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/bootelf/elftest"
)

// compressedBy is b compressed by the command tool (xz, zstd) writing to
// its standard output; it skips t when the tool is not installed.
func compressedBy(t *testing.T, tool string, b []byte) []byte {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		t.Skipf("needs %s (.ci/run installs it) to make a %s file", tool, tool)
	}
	cmd := exec.Command(tool, "-c", "-q")
	cmd.Stdin = bytes.NewReader(b)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	return out
}

// ext2Image is an empty ext2 file system image, as mkimg writes.
func ext2Image(t *testing.T) []byte {
	t.Helper()
	p := filepath.Join(t.TempDir(), "fs.img")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	err = ext2.Write(f, fstree.New(), ext2.Options{Size: 1 << 20, Timestamp: 1700000000})
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestKernelContentAdvice: a -k file that vmm refuses as no kernel and
// names the kind of (*vmm.ContentError) was advised to "pass -k a
// multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel" whatever it
// was, and under --boot netbsd a kernel module was told to drop --boot,
// which boots it no better. The advice now says what to do with that
// kind of file: decompress it (once, or both layers), give a module with
// --module, a disk image with -d, build a root image from a set.
func TestKernelContentAdvice(t *testing.T) {
	if !kvmUsable() {
		t.Skip("needs /dev/kvm")
	}
	kernel, err := os.ReadFile(guests.ForTest(t, "counter"))
	if err != nil {
		t.Fatal(err)
	}
	const (
		twice  = "the file is compressed twice: decompress it once, keeping the original, with gzip -dc counter.gz.gz > counter.gz, and give -k counter.gz"
		module = "the file is a kernel module: give it to run with --module, and -k the kernel it was built for"
		disk   = "the file is a disk image: give it as -d root.img, and -k a kernel"
		set    = "the file is a tar archive (a NetBSD set?): build a root image from it with smolvmm mkimg -x %s -i IMAGE, boot that with -d IMAGE, and give -k a kernel"
	)
	kmod := func(*testing.T) []byte { return elftest.Kmod(1, 3011) }
	run := []string{"run", "-m", "32", "--net", "none"}
	bench := []string{"bench", "-n", "1", "--warmup", "0", "--net", "none"}
	tests := []struct {
		name, file string
		content    func(t *testing.T) []byte
		cmd        []string // before -k FILE
		advice     string
	}{
		{"gzip of gzip", "counter.gz.gz", func(t *testing.T) []byte { return gzipped(t, gzipped(t, kernel)) }, run, twice},
		{"gzip of gzip, --boot netbsd", "counter.gz.gz", func(t *testing.T) []byte { return gzipped(t, gzipped(t, kernel)) }, append(run, "--boot", "netbsd"), twice},
		{"gzip of gzip, bench", "counter.gz.gz", func(t *testing.T) []byte { return gzipped(t, gzipped(t, kernel)) }, bench, twice},
		{"xz", "counter.xz", func(t *testing.T) []byte { return compressedBy(t, "xz", kernel) }, run,
			"only gzip data is decompressed: decompress it, keeping the original, with xz -dc counter.xz > counter, and give -k counter"},
		{"bzip2", "counter.bz2", func(t *testing.T) []byte { return bzipped(t, kernel) }, run, // disksets_test.go
			"only gzip data is decompressed: decompress it, keeping the original, with bzip2 -dc counter.bz2 > counter, and give -k counter"},
		{"zstd", "counter.zst", func(t *testing.T) []byte { return compressedBy(t, "zstd", kernel) }, run,
			"only gzip data is decompressed: decompress it, keeping the original, with zstd -dc counter.zst > counter, and give -k counter"},
		{"xz inside gzip", "counter.xz.gz", func(t *testing.T) []byte { return gzipped(t, compressedBy(t, "xz", kernel)) }, run,
			"decompress both layers, gzip's then xz's, keeping the original, with gzip -dc counter.xz.gz | xz -dc > counter, and give -k counter"},
		{"zstd inside gzip", "counter.zst.gz", func(t *testing.T) []byte { return gzipped(t, compressedBy(t, "zstd", kernel)) }, run,
			"decompress both layers, gzip's then zstd's, keeping the original, with gzip -dc counter.zst.gz | zstd -dc > counter, and give -k counter"},
		{"kernel module", "m.kmod", kmod, run, module},
		{"kernel module, --boot netbsd", "m.kmod", kmod, append(run, "--boot", "netbsd"), module},
		{"kernel module, --boot multiboot", "m.kmod", kmod, append(run, "--boot", "multiboot"), module},
		{"kernel module, bench --boot netbsd", "m.kmod", kmod, append(bench, "--boot", "netbsd"), module},
		{"gzipped kernel module", "m.kmod.gz", func(t *testing.T) []byte { return gzipped(t, kmod(t)) }, run, module},
		{"NetBSD's miniroot.kmod", "miniroot.kmod", func(t *testing.T) []byte {
			b, err := os.ReadFile("/work/shared/netbsd/g4u-5.99.15/miniroot.kmod")
			if err != nil {
				t.Skipf("no NetBSD kernel module to give: %v", err)
			}
			return b
		}, append(run, "--boot", "netbsd"), module},
		{"ext2 image", "root.img", ext2Image, run, disk},
		{"gzipped ext2 image", "root.img.gz", func(t *testing.T) []byte { return gzipped(t, ext2Image(t)) }, run,
			"the file is a gzipped disk image: decompress it, keeping the original, with gzip -dc root.img.gz > root.img, give -d root.img, and -k a kernel"},
		{"tar", "base.tar", setTar, run, fmt.Sprintf(set, "base.tar")}, // disksets_test.go
		{"gzipped tar", "base.tgz", func(t *testing.T) []byte { return gzipped(t, setTar(t)) }, run, fmt.Sprintf(set, "base.tgz")},
		{"gzipped tar, --boot multiboot", "base.tgz", func(t *testing.T) []byte { return gzipped(t, setTar(t)) }, append(run, "--boot", "multiboot"), fmt.Sprintf(set, "base.tgz")},
		// Named as a shell reads it; one without the suffix decompresses
		// beside itself.
		{"gzip of gzip, a space in the name", "my kernel.gz.gz", func(t *testing.T) []byte { return gzipped(t, gzipped(t, kernel)) }, run,
			"the file is compressed twice: decompress it once, keeping the original, with gzip -dc 'my kernel.gz.gz' > 'my kernel.gz', and give -k 'my kernel.gz'"},
		{"xz without its suffix", "counter", func(t *testing.T) []byte { return compressedBy(t, "xz", kernel) }, run,
			"only gzip data is decompressed: decompress it, keeping the original, with xz -dc counter > counter.out, and give -k counter.out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, tt.file), tt.content(t), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append(append([]string(nil), tt.cmd...), "-k", tt.file)
			_, stderr, status := runCLIIn(t, dir, args...) // snapshotsafe_test.go
			head := "smolvmm " + tt.cmd[0] + ": load kernel " + tt.file + ": "
			if status != 1 || !strings.HasPrefix(stderr, head) || !strings.HasSuffix(stderr, " ("+tt.advice+")\n") || strings.Count(stderr, "\n") != 1 {
				t.Errorf("status %d, stderr\n%s\nwant status 1 and one line starting %q, ending with the advice (%s)", status, stderr, head, tt.advice)
			}
			if strings.Contains(stderr, "--boot") || strings.Contains(stderr, "pass -k a multiboot") {
				t.Errorf("advised --boot, or any kernel:\n%s", stderr)
			}
		})
	}
}
