package vmm

import "time"

// Phase names a moment in a machine's life, for boot-time measurements.
type Phase string

// The phases a Machine reports, in the order they happen.
const (
	PhaseVMCreated      Phase = "vm-created"      // KVM VM and guest memory exist
	PhaseDevicesCreated Phase = "devices-created" // buses, irqchip and devices are ready
	PhaseKernelLoaded   Phase = "kernel-loaded"   // the kernel is in guest memory
	// A restore reports PhaseSnapshotLoaded and PhaseVMCreated (its
	// memory is the snapshot's mapping) in the order they happened, since
	// it reads the snapshot while it creates the VM, then
	// PhaseDevicesCreated and PhaseStateRestored instead of
	// PhaseKernelLoaded.
	PhaseSnapshotLoaded Phase = "snapshot-loaded" // the snapshot's header and state were read and checked, and its memory (unless SkipMemoryCheck)
	PhaseStateRestored  Phase = "state-restored"  // vCPU, interrupt controllers, clocks and devices hold the snapshot's state
	PhaseFirstRun       Phase = "first-run"       // just before the first KVM_RUN
	PhaseFirstOutput    Phase = "first-output"    // the guest wrote its first console byte
	PhaseReady          Phase = "ready"           // the ready pattern matched, ReadyAddr answered, or the guest wrote the boot-timer port
	PhaseExit           Phase = "exit"            // the guest left (or was stopped)
	// PhaseSnapshotWritten is when a snapshot was written (the guest
	// runs again from then on).
	PhaseSnapshotWritten Phase = "snapshot-written"
)

// Event is a phase reached at a monotonic time.
type Event struct {
	Phase Phase     // the phase reached
	Time  time.Time // when it was reached
}
