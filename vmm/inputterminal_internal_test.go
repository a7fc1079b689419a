package vmm

import (
	"bytes"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"golang.org/x/term"

	"github.com/smolvmm/smolvmm/internal/testpty"
	"github.com/smolvmm/smolvmm/vmm/devices"
)

// escapeWatch is a FileInput as the smolvmm command's: its file through a
// filter, which here passes every byte on and counts them, and closes
// quit on Ctrl-A x.
type escapeWatch struct {
	f    *os.File
	quit chan struct{}

	mu   sync.Mutex
	seen int
	prev byte
}

func (e *escapeWatch) File() *os.File { return e.f }

func (e *escapeWatch) Read(p []byte) (int, error) {
	n, err := e.f.Read(p)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, b := range p[:n] {
		if e.prev == 0x01 && b == 'x' {
			close(e.quit)
		}
		e.prev = b
	}
	e.seen += n
	return n, err
}

func (e *escapeWatch) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.seen
}

// rawPTY opens a pseudo-terminal in raw mode, as the smolvmm command's
// console is, and returns its two sides.
func rawPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	ptm, pts = testpty.Open(t)
	if _, err := term.MakeRaw(int(pts.Fd())); err != nil {
		t.Fatal(err)
	}
	return ptm, pts
}

// startTerminalPump starts the input pump of u over the terminal side pts
// of a pseudo-terminal, through an escapeWatch as the command's console.
func startTerminalPump(t *testing.T, pts *os.File, u *devices.UART) (*escapeWatch, *inputPump) {
	t.Helper()
	in := &escapeWatch{f: pts, quit: make(chan struct{})}
	var waited goroutineSet
	p, err := startInput(in, u, &waited, nil)
	if err != nil {
		t.Fatal(err)
	}
	return in, p
}

// fifoDepth is the UART's receive FIFO.
const fifoDepth = 16

// fastLine returns a UART programmed as NetBSD programs it for a 115200
// baud console, 8N1 with its FIFO on: the line carries a byte every 87 µs.
func fastLine() *devices.UART { return lineAt(1) }

// lineAt returns a UART programmed as NetBSD programs its console, 8N1
// with its FIFO on, at 115200/divisor baud.
func lineAt(divisor uint8) *devices.UART {
	u := devices.NewUART(nil, nil)
	for _, w := range [][2]uint8{{3, 0x80}, {0, divisor}, {1, 0}, {3, 0x03}, {2, 0x81}} {
		u.Write(uint64(w[0]), []byte{w[1]})
	}
	return u
}

// lsrOf reads the UART's line status register.
func lsrOf(u *devices.UART) uint8 {
	reg := []byte{0}
	u.Read(5, reg)
	return reg[0]
}

// drainUART reads the UART as a guest would, LSR then RBR while LSR says
// data is ready, until it has want bytes or 10 s have passed; it returns
// them and whether the first LSR read reported an overrun.
func drainUART(u *devices.UART, want int) (got []byte, overrun bool) {
	reg := make([]byte, 1)
	first := true
	for deadline := time.Now().Add(10 * time.Second); len(got) < want && time.Now().Before(deadline); {
		u.Read(5, reg) // LSR
		if first {
			overrun, first = reg[0]&0x02 != 0, false
		}
		if reg[0]&0x01 == 0 {
			time.Sleep(time.Millisecond) // the pump moves held bytes in
			continue
		}
		u.Read(0, reg) // RBR
		got = append(got, reg[0])
	}
	return got, overrun
}

// TestInputTerminalReadWhileUARTFull: input from a terminal is read even
// when the guest does not read the UART and its buffer is full, so that
// the command's escape filter sees Ctrl-A x (a hung guest is when the
// user needs it): 4,096 bytes typed or pasted stopped it. What the UART
// cannot take is held, up to inputHoldLimit bytes, and handed to the guest
// in order as it reads; beyond that, once the guest has read nothing for
// inputStallWait, it is dropped as a serial line overruns (LSR OE).
func TestInputTerminalReadWhileUARTFull(t *testing.T) {
	ptm, pts := rawPTY(t)
	u := fastLine()
	u.Receive(bytes.Repeat([]byte{'g'}, fifoDepth))
	if n := u.RXSpace(); n != 0 {
		t.Fatalf("UART space %d after %d bytes, want 0", n, fifoDepth)
	}
	in, p := startTerminalPump(t, pts, u)
	typed := append(bytes.Repeat([]byte{'a'}, 5000), 0x01, 'x')
	go ptm.Write(typed)
	select {
	case <-in.quit:
	case <-time.After(10 * time.Second):
		p.stop()
		t.Fatalf("Ctrl-A x after 5000 bytes typed for a guest that reads none: not read in 10 s (the filter saw %d bytes)", in.count())
	}
	// The filter saw Ctrl-A x inside the pump's read, which holds p.mu
	// until that chunk is held or dropped: before then the guest must not
	// read, or the room it makes lets in bytes the full hold drops.
	p.mu.Lock()
	p.mu.Unlock()
	if n := in.count(); n != len(typed) {
		t.Errorf("the filter saw %d bytes, want all %d", n, len(typed))
	}
	got, overrun := drainUART(u, fifoDepth+inputHoldLimit)
	p.stop()
	want := append(bytes.Repeat([]byte{'g'}, fifoDepth), typed[:inputHoldLimit]...)
	if !bytes.Equal(got, want) {
		t.Errorf("the guest read %d bytes, want the %d it had and the first %d typed (%d): %q", len(got), fifoDepth, inputHoldLimit, len(want), got)
	}
	if !overrun {
		t.Error("LSR does not report the overrun of the bytes dropped")
	}
	if lsr := lsrOf(u); lsr&0x01 != 0 {
		t.Errorf("LSR %#x: more bytes reached the UART, want none past the held ones", lsr)
	}
}

