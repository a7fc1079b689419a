// Package rebuild decides which of the files a service VM is made from
// must be made again, and keeps the records that decision needs: a
// stripped kernel is kept in the release's cache under a name of the
// kernel's digest, the keep list and kstrip's revision (named in clear,
// so that the copies of older revisions are removed once this one's is
// written), and a service's
// disk image is stale when a stamp beside the release's cache says it was
// built from another service, or other files of it (ServiceDigest: the
// name and the content of what enters the image, not file times, which
// the guest's writes to the image would outdate), or by another revision
// of the image builder, or when it is older than its sets (where no stamp
// records the release, whose key holds each set's digest, for a set
// downloaded again with the same bytes is no other set), or, when the
// caller names the release it boots, is recorded by that release's stamp
// as built from other sets: one image path serves every release and port,
// and only the stamp tells which one built the file under it. An image
// that release's stamp does not describe is NotRecorded, never stale: it
// may hold what a guest wrote to it, and the stamp, kept in a cache that
// may be cleared, is no proof that the caller may replace it (where no
// stamp can be recorded, a read-only cache, the dates alone decide).
package rebuild

import (
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/service"
)

// Verdict says whether an image must be built, and why.
type Verdict int

// The verdicts of Image.Check.
const (
	// Fresh: the image was built from the service as it is now (its
	// stamp says so; without a stamp, it is newer than the service's
	// files) and from the sets of the release the stamp records (without
	// that record, it is newer than its sets).
	Fresh Verdict = iota
	// Missing: there is no image.
	Missing
	// Older: the image is older than a set where no stamp records the
	// release it was built from or, where no stamp says what service it
	// was built from, than the service's files.
	Older
	// ServiceChanged: the image was built (by the caller, as its stamp
	// says) from another service, from other files of this one, or
	// before stamps recorded which service built it.
	ServiceChanged
	// NotImage: the file is no ext2 image (mkimg builds ext2): a file
	// other than an image under its name, which no date makes fresh;
	// Stamp.Describes tells whether it is one the caller built.
	NotImage
	// BuilderChanged: the image was built (by the caller, as its stamp
	// says) with another revision of the image builder, or before
	// stamps recorded one: the same inputs now build another image.
	BuilderChanged
	// OtherRelease: the image is recorded (by the caller, as its stamp
	// says) as built from other sets than those of Image.Release. Its
	// dates say nothing of the port its programs are for.
	OtherRelease
	// NotRecorded: the file is an ext2 image that no stamp of
	// Image.Release describes, where one could be recorded: nothing says
	// the caller built it, or from which release (it was copied, built
	// by another program or for another release or port, or its stamp
	// was removed with the cache, or left under its former path by a move
	// to another file system: Stamp.Moved; or its file system keeps
	// neither birth times nor inode generation numbers, and no stamp can
	// tell it from a later file given its inode number: Identifies). It
	// is no image to replace, for what was written to it would be lost,
	// nor one known to be of this release.
	NotRecorded
)

// String is the verdict in a word, for the step log.
func (v Verdict) String() string {
	switch v {
	case Fresh:
		return "fresh"
	case Missing:
		return "missing"
	case Older:
		return "older than its inputs"
	case ServiceChanged:
		return "built from another service or version of it"
	case NotImage:
		return "not an ext2 image"
	case BuilderChanged:
		return "built by an older image builder"
	case OtherRelease:
		return "recorded as built from another release"
	case NotRecorded:
		return "not recorded as built from this release"
	}
	return fmt.Sprintf("Verdict(%d)", int(v))
}

// Image is a service's disk image and what it is built from.
type Image struct {
	// Path is the image's file.
	Path string
	// ServiceTime is the time of the service's newest input file (zero
	// for a built-in service): it dates the image only where Stamp does
	// not describe it or Digest is "", for a guest's writes to the image
	// make it newer than any edit made while the guest ran.
	ServiceTime time.Time
	// Sets are the set files the image is built from. They date the
	// image only where Stamp does not record Release (their digests are
	// in it).
	Sets []string
	// Digest is the service's ServiceDigest, compared with what Stamp
	// recorded; "" compares nothing, and ServiceTime then dates the
	// image.
	Digest string
	// Builder is the revision of the image builder that would build the
	// image now (imagebuilder.Revision), compared with what Stamp
	// recorded; 0 compares nothing.
	Builder int
	// Release names the release and sets the image must be built from
	// (ReleaseKey), compared with what Stamp recorded; "" compares
	// nothing, and an image the stamp does not describe may then be
	// fresh by its dates.
	Release string
	Stamp   Stamp
	// Unrecorded is why Stamp cannot be recorded (Stamp.Writable: a
	// cache that cannot be written), nil when it can. An image no stamp
	// describes is then judged by its dates alone, not NotRecorded: no
	// build could have recorded its release.
	Unrecorded error
}

