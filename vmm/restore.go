package vmm

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
)

// Restore builds a machine from the snapshot at path; Run then continues
// the guest exactly where the snapshot was taken.
//
// Guest memory is the snapshot's memory section mapped copy-on-write: the
// restore copies nothing, the guest's writes stay in this process, and
// machines restored from one file share the pages they do not write. The
// file may be replaced or removed once Restore returns, but must not be
// written in place while a machine restored from it runs: the machine
// holds a shared flock on it until Close, and a file another process
// holds locked exclusive (a writer) is refused with snapshot.ErrInUse.
//
// From cfg, Restore takes Console, Input, the readiness fields (Ready,
// ReadyAddr, ReadyGuestPort), OnEvent, Log, Verbose, KVMPath, Devices,
// BeforeRun, SnapshotOnReady, SnapshotExit and OnSnapshot (the
// restored machine is snapshotted when it reports PhaseReady, as a
// booted one), and SnapshotNetwork (its snapshots' network record, which
// the restored snapshot's header does not carry over); MemoryMiB and Disks as below. The kernel fields (Kernel,
// KernelImage, Append, NoAppend, Modules, Boot) are ignored. A machine
// snapshotted after PhaseReady reports it again as the restored guest
// first runs, unless cfg has Ready, ReadyAddr or ReadyGuestPort: then
// PhaseReady waits for that condition after the restore (a console line
// the restored guest prints, a connection it accepts), as after a boot.
// MemoryMiB, when set, must be a size New takes (else ErrConfig) and the
// snapshot's (else a *snapshot.MemorySizeError), each refused with Field
// MemoryMiB. Disks, when nil, are the snapshot's own
// (each by path, read-only or not as then), taken only from a snapshot
// file owned by this process's effective user or root and writable by
// neither its group nor others, else Restore fails with a
// SnapshotOwnerError (ErrSnapshotNotTrusted) before opening any: a
// snapshot names host files, and whoever may write it may name any (all
// it records of one is stat(2)'s, no read needed). Each is opened only
// while its path names the very file the snapshot recorded, unchanged
// (same device, inode and modification time), else Restore fails with
// ErrDiskNotRecorded before opening it; when that time does not prove it
// unchanged (below), the file is read once opened, and another content
// fails with ErrDiskChanged. Any other file, a copy with the
// image's content included, and any disk of another user's snapshot,
// must be given in Disks. When set, they must be as
// many, each read-only exactly when the snapshot's was and of its serial
// (an empty Serial takes the snapshot's), else Restore fails with
// ErrSnapshotDevices, Field Disks: the guest negotiated both. Each image
// must have the content the snapshot saw, else Restore fails with
// ErrDiskChanged, Field Disks, naming both files: the guest's cached view
// of it would no longer match. The snapshot's file unchanged (same size,
// device, inode and modification time) is accepted without reading it
// when that time is older than the snapshot by more than 3 s, which any
// later write would have moved (see DiskIdentity); another file of the
// same size (a copy of the image per clone), the same one touched, or
// the same one with a more recent time (or from a snapshot that does not
// record when it took the time) is read and accepted when its CRC-32C
// is the one the snapshot recorded. An image so accepted is not
// refused for starting with a compressed file's or another disk format's
// signature, as New refuses an image (a *blk.FormatError): its guest may
// have written one there (blk.OpenRecorded); the refusal of another file
// not accepted that starts with one wraps New's (ErrNotRaw) as well as
// ErrDiskChanged. Devices must be the same kinds
// of virtio device as the snapshot's, in order (else ErrSnapshotDevices,
// Field Devices), and each network card must
// have the address its slot had in the snapshot, unless WithMAC gives the
// clone's first card another (else ErrMACChanged).
// A card whose link can change (virtio/net.LinkBackend) and whose driver
// watches it gets a configuration-change interrupt, so that the guest
// reads the status of the link it has now.
// Nothing is left open on error, nor when Config.OnEvent panics (the
// panic goes on, see Config.OnEvent).
//
// The snapshot's state section is read, checked against its digest and
// decoded while the VM and its memory are created (from the header
// alone); the vCPU is created once the state is decoded, its CPUID
// deciding whether the VM keeps a PMU; a snapshot refused is reported
// before any error of the VM's, and nothing runs until the state is
// verified. PrepareRestore begins KVM's answer on the CPUID before
// Restore is called (WithPrepared), and the reading and decoding unless
// Restore comes to them first, so that they overlap the caller's own
// setup too. The memory section is then read (the file, not the
// copy-on-write mapping: its data, not its holes) and checked against its
// digest, unless SkipMemoryCheck says not to: a damaged snapshot is
// refused (an error wrapping snapshot.ErrCorrupt, naming both digests)
// before any of its state is applied, never half-restored. The check
// overlaps the VM's creation (or, prepared, the caller's setup) and is
// part of PhaseSnapshotLoaded.
//
// The vCPU gets the snapshot's CPUID entries, not this host's: Restore
// fails with ErrCPUID, naming the leaf, register and bits, when they have
// features this host's KVM does not support. A snapshot whose header
// names this host's KVM (the same kernel boot and /dev/kvm registration;
// kvmid.go) is checked against its own record of that KVM's answer,
// which KVM would give again, instead of asking KVM (~1 ms on a nested
// host). The VM has a PMU only when those entries advertise one (a
// snapshot taken by a build that gave every VM one, whose counters' MSRs
// KVM sets only on a vCPU with a PMU); otherwise it has none where KVM
// can take it, as New's. It gets the snapshot's TSC
// frequency too, scaled by KVM when this host's differs; Restore fails
// with ErrTSCFrequency, naming both, when KVM cannot scale it. A part
// of the state this host's KVM refuses to set (KVM_SET_SREGS, ...) fails
// the restore with ErrKVMRefused, naming the part, wrapping KVM's error.
func Restore(cfg Config, path string, opts ...RestoreOption) (m *Machine, err error) {
	var o restoreOptions
	for _, opt := range opts {
		opt(&o)
	}
	m = &Machine{cfg: cfg.unloaded(), building: true} // a Log panic is Restore's error (built)
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
	if o.mac != nil {
		if err := checkMAC(o.mac); err != nil {
			return nil, &Error{Op: "restore", Field: "WithMAC", Err: err}
		}
	}
	if cfg.MemoryMiB != 0 { // 0: the snapshot's
		if err := checkMemoryMiB(cfg.MemoryMiB); err != nil {
			return nil, err
		}
	}
	if err := m.checkConfig(&cfg); err != nil {
		return nil, err
	}
	m.cfg = cfg.unloaded()
	p := o.prepared
	if p != nil && !p.take(path, cfg.KVMPath) {
		p.Close()
		p = nil
	}
	var f *snapshot.File
	var lock *os.File
	if p != nil {
		f, lock = p.f, p.lock
		m.closers = append(m.closers, lock.Close) // the last closed, after the memory
		m.kvm = p.kvm
		m.closers = append(m.closers, m.kvm.Close)
	} else {
		if f, err = snapshot.OpenHeader(path); err != nil {
			return nil, &Error{Op: "restore", Err: err}
		}
		// Held while the memory maps the file: smolvmm's snapshot writer
		// takes the exclusive lock before it writes, so it is refused
		// instead of changing the pages under this guest.
		if lock, err = f.LockShared(); err != nil {
			f.Close()
			return nil, &Error{Op: "restore", Err: err}
		}
		m.closers = append(m.closers, lock.Close) // the last closed, after the memory
	}
	defer f.Close()
	// A snapshot of this machine asks the file which of the pages the
	// guest left untouched hold data (snapzero.go): the lock's descriptor
	// stays open as long as the memory maps the file, f's does not.
	m.memFile, m.memFileOff = lock, int64(f.Header.MemOff)
	// A header whose memory size the state would refuse (or the
	// caller's MemoryMiB) gets no VM until the state's verdict: its
	// refusal then comes first, as it would without the overlap.
	early := f.Header.MemSize%(1<<20) == 0 && f.Header.MemSize <= MaxMemoryMiB<<20 && f.Header.MemSize >= MinMemoryMiB<<20 &&
		(cfg.MemoryMiB == 0 || uint64(cfg.MemoryMiB)<<20 == f.Header.MemSize)
	var st *machineState
	var loadedAt, vmAt time.Time
	var vmErr, memErr error
	memChecked := false
	if p != nil {
		// PrepareRestore's goroutine asks KVM for the CPUID, begun
		// before Restore was called; this one creates the VM meanwhile,
		// then reads, verifies and decodes the state unless the
		// goroutine, done with the CPUID, has begun to, and only then
		// gives KVM the memory: KVM_SET_USER_MEMORY_REGION waits (for a
		// grace period) until the CPUID question has returned, ~0.7 ms
		// here, which the decode would otherwise follow. The vCPU waits
		// for the CPUID. The goroutine is joined before f is closed.
		m.cpuid = p.cpuid
		if early {
			vmAt, vmErr = m.createRestoredVM(f, p.load, func() *machineState { p.load(); return p.st })
		}
		st, loadedAt, memChecked, memErr, err = p.wait()
	} else {
		st, loadedAt, vmAt, vmErr, memErr, err = m.restoreOverlapped(f, early, !o.skipMemoryCheck)
		memChecked = !o.skipMemoryCheck
	}
	if err != nil {
		return nil, &Error{Op: "restore", Err: err}
	}
	// A refusal of the snapshot goes before the VM's own errors, in the
	// order a serial restore would give them.
	if uint64(st.MemoryMiB)<<20 != f.Header.MemSize {
		return nil, &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: state says %d MiB (%d bytes), header %g MiB (%d bytes): %w", path, st.MemoryMiB, uint64(st.MemoryMiB)<<20, float64(f.Header.MemSize)/(1<<20), f.Header.MemSize, snapshot.ErrCorrupt)}
	}
	if err := checkState(st); err != nil {
		return nil, &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: state section: %w: %w", path, snapshot.ErrCorrupt, err)}
	}
	if err := checkHeaderNIC(f.Header, st); err != nil {
		return nil, &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: %w", path, err)}
	}
	if cfg.MemoryMiB == 0 {
		cfg.MemoryMiB = st.MemoryMiB
	}
	if err := f.Header.CheckMemory(uint64(cfg.MemoryMiB) << 20); err != nil {
		return nil, &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: %w", path, err), Field: "MemoryMiB",
			Hint: fmt.Sprintf("leave MemoryMiB 0 to take the snapshot's, or set it to %d", st.MemoryMiB)}
	}
	fromSnapshot := cfg.Disks == nil
	if fromSnapshot {
		for _, d := range st.Disks {
			cfg.Disks = append(cfg.Disks, blk.Spec{Path: d.Path, Options: blk.Options{ReadOnly: d.ReadOnly, Serial: d.Serial}})
		}
	}
	if len(cfg.Disks) != len(st.Disks) {
		return nil, &Error{Op: "restore", Err: fmt.Errorf("snapshot %s has %d disks, %d given: %w", path, len(st.Disks), len(cfg.Disks), ErrSnapshotDevices), Field: "Disks"}
	}
	if cfg.Disks, err = diskSettings(cfg.Disks, st.Disks); err != nil {
		return nil, err
	}
	if fromSnapshot && len(st.Disks) > 0 {
		// Before any is opened (read-write, most): the paths are the
		// snapshot's word, and a snapshot from elsewhere may name any file.
		if err := trustedSnapshot(f, st.Disks); err != nil {
			return nil, err
		}
		if err := recordedDisks(st.Disks); err != nil {
			return nil, err
		}
	}
	if !o.skipMemoryCheck {
		if !memChecked {
			memErr = f.VerifyMemory() // skipped by PrepareRestore's options
		}
		if memErr != nil {
			return nil, &Error{Op: "restore", Err: memErr}
		}
	}
	if vmErr != nil {
		return nil, vmErr
	}
	m.cfg = cfg.unloaded()
	if !early {
		if m.kvm == nil {
			if err := m.openKVM(); err != nil {
				return nil, err
			}
		}
		if vmAt, err = m.createRestoredVM(f, nil, func() *machineState { return st }); err != nil {
			return nil, err
		}
	}
	// Reported in the order they happened, each at its own time.
	if vmAt.Before(loadedAt) {
		m.eventAt(PhaseVMCreated, vmAt)
		m.eventAt(PhaseSnapshotLoaded, loadedAt)
	} else {
		m.eventAt(PhaseSnapshotLoaded, loadedAt)
		m.eventAt(PhaseVMCreated, vmAt)
	}

	m.restoring = true
	if err := m.setupDevices(); err != nil {
		return nil, err
	}
	m.event(PhaseDevicesCreated)
	if err := m.checkDisks(st.Disks, fromSnapshot); err != nil {
		return nil, err
	}
	if err := m.restoreState(st); err != nil {
		e := &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: %w", path, err)}
		if errors.Is(err, ErrSnapshotDevices) {
			e.Field = "Devices"
		}
		return nil, e
	}
	if err := m.restoreMAC(st, o); err != nil {
		return nil, err
	}
	m.tellLinks() // restoremac.go
	// A readiness condition given for the restore is waited for after it
	// (new console lines, the port probed against the restored guest);
	// only without one does the snapshot's own readiness carry over.
	m.restoredReady = st.Ready && cfg.Ready == nil && cfg.ReadyAddr == "" && cfg.ReadyGuestPort == 0
	m.plan.Protocol = st.Protocol
	if cfg.Verbose {
		m.logRestore(path, st) // restorelog.go
	}
	m.event(PhaseStateRestored)
	m.flushLog(limitedKeep) // what Restore logged is out when it returns, or queued
	if err := m.built(); err != nil {
		return nil, err
	}
	return m, nil
}

