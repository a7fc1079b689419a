package vmm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/internal/goid"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm/devices"
)

// machineState is the state section of a snapshot (package snapshot holds
// it as opaque bytes), encoded in a fixed binary layout (encodeState,
// statecodec.go; its fields part, statefields.go), not JSON: a reader
// refuses bytes after the last field it knows, so a field added changes
// the format version. Its JSON encoding is only the form the tests edit
// a state in (StateJSON).
type machineState struct {
	MemoryMiB int
	Protocol  bootplan.Protocol // how the snapshot's machine booted, for Plan
	VCPU      vcpuSnapshot
	IRQChips  [][]byte // PIC master, PIC slave, I/O APIC (struct kvm_irqchip)
	PIT2      []byte   // struct kvm_pit_state2
	Clock     []byte   // struct kvm_clock_data
	UART      devices.UARTState
	RTC       devices.RTCState
	PCI       pci.HostState
	Virtio    []virtio.TransportState
	// MACs holds, for each virtio device, a network card's address as
	// its configuration space showed it ("" for other devices).
	MACs  []string `json:",omitempty"`
	Disks []DiskIdentity
	// Ready: the machine had reported PhaseReady, so a restored one is
	// ready as soon as it runs.
	Ready bool
}

// vcpuSnapshot is the vCPU's KVM state, each the kernel's structure,
// and its identity: the CPUID entries it was given and its TSC frequency.
type vcpuSnapshot struct {
	Regs, Sregs, LAPIC, Events, MPState, Debug []byte
	// XSave and XCRs, or FPU on a KVM without KVM_CAP_XSAVE. XSave is
	// as many bytes as the KVM moved: struct kvm_xsave's 4096, or
	// KVM_CAP_XSAVE2's more (AMX); a restore's KVM must move as many.
	XSave, XCRs, FPU []byte
	MSRs             msrList   // struct kvm_msr_entry each
	CPUID            cpuidList // struct kvm_cpuid_entry2 each
	// KVMCPUID is the part of KVM's supported CPUID
	// (KVM_GET_SUPPORTED_CPUID) that the vCPU's was checked against
	// (kvmRecord's: the leaves of featureRegs), as the KVM the
	// snapshot's header identifies gave it: a restore on that KVM checks
	// against it instead of asking (kvmid.go). Nil when the machine
	// never had the answer.
	KVMCPUID cpuidList
	// TSCKHz is KVM_GET_TSC_KHZ's answer, 0 when KVM did not know
	// (a restore then checks none).
	TSCKHz uint32
}

// DiskIdentity names a disk image as a snapshot saw it. A restore
// accepts the same file unchanged (same size, device, inode and
// modification time) without reading it when that time is older than
// the snapshot's moment (TakenNs) by more than 3 s, and
// another file, the same one touched, or the same one whose time is
// more recent (or unknown: TakenNs 0) only when it has the same size
// and its content has the snapshot's Content digest; anything else is
// refused, since the guest's cached view of the image would no longer
// match. A modification time moves only when its file system's clock
// ticks (whole seconds on ext3, FAT's 2 s, a jiffy on older ext4): a
// write within the tick of the snapshot's own time would leave it
// unchanged. A snapshot sets the time of an image this machine has open
// read-write back when it is that recent, so that a restore of the
// unchanged image need not read it (setMtimeBack).
type DiskIdentity struct {
	// Path is the image's path as the machine opened it.
	Path string
	// ReadOnly says the disk was attached read-only; a restore refuses
	// the other mode.
	ReadOnly bool
	// Serial is the disk's serial as the guest saw it; "" in a snapshot
	// that recorded none (derived from Path).
	Serial string
	// Size is the image's size in bytes.
	Size int64
	// Dev and Inode are the image file's device and inode numbers.
	Dev   uint64
	Inode uint64
	// MtimeNs is the file's modification time, in nanoseconds since the
	// Unix epoch.
	MtimeNs int64
	// TakenNs is the host's wall-clock time, in nanoseconds since the
	// Unix epoch, just before the file's identity was taken (its
	// fstat): how far MtimeNs lies before it says whether a write after
	// the snapshot must have moved it. 0 when not recorded (a snapshot
	// written before it was): the same file is then read, its content
	// checked.
	TakenNs int64 `json:",omitempty"`
	// Content is the image's digest when the snapshot was taken,
	// "crc32c:" and 8 hex digits (snapshot.FileDigest over Size bytes).
	// Empty when none was recorded: a restore then accepts only the same
	// file, unchanged.
	Content string `json:",omitempty"`
}

// mtimeTrustMargin is how much older than the snapshot's moment
// (DiskIdentity.TakenNs) a disk's recorded modification time must be for
// a restore to take the same device, inode and time as proof that the
// file is unchanged: more than the coarsest timestamp tick accounted for
// (FAT's 2 s; ext3's and small-inode ext4's second; older kernels'
// coarse clock, a jiffy), so that any write after the snapshot moved
// it. A more recent time (or one after the moment, the clocks skewed)
// has the content checked instead.
const mtimeTrustMargin = 3 * time.Second

// mtimeProvesUnchanged reports whether w's modification time, found
// unchanged on the same file, proves it unchanged since the snapshot:
// recorded, and older than w.TakenNs by more than mtimeTrustMargin.
func mtimeProvesUnchanged(w DiskIdentity) bool {
	// TakenNs > 0 keeps the subtraction from overflowing.
	return w.TakenNs > 0 && w.MtimeNs < w.TakenNs-int64(mtimeTrustMargin)
}

