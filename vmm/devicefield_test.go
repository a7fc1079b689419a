package vmm_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/vmm"
)

// shapedDevice is a caller's device of any type and queue sizes.
type shapedDevice struct {
	typ   uint16
	sizes []uint16
}

func (d *shapedDevice) Type() uint16                     { return d.typ }
func (d *shapedDevice) Features() uint32                 { return 0 }
func (d *shapedDevice) QueueSizes() []uint16             { return d.sizes }
func (d *shapedDevice) ConfigSize() int                  { return 0 }
func (d *shapedDevice) ReadConfig(int, []byte)           {}
func (d *shapedDevice) WriteConfig(int, []byte)          {}
func (d *shapedDevice) Activate(uint32)                  {}
func (d *shapedDevice) Process(int, *virtio.Queue) error { return nil }
func (d *shapedDevice) Reset()                           {}

// TestInvalidDeviceField: a caller's device the transport cannot present
// is a configuration error (ErrConfig, Field Devices) naming its place in
// Config.Devices, with the transport's reason said once. It used to be an
// *Error with neither, "virtio device type 1: virtio type 1: ...", and
// types 0 and 0xFFFF were accepted (device ID 1af4:0ffe).
func TestInvalidDeviceField(t *testing.T) {
	needKVM(t)
	good := &shapedDevice{typ: 0x1F, sizes: []uint16{8}}
	for _, tt := range []struct {
		name string
		dev  *shapedDevice
		want string
	}{
		{"queue size 3", &shapedDevice{typ: 1, sizes: []uint16{3}}, "Devices[1]: virtio type 1: queue 0: queue size 3"},
		{"type 0", &shapedDevice{typ: 0, sizes: []uint16{8}}, "Devices[1]: virtio type 0: must be 1 to 64"},
		{"type 0xFFFF", &shapedDevice{typ: 0xFFFF, sizes: []uint16{8}}, "Devices[1]: virtio type 65535: must be 1 to 64"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			m, err := vmm.New(vmm.Config{Kernel: "spin", KernelImage: spinner(), MemoryMiB: 8, Devices: []virtio.Device{good, tt.dev}})
			if err == nil {
				m.Close()
				t.Fatal("New accepted the device")
			}
			var ve *vmm.Error
			if !errors.As(err, &ve) || ve.Field != "Devices" || !errors.Is(err, vmm.ErrConfig) {
				t.Errorf("New: %v (%#v); want an *Error with Field Devices wrapping ErrConfig", err, ve)
			}
			if msg := err.Error(); !strings.Contains(msg, tt.want) || strings.Count(msg, "virtio") != 1 {
				t.Errorf("New: %q; want %q in it, and one virtio prefix", msg, tt.want)
			}
		})
	}
}
