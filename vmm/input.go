package vmm

import (
	"errors"
	"io"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/vmm/devices"
)

// inputEmptyWait is how long the pump waits before it reads again a
// reader whose Read returned (0, nil): nothing now, says the reader, with
// no way to be told when. The UART's room is waited for exactly
// (inputPump.sleep).
const inputEmptyWait = time.Millisecond

// inputLineWait is the pump's shortest sleep while the line carries
// bytes to a receiver with room: it hands on what the line carried
// meanwhile at once (at 115200 baud 11.5 bytes, within the FIFO's 16), where
// waking for each byte's due time cost a quarter of a core through a
// paste. A slower line's next byte is waited for exactly.
const inputLineWait = time.Millisecond

// inputChunk bounds one read from Config.Input.
const inputChunk = 256

// inputHoldLimit bounds what the pump holds of a FileInput terminal's
// keys that the UART had no room for (pollTerminal).
const inputHoldLimit = 4096

// inputStallWait is how long the UART must have taken less than
// a trickle (inputPump.trickle) of held bytes, the hold full, before the pump takes the
// guest for one that stopped reading (or reads too slowly to be waited for)
// and reads the terminal again, dropping what it cannot hold: until then
// a paste waits in the terminal, as it waits for a slow serial line.
const inputStallWait = time.Second

// inputPump moves bytes from Config.Input to the UART while the machine
// runs, and never drops a byte it read but for a stalled terminal's: it
// reads at most what the UART's receive buffer has room for, and holds
// what the UART no longer takes when the read returns (the guest turned
// its FIFO off or slowed its line meanwhile) until it does, reading no
// more until then; a byte held or read at stop is kept for
// RemainingInput. A FileInput over a terminal is held beyond the UART's
// room and, once the guest has stopped reading, read whatever the room
// (pollTerminal).
// How it is stopped depends on what Input is (see Config.Input):
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
	uart inputUART

	// mu makes delivery and stop exclusive: once stop has set stopped, no
	// byte reaches the UART.
	mu      sync.Mutex
	stopped bool
	rest    []byte // read after stop: RemainingInput gives them back
	err     error  // the error that ended reading (io.EOF), kept for RemainingInput

	quit chan struct{} // closed by stop
	done chan struct{} // closed when the pump's goroutine has returned

	// terminal: the input is a FileInput over a terminal, read by
	// pollTerminal. held is what the pump read that the UART had no room
	// for yet (under mu).
	terminal bool
	held     []byte

	wakeFD    int                                           // eventfd that stop writes (*os.File input), else -1
	deadliner interface{ SetReadDeadline(time.Time) error } // non-nil: Read can be interrupted
	// onPanic, when set, gets the source's Read's panic (a *PanicError),
	// on the pump's goroutine, which reads no more.
	onPanic func(error)

	// The UART's room callback (roomFreed) signals roomFD, an eventfd
	// polled beside wakeFD (*os.File input, else -1; under roomMu, which
	// stop closes it under), or roomCh (any other input), so that the pump
	// sleeps while the guest reads nothing.
	roomMu sync.Mutex
	roomFD int
	roomCh chan struct{}

	wakes atomic.Int64 // waits the pump came back from, counted for tests
}

// FileInput is a Config.Input that reads a file through a filter (the
// smolvmm command strips its escape keys so). The machine treats it as the
// file itself: it polls File and calls Read only when File has data, so
// nothing is left reading when Run returns. Read must then read File at
// most once, returning (0, nil) when it filtered out all it read, and the
// machine must be File's only reader while it runs.
//
// The UART takes bytes no faster than the guest's serial line carries
// them (devices.UART.CharTime; about 960 a second at NetBSD's default 9600
// baud), as many as its 16-byte FIFO holds: the rest wait here or in File.
//
// When File is a terminal (it answers TCGETS), Read is called whenever
// File has data and the UART or a hold of 4 KiB has room, the held bytes
// handed to the guest in order as it reads: a paste larger than both
// waits in the terminal while the guest reads, none of it lost. Once the
// guest has taken next to no byte for a second (less than a quarter of
// what its line carries in that time), the hold full, Read is called
// whenever File has data, so that the filter sees every key, a quit key
// among them, however much was typed or pasted for a guest that hangs:
// the keys that do not fit in the hold are then dropped as a serial
// line's overrun drops them (the UART's LSR reports it). What is held
// when Run returns is given back by RemainingInput. Any other File is
// read only as far as the UART has room: no byte is dropped.
type FileInput interface {
	io.Reader
	// File is the file Read reads, for the machine to poll.
	File() *os.File
}

