// Package service holds the services smolvmm images boot into: a service is
// a directory with etc/rc (required: what the VM runs at boot; a symlink
// to a file inside the service directory is followed, and the file
// copied), optional etc/* files (copied to /etc; symlinks stay symlinks,
// read in the guest), optional postinst/*.sh scripts (run at build time on
// a staging copy of the tree; other files there do not run) and an
// optional service.conf naming its sets and image size. The shared common/
// directory is installed as /etc/include: the built-in one (basicrc), with
// the files of a user's own common/ laid over it. A service in a host
// directory is read only inside it (os.Root, see Load), so that one
// another user can write, built by root, cannot put host files into an
// image. The services rescue and base are embedded in the binary; a
// user's own directory of services can stand beside or replace them.
package service

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"

	"github.com/smolvmm/smolvmm/internal/filekind"
)

//go:embed services
var embedded embed.FS

// CommonDir is the directory of shared files, installed as /etc/include.
const CommonDir = "common"

// Service is one loaded and validated service.
type Service struct {
	// Name is the service's name: its directory's.
	Name string
	// FS is the service directory (etc/rc, etc/*, postinst/*, service.conf).
	// Load gives a service from a host directory the FS of an os.Root:
	// no read through it leaves the service's directory. A read the
	// user may not make is an *UnreadableError naming the host path.
	FS fs.FS
	// Common is the shared directory installed as /etc/include: the
	// built-in one, with, when Load was given a host directory that has
	// a common/, that common/ laid over it, whether the service is the
	// directory's or built in (its file wins where both have a name; a
	// directory both have holds the files of both).
	// Load reads a host one, too, through an os.Root, as FS.
	Common fs.FS
	// Config is service.conf, or the defaults when the service has none.
	Config Config
	// Embedded tells that the service came from the binary, not a directory.
	Embedded bool
	// Dir is the host directory holding the service's directory (Name),
	// for reads that must stay inside it; "" for an embedded service.
	Dir string
}

// Builtin returns the embedded services directory (one subdirectory per
// service, plus common/).
func Builtin() fs.FS {
	sub, err := fs.Sub(embedded, "services")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// ErrName is matched (errors.Is) by the error for a service name that is
// not a plain directory name.
var ErrName = errors.New("bad service name")

// maxName is the longest service name: a directory's name (NAME_MAX).
const maxName = 255

// CheckName reports, without looking for the service, whether name can
// name one: a plain directory name, not common/, at most 255 bytes. The
// error matches ErrName.
func CheckName(name string) error {
	if len(name) > maxName {
		return nameError(fmt.Sprintf("service name %q... is %d bytes: want a plain directory name of at most %d bytes such as rescue or base", name[:16], len(name), maxName))
	}
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\") || name == CommonDir {
		return nameError(fmt.Sprintf("service name %q: want a plain directory name such as rescue or base", name))
	}
	return nil
}

// nameError is CheckName's error: its text, matching ErrName.
type nameError string

func (e nameError) Error() string        { return string(e) }
func (e nameError) Is(target error) bool { return target == ErrName }

// Load finds service name in dir (a directory holding <name>/ and
// optionally common/) or, when dir is "" or lacks it, among the embedded
// services, and validates it. The common files are the embedded ones,
// with dir's common/, when it has one, laid over them, for a built-in
// service taken in dir's stead too: its files stand beside basicrc, and
// one of its own named basicrc replaces it. A <name> or common/ in dir
// that is a symlink to nothing is refused, naming it, not passed over.
//
// A service from dir is read only inside dir (os.Root): its own directory
// and common/ may be symlinks, relative or absolute, to directories inside
// dir, and the service's files (etc/, service.conf, postinst/) are read
// only inside its own directory, a symlink followed only by a relative
// path that stays there (an absolute one is refused, saying so). A
// service directory another user can write, built by root, thus cannot
// put a host file such as /etc/shadow into an image; a link that leaves
// is refused, naming it and its target.
func Load(name, dir string) (*Service, error) {
	if err := CheckName(name); err != nil {
		return nil, err
	}
	root := Builtin()
	common, _ := fs.Sub(root, CommonDir)
	var svc fs.FS // the service's own directory in dir, nil when dir lacks it
	if dir != "" {
		top, err := openDir(dir)
		if err != nil {
			return nil, err
		}
		defer top.Close()
		if svc, err = hostService(top, dir, name); err != nil {
			return nil, err
		}
		if svc == nil {
			// Checked before common/, whose error would hide this one.
			if _, err := fs.Stat(root, name); err != nil {
				return nil, noService(name, dir)
			}
		}
		// Laid over the built-in files for a built-in service too: the
		// user's common/ is theirs whichever service sources it.
		if common, err = hostCommon(top, dir, common); err != nil {
			return nil, err
		}
	}
	if svc != nil {
		return check(&Service{Name: name, FS: svc, Common: common, Dir: dir}, filepath.Join(dir, name))
	}
	if _, err := fs.Stat(root, name); err != nil {
		return nil, noService(name, dir)
	}
	sub, _ := fs.Sub(root, name)
	return check(&Service{Name: name, FS: sub, Common: common, Embedded: true}, name)
}

