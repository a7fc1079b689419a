package vmm

import (
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/smolvmm/smolvmm/snapshot"
)

// PreparedRestore is the part of a restore that needs neither the
// machine's configuration nor its devices, begun early by PrepareRestore
// so that it overlaps the program's own setup (a CLI's flags, console and
// network): on a goroutine of its own, /dev/kvm opened and the snapshot
// opened and locked; KVM asked for the CPUID it supports, unless it is
// the KVM the snapshot's header names (kvmid.go), first, since every KVM
// ioctl that waits for a grace period (the memory slots) waits for that
// question too; then the snapshot's state section read, verified and
// decoded, unless Restore has come to it first. Restore with
// WithPrepared takes it over: it creates the VM on its own goroutine,
// without waiting for a new one to be scheduled (0.2-0.8 ms on a loaded
// nested host); while the CPUID question has not returned, Restore reads
// and decodes the state itself before it gives the VM its memory. Nothing
// of the snapshot is used before Restore has verified it, as without it:
// the header's KVM identity, unverified until then, decides only whether
// KVM is asked; a snapshot whose state then fails its digest is refused
// either way.
type PreparedRestore struct {
	path, kvmPath string
	f             *snapshot.File
	lock, kvm     *os.File
	cpuid         *cpuidFetch

	opened chan struct{} // closed when kvm and cpuid are set, or will not be
	// The snapshot is opened and locked by the goroutine or by Restore,
	// whichever comes to it first (openSnap); f and lock are set, or
	// left nil, once snapOnce is done.
	snapOnce sync.Once
	done     chan struct{} // closed when the goroutine has ended
	// The state is read and decoded by the goroutine or by Restore,
	// whichever comes to it first (load, which claims it); loaded is
	// closed when st, stErr and loadedAt are set.
	claimed  atomic.Bool
	loaded   chan struct{}
	st       *machineState
	stErr    error
	loadedAt time.Time
	// The memory section is checked with the state unless
	// SkipMemoryCheck was given to PrepareRestore; memErr is its verdict.
	skipMemoryCheck bool
	memErr          error

	mu     sync.Mutex
	taken  bool // by Restore, which then closes what it took
	closed bool // by Close
}

// PrepareRestore begins a restore of the snapshot at path on the KVM of
// kvmPath ("" is /dev/kvm), for Restore(cfg, path, WithPrepared(p)) with
// cfg.KVMPath the same. Once the state is verified, the memory section
// is checked against its digest too (unless opts has SkipMemoryCheck:
// the other options are Restore's alone), so that the check overlaps the
// caller's setup; Restore checks it itself when it was skipped here and
// not there, and ignores the verdict when skipped there. It never fails:
// a snapshot or KVM that cannot be opened is left for Restore to report,
// as it would without the preparation. Close releases it, once Restore
// has or will not be called; every goroutine it started is then joined.
func PrepareRestore(kvmPath, path string, opts ...RestoreOption) *PreparedRestore {
	if kvmPath == "" {
		kvmPath = defaultKVMPath
	}
	var o restoreOptions
	for _, opt := range opts {
		opt(&o)
	}
	p := &PreparedRestore{path: path, kvmPath: kvmPath, opened: make(chan struct{}), done: make(chan struct{}), loaded: make(chan struct{}),
		skipMemoryCheck: o.skipMemoryCheck}
	// Even the opens on the goroutine: they cost the caller ~0.15 ms.
	go func() {
		defer close(p.done)
		if !p.open() {
			return
		}
		// The snapshot's header first, whose KVM identity says
		// whether to ask KVM for the CPUID (kvmid.go): the memory slots
		// wait for the question, the vCPU for its answer, the state
		// only Restore's checks once the VM is made. Restore decodes
		// the state itself when it gets there first, as it does when
		// the question takes longer than creating the VM. A snapshot
		// that cannot be opened is left to Restore to report; the
		// question is asked meanwhile, as for another KVM.
		var known snapshot.KVMID
		if p.openSnap() {
			known = p.f.Header.KVM
		}
		if prepareGate != nil {
			prepareGate(p)
		}
		p.cpuid.decide(p.kvm, known)
		if p.openSnap() {
			p.load()
		}
	}()
	return p
}

// load reads, verifies and decodes the state, then checks the memory
// section unless told not to, once: on the goroutine after the CPUID, or
// in Restore while the goroutine still waits for it. A second caller
// waits for the first's result.
func (p *PreparedRestore) load() {
	if !p.claimed.CompareAndSwap(false, true) {
		<-p.loaded
		return
	}
	p.st, p.stErr = loadState(p.f)
	if p.stErr == nil && !p.skipMemoryCheck {
		p.memErr = p.f.VerifyMemory()
	}
	p.loadedAt = time.Now()
	close(p.loaded)
}

// prepareGate, set by tests, runs on PrepareRestore's goroutine before it
// asks KVM for the CPUID.
var prepareGate func(*PreparedRestore)

// open opens KVM and reports whether it could; on the goroutine, before
// it closes p.opened.
func (p *PreparedRestore) open() bool {
	defer close(p.opened)
	kvm, err := openKVM(p.kvmPath)
	if err != nil {
		return false
	}
	p.kvm = kvm
	p.cpuid = newCPUIDFetch()
	return true
}

// openSnap opens and locks the snapshot, once: in Restore, or on the
// goroutine after the CPUID when Restore has not come to it. It reports
// whether the snapshot is open.
func (p *PreparedRestore) openSnap() bool {
	p.snapOnce.Do(func() {
		f, err := snapshot.OpenHeader(p.path)
		if err != nil {
			return
		}
		lock, err := f.LockShared()
		if err != nil {
			f.Close()
			return
		}
		p.f, p.lock = f, lock
	})
	return p.f != nil
}

// WithPrepared makes Restore take over p, begun by PrepareRestore for the
// same snapshot path and Config.KVMPath; for another (or one whose
// snapshot or KVM could not be opened) Restore releases p and begins
// afresh.
func WithPrepared(p *PreparedRestore) RestoreOption {
	return func(o *restoreOptions) { o.prepared = p }
}

// take hands p's files and goroutine to a Restore of path on kvmPath, or
// reports that it cannot.
func (p *PreparedRestore) take(path, kvmPath string) bool {
	<-p.opened
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken || p.closed || p.kvm == nil || p.path != path || p.kvmPath != kvmPath || !p.openSnap() {
		return false
	}
	p.taken = true
	return true
}

// wait returns the decoded state, decoding it unless the goroutine has
// begun to, once the goroutine has ended, and the memory check's verdict
// (checked false when it was skipped).
func (p *PreparedRestore) wait() (st *machineState, loadedAt time.Time, memChecked bool, memErr, err error) {
	p.load()
	<-p.done
	return p.st, p.loadedAt, !p.skipMemoryCheck, p.memErr, p.stErr
}

// Close joins p's goroutine and closes its files, unless Restore took
// them over (it then closes them itself). It may be called more than
// once.
func (p *PreparedRestore) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.taken || p.closed {
		return nil
	}
	<-p.done
	p.closed = true
	if p.kvm != nil {
		p.kvm.Close()
	}
	if p.f == nil {
		return nil
	}
	p.lock.Close()
	return p.f.Close()
}
