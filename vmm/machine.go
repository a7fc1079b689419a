// Package vmm is a KVM virtual machine that boots a multiboot v1 kernel, or a
// NetBSD kernel through NetBSD's native /boot handoff,
// directly: no firmware, no bootloader. It is a library first; the smolvmm
// command is a thin layer over it.
//
// A Machine has one vCPU started in the multiboot entry state (flat 32-bit
// protected mode, paging off), RAM from address 0 with low memory laid out as
// a PC BIOS would leave it, the in-kernel 8259 PIC, I/O APIC and PIT, a
// 16550A UART on COM1, the CMOS clock, a PCI host with the legacy virtio
// devices the Config asks for, and the ports a guest uses to reset or leave.
//
// A running Machine can be snapshotted (Machine.Snapshot, or
// Config.SnapshotOnReady) into a file of package snapshot's format, and
// Restore builds a Machine that continues from one, its memory mapped
// copy-on-write from the file.
package vmm

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime/debug"
	"runtime/metrics"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/bus"
	"github.com/smolvmm/smolvmm/guestmem"
	"github.com/smolvmm/smolvmm/internal/pagemap"
	"github.com/smolvmm/smolvmm/internal/portready"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/pci"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm/devices"
)

// Defaults for a Config's zero values.
const (
	DefaultMemoryMiB = 128
	DefaultAppend    = "console=com root=ld0a"
	// MaxMemoryMiB keeps RAM below the 32-bit PCI/APIC hole at 3 GiB: the
	// guest is a 32-bit kernel with one memory slot from address 0.
	MaxMemoryMiB = 3072
	// MinMemoryMiB is the least memory any kernel loads in: the first MiB
	// (low memory), the kernel at 1 MiB and kernelHeadroom above it. (NetBSD
	// itself refuses less than 2 MiB, and needs far more to run.)
	MinMemoryMiB = 3
	// MaxVirtioDevices is how many virtio devices, Disks and Devices
	// together, a machine holds: one per slot of its PCI bus but the host
	// bridge's.
	MaxVirtioDevices = pci.Slots - 1
)

// kernelHeadroom is the RAM left free above the kernel, its symbols and
// modules: NetBSD/i386's locore puts its bootstrap page tables and proc0's
// stack there (a few dozen pages) before it has a console, and dies silently
// without them. 1 MiB covers them with room to spare.
const kernelHeadroom = 1 << 20