// noService is the error for a service that is neither in dir nor built in.
func noService(name, dir string) error {
	known, _ := Names(dir)
	return fmt.Errorf("no service %q (known: %s): create %s/etc/rc or pick one of those", name, strings.Join(known, ", "), path.Join(orEmbedded(dir), name))
}

// openDir opens the host service directory dir as an os.Root.
func openDir(dir string) (*os.Root, error) {
	st, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("service directory: %w", err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("service directory %s is not a directory", dir)
	}
	top, err := os.OpenRoot(dir)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("service directory: %w", &UnreadableError{Path: dir, Dir: true, Err: err})
	}
	if err != nil {
		return nil, fmt.Errorf("service directory: %w", err)
	}
	return top, nil
}

// hostService opens service name's directory in the host directory dir
// (top), or returns nil, nil when dir has no such name. A name that is a
// symlink to nothing is an error: the built-in service of that name, taken
// instead, would be built without a word.
func hostService(top *os.Root, dir, name string) (fs.FS, error) {
	// Stat, like every read of os.Root's FS, does not open the file: the
	// open of a FIFO (an etc/rc Validate stats) would block.
	p := inRoot(top, dir, name)
	if _, err := top.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if err := dangling(top, dir, name); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		return nil, nil
	} else if err != nil {
		return nil, hostServiceError(top, dir, name, p, err)
	}
	svc, err := top.OpenRoot(p)
	if err != nil {
		return nil, hostServiceError(top, dir, name, p, err)
	}
	return hostFS{fsys: svc.FS(), dir: filepath.Join(dir, filepath.FromSlash(p))}, nil
}

// hostServiceError is err, the failure to stat or open service name's
// directory p in top (the host directory dir), with the service named:
// an *UnreadableError names dir itself.
func hostServiceError(top *os.Root, dir, name, p string, err error) error {
	err = openCause(top, dir, p, err)
	if errors.As(err, new(*UnreadableError)) {
		return fmt.Errorf("service %s: %w", name, err)
	}
	return fmt.Errorf("service %s in %s: %w", name, dir, err)
}

// openCause is err, the failure to stat or open the directory name in top
// (the host directory dir): an *UnreadableError when the user may not
// read or search a directory on its way or the directory itself, or else
// as linkCause gives it.
func openCause(top *os.Root, dir, name string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return hostFS{fsys: top.FS(), dir: dir}.unreadable(name, true, err)
	}
	return linkCause(top.FS(), dir, name, err)
}

// UnreadableError is the error for a file or directory of a host service
// directory (a service's own, common/, or the directory holding them)
// that the user reading it may not open, or, for a directory, search
// (EACCES, EPERM): the first one on the way to what was read.
type UnreadableError struct {
	Path string // host path: the directory given to Load, joined with the entry's path in it
	Dir  bool   // a directory, not a file
	Err  error  // the system's error, matching fs.ErrPermission
}

// Error names the entry, its kind and why it cannot be read.
func (e *UnreadableError) Error() string {
	kind := "file"
	if e.Dir {
		kind = "directory"
	}
	msg := e.Err
	var pe *fs.PathError
	if errors.As(e.Err, &pe) {
		msg = pe.Err // the path is named already, relative to an os.Root
	}
	return fmt.Sprintf("%s %s cannot be read: %v", kind, e.Path, msg)
}

// Unwrap is the system's error.
func (e *UnreadableError) Unwrap() error { return e.Err }

// hostFS is the FS of the os.Root of the host directory dir, whose refused
// reads are *UnreadableErrors naming the entry by its host path: an
// os.Root's name it relative to the root ("openat etc/priv"), which left
// the user to find which directory's.
type hostFS struct {
	fsys fs.FS // an os.Root's FS
	dir  string
}

