package vmm

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/vmm/devices"
)

// wordPort records the words written to it and answers reads with
// successive words from next.
type wordPort struct {
	writes [][]byte
	next   uint16
}

func (p *wordPort) Write(_ uint64, d []byte) { p.writes = append(p.writes, bytes.Clone(d)) }
func (p *wordPort) Read(_ uint64, d []byte) {
	binary.LittleEndian.PutUint16(d, p.next)
	p.next++
}

// TestStringIOMovesEveryElement: a string instruction (rep outsb, rep
// insb, rep outsw) arrives as one KVM_EXIT_IO whose count is the number
// of elements, all in the run page; each must reach the port in order.
// NetBSD 9's com(4) fills the UART's FIFO with bus_space_write_multi_1,
// which on x86 is rep outsb of up to 16 bytes, and reads it with
// bus_space_read_multi_1 (rep insb).
func TestStringIOMovesEveryElement(t *testing.T) {
	const dataOff = 1024 // where KVM puts the elements in the run page
	msg := []byte("login: 16 bytes!")
	words := []byte{1, 0, 2, 0, 3, 0, 4, 0}
	tests := []struct {
		name  string
		out   bool
		size  int
		port  uint64
		data  []byte // what an out carries, what an in must leave in the page
		setup func(t *testing.T, pio *bus.Bus) (check func(t *testing.T))
	}{
		{"rep outsb of a FIFO's worth to the UART's THR", true, 1, 0x3F8, msg,
			func(t *testing.T, pio *bus.Bus) func(*testing.T) {
				var console bytes.Buffer
				if err := pio.Register("uart", 0x3F8, 8, devices.NewUART(&console, nil)); err != nil {
					t.Fatal(err)
				}
				return func(t *testing.T) {
					if console.String() != string(msg) {
						t.Errorf("console got %q, want %q", console.String(), msg)
					}
				}
			}},
		{"rep insb of a full FIFO from the UART's RBR", false, 1, 0x3F8, msg,
			func(t *testing.T, pio *bus.Bus) func(*testing.T) {
				u := devices.NewUART(nil, nil)
				if err := pio.Register("uart", 0x3F8, 8, u); err != nil {
					t.Fatal(err)
				}
				u.Write(2, []byte{0x07}) // FCR: FIFO on, both cleared
				u.Write(4, []byte{0x10}) // MCR: loopback, so THR feeds the receiver
				for _, b := range msg {
					u.Write(0, []byte{b})
				}
				return func(t *testing.T) {
					var lsr [1]byte
					u.Read(5, lsr[:])
					if lsr[0]&0x01 != 0 {
						t.Errorf("LSR %#x: data still ready after the rep insb", lsr[0])
					}
				}
			}},
		{"rep outsw to a 16-bit port", true, 2, 0x510, words,
			func(t *testing.T, pio *bus.Bus) func(*testing.T) {
				p := &wordPort{}
				if err := pio.Register("words", 0x510, 2, p); err != nil {
					t.Fatal(err)
				}
				return func(t *testing.T) {
					if want := [][]byte{{1, 0}, {2, 0}, {3, 0}, {4, 0}}; !slices.EqualFunc(p.writes, want, bytes.Equal) {
						t.Errorf("port got writes %x, want %x", p.writes, want)
					}
				}
			}},
		{"rep insw from a 16-bit port", false, 2, 0x510, words,
			func(t *testing.T, pio *bus.Bus) func(*testing.T) {
				if err := pio.Register("words", 0x510, 2, &wordPort{next: 1}); err != nil {
					t.Fatal(err)
				}
				return func(*testing.T) {}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pio := bus.New("port")
			check := tt.setup(t, pio)
			page := make([]byte, 4096)
			le := binary.LittleEndian
			le.PutUint32(page[runExitReason:], kvmExitIO)
			d := page[runExitData:]
			d[0], d[1] = 0, byte(tt.size)
			if tt.out {
				d[0] = 1
				copy(page[dataOff:], tt.data)
			}
			le.PutUint16(d[2:], uint16(tt.port))
			le.PutUint32(d[4:], uint32(len(tt.data)/tt.size))
			le.PutUint64(d[8:], dataOff)
			v := &vcpu{m: &Machine{pio: pio}, runPage: page}
			v.handleIO()
			if got := page[dataOff : dataOff+len(tt.data)]; !tt.out && !bytes.Equal(got, tt.data) {
				t.Errorf("run page holds % x after the in, want % x", got, tt.data)
			}
			check(t)
		})
	}
}
