package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"

	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/ext2"
	"github.com/smolvmm/smolvmm/internal/atomicfile"
	"github.com/smolvmm/smolvmm/internal/lockholder"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/rebuild"
	"github.com/smolvmm/smolvmm/service"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// upService is what `up` needs to know about a service.
type upService struct {
	Sets    []string  // set names, e.g. ["rescue"]
	SizeMB  int       // image size; 0 means sized to content
	ModTime time.Time // newest of the service's input files; zero for a built-in one
	Digest  string    // of its name and input files (rebuild.ServiceDigest): an image built from another is rebuilt
	Where   string    // "embedded" or the directory it came from
	// Service is the service as loaded, which the build reads (nil from
	// a test's fake).
	Service *service.Service
}

// upBuild asks for one image.
type upBuild struct {
	Service string
	Svc     *service.Service // the service loaded once by up, its Config used
	Sets    []string         // verified set files
	Arch    string           // the release's port, which decides the /dev numbers
	SizeMB  int
	Out     string    // the image, created or replaced atomically (never half written)
	Log     io.Writer // output of the service's postinst scripts
	// Replace decides, right before the rename, whether the file then at
	// Out may be replaced (imagebuilder.Config.Replace); with no file
	// there, none that appears is replaced.
	Replace func(old *os.File) error
	// Timestamp and TimestampSet are imagebuilder.Config's: the time of
	// the superblock and of the files without one of their own.
	Timestamp    int64
	TimestampSet bool
}

// upDeps are the stages `up` drives, as functions so that each can be
// replaced in tests and wired to its package in one place (upDefaults).
type upDeps struct {
	service func(name, dir string) (upService, error)
	fetch   func(ctx context.Context, sets []string) (*fetch.Release, error)
	keep    []string // kstrip keep list; part of the stripped kernel's cache key
	strip   upStripFunc
	build   func(ctx context.Context, b upBuild) (string, error)
	run     func(ctx context.Context, kernel, image string) error
	// canRun, when set, checks what the run will need of the host (KVM)
	// once the service is known, before the download.
	canRun func() error
}

// upStripFunc is a rebuild.StripFunc that also hands each of kstrip's
// warnings to warn, for up to print.
type upStripFunc func(in, out string, keep []string, warn func(string)) (summary string, err error)

// maxStripWarnings is how many kstrip warnings up prints before it only
// counts the rest: smolvmm kstrip on the same kernel prints them all.
const maxStripWarnings = 10

// upOptions are the choices of one `up` run.
type upOptions struct {
	Service    string
	ServiceDir string
	Image      string // image path; <service>.img when empty
	// KeepImage boots an existing ext2 image as it is, whatever up
	// would rebuild it for, and records it as built from this release
	// and service (--keep-image).
	KeepImage bool
	// Timestamp and TimestampSet are the image's time, as in
	// imagebuilder.Config (unset: the time of the build).
	Timestamp    int64
	TimestampSet bool
}

// image is the image path: Image, or <service>.img.
func (o upOptions) image() string {
	if o.Image == "" {
		return o.Service + ".img"
	}
	return o.Image
}

// upResult says where things ended up (for tests and the final message).
type upResult struct {
	Release *fetch.Release
	Kernel  string // stripped kernel
	Image   string
	Built   bool // the image was (re)built this run
}