// unreadable is err, a read of name, as an *UnreadableError naming the
// entry at fault when it is a refusal: the first directory on name's way
// that the user may not search, or else name itself (a directory when
// dir and its kind cannot be had).
func (h hostFS) unreadable(name string, dir bool, err error) error {
	if !errors.Is(err, fs.ErrPermission) || errors.As(err, new(*UnreadableError)) {
		return err
	}
	at, parent := name, "."
	if name != "." {
		for part := range strings.SplitSeq(name, "/") {
			p := path.Join(parent, part)
			if _, lerr := fs.Lstat(h.fsys, p); errors.Is(lerr, fs.ErrPermission) {
				at, dir = parent, true
				break
			}
			parent = p
		}
	}
	if at == name {
		if st, serr := fs.Stat(h.fsys, name); serr == nil {
			dir = st.IsDir()
		}
	}
	return &UnreadableError{Path: filepath.Join(h.dir, filepath.FromSlash(at)), Dir: dir, Err: err}
}

// Open opens name.
func (h hostFS) Open(name string) (fs.File, error) {
	f, err := h.fsys.Open(name)
	return f, h.unreadable(name, false, err)
}

// ReadDir lists directory name.
func (h hostFS) ReadDir(name string) ([]fs.DirEntry, error) {
	es, err := fs.ReadDir(h.fsys, name)
	for i, e := range es {
		es[i] = hostEntry{DirEntry: e, fsys: h, name: path.Join(name, e.Name())}
	}
	return es, h.unreadable(name, true, err)
}

// ReadFile reads file name.
func (h hostFS) ReadFile(name string) ([]byte, error) {
	b, err := fs.ReadFile(h.fsys, name)
	return b, h.unreadable(name, false, err)
}

// ReadLink reads symlink name.
func (h hostFS) ReadLink(name string) (string, error) {
	target, err := fs.ReadLink(h.fsys, name)
	return target, h.unreadable(name, false, err)
}

// Stat is name's FileInfo, a symlink followed.
func (h hostFS) Stat(name string) (fs.FileInfo, error) {
	st, err := fs.Stat(h.fsys, name)
	return st, h.unreadable(name, false, err)
}

// Lstat is name's FileInfo, a symlink not followed.
func (h hostFS) Lstat(name string) (fs.FileInfo, error) {
	st, err := fs.Lstat(h.fsys, name)
	return st, h.unreadable(name, false, err)
}

// hostEntry is an entry of a hostFS directory listing: its Info, an lstat
// of its own, is refused as the FS's reads are.
type hostEntry struct {
	fs.DirEntry
	fsys hostFS
	name string // path in fsys
}

// Info is the entry's FileInfo.
func (e hostEntry) Info() (fs.FileInfo, error) {
	st, err := e.DirEntry.Info()
	return st, e.fsys.unreadable(e.name, e.IsDir(), err)
}