// Config describes a machine.
type Config struct {
	// Kernel is the kernel file's path: a multiboot kernel, or a NetBSD
	// ELF kernel started through NetBSD's native /boot handoff (see
	// Boot), gzipped or not. KernelImage, when set, is used instead (the file is not
	// opened) and Kernel only names it. The file is mapped, not read,
	// and unmapped once loaded. New keeps neither KernelImage nor the
	// Modules' Data once it has loaded them into guest memory (nor does
	// Restore, which ignores them): the caller may reuse or release
	// their bytes when it returns.
	Kernel      string
	KernelImage []byte
	// Append follows the kernel's name on the multiboot command line;
	// under the native handoff its boot flags (-s, -a...), console=,
	// console_addr=, console_speed= and root= become the kernel's boot
	// arguments and other words are not passed. Empty means
	// DefaultAppend; use NoAppend for an empty one.
	Append   string
	NoAppend bool
	// Modules are boot modules. Under NetBSD's native handoff a module's
	// Args is its type: "" (an ELF file is a kernel module), "kmod", "fs",
	// "splash" or "rndseed" (netbsdboot.ParseModuleType), and a gzipped
	// module is decompressed first, as NetBSD's /boot does. A NetBSD
	// kernel takes modules only through the native handoff: its multiboot
	// entry never reads them, so Boot multiboot with modules is refused
	// for it.
	Modules []multiboot.Module
	// Boot forces a boot protocol; bootplan.Auto (the zero value) picks
	// multiboot for a kernel with a multiboot header, else NetBSD's native
	// handoff for an ELF kernel with NetBSD's ident note. A NetBSD kernel
	// given Modules, or an ELF64 one whose header lacks the a.out kludge,
	// gets the native handoff even with a header (Plan.Reason says why).
	// NetBSD's multiboot entry registers the kernel's symbols without its
	// CTF data (.SUNW_ctf), which the native handoff passes: DTrace with
	// CTF on a kernel with a header needs bootplan.NetBSD.
	Boot bootplan.Protocol
	// MemoryMiB is the guest's RAM in MiB (DefaultMemoryMiB when 0).
	MemoryMiB int

	// Disks are virtio-blk disks on legacy virtio-pci: NetBSD's ld0,
	// ld1... in this order. Each image is locked while the VM runs; one
	// image given twice (by its path or a link) is refused, ErrConfig.
	Disks []blk.Spec
	// Devices are further virtio devices (a network card, a caller's own
	// device), placed on the PCI bus after the disks, each once (a nil
	// entry, or one pointer to a non-zero-size value given twice, is
	// refused, ErrConfig; equal values are distinct devices). A device the
	// transport cannot present (virtio.ErrInvalidDevice: a type outside 1
	// to virtio.MaxType, a queue size no power of two...) is refused too,
	// ErrConfig with Field Devices naming Devices[i]. The machine owns
	// them: Close (or a failing New) closes those that are io.Closers. A
	// device with a SetKick(func(queue int)) method gets the transport's
	// KickQueue, so that its own goroutines (network receive) can wake the
	// device's worker; one with a SetConfigChanged(func()) method gets its
	// ConfigChanged (a network card's link going down or up). A snapshot records of a caller's own device only
	// its transport's state (features negotiated, status, queues): what
	// the device itself holds is not saved, and a restore gives it to the
	// guest as the device in Devices is then. Besides, a network card's
	// address is recorded (from its configuration space), as is each
	// disk's identity (Disks).
	Devices []virtio.Device

	// Console receives what the guest writes on COM1 (discarded when nil),
	// on a goroutine of the machine's, in chunks: the first byte after a
	// quiet millisecond at once, then, while output streams, one Write a
	// millisecond, or sooner once 4 KiB are queued (so a line can arrive
	// up to 1 ms late; Ready events are not delayed). Up to 64 KiB wait for
	// it; beyond that the guest waits, as on a serial line, so a Write
	// that blocks (a pipe nobody reads, a paused pager) stops the guest,
	// and a Snapshot with it (the vCPU pauses only between two exits),
	// until Write returns or the machine is stopped (Run's context ends,
	// or Close). A stopped machine drops the output that is still
	// queued, or that the guest writes until it stops, and Run waits up
	// to a second for a Write in flight; no Write starts after Run
	// returns (see Machine.Run). Close may be called from Write (see
	// Machine.Close); Snapshot may not. A Write that panics gets no more
	// output and stops the machine: Run returns the panic, a *PanicError
	// in an *Error with Field Console. An error Write returns is ignored,
	// and what it was given is lost, as on a disconnected serial line:
	// the guest runs on. To keep the error, wrap the writer in one that
	// records it (as the CLI does).
	Console io.Writer
	// Input, when set, is read for bytes to send to the guest's COM1:
	// only while Run runs, and only as many as the UART can take at once,
	// but for a FileInput over a terminal, read as far as the UART and a
	// hold of 4 KiB have room, and, once the guest has read nothing for a
	// second, whenever it has data so that its filter sees every key: what
	// does not fit in the hold is then dropped as an overrun (see
	// FileInput).
	// When Run returns nothing reads it any more if it is an *os.File or a
	// FileInput (polled, and read only when it has data) or has
	// SetReadDeadline (a net.Conn: interrupted by a past deadline, then
	// given a zero one). Any other reader (an io.Pipe) cannot be
	// interrupted: a Read in flight when Run returns ends when the reader
	// next has data, and Machine.RemainingInput gives those bytes back, so
	// read on from it. A Read that returns (0, nil) is asked again after
	// a millisecond. Close may be called from Read (see Machine.Close).
	// A Read that panics is not called again and stops the machine: Run
	// returns the panic, a *PanicError in an *Error with Field Input,
	// and Machine.RemainingInput's Read returns it too.
	Input io.Reader

	// Ready, when set, is matched against each console line as it grows;
	// the first match reports PhaseReady. Patterns do not span lines. A
	// line ends at '\n' and holds no '\r' (NetBSD ends lines "\n\r" or
	// "\r\n"), so ^ and $ anchor at its text; the bench splits lines the
	// same way. An alternative whose match can end with $, \z, \b or \B
	// (consoleline.Split) would match too early on a line still growing
	// (`port 80$` on "port 80" of "port 8080"): it is matched only against
	// complete lines, once each ends, and never against a line cut at its
	// first 4096 bytes; so it never matches a prompt, which does not end
	// its line (ReadyUnended tells of one). Past its first 128 bytes a
	// line is matched every 256 bytes, at its end, and 2 ms after output
	// stops on it (a prompt), so that long lines cost no more per byte
	// than short ones.
	Ready *regexp.Regexp
	// ReadyAddr, when set, is a host TCP address (a port forwarded to the
	// guest, e.g. "127.0.0.1:8080" or "localhost:8080") polled while the
	// guest runs. An empty host (":8080") is the local system, as for
	// net.Dial: 127.0.0.1, then ::1, with no lookup. A host name is
	// looked up once, by New or Restore (one that does not resolve is
	// refused, ErrConfig), and its addresses are probed from then on, in
	// the order the lookup gave them: so no lookup runs under BeforeRun's
	// sandbox. Without ReadyGuestPort, the first connection that is answered
	// or held open (portready.Hold) reports PhaseReady, timed at its
	// connect, which is right when the address reaches the guest's own TCP
	// (a tap behind a NAT rule). Whichever of Ready, ReadyAddr and the
	// boot-timer port comes first reports it.
	ReadyAddr string
	// ReadyGuestPort, when set, is the guest's TCP port behind ReadyAddr
	// (the forward's guest port): PhaseReady is then the guest accepting
	// a connection there, its SYN-ACK from that port as seen on the
	// transmit queue of its network card (a device with a
	// SetTransmitWatch method, as virtio/net's), timed when seen; the
	// connections to ReadyAddr only make the forwarder ask the guest, and
	// count for nothing themselves. That is the readiness a user
	// network's forward needs: it accepts on the host before it asks the
	// guest, and keeps the host side open while a guest that does not
	// answer is asked again. A guest that refuses (RST) or never answers
	// is never ready. The machine takes the cards' transmit watch over
	// while Run runs: it replaces a watch the caller set with
	// SetTransmitWatch (a card holds one), and removes its own when Run
	// returns, leaving none; a caller that watches the transmits itself
	// either does without ReadyGuestPort or sets its watch after Run.
	ReadyGuestPort uint16
	// OnEvent, when set, is called at each Phase, one call at a time, in
	// the order the phases were reached, from the goroutine that reached
	// it, which waits for it (the guest's phases on the vCPU thread;
	// PhaseReady, when ReadyAddr or ReadyGuestPort reports it, on a
	// goroutine of the machine's); keep it short. But the vCPU thread
	// does not wait for a call in progress on another goroutine, which
	// may be waiting for the vCPU (in Snapshot): that goroutine reports
	// the vCPU's phase once its call returns. Close may be called from it
	// (see Machine.Close), and Snapshot, which on the vCPU thread fails
	// with ErrSnapshotFromCallback. A panic in it stops the machine, and
	// Run returns it, a *PanicError in an *Error with Field OnEvent; in
	// New, Restore or a Snapshot before Run (on the caller's goroutine)
	// they panic with that *PanicError instead. OnEvent is not called
	// again after it panicked.
	OnEvent func(Event)
	// Log receives diagnostics (unhandled port and MMIO accesses when
	// Verbose, a device's warnings), one message per Write, in the order
	// they were logged, from a goroutine of the machine's: nothing that
	// logs (the vCPU, a device) waits for it, and up to 1 MiB of
	// messages wait for it; beyond that they are dropped, and a message
	// says how many once Log takes messages again (one message longer
	// than 1 MiB is cut to that, ending with how many bytes were cut,
	// not dropped). New and Restore wait for Log to take what they
	// logged at most a second, as a stop does (their caller has no
	// Machine to Close yet): what it has not taken by then stays queued
	// for it. Run returns once
	// everything logged has been written, unless the machine was stopped
	// (ctx ended, or Close): then, as for Console, Run waits for a Write
	// in flight at most a second, and drops what is queued; so does
	// Close. Only such a Write, one that did not return in that second,
	// may still be running after Close. Close may be called from Write
	// (see Machine.Close), and Snapshot. A Write that panics gets no more
	// messages and stops the machine: Run returns the panic, a
	// *PanicError in an *Error with Field Log; New (or Restore) returns
	// it instead, having released the machine, when it panicked while
	// New waited for it (as New's own Verbose messages are written). An
	// error Write returns is ignored, the message lost, as output on a
	// disconnected line: to keep it, wrap the writer in one that records
	// it (as the CLI does). Nil discards them.
	Log io.Writer
	// Verbose logs, besides, the boot protocol and what was loaded where
	// (New), or the snapshot, its memory and the disks checked (Restore).
	Verbose bool

	// KVMPath is the KVM device (default /dev/kvm).
	KVMPath string

	// BeforeRun, when set, is called by Run once, before the guest first
	// runs: everything the machine uses is open by then, so it is the
	// place to contain the process (sandbox.Install with RunIoctls,
	// sandbox.DropPrivileges). An error ends Run before the guest runs.
	// Run reads what a snapshot reads from files (the KVM's identity,
	// /proc/self/pagemap) before it, so that Snapshot works inside a
	// sandbox that refuses opening files. A snapshot.Target's commit
	// needs more than RunIoctls: sandbox.Filter's Truncate, and its
	// renames done by another process (Target.UseRenamer), or, in a
	// process no guest can take over, RenameDir (the sandbox recipe of
	// docs/library.md says how). A snapshot of a disk image written just before
	// it sets the image's mtime back (futimens, see Machine.Snapshot):
	// sandbox.Filter's SetFileTimes lets it, and without it the call
	// fails (EPERM) and the restore reads the image whole. Close may be
	// called from it (see Machine.Close), and so may Snapshot.
	BeforeRun func() error

	// SnapshotOnReady, when set, receives a snapshot of the machine taken
	// when it first reports PhaseReady, at the vCPU's next quiescent point
	// (see Machine.Snapshot); the guest then runs on, or, with
	// SnapshotExit, Run returns ExitSnapshot. OnSnapshot, when set, gets
	// the result, on the vCPU thread with the guest paused until it
	// returns: Close may be called from it (see Machine.Close); Snapshot
	// fails with ErrSnapshotFromCallback. A panic in OnSnapshot stops
	// the machine, and Run returns it, a *PanicError in an *Error with
	// Field OnSnapshot (a TargetWriter it did not finish is discarded).
	// A Write that panics fails the
	// snapshot with an error wrapping a *WriterPanicError; Run goes on.
	// A *snapshot.TargetWriter is finished (TargetWriter.Finish: the
	// snapshot committed, or a failed one discarded) by OnSnapshot, which
	// then must call Finish; without OnSnapshot, by the machine, and a
	// commit that fails fails the snapshot. Without OnSnapshot, a failed
	// snapshot (its write or its commit) is Run's error with
	// SnapshotExit, else logged to Log.
	SnapshotOnReady io.Writer
	SnapshotExit    bool
	OnSnapshot      func(SnapshotInfo, error)
	// SnapshotNetwork, when set, says what network the machine's card is
	// on, for each snapshot's header to record (snapshot.Network: its
	// kind, a shared network's or tap's name, the address the network
	// leased the card), so that a restore can rejoin it: the program that
	// attached the card knows it, the machine does not. It is called once
	// per snapshot (Machine.Snapshot, SnapshotOnReady's), as it is taken,
	// with the guest paused, on the goroutine taking it (the vCPU thread,
	// or the caller's before Run), so an address the network leased since
	// the last one (a renewal, a shared network joined late) is the one
	// recorded; keep it short. Snapshot fails from it with
	// ErrSnapshotFromCallback. A record no reader would take (see
	// snapshot.Network.Check: a network for a machine without a card, a
	// tap without a name) fails the snapshot before anything is written,
	// an *Error with Field SnapshotNetwork wrapping ErrConfig; so does a
	// panic in it, wrapping a *PanicError, and the machine goes on as
	// after any failed snapshot. Nil, or NetUnknown, records none.
	SnapshotNetwork func() snapshot.Network
}

