package vmm

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/bobuhiro11/gokvm/kvm"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/internal/goid"
	"github.com/smolvmm/smolvmm/snapshot"
)

// vcpuState is where a vCPU is in its life. The states and their order
// follow Firecracker's vCPU state machine (vmm/src/vstate/vcpu: a vCPU is
// created, runs, and once it exits never runs again), without its Paused
// state: a snapshot pauses the guest on the run loop's own thread, between
// two KVM_RUN exits (snapshot.go), so the loop never hands the vCPU over.
type vcpuState int

const (
	vcpuCreated vcpuState = iota // registers set, never run
	// vcpuSnapshotting: never run, and a snapshot of the machine as New
	// left it is being taken on the caller's goroutine; run and close
	// wait for it to end (back to vcpuCreated).
	vcpuSnapshotting
	vcpuRunning // the run loop owns the vCPU and its thread
	vcpuExited  // the run loop returned; it does not run again
	vcpuClosed  // fd closed, kvm_run unmapped
)

func (s vcpuState) String() string {
	switch s {
	case vcpuCreated:
		return "created"
	case vcpuSnapshotting:
		return "being snapshotted"
	case vcpuRunning:
		return "running"
	case vcpuExited:
		return "exited"
	case vcpuClosed:
		return "closed"
	}
	return fmt.Sprintf("vcpuState(%d)", int(s))
}

// vcpu is the boot CPU: its fd, its shared kvm_run page, and the OS thread
// that runs it (so that it can be interrupted with a signal).
type vcpu struct {
	m       *Machine
	fd      int
	runPage []byte

	// mu orders the state changes: kick (from any goroutine) touches
	// runPage and signals the thread only while running, and close frees
	// runPage only once the run loop is out.
	mu    sync.Mutex
	state vcpuState
	idle  *sync.Cond // on mu: a before-Run snapshot ended
	tid   int        // the run loop's thread while running
	// ended: Run returned while a before-Run snapshot was being taken,
	// so the vCPU is exited, not created, once it is written (endRun).
	ended bool
	// snapGID is the goroutine taking a before-Run snapshot (goid),
	// while vcpuSnapshotting: its writer's calls run on it.
	snapGID uint64

	cpuid []cpuidEntry // the entries KVM_SET_CPUID2 gave it, for a snapshot

	waitHook func() // for tests: called as waitSnapshot begins to wait
}

func uintptrOf(b []byte) uintptr { return uintptr(unsafe.Pointer(&b[0])) }

// newVCPU creates vCPU id with this host's CPUID, and its LAPIC set up as
// a BIOS leaves it unless restored: a restore sets the snapshot's LAPIC,
// and its CPUID if it differs (restoreCPUID), once the snapshot is
// verified. A restore that did not ask KVM for its CPUID (cpuidFetch's
// decide) gives the vCPU none here.
func newVCPU(m *Machine, id int, restored bool) (*vcpu, error) {
	fd, err := kvm.CreateVCPU(m.vmFD, id)
	if err != nil {
		return nil, &Error{Op: "KVM_CREATE_VCPU", Err: err}
	}
	v := &vcpu{m: m, fd: int(fd)}
	v.idle = sync.NewCond(&v.mu)
	size, err := kvm.GetVCPUMMmapSize(m.kvm.Fd())
	if err != nil {
		unix.Close(v.fd)
		return nil, &Error{Op: "KVM_GET_VCPU_MMAP_SIZE", Err: err}
	}
	v.runPage, err = unix.Mmap(v.fd, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		unix.Close(v.fd)
		return nil, &Error{Op: "mmap kvm_run", Err: err}
	}
	// A restore on the KVM the snapshot's record of its supported CPUID
	// came from asked nothing (kvmid.go): the vCPU gets the snapshot's
	// entries once checked (restoreCPUID), none before.
	if !restored || m.cpuid == nil || !m.cpuid.notAsked() {
		if err := v.setCPUID(); err != nil {
			v.close()
			return nil, err
		}
	}
	if restored {
		return v, nil
	}
	if err := v.setLAPIC(); err != nil {
		v.close()
		return nil, err
	}
	return v, nil
}