// inputUART is what the pump needs of the UART (a *devices.UART): a test
// gives it one whose guest reads in the instant between two calls.
type inputUART interface {
	RXWait(room func()) (n int, wait time.Duration)
	Offer(p []byte) int
	Overrun()
	CharTime() time.Duration
}

// startInput starts the pump for src; onPanic (or nil) is told of a panic
// of src's Read.
func startInput(src io.Reader, uart *devices.UART, waited *goroutineSet, onPanic func(error)) (*inputPump, error) {
	p := &inputPump{src: src, uart: uart, quit: make(chan struct{}), done: make(chan struct{}), wakeFD: -1, roomFD: -1, onPanic: onPanic}
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
		if fd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
			unix.Close(p.wakeFD)
			return nil, &Error{Op: "console input: eventfd", Err: err}
		}
		p.roomFD = fd
		if _, ok := src.(FileInput); ok {
			if err := rc.Control(func(fd uintptr) {
				_, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
				p.terminal = err == nil
			}); err != nil {
				unix.Close(p.wakeFD)
				unix.Close(p.roomFD)
				return nil, &Error{Op: "console input", Err: err}
			}
		}
		go func() {
			defer close(p.done)
			defer waited.enter()() // Run waits for the pump: Close from Read must not
			defer p.keepHeld()
			// Inside Control the descriptor cannot be closed and reused
			// under the poll.
			poll := p.pollFile
			if p.terminal {
				poll = p.pollTerminal
			}
			if err := rc.Control(func(fd uintptr) { poll(int(fd)) }); err != nil {
				p.fail(err)
			}
		}()
	default:
		p.roomCh = make(chan struct{}, 1)
		if d, ok := src.(interface{ SetReadDeadline(time.Time) error }); ok && d.SetReadDeadline(time.Time{}) == nil {
			p.deadliner = d
		}
		go func() {
			defer close(p.done)
			defer waited.enter()()
			defer p.keepHeld()
			p.readLoop()
		}()
	}
	return p, nil
}

// space waits until the UART can take a byte and returns how many (at most
// inputChunk); 0 when the pump is stopped.
func (p *inputPump) space() int {
	for {
		n, wait := p.uart.RXWait(p.roomFreed)
		if n > 0 {
			return min(n, inputChunk)
		}
		if p.sleep(wait) {
			return 0
		}
	}
}

// room waits until the bytes held from an earlier read are fed to the
// guest, then for the UART's room (space), and returns how many bytes the
// next read may take: 0 when the pump ends while it waits. pollFile and
// readLoop start each round with it.
func (p *inputPump) room() int {
	for {
		held, _, wait := p.feedHeld()
		if held == 0 {
			return p.space()
		}
		if p.sleep(wait) {
			return 0
		}
	}
}

// sleep waits for the UART's room as RXWait said: until wait has passed
// (the line's next byte is due; inputLineWait at least), or with a
// negative wait until the guest makes room (roomFreed), or until the pump
// is stopped, which it reports. Waking no sooner, the pump costs nothing
// while a guest that does not read leaves the input waiting.
func (p *inputPump) sleep(wait time.Duration) (end bool) {
	if wait > 0 {
		wait = max(wait, inputLineWait)
	}
	if p.wakeFD >= 0 {
		_, end = p.waitReadable(-1, wait)
		return end
	}
	var timeout <-chan time.Time
	if wait >= 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-p.quit:
		end = true
	case <-p.roomCh:
	case <-timeout:
	}
	p.wakes.Add(1)
	return end
}