// ExitReason says why Run returned without an error.
type ExitReason int

// The ways a guest can end.
const (
	ExitReset    ExitReason = iota + 1 // the guest asked for a reset (NetBSD reboot) or triple-faulted after console output
	ExitDebug                          // the guest wrote the debug-exit port
	ExitHalted                         // NetBSD halted and waits for a key
	ExitShutdown                       // KVM reported a shutdown system event
	ExitStopped                        // Run's context ended (Ctrl-C, SIGTERM, timeout)
	ExitSnapshot                       // a snapshot was taken with Config.SnapshotExit, or by Machine.SnapshotAndExit
)

// String names the reason; the zero reason, of the Exit that Run returns
// with an error (the guest did not end: it never ran, or Run failed), is
// "none".
func (r ExitReason) String() string {
	switch r {
	case 0:
		return "none"
	case ExitReset:
		return "reset"
	case ExitDebug:
		return "debug-exit"
	case ExitHalted:
		return "halted"
	case ExitShutdown:
		return "shutdown"
	case ExitStopped:
		return "stopped"
	case ExitSnapshot:
		return "snapshot"
	}
	return fmt.Sprintf("ExitReason(%d)", int(r))
}

// Exit is how a guest ended.
type Exit struct {
	// Reason is why the guest ended.
	Reason ExitReason
	// Code is the value written to the debug-exit port (ExitDebug only).
	Code uint32
}

// Status is the process exit status that mirrors the guest's exit: 0 for a
// reset (a triple fault after console output included), halt or
// shutdown, (Code<<1)|1 for the debug-exit port (as QEMU's
// isa-debug-exit), 130 when stopped, and 0 for ExitSnapshot (the
// snapshot Config.SnapshotExit asked for was written). It is meaningful
// only for the Exit of a Run that returned no error: the zero Exit that
// comes with an error gives 0 too, though the guest did not end well.
func (e Exit) Status() int {
	switch e.Reason {
	case ExitDebug:
		return int((e.Code<<1 | 1) & 0xFF)
	case ExitStopped:
		return 130
	}
	return 0
}

// Ports of the devices the machine places on the ISA bus.
const (
	// PortCOM1 is the first serial port, the guest's console.
	PortCOM1 = 0x3F8
	// PortDebugExit is QEMU's isa-debug-exit port: writing v there ends
	// the VM (ExitDebug, Code v). Any write that starts in its
	// PortDebugExitSize ports counts, of any width, even one that runs
	// past them (it gives the bytes inside), as QEMU's device with
	// iosize=4 does: every write that ends a guest under QEMU with iosize
	// 1, 2 or 4 ends it here.
	PortDebugExit = 0x501
	// PortDebugExitSize is how many ports the debug-exit device spans.
	PortDebugExitSize = 4
	// PortBootTimer is the boot-timer port: a guest writes any value to
	// it, of any width (e.g. `outb 0x505` from its rc script's helper),
	// when its service is ready, which reports PhaseReady. It spans
	// PortBootTimerSize ports, so that an outw or outl at 0x505 fits; a
	// write that starts at any of them counts.
	PortBootTimer = 0x505
	// PortBootTimerSize is how many ports the boot-timer device spans.
	PortBootTimerSize = 4
	// IRQCOM1 is COM1's interrupt line.
	IRQCOM1 = 4
)

