package main

import (
	"net"
	"net/netip"
	"sync"

	"github.com/smolvmm/smolvmm/netback"
)

// lateBackend is a restored VM's shared network (--net user:NAME), joined
// only once the restore has succeeded (join): the network leases an
// address to each VM that joins, kept across its restarts, and logs it,
// so a restore refused after a join would leave both behind for a VM
// that never ran. Until the join the device's reader waits, and the
// guest, which has not run, sends nothing.
type lateBackend struct {
	nc   netConfig
	mu   sync.Mutex
	b    netback.Backend // the joined network, nil before
	link func(up bool)   // SetLinkNotify's, handed to b on the join
	// linkSeq counts SetLinkNotify's calls: handLink passes link on
	// again when it changed meanwhile.
	linkSeq uint64
	closed  bool
	ready   chan struct{} // closed once joined, or closed
	// open joins the network: openBackend, or a test's stub.
	open func(netConfig) (netback.Backend, error)
}

func newLateBackend(nc netConfig) *lateBackend {
	return &lateBackend{nc: nc, ready: make(chan struct{}), open: openBackend}
}

// join joins the network; failer is as openNIC's. A backend closed
// meanwhile (the machine's Close) joins nothing.
func (l *lateBackend) join() (failer nicFailer, err error) {
	b, err := l.open(l.nc) // openBackend, jail.go
	if err != nil {
		return nil, backendError(l.nc.Spec, err) // netflags.go
	}
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		b.Close()
		return nil, net.ErrClosed
	}
	l.b = b
	close(l.ready)
	l.mu.Unlock()
	l.handLink()
	failer, _ = b.(nicFailer)
	return failer, nil
}

// SetLinkNotify passes notify on to the network's backend once joined
// (virtio/net.LinkBackend): the device calls it from New, before; called
// after the join, it passes it on at once.
func (l *lateBackend) SetLinkNotify(notify func(up bool)) {
	l.mu.Lock()
	l.link = notify
	l.linkSeq++
	l.mu.Unlock()
	l.handLink()
}

// handLink passes the latest SetLinkNotify function on to the joined
// backend, outside l.mu: the backend may call it at once (a network lost
// meanwhile), and calls it holding none of lateBackend's locks. A newer
// function set while it passed one on is passed on again, so that the
// backend ends with the latest whichever hand-off ran last.
func (l *lateBackend) handLink() {
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

func (l *lateBackend) backend() netback.Backend {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b
}

// addr is the address the joined network leased the card (invalid
// before the join, or for a backend that leases none).
func (l *lateBackend) addr() netip.Addr {
	if a, ok := l.backend().(interface{ Addr() netip.Addr }); ok {
		return a.Addr()
	}
	return netip.Addr{}
}

// ReadFrame waits for the join, then reads from the network.
func (l *lateBackend) ReadFrame(buf []byte) (int, error) {
	<-l.ready
	b := l.backend()
	if b == nil {
		return 0, net.ErrClosed
	}
	return b.ReadFrame(buf)
}

// WriteFrame sends to the network once joined; before, the guest has not
// run and a frame has nowhere to go.
func (l *lateBackend) WriteFrame(frame []byte) error {
	if b := l.backend(); b != nil {
		return b.WriteFrame(frame)
	}
	return nil
}

// Close closes the network's backend if joined, and ends the wait.
func (l *lateBackend) Close() error {
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