// close frees the vCPU. It refuses while the run loop is in it (the
// Machine stops and waits for Run first), and is a no-op once closed.
func (v *vcpu) close() error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.waitSnapshot()
	switch v.state {
	case vcpuClosed:
		return nil
	case vcpuRunning:
		return fmt.Errorf("vCPU is %s: stop it before closing it", v.state)
	}
	var err error
	if v.runPage != nil {
		err = unix.Munmap(v.runPage)
		v.runPage = nil
	}
	if e := unix.Close(v.fd); e != nil && err == nil {
		err = e
	}
	v.state = vcpuClosed
	return err
}

// setCPUID passes KVM's supported CPUID through, minus what a guest cannot
// use here: MONITOR/MWAIT (KVM does not run them) and the performance
// monitoring leaves and bits (the VM has no PMU where KVM can take it,
// disablePMU), VMX and SVM (a snapshot keeps no nested state) and KVM's
// paravirtual features (NetBSD reads none), with APIC ID and x2APIC ID 0
// for the only CPU, and with the hypervisor bit, which older KVMs leave
// out. On Intel hosts it also fills leaf 0x15 with the TSC frequency,
// which NetBSD then uses instead of calibrating the TSC against the PIT
// for ~100 ms.
func (v *vcpu) setCPUID() error {
	if v.m.cpuid == nil {
		v.m.cpuid = newCPUIDFetch()
		v.m.cpuid.fetch(v.m.kvm.Fd())
	}
	c, err := v.m.cpuid.wait()
	if err != nil {
		return err
	}
	tscKHz, _ := kvm.GetTSCKHz(uintptr(v.fd))
	// tuneCPUID appends at most one entry, into the spare slot.
	entries := tuneCPUID(c.entries[:c.nent:len(c.entries)], tscKHz)
	c.nent = uint32(copy(c.entries[:], entries))
	return v.setCPUIDEntries(c)
}

// supportedCPUID asks kvmFD (/dev/kvm) for the CPUID it supports.
func supportedCPUID(kvmFD uintptr) (*cpuid2, error) {
	c := new(cpuid2)
	c.nent = maxCPUIDEntries
	// Passed as the struct itself, not through gokvm's CPUID, whose
	// reflection-based encoding (encoding/binary, an entry at a time, and
	// back) allocated ~70 KB per call: heap that stays resident, since no
	// GC runs before the guest does.
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, kvmFD, kvm.IIOWR(kvmGetSupportedCPUID, cpuid2HeaderSize), uintptr(unsafe.Pointer(c))); errno != 0 {
		return nil, &Error{Op: "KVM_GET_SUPPORTED_CPUID", Err: errno}
	}
	return c, nil
}

// cpuidFetch hands supportedCPUID's answer from the goroutine that asks
// to the one that makes the vCPU. A restore asks while another goroutine
// creates the VM: the question needs nothing of the VM, and it is the
// slowest step of making the vCPU (~0.8 ms on a nested host, where each
// CPUID instruction KVM executes to answer it exits to the outer
// hypervisor). New asks in turn: overlapped in a boot (on a goroutine of
// its own), it delayed the vm-created phase by ~0.7 ms on this 2-core
// host and brought the first run no sooner.
type cpuidFetch struct {
	done chan struct{}
	c    *cpuid2 // the machine's one vCPU tunes it in place
	// supported is the answer untouched, which restoreCPUID checks a
	// snapshot's entries against: asking again cost 0.7-1 ms.
	supported []cpuidEntry
	err       error
	asked     atomic.Int32 // KVM_GET_SUPPORTED_CPUID questions, for the tests
	// kvmID is the identity of the KVM asked, or not asked (kvmid.go),
	// once decide has read it (identified); zero when it could not be
	// told.
	kvmID      snapshot.KVMID
	identified bool
	// skipped: decide did not ask, since kvmID is the snapshot's: the
	// answer's part a restore checks is the snapshot's record, which
	// restoreCPUID makes supported once the state is verified.
	skipped bool
	// waiting is closed when wait is first called, for the tests.
	waiting     chan struct{}
	waitingOnce sync.Once
}

func newCPUIDFetch() *cpuidFetch {
	return &cpuidFetch{done: make(chan struct{}), waiting: make(chan struct{})}
}

