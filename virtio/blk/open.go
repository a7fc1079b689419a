package blk

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/smolvmm/smolvmm/internal/commaopt"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/internal/lockholder"
)

// SerialLen is the size of the GET_ID answer.
const SerialLen = 20

// Options are a disk's settings.
type Options struct {
	// ReadOnly opens the image read-only, offers VIRTIO_BLK_F_RO and
	// answers writes IOERR.
	ReadOnly bool
	// Serial is the GET_ID answer: up to 20 printable ASCII bytes. Empty
	// means derived from the image's absolute path (stable across runs).
	Serial string
}

// Spec is a disk to attach: an image path and its options, as
// ParseDiskSpec reads them from text and String writes them.
type Spec struct {
	// Path is the image's path.
	Path string
	Options
}

// ErrNotWritable is wrapped by Open's error when a disk to be written is
// not writable (permissions, a read-only file system, an immutable file).
var ErrNotWritable = errors.New("the image is not writable")

// ErrNotReadable is wrapped by Open's error when the image may not be
// read by this process's user (its permissions, or a directory on its path
// that may not be searched): a read-only open fails too.
var ErrNotReadable = errors.New("the image may not be read by this user")

// AccessError is Open's error when the image may not be read by this
// process's user, because of its own permissions or those of a directory
// on its path: a read-only open fails too. It wraps ErrNotReadable and the
// system's error.
type AccessError struct {
	// Path is the image's path, as given to Open.
	Path string
	// Dir is the directory on Path that this user may not search, empty
	// when the image itself refused.
	Dir string
	// ReadOnly says the open was read-only.
	ReadOnly bool
	// Err is the system's error (permission denied).
	Err error
}

// Error says which open was refused, by what, and Advice.
func (e *AccessError) Error() string {
	mode, what := "read-write", ""
	if e.ReadOnly {
		mode = "read-only"
	}
	if e.Dir != "" {
		what = fmt.Sprintf(": the directory %s may not be searched by this user", e.Dir)
	}
	return fmt.Sprintf("disk image %s: cannot open it %s: %v%s: %v (%s)", e.Path, mode, ErrNotReadable, what, e.Err, e.Advice())
}

// Unwrap is ErrNotReadable and the system's error.
func (e *AccessError) Unwrap() []error { return []error{ErrNotReadable, e.Err} }

// Advice is what to change, as Error says it.
func (e *AccessError) Advice() string {
	switch {
	case e.Dir != "":
		return "let this user search the directory, or move the image to one it may search"
	case e.ReadOnly:
		return "make it readable by this user"
	}
	return "make it readable and writable by this user, or readable and attach it read-only"
}

// ErrInUse is wrapped by Open's error when another VM (process) holds the
// image's lock: an exclusive one, taken by a read-write open, or a shared
// one, which only read-only opens (Options.ReadOnly) share; or when
// another program's byte-range lock, as QEMU takes them, says that it
// writes the image, or that it lets no one else write it (refusing a
// read-write open) or read it.
var ErrInUse = errors.New("in use by another VM")

// ErrOptionTwice is wrapped by ParseDiskSpec's refusal of a spec that
// gives one option twice ("serial=ab,serial=cd"): which value counts
// would be a guess.
var ErrOptionTwice = errors.New("given twice")

// ParseDiskSpec parses a disk's text form, "path[,ro][,serial=ID]". A comma in
// the path (or the serial) is written twice, as QEMU's options do:
// "a,,b.img,ro" is the image "a,b.img", read-only.
func ParseDiskSpec(s string) (Spec, error) {
	parts := commaopt.Split(s)
	sp := Spec{Path: parts[0]}
	if sp.Path == "" {
		return Spec{}, fmt.Errorf("disk %q: empty image path (the form is path[,ro][,serial=ID])", s)
	}
	seen := map[string]bool{}
	for _, p := range parts[1:] {
		// One value per option: a second was taken over the first
		// without a word ("serial=ab,serial=cd" gave cd).
		key, _, _ := strings.Cut(p, "=")
		if (key == "ro" || key == "serial") && seen[key] {
			return Spec{}, fmt.Errorf("disk %q: option %s %w", s, key, ErrOptionTwice)
		}
		seen[key] = true
		switch {
		case p == "ro":
			sp.ReadOnly = true
		case strings.HasPrefix(p, "serial="):
			sp.Serial = strings.TrimPrefix(p, "serial=")
			if err := checkSerial(sp.Serial); err != nil {
				return Spec{}, fmt.Errorf("disk %q: %w", s, err)
			}
		default:
			return Spec{}, fmt.Errorf("disk %q: unknown option %q; known: ro, serial=ID (a comma in the path is written ,,)", s, p)
		}
	}
	return sp, nil
}

