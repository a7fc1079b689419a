package virtio

// Device is a virtio device model (blk, net) behind the legacy PCI
// transport. The transport owns everything the spec puts in common
// (features, status, queues, ISR, interrupts, the worker goroutine); a
// device only describes itself and serves chains.
//
// Threads: Features, QueueSizes, ConfigSize and Type are read once at
// construction. WriteConfig, Activate and Reset run on the vCPU thread with
// the transport locked and the worker idle; ReadConfig runs on the vCPU
// thread with the transport's register lock held but possibly while
// Process runs, so configuration that Process changes (net link status)
// needs the device's own lock. None of them may block. Process runs on the
// worker goroutine only.
type Device interface {
	// Type is the virtio device type (TypeNet, TypeBlock): the PCI
	// subsystem ID, and the device ID is 0x1000 + Type - 1.
	Type() uint16
	// Features are the feature bits offered to the driver (legacy
	// carries only bits 0-31). Include FeatureIndirectDesc to accept
	// indirect chains (a driver that did not accept it too, and uses one
	// anyway, corrupts the ring); never include FeatureEventIdx.
	Features() uint32
	// QueueSizes gives the size of each queue (each a power of two). They
	// never change: NetBSD panics if a size differs after a reset.
	QueueSizes() []uint16
	// ConfigSize is the length of the device-specific configuration
	// space that follows the common registers at BAR0 offset 20.
	ConfigSize() int
	// ReadConfig fills data from the configuration space at off
	// (0 <= off, off+len(data) <= ConfigSize()).
	ReadConfig(off int, data []byte)
	// WriteConfig applies a driver write to the configuration space
	// (legacy drivers write, e.g. vioif writes a MAC it chose). Ignoring
	// it is allowed.
	WriteConfig(off int, data []byte)
	// Activate is called when the driver sets DRIVER_OK, with the
	// features it accepted.
	Activate(features uint32)
	// Process serves available chains of queue i (the driver notified it,
	// or someone called Kick): Pop until empty, Push each chain back.
	// Returning an error wrapping ErrRing marks the device broken (see the
	// package documentation); a request that is merely wrong is answered
	// in its own status and is not an error.
	Process(i int, q *Queue) error
	// Reset returns the device to its initial state (the driver wrote 0 to
	// status). Queues are reset by the transport.
	Reset()
}

// Warner is a Device that reports trouble on the host's side, which the
// guest sees only as a failed request or a lost frame: an image's I/O
// error, a backend's failed send, a frame too long for the guest's
// buffers. NewPCIDevice calls SetWarn once, before its worker starts,
// with a function that logs msg and args (slog key-value pairs) on the
// transport's logger the first time kind is reported for this device,
// and drops later reports of that kind, so a guest that keeps failing
// cannot flood the log. warn may be called from any goroutine.
type Warner interface {
	// SetWarn gives the device the function to report trouble with.
	SetWarn(warn func(kind, msg string, args ...any))
}
