package main

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/bootplan"
	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/internal/regfile"
	"github.com/smolvmm/smolvmm/kstrip"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/service"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
	"golang.org/x/sys/unix"
)

// advice is what this program adds to a library's error: the libraries
// state the facts and speak of their own API, never of our flags.
type advice struct {
	is func(error) bool
	// lib is the library's own advice, replaced when the message has
	// it; when empty, the advice of the error's Advice method
	// (libAdvice).
	lib string
	cli string // advice about flags, appended in parentheses otherwise
	// say, when set, makes cli from err: advice naming a value the
	// error holds.
	say func(err error) string
}

// kaslrAdvice is for a GENERIC_KASLR kernel given to run or to kstrip.
const kaslrAdvice = "use the release's netbsd-GENERIC (or netbsd-GENERIC.gz), its kernel without KASLR, which smolvmm run boots and kstrip edits: only NetBSD's prekern places GENERIC_KASLR"

func isErr(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) }
}

var adviceTable = []advice{
	{is: isAs[*fetch.ElsewhereError], say: elsewhereAdvice}, // fetch.go
	{is: notFoundHere, cli: "--version, --arch and --mirror choose the release and the mirror"},
	{is: isErr(fetch.ErrNetwork), cli: "check the network connection, HTTPS_PROXY/HTTP_PROXY, or --mirror"},
	{is: isErr(fetch.ErrNotDigestFile), cli: "check --mirror: it must point at a NetBSD release tree such as " + fetch.DefaultMirror},
	{is: func(err error) bool { return errors.Is(err, fetch.ErrHTTP) && !isAs[*fetch.HTMLError](err) }, cli: "check --mirror"},
	// An error or login page served as the file: a proxy's or a captive
	// portal's, or a mirror URL that leads to no release tree.
	{is: func(err error) bool { return isAs[*fetch.HTMLError](err) || isAs[*fetch.UnlabelledHTMLError](err) }, cli: "check --mirror and any proxy or captive portal"},
	// Not a page served as the file: fetching it again fetches it again.
	{is: func(err error) bool {
		return errors.Is(err, fetch.ErrDigestMismatch) && !isAs[*fetch.UnlabelledHTMLError](err)
	}, cli: "run again or try another --mirror"},
	// A transfer cut short, not by a signal (which says what it keeps).
	{is: func(err error) bool {
		return errors.Is(err, fetch.ErrTruncated) && !isAs[*fetch.InterruptedError](err)
	}, cli: "run again"},
	{is: isErr(fetch.ErrNoSpace), cli: "free some space or choose another --cache directory"},
	{is: isErr(fetch.ErrNoCacheDir), cli: "pass --cache DIR"},
	{is: isAs[*fetch.ForeignCacheError], say: foreignCacheAdvice},
	{is: isErr(fetch.ErrCacheNotWritable), cli: "choose a cache directory you may write with --cache DIR or XDG_CACHE_HOME"},
	{is: isErr(fetch.ErrCacheDir), cli: "choose another cache directory with --cache DIR or XDG_CACHE_HOME"},
	{is: bootDiskInUse, cli: "stop that VM, or give ,ro after the image's -d in both, or use a copy of the image"},
	// up's image is no -d, and up boots it read-write: ,ro is no way.
	{is: isUpImage(blk.ErrInUse), cli: "stop that VM, or give up -i another image: a new file, which up builds, or a copy of this one, cp IMAGE COPY, with --keep-image to boot it as it is"},
	// A restore takes the snapshot's ,ro setting: ,ro against a
	// read-write snapshot's disk is refused, so only a copy is left.
	{is: isAs[restoreDiskInUse], cli: "stop that VM, or give this restore a copy of the image, cp IMAGE COPY, with -d COPY: each clone that writes needs its own, and its content is checked against the snapshot's"},
	// A --snapshot run locks the file it will replace exclusively until
	// its first snapshot is renamed over it, which it locks shared.
	{is: isAs[restoreSnapshotInUse], cli: "a VM run with --snapshot holds the file it will replace until its first snapshot is there: wait for that snapshot, or restore a copy made with cp"},
	{is: bootDiskNotWritable, lib: "attach it read-only,", cli: "attach it read-only with ,ro after its -d path,"},
	{is: isUpImage(blk.ErrNotWritable), lib: "attach it read-only, or make it writable", say: upNotWritableAdvice},
	// A restore keeps its snapshot's read-write disk: ,ro is refused.
	{is: isAs[restoreDiskNotWritable], lib: "attach it read-only, or make it writable", say: func(err error) string { return restoreNotWritableAdvice(err, os.Geteuid()) }},
	// Not ErrNotWritable's ,ro alone: reading is refused as well.
	{is: isAs[*blk.AccessError], say: func(err error) string { return notReadableAdvice(err, os.Geteuid()) }},
	{is: isErr(netback.ErrForwardsNeedUser), cli: "use --net user or drop -p"},
	{is: isAs[*netback.UnnamedNetworkError], say: unnamedNetworkAdvice},
	{is: func(err error) bool {
		return errors.Is(err, netback.ErrUnknownNetwork) && !isAs[*netback.UnnamedNetworkError](err)
	}, cli: "--net takes user, user:NAME, tap:NAME or none"},
	{is: isErr(netback.ErrSameHostPort), cli: "give each host port once"},
	// The hub's reason code: too many connections in their handshake,
	// which end soon (the hub's message says how many).
	{is: hubRefused(netback.RefusedBusy), cli: "try again once fewer VMs are joining"},
	// The lock is the network's own file, made where none is.
	{is: isErr(netback.ErrLeasesLockLink), cli: "remove that symbolic link: the network makes its lock itself"},
	{is: isErr(blk.ErrOptionTwice), cli: "give each option once"},
	{is: isErr(blk.ErrNotRegular), cli: "give a raw image file"},
	// A file that starts with no ELF magic but may be a kernel given
	// otherwise: unknown bytes, data compressed otherwise than by gzip.
	{is: kstripGivenAs[*kstrip.NotELFError], cli: "give an uncompressed or gzipped NetBSD kernel"},
	{is: kstripGivenAs[*kstrip.NotKernelError], say: kstripImageAdvice},
	// A kernel kstrip cannot edit that a release's would be: not up's
	// (mirrorKernelError), whose user gave no kernel.
	{is: kstripGiven(kstrip.ErrNoSymbols), cli: "give a NetBSD release kernel, such as netbsd-GENERIC, which keeps its symbols"},
	{is: kstripGiven(kstrip.ErrLayout), cli: "give a NetBSD release kernel, such as netbsd-GENERIC"},
	{is: isErr(imagebuilder.ErrExists), lib: "set Config.Force to replace it", cli: "pass -f to overwrite it"},
	{is: isErr(kstrip.ErrUnknownName), lib: "ignore unknown names", cli: "pass --ignore-unknown"},
	// kstrip and run refuse it alike (kstrip.ErrKASLR is
	// netbsdboot.ErrKASLR); run's vmm.Error hint is the lib text.
	{is: isErr(kstrip.ErrKASLR), lib: "use the release's kernel linked without KASLR, netbsd-GENERIC", cli: kaslrAdvice},
	{is: func(err error) bool {
		return errors.Is(err, bench.ErrTimeout) && !errors.Is(err, bench.ErrNoReadyReport)
	}, cli: "raise --timeout"},
	// Only --restore's boots count the VMM's ready report: the snapshot
	// was taken before its guest was ready (C-a s), and the restored
	// guest did not become ready by the means the boot's would.
	{is: isErr(bench.ErrNoReadyReport), cli: "a restore is ready at once only when the snapshot was taken once its guest was ready: take it at ready with run --snapshot, or give --ready or --ready-port a condition the restored guest meets"},
	{is: isAs[*imagebuilder.UnreadableError], cli: "make it readable by the user smolvmm runs as, with chmod, or move it out of the directory given with --data or --share"},
	{is: isAs[*fstree.UnreadableError], say: setUnreadableAdvice},
	// Giving the sets the other way round is no way out when the
	// directory's set does not list the directory itself: its entries
	// then land beneath the symlink or file, which fails as well.
	{is: isAs[*fstree.ReplaceDirError], cli: replaceDirAdvice},
	// As a directory set, a service directory is read with the
	// builder's permissions; it has no archive to give instead.
	{is: isAs[*service.UnreadableError], cli: "a directory given with --service-dir is read with the permissions of the user smolvmm runs as: make it readable by that user, with chmod, or build as root"},
	{is: fatName(false), cli: "rename it, or make an ISO 9660 image of the directory with mkimg --data DIR --fs iso9660"},
	{is: fatName(true), cli: "rename one, or make an ISO 9660 image of the directory with mkimg --data DIR --fs iso9660"},
	{is: isAs[*imagebuilder.StageDirError], cli: "set TMPDIR to a directory you may write, on a file system with room"},
	{is: isAs[*imagebuilder.StageUnreachableError], cli: "set TMPDIR to a directory every user can traverse, such as /var/tmp"},
	// Only --restore reads a snapshot.
	{is: isErr(snapshot.ErrFormat), say: snapshotSaid("give --restore a file written by %s")},
	{is: isErr(snapshot.ErrTruncated), say: snapshotSaid("give --restore a whole file written by %s")},
	{is: olderSnapshot, say: snapshotSaid("this smolvmm restores only its own format: take the snapshot again with its %s")},
	{is: isErr(snapshot.ErrNewerVersion), say: snapshotSaid("restore it with the newer smolvmm that wrote it, or take the snapshot again with this one's %s")},
	{is: corruptSnapshot, say: snapshotSaid("the file was damaged or altered since %s wrote it: take the snapshot again")},
	{is: isErr(vmm.ErrKVMRefused), say: snapshotSaid("take the snapshot again on this host with %s")},
	// A new directory: changing the owner or mode of the one given,
	// which others may use (/tmp), would open it or shut them out.
	{is: isAs[*sandbox.ChrootDirError], lib: sandbox.ChrootDirAdvice, cli: "give --chroot a new empty directory owned by root that only root may write, such as one made as root with mkdir -m 0755 NEWDIR"},
	// Limits of the host, which no flag changes: said wherever they are
	// met, once (writableAdvice says them too).
	{is: limitUnsaid(syscall.EMFILE), say: limitAdvice},
	{is: limitUnsaid(syscall.ENFILE), say: limitAdvice},
	{is: limitUnsaid(syscall.EFBIG), say: limitAdvice},
	// A boot's: vmFlagHint's smaller -m stays, with the limits.
	{is: bootMemoryLimited, lib: "use a smaller -m", say: func(error) string { return "use a smaller -m, or raise " + memoryLimits() }},
	// A restore's memory is the snapshot's: -m cannot make it smaller.
	{is: restoreMemoryRefused, say: restoreMemoryAdvice},
}

