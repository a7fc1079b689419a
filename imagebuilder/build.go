// Package imagebuilder builds NetBSD root images without root: it reads
// release sets into an in-memory tree (fstree), lays a service over it
// (service), runs the service's postinst scripts on a staging copy, and
// writes an ext2 file system (ext2) to a temporary file that is renamed
// into place only when complete. It also builds data disks (FAT32 or
// ISO 9660) from host directories for sharing files with a guest.
package imagebuilder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/filekind"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/internal/termsafe"
	"github.com/smolvmm/smolvmm/service"
)

// Config describes one root image.
type Config struct {
	// Sets are paths of set archives (.tgz, .tar.xz, .tar) or directories,
	// read in order: a later set's entry replaces an earlier one.
	Sets []string
	// Service is laid over the sets; required.
	Service *service.Service
	// Arch is the NetBSD port the sets are for (ArchI386 or ArchAMD64),
	// which decides the /dev numbers. BuildTree refuses sets whose init
	// is an ELF program for another port (InitArchError). When Arch is
	// "", BuildTree sets it to the port of that init; with no ELF init
	// (a "#!" script) it stays "", which is DefaultArch.
	Arch string
	// SizeMB is the image size in MiB; 0 sizes it to the content plus headroom.
	SizeMB int
	// FixedSize says an image of SizeMB (not 0) is what will be
	// written, never one sized to the content instead: BuildTree then
	// stops reading the sets, with a *ext2.TooSmallError, once their
	// files' data takes more room than twice the image and 64 MiB,
	// rather than hold it all in memory for WriteImage to refuse (sets
	// a little too large are read whole, and WriteImage's error says
	// what they need). Without it a
	// caller may write the tree sized to its content when SizeMB turns
	// out too small, and the sets may hold up to MaxAutoData or, when
	// larger, SizeMB. Build sets it.
	FixedSize bool
	// Timestamp (Unix seconds) goes in the superblock and on every file
	// whose set gives no mtime; 0 means now unless TimestampSet. One
	// outside fstree.MinTime..MaxTime is refused (ext2.CheckTimestamp).
	Timestamp int64
	// TimestampSet makes a Timestamp of 0 mean 1970-01-01T00:00:00Z.
	TimestampSet bool
	// Force allows replacing an existing image file. Without it, an
	// image file that appears while the image is written is left as it
	// is too (an error matching ErrExists).
	Force bool
	// Replace, when set with Force, is asked right before the new image
	// is put in place whether the file then at the image's path, open
	// read-only, may be replaced (atomicfile.ReplaceIf): its error
	// leaves that file as it is, the new image discarded. A lock it takes
	// on the file is held until the new image is in place. With no file
	// there then, the new image replaces none that appears meanwhile.
	Replace func(old *os.File) error
	// Progress, when set, is called while data blocks are written, with
	// bytes done and bytes in all.
	Progress func(done, total uint64)
	// ReadProgress, when set, is called while set files are read, with the
	// (compressed) bytes read so far and the size of all set files.
	ReadProgress func(done, total uint64)
	// Log receives the output of postinst scripts, and warnings about
	// what the sets hold that the image cannot keep exactly (a
	// modification time ext2 cannot store, clamped) and about the
	// service's files the build does not read (see
	// service.Service.Warnings), each line starting "warning: " (or
	// handed to its Warn method, when it is a Warner); nil discards them.
	// A write of a script's output that fails fails the build, once the
	// script has ended (ScriptLogError).
	Log io.Writer
}

// Warner is a Log that takes the build's warnings itself, to say them its
// own way (a program naming itself first), apart from the scripts'
// output, which comes to its Write as the scripts wrote it.
type Warner interface {
	// Warn is told one warning of the build, without a newline.
	Warn(msg string)
}

// warn says msg, a warning of the build, on log: to its Warn method when
// it has one, else as a line "warning: msg".
func warn(log io.Writer, msg string) {
	if w, ok := log.(Warner); ok {
		w.Warn(msg)
		return
	}
	fmt.Fprintf(log, "warning: %s\n", msg)
}

// MaxAutoData is the most file data (bytes: the files' content, less
// the 4 KiB runs of zeros kept as holes) BuildTree reads from the sets
// for an image sized to its content (Config.SizeMB 0), 2 GiB: a build
// holds the data in memory until the image is written, and a set of a
// few hundred KiB can decompress to gigabytes. NetBSD's base, comp, etc
// and man sets together hold some 650 MiB. For an image of a larger
// size given, the limit is its size instead, what it can hold, whether
// or not it may grow (Config.FixedSize); a fixed one is bounded by the
// room its files take too (see BuildTree).
const MaxAutoData = 2 << 30