// String is sp as ParseDiskSpec reads it: "path[,ro][,serial=ID]", with
// each comma of the path and serial written twice.
func (sp Spec) String() string {
	s := strings.ReplaceAll(sp.Path, ",", ",,")
	if sp.ReadOnly {
		s += ",ro"
	}
	if sp.Serial != "" {
		s += ",serial=" + strings.ReplaceAll(sp.Serial, ",", ",,")
	}
	return s
}

// CheckSerial refuses a serial GET_ID cannot answer (Options.Serial):
// empty, longer than SerialLen, or with a byte that is not printable
// ASCII. Open and ParseDiskSpec check a given serial so.
func CheckSerial(s string) error { return checkSerial(s) }

func checkSerial(s string) error {
	if len(s) == 0 || len(s) > SerialLen {
		return fmt.Errorf("serial %q: must be 1 to %d bytes", s, SerialLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7E {
			return fmt.Errorf("serial %q: byte %d is not printable ASCII", s, i)
		}
	}
	return nil
}

// DeriveSerial is the serial used when none is given: the first 20 hex
// digits of the SHA-256 of the image's absolute, cleaned path.
func DeriveSerial(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = filepath.Clean(path)
	}
	sum := sha256.Sum256([]byte(abs))
	return hex.EncodeToString(sum[:])[:SerialLen]
}

// Open opens the raw image at path as a disk, locks it against other VMs
// (flock, exclusive for read-write, shared for read-only, and the
// byte-range locks QEMU takes and looks for: see the package
// documentation's Locking) and sizes it. An image
// whose first sector starts with the signature of a compressed file or of
// another disk image format (qcow2, VMDK, VHD, VHDX, VDI) is refused with a
// *FormatError (ErrNotRaw). The
// capacity is the file size in whole 512-byte sectors: a trailing partial
// sector is not exposed, and is not refused either (HiddenBytes says how
// many bytes it holds). Close releases the file and the lock.
func Open(path string, opts Options) (*Disk, error) {
	return open(path, opts, true)
}

// OpenRecorded opens the image at path as Open does, without refusing one
// that starts with a compressed file's or another format's signature: for
// an image the caller checks, once open, to be one that Open accepted
// before (a snapshot's disk, by its recorded identity or content). Its
// guest may since have written such a signature on its first sector (tar
// czf to the raw disk starts it with gzip's), which does not make the
// guest's own disk another format. Every other refusal of Open's applies.
func OpenRecorded(path string, opts Options) (*Disk, error) {
	return open(path, opts, false)
}

// open is Open, and without checkRaw OpenRecorded.
func open(path string, opts Options, checkRaw bool) (*Disk, error) {
	if opts.Serial == "" {
		opts.Serial = DeriveSerial(path)
	}
	// What is no file is refused before it is opened: a directory fails
	// a read-write open with EISDIR (no advice), a FIFO blocks a
	// read-only one, and opening a device may act on it. (The open file
	// is checked again below.)
	st, statErr := os.Stat(path)
	if statErr == nil && !st.Mode().IsRegular() {
		return nil, notRegular(path, st.Mode())
	}
	// A file replaced under its name between the open and the lock (an
	// image builder renames a new image over one no VM holds) would be
	// served after its replacer saw it unlocked: what the guest wrote would go to a
	// file nobody can open again. The name is opened again until the
	// file locked is the file it names.
	f, err := openLocked(path, opts, statErr)
	for try := 1; err == nil && !namesFile(path, f); try++ {
		f.Close()
		if try == openTries {
			return nil, fmt.Errorf("disk image %s: replaced by another file each of the %d times it was opened and locked", path, openTries)
		}
		f, err = openLocked(path, opts, statErr)
	}
	if err != nil {
		return nil, err
	}
	st, err = f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("disk image %s: stat: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, st.Mode())
	}
	// A compressed file or a qcow2 image would be taken as raw without a
	// word, and a writable one written into.
	if checkRaw {
		if err := CheckRaw(f, st.Size(), path); err != nil {
			f.Close()
			return nil, err
		}
	}
	d, err := New(newFileBackend(f), st.Size(), opts)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("disk image %s: %w", path, err)
	}
	d.file, d.path = f, path
	return d, nil
}

