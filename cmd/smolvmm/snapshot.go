package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/virtio/blk"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/snapshot"
	vnet "github.com/smolvmm/smolvmm/virtio/net"

	"github.com/smolvmm/smolvmm/vmm"
)

// snapshotFlags are run's snapshot and restore flags.
func snapshotFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "snapshot", Usage: "when the guest is ready (--ready, --ready-port or the boot-timer port 0x505), write a snapshot of the VM to `FILE` and keep running"},
		&cli.BoolFlag{Name: "snapshot-exit", Usage: "stop the VM once the --snapshot file is written (exit status 0)"},
		&cli.StringFlag{Name: "restore", Usage: "continue the VM a snapshot `FILE` holds instead of booting a kernel (its memory size, disks and kind of network come from the snapshot unless -m, -d and --net are given)"},
		&cli.BoolFlag{Name: "verify-memory", Usage: "with --restore: read the snapshot's whole memory section and check it against the digest the snapshot recorded before the VM starts, refusing a damaged one (without it a restore reads only the pages the guest touches, unchecked)"},
	}
}

// checkSnapshotFlags refuses combinations that cannot work.
func checkSnapshotFlags(c *cli.Context) error {
	restore := c.String("restore")
	switch {
	case c.Bool("snapshot-exit") && c.String("snapshot") == "":
		return usageErrorf("--snapshot-exit without --snapshot FILE: give the file to write")
	case restore != "" && c.String("kernel") != "":
		return usageErrorf("--restore %s and -k %s: a restored VM continues the snapshot's kernel; give one of them", restore, c.String("kernel"))
	case c.Bool("verify-memory") && restore == "":
		return usageErrorf("--verify-memory without --restore FILE: it checks the memory of the snapshot a VM is restored from")
	}
	if restore != "" {
		// The snapshot continues a kernel already booted: what would
		// load or start one has nothing to act on.
		for _, f := range []struct{ name, flag string }{{"append", "-a"}, {"boot", "--boot"}, {"module", "--module"}} {
			if hasFlag(c, f.name) && c.IsSet(f.name) {
				return usageErrorf("--restore %s and %s: the snapshot continues a kernel already booted, with its command line and modules; drop %s", restore, f.flag, f.flag)
			}
		}
	}
	return checkSnapshotTarget(c)
}

// checkSnapshotTarget refuses a --snapshot file that is one of the files
// the VM reads (same device and inode, whatever the spelling or symlinks):
// the snapshot would replace it.
func checkSnapshotTarget(c *cli.Context) error {
	path := c.String("snapshot")
	if path == "" {
		return nil
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil // no file there: nothing to lose (opening it reports the rest)
	}
	type named struct{ flag, path string }
	var inputs []named
	if k := c.String("kernel"); k != "" {
		inputs = append(inputs, named{"-k", k})
	}
	if r := c.String("restore"); r != "" {
		inputs = append(inputs, named{"--restore", r})
	}
	for _, spec := range c.StringSlice("module") {
		p, _, _ := strings.Cut(spec, ",")
		inputs = append(inputs, named{"--module", p})
	}
	for _, spec := range c.StringSlice("disk") {
		if d, err := blk.ParseDiskSpec(spec); err == nil {
			inputs = append(inputs, named{"-d", d.Path})
		}
	}
	for _, spec := range c.StringSlice("share") {
		p, _, _ := strings.Cut(spec, ",")
		inputs = append(inputs, named{"--share", p})
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in.path); err == nil && os.SameFile(st, ist) {
			return usageErrorf("--snapshot %s is the same file as %s %s: the snapshot would replace it; write the snapshot elsewhere", path, in.flag, in.path)
		}
	}
	if r := c.String("restore"); r != "" && !c.IsSet("disk") && !c.IsSet("share") {
		// The restored VM opens the snapshot's own disks.
		disks, err := vmm.SnapshotDisks(r)
		if err != nil {
			return nil // the restore reports it
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		for _, d := range disks {
			if ok && d.Dev == uint64(sys.Dev) && d.Inode == sys.Ino {
				return usageErrorf("--snapshot %s is the same file as the disk %s of --restore %s: the snapshot would replace it; write the snapshot elsewhere", path, d.Path, r)
			}
		}
	}
	return nil
}