// restoreOverlapped reads, verifies and decodes f's state, then checks
// its memory section when checkMem, and, when early, creates the
// machine's VM from f's header meanwhile: Restore without a
// PreparedRestore. The VM and its memory need only the header: a
// goroutine creates them while this one asks KVM for the vCPU's CPUID
// (the longest step, which the goroutine's vCPU waits for), then reads,
// verifies and decodes the state, whose CPUID decides the VM's PMU before
// the goroutine creates the vCPU, meanwhile the memory is checked. Two
// goroutines, not three: a third would wait for one of GOMAXPROCS=2 Ps,
// which an ioctl holds until it returns. The decode stays on this
// goroutine's grown stack (a new one's would grow by copies, paging in
// stack maps). Nothing runs on the state before it is verified. The
// goroutine is joined before restoreOverlapped returns.
func (m *Machine) restoreOverlapped(f *snapshot.File, early, checkMem bool) (st *machineState, loadedAt, vmAt time.Time, vmErr, memErr, err error) {
	var build *vmBuild
	decoded := newStateHandoff()
	if early {
		if vmErr = m.openKVM(); vmErr == nil {
			m.cpuid = newCPUIDFetch()
			build = m.buildVM(f, decoded.wait)
			defer build.wait()
			defer decoded.give(nil) // first, so that the goroutine ends
			m.cpuid.decide(m.kvm, f.Header.KVM)
		}
	}
	st, err = loadState(f)
	decoded.give(st) // the vCPU's creation then overlaps the memory's check
	if err == nil && checkMem {
		memErr = f.VerifyMemory()
	}
	loadedAt = time.Now()
	if build != nil {
		vmAt, vmErr = build.wait()
	}
	return st, loadedAt, vmAt, vmErr, memErr, err
}