// Check says whether the image must be built. A set that cannot be
// stat'ed does not date the image (its fetch checked it).
func (im Image) Check() (Verdict, error) {
	// Only an image the stamp describes (the caller built it) is
	// rebuilt for its service or builder: a file another program put
	// there is not known to come from any.
	rec, described := im.Stamp.read(im.Path)
	// A stamp without the service's digest (FilesDigest, written by
	// callers before every service had one) does not say which service
	// built the image: it may be another's, so it is rebuilt, once.
	changed := im.Digest != "" && described && rec.digest != im.Digest
	var newest time.Time
	// The stamp's digest, where there is one, says whether the service
	// changed; the image's mtime, which the guest's writes move, would
	// hide an edit made while it ran.
	if im.Digest == "" || !described {
		newest = im.ServiceTime
	}
	// The release key holds each set's SHA512: where the stamp records
	// the one the caller boots, the sets are the ones the image was
	// built from, and a set downloaded again with the same bytes, or
	// touched, would otherwise date the image and throw away what the
	// guest wrote to it. Only images without that record are dated by
	// their sets.
	if im.Release == "" || !described || rec.release != im.Release {
		for _, s := range im.Sets {
			if st, err := os.Stat(s); err == nil && st.ModTime().After(newest) {
				newest = st.ModTime()
			}
		}
	}
	builderChanged := im.Builder != 0 && described && rec.builder != im.Builder
	// A stamp from before releases were recorded lies in the release's
	// own cache directory, which names the release it was written for.
	otherRelease := im.Release != "" && described && rec.release != "" && rec.release != im.Release
	// Only a stamp proves the caller built the image: one it does not
	// describe (a cache cleared, a copy) may hold what a guest wrote.
	notRecorded := im.Release != "" && !described && im.Unrecorded == nil
	st, err := os.Stat(im.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Missing, nil
	case err != nil:
		return 0, fmt.Errorf("image %s: %w", im.Path, err)
	case !st.Mode().IsRegular() || !isExt2(im.Path):
		return NotImage, nil
	case changed:
		return ServiceChanged, nil
	case builderChanged:
		return BuilderChanged, nil
	case notRecorded:
		return NotRecorded, nil
	case otherRelease:
		return OtherRelease, nil
	case st.ModTime().Before(newest):
		return Older, nil
	}
	return Fresh, nil
}

// ext2Magic is an ext2 superblock's s_magic, at byte 56 of the
// superblock, which starts at byte 1024.
const (
	ext2Magic       = 0xEF53
	ext2MagicOffset = 1024 + 56
)

// isExt2 reports whether the regular file at path carries ext2's
// superblock magic: a cheap test that it is an image mkimg built, not
// another file under the image's name. An unreadable file is not one.
func isExt2(path string) bool {
	// Non-blocking: a FIFO put there since the Stat is not waited on.
	f, err := os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [2]byte
	if _, err := f.ReadAt(b[:], ext2MagicOffset); err != nil {
		return false
	}
	return uint16(b[0])|uint16(b[1])<<8 == ext2Magic
}