// up fetches what the service needs, strips the kernel, builds the image
// when needed and runs it, logging each step and its time on log.
func up(ctx context.Context, log io.Writer, d upDeps, o upOptions) (*upResult, error) {
	res := &upResult{Image: o.image()}
	var svc upService
	err := step(log, "service", func() (string, error) {
		var err error
		svc, err = d.service(o.Service, o.ServiceDir)
		if err != nil {
			return "", err
		}
		// A user who may not open /dev/kvm (not in the kvm group) learns
		// it once the service is known to exist, with run's advice, not
		// after the download, strip and build.
		if d.canRun != nil {
			if err := d.canRun(); err != nil {
				return "", selfNamed{err}
			}
		}
		size := "sized to content"
		if svc.SizeMB > 0 {
			size = fmt.Sprintf("%d MiB", svc.SizeMB)
		}
		return fmt.Sprintf("%s (%s): sets %s, image %s", o.Service, svc.Where, strings.Join(svc.Sets, ","), size), nil
	})
	if err != nil {
		return res, err
	}
	err = step(log, "fetch", func() (string, error) {
		var err error
		if res.Release, err = d.fetch(ctx, svc.Sets); err != nil {
			return "", err
		}
		for _, f := range append([]fetch.File{res.Release.Kernel}, res.Release.Sets...) {
			fmt.Fprintf(log, "smolvmm up:   %s\n", describeFile(f))
		}
		return fmt.Sprintf("NetBSD %s/%s: %d files verified, %d HTTP requests",
			res.Release.Version, res.Release.Arch, 1+len(res.Release.Sets), res.Release.Requests), nil
	})
	if err != nil {
		return res, err
	}
	// The stripped copy stays held (a shared lock a newer smolvmm's
	// removal of older revisions' copies respects) until up returns: the
	// run loads it, with --jail in another process, and up cannot tell
	// when that is done.
	var stripped rebuild.Stripped
	defer func() { stripped.Close() }()
	err = step(log, "kstrip", func() (string, error) {
		warned := 0
		warn := func(w string) {
			if warned++; warned <= maxStripWarnings {
				fmt.Fprintln(log, noticeLine("up", "kstrip warning", w))
			}
		}
		k, err := rebuild.StripCached(res.Release.Kernel, d.keep, func(in, out string, keep []string) (string, error) {
			return d.strip(in, out, keep, warn)
		})
		if more := warned - maxStripWarnings; more > 0 {
			fmt.Fprintln(log, noticeLine("up", "kstrip warning", fmt.Sprintf("%d more (smolvmm kstrip --dry-run %s prints them all)", more, shellWord(res.Release.Kernel.Path))))
		}
		if err != nil {
			return "", err
		}
		stripped = k
		res.Kernel = k.Path
		if k.Changed {
			fmt.Fprintln(log, noticeLine("up", "note", fmt.Sprintf("the stripped kernel %s was changed since up made it; stripped again", k.Path)))
		}
		if k.Cached {
			return "cached " + k.Path, nil
		}
		return k.Summary + " -> " + k.Path, nil
	})
	if err != nil {
		return res, err
	}
	err = step(log, "mkimg", func() (string, error) {
		if svc.Service != nil {
			// Its files as the build will read them, not as before the
			// download: an edit made meanwhile is built in, and this
			// digest recorded, not the one of the files it replaced.
			var err error
			if svc.ModTime, svc.Digest, err = dateUpService(svc.Service); err != nil {
				return "", err
			}
		}
		im := rebuild.Image{Path: res.Image, ServiceTime: svc.ModTime, Digest: svc.Digest,
			Builder: imagebuilder.Revision, Release: rebuild.ReleaseKey(res.Release),
			Stamp: rebuild.ReleaseStamp(res.Release, res.Image)}
		for _, s := range res.Release.Sets {
			im.Sets = append(im.Sets, s.Path)
		}
		// The stamp is named after the image's path: one left under the
		// path the image (or its directory) was renamed from is the
		// image's still, where its file ID identifies it (a birth time
		// or an inode generation number).
		judge := func() (rebuild.Verdict, error) {
			im.Unrecorded = nil
			im.Stamp.Moved(res.Image)
			if !im.Stamp.Describes(res.Image) {
				im.Unrecorded = im.Stamp.Writable()
			}
			return im.Check()
		}
		verdict, err := judge()
		if err != nil {
			return "", err
		}
		if verdict != rebuild.Fresh && im.Unrecorded == nil {
			// Another up puts its image in place and then records it:
			// judged in between, its image is one no record describes
			// (NotRecorded), and it is judged again once that up, which
			// holds this lock from before its build to after the
			// record, is done. A build holds it the same way.
			unlock, err := lockImageRecord(ctx, log, im.Stamp, res.Image)
			if err != nil {
				return "", err
			}
			defer unlock()
			if verdict, err = judge(); err != nil {
				return "", err
			}
		}
		if im.Unrecorded != nil && verdict != rebuild.Missing {
			fmt.Fprintln(log, noticeLine("up", "note", fmt.Sprintf("the release %s was built from cannot be checked: no record of it can be kept in the cache (%v); its dates alone decide whether it is rebuilt", res.Image, im.Unrecorded)))
		}
		if o.KeepImage && verdict != rebuild.Fresh && verdict != rebuild.Missing && verdict != rebuild.NotImage {
			// The user's word that the image is this release's and
			// service's: recorded, so that the next up boots it too.
			digest := svc.Digest
			if digest == "" {
				digest = rebuild.FilesDigest
			}
			if err := im.Stamp.Record(res.Image, digest, imagebuilder.Revision, im.Release); err != nil {
				fmt.Fprintln(log, noticeLine("up", "note", fmt.Sprintf("cannot record %s as built from NetBSD %s/%s's sets (%v); the next up judges it as this one would have without --keep-image", res.Image, res.Release.Version, res.Release.Arch, err)))
			}
			if svc.Service != nil {
				imagebuilder.WarnIgnoredPostinst(svc.Service, newBuildLog(log, "up"))
			}
			return fmt.Sprintf("%s kept as it is (--keep-image), though %s", res.Image, verdict), nil
		}
		verb := "built"
		// The file judged, nil when there is none: the build takes
		// seconds, and the image is put in place only over this file,
		// unused then (commitCheck).
		var judged os.FileInfo
		switch verdict {
		case rebuild.Fresh:
			if svc.Service != nil {
				// A build warns of them: one not built is still told.
				imagebuilder.WarnIgnoredPostinst(svc.Service, newBuildLog(log, "up"))
			}
			if svc.Digest != "" && im.Stamp.Describes(res.Image) {
				return fmt.Sprintf("%s is up to date (built by up from the service's files as they are now, and from these sets)", res.Image), nil
			}
			if svc.ModTime.IsZero() {
				return fmt.Sprintf("%s is up to date (newer than its sets)", res.Image), nil
			}
			return fmt.Sprintf("%s is up to date (newer than the service and its sets)", res.Image), nil
		case rebuild.NotImage:
			// Not what mkimg builds: never booted as the service's
			// root, and replaced only if up built this very file
			// (something wrote over it since); another file under
			// the image's name may be the user's own.
			if !im.Stamp.Describes(res.Image) {
				return "", selfNamed{notUpImageError(res.Image)}
			}
			if err := checkNotInUse(res.Image); err != nil {
				return "", err
			}
			if judged, err = os.Stat(res.Image); err != nil {
				return "", err
			}
			verb = "rebuilt (it was no longer an ext2 image)"
		case rebuild.NotRecorded:
			// Only a record proves up built the image; one it cannot
			// find (a cache cleared, an image copied) may be the only
			// copy of what a guest wrote, never replaced unasked. One
			// another release's record describes was built for that
			// release: --keep-image would boot it with this one's
			// kernel, and is not what to offer.
			if id, err := rebuild.ImageID(res.Image); err == nil && !rebuild.Identifies(id) {
				return "", selfNamed{unidentifiedError(res.Image)}
			}
			if others := im.Stamp.OtherReleases(res.Image); len(others) > 0 {
				return "", selfNamed{builtForOtherReleaseError(res.Image, res.Release, others)}
			}
			return "", selfNamed{notRecordedError(res.Image, res.Release)}
		case rebuild.Older, rebuild.ServiceChanged, rebuild.BuilderChanged, rebuild.OtherRelease:
			// The old image, and whatever the guest wrote to it, is replaced;
			// never under a running VM, which would go on writing to the
			// unlinked file while this one boots the new image.
			if err := checkNotInUse(res.Image); err != nil {
				return "", err
			}
			if judged, err = os.Stat(res.Image); err != nil {
				return "", err
			}
			verb = "rebuilt (it was older than the service or a set)"
			switch verdict {
			case rebuild.ServiceChanged:
				verb = "rebuilt (up built it from another service, or from other files of this one, or did not record which)"
			case rebuild.BuilderChanged:
				verb = "rebuilt (it was built by an older smolvmm image builder)"
			case rebuild.OtherRelease:
				// The release's record says up built this very file
				// from other sets: another list, or a mirror's new bytes.
				verb = fmt.Sprintf("rebuilt (up built it from another list of NetBSD %s/%s's sets, or from sets of other bytes)", res.Release.Version, res.Release.Arch)
			}
		}
		// The build replaces the image through a temporary file of its
		// own (atomicfile): two ups never share one. Whether it can make
		// one is known before the sets are read.
		if err := checkWritable("image "+res.Image, res.Image); err != nil {
			return "", err
		}
		if t, err := atomicfile.Target(res.Image); err == nil {
			if err := checkWriteProtected("image", res.Image, t, "up", "give -i another file"); err != nil {
				return "", selfNamed{err}
			}
		}
		msg, err := d.build(ctx, upBuild{Service: o.Service, Svc: svc.Service, Sets: im.Sets, Arch: res.Release.Arch, SizeMB: svc.SizeMB, Out: res.Image, Log: log,
			Replace: commitCheck(res.Image, judged), Timestamp: o.Timestamp, TimestampSet: o.TimestampSet})
		var refused imageTakenError
		var exists *atomicfile.ExistsError
		switch {
		case errors.As(err, &refused):
			return "", selfNamed{refused}
		case errors.As(err, &exists):
			// It appeared between commitCheck's look and the rename.
			return "", selfNamed{imageTakenError{fmt.Errorf("image %s appeared while up built it: %s", res.Image, imageTakenAdvice)}}
		case err != nil:
			return "", err
		}
		res.Built = true
		// Recorded for every service: it tells an image up built from
		// another file later found under its name (NotImage), and
		// which service's files it was built from.
		digest := svc.Digest
		if digest == "" {
			digest = rebuild.FilesDigest
		}
		if err := im.Stamp.Record(res.Image, digest, imagebuilder.Revision, im.Release); err != nil {
			// The next up then finds an image no record describes
			// (NotRecorded), which it neither boots nor replaces.
			fmt.Fprintln(log, noticeLine("up", "note", fmt.Sprintf("cannot record which release and service built %s (%v); the next up will find no record of it and stop, leaving it as it is (unless no record can be kept in the cache at all then, where its dates decide): run that up with --keep-image to boot it as it is, or remove the image to have it built again", res.Image, err)))
		}
		return fmt.Sprintf("%s %s: %s", verb, res.Image, msg), nil
	})
	if err != nil {
		return res, err
	}
	fmt.Fprintf(log, "smolvmm up: run     %s with %s as ld0\n", res.Kernel, res.Image)
	start := time.Now()
	err = d.run(ctx, res.Kernel, res.Image)
	var ns notStartedError
	if errors.As(err, &ns) {
		return res, ns.error // no VM ran: its time would say one did
	}
	fmt.Fprintf(log, "smolvmm up: run     ended after %s\n", roundDuration(time.Since(start)))
	return res, err
}