// fetch asks kvmFD (/dev/kvm) and hands the answer over.
func (f *cpuidFetch) fetch(kvmFD uintptr) {
	f.asked.Add(1)
	f.c, f.err = supportedCPUID(kvmFD)
	if f.err == nil {
		f.supported = cpuidEntries(f.c.entries[:f.c.nent])
	}
	close(f.done)
}

// decide asks kvm for the CPUID it supports, as fetch, unless kvm is the
// KVM known identifies (a snapshot header's KVMID, zero: none): a
// restore then checks against the snapshot's record of that KVM's answer
// (kvmid.go says why that is the answer). It reads kvm's identity first,
// for the machine's snapshots.
func (f *cpuidFetch) decide(kvm *os.File, known snapshot.KVMID) {
	id, ok := readKVMIdentity(kvm)
	f.kvmID, f.identified = id, true
	if ok && id == known {
		f.skipped = true
		close(f.done)
		return
	}
	f.fetch(kvm.Fd())
}

// notAsked reports, once decided, whether decide left KVM unasked.
func (f *cpuidFetch) notAsked() bool {
	f.wait()
	return f.skipped
}

// askNow asks kvmFD after decide did not, for a snapshot that named this
// KVM without a record of its answer.
func (f *cpuidFetch) askNow(kvmFD uintptr) error {
	f.asked.Add(1)
	c, err := supportedCPUID(kvmFD)
	if err != nil {
		return err
	}
	f.c, f.supported, f.skipped = c, cpuidEntries(c.entries[:c.nent]), false
	return nil
}

// wait returns the supported CPUID once fetched (it may be called
// again); nil, with a nil error, when decide did not ask.
func (f *cpuidFetch) wait() (*cpuid2, error) {
	f.waitingOnce.Do(func() { close(f.waiting) })
	<-f.done
	return f.c, f.err
}

// KVM_GET_SUPPORTED_CPUID (on /dev/kvm) and KVM_SET_CPUID2 (on a vCPU)
// take a struct kvm_cpuid2, whose size in the ioctl number is its header's
// (nent, padding) alone.
const (
	kvmGetSupportedCPUID = 0x05
	kvmSetCPUID2         = 0x90
	cpuid2HeaderSize     = 8
	// maxCPUIDEntries is the room offered to KVM_GET_SUPPORTED_CPUID (KVM
	// fails with E2BIG if it has more).
	maxCPUIDEntries = 256
)

// cpuid2 is struct kvm_cpuid2 (include/uapi/linux/kvm.h) with room for
// maxCPUIDEntries and one more, the leaf tuneCPUID may add.
type cpuid2 struct {
	nent, padding uint32
	entries       [maxCPUIDEntries + 1]kvm.CPUIDEntry2
}

// The PMU's feature bits outside its own leaves: PDCM (leaf 1 ECX, Intel's
// IA32_PERF_CAPABILITIES) and AMD's counter extensions (leaf 0x80000001
// ECX: core, northbridge, last-level cache), whose counters a VM without
// a PMU does not have: the guest's access to them would fault.
const (
	pdcm          = 1 << 15
	amdPerfCtrExt = 1<<23 | 1<<24 | 1<<28
)

// pmuSigns are the CPUID bits that advertise a PMU, which tuneCPUID
// clears and cpuidHasPMU looks for: Intel's architectural PMU (leaf 0xA's
// version, EAX bits 7:0) and PDCM, AMD's counter extensions and
// PerfMonV2 (leaf 0x80000022 EAX bit 0). A whole leaf is the PMU's own:
// tuneCPUID clears all of it.
var pmuSigns = []struct {
	leaf  uint32
	reg   string // "EAX".."EDX"
	mask  uint32
	whole bool
}{
	{1, "ECX", pdcm, false},
	{0xA, "EAX", 0xFF, true},
	{0x80000001, "ECX", amdPerfCtrExt, false},
	{0x80000022, "EAX", 1, true},
}

// hidePMU clears pmuSigns from e.
func hidePMU(e *kvm.CPUIDEntry2) {
	for _, p := range pmuSigns {
		switch {
		case e.Function != p.leaf:
		case p.whole:
			e.Eax, e.Ebx, e.Ecx, e.Edx = 0, 0, 0, 0
		default:
			*cpuidReg(e, p.reg) &^= p.mask
		}
	}
}

