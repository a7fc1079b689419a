package imagebuilder

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/diskfs/go-diskfs/backend"
	"github.com/diskfs/go-diskfs/backend/file"
	"github.com/diskfs/go-diskfs/filesystem"
	"github.com/diskfs/go-diskfs/filesystem/fat12"
	"github.com/diskfs/go-diskfs/filesystem/fat32"
	"github.com/diskfs/go-diskfs/filesystem/iso9660"
	"github.com/smolvmm/smolvmm/imagebuilder/internal/hostdir"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"golang.org/x/sys/unix"
)

// Data disk file system types, as NetBSD's GENERIC kernel mounts them
// (msdos and cd9660; NetBSD 9 has no virtio 9p to share a directory).
const (
	DataFAT32   = "fat32"
	DataISO9660 = "iso9660"
)

// DataLabel is the volume label of data disks.
const DataLabel = "SMOLVMM"

// minFAT32 is the smallest FAT32 volume made: with go-diskfs's 512-byte
// clusters below 260 MiB, 34 MiB gives more than the 65525 clusters that
// make a file system FAT32 rather than FAT16 to every reader.
const minFAT32 = MinFAT32MiB << 20

// MinFAT32MiB is the size of the smallest FAT32 data image, in MiB, whatever
// it holds: see minFAT32.
const MinFAT32MiB = 34

// DataSizeError is the error for a data image size too small for its
// content (or below MinFAT32MiB for FAT32).
type DataSizeError struct {
	Dir     string // the directory the image would hold
	SizeMiB int    // the size asked for
	NeedMiB int64  // the smallest size that holds it
}

// Error says the size asked for and the size needed.
func (e *DataSizeError) Error() string {
	return fmt.Sprintf("data image of %d MiB is too small: %s needs at least %d MiB", e.SizeMiB, e.Dir, e.NeedMiB)
}

// maxFAT32 is the largest FAT32 volume made: go-diskfs v1.9.4 keeps the
// sectors per FAT in 16 bits, which hold the FAT of 256 GiB in 32 KiB
// clusters; above, the count wraps and the FAT it writes is far too short
// for the volume (or empty, and it panics).
const maxFAT32 = MaxFAT32MiB << 20

// MaxFAT32MiB is the size of the largest FAT32 data image, in MiB: see
// maxFAT32.
const MaxFAT32MiB = 256 << 10

// BuildDataImage writes a disk image at outPath holding the files and
// directories under dir, as FAT32 (fs "fat32" or "") or ISO 9660 with Rock
// Ridge ("iso9660", every file owned by 0:0), sized to the content, each
// entry with its host modification time (see DataOptions.Time). The image is written to a
// temporary file and renamed over outPath, which it replaces if present.
// Symlinks, device nodes and other special files are refused: neither file
// system can hold them.
func BuildDataImage(dir, outPath, fs string) error {
	return BuildDataImageSize(dir, outPath, fs, 0)
}

// dataEntry is one host path to copy into a data image.
type dataEntry struct {
	rel      string // slash-separated, relative to the shared directory
	dir      bool
	size     int64
	dev, ino uint64    // the entry scanned: the copy refuses another in its place
	mtime    time.Time // the host entry's, which the image's entry carries
}