// upWaiting, when set (by tests), is called once when up begins to wait
// for another up's lock on the record of image.
var upWaiting func(image string)

// lockImageRecord takes the exclusive flock every up holds on a lock file
// beside the image's record (stamp) while it judges the image and, when
// it builds one, until the image is in place and recorded: a lock file,
// for the record itself is replaced at every write. It waits for another
// up holding it, saying so on log, until ctx ends. A lock file that
// cannot be made or locked (a file system without flock) locks nothing:
// up goes on as it did without. It is mode 0600, as the cache's own lock
// file: no other user sharing the cache can hold it and keep up waiting.
func lockImageRecord(ctx context.Context, log io.Writer, stamp rebuild.Stamp, image string) (unlock func(), err error) {
	f, err := os.OpenFile(strings.TrimSuffix(string(stamp), ".service")+".lock", os.O_RDONLY|os.O_CREATE, 0o600)
	if err != nil {
		return func() {}, nil
	}
	for waited := false; ; {
		err := flockRetry(f, unix.LOCK_EX|unix.LOCK_NB) // kstrip.go
		switch {
		case err == nil:
			return func() { f.Close() }, nil
		case !errors.Is(err, unix.EWOULDBLOCK):
			f.Close()
			return func() {}, nil
		case ctx.Err() != nil:
			f.Close()
			return nil, ctx.Err()
		}
		if !waited {
			waited = true
			holder := lockholder.Describe(f)
			if holder == "" {
				holder = "another up"
			}
			fmt.Fprintln(log, noticeLine("up", "", fmt.Sprintf("waiting for %s, which is building or recording %s", holder, image)))
			if upWaiting != nil {
				upWaiting(image)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// notStartedError is the error of up's run step when the machine never
// started: its setup failed (an image locked by another VM) or was
// stopped. up says the error alone, with no time the VM ran.
type notStartedError struct{ error }

func (e notStartedError) Unwrap() error { return e.error }

// vmNotStarted marks err, when there is one, as a run's whose machine
// never started.
func vmNotStarted(err error) error {
	if err == nil {
		return nil
	}
	return notStartedError{err}
}

// checkNotInUse fails when a VM holds the lock smolvmm takes on its disk
// images (flock, shared for read-only disks).
func checkNotInUse(image string) error {
	// O_NONBLOCK: a FIFO put there since it was checked must not hang us.
	f, err := os.OpenFile(image, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("image %s: %w", image, err)
	}
	defer f.Close()
	return lockImage(f, image)
}

// imageTakenAdvice ends the refusal of an image that changed while up
// built its new one.
const imageTakenAdvice = "it is left as it is and the image up built discarded (another up, or smolvmm run, may be using it): run up again once that is done, or give -i another file"

// imageTakenError is up's refusal to put the image it built in place:
// the file at the image's path is no longer the one up judged (or one
// appeared where there was none), or a VM began to use it.
type imageTakenError struct{ error }

func (e imageTakenError) Unwrap() error { return e.error }

// commitCheck is the check, right before the rename, of the file then at
// image: it must be judged, the file up decided to replace (nil: there
// was none), and no VM may use it; the lock it takes for that is held
// until the new image is in place, so no VM starts on the old one.
func commitCheck(image string, judged os.FileInfo) func(old *os.File) error {
	return func(old *os.File) error {
		st, err := old.Stat()
		if err != nil {
			return fmt.Errorf("image %s: %w", image, err)
		}
		if judged == nil {
			what := fmt.Sprintf("a file of %d bytes", st.Size())
			if errors.Is(unix.Flock(int(old.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK) {
				what += ", in use by a running VM"
				if h := lockholder.Describe(old); h != "" {
					what += ", its lock held by " + h
				}
			} else if err := blk.CheckQEMULocks(old, image); errors.Is(err, blk.ErrInUse) {
				what += ", in use by a running VM (" + err.Error() + ")"
			}
			return imageTakenError{fmt.Errorf("image %s appeared while up built it (%s): %s", image, what, imageTakenAdvice)}
		}
		if !os.SameFile(st, judged) {
			return imageTakenError{fmt.Errorf("image %s was replaced by another file while up built its new image: %s", image, imageTakenAdvice)}
		}
		if err := lockImage(old, image); err != nil {
			return imageTakenError{fmt.Errorf("%w; the image up built is discarded", err)}
		}
		return nil
	}
}

// lockImage takes, on f (image), the lock a VM holds on its disk, or
// says the VM holding it. A QEMU running on the image takes no flock but
// byte-range locks of its own, which are looked for too (blk's probe):
// the flock alone would let the image be replaced under it.
func lockImage(f *os.File, image string) error {
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			msg := fmt.Sprintf("image %s is in use by a running VM: stop that VM before replacing the image", image)
			if h := lockholder.Describe(f); h != "" {
				msg += " (its lock is held by " + h + ")"
			}
			return errors.New(msg)
		}
		return fmt.Errorf("image %s: lock: %w", image, err)
	}
	return notInQEMU(f, image) // closing f drops the lock
}

// notInQEMU refuses, for replacing it, the image f (at image) a QEMU
// running on it holds: by byte-range locks of its own (blk's probe), not
// the flock a VM of ours holds, which the caller has taken.
func notInQEMU(f *os.File, image string) error {
	if err := blk.CheckQEMULocks(f, image); err != nil {
		if errors.Is(err, blk.ErrInUse) {
			return fmt.Errorf("%w: stop that VM before replacing the image", err)
		}
		return err
	}
	return nil
}

// step runs one stage and logs "smolvmm up: <name> <what it did> (<time>)".
// selfNamed is a step's error that says what failed without the step's
// name: "service: no service "x"" said it twice.
type selfNamed struct{ error }

// notUpImageError refuses image, a file that is no ext2 image and that up
// did not build: it may be the user's own, never to be written over.
func notUpImageError(image string) error {
	return fmt.Errorf("image %s is not an ext2 image, and up did not build it: up replaces only images it built; move it away, or give another image with -i", image)
}

func (e selfNamed) Unwrap() error { return e.error }

// notRecordedError refuses to replace image, an ext2 image no record in
// release r's cache says up built from r's sets: it may hold what a guest
// wrote, the record having gone with a cleared cache, or be a copy, an
// image mkimg built, or one up built for another release or port.
func notRecordedError(image string, r *fetch.Release) error {
	return fmt.Errorf("image %s: no record in the cache says up built it from NetBSD %s/%s's sets "+
		"(the records go with a cleared cache or a move to another file system, and one an up before inode generation numbers were read kept on a file system without birth times no longer counts; a copy, an image mkimg built, "+
		"or one up built for another --version or --arch has none): up does not replace it, which would lose what was written to it; "+
		"to boot it as it is, and have up record it as this release's, run up again with --keep-image; "+
		"to have up build a new one, remove it (rm %s); or give another image with -i",
		image, r.Version, r.Arch, image)
}

// unidentifiedError refuses image, an ext2 image on a file system that
// keeps neither birth times nor inode generation numbers (ramfs, some
// network file systems): no record can tell it from a file later given
// its inode number, so none says up built it, and none can be kept.
func unidentifiedError(image string) error {
	return fmt.Errorf("image %s: its file system keeps neither birth times nor inode generation numbers, "+
		"so no record in the cache can tell it from another file later given its inode number, and up keeps none: "+
		"up neither boots nor replaces an image no record describes, which may hold what was written to it; "+
		"to boot it as it is, run up with --keep-image (every time: up cannot record it); "+
		"or give, with -i, an image on a file system that keeps either, such as ext4 or xfs",
		image)
}

// builtForOtherReleaseError refuses image, an ext2 image the records of
// other releases in the cache (their directories, dirs: <cache>/V/A)
// say up built from their sets, and none from release r's: booted by r's
// kernel (another port's programs) it would not run, and replaced it
// would lose what was written to it.
func builtForOtherReleaseError(image string, r *fetch.Release, dirs []string) error {
	names := make([]string, len(dirs))
	for i, d := range dirs {
		names[i] = fmt.Sprintf("NetBSD %s/%s", filepath.Base(filepath.Dir(d)), filepath.Base(d))
	}
	boot := "run up with the --version and --arch of one of those"
	if len(dirs) == 1 {
		boot = fmt.Sprintf("run up with --version %s --arch %s", filepath.Base(filepath.Dir(dirs[0])), filepath.Base(dirs[0]))
	}
	return fmt.Errorf("image %s: up built it for %s, and no record in the cache says it did from NetBSD %s/%s's sets: "+
		"up neither boots it with NetBSD %s/%s's kernel nor replaces it, which would lose what was written to it; "+
		"to have up build one for NetBSD %s/%s, remove it (rm %s), or give another image with -i; to boot it as it is, %s",
		image, strings.Join(names, " and "), r.Version, r.Arch, r.Version, r.Arch, r.Version, r.Arch, image, boot)
}

func step(log io.Writer, name string, fn func() (string, error)) error {
	start := time.Now()
	msg, err := fn()
	var said selfNamed
	if errors.As(err, &said) {
		return said.error
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	fmt.Fprintf(log, "smolvmm up: %-7s %s (%s)\n", name, msg, roundDuration(time.Since(start)))
	return nil
}

func upCommand() *cli.Command {
	flags := append(releaseFlags(),
		&cli.StringFlag{Name: "image", Aliases: []string{"i"}, Usage: "image `FILE` (default <service>.img in the current directory)"},
		&cli.StringFlag{Name: "service-dir", Usage: "`DIR` holding your own services (<name>/etc/rc, optional <name>/service.conf)"},
		&cli.BoolFlag{Name: "keep-image", Usage: "boot the existing image as it is, never rebuilt, and record it as built from this release and service (one no record names, after the cache was cleared, is otherwise refused)"},
	)
	// run's flags but -k (up picks the kernel), --restore and
	// --no-verify-memory (up builds and boots; restore with run).
	for _, f := range withoutFlags(append(append(runFlags(), netFlags()...), snapshotWriteFlags()...), flagNames(flags)) {
		if d, ok := f.(*cli.StringSliceFlag); ok && d.Name == "disk" {
			// The service's image is ld0 here.
			c := *d
			c.Usage = "more virtio-blk disk `IMAGE`s after the service's image (ld1, ld2, ...), optionally followed by ,ro and ,serial=ID"
			f = &c
		}
		flags = append(flags, f)
	}
	return &cli.Command{
		Name:      "up",
		Usage:     "fetch, strip, build and boot a NetBSD service VM in one step",
		ArgsUsage: "SERVICE",
		Description: `Runs the whole chain for a service (rescue, base, or one of yours):
   1. fetch   the release's kernel and the service's sets, verified (cached)
   2. kstrip  the kernel with the default keep list (cached per kernel)
   3. mkimg   <service>.img (or -i FILE), when missing, older than the sets
              where no record names the release it was built from (the
              record holds the sets' SHA512s: a set fetched again with the
              same bytes rebuilds nothing), or built by up from another
              service or other files of it
              (etc/, postinst/, service.conf and common/, by content), or
              from other sets of this release, or no longer an ext2 image;
              never while a VM uses it. An image no record in the cache
              says up built from this release (one image name serves every
              --version and --arch; a cleared cache keeps no record) is
              neither rebuilt nor booted: up stops and says what to do
              (up for the release another record names, or --keep-image,
              boots it as it is); a file up did not build is left alone
   4. run     the stripped kernel with the image as ld0 (root=ld0a)
Each step prints what it did and how long it took.

Examples:
   smolvmm up rescue
   smolvmm up --version 9.3 -m 256 base
   smolvmm up --service-dir ./services myservice`,
		Flags: flags,
		Action: func(c *cli.Context) error {
			if err := checkArgs(c, 1, "one SERVICE"); err != nil {
				return err
			}
			if c.NArg() == 0 {
				return usageErrorf("want exactly one SERVICE after the flags (e.g. smolvmm up rescue)")
			}
			// A name no service can have is a slip on the command line.
			if err := service.CheckName(c.Args().First()); err != nil {
				return usageErrorf("%v", err)
			}
			// A typo in a run flag, a missing disk or an image that cannot
			// be written fails now, not after the download and build.
			if err := checkRunFlags(c); err != nil {
				return err
			}
			if err := checkSnapshotFlags(c); err != nil { // snapshot.go
				return err
			}
			// The image's /dev numbers depend on the port: one up cannot
			// build an image for is refused before the download.
			if err := imagebuilder.CheckArch(c.String("arch")); err != nil {
				return archError(err)
			}
			if err := checkUpBoot(c); err != nil {
				return err
			}
			o := upOptions{Service: c.Args().First(), ServiceDir: c.String("service-dir"), Image: c.String("image"), KeepImage: c.Bool("keep-image")}
			// The build is mkimg's, with mkimg's default time
			// ($SOURCE_DATE_EPOCH, else now), so that its image is as
			// reproducible; a bad value fails before the download. The
			// time is not recorded with the image: it changes only
			// dates, and a rebuild for it would throw away what the
			// guest wrote (with SOURCE_DATE_EPOCH unset, at every run).
			ts, err := parseTimestamp("") // mkimg.go
			if err != nil {
				return err
			}
			o.Timestamp, o.TimestampSet = ts, true
			if err := checkSnapshotNotImage(c.String("snapshot"), o.image()); err != nil {
				return err
			}
			if err := checkImageOutsideService(o.image(), o.ServiceDir, o.Service); err != nil { // checks.go
				return err
			}
			if err := upPreflight(c, o.image()); err != nil {
				return err
			}
			d, err := upDefaults(c)
			if err != nil {
				return err
			}
			// Signals stop the download, strip and build cleanly, as in
			// fetch; the VM's run has its own handling.
			ctx, stop := signalContext(c.Context)
			defer stop()
			_, err = up(ctx, c.App.ErrWriter, d, o)
			return interrupted(ctx, err)
		},
	}
}

// checkUpBoot refuses a --boot multiboot that the NetBSD kernel up boots
// cannot take, which the run refused after the download, strip and build.
func checkUpBoot(c *cli.Context) error {
	if p, _ := bootplan.ParseProtocol(c.String("boot")); p != bootplan.Multiboot { // checked by checkRunFlags
		return nil
	}
	if c.String("arch") == "amd64" {
		return usageErrorf("--boot multiboot: NetBSD/amd64's kernel is ELF64, and multiboot v1 loads ELF32 kernels only; drop --boot, or use --boot netbsd")
	}
	if mods := c.StringSlice("module"); len(mods) > 0 {
		return usageErrorf("--boot multiboot --module %s: up boots a NetBSD kernel, whose multiboot entry does not read boot modules; drop --boot, or use --boot netbsd, NetBSD's native handoff, which passes them", mods[0])
	}
	return nil
}

// upRunOnly is what to use instead of run's flag name, which up has not,
// or "". (A switch: a map would be built at every start.)
func upRunOnly(name string) string {
	switch name {
	case "k", "kernel":
		return "up boots the kernel it fetches; to boot your own kernel use smolvmm run -k FILE"
	case "restore":
		return "restore a snapshot with smolvmm run --restore FILE"
	case "no-verify-memory":
		return "it goes with --restore: restore a snapshot with smolvmm run --restore FILE"
	}
	return ""
}

// upRunOnlyFlag is the refusal of a flag of run's that up has not (msg
// is the flag parser's error): "unknown flag -k" with "see smolvmm up
// --help" would not tell that it is run's.
func upRunOnlyFlag(c *cli.Context, msg string) (string, bool) {
	name, ok := strings.CutPrefix(msg, "flag provided but not defined: -")
	if !ok || c.Command == nil || c.Command.Name != "up" {
		return "", false
	}
	name = strings.TrimPrefix(name, "-")
	hint := upRunOnly(name)
	if hint == "" {
		return "", false
	}
	return fmt.Sprintf("unknown flag %s: %s", dashed(name), hint), true
}

// checkSnapshotNotImage refuses a --snapshot that is up's image (by name,
// before the image exists, or the same file through a link): the snapshot
// would replace the disk it records.
func checkSnapshotNotImage(snap, image string) error {
	if snap == "" {
		return nil
	}
	sa, _ := filepath.Abs(snap)
	ia, _ := filepath.Abs(image)
	same := sa == ia
	if st, err := os.Stat(snap); err == nil {
		if ist, err := os.Stat(image); err == nil && os.SameFile(st, ist) {
			same = true
		}
	}
	if same {
		return usageErrorf("--snapshot %s is the image up boots (%s): the snapshot would replace it; write the snapshot elsewhere", snap, image)
	}
	return nil
}

func flagNames(flags []cli.Flag) map[string]bool {
	m := map[string]bool{}
	for _, f := range flags {
		for _, n := range namesOf(f) {
			m[n] = true
		}
	}
	return m
}

// namesOf is f.Names() read from the flag's fields: urfave/cli's Names
// cleans each name with a regular expression (for names written in its
// v1 style, "name, n", which smolvmm's are not), ~40 KB of allocations
// for up's flags alone, made at every start, since every command is built
// before one runs.
func namesOf(f cli.Flag) []string {
	var name string
	var aliases []string
	switch f := unwrapFlag(f).(type) { // flagnames.go
	case *cli.StringFlag:
		name, aliases = f.Name, f.Aliases
	case *cli.BoolFlag:
		name, aliases = f.Name, f.Aliases
	case *cli.IntFlag:
		name, aliases = f.Name, f.Aliases
	case *cli.StringSliceFlag:
		name, aliases = f.Name, f.Aliases
	case *cli.DurationFlag:
		name, aliases = f.Name, f.Aliases
	default:
		return f.Names()
	}
	return append([]string{name}, aliases...)
}

// withoutFlags drops flags whose names are already taken, so that up can
// take run's flags as they grow without a duplicate name.
func withoutFlags(flags []cli.Flag, taken map[string]bool) []cli.Flag {
	var out []cli.Flag
	for _, f := range flags {
		dup := false
		for _, n := range namesOf(f) {
			dup = dup || taken[n]
		}
		if !dup {
			out = append(out, f)
		}
	}
	return out
}

// upDefaults wires up's stages to the real packages, configured by the
// command line.
func upDefaults(c *cli.Context) (upDeps, error) {
	f := newFetcher(c, os.Stderr)
	d := newUpDeps(f, c.String("version"), c.String("arch"), func(ctx context.Context, kernel, image string) error {
		if ran, err := upJailed(c, kernel, image); ran {
			return err
		}
		ctx, stop := runSignals(ctx) // run.go: SIGHUP too, as for run
		defer stop()
		cfg, cleanup, err := vmConfig(ctx, c)
		defer cleanup()
		if err != nil {
			return vmNotStarted(interrupted(ctx, err))
		}
		cfg.Kernel = kernel
		cfg.Disks = append([]blk.Spec{{Path: image}}, cfg.Disks...)
		// The machine started if it reached its first KVM_RUN; runVM
		// passes its events on (m.Run has returned when it does).
		started := false
		cfg.OnEvent = func(e vmm.Event) { started = started || e.Phase == vmm.PhaseFirstRun }
		// runVM reads the network flags (--net, -p, --mac) as for run.
		err = releaseKernelHint(runVM(ctx, c, cfg, vmm.Exit.Status), c.String("version"), c.String("arch"), kernel)
		if n, ok := diskIndex(err); ok && n == 0 { // snapshot.go
			err = upImageError{err}
		}
		if !started {
			return vmNotStarted(err)
		}
		return err
	})
	d.canRun = func() error { return vmm.CheckKVM(c.String("kvm-device")) }
	return d, nil
}

// upImageError is the machine's refusal of up's own image, ld0, which -i
// or the service named, not a -d: the advice for a -d's (,ro after it)
// does not fit it (advice.go: upImageRefused).
type upImageError struct{ error }

func (e upImageError) Unwrap() error { return e.error }

// upJailed boots up's VM as smolvmm run --jail would (jail.go), when
// --jail is given (ran). An error before the jailed VMM's process started
// is marked vmNotStarted: no VM ran (a tap that cannot be opened, no
// namespaces, a jail that failed to start).
func upJailed(c *cli.Context, kernel, image string) (ran bool, err error) {
	ran, started, err := jailRun(c, upRunArgs(c, kernel, image))
	if !ran {
		return false, nil
	}
	err = releaseKernelHint(err, c.String("version"), c.String("arch"), kernel)
	if !started {
		err = vmNotStarted(err)
	}
	return true, err
}

// releaseKernelHint rewrites the advice of an error about the kernel,
// which up fetched and stripped itself: "pass a kernel" or "check -k"
// would ask the user for what up chose.
func releaseKernelHint(err error, version, arch, kernel string) error {
	var ve *vmm.Error
	if !errors.As(err, &ve) || ve.Field != "Kernel" {
		return err
	}
	ve.Field = "" // not a flag of up's to change
	if ve.Hint == "" {
		// The file's own fault, which the loader's words name (a
		// malformed ELF, a segment in low memory): the file is damaged,
		// and another release or machine is no answer.
		ve.Hint = fmt.Sprintf("this is NetBSD %s/%s's own kernel, fetched and stripped by up (%s): remove that file to have up strip it again", version, arch, kernel)
		return err
	}
	ve.Hint = fmt.Sprintf("this is NetBSD %s/%s's own kernel, fetched and stripped by up (%s); "+
		"smolvmm boots i386 and amd64 kernels: try another --version or --arch, or remove that file to have up strip it again",
		version, arch, kernel)
	return err
}

// newUpDeps wires up's stages: f fetches release version/arch, run boots.
func newUpDeps(f *fetch.Fetcher, version, arch string, run func(ctx context.Context, kernel, image string) error) upDeps {
	return upDeps{
		service: loadUpService,
		fetch: func(ctx context.Context, sets []string) (*fetch.Release, error) {
			return f.Fetch(ctx, version, arch, sets...)
		},
		keep:  kstrip.DefaultKeep,
		strip: stripKernel,
		build: buildUpImage,
		run:   run,
	}
}

// loadUpService loads a service (embedded, or from dir) and what dates it
// (rebuild.ServiceDate).
func loadUpService(name, dir string) (upService, error) {
	if dir != "" {
		if err := checkInputDir("--service-dir", dir, dir, serviceDirWant); err != nil { // filemsgs.go
			return upService{}, selfNamed{err}
		}
	}
	s, err := service.Load(name, dir)
	if err != nil {
		return upService{}, selfNamed{err}
	}
	out := upService{Sets: s.Config.Sets, SizeMB: s.Config.SizeMB, Where: "embedded", Service: s}
	if !s.Embedded {
		out.Where = filepath.Join(dir, name)
	}
	if out.ModTime, out.Digest, err = dateUpService(s); err != nil {
		return upService{}, err
	}
	return out, nil
}

// dateUpService is rebuild.ServiceDate of s, its error naming s.
func dateUpService(s *service.Service) (time.Time, string, error) {
	at, digest, err := rebuild.ServiceDate(s)
	if err != nil {
		what := s.Name
		if !s.Embedded {
			what = filepath.Join(s.Dir, s.Name)
		}
		return time.Time{}, "", fmt.Errorf("service %s: %w", what, err)
	}
	return at, digest, nil
}

// mirrorKernelError is err about the kernel up fetched, path, which
// matched its SHA512 and still is no kernel kstrip can edit: the mirror's,
// version's or port's fault, not one of a kernel the user passed. The
// path is left to the caller, which names it (rebuild.StripCached). kstrip
// states facts: what to give instead is advise's (kstripGivenAs), which
// passes over this error, as up's user gave no kernel.
func mirrorKernelError(path string, err error) error {
	msg := strings.TrimPrefix(err.Error(), path+": ")
	return &fileError{msg + " (the release's kernel matched its SHA512, yet is no NetBSD kernel up can strip: check --mirror, --version and --arch)", err}
}

// stripKernel writes a copy of kernel in (gzipped or not) to out,
// uncompressed, with every cfdata entry outside keep disabled, and hands
// kstrip's warnings to warn. Names of the keep list that this kernel lacks
// are skipped, not fatal: the default list covers i386 GENERIC and other
// ports may lack an entry or two. They are named in the summary alone: up
// chose them, so a warning with a "did you mean" would ask the user to fix
// a name they never gave (as kstrip's own default list has only a note).
func stripKernel(in, out string, keep []string, warn func(string)) (string, error) {
	f, err := kstrip.ReadFile(in)
	var pe *fs.PathError
	if err != nil && !errors.As(err, &pe) {
		return "", mirrorKernelError(in, err) // a bad gzip stream
	}
	if err != nil {
		return "", err
	}
	k, err := kstrip.Parse(f.Data)
	if err != nil {
		return "", mirrorKernelError(in, err)
	}
	known, missing, err := k.Applicable(keep)
	if err != nil {
		return "", err // it keeps nothing (ErrNothingKept)
	}
	r, err := k.Plan(kstrip.Plan{Strip: true, Keep: known})
	if err != nil {
		return "", err
	}
	if err := k.Apply(r); err != nil {
		return "", err
	}
	for _, w := range r.Warnings {
		warn(w)
	}
	if err := kstrip.WriteFile(out, k.Bytes(), false, 0o644); err != nil {
		return "", err
	}
	disabled := 0
	for _, e := range k.Entries {
		if e.State.Disabled() {
			disabled++
		}
	}
	msg := fmt.Sprintf("%d of %d cfdata entries disabled, %d changed, %d parents kept", disabled, len(k.Entries), len(r.Changes), len(r.KeptParents))
	if len(missing) > 0 {
		msg += fmt.Sprintf(" (not in this kernel: %s)", strings.Join(missing, ", "))
	}
	return msg, nil
}

// tooMuchDataAdvice is up's imagebuilder.ErrTooMuchData, err, for a build
// of service s: up has no size flag, and the service's size= is what
// raises the limit (an image of a larger size reads more of the sets).
func tooMuchDataAdvice(err error, s *service.Service) error {
	give := "give the service a larger size= in its " + service.ConfigFile
	switch {
	case s.Embedded:
		give = fmt.Sprintf("copy the built-in %s into a --service-dir and give it a larger size= in its %s", s.Name, service.ConfigFile)
	case s.Dir != "":
		give = "give the service a larger size= in " + filepath.Join(s.Dir, s.Name, service.ConfigFile)
	}
	return &fileError{fmt.Sprintf("%v (%s, or build with mkimg -m)", err, give), err}
}

// buildUpImage builds the service's ext2 root image from the sets. The
// service's size is a floor here: up has no size flag, so when the release's
// sets outgrow it (a newer release's larger rescue binary), the image is
// sized to its content instead of failing, and the message says so.
func buildUpImage(ctx context.Context, b upBuild) (string, error) {
	if b.Svc == nil {
		return "", fmt.Errorf("service %s: not loaded", b.Service)
	}
	cfg := imagebuilder.Config{Sets: b.Sets, Service: b.Svc, Arch: b.Arch, SizeMB: b.SizeMB, Log: newBuildLog(b.Log, "up"), Force: true, Replace: b.Replace,
		Timestamp: b.Timestamp, TimestampSet: b.TimestampSet}
	tree, err := imagebuilder.BuildTree(ctx, &cfg)
	var ae *imagebuilder.InitArchError
	if errors.As(err, &ae) {
		// The sets matched the release's SHA512 files for b.Arch: the
		// mirror's, not the user's, mismatch.
		return "", &fileError{fmt.Sprintf("%v: the release's %s sets, verified, hold another port's programs (check --mirror, --version and --arch)", err, b.Arch), err}
	}
	if errors.Is(err, imagebuilder.ErrTooMuchData) {
		return "", tooMuchDataAdvice(err, b.Svc)
	}
	if err != nil {
		return "", err
	}
	grown := ""
	err = imagebuilder.WriteImageContext(ctx, tree, cfg, b.Out)
	var small *ext2.TooSmallError
	if errors.As(err, &small) {
		grown = fmt.Sprintf(" (the service's %d MiB is too small for these sets, which need %d MiB: sized to content)", b.SizeMB, small.Needed>>20)
		cfg.SizeMB = 0
		err = imagebuilder.WriteImageContext(ctx, tree, cfg, b.Out)
	}
	if err != nil {
		return "", err
	}
	st, err := os.Stat(b.Out)
	if err != nil {
		return "", err
	}
	// Image sizes are in MiB, as -m and service.conf give them.
	return fmt.Sprintf("ext2, %d MiB, from %d set(s) and service %s%s", st.Size()>>20, len(b.Sets), b.Service, grown), nil
}
