package vmm_test

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestReadyAndSnapshotConfig: New and Restore refuse, naming the field,
// readiness and snapshot settings that could never act, which were
// accepted and did nothing: a ReadyAddr that is no host and TCP port, a
// ReadyGuestPort with no network card to watch, SnapshotExit or
// OnSnapshot without SnapshotOnReady. The settings that can act pass the
// check (and fail on the missing KVM device after it).
func TestReadyAndSnapshotConfig(t *testing.T) {
	kvm := filepath.Join(t.TempDir(), "kvm") // no such device: a Config that passes fails there
	for _, tt := range []struct {
		name  string
		cfg   vmm.Config
		field string // "" for none: the Config passes
		msg   string
	}{
		{"address without a port", vmm.Config{ReadyAddr: "localhost"}, "ReadyAddr", `"localhost": address localhost: missing port in address`},
		{"no address", vmm.Config{ReadyAddr: "not an address"}, "ReadyAddr", "missing port in address"},
		{"port 0", vmm.Config{ReadyAddr: "127.0.0.1:0"}, "ReadyAddr", "port 0"},
		{"port out of range", vmm.Config{ReadyAddr: "127.0.0.1:65536"}, "ReadyAddr", "invalid port"},
		{"unknown service", vmm.Config{ReadyAddr: "127.0.0.1:no-such-service"}, "ReadyAddr", "unknown port"},
		{"guest port without a network card", vmm.Config{ReadyGuestPort: 22, ReadyAddr: "127.0.0.1:2222"}, "ReadyGuestPort", "guest port 22"},
		{"guest port with a device that shows no transmits", vmm.Config{ReadyGuestPort: 22, Devices: []virtio.Device{&closeRecorder{}}}, "ReadyGuestPort", "guest port 22"},
		{"SnapshotExit without a writer", vmm.Config{SnapshotExit: true}, "SnapshotExit", "SnapshotExit is set without SnapshotOnReady"},
		{"OnSnapshot without a writer", vmm.Config{OnSnapshot: func(vmm.SnapshotInfo, error) {}}, "OnSnapshot", "OnSnapshot is set without SnapshotOnReady"},
		{"host and port", vmm.Config{ReadyAddr: "127.0.0.1:8080"}, "", ""},
		{"name and service", vmm.Config{ReadyAddr: "localhost:http"}, "", ""},
		{"IPv6", vmm.Config{ReadyAddr: "[::1]:8080"}, "", ""},
		{"snapshot on ready", vmm.Config{SnapshotOnReady: io.Discard, SnapshotExit: true, OnSnapshot: func(vmm.SnapshotInfo, error) {}}, "", ""},
	} {
		for _, op := range []string{"New", "Restore"} {
			t.Run(op+" "+tt.name, func(t *testing.T) {
				cfg := tt.cfg
				cfg.KVMPath = kvm
				cfg.Kernel, cfg.KernelImage = "exit", exitGuest()
				m, err := newOrRestore(t, op, cfg)
				if err == nil {
					m.Close()
					t.Fatal("succeeded without a KVM device")
				}
				var ve *vmm.Error
				if tt.field == "" {
					if errors.Is(err, vmm.ErrConfig) {
						t.Fatalf("%s = %v; want it to pass the Config's check", op, err)
					}
					return
				}
				if !errors.Is(err, vmm.ErrConfig) || !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("%s = %v (Field %q); want ErrConfig with Field %q, saying %q", op, err, fieldOf(ve), tt.field, tt.msg)
				}
			})
		}
	}
}

// TestConfigErrorRule: vmm.ErrConfig marks a Config value wrong in itself,
// which no file could make right, and New and Restore refuse it before
// opening anything; an error about a file the Config names (missing, no
// kernel) wraps its own cause instead. Both name the field. (A disk's
// Serial of 22 bytes, or with a control byte, and a disk without a path
// were no ErrConfig, though "no kernel" was.)
func TestConfigErrorRule(t *testing.T) {
	dir := t.TempDir()
	img := filepath.Join(dir, "disk.img")
	if err := os.WriteFile(img, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	text := filepath.Join(dir, "text")
	if err := os.WriteFile(text, []byte("root:x:0:0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	kvm := filepath.Join(dir, "kvm") // no such device: only a Config refused before it fails otherwise
	disk := func(path, serial string) []blk.Spec {
		return []blk.Spec{{Path: path, Options: blk.Options{Serial: serial}}}
	}
	for _, tt := range []struct {
		name  string
		cfg   vmm.Config
		is    error // ErrConfig, or the file's own cause
		field string
		msg   string
	}{
		// New's alone: a restore takes no kernel.
		{"no kernel", vmm.Config{}, vmm.ErrConfig, "Kernel", "no kernel given"},
		{"serial too long", vmm.Config{Disks: disk(img, "0123456789012345678901")}, vmm.ErrConfig, "Disks", "must be 1 to 20 bytes"},
		{"serial with a control byte", vmm.Config{Disks: disk(img, "a\x01b")}, vmm.ErrConfig, "Disks", "byte 1 is not printable ASCII"},
		{"disk without a path", vmm.Config{Disks: disk("", "")}, vmm.ErrConfig, "Disks", "Disks[0] has no image path"},
		{"missing kernel file", vmm.Config{Kernel: filepath.Join(dir, "nope")}, fs.ErrNotExist, "Kernel", "no such file"},
		{"no kernel in the file", vmm.Config{Kernel: text, KVMPath: "/dev/kvm"}, multiboot.ErrNotMultiboot, "Kernel", "neither a multiboot kernel"},
		{"missing disk image", vmm.Config{Disks: disk(filepath.Join(dir, "nope.img"), ""), KVMPath: "/dev/kvm"}, fs.ErrNotExist, "Disks", "no such file"},
	} {
		ops := []string{"New", "Restore"}
		if tt.is != vmm.ErrConfig || tt.field == "Kernel" {
			ops = ops[:1] // Restore looks for its snapshot file first
		}
		for _, op := range ops {
			t.Run(op+" "+tt.name, func(t *testing.T) {
				cfg := tt.cfg
				if cfg.KVMPath == "" {
					cfg.KVMPath = kvm
				} else {
					needKVM(t)
				}
				if cfg.Kernel == "" && len(cfg.Disks) > 0 {
					cfg.Kernel, cfg.KernelImage = "exit", exitGuest()
				}
				m, err := newOrRestore(t, op, cfg)
				if err == nil {
					m.Close()
					t.Fatalf("%s succeeded", op)
				}
				var ve *vmm.Error
				if !errors.Is(err, tt.is) || !errors.As(err, &ve) || ve.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
					t.Fatalf("%s = %v (Field %q); want errors.Is %v with Field %q, saying %q", op, err, fieldOf(ve), tt.is, tt.field, tt.msg)
				}
				if want := tt.is == vmm.ErrConfig; errors.Is(err, vmm.ErrConfig) != want {
					t.Errorf("errors.Is(%v, ErrConfig) = %v, want %v", err, !want, want)
				}
			})
		}
	}
}

// newOrRestore is vmm.New(cfg) for op "New", else vmm.Restore(cfg) of a
// snapshot file that does not exist: for checks both make of a Config
// before they open anything.
func newOrRestore(t *testing.T, op string, cfg vmm.Config) (*vmm.Machine, error) {
	t.Helper()
	if op == "New" {
		return vmm.New(cfg)
	}
	return vmm.Restore(cfg, filepath.Join(t.TempDir(), "none.snap"))
}