// autoDataLimit is MaxAutoData (a variable: tests lower it).
var autoDataLimit int64 = MaxAutoData

// ErrTooMuchData is matched (errors.Is) by BuildTree's error for sets
// whose files hold more data than MaxAutoData and, when larger, than
// the image's Config.SizeMB, for an image that is, or may be, sized to
// its content (Config.FixedSize not set).
var ErrTooMuchData = errors.New("the sets hold more file data than is read into memory to build the image")

// Headroom is the free space added to an image sized to its content: a
// quarter of the content, and at least 4 MiB.
func Headroom(content int64) int64 { return max(content/4, 4<<20) }

// BuildTree reads the sets, applies the service overlay and runs the
// postinst scripts, returning the tree the image will hold; it fails when
// the scripts left no usable /etc/rc (see service.Validate), the tree
// has no init (FindInit) or no shell for it to run /etc/rc with
// (ShellError). It sets an empty cfg.Arch to the port of the sets' init
// (see Config.Arch). It stops when ctx is done, within the read of a set
// and while a postinst script runs (see RunPostinst), with an error
// matching ctx's. The sets' file data is held in memory: BuildTree stops
// reading them, with an error wrapping an *fstree.LimitError, once it
// passes MaxAutoData and cfg.SizeMB (ErrTooMuchData) or, with
// cfg.FixedSize, once it
// takes more room than twice an image of cfg.SizeMB and 64 MiB (an
// *ext2.TooSmallError, whose Needed is then the least the files read by
// then need).
func BuildTree(ctx context.Context, cfg *Config) (*fstree.Tree, error) {
	if cfg.Service == nil {
		return nil, fmt.Errorf("no service given")
	}
	if err := CheckArch(cfg.Arch); err != nil {
		return nil, err
	}
	if len(cfg.Sets) == 0 {
		return nil, fmt.Errorf("no sets given: name at least one set (e.g. rescue.tgz)")
	}
	if cfg.Log != nil {
		for _, w := range cfg.Service.Warnings() {
			warn(cfg.Log, w)
		}
	}
	t := fstree.New()
	t.DataLimit = dataLimit(cfg)
	if cfg.FixedSize && cfg.SizeMB > 0 {
		t.RoomLimit = fixedRoomLimit(int64(cfg.SizeMB) << 20)
		t.DataLimit = max(t.DataLimit, t.RoomLimit)
	}
	if err := readSets(ctx, t, cfg.Sets, cfg.ReadProgress); err != nil {
		return nil, dataLimitError(err, cfg)
	}
	if cfg.Log != nil {
		for _, w := range t.Warnings {
			warn(cfg.Log, "set "+w)
		}
	}
	// Sets for one port given as the other's would boot with the wrong
	// /dev numbers (amd64's ld0i as /dev/ld1a): init tells their port.
	port, err := initPort(t, cfg.Arch)
	if err != nil {
		return nil, err
	}
	if cfg.Arch == "" {
		cfg.Arch = port
	}
	if err := Overlay(t, cfg.Service, cfg.Arch); err != nil {
		return nil, err
	}
	if ctx.Err() != nil {
		return nil, ctxError(ctx)
	}
	if err := RunPostinst(ctx, t, cfg.Service, cfg.Log); err != nil {
		return nil, err
	}
	if err := checkRc(t, cfg.Service); err != nil {
		return nil, err
	}
	// An image without init only shows as the kernel's "panic: no init".
	initPath, err := FindInit(t)
	if err != nil {
		return nil, err
	}
	if err := checkShell(t, initPath); err != nil {
		return nil, err
	}
	return t, nil
}

// dataLimit is the most file data BuildTree reads from the sets for
// cfg, before a fixed image's room limit: autoDataLimit, or what an
// image of cfg.SizeMB can hold when that is more. An image that may
// grow past its size (up's, sized by its service) still holds all the
// size asks for.
func dataLimit(cfg *Config) int64 {
	return max(autoDataLimit, int64(cfg.SizeMB)<<20)
}

// fixedRoomLimit is the room in an image (bytes) past which the sets'
// files are not read for an image of size bytes that cannot grow: twice
// the image and 64 MiB, far enough past it that sets a little too large
// for it are read whole, and the image's "too small" says what they
// need, but near enough that sets that cannot fit are not all held in
// memory first.
func fixedRoomLimit(size int64) int64 { return 2*size + 64<<20 }