// scanData lists the entries under root, but those in omit (the same
// device and inode) are left out, a directory with all it holds. With fat (FAT32), each name is
// checked for what go-diskfs would store (see fatDir): a name it would
// change, or two names that would be one entry, are refused, before any
// image is written.
//
// The walk goes through directory descriptors and never follows a symlink
// (see hostdir): a user who can write in the directory cannot make a
// build running as root list, or block on, anything outside it.
func scanData(root *hostdir.Dir, fat bool, omit []hostdir.Stat) ([]dataEntry, error) {
	var es []dataEntry
	var walk func(d *hostdir.Dir, rel string) error
	walk = func(d *hostdir.Dir, rel string) error {
		names, err := d.Names()
		if err != nil {
			if u := unreadable(d.Path(), true, err); u != nil {
				return u
			}
			return err
		}
		fd := newFATDir(d.Path(), rel == "")
		for _, name := range names {
			r, hp := path.Join(rel, name), d.Join(name)
			st, err := d.Lstat(name)
			if err == nil && omitted(&st, omit) {
				continue
			}
			if fat {
				if err := fd.add(name); err != nil {
					return err
				}
			}
			if err != nil {
				// A directory that may be listed but not searched
				// (r without x) shows its names and no more.
				if u := unreadable(d.Path(), true, err); u != nil {
					return u
				}
				return fmt.Errorf("reading %s: %w", hp, err)
			}
			m := hostdir.Mode(&st)
			e := dataEntry{rel: r, dir: m.IsDir(), dev: st.Dev, ino: st.Ino, mtime: st.Mtim.Time()}
			switch {
			case m.IsDir():
				sub, st, err := d.OpenDir(name)
				if err != nil {
					if u := unreadable(hp, true, err); u != nil {
						return u
					}
					return fmt.Errorf("reading %s: %w", hp, err)
				}
				e.dev, e.ino, e.mtime = st.Dev, st.Ino, st.Mtim.Time()
				es = append(es, e)
				err = walk(sub, r)
				sub.Close()
				if err != nil {
					return err
				}
			case m.IsRegular():
				// Opened now, so that a file this process may not read
				// is said before any image is written; any other fault
				// is the copy's to find (it checks what it opens).
				f, _, err := d.OpenFile(name)
				if err == nil {
					f.Close()
				} else if u := unreadable(hp, false, err); u != nil {
					return u
				}
				if st.Size > maxDataFileSize {
					return fmt.Errorf("%w: %s is %d bytes, past the %d bytes a FAT32 or ISO 9660 file holds (one 32-bit size); split it, or give the guest a disk image of its own", ErrDataFileTooLarge, hp, st.Size, uint64(maxDataFileSize))
				}
				e.size = st.Size
				es = append(es, e)
			default:
				advice := "leave it out"
				if m&fs.ModeSymlink != 0 {
					advice = "copy its target instead"
				}
				return fmt.Errorf("%s is %s: data disks (FAT32, ISO 9660) hold only files and directories; %s", hp, filekind.Of(m), advice)
			}
		}
		return nil
	}
	return es, walk(root, "")
}

// maxDataFileSize is the largest file FAT32 and single-extent ISO 9660
// hold: their directory entries keep a file's size in 32 bits, and a
// larger one would be written with its size wrapped, its end lost.
const maxDataFileSize = 1<<32 - 1

// ErrDataFileTooLarge: a file of a data directory is larger than a data
// image's file system holds.
var ErrDataFileTooLarge = errors.New("file too large for a data image")

// omitted reports whether st is the same file as one in omit.
func omitted(st *hostdir.Stat, omit []hostdir.Stat) bool {
	for _, o := range omit {
		if st.Dev == o.Dev && st.Ino == o.Ino {
			return true
		}
	}
	return false
}

// openDataRoot opens the directory a data image holds. A symlink naming
// it is followed (the user named it), once: scan and copy both go through
// the descriptor, so a directory renamed or swapped for a symlink after
// this open is never reached.
func openDataRoot(dir string) (*hostdir.Dir, error) {
	root, _, err := hostdir.OpenRoot(dir)
	if errors.Is(err, unix.ENOTDIR) {
		return nil, fmt.Errorf("data directory %s is not a directory", dir)
	}
	if u := unreadable(dir, true, err); u != nil {
		return nil, u
	}
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	return root, nil
}

// dataSize estimates the image size for es: content rounded to 4 KiB
// clusters, 4 KiB per directory and per 100 names, plus a tenth and 1 MiB.
func dataSize(es []dataEntry, fsType string) int64 {
	var n int64
	for _, e := range es {
		n += (e.size+4095)&^4095 + 256
		if e.dir {
			n += 4096
		}
	}
	n += n/10 + 1<<20
	if fsType == DataFAT32 {
		n = max(n, minFAT32)
	}
	return (n + 1<<20 - 1) &^ (1<<20 - 1)
}

// BuildDataImageSize is BuildDataImage with the image size given in MiB;
// 0 sizes it to the content. A size too small for the content is an error
// that says how many MiB are needed.
func BuildDataImageSize(dir, outPath, fsType string, sizeMB int) error {
	return BuildDataImageContext(context.Background(), dir, outPath, fsType, sizeMB)
}