// ServiceDate is what dates a service for Image.Check: its ServiceDigest
// and, for a service of files, the time of its newest input, which dates
// an image only where no stamp records the digest it was built from. A
// built-in service has no time of its own (the binary's changes at every
// build, and the image, with what the guest wrote to it, would be rebuilt
// each time), and returns a zero modTime. Only what a build reads counts
// (see ServiceDigest): an image, notes or a README beside etc/ in the
// service's directory, or a file in postinst/ that does not run, date
// nothing, and an unreadable one is not read. The times of etc/ and
// postinst/ themselves count, so that a file removed from them dates the
// service. The files are read as they are now, while s.Config is as Load
// read it: a caller that builds from s takes the digest it records just
// before the build, not at Load.
func ServiceDate(s *service.Service) (modTime time.Time, digest string, err error) {
	h := sha256.New()
	newer := func(t time.Time) {
		if !s.Embedded && t.After(modTime) {
			modTime = t
		}
	}
	// The name too: one image path used for two services with the same
	// files (vm.img for service web, then for db) holds what the first one's guest
	// wrote, which is no image of the second.
	fmt.Fprintf(h, "service %q\n", s.Name)
	walk := func(tree string, fsys fs.FS, root string) error {
		return fs.WalkDir(fsys, root, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := e.Info()
			if err != nil {
				return err
			}
			newer(info.ModTime())
			if tree == "etc" && p == root {
				// /etc keeps the sets' attributes (imagebuilder's
				// Overlay): the mode of etc/ itself enters no image.
				fmt.Fprintf(h, "%s %q\n", tree, p)
				return nil
			}
			// The mode enters the image with the file.
			fmt.Fprintf(h, "%s %q %v", tree, p, info.Mode())
			switch {
			case info.Mode().IsRegular():
				b, err := fs.ReadFile(fsys, p)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " %d\n", len(b))
				h.Write(b)
			case info.Mode()&fs.ModeSymlink != 0:
				target, err := fs.ReadLink(fsys, p)
				if err != nil {
					return err
				}
				fmt.Fprintf(h, " -> %q\n", target)
				if tree == "etc" && p == "etc/rc" {
					// The image builder copies the file a linked
					// etc/rc names, inside the service's directory,
					// with that file's mode.
					st, err := fs.Stat(fsys, p)
					if err != nil {
						return err
					}
					newer(st.ModTime())
					b, err := fs.ReadFile(fsys, p)
					if err != nil {
						return err
					}
					fmt.Fprintf(h, "%v %d\n", st.Mode(), len(b))
					h.Write(b)
				}
			default:
				// A directory, or a kind the build refuses.
				fmt.Fprintln(h)
			}
			return nil
		})
	}
	if err := walk("etc", s.FS, "etc"); err != nil {
		return time.Time{}, "", err
	}
	// service.conf is read once, by service.Load, for the sets and size
	// a build takes from s.Config: that, not the file as it is now (or
	// its comments), is what the image is built with.
	if st, err := fs.Stat(s.FS, service.ConfigFile); err == nil {
		newer(st.ModTime())
	}
	fmt.Fprintf(h, "config %#v\n", s.Config)
	// postinst/ is read for the scripts that run (service.Postinst):
	// their contents, not their modes, enter the image.
	if st, err := fs.Stat(s.FS, "postinst"); err == nil {
		newer(st.ModTime())
	}
	scripts, err := s.Postinst()
	if err != nil {
		return time.Time{}, "", err
	}
	for _, p := range scripts {
		st, err := fs.Stat(s.FS, p)
		if err != nil {
			return time.Time{}, "", err
		}
		newer(st.ModTime())
		b, err := fs.ReadFile(s.FS, p)
		if err != nil {
			return time.Time{}, "", err
		}
		fmt.Fprintf(h, "postinst %q %d\n", p, len(b))
		h.Write(b)
	}
	if err := walk("common", s.Common, "."); err != nil {
		return time.Time{}, "", err
	}
	return modTime, hex.EncodeToString(h.Sum(nil)), nil
}

// ServiceDigest is the digest of what of service s a build reads, and so
// enters its image: its name; the names, modes, link targets and
// contents under etc/ (a linked etc/rc's file's too, and not etc/'s own
// mode, which the image does not take); its Config, the sets and size
// Load read from service.conf; the contents of the postinst scripts that
// run (service.Service.Postinst, not the other files of postinst/); and
// the names, modes, link targets and
// contents of the common directory it uses (the embedded one when a
// service directory has none, so that a smolvmm that changes it changes
// the digest). File times do not count.
func ServiceDigest(s *service.Service) (string, error) {
	_, digest, err := ServiceDate(s)
	return digest, err
}

// Stamp is the path of a file recording which service built an image
// file, and with which image builder and release: the service's digest
// (ServiceDigest), the image's ImageID, the builder's revision
// (absent from stamps written before revisions were recorded, which read
// as 0) and the ReleaseKey (absent from stamps written before releases
// were recorded).
type Stamp string