// setMtimeBack sets the modification time of f, a disk image whose
// identity fi was taken at taken and whose time is too recent to prove it
// unchanged at a restore (mtimeProvesUnchanged), back to between 1 and
// 2 s more than mtimeTrustMargin before the earlier of taken and that
// time, its nanoseconds drawn at random, and returns f's FileInfo then.
// Not a whole second: an earlier snapshot's set-back time, which a write
// since moved the image off, would be set again by this one when that
// write came within the same second of the earlier one's base (a guest
// running on writes just after a snapshot), and the earlier snapshot's
// restore would trust the image written since. On a file system that
// does not store the time given to the nanosecond (whole seconds on ext3,
// FAT's 2 s) the image gets its old time back, and the restore reads it.
// It is called with the guest paused and the devices quiesced, so none
// of this machine's writes comes between: any write after it sets the
// time to its file system's clock then, past the one recorded by more
// than the margin, and the restore's check of the
// unchanged time stays sound without reading the image. The file's own
// time comes from its file system's clock (an NFS server's), so counting
// from it too keeps a later write apart when that clock lags the host's.
// A file not open for writing by this machine is left as it is (a
// read-only attach does not change the user's file), and so is one
// whose time cannot be set (EPERM: owned by another user, without
// CAP_FOWNER): fi is returned, and the restore reads the image.
func setMtimeBack(f *os.File, fi os.FileInfo, taken time.Time) (os.FileInfo, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return fi, nil
	}
	base := taken
	if t := fi.ModTime(); t.Before(base) {
		base = t
	}
	back := base.Add(-mtimeTrustMargin - time.Second - time.Duration(rand.Int64N(int64(time.Second))))
	var set bool
	if err := rc.Control(func(fd uintptr) {
		fl, err := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err != nil || fl&unix.O_ACCMODE == unix.O_RDONLY {
			return
		}
		set = futimens(fd, back) == nil
	}); err != nil || !set {
		return fi, nil
	}
	nfi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("its modification time set back to %s: %w", back.UTC().Format(time.RFC3339Nano), err)
	}
	if nfi.ModTime().Equal(back) {
		return nfi, nil
	}
	// Rounded to the file system's tick: its old time, which it stored
	// so, goes back, and the restore reads the image.
	var putErr error
	if err := rc.Control(func(fd uintptr) { putErr = futimens(fd, fi.ModTime()) }); err != nil {
		putErr = err
	}
	if putErr != nil {
		return nil, fmt.Errorf("its modification time set back to %s, stored as %s, then put back to %s: %w", back.UTC().Format(time.RFC3339Nano),
			nfi.ModTime().UTC().Format(time.RFC3339Nano), fi.ModTime().UTC().Format(time.RFC3339Nano), putErr)
	}
	return fi, nil
}

// futimens sets the modification time of the file open as fd to mtime,
// leaving its access time: utimensat with no path, as futimens(3) does.
func futimens(fd uintptr, mtime time.Time) error {
	ts := [2]unix.Timespec{{Nsec: unix.UTIME_OMIT}, unix.NsecToTimespec(mtime.UnixNano())}
	if _, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, fd, 0, uintptr(unsafe.Pointer(&ts)), 0, 0, 0); errno != 0 {
		return errno
	}
	return nil
}

// contentDigest is DiskIdentity.Content for a snapshot.FileDigest.
func contentDigest(crc uint32) string { return fmt.Sprintf("crc32c:%08x", crc) }

func identityOf(path string, ro bool, serial string, st os.FileInfo) DiskIdentity {
	id := DiskIdentity{Path: path, ReadOnly: ro, Serial: serial, Size: st.Size(), MtimeNs: st.ModTime().UnixNano()}
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		id.Dev, id.Inode = s.Dev, s.Ino
	}
	return id
}

// ErrDiskChanged is wrapped by a restore's refusal of a disk image that
// changed since the snapshot.
var ErrDiskChanged = errors.New("disk image changed since the snapshot")

// ErrDiskNotRecorded is wrapped by a restore that takes its disks from
// the snapshot (Config.Disks nil) when a disk's path no longer names the
// very file the snapshot recorded, unchanged: the snapshot's paths are
// its own word, and a file they name is opened only when it is the one
// recorded. Another file, even with the image's content, is restored
// against only when given in Config.Disks, where its content is checked.
var ErrDiskNotRecorded = errors.New("the path does not name the file the snapshot recorded")

// SnapshotInfo describes a snapshot written.
type SnapshotInfo struct {
	Bytes int64         // the file's size
	Pause time.Duration // how long the guest was paused (capture and write)
}

// snapRequest asks the vCPU thread for a snapshot at its next quiescent
// point; done gets the result.
type snapRequest struct {
	w    io.Writer
	exit bool // the machine stops with it (see takeSnapshot)
	done func(SnapshotInfo, error)
}

