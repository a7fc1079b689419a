package netback

import (
	"context"
	"net"
	"sync"
	"time"
)

// frameConn is the net.Conn that plugs the guest into gvisor-tap-vsock's
// virtual switch with its datagram ("vfkit") protocol: each Read hands the
// switch one frame from the guest, each Write gives one frame for the guest.
// It lives in memory, so no socket pair or copy through the kernel is needed.
type frameConn struct {
	fromGuest *frameQueue // WriteFrame -> switch (Read)
	toGuest   *frameQueue // switch (Write) -> ReadFrame

	// stop is cancelled before fromGuest closes; see Read.
	stop     context.CancelFunc
	wakeOnce sync.Once

	// reading is closed at the switch's first Read: by then the switch has
	// registered the connection and will deliver frames to it.
	reading     chan struct{}
	readingOnce sync.Once
}

// wakeFrame is handed to the switch once after Close so that its receive
// loop, which checks its context only between reads, sees the cancelled
// context and returns without logging an error. Its destination is neither
// the gateway nor broadcast and is unknown to the switch, so it goes nowhere.
var wakeFrame = []byte{
	0x02, 0, 0, 0, 0, 0, // destination: an unused local address
	0x02, 0, 0, 0, 0, 1, // source
	0x88, 0xb5, // local experimental EtherType
}

// Read gives the switch the next frame from the guest.
func (c *frameConn) Read(b []byte) (int, error) {
	c.readingOnce.Do(func() { close(c.reading) })
	n, err := c.fromGuest.pop(b)
	if err == ErrClosed {
		woke := false
		c.wakeOnce.Do(func() { woke = true })
		if woke {
			return copy(b, wakeFrame), nil
		}
	}
	return n, err
}

// Write never fails: after Close the frame is dropped silently, since the
// switch would log an error for a failed write.
func (c *frameConn) Write(b []byte) (int, error) {
	c.toGuest.push(b)
	return len(b), nil
}

// Close is called by the switch when it disconnects us; the backend's own
// Close tears the queues down.
func (c *frameConn) Close() error { return nil }

// The switch only prints the addresses and never sets deadlines.
func (c *frameConn) LocalAddr() net.Addr                { return frameAddr("smolvmm-switch") }
func (c *frameConn) RemoteAddr() net.Addr               { return frameAddr("smolvmm-guest") }
func (c *frameConn) SetDeadline(_ time.Time) error      { return nil }
func (c *frameConn) SetReadDeadline(_ time.Time) error  { return nil }
func (c *frameConn) SetWriteDeadline(_ time.Time) error { return nil }

// frameAddr names the two ends of a frameConn in the switch's debug logs.
type frameAddr string

// Network and String implement net.Addr.
func (a frameAddr) Network() string { return "frames" }
func (a frameAddr) String() string  { return string(a) }