// ReleaseKey names what an image is built from in release r: its version,
// its port (which decides the programs and the /dev numbers) and the
// digests of its sets, so that an image built for another release, port
// or set list is not taken for this one's.
func ReleaseKey(r *fetch.Release) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q %q\n", r.Version, r.Arch)
	for _, s := range r.Sets {
		fmt.Fprintf(h, "%q %s\n", s.Name, s.SHA512)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// ReleaseStamp is the stamp of image in release r's cache (beside its
// kernel and sets), named after the image's absolute path.
func ReleaseStamp(r *fetch.Release, image string) Stamp {
	return DirStamp(filepath.Dir(filepath.Dir(r.Kernel.Path)), image)
}

// DirStamp is ReleaseStamp for the release cached in dir (Release.Dir,
// or Fetcher.ReleaseDir before the release is fetched), so that an image
// can be judged before any download.
func DirStamp(dir, image string) Stamp {
	abs, err := filepath.Abs(image)
	if err != nil {
		abs = image
	}
	key := sha256.Sum256([]byte(abs))
	return Stamp(filepath.Join(dir, "images", hex.EncodeToString(key[:8])+".service"))
}

// FilesDigest is what a Stamp records for an image built by a caller
// that has no digest of the service (and what callers recorded for a
// service of files before those had one): it says who built the image,
// not from which service, and is another digest than any service's.
const FilesDigest = "-"

// Other reports whether the stamp describes this very image file and
// names another service digest than digest (FilesDigest is another). An
// image the stamp does not describe (made by another program, a copy, or
// a later build) has no say, nor has a missing or unreadable stamp.
func (s Stamp) Other(image, digest string) bool {
	rec, ok := s.read(image)
	return ok && rec.digest != digest
}

// Describes reports whether the stamp was recorded for this very image
// file (whatever digest it names): whoever recorded it built the file,
// which has not been replaced since.
func (s Stamp) Describes(image string) bool {
	_, ok := s.read(image)
	return ok
}

// stamped is what a stamp records beside the image's ID.
type stamped struct {
	digest  string
	builder int    // 0: not recorded (a stamp from before revisions)
	release string // "": not recorded (a stamp from before releases)
}

// read returns what the stamp records, if it describes image.
func (s Stamp) read(image string) (stamped, bool) {
	b, err := os.ReadFile(string(s))
	if err != nil {
		return stamped{}, false
	}
	id, err := ImageID(image)
	if err != nil {
		return stamped{}, false
	}
	return parseStamp(b, id)
}

// parseStamp returns what stamp content b records, if it describes the
// file whose ImageID is id.
func parseStamp(b []byte, id string) (stamped, bool) {
	f := strings.Fields(string(b))
	if len(f) < 2 || len(f) > 4 || !sameID(f[1], id) {
		return stamped{}, false
	}
	rec := stamped{digest: f[0]}
	if len(f) >= 3 {
		// A garbled revision still describes the image (up built
		// it); it reads as none, which no builder has.
		rec.builder, _ = strconv.Atoi(f[2])
	}
	if len(f) == 4 {
		rec.release = f[3]
	}
	return rec, true
}

// Record records that image, as it is now, was built from the service
// with digest by revision builder of the image builder, from the release
// named by release (ReleaseKey; "" when no release is to be recorded).
// An image whose ImageID does not identify it is not recorded (an error
// matching ErrUnidentified): no stamp could tell it from a file later
// given its inode number.
func (s Stamp) Record(image, digest string, builder int, release string) error {
	id, err := ImageID(image)
	if err != nil {
		return err
	}
	return s.record(image, id, digest, builder, release)
}

// record is Record for image, whose ImageID is id.
func (s Stamp) record(image, id, digest string, builder int, release string) error {
	if !Identifies(id) {
		return fmt.Errorf("image %s (file ID %s): %w", image, id, ErrUnidentified)
	}
	if err := os.MkdirAll(filepath.Dir(string(s)), 0o755); err != nil {
		return err
	}
	line := fmt.Sprintf("%s %s %d", digest, id, builder)
	if release != "" {
		line += " " + release
	}
	return atomicfile.WriteFile(string(s), []byte(line+"\n"), 0o644)
}

// Writable returns nil when the stamp can be recorded (its directory can
// be made and written), else why not, having tried to create and removed
// a file beside it.
func (s Stamp) Writable() error {
	dir := filepath.Dir(string(s))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".writable-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// sameID reports whether the ImageIDs a and b name the same file. An ID
// that does not identify its file (Identifies) names none: its inode
// number may be a later file's. Where both hold a birth time, the
// device's number does not count, for a disk may come back under another
// one (another boot, another USB port), and an inode number with its
// birth time to the nanosecond, in a stamp named after the file's path,
// names the file it was recorded for; an inode generation number is only
// told apart from the next file's on the same file system, so there the
// device counts.
func sameID(a, b string) bool {
	if !Identifies(a) || !Identifies(b) {
		return false
	}
	if a == b {
		return true
	}
	_, fa, _ := strings.Cut(a, ":")
	_, fb, _ := strings.Cut(b, ":")
	return hasBirthTime(a) && hasBirthTime(b) && fa == fb
}

// Moved moves to s the stamp beside it (in the same directory) that
// describes image, when s does not: the stamp of the same file under
// another path, which a rename of the file or of a directory above it
// leaves behind, for a stamp is named after the image's path while its
// ImageID stays. Only an ImageID that identifies its file (Identifies) is
// looked for so: one with neither a birth time nor a generation number (a
// file system that keeps neither) is a device and an inode number alone,
// which a file made after the image was deleted takes again, and stamps
// of deleted images stay. It reports whether it moved a stamp; a stamp
// that cannot be read or moved is not.
func (s Stamp) Moved(image string) bool {
	id, err := ImageID(image)
	if err != nil {
		return false
	}
	return s.moved(id)
}

// moved is Moved for the file whose ImageID is id.
func (s Stamp) moved(id string) bool {
	if !Identifies(id) {
		return false
	}
	if b, err := os.ReadFile(string(s)); err == nil {
		if _, ok := parseStamp(b, id); ok {
			return false
		}
	}
	dir := filepath.Dir(string(s))
	entries, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range entries {
		old := filepath.Join(dir, e.Name())
		if old == string(s) || !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".service") {
			continue
		}
		b, err := os.ReadFile(old)
		if err != nil {
			continue
		}
		if _, ok := parseStamp(b, id); ok {
			return os.Rename(old, string(s)) == nil
		}
	}
	return false
}

// OtherReleases returns the cache directories of the other releases
// whose stamp of image describes it: s is release dir's stamp of image,
// <dir>/images/<name>, and dir is <cache>/<version>/<arch>, as fetch
// keeps releases, so those stamps are <cache>/*/*/images/<name>. An image
// s does not describe may so be one the caller built from another
// release's sets (for another version or port). Directories that cannot
// be read are passed over.
func (s Stamp) OtherReleases(image string) []string {
	dir := filepath.Dir(filepath.Dir(string(s)))
	cache := filepath.Dir(filepath.Dir(dir))
	versions, err := os.ReadDir(cache)
	if err != nil {
		return nil
	}
	var found []string
	for _, v := range versions {
		if !v.IsDir() {
			continue
		}
		arches, err := os.ReadDir(filepath.Join(cache, v.Name()))
		if err != nil {
			continue
		}
		for _, a := range arches {
			other := filepath.Join(cache, v.Name(), a.Name())
			if !a.IsDir() || other == dir {
				continue
			}
			if Stamp(filepath.Join(other, "images", filepath.Base(string(s)))).Describes(image) {
				found = append(found, other)
			}
		}
	}
	return found
}

// hasBirthTime reports whether ImageID id holds the file's birth time
// (device:inode:birth), which no later file with its inode number has.
func hasBirthTime(id string) bool {
	f := strings.Split(id, ":")
	return len(f) == 3 && !strings.HasPrefix(f[2], "g")
}

// Identifies reports whether ImageID id tells its file from a later one
// given the same inode number: it holds the file's birth time or its
// inode generation number. A stamp records, and matches, only such an ID:
// one of a device and an inode number alone may name a file made after
// the image was deleted, which no stamp proves the caller built.
func Identifies(id string) bool {
	return strings.Count(id, ":") == 2
}

// ErrUnidentified is what Stamp.Record returns (wrapped) for an image
// whose ImageID does not identify it (Identifies).
var ErrUnidentified = errors.New("its file system keeps neither a birth time nor an inode generation number for it, which would tell it from a later file given its inode number")

// fsIocGetVersion is FS_IOC_GETVERSION, _IOR('v', 1, long), which
// golang.org/x/sys/unix does not define: FS_IOC_GETFLAGS, _IOR('f', 1,
// long), with the other type byte, so that each port's encoding of the
// direction and the size holds.
const fsIocGetVersion = unix.FS_IOC_GETFLAGS + ('v'-'f')<<8

// ImageID names the file at path, as device:inode:birth where statx gives
// its birth time (sec.nsec), which stays while a guest writes to the file
// and changes when it is replaced (an inode number alone is soon reused).
// Where it gives none (ext4 with 128-byte inodes), the inode's generation
// number stands for it, device:inode:g<generation> (FS_IOC_GETVERSION,
// which ext2, ext3, ext4 and f2fs answer): those file systems give each
// inode they allocate a new one, so that a reused inode number is not
// taken for the file deleted before. Where neither can be had (a file
// system keeping neither, a file that cannot be opened for reading, one
// that is not regular) the ID is device:inode, which does not identify
// the file (Identifies).
func ImageID(path string) (string, error) {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, 0, unix.STATX_TYPE|unix.STATX_INO|unix.STATX_BTIME, &st); err != nil {
		return "", &os.PathError{Op: "statx", Path: path, Err: err}
	}
	if st.Mask&unix.STATX_BTIME == 0 && st.Mode&unix.S_IFMT == unix.S_IFREG {
		// Opened only as a regular file (a device's open may act), and
		// the ID taken from what was opened, should the path have been
		// replaced since.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
		if err == nil {
			defer unix.Close(fd)
			var fst unix.Statx_t
			if err := unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_INO|unix.STATX_BTIME, &fst); err == nil {
				st = fst
				if gen, err := unix.IoctlGetUint32(fd, fsIocGetVersion); err == nil && st.Mask&unix.STATX_BTIME == 0 {
					return fmt.Sprintf("%d.%d:%d:g%d", st.Dev_major, st.Dev_minor, st.Ino, gen), nil
				}
			}
		}
	}
	id := fmt.Sprintf("%d.%d:%d", st.Dev_major, st.Dev_minor, st.Ino)
	if st.Mask&unix.STATX_BTIME != 0 {
		id += fmt.Sprintf(":%d.%09d", st.Btime.Sec, st.Btime.Nsec)
	}
	return id, nil
}