// hostCommon is builtin, the built-in common files, with dir's common/
// (top's), when it has one, laid over them, its basicrc checked as the
// service's scripts are (see Validate).
func hostCommon(top *os.Root, dir string, builtin fs.FS) (fs.FS, error) {
	common := builtin
	p := inRoot(top, dir, CommonDir)
	switch st, err := top.Stat(p); {
	case err == nil && st.IsDir():
		r, err := top.OpenRoot(p)
		if err != nil {
			return nil, fmt.Errorf("common files: %w", openCause(top, dir, p, err))
		}
		// Laid over the built-in files, as smolBSD keeps a service's
		// own beside basicrc: an etc/rc that sources basicrc still finds it.
		common = layered{upper: hostFS{fsys: r.FS(), dir: filepath.Join(dir, filepath.FromSlash(p))}, lower: common}
	case errors.Is(err, fs.ErrNotExist):
		if err := dangling(top, dir, CommonDir); err != nil {
			return nil, fmt.Errorf("common files: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("common files: %w", openCause(top, dir, p, err))
	}
	// Stat first: reading a FIFO would block.
	if st, err := fs.Stat(common, "basicrc"); err == nil && st.Mode().IsRegular() {
		if p := scriptProblem(common, "basicrc"); p != "" {
			return nil, fmt.Errorf("common files in %s: %s", filepath.Join(dir, CommonDir), p)
		}
	}
	return common, nil
}

// dangling is the error for name in top (the host directory dir), which
// Stat found missing, when it is a symlink whose target is missing; nil
// when name itself is missing.
func dangling(top *os.Root, dir, name string) error {
	st, err := top.Lstat(name)
	if err != nil || st.Mode()&fs.ModeSymlink == 0 {
		return nil
	}
	target, err := top.Readlink(name)
	if err != nil {
		return err
	}
	return &danglingError{link: filepath.Join(dir, name), target: target}
}

// danglingError is dangling's: a symlink whose target is missing. It
// matches fs.ErrNotExist.
type danglingError struct{ link, target string }

func (e *danglingError) Error() string {
	return fmt.Sprintf("%s links to %s, which does not exist", e.link, e.target)
}

func (e *danglingError) Unwrap() error { return fs.ErrNotExist }

// OpenRoot opens the host directory of s, Name in Dir, as an os.Root, the
// way Load reads it: a link to an absolute path inside Dir is taken as
// that path. An embedded service has none.
func (s *Service) OpenRoot() (*os.Root, error) {
	if s.Dir == "" {
		return nil, fmt.Errorf("service %s is built in: it has no host directory", s.Name)
	}
	top, err := os.OpenRoot(s.Dir)
	if err != nil {
		return nil, err
	}
	defer top.Close()
	p := inRoot(top, s.Dir, s.Name)
	r, err := top.OpenRoot(p)
	if err != nil {
		return nil, linkCause(top.FS(), s.Dir, p, err)
	}
	return r, nil
}

// check validates s and reads its service.conf; where names it in
// messages.
func check(s *Service, where string) (*Service, error) {
	if err := Validate(s.FS, where); err != nil {
		return nil, err
	}
	cfg, err := ReadConfig(s.FS, where)
	if err != nil {
		return nil, err
	}
	s.Config = cfg
	return s, nil
}

// inRoot is the path of name in top, the os.Root of the host directory
// dir: name, or, when name is a symlink to an absolute path inside dir,
// that path relative to dir. os.Root follows no absolute link, though one
// to a path inside dir leads nowhere else; the path is only a name here,
// read through top, so a link changed meanwhile still cannot lead out.
func inRoot(top *os.Root, dir, name string) string {
	target, err := top.Readlink(name)
	if err != nil {
		return name
	}
	if rel, ok := within(dir, target); ok {
		return rel
	}
	return name
}

// within is the absolute path target relative to the directory dir (in
// slash form) when it lies inside dir, symlinks resolved on both sides
// where they resolve.
func within(dir, target string) (string, bool) {
	if !filepath.IsAbs(target) {
		return "", false
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false
	}
	bases := []string{abs}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		bases = append(bases, real)
	}
	targets := []string{filepath.Clean(target)}
	if real, err := filepath.EvalSymlinks(target); err == nil {
		targets = append([]string{real}, targets...)
	}
	for _, t := range targets {
		for _, b := range bases {
			rel, err := filepath.Rel(b, t)
			if err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
				return filepath.ToSlash(rel), true
			}
		}
	}
	return "", false
}

// linkError is the error for a path of a service directory that is, or
// lies under, a symlink a read could not follow inside the directory.
// relTarget, when set, is the link's target as a path relative to the
// link's directory: the target is absolute but inside dir.
type linkError struct {
	link, target, dir string
	relTarget         string
	err               error
}

func (e *linkError) Error() string {
	if e.relTarget != "" {
		return fmt.Sprintf("%s links to %s: links in a service directory are followed only by relative paths that stay inside %s, so that a directory another user can write cannot put host files into an image; absolute links are refused: make it relative (ln -sfn %s %s)",
			e.link, e.target, e.dir, e.relTarget, e.link)
	}
	return fmt.Sprintf("%s links to %s: links in a service directory are followed only to paths inside %s, never outside, so that a directory another user can write cannot put host files into an image (%v); copy the files in",
		e.link, e.target, e.dir, e.err)
}

func (e *linkError) Unwrap() error { return e.err }