// cpuidReg is the register r ("EAX".."EDX") of e.
func cpuidReg(e *kvm.CPUIDEntry2, r string) *uint32 {
	switch r {
	case "EAX":
		return &e.Eax
	case "EBX":
		return &e.Ebx
	case "ECX":
		return &e.Ecx
	}
	return &e.Edx
}

// CPUID bits tuneCPUID sets or clears whatever KVM says: the hypervisor
// bit (CPUID.1:ECX bit 31, set when running under a hypervisor), VMX
// (CPUID.1:ECX bit 5) and SVM (CPUID.80000001H:ECX bit 2).
const (
	cpuid1ECXHypervisor = 1 << 31
	cpuid1ECXVMX        = 1 << 5
	cpuidExtECXSVM      = 1 << 2
)

// tuneCPUID adjusts the supported CPUID entries for a one-CPU NetBSD guest.
// tscKHz is the vCPU's TSC frequency (0 if unknown).
func tuneCPUID(entries []kvm.CPUIDEntry2, tscKHz uint64) []kvm.CPUIDEntry2 {
	intel := false
	maxLeaf := -1
	for i := range entries {
		e := &entries[i]
		hidePMU(e)
		switch e.Function {
		case 0:
			intel = e.Ebx == 0x756E6547 && e.Edx == 0x49656E69 && e.Ecx == 0x6C65746E // "GenuineIntel"
			maxLeaf = i
		case 1:
			e.Ecx &^= 1 << 3 // MONITOR/MWAIT
			// The hypervisor bit, which KVM lists only since Linux
			// 6.14: a guest takes a CPU without it for real
			// hardware. NetBSD 9's x86_errata() then writes AMD
			// errata MSRs (DE_CFG) that KVM refuses with #GP, a
			// panic at boot on family 10h and Zen 1 signatures.
			e.Ecx |= cpuid1ECXHypervisor
			// No VMX, which KVM lists when it runs nested guests: a
			// snapshot saves no nested state, and VMX would have
			// it save the host's VMX capability MSRs, which a host
			// with other nested capabilities refuses to set.
			e.Ecx &^= cpuid1ECXVMX
			e.Ebx &^= 0xFF << 24            // initial APIC ID 0
			e.Ebx = e.Ebx&^0xFF0000 | 1<<16 // one logical processor
		case 4, 0x8000001D:
			// One core per package and one logical CPU per cache, as
			// leaf 1 says: KVM passes the host's counts, and NetBSD's
			// x86_cpu_topology (arch/x86/x86/cpu_topology.c) takes
			// cores from leaf 4 and logical CPUs from leaf 1, asserts
			// the second is not smaller, and otherwise derives a
			// 32-bit SMT field from their wrapped quotient.
			e.Eax &^= 0x3F<<26 | 0xFFF<<14
		case 0xB, 0x1F:
			// x2APIC ID 0, as in leaf 1. KVM passes the ID of the
			// host CPU that answered, which varies from call to
			// call: a snapshot would record one, and a restore find
			// another. Each level holds this one CPU.
			e.Edx = 0
			if (e.Ecx>>8)&0xFF != 0 {
				e.Eax &^= 0x1F
				e.Ebx = e.Ebx&^0xFFFF | 1
			}
		case 0x40000001:
			// None of KVM's paravirtual features (kvmclock, PV EOI
			// and the rest) nor hints: NetBSD 9 reads none of them,
			// and KVM adds features with its releases, so that a
			// snapshot's would be refused on a host with an older
			// kernel. Leaf 0x40000000's signature, by which NetBSD
			// names its hypervisor, stays.
			e.Eax, e.Edx = 0, 0
		case 0x80000001:
			e.Ecx &^= cpuidExtECXSVM // no nested AMD-V, as no VMX above
		case 0x80000008:
			e.Ecx &^= 0xF<<12 | 0xFF // AMD: one core, no core ID bits
		case 0x8000001E:
			// AMD: extended APIC ID 0, core 0 with one thread, node 0
			// of one (NetBSD reads the threads on family 0x17).
			e.Eax = 0
			e.Ebx &^= 0xFFFF
			e.Ecx &^= 0x7FF
		}
	}
	if !intel || tscKHz == 0 || maxLeaf < 0 {
		return entries
	}
	// Leaf 0x15: TSC = crystal (ECX, Hz) * EBX / EAX. The crystal is 1 GHz,
	// the rate of KVM's local APIC timer, which NetBSD and Linux take from
	// this leaf too; the ratio tscKHz/10^6 then gives the TSC exactly
	// (NetBSD truncates the crystal to kHz, which 1 GHz survives).
	leaf := kvm.CPUIDEntry2{Function: 0x15, Eax: 1000000, Ebx: uint32(min(tscKHz, math.MaxUint32)), Ecx: 1000000000}
	for i := range entries {
		if entries[i].Function == 0x15 {
			if entries[i].Eax != 0 && entries[i].Ebx != 0 && entries[i].Ecx != 0 {
				return entries // the host's own values are better
			}
			entries[i] = leaf
			return entries
		}
	}
	if entries[maxLeaf].Eax < 0x15 {
		entries[maxLeaf].Eax = 0x15
	}
	return append(entries, leaf)
}