// Stripped is a stripped kernel in the cache.
type Stripped struct {
	// Path is the stripped kernel's file in the cache: StrippedName's,
	// or, in a cache that may not be written, the name this revision's
	// copy had before names said the revision.
	Path string
	// Cached: a good copy was there (verified against its .sha512
	// sidecar), and strip was not called.
	Cached bool
	// Changed: a copy was there with its sidecar, but no longer matched
	// it (edited since it was made, as by a kstrip run on it): it was
	// stripped again, which undid the edit.
	Changed bool
	// Summary is what strip said it did ("" when Cached).
	Summary string
	// hold is Path open, with a shared flock on it, which a newer
	// smolvmm's removal of older revisions' copies respects
	// (removeOlderStripped): nil once Close released it.
	hold *os.File
}

// Close releases the shared lock StripCached took on the copy at Path,
// which keeps another smolvmm (of a newer kstrip revision) from removing
// it: a caller holds it until it has read the kernel (or, not knowing
// when that is done, until its use of it ends). It may be called on the
// zero Stripped.
func (s Stripped) Close() error {
	if s.hold == nil {
		return nil
	}
	return s.hold.Close()
}

// holdStripped opens the stripped copy at path and takes a shared flock
// on it, returning it open, or nil when path names no file, or no longer
// the one locked (a newer smolvmm removed it between the open and the
// lock, holding its exclusive lock for that). The lock waits only for
// such a removal, which holds its lock for a few system calls.
func holdStripped(path string) *os.File {
	f, err := openStripped(path)
	if err != nil {
		return nil
	}
	if err := flockRetry(f, unix.LOCK_SH); err != nil {
		// A file system without flock: used unheld, as before.
		return f
	}
	if _, ok := stillAt(f, path); !ok {
		f.Close()
		return nil
	}
	return f
}