// openTries is how many times open opens and locks an image whose name
// goes on naming another file than the one locked.
const openTries = 5

// afterOpen, when set (by tests), is called between an image's open and
// its lock.
var afterOpen func(path string)

// openLocked opens the image at path for opts and takes its locks (the
// flock, QEMU's byte-range locks). statErr is path's stat's, made before.
func openLocked(path string, opts Options, statErr error) (*os.File, error) {
	flag, lock, mode := os.O_RDWR, unix.LOCK_EX, "read-write"
	if opts.ReadOnly {
		flag, lock, mode = os.O_RDONLY, unix.LOCK_SH, "read-only"
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		// The message names the path once: keep the cause, not the
		// PathError's "open PATH: " again.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		// Refused reading as well, writing is not what is at fault: a
		// read-only attach would fail too.
		if errors.Is(err, fs.ErrPermission) && (opts.ReadOnly || !mayRead(path)) {
			ae := &AccessError{Path: path, ReadOnly: opts.ReadOnly, Err: err}
			// Stat needs only the search of the directories on the
			// path: refused, one of them is at fault, not the file.
			if errors.Is(statErr, fs.ErrPermission) {
				ae.Dir = unsearchableDir(path)
			}
			return nil, ae
		}
		if !opts.ReadOnly && (errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS)) {
			return nil, fmt.Errorf("disk image %s: cannot open it %s: %w: %w (attach it read-only, or make it writable)", path, mode, ErrNotWritable, err)
		}
		return nil, fmt.Errorf("disk image %s: cannot open it %s: %w", path, mode, err)
	}
	if afterOpen != nil {
		afterOpen(path)
	}
	if err := flock(f, lock|unix.LOCK_NB); err != nil {
		holder := lockholder.Describe(f)
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			if holder == "" {
				holder = "another process"
			}
			// Once, without the errno's text: the caller adds what to do.
			return nil, fmt.Errorf("disk image %s is %w: %s holds its lock", path, ErrInUse, holder)
		}
		return nil, fmt.Errorf("disk image %s: flock: %w", path, err)
	}
	if err := lockQEMU(f, path, opts.ReadOnly, !flockIsByteRange(f)); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// namesFile reports whether path names the file f has open.
func namesFile(path string, f *os.File) bool {
	open, err := f.Stat()
	if err != nil {
		return false
	}
	named, err := os.Stat(path)
	return err == nil && os.SameFile(open, named)
}

// mayRead reports whether a read-only open of path is not refused for
// permission. Non-blocking: a FIFO put there since the image was examined
// does not hang it.
func mayRead(path string) bool {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM)
	}
	unix.Close(fd)
	return true
}

// unsearchableDir is the directory on path that this user may not
// search, given that path cannot be examined for want of permission: the
// deepest of its directories that can be, whose entries cannot. It is
// empty when none can be examined.
func unsearchableDir(path string) string {
	for d := filepath.Dir(path); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return ""
		}
	}
}

// QEMU (2.10 on) locks a raw image with OFD byte-range read locks (its
// block/file-posix.c): byte qemuPermBase+p for each permission p it
// holds, and qemuSharedBase+p for each it lets no one else hold, p being
// qemuRead (consistent read) or qemuWrite. On Linux flock and fcntl locks
// never conflict, so without these, QEMU and a disk could write one image.
const (
	qemuPermBase   = 100
	qemuSharedBase = 200
	qemuRead       = 0
	qemuWrite      = 1
)

