package vmm

import (
	"encoding/json"
	"os"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
)

// CPUIDEntry is a CPUID entry as a snapshot records it, for the tests.
type CPUIDEntry = cpuidEntry

// CPUIDList is the CPUID entries as a snapshot's state encodes them.
type CPUIDList = cpuidList

// VCPUCPUID reads m's vCPU's CPUID back from KVM (KVM_GET_CPUID2).
func VCPUCPUID(m *Machine) ([]CPUIDEntry, error) { return m.vcpu.getCPUID2() }

// SupportedCPUIDOf returns what KVM_GET_SUPPORTED_CPUID on m's /dev/kvm
// answers.
func SupportedCPUIDOf(m *Machine) ([]CPUIDEntry, error) {
	c, err := supportedCPUID(m.kvm.Fd())
	if err != nil {
		return nil, err
	}
	return cpuidEntries(c.entries[:c.nent]), nil
}

// VCPUTSCKHz returns m's vCPU's TSC frequency (KVM_GET_TSC_KHZ).
func VCPUTSCKHz(m *Machine) (uint64, error) { return getTSCKHz(m.vcpu.fd) }

// CanScaleTSC reports whether m's KVM scales a vCPU's TSC
// (KVM_CAP_TSC_CONTROL).
func CanScaleTSC(m *Machine) bool { return canScaleTSC(m.kvm.Fd()) }

// VCPUGivenCPUID returns the entries m gave its vCPU with KVM_SET_CPUID2
// (what a snapshot of it records). KVM_GET_CPUID2 reads back the same
// but for run-time bits on KVM itself; under kvm_pvm it reads back the
// host CPU's own.
func VCPUGivenCPUID(m *Machine) []CPUIDEntry { return m.vcpu.cpuid }

// SupportedCPUIDAsked returns how many times m asked KVM_GET_SUPPORTED_CPUID.
func SupportedCPUIDAsked(m *Machine) int { return int(m.cpuid.asked.Load()) }

// PreparedTaken reports whether a Restore took p over.
func PreparedTaken(p *PreparedRestore) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.taken && p.f != nil && p.done != nil && isClosed(p.done) && p.st != nil
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// StateJSON returns a state section (snapshot.File's State) as the JSON
// encoding of the whole machine state, KVM structures included, which the
// tests edit.
func StateJSON(section []byte) ([]byte, error) {
	st, err := decodeState(section)
	if err != nil {
		return nil, err
	}
	return json.Marshal(st)
}

// StateSection encodes what StateJSON returns (edited) as a state section.
func StateSection(j []byte) ([]byte, error) {
	var st machineState
	if err := json.Unmarshal(j, &st); err != nil {
		return nil, err
	}
	return encodeState(&st)
}

// GatePreparedCPUID makes each PrepareRestore's goroutine, before it asks
// KVM for the CPUID, wait until the state is decoded or a vCPU waits for
// the CPUID, whichever comes first, and tell got whether the state was
// decoded then. undo removes the gate.
func GatePreparedCPUID(got func(decodedFirst bool)) (undo func()) {
	prepareGate = func(p *PreparedRestore) {
		select {
		case <-p.loaded:
		case <-p.cpuid.waiting:
		}
		// Both may be done by now: the state's decoding, if it was
		// first, still ended before the vCPU's wait began.
		got(isClosed(p.loaded))
	}
	return func() { prepareGate = nil }
}

// PreparedCPUIDAsked returns how many times p asked KVM_GET_SUPPORTED_CPUID
// (0 when it could not open KVM).
func PreparedCPUIDAsked(p *PreparedRestore) int {
	<-p.opened
	if p.cpuid == nil {
		return 0
	}
	return int(p.cpuid.asked.Load())
}

// SetConsoleBuffer makes the consoles of the machines made next buffer
// size bytes, until undo.
func SetConsoleBuffer(size int) (undo func()) {
	old := consoleBufferFor
	consoleBufferFor = size
	return func() { consoleBufferFor = old }
}

// KVMIdentity returns the identity of m's KVM, as its snapshots' headers
// name it.
func KVMIdentity(m *Machine) snapshot.KVMID { return m.kvmIdentity() }

// ReadKVMIdentity is readKVMIdentity, for the external tests.
func ReadKVMIdentity(kvm *os.File) (snapshot.KVMID, bool) { return readKVMIdentity(kvm) }

// SetBootIDPath makes the kernel's boot_id be read from path, until undo.
func SetBootIDPath(path string) (undo func()) {
	old := bootIDPath
	bootIDPath = path
	return func() { bootIDPath = old }
}

// OnEmptyRead has f called each time an input pump waits after a Read of
// Config.Input that returned (0, nil), until undo.
func OnEmptyRead(f func()) (undo func()) {
	emptyReadHook = f
	return func() { emptyReadHook = nil }
}

// OnSnapshotWait has f called (with the vCPU's lock held) each time
// Run, Close or another Snapshot of m starts waiting for a snapshot taken
// before m's guest first ran.
func OnSnapshotWait(m *Machine, f func()) { m.vcpu.waitHook = f }

// OnSnapshotQueued has f called each time a Snapshot of m was queued for
// its running vCPU.
func OnSnapshotQueued(m *Machine, f func()) { m.snapQueuedHook = f }

// HostXSaveSize is how many bytes of XSAVE state a vCPU of a new VM on
// kvmPath moves (xsaveSize).
func HostXSaveSize(kvmPath string) (int, error) {
	f, err := openKVM(kvmPath)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	vm, err := createVM(f.Fd())
	if err != nil {
		return 0, err
	}
	defer unix.Close(int(vm))
	return xsaveSize(f.Fd(), vm)
}

// ServeAfterSnapshots makes each snapshot of m, once its devices have
// resumed, serve every device's queues at once on the goroutine that took
// it, as a notification that came during the snapshot would: what a
// resumed device would do with the requests the guest queued, whenever
// its worker gets to them. undo removes it.
func ServeAfterSnapshots(m *Machine) (undo func()) {
	snapResumedHook = func(s *Machine) {
		if s != m {
			return
		}
		for _, v := range m.virtio {
			v.dev.Serve()
		}
	}
	return func() { snapResumedHook = nil }
}