// openStripped opens the stripped copy at path to lock it: read-only, not
// through a symbolic link, and without waiting on a FIFO put there.
func openStripped(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
}

// stillAt returns f's FileInfo and whether path still names f, the file
// opened from it: not removed or replaced since.
func stillAt(f *os.File, path string) (os.FileInfo, bool) {
	held, err := f.Stat()
	if err != nil {
		return nil, false
	}
	now, err := os.Lstat(path)
	return held, err == nil && os.SameFile(held, now)
}

// flockRetry is flock(how) on f, retried on EINTR.
func flockRetry(f *os.File, how int) error {
	for {
		if err := unix.Flock(int(f.Fd()), how); !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// removeUnheld removes the stripped copy at path unless another process
// holds a lock on it (holdStripped's: a smolvmm between its StripCached
// and the kernel's load), and returns what it removed. Its exclusive
// lock, taken without waiting, is held across the removal, so that no
// holdStripped takes the file for the one path names meanwhile. A smolvmm
// from before these locks takes none, and its copy in use may still go.
func removeUnheld(path string) (os.FileInfo, bool) {
	f, err := openStripped(path)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	if flockRetry(f, unix.LOCK_EX|unix.LOCK_NB) != nil {
		return nil, false
	}
	held, ok := stillAt(f, path)
	if !ok || os.Remove(path) != nil {
		return nil, false
	}
	return held, true
}

// StripFunc writes a stripped copy of kernel in, keeping the drivers of
// keep, to out (atomically: a concurrent caller strips to a temporary file
// of its own and renames the same bytes), and summarises what it did.
type StripFunc func(in, out string, keep []string) (summary string, err error)

// StrippedName is the file name StripCached gives the stripped copy of
// the kernel whose SHA512 is sum, kept with keep by this kstrip
// (kstrip.Revision: a copy stripped by one that decided otherwise is not
// reused): netbsd-GENERIC.kstrip-r<revision>-<digest>. The revision is
// named in clear, so that a later one's StripCached knows the copy for an
// older one's and removes it. Every name this kstrip gives has the same
// length, which is also the kernel's name on the guest's command line:
// the digest's 13 hex digits (52 bits, for the few keep lists of one
// kernel) leave it as long as the names before the revision was named,
// and the room after it on the command line the same.
func StrippedName(sum string, keep []string) string {
	return strippedName(sum, keep, kstrip.Revision)
}

// strippedPrefix starts the name of every stripped copy StripCached
// gives, of this revision or another.
const strippedPrefix = "netbsd-GENERIC.kstrip-"

// strippedDigits is how many hex digits of its key a stripped copy's name
// holds.
const strippedDigits = 13

// strippedName is StrippedName for kstrip revision revision.
func strippedName(sum string, keep []string, revision int) string {
	key := strippedKey(sum, keep, revision)
	return fmt.Sprintf("%sr%d-%s", strippedPrefix, revision, hex.EncodeToString(key[:8])[:strippedDigits])
}

// strippedKey is what a stripped copy's name is a digest of, in every
// revision's name, marked or not.
func strippedKey(sum string, keep []string, revision int) [sha512.Size]byte {
	return sha512.Sum512([]byte(fmt.Sprintf("%s\x00%s\x00%d", sum, strings.Join(keep, ","), revision)))
}

// lastUnmarkedRevision is the kstrip revision whose copies a smolvmm
// stripped before names said the revision: from that revision on, the
// key named is the same, so its unmarked copies are this revision's as
// long as kstrip.Revision is this one.
const lastUnmarkedRevision = 2

// unmarkedName is the name StripCached gave, before the revision was
// named, the copy StrippedName(sum, keep) names now: "" once kstrip's
// revision is past lastUnmarkedRevision, for then no unmarked copy is
// of this revision.
func unmarkedName(sum string, keep []string) string {
	if kstrip.Revision != lastUnmarkedRevision {
		return ""
	}
	key := strippedKey(sum, keep, kstrip.Revision)
	return strippedPrefix + hex.EncodeToString(key[:8])
}

// adoptUnmarked returns the good copy of this revision that dir holds
// under its unmarked name (unmarkedName) for path, the name it has now,
// and true; false when there is none, or it does not match its sidecar.
// A cache that may be written gets the copy under path too, a hard link
// beside the unmarked name: no space is spent, and the unmarked name,
// which an older smolvmm sharing the cache reads and which a user may
// have copied from what it printed, stays. A cache that may not
// (another user's, read-only) serves it under the unmarked name, as does
// one where the link cannot be made.
func adoptUnmarked(dir, unmarked, path string) (string, bool) {
	if unmarked == "" {
		return "", false
	}
	old := filepath.Join(dir, unmarked)
	want, err := os.ReadFile(old + ".sha512")
	if err != nil {
		return "", false
	}
	wantSum := strings.TrimSpace(string(want))
	// Linked to a temporary name first, so that path appears only as
	// the whole copy, over any copy of it a strip left unfinished; the
	// link is verified, not the unmarked name, which an older smolvmm
	// may replace meanwhile.
	tmp, err := linkTemp(old, path)
	if err != nil {
		if got, err := fetch.HashFile(old); err == nil && got == wantSum {
			return old, true
		}
		return "", false
	}
	got, err := fetch.HashFile(tmp)
	if err != nil || got != wantSum {
		os.Remove(tmp)
		return "", false
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return old, true
	}
	if err := atomicfile.WriteFile(path+".sha512", []byte(got+"\n"), 0o644); err != nil {
		return old, true
	}
	return path, true
}

// linkTemp makes a hard link to old under a new name beside path, and
// returns that name.
func linkTemp(old, path string) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".link-*")
	if err != nil {
		return "", err
	}
	tmp := f.Name()
	f.Close()
	// Link refuses to replace tmp: the name was only reserved.
	if err := os.Remove(tmp); err != nil {
		return "", err
	}
	if err := os.Link(old, tmp); err != nil {
		return "", err
	}
	return tmp, nil
}