// limitAdvice is the advice for a limit of the host that err met: the
// process's open files (EMFILE), the system's (ENFILE), or the size of a
// file (EFBIG), set by RLIMIT_FSIZE or the file system's own. "" for
// any other error.
func limitAdvice(err error) string {
	switch {
	case errors.Is(err, syscall.EMFILE):
		limit := "RLIMIT_NOFILE"
		if n := startLimits[unix.RLIMIT_NOFILE]; n != unix.RLIM_INFINITY {
			limit += ", " + strconv.FormatUint(n, 10)
		}
		return "the process's limit of open files (" + limit + ") is reached: raise it with ulimit -n, or LimitNOFILE= in a systemd unit"
	case errors.Is(err, syscall.ENFILE):
		return "the system's table of open files is full: raise fs.file-max with sysctl, or end processes that hold many files open"
	case errors.Is(err, syscall.EFBIG):
		if n := startLimits[unix.RLIMIT_FSIZE]; n != unix.RLIM_INFINITY {
			return "a file-size limit of " + sizeSaid(n) + " (RLIMIT_FSIZE) is set: raise it with ulimit -f, or LimitFSIZE= in a systemd unit"
		}
		// No limit of the process's: the file system's largest file.
		return "the file system that holds it takes no larger file: write it on another file system"
	}
	return ""
}