// dataLimitError is BuildTree's error err for sets whose data passed a
// limit of the tree (an *fstree.LimitError): for an image of a size
// given, an *ext2.TooSmallError; for one that may be sized to its
// content, ErrTooMuchData.
func dataLimitError(err error, cfg *Config) error {
	var le *fstree.LimitError
	if !errors.As(err, &le) {
		return err
	}
	if le.Room {
		const mib = 1 << 20
		small := &ext2.TooSmallError{Size: int64(cfg.SizeMB) << 20, Needed: (le.Have + mib - 1) &^ (mib - 1)}
		return fmt.Errorf("%w (%w)", small, err)
	}
	if cfg.FixedSize && cfg.SizeMB > 0 {
		return err
	}
	if limit := dataLimit(cfg); limit > autoDataLimit {
		return fmt.Errorf("%w (at most %d MiB, the image's size): %w", ErrTooMuchData, limit>>20, err)
	}
	return fmt.Errorf("%w (at most %d MiB, or for an image of a larger size given, its size): %w", ErrTooMuchData, autoDataLimit>>20, err)
}

// checkRc checks, once the postinst scripts have run, that t's /etc/rc is
// still what service.Validate asked of the service's: a non-empty regular
// file whose first line does not end in CR LF, without a UTF-8 byte order
// mark. Init runs it with sh at boot; without it the VM only shows init's
// complaint and a single-user shell. A symlink is followed inside the image, as the guest's kernel
// will (init's "sh /etc/rc" reads whatever it leads to), and is kept when
// it ends at such a file. Overlay made the file executable, and a script
// that dropped the bits has them set again.
func checkRc(t *fstree.Tree, s *service.Service) error {
	var problem string
	who := "/etc/rc" // what the problem is said of
	rc, err := t.Get("etc/rc")
	if err == nil && rc.Type == fstree.Symlink {
		who = fmt.Sprintf("/etc/rc is a symlink to %s, which", termsafe.Printable(rc.Target))
		if rc, err = resolve(t, "/etc/rc"); err != nil {
			// resolve names paths of the image, which a script's link
			// can fill with control characters.
			problem = fmt.Sprintf("%s leads to no file in the image (%s)", who, termsafe.Line(err.Error()))
		}
	}
	switch {
	case problem != "":
	case err != nil:
		problem = "/etc/rc is missing"
	case rc.Type != fstree.Regular:
		problem = fmt.Sprintf("%s is a %s, not a regular file", who, rc.Type)
	case rc.Size == 0:
		problem = who + " is empty"
	case service.HasBOM(rc.Content()):
		problem = who + " begins with a UTF-8 byte order mark (bytes EF BB BF), which sh would take as part of its first command"
	case service.FirstLineCRLF(rc.Content()):
		problem = who + " has CR LF (DOS) line endings (its first line ends in CR LF)"
	default:
		rc.Perm |= 0555
		return nil
	}
	const must = "the image's /etc/rc, which init runs at boot, must be a non-empty regular file with LF line endings and no byte order mark, or a symlink that leads to one in the image"
	scripts, _ := s.Postinst()
	for i, n := range scripts {
		scripts[i] = termsafe.Printable(n)
	}
	if len(scripts) == 0 {
		return fmt.Errorf("service %s: %s; %s", s.Name, problem, must)
	}
	// Validate checked the service's own etc/rc: only a script can have
	// changed it since.
	return fmt.Errorf("service %s: after its postinst scripts (%s) ran, %s; %s: what the scripts do to etc/rc is the likely cause",
		s.Name, strings.Join(scripts, ", "), problem, must)
}