// strippedRevision returns the kstrip revision whose StripCached named a
// stripped copy (or its sidecar) name: 0 for one named before revisions
// were (netbsd-GENERIC.kstrip-<16 hex digits>), which a smolvmm of an
// older kstrip, or of this one before it named them, stripped. ok is
// false for a name neither gives.
func strippedRevision(name string) (revision int, ok bool) {
	rest, found := strings.CutPrefix(strings.TrimSuffix(name, ".sha512"), strippedPrefix)
	if !found {
		return 0, false
	}
	if len(rest) == 16 && isHex(rest) {
		return 0, true
	}
	rev, digest, found := strings.Cut(rest, "-")
	num, marked := strings.CutPrefix(rev, "r")
	if !found || !marked || len(digest) != strippedDigits || !isHex(digest) || num == "" || strings.Trim(num, "0123456789") != "" {
		return 0, false
	}
	revision, err := strconv.Atoi(num)
	return revision, err == nil
}

// isHex reports whether s is lowercase hex digits only.
func isHex(s string) bool {
	return strings.Trim(s, "0123456789abcdef") == ""
}

// removeOlderStripped removes, from the kernel's directory dir, the
// stripped copies and sidecars of revisions older than this kstrip's:
// this one never reads them again, and each is an uncompressed kernel's
// size, kept otherwise for good. Copies of this revision (other keep
// lists') and of newer ones (a downgraded binary's strip must not remove
// a newer one's) stay, and so does any file whose name is none
// StripCached gives. A copy another smolvmm may still use stays too, with
// its sidecar: one it holds a lock on (StripCached's, until the kernel
// is loaded); a smolvmm from before those locks takes none, and cannot be
// told from one done with its copy. An unmarked name (from before the
// revision was
// named) goes only with the older copy it is a hard link to
// (adoptUnmarked's): one of lastUnmarkedRevision is this kstrip's copy
// for its keep list, which no name tells from an older revision's, so
// it is left to be adopted, and to the older smolvmm that may still use
// it. Failures are passed over: a copy left is only space.
func removeOlderStripped(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var removed []os.FileInfo
	var unmarked []string
	for _, e := range entries {
		rev, ok := strippedRevision(e.Name())
		if !ok || !e.Type().IsRegular() {
			continue
		}
		sidecar := strings.HasSuffix(e.Name(), ".sha512")
		if rev == 0 {
			if !sidecar {
				unmarked = append(unmarked, e.Name())
			}
			continue
		}
		if rev >= kstrip.Revision {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if sidecar {
			// It goes with its copy (listed before it); one whose
			// copy is gone is only space.
			if _, err := os.Lstat(strings.TrimSuffix(p, ".sha512")); errors.Is(err, fs.ErrNotExist) {
				os.Remove(p)
			}
			continue
		}
		if fi, ok := removeUnheld(p); ok {
			removed = append(removed, fi)
			os.Remove(p + ".sha512")
		}
	}
	for _, name := range unmarked {
		fi, err := os.Lstat(filepath.Join(dir, name))
		if err != nil || !slices.ContainsFunc(removed, func(r os.FileInfo) bool { return os.SameFile(r, fi) }) {
			continue
		}
		os.Remove(filepath.Join(dir, name))
		os.Remove(filepath.Join(dir, name+".sha512"))
	}
}

// StripCached returns a stripped copy of kernel k in the cache beside it,
// stripping it only when no good copy exists for this kernel's digest and
// keep list. The copy's digest is kept in a .sha512 sidecar and checked on
// each use; a copy that no longer matches it is stripped again, and
// reported Changed. A good copy of this revision a smolvmm stripped
// before names said the revision is used, and given the new name as well
// where the cache may be written (adoptUnmarked); Path is its unmarked
// name where it may not. Once it has written a copy, and at each use of
// it in a cache of this user's, it removes those an older kstrip revision
// left beside it (removeOlderStripped). The copy
// returned is held, a shared lock on it that keeps a newer smolvmm from
// removing it, until Close. A copy that
// cannot be stored because the cache may not be
// written is an error matching fetch.ErrCacheNotWritable. Whose the cache
// is, is not looked at again: k comes from a Fetch, which refused root a
// default cache of another user's (fetch.ErrForeignCache).
func StripCached(k fetch.File, keep []string, strip StripFunc) (Stripped, error) {
	path := filepath.Join(filepath.Dir(k.Path), StrippedName(k.SHA512, keep))
	sidecar := path + ".sha512"
	changed := false
	if want, err := os.ReadFile(sidecar); err == nil {
		if h := holdStripped(path); h != nil {
			got, err := fetch.HashFile(path)
			if err == nil && got == strings.TrimSpace(string(want)) {
				// Older copies held when this one was written (a VM
				// an older smolvmm's up runs) go once let go; a use
				// changes no cache but this user's own.
				if ownDir(filepath.Dir(path)) {
					removeOlderStripped(filepath.Dir(path))
				}
				return Stripped{Path: path, Cached: true, hold: h}, nil
			}
			h.Close()
			changed = err == nil
		}
	} else if p, ok := adoptUnmarked(filepath.Dir(path), unmarkedName(k.SHA512, keep), path); ok {
		if h := holdStripped(p); h != nil {
			return Stripped{Path: p, Cached: true, hold: h}, nil
		}
	}
	// A copy a newer smolvmm removed between its write and the lock
	// (its removal of older revisions' copies) is stripped once more.
	for tries := 0; ; tries++ {
		os.Remove(sidecar)
		summary, err := strip(k.Path, path, keep)
		if err != nil {
			return Stripped{}, fmt.Errorf("%s: %w", k.Path, cacheErr(err))
		}
		h := holdStripped(path)
		if h == nil && tries == 0 {
			continue
		}
		if h == nil {
			return Stripped{}, fmt.Errorf("stripped kernel %s: removed as soon as it was written, twice", path)
		}
		sum, err := fetch.HashFile(path)
		if err == nil {
			err = atomicfile.WriteFile(sidecar, []byte(sum+"\n"), 0o644)
		}
		if err != nil {
			h.Close()
			return Stripped{}, fmt.Errorf("store stripped kernel %s: %w", path, cacheErr(err))
		}
		// Only once a copy was written: the cache may be written, and
		// this revision's copy is there to be used instead of the older
		// ones.
		removeOlderStripped(filepath.Dir(path))
		return Stripped{Path: path, Changed: changed, Summary: summary, hold: h}, nil
	}
}

// ownDir reports whether dir belongs to this process's effective user.
func ownDir(dir string) bool {
	var st unix.Stat_t
	return unix.Stat(dir, &st) == nil && int(st.Uid) == os.Geteuid()
}

// cacheErr is err, matching fetch.ErrCacheNotWritable too when it says
// the release's cache, where the stripped copy is kept, may not be
// written (a read-only file system, another user's cache), and
// fetch.ErrNoSpace when that cache is full, as a download into it does.
func cacheErr(err error) error {
	if errors.Is(err, fs.ErrPermission) || errors.Is(err, unix.EROFS) {
		return cacheNotWritable{err}
	}
	if errors.Is(err, unix.ENOSPC) && !errors.Is(err, fetch.ErrNoSpace) {
		return cacheNoSpace{err}
	}
	return err
}

// cacheNoSpace is the system's error, said as it is, matching
// fetch.ErrNoSpace as well.
type cacheNoSpace struct{ err error }

func (e cacheNoSpace) Error() string   { return e.err.Error() }
func (e cacheNoSpace) Unwrap() []error { return []error{fetch.ErrNoSpace, e.err} }

// cacheNotWritable is the system's error, said as it is, matching
// fetch.ErrCacheNotWritable as well.
type cacheNotWritable struct{ err error }

func (e cacheNotWritable) Error() string   { return e.err.Error() }
func (e cacheNotWritable) Unwrap() []error { return []error{fetch.ErrCacheNotWritable, e.err} }