// startLimits are the soft limits limitAdvice and memoryLimits name, by
// resource, read at start: the VMM's seccomp filter refuses prlimit64
// later, and smolvmm changes none of them (os raised RLIMIT_NOFILE to the
// hard limit before this runs). An unreadable one is RLIM_INFINITY.
var startLimits = func() map[int]uint64 {
	m := map[int]uint64{}
	for _, res := range []int{unix.RLIMIT_NOFILE, unix.RLIMIT_FSIZE, unix.RLIMIT_AS, unix.RLIMIT_DATA} {
		var lim unix.Rlimit
		m[res] = unix.RLIM_INFINITY
		if unix.Getrlimit(res, &lim) == nil {
			m[res] = lim.Cur
		}
	}
	return m
}()

// limitUnsaid matches an error that met the limit errno, whose message
// does not say limitAdvice's advice already.
func limitUnsaid(errno syscall.Errno) func(error) bool {
	return func(err error) bool {
		return errors.Is(err, errno) && !strings.Contains(err.Error(), limitAdvice(err))
	}
}

// sizeSaid is n bytes in MiB, or in bytes when not a whole MiB.
func sizeSaid(n uint64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// memoryLimits names the limits set on this process that a mapping of the
// guest's memory counts against, and how to raise them: RLIMIT_AS, and
// RLIMIT_DATA, which counts private writable mappings (Linux 4.7 on). ""
// when neither is set.
func memoryLimits() string {
	var said []string
	for _, l := range []struct {
		res         int
		name, raise string
	}{
		{unix.RLIMIT_AS, "RLIMIT_AS", "ulimit -v, or LimitAS= in a systemd unit"},
		{unix.RLIMIT_DATA, "RLIMIT_DATA", "ulimit -d, or LimitDATA= in a systemd unit"},
	} {
		if n := startLimits[l.res]; n != unix.RLIM_INFINITY {
			said = append(said, fmt.Sprintf("%s, now %s (%s)", l.name, sizeSaid(n), l.raise))
		}
	}
	return strings.Join(said, " and ")
}

// bootMemoryLimited reports whether err is a boot's guest memory the
// host refused while a limit memoryLimits names is set.
func bootMemoryLimited(err error) bool {
	var ve *vmm.Error
	return errors.As(err, &ve) && ve.Field == "MemoryMiB" && errors.Is(err, syscall.ENOMEM) && memoryLimits() != ""
}

// restoreMemoryRefused reports whether err is a restore whose mapping of
// the snapshot's memory the host refused.
func restoreMemoryRefused(err error) bool {
	var ve *vmm.Error
	return errors.As(err, &ve) && ve.Op == "restore" && errors.Is(err, syscall.ENOMEM)
}

// restoreMemoryAdvice is the advice for a restore's memory refused: the
// guest gets the snapshot's memory size, which -m cannot change, so the
// limits are what to raise, or the snapshot to take of a smaller VM.
func restoreMemoryAdvice(error) string {
	a := "the host refused the memory of the snapshot's guest, whose size -m cannot change: "
	if l := memoryLimits(); l != "" {
		a += "raise " + l + ", "
	} else {
		a += "free memory on the host, or raise its memory limit, "
	}
	return a + "or snapshot a VM with a smaller -m"
}

// foreignCacheAdvice is the advice for root's default cache found to be
// another user's (a *fetch.ForeignCacheError): root kept that user's HOME
// or XDG_CACHE_HOME (sudo -E, or a sudo that keeps HOME). Nothing is
// chowned: the cache is that user's. A --cache is taken as given, which
// is how to use that directory all the same; mkimg, which has none,
// takes the set itself with -x.
func foreignCacheAdvice(err error) string {
	var fe *fetch.ForeignCacheError
	own := "run with root's own HOME (sudo -H)"
	if errors.As(err, &fe) && fe.Env == "XDG_CACHE_HOME" {
		own = "run with root's own XDG_CACHE_HOME, or none (sudo without -E)"
	}
	if errors.As(err, new(*cachedSetError)) {
		return own + ", or give -x PATH to use a set from that cache anyway"
	}
	return own + ", or give --cache DIR to use that directory anyway"
}

// setUnreadableAdvice is the advice for a set the builder may not read
// (an *fstree.UnreadableError). A directory set is read with the
// builder's permissions: root reads any entry, and the archive holds the
// same files without the host's. A set below a directory the builder may
// not search (an *imagebuilder.SetUnreachableError) may be an archive
// already, and root or that directory's search permission reaches it.
func setUnreadableAdvice(err error) string {
	if errors.As(err, new(*imagebuilder.SetUnreachableError)) {
		return "the set lies below that directory, which the user smolvmm runs as may not search: make the directories above the set searchable by that user, with chmod, or build as root"
	}
	return "a directory given with -x is read with the permissions of the user smolvmm runs as: build as root, or give -x the set's archive (.tgz, .tar.xz) instead"
}

// notReadableAdvice is the advice for blk's refusal of an image the user
// euid may not read (a *blk.AccessError): blk's own, what to make the
// image or the directory that refused its search, in this program's words
// (,ro for read-only), and, but to root, to start as root, which opens the
// images before taking another user. Root itself refused (NFS's
// root_squash, a container) is helped by no start as root.
func notReadableAdvice(err error, euid int) string {
	var ae *blk.AccessError
	if !errors.As(err, &ae) {
		return ""
	}
	a := strings.ReplaceAll(ae.Advice(), "this user", "the user smolvmm runs as")
	a = strings.Replace(a, "attach it read-only", "attach it read-only with ,ro after its -d path", 1)
	if ae.Dir != "" {
		a = strings.Replace(a, "search the directory", "search the directory "+ae.Dir, 1)
	}
	a = "with chmod or chown, " + a
	if euid != 0 {
		a += "; or start smolvmm as root: run --user USER opens the images as root, then runs as USER"
	}
	return a
}

// libAdvice is the advice a library error states by an Advice method as
// well as in its message (blk.AccessError's), when that error is the one
// the row is matched: the row's advice replaces it there.
func libAdvice(err error, is func(error) bool) string {
	var ad interface {
		error
		Advice() string
	}
	if errors.As(err, &ad) && is(ad) {
		return ad.Advice()
	}
	return ""
}

// snapshotSaid is the advice format, whose %s is the flag that writes a
// snapshot: --snapshot of the same command (run, which restores it too),
// but run's or up's for bench, which has no --snapshot
// (benchRestoreError).
func snapshotSaid(format string) func(error) string {
	return func(err error) string {
		flag := "--snapshot"
		if isAs[benchRestoreError](err) { // bench.go
			flag = "run or up --snapshot"
		}
		return fmt.Sprintf(format, flag)
	}
}

// olderSnapshot reports whether err refuses a snapshot format version
// other than this reader's and not newer: one this smolvmm's --snapshot
// replaces.
func olderSnapshot(err error) bool {
	return errors.Is(err, snapshot.ErrVersion) && !errors.Is(err, snapshot.ErrNewerVersion)
}

// replaceDirAdvice is the advice for an entry of the sets, or of the
// service's etc/, put over a directory of an earlier set that holds
// entries.
const replaceDirAdvice = "sets are laid over one another in the order -x, or service.conf's sets=, gives them, the service's etc/ last, and an entry may not replace a directory that holds entries: take the directory out of the earlier set, or the other entry out of the later one or the service; in the other order, the directory replaces the entry instead, when its set lists the directory itself, as tar archives and directory sets do"

// restoreDiskInUse is a restore's refusal of a disk another VM holds
// (blk.ErrInUse): the advice of a boot's, ,ro in both, does not fit it.
type restoreDiskInUse struct{ error }

func (e restoreDiskInUse) Unwrap() error { return e.error }

// restoreSnapshotInUse is a restore's refusal of a snapshot file another
// process holds locked (snapshot.ErrInUse): --snapshot's own refusal of
// a locked file wraps it too, with advice of its own.
type restoreSnapshotInUse struct{ error }

func (e restoreSnapshotInUse) Unwrap() error { return e.error }

// restoreDiskNotWritable is a restore's refusal of a disk it may not
// write (blk.ErrNotWritable): the snapshot recorded it read-write, as a
// restore must attach it, so a boot's advice, ,ro, is refused. disks is
// how many disks the snapshot has (0: unknown); image is the refused
// image's path and st its FileInfo as the refusal left it (nil: unknown),
// which decide whether chmod u+w would help.
type restoreDiskNotWritable struct {
	error
	disks int
	image string
	st    os.FileInfo
}

func (e restoreDiskNotWritable) Unwrap() error { return e.error }

// restoreNotWritableAdvice is the advice for a restoreDiskNotWritable to
// the user euid: the image made writable, when chmod u+w is what it lacks
// and euid may change its mode (chmodAdvised), or that its owner must let
// this user write it; else, or with them, a writable copy given with -d,
// and with it a -d for each other disk (-d gives all of them or none).
// chmod u+w was advised to every user, also of an image of another's
// whose u+w was set (mode 0644), where it changes nothing.
func restoreNotWritableAdvice(err error, euid int) string {
	var e restoreDiskNotWritable
	errors.As(err, &e)
	a := "the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; "
	sys, owned := (*syscall.Stat_t)(nil), false
	if e.st != nil {
		sys, owned = e.st.Sys().(*syscall.Stat_t)
	}
	switch {
	case errors.Is(err, syscall.EROFS):
		a += "its file system is read-only: give"
	case owned && e.st.Mode().Perm()&0o200 == 0 && chmodAdvised(e.st, euid, true): // checks.go
		// The image is written in place: its directory does not matter.
		a += "make the image writable, chmod u+w " + shellWord(e.image) + ", or give"
	case owned && euid != 0 && int64(sys.Uid) != int64(euid):
		a += fmt.Sprintf("the image is uid %d's (mode %#o), and only its owner or root may let this user write it; or give", sys.Uid, e.st.Mode().Perm())
	default:
		a += "give"
	}
	// cp gives a new file the mode of a read-only original.
	a += " this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY"
	if e.disks > 1 {
		a += " in that disk's place among a -d for each of the snapshot's disks, in order"
	}
	return a
}

// bootDiskNotWritable reports whether err is a disk not writable that is
// not a restore's, nor up's own image.
func bootDiskNotWritable(err error) bool {
	return errors.Is(err, blk.ErrNotWritable) && !isAs[restoreDiskNotWritable](err) && !upImageRefused(err)
}

// bootDiskInUse reports whether err is a disk in use that is not a
// restore's, nor up's own image.
func bootDiskInUse(err error) bool {
	return errors.Is(err, blk.ErrInUse) && !isAs[restoreDiskInUse](err) && !upImageRefused(err)
}

// upImageRefused reports whether err is the machine's refusal of up's own
// image, ld0, which -i or the service named, not a -d: as up says it
// (upImageError), or the VMM up jailed, a run whose first disk it is.
func upImageRefused(err error) bool {
	if isAs[upImageError](err) {
		return true
	}
	n, ok := diskIndex(err) // snapshot.go
	return jailedFor == "up" && ok && n == 0
}

// isUpImage matches up's refusal of its own image that wraps target.
func isUpImage(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) && upImageRefused(err) }
}

