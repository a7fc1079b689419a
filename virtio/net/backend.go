package net

// Backend is what the device sends frames to and receives them from: whole
// Ethernet frames, without the virtio header. The device owns this small
// interface so that a device model links no network stack; netback's user
// network, tap and "none" implement it, and a test can implement it with a
// channel.
//
// ReadFrame and WriteFrame are called concurrently with each other (one
// reader goroutine, one writer goroutine); Close may be called at any time
// and must unblock both.
type Backend interface {
	// ReadFrame blocks until a frame for the guest arrives and copies it
	// into buf (the device passes MaxFrameSize bytes). A frame longer than
	// buf is discarded and reported with an error wrapping
	// io.ErrShortBuffer; after Close, the error wraps net.ErrClosed and the
	// device stops reading. Any other error is counted
	// (Stats.ReadErrors) and retried after a pause.
	ReadFrame(buf []byte) (int, error)
	// WriteFrame sends one frame from the guest and does not keep it. It
	// may block while the outside is congested, which holds back the
	// transmit queue, never the vCPU nor the transport's worker.
	WriteFrame(frame []byte) error
	// Close releases the backend; the device calls it from its own Close.
	Close() error
}

// LinkBackend is a Backend whose link to its network can go down and come
// back: a shared network's, lost while its daemon is gone. The device
// shows the link's state in its status (LINK_UP) and tells the driver of
// each change (a configuration-change interrupt), so that the guest sees
// its carrier drop and return, and its DHCP client asks again for its
// lease on return (the network may have given it another address).
type LinkBackend interface {
	Backend
	// SetLinkNotify makes the backend call notify(false) when its link
	// goes down and notify(true) when it is back, from any goroutine,
	// holding none of its locks, one call at a time and in the order of
	// the changes; the link is taken as up until then.
	// The device calls it once, from New.
	SetLinkNotify(notify func(up bool))
}

// Frame sizes the device works with.
const (
	// EthernetHeaderSize is the destination, source and type fields: the
	// shortest frame the device transmits or receives.
	EthernetHeaderSize = 14
	// MaxFrameSize is the largest frame the device moves: a 64 KiB IP
	// packet, its Ethernet header and a VLAN tag.
	MaxFrameSize = 65535 + EthernetHeaderSize + 4
)