// setLAPIC makes LINT0 ExtINT and LINT1 NMI, as a BIOS leaves the boot CPU:
// NetBSD without MP or ACPI tables never enables the local APIC and relies
// on 8259 interrupts arriving through LINT0.
func (v *vcpu) setLAPIC() error {
	var l kvm.LAPICState
	if err := kvm.GetLocalAPIC(uintptr(v.fd), &l); err != nil {
		return &Error{Op: "KVM_GET_LAPIC", Err: err}
	}
	const lvt0, lvt1 = 0x350, 0x360
	const extINT, nmi = 0x7 << 8, 0x4 << 8
	binary.LittleEndian.PutUint32(l.Regs[lvt0:], extINT)
	binary.LittleEndian.PutUint32(l.Regs[lvt1:], nmi)
	if err := kvm.SetLocalAPIC(uintptr(v.fd), &l); err != nil {
		return &Error{Op: "KVM_SET_LAPIC", Err: err}
	}
	return nil
}

// setBootState puts the vCPU in the state every boot protocol starts in:
// protected mode without paging, flat 4 GiB code and data segments,
// interrupts off, and EIP, ESP, EAX and EBX from the plan (multiboot: the
// magic and the info structure; NetBSD's handoff: the stack arguments).
func (v *vcpu) setBootState(p bootplan.Plan) error {
	s, err := kvm.GetSregs(uintptr(v.fd))
	if err != nil {
		return &Error{Op: "KVM_GET_SREGS", Err: err}
	}
	code := kvm.Segment{Base: 0, Limit: 0xFFFFFFFF, Selector: gdtCode, Typ: 0xB,
		Present: 1, DPL: 0, DB: 1, S: 1, G: 1}
	data := code
	data.Selector, data.Typ = gdtData, 0x3
	s.CS = code
	s.DS, s.ES, s.FS, s.GS, s.SS = data, data, data, data, data
	s.GDT = kvm.Descriptor{Base: gdtBase, Limit: 3*8 - 1}
	s.IDT = kvm.Descriptor{Base: 0, Limit: 0}
	s.CR0 = 0x11 // PE | ET
	s.CR3, s.CR4, s.EFER = 0, 0, 0
	if err := kvm.SetSregs(uintptr(v.fd), s); err != nil {
		return &Error{Op: "KVM_SET_SREGS", Err: err}
	}
	r := &kvm.Regs{RIP: uint64(p.EIP), RAX: uint64(p.EAX), RBX: uint64(p.EBX),
		RSP: uint64(p.ESP), RFLAGS: 0x2}
	if err := kvm.SetRegs(uintptr(v.fd), r); err != nil {
		return &Error{Op: "KVM_SET_REGS", Err: err}
	}
	return nil
}

// kick makes the running vCPU leave KVM_RUN and go round its loop, where it
// sees a requested exit; it reports whether the vCPU was running. A kick
// means something only while running: before, the loop has not started
// (and checks for an exit before its first KVM_RUN); after, nothing runs.
// immediate_exit covers the window before the ioctl, the signal the time
// inside it; the loop clears immediate_exit once KVM_RUN returned, so the
// kick is served once and the vCPU runs again unless told to stop. SIGURG
// is the signal the Go runtime itself uses to preempt threads, so every Go
// program already tolerates it arriving at any time.
func (v *vcpu) kick() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.state != vcpuRunning {
		return false
	}
	atomic.StoreUint32(v.immediateExit(), immediateExitSet)
	_ = unix.Tgkill(unix.Getpid(), v.tid, unix.SIGURG)
	return true
}