// roomFreed is the UART's room callback (RXWait): it wakes the pump's
// sleep. It runs under the UART's lock, so it only signals, and after
// stop it signals nothing: the eventfd may be closed, its number reused.
func (p *inputPump) roomFreed() {
	if p.roomCh != nil {
		select {
		case p.roomCh <- struct{}{}:
		default: // a wake-up is already pending
		}
		return
	}
	p.roomMu.Lock()
	defer p.roomMu.Unlock()
	if p.roomFD >= 0 {
		var one = [8]byte{1}
		_, _ = unix.Write(p.roomFD, one[:])
	}
}

// pollFile reads the file fd while the machine runs, and only when poll
// says it has data: stop wakes the poll and nothing is left reading.
func (p *inputPump) pollFile(fd int) {
	buf := make([]byte, inputChunk)
	for {
		k := p.room()
		if k == 0 {
			return
		}
		ready, end := p.waitReadable(fd, -1)
		if end {
			return
		}
		if !ready {
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
			p.held = append(p.held, buf[:n]...)
			p.feedHeldLocked()
		}
		p.mu.Unlock()
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			p.fail(err)
			p.drainHeld()
			return
		}
	}
}

// pollTerminal is pollFile for a FileInput over a terminal: it reads
// while the UART or the hold has room, what the UART cannot take held
// (hold) and handed on as the line carries it and the guest reads;
// a full hold leaves the rest in the terminal (backpressure). Once the
// guest has taken less than a trickle in inputStallWait (none: a
// hung guest; a trickle: one the paste would outlast) it reads whenever the
// terminal has data, whatever the room, so that the filter sees every
// key (the command's Ctrl-A x is for a hung guest, which reads none), and
// drops what it cannot hold. Held bytes are still handed on after the
// terminal's end.
func (p *inputPump) pollTerminal(fd int) {
	buf := make([]byte, inputChunk)
	// taken is when the hold was last empty or the guest had last taken
	// a trickle since: a guest that reads slower than that in an
	// inputStallWait counts as stalled, so that a paste queued in
	// the terminal behind a trickle does not hold Ctrl-A x up for long
	// (each byte a trickle takes leaves the hold room for one more: room
	// alone says nothing).
	taken, since := time.Now(), 0
	for {
		held, moved, wait := p.feedHeld()
		now := time.Now()
		since += moved
		if held == 0 || since >= p.trickle() {
			taken, since = now, 0
		}
		stalled := now.Sub(taken) >= inputStallWait
		readFD := fd
		switch {
		case held == 0:
			wait = -1 // nothing for the UART: the terminal alone is waited for
		case wait > 0:
			wait = max(wait, inputLineWait)
		}
		if held >= inputHoldLimit && !stalled {
			// The guest reads: the terminal waits for room, or until
			// the guest is found stalled.
			readFD = -1
			if until := taken.Add(inputStallWait).Sub(now); wait < 0 || until < wait {
				wait = until
			}
		}
		ready, end := p.waitReadable(readFD, wait)
		if end {
			return
		}
		if !ready {
			continue
		}
		// Reading only what the hold has room for drops nothing while
		// the guest reads: the UART's room only grows until hold.
		k := inputChunk
		if !stalled {
			k = min(k, inputHoldLimit-held)
		}
		p.mu.Lock()
		if p.stopped {
			p.mu.Unlock()
			return
		}
		n, err := p.readReady(fd, buf[:k])
		if n > 0 {
			p.hold(buf[:n])
		}
		p.mu.Unlock()
		switch {
		case err == unix.EAGAIN || err == unix.EINTR:
		case err != nil:
			p.fail(err)
			p.drainHeld()
			return
		}
	}
}

// trickle is how many bytes the guest must take in inputStallWait to
// count as reading: a hold's worth, or a quarter of what the line carries
// in that time if less, for a guest cannot take bytes faster than its line
// (at 9600 baud, about 960 a second), and the pump, woken on a loaded
// host, hands them on slower still.
func (p *inputPump) trickle() int {
	n := inputHoldLimit
	if ct := p.uart.CharTime(); ct > 0 {
		n = min(n, int(inputStallWait/ct)/4)
	}
	return max(n, 1)
}