// upNotWritableAdvice is the advice for up's own image, not writable: up
// boots it read-write (it has no ,ro for it), so it must be made writable,
// or another image given with -i.
func upNotWritableAdvice(err error) string {
	a := "up boots its image read-write: make it writable, or give"
	if errors.Is(err, syscall.EROFS) {
		a = "up boots its image read-write, and its file system is read-only: give"
	}
	// cp gives a new file the mode of a read-only original.
	return a + " up -i another image: a new file, which up builds, or a writable copy of this one, cp IMAGE COPY; chmod u+w COPY, with --keep-image to boot it as it is"
}

// corruptSnapshot reports whether err says a snapshot is corrupt and not
// truncated: a memory size grown past the file's end is both, and the
// truncated file's advice is the one that fits.
func corruptSnapshot(err error) bool {
	return errors.Is(err, snapshot.ErrCorrupt) && !errors.Is(err, snapshot.ErrTruncated)
}

// fatName reports whether err refuses a name of a FAT32 data image, two
// names (pair) or one.
func fatName(pair bool) func(error) bool {
	return func(err error) bool {
		var fe *imagebuilder.FATNameError
		return errors.As(err, &fe) && (fe.Other != "") == pair
	}
}

// kstripGiven matches kstrip's target about a kernel the user gave: not
// up's of the release's kernel (mirrorKernelError, a *fileError), whose
// user gave no kernel.
func kstripGiven(target error) func(error) bool {
	return func(err error) bool { return errors.Is(err, target) && !isAs[*fileError](err) }
}