// openKVM opens Config.KVMPath for the machine.
func (m *Machine) openKVM() (err error) {
	if m.kvm, err = openKVM(m.cfg.KVMPath); err != nil {
		return err
	}
	m.closers = append(m.closers, m.kvm.Close)
	return nil
}

// createRestoredVM creates, once /dev/kvm is open, the VM with f's memory
// section as its RAM, its interrupt controllers and PIT, and its vCPU:
// what needs only the snapshot's header, but for the VM's PMU, which the
// verified state's CPUID decides (restoredPMU) before the vCPU exists:
// state returns that state, waiting for it, or nil when there is none
// (the restore then fails with the state's error). It calls
// beforeMemory, when not nil, once the VM exists and before it is given
// its memory. It returns when the VM and its memory existed
// (PhaseVMCreated). The machine's closers release it all on error.
func (m *Machine) createRestoredVM(f *snapshot.File, beforeMemory func(), state func() *machineState) (vmAt time.Time, err error) {
	if err := m.newVM(); err != nil {
		return vmAt, err
	}
	if err := checkXSaveSize(m.xsaveSize); err != nil {
		return vmAt, &Error{Op: "restore", Err: err}
	}
	mem, err := f.MapMemory()
	if err != nil {
		return vmAt, &Error{Op: "restore", Err: err}
	}
	m.closers = append(m.closers, func() error { return unix.Munmap(mem) })
	if beforeMemory != nil {
		beforeMemory()
	}
	if err := m.useMemory(mem); err != nil {
		return vmAt, err
	}
	vmAt = time.Now()
	if err := m.createIRQChips(); err != nil {
		return vmAt, err
	}
	st := state()
	if st == nil {
		return vmAt, errNoState
	}
	if err := restoredPMU(m.kvm.Fd(), m.vmFD, st.VCPU.CPUID); err != nil {
		return vmAt, err
	}
	m.vcpu, err = newVCPU(m, 0, true)
	return vmAt, err
}