// BuildDataImageContext is BuildDataImageSize stopped by ctx: between
// files, within each file's copy and up to the rename that puts the
// image in place. A stopped build leaves outPath as it was and no
// temporary file, and returns an error wrapping ctx's.
func BuildDataImageContext(ctx context.Context, dir, outPath, fsType string, sizeMB int) error {
	return buildDataImage(ctx, dir, outPath, fsType, sizeMB, DataOptions{Force: true}, false, nil)
}

// DataOptions says what BuildDataImageOptions may replace at its output
// path, as Config's Force and Replace do for a root image.
type DataOptions struct {
	// Force allows replacing an existing file at the output path.
	// Without it, a file there when the build begins, or one that
	// appears while the image is written, is left as it is (an error
	// matching ErrExists).
	Force bool
	// Replace, when set with Force, is asked right before the new image
	// is put in place whether the file then at the output path, open
	// read-only, may be replaced (atomicfile.ReplaceIf): its error
	// leaves that file as it is, the new image discarded. A lock it takes
	// on the file is held until the new image is in place. With no file
	// there then, the new image replaces none that appears meanwhile.
	Replace func(old *os.File) error
	// Time is the time of the image's root directory and volume (the
	// FAT32 label, the ISO 9660 volume descriptor's creation and
	// modification); the zero Time is the build's start. Every other
	// entry carries its host file's or directory's modification time, so
	// that the same directory with the same times and the same Time
	// gives the same image, byte for byte, whoever builds it, in whatever
	// time zone. Times are written in UTC, clamped to what the file
	// system stores (FAT32: 1980-01-01 to 2107-12-31; ISO 9660: 1900 to
	// 2155).
	Time time.Time
}

// BuildDataImageOptions is BuildDataImageContext replacing only what opts
// allow: the data image takes long enough to write for the file at
// outPath to be put to another use meanwhile (a VM's disk).
func BuildDataImageOptions(ctx context.Context, dir, outPath, fsType string, sizeMB int, opts DataOptions) error {
	return buildDataImage(ctx, dir, outPath, fsType, sizeMB, opts, false, nil)
}

// BuildDataImageTemporary is BuildDataImageContext for an image at
// outPath that is new and empty while dir is read (a temporary file made
// for one VM's run, removed once the VM holds it): one lying inside dir
// is left out of the image rather than refused, as it holds nothing of a
// previous build. outPath inside dir holding anything, or not a regular
// file, is refused as BuildDataImageContext refuses it.
//
// leaveOut names the other temporaries of the same run (the directories
// holding its images, this one's among them): each found in dir (the same
// device and inode) is left out of the image with all it holds, so that
// no image holds another. Each must exist.
func BuildDataImageTemporary(ctx context.Context, dir, outPath, fsType string, sizeMB int, leaveOut ...string) error {
	var omit []hostdir.Stat
	for _, p := range leaveOut {
		st, err := hostdir.StatPath(p)
		if err != nil {
			return fmt.Errorf("temporary %s: %w", p, err)
		}
		omit = append(omit, st)
	}
	return buildDataImage(ctx, dir, outPath, fsType, sizeMB, DataOptions{Force: true}, true, omit)
}