// restoreConfig adjusts a config built from the run flags for --restore:
// memory and disks come from the snapshot unless given.
func restoreConfig(c *cli.Context, cfg *vmm.Config) {
	if c.String("restore") == "" {
		return
	}
	if !c.IsSet("memory") {
		cfg.MemoryMiB = 0
	}
	if !c.IsSet("disk") && !c.IsSet("share") {
		cfg.Disks = nil
	}
}

// newMachine boots cfg, or restores --restore's snapshot with it.
func newMachine(c *cli.Context, cfg vmm.Config) (*vmm.Machine, error) {
	if hasFlag(c, "restore") && c.String("restore") != "" {
		var opts []vmm.RestoreOption
		if mac, err := vnet.ParseMAC(c.String("mac")); err == nil && hasNIC(cfg) {
			opts = append(opts, vmm.WithMAC(mac)) // a clone: checked by parseNetFlags
		}
		if hasFlag(c, "verify-memory") && c.Bool("verify-memory") {
			opts = append(opts, vmm.VerifyMemory())
		}
		m, err := vmm.Restore(cfg, c.String("restore"), opts...)
		if errors.Is(err, vmm.ErrSnapshotDevices) {
			return nil, fmt.Errorf("%w (give the network the snapshot's VM had, --net none when it had no network card, or leave out --net to take its kind)", err)
		}
		return m, err
	}
	return vmm.New(cfg)
}

// snapNIC is what --restore's snapshot says of its network card, read
// once: restoreNet and restoreNetMAC both ask (a process restores one
// snapshot).
var snapNIC struct {
	path string
	has  bool
	mac  net.HardwareAddr
	err  error
}

// snapshotNIC returns vmm.SnapshotNIC's answer for path, read once.
func snapshotNIC(path string) (bool, net.HardwareAddr, error) {
	if snapNIC.path != path {
		snapNIC.has, snapNIC.mac, snapNIC.err = vmm.SnapshotNIC(path)
		snapNIC.path = path
	}
	return snapNIC.has, snapNIC.mac, snapNIC.err
}

// restoreNet gives --restore without --net the snapshot's kind of network:
// none when its VM had no network card, else the user network (--net's
// default). A restore's devices must be the snapshot's, so the default
// user network's card would have a restore of a snapshot taken with --net
// none refused. A --net given stays as given: the restore refuses one
// whose card does not match.
func restoreNet(c *cli.Context) error {
	if !hasFlag(c, "restore") || c.String("restore") == "" || !hasFlag(c, "net") || c.IsSet("net") {
		return nil
	}
	path := c.String("restore")
	has, _, err := snapshotNIC(path)
	if err != nil || has {
		return nil // an unreadable snapshot: the restore reports it
	}
	if p := c.StringSlice("publish"); len(p) > 0 {
		return usageErrorf("-p %s: the VM of --restore %s had no network card, so nothing can answer a forward; drop -p", p[0], path)
	}
	return c.Set("net", "none")
}

// restoreNetMAC gives a restored VM's network card the snapshot's address,
// which its guest goes on using, unless --mac gives a clone another.
func restoreNetMAC(c *cli.Context, nc *netConfig) error {
	if !hasFlag(c, "restore") || c.String("restore") == "" || c.String("mac") != "" {
		return nil
	}
	_, mac, err := snapshotNIC(c.String("restore"))
	if err != nil {
		return fmt.Errorf("--restore: %w", err)
	}
	if mac != nil {
		nc.MAC = mac
	}
	return nil
}

// hasNIC reports whether cfg has a network card (attachNIC's).
func hasNIC(cfg vmm.Config) bool {
	for _, d := range cfg.Devices {
		if _, ok := d.(*vnet.Device); ok {
			return true
		}
	}
	return false
}

