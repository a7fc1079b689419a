package vmm

import (
	"bytes"
	"testing"
	"time"

	"github.com/smolvmm/smolvmm/vmm/devices"
)

// stalledConsole is a Config.Console nobody reads (a paused pager, a full
// pipe): Write returns once release is closed.
type stalledConsole struct{ release chan struct{} }

func (s stalledConsole) Write(p []byte) (int, error) { <-s.release; return len(p), nil }

// TestInputEscapeWhileConsoleStalled: Ctrl-A x typed while the guest is
// held in a transmit by a console that takes no more output reaches the
// command's filter. The vCPU waited for the console inside the UART's
// lock, which the input pump needs before each read of the terminal, so
// the key was never read and the guest could not be stopped.
func TestInputEscapeWhileConsoleStalled(t *testing.T) {
	old := consoleBufferFor
	consoleBufferFor = 64
	defer func() { consoleBufferFor = old }()
	st := stalledConsole{release: make(chan struct{})}
	cw := newConsoleWriter(st, nil)
	held := make(chan struct{})
	cw.mu.Lock()
	cw.full = func() {
		select {
		case <-held:
		default:
			close(held)
		}
	}
	cw.mu.Unlock()
	u := devices.NewUART(cw, nil)
	printed := make(chan struct{})
	go func() { // the guest's kernel printf, a byte per THR write
		defer close(printed)
		for range 4096 {
			u.Write(0, []byte{'.'})
		}
	}()
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the guest's output never filled the console buffer")
	}
	ptm, pts := rawPTY(t)
	in, p := startTerminalPump(t, pts, u)
	go ptm.Write([]byte{0x01, 'x'})
	select {
	case <-in.quit:
	case <-time.After(10 * time.Second):
		t.Errorf("Ctrl-A x typed while the guest waits for the console: not read in 10 s (the filter saw %d bytes)", in.count())
	}
	close(st.release)
	cw.Stop()
	<-printed
	p.stop()
	cw.Close()
}

// TestInputEscapeNotPaced: the command's escape keys are the filter's,
// read from the terminal before the UART: Ctrl-A x typed behind 1000
// bytes reaches the filter while the guest's 9600-baud line has carried
// one of them (the guest reads none, its receiver full with the FIFO
// off), not after the second the line needs for them.
func TestInputEscapeNotPaced(t *testing.T) {
	ptm, pts := rawPTY(t)
	u := devices.NewUART(nil, nil)
	in, p := startTerminalPump(t, pts, u)
	typed := append(bytes.Repeat([]byte{'a'}, 1000), 0x01, 'x')
	go ptm.Write(typed)
	select {
	case <-in.quit:
	case <-time.After(10 * time.Second):
		p.stop()
		t.Fatalf("Ctrl-A x not read in 10 s (the filter saw %d bytes)", in.count())
	}
	p.mu.Lock() // the read that saw it has handed its bytes on
	p.mu.Unlock()
	p.stop()
	got, _ := drainUART(u, 1)
	if lsr := lsrOf(u); !bytes.Equal(got, typed[:1]) || lsr&0x01 != 0 {
		t.Errorf("the guest's receiver held %q (and LSR %#x after it) when the filter saw Ctrl-A x, want the first byte typed alone", got, lsr)
	}
}