// errNoState is createRestoredVM's when the state could not be read: the
// restore reports the state's own error instead.
var errNoState = errors.New("no snapshot state to create the vCPU for")

// stateHandoff passes the decoded state from Restore's goroutine to
// createRestoredVM's, whose vCPU waits for it.
type stateHandoff struct {
	once  sync.Once
	ready chan struct{}
	st    *machineState
}

func newStateHandoff() *stateHandoff { return &stateHandoff{ready: make(chan struct{})} }

// give passes st (nil: none), once; later calls do nothing.
func (h *stateHandoff) give(st *machineState) {
	h.once.Do(func() {
		h.st = st
		close(h.ready)
	})
}

// wait returns what give passed, once it has.
func (h *stateHandoff) wait() *machineState {
	<-h.ready
	return h.st
}

// vmBuild is createRestoredVM running on a goroutine of its own.
type vmBuild struct {
	done chan struct{}
	at   time.Time
	err  error
}

// buildVM starts createRestoredVM; until wait has returned, the goroutine
// owns the machine.
func (m *Machine) buildVM(f *snapshot.File, state func() *machineState) *vmBuild {
	b := &vmBuild{done: make(chan struct{})}
	go func() {
		defer close(b.done)
		b.at, b.err = m.createRestoredVM(f, nil, state)
	}()
	return b
}