// Snapshot writes a snapshot of the running machine to w: the vCPU is
// paused between two KVM_RUN exits, the virtio devices finish the pass
// over their queues they are making (a disk serves every request its
// queue holds) and take no other until the snapshot is written (requests
// the guest queued that no pass took are served after it, and after a
// restore), and the guest then runs on. The pause reads the guest pages
// ever populated (not those never touched, which /proc/self/pagemap
// tells) and each disk image's non-zero blocks, for its content digest.
// Of a caller's own device (Config.Devices) only the transport's state is
// saved, not what the device itself holds (see Config.Devices).
//
// The devices run on at once too: a write the guest queued is made on
// its disk image after the snapshot, even when Close follows at once,
// and a restore then refuses that image (ErrDiskChanged), as it does
// once the guest wrote on. A snapshot to restore against the machine's
// own images is taken with SnapshotAndExit (or Config.SnapshotExit),
// which stops the machine there with its devices held.
//
// Before the guest first runs it snapshots the machine as New left it,
// on the caller's goroutine: Run does not start the guest, and Close
// does not release the machine, until it is written. Once Run has
// returned, whether the guest ran or not (its context was done already,
// BeforeRun failed), and after Close, it fails with ErrNotRunning.
// Snapshots asked for at the same time are taken one after the other;
// once the machine is stopped, those not begun fail with ErrNotRunning.
//
// The guest stays paused while w is written, so a w whose Write blocks
// holds the guest, and Run and Close, until it returns; when the machine
// is stopped (Run's context ends, or Close), a w with SetWriteDeadline
// (an *os.File pipe, a net.Conn) is interrupted by a deadline in the
// past, the snapshot fails (ErrNotRunning), and w gets a zero deadline
// back. A failed snapshot returns a zero SnapshotInfo, whatever part of
// it reached w. The pause
// begins at the vCPU's next exit: a guest held by a Config.Console that
// does not read (see Config.Console) is paused only once the console
// takes its output, and Snapshot waits for that. Nor is it taken while a
// virtio device holds a queue PFN the guest has written only in part
// (virtio.PCIDevice.Settled): the guest runs on until it has written the
// rest, and a guest that has not within 200 ms gets the snapshot refused
// (an error wrapping virtio.ErrPFNHeld).
//
// Called on the vCPU thread (from Config.OnEvent or Config.OnSnapshot
// there) or from Config.Console's Write, which the vCPU may be waiting
// for, or from the w of a snapshot being taken before Run (its Write,
// or OnEvent, on the goroutine taking it), it fails with
// ErrSnapshotFromCallback instead of waiting for itself. snapshot.Target
// writes to a file that keeps its old content until a new snapshot is
// complete (Target.Write, or a TargetWriter as Config.SnapshotOnReady);
// under a seccomp filter it needs calls that RunIoctls' recipe forbids
// (see Config.BeforeRun).
//
// A disk image the machine has open read-write whose mtime is too recent
// to prove it unchanged at a restore (DiskIdentity) gets its mtime set
// back 4 to 5 s, with the guest paused (utimensat on its descriptor,
// futimens), so that the restore need not read it whole; where that call
// fails (another user's file, a seccomp filter refusing it: see
// Config.BeforeRun) the mtime is kept and the restore reads the image. A
// tool that compares the image's mtime with its sources' (make, a
// rebuild by dates) may then take it for a few seconds older than it is.
//
// A machine one of whose disks had a flush fail on the host
// (blk.Disk.FlushError) is refused every snapshot, before anything is
// written to w: an *Error wrapping a *DiskFlushError naming the disk. The
// image may lack writes the guest knows were not made durable, and a
// restore, which opens it again, would not tell its guest so. A read-only
// disk never counts: nothing was written through it (its FLUSH does not
// sync, so an image on squashfs or iso9660, which have no fsync, does not
// refuse snapshots).
//
// A nil w is refused (an *Error wrapping ErrConfig). A w whose Write (or
// Seek, Stat, SyscallConn, which the snapshot may call) panics fails the
// snapshot, the machine goes on as after any failed one, and Snapshot
// then panics on its caller's goroutine with a *WriterPanicError holding
// the value and the writing goroutine's stack.
func (m *Machine) Snapshot(w io.Writer) (SnapshotInfo, error) {
	return m.snapshot(w, false)
}

// SnapshotAndExit is Snapshot, after which, once the snapshot is
// written, the machine stops where it was taken: the guest does not run
// on, Run returns ExitSnapshot, and the virtio devices serve nothing
// more, so that the requests the guest queued and no device had taken
// stay in its rings for the machines restored from the snapshot to serve,
// once. Its disk images are then left as the snapshot recorded them, and
// a restore accepts them as they are (after Snapshot the guest and its
// devices run on, and the images change under the snapshot even when
// Close follows at once). A snapshot that fails leaves the machine
// running, as Snapshot's does. It is what Config.SnapshotExit does with
// Config.SnapshotOnReady's snapshot, at a moment of the caller's choosing.
func (m *Machine) SnapshotAndExit(w io.Writer) (SnapshotInfo, error) {
	return m.snapshot(w, true)
}

// snapshot is Snapshot, and with exit SnapshotAndExit.
func (m *Machine) snapshot(w io.Writer, exit bool) (SnapshotInfo, error) {
	if w == nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: fmt.Errorf("the writer is nil: %w", ErrConfig)}
	}
	if m.vcpu.onThread() || (m.console != nil && m.console.onWriter()) || m.vcpu.snapshottingOnCaller() {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: ErrSnapshotFromCallback}
	}
	type result struct {
		info SnapshotInfo
		err  error
	}
	ch := make(chan result, 1)
	m.requestSnapshot(w, exit, func(i SnapshotInfo, err error) { ch <- result{i, err} })
	r := <-ch
	// The writer's panic is its caller's, raised here whichever
	// goroutine wrote: the vCPU thread, which runs on, or this one.
	var wp *WriterPanicError
	if errors.As(r.err, &wp) {
		panic(wp)
	}
	return r.info, r.err
}

// ErrSnapshotFromCallback is wrapped by a Snapshot called where the
// machine cannot serve it without waiting for the caller: on the vCPU
// thread (Config.OnEvent, Config.OnSnapshot) or in Config.Console's
// Write.
var ErrSnapshotFromCallback = errors.New("snapshot asked from a callback the vCPU waits for")