// linkCause is err, the failure of a read of name in fsys (the host
// directory dir), as a *linkError when name or a directory on its way is
// a symlink: os.Root's own "path escapes from parent" names neither the
// link nor its target. A link to nothing stays err (fs.ErrNotExist): the
// path is missing; so does a refusal (fs.ErrPermission), which os.Root
// gives no link that leads out: it is the permissions' doing.
func linkCause(fsys fs.FS, dir, name string, err error) error {
	if err == nil || errors.Is(err, fs.ErrNotExist) || errors.Is(err, fs.ErrPermission) {
		return err
	}
	for p := name; p != "." && p != "/" && p != ""; p = path.Dir(p) {
		if target, lerr := fs.ReadLink(fsys, p); lerr == nil {
			cause := err
			var pe *fs.PathError
			if errors.As(err, &pe) {
				cause = pe.Err
			}
			le := &linkError{link: filepath.Join(dir, filepath.FromSlash(p)), target: target, dir: dir, err: cause}
			if in, ok := within(dir, target); ok {
				le.relTarget, _ = filepath.Rel(filepath.FromSlash(path.Dir(p)), filepath.FromSlash(in))
				if le.relTarget == "" {
					le.relTarget = "."
				}
			}
			return le
		}
	}
	return err
}

func orEmbedded(dir string) string {
	if dir == "" {
		return "<service-dir>"
	}
	return dir
}

// Names lists the services available in dir and among the embedded ones.
// A name in dir that is a symlink is listed when it leads to a directory
// inside dir, as Load follows it; one that leaves dir is not.
func Names(dir string) ([]string, error) {
	seen := map[string]bool{}
	es, err := fs.ReadDir(Builtin(), ".")
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		if e.IsDir() && e.Name() != CommonDir {
			seen[e.Name()] = true
		}
	}
	if dir != "" {
		top, err := os.OpenRoot(dir)
		if err != nil {
			return nil, fmt.Errorf("listing services in %s: %w", dir, err)
		}
		defer top.Close()
		es, err := fs.ReadDir(top.FS(), ".")
		if err != nil {
			return nil, fmt.Errorf("listing services in %s: %w", dir, err)
		}
		for _, e := range es {
			isDir := e.IsDir()
			if e.Type()&fs.ModeSymlink != 0 {
				st, err := top.Stat(inRoot(top, dir, e.Name()))
				isDir = err == nil && st.IsDir()
			}
			if isDir && e.Name() != CommonDir {
				seen[e.Name()] = true
			}
		}
	}
	var names []string
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Validate checks that fsys is a usable service: etc/rc is a non-empty
// regular file or a symlink to one (the image builder follows it, only
// within the service directory, and writes the file it points to: /etc/rc
// is always a file in the image),
// etc/ is a directory, and each postinst script (see Postinst) is a file;
// etc/rc and the scripts were saved neither with CR LF line endings nor
// with a UTF-8 byte order mark, both of which sh misreads.
// Other symlinks
// of a service go into the image as symlinks, their targets read as guest
// paths. where names the service in messages.
func Validate(fsys fs.FS, where string) error {
	var problems []string
	st, err := fs.Stat(fsys, "etc/rc")
	switch {
	case errors.As(err, new(*UnreadableError)):
		// Not a problem of the service's making: the permissions of
		// the user reading it, with their own remedy.
		return fmt.Errorf("service %s: %w", where, err)
	case errors.Is(err, fs.ErrNotExist):
		problems = append(problems, "etc/rc is missing: it is the script the VM runs at boot (e.g. \". /etc/include/basicrc; sh\")")
	case err != nil:
		if err = linkCause(fsys, where, "etc/rc", err); errors.As(err, new(*linkError)) {
			problems = append(problems, err.Error())
		} else {
			problems = append(problems, fmt.Sprintf("etc/rc: %v", err))
		}
	case !st.Mode().IsRegular():
		// The full path: "etc/rc is not a regular file" left the reader
		// to find which directory's, and what to make it.
		problems = append(problems, fmt.Sprintf("%s is %s, not a regular file: etc/rc must be a regular file (or a symlink to one within the service), the script the VM runs at boot",
			filepath.Join(where, "etc/rc"), filekind.Of(st.Mode())))
	case st.Size() == 0:
		problems = append(problems, "etc/rc is empty")
	default:
		if p := scriptProblem(fsys, "etc/rc"); p != "" {
			problems = append(problems, p)
		}
	}
	if es, err := fs.ReadDir(fsys, "postinst"); err == nil {
		for _, e := range es {
			switch {
			case !isScript(e.Name()):
			case !e.Type().IsRegular():
				problems = append(problems, fmt.Sprintf("postinst/%s is %s: a postinst script must be a file", e.Name(), filekind.Of(e.Type())))
			default:
				if p := scriptProblem(fsys, path.Join("postinst", e.Name())); p != "" {
					problems = append(problems, p)
				}
			}
		}
	} else if errors.As(err, new(*UnreadableError)) {
		return fmt.Errorf("service %s: %w", where, err)
	} else if err = linkCause(fsys, where, "postinst", err); errors.As(err, new(*linkError)) {
		problems = append(problems, err.Error())
	} else if !errors.Is(err, fs.ErrNotExist) {
		problems = append(problems, fmt.Sprintf("postinst: %v", err))
	}
	if len(problems) > 0 {
		// One line, as every error is printed.
		return fmt.Errorf("service %s is not valid: %s", where, strings.Join(problems, "; "))
	}
	return nil
}