// wait returns createRestoredVM's results once the goroutine has ended
// (it may be called again).
func (b *vmBuild) wait() (time.Time, error) {
	<-b.done
	return b.at, b.err
}

// loadState reads f's state section (after OpenHeader), checks it and
// decodes it.
func loadState(f *snapshot.File) (*machineState, error) {
	if err := f.ReadState(); err != nil {
		return nil, err
	}
	st, err := decodeState(f.State) // statecodec.go
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: state section: %w: %w", f.Path, snapshot.ErrCorrupt, err)
	}
	return st, nil
}

// ErrSnapshotDevices is wrapped by a restore whose Config gives other
// virtio devices than the snapshot's machine had.
var ErrSnapshotDevices = errors.New("the machine's devices differ from the snapshot's")

// diskSettings returns the restore's disks with the snapshot's serials
// where none is given, or refuses a disk whose read-only setting or serial
// differs from the snapshot's (ErrSnapshotDevices): the guest negotiated
// them, so a disk turned read-only would fail the writes it goes on
// making (and, sharing the lock read-only disks take, let two restores
// write one image), and a serial is what the guest knows the disk by. A
// serial the restore leaves out is the snapshot's, not derived from the
// path given: a copy of the image is still the disk the guest knew. The
// caller's slice is not changed.
func diskSettings(given []blk.Spec, want []DiskIdentity) ([]blk.Spec, error) {
	disks := append([]blk.Spec(nil), given...)
	rw := map[bool]string{false: "read-write", true: "read-only"}
	for i, w := range want {
		d := &disks[i]
		var what string
		switch {
		case d.ReadOnly != w.ReadOnly:
			what = fmt.Sprintf("%s, the snapshot's disk %s (%s)", rw[d.ReadOnly], rw[w.ReadOnly], w.Path)
		case d.Serial == "":
			d.Serial = w.Serial // "" in a snapshot that recorded none: derived, as before
			continue
		case w.Serial != "" && d.Serial != w.Serial:
			what = fmt.Sprintf("serial %q, the snapshot's %q (%s)", d.Serial, w.Serial, w.Path)
		default:
			continue
		}
		return nil, &Error{Op: fmt.Sprintf("ld%d (disk image %s)", i, d.Path), Field: "Disks",
			Err:  fmt.Errorf("%w: %s", ErrSnapshotDevices, what),
			Hint: "restore the disk as the snapshot's machine had it, or leave the disks to the snapshot, or snapshot again with these settings"}
	}
	return disks, nil
}

// ErrSnapshotNotTrusted is wrapped (by a SnapshotOwnerError) by a
// restore that would take its disks from the snapshot (Config.Disks nil)
// when the snapshot file is one another user could have written.
var ErrSnapshotNotTrusted = errors.New("its disk paths are not taken from a snapshot another user could have written")

// SnapshotOwnerError is a restore's refusal to open the disks a snapshot
// names (Config.Disks nil) when the snapshot file is owned by neither the
// restoring process's effective user nor root, or is writable by its
// group or others. What a snapshot records of a disk (path, size,
// device, inode, modification time) is all stat(2)'s, which needs no
// permission to read the file: whoever may write the snapshot could name
// in it any file the restoring user may open, to have it opened
// read-write as the disk of a guest they wrote. It wraps
// ErrSnapshotNotTrusted.
type SnapshotOwnerError struct {
	Path  string      // the snapshot file
	UID   uint32      // its owner
	Mode  os.FileMode // its permission bits
	EUID  int         // the restoring process's effective user
	Disks []string    // the disk paths the snapshot names
}

// Error names the snapshot, its owner or permissions, and the disk paths
// it names.
func (e *SnapshotOwnerError) Error() string {
	var why string
	switch {
	case !snapshotOwnerTrusted(e.UID, e.EUID):
		why = fmt.Sprintf("is owned by uid %d, neither this process's user (uid %d) nor root", e.UID, e.EUID)
	case e.Mode&0o020 != 0:
		why = fmt.Sprintf("(owner uid %d, mode %#o) is writable by its group", e.UID, e.Mode)
	default:
		why = fmt.Sprintf("(owner uid %d, mode %#o) is writable by others", e.UID, e.Mode)
	}
	return fmt.Sprintf("snapshot %s %s: %s (it names %s)", e.Path, why, ErrSnapshotNotTrusted, strings.Join(e.Disks, ", "))
}

// Unwrap returns ErrSnapshotNotTrusted, for errors.Is.
func (e *SnapshotOwnerError) Unwrap() error { return ErrSnapshotNotTrusted }