// requestSnapshot has a snapshot written to w and calls done with the
// result: at once on the caller's goroutine before the guest first runs
// (exclusive with Run's start and Close), else by the running vCPU
// between two exits (done is then called on the vCPU thread; the caller
// may be that thread, which serves it after the exit it is handling).
// With exit, the machine stops with a snapshot written (takeSnapshot).
func (m *Machine) requestSnapshot(w io.Writer, exit bool, done func(SnapshotInfo, error)) {
	v := m.vcpu
	v.mu.Lock()
	v.waitSnapshot() // one at a time
	switch v.state {
	case vcpuCreated:
		// Not running yet: nothing moves, take it here, while run and
		// close wait.
		v.state, v.snapGID = vcpuSnapshotting, goid.ID()
		v.mu.Unlock()
		info, err := m.takeSnapshotBeforeRun(w, exit)
		m.lifeMu.Lock()
		release := m.closeInSnap
		m.lifeMu.Unlock()
		if release {
			// Close was called from w (run.go), which could not
			// wait for this snapshot: it is released here.
			m.closeOnce.Do(func() { m.closeErr = m.release() })
		}
		done(info, err)
		return
	case vcpuRunning:
	default:
		state := v.state
		v.mu.Unlock()
		done(SnapshotInfo{}, &Error{Op: "snapshot", Err: fmt.Errorf("vCPU is %s: %w", state, ErrNotRunning)})
		return
	}
	// Queued under v.mu while running: the run loop, which leaves
	// running under v.mu too, then either serves it or fails it
	// (failSnapshot).
	m.snapMu.Lock()
	m.snapReqs = append(m.snapReqs, &snapRequest{w: w, exit: exit, done: done})
	m.snapWanted.Store(true)
	m.snapMu.Unlock()
	v.mu.Unlock()
	if m.snapQueuedHook != nil {
		m.snapQueuedHook()
	}
	if !v.onThread() {
		v.kick()
	}
}

// takeSnapshotBeforeRun is takeSnapshot on a vCPU marked snapshotting,
// which it marks created (or exited) again however takeSnapshot ends:
// run and close wait for that.
func (m *Machine) takeSnapshotBeforeRun(w io.Writer, exit bool) (SnapshotInfo, error) {
	v := m.vcpu
	defer func() {
		v.mu.Lock()
		v.snapshotted()
		v.mu.Unlock()
	}()
	return m.takeSnapshot(w, exit)
}

// ErrNotRunning is wrapped by a snapshot asked of a machine whose guest
// has stopped, or that was closed, and by one whose write the machine's
// stop interrupted (see Snapshot).
var ErrNotRunning = errors.New("the machine is not running")

// serveSnapshot runs on the vCPU thread between exits when a snapshot was
// asked for. It reports whether it left an exit in kvm_run for the run
// loop to handle (the snapshot requests are then queued again).
func (m *Machine) serveSnapshot() (pending bool) {
	m.snapMu.Lock()
	reqs := m.snapReqs
	m.snapReqs = nil
	m.snapWanted.Store(false)
	m.snapMu.Unlock()
	if len(reqs) == 0 {
		return false
	}
	if m.completeInstruction() {
		m.requeueSnapshots(reqs)
		return true
	}
	if m.exit.Load() == nil && !m.snapW.isStopped() && m.holdForSettle(reqs) {
		return false
	}
	m.snapSettle = time.Time{}
	for i, req := range reqs {
		// Stopped (Close, Run's context, an exit the guest or a
		// callback asked for) while one was written: the guest does
		// not run on, and those not begun are refused, not written
		// while Run and Close wait.
		if m.exit.Load() != nil || m.snapW.isStopped() {
			for _, r := range reqs[i:] {
				r.done(SnapshotInfo{}, errStoppedFirst())
			}
			return false
		}
		info, err := m.takeSnapshot(req.w, req.exit)
		req.done(info, err)
	}
	return false
}

// completeInstruction finishes the instruction the last exit stopped in,
// so that the registers a snapshot reads are those after it. KVM
// completes an I/O or MMIO instruction only at the next KVM_RUN; one with
// immediate_exit set finishes it and returns EINTR without running the
// guest on. But an access KVM splits (one crossing a page boundary, a
// 16-byte one) needs a user-space exit per part: that KVM_RUN then
// returns 0 with the next part in kvm_run, served here as the run loop
// would, and KVM_RUN asked again. It reports whether KVM returned another
// exit (an emulation failure, say), left in kvm_run for the run loop:
// the guest is then not at an instruction boundary to snapshot.
func (m *Machine) completeInstruction() bool {
	v := m.vcpu
	atomic.StoreUint32(v.immediateExit(), immediateExitSet)
	defer atomic.StoreUint32(v.immediateExit(), 0)
	for {
		if _, _, errno := syscallKVMRun(v.fd); errno != 0 {
			// EINTR: done. Another error is the run loop's KVM_RUN's
			// to report, as it will get it again.
			return false
		}
		switch binary.LittleEndian.Uint32(v.runPage[runExitReason:]) {
		case kvmExitIO:
			v.handleIO()
		case kvmExitMMIO:
			v.handleMMIO()
		default:
			return true
		}
	}
}

// requeueSnapshots puts reqs back in front of the snapshot queue, to be
// served when the vCPU next stops between exits.
func (m *Machine) requeueSnapshots(reqs []*snapRequest) {
	m.snapMu.Lock()
	m.snapReqs = append(reqs, m.snapReqs...)
	m.snapWanted.Store(true)
	m.snapMu.Unlock()
}

// settleWait bounds how long serveSnapshot lets the guest run on for its
// devices to settle (see holdForSettle), settleKick how often it makes
// the vCPU exit meanwhile to look again. Variables for tests.
var (
	settleWait = 200 * time.Millisecond
	settleKick = time.Millisecond
)

// holdForSettle reports whether the snapshot requests reqs wait for the
// guest to run on: a virtio device is not settled (it holds a queue PFN
// the driver has written only in part, which a snapshot does not record;
// its next instruction writes the rest). They are then queued again, in
// front, and the vCPU kicked out of KVM_RUN in a moment to look again,
// should the guest not exit on its own. After settleWait the requests
// are served anyway, and takeSnapshot refuses them (a guest that never
// writes the rest holds no snapshot back for ever). vCPU thread only.
func (m *Machine) holdForSettle(reqs []*snapRequest) bool {
	if m.unsettled() == nil {
		return false
	}
	now := time.Now()
	if m.snapSettle.IsZero() {
		m.snapSettle = now
	} else if now.Sub(m.snapSettle) >= settleWait {
		return false
	}
	m.requeueSnapshots(reqs)
	if m.settleKicking.CompareAndSwap(false, true) {
		time.AfterFunc(settleKick, func() {
			m.settleKicking.Store(false)
			m.vcpu.kick()
		})
	}
	return true
}

