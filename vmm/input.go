package vmm

import (
	"errors"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm/devices"
)

// inputFullWait is how long the pump waits for the guest to drain a full
// UART receive buffer before it looks again.
const inputFullWait = time.Millisecond

// inputChunk bounds one read from Config.Input.
const inputChunk = 256

// inputPump moves bytes from Config.Input to the UART while the machine
// runs, and never takes a byte it cannot hand to the guest at once: it
// reads at most what the UART's receive buffer has room for, and a byte
// read after stop is kept for RemainingInput, not dropped. How it is
// stopped depends on what Input is (see Config.Input):
//
//   - an *os.File (or a FileInput's File) is polled together with a
//     wake-up eventfd and read only when poll reports data, so stop ends
//     the pump at once and no read is in flight when Run returns;
//   - a reader with SetReadDeadline (a net.Conn) is interrupted by a
//     deadline in the past, then given its deadline back;
//   - any other reader cannot be interrupted: a Read in flight at stop
//     returns when the reader has data (or an error), and what it returns
//     is kept for RemainingInput.
type inputPump struct {
	src  io.Reader
	uart *devices.UART

	// mu makes delivery and stop exclusive: once stop has set stopped, no
	// byte reaches the UART.
	mu      sync.Mutex
	stopped bool
	rest    []byte // read after stop: RemainingInput gives them back
	err     error  // the error that ended reading (io.EOF), kept for RemainingInput

	quit chan struct{} // closed by stop
	done chan struct{} // closed when the pump's goroutine has returned

	wakeFD    int                                           // eventfd that stop writes (*os.File input), else -1
	deadliner interface{ SetReadDeadline(time.Time) error } // non-nil: Read can be interrupted
	// onPanic, when set, gets the source's Read's panic (a *PanicError),
	// on the pump's goroutine, which reads no more.
	onPanic func(error)
}

// FileInput is a Config.Input that reads a file through a filter (the
// smolvmm command strips its escape keys so). The machine treats it as the
// file itself: it polls File and calls Read only when File has data, so
// nothing is left reading when Run returns. Read must then read File at
// most once, returning (0, nil) when it filtered out all it read, and the
// machine must be File's only reader while it runs.
type FileInput interface {
	io.Reader
	// File is the file Read reads, for the machine to poll.
	File() *os.File
}

// startInput starts the pump for src; onPanic (or nil) is told of a panic
// of src's Read.
func startInput(src io.Reader, uart *devices.UART, waited *goroutineSet, onPanic func(error)) (*inputPump, error) {
	p := &inputPump{src: src, uart: uart, quit: make(chan struct{}), done: make(chan struct{}), wakeFD: -1, onPanic: onPanic}
	file, _ := src.(*os.File)
	if fi, ok := src.(FileInput); ok && file == nil {
		file = fi.File()
	}
	switch {
	case file != nil:
		rc, err := file.SyscallConn()
		if err != nil {
			return nil, &Error{Op: "console input", Err: err}
		}
		fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err != nil {
			return nil, &Error{Op: "console input: eventfd", Err: err}
		}
		p.wakeFD = fd
		go func() {
			defer close(p.done)
			defer waited.enter()() // Run waits for the pump: Close from Read must not
			// Inside Control the descriptor cannot be closed and reused
			// under the poll.
			if err := rc.Control(func(fd uintptr) { p.pollFile(int(fd)) }); err != nil {
				p.fail(err)
			}
		}()
	default:
		if d, ok := src.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Time{}) == nil {
			p.deadliner = d
		}
		go func() {
			defer close(p.done)
			defer waited.enter()()
			p.readLoop()
		}()
	}
	return p, nil
}

// space waits until the UART can take a byte and returns how many (at most
// inputChunk); 0 when the pump is stopped.
func (p *inputPump) space() int {
	for {
		if n := p.uart.RXSpace(); n > 0 {
			return min(n, inputChunk)
		}
		if p.wakeFD >= 0 {
			fds := []unix.PollFd{{Fd: int32(p.wakeFD), Events: unix.POLLIN}}
			if n, _ := unix.Poll(fds, int(inputFullWait/time.Millisecond)); n > 0 {
				return 0
			}
			continue
		}
		select {
		case <-p.quit:
			return 0
		case <-time.After(inputFullWait):
		}
	}
}