// scriptProblem is the problem of shell script name in fsys, a regular
// file, when it was saved in a way sh misreads, "" when there is none or
// the file cannot be read (the build then says why):
//   - with CR LF line endings (on Windows, say), as its first line, ending
//     in CR LF, tells: sh takes the CR as part of the line, and
//     ". /etc/include/basicrc\r" finds no file. A CR LF further on may be
//     meant (a here-document writing an HTTP response, a payload after
//     exit) and is left alone;
//   - with a UTF-8 byte order mark (an editor's "UTF-8 with BOM"): sh
//     takes its bytes as part of the first word, and "\ufeff." is no
//     command, so basicrc is never sourced.
func scriptProblem(fsys fs.FS, name string) string {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		return ""
	}
	var problems []string
	if HasBOM(b) {
		problems = append(problems, fmt.Sprintf("%s begins with a UTF-8 byte order mark (bytes EF BB BF): sh would take it as part of the first command; save it as UTF-8 without a BOM", name))
	}
	if FirstLineCRLF(b) {
		problems = append(problems, fmt.Sprintf("%s has CR LF (DOS) line endings (its first line ends in CR LF): sh would take each CR as part of its line; convert it to LF line endings (with dos2unix, say)", name))
	}
	return strings.Join(problems, "; ")
}

// FirstLineCRLF reports whether shell script b was saved with CR LF line
// endings, as its first line, ending in CR LF, tells (see Validate): sh
// would take each CR as part of its line.
func FirstLineCRLF(b []byte) bool {
	first, _, ok := bytes.Cut(b, []byte("\n"))
	return ok && bytes.HasSuffix(first, []byte("\r"))
}

// utf8BOM is the UTF-8 encoding of U+FEFF, the byte order mark some
// editors put at the start of a file.
const utf8BOM = "\ufeff"

// HasBOM reports whether shell script b begins with a UTF-8 byte order
// mark (see Validate): sh would take its bytes as part of the first
// command.
func HasBOM(b []byte) bool {
	return bytes.HasPrefix(b, []byte(utf8BOM))
}

// Postinst returns the names of the service's postinst scripts, sorted:
// they run in that order. As smolBSD's glob postinst/*.sh, it takes the
// names ending in .sh that do not start with a dot; IgnoredPostinst lists
// the rest.
func (s *Service) Postinst() ([]string, error) {
	scripts, _, err := s.postinst()
	return scripts, err
}

// IgnoredPostinst returns the names in the service's postinst/ that are
// not scripts and do not run (a README, notes), sorted. Names starting
// with a dot (an editor's swap file such as .10.sh.swp) are hidden, as
// from a shell's glob, and not listed.
func (s *Service) IgnoredPostinst() ([]string, error) {
	_, ignored, err := s.postinst()
	return ignored, err
}

// postinst sorts the names in postinst/ into scripts and ignored ones.
func (s *Service) postinst() (scripts, ignored []string, err error) {
	es, err := fs.ReadDir(s.FS, "postinst")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("service %s: postinst: %w", s.Name, err)
	}
	for _, e := range es {
		switch name := path.Join("postinst", e.Name()); {
		case isScript(e.Name()):
			scripts = append(scripts, name)
		case !strings.HasPrefix(e.Name(), "."):
			ignored = append(ignored, name)
		}
	}
	return scripts, ignored, nil
}

// isScript tells whether a name in postinst/ is a script's: it ends in
// .sh and does not start with a dot.
func isScript(name string) bool {
	return strings.HasSuffix(name, ".sh") && !strings.HasPrefix(name, ".")
}
