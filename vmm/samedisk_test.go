package vmm_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestSameDiskTwice: one image given twice in Config.Disks, by the same
// path or another name for the file (a symbolic or hard link), is a
// configuration error naming both places, found before any is opened. It
// was reported as the image being "in use by another VM", the process
// holding its lock being the caller's own.
func TestSameDiskTwice(t *testing.T) {
	needKVM(t)
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.img")
	if err := os.WriteFile(other, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sym, hard := filepath.Join(dir, "sym.img"), filepath.Join(dir, "hard.img")
	if err := os.Symlink(img, sym); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(img, hard); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		disks []string
		want  string
	}{
		{"same path", []string{img, img}, "Disks[0] and Disks[1] are the same file"},
		{"symbolic link", []string{other, img, sym}, "Disks[1] and Disks[2] are the same file"},
		{"hard link", []string{hard, other, img}, "Disks[0] and Disks[2] are the same file"},
	} {
		var specs []blk.Spec
		for _, p := range tt.disks {
			specs = append(specs, blk.Spec{Path: p})
		}
		for _, mk := range []struct {
			name string
			f    func(vmm.Config) (*vmm.Machine, error)
		}{
			{"New", vmm.New},
			{"Restore", func(cfg vmm.Config) (*vmm.Machine, error) {
				return vmm.Restore(cfg, filepath.Join(t.TempDir(), "none.snap"))
			}},
		} {
			t.Run(tt.name+"/"+mk.name, func(t *testing.T) {
				m, err := mk.f(vmm.Config{Kernel: "exit", KernelImage: exitGuest(), MemoryMiB: 8, Disks: specs})
				if err == nil {
					m.Close()
					t.Fatal("it succeeded")
				}
				var ve *vmm.Error
				if !errors.As(err, &ve) || ve.Field != "Disks" || !errors.Is(err, vmm.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("%v (Field %q); want ErrConfig, Field Disks, with %q", err, fieldOf(ve), tt.want)
				}
			})
		}
	}
}