// setupSnapshot prepares --snapshot's file (before the containment, which
// allows no new files) and has the machine write it when ready. done,
// called after the VM ended, removes the temporary files and reports the
// snapshot's error.
func setupSnapshot(c *cli.Context, cfg *vmm.Config) (done func() error, err error) {
	done = func() error { return nil }
	path := ""
	if hasFlag(c, "snapshot") {
		path = c.String("snapshot")
	}
	if path == "" {
		return done, nil
	}
	t, err := openSnapTarget(path)
	if err != nil {
		return done, err
	}
	creds, err := dropTo(c) // contain.go
	if err == nil && creds != nil {
		err = t.allowUser(*creds)
	}
	if err != nil {
		t.close()
		return done, err
	}
	var snapErr error
	snapTgt = t
	w := &snapWriter{t: t}
	cfg.SnapshotOnReady = w
	cfg.SnapshotExit = c.Bool("snapshot-exit")
	cfg.OnSnapshot = func(info vmm.SnapshotInfo, err error) {
		// On the vCPU thread, before a --snapshot-exit stops the VM:
		// the file is in place when the process ends.
		if err = w.finish(err); err != nil {
			snapErr = err
			return
		}
		if c.Bool("verbose") || c.Bool("timings") {
			fmt.Fprintf(os.Stderr, "\r\nsmolvmm: snapshot %s: %.1f MiB written, guest paused %.1f ms\r\n",
				path, float64(info.Bytes)/(1<<20), float64(info.Pause)/float64(time.Millisecond))
		}
	}
	return func() error {
		written := t.close()
		if snapErr != nil {
			return fmt.Errorf("--snapshot %s: %w", path, snapErr)
		}
		if !written {
			return fmt.Errorf("--snapshot %s: the guest never became ready, so no snapshot was taken (mark readiness with --ready or --ready-port, or have the guest write port 0x505)", path)
		}
		return nil
	}, nil
}

// snapTarget is --snapshot's file. Nothing is written to it in place: a
// snapshot goes to a temporary file beside it (created at the start, when
// the VMM may still create files), which is synced and then renamed over
// it, so that the file holds its old content until a new snapshot is
// complete, and a run that takes none leaves it as it was. The file as it
// was is locked exclusive from the start (refused when a VM holds it as
// a disk or restores from it), and so is each temporary while written.
//
// Two temporaries, so that Ctrl-A s can snapshot again once the seccomp
// filter forbids creating files: the first snapshot is renamed over the
// file; each later one is written to the spare temporary and exchanged
// with the file (renameat2 RENAME_EXCHANGE), which leaves the previous
// snapshot at the spare's name, to be written next (when no VM restored
// from it still maps it) and removed at the end.
type snapTarget struct {
	path string   // as given, for messages
	dir  *os.File // the directory that holds the file (the filter's RenameDir)
	name string   // the file's name in dir, symlinks resolved

	mu        sync.Mutex // held while a snapshot is written and renamed
	old       *os.File   // the file as it was, locked until replaced; nil if none
	files     [2]*os.File
	names     [2]string // files' names in dir; after the first rename both the spare's, where only files[next] is
	next      int       // the index in files of the one to write next
	committed bool      // a snapshot was renamed over name
}

// snapTgt is the running VM's --snapshot target, which Ctrl-A s writes
// too.
var snapTgt *snapTarget