// unsettled returns the first virtio device's Settled error, nil when
// all are settled.
func (m *Machine) unsettled() error {
	for i, s := range m.virtio {
		if err := s.dev.Settled(); err != nil {
			return fmt.Errorf("virtio device %d: %w", i, err)
		}
	}
	return nil
}

// failSnapshot answers a request the vCPU will not serve: it stopped.
func (m *Machine) failSnapshot() {
	m.snapMu.Lock()
	reqs := m.snapReqs
	m.snapReqs = nil
	m.snapWanted.Store(false)
	m.snapMu.Unlock()
	for _, req := range reqs {
		req.done(SnapshotInfo{}, errStoppedFirst())
	}
}

// DiskFlushError is a snapshot's refusal of a machine one of whose disks
// had a flush fail on the host (blk.Disk.FlushError): what the guest
// wrote before that flush may not be on the image, though the host's
// cache reads it back for now. The guest was told (that FLUSH and every
// later one failed); a restore opens the image again, without the
// failure, so the restored guest would be told nothing and its flushes
// would succeed over writes that may be lost. Nothing is written to the
// snapshot's writer, and the machine runs on as after any failed
// snapshot; only opening the image again (a new machine) clears the
// failure. It wraps Err.
type DiskFlushError struct {
	// Disk names the disk as the machine does: "ld0", "ld1"... for
	// Config.Disks (NetBSD's names), "Devices[i]" for a disk among
	// Config.Devices.
	Disk string
	// Path is the disk's image as Config.Disks gave it, or the name of
	// the image file of a disk among Config.Devices; "" when it has none
	// (a disk over another blk.Backend).
	Path string
	// Err is the error of the flush that failed (fdatasync's: EIO,
	// ENOSPC...).
	Err error
}

// Error names the disk, its image and the flush's error.
func (e *DiskFlushError) Error() string {
	name := e.Disk
	if e.Path != "" {
		name += " (disk image " + e.Path + ")"
	}
	return fmt.Sprintf("%s: a flush failed on the host (%v): what the guest wrote before it may not be on the image, and a restore would not tell its guest so", name, e.Err)
}

// Unwrap returns the flush's error.
func (e *DiskFlushError) Unwrap() error { return e.Err }

// flushFailed returns a *DiskFlushError for the first disk, of
// Config.Disks or among Config.Devices, whose flush failed on the host
// (blk.Disk.FlushError), nil when none did. A read-only disk is skipped:
// nothing was written through it that a failed flush could have lost.
func (m *Machine) flushFailed() error {
	for i, s := range m.virtio {
		d, ok := s.dev.Device().(*blk.Disk)
		if !ok || d.ReadOnly() {
			continue
		}
		err := d.FlushError()
		if err == nil {
			continue
		}
		e := &DiskFlushError{Err: err}
		if i < len(m.cfg.Disks) {
			e.Disk, e.Path = fmt.Sprintf("ld%d", i), m.cfg.Disks[i].Path
		} else {
			e.Disk = fmt.Sprintf("Devices[%d]", i-len(m.cfg.Disks))
			if f := d.Image(); f != nil {
				e.Path = f.Name()
			}
		}
		return e
	}
	return nil
}

// errStoppedFirst is the error of a snapshot the machine stopped before
// it was begun.
func errStoppedFirst() error {
	return &Error{Op: "snapshot", Err: fmt.Errorf("the guest stopped first: %w", ErrNotRunning)}
}

// takeSnapshot captures the state with the vCPU out of KVM_RUN and the
// devices quiesced, and writes it and guest memory to w. With exit, a
// snapshot written stops the machine (ExitSnapshot) with its devices held
// before they resume: what the guest queued that no device took is then
// served only by the machines restored from it, and the images stay as it
// recorded them. Resumed, a device would serve it at once, before the
// vCPU thread even saw the exit, writing the disk under the snapshot.
func (m *Machine) takeSnapshot(w io.Writer, exit bool) (info SnapshotInfo, err error) {
	start := time.Now()
	if snapResumedHook != nil {
		defer snapResumedHook(m) // the last: after the devices resume
	}
	for _, s := range m.virtio {
		defer s.dev.Quiesce()()
	}
	if exit {
		// Deferred after the quiescing: done before the devices resume.
		defer func() {
			if err == nil {
				m.holdDevices()
				m.requestExit(Exit{Reason: ExitSnapshot})
			}
		}()
	}
	// Checked once the devices are quiesced, so that a flush the pass
	// just served counts.
	if err := m.flushFailed(); err != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: err}
	}
	// A PFN held half written is in no TransportState: a restore would
	// merge the driver's next half with the rings' last place.
	if err := m.unsettled(); err != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: fmt.Errorf("%w; the guest did not write the rest within %v", err, settleWait)}
	}
	// A restored machine's pages the guest has not written are the
	// file's: cut from it, they can be neither read (SIGBUS) nor told
	// zero by the file's holes, so the snapshot is refused before a byte
	// is written (a Target keeps its old content).
	if e := m.memFileShort(nil); e != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: e}
	}
	st, err := m.captureState()
	if err != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: err}
	}
	b, err := encodeState(st) // statecodec.go
	if err != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: err}
	}
	nic, err := nicOf(st)
	if err != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: err}
	}
	mem := m.gmem.Bytes()
	meta := snapshot.Meta{NIC: nic}
	if len(st.VCPU.KVMCPUID) > 0 {
		meta.KVM = m.kvmIdentity()
	}
	if meta.Net, err = m.snapshotNetwork(nic); err != nil {
		return SnapshotInfo{}, err
	}
	zero, err := m.knownZero(mem) // snapzero.go
	if err != nil {
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: err}
	}
	m.snapW.begin(w)
	n, err := m.writerGuard(func() (int64, error) { return snapshot.WriteMeta(guardWriter(w), meta, b, mem, zero) })
	if m.snapW.end() {
		err = fmt.Errorf("%w: stopped while the snapshot was written (%w)", ErrNotRunning, err)
	}
	if err != nil {
		// Cut while it was written: a file's write of the missing pages
		// fails with EFAULT, a copy in memory faults (faultGuard).
		if e := m.memFileShort(err); e != nil && !errors.Is(err, ErrMemoryFileTruncated) {
			err = e
		}
		// No snapshot was written: the bytes that were are no file's.
		return SnapshotInfo{}, &Error{Op: "snapshot", Err: err}
	}
	info = SnapshotInfo{Bytes: n, Pause: time.Since(start)}
	m.event(PhaseSnapshotWritten)
	return info, nil
}