// kstripGivenAs is kstripGiven for kstrip's errors of type E.
func kstripGivenAs[E error](err error) bool { return isAs[E](err) && !isAs[*fileError](err) }

// unnamedNetworkAdvice is the advice for a tap or shared network given
// without its name, in the words parseNet uses for --net's.
func unnamedNetworkAdvice(err error) string {
	var ue *netback.UnnamedNetworkError
	if errors.As(err, &ue) && ue.Kind == "user" {
		return "give the shared network's name, as in --net user:default, or --net user for a NAT of the VM's own"
	}
	return "give the tap interface's name, as in --net tap:tap0"
}

// kstripImageAdvice is the advice for a file whose decompressed image
// kstrip refused as no kernel (a *kstrip.NotKernelError): gzip data
// still is a kernel gzipped twice, of which one layer is kstrip's to
// decompress.
func kstripImageAdvice(err error) string {
	var ne *kstrip.NotKernelError
	if errors.As(err, &ne) && ne.Gzip {
		return "decompress one layer, keeping the original, with gzip -dc FILE > KERNEL.gz, and give kstrip KERNEL.gz"
	}
	return "give an uncompressed or gzipped NetBSD kernel"
}

// hubRefused matches a shared network's refusal for reason.
func hubRefused(reason netback.Refusal) func(error) bool {
	return func(err error) bool {
		var re *netback.RefusedError
		return errors.As(err, &re) && re.Reason == reason
	}
}