// openSnapTarget resolves path, locks the file there if any and creates
// the temporaries. It changes nothing at path.
func openSnapTarget(path string) (_ *snapTarget, err error) {
	real := path
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSymlink != 0 {
		// The snapshot replaces the file the link names, not the link.
		if real, err = filepath.EvalSymlinks(path); err != nil {
			return nil, fmt.Errorf("--snapshot %s: %w", path, err)
		}
	}
	t := &snapTarget{path: path, name: filepath.Base(real)}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.dir, err = os.Open(filepath.Dir(real)); err != nil {
		return nil, fmt.Errorf("--snapshot %s: its directory: %w", path, err)
	}
	old, err := os.Open(real)
	switch {
	case err == nil:
		t.old = old
		if fi, err := old.Stat(); err != nil || !fi.Mode().IsRegular() {
			return nil, fmt.Errorf("--snapshot %s: not a regular file: give a file to write the snapshot to", path)
		}
		if err := lockFile(old, unix.LOCK_EX); err != nil {
			return nil, snapInUse(path, old, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("--snapshot %s: %w", path, err)
	}
	for i := range t.files {
		f, err := os.CreateTemp(t.dir.Name(), "."+t.name+".*.tmp")
		if err != nil {
			return nil, fmt.Errorf("--snapshot %s: temporary file: %w", path, err)
		}
		t.files[i], t.names[i] = f, filepath.Base(f.Name())
		if err := lockFile(f, unix.LOCK_EX); err != nil {
			return nil, fmt.Errorf("--snapshot %s: temporary file %s: flock: %w", path, f.Name(), err)
		}
	}
	return t, nil
}

// allowUser makes the temporaries cr's and refuses a directory in which
// cr (with no other group, as sandbox.DropPrivileges leaves it) could not
// rename them over the file: the rename comes after the privileges are
// dropped.
func (t *snapTarget) allowUser(cr sandbox.Credentials) error {
	for _, f := range t.files {
		if err := f.Chown(cr.UID, cr.GID); err != nil {
			return fmt.Errorf("--snapshot %s: temporary file: %w", t.path, err)
		}
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(t.dir.Fd()), &st); err != nil {
		return fmt.Errorf("--snapshot %s: its directory: %w", t.path, err)
	}
	perm := st.Mode & 0o7 // others'
	switch {
	case int(st.Uid) == cr.UID:
		perm = st.Mode >> 6 & 0o7
	case int(st.Gid) == cr.GID:
		perm = st.Mode >> 3 & 0o7
	}
	ok := perm&0o3 == 0o3 // write and search
	if ok && st.Mode&unix.S_ISVTX != 0 && int(st.Uid) != cr.UID && t.old != nil {
		// A sticky directory: only the owner replaces a file.
		var fst unix.Stat_t
		ok = unix.Fstat(int(t.old.Fd()), &fst) == nil && int(fst.Uid) == cr.UID
	}
	if !ok {
		return fmt.Errorf("--snapshot %s: uid %d, which the VM runs as, may not replace files in %s (the snapshot is written beside the file and renamed over it, after privileges are dropped); give a directory it can write in", t.path, cr.UID, t.dir.Name())
	}
	return nil
}

// lockFile takes an flock on f without waiting.
func lockFile(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// snapInUse reports the --snapshot file f locked by another process, with
// its holder when it can be found (not under the seccomp filter, which
// forbids reading /proc/locks: the caller passes a nil f then).
func snapInUse(path string, f *os.File, err error) error {
	if !errors.Is(err, unix.EWOULDBLOCK) {
		return fmt.Errorf("--snapshot %s: flock: %w", path, err)
	}
	holder := ""
	if f != nil {
		if h := lockholder.Describe(f); h != "" {
			holder = "; its lock is held by " + h
		}
	}
	return fmt.Errorf("--snapshot %s is in use (%w: a VM holds it as a disk or was restored from it, and would lose it); stop that VM or write the snapshot elsewhere%s", path, err, holder)
}

// prepare returns the temporary to write the next snapshot to, locked and
// empty. t.mu is held.
func (t *snapTarget) prepare() (*os.File, error) {
	f := t.files[t.next]
	// A temporary that was once the file may be mapped by a VM restored
	// from it: it is written only once no such VM holds it.
	if err := lockFile(f, unix.LOCK_EX); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("the previous snapshot, which this one would be written over, is in use (%w: a VM was restored from it); stop that VM to take another snapshot", err)
		}
		return nil, fmt.Errorf("flock: %w", err)
	}
	if err := f.Truncate(0); err != nil {
		return nil, err
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return f, nil
}

// commit syncs the written temporary and renames it over the file. t.mu
// is held.
func (t *snapTarget) commit() error {
	f := t.files[t.next]
	if err := f.Sync(); err != nil {
		return err
	}
	dir := int(t.dir.Fd())
	if !t.committed {
		if err := unix.Renameat(dir, t.names[t.next], dir, t.name); err != nil {
			return fmt.Errorf("rename %s over %s: %w", t.names[t.next], t.name, err)
		}
		if t.old != nil {
			t.old.Close() // the old file is gone: its lock with it
			t.old = nil
		}
		t.committed = true
		// files[1] stays at names[1]: the spare from now on.
		t.names[0] = t.names[1]
	} else if err := unix.Renameat2(dir, t.names[1], dir, t.name, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchange %s with %s: %w", t.names[1], t.name, err)
	}
	_ = t.dir.Sync() // the rename itself, durable
	// Complete: VMs may restore from it.
	_ = unix.Flock(int(f.Fd()), unix.LOCK_UN)
	t.next = 1 - t.next
	return nil
}

// close removes the temporaries left and releases the files; it reports
// whether a snapshot was renamed into place.
func (t *snapTarget) close() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dir != nil {
		dir := int(t.dir.Fd())
		for i, f := range t.files {
			// Before a commit each temporary is at its own name;
			// after, only the spare (the next to write) is.
			if f != nil && (!t.committed || i == t.next) {
				_ = unix.Unlinkat(dir, t.names[i], 0)
			}
		}
	}
	for i, f := range t.files {
		if f != nil {
			f.Close()
			t.files[i] = nil
		}
	}
	if t.old != nil {
		t.old.Close()
		t.old = nil
	}
	if t.dir != nil {
		t.dir.Close()
		t.dir = nil
	}
	return t.committed
}

// snapWriter writes one snapshot to a snapTarget: it takes the target's
// lock and a temporary at its first use (on whichever thread the machine
// writes from) and finish renames it into place and releases the lock.
// It seeks and stats as a file, so that the snapshot's zero pages are
// holes.
type snapWriter struct {
	t   *snapTarget
	f   *os.File
	err error
}

func (w *snapWriter) file() (*os.File, error) {
	if w.f == nil && w.err == nil {
		w.t.mu.Lock()
		if w.f, w.err = w.t.prepare(); w.err != nil {
			w.f = nil
			w.t.mu.Unlock()
		}
	}
	return w.f, w.err
}

func (w *snapWriter) Write(p []byte) (int, error) {
	f, err := w.file()
	if err != nil {
		return 0, err
	}
	return f.Write(p)
}

func (w *snapWriter) Seek(off int64, whence int) (int64, error) {
	f, err := w.file()
	if err != nil {
		return 0, err
	}
	return f.Seek(off, whence)
}

func (w *snapWriter) Stat() (os.FileInfo, error) {
	f, err := w.file()
	if err != nil {
		return nil, err
	}
	return f.Stat()
}

// finish ends the snapshot whose result is err: renamed into place when
// it succeeded. The writer may then write another.
func (w *snapWriter) finish(err error) error {
	if w.f == nil {
		if err == nil {
			err = w.err
		}
		w.err = nil
		return err
	}
	defer w.t.mu.Unlock()
	w.f = nil
	if err != nil {
		return err
	}
	return w.t.commit()
}

// snapshotKey returns what Ctrl-A s does on m: write a snapshot to the
// --snapshot file, replacing what it held, off the input's goroutine.
func snapshotKey(c *cli.Context, m *vmm.Machine) func() {
	return func() {
		t := snapTgt
		if t == nil {
			fmt.Fprint(os.Stderr, "\r\nsmolvmm: C-a s: no snapshot file: run with --snapshot FILE\r\n")
			return
		}
		go func() {
			w := &snapWriter{t: t}
			info, err := m.Snapshot(w)
			if err = w.finish(err); err != nil {
				fmt.Fprintf(os.Stderr, "\r\nsmolvmm: C-a s: %v\r\n", err)
				return
			}
			fmt.Fprintf(os.Stderr, "\r\nsmolvmm: snapshot %s: %.1f MiB written, guest paused %.1f ms\r\n",
				t.path, float64(info.Bytes)/(1<<20), float64(info.Pause)/float64(time.Millisecond))
		}()
	}
}

// benchRestoreTargets turns bench's smolvmm target (a boot) into one that
// restores --restore's snapshot, and adds the boot after it with
// --compare boot. Memory is the snapshot's unless -m is given; the boot
// gets the same.
func benchRestoreTargets(c *cli.Context, boot bench.Target) ([]bench.Target, error) {
	path := c.String("restore")
	f, err := snapshot.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--restore: %w", err)
	}
	memSize := f.Header.MemSize
	f.Close()
	if c.IsSet("memory") && uint64(c.Int("memory"))<<20 != memSize {
		return nil, usageErrorf("--restore %s holds %d MiB of memory, -m %d asks for another size", path, memSize>>20, c.Int("memory"))
	}
	var args []string
	for i := 0; i < len(boot.Args); i++ {
		switch boot.Args[i] {
		case "-m", "-a", "-k", "--boot":
			i++ // a restore continues the snapshot's kernel, in its memory
		default:
			args = append(args, boot.Args[i])
		}
	}
	restore := boot
	restore.Name = "smolvmm-restore"
	restore.Args = append(args, "--restore", path)
	if c.Bool("verify-memory") {
		restore.Args = append(restore.Args, "--verify-memory")
	}
	restore.GuestBytes = memSize
	// smaps names the mapped snapshot by its absolute, resolved path.
	if restore.GuestFile, err = filepath.Abs(path); err == nil {
		if real, err := filepath.EvalSymlinks(restore.GuestFile); err == nil {
			restore.GuestFile = real
		}
	}
	targets := []bench.Target{restore}
	if c.String("compare") == "boot" {
		boot.GuestBytes = memSize
		for i := 0; i+1 < len(boot.Args); i++ {
			if boot.Args[i] == "-m" {
				boot.Args = append(append([]string(nil), boot.Args[:i+1]...), boot.Args[i+1:]...)
				boot.Args[i+1] = strconv.FormatUint(memSize>>20, 10)
			}
		}
		targets = append(targets, boot)
	}
	return targets, nil
}