// immediateExit is the aligned word of kvm_run that holds its
// immediate_exit byte, so that it can be stored atomically: store
// immediateExitSet or 0.
func (v *vcpu) immediateExit() *uint32 {
	return (*uint32)(unsafe.Pointer(&v.runPage[0]))
}

// immediateExitSet is the word with immediate_exit (byte 1 of kvm_run, after
// request_interrupt_window) set and the other bytes clear, little-endian.
// Setting byte 0 instead asked for an interrupt window, which KVM ignores
// with an in-kernel irqchip: KVM_RUN then entered the guest, so a kick
// relied on its signal alone and a snapshot was taken one exit late, with
// that exit left unserved.
const immediateExitSet = 1 << 8

// kvmRunIoctl is KVM_RUN, _IO(KVMIO, 0x80).
var kvmRunIoctl = kvm.IIO(0x80)

// kvm_run field offsets (include/uapi/linux/kvm.h, x86).
const (
	runExitReason = 8
	runExitData   = 32
)

// run is the vCPU loop. It calls started once the guest is about to run,
// and returns nil when the machine should stop for a reason recorded in
// m.exit, or the crash that stopped it. A vCPU runs once.
func (v *vcpu) run(started func()) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	v.mu.Lock()
	v.waitSnapshot()
	if v.state != vcpuCreated {
		state := v.state
		v.mu.Unlock()
		return fmt.Errorf("vCPU is %s: it runs once", state)
	}
	v.state, v.tid = vcpuRunning, unix.Gettid()
	v.mu.Unlock()
	defer func() {
		v.mu.Lock()
		v.state, v.tid = vcpuExited, 0
		v.mu.Unlock()
		v.m.failSnapshot() // one asked for while it was stopping
	}()
	m := v.m
	if m.exit.Load() != nil {
		// Stopped before it started (Run's context was already done,
		// or Close came first): the guest does not run at all.
		return nil
	}
	m.startDevices() // pcidev.go
	m.event(PhaseFirstRun)
	if m.restoredReady {
		m.ready()
	}
	started()
	for m.exit.Load() == nil {
		if m.snapWanted.Load() {
			// snapshot.go: between exits, the vCPU is quiescent. An exit
			// KVM gave while it completed the last instruction is the
			// loop's to handle, as if KVM_RUN below had returned it.
			pending := m.serveSnapshot()
			if pending {
				if err := v.handleExit(); err != nil {
					return err
				}
			}
			if m.exit.Load() != nil {
				break
			}
			if pending {
				continue
			}
		}
		// After serveSnapshot, whose KVM_RUN clears a kick that came
		// meanwhile: consoleDue, set before its kick, is seen here. Then
		// round again, for the snapshot a ready may have asked for.
		// A plain load first: the locked swap only when a check is due,
		// not at every exit.
		if m.consoleDue.Load() && m.consoleDue.Swap(false) {
			m.checkConsole()
			continue
		}
		_, _, errno := syscallKVMRun(v.fd)
		// A kick, if any, is served: KVM_RUN returned. Cleared before the
		// loop looks at m.exit, which a stopper sets before it kicks.
		atomic.StoreUint32(v.immediateExit(), 0)
		if errno != 0 {
			if errno == unix.EINTR || errno == unix.EAGAIN {
				continue
			}
			return &Error{Op: "KVM_RUN", Err: errno}
		}
		if err := v.handleExit(); err != nil {
			return err
		}
	}
	return nil
}

