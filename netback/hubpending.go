package netback

import (
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Bounds of the connections a hub holds before their handshake is over:
// each holds a descriptor and a goroutine for up to hubHandshakeTimeout,
// and a process that connects and says nothing would otherwise take every
// descriptor the hub may open, leaving none for the VMs.
const (
	// hubPendingPerUser is how many one user's processes may have at
	// once: more than one user may have VMs (userLimit), so that all of
	// them rejoin at once after the network restarts.
	hubPendingPerUser = 128
	// hubPendingTotal is how many all users' processes may have at once.
	hubPendingTotal = 512
)

// Bounds of the log lines a flood of connections makes (handshakes that
// fail, refusals, connections over the bounds above): hubLogBurst lines
// of a kind at once, then one each hubLogEvery.
const (
	hubLogBurst = 20
	hubLogEvery = 3 * time.Second
)

// pendingLimits are hubPendingPerUser and hubPendingTotal, variables for
// the tests.
var pendingLimits = struct{ perUser, total int }{hubPendingPerUser, hubPendingTotal}

// pendingSet counts a hub's connections whose handshake is not over, by
// the user of the process at the other end (-1 when unknown).
type pendingSet struct {
	mu    sync.Mutex
	n     map[int]int
	total int
}

// take counts a connection of uid, unless it is over the bounds: then it
// returns why, and counts nothing. exempt (root's, the hub's own user's)
// is counted but never refused: the other users' connections cannot keep
// those out.
func (s *pendingSet) take(uid int, exempt bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !exempt {
		who := fmt.Sprintf("uid %d has", uid)
		if uid < 0 {
			who = "processes whose user is unknown have"
		}
		switch {
		case s.n[uid] >= pendingLimits.perUser:
			return fmt.Sprintf("%s %d connections to the network whose handshake is not over, the most one user may have at once", who, s.n[uid])
		case s.total >= pendingLimits.total:
			return fmt.Sprintf("the network has %d connections whose handshake is not over, the most it takes at once", s.total)
		}
	}
	if s.n == nil {
		s.n = map[int]int{}
	}
	s.n[uid]++
	s.total++
	return ""
}

// done uncounts a connection of uid that take counted.
func (s *pendingSet) done(uid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.n[uid]--; s.n[uid] <= 0 {
		delete(s.n, uid)
	}
	s.total--
}

// admitPending counts c, just accepted, as pending for its user, or
// refuses it at once, saying why to the VM if it can without waiting
// (written into an empty socket buffer; a process that says nothing
// holds no descriptor for it) and, within logLimit, to the log. It
// returns the user it counted c for, and false if c was refused (and
// closed).
func (h *Hub) admitPending(c net.Conn) (uid int, ok bool) {
	uid, err := h.peerUID(c)
	if err != nil {
		uid = -1
	}
	why := h.pending.take(uid, uid == 0 || uid == h.self)
	if why == "" {
		return uid, true
	}
	h.busyLog.logf(h.logf, "refused a connection at once: %s", why)
	_ = writeHubMessage(writeNow{c}, byte(RefusedBusy), hubAnswer{Error: why})
	_ = c.Close()
	return uid, false
}

// writeNow writes to a connection in one non-blocking write: what goes
// into its socket's buffer at once, never a wait. The accept loop writes
// so into a new socket's empty buffer, where the whole answer fits. With
// a write deadline (50 ms) instead, an accept loop slowed past it (a
// loaded host) closed refused connections without their answer, and
// their VMs read EOF where they wanted RefusedBusy.
type writeNow struct{ c net.Conn }

// Write writes what of b the socket takes at once; a short write is an
// error.
func (w writeNow) Write(b []byte) (int, error) {
	sc, ok := w.c.(syscall.Conn)
	if !ok {
		return 0, fmt.Errorf("a %T has no descriptor to write to at once", w.c)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, err
	}
	var n int
	var werr error
	// Returning true: done after one try, even one that would block.
	if err := rc.Write(func(fd uintptr) bool {
		n, werr = unix.Write(int(fd), b)
		return true
	}); err != nil {
		return 0, err
	}
	if werr != nil {
		return 0, os.NewSyscallError("write", werr)
	}
	if n < len(b) {
		return n, io.ErrShortWrite
	}
	return n, nil
}

// logLimit lets lines of one kind through hubLogBurst at once, then one
// each hubLogEvery (a token bucket, kept as the time it is full again),
// saying with the next line let through how many were held back.
type logLimit struct {
	mu   sync.Mutex
	full time.Time
	held uint64
}

// logf logs through logf unless the bucket is empty.
func (l *logLimit) logf(logf func(string, ...any), format string, args ...any) {
	now := time.Now()
	l.mu.Lock()
	full := l.full
	if full.Before(now) {
		full = now
	}
	full = full.Add(hubLogEvery)
	if full.Sub(now) > hubLogBurst*hubLogEvery {
		l.held++
		l.mu.Unlock()
		return
	}
	l.full = full
	held := l.held
	l.held = 0
	l.mu.Unlock()
	line := fmt.Sprintf(format, args...)
	if held > 0 {
		line += fmt.Sprintf(" (and %d more such lines held back: at most %d at once, then one each %v)", held, hubLogBurst, hubLogEvery)
	}
	logf("%s", line)
}