// Machine is a configured VM. Create it with New, run it once with Run, and
// release it with Close.
type Machine struct {
	cfg Config
	// diskPaths are cfg.Disks' paths made absolute when opened.
	diskPaths []string
	// disks are cfg.Disks' devices, in order, for DiskStats; their
	// transports close them.
	disks []*blk.Disk
	// diskCopies says, after a restore, which disks are not the
	// snapshot's file but one with its content (for logRestore).
	diskCopies []bool
	// restoring says setupDevices opens a snapshot's disks, whose format
	// checkDisks checks with their identity (blk.OpenRecorded).
	restoring bool
	kvm       *os.File
	vmFD      uintptr
	// xsaveSize is how many bytes of XSAVE state the vCPU's KVM moves
	// (xsaveSize), asked once the VM exists: a snapshot may be taken
	// where the sandbox allows no KVM_CHECK_EXTENSION.
	xsaveSize int
	gmem      *guestmem.Memory
	pio       *bus.Bus
	mmio      *bus.Bus
	// portBus and mmioBus are pio and mmio as a caller adds devices.
	portBus, mmioBus *DeviceBus
	uart             *devices.UART
	rtc              *devices.RTC
	// console carries the guest's output to Config.Console off the vCPU
	// thread (nil without a console).
	console *consoleWriter
	pci     *pci.Host
	vcpu    *vcpu
	// cpuid is the vCPU's supported CPUID: a restore asks while the VM is
	// made, a boot when it makes the vCPU.
	cpuid *cpuidFetch
	// kvmID is the identity of the machine's KVM (kvmid.go), read once
	// (kvmIdentity).
	kvmID     snapshot.KVMID
	kvmIDOnce sync.Once
	plan      bootplan.Plan
	// virtio devices on the PCI bus, closed before the VM.
	virtio []*virtioSlot
	// log carries messages to Config.Log off the goroutines that log
	// them (nil without a Log); logMu orders the writes of a Machine
	// New did not build (tests), which has none.
	log   *logWriter
	logMu sync.Mutex

	exit      atomic.Pointer[Exit]
	firstOut  atomic.Bool
	readyOnce sync.Once
	readyDone atomic.Bool // PhaseReady was reported (a snapshot records it)
	// readyAddrs is Config.ReadyAddr resolved (resolveReadyAddr).
	readyAddrs []string
	// Event delivery (eventAt): OnEvent runs one call at a time, in the
	// order the phases were reached. eventBusy: a goroutine is in it;
	// eventQueue: the events waiting for it to return; eventsOff: it
	// panicked, and is not called again.
	eventMu    sync.Mutex
	eventBusy  bool
	eventQueue []queuedEvent
	eventsOff  bool
	// The transmit watch's sighting of the guest's SYN-ACK
	// (ReadyGuestPort), reported on a goroutine of its own (readySeen):
	// readySeenGo, it was started; readySeenStop, Run is past it;
	// readySeenWG, Run joins it.
	readySeenMu   sync.Mutex
	readySeenGo   bool
	readySeenStop bool
	readySeenWG   sync.WaitGroup
	watch         *consoleWatch // the console's lines: halt message and ready pattern
	vga           vgaProbe      // the guest's accesses to the empty VGA window

	// Lifecycle (run.go): Run and Close may be called from any goroutine.
	lifeMu   sync.Mutex
	ran      bool          // Run was called: a Machine runs once
	closing  bool          // Close was called: Run refuses
	runDone  chan struct{} // closed when the Run in progress has returned (nil before Run)
	input    *inputPump    // the Config.Input pump, from Run on
	closeErr error
	// waited: the goroutines Run waits for; closeInRun: Close was
	// called from one of them, and Run releases the machine.
	waited     goroutineSet
	closeInRun bool
	runEnded   bool // Run is past its last look at closeInRun
	// building: New is building the machine, which a panic of
	// Config.Log's Write does not stop (stop reads what New is still
	// making) but ends with New's error (logPanicked, built).
	building bool
	// closeInSnap: Close was called from the writer of a snapshot taken
	// before Run, whose goroutine then releases the machine.
	closeInSnap bool

	closeOnce sync.Once
	closers   []func() error

	// Snapshots (snapshot.go): a request the vCPU serves between exits.
	snapMu     sync.Mutex
	snapReqs   []*snapRequest // in the order asked
	snapWanted atomic.Bool
	msrIndex   []uint32              // the MSRs a snapshot saves, found at the first one
	snapErr    atomic.Pointer[error] // Config.SnapshotExit's snapshot failed
	snapW      snapWriter            // the writer being written, for stop to interrupt
	// snapSettle is when serveSnapshot first found a device unsettled
	// for the requests it holds back (zero: none held back); vCPU
	// thread only.
	snapSettle    time.Time
	settleKicking atomic.Bool // a kick to look again is due (holdForSettle)
	consoleDue    atomic.Bool // the console watch's check is due (armConsoleCheck)
	// snapQueuedHook, for tests, is called when a snapshot was queued
	// for the running vCPU.
	snapQueuedHook func()
	// faultErr: a virtio device faulted on guest memory (deviceFault),
	// which ends Run with it.
	faultErr atomic.Pointer[error]
	// panicErr: Config.Console's Write, Config.Input's Read or
	// Config.Log's Write panicked (ioPanicked), which ends Run with it,
	// or New (logPanicked).
	panicErr atomic.Pointer[error]
	// pagemap tells a snapshot which guest pages were never populated
	// (snapzero.go), opened once, under pagemapMu.
	pagemapMu    sync.Mutex
	pagemap      *pagemap.Reader
	pagemapTried bool
	// memFile is the file a restored machine's memory maps (privately,
	// from memFileOff), nil for a booted one: its pages the guest never
	// touched read as the file's bytes, not as zeros.
	memFile    *os.File
	memFileOff int64
	// restoredReady: restored from a snapshot taken after PhaseReady,
	// without a readiness condition of the restore's own, so ready as
	// soon as it runs.
	restoredReady bool
	// pluggedDevices: how many of Config.Devices, in order, setupDevices
	// gave a transport (which closes the device); closeUnplugged closes
	// the rest.
	pluggedDevices int
}

// New builds a machine: VM, memory, devices, and the kernel loaded and
// ready to run. On error nothing is left open, and the Devices it was given
// are closed; so too when Config.OnEvent panics (the panic goes on, see
// Config.OnEvent).
func New(cfg Config) (m *Machine, err error) {
	allocated := heapAllocated()
	m = &Machine{cfg: cfg.unloaded(), building: true}
	m.startLog()
	built := m
	defer func() {
		// Released on a panic too (OnEvent's, as its *PanicError),
		// which then goes on.
		r := recover()
		if err != nil || r != nil {
			built.Close()
			built.closeUnplugged()
		}
		if r != nil {
			panic(r)
		}
	}()
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = DefaultMemoryMiB
	}
	if err := checkMemoryMiB(cfg.MemoryMiB); err != nil {
		return nil, err
	}
	if err := m.checkConfig(&cfg); err != nil {
		return nil, err
	}
	if cfg.Append == "" && !cfg.NoAppend {
		cfg.Append = DefaultAppend
	}
	kernel, err := kernelImage(cfg)
	if err != nil {
		return nil, err
	}
	defer kernel.release()
	m.cfg = cfg.unloaded()

	if m.kvm, err = openKVM(cfg.KVMPath); err != nil {
		return nil, err
	}
	m.closers = append(m.closers, m.kvm.Close)
	if err := m.newVM(); err != nil {
		return nil, err
	}
	if err := disablePMU(m.kvm.Fd(), m.vmFD); err != nil {
		return nil, err
	}
	if err := m.setupMemory(); err != nil {
		return nil, err
	}
	m.event(PhaseVMCreated)

	if err := m.createIRQChips(); err != nil {
		return nil, err
	}
	if err := m.setupDevices(); err != nil {
		return nil, err
	}
	m.event(PhaseDevicesCreated)

	if m.plan, err = loadNamedKernel(m.gmem, kernel, cfg); err != nil {
		return nil, err
	}
	kernel.release()
	freeLoadGarbage(allocated)
	if cfg.Verbose {
		m.logPlan()
	}
	m.event(PhaseKernelLoaded)

	if m.vcpu, err = newVCPU(m, 0, false); err != nil {
		return nil, err
	}
	if err := m.vcpu.setBootState(m.plan); err != nil {
		return nil, err
	}
	m.flushLog(limitedKeep) // what New logged is out when it returns, or queued
	if err := m.built(); err != nil {
		return nil, err
	}
	return m, nil
}