// pollFile reads the file fd while the machine runs, and only when poll
// says it has data: stop wakes the poll and nothing is left reading.
func (p *inputPump) pollFile(fd int) {
	buf := make([]byte, inputChunk)
	for {
		k := p.space()
		if k == 0 {
			return
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(p.wakeFD), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil {
			if err == unix.EINTR {
				continue
			}
			p.fail(err)
			return
		}
		if fds[1].Revents != 0 {
			return // stopped
		}
		if fds[0].Revents&unix.POLLNVAL != 0 {
			p.fail(os.ErrClosed)
			return
		}
		if fds[0].Revents == 0 {
			continue
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		// Poll saw data (or the end): this read does not wait.
		n, err := p.readReady(fd, buf[:k])
		if n > 0 {
			p.uart.Receive(buf[:n])
		}
		p.mu.Unlock()
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			p.fail(err)
			return
		}
	}
}

// readReady reads what poll found on fd: from the file itself or through
// the FileInput's filter, io.EOF at the end. A file in Go's poller is
// non-blocking, hence EAGAIN when another reader was first.
func (p *inputPump) readReady(fd int, b []byte) (int, error) {
	if f, ok := p.src.(FileInput); ok {
		return guardRead(f, b)
	}
	n, err := unix.Read(fd, b)
	switch {
	case err != nil:
		return 0, err
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readLoop reads any other reader until it fails or the pump is stopped.
func (p *inputPump) readLoop() {
	buf := make([]byte, inputChunk)
	for {
		k := p.space()
		if k == 0 {
			return
		}
		n, err := guardRead(p.src, buf[:k])
		p.mu.Lock()
		stopped := p.stopped
		if stopped {
			p.rest = append(p.rest, buf[:n]...)
		} else if n > 0 {
			p.uart.Receive(buf[:n])
		}
		p.mu.Unlock()
		if stopped && p.deadliner != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return // our own interruption, not the reader's error
		}
		if err != nil {
			p.fail(err)
			return
		}
		if stopped {
			return
		}
		if n == 0 {
			// (0, nil): nothing now, says the reader; asking again at
			// once would spin a core.
			if emptyReadHook != nil {
				emptyReadHook()
			}
			select {
			case <-p.quit:
				return
			case <-time.After(inputFullWait):
			}
		}
	}
}

// emptyReadHook, when set (by tests), is called each time the pump waits
// after a Read that returned (0, nil).
var emptyReadHook func()

// guardRead reads r into b, a panic of r's Read recovered as a
// *PanicError error: on the pump's goroutine it would end the program.
func guardRead(r io.Reader, b []byte) (n int, err error) {
	defer func() {
		if v := recover(); v != nil {
			n, err = 0, &PanicError{Call: "Config.Input's Read", Value: v, Stack: debug.Stack()}
		}
	}()
	return r.Read(b)
}

// fail records why reading ended: the guest's input is over, the machine
// runs on, unless the reader panicked (onPanic then stops it). p.mu is
// not held.
func (p *inputPump) fail(err error) {
	p.mu.Lock()
	p.err = err
	p.mu.Unlock()
	var pe *PanicError
	if errors.As(err, &pe) && p.onPanic != nil {
		p.onPanic(err)
	}
}

// stop ends delivery to the guest and waits for the pump to return, except
// for a reader that cannot be interrupted, whose Read in flight ends on
// its own (its bytes then go to RemainingInput).
func (p *inputPump) stop() {
	p.mu.Lock()
	p.stopped = true
	p.mu.Unlock()
	close(p.quit)
	switch {
	case p.wakeFD >= 0:
		var one = [8]byte{1}
		_, _ = unix.Write(p.wakeFD, one[:])
		<-p.done
		unix.Close(p.wakeFD)
	case p.deadliner != nil:
		_ = p.deadliner.SetReadDeadline(time.Unix(1, 0))
		<-p.done
		_ = p.deadliner.SetReadDeadline(time.Time{})
	}
}

// remaining is the reader RemainingInput returns.
type remaining struct{ p *inputPump }

func (r remaining) Read(b []byte) (int, error) {
	p := r.p
	<-p.done // a Read still in flight delivers its bytes first
	p.mu.Lock()
	if len(p.rest) > 0 {
		n := copy(b, p.rest)
		p.rest = p.rest[n:]
		p.mu.Unlock()
		return n, nil
	}
	err := p.err
	p.mu.Unlock()
	var pe *PanicError
	if err == io.EOF || errors.As(err, &pe) {
		return 0, err // the reader already said it has no more, or broke
	}
	return p.src.Read(b)
}
