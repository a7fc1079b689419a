package vmm

import (
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