// unloaded is cfg without the kernel's and modules' bytes, which a
// Machine keeps no longer than New loads them (see Config.Kernel).
func (cfg Config) unloaded() Config {
	cfg.KernelImage, cfg.Modules = nil, nil
	return cfg
}

// loadGarbage is how many bytes New may allocate, most of it garbage once
// the kernel is loaded (a gzipped kernel or module decompressed, a
// kernel's symbol tables), before it collects them: a VMM allocates so
// little once its guest runs that no collection would, and the heap would
// keep them for the whole run. A small kernel's load stays below it, and
// costs no collection (a few milliseconds of start).
const loadGarbage = 4 << 20

// heapAllocated is how many bytes the Go heap has allocated since the
// process started.
func heapAllocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64()
}

// freeLoadGarbage collects the heap, and gives its free pages back to the
// kernel, when New allocated more than loadGarbage since allocated
// (heapAllocated at its start).
func freeLoadGarbage(allocated uint64) {
	if heapAllocated()-allocated > loadGarbage {
		debug.FreeOSMemory()
	}
}

// newVM creates the machine's VM and asks how much XSAVE state its vCPU
// moves: a boot's and a restore's alike. Its PMU is theirs to decide
// before the vCPU exists: a boot's VM has none where KVM can take it
// (disablePMU), a restore's the snapshot's (restoredPMU). The machine's
// closers close it.
func (m *Machine) newVM() error {
	vmFD, err := createVM(m.kvm.Fd())
	if err != nil {
		return err
	}
	m.vmFD = vmFD
	m.closers = append(m.closers, func() error { return unix.Close(int(vmFD)) })
	if m.xsaveSize, err = xsaveSize(m.kvm.Fd(), vmFD); err != nil {
		return &Error{Op: "KVM_CHECK_EXTENSION", Err: err}
	}
	return nil
}

// Memory returns the guest's RAM, for tests and loaders. The VGA window
// 0xA0000-0xBFFFF is a hole in it: accesses there are refused, as the guest
// sees no RAM there. Close closes it (guestmem.Memory.Close) before
// unmapping it: an access after Close fails with guestmem.ErrClosed, and
// one concurrent with Close is the caller's to avoid.
func (m *Machine) Memory() *guestmem.Memory { return m.gmem }

// Plan returns the boot protocol used, where the loader placed the kernel
// and how it will start.
func (m *Machine) Plan() bootplan.Plan { return m.plan }

// PortBus returns the machine's port-I/O bus (to add devices before Run):
// the ports 0 to 0xFFFF but those KVM serves (see DeviceBus.Register).
func (m *Machine) PortBus() *DeviceBus { return m.portBus }

// MMIOBus returns the machine's MMIO bus (to add devices before Run): the
// guest-physical addresses outside RAM, the VGA window 0xA0000-0xBFFFF
// included, but those KVM serves (see DeviceBus.Register).
func (m *Machine) MMIOBus() *DeviceBus { return m.mmioBus }

// DiskStats returns what the guest did to each of Config.Disks, in their
// order (blk.Disk.Stats): a disk whose writes go nowhere that lasts (a
// temporary image) can say at the end that it took some. It may be
// called while Run runs and after Close.
func (m *Machine) DiskStats() []blk.Stats {
	stats := make([]blk.Stats, len(m.disks))
	for i, d := range m.disks {
		stats[i] = d.Stats()
	}
	return stats
}

// Unhandled returns the counts of port and MMIO accesses no device claimed.
func (m *Machine) Unhandled() (pio, mmio bus.Unhandled) {
	return m.pio.Unhandled(), m.mmio.Unhandled()
}

func (m *Machine) setupMemory() error {
	size, err := guestMemorySize(m.cfg.MemoryMiB)
	if err != nil {
		return err
	}
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return &Error{Op: "mmap guest memory", Err: err, Hint: "give the VM less memory", Field: "MemoryMiB"}
	}
	m.closers = append(m.closers, func() error { return unix.Munmap(mem) })
	if err := m.useMemory(mem); err != nil {
		return err
	}
	return writeFirmware(m.gmem)
}

// useMemory makes mem (mapped, and unmapped by a closer) the guest's RAM.
func (m *Machine) useMemory(mem []byte) error {
	size := len(mem)
	// Two slots around the VGA window: a machine without a display decodes
	// nothing at 0xA0000-0xBFFFF, so its accesses reach the MMIO bus, which
	// floats reads to all ones. As RAM, NetBSD's pcdisplay probe read back
	// what it wrote and attached a display that does not exist. The same
	// window is a hole of gmem, so no device DMA (nor loader) reaches
	// bytes the guest cannot see.
	m.gmem = guestmem.New(mem, guestmem.Range{Start: vgaStart, End: vgaEnd})
	for slot, r := range []struct{ start, end uint64 }{{0, vgaStart}, {vgaEnd, uint64(size)}} {
		region := kvm.UserspaceMemoryRegion{
			Slot: uint32(slot), GuestPhysAddr: r.start, MemorySize: r.end - r.start,
			UserspaceAddr: uint64(uintptrOf(mem[r.start:])),
		}
		if err := kvm.SetUserMemoryRegion(m.vmFD, &region); err != nil {
			return &Error{Op: fmt.Sprintf("KVM_SET_USER_MEMORY_REGION slot %d [%#x, %#x)", slot, r.start, r.end), Err: err}
		}
	}
	// Intel needs these pages for real-mode emulation; put them where
	// QEMU does, far above RAM.
	if err := kvm.SetTSSAddr(m.vmFD, 0xFFFBD000); err != nil {
		return &Error{Op: "KVM_SET_TSS_ADDR", Err: err}
	}
	if err := kvm.SetIdentityMapAddr(m.vmFD, 0xFFFBC000); err != nil {
		return &Error{Op: "KVM_SET_IDENTITY_MAP_ADDR", Err: err}
	}
	return nil
}

// createIRQChips creates the in-kernel interrupt controllers and PIT,
// which the vCPU needs to exist first (its LAPIC is KVM's).
func (m *Machine) createIRQChips() error {
	if err := kvm.CreateIRQChip(m.vmFD); err != nil {
		return &Error{Op: "KVM_CREATE_IRQCHIP", Err: err}
	}
	if err := createPIT2(m.vmFD); err != nil {
		return &Error{Op: "KVM_CREATE_PIT2", Err: err}
	}
	return nil
}

