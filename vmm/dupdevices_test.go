package vmm_test

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/vmm"
)

// valueDevice is a device held by value whose type cannot be compared
// (a slice field): two of them are two devices, and telling duplicates
// must not panic on them.
type valueDevice struct{ sizes []uint16 }

func (d valueDevice) Type() uint16                     { return 0x1F }
func (d valueDevice) Features() uint32                 { return 0 }
func (d valueDevice) QueueSizes() []uint16             { return d.sizes }
func (d valueDevice) ConfigSize() int                  { return 0 }
func (d valueDevice) ReadConfig(int, []byte)           {}
func (d valueDevice) WriteConfig(int, []byte)          {}
func (d valueDevice) Activate(uint32)                  {}
func (d valueDevice) Process(int, *virtio.Queue) error { return nil }
func (d valueDevice) Reset()                           {}

// TestDuplicateDevices: the same device twice in Config.Devices (two
// transports and workers on one device) is refused before anything is
// opened, naming both places, and each device is closed once.
func TestDuplicateDevices(t *testing.T) {
	a, b := &closeRecorder{}, &closeRecorder{}
	v := valueDevice{sizes: []uint16{8}}
	for _, tt := range []struct {
		name string
		devs []virtio.Device
		want string // in the error
	}{
		{"same pointer", []virtio.Device{a, b, a}, "Devices[0] and Devices[2] are the same device"},
		{"adjacent", []virtio.Device{b, a, a}, "Devices[1] and Devices[2] are the same device"},
		// Not comparable: the nil after them is what is refused.
		{"values", []virtio.Device{v, v, nil}, "Devices[2] is nil"},
	} {
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
				a.closed, b.closed = 0, 0
				m, err := mk.f(vmm.Config{Kernel: "spin", KernelImage: spinner(), Devices: tt.devs})
				if err == nil {
					m.Close()
					t.Fatal("it succeeded")
				}
				var ve *vmm.Error
				if !errors.As(err, &ve) || ve.Field != "Devices" || !errors.Is(err, vmm.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("err = %v; want a *vmm.Error for Devices wrapping ErrConfig saying %q", err, tt.want)
				}
				for _, r := range []*closeRecorder{a, b} {
					used := false
					for _, d := range tt.devs {
						used = used || d == virtio.Device(r)
					}
					if want := map[bool]int{true: 1}[used]; r.closed != want {
						t.Errorf("a device was closed %d times, want %d", r.closed, want)
					}
				}
			})
		}
	}
}

// TestValueDeviceNewFails: a New that fails after plugging a device of a
// type == cannot compare closes what it gave without panicking.
func TestValueDeviceNewFails(t *testing.T) {
	needKVM(t)
	v := valueDevice{sizes: []uint16{8}}
	m, err := vmm.New(vmm.Config{Kernel: "junk", KernelImage: []byte("not a kernel"), Devices: []virtio.Device{v}})
	if err == nil {
		m.Close()
		t.Fatal("a junk kernel was loaded")
	}
	if !strings.Contains(err.Error(), "load kernel") {
		t.Fatalf("err = %v; want the kernel refused (after the devices were plugged)", err)
	}
}
