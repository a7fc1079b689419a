package vmm

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
)

// KernelProtocol reads the kernel file, gzipped or not, and chooses as
// Auto does by the number of modules alone.
func TestKernelProtocol(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte, gz bool) string {
		if gz {
			var b bytes.Buffer
			w := gzip.NewWriter(&b)
			w.Write(data)
			w.Close()
			data = b.Bytes()
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mb := write("mb", nbMultibootKernel(), false)
	mbgz := write("mb.gz", nbMultibootKernel(), true)
	native := write("native", nbKernel(2, 62), false)
	junk := write("junk", []byte("hello"), false)
	for _, tc := range []struct {
		name    string
		path    string
		modules int
		want    bootplan.Protocol
		is      error
	}{
		{"multiboot header", mb, 0, bootplan.Multiboot, nil},
		{"multiboot header, modules", mb, 3, bootplan.NetBSD, nil},
		{"gzipped, modules", mbgz, 1, bootplan.NetBSD, nil},
		{"gzipped", mbgz, 0, bootplan.Multiboot, nil},
		{"native", native, 0, bootplan.NetBSD, nil},
		{"no kernel", junk, 0, bootplan.Auto, ErrNoBootProtocol},
		{"no file", filepath.Join(dir, "none"), 0, bootplan.Auto, os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := KernelProtocol(tc.path, tc.modules)
			var verr *Error
			switch {
			case tc.is == nil && err != nil:
				t.Fatalf("error %v", err)
			case tc.is != nil && (!errors.Is(err, tc.is) || !errors.As(err, &verr)):
				t.Fatalf("error %v, want an *Error wrapping %v", err, tc.is)
			}
			if got != tc.want {
				t.Errorf("protocol %v, want %v", got, tc.want)
			}
		})
	}
}

// KernelProtocol's refusal of a file that is no kernel but says what it
// is (gzip data twice, xz) is New's: a *ContentError naming it, as
// CheckKernel gives; it was a bare "no boot protocol" *Error.
func TestKernelProtocolNamesContent(t *testing.T) {
	dir := t.TempDir()
	var inner, outer bytes.Buffer
	w := gzip.NewWriter(&inner)
	w.Write(nbMultibootKernel())
	w.Close()
	w = gzip.NewWriter(&outer)
	w.Write(inner.Bytes())
	w.Close()
	for name, data := range map[string][]byte{
		"twice.gz.gz": outer.Bytes(),
		"kernel.xz":   append([]byte{0xfd, '7', 'z', 'X', 'Z', 0}, make([]byte, 64)...),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := KernelProtocol(p, 0)
		var ce *ContentError
		if !errors.As(err, &ce) {
			t.Errorf("%s: %v, want a *ContentError", name, err)
			continue
		}
		if _, want := CheckKernel(Config{Kernel: p, MemoryMiB: 64}); want == nil || err.Error() != want.Error() {
			t.Errorf("%s: KernelProtocol says\n%v\nCheckKernel\n%v", name, err, want)
		}
	}
}
