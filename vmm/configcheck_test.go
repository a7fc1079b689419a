package vmm_test

import (
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
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
				var m *vmm.Machine
				var err error
				if op == "New" {
					m, err = vmm.New(cfg)
				} else {
					m, err = vmm.Restore(cfg, filepath.Join(t.TempDir(), "none.snap"))
				}
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