// handleExit serves the exit KVM_RUN returned, as kvm_run describes it.
// It returns the crash that stops the vCPU, if any; an exit the guest
// asked for is recorded in m.exit.
func (v *vcpu) handleExit() error {
	m := v.m
	le := binary.LittleEndian
	switch reason := le.Uint32(v.runPage[runExitReason:]); reason {
	case kvmExitIO:
		v.handleIO()
	case kvmExitMMIO:
		v.handleMMIO()
	case kvmExitIntr:
	case kvmExitHLT:
		// Only reachable without an in-kernel irqchip; the guest
		// waits for an interrupt that will never be injected.
		return v.crash("HLT with no interrupt source")
	case kvmExitShutdown:
		// A triple fault: NetBSD's cpu_reset ends with one when the
		// reset ports did not work (docs/NETBSD-BOOT-NOTES.md, "The
		// machine without firmware"), after
		// cpu_reboot printed "rebooting...", so once the guest has
		// written to its console it is a reboot request. Before
		// that it died booting (a KVM that cannot run its paged
		// code, a broken kernel): a crash, or it would pass for a
		// clean end. A restored guest ran before its snapshot.
		if !m.firstOut.Load() && m.memFile == nil {
			return v.tripleFault()
		}
		m.logf("guest triple-faulted (KVM_EXIT_SHUTDOWN) after console output: taken as a reset, as NetBSD's cpu_reset ends with one")
		if m.cfg.Verbose {
			m.logf("registers at the triple fault:\n%s", v.dumpRegs())
		}
		m.requestExit(Exit{Reason: ExitReset})
	case kvmExitFailEntry:
		return v.crash(fmt.Sprintf("VM entry failed (hardware reason %#x)", le.Uint64(v.runPage[runExitData:])))
	case kvmExitInternalError:
		return v.crash(internalError(v.runPage[runExitData:]))
	case kvmExitSystemEvent:
		switch le.Uint32(v.runPage[runExitData:]) {
		case kvmSystemEventReset:
			m.requestExit(Exit{Reason: ExitReset})
		default:
			m.requestExit(Exit{Reason: ExitShutdown})
		}
	default:
		return v.crash(fmt.Sprintf("unexpected KVM exit %d", reason))
	}
	return nil
}

// internalErrorNames names KVM's internal-error suberrors
// (KVM_INTERNAL_ERROR_*, include/uapi/linux/kvm.h).
var internalErrorNames = map[uint32]string{
	1: "emulation failure",
	2: "simultaneous exceptions",
	3: "delivery event failure",
	4: "unexpected exit reason",
}

// maxInternalData is the size of kvm_run's internal.data array.
const maxInternalData = 16

// internalError describes a KVM_EXIT_INTERNAL_ERROR from kvm_run's exit
// data d: the suberror, by name, and the data words KVM gave (for
// emulation failures the instruction bytes, for an unexpected exit the
// hardware exit reason), which say what went wrong. ndata is KVM's, so
// checked against the array's size.
func internalError(d []byte) string {
	le := binary.LittleEndian
	sub, ndata := le.Uint32(d[0:]), le.Uint32(d[4:])
	what, ok := internalErrorNames[sub]
	if !ok {
		what = "unknown"
	}
	msg := fmt.Sprintf("KVM internal error %d (%s)", sub, what)
	n := ndata
	if n > maxInternalData {
		msg += fmt.Sprintf(", ndata %d exceeds %d", ndata, maxInternalData)
		n = maxInternalData
	}
	if n == 0 {
		return msg
	}
	words := make([]string, n)
	for i := range words {
		words[i] = fmt.Sprintf("%#x", le.Uint64(d[8+8*i:]))
	}
	return msg + ", data [" + strings.Join(words, " ") + "]"
}

// endRun marks a vCPU that Run left without running exited, as one that
// ran: it never runs, and a snapshot of it fails. A before-Run snapshot
// being taken is not waited for (its writer may block for as long as it
// likes, and Run would with it): the vCPU is exited once it is written.
func (v *vcpu) endRun() {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch v.state {
	case vcpuCreated:
		v.state = vcpuExited
	case vcpuSnapshotting:
		v.ended = true
	}
}

// snapshotted ends a before-Run snapshot: the vCPU is created again,
// or exited if Run returned meanwhile. Caller holds v.mu.
func (v *vcpu) snapshotted() {
	v.state, v.snapGID = vcpuCreated, 0
	if v.ended {
		v.state = vcpuExited
	}
	v.idle.Broadcast()
}

// waitSnapshot waits, with v.mu held, until no before-Run snapshot is
// being taken.
func (v *vcpu) waitSnapshot() {
	for v.state == vcpuSnapshotting {
		if v.waitHook != nil {
			v.waitHook()
		}
		v.idle.Wait()
	}
}

// syscallKVMRun is one KVM_RUN.
func syscallKVMRun(fd int) (uintptr, uintptr, unix.Errno) {
	return unix.Syscall(unix.SYS_IOCTL, uintptr(fd), kvmRunIoctl, 0)
}