// holdDevices keeps every virtio device from serving from now on
// (virtio.PCIDevice.Hold): the machine stops with a snapshot.
func (m *Machine) holdDevices() {
	for _, s := range m.virtio {
		s.dev.Hold()
	}
}

// snapResumedHook, for tests, is called with the machine at the end of
// each snapshot, once its devices have resumed.
var snapResumedHook func(*Machine)

// snapWriter is the writer a snapshot is being written to, so that the
// machine's stop can interrupt a Write that blocks (a pipe nobody reads),
// which would otherwise hold the paused vCPU, and with it Run and Close.
// Only a writer with SetWriteDeadline (an *os.File pipe, a net.Conn) can
// be interrupted: it gets a deadline in the past, then its deadline back.
type snapWriter struct {
	mu      sync.Mutex
	w       io.Writer // being written, or nil
	stopped bool      // the machine is stopping: no snapshot is begun
	aborted bool      // w's Write was interrupted
}

type writeDeadliner interface{ SetWriteDeadline(time.Time) error }

// begin records w as being written. Once the machine is stopping, a w
// that can be interrupted is at once (one that cannot will not block:
// a regular file).
func (s *snapWriter) begin(w io.Writer) {
	s.mu.Lock()
	s.w, s.aborted = w, false
	s.mu.Unlock()
	if s.isStopped() {
		s.stop()
	}
}

func (s *snapWriter) isStopped() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stopped
}

// end forgets the writer; it reports whether stop interrupted it, and
// then gives the writer its deadline back (none).
func (s *snapWriter) end() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	aborted := s.aborted
	if aborted {
		_ = s.w.(writeDeadliner).SetWriteDeadline(time.Time{})
	}
	s.w, s.aborted = nil, false
	return aborted
}

// stop interrupts the write in progress, if it can be, and refuses
// those to come.
func (s *snapWriter) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.stopped = true
	if d, ok := s.w.(writeDeadliner); ok && !s.aborted && d.SetWriteDeadline(time.Unix(1, 0)) == nil {
		s.aborted = true
	}
}

// writerGuard runs faultGuard(fn), with a panic of the writer fn writes
// to (through guardWriter) made a *WriterPanicError: on the vCPU thread it
// would otherwise end Run half way, with the snapshots asked for with it
// never answered. Other panics, smolvmm's own, go on.
func (m *Machine) writerGuard(fn func() (int64, error)) (n int64, err error) {
	defer func() {
		if r := recover(); r != nil {
			wp, ok := r.(*WriterPanicError)
			if !ok {
				panic(r)
			}
			err = wp
		}
	}()
	return m.faultGuard(fn)
}

// tagWriterPanic, deferred in a call into the caller's writer, panics on
// with its panic made a *WriterPanicError, which writerGuard turns into
// an error; the stack is the writer's, taken before unwinding.
func tagWriterPanic() {
	if r := recover(); r != nil {
		if o, ok := r.(ownPanic); ok {
			panic(o.v)
		}
		panic(&WriterPanicError{Value: r, Stack: debug.Stack()})
	}
}

// ownPanic carries a panic of smolvmm's function that the writer's
// RawConn called back through tagWriterPanic untagged.
type ownPanic struct{ v any }

// ownCallback returns f with its panic marked as smolvmm's (ownPanic).
func ownCallback[T any](f func(uintptr) T) func(uintptr) T {
	return func(fd uintptr) T {
		defer func() {
			if r := recover(); r != nil {
				panic(ownPanic{r})
			}
		}()
		return f(fd)
	}
}

// The methods of a writer snapshot.WriteMeta looks for besides Write.
type (
	statWriter interface{ Stat() (os.FileInfo, error) }

	guardedWrite  struct{ w io.Writer }
	guardedSeek   struct{ s io.Seeker }
	guardedStat   struct{ s statWriter }
	guardedConn   struct{ c syscall.Conn }
	guardedRawCon struct{ c syscall.RawConn }
)

