package netback

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
)

// LateBackend is a card's backend whose network is joined only when
// asked (Join): a restored VM's shared network, joined once the restore
// has succeeded. A shared network leases an address to each VM that
// joins, kept across its restarts, and logs it, so a restore refused
// after a join would leave both behind for a VM that never ran. Until
// the join ReadFrame waits, and WriteFrame drops the frame: the guest,
// which has not run, sends nothing.
type LateBackend struct {
	// open joins the network, once: NewLateBackend's.
	open func() (Backend, error)
	mu   sync.Mutex
	b    Backend    // the joined network, nil before
	link func(bool) // SetLinkNotify's, handed to b on the join
	// linkSeq counts SetLinkNotify's calls: handLink passes link on
	// again when it changed meanwhile.
	linkSeq uint64
	closed  bool
	ready   chan struct{} // closed once joined, or closed
}

// errJoinedTwice is a second Join's error, whether the first had ended
// or ran meanwhile.
var errJoinedTwice = errors.New("late-joined network: joined already")

// NewLateBackend returns a backend that joins its network, by calling
// open, at Join (open is, for instance, OpenWith of a shared network's
// spec).
func NewLateBackend(open func() (Backend, error)) *LateBackend {
	return &LateBackend{open: open, ready: make(chan struct{})}
}

// Join joins the network, by calling open, and returns its backend
// (which l goes on to read and write through, and which Close closes).
// open's error is returned as is. A LateBackend closed before or while
// it joins keeps nothing joined: Join closes the backend open made and
// returns an error wrapping ErrClosed. A second Join is an error.
func (l *LateBackend) Join() (Backend, error) {
	l.mu.Lock()
	closed, joined := l.closed, l.b != nil
	l.mu.Unlock()
	switch {
	case closed:
		return nil, fmt.Errorf("late-joined network: join: %w", ErrClosed)
	case joined:
		return nil, errJoinedTwice
	}
	b, err := l.open()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	if l.closed || l.b != nil {
		closed := l.closed
		l.mu.Unlock()
		b.Close()
		if closed {
			return nil, fmt.Errorf("late-joined network: closed while it joined: %w", ErrClosed)
		}
		return nil, errJoinedTwice
	}
	l.b = b
	close(l.ready)
	l.mu.Unlock()
	l.handLink()
	return b, nil
}

// SetLinkNotify passes notify on to the network's backend once joined,
// if it is a backend whose link can go down (a shared network's): a
// virtio-net device calls it when made, before the join; called after
// the join, it passes notify on at once.
func (l *LateBackend) SetLinkNotify(notify func(up bool)) {
	l.mu.Lock()
	l.link = notify
	l.linkSeq++
	l.mu.Unlock()
	l.handLink()
}

// handLink passes the latest SetLinkNotify function on to the joined
// backend, outside l.mu: the backend may call it at once (a network lost
// meanwhile), and calls it holding none of LateBackend's locks. A newer
// function set while it passed one on is passed on again, so that the
// backend ends with the latest whichever hand-off ran last.
func (l *LateBackend) handLink() {
	for {
		l.mu.Lock()
		lb, ok := l.b.(interface{ SetLinkNotify(func(bool)) })
		link, seq := l.link, l.linkSeq
		l.mu.Unlock()
		if !ok || link == nil {
			return
		}
		lb.SetLinkNotify(link)
		l.mu.Lock()
		done := l.linkSeq == seq
		l.mu.Unlock()
		if done {
			return
		}
	}
}

// Backend is the joined network's backend, nil before the join.
func (l *LateBackend) Backend() Backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// Addr is the address the joined network leased the card at its last
// connection (Joined.Addr): invalid before the join, or for a backend
// that leases none.
func (l *LateBackend) Addr() netip.Addr {
	if a, ok := l.Backend().(interface{ Addr() netip.Addr }); ok {
		return a.Addr()
	}
	return netip.Addr{}
}

// ReadFrame implements Backend: it waits for the join, then reads from
// the network. After Close it returns an error wrapping ErrClosed.
func (l *LateBackend) ReadFrame(buf []byte) (int, error) {
	<-l.ready
	b := l.Backend()
	if b == nil {
		return 0, fmt.Errorf("late-joined network: read frame: %w", ErrClosed)
	}
	return b.ReadFrame(buf)
}

// WriteFrame implements Backend: it sends to the network once joined;
// before, the guest has not run and a frame has nowhere to go, so it is
// dropped. After Close it returns an error wrapping ErrClosed.
func (l *LateBackend) WriteFrame(frame []byte) error {
	l.mu.Lock()
	b, closed := l.b, l.closed
	l.mu.Unlock()
	switch {
	case b != nil:
		return b.WriteFrame(frame)
	case closed:
		return fmt.Errorf("late-joined network: write frame: %w", ErrClosed)
	}
	return nil
}

// Close implements Backend: it closes the network's backend if joined,
// and ends ReadFrame's wait.
func (l *LateBackend) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.b == nil {
		close(l.ready)
		return nil
	}
	return l.b.Close()
}