// snapshottingOnCaller reports whether the caller is the goroutine
// taking a before-Run snapshot (its writer, or OnEvent, calling back),
// which run, close and another snapshot wait for.
func (v *vcpu) snapshottingOnCaller() bool {
	v.mu.Lock()
	state, gid := v.state, v.snapGID
	v.mu.Unlock()
	return state == vcpuSnapshotting && gid == goid.ID()
}

// onThread reports whether the caller is the vCPU's run loop thread.
func (v *vcpu) onThread() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.state == vcpuRunning && v.tid == unix.Gettid()
}

func (v *vcpu) handleIO() {
	d := v.runPage[runExitData:]
	dir := d[0] // 0 in, 1 out
	size := int(d[1])
	port := uint64(binary.LittleEndian.Uint16(d[2:]))
	count := int(binary.LittleEndian.Uint32(d[4:]))
	off := binary.LittleEndian.Uint64(d[8:])
	if size == 0 || off+uint64(size*count) > uint64(len(v.runPage)) {
		return
	}
	for i := 0; i < count; i++ {
		buf := v.runPage[off+uint64(i*size) : off+uint64((i+1)*size)]
		if dir == 1 {
			v.m.pio.Write(port, buf)
		} else {
			v.m.pio.Read(port, buf)
		}
	}
}

func (v *vcpu) handleMMIO() {
	d := v.runPage[runExitData:]
	addr := binary.LittleEndian.Uint64(d[0:])
	n := min(binary.LittleEndian.Uint32(d[16:]), 8)
	buf := d[8 : 8+n]
	if d[20] != 0 {
		v.m.mmio.Write(addr, buf)
	} else {
		v.m.mmio.Read(addr, buf)
	}
}

// crash builds a CrashError with the vCPU's registers.
func (v *vcpu) crash(reason string) error {
	return &CrashError{Reason: reason, Regs: v.dumpRegs()}
}

// tripleFault is the TripleFaultError for the vCPU's state now.
func (v *vcpu) tripleFault() error {
	e := &TripleFaultError{Regs: v.dumpRegs()}
	r, rerr := kvm.GetRegs(uintptr(v.fd))
	s, serr := kvm.GetSregs(uintptr(v.fd))
	if rerr != nil || serr != nil {
		return e // Regs says which could not be read
	}
	e.EIP, e.CR0, e.CR3, e.CR4, e.EFER = r.RIP, s.CR0, s.CR3, s.CR4, s.EFER
	if e.Paging() {
		return e
	}
	// Paging off: CS's base plus EIP is the physical address of the
	// instruction that faulted.
	code, err := v.m.gmem.Slice(s.CS.Base+r.RIP, 3)
	if err != nil {
		return e
	}
	if src, ok := movToCR0(code); ok {
		gpr := [8]uint64{r.RAX, r.RCX, r.RDX, r.RBX, r.RSP, r.RBP, r.RSI, r.RDI}
		e.SettingPaging = gpr[src]&cr0PG != 0
	}
	return e
}

func (v *vcpu) dumpRegs() string {
	r, err := kvm.GetRegs(uintptr(v.fd))
	if err != nil {
		return "registers unavailable: " + err.Error()
	}
	s, err := kvm.GetSregs(uintptr(v.fd))
	if err != nil {
		return "segment registers unavailable: " + err.Error()
	}
	return fmt.Sprintf("EAX=%08x EBX=%08x ECX=%08x EDX=%08x ESI=%08x EDI=%08x EBP=%08x ESP=%08x\n"+
		"EIP=%08x EFLAGS=%08x CS=%04x DS=%04x SS=%04x CR0=%08x CR2=%08x CR3=%08x CR4=%08x EFER=%x\n"+
		"GDT=%08x/%x IDT=%08x/%x",
		r.RAX, r.RBX, r.RCX, r.RDX, r.RSI, r.RDI, r.RBP, r.RSP,
		r.RIP, r.RFLAGS, s.CS.Selector, s.DS.Selector, s.SS.Selector, s.CR0, s.CR2, s.CR3, s.CR4, s.EFER,
		s.GDT.Base, s.GDT.Limit, s.IDT.Base, s.IDT.Limit)
}
