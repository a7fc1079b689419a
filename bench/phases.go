package bench

// Phase names, as they appear in Boot.Phases and in the JSON. Every time is
// in milliseconds since the VMM's process was started.
const (
	// PhaseRuntime: the VMM's Go runtime has started, as early as Go
	// code can see it (internal/starttime; smolvmm only).
	PhaseRuntime = "runtime"
	// PhaseMain: every package of the VMM is initialised and its main
	// runs (smolvmm only). From PhaseRuntime to here is the cost of the
	// binary's size: page faults on its text and data.
	PhaseMain = "main"
	// PhaseVMCreated .. PhaseFirstRun are vmm's own events (smolvmm only):
	// KVM VM and guest memory made, devices made, kernel loaded, first
	// KVM_RUN.
	PhaseVMCreated      = "vm-created"
	PhaseDevicesCreated = "devices-created"
	PhaseKernelLoaded   = "kernel-loaded"
	PhaseFirstRun       = "first-run"
	// PhaseSnapshotLoaded and PhaseStateRestored are a restore's (a VM
	// started from a snapshot): the snapshot's header and state read and checked (while
	// the VM is created: it can come after PhaseVMCreated), and its state set (instead of the kernel loaded).
	PhaseSnapshotLoaded = "snapshot-loaded"
	PhaseStateRestored  = "state-restored"
	// PhaseFirstOutput: the first console byte arrived on the VMM's
	// standard output, seen by the bench (every system).
	PhaseFirstOutput = "first-output"
	// PhaseReady: the ready condition held: a console line matched the
	// ready pattern or a TCP connect succeeded (seen by the bench), or the
	// guest wrote smolvmm's boot-timer port (reported by smolvmm),
	// whichever came first.
	PhaseReady = "ready"
	// PhaseStopped: the bench stopped the VMM (SIGTERM) because the
	// guest, ready, did not end by itself within BootOptions.ExitWait:
	// the boot ended at its ready event, and PhaseExit (and smolvmm's
	// PhaseClosed) then time the stop. A stopped boot has no
	// PhaseGuestExit.
	PhaseStopped = "stopped"
	// PhaseGuestExit: the guest left by itself and the vCPU stopped
	// (smolvmm only).
	PhaseGuestExit = "guest-exit"
	// PhaseClosed: the VMM released the VM, its devices and guest memory
	// (smolvmm only).
	PhaseClosed = "closed"
	// PhaseExit: the VMM's process exited, seen by the bench (every system).
	PhaseExit = "exit"
)

// Ready events: what made a boot ready (Boot.ReadyBy), or the memory
// sample taken at ready (Memory.ReadyBy). Two systems' ready phases, or
// samples at ready, compare only when the same event made them.
const (
	// ReadyByLine: a console line matched the ready pattern.
	ReadyByLine = "line"
	// ReadyByPort: the bench's own TCP connection to the ready address
	// held.
	ReadyByPort = "port"
	// ReadyByVMM: the VMM reported its guest ready itself
	// (Target.ReadyFlag, or its ChildReport's ready): smolvmm's guest
	// wrote the boot-timer port, or accepted on the ready port.
	ReadyByVMM = "vmm"
	// ReadyByRestore: the VMM reported that a restore of a snapshot taken
	// once ready runs (Target.ReadyReported): ready again at once.
	ReadyByRestore = "restore"
)

// PhaseOrder lists the phases in the order they happen. PhaseReady is an
// exception: a ready pattern on the guest's last line can be seen after
// PhaseGuestExit, and a port can be ready before any console output; so is
// PhaseFirstOutput, seen on the pipe, which can be read after the VMM's
// PhaseGuestExit on a loaded host; and so is PhaseSnapshotLoaded, which
// comes before or after PhaseVMCreated.
var PhaseOrder = []string{
	PhaseRuntime, PhaseMain, PhaseSnapshotLoaded, PhaseVMCreated, PhaseDevicesCreated, PhaseKernelLoaded,
	PhaseStateRestored, PhaseFirstRun,
	PhaseFirstOutput, PhaseReady, PhaseStopped, PhaseGuestExit, PhaseClosed, PhaseExit,
}

// knownPhase reports whether name is in PhaseOrder.
func knownPhase(name string) bool {
	for _, p := range PhaseOrder {
		if p == name {
			return true
		}
	}
	return false
}