func (g guardedWrite) Write(p []byte) (int, error) { defer tagWriterPanic(); return g.w.Write(p) }
func (g guardedSeek) Seek(off int64, whence int) (int64, error) {
	defer tagWriterPanic()
	return g.s.Seek(off, whence)
}
func (g guardedStat) Stat() (os.FileInfo, error) { defer tagWriterPanic(); return g.s.Stat() }
func (g guardedConn) SyscallConn() (syscall.RawConn, error) {
	defer tagWriterPanic()
	rc, err := g.c.SyscallConn()
	if rc != nil {
		rc = guardedRawCon{rc}
	}
	return rc, err
}
func (g guardedRawCon) Control(f func(fd uintptr)) error {
	defer tagWriterPanic()
	own := ownCallback(func(fd uintptr) struct{} { f(fd); return struct{}{} })
	return g.c.Control(func(fd uintptr) { own(fd) })
}
func (g guardedRawCon) Read(f func(fd uintptr) bool) error {
	defer tagWriterPanic()
	return g.c.Read(ownCallback(f))
}
func (g guardedRawCon) Write(f func(fd uintptr) bool) error {
	defer tagWriterPanic()
	return g.c.Write(ownCallback(f))
}

// guardWriter returns w with each call into it tagging its panic
// (tagWriterPanic), and with the same ones of the methods WriteMeta
// looks for (io.Seeker, Stat, syscall.Conn): a file keeps its holes and
// its O_APPEND check.
func guardWriter(w io.Writer) io.Writer {
	g := guardedWrite{w}
	sk, seek := w.(io.Seeker)
	st, stat := w.(statWriter)
	c, conn := w.(syscall.Conn)
	gs, gt, gc := guardedSeek{sk}, guardedStat{st}, guardedConn{c}
	switch {
	case seek && stat && conn:
		return struct {
			guardedWrite
			guardedSeek
			guardedStat
			guardedConn
		}{g, gs, gt, gc}
	case seek && stat:
		return struct {
			guardedWrite
			guardedSeek
			guardedStat
		}{g, gs, gt}
	case seek && conn:
		return struct {
			guardedWrite
			guardedSeek
			guardedConn
		}{g, gs, gc}
	case stat && conn:
		return struct {
			guardedWrite
			guardedStat
			guardedConn
		}{g, gt, gc}
	case seek:
		return struct {
			guardedWrite
			guardedSeek
		}{g, gs}
	case stat:
		return struct {
			guardedWrite
			guardedStat
		}{g, gt}
	case conn:
		return struct {
			guardedWrite
			guardedConn
		}{g, gc}
	}
	return g
}

// faultGuard runs fn, which reads guest memory, with a fault on it made an
// error instead of the runtime's fatal one (a restored machine's memory
// file truncated after the checks before: a page fn reads is gone,
// SIGBUS). Other panics go on.
func (m *Machine) faultGuard(fn func() (int64, error)) (n int64, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		var fault interface{ Addr() uintptr }
		re, ok := r.(error)
		if !ok || !errors.As(re, &fault) || !m.inGuestMemory(fault.Addr()) {
			panic(r)
		}
		err = fmt.Errorf("guest memory fault at host address %#x", fault.Addr())
	}()
	return fn()
}

// inGuestMemory reports whether the host address addr lies in guest
// memory.
func (m *Machine) inGuestMemory(addr uintptr) bool {
	b := m.gmem.Bytes()
	if len(b) == 0 {
		return false
	}
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return addr >= base && addr-base < uintptr(len(b))
}

func (m *Machine) captureState() (*machineState, error) {
	st := &machineState{MemoryMiB: m.cfg.MemoryMiB, Protocol: m.plan.Protocol, Ready: m.readyDone.Load()}
	fd := m.vcpu.fd
	var err error
	c := &st.VCPU
	for _, x := range []struct {
		b   kvmBlob
		dst *[]byte
	}{{blobRegs, &c.Regs}, {blobSregs, &c.Sregs}, {blobLAPIC, &c.LAPIC}, {blobEvents, &c.Events},
		{blobMPState, &c.MPState}, {blobDebug, &c.Debug}} {
		if *x.dst, err = x.b.getFrom(fd); err != nil {
			return nil, err
		}
	}
	c.CPUID = m.vcpu.cpuid
	if m.cpuid != nil {
		c.KVMCPUID = kvmRecord(m.cpuid.supported)
	}
	// EIO: KVM does not know the host's TSC rate (it found the TSC
	// unstable), and the snapshot records none.
	switch khz, err := getTSCKHz(fd); {
	case errors.Is(err, unix.EIO):
	case err != nil:
		return nil, fmt.Errorf("KVM_GET_TSC_KHZ: %w", err)
	case khz > math.MaxUint32:
		return nil, fmt.Errorf("KVM_GET_TSC_KHZ: %d kHz", khz)
	default:
		c.TSCKHz = uint32(khz)
	}
	if c.XSave, c.XCRs, c.FPU, err = captureXSave(m.xsaveSize, func(b kvmBlob) ([]byte, error) {
		if b == blobXSave {
			return getXSave(fd, m.xsaveSize)
		}
		return b.getFrom(fd)
	}); err != nil {
		return nil, err
	}
	if m.msrIndex == nil {
		if m.msrIndex, err = msrIndexList(int(m.kvm.Fd()), fd, m.vcpu.cpuid); err != nil {
			return nil, err
		}
	}
	if c.MSRs, err = getMSRs(fd, m.msrIndex); err != nil {
		return nil, err
	}
	vm := int(m.vmFD)
	for chip := range irqchipCount {
		buf := make([]byte, sizeIRQChip)
		buf[0] = byte(chip)
		if _, err := ioctlBuf(vm, blobIRQChip.get, buf); err != nil {
			return nil, fmt.Errorf("get irqchip %d: %w", chip, err)
		}
		st.IRQChips = append(st.IRQChips, buf)
	}
	if st.PIT2, err = blobPIT2.getFrom(vm); err != nil {
		return nil, err
	}
	if st.Clock, err = blobClock.getFrom(vm); err != nil {
		return nil, err
	}
	st.UART = m.uart.State()
	st.RTC = m.rtc.State()
	st.PCI = m.pci.State()
	for _, s := range m.virtio {
		st.Virtio = append(st.Virtio, s.dev.State())
		mac := ""
		if n, ok := s.dev.Device().(macDevice); ok {
			mac = n.MAC().String()
		}
		st.MACs = append(st.MACs, mac)
	}
	for i, d := range m.cfg.Disks {
		disk, ok := m.virtio[i].dev.Device().(*blk.Disk)
		if !ok {
			return nil, fmt.Errorf("ld%d is not a disk", i)
		}
		// Before the fstat, never after: a moment later than the
		// identity's would let a restore trust an mtime a write after
		// the snapshot could share.
		taken := time.Now()
		fi, err := disk.Stat()
		if err != nil {
			return nil, fmt.Errorf("ld%d (disk image %s): %w", i, d.Path, err)
		}
		path := d.Path
		if i < len(m.diskPaths) {
			path = m.diskPaths[i]
		}
		// A time too recent to prove the image unchanged (a guest at
		// ready has just written its root) would have every restore
		// read it: a writable image's is set back instead.
		if !disk.ReadOnly() && !mtimeProvesUnchanged(DiskIdentity{MtimeNs: fi.ModTime().UnixNano(), TakenNs: taken.UnixNano()}) {
			if fi, err = setMtimeBack(disk.Image(), fi, taken); err != nil {
				return nil, fmt.Errorf("ld%d (disk image %s): %w", i, d.Path, err)
			}
		}
		id := identityOf(path, disk.ReadOnly(), disk.Serial(), fi)
		id.TakenNs = taken.UnixNano()
		// Read while the devices are quiesced, so it is the content the
		// guest's view matches: a restore accepts a copy by it.
		crc, err := snapshot.FileDigest(disk.Image(), id.Size)
		if err != nil {
			return nil, fmt.Errorf("ld%d (disk image %s): content digest: %w", i, d.Path, err)
		}
		id.Content = contentDigest(crc)
		st.Disks = append(st.Disks, id)
	}
	return st, nil
}

