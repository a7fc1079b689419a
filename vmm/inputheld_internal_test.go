package vmm

import (
	"bytes"
	"io"
	"os"
	"testing"
	"time"
)

// gatedRead is a reader whose first Read tells asked how many bytes it
// may return, then waits for gate: the guest acts in between.
type gatedRead struct {
	r      io.Reader
	asked  chan int
	gate   chan struct{}
	opened bool
}

func (g *gatedRead) Read(b []byte) (int, error) {
	if !g.opened {
		g.opened = true
		g.asked <- len(b)
		<-g.gate
	}
	return g.r.Read(b)
}

// gatedFile is gatedRead as a FileInput over a pipe.
type gatedFile struct {
	*gatedRead
	f *os.File
}

func (g *gatedFile) File() *os.File { return g.f }

// drainAll reads the UART as NetBSD's com(4) does (RBR while LSR shows
// any receive status) until it has want bytes or 10 s have passed; it
// returns them and whether any LSR read reported an overrun.
func drainAll(u interface {
	Read(uint64, []byte)
}, want int) (got []byte, overrun bool) {
	reg := make([]byte, 1)
	for deadline := time.Now().Add(10 * time.Second); len(got) < want && time.Now().Before(deadline); {
		u.Read(5, reg) // LSR
		overrun = overrun || reg[0]&0x02 != 0
		if reg[0]&0x1f == 0 {
			time.Sleep(100 * time.Microsecond) // the line brings the next
			continue
		}
		u.Read(0, reg) // RBR
		got = append(got, reg[0])
	}
	return got, overrun
}

// TestInputFIFOOffKeepsReadBytes: the guest turns its FIFO off (NetBSD's
// com_attach_subr and com_cleanup write FCR 0) after the pump measured
// the FIFO's room and while it reads: what it read reaches the guest one
// byte at a time as the line carries it, none lost. The UART dropped all
// but the first as an overrun: "no byte is dropped" of a pipe broke.
func TestInputFIFOOffKeepsReadBytes(t *testing.T) {
	data := []byte("0123456789abcdef")
	for _, kind := range []string{"pipe FileInput", "io.Reader"} {
		t.Run(kind, func(t *testing.T) {
			u := fastLine() // FIFO on, 16 bytes of room
			g := &gatedRead{asked: make(chan int, 1), gate: make(chan struct{})}
			var src io.Reader
			if kind == "io.Reader" {
				g.r = bytes.NewReader(data)
				src = g
			} else {
				r, w, err := os.Pipe()
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				if _, err := w.Write(data); err != nil {
					t.Fatal(err)
				}
				w.Close()
				g.r = r
				src = &gatedFile{gatedRead: g, f: r}
			}
			var waited goroutineSet
			p, err := startInput(src, u, &waited, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			var k int
			select {
			case k = <-g.asked:
			case <-time.After(10 * time.Second):
				t.Fatal("the pump did not read in 10 s")
			}
			if k != fifoDepth {
				t.Fatalf("the pump read up to %d bytes, want the FIFO's room, %d", k, fifoDepth)
			}
			u.Write(2, []byte{0}) // FCR: FIFO off
			close(g.gate)
			got, overrun := drainAll(u, len(data))
			if !bytes.Equal(got, data) {
				t.Errorf("the guest read %q, want %q", got, data)
			}
			if overrun {
				t.Error("LSR reported an overrun")
			}
		})
	}
}
