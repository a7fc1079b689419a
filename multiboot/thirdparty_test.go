package multiboot

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/debiankernels"
)

// debianKernels are the Debian packages' multiboot kernels: where a system
// installs each, and the path inside the package that vmm's tests and
// .ci/run unpack in debiankernels.CacheDir.
var debianKernels = []struct{ pkg, path string }{
	{"multiboot", "usr/lib/multiboot/examples/kernel"},
	{"tboot", "boot/tboot.gz"},
}

// thirdPartyKernels lists real multiboot kernels to load: the Debian
// `multiboot` and `tboot` packages' kernels, installed or unpacked in the
// test cache, plus any files named in MULTIBOOT_TEST_KERNELS
// (colon-separated; .gz files are decompressed). missing names the Debian
// packages whose kernel is in neither place.
func thirdPartyKernels() (paths, missing []string) {
	for _, k := range debianKernels {
		found := false
		for _, p := range []string{"/" + k.path, filepath.Join(debiankernels.CacheDir(k.pkg), "root", k.path)} {
			if _, err := os.Stat(p); err == nil {
				paths = append(paths, p)
				found = true
			}
		}
		if !found {
			missing = append(missing, k.pkg)
		}
	}
	if env := os.Getenv("MULTIBOOT_TEST_KERNELS"); env != "" {
		paths = append(paths, strings.Split(env, ":")...)
	}
	return paths, missing
}

func TestThirdPartyKernels(t *testing.T) {
	paths, missing := thirdPartyKernels()
	if len(paths) == 0 || (len(missing) > 0 && os.Getenv(debiankernels.RequireVar) == "require") {
		debiankernels.Missing(t, "no kernel from Debian package %s (neither installed nor unpacked in %s): install it, run .ci/run, or set MULTIBOOT_TEST_KERNELS",
			strings.Join(missing, " and "), filepath.Dir(debiankernels.CacheDir("x")))
	}
	for _, path := range paths {
		t.Run(filepath.Base(path), func(t *testing.T) {
			img := readKernel(t, path)
			ef, err := elf.NewFile(bytes.NewReader(img))
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			_, symErr := ef.Symbols()
			mem := guestmem.New(make([]byte, 64*mib))
			p, err := Load(mem, bytes.NewReader(img), int64(len(img)), Options{KernelName: filepath.Base(path), Append: "serial=115200"})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			t.Logf("%s: %+v", path, p)
			if p.Format != "elf" || p.Entry != uint32(ef.Entry) { // both are linked at their physical address
				t.Errorf("format %s entry %#x, want elf entry %#x", p.Format, p.Entry, ef.Entry)
			}
			if p.Symbols != (symErr == nil) {
				t.Errorf("Symbols = %v, but the file's symbol table error is %v", p.Symbols, symErr)
			}
			for _, prog := range ef.Progs {
				if prog.Type != elf.PT_LOAD {
					continue
				}
				data := make([]byte, prog.Filesz)
				if _, err := prog.ReadAt(data, 0); err != nil {
					t.Fatal(err)
				}
				expectBytes(t, mem.Bytes(), prog.Paddr, data, "segment")
				expectBytes(t, mem.Bytes(), prog.Paddr+prog.Filesz, make([]byte, prog.Memsz-prog.Filesz), "BSS")
			}
		})
	}
}

// readKernel reads a kernel file, decompressing it when it ends in .gz.
func readKernel(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if strings.HasSuffix(path, ".gz") {
		if r, err = gzip.NewReader(f); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}
