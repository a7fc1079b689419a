package vmm_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestCheckKernel: CheckKernel refuses, without KVM, what New refuses
// when it loads the kernel, and passes what New boots.
func TestCheckKernel(t *testing.T) {
	nbboot := guests.ForTest(t, "nbboot")
	tests := []struct {
		name  string
		cfg   vmm.Config
		proto bootplan.Protocol
		err   error
	}{
		{"demo", vmm.Config{Kernel: "demo", KernelImage: guests.Demo}, bootplan.Multiboot, nil},
		{"NetBSD kernel", vmm.Config{Kernel: nbboot}, bootplan.NetBSD, nil},
		{"not a kernel", vmm.Config{Kernel: "zeros", KernelImage: make([]byte, 8192)}, 0, vmm.ErrNoBootProtocol},
		{"bad console", vmm.Config{Kernel: nbboot, Append: "console=foo"}, 0, netbsdboot.ErrAppend},
		{"too little memory", vmm.Config{Kernel: "demo", KernelImage: guests.Demo, MemoryMiB: 1}, 0, vmm.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := vmm.CheckKernel(tt.cfg)
			var ve *vmm.Error
			if tt.err != nil && (!errors.Is(err, tt.err) || !errors.As(err, &ve)) {
				t.Fatalf("err %v, want a *vmm.Error wrapping %v", err, tt.err)
			}
			if tt.err == nil && (err != nil || p.Protocol != tt.proto) {
				t.Errorf("protocol %v, err %v; want %v", p.Protocol, err, tt.proto)
			}
		})
	}
}

// TestCheckKernelDecompressHint: a kernel that does not decompress gets
// one hint, the one that fits: a gzip bomb or huge image is no kernel,
// corrupt gzip data is to be downloaded again. Every such error was told
// "the file starts like gzip but does not decompress", after the library's
// own "(is the download truncated?)" on a whole file with a bad checksum.
func TestCheckKernelDecompressHint(t *testing.T) {
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	zw.Write(guests.Demo)
	zw.Close()
	badCRC := bytes.Clone(z.Bytes())
	badCRC[len(badCRC)-8] ^= 0xff
	// Fresh zero pages from the OS: nothing reads past the length.
	huge := make([]byte, 512<<20+1)
	tests := []struct {
		name  string
		image []byte
		hint  string
	}{
		{"checksum wrong", badCRC, "the gzip data is corrupt or truncated: download the kernel again"},
		{"cut short", z.Bytes()[:z.Len()/2], "the gzip data is corrupt or truncated: download the kernel again"},
		{"larger than a kernel", huge, "this is not a kernel image"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := vmm.CheckKernel(vmm.Config{Kernel: "netbsd.gz", KernelImage: tt.image})
			var ve *vmm.Error
			if !errors.As(err, &ve) || ve.Hint != tt.hint {
				t.Fatalf("err %v, want a *vmm.Error with hint %q", err, tt.hint)
			}
			if n := strings.Count(err.Error(), "("); n != 1 {
				t.Errorf("err %q: %d parenthesized remarks, want the hint alone", err, n)
			}
		})
	}
}