// readSets reads each set into t, reporting progress over the set files.
// pathCause is a PathError's cause, for a message that names the path
// already ("set P: stat P: ..." said it twice).
func pathCause(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

func readSets(ctx context.Context, t *fstree.Tree, sets []string, progress func(done, total uint64)) error {
	var total uint64
	isDir := make([]bool, len(sets))
	for i, s := range sets {
		st, err := os.Stat(s)
		if errors.Is(err, fs.ErrPermission) {
			// A directory on the way the builder may not search: the
			// same cause as a set's entry it may not read.
			if ue := unsearchable(s, err); ue != nil {
				return &SetUnreachableError{Set: s, Err: ue}
			}
			return fmt.Errorf("set %s: %w", s, pathCause(err))
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", s, pathCause(err))
		}
		if !st.IsDir() && !st.Mode().IsRegular() {
			return &SetKindError{Path: s, Mode: st.Mode()}
		}
		if isDir[i] = st.IsDir(); !isDir[i] {
			total += uint64(st.Size())
		}
	}
	cr := &countingReader{ctx: ctx, total: total, progress: progress}
	for i, s := range sets {
		if ctx.Err() != nil {
			return ctxError(ctx)
		}
		if isDir[i] {
			if err := t.AddDirContext(ctx, s); err != nil {
				if ctx.Err() != nil {
					return ctxError(ctx)
				}
				// The set's own directory is named once.
				var ue *fstree.UnreadableError
				if errors.As(err, &ue) && ue.Path == termsafe.Printable(s) {
					return fmt.Errorf("set %w", err)
				}
				return fmt.Errorf("set %s: %w", s, err)
			}
			continue
		}
		// Not blocking on a FIFO put there since the Stat above: regfile
		// opens without waiting and refuses what is not a regular file.
		f, _, err := regfile.Open(s)
		if err != nil {
			return fmt.Errorf("set %s: %w", s, pathCause(err))
		}
		cr.r = f
		err = t.AddArchive(cr, s)
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// unsearchable is err, the refused stat of set path, as an
// *fstree.UnreadableError naming the first directory on the way that
// the builder may not search; nil when none is found (a symlink's target
// lies beyond it).
func unsearchable(path string, err error) *fstree.UnreadableError {
	path = filepath.Clean(path)
	dir := "."
	if filepath.IsAbs(path) {
		dir = "/"
	}
	for _, part := range strings.Split(strings.TrimPrefix(path, "/"), "/") {
		next := filepath.Join(dir, part)
		if _, lerr := os.Lstat(next); errors.Is(lerr, fs.ErrPermission) {
			return &fstree.UnreadableError{Path: termsafe.Printable(dir), Dir: true, Err: lerr}
		}
		dir = next
	}
	return nil
}

// SetUnreachableError is Build's error for a set below a directory the
// builder may not search: the set, a directory or an archive (which of
// the two cannot be told, as it cannot be reached), is refused before any
// is read. Err is an *fstree.UnreadableError naming that directory, and
// matches fs.ErrPermission.
type SetUnreachableError struct {
	Set string                  // the set as given
	Err *fstree.UnreadableError // the directory the builder may not search
}

// Error names the set and the directory that stops the way to it.
func (e *SetUnreachableError) Error() string { return fmt.Sprintf("set %s: %v", e.Set, e.Err) }

// Unwrap is the *fstree.UnreadableError.
func (e *SetUnreachableError) Unwrap() error { return e.Err }

// countingReader reports the bytes read through it, and stops reading
// once ctx is done.
type countingReader struct {
	ctx         context.Context
	r           io.Reader
	done, total uint64
	progress    func(done, total uint64)
}

// Read reads from the underlying reader and reports the running count.
func (c *countingReader) Read(p []byte) (int, error) {
	if c.ctx.Err() != nil {
		return 0, ctxError(c.ctx)
	}
	n, err := c.r.Read(p)
	c.done += uint64(n)
	if c.progress != nil && n > 0 {
		c.progress(c.done, c.total)
	}
	return n, err
}

// Build builds the image described by cfg at out. It writes to a temporary
// file beside out and renames it into place when complete, so out is never
// left half-written; an existing out is an error unless cfg.Force is set.
// A build stopped by ctx (see BuildTree and WriteImageContext) leaves out
// as it was and no temporary file. An image of cfg.SizeMB is never sized
// to its content instead: Build sets cfg.FixedSize.
func Build(ctx context.Context, cfg Config, out string) error {
	// Before the sets are read: ext2.Write would refuse it only after.
	if err := ext2.CheckTimestamp(cfg.Timestamp); err != nil {
		return err
	}
	if err := checkTarget(out, cfg.Force); err != nil {
		return err
	}
	if err := CheckOutputNotInput(out, cfg.Sets...); err != nil {
		return err
	}
	if err := CheckOutputNotInService(out, cfg.Service); err != nil {
		return err
	}
	cfg.FixedSize = true // the image written is of cfg.SizeMB
	t, err := BuildTree(ctx, &cfg)
	if err != nil {
		return err
	}
	return WriteImageContext(ctx, t, cfg, out)
}

// WriteImage writes tree t as an ext2 image at out (temporary file, then
// rename), sized by cfg.SizeMB or automatically.
func WriteImage(t *fstree.Tree, cfg Config, out string) error {
	return WriteImageContext(context.Background(), t, cfg, out)
}

// WriteImageContext is WriteImage stopped by ctx, between the writes of
// the image's blocks and up to the rename that puts the image in place
// (atomicfile.WriteContext): a stopped write leaves out as it was and no
// temporary file, and returns an error matching ctx's. The rename
// replaces only what cfg allows (Config.Force, Config.Replace).
func WriteImageContext(ctx context.Context, t *fstree.Tree, cfg Config, out string) error {
	if ctx.Err() != nil {
		return ctxError(ctx)
	}
	// Before a temporary file is made for the image.
	if err := ext2.CheckTimestamp(cfg.Timestamp); err != nil {
		return err
	}
	if err := checkTarget(out, cfg.Force); err != nil {
		return err
	}
	if err := CheckOutputNotInput(out, cfg.Sets...); err != nil {
		return err
	}
	if err := CheckOutputNotInService(out, cfg.Service); err != nil {
		return err
	}
	// The image is the VM's root: "/" in every superblock keeps them
	// alike once NetBSD has written it into the first (see LastMounted).
	opts := ext2.Options{Timestamp: cfg.Timestamp, TimestampSet: cfg.TimestampSet, Progress: cfg.Progress, Size: int64(cfg.SizeMB) << 20,
		LastMounted: "/"}
	if cfg.SizeMB == 0 {
		size, err := ext2.AutoSize(t, &opts, Headroom)
		if err != nil {
			return err
		}
		opts.Size = size
	}
	var commit []atomicfile.Option
	switch {
	case !cfg.Force:
		commit = append(commit, atomicfile.NoReplace())
	case cfg.Replace != nil:
		commit = append(commit, atomicfile.ReplaceIf(cfg.Replace))
	}
	err := writeAtomically(ctx, out, func(f *os.File) error { return ext2.Write(ctxFile{ctx, f}, t, opts) }, commit...)
	var ee *atomicfile.ExistsError
	if !cfg.Force && errors.As(err, &ee) {
		return fmt.Errorf("image %s %w: it appeared while the image was written and is left as it is, the new image discarded: remove it, or set Config.Force to replace it", out, ErrExists)
	}
	return err
}

// ctxFile is an image file whose writes fail once ctx is done. Its
// Truncate and Stat are the file's: ext2.Write extends a regular file
// with them.
type ctxFile struct {
	ctx context.Context
	*os.File
}

// WriteAt writes p at off, unless ctx is done.
func (f ctxFile) WriteAt(p []byte, off int64) (int, error) {
	if f.ctx.Err() != nil {
		return 0, ctxError(f.ctx)
	}
	return f.File.WriteAt(p, off)
}

// Revision names what Build makes of its inputs. Bump it in any change
// after which the same sets, service and Config build a different image
// (file content, modes, device nodes, layout), so that images built
// earlier from unchanged inputs are known to be stale: smolvmm up records
// it beside each image it builds and rebuilds on a difference.
//
// 2: amd64's /dev nodes (ksyms major 85, disk minors unit*16+part).
// 3: dotfiles of common/ keep their dot, a service directory's common/
// lies over the built-in one, and images get a quarter spare inodes.
// 4: /dev/bpf (dhcpcd's DHCP needs it).
const Revision = 4

// ErrSetKind is matched (errors.Is) by the error for a set that is
// neither a regular file (an archive) nor a directory: a FIFO would block
// the read, a device be read as an archive.
var ErrSetKind = errors.New("not a regular file or a directory")

// SetKindError is Build's error for a set of a kind it does not read.
type SetKindError struct {
	Path string      // the set as given
	Mode fs.FileMode // what stat says it is
}

// Error names the set and its kind.
func (e *SetKindError) Error() string {
	return fmt.Sprintf("set %s is %s: %v", e.Path, filekind.Of(e.Mode), ErrSetKind)
}

// Is makes errors.Is(err, ErrSetKind) true.
func (e *SetKindError) Is(target error) bool { return target == ErrSetKind }

// ErrExists is wrapped by the error of Build and WriteImage when a file
// is at the image's path, before the build or appearing while the image
// is written, and Config.Force is not set; and by that of
// BuildDataImageOptions, the same way, when DataOptions.Force is not set.
// The file is left as it is.
var ErrExists = errors.New("already exists")

// checkTarget refuses an existing out unless force, and a directory always.
func checkTarget(out string, force bool) error {
	st, err := os.Stat(out)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("image %s: %w", out, err)
	case st.IsDir():
		return fmt.Errorf("image %s is a directory", out)
	case !force:
		return fmt.Errorf("image %s %w: remove it, or set Config.Force to replace it", out, ErrExists)
	}
	return nil
}

// ErrOutputIsInput is matched (errors.Is) by the error for an image that
// is one of its build's inputs or lies inside an input directory.
var ErrOutputIsInput = errors.New("image is an input of its own build")

// OutputIsInputError is the error of Build, WriteImage and the data image
// builders for an image that is one of the build's inputs (a set file,
// also through a link, or a service's service.conf) or lies inside an
// input directory (a set directory, a service's etc/ or postinst/, its
// services directory's common/, the directory a data image holds):
// writing the image would overwrite what it is made of, or the image
// would be read into the next image built from that directory (growing
// with each build).
type OutputIsInputError struct {
	Image string // the image as given
	Input string // the input as given
	InDir bool   // Image lies inside the directory Input; else it is Input
}

// Error names the image and the input, and what writing it would do.
func (e *OutputIsInputError) Error() string {
	if e.InDir {
		return fmt.Sprintf("image %s is inside %s, which its build reads: the image would be read into the next image built from %s", e.Image, e.Input, e.Input)
	}
	return fmt.Sprintf("image %s is %s, which its build reads: writing the image would overwrite it", e.Image, e.Input)
}

// Is makes errors.Is(err, ErrOutputIsInput) true.
func (e *OutputIsInputError) Is(target error) bool { return target == ErrOutputIsInput }

// CheckOutputNotInput returns an *OutputIsInputError when the image out is
// one of inputs (the same file) or lies inside one that is a directory.
// Links are followed on both sides, as the build's write and reads follow
// them. An input that is not there, and an out whose place cannot be
// told, are left to the build's own checks, which refuse them.
func CheckOutputNotInput(out string, inputs ...string) error {
	img, ok := realOutput(out)
	if !ok {
		return nil
	}
	imgInfo, _ := os.Stat(out)
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			continue
		}
		if !st.IsDir() {
			if imgInfo != nil && os.SameFile(st, imgInfo) {
				return &OutputIsInputError{Image: out, Input: in}
			}
			continue
		}
		real, err := filepath.EvalSymlinks(in)
		if err == nil {
			real, err = filepath.Abs(real)
		}
		if err != nil {
			continue
		}
		if rel, err := filepath.Rel(real, img); err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return &OutputIsInputError{Image: out, Input: in, InDir: true}
		}
	}
	return nil
}