// waitReadable polls fd (none when -1), the wake-up eventfd and the room
// eventfd for at most wait (negative: no limit) and reports whether fd
// has data (or its end), and whether the pump is done: stopped, or the
// poll failed.
func (p *inputPump) waitReadable(fd int, wait time.Duration) (ready, end bool) {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}, {Fd: int32(p.wakeFD), Events: unix.POLLIN}, {Fd: int32(p.roomFD), Events: unix.POLLIN}}
	var timeout *unix.Timespec
	if wait >= 0 {
		ts := unix.NsecToTimespec(int64(wait))
		timeout = &ts
	}
	_, err := unix.Ppoll(fds, timeout, nil)
	p.wakes.Add(1)
	if err != nil {
		if err == unix.EINTR {
			return false, false
		}
		p.fail(err)
		return false, true
	}
	switch {
	case fds[1].Revents != 0:
		return false, true // stopped
	case fds[0].Revents&unix.POLLNVAL != 0:
		p.fail(os.ErrClosed)
		return false, true
	}
	if fds[2].Revents != 0 {
		var n [8]byte
		_, _ = unix.Read(p.roomFD, n[:]) // reset: the next wake-up is a new one
	}
	return fds[0].Revents != 0, false
}

// feedHeld hands the UART what it has room for of the held bytes, none
// once stopped, and returns how many are still held, how many it handed
// on and, when some are still held, how long to sleep for the UART's room
// (RXWait's wait: 0 when it has room already).
func (p *inputPump) feedHeld() (held, moved int, wait time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.stopped {
		moved = p.feedHeldLocked()
	}
	if len(p.held) > 0 {
		var n int
		if n, wait = p.uart.RXWait(p.roomFreed); n > 0 {
			wait = 0
		}
	}
	return len(p.held), moved, wait
}

// feedHeldLocked is feedHeld with p.mu held. The UART measures its room
// and takes the bytes at once (Offer): the guest may shrink the room
// between two calls (FIFO off, a slower line).
func (p *inputPump) feedHeldLocked() int {
	n := p.uart.Offer(p.held)
	p.held = p.held[:copy(p.held, p.held[n:])]
	return n
}

// drainHeld hands the held bytes on as the UART takes them, once the
// input has ended, until none is left or the pump is stopped.
func (p *inputPump) drainHeld() {
	for {
		held, _, wait := p.feedHeld()
		if held == 0 || p.sleep(wait) {
			return
		}
	}
}

// keepHeld gives the bytes still held, which no guest will now take, to
// RemainingInput ahead of any read after them; the pump's goroutine calls
// it as it returns.
func (p *inputPump) keepHeld() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rest, p.held = append(p.held, p.rest...), nil
}

// hold queues b, read from the terminal, behind the held bytes and hands
// the UART what it has room for. Past inputHoldLimit held bytes the rest
// is dropped, as a serial line overruns, and the UART told so (LSR OE for
// the guest to see): told, not handed a byte to refuse, which the guest
// reading in the instant since the UART was filled would have let in
// ahead of the held ones. p.mu is held.
func (p *inputPump) hold(b []byte) {
	p.held = append(p.held, b...)
	p.feedHeldLocked()
	if len(p.held) > inputHoldLimit {
		p.held = p.held[:inputHoldLimit]
		p.uart.Overrun()
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
		k := p.room()
		if k == 0 {
			return
		}
		n, err := guardRead(p.src, buf[:k])
		p.mu.Lock()
		stopped := p.stopped
		if stopped {
			p.rest = append(p.rest, buf[:n]...)
		} else if n > 0 {
			p.held = append(p.held, buf[:n]...)
			p.feedHeldLocked()
		}
		p.mu.Unlock()
		if stopped && p.deadliner != nil && errors.Is(err, os.ErrDeadlineExceeded) {
			return // our own interruption, not the reader's error
		}
		if err != nil {
			p.fail(err)
			p.drainHeld()
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
			case <-time.After(inputEmptyWait):
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
		p.roomMu.Lock()
		unix.Close(p.roomFD)
		p.roomFD = -1
		p.roomMu.Unlock()
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
