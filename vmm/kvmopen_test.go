package vmm_test

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm"
)

// TestKVMPathNotADevice: a KVMPath that open(2) refuses as no device
// (a directory, a socket, a path through a file) is ErrNoKVM, named
// once, with the system's error kept for errors.Is and errors.As; New
// says so as CheckKVM does.
func TestKVMPathNotADevice(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tt := range []struct {
		name string
		path string
		sys  error
	}{
		{"a directory", dir, unix.EISDIR},
		{"a socket", sock, unix.ENXIO},
		{"a path through a file", filepath.Join(file, "kvm"), unix.ENOTDIR},
	} {
		want := "open " + tt.path + ": not a KVM device: " + tt.sys.Error()
		for _, op := range []struct {
			name string
			f    func(string) error
		}{
			{"CheckKVM", vmm.CheckKVM},
			{"New", func(p string) error {
				m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: []byte("x"), KVMPath: p})
				if err == nil {
					m.Close()
				}
				return err
			}},
		} {
			t.Run(tt.name+"/"+op.name, func(t *testing.T) {
				err := op.f(tt.path)
				var ve *vmm.Error
				pe := new(fs.PathError)
				if !errors.Is(err, vmm.ErrNoKVM) || !errors.Is(err, tt.sys) || !errors.As(err, &ve) || !errors.As(err, &pe) ||
					!strings.HasPrefix(err.Error(), want) || strings.Count(err.Error(), tt.path) != 1 {
					t.Fatalf("%s(%s) = %v\nwant a *vmm.Error wrapping ErrNoKVM and %v, starting %q", op.name, tt.path, err, tt.sys, want)
				}
			})
		}
	}
}