// lockQEMU tells QEMU, with its own locks on f, that the disk reads the
// image, writes it unless readOnly, and lets no one else write it (as
// QEMU locks a raw drive without share-rw), and refuses the image
// (ErrInUse) when another open file description's lock says that someone
// writes it, lets no one else read it, or, unless readOnly, lets no one
// else write it. Without take, it only looks (flockIsByteRange).
//
// The locks are taken before looking, as QEMU does: of two programs
// starting at once, each then sees the other's, and neither is let
// through unseen. A description's own locks never conflict with it, so
// the disk's do not refuse it; the locks go with the file's last close.
func lockQEMU(f *os.File, path string, readOnly, take bool) error {
	held := []int64{qemuPermBase + qemuRead, qemuSharedBase + qemuWrite}
	refused := []lockByte{
		{qemuPermBase + qemuWrite, "writes it"},
		{qemuSharedBase + qemuRead, "lets no other program read it"},
	}
	if !readOnly {
		held = append(held, qemuPermBase+qemuWrite)
		refused = append(refused, lockByte{qemuSharedBase + qemuWrite, "lets no other program write it"})
	}
	if !take {
		held = nil
	}
	for _, off := range held {
		lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart, Start: off, Len: 1}
		err := fcntlLock(f, unix.F_OFD_SETLK, &lk)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
			// Someone holds a write lock there: none of QEMU's.
			lk = unix.Flock_t{Type: unix.F_RDLCK, Whence: io.SeekStart, Start: off, Len: 1}
			pid := int32(-1)
			if fcntlLock(f, unix.F_OFD_GETLK, &lk) == nil {
				pid = lk.Pid
			}
			return rangeInUse(f, path, pid, off, fmt.Sprintf("holds a write lock on its byte %d", off))
		}
		if err != nil {
			return fmt.Errorf("disk image %s: byte-range lock on byte %d: %w", path, off, err)
		}
	}
	for _, r := range refused {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart, Start: r.off, Len: 1}
		if err := fcntlLock(f, unix.F_OFD_GETLK, &lk); err != nil {
			return fmt.Errorf("disk image %s: testing the byte-range lock on byte %d: %w", path, r.off, err)
		}
		// Where flock is a byte-range lock on the server (!take), another
		// VM's flock is one over the whole file, which the flock taken
		// already judged: QEMU's cover single bytes. (Such a lock found
		// hides another one behind it, which is then not seen.)
		if lk.Type != unix.F_UNLCK && (take || lk.Start != 0 || lk.Len != 0) {
			return rangeInUse(f, path, lk.Pid, r.off, fmt.Sprintf("%s, as its byte-range lock on byte %d says (QEMU locks its images so)", r.what, r.off))
		}
	}
	return nil
}

// CheckQEMULocks reports, as an error matching ErrInUse that names the
// holder, whether another open file description's QEMU-style byte-range
// lock on f (the image at path) says that a program writes the image,
// lets no other program read it, or lets no other program write it: a
// running QEMU takes those locks, not smolvmm's flock, so a program about
// to replace or rewrite the image must look for both. It takes no lock.
func CheckQEMULocks(f *os.File, path string) error {
	return lockQEMU(f, path, false, false)
}

// lockByte is a lock byte of QEMU's that refuses an open when another
// program holds it, and what that program's lock there means.
type lockByte struct {
	off  int64
	what string
}

// rangeInUse is Open's refusal of an image whose byte off another
// program's lock holds (pid: its process as F_GETLK says it, -1 for an
// OFD lock's); what says what the lock means.
func rangeInUse(f *os.File, path string, pid int32, off int64, what string) error {
	holder := lockholder.DescribeRange(f, int(pid), off, off)
	if holder == "" {
		holder = "another program" // one whose files this user may not see
	}
	return fmt.Errorf("disk image %s is %w: %s %s", path, ErrInUse, holder, what)
}

// flockIsByteRange reports whether f's file system takes flock as a
// whole-file byte-range lock on its server (NFS, SMB/CIFS). There, the
// flock already conflicts with other programs' byte-range locks, QEMU's
// included: a read-write disk's makes QEMU fail to take its own, a
// read-only one's fails QEMU's test for writers. The disk's own OFD locks
// would instead meet the flock on the server as locks of the same owner
// (the open file description), splitting or downgrading it there, so
// Open only looks for QEMU's locks and takes none. (An NFS mount with
// local_lock=flock or all keeps flock on this host, where QEMU does not
// see it: statfs cannot tell, and such a mount stays unguarded.)
func flockIsByteRange(f *os.File) bool {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return false
	}
	switch uint32(st.Type) {
	case unix.NFS_SUPER_MAGIC, unix.SMB_SUPER_MAGIC, unix.CIFS_SUPER_MAGIC, unix.SMB2_SUPER_MAGIC:
		return true
	}
	return false
}

// fcntlLock is fcntl(cmd, lk) on f, retried on EINTR.
func fcntlLock(f *os.File, cmd int, lk *unix.Flock_t) error {
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, lk)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

func flock(f *os.File, how int) error {
	for {
		err := unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// ErrNotRegular is wrapped by Open's refusal of a path that is not a
// regular file (a directory, a device, a FIFO): an image is one.
var ErrNotRegular = errors.New("not a regular file")

// notRegular is Open's refusal of a path that is not a regular file.
func notRegular(path string, m fs.FileMode) error {
	return fmt.Errorf("disk image %s: %w (it is %s)", path, ErrNotRegular, filekind.Of(m))
}