// setupDevices creates the buses and the devices on them, after
// createIRQChips.
func (m *Machine) setupDevices() error {
	m.pio = bus.New("port")
	m.mmio = bus.New("mmio")
	m.portBus = &DeviceBus{m: m, b: m.pio, own: map[uint64]bool{}}
	m.mmioBus = &DeviceBus{m: m, b: m.mmio, mmio: true, own: map[uint64]bool{}}
	// Unclaimed ports are logged when verbose, unclaimed MMIO always but
	// NetBSD's display probe (vgaProbe); all once per address and
	// direction (the bus counts every access): like a PCI master abort,
	// writes vanish and reads return all ones, so a guest polling one
	// cannot flood the log. The VGA window is empty on purpose (no
	// display), and NetBSD probes it at every boot: nothing to warn of.
	// Any other access there is a guest writing to a display that is not
	// there, its output lost: said once, with what to use instead.
	m.pio.Unclaimed = func(addr uint64, data []byte, write, first bool) {
		switch {
		case !m.cfg.Verbose || !first:
		case write:
			m.logf("unhandled port write %#x (%d bytes) = %#x (further accesses are only counted)", addr, len(data), data)
		default:
			m.logf("unhandled port read %#x (%d bytes) (further accesses are only counted)", addr, len(data))
		}
	}
	m.mmio.Unclaimed = m.unclaimedMMIO

	var out io.Writer = io.Discard
	if m.cfg.Console != nil {
		m.console = newConsoleWriter(m.cfg.Console, m.ioPanicked("console output", "Console"))
		out = m.console
	}
	m.uart = devices.NewUART(out, kvmIRQ{m.vmFD, IRQCOM1})
	m.watch = newConsoleWatch(m.cfg.Ready)
	m.watch.arm = m.armConsoleCheck
	m.uart.OnOutput = m.onConsoleByte
	exit := func(kind devices.ExitKind, code uint32) {
		switch kind {
		case devices.ExitReset:
			m.requestExit(Exit{Reason: ExitReset})
		case devices.ExitDebugPort:
			m.requestExit(Exit{Reason: ExitDebug, Code: code})
		}
	}
	m.rtc = devices.NewRTC(nil, m.gmem.Size())
	m.pci = pci.NewHost(m.pio)
	m.pci.OnBARMove = m.moveNotify
	m.pci.ResetControl = &devices.ResetControl{Exit: exit}
	regs := []struct {
		name       string
		base, size uint64
		dev        bus.Device
		// clipped: a write that starts in the range counts even when
		// it runs past the end (bus.RegisterClipped).
		clipped bool
	}{
		{"com1", PortCOM1, 8, m.uart, false},
		{"cmos", 0x70, 2, m.rtc, false},
		{"i8042", 0x60, 5, &devices.KeyboardController{Exit: exit}, false},
		{"port92", 0x92, 1, &devices.FastA20{Exit: exit}, false},
		{"pci", 0xCF8, 8, m.pci, false},
		{"debug-exit", PortDebugExit, PortDebugExitSize, &devices.DebugExit{Exit: exit}, true},
		{"boot-timer", PortBootTimer, PortBootTimerSize, &devices.BootTimer{Ready: m.ready}, true},
	}
	for _, r := range regs {
		register := m.pio.Register
		if r.clipped {
			register = m.pio.RegisterClipped
		}
		if err := register(r.name, r.base, r.size, r.dev); err != nil {
			return &Error{Op: "register " + r.name, Err: err}
		}
	}
	for i, d := range m.cfg.Disks {
		open := blk.Open
		if m.restoring {
			open = blk.OpenRecorded
		}
		disk, err := open(d.Path, d.Options)
		if err != nil {
			return &Error{Op: fmt.Sprintf("ld%d", i), Err: err, Field: "Disks"} // blk says "disk image PATH"
		}
		// A snapshot names the image by its absolute path, resolved
		// now: filepath.Abs stats the working directory, which a
		// contained VMM may no longer do when it snapshots.
		abs := d.Path
		if a, err := filepath.Abs(abs); err == nil {
			abs = a
		}
		m.diskPaths = append(m.diskPaths, abs)
		m.disks = append(m.disks, disk)
		if pd, err := m.addVirtio(disk, fmt.Sprintf("ld%d", i), fmt.Sprintf(" (disk image %s)", d.Path)); err != nil {
			if pd == nil {
				disk.Close()
			}
			return &Error{Op: fmt.Sprintf("ld%d (disk image %s)", i, d.Path), Err: err, Field: "Disks"}
		}
	}
	for i, d := range m.cfg.Devices {
		pd, err := m.addVirtio(d, virtioName(d.Type()), "")
		if pd != nil {
			m.pluggedDevices++ // its transport closes it
		}
		if errors.Is(err, virtio.ErrInvalidDevice) {
			// The caller's device itself is wrong; the transport's
			// error names its type.
			return &Error{Op: "devices", Err: fmt.Errorf("Devices[%d]: %w: %w", i, err, ErrConfig), Field: "Devices"}
		}
		if err != nil {
			return &Error{Op: fmt.Sprintf("Devices[%d] (virtio type %d)", i, d.Type()), Err: err, Field: "Devices"}
		}
		if k, ok := d.(interface{ SetKick(func(int)) }); ok {
			k.SetKick(pd.KickQueue)
		}
		if c, ok := d.(interface{ SetConfigChanged(func()) }); ok {
			c.SetConfigChanged(pd.ConfigChanged)
		}
	}
	return nil
}

// checkMemoryMiB refuses a memory size no machine gets (ErrConfig, Field
// MemoryMiB): New's and Restore's rule.
func checkMemoryMiB(n int) error {
	if n < MinMemoryMiB || n > MaxMemoryMiB {
		return &Error{Op: "memory", Err: fmt.Errorf("%d MiB: %w", n, ErrConfig),
			Hint: fmt.Sprintf("use between %d and %d MiB", MinMemoryMiB, MaxMemoryMiB), Field: "MemoryMiB"}
	}
	return nil
}

// guestMemorySize is the size in bytes of mib MiB of guest memory, which
// the process maps as one slice. A slice holds at most math.MaxInt bytes:
// where int is 32 bits, 2048 MiB or more is refused (computed as an int,
// 2048 MiB was -2^31 bytes, and mmap refused it as EINVAL).
func guestMemorySize(mib int) (int, error) {
	size := uint64(mib) << 20
	if mib < 0 || size > math.MaxInt {
		return 0, &Error{Op: "mmap guest memory",
			Err:  fmt.Errorf("guest memory of %d MiB does not fit a %d-bit process's address space, which maps at most %d MiB in one piece", mib, strconv.IntSize, math.MaxInt>>20),
			Hint: "give the VM less memory, or run a 64-bit build", Field: "MemoryMiB"}
	}
	return int(size), nil
}

// checkConfig makes the checks New and Restore share, before anything is
// opened (the PCI bus refused the device past its last slot only once
// every disk before it was open), sets m.readyAddrs from cfg.ReadyAddr,
// and fills in cfg.KVMPath's default.
func (m *Machine) checkConfig(cfg *Config) error {
	if err := checkDevices(len(cfg.Disks), cfg.Devices); err != nil {
		return err
	}
	if err := checkDiskSpecs(cfg.Disks); err != nil {
		return err
	}
	if err := checkWatchers(*cfg); err != nil {
		return err
	}
	addrs, err := resolveReadyAddr(cfg.ReadyAddr)
	if err != nil {
		return err
	}
	m.readyAddrs = addrs
	if cfg.KVMPath == "" {
		cfg.KVMPath = defaultKVMPath
	}
	return nil
}