// captureXSave returns the vCPU's XSAVE state and XCRs, or, on a KVM
// without KVM_CAP_XSAVE (size 0, xsaveSize's), its FPU state, each got
// by get. A KVM with XSAVE that fails to give it fails the snapshot: the
// FPU state alone would drop XCR0 and the AVX registers the guest uses.
// So does one whose XSAVE state a snapshot cannot hold (ErrXSaveTooLarge).
func captureXSave(size int, get func(kvmBlob) ([]byte, error)) (xsave, xcrs, fpu []byte, err error) {
	if err := checkXSaveSize(size); err != nil {
		return nil, nil, nil, err
	}
	if size == 0 {
		fpu, err = get(blobFPU)
		return nil, nil, fpu, err
	}
	if xsave, err = get(blobXSave); err != nil {
		return nil, nil, nil, err
	}
	if xcrs, err = get(blobXCRs); err != nil {
		xcrs = nil // no XCR0 to keep on a KVM without KVM_CAP_XCRS
	}
	return xsave, xcrs, nil, nil
}

// snapshotOnReady asks for Config.SnapshotOnReady's snapshot, without
// waiting for it (the caller may be the vCPU thread).
func (m *Machine) snapshotOnReady() {
	if m.cfg.SnapshotOnReady == nil {
		return
	}
	done := func(info SnapshotInfo, err error) {
		if m.cfg.OnSnapshot != nil {
			if pe := m.callOnSnapshot(info, err); pe != nil {
				// A TargetWriter it did not finish is discarded,
				// lest the Target's Close wait for it.
				m.finishTarget(pe)
				m.callbackPanic("snapshot on ready", "OnSnapshot", pe) // machine.go
				return
			}
		} else {
			err = m.finishTarget(err) // machine.go
			if err != nil && !m.cfg.SnapshotExit {
				// Nothing else reports it: the guest runs on.
				m.logf("snapshot on ready: %v", err)
			}
		}
		if m.cfg.SnapshotExit {
			if err != nil {
				m.snapErr.CompareAndSwap(nil, &err)
			}
			m.requestExit(Exit{Reason: ExitSnapshot})
		}
	}
	m.requestSnapshot(m.cfg.SnapshotOnReady, m.cfg.SnapshotExit, done)
}

// snapshotNetwork is what Config.SnapshotNetwork says of the network of
// the machine, whose card (if any) nic describes, checked as the header
// will be, so that a refused one fails the snapshot before anything is
// written: an *Error with Field SnapshotNetwork. A panic fails the
// snapshot too; on the vCPU thread it would unwind the run loop.
func (m *Machine) snapshotNetwork(nic snapshot.NIC) (n snapshot.Network, err error) {
	if m.cfg.SnapshotNetwork == nil {
		return n, nil
	}
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = &Error{Op: "snapshot", Field: "SnapshotNetwork",
					Err: &PanicError{Call: "Config.SnapshotNetwork", Value: r, Stack: debug.Stack()}}
			}
		}()
		n = m.cfg.SnapshotNetwork()
	}()
	if err != nil {
		return snapshot.Network{}, err
	}
	if err := n.Check(nic); err != nil {
		return snapshot.Network{}, &Error{Op: "snapshot", Field: "SnapshotNetwork",
			Err: fmt.Errorf("the network to record: %w: %w", err, ErrConfig)}
	}
	return n, nil
}

// callOnSnapshot calls Config.OnSnapshot, and returns its panic, if it
// panicked: on the vCPU thread, it would unwind the run loop past Run's
// cleanup.
func (m *Machine) callOnSnapshot(info SnapshotInfo, err error) (pe *PanicError) {
	defer func() {
		if r := recover(); r != nil {
			pe = &PanicError{Call: "Config.OnSnapshot", Value: r, Stack: debug.Stack()}
		}
	}()
	m.cfg.OnSnapshot(info, err)
	return nil
}
