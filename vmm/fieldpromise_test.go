package vmm_test

import (
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/guests"
	"github.com/smolvmm/smolvmm/internal/kernelimage"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestErrorFieldNamesFile: an error about a file the Config names is an
// *Error whose Field names the field that gave it (ErrConfig's promise):
// a gzipped kernel cut short named no field, bytes from KernelImage were
// blamed on Kernel, which only names them, and a KVMPath that is no KVM
// device named none. An empty kernel, or gzip data holding nothing, is
// no kernel: it wraps what a file of junk does (it wrapped nothing), and
// is still called empty rather than refused by each protocol ("in the
// first 0 bytes").
func TestErrorFieldNamesFile(t *testing.T) {
	dir := t.TempDir()
	gz := func(b []byte) []byte {
		var z bytes.Buffer
		zw := gzip.NewWriter(&z)
		zw.Write(b)
		zw.Close()
		return z.Bytes()
	}
	cut := gz(guests.Demo)
	cut = cut[:len(cut)/2]
	gzEmpty := gz(nil)
	junk := []byte("not a kernel at all, nor anything else a loader knows")
	file := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cutFile, emptyFile, gzEmptyFile, junkFile := file("netbsd.gz", cut), file("empty", nil), file("empty.gz", gzEmpty), file("junk", junk)
	noKVM := filepath.Join(dir, "kvm")
	notKernel := []error{vmm.ErrNoBootProtocol, multiboot.ErrNotMultiboot, netbsdboot.ErrNotNetBSD}
	kvmErr := vmm.CheckKVM("")
	if kvmErr != nil {
		t.Logf("New is not asked about the kernels: %v", kvmErr)
	}
	for _, tt := range []struct {
		name  string
		cfg   vmm.Config
		field string
		is    []error
		isNot []error
		text  string // a part of the error's text
	}{
		{"cut gzip file", vmm.Config{Kernel: cutFile}, "Kernel", []error{kernelimage.ErrCorrupt}, nil, "decompress kernel netbsd.gz: "},
		{"cut gzip KernelImage", vmm.Config{KernelImage: cut}, "KernelImage", []error{kernelimage.ErrCorrupt}, nil, "decompress kernel image: "},
		{"cut gzip KernelImage named", vmm.Config{Kernel: "netbsd.gz", KernelImage: cut}, "KernelImage", []error{kernelimage.ErrCorrupt}, nil, "decompress kernel netbsd.gz: "},
		{"junk file", vmm.Config{Kernel: junkFile}, "Kernel", notKernel, nil, "load kernel junk: "},
		{"junk KernelImage", vmm.Config{KernelImage: junk}, "KernelImage", notKernel, nil, "load kernel image: "},
		{"junk KernelImage named", vmm.Config{Kernel: "junk", KernelImage: junk}, "KernelImage", notKernel, nil, "load kernel junk: "},
		// The name with white space is Kernel's, whatever the bytes.
		{"KernelImage named with a space", vmm.Config{Kernel: "my kernel", KernelImage: guests.Demo}, "Kernel", []error{multiboot.ErrCmdline}, nil, "white space"},
		{"empty file", vmm.Config{Kernel: emptyFile}, "Kernel", notKernel, []error{vmm.ErrConfig}, "read kernel: " + emptyFile + ": the file is empty (check the path)"},
		{"gzip of nothing in a file", vmm.Config{Kernel: gzEmptyFile}, "Kernel", notKernel, []error{vmm.ErrConfig}, "read kernel: " + gzEmptyFile + ": the gzip data holds nothing (check the path)"},
		{"gzip of nothing in KernelImage", vmm.Config{Kernel: "x.gz", KernelImage: gzEmpty}, "KernelImage", notKernel, []error{vmm.ErrConfig}, "KernelImage (for \"x.gz\") holds gzip data of nothing"},
		// An empty KernelImage is a value wrong in itself.
		{"empty KernelImage", vmm.Config{KernelImage: []byte{}}, "KernelImage", []error{vmm.ErrConfig}, notKernel, "is empty"},
		{"missing KVMPath", vmm.Config{KernelImage: guests.Demo, KVMPath: noKVM}, "KVMPath", []error{vmm.ErrNoKVM, os.ErrNotExist}, nil, "open " + noKVM + ": "},
		{"KVMPath a directory", vmm.Config{KernelImage: guests.Demo, KVMPath: dir}, "KVMPath", []error{vmm.ErrNoKVM}, nil, "not a KVM device"},
		{"KVMPath /dev/null", vmm.Config{KernelImage: guests.Demo, KVMPath: "/dev/null"}, "KVMPath", []error{vmm.ErrNoKVM}, nil, "/dev/null is not a KVM device"},
		{"KVMPath a regular file", vmm.Config{KernelImage: guests.Demo, KVMPath: junkFile}, "KVMPath", []error{vmm.ErrNoKVM}, nil, junkFile + " is not a KVM device"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// CheckKernel returns New's error for the kernel without a
			// KVM; New, which opens KVM first, is asked too where the
			// host's KVM lets it get as far as the kernel.
			calls := map[string]func() error{}
			if tt.cfg.KVMPath == "" {
				calls["CheckKernel"] = func() error { _, err := vmm.CheckKernel(tt.cfg); return err }
				if kvmErr == nil {
					calls["New"] = func() error { return newErr(tt.cfg) }
				}
			} else {
				calls["New"] = func() error { return newErr(tt.cfg) }
			}
			for name, call := range calls {
				err := call()
				var ve *vmm.Error
				if !errors.As(err, &ve) {
					t.Fatalf("%s = %T %v, want a *vmm.Error", name, err, err)
				}
				if ve.Field != tt.field {
					t.Errorf("%s = %v: Field %q, want %q", name, err, ve.Field, tt.field)
				}
				for _, is := range tt.is {
					if !errors.Is(err, is) {
						t.Errorf("%s = %v: not errors.Is %q", name, err, is)
					}
				}
				for _, is := range tt.isNot {
					if errors.Is(err, is) {
						t.Errorf("%s = %v: errors.Is %q", name, err, is)
					}
				}
				if !strings.Contains(err.Error(), tt.text) || strings.Contains(err.Error(), "0 bytes") {
					t.Errorf("%s = %q, want it to say %q (and no \"0 bytes\")", name, err, tt.text)
				}
			}
		})
	}
}

// newErr is New's error for cfg, or an error saying it succeeded
// (closing the machine it made).
func newErr(cfg vmm.Config) error {
	m, err := vmm.New(cfg)
	if err == nil {
		m.Close()
		return errors.New("New succeeded")
	}
	return err
}
