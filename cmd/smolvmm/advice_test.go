package main

import (
	"errors"
	"fmt"
	"io/fs"
	"syscall"
	"testing"

	"github.com/smolvmm/smolvmm/bench"
	"github.com/smolvmm/smolvmm/fetch"
	"github.com/smolvmm/smolvmm/imagebuilder"
	"github.com/smolvmm/smolvmm/imagebuilder/fstree"
	"github.com/smolvmm/smolvmm/multiboot"
	"github.com/smolvmm/smolvmm/netback"
	"github.com/smolvmm/smolvmm/netbsdboot"
	"github.com/smolvmm/smolvmm/sandbox"
	"github.com/smolvmm/smolvmm/snapshot"
	"github.com/smolvmm/smolvmm/virtio/blk"
	"github.com/smolvmm/smolvmm/vmm"
)

// TestAdvise checks that the libraries' facts become advice about flags,
// whether the error arrives as returned or wrapped into a message.
func TestAdvise(t *testing.T) {
	big := fmt.Errorf("kernel: %w", &multiboot.MemoryError{Need: 18 << 20, Have: 8 << 20})
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"memory range", &vmm.Error{Op: "memory", Err: fmt.Errorf("1 MiB: %w", vmm.ErrConfig), Hint: "use between 3 and 3072 MiB", Field: "MemoryMiB"},
			"memory: 1 MiB: invalid configuration (use -m between 3 and 3072)"},
		{"restore of another memory size", &vmm.Error{Op: "restore", Err: fmt.Errorf("snapshot s: %w", &snapshot.MemorySizeError{Snapshot: 64 << 20, Asked: 128 << 20}),
			Hint: "leave MemoryMiB 0 to take the snapshot's, or set it to 64", Field: "MemoryMiB"},
			"restore: snapshot s: snapshot memory size differs: 64 MiB in the snapshot, 128 MiB asked for (drop -m to take the snapshot's memory size, or give -m 64)"},
		{"kernel too big, wrapped", fmt.Errorf("up: %w", &vmm.Error{Op: "load kernel k", Err: big, Field: "MemoryMiB"}),
			"up: load kernel k: " + big.Error() + " (give -m 18 or more)"},
		{"kernel linked past what -m reaches", &vmm.Error{Op: "load kernel k", Err: &multiboot.MemoryError{What: "segment 0", Need: 0xf0200000, Have: 64 << 20}, Field: "MemoryMiB"},
			"load kernel k: " + (&multiboot.MemoryError{What: "segment 0", Need: 0xf0200000, Have: 64 << 20}).Error() +
				" (no -m reaches it: the kernel is linked, or its --module files placed, beyond the 3072 MiB this VMM can give a 32-bit guest)"},
		{"kernel needing all that -m reaches", &vmm.Error{Op: "load kernel k", Err: &multiboot.MemoryError{What: "segment 0", Need: 3072 << 20, Have: 64 << 20}, Field: "MemoryMiB"},
			"load kernel k: " + (&multiboot.MemoryError{What: "segment 0", Need: 3072 << 20, Have: 64 << 20}).Error() + " (give -m 3072, the most)"},
		{"read kernel", &vmm.Error{Op: "read kernel", Err: errors.New("open k: no such file"), Hint: "check the path", Field: "Kernel"},
			"read kernel: open k: no such file (check the path given with -k)"},
		{"not a kernel", &vmm.Error{Op: "load kernel k", Err: multiboot.ErrNotMultiboot, Hint: "use a multiboot kernel", Field: "Kernel"},
			"load kernel k: " + multiboot.ErrNotMultiboot.Error() + " (pass -k a multiboot v1 kernel or a NetBSD i386/amd64 ELF kernel, such as netbsd or netbsd-GENERIC.gz; --boot forces a protocol)"},
		{"kernel cut short", &vmm.Error{Op: "load kernel k", Err: fmt.Errorf("looking for NetBSD's ident note: %w", netbsdboot.ErrTruncated), Hint: "the file is cut short: download or copy it again", Field: "Kernel"},
			"load kernel k: looking for NetBSD's ident note: " + netbsdboot.ErrTruncated.Error() + " (the file is cut short: download or copy it again)"},
		{"kernel, other", &vmm.Error{Op: "load kernel k", Err: errors.New("odd"), Hint: "use another kernel", Field: "Kernel"},
			"load kernel k: odd (use another kernel; --boot forces a protocol)"},
		{"module", &vmm.Error{Op: "load kernel k", Err: netbsdboot.ErrModule, Hint: "check the modules", Field: "Modules"},
			"load kernel k: " + netbsdboot.ErrModule.Error() + " (check the --module files and their types, given as FILE,kmod, FILE,fs, FILE,splash or FILE,rndseed)"},
		{"kmod of another release", &vmm.Error{Op: "load kernel k", Err: fmt.Errorf("%w: %w: module 0 (m)", netbsdboot.ErrModule, netbsdboot.ErrKmodVersion), Hint: "use the kmod from the kernel's own release", Field: "Modules"},
			"load kernel k: bad boot module: kmod built for another NetBSD release: module 0 (m) (give --module the kmod from the kernel's own NetBSD release, its modules set, or give -k a kernel of the kmod's release)"},
		{"damaged kmod", &vmm.Error{Op: "load kernel k", Err: fmt.Errorf("%w: %w: module 0 (m)", netbsdboot.ErrModule, netbsdboot.ErrKmodDamaged), Hint: "use a whole kmod", Field: "Modules"},
			"load kernel k: bad boot module: damaged kmod: module 0 (m) (give --module the whole kmod as the NetBSD release ships it in its modules set (stand/ARCH/VERSION/modules/NAME/NAME.kmod), not a copy cut short or stripped: the module loader reads every section and needs the symbol table)"},
		{"module past the bootstrap mapping", &vmm.Error{Op: "load kernel k", Err: fmt.Errorf("%w: %w: module 0 (m)", netbsdboot.ErrModule, netbsdboot.ErrBootMap), Hint: "pass smaller modules", Field: "Modules"},
			"load kernel k: bad boot module: beyond the kernel's bootstrap mapping: module 0 (m) (pass smaller or fewer --module files: a larger -m does not help, the kernel maps no more at boot)"},
		{"NetBSD modules forced to multiboot", &vmm.Error{Op: "load kernel k", Err: multiboot.ErrNetBSDModules, Hint: "NetBSD's native handoff passes them", Field: "Boot"},
			"load kernel k: " + multiboot.ErrNetBSDModules.Error() + " (--boot multiboot forced multiboot: use --boot netbsd, NetBSD's native handoff, which passes --module files, or drop --boot)"},
		{"NetBSD ELF64 forced to multiboot", &vmm.Error{Op: "load kernel k", Err: vmm.ErrNetBSDELF64, Hint: "boot it natively", Field: "Boot"},
			"load kernel k: " + vmm.ErrNetBSDELF64.Error() + " (--boot multiboot forced multiboot, which loads no ELF64 kernel: use --boot netbsd, or drop --boot)"},
		{"restore's card address differs", &vmm.Error{Op: "restore: network card (virtio device 0)", Err: fmt.Errorf("%w: the card has a, the snapshot's guest b", vmm.ErrMACChanged),
			Hint: "give the card the snapshot's address, or restore a clone with another address (WithMAC)", Field: "WithMAC"},
			"restore: network card (virtio device 0): " + vmm.ErrMACChanged.Error() + ": the card has a, the snapshot's guest b (leave out --mac to restore the snapshot's address, or give --mac another for a clone)"},
		{"clone's address refused", &vmm.Error{Op: "restore", Err: fmt.Errorf("address 01:00:5e:00:00:01 is a multicast address, which cannot be a network card's: %w", vmm.ErrConfig), Field: "WithMAC"},
			"restore: address 01:00:5e:00:00:01 is a multicast address, which cannot be a network card's: invalid configuration (give --mac a unicast Ethernet address, such as 52:54:00:12:34:56, for a VM with a network card)"},
		{"no field", &vmm.Error{Op: "open /dev/kvm", Err: vmm.ErrNoKVM, Hint: "load kvm"}, "open /dev/kvm: KVM is not available (load kvm)"},
		// The library states the facts; the advice is added once (it was
		// "404 (check the version, the arch and the mirror URL) (--version,
		// ...)" and "write p: no space left on device (free ...): write p:
		// no space left on device").
		{"fetch 404", fmt.Errorf("%w: GET u: 404", fetch.ErrNotFound),
			"not found on mirror: GET u: 404 (--version, --arch and --mirror choose the release and the mirror)"},
		// A proxy's 407 got "(check --mirror)": no flag is at fault.
		{"proxy 407", fmt.Errorf("%w: GET u: the proxy asks for credentials", fetch.ErrProxyAuth),
			"proxy authentication required: GET u: the proxy asks for credentials"},
		{"fetch full", fmt.Errorf("write p: %w", fullCache{}),
			"write p: no space left on device (free some space or choose another --cache directory)"},
		// "mkdir /nonexistent/.cache/smolvmm: permission denied" (HOME
		// unusable) and a cache of another user's said no more.
		{"cache not writable", fmt.Errorf("fetch: /c/9.3/i386/sets/base.tgz is not cached, and the cache directory /c/9.3/i386 is not writable: %w", fetch.ErrCacheNotWritable),
			"fetch: /c/9.3/i386/sets/base.tgz is not cached, and the cache directory /c/9.3/i386 is not writable: cache directory not writable (choose a cache directory you may write with --cache DIR or XDG_CACHE_HOME)"},
		// A root run given another user's HOME made it root's; the
		// advice named a cache "of root's", where the rule was whose
		// any directory from / was, and --cache gets no look now.
		{"cache another user's, HOME", &fetch.ForeignCacheError{Dir: "/home/a/.cache/smolvmm", Env: "HOME", Path: "/home/a", UID: 1000},
			"cache directory /home/a/.cache/smolvmm (from HOME): cache directory is another user's: /home/a belongs to uid 1000, and this process is root (run with root's own HOME (sudo -H), or give --cache DIR to use that directory anyway)"},
		{"cache another user's, XDG_CACHE_HOME", &fetch.ForeignCacheError{Dir: "/x/smolvmm", Env: "XDG_CACHE_HOME", Path: "/x/smolvmm", Link: true, UID: 1000},
			"cache directory /x/smolvmm (from XDG_CACHE_HOME): cache directory is another user's: /x/smolvmm, a symbolic link, belongs to uid 1000, and this process is root (run with root's own XDG_CACHE_HOME, or none (sudo without -E), or give --cache DIR to use that directory anyway)"},
		// mkimg has no --cache: -x takes the set.
		{"cache another user's, mkimg", &cachedSetError{name: "rescue", err: &fetch.ForeignCacheError{Dir: "/home/a/.cache/smolvmm", Env: "HOME", Path: "/home/a", UID: 1000}},
			"set \"rescue\": not in the current directory nor in sets/, and the fetch cache is not looked in: cache directory /home/a/.cache/smolvmm (from HOME): cache directory is another user's: /home/a belongs to uid 1000, and this process is root (run with root's own HOME (sudo -H), or give -x PATH to use a set from that cache anyway)"},
		{"read-only disk", fmt.Errorf("disk image p: open read-write: %w: EROFS (attach it read-only, or make it writable)", blk.ErrNotWritable),
			"disk image p: open read-write: the image is not writable: EROFS (attach it read-only with ,ro after its -d path, or make it writable)"},
		// A restore attaches the disk as its snapshot recorded it: the
		// boot's ,ro was refused as a device the snapshot's lacked.
		{"restore's disk not writable", restoreDiskNotWritable{error: &vmm.Error{Op: "ld0", Err: fmt.Errorf("disk image p: cannot open it read-write: %w: %w (attach it read-only, or make it writable)", blk.ErrNotWritable, syscall.EACCES)}, disks: 1},
			"ld0: disk image p: cannot open it read-write: the image is not writable: permission denied (the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; give this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY)"},
		{"restore's disk on a read-only file system", restoreDiskNotWritable{error: &vmm.Error{Op: "ld0", Err: fmt.Errorf("disk image p: cannot open it read-write: %w: %w (attach it read-only, or make it writable)", blk.ErrNotWritable, syscall.EROFS)}, disks: 1},
			"ld0: disk image p: cannot open it read-write: the image is not writable: read-only file system (the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; its file system is read-only: give this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY)"},
		// -d gives every disk or none.
		{"restore's second disk not writable", restoreDiskNotWritable{error: &vmm.Error{Op: "ld1", Err: fmt.Errorf("disk image p: cannot open it read-write: %w: %w (attach it read-only, or make it writable)", blk.ErrNotWritable, syscall.EACCES)}, disks: 2},
			"ld1: disk image p: cannot open it read-write: the image is not writable: permission denied (the snapshot recorded this disk read-write, and a restore attaches it so: ,ro is refused; give this restore a writable copy, cp IMAGE COPY; chmod u+w COPY, with -d COPY in that disk's place among a -d for each of the snapshot's disks, in order)"},
		{"disk in use", fmt.Errorf("disk image p is %w: process 7 (smolvmm) holds its lock", blk.ErrInUse),
			"disk image p is in use by another VM: process 7 (smolvmm) holds its lock (stop that VM, or give ,ro after the image's -d in both, or use a copy of the image)"},
		// A restore's ,ro must be the snapshot's: a copy is the way out.
		{"restore's disk in use", restoreDiskInUse{&vmm.Error{Op: "restore", Err: fmt.Errorf("disk image p is %w: process 7 (smolvmm) holds its lock", blk.ErrInUse)}},
			"restore: disk image p is in use by another VM: process 7 (smolvmm) holds its lock (stop that VM, or give this restore a copy of the image, cp IMAGE COPY, with -d COPY: each clone that writes needs its own, and its content is checked against the snapshot's)"},
		{"forwards", fmt.Errorf("network \"none\": %w", netback.ErrForwardsNeedUser),
			"network \"none\": port forwards need the user network (use --net user or drop -p)"},
		{"image exists", fmt.Errorf("image x %w: remove it, or set Config.Force to replace it", imagebuilder.ErrExists),
			"image x already exists: remove it, or pass -f to overwrite it"},
		{"bench timeout", fmt.Errorf("%w: boot did not end within 1m0s", bench.ErrTimeout),
			"boot timed out: boot did not end within 1m0s (raise --timeout)"},
		{"postinst staging unreachable", fmt.Errorf("service web: %w", &imagebuilder.StageUnreachableError{Dir: "/t/x/root", UID: 65534, Blocked: "/t", Mode: 0o700}),
			"service web: the postinst staging directory /t/x/root is not reachable by uid 65534, the user the scripts run as: /t (mode 0700, owner 0:0) does not let that user search it (set TMPDIR to a directory every user can traverse, such as /var/tmp)"},
		// It said the set "changed while it was read".
		{"directory set entry unreadable", fmt.Errorf("reading sets: %w", &fstree.UnreadableError{Path: "/s/etc/zeromode", Err: &fs.PathError{Op: "open", Path: "/s/etc/zeromode", Err: syscall.EACCES}}),
			"reading sets: file /s/etc/zeromode cannot be read: permission denied (a directory given with -x is read with the permissions of the user smolvmm runs as: build as root, or give -x the set's archive (.tgz, .tar.xz) instead)"},
		// It said to give -x the set's archive, which this set may be.
		{"archive set below an unsearchable directory", &imagebuilder.SetUnreachableError{Set: "/s/sets/base.tgz", Err: &fstree.UnreadableError{Path: "/s/sets", Dir: true, Err: &fs.PathError{Op: "lstat", Path: "/s/sets/base.tgz", Err: syscall.EACCES}}},
			"set /s/sets/base.tgz: directory /s/sets cannot be read: permission denied (the set lies below that directory, which the user smolvmm runs as may not search: make the directories above the set searchable by that user, with chmod, or build as root)"},
		{"directory set below an unsearchable directory", &imagebuilder.SetUnreachableError{Set: "/s/sets/base", Err: &fstree.UnreadableError{Path: "/s/sets", Dir: true, Err: &fs.PathError{Op: "lstat", Path: "/s/sets/base", Err: syscall.EACCES}}},
			"set /s/sets/base: directory /s/sets cannot be read: permission denied (the set lies below that directory, which the user smolvmm runs as may not search: make the directories above the set searchable by that user, with chmod, or build as root)"},
		// It said "postinst staging: mkdir /t/x/smolvmm-postinst-1: permission denied".
		{"postinst staging not made", fmt.Errorf("service web: %w", &imagebuilder.StageDirError{TempDir: "/t/x", Err: &fs.PathError{Op: "mkdir", Path: "/t/x/smolvmm-postinst-1", Err: syscall.EACCES}}),
			"service web: cannot make the postinst staging directory in the temporary directory /t/x (TMPDIR, else /tmp): permission denied (set TMPDIR to a directory you may write, on a file system with room)"},
		// It said what was refused, not what to do with the sets.
		{"set's symlink over a directory of an earlier set", fmt.Errorf("b.tgz: entry 2 (./usr/pkg): %w", &fstree.ReplaceDirError{Path: "usr/pkg", Type: fstree.Symlink, Holds: "usr/pkg/bin"}),
			"b.tgz: entry 2 (./usr/pkg): a symlink cannot replace directory usr/pkg, which is not empty (it holds usr/pkg/bin) (" + replaceDirAdvice + ")"},
		{"not a snapshot", fmt.Errorf("restore: snapshot d.img: %w: bad magic %q", snapshot.ErrFormat, "\x00"),
			`restore: snapshot d.img: not a smolvmm snapshot: bad magic "\x00" (give --restore a file written by --snapshot)`},
		{"snapshot cut short", fmt.Errorf("restore: snapshot e: %w: header is 20 bytes, want 128", snapshot.ErrTruncated),
			"restore: snapshot e: snapshot is truncated: header is 20 bytes, want 128 (give --restore a whole file written by --snapshot)"},
		// These said what was wrong, not what to do.
		{"snapshot of another version", fmt.Errorf("restore: %w: version 5, this reader knows version 6", snapshot.ErrVersion),
			"restore: unsupported snapshot format version: version 5, this reader knows version 6 (this smolvmm restores only its own format: take the snapshot again with its --snapshot)"},
		// It said to raise --timeout: the restored guest of a snapshot
		// taken before ready never became ready, and would not have.
		{"restore never ready", fmt.Errorf("smolvmm-restore: %w: boot did not end within 30s: %w", bench.ErrTimeout, bench.ErrNoReadyReport),
			"smolvmm-restore: boot timed out: boot did not end within 30s: the program never reported its guest ready (a restore is ready at once only when the snapshot was taken once its guest was ready: take it at ready with run --snapshot, or give --ready or --ready-port a condition the restored guest meets)"},
		// It said to take the snapshot again, as for an older one.
		{"snapshot of a newer version", fmt.Errorf("restore: %w: version 9, this reader knows version 7: %w", snapshot.ErrVersion, snapshot.ErrNewerVersion),
			"restore: unsupported snapshot format version: version 9, this reader knows version 7: written by a newer smolvmm (restore it with the newer smolvmm that wrote it, or take the snapshot again with this one's --snapshot)"},
		{"corrupt snapshot", fmt.Errorf("restore: snapshot f: %w: SHA-256 of header and state is 00, the header says 01", snapshot.ErrCorrupt),
			"restore: snapshot f: snapshot is corrupt: SHA-256 of header and state is 00, the header says 01 (the file was damaged or altered since --snapshot wrote it: take the snapshot again)"},
		{"snapshot corrupt and cut short", fmt.Errorf("restore: snapshot f: %w: %w", snapshot.ErrTruncated, snapshot.ErrCorrupt),
			"restore: snapshot f: snapshot is truncated: snapshot is corrupt (give --restore a whole file written by --snapshot)"},
		{"state KVM refuses", &vmm.Error{Op: "restore", Err: fmt.Errorf("snapshot f: the snapshot's sregs: %w: set sregs: %w", vmm.ErrKVMRefused, syscall.EINVAL)},
			"restore: snapshot f: the snapshot's sregs: refused by this host's KVM (the snapshot is corrupt, or was taken on another KVM): set sregs: invalid argument (take the snapshot again on this host with --snapshot)"},
		// A new directory, never a change to the one given: "chmod
		// go-w /tmp" and "chown root DIR" were advised.
		{"chroot writable by others", fmt.Errorf("--chroot: %w", &sandbox.ChrootDirError{Dir: "/srv/empty", Reason: "is writable by others (mode 0757)"}),
			"--chroot: /srv/empty is writable by others (mode 0757); " + chrootAdvice},
		{"chroot not empty", fmt.Errorf("--chroot: %w", &sandbox.ChrootDirError{Dir: "/tmp", Reason: "is not empty (it holds x)"}),
			"--chroot: /tmp is not empty (it holds x); " + chrootAdvice},
		{"plain", errors.New("something"), "something"},
	} {
		if got := advise(tc.err); got != tc.want {
			t.Errorf("%s:\n got %q\nwant %q", tc.name, got, tc.want)
		}
	}
}

const chrootAdvice = "give --chroot a new empty directory owned by root that only root may write, such as one made as root with mkdir -m 0755 NEWDIR"

// fullCache is fetch's error for a full cache: the system's words,
// matching fetch.ErrNoSpace.
type fullCache struct{}

func (fullCache) Error() string   { return syscall.ENOSPC.Error() }
func (fullCache) Unwrap() []error { return []error{fetch.ErrNoSpace, syscall.ENOSPC} }