// checkDevices refuses, before anything is opened, a nil entry in
// Config.Devices (the PCI transport would dereference it), a device
// given twice (two transports would each run a worker on it, and a
// device with SetKick keep only the second's), and more devices, disks
// included, than the PCI bus has slots for.
func checkDevices(disks int, devs []virtio.Device) error {
	for i, d := range devs {
		if d == nil {
			return &Error{Op: "devices", Err: fmt.Errorf("Devices[%d] is nil: %w", i, ErrConfig), Field: "Devices"}
		}
		for j, e := range devs[:i] {
			if sameDevice(d, e) {
				return &Error{Op: "devices", Err: fmt.Errorf("Devices[%d] and Devices[%d] are the same device: %w", j, i, ErrConfig),
					Hint: "give each device once", Field: "Devices"}
			}
		}
	}
	if n := disks + len(devs); n > MaxVirtioDevices {
		return &Error{Op: "devices", Err: fmt.Errorf("%d disks and %d other devices: the PCI bus holds %d (%d slots, one the host bridge's): %w",
			disks, len(devs), MaxVirtioDevices, pci.Slots, ErrConfig), Field: "Disks"}
	}
	return nil
}

// checkDiskSpecs refuses, before any is opened, a disk without an image
// path or with a Serial GET_ID cannot answer (ErrConfig: values wrong in
// themselves), and one image given twice in disks, by the same path or
// by another name of the file (a link): its second open would find the
// image locked, by this very process.
func checkDiskSpecs(disks []blk.Spec) error {
	for i, d := range disks {
		if d.Path == "" {
			return &Error{Op: fmt.Sprintf("ld%d", i), Err: fmt.Errorf("Disks[%d] has no image path: %w", i, ErrConfig),
				Hint: "set the disk's Path to its image file", Field: "Disks"}
		}
		if d.Serial == "" {
			continue // derived from the path
		}
		if err := blk.CheckSerial(d.Serial); err != nil {
			return &Error{Op: fmt.Sprintf("ld%d (disk image %s)", i, d.Path), Err: fmt.Errorf("Disks[%d] %w: %w", i, err, ErrConfig),
				Hint: fmt.Sprintf("give a serial of 1 to %d printable ASCII bytes, or none", blk.SerialLen), Field: "Disks"}
		}
	}
	type file struct{ dev, ino uint64 }
	seen := make(map[file]int, len(disks))
	for i, d := range disks {
		st, err := os.Stat(d.Path)
		if err != nil {
			continue // opening it says what is wrong
		}
		s, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			continue
		}
		f := file{uint64(s.Dev), uint64(s.Ino)}
		j, dup := seen[f]
		if !dup {
			seen[f] = i
			continue
		}
		names := d.Path
		if disks[j].Path != d.Path {
			names = disks[j].Path + " and " + d.Path
		}
		return &Error{Op: "disks", Err: fmt.Errorf("Disks[%d] and Disks[%d] are the same file (%s): %w", j, i, names, ErrConfig),
			Hint: "give each image once", Field: "Disks"}
	}
	return nil
}

// checkWatchers refuses readiness and snapshot settings that could never
// act, which would otherwise do nothing unseen: a ReadyAddr that is no
// host and TCP port (the prober would dial it in vain every 5 ms), a
// ReadyGuestPort without a network card whose transmits can be watched,
// and SnapshotExit or OnSnapshot without SnapshotOnReady's writer.
func checkWatchers(cfg Config) error {
	if cfg.ReadyAddr != "" {
		if _, _, err := portready.SplitAddr(cfg.ReadyAddr); err != nil {
			return &Error{Op: "ready address", Err: fmt.Errorf("%q: %w: %w", cfg.ReadyAddr, err, ErrConfig),
				Hint: "give a host and a TCP port, such as 127.0.0.1:8080", Field: "ReadyAddr"}
		}
	}
	if cfg.ReadyGuestPort != 0 && !slices.ContainsFunc(cfg.Devices, func(d virtio.Device) bool { _, ok := d.(transmitWatcher); return ok }) {
		return &Error{Op: "ready port", Err: fmt.Errorf("guest port %d is watched for on a network card's transmits, and no device in Devices shows them (a SetTransmitWatch method, as virtio/net's): %w", cfg.ReadyGuestPort, ErrConfig),
			Hint: "give the machine a network card", Field: "ReadyGuestPort"}
	}
	if cfg.SnapshotOnReady == nil {
		switch {
		case cfg.SnapshotExit:
			return &Error{Op: "snapshot on ready", Err: fmt.Errorf("SnapshotExit is set without SnapshotOnReady, so no snapshot is taken to exit on: %w", ErrConfig),
				Hint: "set SnapshotOnReady to the snapshot's writer", Field: "SnapshotExit"}
		case cfg.OnSnapshot != nil:
			return &Error{Op: "snapshot on ready", Err: fmt.Errorf("OnSnapshot is set without SnapshotOnReady, so no snapshot is taken to report: %w", ErrConfig),
				Hint: "set SnapshotOnReady to the snapshot's writer", Field: "OnSnapshot"}
		}
	}
	return nil
}

// finishTarget finishes Config.SnapshotOnReady's snapshot when the
// writer is a snapshot.TargetWriter and no OnSnapshot is there to: the
// Target holds itself for the writer until Finish (its Close waits for
// it), and commits nothing before. It returns err, or the commit's error.
func (m *Machine) finishTarget(err error) error {
	w, ok := m.cfg.SnapshotOnReady.(*snapshot.TargetWriter)
	if !ok {
		return err
	}
	return w.Finish(err)
}

// sameDevice reports whether a and b are one device: the same pointer
// to a value of non-zero size. Nothing else tells: two new() of a
// zero-size type may share an address, and two equal values (a
// stateless device) are two devices, each with its own transport.
func sameDevice(a, b virtio.Device) bool {
	va, vb := reflect.ValueOf(a), reflect.ValueOf(b)
	return va.Kind() == reflect.Pointer && va.Type() == vb.Type() &&
		va.Type().Elem().Size() > 0 && va.Pointer() == vb.Pointer()
}

// closeUnplugged closes the configured devices that never reached the PCI
// bus (New failed first), since the caller handed them over: those past
// the ones setupDevices plugged, which their transports close.
func (m *Machine) closeUnplugged() {
	for i, d := range m.cfg.Devices {
		plugged := i < m.pluggedDevices
		// Given twice (refused by checkDevices): closed once.
		for _, e := range m.cfg.Devices[:i] {
			if d != nil && e != nil && sameDevice(d, e) {
				plugged = true
			}
		}
		if c, ok := d.(io.Closer); ok && !plugged {
			c.Close()
		}
	}
}

// requestExit records the first reason to stop; the vCPU loop sees it after
// the current exit is handled.
func (m *Machine) requestExit(e Exit) {
	m.exit.CompareAndSwap(nil, &e)
}

func (m *Machine) event(p Phase) { m.eventAt(p, time.Now()) }

// queuedEvent is an event waiting for the OnEvent call in progress to
// return: turn, when not nil, is closed when the goroutine that reached
// it, which waits, is to make its call; one without is the vCPU thread's,
// made by whichever goroutine is calling then.
type queuedEvent struct {
	e    Event
	turn chan struct{}
}