// snapshotOwnerTrusted reports whether a snapshot owned by uid may name
// the disks a process of effective user euid opens.
func snapshotOwnerTrusted(uid uint32, euid int) bool {
	return uid == 0 || int64(uid) == int64(euid)
}

// trustedSnapshot refuses (a SnapshotOwnerError) to take the disks of f,
// the snapshot, from its paths when another user than this process's or
// root could have written it: one who owns it, or, as its group or
// others, may write it. The descriptor the state was read from is
// checked, not the path: a file swapped in at the path since (through
// its directory) is not the one read. Its directory's rights do not
// matter for that reason: the file opened cannot be changed through it.
func trustedSnapshot(f *snapshot.File, disks []DiskIdentity) error {
	fi, err := f.Stat()
	if err != nil {
		return &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: %w", f.Path, err)}
	}
	sys, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return &Error{Op: "restore", Err: fmt.Errorf("snapshot %s: the file's owner is unknown: %w", f.Path, ErrSnapshotNotTrusted)}
	}
	euid := os.Geteuid()
	if snapshotOwnerTrusted(sys.Uid, euid) && fi.Mode().Perm()&0o022 == 0 {
		return nil
	}
	e := &SnapshotOwnerError{Path: f.Path, UID: sys.Uid, Mode: fi.Mode().Perm(), EUID: euid}
	for _, d := range disks {
		e.Disks = append(e.Disks, d.Path)
	}
	return &Error{Op: "restore", Field: "Disks", Err: e,
		Hint: "give the images to restore against in Disks, whose content is then checked"}
}

// recordedDisks refuses, with ErrDiskNotRecorded, a disk of the snapshot
// whose path names another file than the one the snapshot recorded, or
// the same one modified since. A path that names nothing is left to the
// disk's open to report. checkDisks checks the file opened again: the
// path may be replaced in between.
func recordedDisks(want []DiskIdentity) error {
	for i, w := range want {
		fi, err := os.Stat(w.Path)
		if err != nil {
			continue
		}
		if err := notRecorded(i, w, fi); err != nil {
			return err
		}
	}
	return nil
}

// notRecorded refuses (ErrDiskNotRecorded) fi, the file at the path of
// the snapshot's disk i, unless it is the very file the snapshot
// recorded, unchanged: the same device, inode and modification time.
// A time too close to the snapshot to prove the file unchanged
// (mtimeProvesUnchanged) proves only that it is the file: checkDisks
// reads it.
func notRecorded(i int, w DiskIdentity, fi os.FileInfo) error {
	got := identityOf(w.Path, w.ReadOnly, w.Serial, fi)
	if got.Dev == w.Dev && got.Inode == w.Inode && got.MtimeNs == w.MtimeNs {
		return nil
	}
	what := fmt.Sprintf("inode %d on device %#x, the snapshot recorded inode %d on device %#x", got.Inode, got.Dev, w.Inode, w.Dev)
	if got.Dev == w.Dev && got.Inode == w.Inode {
		what = fmt.Sprintf("modified at %s, the snapshot recorded %s", time.Unix(0, got.MtimeNs).UTC().Format(time.RFC3339Nano), time.Unix(0, w.MtimeNs).UTC().Format(time.RFC3339Nano))
	}
	return &Error{Op: fmt.Sprintf("ld%d (the snapshot's disk image %s)", i, w.Path), Field: "Disks",
		Err:  fmt.Errorf("%w: %s", ErrDiskNotRecorded, what),
		Hint: "a snapshot's own disk paths are opened only while they name the files it recorded: give the image to restore against (its content is then checked)"}
}

// diskDigest is snapshot.FileDigest, which checkDisks reads an image
// with; a test counts the images read through it.
var diskDigest = snapshot.FileDigest