// isAs reports whether err holds an error of type E.
func isAs[E error](err error) bool {
	var e E
	return errors.As(err, &e)
}

// advise is err's message for this program's user: a vmm.Error's hint
// becomes advice about the flag behind the Config field at fault, and the
// other libraries' errors get the flags that change what failed.
func advise(err error) string {
	msg := err.Error()
	var ve *vmm.Error
	if errors.As(err, &ve) {
		switch h := vmFlagHint(ve); {
		case h == "" || h == ve.Hint:
		case ve.Hint == "":
			msg += " (" + h + ")"
		default:
			msg = strings.Replace(msg, "("+ve.Hint+")", "("+h+")", 1)
		}
	}
	for _, a := range adviceTable {
		if !a.is(err) {
			continue
		}
		if a.say != nil {
			a.cli = a.say(err)
		}
		if a.lib == "" {
			a.lib = libAdvice(err, a.is)
		}
		if a.lib != "" && strings.Contains(msg, a.lib) {
			msg = strings.Replace(msg, a.lib, a.cli, 1)
		} else {
			msg += " (" + a.cli + ")"
		}
	}
	return msg
}

// notAKernel reports whether err says the kernel is of no kind the
// protocol chosen (or any) can boot.
func notAKernel(err error) bool {
	for _, e := range []error{vmm.ErrNoBootProtocol, multiboot.ErrNotMultiboot, multiboot.ErrNotELF, netbsdboot.ErrNotNetBSD} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// forcedBootHint rewrites the advice for a kernel that the protocol
// --boot forced cannot boot: "pass a multiboot kernel" is wrong for a
// NetBSD kernel forced to multiboot, whose fix is to drop --boot. Only a
// loader's refusal ("load kernel ...") is one: an empty file is no
// kernel either, but no protocol was tried on it.
func forcedBootHint(err error, proto bootplan.Protocol) error {
	var ve *vmm.Error
	if proto == bootplan.Auto || !errors.As(err, &ve) || ve.Field != "Kernel" || !strings.HasPrefix(ve.Op, "load ") || !notAKernel(ve.Err) {
		return err
	}
	if isAs[*vmm.ContentError](ve.Err) {
		// The bytes are no kernel of any protocol (a kernel module,
		// a set): dropping --boot would not boot them.
		return err
	}
	ve.Field = "" // the hint is complete: not vmFlagHint's to change
	switch proto {
	case bootplan.Multiboot:
		ve.Hint = "--boot multiboot forced the multiboot protocol: drop --boot to let smolvmm choose, or use --boot netbsd for a NetBSD ELF kernel"
	case bootplan.NetBSD:
		ve.Hint = "--boot netbsd forced NetBSD's native handoff, which boots only a NetBSD i386/amd64 ELF kernel: drop --boot to let smolvmm choose, or use --boot multiboot for a multiboot kernel"
	}
	return err
}

// kernelContentHint is the advice for the -k file path that vmm found to
// be no kernel but a kind of file it names (*vmm.ContentError): what to
// do with that file instead, its commands naming path and the files they
// write. It is "" when err holds none, or names no kind (gzip data that
// decompressed to unknown bytes), which the advice to pass a kernel
// fits. An empty path is said FILE, as -k's help names it.
func kernelContentHint(err error, path string) string {
	var ce *vmm.ContentError
	if !errors.As(err, &ce) {
		return ""
	}
	in := "FILE"
	if path != "" {
		in = shellWord(path) // disktail.go
	}
	// out is the file a decompression of path by the tool of suffix
	// writes: path without it, or, where it has none, path.out.
	out := func(suffix string) string {
		if path == "" {
			return "KERNEL"
		}
		if o, ok := strings.CutSuffix(path, suffix); ok && o != "" && !strings.HasSuffix(o, "/") {
			return shellWord(o)
		}
		return shellWord(path + ".out")
	}
	switch ce.Content {
	case "gzip": // vmm decompressed one layer: there are two
		o := out(".gz")
		return fmt.Sprintf("the file is compressed twice: decompress it once, keeping the original, with gzip -dc %s > %s, and give -k %s", in, o, o)
	case "xz", "bzip2", "zstd":
		suffix, _, stream, _ := decompressor(ce.Content) // disktail.go
		if ce.Gunzipped {
			o := out(suffix + ".gz")
			return fmt.Sprintf("decompress both layers, gzip's then %s's, keeping the original, with gzip -dc %s | %s > %s, and give -k %s", ce.Content, in, stream, o, o)
		}
		o := out(suffix)
		return fmt.Sprintf("only gzip data is decompressed: decompress it, keeping the original, with %s %s > %s, and give -k %s", stream, in, o, o)
	case "relocatable":
		return "the file is a kernel module: give it to run with --module, and -k the kernel it was built for"
	case "ext2":
		if ce.Gunzipped {
			o := out(".gz")
			return fmt.Sprintf("the file is a gzipped disk image: decompress it, keeping the original, with gzip -dc %s > %s, give -d %s, and -k a kernel", in, o, o)
		}
		return fmt.Sprintf("the file is a disk image: give it as -d %s, and -k a kernel", in)
	case "tar":
		// mkimg reads a set gzipped or not.
		return fmt.Sprintf("the file is a tar archive (a NetBSD set?): build a root image from it with smolvmm mkimg -x %s -i IMAGE, boot that with -d IMAGE, and give -k a kernel", in)
	}
	return ""
}

// vmFlagHint says which flag to change for a vmm.Error, or "" to keep
// the library's hint.
func vmFlagHint(e *vmm.Error) string {
	var big *multiboot.MemoryError
	var snapSize *snapshot.MemorySizeError
	switch e.Field {
	case "MemoryMiB":
		switch {
		case errors.As(e.Err, &snapSize):
			// --restore with -m: without it, the snapshot's size.
			return fmt.Sprintf("drop -m to take the snapshot's memory size, or give -m %d", snapSize.Snapshot>>20)
		case errors.As(e.Err, &big) && big.NeedMiB() > vmm.MaxMemoryMiB:
			// -m cannot reach it: the layout lies above the RAM a
			// 32-bit guest gets here, below the PCI hole.
			return fmt.Sprintf("no -m reaches it: the kernel is linked, or its --module files placed, beyond the %d MiB this VMM can give a 32-bit guest", vmm.MaxMemoryMiB)
		case errors.As(e.Err, &big) && big.NeedMiB() == vmm.MaxMemoryMiB:
			// -m takes no more: "or more" would be no way.
			return fmt.Sprintf("give -m %d, the most", big.NeedMiB())
		case errors.As(e.Err, &big):
			return fmt.Sprintf("give -m %d or more", big.NeedMiB())
		case errors.Is(e.Err, vmm.ErrConfig):
			return fmt.Sprintf("use -m between %d and %d", vmm.MinMemoryMiB, vmm.MaxMemoryMiB)
		}
		return "use a smaller -m"
	case "Kernel":
		switch {
		case errors.Is(e.Err, vmm.ErrConfig):
			return "pass -k KERNEL"
		case errors.Is(e.Err, netbsdboot.ErrMachine), errors.Is(e.Err, netbsdboot.ErrTruncated), errors.Is(e.Err, netbsdboot.ErrBootMap),
			errors.Is(e.Err, netbsdboot.ErrKASLR): // adviceTable's kaslrAdvice; no protocol boots it
			return ""
		case errors.Is(e.Err, netbsdboot.ErrXenPV):
			return "pass -k the release's netbsd-GENERIC (or netbsd-GENERIC.gz): a Xen PV kernel runs only under Xen"
		case strings.HasPrefix(e.Op, "read kernel") && errors.Is(e.Err, regfile.ErrTooLarge):
			return "no kernel may be larger, a limit no flag changes: check the path given with -k"
		case strings.HasPrefix(e.Op, "read kernel"):
			return "check the path given with -k"
		case strings.HasPrefix(e.Op, "decompress"):
			// Corrupt or bomb-like gzip data: the library's hint (fetch
			// it again; no kernel) fits, and no flag, --boot least of
			// all, changes it.
			return ""
		case kernelContentHint(e.Err, "") != "":
			return kernelContentHint(e.Err, "")
		case notAKernel(e.Err):
			return "pass -k a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel, such as netbsd or netbsd-GENERIC.gz; --boot forces a protocol"
		case e.Hint == "":
			// A fault of the file the loader's error words itself (a
			// malformed ELF, a segment in low memory): no flag mends it.
			return ""
		}
		return e.Hint + "; --boot forces a protocol"
	case "KernelImage":
		// Only the built-in guest's bytes (demo, bench without -k):
		// no flag gives them, so the library's hint stands.
		return ""
	case "Boot":
		// Only a forced --boot multiboot is at fault: auto passes
		// over the header of these kernels.
		switch {
		case errors.Is(e.Err, multiboot.ErrNetBSDModules):
			return "--boot multiboot forced multiboot: use --boot netbsd, NetBSD's native handoff, which passes --module files, or drop --boot"
		case errors.Is(e.Err, vmm.ErrNetBSDELF64):
			return "--boot multiboot forced multiboot, which loads no ELF64 kernel: use --boot netbsd, or drop --boot"
		}
		return ""
	case "Modules":
		switch {
		case errors.Is(e.Err, netbsdboot.ErrTooManyModules):
			return "pass fewer --module files"
		case errors.Is(e.Err, netbsdboot.ErrBootMap):
			return "pass smaller or fewer --module files: a larger -m does not help, the kernel maps no more at boot"
		case errors.Is(e.Err, netbsdboot.ErrKmodDamaged):
			return "give --module the whole kmod as the NetBSD release ships it in its modules set (stand/ARCH/VERSION/modules/NAME/NAME.kmod), not a copy cut short or stripped: the module loader reads every section and needs the symbol table"
		case errors.Is(e.Err, netbsdboot.ErrKmodVersion):
			return "give --module the kmod from the kernel's own NetBSD release, its modules set, or give -k a kernel of the kmod's release"
		case errors.Is(e.Err, multiboot.ErrLowAreaFull):
			return "pass fewer or shorter --module files and arguments, or -k a kernel with fewer section headers"
		}
		return "check the --module files and their types, given as FILE,kmod, FILE,fs, FILE,splash or FILE,rndseed"
	case "Append":
		return "check the boot flags and console=, console_addr=, console_speed=, root= in -a"
	case "WithMAC": // --mac gives both the card's address and a restore's WithMAC
		if errors.Is(e.Err, vmm.ErrMACChanged) {
			return "leave out --mac to restore the snapshot's address, or give --mac another for a clone"
		}
		return "give --mac a unicast Ethernet address, such as 52:54:00:12:34:56, for a VM with a network card"
	}
	return ""
}