// TestInputPipeKeepsBackpressure: a FileInput over a pipe (data, not
// keys) is read only as far as the UART has room, never dropped: the rest
// stays for RemainingInput.
func TestInputPipeKeepsBackpressure(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	u := fastLine()
	u.Receive(bytes.Repeat([]byte{'g'}, fifoDepth-1))
	data := bytes.Repeat([]byte("0123456789"), 500)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	w.Close()
	in := &escapeWatch{f: r, quit: make(chan struct{})}
	var waited goroutineSet
	p, err := startInput(in, u, &waited, nil)
	if err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); u.RXSpace() != 0; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			p.stop()
			t.Fatal("the one byte of room was not filled in 10 s")
		}
	}
	p.stop()
	read := in.count()
	rest, err := io.ReadAll(remaining{p})
	if err != nil {
		t.Fatal(err)
	}
	if got := append([]byte{data[0]}, rest...); !bytes.Equal(got, data) || read != 1 {
		t.Errorf("the pump read %d bytes, RemainingInput gave %d; want 1 and the other %d", read, len(rest), len(data)-1)
	}
}

// TestInputTerminalHeldForRemainingInput: keys read from a terminal and
// held for a guest that read none are RemainingInput's once the pump
// stops, not lost.
func TestInputTerminalHeldForRemainingInput(t *testing.T) {
	ptm, pts := rawPTY(t)
	u := fastLine()
	u.Receive(bytes.Repeat([]byte{'g'}, fifoDepth))
	in, p := startTerminalPump(t, pts, u)
	typed := append(bytes.Repeat([]byte("abc"), 100), 0x01, 'x')
	go ptm.Write(typed)
	select {
	case <-in.quit:
	case <-time.After(10 * time.Second):
		p.stop()
		t.Fatalf("Ctrl-A x not read in 10 s (the filter saw %d bytes)", in.count())
	}
	p.stop()
	rest := make([]byte, len(typed))
	if _, err := io.ReadFull(remaining{p}, rest); err != nil || !bytes.Equal(rest, typed) {
		t.Errorf("RemainingInput: %q, %v; want the %d bytes typed: %q", rest, err, len(typed), typed)
	}
	if n := u.RXSpace(); n != 0 {
		t.Errorf("the UART has room for %d, want 0: no byte read by the guest", n)
	}
}

// TestInputTerminalPasteWhileGuestReads: a paste larger than the UART's
// FIFO and the pump's hold, into a terminal whose guest reads as its line
// brings the bytes (9600 baud: 960 bytes a second), reaches the guest
// whole and in order, without an overrun: the rest waits in the terminal
// until there is room, as it did before the pump held keys, where the
// pump read it all at once and dropped 52 KiB of 60.
func TestInputTerminalPasteWhileGuestReads(t *testing.T) {
	ptm, pts := rawPTY(t)
	// The pump and this guest each move at most a FIFO's 16 bytes a
	// wake-up, and the pump takes a guest that took less than a quarter
	// of its line's rate in a second for stalled and drops the paste's
	// rest: at 115200 baud that needed both to wake 180 times a second,
	// which a loaded host's timers do not keep to; at 9600, 15 times.
	u := lineAt(12)
	_, p := startTerminalPump(t, pts, u)
	defer p.stop()
	pasted := make([]byte, 6*1024)
	for i := range pasted {
		pasted[i] = 'a' + byte(i%23) // a byte out of order or missing shows
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := ptm.Write(pasted)
		wrote <- err
	}()
	// The guest reads 512 bytes a millisecond or so: far slower than the
	// pump reads a terminal.
	reg := make([]byte, 1)
	var got []byte
	overrun := false
	for deadline := time.Now().Add(20 * time.Second); len(got) < len(pasted) && time.Now().Before(deadline); {
		for i := 0; i < 512; i++ {
			u.Read(5, reg) // LSR
			overrun = overrun || reg[0]&0x02 != 0
			if reg[0]&0x01 == 0 {
				break
			}
			u.Read(0, reg) // RBR
			got = append(got, reg[0])
		}
		time.Sleep(time.Millisecond)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, pasted) {
		n := 0
		for n < len(got) && n < len(pasted) && got[n] == pasted[n] {
			n++
		}
		t.Errorf("the guest read %d bytes of the %d pasted, the first %d as pasted", len(got), len(pasted), n)
	}
	if overrun {
		t.Error("LSR reports an overrun: bytes were dropped")
	}
}

// TestInputTerminalEscapeBehindTrickle: Ctrl-A x typed behind a paste
// ends the run within a few seconds when the guest reads, but slowly (a
// byte every 5 ms, below a hold's worth a second): it was held up for as
// long as the guest kept taking bytes, since any byte taken counted as
// reading.
func TestInputTerminalEscapeBehindTrickle(t *testing.T) {
	ptm, pts := rawPTY(t)
	u := devices.NewUART(nil, nil)
	in, p := startTerminalPump(t, pts, u)
	defer p.stop()
	typed := append(bytes.Repeat([]byte{'a'}, 20*1024), 0x01, 'x')
	go ptm.Write(typed)
	reg := make([]byte, 1)
	deadline := time.After(10 * time.Second)
	for {
		select {
		case <-in.quit:
			return
		case <-deadline:
			t.Fatalf("Ctrl-A x behind 20 KiB pasted for a guest reading a byte every 5 ms: not seen in 10 s (the filter saw %d bytes)", in.count())
		case <-time.After(5 * time.Millisecond):
			u.Read(5, reg) // LSR
			if reg[0]&0x01 != 0 {
				u.Read(0, reg) // RBR
			}
		}
	}
}