// checkDisks refuses images that are not those the snapshot saw: of
// another size, or, when the file is not the snapshot's unchanged, with
// another content (or none recorded, in an older snapshot). It reads only
// the images that are not the snapshot's file unchanged, by a time that
// proves it (mtimeProvesUnchanged): the same file with its recorded
// modification time, but one too close to the snapshot's moment (or
// with the moment not recorded), is read, as a copy is, since a write in
// the same tick of the file system's clock leaves that time as it was.
// Without a recorded Content there is nothing to read it against: the
// time is all there is. The refusal of
// another file that is not a raw image wraps blk.Open's (a
// *blk.FormatError) too;
// the images accepted are not checked so, since their guest may have
// written a compressed stream's signature on them. Disks taken
// from the snapshot (fromSnapshot) must be its very files, unchanged
// (ErrDiskNotRecorded): a copy must be given.
func (m *Machine) checkDisks(want []DiskIdentity, fromSnapshot bool) error {
	m.diskCopies = make([]bool, len(want))
	for i, w := range want {
		path := m.cfg.Disks[i].Path
		op := fmt.Sprintf("ld%d (disk image %s)", i, path)
		disk, ok := m.virtio[i].dev.Device().(*blk.Disk)
		if !ok {
			return &Error{Op: fmt.Sprintf("ld%d", i), Err: fmt.Errorf("not a disk: %w", ErrConfig)}
		}
		fi, err := disk.Stat()
		if err != nil {
			return &Error{Op: op, Err: err}
		}
		if fromSnapshot {
			if err := notRecorded(i, w, fi); err != nil {
				return err
			}
		}
		got := identityOf(w.Path, w.ReadOnly, w.Serial, fi)
		same := got.Dev == w.Dev && got.Inode == w.Inode
		var what string
		switch {
		case got.Size != w.Size:
			what = fmt.Sprintf("size %d, the snapshot's %d (%s)", got.Size, w.Size, w.Path)
		case same && got.MtimeNs == w.MtimeNs && (mtimeProvesUnchanged(w) || w.Content == ""):
			continue // the snapshot's file, unchanged: not read
		case w.Content == "" && !same:
			what = fmt.Sprintf("inode %d on device %#x, the snapshot's %s inode %d on %#x (the snapshot records no digest of the content to accept a copy by)", got.Inode, got.Dev, w.Path, w.Inode, w.Dev)
		case w.Content == "":
			what = "modified after the snapshot"
		default:
			crc, err := diskDigest(disk.Image(), got.Size)
			if err != nil {
				return &Error{Op: op, Err: fmt.Errorf("content digest: %w", err)}
			}
			if c := contentDigest(crc); c == w.Content {
				m.diskCopies[i] = !same
				continue
			} else if same && got.MtimeNs == w.MtimeNs {
				why := fmt.Sprintf("not older than the snapshot's moment by more than %s: a write in the same tick of the file system's clock leaves it as it was", mtimeTrustMargin)
				if w.TakenNs <= 0 {
					why = "the snapshot does not record its moment"
				}
				what = fmt.Sprintf("modified after the snapshot, its modification time %s unchanged (%s): content %s, the snapshot's %s",
					time.Unix(0, got.MtimeNs).UTC().Format(time.RFC3339Nano), why, c, w.Content)
			} else if same {
				what = fmt.Sprintf("modified after the snapshot: content %s, the snapshot's %s", c, w.Content)
			} else {
				what = fmt.Sprintf("content %s, the snapshot's %s %s (inode %d on device %#x, the snapshot's %d on %#x)", c, w.Path, w.Content, got.Inode, got.Dev, w.Inode, w.Dev)
			}
		}
		err = fmt.Errorf("%w: %s", ErrDiskChanged, what)
		// Opened without the format check (blk.OpenRecorded), which
		// the file the snapshot saw passed at its boot: of another, a
		// cold boot's refusal is said too.
		if !same {
			if ferr := blk.CheckRaw(disk.Image(), got.Size, path); ferr != nil {
				err = fmt.Errorf("%w; %w", err, ferr)
			}
		}
		return &Error{Op: op, Field: "Disks", Err: err,
			Hint: "restore against the image as it was (or a copy of it), or snapshot again"}
	}
	return nil
}

// checkDevices refuses st unless its virtio devices are this machine's
// kinds, in order (ErrSnapshotDevices), and its PCI and virtio state is
// what this machine's devices' guest could have set (snapshot.ErrCorrupt):
// each device's Restore would refuse it, but only after the vCPU and the
// devices before it were set.
func (m *Machine) checkDevices(st *machineState) error {
	var had, has []uint16
	for _, v := range st.Virtio {
		had = append(had, v.Type)
	}
	for _, s := range m.virtio {
		has = append(has, s.dev.Device().Type())
	}
	if fmt.Sprint(had) != fmt.Sprint(has) {
		return fmt.Errorf("%w: virtio device types %v in the snapshot, %v in this machine (1 is a network card, 2 a disk)", ErrSnapshotDevices, had, has)
	}
	if err := m.pci.CheckState(st.PCI); err != nil {
		return fmt.Errorf("%w: %w", snapshot.ErrCorrupt, err)
	}
	for i, s := range m.virtio {
		if err := s.dev.CheckState(st.Virtio[i]); err != nil {
			return fmt.Errorf("%w: virtio device %d: %w", snapshot.ErrCorrupt, i, err)
		}
	}
	return nil
}

