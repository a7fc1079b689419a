package bench

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/smolvmm/smolvmm/internal/termsafe"
)

// settledConn is the bench's end of a Target's SettledFlag socket: the VM
// process writes a byte on it when it has done what it does after its
// guest starts, so that its memory is read after that; and it may wait
// for the bench to close it before it unmaps anything (a guest that ends
// soon after, as the demo guest does, must not take its RAM away between
// the byte and the bench's SIGSTOP).
type settledConn struct {
	conn, child *os.File
	done        chan struct{} // closed at the process's byte, or at EOF or release
	// settled: the byte came (set before done closes). EOF (the process
	// gone) or the bench's own release end the wait without it.
	settled bool
	// mapped: the process settled without unmapping its executable
	// (SettledMapped), mappedWhy saying why when it said.
	mapped    bool
	mappedWhy string
	// guestRAM is the address of the guest RAM in the process, when it
	// said (SettledGuestRAM); 0 until then.
	guestRAM atomic.Uint64
	once     sync.Once
}

// What a Target's process writes on its SettledFlag socket once it has
// settled, in one write: SettledReleased when it unmapped its
// executable's set-up code, or SettledMapped followed by why it did not
// (text, SettledMax bytes in all at most). Another first byte counts as
// settled, nothing said of the executable. Before it, in a write of its
// own, the process may say where its guest RAM is mapped:
// SettledGuestRAM followed by the address, 8 bytes little-endian; the
// memory read then takes the mapping there for the guest RAM, where a
// mapping of the same size (the Go heap grows in 4 MiB mappings) could
// not be told from it by its size.
const (
	SettledReleased = 1
	SettledMapped   = 2
	SettledGuestRAM = 3
	SettledMax      = 256
)

// guestRAMMsgLen is the length of a SettledGuestRAM message.
const guestRAMMsgLen = 9

// attachSettled gives cmd the process's end of a new socket pair as its
// next descriptor (3 without other ExtraFiles) and t.SettledFlag naming
// it. It returns nil when t has no SettledFlag or is jailed (the jail's
// own child could not be given the descriptor).
func attachSettled(t Target, cmd *exec.Cmd) (*settledConn, error) {
	if t.SettledFlag == "" || t.Jailed {
		return nil, nil
	}
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("settled socket: %w", err)
	}
	// Non-blocking, so that the runtime's poller serves it: Close then
	// ends a pending Read.
	if err := syscall.SetNonblock(fds[0], true); err != nil {
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		return nil, fmt.Errorf("settled socket: %w", err)
	}
	s := &settledConn{conn: os.NewFile(uintptr(fds[0]), "settled"), child: os.NewFile(uintptr(fds[1]), "settled (VM's end)"),
		done: make(chan struct{})}
	cmd.ExtraFiles = append(cmd.ExtraFiles, s.child)
	cmd.Args = append(cmd.Args, t.SettledFlag, fmt.Sprint(2+len(cmd.ExtraFiles)))
	return s, nil
}

// started closes the bench's copy of the process's end, once the process
// has its own, and follows the bench's end.
func (s *settledConn) started() {
	s.child.Close()
	go func() {
		defer close(s.done)
		buf := make([]byte, guestRAMMsgLen+SettledMax)
		var b []byte
		for {
			n, err := s.conn.Read(buf)
			b = append(b, buf[:n]...)
			if len(b) >= guestRAMMsgLen && b[0] == SettledGuestRAM && s.guestRAM.Load() == 0 {
				s.guestRAM.Store(binary.LittleEndian.Uint64(b[1:guestRAMMsgLen]))
				b = b[guestRAMMsgLen:]
			}
			// The settled message, or a part of the address's still
			// to come.
			if len(b) > 0 && (b[0] != SettledGuestRAM || s.guestRAM.Load() != 0) {
				break
			}
			if err != nil {
				return
			}
		}
		s.settled = true
		if b[0] == SettledMapped {
			s.mapped, s.mappedWhy = true, termsafe.Line(string(b[1:min(len(b), SettledMax)]))
		}
	}()
}

// guestRAMAt is the address of the guest RAM the process said, 0 when it
// did not (or s is nil).
func (s *settledConn) guestRAMAt() uint64 {
	if s == nil {
		return 0
	}
	return s.guestRAM.Load()
}

// wait returns when the process has settled (true), or after timeout
// (0: none) or when giveUp closes (nil: never), or when the socket ended
// without the byte (false: the process is gone, or release was called).
func (s *settledConn) wait(timeout time.Duration, giveUp <-chan struct{}) bool {
	var expired <-chan time.Time
	if timeout > 0 {
		timer := time.NewTimer(timeout)
		defer timer.Stop()
		expired = timer.C
	}
	select {
	case <-s.done:
		return s.settled
	case <-expired:
		return false
	case <-giveUp:
		return false
	}
}

// release tells the process that the bench is done with it (EOF on its
// end): it may go on to its end.
func (s *settledConn) release() { s.once.Do(func() { s.conn.Close() }) }

// close releases the process and joins what follows the socket;
// startedOK says whether started was called.
func (s *settledConn) close(startedOK bool) {
	s.release()
	if startedOK {
		<-s.done
	} else {
		s.child.Close()
	}
}