// eventAt reports phase p, reached at t, to Config.OnEvent: one call at
// a time, in order, and, but for the vCPU thread, on the goroutine that
// reached it, which waits for its turn. The vCPU thread never waits for
// another goroutine's call: that call may be waiting for the vCPU (a
// Snapshot from OnEvent on the ReadyAddr prober), so the vCPU's event is
// left for that goroutine to report once its call returns. A panic in
// OnEvent is handed back (onEventPanic), and OnEvent not called again.
func (m *Machine) eventAt(p Phase, t time.Time) {
	if m.cfg.OnEvent == nil {
		return
	}
	onVCPU := m.vcpu != nil && m.vcpu.onThread()
	e := Event{Phase: p, Time: t}
	m.eventMu.Lock()
	switch {
	case m.eventsOff:
		m.eventMu.Unlock()
		return
	case !m.eventBusy:
		m.eventBusy = true
		m.eventMu.Unlock()
	case onVCPU:
		m.eventQueue = append(m.eventQueue, queuedEvent{e: e})
		m.eventMu.Unlock()
		return
	default:
		turn := make(chan struct{})
		m.eventQueue = append(m.eventQueue, queuedEvent{e: e, turn: turn})
		m.eventMu.Unlock()
		<-turn // eventBusy is this goroutine's now, or OnEvent is off
		m.eventMu.Lock()
		off := m.eventsOff
		m.eventMu.Unlock()
		if off {
			return
		}
	}
	for {
		if pe := m.callOnEvent(e); pe != nil {
			m.eventsDone()
			m.onEventPanic(e.Phase, pe)
			return
		}
		m.eventMu.Lock()
		if len(m.eventQueue) == 0 {
			m.eventBusy = false
			m.eventMu.Unlock()
			return
		}
		next := m.eventQueue[0]
		m.eventQueue = m.eventQueue[1:]
		if next.turn != nil {
			close(next.turn) // its goroutine calls next
			m.eventMu.Unlock()
			return
		}
		m.eventMu.Unlock()
		e = next.e
	}
}

// callOnEvent calls Config.OnEvent with e, and returns its panic, if it
// panicked.
func (m *Machine) callOnEvent(e Event) (pe *PanicError) {
	defer func() {
		if r := recover(); r != nil {
			pe = &PanicError{Call: "Config.OnEvent", Value: r, Stack: debug.Stack()}
		}
	}()
	m.cfg.OnEvent(e)
	return nil
}

// eventsDone turns OnEvent off after its panic: the events queued are
// dropped, and the goroutines waiting for their turn return.
func (m *Machine) eventsDone() {
	m.eventMu.Lock()
	defer m.eventMu.Unlock()
	m.eventsOff, m.eventBusy = true, false
	for _, q := range m.eventQueue {
		if q.turn != nil {
			close(q.turn)
		}
	}
	m.eventQueue = nil
}

// onEventPanic hands back OnEvent's panic at phase p: on a goroutine Run
// waits for (the vCPU thread, the ReadyAddr prober, the transmit watch's
// report) it stops the machine and Run returns it, as a panicking
// Console's Write does; on the caller's own (New, Restore, a Snapshot
// before Run) it panics on, as the *PanicError.
func (m *Machine) onEventPanic(p Phase, pe *PanicError) {
	m.callbackPanic(fmt.Sprintf("event %s", p), "OnEvent", pe)
}

// callbackPanic hands back the panic of a caller's callback (field, the
// Config field that set it; "" for a device on PortBus or MMIOBus) made
// while doing op: on a goroutine Run waits for, it stops the machine and
// Run returns it; on the caller's own, it panics on.
func (m *Machine) callbackPanic(op, field string, pe *PanicError) {
	if !m.waited.holdsCaller() {
		panic(pe)
	}
	m.ioPanicked(op, field)(pe) // run.go
}

// onConsoleByte runs on the vCPU thread for each byte the guest transmits:
// the first reports PhaseFirstOutput, and the console watch says when the
// halt message or the ready pattern was seen.
func (m *Machine) onConsoleByte(b byte) {
	if m.firstOut.CompareAndSwap(false, true) {
		m.event(PhaseFirstOutput)
	}
	got := m.watch.feed(b)
	if got&matchHalt != 0 {
		m.requestExit(Exit{Reason: ExitHalted})
	}
	if got&matchReady != 0 {
		m.ready()
	}
}

// consoleCheckDelay is how long after a console byte left unmatched on a
// long line (consoleWatch) the line is matched: output that stops there
// is a prompt, which is ready then.
const consoleCheckDelay = 2 * time.Millisecond

// armConsoleCheck has the vCPU thread call checkConsole in a moment,
// kicking it out of KVM_RUN should the guest not exit meanwhile.
func (m *Machine) armConsoleCheck() {
	time.AfterFunc(consoleCheckDelay, func() {
		m.consoleDue.Store(true)
		m.vcpu.kick()
	})
}

// checkConsole matches the console line's bytes left unmatched, and
// reports ready, timed at the last of them, if the pattern matched.
// vCPU thread only (with onConsoleByte).
func (m *Machine) checkConsole() {
	if ok, t := m.watch.check(); ok {
		m.readyAt(t)
	}
}

func (m *Machine) logf(format string, args ...any) {
	fmt.Fprintf(machineLog{m}, "smolvmm: "+format+"\n", args...)
}

// startLog starts the goroutine that writes to Config.Log (logWriter).
// A panic of Log's Write stops the machine, and Run returns it; during
// New, New returns it (logPanicked).
func (m *Machine) startLog() {
	if m.cfg.Log != nil {
		m.log = newLogWriter(m.cfg.Log, m.logPanicked)
	}
}

// logPanicked is told, on the log's goroutine, of a panic of Config.Log's
// Write: while New builds the machine it is kept for New to return
// (built), for stop would kick a vCPU not made yet; after, it stops the
// machine (ioPanicked).
func (m *Machine) logPanicked(err error) {
	m.lifeMu.Lock()
	building := m.building
	if building {
		e := error(&Error{Op: "log", Err: err, Field: "Log"})
		m.panicErr.CompareAndSwap(nil, &e)
	}
	m.lifeMu.Unlock()
	if !building {
		m.ioPanicked("log", "Log")(err) // run.go
	}
}

// built ends New's building: it returns the panic of Config.Log's Write
// logPanicked kept, if any; a later one stops the machine. The flush
// before it returned after the log's goroutine was told of a panic of
// a message New logged.
func (m *Machine) built() error {
	m.lifeMu.Lock()
	defer m.lifeMu.Unlock()
	m.building = false
	if e := m.panicErr.Load(); e != nil {
		return *e
	}
	return nil
}

// flushLog waits until what was logged so far is written to Config.Log,
// for as long as limit says (see logWriter.flush).
func (m *Machine) flushLog(limit drainLimit) {
	if m.log != nil {
		m.log.flush(limit)
	}
}

// machineLog hands whole messages to Config.Log (or nowhere), one at a
// time, in order: through the log goroutine, which the caller never
// waits for.
type machineLog struct{ m *Machine }

func (l machineLog) Write(p []byte) (int, error) {
	if l.m.cfg.Log == nil {
		return len(p), nil
	}
	if l.m.log != nil {
		l.m.log.put(p)
		return len(p), nil
	}
	l.m.logMu.Lock()
	defer l.m.logMu.Unlock()
	return l.m.cfg.Log.Write(p)
}