// restoreState sets the vCPU, the devices, the interrupt controllers and
// the clocks from st, which checkState has accepted. The devices go
// before the interrupt controllers, since restoring a device drives its
// line: the controllers' own record of the lines is then the snapshot's.
func (m *Machine) restoreState(st *machineState) error {
	if err := m.checkDevices(st); err != nil {
		return err
	}
	fd := m.vcpu.fd
	c := &st.VCPU
	// The TSC's rate before the TSC itself (an MSR) is set from it; the
	// CPUID before everything KVM checks against it (XCR0, the MSRs).
	if err := m.restoreTSCKHz(c.TSCKHz); err != nil {
		return err
	}
	if err := m.restoreCPUID(c.CPUID, c.KVMCPUID); err != nil {
		return err
	}
	set := func(b kvmBlob, buf []byte) error { return kvmRefused(b.name, b.setTo(fd, buf)) }
	// Special registers before the general ones (CR0 and EFER decide how
	// the rest is read), the APIC base in them before the LAPIC.
	steps := []struct {
		b   kvmBlob
		buf []byte
		opt bool
	}{
		{blobSregs, c.Sregs, false}, {blobRegs, c.Regs, false},
		{blobXCRs, c.XCRs, true}, {blobXSave, c.XSave, true}, {blobFPU, c.FPU, true},
		{blobDebug, c.Debug, false}, {blobLAPIC, c.LAPIC, false},
	}
	for _, s := range steps {
		if s.opt && s.buf == nil {
			continue
		}
		var err error
		if s.b == blobXSave { // of the size this host's KVM moves
			err = kvmRefused(s.b.name, setXSave(fd, m.xsaveSize, s.buf))
		} else {
			err = set(s.b, s.buf)
		}
		if err != nil {
			return err
		}
	}
	if err := restoreMSRs(func(msrs []MSR) error { return setMSRs(fd, msrs) }, c.MSRs); err != nil {
		return kvmRefused("MSRs", err)
	}
	if err := set(blobMPState, c.MPState); err != nil {
		return err
	}
	if err := set(blobEvents, c.Events); err != nil {
		return err
	}

	if err := m.uart.Restore(st.UART); err != nil {
		return err
	}
	if err := m.rtc.Restore(st.RTC); err != nil {
		return err
	}
	if err := m.pci.Restore(st.PCI); err != nil {
		return err
	}
	for i, s := range m.virtio { // as many as checkDevices wants
		if err := s.dev.Restore(st.Virtio[i]); err != nil {
			return fmt.Errorf("virtio device %d: %w", i, err)
		}
	}

	vm := int(m.vmFD)
	for chip, buf := range st.IRQChips { // as many and as large as checkState wants
		if _, err := ioctlBuf(vm, blobIRQChip.set, buf); err != nil {
			return kvmRefused(fmt.Sprintf("interrupt controller %d", chip), fmt.Errorf("set irqchip %d: %w", chip, err))
		}
	}
	if err := blobPIT2.setTo(vm, st.PIT2); err != nil {
		return kvmRefused(blobPIT2.name, err)
	}
	// The guest's clock goes on from the snapshot's value: only the value,
	// without the flags and host times that would make it jump by the
	// time the snapshot lay on disk.
	clock := make([]byte, sizeClock)
	copy(clock[:8], st.Clock[:8])
	return kvmRefused(blobClock.name, blobClock.setTo(vm, clock))
}

// msrTSC is IA32_TIME_STAMP_COUNTER.
const msrTSC = 0x10

// restoreMSRs sets msrs through set (KVM_SET_MSRS), the TSC among them
// first set to its value plus 2^63. KVM before Linux 6.7 takes a TSC
// write within a second of the value it expects (the vCPU's creation's
// 0 plus the time since) for an attempt to synchronise vCPUs and keeps
// the TSC it has: the TSC of a snapshot taken under a second into the
// guest's life would start again from about 0, going backwards. Half the
// 64-bit range away from both, neither write is taken so; from 6.7 on
// both are set as written. A separate first set, so that MSRs read
// against the TSC (the TSC deadline) see the snapshot's.
func restoreMSRs(set func([]MSR) error, msrs []MSR) error {
	for _, m := range msrs {
		if m.Index == msrTSC {
			if err := set([]MSR{{Index: msrTSC, Data: m.Data + 1<<63}}); err != nil {
				return err
			}
			break
		}
	}
	return set(msrs)
}

// ErrKVMRefused is wrapped by a restore whose state KVM refused to set
// (a KVM_SET_* ioctl failed on a state checkState accepted): the
// snapshot is corrupt, or was taken on a KVM that allowed what this
// host's does not.
var ErrKVMRefused = errors.New("refused by this host's KVM (the snapshot is corrupt, or was taken on another KVM)")

// kvmRefused wraps err, KVM's refusal to set the snapshot's part, in
// ErrKVMRefused; nil stays nil.
func kvmRefused(part string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("the snapshot's %s: %w: %w", part, ErrKVMRefused, err)
}
