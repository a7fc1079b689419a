package vmm

import (
	"errors"
	"testing"

	"github.com/smolvmm/smolvmm/virtio"
)

// zeroDev is a device of a zero-size type: Go may give two new(zeroDev)
// one address, so equal pointers do not make them one device.
type zeroDev struct{}

func (*zeroDev) Type() uint16                     { return 0x1F }
func (*zeroDev) Features() uint32                 { return 0 }
func (*zeroDev) QueueSizes() []uint16             { return []uint16{8} }
func (*zeroDev) ConfigSize() int                  { return 0 }
func (*zeroDev) ReadConfig(int, []byte)           {}
func (*zeroDev) WriteConfig(int, []byte)          {}
func (*zeroDev) Activate(uint32)                  {}
func (*zeroDev) Process(int, *virtio.Queue) error { return nil }
func (*zeroDev) Reset()                           {}

// statelessDev is a device held by value: two equal values are two
// devices, each with its own transport.
type statelessDev struct{ kind uint16 }

func (d statelessDev) Type() uint16                   { return d.kind }
func (statelessDev) Features() uint32                 { return 0 }
func (statelessDev) QueueSizes() []uint16             { return []uint16{8} }
func (statelessDev) ConfigSize() int                  { return 0 }
func (statelessDev) ReadConfig(int, []byte)           {}
func (statelessDev) WriteConfig(int, []byte)          {}
func (statelessDev) Activate(uint32)                  {}
func (statelessDev) Process(int, *virtio.Queue) error { return nil }
func (statelessDev) Reset()                           {}

// stateDev is a device with state behind a pointer: the same pointer
// twice is one device given twice.
type stateDev struct{ n int }

func (*stateDev) Type() uint16                     { return 0x1F }
func (*stateDev) Features() uint32                 { return 0 }
func (*stateDev) QueueSizes() []uint16             { return []uint16{8} }
func (*stateDev) ConfigSize() int                  { return 0 }
func (*stateDev) ReadConfig(int, []byte)           {}
func (*stateDev) WriteConfig(int, []byte)          {}
func (*stateDev) Activate(uint32)                  {}
func (*stateDev) Process(int, *virtio.Queue) error { return nil }
func (*stateDev) Reset()                           {}

// TestCheckDevicesDistinct: only the same pointer to a non-zero-size
// value counts as one device given twice; distinct devices that ==
// cannot tell apart (zero-size pointers, equal values) are accepted.
func TestCheckDevicesDistinct(t *testing.T) {
	s := &stateDev{}
	z := new(zeroDev)
	for _, tt := range []struct {
		name string
		devs []virtio.Device
		dup  bool
	}{
		{"two new zero-size", []virtio.Device{new(zeroDev), new(zeroDev)}, false},
		{"one zero-size pointer twice", []virtio.Device{z, z}, false},
		{"two equal values", []virtio.Device{statelessDev{}, statelessDev{}}, false},
		{"two distinct pointers", []virtio.Device{&stateDev{}, &stateDev{}}, false},
		{"same pointer twice", []virtio.Device{s, statelessDev{}, s}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := checkDevices(0, tt.devs)
			if got := err != nil; got != tt.dup {
				t.Fatalf("checkDevices = %v; want refused: %v", err, tt.dup)
			}
			if tt.dup && !errors.Is(err, ErrConfig) {
				t.Fatalf("err = %v; want ErrConfig", err)
			}
		})
	}
}

// closerVal is a device held by value that counts its Close calls in a
// counter its copies share.
type closerVal struct {
	statelessDev
	n *int
}

func (c closerVal) Close() error { *c.n++; return nil }

// closerPtr is a device behind a pointer that counts its Close calls.
type closerPtr struct {
	stateDev
	closed int
}

func (c *closerPtr) Close() error { c.closed++; return nil }

// TestCloseUnplugged: a failing New closes the devices past those it
// plugged (their transports close those), each entry once, even equal
// values, and a pointer given twice once.
func TestCloseUnplugged(t *testing.T) {
	for _, tt := range []struct {
		name    string
		plugged int
		mk      func(n *int, p *closerPtr) []virtio.Device
		vals    int // closes of the values
		ptr     int // closes of the pointer
	}{
		{"none plugged", 0, func(n *int, p *closerPtr) []virtio.Device {
			return []virtio.Device{closerVal{n: n}, closerVal{n: n}, p}
		}, 2, 1},
		{"first value plugged", 1, func(n *int, p *closerPtr) []virtio.Device {
			return []virtio.Device{closerVal{n: n}, closerVal{n: n}, p}
		}, 1, 1},
		{"all plugged", 3, func(n *int, p *closerPtr) []virtio.Device {
			return []virtio.Device{closerVal{n: n}, closerVal{n: n}, p}
		}, 0, 0},
		{"pointer twice", 0, func(n *int, p *closerPtr) []virtio.Device {
			return []virtio.Device{p, closerVal{n: n}, p}
		}, 1, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, p := new(int), &closerPtr{}
			m := &Machine{cfg: Config{Devices: tt.mk(n, p)}, pluggedDevices: tt.plugged}
			m.closeUnplugged()
			if *n != tt.vals || p.closed != tt.ptr {
				t.Errorf("closed the values %d times and the pointer %d; want %d and %d", *n, p.closed, tt.vals, tt.ptr)
			}
		})
	}
}