// CheckOutputNotInService returns an *OutputIsInputError when the image
// out lies among what a build of s reads from the host: the service's
// etc/ or postinst/, its service.conf, or the common/ of its services
// directory. The image would be read into the next image built from s
// (growing with each build), and changing it would change what the
// service is made of. A service without a Dir (an embedded one, or nil)
// reads nothing of the host.
func CheckOutputNotInService(out string, s *service.Service) error {
	if s == nil || s.Dir == "" {
		return nil
	}
	dir := filepath.Join(s.Dir, s.Name)
	return CheckOutputNotInput(out, filepath.Join(dir, "etc"), filepath.Join(dir, "postinst"), filepath.Join(dir, service.ConfigFile), filepath.Join(s.Dir, service.CommonDir))
}

// realOutput is the absolute path, links resolved, of the file writing
// path replaces or creates; false when that cannot be told.
func realOutput(path string) (string, bool) {
	target, err := atomicfile.Target(path)
	if err != nil {
		return "", false
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(target))
	if err != nil {
		return "", false
	}
	abs, err := filepath.Abs(filepath.Join(dir, filepath.Base(target)))
	return abs, err == nil
}

// writeAtomically writes out through a synced temporary file renamed over
// it, so a failed or interrupted build never leaves half an image.
func writeAtomically(ctx context.Context, out string, write func(*os.File) error, opts ...atomicfile.Option) error {
	if err := atomicfile.WriteContext(ctx, out, 0o644, write, opts...); err != nil {
		if errors.Is(err, syscall.ENOSPC) {
			// Said first: the rest names a file inside the image
			// ("/bin/sh: writing..."), which reads like a shell's error.
			return fmt.Errorf("image %s: the file system that holds it is full (free some space there, or write the image elsewhere): %w", out, err)
		}
		return fmt.Errorf("image %s: %w", out, err)
	}
	return nil
}