// buildDataImage is BuildDataImageOptions; with temporary, an empty
// outPath inside dir is left out of the image, and so is every entry of
// dir with the device and inode of one in omit (BuildDataImageTemporary).
func buildDataImage(ctx context.Context, dir, outPath, fsType string, sizeMB int, opts DataOptions, temporary bool, omit []hostdir.Stat) error {
	if fsType == "" {
		fsType = DataFAT32
	}
	var typ filesystem.Type
	switch fsType {
	case DataFAT32:
		typ = filesystem.TypeFat32
	case DataISO9660:
		typ = filesystem.TypeISO9660
	default:
		return fmt.Errorf("data file system %q: want %s or %s", fsType, DataFAT32, DataISO9660)
	}
	if !opts.Force {
		// Said before the directory is read, as for a root image.
		if _, err := os.Stat(outPath); err == nil {
			return fmt.Errorf("data image %s %w: remove it, or set DataOptions.Force to replace it", outPath, ErrExists)
		}
	}
	if err := CheckOutputNotInput(outPath, dir); err != nil {
		switch st, serr := hostdir.StatPath(outPath); {
		case !temporary:
			return err
		case errors.Is(serr, unix.ENOENT):
			// Made after the scan: it is not read.
		case serr != nil || st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size != 0:
			return err
		default:
			omit = append(omit, st)
		}
	}
	root, err := openDataRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	es, err := scanData(root, typ == filesystem.TypeFat32, omit)
	if err != nil {
		return err
	}
	size := dataSize(es, fsType)
	if sizeMB > 0 {
		if int64(sizeMB)<<20 < size {
			return &DataSizeError{Dir: dir, SizeMiB: sizeMB, NeedMiB: size >> 20}
		}
		size = int64(sizeMB) << 20
	}
	if typ == filesystem.TypeFat32 && size > maxFAT32 {
		return fmt.Errorf("data image of %d MiB: FAT32 volumes are made up to %d MiB", size>>20, maxFAT32>>20)
	}
	if afterDataScan != nil {
		afterDataScan()
	}
	var commit []atomicfile.Option
	switch {
	case !opts.Force:
		commit = append(commit, atomicfile.NoReplace())
	case opts.Replace != nil:
		commit = append(commit, atomicfile.ReplaceIf(opts.Replace))
	}
	vol := opts.Time
	if vol.IsZero() {
		vol = time.Now()
	}
	err = writeAtomically(ctx, outPath, func(f *os.File) error {
		return writeDataImage(ctx, f, root, es, fsType, size, vol)
	}, commit...)
	var ee *atomicfile.ExistsError
	if !opts.Force && errors.As(err, &ee) {
		return fmt.Errorf("data image %s %w: it appeared while the image was written and is left as it is, the new image discarded: remove it, or set DataOptions.Force to replace it", outPath, ErrExists)
	}
	return err
}

// UnreadableError is the error for an entry of a data directory that
// this process may not read: a file it cannot open, a directory it cannot
// list or look into. The scan finds it before any image is written.
type UnreadableError struct {
	Path string // host path of the entry
	Dir  bool   // a directory, not a file
	Err  error  // the system's error, matching fs.ErrPermission
}

// Error names the entry, its kind and why it cannot be read.
func (e *UnreadableError) Error() string {
	kind := "file"
	if e.Dir {
		kind = "directory"
	}
	return fmt.Sprintf("%s %s cannot be read: %v", kind, e.Path, errnoText(e.Err))
}

// Unwrap is the system's error.
func (e *UnreadableError) Unwrap() error { return e.Err }

// errnoText is err without the operation and path a *fs.PathError adds
// ("permission denied", not "open X: permission denied").
func errnoText(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// unreadable is err as an *UnreadableError of path when it is a refused
// permission, else nil.
func unreadable(path string, dir bool, err error) error {
	if !errors.Is(err, fs.ErrPermission) {
		return nil
	}
	return &UnreadableError{Path: path, Dir: dir, Err: err}
}

// afterDataScan, when set (by tests), runs between the scan that plans a
// data image and the copy that fills it: there it can change the
// directory as a racing user could.
var afterDataScan func()

// writeDataImage makes a file system of size bytes and type fsType in f and
// copies es, the entries scanData listed under root, into it; vol is the
// time of its root and volume (DataOptions.Time).
func writeDataImage(ctx context.Context, f *os.File, root *hostdir.Dir, es []dataEntry, fsType string, size int64, vol time.Time) error {
	typ := filesystem.TypeFat32
	if fsType == DataISO9660 {
		typ = filesystem.TypeISO9660
	}
	if err := f.Truncate(size); err != nil {
		return err
	}
	// The file systems are made directly, not through go-diskfs's
	// disk package, which links (and initialises at every smolvmm
	// start) every file system and partition table it knows.
	rec := &recordingFile{File: f}
	b := dataStorage(rec)
	err := fillDataImage(ctx, f, b, root, es, fsType, typ, size, vol)
	if err != nil && rec.err != nil && !errors.Is(err, rec.err) {
		// go-diskfs words the image's write errors with %v: the
		// image file's own error is kept beside it, so that a full
		// disk (ENOSPC) is known as one.
		return withCause{err, rec.err}
	}
	return err
}

// withCause is an error whose text already tells its cause, which it
// also unwraps to.
type withCause struct{ err, cause error }

func (w withCause) Error() string   { return w.err.Error() }
func (w withCause) Unwrap() []error { return []error{w.err, w.cause} }

// recordingFile is the image file as go-diskfs writes it, keeping the
// first write error, whose kind go-diskfs's messages drop.
type recordingFile struct {
	*os.File
	err error
}

func (r *recordingFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := r.File.WriteAt(p, off)
	if err != nil && r.err == nil {
		r.err = err
	}
	return n, err
}

// fillDataImage makes the file system in b, the backend of f, and copies
// es into it, with vol the time of its root and volume.
func fillDataImage(ctx context.Context, f *os.File, b backend.Storage, root *hostdir.Dir, es []dataEntry, fsType string, typ filesystem.Type, size int64, vol time.Time) error {
	var fsys filesystem.FileSystem
	var err error
	var work string
	if typ == filesystem.TypeISO9660 {
		var done func()
		if work, done, err = isoWorkTree(); err != nil {
			return fmt.Errorf("making the ISO 9660 work tree: %w", err)
		}
		defer done()
		fsys, err = iso9660.Create(b, size, 0, 2048, work) // ISO 9660 logical blocks
	} else {
		fsys, err = fat32.Create(b, size, 0, 512, DataLabel, true)
	}
	if err != nil {
		return fmt.Errorf("creating %s file system of %d bytes: %w", fsType, size, err)
	}
	w, err := b.Writable()
	if err != nil {
		return err
	}
	if err := copyData(ctx, fsys, w, root, es, work); err != nil {
		return err
	}
	if iso, ok := fsys.(*iso9660.FileSystem); ok {
		if err := iso.Finalize(iso9660.FinalizeOptions{RockRidge: true, DeepDirectories: true, VolumeIdentifier: DataLabel}); err != nil {
			return fmt.Errorf("writing ISO 9660 image: %w", err)
		}
		if err := fixISOContinuations(f); err != nil {
			return err
		}
		if err := fixISORecords(f, newDataTimes(es, vol, nil)); err != nil {
			return err
		}
		return trimISO(f)
	}
	if err := fixFAT32(f); err != nil {
		return err
	}
	return setFAT32Times(f, newDataTimes(es, vol, strings.ToUpper))
}

// dataTimes are the times a data image's entries carry, by their paths
// in the image: "/" the root's, the image's Time; "/sub/f" that of the
// entry scanned as "sub/f", its host modification time. The image's
// records are dated from these, matched by name as they are walked, not
// from what go-diskfs wrote: it dates them from its own copies, and
// writes FAT32 times from SOURCE_DATE_EPOCH and ISO 9660 times in the
// builder's zone.
type dataTimes struct {
	byKey map[string]time.Time
	key   func(string) string // a path as byKey holds it; nil: as it is
}

// newDataTimes is the dataTimes of es, the entries scanned, with vol
// the root's time; key, when not nil, is applied to every path, the keys
// and those looked up (FAT names ignore case).
func newDataTimes(es []dataEntry, vol time.Time, key func(string) string) dataTimes {
	d := dataTimes{byKey: make(map[string]time.Time, len(es)+1), key: key}
	d.byKey[d.keyOf("/")] = vol
	for _, e := range es {
		d.byKey[d.keyOf("/"+e.rel)] = e.mtime
	}
	return d
}

// keyOf is p as byKey holds it.
func (d dataTimes) keyOf(p string) string {
	if d.key == nil {
		return p
	}
	return d.key(p)
}

// at is the time of the entry at p in the image: one with no entry
// scanned is an error (the image holds something the directory did not).
func (d dataTimes) at(p string) (time.Time, error) {
	t, ok := d.byKey[d.keyOf(p)]
	if !ok {
		return time.Time{}, fmt.Errorf("data image: %s has no entry in the directory scanned, so no time", p)
	}
	return t, nil
}

// dataStorage is the storage a data image's file system is made on; tests
// replace it to watch the writes.
var dataStorage = func(f fs.File) backend.Storage { return file.New(f, false) }

// copyData copies es into fsys, each entry opened beneath its parent's
// descriptor as scanData found it; img is the image fsys is on, where a
// FAT32 file's content is written in place. An entry that is no longer what the
// scan saw (another type, another file, another size) is refused with a
// *changedError: the image's layout was planned from the scan, and a
// symlink or FIFO swapped in must be neither followed nor opened
// blocking. work is the ISO 9660 work tree go-diskfs copies into ("" for
// FAT32): see isoMode.
func copyData(ctx context.Context, fsys filesystem.FileSystem, img io.WriterAt, root *hostdir.Dir, es []dataEntry, work string) error {
	type openDir struct {
		rel string
		d   *hostdir.Dir
	}
	// The directories from root down to the last entry's parent: es is
	// in walk order, so each entry's parent is on the stack.
	stack := []openDir{{"", root}}
	dirs := newFATDirPaths(fsys)
	defer func() {
		for _, o := range stack[1:] {
			o.d.Close()
		}
	}()
	for _, e := range es {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("data image stopped: %w", err)
		}
		parent, name := path.Split(e.rel)
		parent = strings.TrimSuffix(parent, "/")
		for len(stack) > 1 && stack[len(stack)-1].rel != parent {
			stack[len(stack)-1].d.Close()
			stack = stack[:len(stack)-1]
		}
		d := stack[len(stack)-1].d
		p := "/" + e.rel
		if e.dir {
			sub, st, err := d.OpenDir(name)
			if err != nil {
				return openError(d.Join(name), fs.ModeDir, err)
			}
			stack = append(stack, openDir{e.rel, sub})
			if st.Dev != e.dev || st.Ino != e.ino {
				return &changedError{path: d.Join(name), was: fs.ModeDir, now: "it is now another directory"}
			}
			if err := fsys.Mkdir(dirs.path(e.rel)); err != nil {
				return fmt.Errorf("mkdir %s in data image: %w", p, err)
			}
			if err := dirs.made(fsys, e.rel); err != nil {
				return err
			}
			if err := isoMode(work, p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := copyDataFile(ctx, fsys, img, d, name, e, dirs.path(e.rel)); err != nil {
			return err
		}
		if err := isoMode(work, p, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// isoMode sets the mode of p in work, the tree go-diskfs builds an ISO 9660
// image from (nothing for "", FAT32). go-diskfs makes its directories and
// files there with 0755 and 0644 less the umask, and Rock Ridge takes their
// modes from there: under umask 077 the guest's users could read none of
// them. A directory's mode is set before anything is made in it.
func isoMode(work, p string, mode fs.FileMode) error {
	if work == "" {
		return nil
	}
	if err := os.Chmod(filepath.Join(work, filepath.FromSlash(p)), mode); err != nil {
		return fmt.Errorf("setting the mode of %s in the ISO 9660 work tree: %w", p, err)
	}
	return nil
}

// changedError is the error for an entry of a data directory that changed
// between the scan and the copy.
type changedError struct {
	path string
	was  fs.FileMode // its type when scanned
	now  string      // what it is now, when err does not say
	err  error
}

func (e *changedError) Error() string {
	var ke *hostdir.KindError
	now := e.now
	switch {
	case errors.As(e.err, &ke) && ke.Err == nil:
		now = "it is now " + filekind.Of(ke.Mode)
	case e.err != nil:
		now = e.err.Error()
	}
	return fmt.Sprintf("%s changed while the image was built (it was %s when scanned): %s", e.path, filekind.Of(e.was), now)
}

func (e *changedError) Unwrap() error { return e.err }

// openError is the error for the entry at path, scanned as of type was,
// that the copy could not open: a change since the scan (another kind of
// file there, or none) is one; a permission refused since is that; any
// other fault is said as what it is.
func openError(path string, was fs.FileMode, err error) error {
	var ke *hostdir.KindError
	switch {
	case errors.As(err, &ke), errors.Is(err, fs.ErrNotExist):
		return &changedError{path: path, was: was, err: err}
	case errors.Is(err, fs.ErrPermission):
		return &UnreadableError{Path: path, Dir: was == fs.ModeDir, Err: err}
	}
	return err // hostdir's: "open PATH: too many open files"
}

// ctxReader is r, failing with ctx's error once ctx is done: a large
// file's copy stops within one read.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// copyDataFile copies the regular file name of d, which the scan found
// as e, to p in fsys (on img): exactly e.size bytes, read from the
// descriptor whose type, identity and size were checked.
func copyDataFile(ctx context.Context, fsys filesystem.FileSystem, img io.WriterAt, d *hostdir.Dir, name string, e dataEntry, p string) error {
	hp := d.Join(name)
	in, st, err := d.OpenFile(name)
	if err != nil {
		return openError(hp, 0, err)
	}
	defer in.Close()
	if st.Dev != e.dev || st.Ino != e.ino {
		return &changedError{path: hp, now: "it is now another file"}
	}
	if st.Size != e.size {
		return &changedError{path: hp, now: fmt.Sprintf("it had %d bytes and now has %d bytes", e.size, st.Size)}
	}
	out, err := fsys.OpenFile(p, os.O_CREATE|os.O_RDWR|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("creating %s in data image: %w", p, err)
	}
	// Read through ctxReader (which has no WriterTo for io.Copy to take
	// instead), so that the copy stops with ctx. What the file grows by
	// from here on is left out: the image holds the size planned.
	src := ctxReader{ctx, io.LimitReader(in, e.size)}
	var n int64
	if fat, ok := fsys.(*fat32.FileSystem); ok {
		n, err = copyFAT32File(out, src, e.size, img, fat.Start())
	} else {
		n, err = io.Copy(out, src)
	}
	if err == nil && n < e.size {
		err = &changedError{path: hp, now: fmt.Sprintf("it had %d bytes and shrank to %d bytes while it was copied", e.size, n)}
	}
	if err != nil {
		out.Close()
		return fmt.Errorf("copying %s into data image at %s: %w", hp, p, err)
	}
	if err := out.Close(); err != nil && !errors.Is(err, filesystem.ErrNotSupported) {
		return fmt.Errorf("closing %s in data image: %w", p, err)
	}
	return nil
}

// copyFAT32File copies size bytes from r into out, a new file of a FAT32
// file system at byte start of img. go-diskfs, given the file in pieces,
// walks the file's whole cluster chain, scans the FAT from its start for
// free clusters and writes both FATs whole at each piece: time quadratic
// in the file's size (100 MiB took 20 s). Here one write of the last
// byte has it allocate the whole chain, the same clusters in the same
// order, and write the FATs once; the content then goes straight to the
// clusters' places in img. It returns the bytes copied, fewer than size
// if r ended early.
func copyFAT32File(out filesystem.File, r io.Reader, size int64, img io.WriterAt, start int64) (int64, error) {
	if size == 0 {
		return 0, nil
	}
	rf, ok := out.(interface {
		GetDiskRanges() ([]fat12.DiskRange, error)
	})
	if !ok {
		return 0, fmt.Errorf("FAT32 file is a %T, which does not tell where its clusters are", out)
	}
	if _, err := out.Seek(size-1, io.SeekStart); err != nil {
		return 0, err
	}
	if _, err := out.Write([]byte{0}); err != nil {
		return 0, err
	}
	ranges, err := rf.GetDiskRanges()
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 1<<20)
	var n int64
	for _, rg := range ranges {
		off := start + int64(rg.Offset)
		for left := min(int64(rg.Length), size-n); left > 0; {
			m, err := io.ReadFull(r, buf[:min(int64(len(buf)), left)])
			if m > 0 {
				if _, werr := img.WriteAt(buf[:m], off); werr != nil {
					return n, fmt.Errorf("writing %d bytes at byte %d of the image: %w", m, off, werr)
				}
			}
			n, off, left = n+int64(m), off+int64(m), left-int64(m)
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return n, nil
			}
			if err != nil {
				return n, err
			}
		}
	}
	if n < size {
		return n, fmt.Errorf("the FAT32 file has room for %d of its %d bytes", n, size)
	}
	return n, nil
}

// trimISO cuts an ISO image to the volume size its primary volume
// descriptor records (go-diskfs writes into the pre-sized file).
func trimISO(f *os.File) error {
	pvd := make([]byte, 2048)
	if _, err := f.ReadAt(pvd, 16*2048); err != nil {
		return fmt.Errorf("reading back the ISO volume descriptor: %w", err)
	}
	if pvd[0] != 1 || string(pvd[1:6]) != "CD001" {
		return fmt.Errorf("ISO image has no primary volume descriptor at sector 16")
	}
	blocks := int64(binary.LittleEndian.Uint32(pvd[80:]))
	bsz := int64(binary.LittleEndian.Uint16(pvd[128:]))
	if n := blocks * bsz; n > 0 {
		if st, err := f.Stat(); err == nil && n < st.Size() {
			return f.Truncate((n + 511) &^ 511)
		}
	}
	return nil
}

// FAT's dates run from 1980-01-01 to 2107-12-31 (a 7-bit year from 1980,
// two-second times): a time outside is written as the nearest end, where
// go-diskfs wrapped the year (1970 was 2098).
var (
	fatMinTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
	fatMaxTime = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
)

// putFATTime writes t, clamped to FAT's range, as the creation,
// modification and access time of the short-name directory entry e. FAT
// records no time zone: UTC is written, as NetBSD's msdosfs reads it in
// a guest whose clock is UTC, and the image does not depend on the
// builder's TZ.
func putFATTime(e []byte, t time.Time) {
	t = t.UTC()
	if t.Before(fatMinTime) {
		t = fatMinTime
	}
	if t.After(fatMaxTime) {
		t = fatMaxTime
	}
	date := uint16(t.Year()-1980)<<9 | uint16(t.Month())<<5 | uint16(t.Day())
	tm := uint16(t.Hour())<<11 | uint16(t.Minute())<<5 | uint16(t.Second()/2)
	le := binary.LittleEndian
	e[13] = byte(t.Second()%2) * 100 // creation's hundredths of a second: the odd second
	le.PutUint16(e[14:], tm)
	le.PutUint16(e[16:], date)
	le.PutUint16(e[18:], date) // last access: a date only
	le.PutUint16(e[22:], tm)
	le.PutUint16(e[24:], date)
}

// setFAT32Times sets the times of every entry of the FAT32 volume in f,
// the volume label's and the dot entries' included: go-diskfs dates them
// from SOURCE_DATE_EPOCH when it is set, read from the environment behind
// its caller's back, and wrapped the year of one before 1980. Each entry
// gets the time times has for its path in the volume ("/SUB/F"; "/" the
// root, whose time the label and the root's ".." entries take).
func setFAT32Times(f *os.File, times dataTimes) error {
	v, err := readFAT32(f)
	if err != nil {
		return err
	}
	var missing error
	at := func(p string) time.Time {
		t, err := times.at(p)
		if err != nil && missing == nil {
			missing = err
		}
		return t
	}
	var walk func(first uint32, dir string) error
	walk = func(first uint32, dir string) error {
		cs, err := v.chain(first)
		if err != nil {
			return err
		}
		cb := v.spc * v.bps
		buf := make([]byte, int64(len(cs))*cb)
		for i, c := range cs {
			if _, err := f.ReadAt(buf[int64(i)*cb:int64(i+1)*cb], v.dataStart+int64(c-2)*cb); err != nil {
				return fmt.Errorf("reading directory cluster %d: %w", c, err)
			}
		}
		var subdirs []uint32
		var names []string
		var lfn []int
		for i := 0; i+32 <= len(buf) && buf[i] != 0; i += 32 {
			e := buf[i : i+32]
			switch {
			case e[0] == 0xe5:
				lfn = nil
				continue
			case e[11] == attrLFN:
				lfn = append(lfn, i)
				continue
			}
			name := fatEntryName(buf, e, lfn)
			lfn = nil
			switch {
			case e[11]&attrVolumeID != 0:
				putFATTime(e, at("/"))
			case name == ".":
				putFATTime(e, at(dir))
			case name == "..":
				putFATTime(e, at(path.Dir(dir)))
			default:
				p := path.Join(dir, name)
				putFATTime(e, at(p))
				if e[11]&attrDir != 0 {
					subdirs, names = append(subdirs, entryCluster(e)), append(names, p)
				}
			}
		}
		if missing != nil {
			return missing
		}
		for i, c := range cs {
			if _, err := f.WriteAt(buf[int64(i)*cb:int64(i+1)*cb], v.dataStart+int64(c-2)*cb); err != nil {
				return fmt.Errorf("writing directory cluster %d: %w", c, err)
			}
		}
		for i, c := range subdirs {
			if err := walk(c, names[i]); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(v.root, "/")
}

// fatEntryName is the name of the short-name entry e of dir: its long
// name, held by the long-name entries at offsets lfn, or its short name.
func fatEntryName(dir, e []byte, lfn []int) string {
	if len(lfn) > 0 {
		return longName(dir, lfn)
	}
	name := strings.TrimRight(string(e[:8]), " ")
	if ext := strings.TrimRight(string(e[8:11]), " "); ext != "" {
		name += "." + ext
	}
	return name
}
